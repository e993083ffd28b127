"""The station's alarm state, piece by piece: the board's lifecycle (latching, acknowledging,
silencing), the technical alarms (raised, cleared, rate-limited, replayed after a restart), and
the journal's exactly-once, asserted on its own duplicate count."""

from server.alarm_board import AlarmBoard
from server.alarm_source import station_alarm_id
from server.beds import BedState
from server.technical import TechnicalAlarms
from vitalsim.flags import Flags
from vitalsim.protocol import AlarmMessage, NumericsMessage


def event(alarm_id: str, state: str, *, priority: str = "high", bed: int = 1,
          condition: str = "HR HIGH", t: float = 0.0, value: float = 140.0) -> AlarmMessage:
    return AlarmMessage(alarm_id, 1000 + bed, bed, condition, priority, state, value, 130.0, t)


# -- AlarmBoard ------------------------------------------------------------------------------


def test_a_high_priority_alarm_latches_until_acknowledged():
    board = AlarmBoard()
    board.apply_event(event("1001-9-1", "raised"))
    entry = board.apply_event(event("1001-9-1c", "cleared", t=5.0, value=120.0))
    assert (entry.state, entry.condition_present) == ("active", False), "latched"
    entry = board.acknowledge("1001-9-1", "Dr Osei", 6.0)
    assert (entry.state, entry.acked_by) == ("cleared", "Dr Osei")


def test_a_medium_alarm_clears_with_its_condition_and_an_acknowledged_one_stays_acknowledged():
    board = AlarmBoard()
    board.apply_event(event("1001-9-1", "raised", priority="medium"))
    assert board.apply_event(event("1001-9-1c", "cleared", priority="medium")).state == "cleared"
    board.apply_event(event("1001-9-2", "raised"))
    assert board.acknowledge("1001-9-2", "n", 1.0).state == "acknowledged"
    assert board.apply_event(event("1001-9-2c", "cleared")).state == "cleared", \
        "acknowledged, then the condition ended: nothing left to show"


def test_a_silence_ends_with_the_alarm_sounding_again_only_if_still_present_or_latched():
    board = AlarmBoard()
    board.apply_event(event("1001-9-1", "raised", priority="medium"))
    board.apply_event(event("1001-9-2", "raised", condition="SpO2 LOW"))
    board.silence("1001-9-1", "n", 0.0, 10.0)
    board.silence("1001-9-2", "n", 0.0, 10.0)
    board.apply_event(event("1001-9-2c", "cleared", condition="SpO2 LOW"))  # high: latched
    assert board.expire_silences(9.9) == []
    again = {e.alarm_id: e.state for e in board.expire_silences(10.0)}
    assert again == {"1001-9-1": "active", "1001-9-2": "active"}
    board.apply_event(event("1001-9-1c", "cleared", priority="medium"))
    try:
        board.silence("1001-9-1", "n", 11.0, 5.0)
    except ValueError as exc:
        assert "already cleared" in str(exc)
    else:
        raise AssertionError("a cleared alarm cannot be silenced")


def test_the_board_lists_high_priority_first_then_newest_and_a_re_raise_folds_into_its_entry():
    board = AlarmBoard()
    board.apply_event(event("a", "raised", priority="low", condition="TEMP HIGH", t=3.0))
    board.apply_event(event("b", "raised", priority="high", t=1.0))
    board.apply_event(event("c", "raised", priority="high", condition="SpO2 LOW", t=2.0))
    assert [e.alarm_id for e in board.entries()] == ["c", "b", "a"]
    board.apply_event(event("bc", "cleared", priority="high", t=3.5))
    board.acknowledge("b", "n", 3.6)
    board.apply_event(event("d", "raised", priority="high", t=4.0))  # HR HIGH again, new id
    assert board.get("d") is board.get("b"), "one entry per bed and condition"
    assert (board.get("d").state, board.get("d").raises) == ("active", 2)
    assert [e.alarm_id for e in board.entries("active")] == ["b", "c", "a"]


# -- TechnicalAlarms -------------------------------------------------------------------------


def bed_heard(bed: int, at: float, flags: int = 0) -> BedState:
    state = BedState(bed, 1000 + bed, history_len=4)
    state.update(NumericsMessage(1000 + bed, bed, 1, at, flags, 72.0, 97.0, 14.0, 36.8), at)
    return state


def test_technical_alarms_raise_when_a_condition_appears_and_clear_when_it_ends():
    tech = TechnicalAlarms(telemetry_timeout=10.0)
    bed = bed_heard(1, 0.0, flags=Flags.PROBE_OFF)
    bed.alarm_link_seen, bed.alarm_connected = True, True
    raised = tech.check([bed], 5.0)
    assert [(e.condition, e.state) for e in raised] == [("SPO2 PROBE OFF", "raised")]
    bed.update(NumericsMessage(1001, 1, 2, 6.0, 0, 72.0, 97.0, 14.0, 36.8), 6.0)
    bed.alarm_connected = False
    events = tech.check([bed], 17.0)
    assert {(e.condition, e.state) for e in events} == {
        ("SPO2 PROBE OFF", "cleared"), ("TELEMETRY LOST", "raised"),
        ("ALARM LINK LOST", "raised")}
    cleared = [e for e in events if e.state == "cleared"][0]
    assert cleared.alarm_id == raised[0].alarm_id + "c", "a clear names the raise it ends"
    bed.update(NumericsMessage(1001, 1, 3, 18.0, 0, 72.0, 97.0, 14.0, 36.8), 18.0)
    bed.alarm_connected = True
    assert {(e.condition, e.state) for e in tech.check([bed], 18.5)} == {
        ("TELEMETRY LOST", "cleared"), ("ALARM LINK LOST", "cleared")}
    assert tech.check([bed], 19.0) == [] and tech.active == {}


