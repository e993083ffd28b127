"""The central station under the faults a networking course causes on purpose, over real
loopback sockets: restarts, silences, lost telemetry, dashboards that subscribe to waveforms."""

import asyncio
import json
import random
import socket
import sqlite3

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.websocket import websocket_connect

from course.constants import HR_ALARM_AT_ONCE
from course.ward_recording import StalledDashboard
from server import Station, StationConfig, System
from server.alarm_source import DEVICE_ONLY_SQL, alarm_source
from server.config import ward_devices
from server.system import SystemConfig
from tests.helpers import next_message, run, wait_until
from tests.station_client import rss_bytes
from vitalsim.alarms import FLAPPING_HR
from vitalsim.devices import Ward, WardConfig

TIGHT = HR_ALARM_AT_ONCE  # every adult heart rate breaches it


def ephemeral(**kw) -> StationConfig:
    return StationConfig(http_port=0, udp_port=0, tcp_port=0, **kw)


def one_bed_in_alarm(**station) -> SystemConfig:
    """One stable adult whose heart rate breaches its limit from the first second."""
    return SystemConfig(ephemeral(**station), WardConfig(beds=1, scenario="stable_adult",
                                                         waves=False, limits=TIGHT))


def test_waveforms_go_only_to_subscribers_with_sample_indices_for_gaps():
    async def main():
        cfg = SystemConfig(ephemeral(), WardConfig(beds=2, scenario="stable_adult", waves=True))
        async with System(cfg) as sys_:
            url = f"ws://127.0.0.1:{sys_.station.http_port}/ws"
            watcher, other = await websocket_connect(url), await websocket_connect(url)
            watcher.write_message(json.dumps({"type": "subscribe", "waves": [2]}))
            assert (await next_message(watcher, "subscribed"))["waves"] == [2]
            seen: dict[str, list[tuple[int, int]]] = {"ecg": [], "pleth": [], "resp": []}
            while min(len(v) for v in seen.values()) < 6:
                msg = await next_message(watcher, "wave")
                assert msg["bed"] == 2
                for chunk in msg["chunks"]:
                    seen[chunk["channel"]].append((chunk["first_index"], len(chunk["samples"])))
            for channel, chunks in seen.items():  # on loopback nothing is lost: no gaps
                for (first, n), (nxt, _) in zip(chunks, chunks[1:], strict=False):
                    assert nxt == first + n, f"{channel}: gap between {first}+{n} and {nxt}"
            other_kinds = set()
            for _ in range(6):
                other_kinds.add(json.loads(await other.read_message())["type"])
            assert "wave" not in other_kinds
            watcher.write_message(json.dumps({"type": "subscribe", "waves": "all"}))
            assert "list of bed numbers" in (await next_message(watcher, "error"))["error"]
            watcher.close()
            other.close()
    run(main())


def test_silence_pauses_an_alarm_and_it_sounds_again_while_the_condition_lasts():
    async def main():
        cfg = one_bed_in_alarm()
        async with System(cfg) as sys_:
            st = sys_.station
            await wait_until(lambda: st.board.entries("active"), what="an active alarm")
            alarm_id = st.board.entries("active")[0].alarm_id
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            ws.write_message(json.dumps({"type": "silence", "alarm_id": alarm_id,
                                         "user": "Charge Nurse", "seconds": 1}))
            silenced = (await next_message(ws, "alarm"))["alarm"]
            assert (silenced["state"], silenced["silenced_by"]) == ("silenced", "Charge Nurse")
            again = (await next_message(ws, "alarm", timeout=5))["alarm"]
            assert again["alarm_id"] == alarm_id and again["state"] == "active"
            ws.write_message(json.dumps({"type": "silence", "alarm_id": alarm_id,
                                         "user": "x", "seconds": 9999}))
            assert "expected 1..600" in (await next_message(ws, "error"))["error"]
            actions = st.journal.actions()
            assert actions[0]["action"] == "silence:1" and actions[0]["user"] == "Charge Nurse"
            ws.close()
    run(main())


def test_station_raises_technical_alarms_when_a_bed_goes_quiet():
    async def main():
        cfg = SystemConfig(ephemeral(telemetry_timeout=1.0, stale_after=0.5),
                           WardConfig(beds=1, scenario="stable_adult", waves=False))
        async with System(cfg) as sys_:
            st = sys_.station
            await wait_until(lambda: st.beds.beds.get(1) and st.beds.beds[1].alarm_connected,
                             what="bed 1 with its alarm link")
            await sys_.ward.stop()  # the monitor is unplugged
            sys_.ward = None

            def conditions():
                return {e.condition for e in st.board.entries("active") if e.source == "station"}
            await wait_until(lambda: {"TELEMETRY LOST", "ALARM LINK LOST"} <= conditions(),
                             timeout=5, what="both technical alarms")
            assert st.beds.beds[1].summary()["stale"] is True
            assert "station" in {alarm_source(e["alarm_id"]) for e in st.journal.events()}
    run(main())


