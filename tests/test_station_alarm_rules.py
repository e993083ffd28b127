"""The station's side of issue 22 over real loopback sockets: the WebSocket's ``pause`` and
``news2`` commands (checked, journaled, pushed), an acknowledged alarm sounding again after
``alarm_resound_after``, the alarm-history and NEWS2 APIs, and pauses replayed after a restart."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tornado.websocket import websocket_connect

from course.constants import HR_ALARM_AT_ONCE
from server import StationConfig, System
from server.system import SystemConfig
from tests.helpers import get_json, next_message, run, wait_until
from vitalsim.devices import WardConfig


def system(beds: int = 1, limits=HR_ALARM_AT_ONCE, **station) -> System:
    return System(SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0, **station),
                               WardConfig(beds=beds, scenario="stable_adult", waves=False,
                                          limits=limits)))


def test_acknowledged_while_present_the_alarm_stays_then_sounds_again_after_the_set_time():
    async def main():
        async with system(alarm_resound_after=1.5) as sys_:
            st = sys_.station
            await wait_until(lambda: st.board.entries("active"), what="an active alarm")
            alarm_id = st.board.entries("active")[0].alarm_id
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            ws.write_message(json.dumps({"type": "ack", "alarm_id": alarm_id, "user": "Ana"}))
            acked = (await next_message(ws, "alarm"))["alarm"]
            assert (acked["state"], acked["condition_present"], acked["acked_by"]) == \
                ("acknowledged", True, "Ana")
            assert acked["resound_at"] == acked["acked_at"] + 1.5
            again = (await next_message(ws, "alarm", timeout=5))["alarm"]
            assert (again["alarm_id"], again["state"], again["acked_by"]) == \
                (alarm_id, "active", None)
            ws.close()
    run(main())


def test_pause_is_checked_journaled_pushed_with_its_countdown_and_ends_by_itself():
    async def main():
        async with system(beds=2) as sys_:
            st = sys_.station
            await sys_.wait_ready()
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            for bad, why in (({"bed": 9, "seconds": 60}, "one of the beds [1, 2]"),
                             ({"bed": "1", "seconds": 60}, "one of the beds"),
                             ({"bed": 1, "seconds": 601}, "expected 0..600"),
                             ({"bed": 1, "seconds": float("inf")}, "not JSON")):
                ws.write_message(json.dumps({"type": "pause", "user": "Ana", **bad}))
                assert why in (await next_message(ws, "error"))["error"], bad
            ws.write_message(json.dumps({"type": "pause", "bed": 1, "seconds": 2,
                                         "user": "Ana"}))
            paused = await next_message(ws, "pause")
            assert (paused["bed"], paused["seconds"], paused["by"]) == (1, 2.0, "Ana")
            assert st.board.paused_until(1, st.clock.now()) is not None
            assert st.board.paused_until(2, st.clock.now()) is None
            assert st.journal.actions()[-1]["alarm_id"] == "bed:1"
            snap_ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            snap = await next_message(snap_ws, "snapshot")
            assert [p["bed"] for p in snap["pauses"]] == [1]
            assert 0 < snap["pauses"][0]["seconds"] <= 2
            # one bed's history carries that bed's pause only
            base = f"http://127.0.0.1:{st.http_port}/api/alarms/history"
            assert [p["bed"] for p in (await get_json(f"{base}?bed=1"))["pauses"]] == [1]
            assert (await get_json(f"{base}?bed=2"))["pauses"] == []
            ended = await next_message(ws, "pause", timeout=5)
            assert (ended["bed"], ended["until"], ended["seconds"]) == (1, None, 0)
            history = await get_json(f"http://127.0.0.1:{st.http_port}/api/alarms/history?bed=1")
            assert history["history"][0]["what"] == "audio paused"
            ws.close()
            snap_ws.close()
    run(main())


def test_a_pause_survives_a_station_restart_through_the_journal():
    async def main():
        with tempfile.TemporaryDirectory() as tmp:
            journal = Path(tmp) / "alarms.sqlite3"
            async with system(journal_path=journal) as sys_:
                st = sys_.station
                await sys_.wait_ready()
                st.command(json.dumps({"type": "pause", "bed": 1, "seconds": 300,
                                       "user": "Ana"}))
            async with system(journal_path=journal) as sys_:
                st = sys_.station
                assert st.board.paused_until(1, st.clock.now()) is not None
                assert st.board.pauses[1][1] == "Ana"
    run(main())


def test_news2_is_scored_per_observation_set_and_staff_entries_replace_what_it_assumed():
    async def main():
        async with system(limits=()) as sys_:
            st = sys_.station
            await sys_.wait_ready()
            await wait_until(lambda: st.observations.latest(1), what="a first NEWS2 set")
            base = f"http://127.0.0.1:{st.http_port}"
            first = (await get_json(f"{base}/api/beds/1"))["news2"]
            assert first["assumed"] == ["air (no oxygen entered)", "alert (no ACVPU entered)"]
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            for bad, why in (({"consciousness": "X"}, "expected one of A, C, V, P, U"),
                             ({"supplemental_o2": "yes"}, "expected true or false"),
                             ({"gcs": 15}, "unknown fields ['gcs']"),
                             ({"bed": 7}, "one of the beds [1]")):
                ws.write_message(json.dumps({"type": "news2", "bed": 1, "user": "Ana", **bad}))
                assert why in (await next_message(ws, "error"))["error"], bad
            # with the schema version every message may carry (docs/PROTOCOL.md)
            ws.write_message(json.dumps({"v": 1, "type": "news2", "bed": 1, "user": "Ana",
                                         "supplemental_o2": True, "consciousness": "V"}))
            await wait_until(lambda: st.observations.latest(1)["trigger"] == "staff entry",
                             what="the staff entry's set")
            latest = (await get_json(f"{base}/api/beds/1"))["news2"]
            assert latest["assumed"] == [] and latest["by"] == "Ana"
            assert latest["scores"]["air_or_oxygen"] == 2
            assert latest["scores"]["consciousness"] == 3
            assert latest["total"] == first["total"] + 5
            sets = (await get_json(f"{base}/api/beds/1/news2"))["sets"]
            assert [s["trigger"] for s in sets][-1] == "staff entry"
            # a second of numerics without a new cuff reading scores nothing new
            count, received = len(sets), st.beds.beds[1].stats.received
            await wait_until(lambda: st.beds.beds[1].stats.received >= received + 3,
                             what="3 more datagrams")
            assert len(st.observations.sets(1)) == count
            ws.close()
    run(main())


def test_a_viewer_may_neither_pause_a_bed_nor_enter_observations():
    from server.sessions import Operator, Sessions

    async def main():
        viewer, nurse = Operator("Vic", "viewer", "t1" * 16), Operator("Ana", "nurse", "t2" * 16)
        async with system(limits=(), operators=[viewer, nurse]) as sys_:
            st = sys_.station
            await sys_.wait_ready()
            assert isinstance(st.sessions, Sessions)
            for cmd, verb in (({"type": "pause", "bed": 1, "seconds": 60}, "pause the sound of"),
                              ({"type": "news2", "bed": 1, "consciousness": "V"},
                               "enter observations for")):
                try:
                    st.command(json.dumps(cmd), operator=viewer)
                except ValueError as exc:
                    assert f"only a nurse may {verb} a bed" in str(exc)
                else:
                    raise AssertionError(f"a viewer's {cmd['type']} was accepted")
            assert st.board.pauses == {} and st.journal.actions() == []
            st.command(json.dumps({"type": "pause", "bed": 1, "seconds": 60,
                                   "user": "someone else"}), operator=nurse)
            assert st.board.pauses[1][1] == "Ana", "the session's operator, not the field"
    run(main())