def test_a_flood_of_technical_alarms_is_raised_a_bounded_number_per_second_and_none_is_lost():
    tech = TechnicalAlarms(telemetry_timeout=1.0, raises_per_second=20)
    beds = [bed_heard(b, 0.0) for b in range(1, 51)]
    per_check = [len(tech.check(beds, 2.0 + i)) for i in range(4)]
    assert per_check == [20, 20, 10, 0]
    assert len(tech.active) == 50 and tech.deferred == 30 + 10


def test_replayed_technical_alarms_stay_until_the_station_can_judge_them_then_clear():
    tech = TechnicalAlarms(telemetry_timeout=10.0)
    lost_id, link_id = station_alarm_id(1, 5.0, 1), station_alarm_id(1, 5.0, 2)
    gone_id = station_alarm_id(2, 5.0, 3)
    lost = event(lost_id, "raised", priority="medium", condition="TELEMETRY LOST")
    link = event(link_id, "raised", priority="medium", condition="ALARM LINK LOST")
    gone = event(gone_id, "raised", priority="medium", condition="TELEMETRY LOST", bed=2)
    for e in (lost, link, gone, event(gone_id + "c", "cleared", priority="medium",
                                      condition="TELEMETRY LOST", bed=2)):
        tech.replay(e)
    assert set(tech.active) == {(1, "TELEMETRY LOST"), (1, "ALARM LINK LOST")}
    unheard = BedState(1, 1001, history_len=4)  # restarted: nothing heard from bed 1 yet
    assert tech.check([unheard], 100.0) == [], "cannot judge yet: stays raised"
    fresh = bed_heard(1, 100.0)
    fresh.alarm_link_seen = fresh.alarm_connected = True
    events = tech.check([fresh], 100.5)
    assert {(e.alarm_id, e.state) for e in events} == {
        (lost_id + "c", "cleared"), (link_id + "c", "cleared")}


def test_a_device_restart_ends_what_its_earlier_boot_raised_and_a_red_one_stays_latched():
    board = AlarmBoard()
    old, new = 1_796_000_000_000_000, 1_796_000_900_000_000
    board.apply_event(AlarmMessage(f"1001-{old}-1", 1001, 1, "HR HIGH", "medium", "raised",
                                   142.0, 120.0, 10.0))
    board.apply_event(AlarmMessage(f"1001-{old}-2", 1001, 1, "ASYSTOLE", "high", "raised",
                                   0.0, None, 11.0))
    board.apply_event(AlarmMessage(f"1002-{old}-1", 1002, 2, "SpO2 LOW", "medium", "raised",
                                   85.0, 90.0, 12.0))
    assert board.device_restarted(1, old, 20.0) == [], "the same boot: nothing ends"
    ended = board.device_restarted(1, new, 30.0)
    assert {e.condition for e in ended} == {"HR HIGH", "ASYSTOLE"}
    hr, asystole = (board.get(f"1001-{old}-{n}") for n in (1, 2))
    assert (hr.state, hr.condition_present) == ("cleared", False)
    # high priority latches: shown until a nurse acknowledges it, its condition ended
    assert (asystole.state, asystole.condition_present) == ("active", False)
    assert board.get(f"1002-{old}-1").condition_present, "another bed's device did not restart"
    assert [h["what"] for h in board.history if h["at"] == 30.0] == \
        ["ended: device restarted"] * 2
    # the new boot raises what is present now: a new episode of the same entry
    board.apply_event(AlarmMessage(f"1001-{new}-1", 1001, 1, "HR HIGH", "medium", "raised",
                                   131.0, 120.0, 31.0))
    assert hr.condition_present and hr.state == "active" and hr.boot == new
    assert board.device_restarted(1, new, 32.0) == []


def test_within_a_priority_and_state_a_present_condition_sorts_before_a_latched_one():
    board = AlarmBoard()
    boot = 1_796_000_000_000_000
    for n, (condition, t) in enumerate((("VT", 10.0), ("VF", 20.0), ("APNOEA", 5.0)), 1):
        board.apply_event(AlarmMessage(f"1001-{boot}-{n}", 1001, 1, condition, "high", "raised",
                                       None, None, t))
    board.apply_event(AlarmMessage(f"1001-{boot}-1c", 1001, 1, "VT", "high", "cleared",
                                   None, None, 21.0))  # VT became VF: VT latches
    assert [e.condition for e in board.entries()] == ["VF", "APNOEA", "VT"]


def test_a_straggling_raise_from_an_earlier_boot_is_ended_by_the_next_datagram():
    board = AlarmBoard()
    old, new = 1_796_000_000_000_000, 1_796_000_900_000_000
    assert board.device_restarted(1, new, 10.0) == []  # the new boot's telemetry, seen first
    board.apply_event(AlarmMessage(f"1001-{old}-7", 1001, 1, "SpO2 LOW", "medium", "raised",
                                   85.0, 90.0, 11.0))  # then a raise its earlier boot sent
    assert [e.condition for e in board.device_restarted(1, new, 12.0)] == ["SpO2 LOW"]
    assert board.device_restarted(1, new, 13.0) == []
