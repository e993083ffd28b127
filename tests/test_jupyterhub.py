"""The course on a real JupyterHub: a class of three, spawned at once.

PyPI's jupyterhub with npm's configurable-http-proxy, the dummy authenticator and the simple
local process spawner (each student's server in a working directory of their own, ``--allow-root``
because CI runs as root). Each student runs lab 00 in their own server through the hub, then
starts a ward there and opens its dashboard through the hub's proxy path in Chromium, logged in
as themselves: the tiles must update over a WebSocket that goes through the hub's proxy and
jupyter-server-proxy. All three systems run at once. One student must not reach another's
dashboard, and nobody logged out reaches any.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlparse

import psutil
import pytest

from course.hub_harness import PASSWORD, ROOT, Hub, StudentLab
from tests.browser import CHROMIUM_ARGS, wait_for_tiles_updating
from tests.requirements import require_chromium, require_hub_proxy

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

LAB00 = ROOT / "labs" / "00_tour.ipynb"
BEDS = {"ada": 2, "grace": 3, "alan": 4}  # a different ward each, to tell the dashboards apart

THEN = """\
import json, os
from server import System
from course.links import dashboard_link
system = System.ephemeral(beds={beds}, scenario="mix", seed=3)
await system.start()
await system.wait_ready(timeout=60)
station = system.station
print(json.dumps({{"link": str(dashboard_link(system.url)), "cwd": os.getcwd(),
                  "ports": [station.http_port, station.udp_port, station.tcp_port]}}))
"""
FINALLY = "await system.stop()\nprint('stopped:', not system.station.running)"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status_without_redirects(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def log_in(browser, hub: Hub, name: str):
    """A browser context holding the student's hub login."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login?next=/hub/home")  # not JupyterLab: nothing to look at
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_url("**/hub/home", timeout=120_000)
    page.close()
    return context


def test_a_class_of_three_on_a_real_jupyterhub(tmp_path):
    executable = require_chromium()
    require_hub_proxy()
    from playwright.sync_api import sync_playwright

    with Hub(tmp_path) as hub:
        for name in BEDS:  # all three asked for at once; the hub starts them side by side
            hub.spawn(name)
        hub.wait_ready(list(BEDS))
        labs = {name: StudentLab(hub, name, LAB00, then=THEN.format(beds=beds),
                                 finally_=FINALLY) for name, beds in BEDS.items()}
        try:
            reports = {name: lab.report() for name, lab in labs.items()}
            systems = {name: json.loads(r["outputs"][-1]) for name, r in reports.items()}
            for name, report in reports.items():
                text = "\n".join(report["outputs"])
                assert f"hub prefix: /user/{name}/" in text  # the doctor, in lab 00
                assert f"/user/{name}/proxy/" in text  # lab 00's dashboard link
                assert "PASS every bed has a heart rate" in text
                assert "FAIL" not in text
                assert "stopped: True" in text  # lab 00 stops its own system
                assert systems[name]["cwd"] == str(hub.homes / name)
                assert systems[name]["link"].startswith(f"/user/{name}/proxy/")
            ports = [p for s in systems.values() for p in s["ports"]]
            assert len(set(ports)) == len(ports), f"a port clash: {systems}"

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                try:
                    contexts = {}
                    for name, beds in BEDS.items():  # all three dashboards open at once
                        contexts[name] = log_in(browser, hub, name)
                        page = contexts[name].new_page()
                        sockets = []
                        page.on("websocket", lambda ws, sockets=sockets: sockets.append(ws.url))
                        page.goto(hub.url + systems[name]["link"])
                        wait_for_tiles_updating(page, timeout_ms=60_000, beds=beds)
                        host = urlparse(hub.url).netloc
                        assert sockets == [f"ws://{host}{systems[name]['link']}ws"]
                    # ada, logged in, asks for grace's dashboard: the hub refuses her
                    page = contexts["ada"].new_page()
                    response = page.goto(hub.url + systems["grace"]["link"])
                    assert response.status == 403 or "/hub/login" in page.url, \
                        (response.status, page.url)
                    assert page.locator(".tile").count() == 0
                    # nobody logged in: a redirect towards the login page, never the dashboard
                    for name in BEDS:
                        status, location = status_without_redirects(
                            hub.url + systems[name]["link"])
                        assert status == 302 and location, (status, location)
                    anonymous = browser.new_context().new_page()
                    anonymous.goto(hub.url + systems["alan"]["link"])
                    assert "/hub/login" in anonymous.url
                    assert anonymous.locator(".tile").count() == 0
                finally:
                    browser.close()
            for name, lab in labs.items():
                assert lab.finish()["finally"].strip() == "stopped: True", name
        finally:
            for lab in labs.values():
                lab.kill()
        everything = hub.processes()  # hub, proxy, servers and kernels
        assert len(everything) >= 1 + len(BEDS)
    left = [p for p in everything if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"still running after the hub stopped: {left}"
