"""The hospital's MQTT topics and payloads, and the consumer's dedup: sans-I/O, no broker."""

import contextlib
import json
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.alarm_board import AlarmEntry
from server.hospital import HospitalConfig, HospitalView
from server.hospital_state import WARD_BLOCK, AlarmDedup, Hospital, Refusals
from server.mqtt_bridge import AlarmOutbox, MqttBridge, alarm_payload, parse_address
from server.mqtt_topics import (
    MAX_DEPTH,
    MAX_PAYLOAD,
    REASONS,
    TopicError,
    alarms_topic,
    check_ward,
    depth,
    status_payload,
    status_topic,
    vitals_topic,
)
from vitalsim.clock import VirtualClock
from vitalsim.protocol import AlarmMessage

NOW = 1_800_000_000.0  # the view's clock in these tests: after every time the messages carry


def _alarm(alarm_id="b1-7", bed=2, state="raised") -> tuple[AlarmMessage, AlarmEntry]:
    event = AlarmMessage(alarm_id, 1002, bed, "HR HIGH", "high", state, 150.0, 130.0, 100.0)
    entry = AlarmEntry(alarm_id, bed, "HR HIGH", "high", "active", 150.0, 130.0, 100.0, 100.0)
    return event, entry


def _hospital(*wards: str) -> Hospital:
    """A hospital view's state that has heard each ward's station say it is online."""
    h = Hospital()
    for ward in wards:
        h.receive(status_topic(ward), status_payload(True, NOW), NOW)
    return h


def test_vitals_alarm_and_status_round_trip():
    h = _hospital("icu")
    summary = {"bed": 3, "hr": 71.0, "spo2": 97.0, "stale": False}
    assert h.receive(vitals_topic("icu", 3), json.dumps(summary).encode(), NOW + 1.0) == \
        ("vitals", 1 * WARD_BLOCK + 3)
    assert h.beds[WARD_BLOCK + 3]["ward_bed"] == 3 and h.beds[WARD_BLOCK + 3]["ward"] == "icu"
    kind, shown = h.receive(alarms_topic("icu"), alarm_payload("icu", *_alarm()), NOW + 2.0)
    assert kind == "alarm" and shown["alarm_id"] == "icu/b1-7" and shown["ward_bed"] == 2
    kind, ward = h.receive(status_topic("icu"), status_payload(False, 3.0), NOW + 3.0)
    assert kind == "ward" and ward.online is False
    assert h.beds[WARD_BLOCK + 3]["stale"] is True  # an offline ward's values are not current


def test_two_wards_get_separate_bed_keys():
    h = _hospital("icu", "cardio")
    for ward in ("icu", "cardio"):
        h.receive(vitals_topic(ward, 1), b'{"bed": 1}', NOW + 0.0)
    assert sorted(h.beds) == [WARD_BLOCK + 1, 2 * WARD_BLOCK + 1]


def test_an_alarm_delivered_twice_is_taken_once():
    h = _hospital("icu")
    payload = alarm_payload("icu", *_alarm())
    assert h.receive(alarms_topic("icu"), payload, NOW + 0.0) is not None
    assert h.receive(alarms_topic("icu"), payload, NOW + 0.1) is None
    assert h.dedup.duplicates == 1 and len(h.alarms) == 1


def test_the_same_alarm_id_in_two_wards_is_two_alarms():
    h = _hospital("icu", "cardio")
    for ward in ("icu", "cardio"):
        assert h.receive(alarms_topic(ward), alarm_payload(ward, *_alarm()), NOW) is not None
    assert len(h.alarms) == 2


@given(st.lists(st.sampled_from([f"a{i}" for i in range(30)]), max_size=200))
def test_dedup_says_first_exactly_once_per_id(ids):
    dedup = AlarmDedup()
    firsts = [i for i in ids if dedup.first(i)]
    assert sorted(firsts) == sorted(set(ids))
    assert dedup.duplicates == len(ids) - len(set(ids))


