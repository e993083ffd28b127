"""The alarm board's rules as IEC 60601-1-8 means them, on numbers (the board is pure: time is
passed in): acknowledge keeps a steady sign while the condition lasts and the alarm sounds again
after ``resound_after``; one entry per bed and condition with its worst value; an audio pause per
bed; a silenced or acknowledged red alarm never sorts below an active yellow one."""

from __future__ import annotations

import pytest

from server.alarm_board import AlarmBoard, parameter_of
from vitalsim.protocol import AlarmMessage, NumericsMessage


def event(alarm_id: str, state: str, *, priority: str = "medium", bed: int = 4,
          condition: str = "HR HIGH", t: float = 0.0, value: float = 134.0,
          limit: float = 120.0) -> AlarmMessage:
    return AlarmMessage(alarm_id, 1000 + bed, bed, condition, priority, state, value, limit, t)


def numerics(bed: int = 4, hr: float = 140.0, spo2: float = 95.0) -> NumericsMessage:
    return NumericsMessage(1000 + bed, bed, 1, 0.0, 0, hr, spo2, 16.0, 37.0)


def test_acknowledging_a_present_condition_keeps_it_shown_silent_then_it_sounds_again():
    board = AlarmBoard(resound_after=60.0)
    board.apply_event(event("1004-1", "raised", t=100.0))
    entry = board.acknowledge("1004-1", "Nurse Adaeze", 110.0)
    assert (entry.state, entry.condition_present, entry.resound_at) == \
        ("acknowledged", True, 170.0), "acknowledge stops the sound, not the sign"
    assert board.expire(169.9) == ([], [])
    again, _ = board.expire(170.0)
    assert [(e.alarm_id, e.state, e.acked_by) for e in again] == [("1004-1", "active", None)]
    assert board.expire(400.0) == ([], []), "sounds again once, then waits for a nurse"


def test_an_acknowledged_alarm_whose_condition_ends_is_cleared_and_does_not_sound_again():
    board = AlarmBoard(resound_after=60.0)
    board.apply_event(event("1004-1", "raised", t=0.0))
    board.acknowledge("1004-1", "n", 10.0)
    assert board.apply_event(event("1004-1c", "cleared", t=20.0, value=110.0)).state == "cleared"
    assert board.expire(1000.0) == ([], [])


def test_without_resound_an_acknowledged_alarm_stays_acknowledged_while_present():
    board = AlarmBoard(resound_after=None)
    board.apply_event(event("1004-1", "raised"))
    board.acknowledge("1004-1", "n", 1.0)
    assert board.expire(10_000.0) == ([], [])
    assert board.get("1004-1").state == "acknowledged"


def test_re_raises_fold_into_one_entry_that_each_episode_reopens():
    board = AlarmBoard()
    for n in range(4):  # four episodes of HR HIGH over a sepsis hour
        board.apply_event(event(f"1004-{n}", "raised", t=n * 900.0, value=125.0 + n))
        board.apply_event(event(f"1004-{n}c", "cleared", t=n * 900.0 + 300, value=110.0))
    assert len(board.entries()) == 1
    entry = board.entries()[0]
    assert (entry.alarm_id, entry.raises, entry.state, entry.raised_at) == \
        ("1004-0", 4, "cleared", 2700.0)
    board.apply_event(event("1004-9", "raised", t=4000.0))
    assert board.get("1004-9") is entry and entry.state == "active"
    assert board.acknowledge("1004-9", "n", 4001.0) is entry, "either id acknowledges it"


def test_a_resent_raise_is_not_counted_twice():
    board = AlarmBoard()
    board.apply_event(event("1004-1", "raised"))
    assert board.apply_event(event("1004-1", "raised")).raises == 1


def test_the_entry_keeps_the_worst_value_from_events_and_numerics_per_episode():
    board = AlarmBoard()
    board.apply_event(event("s1", "raised", condition="SpO2 LOW", value=89.0, limit=90.0))
    for spo2 in (86.0, 82.0, 84.0):
        board.observe(4, numerics(spo2=spo2))
    entry = board.get("s1")
    assert (entry.parameter, entry.direction, entry.value, entry.worst) == \
        ("spo2", "low", 89.0, 82.0), "the onset value stays; the worst is the lowest seen"
    board.apply_event(event("h1", "raised", value=130.0))
    board.observe(4, numerics(hr=151.0))
    board.observe(4, numerics(hr=140.0))
    assert board.get("h1").worst == 151.0, "HIGH: the highest is the worst"
    board.apply_event(event("s1c", "cleared", condition="SpO2 LOW", value=93.0, limit=90.0))
    board.observe(4, numerics(spo2=70.0))
    assert entry.worst == 82.0, "a cleared condition's worst no longer moves"
    board.apply_event(event("s2", "raised", condition="SpO2 LOW", value=88.0, limit=90.0))
    assert entry.worst == 88.0, "a new episode starts its own worst"


