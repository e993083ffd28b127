"""Each HL7 message the station and the engine exchange, built and read back with python-hl7:
ORU^R01 (PCD-01), ORU^R40 (PCD-04), ACK and ORA^R41, with hostile text escaped on the way."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import hl7_messages as hm
from vitalsim import codes
from vitalsim.protocol import NumericsMessage

T = 1795000000.25
reading_values = st.one_of(st.none(), st.floats(0, 300, allow_nan=False).map(
    lambda v: round(v, 2)))
hostile_text = st.text(alphabet=st.sampled_from("ab |^~\\&#é\r\n"), min_size=1, max_size=20)


@given(st.tuples(*[reading_values] * 7), hostile_text)
@settings(max_examples=100, deadline=None)
def test_oru_r01_round_trips(values, patient):
    reading = NumericsMessage(1003, 3, 9, T, 0, *values, 310.0)
    text = hm.vitals_message(reading, "6b0b-1", T + 1, patient.replace("\r", "").replace(
        "\n", "") or "x")
    msg = hm.parse(text)
    assert hm.message_type(msg) == "ORU^R01" and hm.control_id(msg) == "6b0b-1"
    assert str(msg.segment("MSH")(21)(1)(1)) == "IHE_PCD_001"
    assert msg.unescape(str(msg.segment("PID")(5))) == (
        patient.replace("\r", "").replace("\n", "") or "x")
    got = {o["code"]: o for o in hm.observations(msg)}
    for code in codes.CODES:
        value = getattr(reading, code.field)
        if value is None:
            assert code.mdc not in got
            continue
        obx = got[code.mdc]
        assert math.isclose(float(obx["value"]), value, abs_tol=0.005)
        assert (obx["name"], obx["sub_id"], obx["unit"], obx["device"]) == \
            (code.mdc_name, code.containment, code.mdc_unit_name, "1003")
        # the send time, for NIBP too: nibp_time is simulated seconds, not a time of day
        assert hm.parse_hl7_time(obx["time"]) == pytest.approx(T, abs=1e-3)


@pytest.mark.parametrize("event, phase, state", [("raised", "start", "active"),
                                                 ("acknowledged", "update", "active"),
                                                 ("cleared", "end", "inactive")])
def test_oru_r40_round_trips(event, phase, state):
    report = hm.AlarmReport("1003-77-4", event, 1003, 3, "SpO2 LOW", "high", 84.5, 90.0, T)
    msg = hm.parse(hm.alarm_message(report, "6b0b-2", T + 1, "Ann | O'Hara^x"))
    assert hm.message_type(msg) == "ORU^R40"
    assert str(msg.segment("MSH")(21)(1)(1)) == "IHE_PCD_ACM_001"
    assert str(msg.segment("OBR")(3)(1)(1)) == "1003-77-4"
    assert msg.unescape(str(msg.segment("PID")(5))) == "Ann | O'Hara^x"
    obx = {str(o(3)(1)(2)): o for o in msg.segments("OBX")}
    kind = obx["MDC_EVT_ALARM"]
    assert str(kind(5)(1)(1)) == "196670" and str(kind(5)(1)(2)) == "MDC_EVT_LO"
    assert str(kind(5)(1)(9)) == "SpO2 LOW"
    assert [str(r) for r in kind(8)] == ["PH", "SP", "L"]
    assert str(obx["MDC_PULS_OXIM_SAT_O2"](5)) == "84.5"
    assert str(obx["MDC_PULS_OXIM_SAT_O2"](7)) == ">90"
    assert str(obx["MDC_ATTR_EVENT_PHASE"](5)) == phase
    assert str(obx["MDC_ATTR_ALARM_STATE"](5)) == state
    assert str(obx["MDC_ATTR_ALARM_INACTIVATION_STATE"](5)) == (
        "alert-acknowledged" if event == "acknowledged" else "enabled")
    assert str(obx["MDC_ATTR_ALARM_PRIORITY"](5)) == "PH"


def test_a_technical_alarm_has_no_source_numeric_and_type_st():
    report = hm.AlarmReport("station-3-1.000-1", "raised", 1003, 3, "TELEMETRY LOST",
                            "medium", None, None, T, source="station")
    msg = hm.parse(hm.alarm_message(report, "6b0b-3", T))
    names = [str(o(3)(1)(2)) for o in msg.segments("OBX")]
    assert names[0] == "MDC_EVT_ALARM" and "MDC_PULS_OXIM_SAT_O2" not in names
    assert str(msg.segments("OBX")[0](5)(1)(2)) == "MDC_EVT_ALARM"
    assert str(msg.segments("OBX")[-1](5)) == "ST"


def test_a_new_parameter_needs_only_its_row_and_the_alarm_names_it():
    """#22's alarms may carry ``parameter``: the table finds the row by field or by label."""
    assert codes.alarm_source("NIBP SYS HIGH") == (codes.code_of("nibp_sys"), "high")
    assert codes.alarm_source("ANYTHING LOW", parameter="rr") == (codes.code_of("rr"), "low")
    assert codes.alarm_event_code("HR HIGH") == codes.MDC_EVT_HI
    assert codes.alarm_event_code("ECG LEAD OFF") == codes.MDC_EVT_ALARM
    with pytest.raises(KeyError, match="known"):
        codes.code_of("etco2x")


@pytest.mark.parametrize("answered, kind", [("ORU^R01", "ACK^R01"), ("ORU^R40", "ORA^R41")])
@pytest.mark.parametrize("code", ["AA", "AE", "AR"])
def test_answers_round_trip(answered, kind, code):
    if answered == "ORU^R01":
        received = hm.vitals_message(NumericsMessage(1001, 1, 1, T, 0, 70.0, 97.0, 14.0, 37.0),
                                     "6b0b-9", T)
    else:
        received = hm.alarm_message(hm.AlarmReport("1001-1-1", "raised", 1001, 1, "HR HIGH",
                                                   "high", 140.0, 130.0, T), "6b0b-9", T)
    answer = hm.parse(hm.ack_message(received, code, "disk | full", control_id="IE-1", at=T))
    assert hm.message_type(answer) == kind
    assert hm.ack_of(answer) == (code, "6b0b-9", "" if code == "AA" else "disk | full")
    assert str(answer.segment("MSH")(3)) == hm.RECEIVING_APP


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="must start with MSH"):
        hm.parse("PID|||1")
    with pytest.raises(ValueError, match="UTF-8"):
        hm.parse(b"MSH|^~\\&|\xff")
    with pytest.raises(ValueError, match="ack code"):
        hm.ack_message("MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.6", "OK", control_id="x", at=T)
    with pytest.raises(ValueError, match="not finite"):
        hm.hl7_time(math.nan)
