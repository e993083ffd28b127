"""A non-editable install serves the dashboard, and has the course's recorded captures.

The dashboard's files ship as package data of ``server``, the recordings as package data of
``course``; a source checkout would hide their
absence, because the files are beside the code anyway. So the project's packages are copied alone
into a temporary folder, installed from there into a fresh venv with the lock's versions, and
``python -I -m server`` is started outside any checkout: it must serve the dashboard, its script
and BokehJS.
"""

from __future__ import annotations

import select
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.requirements import missing

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vitalsim", "server", "course")


def uv() -> str:
    """uv from the course's own venv (the lock pins it), else from PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        missing("this test installs the project with uv, and uv is not installed")
    return found  # type: ignore[return-value]


def copy_project(to: Path) -> Path:
    """The files a wheel is built from, and nothing else of the working tree."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, to / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, to / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return to


def install(project: Path, venv: Path) -> Path:
    """Install ``project`` (non-editable) into a new venv, with the lock's exact versions; from
    uv's cache alone when it holds them, so the test needs no network on a machine that ran make."""
    tool = uv()
    subprocess.run([tool, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    command = [tool, "pip", "install", "--quiet", "--python", str(python),
               "--constraint", str(ROOT / "requirements.lock"), str(project)]
    offline = subprocess.run([*command, "--offline"], capture_output=True, text=True)
    if offline.returncode != 0:
        subprocess.run(command, check=True, capture_output=True, text=True)
    return python


def first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The process's first line of output, or TimeoutError if none comes in ``timeout`` s."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"after {timeout} s the station had printed nothing")
    return proc.stdout.readline()


def fetch(url: str) -> tuple[int, bytes]:
    """GET with a cookie jar, as a browser: the session cookie a token URL sets is sent on
    along its redirect."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with browser.open(url, timeout=10) as resp:
        return resp.status, resp.read()


def test_a_non_editable_install_serves_the_dashboard(tmp_path):
    (tmp_path / "project").mkdir()
    project = copy_project(tmp_path / "project")
    python = install(project, tmp_path / "venv")
    shutil.rmtree(project)  # nothing left to fall back on but the installed package
    station = subprocess.Popen(
        [str(python), "-I", "-m", "server", "--beds", "1", "--http-port", "0", "--udp-port", "0",
         "--tcp-port", "0", "--journal", str(tmp_path / "alarms.sqlite3")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = first_line(station, timeout=30)  # the station prints its URL once it listens
        assert first.startswith("dashboard: "), f"the station said {first!r}"
        url = first.split()[1].split("?")[0].rstrip("/")
        status, page = fetch(first.split()[1])  # the token URL logs in, then shows the page
        assert status == 200 and b"<title>Central station</title>" in page
        status, script = fetch(url + "/app.js")
        assert status == 200 and script == (ROOT / "server" / "dashboard" / "app.js").read_bytes()
        status, bokehjs = fetch(url + "/bokeh/static/js/bokeh.min.js")
        assert status == 200 and len(bokehjs) > 100_000
        where = subprocess.run([str(python), "-I", "-c", "import server; print(server.__file__)"],
                               cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        assert str(tmp_path / "venv") in where, f"server was imported from {where}"
        # the recorded captures are the course's package data: a lab without root reads them
        found = subprocess.run(
            [str(python), "-I", "-c", "from course.constants import RECORDINGS; "
             "print(RECORDINGS); print(*sorted(p.name for p in RECORDINGS.iterdir()))"],
            cwd=tmp_path, capture_output=True, text=True, check=True).stdout.splitlines()
        shipped = {p.name for p in (ROOT / "course" / "recordings").iterdir()}
        assert str(tmp_path / "venv") in found[0] and set(found[1].split()) == shipped, found
    finally:
        station.terminate()
        try:
            station.wait(timeout=10)
        except subprocess.TimeoutExpired:
            station.kill()
            station.wait()
