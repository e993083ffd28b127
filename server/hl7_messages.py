"""HL7 v2.6 messages of the station's outbound interface, built and read with python-hl7.

- PCD-01 ``ORU^R01``: a bed's numerics, one OBX per numeric, OBX-3 its MDC code, OBX-4 its
  place in the monitor (MDS.VMD.channel.metric), OBX-6 its MDC unit, OBX-18 the device.
- PCD-04 ``ORU^R40``: one alarm event (raised, acknowledged, cleared), in the Alarm
  Communication Management shape: the event, its source numeric, phase, state, inactivation
  state, priority and type, each an OBX.
- the receiver's answers: ``ACK^R01`` and ``ORA^R41``, whose MSA-1 is AA, AE or AR and MSA-2
  the control id (MSH-10) of the message answered.

Every value goes in through python-hl7's containers and is escaped there (``|`` in a patient's
name is ``\\F\\`` on the wire), never by pasting strings. The codes come from
:mod:`vitalsim.codes` and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import hl7

from vitalsim import codes
from vitalsim.protocol import NumericsMessage

SENDING_APP = "VITALSIM_CS"  # the central station
SENDING_FACILITY = "WARD"
RECEIVING_APP = "HOSPITAL_IE"  # the hospital's interface engine
RECEIVING_FACILITY = "HOSPITAL"
DEVICE_NAMESPACE = "VITALSIM"  # OBX-18: device id ^ this namespace
#: MSH-21, the IHE profile each message claims (IHE PCD TF-2)
PCD01_PROFILE = ("IHE_PCD_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.1.1", "ISO")
PCD04_PROFILE = ("IHE_PCD_ACM_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.4.4", "ISO")
ACK_CODES = ("AA", "AE", "AR")


def hl7_time(t: float) -> str:
    """An epoch time as HL7's DTM, to the millisecond, in UTC."""
    if not math.isfinite(t):
        raise ValueError(f"time {t!r} is not finite")
    return datetime.fromtimestamp(t, UTC).strftime("%Y%m%d%H%M%S.%f")[:-3] + "+0000"


def parse_hl7_time(text: str) -> float:
    """HL7's DTM (as :func:`hl7_time` writes it, or to the second) back to an epoch time."""
    return datetime.strptime(text, "%Y%m%d%H%M%S.%f%z" if "." in text else "%Y%m%d%H%M%S%z"
                             ).timestamp()


class _Builder:
    """One message under construction: segments whose fields are set by number, each value
    escaped by python-hl7."""

    def __init__(self) -> None:
        self.message = hl7.Message("\r", [], separators="\r|~^&")

    def segment(self, name: str, fields: dict[int, str | tuple[str, ...]]) -> None:
        seg = self.message.create_segment([self.message.create_field([name])])
        for number in sorted(fields):
            value = fields[number]
            parts = (value,) if isinstance(value, str) else value
            for component, part in enumerate(parts, start=1):
                if part != "":
                    seg.assign_field(self.message.escape(part), number, 1, component)
        self.message.append(seg)

    def msh(self, kind: tuple[str, str, str], control_id: str, at: float,
            profile: tuple[str, ...] | None, *, sender: tuple[str, str] = (SENDING_APP,
            SENDING_FACILITY), receiver: tuple[str, str] = (RECEIVING_APP,
            RECEIVING_FACILITY)) -> None:
        seg = self.message.create_segment([self.message.create_field(["MSH"])])
        seg.assign_field("|", 1)
        seg.assign_field("^~\\&", 2)
        self.message.append(seg)
        fields: dict[int, str | tuple[str, ...]] = {
            3: sender[0], 4: sender[1], 5: receiver[0], 6: receiver[1], 7: hl7_time(at),
            9: kind, 10: control_id, 11: "P", 12: "2.6", 15: "AL", 16: "NE",
            18: "UNICODE UTF-8"}
        if profile is not None:
            fields[21] = profile
        for number, value in fields.items():
            parts = (value,) if isinstance(value, str) else value
            for component, part in enumerate(parts, start=1):
                seg.assign_field(part if number == 2 else self.message.escape(part),
                                 number, 1, component)

    def patient(self, bed: int, patient: str | None) -> None:
        self.segment("PID", {3: (f"BED{bed}", "", "", SENDING_FACILITY, "PI"),
                             5: patient or f"Bed {bed}"})
        self.segment("PV1", {2: "I", 3: (SENDING_FACILITY, "", str(bed))})

    def text(self) -> str:
        return str(self.message)


