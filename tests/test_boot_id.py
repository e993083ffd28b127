"""The device's boot id in telemetry (header version 2): a restart is told apart from a replay.

A restarted monitor numbers its datagrams from 0 again. Without a boot id, the station could only
guess from the sequence numbers whether that is a restart, a long outage or a forger; with it, a
newer boot id is a new run of the device, and an older one is a datagram sent before the restart
(a replay, or a straggler) that must change nothing. Unit tests of ``ReceiverStats.judge``
(with hypothesis over interleavings of two boots), the codec, and the station over loopback."""

import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import run, wait_until
from tests.station_client import Udp, numerics, running, station
from vitalsim.protocol.stats import ReceiverStats
from vitalsim.protocol.telemetry import (
    HEADER,
    MAGIC,
    NUMERICS_BODY,
    VERSION,
    NumericsMessage,
    TelemetryError,
    decode,
    encode,
)

OLD, NEW = 1_700_000_000_000_000, 1_700_000_100_000_000  # two boots of one device (µs)


def feed(stats: ReceiverStats, boot: int, seq: int, t: float = 0.0) -> str:
    """What the station does with one datagram: judge it, and observe it if admitted."""
    verdict = stats.judge(boot, seq)
    if verdict in ("admit", "restart"):
        stats.observe(seq, t, t)
    return verdict


#: the numerics body of versions 1 and 2 (7 x f32 and the cuff time), before version 3's fields
OLD_NUMERICS = struct.Struct("!7fd")


def test_the_version_3_header_carries_the_boot_id_and_is_34_bytes():
    msg = NumericsMessage(1001, 1, 7, 1.7e9, 0, 72.0, 97.0, 14.0, 36.8, boot_id=NEW)
    data = encode(msg)
    assert (VERSION, HEADER.size, len(data)) == (3, 34, 34 + NUMERICS_BODY.size)
    assert data[2] == 3 and struct.unpack_from("!Q", data, 24) == (NEW,)
    assert decode(data).boot_id == NEW


def test_a_version_1_datagram_is_refused_saying_which_version_it_was_and_which_is_spoken():
    v1_header = struct.Struct("!HBBBBHIIQH")  # version 1: no boot id, 26 bytes
    body = OLD_NUMERICS.pack(72, 97, 14, 36.8, *[float("nan")] * 4)
    data = v1_header.pack(MAGIC, 1, 1, 0, 0, 1, 1001, 1, 0, len(body)) + body
    with pytest.raises(TelemetryError) as err:
        decode(data)
    assert err.value.reason == "bad_version"
    assert "version 1 datagram" in str(err.value) and "only version 3" in str(err.value)
    with pytest.raises(TelemetryError, match="version 1 datagram"):
        decode(data[:20])  # even cut short, the version is named first


def test_a_version_2_datagram_is_refused_naming_its_version():
    """Version 2 has the same 34-byte header as version 3 and a shorter numerics body: a
    receiver must name the version, not complain about the length."""
    body = OLD_NUMERICS.pack(72, 97, 14, 36.8, *[float("nan")] * 4)
    data = HEADER.pack(MAGIC, 2, 1, 0, 0, 1, 1001, 1, 0, NEW, len(body)) + body
    with pytest.raises(TelemetryError) as err:
        decode(data)
    assert err.value.reason == "bad_version"
    assert "version 2 datagram" in str(err.value) and "only version 3" in str(err.value)


def test_a_newer_boot_is_a_restart_from_its_second_datagram_and_starts_a_new_run():
    s = ReceiverStats()
    assert [feed(s, OLD, seq) for seq in (10, 11, 13)] == ["admit"] * 3  # 12 lost
    assert feed(s, NEW, 0) == "new_boot" and s.boot_id == OLD and s.restarts == 0
    assert feed(s, NEW, 1) == "restart"
    assert (s.boot_id, s.restarts) == (NEW, 1)
    assert feed(s, NEW, 2) == "admit"
    # the old run's loss is kept; the new run starts at its confirming datagram, no gap between
    assert (s.received, s.expected, s.lost) == (5, 6, 1)


def test_an_older_boot_is_refused_and_changes_nothing():
    s = ReceiverStats()
    feed(s, OLD, 5)
    feed(s, NEW, 0)
    feed(s, NEW, 1)
    before = (s.snapshot(), s.boot_id)
    for seq in (6, 2, 1000):
        assert feed(s, OLD, seq) == "old_boot"
    assert (s.snapshot(), s.boot_id) == before


