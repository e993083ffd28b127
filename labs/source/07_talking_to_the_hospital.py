# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 07 — Talking to the hospital
#
# **Objectives.** By the end of this lab you will be able to
# 1. read an HL7 v2 `ORU^R01` message in the IHE PCD-01 shape field by field: segments, fields,
#    components, and which field says what;
# 2. write an MLLP de-framer (HL7's framing: `0x0B`, the message, `0x1C 0x0D`) that gives the
#    same messages as the station's, however TCP cuts the bytes;
# 3. find a measurement in a message by its IEEE 11073 (MDC) code, as a hospital system does;
# 4. make the hospital's interface engine answer AE (application error) and watch the station
#    send the same message again, with the same control id;
# 5. compare the FHIR R4 Observation of a reading with the HL7 segment of the same reading;
# 6. read a recorded MLLP exchange with a reset in it, with the course's reader and with
#    Wireshark's own HL7 dissector.
#
# **Prerequisites.** Lab 02 (the alarm channel's length-prefixed frames and application ACK).
#
# **Time.** About 45 minutes. **No root needed**: the recorded capture of Section 6 is in
# `course/recordings/`; tshark is used if it is installed.
#
# Real bedside monitors hand their data to the rest of the hospital in a standard way: vitals as
# HL7 v2 `ORU^R01` (IHE PCD-01), alarms as `ORU^R40` (IHE PCD-04), both over MLLP on a TCP
# connection; newer systems read FHIR. Our station does the same when it is given a receiver
# (`python -m server --hl7 HOST:PORT`). Here the receiver is the course's small "interface
# engine", `course.hl7_receiver.Hl7Receiver`, which we can tell to misbehave.
#
# Each exercise has a cell for your code (it starts as `raise NotImplementedError`) and a check
# cell that tells you *expected X because Y, got Z*, or that the exercise is not done yet.

# %%
import json
import time
from datetime import datetime

import hl7
import numpy as np
import pandas as pd
from IPython.display import display
from tornado.httpclient import AsyncHTTPClient

from course import Checks, not_done_yet, wait_until
from course.constants import FLAPPING_HR, RECORDINGS
from course.formatting import table
from course.hl7_capture import mllp_exchange, tcp_events, tshark_hl7, tshark_reason
from course.hl7_receiver import Hl7Receiver
from server import System, hl7_messages
from server.config import StationConfig
from server.system import SystemConfig
from vitalsim import codes
from vitalsim.devices import WardConfig
from vitalsim.protocol import NumericsMessage
from vitalsim.protocol.mllp import MllpDeframer, frame

# %% [markdown]
# ## 1. A PCD-01 message, field by field
#
# The station builds one `ORU^R01` per bed every few seconds. Here is one, built from a fixed
# reading of bed 3 so that it is the same for everyone, one segment per line (on the wire the
# segments are separated by a carriage return, `\r`):

# %%
# NBVAL_CHECK_OUTPUT
reading = NumericsMessage(device_id=1003, bed=3, seq=120, sent_at=1_764_000_000.25, flags=0,
                          hr=72.0, spo2=94.0, rr=18.0, temp=37.2, nibp_sys=121.0,
                          nibp_dia=79.0, nibp_map=93.0, nibp_time=300.0)
sample = hl7_messages.vitals_message(reading, "6b0b8227-17", 1_764_000_000.5, "Stable adult")
print(sample.replace("\r", "\n"))

