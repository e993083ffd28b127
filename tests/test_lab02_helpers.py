"""Lab 02's helpers: the framing exercise's streams and verdicts, the virtual-clock reset drill,
the capture tables, the live reset drill over the TCP proxy, and the live namespace capture."""

import os
import subprocess
from pathlib import Path

import pytest
from scapy.all import rdpcap

import course.reset_drill
from course.alarm_drill import DESIGNS, compare_designs, run_drill
from course.capture_analysis import tcp_retransmissions
from course.framing import (
    MAX_FRAME,
    byte_by_byte,
    cut,
    frames_from,
    frames_per_read,
    header,
    reference_frames,
    reference_verdict,
    sample_stream,
    verdict,
)
from course.netns_recorder import record_alarm_channel
from course.reset_drill import RECORDED_CAPTURE, ResetDrill, alarm_channel_capture
from course.tcp_evidence import carried, retransmission_table, segment_table
from tests.helpers import run
from tests.requirements import require_nft, require_root
from vitalsim.protocol import Ack, FrameDecoder
from vitalsim.protocol.alarm_channel import encode_alarm_frame

# -- framing ---------------------------------------------------------------------------------


class AlwaysOne:
    """A decoder that accepts anything and always returns one frame."""

    def feed(self, data):
        return [(1, {})]


class Stub:
    def feed(self, data):
        raise NotImplementedError("your code here")


def test_the_sample_stream_is_seeded_and_decodes_the_same_however_it_is_cut():
    stream = sample_stream(alarms=3, seed=5)
    assert stream == sample_stream(alarms=3, seed=5) != sample_stream(alarms=3, seed=6)
    whole = reference_frames([stream])
    assert [t for t, _ in whole] == [1, 2, 2, 2, 4]
    assert whole[1][1]["alarm_id"] == "1003-1"
    assert reference_frames(byte_by_byte(stream)) == whole
    pieces = cut(stream, seed=3, largest=7)
    assert b"".join(pieces) == stream and max(map(len, pieces)) <= 7
    assert reference_frames(pieces) == whole


def test_frames_from_and_per_read_use_a_fresh_learner_decoder_each_time():
    class Reference:
        def __init__(self):
            self.d = FrameDecoder()

        def feed(self, data):
            return [(3, {"alarm_id": ev.alarm_id}) for ev in self.d.feed(data)]

    stream = encode_alarm_frame(Ack("1001-1")) + encode_alarm_frame(Ack("1001-2"))
    assert frames_from(Reference, byte_by_byte(stream)) == [(3, {"alarm_id": "1001-1"}),
                                                            (3, {"alarm_id": "1001-2"})]
    assert frames_per_read(Reference, [stream[:-1], stream[-1:]]) == [1, 1]


def test_verdicts_reject_impossible_lengths_at_once_and_pass_a_stub_on():
    assert reference_verdict(header(MAX_FRAME + 1)) == "rejected"
    assert reference_verdict(header(0)) == "rejected"
    assert reference_verdict(header(MAX_FRAME)) == "accepted, 0 frames"
    assert verdict(AlwaysOne, encode_alarm_frame(Ack("1"))) == "accepted, 1 frames"
    with pytest.raises(NotImplementedError):
        verdict(Stub, header(0))


# -- the virtual-clock drill -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 7])
def test_each_design_fails_the_way_the_lab_says_and_the_journal_gives_exactly_once(seed):
    results = {d: run_drill(d, seed=seed) for d in DESIGNS}
    tcp, nodedup, journal = (results[d] for d in DESIGNS)
    assert tcp.missing and not tcp.duplicated and tcp.resent == 0
    assert not nodedup.missing and nodedup.duplicated
    assert journal.missing == [] and journal.duplicated == []
    assert sorted(journal.stored) == sorted(journal.raised)
    assert journal.ignored > 0 and journal.resent >= journal.ignored
    assert tcp.raised == nodedup.raised == journal.raised, "the same alarms under every design"


def test_the_drill_is_deterministic_and_names_a_bad_design():
    assert compare_designs(seed=2).equals(compare_designs(seed=2))
    assert run_drill("ack + journal", seed=2) == run_drill("ack + journal", seed=2)
    frame = run_drill("ack, no dedup", seed=2).stored_frame()
    assert frame["alarm_id"].duplicated().any()
    with pytest.raises(ValueError, match="expected one of"):
        run_drill("udp")


# -- reading the capture ---------------------------------------------------------------------


