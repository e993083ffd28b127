"""Each student's own trace exercises (python -m course traces): two students' captures give
different answers, each student's checks pass against their own capture and fail with someone
else's answers, an instructor regenerates the same bytes, and without a student id the labs read
the course's recordings as before."""

from __future__ import annotations

import pytest

from course.__main__ import main
from course.capture_analysis import longest_gap, telemetry_gaps
from course.constants import RECORDINGS
from course.traces import PER_STUDENT, student_seed, student_traces, write_traces
from tests.labcells import run_cell
from tests.requirements import require_tshark

STUDENTS = ("s2041337", "s2045512")


@pytest.fixture
def traces_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSIM_TRACES", str(tmp_path))
    monkeypatch.delenv("VITALSIM_STUDENT", raising=False)
    return tmp_path


def lab04_exercise1(monkeypatch, student: str | None, answers=None) -> dict:
    """Lab 04's own cells, as a learner's kernel runs them: the imports, the cell that reads the
    capture (whose it is comes from VITALSIM_STUDENT), the instructor's solution (or functions
    that give ``answers``), and the check cell. The namespace afterwards."""
    if student is None:
        monkeypatch.delenv("VITALSIM_STUDENT", raising=False)
    else:
        monkeypatch.setenv("VITALSIM_STUDENT", student)
    ns: dict = {}
    run_cell("04", "from course import Checks", ns)
    run_cell("04", "traces = student_traces()", ns)
    run_cell("04", "def first_after(", ns)
    if answers is not None:  # someone else's answers, handed in as they are
        ns["lost"] = lambda packets, device: answers["lost"][device]
        ns["first_after"] = lambda packets, device, seq: answers["first_after"]
    run_cell("04", 'checks = Checks("Exercise 1: what UDP lost")', ns)
    return ns


def answers_of(ns: dict) -> dict:
    lossy = ns["lossy"]
    return {"lost": {d: ns["lost"](lossy, d) for d in (1001, 1002, 1003)},
            "first_after": ns["first_after"](lossy, ns["GAP_DEVICE"], ns["GAP_FIRST"] - 1)}


def test_two_students_answers_differ_and_each_passes_against_their_own(traces_env, monkeypatch):
    main(["traces", *(arg for s in STUDENTS for arg in ("--student", s))])
    runs = {s: lab04_exercise1(monkeypatch, s) for s in STUDENTS}
    for student, ns in runs.items():
        assert ns["traces"].student == student
        assert ns["traces"].path("telemetry-loss") == traces_env / student / "telemetry-loss.pcap"
        assert ns["checks"].passed, f"{student}: {ns['checks'].status}"
    first, second = (answers_of(runs[s]) for s in STUDENTS)
    assert first != second
    assert first["lost"] != second["lost"] and telemetry_gaps(runs[STUDENTS[0]]["lossy"]) != \
        telemetry_gaps(runs[STUDENTS[1]]["lossy"])
    recorded = answers_of(lab04_exercise1(monkeypatch, None))
    assert recorded not in (first, second), "the recording's answers are nobody's"
    # one student's answers, handed in by the other, fail the other's checks
    copied = lab04_exercise1(monkeypatch, STUDENTS[1], answers=first)
    assert not copied["checks"].passed


def test_the_tshark_check_passes_against_each_students_capture(traces_env, monkeypatch):
    require_tshark()
    for student in STUDENTS:
        ns = lab04_exercise1(monkeypatch, student)
        run_cell("04", 'loss_file = traces.path("telemetry-loss")', ns)
        run_cell("04", 'checks = Checks("tshark and scapy read the same capture")', ns)
        assert ns["checks"].passed, f"{student}: {ns['checks'].status}"


def test_an_instructor_regenerates_the_same_bytes(tmp_path):
    first = write_traces("s2041337", tmp_path / "student")
    again = write_traces("s2041337", tmp_path / "instructor")
    for name in PER_STUDENT:
        assert (first / f"{name}.pcap").read_bytes() == (again / f"{name}.pcap").read_bytes()
    assert (first / "traces.json").read_text() == (again / "traces.json").read_text()


def test_each_students_capture_is_the_recordings_exercise(traces_env):
    """The same ward as the recording: three devices, 40-odd numerics each, a fifth lost."""
    for student in STUDENTS:
        packets = student_traces(student).read("telemetry-loss")
        gaps = telemetry_gaps(packets)
        assert set(gaps) == {1001, 1002, 1003}
        sent = 3 * 41
        assert 0.1 < 1 - len(packets) / sent < 0.35, len(packets)
        device, first, last = longest_gap(packets)
        assert set(range(first, last + 1)) <= set(gaps[device])


def test_without_a_student_the_labs_read_the_recordings(traces_env):
    traces = student_traces()
    assert traces.student is None and "no student id" in traces.note
    assert traces.path("telemetry-loss") == RECORDINGS / "telemetry-loss.pcap"
    assert longest_gap(traces.read("telemetry-loss")) == (1003, 30, 33)
    assert not any(traces_env.iterdir()), "nothing is generated without a student"


@pytest.mark.parametrize("bad", ["", "../etc", ".hidden", "a/b", "x" * 65, "name with space"])
def test_a_student_id_that_is_no_folder_name_is_refused(bad, capsys):
    with pytest.raises(ValueError, match="student id"):
        student_seed(bad)
    with pytest.raises(SystemExit):
        main(["traces", "--student", bad, "--out", "/nonexistent"])
    assert "student id" in capsys.readouterr().err


def test_grading_runs_each_student_in_their_own_traces(tmp_path, monkeypatch):
    """python -m course grade gives each student's kernel VITALSIM_STUDENT (their folder's name)
    and the traces folder; a folder name that is no student id reads the recordings."""
    from course.grading import student_environment

    monkeypatch.setenv("VITALSIM_STUDENT", "someone-else")
    env = student_environment("s2041337", tmp_path)
    assert env["VITALSIM_STUDENT"] == "s2041337"
    assert env["VITALSIM_TRACES"] == str(tmp_path.resolve())
    assert env["PATH"] == __import__("os").environ["PATH"]
    assert "VITALSIM_STUDENT" not in student_environment("no such id", tmp_path)
