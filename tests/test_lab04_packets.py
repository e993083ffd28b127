"""Lab 04's helpers: captures as tables, the bounded live-or-recorded sniff, the comparison of a
learner's header layer with the course's, and that a learner's layer leaves the course's intact."""

import asyncio
import socket
import time

import pytest
from scapy.fields import ByteField, IntField, LongField, ShortField, XShortField
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Packet, Raw, bind_layers

from course import packets as lab
from course.capture_analysis import telemetry_gaps
from server import System
from tests.requirements import require_capture
from vitalsim.layers import Telemetry, TelemetryNumerics, bind_ports
from vitalsim.protocol import NumericsMessage, decode, encode


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


def header_layer(seq_field=IntField) -> type[Packet]:
    """What a learner writes in lab 04: the 34-byte header of version 3, its fields in the
    protocol's order."""

    class Header(Packet):
        name = "LearnerHeader"
        fields_desc = [XShortField("magic", 0x5653), ByteField("version", 3),
                       ByteField("type", 1), ByteField("flags", 0), ByteField("key_id", 0),
                       ShortField("bed", 0), IntField("device_id", 0), seq_field("seq", 0),
                       LongField("sent_at_us", 0), LongField("boot_id", 0),
                       ShortField("body_len", 0)]

    return Header


def test_recorded_reads_a_capture_with_its_ports_bound():
    packets = lab.recorded("telemetry-clean")
    # the recording: two beds' numerics and waves for a few seconds (42 datagrams in version 3)
    assert len(packets) == 42 and all(p.haslayer(Telemetry) for p in packets)
    with pytest.raises(FileNotFoundError, match="telemetry-clean"):
        lab.recorded("no-such-capture")


def test_telemetry_table_holds_what_the_codec_decodes_and_where_it_was():
    packets = lab.recorded("telemetry-loss")
    table = lab.telemetry_table(packets)
    assert len(table) == len(packets)
    for row in table.itertuples():
        msg = decode(bytes(packets[row.packet][Telemetry]))
        assert (row.device_id, row.bed, row.seq, row.hr) == (msg.device_id, msg.bed, msg.seq,
                                                             round(msg.hr, 2))
        assert row.sent_at_us == round(msg.sent_at * 1_000_000)
    missing = {dev: sorted(set(range(g.seq.min(), g.seq.max() + 1)) - set(g.seq))
               for dev, g in table.groupby("device_id")}
    assert missing == telemetry_gaps(packets), "the table's seq agrees with the gap analysis"
    assert table.time.iloc[0] == 0 and table.time.is_monotonic_increasing


def test_telemetry_table_skips_other_packets_but_keeps_their_numbers():
    data = encode(NumericsMessage(1003, 3, 9, 1.7e9, 0, 180.0, 97.0, 14.0, 36.9))
    mixed = [IP(bytes(IP(dst="127.0.0.1") / TCP(dport=80) / Raw(b"GET /"))),
             IP(bytes(IP(dst="127.0.0.1") / UDP(sport=4000, dport=5005) / data))]
    table = lab.telemetry_table(mixed)
    assert table.packet.tolist() == [1] and table.hr.tolist() == [180.0]
    assert table.type.tolist() == ["numerics"] and table.channel.isna().all()


def test_alarm_table_reads_the_restart_capture_frame_by_frame():
    table = lab.alarm_table(lab.recorded("alarm-restart"))
    assert table.frame.tolist().count("HELLO") == 2
    alarms = table[table.frame == "ALARM"]
    acks = table[table.frame == "ACK"]
    assert sorted(alarms.alarm_id) == sorted(acks.alarm_id), "every alarm ACKed once"
    assert set(alarms.sender) == {"device"} and set(acks.sender) == {"station"}
    # after the restart, HELLO and the alarms waiting in the outbox share one segment
    second_hello = table[table.frame == "HELLO"].packet.iloc[1]
    together = table[table.packet == second_hello].frame.tolist()
    assert together[0] == "HELLO" and len(together) >= 2 and set(together[1:]) == {"ALARM"}


def test_a_correct_header_layer_agrees_and_a_wrong_one_is_told_where():
    packets = lab.recorded("telemetry-clean")
    assert lab.header_differences(header_layer(), packets) == []
    wrong = lab.header_differences(header_layer(seq_field=ShortField), packets, limit=3)
    assert len(wrong) == 3 and wrong[0].startswith("packet 0, sent_at_us: yours")
    assert lab.header_differences(int, packets, limit=2) == [
        "your layer has no field named 'magic'", "your layer has no field named 'version'"]
    version_1 = [f for f in header_layer().fields_desc if f.name != "boot_id"]
    v1 = type("VersionOneHeader", (Packet,), {"name": "V1", "fields_desc": version_1})
    assert lab.header_differences(v1, packets) == ["your layer has no field named 'boot_id'"]