# %% [markdown]
# How to read it:
#
# - a **segment** is a line; its first three letters name it: `MSH` (message header), `PID`
#   (patient), `PV1` (visit: `WARD^^3` is ward, room, bed), `OBR` (the observation request),
#   `OBX` (one observation each);
# - **fields** are separated by `|`, **components** inside a field by `^`;
# - fields are numbered from the segment name: in `PID|||BED3^^^WARD^PI||Stable adult`, PID-3 is
#   `BED3^^^WARD^PI` and PID-5 `Stable adult`. `MSH` is the exception: the `|` right after `MSH`
#   *is* MSH-1 (the field separator) and `^~\&` is MSH-2, so MSH-9 is the message type
#   (`ORU^R01^ORU_R01`) and MSH-10 the **message control id**, the name the answer will use;
# - in an OBX: OBX-2 the value type (`NM` numeric), OBX-3 **what** was measured as
#   `code^name^MDC` (IEEE 11073-10101), OBX-4 where in the monitor, four numbers in IHE PCD's
#   order MDS.VMD.channel.metric (`1.2.1.1` for SpO₂: the monitor (MDS) 1, its SpO₂ module
#   (VMD) 2, channel 1, metric 1), OBX-5 the value, OBX-6 the unit (also MDC), OBX-11 the
#   status, OBX-14 when, OBX-18 **which device**.
#
# ### Exercise 1: a field by its number
#
# Write `field(message, segment, number)`: the text of field `number` of the first segment named
# `segment` in `message` (a str with segments separated by `\r`), or `""` when the segment has
# fewer fields. Mind MSH's numbering: MSH-1 is the field separator `|` itself (python-hl7 gives
# `'|'` for it), so MSH-2 is the first text after `MSH|`.

# %%
def field(message: str, segment: str, number: int) -> str:
    ### BEGIN SOLUTION
    for line in message.split("\r"):
        parts = line.split("|")
        if parts[0] != segment:
            continue
        if segment == "MSH":
            if number == 1:
                return "|"  # the separator the split took away
            number -= 1
        return parts[number] if number < len(parts) else ""
    raise KeyError(f"no {segment} segment")
    ### END SOLUTION


# %% tags=["check"]
parsed = hl7.parse(sample)   # python-hl7, the library the station builds its messages with
checks = Checks("Exercise 1: fields by number")
for seg, n, why in [("MSH", 1, "the field separator itself"),
                    ("MSH", 2, "the other separators: component, repetition, escape, "
                               "subcomponent"),
                    ("MSH", 9, "the message type"), ("MSH", 10, "the control id"),
                    ("PID", 5, "the patient's name"), ("PV1", 3, "ward, room and bed"),
                    ("OBX", 3, "the first OBX: the monitor itself (an MDS)"),
                    ("OBR", 7, "when the reading was taken")]:
    checks.expect(f"{seg}-{n}", lambda s=seg, k=n: not_done_yet(field, sample, s, k),
                  expected=str(parsed.segment(seg)(n)),
                  because=f"{seg}-{n} is {why}, as python-hl7 reads it")
checks.expect("PID-30 (past the last field)", lambda: not_done_yet(field, sample, "PID", 30),
              expected="", because="a segment ends after its last non-empty field")
display(checks)  # its report (the instructor version then asserts it passed)

# %% [markdown]
# ## 2. The ward and the hospital's interface engine
#
# Now live: an interface engine listening on a free port of 127.0.0.1, and a ward of two beds
# whose station sends it vitals every second and every alarm as it comes. The heart-rate limit
# is set on the patients' own rate, so alarms raise and clear every few seconds.

# %%
engine = await Hl7Receiver().start()
system = System(SystemConfig(
    StationConfig(http_port=0, udp_port=0, tcp_port=0, hl7_target=engine.target,
                  hl7_interval=1.0, hl7_ack_timeout=2.0, hl7_retry=0.2),
    WardConfig(beds=2, scenario="stable_adult", seed=7, speed=5.0, waves=False,
               limits=FLAPPING_HR)))
await system.start()
station = system.station
await wait_until(lambda: {"ORU^R01", "ORU^R40"} <= set(engine.frame()["type"]), timeout=20,
                 what="vitals and an alarm at the engine")
print(f"engine on 127.0.0.1:{engine.port}; received so far:")
print(table(engine.frame().tail(6), ["control_id", "type", "bed", "alarm_id", "phase",
                                     "duplicate", "answer"]))