def _obx(b: _Builder, n: int, kind: str, code: tuple[int, str], sub_id: str, value,
         unit: tuple[int, str] | None, status: str, at: float | None, device: int,
         *, reference: str = "", flags: tuple[str, ...] = ()) -> None:
    fields: dict[int, str | tuple[str, ...]] = {
        1: str(n), 2: kind, 3: (str(code[0]), code[1], "MDC"), 4: sub_id, 11: status,
        18: (str(device), DEVICE_NAMESPACE)}
    if value is not None:
        fields[5] = value
    if unit is not None:
        fields[6] = (str(unit[0]), unit[1], "MDC")
    if reference:
        fields[7] = reference
    if at is not None:
        fields[14] = hl7_time(at)
    b.segment("OBX", fields)
    if flags:  # OBX-8 repeats: priority ~ type ~ abnormality
        obx = b.message[-1]
        obx.assign_field(flags[0], 8, 1, 1)
        for i, flag in enumerate(flags[1:], start=2):
            obx.assign_field(flag, 8, i, 1)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def vitals_message(reading: NumericsMessage, control_id: str, at: float,
                   patient: str | None = None) -> str:
    """PCD-01 ``ORU^R01`` of one bed's latest numerics (a numeric not available, such as a
    probe off or no cuff reading yet, has no OBX)."""
    b = _Builder()
    b.msh(("ORU", "R01", "ORU_R01"), control_id, at, PCD01_PROFILE)
    b.patient(reading.bed, patient)
    b.segment("OBR", {1: "1", 2: (control_id, SENDING_APP), 3: (control_id, SENDING_APP),
                      4: ("182777000", "monitoring of patient", "SCT"),
                      7: hl7_time(reading.sent_at)})
    n = 1
    _obx(b, n, "", (69965, "MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS"), "1.0.0.0", None, None, "X",
         None, reading.device_id)
    nibp_done = False
    for code in codes.CODES:
        value = getattr(reading, code.field, None)
        if value is None or not math.isfinite(value):
            continue
        if code.panel is not None and not nibp_done:
            n += 1
            _obx(b, n, "", codes.NIBP_GROUP, code.containment.rsplit(".", 1)[0], None, None,
                 "X", reading.sent_at, reading.device_id)
            nibp_done = True
        n += 1
        # every OBX-14 is the reading's send time: the cuff's own nibp_time is in simulated
        # seconds (docs/PROTOCOL.md), not a time of day, and is not carried
        _obx(b, n, "NM", (code.mdc, code.mdc_name), code.containment, _number(value),
             (code.mdc_unit, code.mdc_unit_name), "R", reading.sent_at, reading.device_id)
    return b.text()


@dataclass(frozen=True)
class AlarmReport:
    """One PCD-04 alarm event: what :func:`alarm_message` needs, from the journal."""

    alarm_id: str  # the alarm's identity: the id of the event that raised it
    event: str  # raised | acknowledged | cleared
    device_id: int
    bed: int
    condition: str
    priority: str
    value: float | None
    limit: float | None
    at: float
    source: str = "device"  # device | station (technical)
    parameter: str | None = None
    latched: bool = False  # cleared, but a high priority alarm stays shown until acknowledged


def alarm_message(report: AlarmReport, control_id: str, at: float,
                  patient: str | None = None) -> str:
    """PCD-04 ``ORU^R40`` of one alarm event."""
    b = _Builder()
    b.msh(("ORU", "R40", "ORU_R40"), control_id, at, PCD04_PROFILE)
    b.patient(report.bed, patient)
    b.segment("OBR", {1: "1", 2: (report.alarm_id, SENDING_APP),
                      3: (report.alarm_id, SENDING_APP),
                      4: (str(codes.MDC_EVT_ALARM[0]), codes.MDC_EVT_ALARM[1], "MDC"),
                      7: hl7_time(report.at)})
    source, side = codes.alarm_source(report.condition, report.parameter)
    event = codes.alarm_event_code(report.condition, report.parameter)
    base = source.containment if source is not None else "1.0.0.0"
    kind = "SP" if report.source == "device" and source is not None else "ST"
    priority = codes.PRIORITY_CODES.get(report.priority, "PN")
    flags = (priority, kind) + ({"high": ("H",), "low": ("L",)}.get(side, ()))
    n = 1
    _obx(b, n, "CWE", codes.MDC_EVT_ALARM, f"{base}.1",
         (str(event[0]), event[1], "MDC", "", "", "", "", "", report.condition), None, "F",
         report.at, report.device_id, flags=flags)
    if source is not None and report.value is not None and math.isfinite(report.value):
        n += 1
        reference = ""
        if report.limit is not None and math.isfinite(report.limit):
            reference = f"<{_number(report.limit)}" if side == "high" \
                else f">{_number(report.limit)}"
        _obx(b, n, "NM", (source.mdc, source.mdc_name), f"{base}.2", _number(report.value),
             (source.mdc_unit, source.mdc_unit_name), "F", report.at, report.device_id,
             reference=reference)
    phase = {"raised": "start", "acknowledged": "update", "cleared": "end"}[report.event]
    state = "latched" if report.latched else \
        {"raised": "active", "acknowledged": "active", "cleared": "inactive"}[report.event]
    inactivation = "alert-acknowledged" if report.event == "acknowledged" else "enabled"
    for attr, value in ((codes.MDC_ATTR_EVENT_PHASE, phase),
                        (codes.MDC_ATTR_ALARM_STATE, state),
                        (codes.MDC_ATTR_ALARM_INACTIVATION_STATE, inactivation),
                        (codes.MDC_ATTR_ALARM_PRIORITY, priority),
                        (codes.MDC_ATTR_ALERT_TYPE, kind)):
        n += 1
        _obx(b, n, "ST", attr, f"{base}.{n}", value, None, "F", None, report.device_id)
    return b.text()


