"""A real JupyterHub for the tests and the class-size benchmark: PyPI's jupyterhub, npm's
configurable-http-proxy, the dummy authenticator and the simple local process spawner, every
student with their own working directory, everything on 127.0.0.1.

:class:`Hub` starts it and stops it (with every single-user server, kernel and proxy under it,
even when the test fails); :class:`StudentLab` runs a notebook in a student's own server through
the hub, the way JupyterLab does: a kernel started through the hub's proxy with the REST API and
driven over its WebSocket (nbclient with jupyter_server's gateway kernel manager, in a process
of its own, because the gateway client's settings are one per process).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from course.waiting import wait_until_blocking

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NODE_BIN = ROOT / ".ci" / "node" / "node_modules" / ".bin"
PASSWORD = "class-of-2026"

CONFIG = """\
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.db_url = "sqlite:///{db}"
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root", "--ServerApp.log_level=WARN"]
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 240
c.Spawner.environment = {{"JUPYTER_CONFIG_DIR": {jupyter_config!r}}}
c.JupyterHub.services = [{{"name": "course-tests", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "course-tests",
    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "list:users"],
    "services": ["course-tests"],
}}]
"""


def free_port() -> int:
    """A port free on 127.0.0.1 now. JupyterHub must know its ports before it binds them (the
    proxy routes to them), so port 0 cannot be passed through; another process could take the
    port in between, which the hub would report as an address in use."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proxy_command() -> str | None:
    """npm's configurable-http-proxy (Debian's does not start with Debian's Node.js)."""
    local = NODE_BIN / "configurable-http-proxy"
    if local.exists():
        return str(local)
    return shutil.which("configurable-http-proxy")


class Hub:
    """A JupyterHub in ``folder`` on ephemeral ports; use it as a context manager."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.homes = self.folder / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(24)
        self.proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> Hub:
        chp = proxy_command()
        if chp is None:
            raise FileNotFoundError("configurable-http-proxy: npm install --prefix .ci/node "
                                    "configurable-http-proxy@5.3.0")
        self.homes.mkdir(parents=True, exist_ok=True)
        (self.folder / "jupyter-config").mkdir(exist_ok=True)
        config = self.folder / "jupyterhub_config.py"
        config.write_text(CONFIG.format(
            port=self.port, hub_port=free_port(), proxy_api_port=free_port(),
            pid_file=str(self.folder / "proxy.pid"), db=self.folder / "jupyterhub.sqlite",
            cookie_secret=str(self.folder / "cookie_secret"), password=PASSWORD,
            homes=str(self.homes), singleuser=str(VENV_BIN / "jupyterhub-singleuser"),
            jupyter_config=str(self.folder / "jupyter-config"), token=self.token))
        env = {**os.environ, "PATH": f"{Path(chp).parent}:{VENV_BIN}:{os.environ['PATH']}"}
        self._log = open(self.folder / "jupyterhub.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "jupyterhub"), "-f", str(config)], cwd=self.folder, env=env,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        path = self.folder / "jupyterhub.log"
        return path.read_text() if path.exists() else ""

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"jupyterhub exited with {self.proc.returncode}:\n"
                               + self.log()[-3000:])

    def wait_until_up(self, timeout: float = 120) -> None:
        def answering() -> bool:
            self._check_alive()
            try:
                self.api("GET", "/hub/api/")
            except (OSError, urllib.error.URLError):
                return False
            return True
        try:
            wait_until_blocking(answering, timeout=timeout, interval=0.2,
                                what="jupyterhub's API to answer")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}:\n{self.log()[-3000:]}") from None

    def api(self, method: str, path: str, body: dict | None = None,
            token: str | None = None) -> dict:
        """A call to the hub's REST API, through its proxy, as the tests' service."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"token {token or self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else {}

    def spawn(self, name: str) -> None:
        """Create the user and ask for their server (it starts in the background)."""
        try:
            self.api("POST", f"/hub/api/users/{name}")
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already exists
                raise
        try:
            self.api("POST", f"/hub/api/users/{name}/server")
        except urllib.error.HTTPError as exc:
            if exc.code not in (201, 202):
                raise

    def wait_ready(self, names: list[str], timeout: float = 300) -> None:
        waiting = set(names)

        def all_ready() -> bool:
            for name in list(waiting):
                server = self.api("GET", f"/hub/api/users/{name}").get("servers", {}).get("")
                if server and server.get("ready"):
                    waiting.discard(name)
            self._check_alive()
            return not waiting
        try:
            wait_until_blocking(all_ready, timeout=timeout, interval=0.5,
                                what="the users' servers to be ready")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {sorted(waiting)}\n{self.log()[-3000:]}") from None

    def user_token(self, name: str) -> str:
        """A token of the student's own, as JupyterLab would hold for them."""
        return self.api("POST", f"/hub/api/users/{name}/tokens",
                        {"note": "course tests", "expires_in": 3600})["token"]

    def processes(self) -> list[psutil.Process]:
        """The hub and everything under it: the proxy, single-user servers, kernels."""
        if self.proc is None:
            return []
        try:
            hub = psutil.Process(self.proc.pid)
            return [hub, *hub.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Stop the hub (it stops its servers), then anything of it still alive."""
        if self.proc is None:
            return
        everything = self.processes()
        pid_file = self.folder / "proxy.pid"
        if pid_file.exists():  # the proxy outlives the hub by design, unless told
            try:
                everything.append(psutil.Process(int(pid_file.read_text().strip())))
            except (ValueError, psutil.NoSuchProcess):
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for process in everything:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(everything, timeout=10)
        if self._log is not None:
            self._log.close()
        self.proc = None


class LabFailed(RuntimeError):
    """A cell of the notebook raised (a check failed, say), in the student's kernel."""


class StudentLab:
    """A notebook run in a student's own server through the hub, in a child process (see
    ``course/hub_lab_runner.py``): it runs every cell, then ``then`` (extra code, such as starting a
    system to look at), reports, and waits to be told to run ``finally_`` and stop."""

    def __init__(self, hub: Hub, name: str, notebook: Path, *, then: str = "",
                 finally_: str = "", timeout: float = 300, allow_errors: bool = False) -> None:
        self.name = name
        self.timeout = timeout
        token = hub.user_token(name)
        env = {**os.environ, "JUPYTER_GATEWAY_URL": f"{hub.url}/user/{name}",
               "JUPYTER_GATEWAY_AUTH_TOKEN": token,
               "JUPYTER_GATEWAY_REQUEST_TIMEOUT": "120",
               "JUPYTER_GATEWAY_CONNECT_TIMEOUT": "120",
               "HUB_LAB_ALLOW_ERRORS": "1" if allow_errors else "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course.hub_lab_runner", str(notebook), then, finally_],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)

    def report(self) -> dict:
        """The child's report after the notebook and ``then`` ran: outputs per cell, seconds."""
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise RuntimeError(f"{self.name}'s lab failed:\n{self.proc.stderr.read()[:6000]}")
        report = json.loads(line)
        if "error" in report:
            raise LabFailed(f"{self.name}'s lab failed: {report['error']}")
        return report

    def finish(self) -> dict:
        """Run ``finally_``, shut the kernel down, and return the last report."""
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        return self.report()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