def test_a_learners_bound_layer_leaves_the_course_layers_as_they_were():
    packets = lab.recorded("telemetry-clean")
    before = [(bytes(p[IP]), p[Telemetry].numerics.hr) for p in packets]
    mine = header_layer()
    bind_layers(mine, TelemetryNumerics, type=1)  # what the lab's exercise does
    data = bytes(packets[0][Telemetry])
    assert mine(data)[TelemetryNumerics].hr == 72.0, "the binding reaches the course's body"
    again = [IP(bytes(p[IP])) for p in packets]
    assert [(bytes(p), p[Telemetry].numerics.hr) for p in again] == before
    assert all(type(p[UDP].payload) is Telemetry for p in again)
    assert bytes(Telemetry(data)) == data and decode(data).device_id == 1001


def test_without_capture_the_sniff_falls_back_to_the_recording_and_says_why(monkeypatch):
    monkeypatch.setattr(lab, "capture_unavailable_reason", lambda: "sniffing needs root; use")
    got = run(lab.sniff_or_recorded("udp port 1", count=5, seconds=1.0,
                                    recording="telemetry-clean"))
    assert not got.live and len(got.packets) == 42
    assert "course/recordings/telemetry-clean.pcap" in got.source and "needs root" in got.source


@pytest.mark.root
def test_a_live_sniff_stops_at_its_count_and_sees_each_datagram_once():
    require_capture()

    async def main():
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        bind_ports(telemetry=port)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        async def send():
            for seq in range(40):
                msg = NumericsMessage(1001, 1, seq, 1.7e9 + seq, 0, 70.0, 97.0, 14.0, 36.8)
                sender.sendto(encode(msg), ("127.0.0.1", port))
                await asyncio.sleep(0.02)

        task = asyncio.ensure_future(send())
        try:
            return await lab.sniff_or_recorded(f"udp dst port {port}", count=6, seconds=10,
                                               recording="telemetry-clean")
        finally:
            await task
            sender.close()
            receiver.close()

    got = run(main())
    assert got.live and "sniffed live" in got.source
    seqs = [p[Telemetry].seq for p in got.packets]
    assert len(seqs) == 6 and len(set(seqs)) == 6, seqs


@pytest.mark.root
def test_a_live_sniff_with_nothing_to_see_ends_at_its_deadline():
    require_capture()
    start = time.monotonic()
    got = run(lab.sniff_or_recorded("udp dst port 9", count=5, seconds=0.5,
                                    recording="telemetry-clean"))
    assert got.live and len(got.packets) == 0
    assert time.monotonic() - start < 5, "bounded by its seconds, not by its count"


def test_get_json_reads_the_station_api_without_blocking_its_loop():
    async def main():
        async with System.ephemeral(beds=0) as system:
            return await lab.get_json(system.url + "healthz")

    assert run(main())["status"] == "ok"


def _check_4b(forge):
    """Lab 04's check cell for 4b, after a run in which the authenticated station refused one
    forgery as bad_tag and kept taking the real monitors' datagrams."""
    from course import Checks, not_done_yet
    from tests.labcells import run_cell

    def done():
        return not_done_yet(forge, 2, 1002, 1, 250.0, 0, 0) is not None

    ns = run_cell("04", 'Checks("Exercise 4b', {
        "Checks": Checks, "not_done_yet": not_done_yet, "decode": decode, "forge": forge,
        "FORGED_HR": 250.0, "done": done, "before": {"received": 8},
        "after": {"received": 12, "rejected": {"bad_tag": 1}}, "history": {"hr": [72.0, 73.0]}})
    return ns["checks"]


def test_lab04_4b_fails_a_forgery_that_sends_no_body():
    def forge(bed, device_id, seq, hr, sent_at_us, boot_id):  # the header only: no numerics
        return Telemetry(bed=bed, device_id=device_id, seq=seq, sent_at_us=sent_at_us,
                         boot_id=boot_id)

    def right(bed, device_id, seq, hr, sent_at_us, boot_id):
        return Telemetry(bed=bed, device_id=device_id, seq=seq, sent_at_us=sent_at_us,
                         boot_id=boot_id,
                         numerics=TelemetryNumerics(hr=hr, spo2=97, rr=14, temp=36.8))

    def stub(*args):
        raise NotImplementedError("your code here")

    wrong = _check_4b(forge)
    assert [r.name for r in wrong.results if r.status == "fail"] == \
        ["your forgery's heart rate, decoded with no tag required"], wrong.report()
    assert "numerics body is 0 bytes" in wrong.report()
    assert _check_4b(right).passed, _check_4b(right).report()
    assert _check_4b(stub).status == "not done yet"
