"""NEWS2 per observation set (server/observations.py): scored at each cuff reading, not every
second; staff entries replace what it assumed; the NIBP's time and cycle; patient names."""

from __future__ import annotations

import pytest

from server.observations import ObservationChart
from server.patients import patient_name, ward_names
from vitalsim.protocol import NumericsMessage


def reading(cuff: float | None, *, hr: float = 72.0, sent_at: float = 1000.0, rr: float = 14.0,
            spo2: float = 97.0) -> NumericsMessage:
    return NumericsMessage(1001, 1, 1, sent_at, 0, hr, spo2, rr, 36.9, 120.0, 80.0, 93.0, cuff)


def test_a_set_is_scored_at_each_new_cuff_reading_only():
    chart = ObservationChart()
    assert chart.on_numerics(1, reading(0.0, sent_at=1000.0))
    for second in range(1, 300):  # the HR wanders every second: no new set, no flicker
        assert not chart.on_numerics(1, reading(0.0, hr=72 + second % 60, sent_at=1000 + second))
    assert len(chart.sets(1)) == 1
    assert chart.on_numerics(1, reading(300.0, hr=131.0, sent_at=1300.0))
    latest = chart.latest(1)
    assert (latest["trigger"], latest["scores"]["pulse"], latest["at"]) == \
        ("cuff reading", 3, 1300.0)


def test_it_says_what_it_assumed_until_staff_enter_oxygen_and_consciousness():
    chart = ObservationChart()
    chart.on_numerics(1, reading(0.0))
    assert chart.latest(1)["assumed"] == ["air (no oxygen entered)", "alert (no ACVPU entered)"]
    obs = chart.enter(1, reading(0.0), at=1010.0, user="Ana", consciousness="C")
    assert obs["assumed"] == ["air (no oxygen entered)"] and obs["scores"]["consciousness"] == 3
    obs = chart.enter(1, reading(0.0), at=1020.0, user="Ana", supplemental_o2=True)
    assert (obs["assumed"], obs["consciousness"], obs["supplemental_o2"]) == ([], "C", True)
    chart.on_numerics(1, reading(300.0, sent_at=1300.0))
    assert chart.latest(1)["assumed"] == [], "entries hold for the next sets"
    on_demand = chart.enter(1, reading(300.0), at=1400.0, user="Ana")
    assert on_demand["trigger"] == "on demand"


@pytest.mark.parametrize("kw, why", [
    ({"consciousness": "alert"}, "expected one of A, C, V, P, U"),
    ({"supplemental_o2": 1}, "expected true or false")])
def test_bad_staff_entries_are_refused_by_name(kw, why):
    chart = ObservationChart()
    with pytest.raises(ValueError, match=why):
        chart.enter(1, reading(0.0), at=0.0, user="Ana", **kw)
    with pytest.raises(ValueError, match="has sent no observations"):
        chart.enter(2, None, at=0.0, user="Ana")


def test_the_nibp_time_is_the_first_datagram_with_the_reading_and_the_mode_follows_the_cycle():
    chart = ObservationChart()
    chart.cycles[1] = 300.0
    chart.on_numerics(1, reading(600.0, sent_at=5000.0))
    chart.on_numerics(1, reading(600.0, sent_at=5001.0))
    assert chart.nibp(1) == (5000.0, "auto 5 min")
    chart.on_numerics(1, reading(742.0, sent_at=5142.0))
    assert chart.nibp(1) == (5142.0, "manual")
    assert chart.nibp(2) == (None, None)


def test_patient_names_are_stable_per_bed_and_seed_and_unique_in_a_ward():
    assert patient_name(4, seed=1) == patient_name(4, seed=1)
    assert ward_names([1, 2, 3, 4], seed=1)[4] == ward_names(list(range(1, 40)), seed=1)[4]
    names = ward_names(list(range(1, 200)), seed=3)
    assert len(set(names.values())) == 199
    assert all(len(n.split()) == 2 for n in names.values())