# %% [markdown]
# Every message is answered: `ACK^R01` for vitals, `ORA^R41` for an alarm, with an `MSA`
# segment whose MSA-1 is `AA` (application accept) and MSA-2 the control id it answers:

# %%
answer = hl7_messages.ack_message(engine.messages("ORU^R01")[-1], "AA", control_id="IE-demo",
                                  at=time.time())
print(answer.replace("\r", "\n"))

# %% [markdown]
# ### Exercise 2: an MLLP de-framer
#
# On the TCP connection each message travels as `0x0B`, the message, `0x1C 0x0D`, and nothing
# says how long it is: the receiver finds the end by looking for `0x1C 0x0D`. TCP may cut the
# stream anywhere: a message across three reads, two messages in one read, the end block split
# between two reads.
#
# Write `MyDeframer`: `feed(data)` takes the bytes of one read and returns the list of messages
# (without their envelope) that they complete. Bytes between messages other than `\r` or `\n`
# are not MLLP: raise `ValueError` saying so. Keep what is not complete for the next call.

# %%
class MyDeframer:
    def __init__(self) -> None:
        ### BEGIN SOLUTION
        self.pending = b""
        ### END SOLUTION

    def feed(self, data: bytes) -> list[bytes]:
        ### BEGIN SOLUTION
        self.pending += data
        done: list[bytes] = []
        while True:
            head = self.pending.lstrip(b"\r\n")
            if not head:
                self.pending = b""
                return done
            if head[:1] != b"\x0b":
                raise ValueError(f"expected the start block 0x0B, got {head[:1]!r}")
            stop = head.find(b"\x1c\x0d")
            if stop < 0:
                self.pending = head
                return done
            done.append(head[1:stop])
            self.pending = head[stop + 2:]
        ### END SOLUTION


# %% tags=["check"]
def cut_and_feed(deframer, stream: bytes, cuts) -> list[bytes]:
    out, start = [], 0
    for cut in [*sorted(cuts), len(stream)]:
        out += deframer.feed(stream[start:cut])
        start = cut
    return out


live = [m.encode() for m in engine.messages()[:3]]
stream = b"".join(frame(m) for m in live)
rng = np.random.default_rng(7)
cuttings = [rng.integers(0, len(stream), size=rng.integers(1, 12)) for _ in range(200)]
cuttings += [[i] for i in range(len(stream))] + [[len(stream) - 1], []]  # incl. 0x1C | 0x0D


def all_cuttings_agree() -> int:
    wrong = 0
    for cuts in cuttings:
        ours = cut_and_feed(not_done_yet(MyDeframer), stream, cuts)
        wrong += ours != cut_and_feed(MllpDeframer(), stream, cuts)
    return wrong


def refuses_garbage() -> bool:
    try:
        not_done_yet(MyDeframer).feed(b"GET / HTTP/1.1\r\n")
    except ValueError:
        return True
    return False


checks = Checks("Exercise 2: the MLLP de-framer")
checks.expect("messages from three real ones in one read",
              lambda: len(not_done_yet(MyDeframer).feed(stream)), expected=3,
              because="three envelopes, three messages")
checks.expect("cuttings where your messages differ from the station's de-framer",
              all_cuttings_agree, expected=0,
              because=f"{len(cuttings)} cuttings of the same {len(stream)} bytes, each of which "
                      "the station's MllpDeframer turns into the same three messages")
checks.that("bytes that are not MLLP raise ValueError", refuses_garbage,
            because="an HTTP request sent to the HL7 port must not be taken for a message")
display(checks)  # its report (the instructor version then asserts it passed)

# %% [markdown]
# The station's de-framer (`vitalsim.protocol.mllp.MllpDeframer`) also bounds what it buffers
# (`max_message`, 1 MiB by default): a peer that sends `0x0B` and never the end block would
# otherwise make it hold bytes forever. Yours has no bound; what would you add?
#
# ## 3. Finding SpO₂ by its code
#
# A hospital system does not look for "the third OBX": monitors differ in what they send and in
# which order. It looks for the code. The course keeps every code in one table,
# `vitalsim.codes.CODES` (MDC code and unit, LOINC code, UCUM unit), each checked against its
# source:

