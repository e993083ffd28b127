"""Anti-replay: a captured, correctly signed datagram sent again is refused as ``replay``.

The tag proves who made a datagram, not that it is new. Unit tests of the sliding window
(:class:`vitalsim.protocol.replay.ReplayWindow`, RFC 4303 section 3.4.3) against a model, with
hypothesis over any order of sequence numbers inside and outside the window; then the station
over loopback, replaying one signed datagram 11 times, and again after 4,096 newer ones."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import run, wait_until
from tests.station_client import Udp, numerics, running, station
from vitalsim.protocol.replay import SEQ_MOD, ReplayWindow
from vitalsim.protocol.telemetry import decode, encode

BOOT = 1_700_000_000_000_000
SIZE, AHEAD = 64, 16  # a small window, so that hypothesis reaches both of its edges


class Model:
    """What the window must answer, from the set of admitted numbers (no bitmap, no wrap)."""

    def __init__(self) -> None:
        self.admitted: set[int] = set()
        self.jump: int | None = None

    def judge(self, seq: int) -> str:
        if not self.admitted:
            self.admitted.add(seq)
            return "admit"
        highest = max(self.admitted)
        if seq > highest + AHEAD:  # too far ahead for one datagram: needs a second
            candidate, self.jump = self.jump, seq
            if candidate is not None and 0 < seq - candidate <= AHEAD:
                self.jump = None
                self.admitted.add(seq)
                return "admit"
            return "sequence"
        if seq <= highest - SIZE:  # behind the window: too old to tell
            return "replay"
        self.jump = None
        if seq in self.admitted:
            return "replay"
        self.admitted.add(seq)
        return "admit"


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(0, 4 * SIZE), max_size=120))
def test_any_order_of_sequence_numbers_follows_the_model(seqs):
    """Reordered numbers inside the window are admitted once each; a number admitted before, or
    behind the window, is a replay; no number is ever admitted twice."""
    window, model = ReplayWindow(size=SIZE, max_ahead=AHEAD), Model()
    admitted = []
    for seq in seqs:
        verdict = window.judge(BOOT, seq)
        assert verdict == model.judge(seq), (seq, sorted(model.admitted))
        if verdict == "admit":
            admitted.append(seq)
    assert len(admitted) == len(set(admitted))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.permutations(list(range(SIZE))), st.integers(0, SEQ_MOD - 1))
def test_any_reordering_inside_the_window_is_admitted_across_the_wrap(order, start):
    """Every permutation of a window's worth of numbers, starting anywhere in the u32 space
    (so some cross 2**32 -> 0), is admitted once, and each number's second copy refused."""
    window = ReplayWindow(size=SIZE, max_ahead=SIZE)
    assert window.judge(BOOT, start) == "admit"
    seqs = [(start + 1 + i) % SEQ_MOD for i in order]
    assert [window.judge(BOOT, s) for s in seqs] == ["admit"] * SIZE
    assert [window.judge(BOOT, s) for s in seqs] == ["replay"] * SIZE


def test_a_new_boot_is_a_restart_and_the_old_boot_is_refused():
    window = ReplayWindow(size=SIZE, max_ahead=AHEAD)
    assert [window.judge(BOOT, s) for s in (100, 101)] == ["admit", "admit"]
    assert window.judge(BOOT + 1, 0) == "new_boot"
    assert window.judge(BOOT, 101) == "replay"  # the old boot is still current until confirmed
    assert window.judge(BOOT + 1, 1) == "restart"
    assert (window.boot_id, window.highest) == (BOOT + 1, 1)
    assert [window.judge(BOOT, s) for s in (102, 0)] == ["old_boot", "old_boot"]
    assert [window.judge(BOOT + 1, s) for s in (0, 1, 2)] == ["replay", "replay", "admit"]


def test_a_device_without_boot_id_restarting_is_told_by_two_numbers_far_behind():
    """Boot id 0 (a device given none): far behind cannot be told from a restart, so two in a
    row are taken for one, as before the window existed. One alone changes nothing."""
    window = ReplayWindow(size=SIZE, max_ahead=AHEAD)
    for s in range(500, 510):
        window.judge(0, s)
    assert window.judge(0, 3) == "sequence" and window.highest == 509
    assert window.judge(0, 509) == "replay"
    assert window.judge(0, 0) == "sequence"
    assert window.judge(0, 1) == "restart" and window.highest == 1


