"""The course's checks, and its builder of learner and instructor notebooks from one source."""

import json
from pathlib import Path

import pytest

from course import Checks, not_done_yet
from course.build import BuildError, build, main, strip_solutions


def test_a_failed_check_says_expected_because_and_got():
    checks = Checks("Exercise 1")
    result = checks.expect("loss ratio", 0.31, expected=0.10, tolerance=0.02,
                           because="the proxy drops one datagram in ten")
    assert result.status == "fail"
    assert str(result) == ("FAIL loss ratio: expected 0.1 ± 0.02 because the proxy drops one "
                           "datagram in ten, got 0.31")
    assert checks.status == "fail" and not checks.passed


def test_a_stub_is_reported_as_not_done_yet_not_as_a_crash():
    def learner_decoder(data):
        raise NotImplementedError("your code here")

    checks = Checks("Exercise 2")
    checks.expect("frames decoded", lambda: not_done_yet(learner_decoder, b""), expected=3,
                  because="the stream holds three frames")
    assert checks.status == "not done yet"
    assert "TODO frames decoded" in checks.report()


def test_passing_and_relative_tolerance_and_learner_bugs():
    checks = Checks("Exercise 3")
    assert checks.expect("jitter", 10.4, expected=10.0, tolerance=0.05, relative=True,
                         because="RFC 3550").status == "pass"
    assert checks.expect("nan", float("nan"), expected=1.0, tolerance=1.0,
                         because="a number").status == "fail"
    assert checks.expect("bug", lambda: 1 / 0, expected=1, because="x").message.startswith(
        "raised ZeroDivisionError")
    assert checks.that("sorted", lambda: [1, 2] == sorted([2, 1]), because="order").status \
        == "pass"


def notebook(*cells):
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code(src, tags=()):
    return {"cell_type": "code", "source": src, "metadata": {"tags": list(tags)},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "old"}],
            "execution_count": 3}


def test_learner_gets_stubs_and_instructor_keeps_solutions():
    src = notebook(
        code("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"),
        {"cell_type": "markdown", "source": "Model answer", "metadata": {"tags": ["instructor"]}},
        code("print(f(1))"),
    )
    learner, instructor = build(src, name="t.ipynb")
    assert learner["cells"][0]["source"] == \
        'def f(x):\n    raise NotImplementedError("your code here")\n'
    assert learner["cells"][0]["metadata"]["tags"] == ["raises-exception"]
    assert len(learner["cells"]) == 2, "the instructor-only answer is left out"
    assert instructor["cells"][0]["source"] == "def f(x):\n    return x + 1\n"
    assert all(c.get("outputs", []) == [] for c in learner["cells"] + instructor["cells"])


@pytest.mark.parametrize("lines", [
    ["### END SOLUTION"],
    ["### BEGIN SOLUTION", "x = 1"],
    ["### BEGIN SOLUTION", "### BEGIN SOLUTION"],
])
def test_unpaired_markers_are_an_error_naming_the_place(lines):
    with pytest.raises(BuildError, match="lab.ipynb, cell 4"):
        strip_solutions(lines, where="lab.ipynb, cell 4")


LABS = Path(__file__).resolve().parent.parent / "labs"


def test_checked_in_notebooks_are_built_from_their_sources(capsys):
    # the labs folder by its place in the repository, whatever folder pytest was started in
    assert main(["--labs", str(LABS), "--check"]) == 0, capsys.readouterr().out


PERCENT = "# %%\n1\n"


def test_check_mode_reports_a_stale_notebook(tmp_path, capsys):
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "x.py").write_text(PERCENT)
    assert main(["--labs", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert main(["--labs", str(tmp_path)]) == 0
    assert main(["--labs", str(tmp_path), "--check"]) == 0


def test_naming_labs_builds_only_those(tmp_path, capsys):
    (tmp_path / "source").mkdir()
    for name in ("02_tcp.py", "03_ws.py"):
        (tmp_path / "source" / name).write_text(PERCENT)
    assert main(["--labs", str(tmp_path), "02"]) == 0
    assert (tmp_path / "02_tcp.ipynb").exists()
    assert (tmp_path / "instructor" / "02_tcp.ipynb").exists()
    assert not (tmp_path / "03_ws.ipynb").exists()
    with pytest.raises(SystemExit):
        main(["--labs", str(tmp_path), "09"])
    assert "no lab source" in capsys.readouterr().err


def test_a_checked_cell_keeps_its_recorded_output_until_its_code_changes(tmp_path, capsys):
    (tmp_path / "source").mkdir()
    src = tmp_path / "source" / "07_x.py"
    src.write_text("# %%\n# NBVAL_CHECK_OUTPUT\nprint(6 * 7)\n")
    assert main(["--labs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "07_x.py, cell 0" in err and "no recorded output" in err and "--execute 07" in err
    assert main(["--labs", str(tmp_path), "--execute"]) == 0
    built = json.loads((tmp_path / "07_x.ipynb").read_text())
    assert "".join(built["cells"][0]["outputs"][0]["text"]) == "42\n", "the build ran it"
    assert built["cells"][0]["execution_count"] == 1, "nbval compares only a cell with a count"
    assert main(["--labs", str(tmp_path)]) == 0 and main(["--labs", str(tmp_path), "--check"]) == 0
    src.write_text("# %%\n# NBVAL_CHECK_OUTPUT\nprint(6 * 9)\n")
    assert main(["--labs", str(tmp_path)]) == 2, "changed code has no recorded output yet"


def test_a_checked_cell_may_not_hold_a_solution():
    src = notebook(code("# NBVAL_CHECK_OUTPUT\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    with pytest.raises(BuildError, match="t.ipynb, cell 0"):
        build(src, name="t.ipynb", recorded={})


def test_instructor_check_cells_assert_that_their_checks_pass():
    src = notebook(code("checks = Checks('x')\nchecks", tags=["check"]))
    learner, instructor = build(src, name="t.ipynb")
    assert instructor["cells"][0]["source"].endswith("assert checks.passed, checks.report()")
    assert "assert" not in learner["cells"][0]["source"]


def test_lossy_telemetry_is_seeded_and_in_arrival_order():
    from course.datasets import lossy_telemetry

    a, b = lossy_telemetry(seed=4), lossy_telemetry(seed=4)
    assert a.equals(b) and a["received_at"].is_monotonic_increasing
    assert 0.05 < 1 - a["seq"].nunique() / 600 < 0.15


def test_every_checked_output_in_the_labs_has_something_to_compare_with():
    from course.build import checks_output

    notebooks = sorted(LABS.glob("*.ipynb")) + sorted((LABS / "instructor").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if checks_output(cell):
                assert cell["outputs"], f"{path.name} cell {index}: no recorded output to check"


def test_wait_until_returns_the_value_or_names_what_it_waited_for():
    import asyncio

    from course import wait_until

    async def main():
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + 0.1
        assert await wait_until(lambda: loop.time() >= ready_at and "ready", timeout=5) == "ready"
        with pytest.raises(TimeoutError, match="still waiting for the kettle"):
            await wait_until(lambda: False, timeout=0.1, what="the kettle")
    asyncio.run(main())
