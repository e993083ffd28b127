"""Receiver statistics against hand-computed expectations."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalsim.protocol.stats import SEQ_MOD, ReceiverStats


def feed(stats, items):
    return [stats.observe(seq, sent, recv) for seq, sent, recv in items]


def test_clean_stream_counts_everything_and_loses_nothing():
    s = ReceiverStats()
    feed(s, [(i, i * 1.0, i * 1.0 + 0.010) for i in range(100)])
    snap = s.snapshot()
    assert (snap["received"], snap["expected"], snap["lost"], snap["duplicates"],
            snap["reordered"]) == (100, 100, 0, 0, 0)
    assert snap["latency_p50_ms"] == pytest.approx(10.0)
    assert snap["jitter_ms"] == pytest.approx(0.0, abs=1e-9)


def test_gaps_are_losses_and_the_ratio_is_over_the_expected():
    s = ReceiverStats()
    feed(s, [(i, i, i) for i in range(10) if i not in (3, 4, 7)])
    assert (s.received, s.expected, s.lost) == (7, 10, 3)
    assert s.loss_ratio == pytest.approx(0.3)


def test_duplicates_and_reordering_are_told_apart():
    s = ReceiverStats()
    kinds = feed(s, [(0, 0, 0), (2, 2, 2), (1, 1, 2.1), (2, 2, 2.2), (3, 3, 3)])
    assert kinds == ["new", "new", "reordered", "duplicate", "new"]
    assert (s.duplicates, s.reordered, s.lost) == (1, 1, 0)


def test_rfc3550_interarrival_jitter_matches_a_hand_computation():
    # transit times 10, 30, 20, 20 ms -> |D| = 20, 10, 0 ms
    # J1 = 0 + (20 - 0)/16 = 1.25; J2 = 1.25 + (10 - 1.25)/16 = 1.796875;
    # J3 = 1.796875 + (0 - 1.796875)/16 = 1.684570...
    s = ReceiverStats()
    feed(s, [(0, 0.0, 0.010), (1, 1.0, 1.030), (2, 2.0, 2.020), (3, 3.0, 3.020)])
    assert s.jitter * 1000 == pytest.approx(1.796875 - 1.796875 / 16)


def test_sequence_numbers_wrap_around_without_a_burst_of_loss():
    s = ReceiverStats()
    seqs = [SEQ_MOD - 3, SEQ_MOD - 2, SEQ_MOD - 1, 0, 1, 2]
    kinds = feed(s, [(q, i, i) for i, q in enumerate(seqs)])
    assert kinds == ["new"] * 6
    assert (s.expected, s.lost) == (6, 0)


def test_a_restarted_device_starts_a_new_run_instead_of_counting_reorders():
    s = ReceiverStats()
    feed(s, [(i, i, i) for i in range(50_000, 50_100)])
    kinds = feed(s, [(0, 200, 200), (1, 201, 201), (3, 202, 202)])
    assert kinds[0] == "restart"
    assert s.restarts == 1 and s.reordered == 0
    assert (s.expected, s.lost) == (104, 1)


def test_late_datagrams_are_counted_by_time_in_flight():
    s = ReceiverStats(late_after=0.5)
    feed(s, [(0, 0.0, 0.1), (1, 1.0, 1.7), (2, 2.0, 2.2)])
    assert s.late == 1


def test_an_empty_tracker_reports_no_latency_rather_than_nan():
    snap = ReceiverStats().snapshot()
    assert snap["latency_p99_ms"] is None and snap["loss_ratio"] == 0.0


# -- the station's cheaper structures give what the ones they replaced gave ---------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1.0, 10.0, allow_nan=False), min_size=1, max_size=300),
       st.lists(st.floats(0, 100), min_size=1, max_size=4))
def test_partial_sort_percentiles_are_numpys_to_the_last_bit(values, qs):
    import numpy as np

    from vitalsim.protocol.stats import _percentiles

    arr = np.asarray(values, dtype=np.float64)
    assert _percentiles(arr, tuple(qs)) == [float(v) for v in np.percentile(arr, qs)]


def test_latency_percentiles_cover_only_the_latest_window_once_the_ring_wraps():
    import numpy as np

    s = ReceiverStats(latency_window=100)
    transits = [(i % 37) / 1000 + i / 1e6 for i in range(250)]  # 250 > the ring's 100
    feed(s, [(i, 0.0, t) for i, t in enumerate(transits)])
    expected = np.percentile(transits[-100:], (50, 90, 99))
    assert list(s.latency_percentiles().values()) == [float(v) for v in expected]
