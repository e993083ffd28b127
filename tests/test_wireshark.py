"""The Wireshark dissector (wireshark/vitalsim.lua), run in tshark over the course's captures.

For every packet of every committed capture, what tshark shows with the dissector must equal
what the course's own codec decodes from the same bytes: the telemetry datagram field by field,
and the alarm frames each TCP segment completes, after reassembly. Captures made here add the
cases the recordings do not hold: frames cut across segments and several in one, malformed
datagrams, a sequence gap, an unknown version and lengths outside the bounds. tshark runs with an
empty configuration (course.wireshark does that), so nothing of the machine's own Wireshark
set-up takes part.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap, wrpcap

from course.constants import RECORDINGS
from course.wireshark import tshark_fields, tshark_lines
from tests.requirements import require_tshark
from tests.tshark_alarms import (
    ALARM_FIELDS,
    DISSECTOR,
    alarm_disagreements,
    codec_alarm_frames,
    fields,
)
from vitalsim import wireshark
from vitalsim.flags import Flags
from vitalsim.layers import DEFAULT_ALARM_PORT
from vitalsim.protocol import telemetry
from vitalsim.protocol.alarm_channel import Ack as AckFrame
from vitalsim.protocol.alarm_channel import (
    AlarmMessage,
    Heartbeat,
    Hello,
    encode_alarm_frame,
)
from vitalsim.protocol.telemetry import NumericsMessage, WaveMessage, decode, encode
from vitalsim.rhythms import RHYTHM_CODE

ROOT = Path(__file__).resolve().parent.parent
#: every committed capture: the recordings, and captures/ where a branch adds one
COMMITTED = sorted([*RECORDINGS.glob("*.pcap"), *(ROOT / "captures").glob("*.pcap")])
KEY = b"test telemetry key"
ALARM_PORT = DEFAULT_ALARM_PORT

HEADER_NAMES = [name for name, _ in telemetry.HEADER_FIELDS]
NUMERIC_CODES = dict(telemetry.NUMERICS_FIELDS)
WAVE_NAMES = [name for name, _ in telemetry.WAVE_FIELDS]
FLAG_NAMES = {f.name.lower(): f.value for f in Flags if f.value}
TELEMETRY_FIELDS = [f"vitalsim.telemetry.{n}" for n in
                    [*HEADER_NAMES, *NUMERIC_CODES, *WAVE_NAMES, "samples", "tag"]] + \
                   [f"vitalsim.telemetry.flags.{n}" for n in FLAG_NAMES]


@pytest.fixture(autouse=True)
def _tshark() -> None:
    require_tshark()


# ---- what the course's codec reads from the same bytes -------------------------------------

def udp_payloads(packets) -> dict[int, bytes]:
    return {n: bytes(p[UDP].payload) for n, p in enumerate(packets, 1) if UDP in p}


def codec_telemetry(data: bytes) -> dict[str, object]:
    """The datagram's fields as the codec reads them: the header with the codec's own struct,
    the body with decode() (which also checks the tag of a signed one)."""
    header = dict(zip(HEADER_NAMES, telemetry.HEADER.unpack_from(data), strict=True))
    msg = decode(data, keys={1: KEY})
    assert (msg.device_id, msg.bed, msg.seq, msg.boot_id) == \
        (header["device_id"], header["bed"], header["seq"], header["boot_id"])
    out: dict[str, object] = dict(header)
    out.update({f"flags.{name}": bool(header["flags"] & mask)
                for name, mask in FLAG_NAMES.items()})
    if isinstance(msg, NumericsMessage):
        out.update({name: getattr(msg, name) for name in NUMERIC_CODES})
        # the rhythm and the PVC count as their bytes: tshark prints a field's raw value
        out["rhythm"] = 0 if msg.rhythm is None else RHYTHM_CODE[msg.rhythm]
        out["pvc_per_min"] = telemetry.PVC_NOT_COUNTED if msg.pvc_per_min is None \
            else msg.pvc_per_min
    else:
        assert isinstance(msg, WaveMessage)
        head = dict(zip(WAVE_NAMES, telemetry.WAVE_HEAD.unpack_from(data, telemetry.HEADER.size),
                        strict=True))
        assert head["channel"] == telemetry.CHANNELS.index(msg.channel) + 1
        out.update(head)
        out["samples"] = [int(s) for s in msg.samples]
    if header["key_id"]:
        out["tag"] = data[-telemetry.TAG_LEN:].hex()
    return out


def same_value(name: str, shown: str, expected: object) -> bool:
    if isinstance(expected, bool):
        return shown in ("1", "True", "true") if expected else shown in ("0", "False", "false")
    if expected is None:  # NaN on the wire: "not available"
        return math.isnan(float(shown))
    if isinstance(expected, float):
        code = NUMERIC_CODES[name]
        if code == "f":  # tshark prints a float32 with the digits it needs
            return math.isclose(float(np.float32(float(shown))), float(np.float32(expected)),
                                rel_tol=1e-6, abs_tol=1e-9)
        return math.isclose(float(shown), expected, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(expected, str):  # the tag, as hex
        return shown.replace(":", "") == expected
    return int(shown, 0) == expected


def telemetry_disagreements(capture: Path, shown: dict | None = None) -> list[str]:
    shown = shown or fields(capture, TELEMETRY_FIELDS)
    out = []
    for number, data in udp_payloads(rdpcap(str(capture))).items():
        expected = codec_telemetry(data)
        got = shown[number]
        for name, value in expected.items():
            key = f"vitalsim.telemetry.{name}"
            values = got.get(key)
            if values is None:
                out.append(f"packet {number}: tshark shows no {key} (codec: {value!r})")
            elif name == "samples":
                if [int(v) for v in values] != value:
                    out.append(f"packet {number}: samples differ")
            elif len(values) != 1 or not same_value(name, values[0], value):
                out.append(f"packet {number}: {key} tshark {values}, codec {value!r}")
        if len(out) > 10:
            break
    return out





# ---- the committed dissector ----------------------------------------------------------------

def test_the_committed_dissector_is_what_the_generator_writes():
    assert DISSECTOR.read_text(encoding="utf-8") == wireshark.generate(), \
        "wireshark/vitalsim.lua is out of date: run python -m vitalsim.wireshark"


def test_the_generator_follows_the_layout_tables(monkeypatch, tmp_path):
    """A field, a channel and a flag added to the tables (as a new version does) appear in the
    dissector after one regeneration, at the right offsets, with no other change."""
    import enum

    numerics = (*telemetry.NUMERICS_FIELDS, ("cvp", "f"))  # central venous pressure
    monkeypatch.setattr(telemetry, "NUMERICS_FIELDS", numerics)
    monkeypatch.setattr(telemetry, "NUMERICS_BODY", struct.Struct(
        "!" + "".join(c for _, c in numerics)))
    monkeypatch.setattr(telemetry, "CHANNELS", (*telemetry.CHANNELS, "cvp"))
    extended = enum.IntFlag("Flags", {**{f.name: f.value for f in Flags}, "PACED": 0x10})
    monkeypatch.setattr(wireshark, "Flags", extended)
    lua = tmp_path / "vitalsim.lua"
    lua.write_text(wireshark.generate(), encoding="utf-8")
    nan = float("nan")
    body = telemetry.NUMERICS_BODY.pack(72, 97, 14, 36.8, 120, 80, 93, 5.0, 38.5, 14, nan, nan,
                                        nan, RHYTHM_CODE["sinus"], 3, 8.5)
    header = telemetry.HEADER.pack(telemetry.MAGIC, telemetry.VERSION, 1, 0x11, 0, 4, 1004, 9,
                                   1_764_000_000_000_000, 1_763_999_000_000_000, len(body))
    pcap = tmp_path / "extended.pcap"
    wrpcap(str(pcap), [Ether() / IP(dst="127.0.0.1") / UDP(sport=40000, dport=5005) /
                       (header + body)])
    shown = fields(pcap, ["vitalsim.telemetry.cvp", "vitalsim.telemetry.nibp_time",
                          "vitalsim.telemetry.rhythm", "vitalsim.telemetry.pvc_per_min",
                          "vitalsim.telemetry.flags.paced", "_ws.expert.message"],
                   dissector=lua)[1]
    assert shown["vitalsim.telemetry.cvp"] == ["8.5"]
    assert shown["vitalsim.telemetry.nibp_time"] == ["5"]
    assert shown["vitalsim.telemetry.rhythm"] == [str(RHYTHM_CODE["sinus"])]
    assert shown["vitalsim.telemetry.pvc_per_min"] == ["3"]
    assert shown["vitalsim.telemetry.flags.paced"] in (["1"], ["True"])
    assert "_ws.expert.message" not in shown, shown


@pytest.mark.parametrize("capture", COMMITTED, ids=lambda p: p.name)
def test_tshark_shows_what_the_codec_decodes_in_every_committed_capture(capture):
    packets = rdpcap(str(capture))
    shown = fields(capture, TELEMETRY_FIELDS + ALARM_FIELDS)
    assert telemetry_disagreements(capture, shown) == []
    assert alarm_disagreements(capture, shown) == []
    # and it shows ours as ours: every datagram and every frame, nothing else
    assert sum("vitalsim.telemetry.seq" in p for p in shown.values()) == \
        len(udp_payloads(packets))
    assert sum(len(p.get("vitalsim.alarm.type", [])) for p in shown.values()) == \
        sum(len(f) for f in codec_alarm_frames(packets).values())


def test_the_committed_captures_hold_both_protocols():
    """The agreement above covers something: datagrams of both types and frames of every kind
    the recordings show."""
    names = {p.name for p in COMMITTED}
    assert {"telemetry-loss.pcap", "alarm-restart.pcap", "alarm-retransmissions.pcap"} <= names
    frames = codec_alarm_frames(rdpcap(str(RECORDINGS / "alarm-restart.pcap")))
    assert {t for f in frames.values() for _, t, _ in f} >= {1, 2, 3, 4}


# ---- captures made for the test ---------------------------------------------------------------

def tcp_capture(path: Path, chunks: list[tuple[str, bytes]], port: int = 5006) -> None:
    """A TCP connection on loopback: the handshake, then each (sender, bytes) as one segment,
    each answered by a pure ACK, with correct sequence numbers."""
    device, station = ("127.0.0.1", 40123), ("127.0.0.1", port)
    seq = {"device": 1000, "station": 5000}
    ends = {"device": device, "station": station}

    def seg(sender: str, flags: str, payload: bytes = b"") -> Ether:
        other = "station" if sender == "device" else "device"
        (src, sport), (dst, dport) = ends[sender], ends[other]
        return Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags,
                                                    seq=seq[sender], ack=seq[other]) / payload

    packets = [seg("device", "S")]
    seq["device"] += 1
    packets.append(seg("station", "SA"))
    seq["station"] += 1
    packets.append(seg("device", "A"))
    for sender, data in chunks:
        packets.append(seg(sender, "PA", data))
        seq[sender] += len(data)
        packets.append(seg("station" if sender == "device" else "device", "A"))
    for number, pkt in enumerate(packets):
        pkt.time = 1_764_000_000 + number / 1000
    wrpcap(str(path), packets)


def test_frames_cut_across_segments_and_several_in_one(tmp_path):
    hello = encode_alarm_frame(Hello(1001, 1))
    alarms = [encode_alarm_frame(AlarmMessage(f"1001-7-{n}", 1001, 1, "HR HIGH", "high",
                                              "raised", 151.0 + n, 150.0, 1_764_000_000.0 + n))
              for n in range(1, 5)]
    ack = encode_alarm_frame(AckFrame("1001-7-1"))
    chunks = [
        ("device", hello[:2]),                 # 1: half of the length prefix
        ("device", hello[2:9]),                # 2: the rest of it, the type, a little body
        ("device", hello[9:]),                 # 3: the HELLO ends here
        ("device", alarms[0] + alarms[1] + alarms[2][:30]),   # 4: two whole, one begun
        ("device", alarms[2][30:] + alarms[3]),               # 5: the third ends, a fourth
        ("station", ack + encode_alarm_frame(Heartbeat(1_764_000_001.5))),
    ]
    # the registered port, and any other, where the heuristic knows the connection by its first
    # segment: a frame's head and the opening of its JSON (so there the HELLO is cut later)
    heuristic = [("device", hello[:7]), ("device", hello[7:9]), *chunks[2:]]
    for port, made in ((5006, chunks), (15006, heuristic)):
        pcap = tmp_path / f"split-{port}.pcap"
        tcp_capture(pcap, made, port)
        assert alarm_disagreements(pcap) == []
        shown = fields(pcap, ALARM_FIELDS)
        # packets: 3 handshake, then a segment and its ACK for each chunk
        at = {n: 4 + 2 * n for n in range(len(chunks))}
        assert "vitalsim.alarm.type" not in shown[at[0]] and \
            "vitalsim.alarm.type" not in shown[at[1]], "nothing is shown before the frame ends"
        assert shown[at[2]]["vitalsim.alarm.type"] == ["1"]
        assert shown[at[3]]["vitalsim.alarm.type"] == ["2", "2"]
        assert shown[at[4]]["vitalsim.alarm.type"] == ["2", "2"]
        assert shown[at[5]]["vitalsim.alarm.type"] == ["3", "4"]
        lines = tshark_lines(pcap, "vitalsim.alarm", dissector=DISSECTOR)
        assert any("ALARM 1001-7-1, ALARM 1001-7-2" in line for line in lines), lines


def udp_capture(path: Path, datagrams: list[bytes], port: int = 5005) -> None:
    packets = [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") /
               UDP(sport=40000 + n, dport=port) / data for n, data in enumerate(datagrams)]
    wrpcap(str(path), packets)


def numerics(seq: int, **kw) -> NumericsMessage:
    values = dict(device_id=1001, bed=1, seq=seq, sent_at=1_764_000_000.0 + seq, flags=0,
                  hr=72.0, spo2=None, rr=14.0, temp=36.8, boot_id=1_763_999_990_000_000)
    values.update(kw)
    return NumericsMessage(**values)


def test_made_telemetry_agrees_too(tmp_path):
    """Both body types, every flag, NaN, a signed datagram, the largest wave: field by field."""
    wave = WaveMessage(1002, 2, 3, 1_764_000_000.5, int(Flags.ARTIFACT), "pleth", 125, 4000,
                       np.arange(-300, 270, dtype=np.int16))
    datagrams = [encode(numerics(1, flags=int(Flags.PROBE_OFF | Flags.LEAD_OFF),
                                 nibp_sys=121.5, nibp_dia=80.25, nibp_map=94.0,
                                 nibp_time=1234.125)),
                 encode(wave), encode(numerics(2), key=KEY, key_id=1)]
    pcap = tmp_path / "made.pcap"
    udp_capture(pcap, datagrams)
    assert len(datagrams[1]) <= telemetry.MAX_DATAGRAM
    assert telemetry_disagreements(pcap) == []


def expert(capture: Path) -> dict[int, dict[str, list[str]]]:
    return fields(capture, ["_ws.expert", "_ws.expert.message", "_ws.expert.severity",
                            "vitalsim.telemetry.gap", "vitalsim.telemetry.seq_gap",
                            "vitalsim.telemetry.bad_version", "vitalsim.telemetry.length",
                            "vitalsim.telemetry.short", "vitalsim.telemetry.bad_magic",
                            "vitalsim.telemetry.bad_body", "vitalsim.telemetry.seq_back",
                            "vitalsim.alarm.bad_length"])


def lua_error_or_exception(shown: dict[str, list[str]]) -> list[str]:
    """A dissector that fails shows "Lua Error: ..." (or, for an exception Wireshark caught,
    "Malformed Packet (Exception occurred)") as expert info: the messages that say so."""
    return [m for m in shown.get("_ws.expert.message", [])
            if "Lua Error" in m or "Exception occurred" in m]


def test_a_sequence_gap_is_expert_info_on_the_datagram_that_reveals_it(tmp_path):
    other = dict(device_id=1002, bed=2)
    datagrams = [encode(numerics(s)) for s in (10, 11)] + [encode(numerics(1, **other))] + \
        [encode(numerics(s)) for s in (15, 16, 16)] + [encode(numerics(2, **other))]
    pcap = tmp_path / "gap.pcap"
    udp_capture(pcap, datagrams)
    shown = expert(pcap)
    assert "vitalsim.telemetry.gap" not in shown[1], "the first of a device has nothing before"
    assert shown[2]["vitalsim.telemetry.gap"] == ["0"]
    assert shown[4]["vitalsim.telemetry.gap"] == ["3"]
    assert "vitalsim.telemetry.seq_gap" in shown[4]
    assert any("seq 15 after 11: 3 datagram(s) of this device missing (12..14)" in m
               for m in shown[4]["_ws.expert.message"])
    assert "vitalsim.telemetry.seq_back" in shown[6], "the duplicate 16 is noted"
    assert shown[7]["vitalsim.telemetry.gap"] == ["0"], "each device has its own sequence"
    gaps = tshark_lines(pcap, "vitalsim.telemetry.gap > 0", dissector=DISSECTOR)
    assert len(gaps) == 1 and "[3 missing before]" in gaps[0], gaps


def test_malformed_datagrams_show_expert_info_not_a_lua_error(tmp_path):
    good = encode(numerics(1))
    unknown_version = bytearray(good)
    unknown_version[2] = telemetry.VERSION + 1
    too_long_body = bytearray(good)
    struct.pack_into("!H", too_long_body, 32, 1000)
    wave = bytearray(encode(WaveMessage(1001, 1, 2, 1.0, 0, "ecg", 250, 0,
                                        np.zeros(10, dtype=np.int16))))
    struct.pack_into("!H", wave, 34 + 8, 50)   # count says 50 samples, 10 follow
    bad_channel = bytearray(encode(WaveMessage(1001, 1, 3, 1.0, 0, "ecg", 250, 0,
                                               np.zeros(4, dtype=np.int16))))
    bad_channel[34] = 99
    oversized = good[:32] + struct.pack("!H", 1300) + bytes(1300)
    cases = {
        "truncated header": good[:20],
        "a newer version": bytes(unknown_version),
        "body_len beyond the datagram": bytes(too_long_body),
        "wave count beyond its body": bytes(wave),
        "unknown channel": bytes(bad_channel),
        "over the 1200-byte bound": oversized,
        "not ours at all": b'{"hr": 72}',
        "two bytes": b"VS",
    }
    pcap = tmp_path / "malformed.pcap"
    udp_capture(pcap, list(cases.values()))
    shown = expert(pcap)
    expected = {
        "truncated header": ("vitalsim.telemetry.short", "20 bytes, a header needs 34"),
        "a newer version": ("vitalsim.telemetry.bad_version",
                            f"version {telemetry.VERSION + 1}; this dissector reads "
                            f"version {telemetry.VERSION}"),
        "body_len beyond the datagram": ("vitalsim.telemetry.length",
                                         f"{len(good)} bytes, the header says "
                                         f"{telemetry.HEADER.size + 1000}"),
        "wave count beyond its body": ("vitalsim.telemetry.length", "50 samples need 110"),
        "unknown channel": ("vitalsim.telemetry.bad_body", "unknown waveform channel 99"),
        "over the 1200-byte bound": ("vitalsim.telemetry.length", "above the bound of 1200"),
        "not ours at all": ("vitalsim.telemetry.bad_magic", "magic 0x7b22, expected 0x5653"),
        "two bytes": ("vitalsim.telemetry.short", "2 bytes; not even a magic and a version"),
    }
    for number, case in enumerate(cases, 1):
        got = shown[number]
        field, message = expected[case]
        assert field in got, (case, got)
        assert any(message in m for m in got["_ws.expert.message"]), (case, got)
        assert not lua_error_or_exception(got), (case, got)


def test_an_alarm_frame_length_outside_the_bound_is_expert_info(tmp_path):
    for length in (0, 16385, 2**32 - 1):
        pcap = tmp_path / f"length-{length}.pcap"
        chunks = [("device", encode_alarm_frame(Hello(1001, 1))),
                  ("device", struct.pack("!IB", length, 2) + b'{"alarm_id":"x"}')]
        tcp_capture(pcap, chunks)
        shown = expert(pcap)
        bad = shown[6]
        assert "vitalsim.alarm.bad_length" in bad, bad
        assert any(f"frame length {length} is outside 1..16384" in m
                   for m in bad["_ws.expert.message"]), bad
        assert not lua_error_or_exception(bad), bad


def test_a_lua_error_is_never_taken_for_a_reading(tmp_path):
    """The runner the lab and these tests use refuses a capture whose dissector failed: a
    dissector that raises is an error, not an empty answer."""
    from course.wireshark import TsharkError

    broken = tmp_path / "broken.lua"
    broken.write_text(DISSECTOR.read_text(encoding="utf-8").replace(
        "local function dissect_telemetry(tvb, pinfo, tree)\n",
        "local function dissect_telemetry(tvb, pinfo, tree)\n  local _ = tvb(0, 5000):uint()\n"))
    with pytest.raises(TsharkError, match="Lua Error"):
        tshark_fields(RECORDINGS / "spoofed-telemetry.pcap", ["vitalsim.telemetry.seq"],
                      dissector=broken)


def test_a_telemetry_line_and_an_alarm_line():
    """What a learner sees in the packet list: the protocol and a summary of each."""
    telemetry_line = tshark_lines(RECORDINGS / "telemetry-loss.pcap", "frame.number == 16",
                                  dissector=DISSECTOR)
    assert len(telemetry_line) == 1 and "VS-TELEMETRY" in telemetry_line[0] and \
        "numerics bed 1 device 1001 seq 6 hr 72 [1 missing before]" in telemetry_line[0]
    alarm_line = tshark_lines(RECORDINGS / "alarm-restart.pcap", "frame.number == 39",
                              dissector=DISSECTOR)
    assert len(alarm_line) == 1 and "VS-ALARM" in alarm_line[0] and "HELLO, ALARM 1001-" in \
        alarm_line[0]