def test_a_probe_off_fault_in_the_scenario_becomes_a_technical_alarm_and_clears():
    async def main():
        # stable_adult takes its SpO2 probe off from 420 s to 480 s of simulated time
        cfg = SystemConfig(ephemeral(), WardConfig(beds=1, scenario="stable_adult",
                                                   waves=False, speed=120.0))
        async with System(cfg) as sys_:
            st = sys_.station
            await wait_until(lambda: any(e.condition == "SPO2 PROBE OFF"
                                         for e in st.board.entries()), timeout=10,
                             what="SPO2 PROBE OFF raised")
            await wait_until(lambda: any(e.condition == "SPO2 PROBE OFF" and e.state == "cleared"
                                         for e in st.board.entries()), timeout=10,
                             what="SPO2 PROBE OFF cleared when the probe is back")
    run(main())


def test_station_restart_while_devices_keep_sending_journals_every_alarm_exactly_once(
        tmp_path, capsys):
    # HR limit set on the patient's own rate: the alarm raises and clears again and again
    flapping = FLAPPING_HR
    journal = tmp_path / "alarms.sqlite3"

    async def main():
        first = Station(ephemeral(journal_path=journal, devices=ward_devices(4)))
        await first.start()
        ports = dict(http_port=first.http_port, udp_port=first.udp_port,
                     tcp_port=first.tcp_port, devices=ward_devices(4))
        ward = Ward(WardConfig(beds=4, scenario="stable_adult", waves=False, speed=20.0,
                               limits=flapping), "127.0.0.1", first.udp_port, first.tcp_port)
        await ward.start()
        try:
            await wait_until(lambda: first.journal.count("device") >= 20, timeout=15,
                             what="20 alarms journaled")
            await first.stop()  # the station goes down; devices keep raising alarms
            await wait_until(lambda: sum(len(link.sender.outbox) for link in ward.links) >= 8,
                             timeout=15, what="alarms piling up in the outboxes")
            second = Station(StationConfig(journal_path=journal, **ports))
            await second.start()
            try:
                await wait_until(lambda: all(link.connections >= 2 for link in ward.links),
                                 timeout=15, what="every device reconnected")
                for link in ward.links:  # no new alarms from here on; the links stay up
                    await link.stop_telemetry()
                await wait_until(lambda: all(not link.sender.outbox for link in ward.links),
                                 timeout=20, what="every outbox emptied by ACKs")
                sent = sum(link.alarms_raised for link in ward.links)
                journaled = second.journal.count("device")
                resent = sum(link.sender.resent for link in ward.links)
                duplicates = second.alarm_listener.duplicates + first.alarm_listener.duplicates
                # the journal's own count of the re-sent ids it stored no second time
                assert duplicates == first.journal.duplicates + second.journal.duplicates
            finally:
                await second.stop()
        finally:
            await ward.stop()
        return sent, journaled, resent, duplicates

    sent, journaled, resent, duplicates = run(main())
    ids = [r[0] for r in sqlite3.connect(journal).execute(
        f"SELECT alarm_id FROM alarm_events WHERE {DEVICE_ONLY_SQL}")]
    with capsys.disabled():
        print(f"\nrestart: alarms sent {sent}, journaled {journaled}, re-sent after reconnect "
              f"{resent}, duplicates ignored by the journal {duplicates}")
    assert journaled == sent == len(set(ids)), "every alarm exactly once"
    assert resent > 0, "the restart really left alarms unacknowledged"


def test_a_restarted_station_shows_what_it_showed(tmp_path):
    journal = tmp_path / "j.sqlite3"

    async def main():
        cfg = one_bed_in_alarm(journal_path=journal)
        async with System(cfg) as sys_:
            st = sys_.station
            await wait_until(lambda: st.board.entries("active"), what="an alarm")
            alarm_id = st.board.entries("active")[0].alarm_id
            st.command(json.dumps({"type": "ack", "alarm_id": alarm_id, "user": "Dr Osei"}))
        again = Station(ephemeral(journal_path=journal))
        await again.start()
        try:
            entry = again.board.get(alarm_id)
            assert entry is not None
            assert (entry.state, entry.acked_by) == ("acknowledged", "Dr Osei")
        finally:
            await again.stop()
    run(main())