# %%
# NBVAL_CHECK_OUTPUT
print(table(pd.DataFrame([{"field": c.field, "MDC": c.mdc, "MDC name": c.mdc_name,
                           "MDC unit": c.mdc_unit_name, "LOINC": " / ".join(c.loinc),
                           "UCUM": c.ucum} for c in codes.CODES])))

# %% [markdown]
# ### Exercise 3: the OBX for SpO₂
#
# Write `obx_by_code(message, mdc)`: for the first OBX whose OBX-3 code (its first component)
# is `mdc`, return `(value, unit)` where `value` is OBX-5 as a float and `unit` the *name* in
# OBX-6 (its second component, e.g. `MDC_DIM_PERCENT`). Return None when there is none.

# %%
def obx_by_code(message: str, mdc: int) -> tuple[float, str] | None:
    ### BEGIN SOLUTION
    for line in message.split("\r"):
        parts = line.split("|")
        if parts[0] == "OBX" and len(parts) > 6 and parts[3].split("^")[0] == str(mdc):
            return float(parts[5]), parts[6].split("^")[1]
    return None
    ### END SOLUTION


# %% tags=["check"]
SPO2 = codes.code_of("spo2").mdc
latest_vitals = engine.messages("ORU^R01")[-1]
checks = Checks("Exercise 3: SpO2 by its MDC code")
checks.expect("SpO2 in the sample", lambda: not_done_yet(obx_by_code, sample, SPO2),
              expected=(94.0, "MDC_DIM_PERCENT"),
              because="OBX-3 150456^MDC_PULS_OXIM_SAT_O2 carries 94 %")
checks.expect("SpO2 in a live ORU^R01", lambda: not_done_yet(obx_by_code, latest_vitals, SPO2),
              expected=next((float(o["value"]), o["unit"])
                            for o in hl7_messages.observations(hl7_messages.parse(latest_vitals))
                            if o["code"] == SPO2),
              because="the same OBX as python-hl7 finds it")
checks.expect("a code the monitor does not send", lambda: not_done_yet(obx_by_code, sample,
                                                                       151708),
              expected=None, because="MDC 151708 (end-tidal CO2) is not in this message")
display(checks)  # its report (the instructor version then asserts it passed)

# %% [markdown]
# ## 4. The engine answers AE
#
# An interface engine answers `AE` (application error) when it could not store a message (its
# database is down, say), and `AR` (reject) when it will not take it. Either way the message has
# **not** been taken. After an AE the sender sends it again: the station keeps each message in
# an outbox in its SQLite journal until it is answered `AA`, and sends it again under the
# **same control id**, so that an engine which did store it the first time can tell a re-send
# from a new message. An AR is different: HL7 says the same message must not simply be sent
# again unchanged, since the engine will refuse it again (an unknown patient, a message type it
# does not take). The station tries an AR'd message a few times at most (`max_rejects`, 3),
# then sets it aside in its outbox as `rejected` and counts it, for someone to look at, so that
# it does not hold back every message behind it.
#
# We tell the engine to answer AE to the next two messages, and wait for the third attempt:

# %%
before = len(engine.received)
engine.answer_next("AE", count=2, text="database unavailable")
await wait_until(lambda: "AA" in [r.answer for r in engine.received[before:]
                                  if r.duplicate], timeout=20, what="the re-send answered AA")
received = engine.frame()
print(table(received.iloc[before:before + 4], ["control_id", "type", "duplicate", "answer"]))
print("station:", {k: v for k, v in station.hl7.stats().items()
                   if k in ("answered_AE", "answered_AA", "sent")})

# %% [markdown]
# ### Exercise 4: every attempt of each message
#
# Write `attempts(received)`: from the engine's DataFrame (columns `control_id` and `answer`,
# oldest first), a dict mapping each control id that arrived **more than once** to the list of
# answers it got, in order.