def test_carried_names_frames_and_marks_a_cut_one():
    two = encode_alarm_frame(Ack("1001-5c")) + encode_alarm_frame(Ack("1001-6"))
    assert carried(two) == "ACK 1001-5c, ACK 1001-6"
    assert carried(two[:-3]) == "ACK 1001-5c, …"
    assert carried(b"") == ""


def test_the_tables_of_the_recorded_capture_agree_with_tcp_retransmissions():
    """The tables lab 02 prints and the retransmission finder its check uses say the same of the
    recording (lab 02 cites its packets from them: tests/test_traces.py checks what it cites)."""
    packets = rdpcap(str(RECORDED_CAPTURE))
    seg = segment_table(packets)
    assert len(seg) == len(packets)
    table = retransmission_table(packets)
    reference = {(r.seq, r.times_sent) for r in tcp_retransmissions(packets)}
    assert {(s, len(p.split(", "))) for s, p in zip(table["seq"], table["sent at packets"],
                                                     strict=True)} == reference
    assert len(table) > 0 and set(table["from"]) == {"bedside", "station"}
    for _, row in table.iterrows():
        first = int(row["sent at packets"].split(", ")[0])
        assert seg.loc[first, "seq"] == row["seq"] and seg.loc[first, "len"] == row["len"]


# -- the live reset drill --------------------------------------------------------------------


def test_a_reset_in_mid_burst_loses_no_alarm_and_stores_none_twice():
    async def main():
        drill = await ResetDrill(beds=3, seed=2).start()
        folder = drill.journal_path.parent
        try:
            await drill.wait_for_alarms(5)
            assert await drill.reset_mid_burst() == 3
            in_flight = drill.in_flight()
            await drill.wait_reconnected()
            await drill.drain()
            counts, raised, journal = drill.counters(), drill.raised(), drill.journal()
        finally:
            await drill.stop()
        return folder, in_flight, counts, raised, journal

    folder, (not_stored, ack_on_the_way), counts, raised, journal = run(main())
    assert ack_on_the_way >= 1, "the reset came while an ACK was on the wire"
    assert counts["re-sent after reconnect"] >= not_stored + ack_on_the_way
    assert counts["duplicates ignored"] >= 1
    assert sorted(journal["alarm_id"]) == sorted(raised["alarm_id"]), "each exactly once"
    assert counts["journaled"] == counts["raised"] == len(raised)
    assert not folder.exists(), "stop removes the journal's temporary folder"


# -- the capture, live or recorded -----------------------------------------------------------


def test_without_live_capture_the_recorded_one_is_used_with_the_reason(tmp_path, monkeypatch):
    capture = alarm_channel_capture(tmp_path, live=False)
    assert capture.path == RECORDED_CAPTURE and not capture.live and "live=False" in capture.note

    def broken(folder):
        raise TimeoutError("no line with 'dashboard:' within 20s")
    monkeypatch.setattr(course.reset_drill, "unavailable_reason", lambda: None)
    monkeypatch.setattr(course.reset_drill, "record_alarm_channel", broken)
    capture = alarm_channel_capture(tmp_path)
    assert capture.path == RECORDED_CAPTURE and "live recording failed" in capture.note


def _our_namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    return [line for line in listed.stdout.splitlines() if f"vitalsim-{os.getpid()}-" in line]


@pytest.mark.root
def test_a_live_capture_in_namespaces_shows_retransmissions_and_every_alarm_once(tmp_path):
    require_root()
    require_nft()
    capture = record_alarm_channel(tmp_path, seconds=2.5, beds=3)
    assert capture.live and Path(capture.path).stat().st_size > 0
    assert _our_namespaces() == [], "the namespaces are torn down"
    assert capture.ward["unacknowledged"] == 0
    assert capture.journaled == capture.ward["alarms_raised"] >= 3
    packets = rdpcap(str(capture.path))
    assert len(segment_table(packets)) == len(packets) > 10
    # nftables drops at random (unseeded): about 40 data segments at 20% make none retransmitted
    # a one-in-several-thousand event, so this asks only that the table and the reference agree
    assert len(retransmission_table(packets)) == len(tcp_retransmissions(packets))


def test_stop_after_a_failed_start_leaves_nothing_running(monkeypatch):
    async def main():
        drill = ResetDrill(beds=2)
        folder = drill.journal_path.parent

        async def refuse(self):
            raise OSError("no such port")
        monkeypatch.setattr("vitalsim.devices.Ward.start", refuse)
        with pytest.raises(OSError):
            await drill.start()
        return drill, folder

    drill, folder = run(main())
    assert not drill.system.station.running and not folder.exists()