def test_a_restarted_ward_ends_the_conditions_its_last_run_raised(tmp_path):
    """make demo, Ctrl-C, make demo: the devices start afresh and no longer report what they
    raised before, so the board must not show those conditions as present for ever."""
    journal = tmp_path / "j.sqlite3"

    async def main():
        first = one_bed_in_alarm(journal_path=journal)
        async with System(first) as sys_:
            await wait_until(lambda: sys_.station.board.entries("active"), what="an alarm")
            alarm_id = sys_.station.board.entries("active")[0].alarm_id
        # the same station's journal, a ward whose limits this patient does not breach
        second = SystemConfig(ephemeral(journal_path=journal),
                              WardConfig(beds=1, scenario="stable_adult", waves=False))
        async with System(second) as sys_:
            entry = sys_.station.board.get(alarm_id)
            assert entry is not None, "the journal brought the entry back"
            await wait_until(lambda: not entry.condition_present, timeout=10,
                             what="the last run's condition ended by the device's new boot")
            # TIGHT's limit is high priority: ended, it stays latched until acknowledged
            assert entry.priority == "high" and entry.state == "active"
            history = [h["what"] for h in sys_.station.board.history
                       if h["alarm_id"] == alarm_id]
            assert history[-1] == "ended: device restarted", history
    run(main())


def test_history_comes_as_columns_or_csv_and_bad_parameters_are_named():
    async def main():
        cfg = SystemConfig(ephemeral(), WardConfig(beds=1, scenario="stable_adult",
                                                   waves=True, speed=4.0))
        async with System(cfg) as sys_:
            st = sys_.station
            await wait_until(lambda: 1 in st.beds.beds and len(st.beds.beds[1].history) >= 5,
                             what="five seconds of history")
            http = AsyncHTTPClient()
            body = json.loads((await http.fetch(st.url + "api/beds/1/history?channels=hr,spo2"))
                              .body)
            assert set(body) == {"bed", "t", "hr", "spo2"} and len(body["t"]) == len(body["hr"])
            csv_resp = await http.fetch(st.url + "api/beds/1/history?format=csv&channels=hr")
            lines = csv_resp.body.decode().splitlines()
            assert lines[0] == "t,hr" and len(lines) == len(body["t"]) + 1
            assert csv_resp.headers["Content-Type"].startswith("text/csv")
            ecg = json.loads((await http.fetch(st.url + "api/beds/1/waves/ecg")).body)
            assert ecg["rate"] == 250 and len(ecg["index"]) == len(ecg["value"]) > 250
            for path, words in (("api/beds/1/history?channels=hr,bp", "unknown ['bp']"),
                                ("api/beds/1/history?format=xml", "expected 'json' or 'csv'"),
                                ("api/beds/1/waves/eeg", "no channel 'eeg'")):
                try:
                    await http.fetch(st.url + path)
                except HTTPClientError as exc:
                    assert words in json.loads(exc.response.body)["error"]
                else:
                    raise AssertionError(f"{path} should have failed")
    run(main())


def test_a_dashboard_can_watch_some_beds_only():
    async def main():
        cfg = SystemConfig(ephemeral(), WardConfig(beds=3, scenario="stable_adult", waves=False))
        async with System(cfg) as sys_:
            ws = await websocket_connect(f"ws://127.0.0.1:{sys_.station.http_port}/ws")
            await next_message(ws, "snapshot")
            ws.write_message(json.dumps({"type": "subscribe", "beds": [2]}))
            assert (await next_message(ws, "subscribed"))["beds"] == [2]
            for _ in range(4):
                assert {b["bed"] for b in (await next_message(ws, "vitals"))["beds"]} == {2}
            ws.write_message(json.dumps({"type": "subscribe", "beds": None}))
            await next_message(ws, "subscribed")
            seen: set[int] = set()
            while seen != {1, 2, 3}:
                seen |= {b["bed"] for b in (await next_message(ws, "vitals"))["beds"]}
            ws.close()
    run(main())