def test_dedup_forgets_beyond_its_window():
    dedup = AlarmDedup(window=3)
    for i in range(4):
        assert dedup.first(str(i))
    assert len(dedup) == 3 and dedup.first("0")  # forgotten: the bound on memory


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("other/icu/alarms", b"{}", "not under hospital/"),
    ("hospital/i+u/alarms", b"{}", "ward name"),
    ("hospital/icu/bed/x/vitals", b'{"bed": 1}', "not a bed number"),
    ("hospital/icu/bed/2/vitals", b'{"bed": 3}', "payload says bed 3"),
    ("hospital/icu/bed/2/vitals", b"\xff\xfe", "not JSON"),
    ("hospital/icu/bed/2/vitals", b'{"bed": 2, "hr": NaN}', "not JSON"),
    ("hospital/icu/bed/2/vitals", b'{"bed": 2, "hr": 1e999}', "non-finite"),
    ("hospital/icu/bed/2/vitals", b"[1, 2]", "not a JSON object"),
    ("hospital/icu/bed/2/vitals", b'{"bed": 2, "x": "' + b"a" * MAX_PAYLOAD + b'"}', "over"),
    ("hospital/icu/alarms", b'{"entry": {"bed": 1}}', "alarm_id"),
    ("hospital/icu/station/status", b'{"online": "yes"}', "online"),
    ("hospital/icu/lights", b"{}", "not a hospital topic"),
])
def test_what_is_not_the_hospitals_is_refused_with_its_reason(topic, payload, reason):
    h = _hospital("icu")
    with pytest.raises(TopicError, match=reason):
        h.receive(topic, payload, NOW + 0.0)
    assert sum(h.rejected.values()) == 1 and not h.beds and not h.alarms
    # and the next good message is taken as if nothing had happened
    assert h.receive(vitals_topic("icu", 1), b'{"bed": 1}', NOW + 0.0) is not None


def test_a_ward_name_cannot_be_a_wildcard_or_a_level():
    for bad in ("a/b", "+", "#", "", "x" * 33):
        with pytest.raises(TopicError):
            check_ward(bad)


