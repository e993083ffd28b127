"""The whole pipeline over real loopback sockets: ward -> UDP/TCP -> station -> HTTP/WebSocket."""

import asyncio
import json
import socket
import struct

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.websocket import websocket_connect

from course.constants import HR_ALARM_AT_ONCE
from server import System
from server.config import StationConfig
from server.system import SystemConfig
from tests.helpers import get_json, next_message, run, wait_until
from vitalsim.devices import WardConfig
from vitalsim.protocol.alarm_channel import FrameDecoder, Hello, encode_alarm_frame


def system(beds=3, **ward) -> System:
    ward.setdefault("waves", False)
    return System(SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                               WardConfig(beds=beds, scenario="stable_adult", **ward)))


def test_every_bed_reaches_the_api_and_the_websocket_with_live_values():
    async def main():
        async with system(beds=3) as sys_:
            st = sys_.station
            await wait_until(lambda: len(st.beds.beds) == 3 and
                             all(b.latest for b in st.beds.beds.values()), what="3 beds")
            beds = (await get_json(st.url + "api/beds"))["beds"]
            assert [b["bed"] for b in beds] == [1, 2, 3]
            assert all(40 < b["hr"] < 140 and 85 < b["spo2"] <= 100 for b in beds)
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            snap = await next_message(ws, "snapshot")
            assert snap["v"] == 1 and len(snap["beds"]) == 3
            first = await next_message(ws, "vitals")
            second = await next_message(ws, "vitals")
            assert {b["sent_at"] for b in first["beds"]} != {b["sent_at"] for b in second["beds"]}
            ws.close()
            health = await get_json(st.url + "healthz")
            assert health["status"] == "ok"
    run(main())


def test_alarm_travels_to_journal_board_and_dashboard_and_ack_is_pushed():
    tight = HR_ALARM_AT_ONCE  # any adult heart rate breaches this
    async def main():
        async with system(beds=1, limits=tight) as sys_:
            st = sys_.station
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            snap = await next_message(ws, "snapshot")
            # raised at the first numerics: in the snapshot, or pushed just after it
            if snap["alarms"]:
                alarm = snap["alarms"][0]
            else:
                alarm = (await next_message(ws, "alarm"))["alarm"]
            assert (alarm["bed"], alarm["condition"], alarm["state"]) == (1, "HR HIGH", "active")
            assert st.journal.count() >= 1
            link = sys_.ward.links[0]
            await wait_until(lambda: not link.sender.outbox, what="the ACK to empty the outbox")
            ws.write_message(json.dumps({"type": "ack", "alarm_id": alarm["alarm_id"],
                                         "user": "Nurse Kim"}))
            acked = await next_message(ws, "alarm")
            assert acked["alarm"]["state"] == "acknowledged"
            assert acked["alarm"]["acked_by"] == "Nurse Kim"
            ws.write_message("{not json")
            err = await next_message(ws, "error")
            assert "not JSON" in err["error"]
            ws.write_message(json.dumps({"type": "ack", "alarm_id": "nope", "user": "x"}))
            err = await next_message(ws, "error")
            assert "nope" in err["error"]
            ws.close()
    run(main())


def test_malformed_datagrams_are_counted_by_reason_and_the_station_keeps_serving():
    async def main():
        async with system(beds=1) as sys_:
            st = sys_.station
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                for payload in (b"", b"hello", b"VS" + b"\x00" * 40, b"\xff" * 1500):
                    sock.sendto(payload, ("127.0.0.1", st.udp_port))
            finally:
                sock.close()
            await wait_until(lambda: sum(st.ingest.rejected.values()) == 4, what="4 rejects")
            assert st.ingest.rejected["short"] == 2
            before = st.beds.beds[1].stats.received if 1 in st.beds.beds else 0
            await wait_until(lambda: st.beds.beds[1].stats.received > before + 1,
                             what="telemetry still flowing after the garbage")
            stats = await get_json(st.url + "api/stats")
            assert stats["udp"]["rejected_total"] == 4
    run(main())


def test_broken_and_cut_alarm_frames_close_only_their_own_connection():
    async def main():
        async with system(beds=1) as sys_:
            st = sys_.station
            # a length prefix far over the limit
            r, w = await asyncio.open_connection("127.0.0.1", st.tcp_port)
            w.write(struct.pack("!I", 1 << 30))
            # an ERROR frame naming what was wrong, then the station closes the connection
            (error,) = FrameDecoder().feed(await r.read())
            assert "frame length 1073741824 is outside" in error.error
            w.close()
            # a HELLO, then half a frame, then a disconnect
            r, w = await asyncio.open_connection("127.0.0.1", st.tcp_port)
            w.write(encode_alarm_frame(Hello(1001, 1)) + encode_alarm_frame(Hello(1001, 1))[:5])
            await w.drain()
            w.close()
            lis = st.alarm_listener
            await wait_until(lambda: lis.errors["length"] == 1 and
                             lis.errors["disconnect_mid_frame"] == 1, what="both errors counted")
            assert st.beds.beds[1].alarm_connected, "the real device's link is still open"
            await wait_until(lambda: sys_.ward.links[0].sender.state.value == "connected",
                             what="the real device's alarm channel still up")
            assert (await get_json(st.url + "healthz"))["status"] == "ok"
    run(main())


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("api/alarms?state=bogus", 400, "expected one of"),
        ("api/alarms?since=yesterday", 400, "not a number"),
        ("api/beds/99", 404, "no bed 99"),
        ("api/beds/1/history?since=abc", 400, "not a number"),
    ],
)
def test_bad_api_parameters_get_a_clear_error(path, status, words):
    async def main():
        async with system(beds=1) as sys_:
            st = sys_.station
            await wait_until(lambda: 1 in st.beds.beds, what="bed 1")
            with pytest.raises(HTTPClientError) as info:
                await AsyncHTTPClient().fetch(st.url + path)
            assert info.value.code == status
            assert words in json.loads(info.value.response.body)["error"]
    run(main())


def test_a_system_can_be_started_and_stopped_many_times_in_one_process():
    async def main():
        for round_ in range(3):
            async with system(beds=1) as sys_:
                await wait_until(lambda s=sys_: 1 in s.station.beds.beds,
                                 what=f"bed 1 in round {round_}")
                port = sys_.station.http_port
            with pytest.raises(OSError):  # stopped means the port is closed, not just idle
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
    run(main())