# %%
def attempts(received: pd.DataFrame) -> dict[str, list[str]]:
    ### BEGIN SOLUTION
    answers = received.groupby("control_id", sort=False)["answer"].apply(list)
    return {cid: got for cid, got in answers.items() if len(got) > 1}
    ### END SOLUTION


# %% tags=["check"]
refused_first = received.iloc[before]["control_id"]
checks = Checks("Exercise 4: the re-sends")
checks.expect(f"answers to {refused_first}",
              lambda: not_done_yet(attempts, received).get(refused_first),
              expected=["AE", "AE", "AA"],
              because="the engine answered AE twice; the station sent it again each time, "
                      "until AA")
checks.expect("control ids sent more than once",
              lambda: sorted(not_done_yet(attempts, received)),
              expected=sorted(received["control_id"][received["duplicate"]].unique()),
              because="the engine marks a control id it has seen before as a duplicate")
display(checks)  # its report (the instructor version then asserts it passed)

# %% [markdown]
# **Question.** The engine had stored nothing when it answered AE. Suppose instead that it *had*
# stored the message and its answer was lost with the connection. What does the re-send look
# like to it, and what must it do so that the patient's record does not get the reading twice?

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** It is the same message with the same control id (MSH-10), a
# control id it has already stored: it must not store it again, but must answer it again (AA),
# or the station will keep sending. HL7 leaves duplicate detection to the receiver, by control
# id; this is at-least-once delivery made effectively-once by the receiver, exactly as our
# station's journal deduplicates alarms by alarm id.

# %% [markdown]
# ## 5. The same reading in FHIR
#
# Newer systems ask for FHIR. The station serves each bed's latest reading as a FHIR R4 Bundle
# of vital-signs Observations: `GET /api/beds/{id}/fhir`. To compare like with like, the ward
# stops sending, we fetch bed 1's Bundle, and take the `ORU^R01` that carried the same reading
# (the station sends each reading once, within a second).

# %%
await system.ward.stop()
system.ward = None
response = await AsyncHTTPClient().fetch(station.url + "api/beds/1/fhir")
bundle = json.loads(response.body)
taken = datetime.fromisoformat(bundle["entry"][0]["resource"]["effectiveDateTime"]).timestamp()


def that_reading() -> str | None:
    """The ORU^R01 of bed 1 whose OBR-7 (when the reading was taken) is the Bundle's time."""
    for r in engine.received:
        if r.type == "ORU^R01" and r.bed == 1:
            when = hl7_messages.parse_hl7_time(str(hl7.parse(r.text).segment("OBR")(7)))
            if abs(when - taken) < 0.002:
                return r.text
    return None


oru = await wait_until(that_reading, timeout=10, what="the ORU^R01 of the Bundle's reading")
print(response.headers["Content-Type"])
spo2_observation = next(e["resource"] for e in bundle["entry"]
                        if e["resource"]["code"]["coding"][0]["code"] == "2708-6")
print(json.dumps(spo2_observation, indent=1)[:1200])

# %% [markdown]
# ### Exercise 5: the FHIR value
#
# Write `fhir_value(bundle, loinc)`: for the Observation whose `code.coding` has a LOINC coding
# (`system` `http://loinc.org`) with code `loinc`, return `(value, unit, effective)`: its
# `valueQuantity.value`, its `valueQuantity.code` (UCUM) and its `effectiveDateTime`. Return
# None when there is none.

# %%
def fhir_value(bundle: dict, loinc: str) -> tuple[float, str, str] | None:
    ### BEGIN SOLUTION
    for entry in bundle["entry"]:
        obs = entry["resource"]
        names = {(c["system"], c["code"]) for c in obs["code"]["coding"]}
        if ("http://loinc.org", loinc) in names and "valueQuantity" in obs:
            quantity = obs["valueQuantity"]
            return quantity["value"], quantity["code"], obs["effectiveDateTime"]
    return None
    ### END SOLUTION