def test_broker_address_errors_name_what_is_wrong():
    assert parse_address("127.0.0.1:1883") == ("127.0.0.1", 1883)
    for bad in ("1883", "host:", "host:0", "host:70000", "host:x"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_address(bad)


def test_outbox_keeps_an_alarm_until_its_puback_and_counts_a_republish():
    box = AlarmOutbox()
    box.add("a", b"1")
    box.add("a", b"1")  # the same event again: still one
    box.sending("a")
    box.sending("a")  # after a reconnect, before its PUBACK
    assert list(box.pending) == ["a"]
    assert box.counters["published"] == 1 and box.counters["republished"] == 1
    box.acknowledged("a")
    assert not box.pending and box.counters["acknowledged"] == 1


def test_outbox_is_bounded_and_counts_what_it_dropped():
    box = AlarmOutbox(limit=2)
    for i in range(3):
        box.add(str(i), b"x")
    assert list(box.pending) == ["1", "2"] and box.counters["dropped"] == 1


def test_a_non_finite_value_is_never_published():
    event, entry = _alarm()
    entry.value = float("nan")
    with pytest.raises(ValueError):
        alarm_payload("icu", event, entry)


# -- no message ends the hospital view ----------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12)
_fields = st.sampled_from(["bed", "hr", "spo2", "flags", "rhythm", "news2", "sent_at", "online",
                           "at", "alarm_id", "entry", "patient", "stale", "priority"])
_payloads = st.one_of(
    st.binary(max_size=64),
    _json.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(_fields, _json, max_size=6).map(lambda d: json.dumps(d).encode()),
    st.builds(lambda bed, extra: json.dumps({"bed": bed, **extra}).encode(),
              st.integers(-2, 4), st.dictionaries(_fields, _json, max_size=4)))
_levels = st.one_of(st.sampled_from(["icu", "1", "²", "١", "bed", "+", "", "vitals", "x" * 40]),
                    st.text(max_size=6))
_topics = st.one_of(
    st.text(max_size=40),
    st.builds(lambda w, b: f"hospital/{w}/bed/{b}/vitals", _levels, _levels),
    st.builds(lambda w: f"hospital/{w}/alarms", _levels),
    st.builds(lambda w: f"hospital/{w}/station/status", _levels),
    st.lists(_levels, max_size=6).map(lambda ls: "/".join(["hospital", *ls])))


def _view() -> HospitalView:
    view = HospitalView(HospitalConfig(), clock=VirtualClock(NOW))
    view.take(status_topic("icu"), status_payload(True, NOW))
    return view


def _takes_the_next_real_message(view: HospitalView) -> None:
    before = view.hospital.received["vitals"]
    view.take(vitals_topic("icu", 1), json.dumps({"bed": 1, "hr": 72.0}).encode())
    assert view.hospital.received["vitals"] == before + 1
    assert view.hospital.beds[WARD_BLOCK + 1]["hr"] == 72.0


@example([("hospital/icu/bed/²/vitals", b'{"bed": 2}')])  # "²".isdigit(), and int("²") raises
@example([("hospital/icu/bed/2\n/vitals", b'{"bed": 2}')])
@given(st.lists(st.tuples(_topics, _payloads), max_size=12))
def test_no_message_makes_the_views_take_raise_and_the_next_real_one_is_taken(messages):
    view = _view()
    for topic, payload in messages:
        view.take(topic, payload)  # never raises, whatever the topic and payload
    _takes_the_next_real_message(view)


@pytest.mark.parametrize("level", ["²", "١", "2\n", "+2", " 2", "0x2"])
def test_a_bed_level_is_ascii_digits_only(level):
    with pytest.raises(TopicError, match="not a bed number"):
        Hospital().receive(f"hospital/icu/bed/{level}/vitals", b'{"bed": 2}', 0.0)


def test_a_ward_name_with_a_final_newline_is_refused():
    with pytest.raises(TopicError, match="ward name"):
        check_ward("icu\n")


def test_an_unexpected_error_in_one_message_is_counted_and_the_view_goes_on(monkeypatch, caplog):
    view = _view()
    real = view.hospital.receive

    def receive(topic, payload, now):
        if topic.endswith("/boom/vitals"):
            raise RuntimeError("a bug met by one message")
        return real(topic, payload, now)
    monkeypatch.setattr(view.hospital, "receive", receive)
    view.take("hospital/icu/bed/boom/vitals", b"{}")
    assert view.hospital.rejected["internal_error"] == 1
    assert "a bug met by one message" in caplog.text
    _takes_the_next_real_message(view)


# -- what the view passes on to browsers: every field of its type, in a plausible range ---------

GOOD_SUMMARY = {
    "bed": 2, "device_id": 1002, "alarm_connected": True, "stale": False, "hr": 72.0,
    "spo2": 97.0, "rr": 14.0, "temp": 36.9, "nibp_sys": 120.0, "nibp_dia": 80.0,
    "nibp_map": 93.0, "nibp_time": 300.0, "rhythm": "sinus", "pvc_per_min": 0, "etco2": None,
    "abp_sys": None, "abp_dia": None, "abp_map": None, "flags": ["artifact"],
    "sent_at": NOW - 1, "received_at": NOW - 0.5, "patient": "A. Patient",
    "scenario": "stable_adult", "nibp_at": NOW - 60, "nibp_mode": "auto 5 min",
    "news2": {"at": NOW - 60, "trigger": "cuff reading", "by": None, "total": 1, "band": "low",
              "complete": True, "missing": [], "scores": {"rr": 0, "hr": 0},
              "supplemental_o2": False, "consciousness": "A",
              "assumed": ["air (no oxygen entered)"],
              "values": {"rr": 14.0, "spo2": 97.0, "temp": 36.9, "nibp_sys": 120.0, "hr": 72.0}},
}
HUGE = int("9" * 4000)


def test_a_good_summary_is_passed_on_whole():
    h = _hospital("icu")
    assert h.receive(vitals_topic("icu", 2), json.dumps(GOOD_SUMMARY).encode(), NOW) is not None
    shown = h.beds[WARD_BLOCK + 2]
    assert {k: v for k, v in shown.items() if k not in ("bed", "ward", "ward_bed")} == \
        {k: v for k, v in GOOD_SUMMARY.items() if k != "bed"}


@pytest.mark.parametrize(("field", "value", "reason", "named"), [
    ("flags", "probe_off", "bad_field", "flags"),  # flags.some is not a function
    ("flags", ["probe_off", 3], "bad_field", "flags[1]"),
    ("flags", ["<img src=x>"], "bad_field", "flags[0]"),
    ("rhythm", 5, "bad_field", "rhythm"),
    ("rhythm", "torsade", "bad_field", "rhythm"),
    ("news2", {"assumed": "air"}, "bad_field", "news2.assumed"),
    ("news2", "high", "bad_field", "news2"),
    ("hr", -40, "out_of_range", "hr"),
    ("hr", "72", "bad_field", "hr"),
    ("hr", 1e308, "out_of_range", "hr"),
    ("hr", HUGE, "out_of_range", "hr"),
    ("spo2", 250, "out_of_range", "spo2"),
    ("temp", -300, "out_of_range", "temp"),
    ("device_id", HUGE, "out_of_range", "device_id"),
    ("device_id", True, "bad_field", "device_id"),
    ("pvc_per_min", 2.5, "bad_field", "pvc_per_min"),
    ("stale", "no", "bad_field", "stale"),
    ("sent_at", NOW + 10 * 365 * 86400, "out_of_range", "sent_at"),
    ("sent_at", -1, "out_of_range", "sent_at"),
    ("received_at", "yesterday", "bad_field", "received_at"),
    ("patient", {"name": "x"}, "bad_field", "patient"),
    ("patient", "x" * 1000, "out_of_range", "patient"),
    ("patient", "\ud800", "bad_field", "patient"),  # a lone surrogate: no UTF-8 for a browser
    ("nibp_at", NOW + 86400, "out_of_range", "nibp_at"),
])
def test_a_vitals_field_of_the_wrong_type_or_range_refuses_the_message(field, value, reason,
                                                                        named):
    h = _hospital("icu")
    payload = json.dumps({**GOOD_SUMMARY, field: value}).encode()
    with pytest.raises(TopicError, match=re.escape(named)) as refused:
        h.receive(vitals_topic("icu", 2), payload, NOW)
    assert refused.value.reason == reason and h.rejected == {reason: 1}
    assert not h.beds and h.received["vitals"] == 0


@pytest.mark.parametrize("bed", [True, HUGE, "2", 2.0])
def test_the_payloads_bed_must_be_the_topics_as_an_integer(bed):
    h = _hospital("icu")
    with pytest.raises(TopicError, match="payload says bed|bed must be an integer"):
        h.receive(vitals_topic("icu", 2 if bed is not True else 1),
                  json.dumps({**GOOD_SUMMARY, "bed": bed}).encode(), NOW)
    assert not h.beds


def test_fields_the_view_does_not_know_are_not_passed_on():
    h = _hospital("icu")
    h.receive(vitals_topic("icu", 2), json.dumps({**GOOD_SUMMARY, "html": "<b>x</b>"}).encode(),
              NOW)
    assert "html" not in h.beds[WARD_BLOCK + 2]


def _entry(**change) -> dict:
    return {**_alarm()[1].to_json(), "raised_at": NOW - 5, "updated_at": NOW - 5,
            "first_raised_at": NOW - 5, **change}


@pytest.mark.parametrize(("entry", "named"), [
    ({"bed": 2}, "entry has no 'alarm_id'"),  # was shown as "undefined ... Invalid Date"
    (_entry(raised_at="now"), "entry.raised_at"),
    (_entry(priority="urgent"), "entry.priority"),
    (_entry(state=None), "entry.state"),
    (_entry(condition=["HR HIGH"]), "entry.condition"),
    (_entry(bed=True), "entry.bed"),
    (_entry(value=1e308), "entry.value"),
    (_entry(raises=HUGE), "entry.raises"),
    (_entry(updated_at=NOW + 1e9), "entry.updated_at"),
    ({k: v for k, v in _entry().items() if k != "condition_present"},
     "entry has no 'condition_present'"),
])
def test_an_alarm_entry_needs_every_field_the_dashboard_reads(entry, named):
    h = _hospital("icu")
    payload = json.dumps({"schema": 1, "alarm_id": "x", "event": {}, "entry": entry}).encode()
    with pytest.raises(TopicError, match=re.escape(named)):
        h.receive(alarms_topic("icu"), payload, NOW)
    assert not h.alarms and sum(h.rejected.values()) == 1
    # a refused alarm does not use up its id: the real one after it is taken
    good = json.dumps({"schema": 1, "alarm_id": "x", "event": {}, "entry": _entry()}).encode()
    assert h.receive(alarms_topic("icu"), good, NOW) is not None


@pytest.mark.parametrize("status", [{"online": True, "at": "now"}, {"online": True, "at": 1e300},
                                    {"online": 1}])
def test_a_status_of_the_wrong_type_or_time_is_refused(status):
    h = Hospital()
    with pytest.raises(TopicError):
        h.receive(status_topic("icu"), json.dumps(status).encode(), NOW)
    assert not h.wards


def _the_dashboard_can_draw(message: str) -> None:
    """What app.js relies on in a snapshot, checked apart from the view's own checks."""
    snap = json.loads(message)
    for b in snap["beds"]:
        assert isinstance(b["bed"], int) and isinstance(b["ward"], str)
        assert isinstance(b.get("flags", []), list)
        assert all(isinstance(f, str) for f in b.get("flags", []))
        assert b.get("rhythm") is None or isinstance(b["rhythm"], str)
        n = b.get("news2")
        assert n is None or (isinstance(n, dict) and isinstance(n.get("assumed", []), list)
                             and isinstance(n.get("missing", []), list))
        for k in ("hr", "spo2", "rr", "temp", "nibp_sys", "etco2", "abp_sys", "sent_at"):
            v = b.get(k)
            assert v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                                 and abs(v) < 1e10)
    for a in snap["alarms"]:
        assert isinstance(a["alarm_id"], str) and isinstance(a["condition"], str)
        assert a["priority"] in ("high", "medium", "low") and isinstance(a["raised_at"], float)


