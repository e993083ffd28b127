"""The collector's full collections stay off the station's loop: as the ward grows, what is
alive is frozen out of them (server.gc_pauses), and every pause is recorded for /api/stats.
Behaviour, not speed: which objects a collection still walks, not how long it takes."""

import gc
import weakref

from server import Station, StationConfig
from server.beds import BedState
from server.gc_pauses import GcPauses
from tests.helpers import get_json, run, ward_station
from vitalsim.clock import VirtualClock
from vitalsim.protocol import NumericsMessage


def walked(kind: type) -> int:
    """How many objects of ``kind`` a collection would walk (frozen ones are not listed)."""
    return sum(isinstance(o, kind) for o in gc.get_objects())


class Cycle:
    """Garbage only the collector can free: an object that refers to itself."""

    def __init__(self) -> None:
        self.me = self


def test_a_large_ward_is_frozen_out_of_collections_and_thawed_and_collected_at_stop():
    station = ward_station(VirtualClock(100.0), beds=300)
    pauses = GcPauses(min_beds=256)
    pauses.start()
    try:
        assert len(station.beds.beds) == 300 and walked(BedState) >= 300
        old = Cycle()
        gc.collect()  # it is old now (the oldest generation), and then garbage, in a cycle
        garbage = weakref.ref(old)
        del old
        pauses.ward_size(300)
        assert walked(BedState) == 0, "the ward's beds are still walked by every collection"
        assert pauses.freezes == 1 and pauses.frozen > 0
        pauses.ward_size(300)
        pauses.ward_size(337)
        assert pauses.freezes == 1, "a ward that grew by less than an eighth is not frozen again"
        pauses.ward_size(338)
        assert pauses.freezes == 2, "grown by an eighth: frozen again"
        gc.collect()
        assert garbage() is not None, "frozen garbage waits for the thaw"
    finally:
        pauses.stop()
    assert garbage() is None, "what the freeze kept of the garbage is collected at stop"
    assert walked(BedState) >= 300, "the ward is walked again once the station stops"
    assert pauses.freezes == 0 and pauses.counters()["frozen_objects"] == 0


def test_a_ward_smaller_than_min_beds_is_never_frozen():
    """A lab's ward of a few dozen beds: its full collections are short, and freezing would
    keep a notebook's own garbage until the station stops."""
    station = ward_station(VirtualClock(100.0), beds=40)
    pauses = GcPauses()
    pauses.start()
    try:
        pauses.ward_size(len(station.beds.beds))
        assert pauses.freezes == 0 and walked(BedState) >= 40
    finally:
        pauses.stop()


def test_without_the_freeze_nothing_is_frozen_and_the_pauses_are_still_recorded():
    station = ward_station(VirtualClock(100.0), beds=300)
    pauses = GcPauses(freeze=False)
    pauses.start()
    try:
        pauses.ward_size(len(station.beds.beds))
        assert pauses.freezes == 0 and walked(BedState) >= 300
        gc.collect()
        counters = pauses.counters()
        assert counters["collections"][2] >= 1 and counters["max_pause_ms"][2] > 0.0
        pauses.reset()
        assert pauses.counters()["collections"] == [0, 0, 0]
    finally:
        pauses.stop()
    collections = pauses.counters()["collections"]
    gc.collect()
    assert pauses.counters()["collections"] == collections, "it stopped listening at stop()"


def test_api_stats_reports_the_collectors_pauses_beside_the_loop_lag():
    async def main():
        station = Station(StationConfig(http_port=0, udp_port=0, tcp_port=0))
        await station.start()
        try:
            gc.collect()
            loop = (await get_json(f"{station.url}api/stats"))["loop"]
            assert loop["gc"]["collections"][2] >= 1
            assert set(loop["gc"]) == {"collections", "max_pause_ms", "frozen_objects",
                                       "freezes"}
        finally:
            await station.stop()
    run(main())


def test_a_new_reading_leaves_the_collector_no_new_container_to_walk_but_its_message():
    """Each bed's newest reading replaces the last every second, so whatever a datagram leaves
    alive is walked by the young collections, for every bed: only the message itself may be."""
    clock = VirtualClock(100.0)
    station = ward_station(clock, beds=200)
    for bed in range(1, 201):
        station.bed_encoded(bed)
    clock.advance(1.0)
    readings = [NumericsMessage(1000 + bed, bed, 1, clock.now(), 0, 80.0, 96.0, 15.0, 37.0)
                for bed in range(1, 201)]
    gc.collect()
    gc.freeze()  # everything above is old: what follows is what one second of datagrams leaves
    gc.disable()
    try:
        for msg in readings:
            station.beds.beds[msg.bed].update(msg, clock.now())
            assert '"hr":80.0' in station.bed_encoded(msg.bed)
        young = [o for o in gc.get_objects(generation=0) if o is not readings]
        assert len(young) < 20, f"{len(young)} new containers for 200 readings: " \
            f"{sorted({type(o).__name__ for o in young})}"
    finally:
        gc.enable()
        gc.unfreeze()
