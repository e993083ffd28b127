"""Lab 06's own check cell for the learner's sliding window, run against wrong windows (one
that never refuses a copy, one that forgets nothing), the lab's solution, and a stub: a check
that passes a wrong window would teach the wrong rule."""

from course import Checks, not_done_yet
from tests.labcells import cell_with, run_cell


def _check_window(my_window):
    """The lab's check of exercise 3, with the lab's own numbers and station verdicts."""
    ns: dict = {**_imports(), "my_window": my_window}
    exec(compile(cell_with("06", "rng = np.random.default_rng(2026)")  # noqa: S102
                 .replace("mine = my_window(seqs, 64)", "mine = None"), "<lab 06>", "exec"), ns)
    return run_cell("06", 'Checks("Exercise 3', {
        "Checks": Checks, "not_done_yet": not_done_yet, "my_window": my_window,
        "seqs": ns["seqs"], "theirs": ns["theirs"]})["checks"]


def _imports() -> dict:
    import numpy as np

    from vitalsim.protocol.replay import ReplayWindow
    return {"np": np, "ReplayWindow": ReplayWindow}


def _solution():
    ns: dict = {}
    exec(compile(cell_with("06", "def my_window("), "<lab 06>", "exec"), ns)  # noqa: S102
    return ns["my_window"]


def test_lab06_window_check_fails_wrong_windows_and_passes_the_solution():
    def no_memory(seqs, size):  # admits every copy: reordering and replays alike
        return [True] * len(seqs)

    def no_edge(seqs, size):  # remembers everything, never "too old"
        seen, out = set(), []
        for s in seqs:
            out.append(s not in seen)
            seen.add(s)
        return out

    def stub(seqs, size):
        raise NotImplementedError("your code here")

    for wrong in (no_memory, no_edge):
        report = _check_window(wrong)
        assert report.status == "fail", report.report()
        assert "verdicts that differ from the station's" in [
            r.name for r in report.results if r.status == "fail"], report.report()
    assert _check_window(_solution()).passed, _check_window(_solution()).report()
    assert _check_window(stub).status == "not done yet"