def ack_message(received: str, code: str = "AA", text: str = "", *,
                control_id: str, at: float) -> str:
    """The receiver's answer to ``received``: ``ORA^R41`` for an ``ORU^R40``, ``ACK`` for
    anything else; MSA-1 ``code``, MSA-2 the control id answered, and for AE or AR an ERR
    segment with ``text``."""
    if code not in ACK_CODES:
        raise ValueError(f"ack code {code!r}; expected one of {ACK_CODES}")
    msg = parse(received)
    msh = msg[0]  # parse() made sure it is the MSH (msg.segment trips over an empty segment)
    event = str(msh(9)).split("~")[0].split("^")[1:2] if len(msh) > 9 else []
    event = event[0] if event else ""
    kind = ("ORA", "R41", "ORA_R41") if event == "R40" else ("ACK", event, "ACK")
    b = _Builder()
    b.msh(kind, control_id, at, None, sender=(str(msh(5)), str(msh(6))),
          receiver=(str(msh(3)), str(msh(4))))
    b.segment("MSA", {1: code, 2: str(msh(10))})
    if code != "AA":
        b.segment("ERR", {3: ("207", "Application internal error", "HL70357"),
                          4: "E", 8: text or "rejected"})
    return b.text()


def parse(text: str | bytes) -> hl7.Message:
    """A message read by python-hl7. Raises ValueError naming what is wrong when it is not
    HL7 v2 (no MSH first, bytes not UTF-8)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"message is not UTF-8 (MSH-18 says UNICODE UTF-8): {exc}") from None
    if not text.startswith("MSH") or len(text) < 8:
        raise ValueError(f"not an HL7 v2 message: it must start with MSH, got {text[:20]!r}")
    try:
        return hl7.parse(text)
    except Exception as exc:  # python-hl7 raises several kinds for bad text
        raise ValueError(f"not an HL7 v2 message: {exc}") from None


def control_id(msg: hl7.Message) -> str:
    return str(msg.segment("MSH")(10))


def message_type(msg: hl7.Message) -> str:
    """``"ORU^R01"``, ``"ORA^R41"``..."""
    field = msg.segment("MSH")(9)
    return f"{field(1)(1)}^{field(1)(2)}"


def ack_of(msg: hl7.Message) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id answered, the ERR text or "") of an answer."""
    msa = msg.segment("MSA")
    text = ""
    try:
        err = msg.segment("ERR")
        text = msg.unescape(str(err(8))) if len(err) > 8 else ""
    except KeyError:
        pass
    return str(msa(1)), str(msa(2)), text


def observations(msg: hl7.Message) -> list[dict]:
    """Each OBX with a value, as a dict: code, name, sub id, value, unit, time, device."""
    out = []
    for obx in msg.segments("OBX"):
        if len(obx) <= 5 or not str(obx(5)):
            continue
        code = obx(3)
        unit = obx(6) if len(obx) > 6 else None
        out.append({
            "set_id": str(obx(1)), "type": str(obx(2)),
            "code": int(str(code(1)(1))), "name": str(code(1)(2)), "sub_id": str(obx(4)),
            "value": msg.unescape(str(obx(5))),
            "unit": str(unit(1)(2)) if unit is not None and str(unit) else "",
            "time": str(obx(14)) if len(obx) > 14 else "",
            "device": str(obx(18)(1)(1)) if len(obx) > 18 else ""})
    return out
