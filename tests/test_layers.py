"""The scapy layers and the codec read and write the same bytes, in both directions."""

import math

import numpy as np
from hypothesis import given, settings
from scapy.layers.inet import IP, TCP, UDP

from tests.strategies import messages
from vitalsim.layers import AlarmFrame, Telemetry, TelemetryNumerics, TelemetryWave, bind_ports
from vitalsim.protocol.alarm_channel import (
    Ack,
    AlarmMessage,
    FrameDecoder,
    Hello,
    encode_alarm_frame,
)
from vitalsim.protocol.telemetry import (
    CHANNELS,
    HEADER_FIELDS,
    NumericsMessage,
    decode,
    encode,
)


def same(a, b) -> bool:
    return (a is None and (b is None or math.isnan(b))) or a == b or (
        a is not None and b is not None and np.float32(a) == np.float32(b))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_scapy_dissects_codec_bytes_into_the_same_fields(msg):
    data = encode(msg, key=b"secret")
    pkt = Telemetry(data)
    assert bytes(pkt) == data, "scapy rebuilds the exact bytes"
    assert (pkt.device_id, pkt.bed, pkt.seq, int(pkt.flags), pkt.key_id) == \
        (msg.device_id, msg.bed, msg.seq, msg.flags, 1)
    assert pkt.sent_at_us == round(msg.sent_at * 1_000_000)
    assert pkt.tag == data[-16:]
    if isinstance(msg, NumericsMessage):
        body = pkt.numerics
        for name in ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "nibp_time",
                     "etco2", "awrr", "abp_sys", "abp_dia", "abp_map"):
            assert same(getattr(msg, name), getattr(body, name)), name
        rhythm = body.sprintf("%rhythm%")
        assert rhythm == (msg.rhythm or "not_analysed"), (rhythm, msg.rhythm)
        assert body.pvc_per_min == (255 if msg.pvc_per_min is None else msg.pvc_per_min)
    else:
        assert pkt.wave.channel == CHANNELS.index(msg.channel) + 1
        assert pkt.wave.sprintf("%channel%") == msg.channel
        assert (pkt.wave.rate, pkt.wave.first_index) == (msg.rate, msg.first_index)
        assert pkt.wave.samples == msg.samples.tolist()


@settings(max_examples=300, deadline=None)
@given(messages)
def test_codec_accepts_what_a_learner_builds_with_scapy(msg):
    common = dict(device_id=msg.device_id, bed=msg.bed, seq=msg.seq, flags=msg.flags,
                  sent_at_us=round(msg.sent_at * 1_000_000), boot_id=msg.boot_id)
    if isinstance(msg, NumericsMessage):
        values = {k: (math.nan if getattr(msg, k) is None else getattr(msg, k))
                  for k in ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map",
                            "nibp_time", "etco2", "awrr", "abp_sys", "abp_dia", "abp_map")}
        # a learner names the rhythm as the scapy layer shows it, or leaves it out
        if msg.rhythm is not None:
            values["rhythm"] = msg.rhythm
        if msg.pvc_per_min is not None:
            values["pvc_per_min"] = msg.pvc_per_min
        pkt = Telemetry(**common, numerics=TelemetryNumerics(**values))
    else:
        pkt = Telemetry(**common, wave=TelemetryWave(
            channel=msg.channel, rate=msg.rate, first_index=msg.first_index,
            samples=msg.samples.tolist()))
    assert bytes(pkt) == encode(msg)
    back = decode(bytes(pkt))
    assert type(back) is type(msg) and back.seq == msg.seq


def test_one_layout_table_drives_both_views():
    names = [f.name for f in Telemetry.fields_desc][: len(HEADER_FIELDS)]
    assert names == [name for name, _ in HEADER_FIELDS]


def test_a_packet_on_the_telemetry_port_dissects_by_itself():
    data = encode(NumericsMessage(1003, 3, 9, 1.7e9, 1, 180.0, None, 14.0, 36.9))
    pkt = IP(bytes(IP(dst="127.0.0.1") / UDP(sport=40000, dport=5005) / data))
    assert pkt[Telemetry].numerics.hr == 180.0 and "probe_off" in str(pkt[Telemetry].flags)
    bind_ports(telemetry=41234)
    other = IP(bytes(IP(dst="127.0.0.1") / UDP(sport=40000, dport=41234) / data))
    assert other.haslayer(Telemetry)


def test_alarm_frames_in_one_segment_dissect_one_by_one():
    alarm = AlarmMessage("1001-1", 1001, 1, "HR HIGH", "high", "raised", 140.0, 130.0, 5.0)
    stream = encode_alarm_frame(Hello(1001, 1)) + encode_alarm_frame(alarm)
    seg = IP(bytes(IP() / TCP(sport=50000, dport=5006) / stream))
    frames = [seg[AlarmFrame:i] for i in (1, 2)]
    assert [f.sprintf("%type%") for f in frames] == ["HELLO", "ALARM"]
    assert frames[1].message()["alarm_id"] == "1001-1"
    built = AlarmFrame(type="ACK", body=b'{"alarm_id":"1001-1"}')
    assert FrameDecoder().feed(bytes(built)) == [Ack("1001-1")]
    assert bytes(built) == encode_alarm_frame(Ack("1001-1"))
