"""The recorded captures in course/recordings/ dissect with our layers and hold what their
README.md says."""

from pathlib import Path

import pandas as pd
import pytest
from scapy.all import IP, TCP, rdpcap

from course.capture_analysis import tcp_retransmissions, telemetry_gaps
from course.constants import (
    RECORDED_ALARM_PORT,
    RECORDED_HTTP_PORT,
    RECORDED_TELEMETRY_PORT,
    RECORDINGS,
)
from tests.requirements import require_tshark
from vitalsim.layers import AlarmFrame, Telemetry, bind_ports
from vitalsim.protocol import decode

CAPTURES = RECORDINGS
bind_ports(telemetry=RECORDED_TELEMETRY_PORT, alarms=RECORDED_ALARM_PORT)


def frames(path: Path) -> list[tuple[int, str]]:
    """(source port, frame type) of every alarm-channel frame in a capture."""
    out = []
    for pkt in rdpcap(str(path)):
        layer = pkt.getlayer(AlarmFrame)
        while isinstance(layer, AlarmFrame):
            out.append((pkt[TCP].sport, layer.sprintf("%type%")))
            layer = layer.payload
    return out


@pytest.mark.parametrize("name", ["telemetry-clean", "telemetry-loss", "alarm-retransmissions",
                                  "alarm-restart", "websocket", "spoofed-telemetry",
                                  "hl7-mllp", "mqtt-qos"])
def test_every_capture_is_committed_small_and_described(name):
    path = CAPTURES / f"{name}.pcap"
    assert path.exists() and 0 < path.stat().st_size < 1_000_000
    assert f"`{name}.pcap`" in (CAPTURES / "README.md").read_text()
    assert len(rdpcap(str(path))) > 0


def test_clean_telemetry_has_no_gaps_and_every_datagram_decodes():
    packets = rdpcap(str(CAPTURES / "telemetry-clean.pcap"))
    assert all(p.haslayer(Telemetry) for p in packets)
    for p in packets:
        decode(bytes(p[Telemetry]))  # the codec agrees with the layer on recorded bytes
    gaps = telemetry_gaps(packets)
    assert len(gaps) == 2 and all(g == [] for g in gaps.values())


def test_lossy_telemetry_shows_sequence_gaps():
    gaps = telemetry_gaps(CAPTURES / "telemetry-loss.pcap")
    assert sum(len(g) for g in gaps.values()) >= 5, gaps


def test_kernel_loss_capture_holds_tcp_retransmissions():
    assert tcp_retransmissions(CAPTURES / "alarm-retransmissions.pcap")


def test_restart_capture_shows_two_connections_and_every_alarm_acked():
    seen = frames(CAPTURES / "alarm-restart.pcap")
    kinds = [kind for _, kind in seen]
    assert kinds.count("HELLO") == 2
    assert kinds.count("ALARM") == kinds.count("ACK") > 0
    packets = rdpcap(str(CAPTURES / "alarm-restart.pcap"))
    assert any(p[TCP].flags.R for p in packets), "refused while the station was down"


def test_websocket_capture_holds_the_upgrade_handshake():
    payload = b"".join(bytes(p[TCP].payload) for p in rdpcap(str(CAPTURES / "websocket.pcap")))
    # header names are case-insensitive (tornado writes "Sec-Websocket-Key")
    for words in (b"GET /ws HTTP/1.1", b"Upgrade: websocket", b"Sec-WebSocket-Key",
                  b"101 Switching Protocols", b"Sec-WebSocket-Accept", b'"type":"snapshot"'):
        assert words.lower() in payload.lower(), words


def test_websocket_capture_holds_masked_client_frames_and_a_close_from_each_side():
    from course.websocket import http_head, iter_frames, tcp_streams

    streams = tcp_streams(rdpcap(str(CAPTURES / "websocket.pcap")), RECORDED_HTTP_PORT)
    sent = {}
    for side, stream in streams.items():
        _, _, end = http_head(stream.data)
        sent[side] = [frame for _, frame in iter_frames(stream.data, end)]
        assert sum(frame.size for frame in sent[side]) == len(stream.data) - end, side
    client, server = sent["client"], sent["server"]
    assert all(f.masked for f in client) and not any(f.masked for f in server)
    assert [f.kind for f in client] == ["text", "close"]
    assert '"subscribe"' in client[0].text()
    assert (client[-1].close_code, server[-1].close_code) == (1000, 1000)
    assert server[0].text().startswith('{"v":1,"type":"snapshot"')
    assert any(f.length < 126 for f in server[:-1]) and any(f.length >= 126 for f in server)


def test_the_forged_datagram_is_valid_telemetry_from_nowhere():
    (pkt,) = rdpcap(str(CAPTURES / "spoofed-telemetry.pcap"))
    msg = decode(bytes(pkt[Telemetry]))
    assert pkt[IP].src == "10.0.0.66" and (msg.bed, msg.hr) == (3, 180.0)


def test_mqtt_capture_holds_every_qos_handshake_as_wiresharks_dissector_reads_it():
    """tshark's own MQTT dissector (no course code in the reading): a PUBLISH at each QoS on
    both hops (publisher to broker, broker to subscriber), each answered on its own connection
    with its own packet id: PUBACK for QoS 1, PUBREC, PUBREL, PUBCOMP for QoS 2."""
    from course.mqtt_capture import HANDSHAKES, handshake, mqtt_messages, tshark_mqtt

    require_tshark()
    path = CAPTURES / "mqtt-qos.pcap"
    seen = tshark_mqtt(path)
    publishes = seen[seen["type"] == "PUBLISH"]
    assert sorted(publishes["qos"]) == [0, 0, 1, 1, 2, 2], publishes
    assert set(publishes["from"]) == {"client", "broker"}  # both hops
    for _, publish in publishes.iterrows():
        qos, msgid = int(publish["qos"]), publish["msgid"]
        assert pd.isna(msgid) if qos == 0 else msgid > 0
        # the packet types in order, on the PUBLISH's own connection, with its packet id
        assert handshake(seen, publish["frame"]) == HANDSHAKES[qos], publish.to_dict()
    answers = seen[seen["type"].isin(["PUBACK", "PUBREC", "PUBREL", "PUBCOMP"])]
    assert sorted(answers["type"]) == ["PUBACK", "PUBACK", "PUBCOMP", "PUBCOMP", "PUBREC",
                                       "PUBREC", "PUBREL", "PUBREL"]
    # nothing answers a packet id that no PUBLISH on that connection carried
    ids = {(p, m) for p, m in zip(publishes["client_port"], publishes["msgid"], strict=True)
           if not pd.isna(m)}
    assert {(p, m) for p, m in zip(answers["client_port"], answers["msgid"], strict=True)} == ids
    # the course's scapy reader (lab 08) reads the same messages
    assert mqtt_messages(path).equals(seen)
