"""Grading a class: made-up submissions of lab 01's first two exercises, one per student (correct,
partial, an infinite loop, a syntax error, and a file that is not a notebook), run headless with
a time limit each; the grading goes on past every one of them."""

from __future__ import annotations

import time

import nbformat
import pandas as pd
import psutil
import pytest

from course.grading import grade
from course.hub_harness import ROOT

LEARNER = ROOT / "labs" / "01_udp_loss.ipynb"
INSTRUCTOR = ROOT / "labs" / "instructor" / "01_udp_loss.ipynb"
EXERCISE_1, EXERCISE_2 = "Exercise 1: read the header", "Exercise 2: bandwidth of one bed"
LIMIT = 45.0  # seconds per notebook: ample for the two exercises, and the loop's fate

pytestmark = pytest.mark.timeout(300)


def _code_cell(nb, starts: str) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and c.source.startswith(starts))


def make_submissions(folder):
    """Lab 01 up to its second check, as each made-up student handed it in."""
    learner = nbformat.read(LEARNER, as_version=4)
    solved = nbformat.read(INSTRUCTOR, as_version=4)
    last = [i for i, c in enumerate(learner.cells) if "check" in c.metadata.get("tags", [])][1]
    header, bandwidth = (_code_cell(learner, "def parse_header"),
                         _code_cell(learner, "IP_UDP_HEADERS"))
    answers = {i: solved.cells[_code_cell(solved, learner.cells[i].source[:20])].source
               for i in (header, bandwidth)}

    def hand_in(student: str, edits: dict[int, str]) -> None:
        nb = nbformat.read(LEARNER, as_version=4)
        nb.cells = nb.cells[: last + 1]
        for index, source in edits.items():
            nb.cells[index].source = source
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / "01_udp_loss.ipynb")

    hand_in("correct", answers)
    hand_in("partial", {header: answers[header]})
    hand_in("loops", {header: answers[header],
                      bandwidth: answers[bandwidth].replace(
                          "    return (", "    while True:\n        pass\n    return (")})
    hand_in("syntax", {header: answers[header].replace("-> dict:", "-> dict"),
                       bandwidth: answers[bandwidth]})
    (folder / "garbled").mkdir()
    (folder / "garbled" / "01_udp_loss.ipynb").write_text("{ not a notebook")
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = make_submissions(tmp_path_factory.mktemp("submissions"))
    out = tmp_path_factory.mktemp("grades")
    started = time.monotonic()
    checks, exercises, notebooks = grade(submissions, out, timeout=LIMIT, jobs=3)
    return checks, exercises, notebooks.set_index("student"), out, time.monotonic() - started


def test_no_kernel_outlives_the_grading(graded):
    kernels = [p for p in psutil.Process().children(recursive=True)
               if "ipykernel" in " ".join(p.cmdline())]
    assert kernels == [], "the looping notebook's kernel (or another) is still running"


def test_every_student_gets_a_row_however_their_notebook_ended(graded):
    _, exercises, notebooks, _, _ = graded
    assert notebooks["outcome"].to_dict() == {
        "correct": "ran", "garbled": "unreadable", "loops": "timed out", "partial": "ran",
        "syntax": "raised"}
    assert "SyntaxError" in notebooks.loc["syntax", "error"]
    assert f"{LIMIT:g} s" in notebooks.loc["loops", "error"]
    assert notebooks.loc["loops", "seconds"] >= LIMIT
    assert sorted(exercises.index) == ["correct", "loops", "partial", "syntax"]


def test_each_exercise_is_graded_from_its_own_checks(graded):
    _, exercises, _, _, _ = graded
    e1, e2 = f"01_udp_loss.ipynb: {EXERCISE_1}", f"01_udp_loss.ipynb: {EXERCISE_2}"
    assert exercises.loc["correct"].to_dict() == {e1: "pass", e2: "pass"}
    assert exercises.loc["partial"].to_dict() == {e1: "pass", e2: "not done yet"}
    assert exercises.loc["loops"].to_dict() == {e1: "pass", e2: "timed out"}
    assert exercises.loc["syntax", e1] == "fail"  # parse_header never defined
    assert exercises.loc["syntax", e2] == "pass"  # a later exercise still counts


def test_the_csvs_are_tidy_tables_pandas_reads_back(graded):
    checks, _, _, out, _ = graded
    again = pd.read_csv(out / "checks.csv", keep_default_na=False)
    assert list(again.columns) == ["student", "notebook", "exercise", "check", "status",
                                   "message"]
    assert len(again) == len(checks)
    magic = again[(again.student == "correct") & (again.check == "magic")]
    assert magic["status"].tolist() == ["pass"]
    syntax = again[(again.student == "syntax") & (again.exercise == EXERCISE_1)]
    assert set(syntax["status"]) == {"fail"} and syntax["message"].str.contains("NameError").all()
    wide = pd.read_csv(out / "exercises.csv", index_col="student")
    assert wide.loc["partial"].tolist() == ["pass", "not done yet"]
    assert set(pd.read_csv(out / "notebooks.csv")["student"]) == {
        "correct", "garbled", "loops", "partial", "syntax"}
