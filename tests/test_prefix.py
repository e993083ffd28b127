"""The dashboard behind a path prefix, the way a hub serves it: a real Jupyter server with
``base_url=/user/alice/`` and jupyter-server-proxy forwarding ``/user/alice/proxy/PORT/`` to the
station, loaded in Chromium. Every request the page makes (its assets, BokehJS, the API and the
WebSocket) must go under the prefix, and the tiles must update over the proxied WebSocket.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from course.links import dashboard_link
from server.config import StationConfig
from server.system import SystemConfig
from tests.browser import CHROMIUM_ARGS, BackgroundSystem, wait_for_tiles_updating
from tests.requirements import require_chromium
from vitalsim.devices import WardConfig
from vitalsim.waiting import wait_until_blocking

pytestmark = pytest.mark.browser

PREFIX = "/user/alice/"


def wait_for_runtime_file(folder: Path, proc: subprocess.Popen, timeout: float = 60) -> dict:
    """The jpserver-PID.json a Jupyter server writes once it listens (it names its port)."""
    target = folder / f"jpserver-{proc.pid}.json"

    def written() -> dict | None:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited with {proc.returncode}")
        if target.exists():
            try:
                return json.loads(target.read_text())
            except json.JSONDecodeError:
                pass  # being written
        return None
    return wait_until_blocking(written, timeout=timeout, interval=0.1, what=target.name)


@pytest.fixture
def jupyter_server(tmp_path):
    """A Jupyter server (with jupyter-server-proxy) under PREFIX, on an ephemeral port."""
    token = secrets.token_hex(16)
    runtime = tmp_path / "runtime"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path)}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
         "--ServerApp.port=0", f"--ServerApp.base_url={PREFIX}",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
         f"--ServerApp.root_dir={tmp_path}", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        info = wait_for_runtime_file(runtime, proc)
        yield f"http://127.0.0.1:{info['port']}", token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def test_the_dashboard_works_behind_a_hub_style_prefix(jupyter_server):
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    origin, token = jupyter_server
    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                          WardConfig(beds=3, scenario="mix", waves=False))
    with BackgroundSystem(config) as system, sync_playwright() as pw:
        link = dashboard_link(system.url, environ={"JUPYTERHUB_SERVICE_PREFIX": PREFIX})
        port = urlparse(system.url).port
        assert link.href == f"{PREFIX}proxy/{port}/"
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            requests, sockets, errors = [], [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{origin}{link.href}?token={token}")
            wait_for_tiles_updating(page, timeout_ms=15_000, beds=3)
            page.locator('.tile[data-bed="2"] .trend-btn').click()
            page.wait_for_selector("#trend canvas", timeout=15_000)  # BokehJS and the API
        finally:
            browser.close()
    under = f"{origin}{link.href}"
    assert sockets == [f"ws://127.0.0.1:{urlparse(origin).port}{link.href}ws"]
    assert any("/bokeh/static/js/bokeh.min.js" in u for u in requests)
    assert any("/api/beds/2/history" in u for u in requests)
    outside = [u for u in requests if not u.startswith(under)]
    assert outside == [], f"requests that miss the prefix {link.href}: {outside}"
    assert errors == [], errors
