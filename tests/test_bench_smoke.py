"""The capacity benchmark (python -m bench) at tiny sizes, so that it keeps working.

It checks the shape and the sanity of the results, never a speed: speeds are for the full
benchmark on a quiet machine.
"""

import json

from bench.run import BenchConfig, format_summary, run_benchmark, write_outputs
from server.config import StationConfig


def test_the_capacity_benchmark_runs_every_part_and_reports_sane_figures(tmp_path):
    cfg = BenchConfig.smoke(out=tmp_path)
    result = run_benchmark(cfg, log=lambda line: None)
    rows = result["rows"]
    kinds = [(r["design"], r["flood"]) for r in rows]
    assert kinds[:3] == [("bare", True), ("coalesced", True), ("naive", True)]
    paced = [r for r in rows if r["sweep"]]
    assert {(r["workload"], r["design"], r["beds"], r["clients"]) for r in paced} == {
        (w, d, 20, 2) for w in ("numerics", "full") for d in ("coalesced", "naive")}
    for row in rows:
        assert row["offered"] > 0 and 0 < row["received"] <= row["offered"], row
        assert row["cpu_percent"] > 0 and row["peak_rss"] > 10_000_000, row
        # the command line's receive buffer (Linux reports twice what was asked)
        assert row["rcvbuf"] >= StationConfig.udp_receive_buffer, "receive buffer not raised"
    for row in paced:
        assert row["loss_percent"] < 5.0, row  # a few hundred datagrams/s on loopback
        assert row["alarms_lost"] == 0, row
        # alarms go with the full workload; the numerics one is telemetry only
        assert row["alarms_sent"] > 0 if row["workload"] == "full" else \
            row["alarms_sent"] == 0 and row["generator"]["links"] == 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row
        assert 0 < row["delivered_percent"] <= 100.0, row
        assert 0 <= row["lag_p99_ms"] <= row["lag_max_ms"], row
        assert row["target"]["loop_lag"]["samples"] > 0, "the loop-lag monitor never ran"
        waves = row["dashboards"]["wave_updates"]
        assert row["dashboards"]["vitals_updates"] > 0 and row["dashboards"]["closed"] == 0
        assert waves > 0 if row["workload"] == "full" else waves == 0, row
    numerics = [r for r in paced if r["workload"] == "numerics"]
    assert all(r["generator"]["per_bed_second"] == 1.0 for r in numerics), "numerics only, 1 Hz"
    summary = result["summary"]
    assert summary["ceiling_per_s"] > 0 and 0 < summary["station_to_ceiling"]
    # four beds may grow the RSS by nothing (the allocator reuses what the set-up freed): the
    # figure is meaningful at the full run's beds; here the part ran and filled its rings
    assert summary["bytes_per_bed"] >= 0 and result["memory"]["datagrams"] > 0
    assert result["memory"]["history"] == 600  # the retention was really filled
    wire = summary["wire_per_bed_second"]
    assert wire["numerics"]["datagrams"] == 1.0 and 50 < wire["numerics"]["bytes"] < 200
    # the full workload carries every wave, the arterial line's and the capnogram's included
    assert wire["full"]["bytes"] > 10 * wire["numerics"]["bytes"]
    text = format_summary(result)
    assert "ceiling" in text and "settings that differ" in text
    assert "full workload: one bed sends" in text and "bytes (" in text
    assert sum(line.startswith("target ") for line in text.splitlines()) == 6, text
    for row in paced:  # the loop's lag and the collector's pauses, counted from the warm-up
        assert row["lag_max_ms"] is not None and row["gc_max_ms"] is not None, row
        gc = row["target"]["loop_lag"]["gc"]
        assert len(gc["collections"]) == 3 and gc["freezes"] == 0, "20 beds: never frozen"

    paths = write_outputs(result, tmp_path)
    assert json.loads(paths["json"].read_text())["summary"]["ceiling_per_s"] > 0
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
