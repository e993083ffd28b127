"""Grading for a class: every student's notebooks run headless, each check's result in a table.

The labs grade themselves already: each exercise has a check cell (tagged ``check``) that prints
a :class:`~course.Checks` report, ``Exercise 2: bandwidth of one bed: FAIL`` and then
one line per check (``PASS``, ``FAIL`` or ``TODO`` for an exercise still a stub). Grading runs
each submitted notebook from the top in a fresh kernel (nbclient, as nbval and nbconvert do),
with ``allow_errors`` so that one broken cell does not hide the later exercises, and reads those
reports back.

The folder holds one sub-folder per student, each with that student's ``.ipynb`` files::

    submissions/alice/01_udp_loss.ipynb
    submissions/bob/01_udp_loss.ipynb

A notebook gets a time limit as a whole: one that loops forever is stopped at the limit (its
kernel shut down), reported as ``timed out``, and grading goes on with the next. One that raises
outside a stub (a syntax error, a crash) is reported as ``raised``, with the first such error.
Check cells left without a report by a hang are listed as ``timed out`` (``not reached`` when
an earlier failure of nbclient stopped the run), so that every exercise of every notebook has a
row.

Written to the output folder:

- ``checks.csv``: one row per student, notebook, exercise and check (tidy: what
  ``pandas.read_csv`` and ``DataFrame.pivot_table`` want);
- ``exercises.csv``: one row per student, with a column per ``notebook: exercise`` holding its
  status;
- ``notebooks.csv``: one row per student and notebook: how it ran, in how many seconds, and the
  first error.

Each student's kernel runs with ``VITALSIM_STUDENT`` set to the student's folder name (when it is
a valid student id), so that the trace exercises read that student's own captures
(:mod:`course.traces`, generated into ``OUT/traces/`` when missing) and each student is checked
against their own, as in their own JupyterLab.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd

CHECK_TAG = "check"
STUB_ERRORS = {"NotImplementedError"}
TITLE = re.compile(r"^(?P<title>\S.*): (?P<status>PASS|FAIL|NOT DONE YET)$")
LINE = re.compile(r"^\s+(?P<mark>PASS|FAIL|TODO) (?P<name>[^:]+): (?P<message>.*)$")
CHECKS_TITLE = re.compile(r"Checks\(\s*[\"'](?P<title>[^\"']+)[\"']")
MARKS = {"PASS": "pass", "FAIL": "fail", "TODO": "not done yet"}
CHECK_COLUMNS = ["student", "notebook", "exercise", "check", "status", "message"]
NOTEBOOK_COLUMNS = ["student", "notebook", "outcome", "seconds", "error"]


@dataclass
class NotebookResult:
    """How one student's notebook ran, and the check rows read from it."""

    student: str
    notebook: str
    outcome: str  # "ran" | "raised" | "timed out" | "unreadable"
    seconds: float
    error: str = ""
    checks: list[dict] = field(default_factory=list)