@given(st.lists(st.tuples(st.sampled_from(sorted(GOOD_SUMMARY)), _json), min_size=1,
                max_size=4))
def test_whatever_a_forged_summary_holds_the_view_sends_what_the_dashboard_can_draw(changes):
    view = _view()
    view.take(vitals_topic("icu", 2), json.dumps({**GOOD_SUMMARY, **dict(changes)}).encode())
    view.take(alarms_topic("icu"), json.dumps({"alarm_id": "x", "entry": dict(changes)}).encode())
    _the_dashboard_can_draw(view.snapshot_message())


# -- nesting: only what can be sent out again is taken in ----------------------------------------

def _nested(levels: int, bed: int = 2, where: str = "extra") -> bytes:
    """A vitals payload whose deepest value is ``levels`` objects deep (the payload is 1),
    written out by hand (json.dumps itself would recurse)."""
    good = json.dumps({**GOOD_SUMMARY, "bed": bed, where: None})
    inner = '{"a":' * (levels - 1) + "1" + "}" * (levels - 1)
    return good.replace(f'"{where}": null', f'"{where}": {inner}').encode()


@pytest.mark.parametrize("where", ["extra", "news2"])
def test_a_payload_nested_too_deep_is_refused_on_intake(where):
    h = _hospital("icu")
    with pytest.raises(TopicError, match=f"nested more than {MAX_DEPTH} deep") as refused:
        h.receive(vitals_topic("icu", 2), _nested(975, where=where), NOW)
    assert refused.value.reason == "too_deep" and not h.beds


