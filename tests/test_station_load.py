"""The station's per-second work at ward scale, as behaviour rather than speed: no tick does the
whole ward's work, statistics are computed only for what someone asks for, and the loop-lag
monitor reports a stall in /api/stats. (How long a tick takes is the benchmark's to print.)"""

import asyncio
import json
import time

import server.station as station_module
from server import Station, StationConfig
from server.hub import encode
from server.looplag import LoopLag
from tests.helpers import get_json, run, wait_until, ward_station
from vitalsim.clock import VirtualClock
from vitalsim.protocol import NumericsMessage, ReceiverStats

WARD = 4000


def test_each_push_tick_judges_a_tenth_of_the_ward_and_a_second_of_ticks_judges_every_bed_once():
    clock = VirtualClock(100.0)
    station = ward_station(clock, push_hz=10.0)
    judged: list[list[int]] = []
    check = station.technical.check
    station.technical.check = lambda beds, now: (judged.append([b.bed for b in beds]),
                                                 check(beds, now))[1]
    clock.advance(5.0)  # every bed went quiet: all stale (3 s), none lost yet (10 s)
    station._push_tick()
    assert len(judged[0]) == WARD // 10, "one tick judges its slice, not the ward"
    assert sum(s.stale for s in station.beds.beds.values()) == WARD // 10
    for _ in range(9):
        station._push_tick()
    assert sorted(b for part in judged for b in part) == list(range(1, WARD + 1)), \
        "ten ticks (a second) judge every bed exactly once"
    assert all(s.stale for s in station.beds.beds.values())


def test_statistics_are_computed_only_for_the_beds_a_dashboard_asks_for(monkeypatch):
    computed: list[int] = []
    snapshot = ReceiverStats.snapshot

    def counting(self):
        computed.append(id(self))
        return snapshot(self)

    monkeypatch.setattr(ReceiverStats, "snapshot", counting)

    async def main():
        clock = VirtualClock(100.0)
        station = ward_station(clock)
        for _ in range(20):  # two seconds of ticks, nobody asking
            station._push_tick()
        assert computed == [], "no dashboard asked for any bed's statistics"
        client = station.hub.add(NullSocket())
        client.stats_beds = frozenset({7, 9})
        for _ in range(20):
            station._push_tick()
        wanted = {id(station.beds.beds[7].stats), id(station.beds.beds[9].stats)}
        assert sorted(computed) == sorted(wanted), "each asked-for bed once: nothing new came"
        message = json.loads(station.stats_message(client.stats_beds))
        assert set(message["beds"]) == {"7", "9"} and message["type"] == "stats"
        assert {"udp", "tcp", "websocket", "loop"} <= message.keys()
        totals = json.loads(station.stats_message(frozenset()))
        assert totals["beds"] == {} and len(computed) == 2, "totals cost no bed statistics"
        await station.hub.close()
    run(main())


class NullSocket:
    """A dashboard that reads everything at once."""

    def write_message(self, message: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass


def test_loop_lag_is_kept_as_max_and_p99_and_starts_again_at_a_reset():
    lag = LoopLag(resolution=0.001)
    for _ in range(990):
        lag.record(0.0002)
    for _ in range(10):
        lag.record(0.050)
    assert lag.counters()["lag_max_ms"] == 50.0
    assert lag.counters()["lag_p99_ms"] == 1.0, "99 % of wake-ups came within the first bin"
    lag.record(0.3)
    assert 50.0 <= lag.counters()["lag_p99_ms"] <= 51.0, "the 50 ms bin, to its resolution"
    assert lag.counters()["samples"] == 1001
    lag.reset()
    assert lag.counters() == {"interval_ms": 10.0, "samples": 0, "lag_max_ms": 0.0,
                              "lag_p99_ms": 0.0}


def test_a_stall_of_the_station_loop_shows_in_api_stats():
    async def main():
        station = Station(StationConfig(http_port=0, udp_port=0, tcp_port=0))
        await station.start()
        try:
            await wait_until(lambda: station.loop_lag.count > 0, what="the monitor's first tick")
            time.sleep(0.08)  # the stall itself: the loop is held for 80 ms
            await wait_until(lambda: station.loop_lag.max >= 0.07, timeout=5,
                             what="the monitor to record the stall")
            loop = (await get_json(f"{station.url}api/stats"))["loop"]
            assert loop["lag_max_ms"] >= 70.0 and 0.0 <= loop["lag_p99_ms"] <= loop["lag_max_ms"]
        finally:
            await station.stop()
    run(main())


def test_the_snapshot_a_dashboard_gets_is_joined_from_each_beds_encoding_and_says_the_same(
        monkeypatch):
    clock = VirtualClock(100.0)
    station = ward_station(clock, beds=50)
    station.patients[7] = "Ms Ada Lovelace"
    for bed in range(1, 51):
        station.bed_encoded(bed)  # what the hand-over does at each change
    encodings = []
    encode_part = station_module.encode_part
    monkeypatch.setattr(station_module, "encode_part",
                        lambda value: (encodings.append(value), encode_part(value))[1])
    joined = json.loads(station.snapshot_message())
    monkeypatch.undo()
    assert joined == json.loads(encode({"type": "snapshot", **station.snapshot()}))
    assert len(encodings) == 3, \
        "the alarms, the audio pauses and the statistics; no bed encoded again"


def test_a_beds_encoded_summary_says_what_json_of_its_summary_says_whatever_it_shows():
    """The station joins a bed's summary from its frame (encoded once per change of patient,
    link, NEWS2, cuff) and its readings (encoded by hand for every datagram): the same JSON
    values as ``encode_part(bed_summary(bed))``, for any reading, and again after each part of
    the frame changes."""
    from hypothesis import given, settings

    from server.hub import encode_part
    from tests.strategies import numerics

    clock = VirtualClock(100.0)
    station = ward_station(clock, beds=3)

    def same(bed: int) -> None:
        assert json.loads(station.bed_encoded(bed)) == \
            json.loads(encode_part(station.bed_summary(bed)))

    @settings(max_examples=150, deadline=None)
    @given(numerics)
    def check(msg):
        state = station.beds.beds[2]
        state.update(msg, clock.now())
        same(2)

    check()
    state = station.beds.beds[1]
    same(1)
    before = station.bed_encoded(1)
    station.patients[1] = 'Ms "Ada" Lovelace \u00e9'
    same(1)
    state.stale = True
    same(1)
    state.alarm_connected = True
    same(1)
    assert station.bed_encoded(1) != before
    clock.advance(1.0)
    state.update(NumericsMessage(1001, 1, 1, clock.now(), 0x03, 80.0, 95.5, None, 37.25,
                                 rhythm="sinus", pvc_per_min=3), clock.now())
    station.observations.on_numerics(1, state.latest)
    same(1)
    assert '"hr":80.0' in station.bed_encoded(1)


def test_a_reading_that_is_not_finite_is_refused_by_the_encoding_as_json_refuses_it():
    clock = VirtualClock(100.0)
    station = ward_station(clock, beds=1)
    state = station.beds.beds[1]
    station.bed_encoded(1)  # its frame is encoded: the next reading takes the quick path
    state.update(NumericsMessage(1001, 1, 0, clock.now(), 0, 72.0, 97.0, float("inf"), 36.8),
                 clock.now())
    try:
        station.bed_encoded(1)
    except ValueError as exc:
        assert "not JSON" in str(exc)
    else:
        raise AssertionError("a NaN reading was encoded")
