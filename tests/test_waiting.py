"""The one polling loop with a deadline, in its two forms (:mod:`vitalsim.waiting`), the line
reader the namespace recorder starts its processes with, and a guard that no other polling loop
with a deadline is written by hand in the product, the course or the tests.

(The asynchronous :func:`course.wait_until` is tested in ``test_course_build.py``.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course.netns_recorder import wait_for_line
from vitalsim.waiting import wait_until_blocking

ROOT = Path(__file__).resolve().parent.parent
#: where a hand-written deadline loop may not be; bench/ measures for fixed windows of time
SCANNED = ("vitalsim", "server", "course", "tests")
CLOCKS = {"monotonic", "perf_counter", "time"}


def test_the_blocking_wait_returns_the_value_or_names_what_it_waited_for():
    ready_at = time.monotonic() + 0.1
    assert wait_until_blocking(lambda: time.monotonic() >= ready_at and "ready",
                               timeout=5) == "ready"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="after 0.1 s, still waiting for the kettle"):
        wait_until_blocking(lambda: False, timeout=0.1, what="the kettle")
    assert time.monotonic() - started < 2, "the deadline is kept"


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE,
                            text=True)


def test_a_line_is_found_among_several_printed_at_once():
    proc = _python("print('starting\\nlistening on 8080\\nready', flush=True); "
                   "import time; time.sleep(30)")
    try:
        assert wait_for_line(proc, "listening", 10) == "listening on 8080\n"
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_never_prints_the_line_times_out_naming_what_it_printed():
    proc = _python("print('something else', flush=True); import time; time.sleep(30)")
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=r"a line with 'dashboard:'.*something else"):
            wait_for_line(proc, "dashboard:", 0.5)
    finally:
        proc.kill()
        proc.wait()
    assert time.monotonic() - started < 5, "a silent process does not block past the deadline"


def test_a_process_that_exits_first_is_reported_at_once():
    proc = _python("print('bye')")
    try:
        with pytest.raises(RuntimeError, match=r"output ended.*bye"):
            wait_for_line(proc, "dashboard:", 30)
    finally:
        proc.wait()


def _calls(node: ast.AST, names: set[str]) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) in names:
                return True
    return False


def hand_written_deadline_loops(source: str) -> list[int]:
    """Line numbers of ``while`` loops that poll against a clock: a clock read in the loop's
    condition, or a clock compared in its body while the body sleeps."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.While):
            continue
        body = ast.Module(body=node.body, type_ignores=[])
        compares_clock = any(isinstance(n, ast.Compare) and _calls(n, CLOCKS)
                             for n in ast.walk(body))
        if _calls(node.test, CLOCKS) or (compares_clock and _calls(body, {"sleep"})):
            found.append(node.lineno)
    return found


HAND_WRITTEN = """
while time.monotonic() < deadline:
    if ready():
        break
    time.sleep(0.1)
while not ready():
    assert loop.time() < deadline, "never ready"
    await asyncio.sleep(0.01)
"""


def test_there_is_one_polling_loop_with_a_deadline():
    assert hand_written_deadline_loops(HAND_WRITTEN) == [2, 6], "the guard sees both shapes"
    waiting = ROOT / "vitalsim" / "waiting.py"
    loops = [f"{path.relative_to(ROOT)}:{line}"
             for folder in SCANNED for path in sorted((ROOT / folder).rglob("*.py"))
             if path != waiting for line in hand_written_deadline_loops(path.read_text())]
    assert loops == [], ("wait with vitalsim.waiting.wait_until (or wait_until_blocking), "
                         "or on the event itself, instead of these loops")