def _text_outputs(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _cell_error(cell: dict) -> dict | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def read_checks(nb: nbformat.NotebookNode, *, timed_out: bool = False) -> tuple[list[dict], str]:
    """The check rows of an executed notebook, and its first error that is not a stub's.

    A check cell with a report gives a row per check; one that raised gives a row saying so;
    one without a report in a notebook that timed out gives a ``timed out`` row (it was running,
    or never reached); one never run otherwise gives ``not reached``.
    """
    rows: list[dict] = []
    first_error = ""
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = _cell_error(cell)
        if error is not None and error.get("ename") not in STUB_ERRORS and not first_error:
            first_error = f"cell {number}: {error.get('ename')}: {error.get('evalue')}"
        if CHECK_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        named = CHECKS_TITLE.search(cell.source)
        exercise = named.group("title") if named else f"cell {number}"
        found = False
        for line in _text_outputs(cell).splitlines():
            title = TITLE.match(line)
            if title:
                exercise = title.group("title")
                continue
            check = LINE.match(line)
            if check:
                found = True
                rows.append({"exercise": exercise, "check": check.group("name").strip(),
                             "status": MARKS[check.group("mark")],
                             "message": check.group("message")})
        if not found:
            if error is not None:
                status, message = "error", f"{error.get('ename')}: {error.get('evalue')}"
            elif timed_out:
                status, message = "timed out", "the notebook ran out of time before this report"
            elif cell.get("execution_count") is None:
                status, message = "not reached", "the notebook stopped before this cell"
            else:
                status, message = "error", "the check cell printed no report"
            rows.append({"exercise": exercise, "check": "", "status": status,
                         "message": message})
    return rows, first_error


def student_environment(student: str, traces: Path | None) -> dict[str, str]:
    """The environment of a student's kernel: ours, with ``VITALSIM_STUDENT`` naming them (and
    ``VITALSIM_TRACES`` where their captures go) when their folder's name is a valid student
    id; without it (and without an inherited one) otherwise, so that they read the recordings."""
    from course.traces import STUDENT_VARIABLE, TRACES_VARIABLE, student_seed

    env = {k: v for k, v in os.environ.items() if k != STUDENT_VARIABLE}
    try:
        student_seed(student)
    except ValueError:
        return env
    env[STUDENT_VARIABLE] = student
    if traces is not None:
        env[TRACES_VARIABLE] = str(Path(traces).resolve())
    return env


async def run_notebook(path: Path, *, timeout: float, kernel_name: str = "python3",
                       student: str = "", env: dict[str, str] | None = None) -> NotebookResult:
    """Run one notebook top to bottom in a fresh kernel, in its own folder, within ``timeout``
    seconds in all, with ``env`` as the kernel's environment (default: ours); never raises for
    what the notebook does."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    started = time.monotonic()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # a file that is not a notebook is that student's result
        return NotebookResult(student, path.name, "unreadable", 0.0,
                              f"{type(exc).__name__}: {exc}")
    for cell in nb.cells:  # graded on this run's outputs, never on what the student saved
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    outcome, error = "ran", ""
    run = asyncio.ensure_future(client.async_execute(**({"env": env} if env else {})))
    try:
        done, _ = await asyncio.wait({run}, timeout=timeout)
        if not done:  # the notebook's limit: stop it, whatever stopping it raises
            run.cancel()
            with contextlib.suppress(BaseException):
                await run
            outcome, error = "timed out", f"still running after {timeout:g} s"
        elif isinstance(run.exception(), CellTimeoutError):
            outcome, error = "timed out", f"a cell still running after {timeout:g} s"
        elif run.exception() is not None:  # nbclient's own failures (a dead kernel)
            outcome, error = "raised", f"{type(run.exception()).__name__}: {run.exception()}"
    finally:
        if client.km is not None and await client.km.is_alive():
            await client.km.shutdown_kernel(now=True)
    rows, first_error = read_checks(nb, timed_out=outcome == "timed out")
    if outcome == "ran" and first_error:
        outcome, error = "raised", first_error
    return NotebookResult(student, path.name, outcome, round(time.monotonic() - started, 2),
                          error, rows)


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, notebook) for every notebook in every student's sub-folder, in order."""
    found = []
    for student in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        for notebook in sorted(student.glob("*.ipynb")):
            found.append((student.name, notebook))
    return found


async def grade_async(folder: Path, *, timeout: float = 300.0, jobs: int = 1,
                      kernel_name: str = "python3",
                      traces: Path | None = None) -> list[NotebookResult]:
    """Every submission run, ``jobs`` at a time, each in its student's environment."""
    limit = asyncio.Semaphore(max(1, jobs))

    async def one(student: str, path: Path) -> NotebookResult:
        async with limit:
            return await run_notebook(path, timeout=timeout, kernel_name=kernel_name,
                                      student=student,
                                      env=student_environment(student, traces))

    return list(await asyncio.gather(*(one(s, p) for s, p in submissions(folder))))


def tables(results: Iterable[NotebookResult]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(checks, exercises, notebooks) as DataFrames; see the module's docstring."""
    results = list(results)
    checks = pd.DataFrame(
        [{"student": r.student, "notebook": r.notebook, **row} for r in results
         for row in r.checks], columns=CHECK_COLUMNS)
    notebooks = pd.DataFrame(
        [{"student": r.student, "notebook": r.notebook, "outcome": r.outcome,
          "seconds": r.seconds, "error": r.error} for r in results], columns=NOTEBOOK_COLUMNS)
    exercises = exercise_table(checks)
    return checks, exercises, notebooks


def exercise_status(statuses: pd.Series) -> str:
    """An exercise passes when all its checks pass; otherwise its worst status shows."""
    for worst in ("error", "timed out", "not reached", "fail", "not done yet"):
        if (statuses == worst).any():
            return worst
    return "pass"


def exercise_table(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per student, a column per ``notebook: exercise``."""
    if checks.empty:
        return pd.DataFrame(index=pd.Index([], name="student"))
    keyed = checks.assign(exercise=checks["notebook"] + ": " + checks["exercise"])
    return keyed.pivot_table(index="student", columns="exercise", values="status",
                             aggfunc=exercise_status).rename_axis(columns=None)


def grade(folder: Path, out: Path, *, timeout: float = 300.0, jobs: int = 1,
          kernel_name: str = "python3") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Grade ``folder`` (one sub-folder per student) and write the three CSVs into ``out``."""
    results = asyncio.run(grade_async(folder, timeout=timeout, jobs=jobs,
                                      kernel_name=kernel_name, traces=Path(out) / "traces"))
    checks, exercises, notebooks = tables(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checks.to_csv(out / "checks.csv", index=False)
    exercises.to_csv(out / "exercises.csv")
    notebooks.to_csv(out / "notebooks.csv", index=False)
    return checks, exercises, notebooks
