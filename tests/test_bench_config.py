"""The capacity benchmark measures the station that ``python -m server`` runs: the same push
policy, receive buffer and retention. What it must set otherwise (ports, the journal's place,
the provisioned ward) is named in one table and printed beside the results."""

from dataclasses import fields

from bench.run import BenchConfig, config_differences, format_differences
from bench.targets import BENCH_OVERRIDES, station_config
from server.__main__ import parse_args
from server.__main__ import station_config as cli_station_config


def test_the_benchmark_runs_the_command_lines_station_except_what_it_prints():
    cfg = BenchConfig()
    bench = station_config(cfg.options("coalesced"), ":memory:")
    cli = cli_station_config(parse_args([]))
    differ = {f.name for f in fields(bench) if getattr(bench, f.name) != getattr(cli, f.name)}
    assert differ <= set(BENCH_OVERRIDES), "a setting differs that the benchmark does not name"
    for name in ("push_hz", "push_budget", "push_burst", "udp_receive_buffer", "history_seconds",
                 "wave_history_seconds", "coalesce", "client_send_buffer"):
        assert getattr(bench, name) == getattr(cli, name), name
    printed = format_differences(cfg)
    assert set(config_differences(cfg)) == differ
    for name in differ:
        assert f"{name}=" in printed, f"{name} differs and is not printed"
    for operator in cli.operators or ():
        assert operator.token not in printed, "an operator's token in the benchmark's output"


def test_the_naive_design_differs_only_in_coalescing_and_says_so():
    cfg = BenchConfig()
    ours, naive = (station_config(cfg.options(d), ":memory:") for d in ("coalesced", "naive"))
    assert {f.name for f in fields(ours) if getattr(ours, f.name) != getattr(naive, f.name)} \
        == {"coalesce"}
    assert "coalesce=False" in format_differences(cfg)
