"""The central station under the faults a networking course causes on purpose, over real
loopback sockets: restarts, silences, lost telemetry, dashboards that subscribe to waveforms."""

import json
import sqlite3

from tornado.websocket import websocket_connect

from server import Station, StationConfig, System
from server.system import SystemConfig
from tests.test_system import next_message, run
from tests.waiting import wait_until
from vitalsim.alarms import Limit
from vitalsim.devices import Ward, WardConfig

TIGHT = (Limit("hr", 20, 30, "high", delay=0.0),)  # every adult heart rate breaches it


def ephemeral(**kw) -> StationConfig:
    return StationConfig(http_port=0, udp_port=0, tcp_port=0, **kw)


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
        cfg = SystemConfig(ephemeral(), WardConfig(beds=1, scenario="stable_adult",
                                                   waves=False, limits=TIGHT))
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
            assert {e["alarm_id"][:8] for e in st.journal.events()} >= {"station-"}
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
    flapping = (Limit("hr", None, 72, "medium", delay=0.0, hysteresis=0.0),)
    journal = tmp_path / "alarms.sqlite3"

    async def main():
        first = Station(ephemeral(journal_path=journal))
        await first.start()
        ports = dict(http_port=first.http_port, udp_port=first.udp_port,
                     tcp_port=first.tcp_port)
        ward = Ward(WardConfig(beds=4, scenario="stable_adult", waves=False, speed=20.0,
                               limits=flapping), "127.0.0.1", first.udp_port, first.tcp_port)
        await ward.start()
        try:
            await wait_until(lambda: first.journal.count() >= 20, timeout=15,
                             what="20 alarms journaled")
            await first.stop()  # the station goes down; devices keep raising alarms
            await wait_until(lambda: sum(len(link.sender.outbox) for link in ward.links) >= 8,
                             timeout=15, what="alarms piling up in the outboxes")
            second = Station(StationConfig(journal_path=journal, **ports))
            await second.start()
            try:
                await wait_until(lambda: all(link.connections >= 2 for link in ward.links),
                                 timeout=15, what="every device reconnected")
                await ward.stop()  # no new alarms from here on
                await wait_until(lambda: all(not link.sender.outbox for link in ward.links),
                                 timeout=15, what="every outbox emptied by ACKs")
                sent = sum(link.alarms_raised for link in ward.links)
                journaled = second.journal.count()
                resent = sum(link.sender.resent for link in ward.links)
                duplicates = second.alarm_listener.duplicates + first.alarm_listener.duplicates
            finally:
                await second.stop()
        finally:
            await ward.stop()
        return sent, journaled, resent, duplicates

    sent, journaled, resent, duplicates = run(main())
    ids = [r[0] for r in sqlite3.connect(journal).execute("SELECT alarm_id FROM alarm_events")]
    with capsys.disabled():
        print(f"\nrestart: alarms sent {sent}, journaled {journaled}, re-sent after reconnect "
              f"{resent}, duplicates ignored by the journal {duplicates}")
    assert journaled == sent == len(set(ids)), "every alarm exactly once"
    assert resent > 0, "the restart really left alarms unacknowledged"


def test_a_restarted_station_shows_what_it_showed(tmp_path):
    journal = tmp_path / "j.sqlite3"

    async def main():
        cfg = SystemConfig(ephemeral(journal_path=journal),
                           WardConfig(beds=1, scenario="stable_adult", waves=False,
                                      limits=TIGHT))
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
