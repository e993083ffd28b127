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
    assert str(result) == ("FAIL loss ratio: expected 0.100 ± 0.02 because the proxy drops one "
                           "datagram in ten, got 0.310")
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


def test_a_bit_pattern_is_shown_in_hex_so_a_byte_swap_shows():
    checks = Checks("Exercise 1")
    result = checks.expect("magic", 0x5356, expected=0x5653, fmt="#06x", because="'VS'")
    assert result.message == "expected 0x5653 because 'VS', got 0x5356"
    assert checks.expect("magic", 0x5653, expected=0x5653, fmt="#06x", because="'VS'").message \
        == "got 0x5653, as expected"


@pytest.mark.parametrize(("expected", "tolerance", "got", "shown"), [
    (10.234567891, 1e-6, 10.3, "expected 10.2345679 ± 1e-06 because b, got 10.3000000"),
    (0.1, 0.02, 0.31, "expected 0.100 ± 0.02 because b, got 0.310"),
    (250.0, 0.0, 72.5, "expected 250.0 because b, got 72.5"),
    (5, 0.0, 7, "expected 5 because b, got 7"),
    (1.0, 0.001, 1.00149, "expected 1.0000 ± 0.001 because b, got 1.0015"),
])
def test_expected_and_got_are_printed_at_one_precision(expected, tolerance, got, shown):
    assert Checks("x").expect("n", got, expected=expected, tolerance=tolerance,
                              because="b").message == shown


def test_a_wrong_list_says_what_is_missing_and_what_is_extra():
    frames = [(1, {"device_id": 1003, "bed": 3})] + [
        (2, {"alarm_id": f"1003-{n}", "condition": "HR HIGH", "value": 142.0 + n, "x": "y" * 60})
        for n in range(12)]
    got = frames[:5] + frames[6:] + [(4, {"sent_at": 1.5})]
    result = Checks("x").expect("frames", got, expected=frames, because="FrameDecoder finds 13")
    assert result.status == "fail"
    assert "13 items where 13 were expected" in result.message
    assert "missing [(2, {'alarm_id': '1003-4'" in result.message
    assert "extra [(4, {'sent_at': 1.5})]" in result.message
    assert len(result.message) < 400, "each item is cut short, not printed whole"


def test_a_list_in_the_wrong_order_says_where_it_first_differs():
    result = Checks("x").expect("order", ["v3", "s2"], expected=["s2", "v3"], because="b")
    assert result.message == ("wrong because b: the right 2 items in another order: at "
                              "position 0 expected 's2', got 'v3'")


def test_a_wrong_set_and_a_wrong_dict_name_their_differences():
    result = Checks("x").expect("ids", {"a", "b", "z"}, expected={"a", "b", "c"}, because="b")
    assert "missing ['c']" in result.message and "extra ['z']" in result.message
    result = Checks("x").expect("header", {"magic": 1, "seq": 2, "bed": 3},
                                expected={"magic": 1, "seq": 41, "flags": 0}, because="b")
    assert result.message == ("wrong because b: missing keys ['flags']; extra keys ['bed']; "
                              "different values 'seq': expected 41, got 2")


def test_a_pass_line_is_short_whatever_the_value():
    big = list(range(200))
    result = Checks("x").expect("all", big, expected=list(range(200)), because="b")
    assert str(result) == "PASS all: as expected"
    assert str(Checks("x").expect("n", 3, expected=3, because="b")) == "PASS n: got 3, as expected"


def learner_parse(data):
    header = {"magic": data[0]}
    return header["seq"]            # the learner's bug: this line


def test_an_exception_names_the_learners_line_once_then_says_the_same():
    checks = Checks("Exercise 1")
    for name in ("magic", "bed", "seq", "sent_at_us"):
        checks.expect(name, lambda: not_done_yet(learner_parse, b"VS"), expected=1, because="b")
    checks.that("holds", lambda: learner_parse(b"VS") > 0, because="b")
    first, *rest = checks.results
    assert first.message == ("raised KeyError: 'seq' (in learner_parse, line "
                             f"{learner_parse.__code__.co_firstlineno + 2}: return header[\"seq\"]"
                             "            # the learner's bug: this line)")
    assert [r.message for r in rest] == ["raised the same KeyError as 'magic' above"] * 4
    assert checks.report().count("line ") == 1