def test_observe_for_a_bed_without_alarms_changes_nothing():
    board = AlarmBoard()
    board.apply_event(event("h1", "raised", bed=1))
    board.observe(2, numerics(bed=2, hr=200.0))
    assert board.get("h1").worst == 134.0


def test_the_parameter_comes_from_the_event_or_else_from_the_condition_label():
    assert [parameter_of(c) for c in ("HR HIGH", "SpO2 LOW", "NIBP SYS HIGH", "RR LOW",
                                      "TEMP HIGH", "VF", "TELEMETRY LOST")] == \
        ["hr", "spo2", "nibp_sys", "rr", "temp", None, None]
    board = AlarmBoard()
    vf = board.apply_event(event("v1", "raised", priority="high", condition="VF", value=None,
                                 limit=None))
    assert (vf.parameter, vf.worst) == (None, None)


def test_a_silenced_or_acknowledged_high_alarm_sorts_above_active_medium_ones():
    board = AlarmBoard()
    board.apply_event(event("m1", "raised", priority="medium", bed=1, t=5.0))
    board.apply_event(event("m2", "raised", priority="medium", bed=2, t=6.0))
    board.apply_event(event("h1", "raised", priority="high", bed=3, condition="SpO2 LOW",
                            t=1.0, value=75.0, limit=80.0))
    board.apply_event(event("h2", "raised", priority="high", bed=5, condition="SpO2 LOW",
                            t=2.0, value=75.0, limit=80.0))
    board.silence("h1", "n", 7.0, 120.0)
    board.acknowledge("h2", "n", 7.0)
    assert [e.alarm_id for e in board.entries()] == ["h1", "h2", "m2", "m1"]
    board.apply_event(event("m1c", "cleared", priority="medium", bed=1, t=8.0))
    assert board.entries()[-1].alarm_id == "m1", "cleared entries go last"


def test_an_audio_pause_runs_per_bed_and_ends_on_time_without_touching_the_entries():
    board = AlarmBoard()
    board.apply_event(event("1004-1", "raised", priority="high"))
    until = board.pause_bed(4, "Nurse Adaeze", 50.0, 120.0)
    assert until == 170.0 and board.paused_until(4, 100.0) == 170.0
    assert board.paused_until(3, 100.0) is None
    assert board.get("1004-1").state == "active", "the sign goes on during a pause"
    assert board.pauses_json(110.0) == [{"bed": 4, "until": 170.0, "seconds": 60.0,
                                         "by": "Nurse Adaeze"}]
    assert board.expire(169.0) == ([], [])
    assert board.expire(170.0) == ([], [4])
    assert board.paused_until(4, 170.0) is None and board.pauses_json(170.0) == []
    board.pause_bed(4, "n", 200.0, 60.0)
    board.pause_bed(4, "n", 210.0, 0.0)
    assert board.pauses == {}, "a pause of 0 s ends one"


def test_a_latched_high_alarm_sounds_after_a_silence_even_with_its_condition_gone():
    board = AlarmBoard()
    board.apply_event(event("1004-1", "raised", priority="high"))
    board.silence("1004-1", "n", 0.0, 10.0)
    board.apply_event(event("1004-1c", "cleared", priority="high", t=5.0))
    assert [e.state for e in board.expire(10.0)[0]] == ["active"]
    assert board.acknowledge("1004-1", "n", 11.0).state == "cleared"


def test_the_history_lists_raises_clears_and_actions_newest_first():
    board = AlarmBoard(resound_after=30.0)
    board.apply_event(event("1004-1", "raised", t=0.0))
    board.acknowledge("1004-1", "Nurse Adaeze", 5.0)
    board.expire(35.0)
    board.apply_event(event("1004-1c", "cleared", t=40.0))
    board.pause_bed(2, "n", 41.0, 60.0)
    assert [(h["at"], h["bed"], h["what"], h["user"]) for h in board.history_json()] == [
        (41.0, 2, "audio paused", "n"), (40.0, 4, "cleared", None),
        (35.0, 4, "sounding again", None), (5.0, 4, "acknowledged", "Nurse Adaeze"),
        (0.0, 4, "raised", None)]
    assert [h["what"] for h in board.history_json(bed=2)] == ["audio paused"]


@pytest.mark.parametrize("seconds", [30.0, 120.0])
def test_the_resound_time_is_the_configured_one(seconds):
    board = AlarmBoard(resound_after=seconds)
    board.apply_event(event("1004-1", "raised"))
    board.acknowledge("1004-1", "n", 0.0)
    assert board.expire(seconds - 0.5)[0] == [] and len(board.expire(seconds)[0]) == 1