# %% tags=["check"]
in_hl7 = {o["code"]: o for o in hl7_messages.observations(hl7_messages.parse(oru))}
checks = Checks("Exercise 5: FHIR against HL7")
checks.expect("SpO2 value in FHIR", lambda: not_done_yet(fhir_value, bundle, "2708-6")[0],
              expected=float(in_hl7[SPO2]["value"]), tolerance=0.005,
              because="the same reading: OBX-5 of the OBX coded 150456")
checks.expect("its unit in FHIR (UCUM)", lambda: not_done_yet(fhir_value, bundle, "2708-6")[1],
              expected="%", because="FHIR's vital signs profile wants UCUM: MDC_DIM_PERCENT "
                                    "in HL7 is % in UCUM")
checks.expect("its time in FHIR, as epoch seconds", lambda: datetime.fromisoformat(
              not_done_yet(fhir_value, bundle, "2708-6")[2]).timestamp(),
              expected=hl7_messages.parse_hl7_time(in_hl7[SPO2]["time"]), tolerance=0.001,
              because="effectiveDateTime and OBX-14 are the same moment, written two ways")
checks.expect("heart rate in FHIR", lambda: not_done_yet(fhir_value, bundle, "8867-4")[:2],
              expected=(float(in_hl7[147842]["value"]), "/min"), tolerance=0.005,
              because="LOINC 8867-4 is MDC 147842, MDC_DIM_BEAT_PER_MIN is /min")
display(checks)  # its report (the instructor version then asserts it passed)

# %% [markdown]
# Side by side, what each standard calls the same SpO₂ reading:
#
# | | HL7 v2 (PCD-01) | FHIR R4 |
# |---|---|---|
# | what | OBX-3 `150456^MDC_PULS_OXIM_SAT_O2^MDC` | `code.coding`: LOINC `2708-6` (and `59408-5`), MDC `150456` |
# | value | OBX-5, text, type in OBX-2 (`NM`) | `valueQuantity.value`, a JSON number |
# | unit | OBX-6 `262688^MDC_DIM_PERCENT^MDC` | `valueQuantity.code` `%`, system UCUM |
# | when | OBX-14 `YYYYMMDDHHMMSS.sss+0000` | `effectiveDateTime`, ISO 8601 |
# | device | OBX-18 `1001^VITALSIM` | `device.reference` `Device/1001` |
# | patient | PID, PV1 (bed) | `subject` |
#
# ## 6. The exchange in a capture
#
# `course/recordings/hl7-mllp.pcap` holds the station talking to the engine on port 2575 (IANA's
# port for HL7 over MLLP). Midway, the engine stalls on one message, then resets the connection.
# The course's reader puts each direction's bytes back in order and runs the station's
# de-framer over them:

# %%
# NBVAL_CHECK_OUTPUT
capture = RECORDINGS / "hl7-mllp.pcap"
exchange = mllp_exchange(capture)
packets = tcp_events(capture)
print(table(exchange, ["frame", "from", "connection", "type", "control_id", "msa", "answers"]))
print()
print(table(packets[packets["flags"].str.contains("S|R|F")], ["frame", "from", "client_port",
                                                               "flags"]))

# %% [markdown]
# ### Exercise 6: what the reset cost
#
# Write `resent(exchange)`: the control id the station sent on **two** different connections
# (the one it had sent when the engine reset the connection), and `answers_to(exchange, cid)`: the
# MSA-1 codes the engine sent for it, in order.

# %%
def resent(exchange: pd.DataFrame) -> str:
    ### BEGIN SOLUTION
    sent = exchange[exchange["from"] == "station"]
    spread = sent.groupby("control_id")["connection"].nunique()
    return spread[spread > 1].index[0]
    ### END SOLUTION


def answers_to(exchange: pd.DataFrame, cid: str) -> list[str]:
    ### BEGIN SOLUTION
    return list(exchange[(exchange["from"] == "engine") & (exchange["answers"] == cid)]["msa"])
    ### END SOLUTION