def test_a_dashboard_that_stops_reading_does_not_slow_the_others():
    async def main():
        # 8 beds at speed 4 change 4 times a second, so at push_hz=4 every tick carries vitals
        cfg = SystemConfig(ephemeral(client_alarm_queue=20, push_hz=4.0),
                           WardConfig(beds=8, scenario="stable_adult", waves=True, speed=4.0,
                                      limits=TIGHT))  # every bed in alarm from the start
        async with System(cfg) as sys_:
            st = sys_.station
            await sys_.wait_ready()
            await wait_until(lambda: len(st.board.entries("active")) == 8, what="8 alarms")
            stalled = await StalledDashboard("127.0.0.1", st.http_port).start(
                {"type": "subscribe", "waves": list(range(1, 9))})
            try:
                healthy = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
                await next_message(healthy, "snapshot")
                # stuck: a write to it under way for a second (the kernel's buffers between
                # it and the station are full), and updates replaced while it waits
                await wait_until(lambda: st.hub.counters()["stalled"] == 1
                                 and st.hub.counters()["superseded"] > 0, timeout=20,
                                 what="the stalled dashboard to fall behind")
                # while the stalled one is stuck, the healthy one silences alarms (each silence
                # is an alarm message pushed to every dashboard): it must get every one of
                # them, and vitals all along. A condition with a deadline, not a count of
                # messages in a fixed window of wall-clock time
                ids = [e.alarm_id for e in st.board.entries("active")]
                for n in range(30):
                    healthy.write_message(json.dumps({
                        "type": "silence", "alarm_id": ids[n % len(ids)],
                        "user": f"test-{n}", "seconds": 600}))
                # every silence must arrive: the newest state of each alarm names its user
                last_user = {ids[n % len(ids)]: f"test-{n}" for n in range(30)}
                counts = {"vitals": 0, "alarm": 0}
                silenced_by: dict[str, str] = {}
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while silenced_by != last_user or counts["vitals"] < 10:
                    assert loop.time() < deadline, (counts, silenced_by)
                    msg = json.loads(await asyncio.wait_for(healthy.read_message(),
                                                            deadline - loop.time()))
                    if msg["type"] in counts:
                        counts[msg["type"]] += 1
                    if msg["type"] == "alarm" and msg["alarm"]["silenced_by"]:
                        silenced_by[msg["alarm"]["alarm_id"]] = msg["alarm"]["silenced_by"]
                await wait_until(lambda: st.hub.disconnected_slow >= 1, timeout=10,
                                 what="the stalled dashboard dropped for lagging on alarms")
                for client in st.hub.clients.values():  # nobody's queue grew without bound
                    assert len(client.alarms) <= 4 * 20 and len(client.pending) <= 2 + 8
                healthy.close()
            finally:
                stalled.close()
    run(main())




def test_a_flood_of_malformed_datagrams_leaves_the_station_serving_in_bounded_memory():
    async def main():
        cfg = SystemConfig(ephemeral(), WardConfig(beds=2, scenario="stable_adult", waves=False))
        async with System(cfg) as sys_:
            st = sys_.station
            await sys_.wait_ready()
            rng = random.Random(5)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sent = 0
            try:
                before = rss_bytes()
                for _ in range(200):  # 200 bursts of 100: bounded in count and time
                    for _ in range(100):
                        sock.sendto(rng.randbytes(rng.randint(0, 300)),
                                    ("127.0.0.1", st.udp_port))
                        sent += 1
                    await asyncio.sleep(0.002)  # the station's loop reads between bursts
                # the kernel may drop some when its socket buffer is full; that is UDP
                await wait_until(lambda: st.ingest.counters()["rejected_total"] >= sent * 0.9,
                                 timeout=10, what=f"the flood ({sent} datagrams) to be counted")
                grown = rss_bytes() - before
            finally:
                sock.close()
            rejected = st.ingest.counters()["rejected"]
            assert set(rejected) <= {"short", "bad_magic", "bad_version", "length", "bad_type"}
            assert sorted(st.beds.beds) == [1, 2], "no bed was invented from garbage"
            assert grown < 8_000_000, f"resident memory grew {grown} bytes over {sent} datagrams"
            received = st.beds.beds[1].stats.received
            await wait_until(lambda: st.beds.beds[1].stats.received > received,
                             what="real telemetry still flowing")
    run(main())


def test_numerics_history_gives_back_the_newest_messages_exactly_oldest_first():
    from dataclasses import replace

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from server.beds import NumericsHistory
    from tests.strategies import numerics

    # rings smaller than FIRST_ROOM, and rings that grow (16, 32, 64, 80) before they wrap:
    # up to 200 messages, each distinct (its sequence number), drawn from a few examples
    @settings(max_examples=60, deadline=None)
    @given(st.lists(numerics, min_size=1, max_size=6), st.integers(0, 200), st.integers(1, 80))
    def check(examples, count, maxlen):
        messages = [replace(examples[i % len(examples)], seq=i) for i in range(count)]
        history = NumericsHistory(maxlen)
        for msg in messages:
            history.append(msg)
        kept = messages[-maxlen:]  # what deque(maxlen=maxlen) kept
        assert list(history) == kept and len(history) == len(kept)
        if kept:
            assert history[-1] == kept[-1] and history[0] == kept[0]

    check()


def test_an_ack_of_an_unknown_alarm_is_named_without_echoing_it_whole():
    st = Station(ephemeral())
    with pytest.raises(ValueError) as err:
        st.command(json.dumps({"type": "ack", "alarm_id": "x" * 1_000_000, "user": "Ana"}))
    assert "no alarm with id 'xxxx" in str(err.value) and "1000000 characters" in str(err.value)
    assert len(str(err.value)) < 200