def test_nesting_up_to_the_limit_is_taken_and_the_snapshot_can_be_sent():
    view = _view()
    assert depth(json.loads(_nested(MAX_DEPTH))) == MAX_DEPTH
    view.take(vitals_topic("icu", 2), _nested(MAX_DEPTH))
    view.take(vitals_topic("icu", 3), _nested(MAX_DEPTH + 1, bed=3))
    assert sorted(view.hospital.beds) == [WARD_BLOCK + 2]
    assert view.hospital.rejected == {"too_deep": 1}
    json.loads(view.snapshot_message())  # every page's snapshot can still be made


def test_depth_counts_without_recursion():
    deep: object = []
    for _ in range(100_000):
        deep = [deep]
    assert depth(deep) == 100_001 and depth({"a": [1, {"b": 2}]}) == 3 and depth(5) == 0


# -- bounded: refusal reasons, logs, wards ------------------------------------------------------

@given(st.lists(st.tuples(_topics, _payloads), max_size=30))
def test_refusals_are_counted_under_a_fixed_set_of_reasons_with_short_messages(messages):
    view = _view()
    for topic, payload in messages:
        view.take(topic, payload)
    assert set(view.hospital.rejected) <= set(REASONS)
    assert all(len(m) <= Refusals.MESSAGE_CHARS for m in view.hospital.refusals.last.values())