def test_one_datagram_of_a_newer_boot_cannot_lock_the_device_out():
    """A forger's single datagram with a newer boot id is remembered, not believed: the real
    device's next datagram is still admitted."""
    s = ReceiverStats()
    feed(s, OLD, 1)
    assert feed(s, 2**63, 99) == "new_boot"
    assert feed(s, OLD, 2) == "admit" and s.boot_id == OLD


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=80))
def test_any_interleaving_of_two_boots_follows_the_model(events):
    """Two runs of one device interleaved (the old one's stragglers among the new one's
    datagrams), each datagram delivered or lost. The model: the new boot is believed at its
    second delivered datagram; from then on every old-boot datagram is refused as ``old_boot``
    and changes nothing; loss is counted within each run, never across the restart."""
    s = ReceiverStats()
    assert feed(s, OLD, 999) == "admit"  # the old boot is the device's current one
    next_seq = {OLD: 1000, NEW: 0}
    delivered = {OLD: [999], NEW: []}
    new_is_current = False
    for is_new, arrives in events:
        boot = NEW if is_new else OLD
        seq = next_seq[boot]
        next_seq[boot] += 1
        if not arrives:
            continue
        before = s.snapshot()
        verdict = feed(s, boot, seq)
        if boot == OLD:
            assert verdict == ("old_boot" if new_is_current else "admit")
            if new_is_current:
                assert s.snapshot() == before
            else:
                delivered[OLD].append(seq)
        else:
            delivered[NEW].append(seq)
            expected = ["new_boot", "restart"][len(delivered[NEW]) - 1] \
                if len(delivered[NEW]) <= 2 else "admit"
            assert verdict == expected
            new_is_current = len(delivered[NEW]) >= 2
        assert s.boot_id in (OLD, NEW)
    assert s.restarts == (1 if new_is_current else 0)
    runs = [delivered[OLD], delivered[NEW][1:] if new_is_current else []]
    assert s.received == sum(len(r) for r in runs)
    assert s.lost == sum(r[-1] - r[0] + 1 - len(r) for r in runs if r)


def test_the_station_counts_a_restart_and_refuses_the_older_boot_with_its_own_reason():
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            now_us = round(time.time() * 1e6)
            old, new = now_us - 60_000_000, now_us - 1_000_000
            for seq in range(1, 6):
                udp.send(encode(numerics(seq, boot_id=old)))
            await wait_until(lambda: 1 in st.beds.beds and st.beds.beds[1].stats.received == 5,
                             what="five datagrams of the first boot")
            for seq in range(0, 3):  # the monitor restarted: a new boot, numbering from 0
                udp.send(encode(numerics(seq, hr=90.0, boot_id=new)))
            bed = st.beds.beds[1]
            await wait_until(lambda: bed.latest.hr == 90.0 and bed.stats.received == 7,
                             what="the new boot's datagrams")
            assert (bed.stats.restarts, bed.stats.boot_id, bed.stats.lost) == (1, new, 0)
            assert st.ingest.rejected["new_boot"] == 1
            before = bed.stats.snapshot()
            udp.send(encode(numerics(6, hr=250.0, boot_id=old)))  # a replay of the old boot
            udp.send(encode(numerics(3, boot_id=now_us + 3_600_000_000)))  # booted in an hour
            await wait_until(lambda: st.ingest.rejected["old_boot"] == 1
                             and st.ingest.rejected["future"] == 1, what="both refused")
            assert "older than device 1001's current boot" in st.ingest.last_error["old_boot"]
            assert (bed.latest.hr, bed.stats.snapshot()) == (90.0, before)
            assert st.stats()["beds"]["1"]["restarts"] == 1
    run(main())


def test_the_station_refuses_a_version_1_datagram_naming_both_versions():
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            body = OLD_NUMERICS.pack(72, 97, 14, 36.8, *[float("nan")] * 4)
            v1 = struct.pack("!HBBBBHIIQH", MAGIC, 1, 1, 0, 0, 1, 1001, 1,
                             round(time.time() * 1e6), len(body)) + body
            udp.send(v1)
            await wait_until(lambda: st.ingest.rejected["bad_version"] == 1, what="the reject")
            message = st.ingest.last_error["bad_version"]
            assert "version 1" in message and "version 3" in message, message
            assert 1 not in st.beds.beds
    run(main())