def test_a_value_that_cannot_be_compared_is_a_failure_not_a_crash():
    import pandas as pd

    result = Checks("x").expect("table", pd.DataFrame({"a": [1, 2]}), expected=[1, 2],
                                because="b")
    assert result.status == "fail" and "cannot be compared" in result.message


def test_a_table_shows_missing_values_one_way_and_numbers_at_the_stated_precision():
    import numpy as np
    import pandas as pd

    from course.formatting import MISSING, table

    frame = pd.DataFrame({"packet": [3, 7], "time": [0.000319, 0.1014163],
                          "alarm_id": [None, "1001-1"], "hr": [np.nan, 72.0],
                          "when": [pd.NaT, pd.Timestamp("2026-01-01")], "ok": [True, False]})
    frame["state"] = pd.array([pd.NA, "raised"], dtype="string")
    text = table(frame, ["packet", "time", "alarm_id", "hr", "state", "ok"],
                 decimals={"time": 3, "hr": 1})
    assert text.splitlines() == [
        "packet   time  alarm_id    hr  state   ok",
        "     3  0.000  -            -  -       yes",
        "     7  0.101  1001-1    72.0  raised  no",
    ]
    assert MISSING == "-" and "NaN" not in text and "None" not in text and "<NA>" not in text
    with pytest.raises(KeyError, match="no column"):
        table(frame, ["nope"])


def test_a_table_can_show_its_index_hex_columns_and_cut_long_text():
    import pandas as pd

    from course.formatting import table

    frame = pd.DataFrame({"magic": [0x5653], "body": ["x" * 30]},
                         index=pd.Index([1001], name="device"))
    assert table(frame, index="device", hex_columns={"magic": 4}, max_width=10).splitlines() \
        == ["device   magic  body", "  1001  0x5653  xxxxxxxxx…"]


def test_a_packet_is_shown_field_by_field_in_the_courses_layout():
    from course.formatting import packet_fields, tcp_flags
    from vitalsim.layers import Telemetry, TelemetryNumerics

    pkt = Telemetry(bed=7, device_id=1007, seq=5, sent_at_us=1_764_000_000_000_000,
                    numerics=TelemetryNumerics(hr=61, spo2=99, rr=12, temp=36.8))
    text = packet_fields(Telemetry(bytes(pkt)), fields={"TelemetryNumerics": ["hr", "temp"]})
    assert text.splitlines() == [
        "Telemetry", "  magic       0x5653", "  version     3", "  type        1",
        "  flags       0", "  key_id      0", "  bed         7", "  device_id   1007",
        "  seq         5", "  sent_at_us  1764000000000000", "  boot_id     0",
        "  body_len    58",
        "  numerics    TelemetryNumerics, below",
        "TelemetryNumerics", "  hr    61.00", "  temp  36.80"]   # a float32 36.79999923706055
    assert "tag" not in text, "an unsigned datagram carries no tag, so none is shown"
    assert [tcp_flags(f) for f in (0x02, 0x12, 0x11, 0x14, 0x18)] == ["S", "SA", "FA", "RA", "PA"]


def test_lab00_shows_reception_counters_as_integers():
    from types import SimpleNamespace

    from tests.labcells import run_cell

    beds = {"1": {"received": 1, "lost": 0, "duplicates": 0, "latency_p50_ms": 0.4},
            "2": {"received": 3, "lost": 1, "duplicates": 0, "latency_p50_ms": None}}
    system = SimpleNamespace(station=SimpleNamespace(stats=lambda: {"beds": beds}))
    stats = run_cell("00", "latency_p50_ms", {"system": system})["stats"]
    assert stats.loc["2", "received"] == 3
    assert [str(t) for t in stats.dtypes[["received", "lost", "duplicates"]]] == ["int64"] * 3, \
        "a counter shown as 1.0 reads as a measurement, not a count"