def test_bad_sizes_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="size"):
        ReplayWindow(size=0)


def test_the_station_refuses_a_replayed_signed_datagram_and_stores_it_once():
    """The attack from issue 16: one captured, signed datagram sent 11 more times, and again
    after 4,096 newer ones. Each copy is refused as ``replay``; the bed's history holds the
    reading once; its loss figure and restart count do not move."""
    key = b"k" * 32

    async def main():
        async with running(station(telemetry_keys={1: key}, require_tag=True)) as st, \
                Udp(st.udp_port) as udp:
            boot = round(time.time() * 1e6) - 10_000_000

            def signed(seq: int, hr: float = 72.0) -> bytes:
                return encode(numerics(seq, hr=hr, boot_id=boot), key=key, key_id=1)

            for seq in range(1, 6):
                udp.send(signed(seq, hr=60.0 + seq))
            await wait_until(lambda: 1 in st.beds.beds and st.beds.beds[1].stats.received == 5,
                             what="the first five datagrams")
            bed = st.beds.beds[1]
            captured = signed(3, hr=63.0)
            before = (bed.stats.lost, bed.stats.loss_ratio, bed.stats.restarts)
            for _ in range(11):
                udp.send(captured)
            await wait_until(lambda: st.ingest.rejected["replay"] == 11, what="11 replays refused")
            assert [m.seq for m in bed.history].count(3) == 1
            assert (bed.stats.received, bed.stats.lost, bed.stats.loss_ratio,
                    bed.stats.restarts) == (5, *before)
            assert "seq 3" in st.ingest.last_error["replay"]
            # 4,096 newer datagrams, paced in batches so that the kernel drops none of them
            for first in range(6, 6 + 4096, 256):
                for seq in range(first, first + 256):
                    udp.send(signed(seq))
                await wait_until(lambda f=first: bed.stats.received == f + 256 - 1,
                                 what=f"datagrams up to {first + 255}")
            assert (bed.stats.lost, bed.stats.restarts) == (0, 0)
            udp.send(captured)
            await wait_until(lambda: st.ingest.rejected["replay"] == 12, what="the late replay")
            assert (bed.stats.received, bed.stats.lost, bed.stats.loss_ratio,
                    bed.stats.restarts) == (4101, 0, 0.0, 0)
            assert bed.latest.seq == 4101 and bed.latest.hr == 72.0
            assert st.stats()["udp"]["rejected"]["replay"] == 12
    run(main())


def test_with_anti_replay_off_a_replay_is_stored_again_which_is_what_the_window_prevents():
    """The switch lab 06 uses to show the attack: off, the replayed reading joins the history a
    second time and counts as a duplicate; the default (on) is tested above."""
    async def main():
        async with running(station(anti_replay=False)) as st, Udp(st.udp_port) as udp:
            boot = round(time.time() * 1e6) - 10_000_000
            for seq in (1, 2, 3):
                udp.send(encode(numerics(seq, boot_id=boot)))
            await wait_until(lambda: 1 in st.beds.beds and st.beds.beds[1].stats.received == 3,
                             what="three datagrams")
            udp.send(encode(numerics(2, boot_id=boot)))
            bed = st.beds.beds[1]
            await wait_until(lambda: bed.stats.duplicates == 1, what="the replay, admitted")
            assert [m.seq for m in bed.history] == [1, 2, 3, 2]
            assert st.ingest.rejected.get("replay") is None
            st.set_anti_replay(True)  # and on again, on the running station
            udp.send(encode(numerics(2, boot_id=boot)))
            await wait_until(lambda: st.ingest.rejected.get("replay") == 1, what="refused now")
            assert [m.seq for m in bed.history] == [1, 2, 3, 2]
    run(main())


def test_a_tap_on_the_udp_proxy_sees_every_datagram_the_ward_sends():
    from server.system import System

    async def main():
        async with System.ephemeral(beds=1, waves=False, impaired=True) as system:
            seen: list[bytes] = []
            system.udp_proxy.taps.append(seen.append)
            await wait_until(lambda: len(seen) >= 2, what="two datagrams at the tap")
            assert decode(seen[0]).device_id == 1001
    run(main())