# %% tags=["check"]
sent = exchange[exchange["from"] == "station"]
checks = Checks("Exercise 6: the re-send in the capture")
checks.expect("the control id sent twice", lambda: not_done_yet(resent, exchange),
              expected=sent[sent.duplicated("control_id")]["control_id"].iloc[0],
              because="the engine never answered it before its RST; the station sent it again "
                      "on its next connection")
checks.expect("the engine's answers to it",
              lambda: not_done_yet(answers_to, exchange, not_done_yet(resent, exchange)),
              expected=["AA"], because="no answer on the first connection, AA on the second")
display(checks)  # its report (the instructor version then asserts it passed)

# %% [markdown]
# And as Wireshark sees it, with its own HL7 dissector (`-d tcp.port==2575,hl7`, an empty
# configuration), when tshark is installed. Note that Wireshark numbers fields counting the
# segment name as field 1: its "field 4" of PID is HL7's PID-3.

# %%
reason = tshark_reason()
if reason is None:
    for number, port, kind, event, segments in tshark_hl7(capture):
        names = [s.split("|", 1)[0] for s in segments.split(",")]
        print(f"frame {number:>3} from port {port:>5}: {kind}^{event:<4} segments {names}")
else:
    print(f"tshark is not available here ({reason}); the course's reader above read the same "
          "capture")

# %% [markdown]
# ## 7. Stop everything

# %%
await system.stop()
await engine.stop()
print("stopped:", not station.running)

# %% [markdown]
# ## Reflection
#
# 1. **MLLP against our length prefix.** The alarm channel (lab 02) puts a 4-byte length before
#    each frame; MLLP puts `0x0B` before and `0x1C 0x0D` after. Which of the two can carry any
#    bytes at all in a message, and what must MLLP forbid instead? How does each receiver know how
#    much to buffer, and how does each notice a peer that stops halfway?
# 2. **HL7's ACK against our alarm ACK.** Both are application acknowledgements, sent after the
#    receiver has stored the message, naming what they acknowledge (MSA-2 the control id; our ACK
#    the alarm id). What does TCP's own acknowledgement *not* tell the sender that these do?
# 3. HL7 original mode sends one message and waits for its answer before the next. What does that
#    cost on a link with 50 ms round trip, for a ward of 40 beds sending vitals every second?
#    What would you change?
# 4. The station sends alarms before pending vitals, and drops the oldest pending vitals when the
#    engine is down for long, never alarms. Is that the right choice for a patient? What would a
#    nurse reading the record later need to know?

# %% [markdown] tags=["instructor"]
# **Model answers (instructor).**
#
# 1. The length prefix carries any bytes, and the receiver knows from the header how much to
#    buffer (and can refuse a length over its bound before buffering anything). MLLP forbids
#    `0x0B` and `0x1C` inside a message (HL7 text never has them) and the receiver must scan
#    every byte for the end block; it can only bound what it buffers by a maximum size it picks
#    itself. A peer that stops halfway leaves a half frame in both: the length-prefixed reader
#    knows how much is missing, the MLLP reader only that no end block came (both need a timer).
# 2. TCP's ACK says the bytes reached the receiving kernel; it says nothing about the
#    application having read, parsed or stored them, and nothing survives a crash of the
#    receiver after the kernel ACKed. An application ACK is sent only after the message is
#    stored, names the message, and can say "stored" (AA) or "not stored" (AE/AR).
# 3. 40 messages a second at one round trip each is 40 × 50 ms = 2 s of waiting per second:
#    the interface falls behind. Batch (one message per ward with many PIDs, or HL7 batch
#    files), send in parallel over several connections, or use enhanced mode with commit ACKs
#    pipelined; or send vitals less often (the chart needs minutes, not seconds).
# 4. Alarms first is right: an alarm is time-critical and rare; vitals are frequent and the next
#    reading replaces the last. But the record then has a gap: the nurse needs to see that
#    readings were dropped and when (the station counts them, `vitals_dropped`), rather than a
#    chart that looks complete.