def test_a_flood_of_one_reason_is_logged_once_a_minute_with_its_count(caplog):
    clock = VirtualClock(NOW)
    view = HospitalView(HospitalConfig(), clock=clock)
    with caplog.at_level("WARNING", logger="server.hospital"):
        for i in range(3000):
            view.take(f"hospital/icu/bed/{i % 9 + 1}/vitals", b"not json " + b"x" * 500)
            clock.advance(0.01)  # 30 s in all
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "not_json" in caplog.text and len(caplog.records[0].getMessage()) < 300
        clock.advance(31)
        view.take("hospital/icu/bed/1/vitals", b"still not json")
    assert len(caplog.records) == 2 and "and 2999 more not_json" in caplog.records[1].getMessage()
    assert view.hospital.rejected == {"not_json": 3001}


def test_a_ward_comes_with_its_stations_status_not_with_a_forged_message():
    h = Hospital(held_limit=3)
    assert h.receive(vitals_topic("forged", 1), b'{"bed": 1}', NOW) is None
    assert not h.wards and not h.beds and h.held == 1
    # its station's status brings the ward, and what waited for it
    assert h.receive(status_topic("forged"), status_payload(True, NOW), NOW)[0] == "ward"
    assert h.released == [("vitals", WARD_BLOCK + 1)] and h.held == 0
    # what waits is bounded: the oldest is refused when pushed out
    for i in range(5):
        h.receive(vitals_topic(f"w{i}", 1), b'{"bed": 1}', NOW)
    assert h.held == 3 and h.rejected == {"unknown_ward": 2} and len(h.wards) == 1


def test_wards_and_beds_are_capped_and_say_so():
    h = Hospital(max_wards=3, max_beds=2)
    for i in range(5):
        with contextlib.suppress(TopicError):
            h.receive(status_topic(f"w{i}"), status_payload(True, NOW), NOW)
    assert len(h.wards) == 3 and h.rejected == {"too_many_wards": 2}
    assert "one more than the 3" in h.refusals.last["too_many_wards"]
    for bed in (1, 2, 3):
        with contextlib.suppress(TopicError):
            h.receive(vitals_topic("w0", bed), json.dumps({"bed": bed}).encode(), NOW)
    assert len(h.beds) == 2 and h.rejected["too_many_beds"] == 1


# -- two stations claiming one ward --------------------------------------------------------------

def test_two_stations_claiming_one_ward_are_a_conflict_not_a_flap():
    h = Hospital()
    h.receive(status_topic("icu"), status_payload(True, NOW, "aaaa"), NOW)
    assert h.wards["icu"].to_json()["conflict"] is None
    h.receive(status_topic("icu"), status_payload(True, NOW, "bbbb"), NOW)
    assert h.wards["icu"].to_json()["conflict"] == ["aaaa", "bbbb"]
    # one of them stops (or its Last Will comes): the other still holds the ward, online
    h.receive(status_topic("icu"), status_payload(False, NOW, "aaaa"), NOW)
    assert h.wards["icu"].online is True and h.wards["icu"].conflict is None
    h.receive(status_topic("icu"), status_payload(False, NOW, "bbbb"), NOW)
    assert h.wards["icu"].online is False


def test_each_station_process_has_a_client_id_of_its_own():
    a, b = (MqttBridge(None, "127.0.0.1", 1883, ward="icu") for _ in range(2))  # type: ignore[arg-type]
    assert a.client_id != b.client_id and a.client_id.startswith("station-icu-")
    assert a.instance in a.client_id


def test_ward_without_mqtt_is_an_error_that_says_so(capsys):
    from server.__main__ import main
    with pytest.raises(SystemExit):
        main(["--ward", "icu"])
    assert "--ward icu names this station's ward in MQTT topics, and MQTT is off" in \
        capsys.readouterr().err
