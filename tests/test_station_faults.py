"""Restarts, dead connections, floods and the small holes of issue 15, over real loopback
sockets. Each test was written to fail on the station before the fix."""

import asyncio
import json
import logging
import time

import pytest
from tornado.websocket import websocket_connect

from course.constants import HR_ALARM_AT_ONCE
from server import Station, StationConfig, System
from server.alarm_source import alarm_source
from server.config import ward_devices
from server.system import SystemConfig
from tests.helpers import next_message, run, wait_until
from tests.station_client import (
    Udp,
    alarm,
    alarm_connection,
    frames_until_closed,
    get,
    numerics,
    running,
    station,
    strict,
)
from vitalsim.devices import WardConfig
from vitalsim.protocol.alarm_channel import FrameDecoder, Hello, encode_alarm_frame
from vitalsim.protocol.telemetry import encode

TIGHT = HR_ALARM_AT_ONCE  # every adult heart rate breaches it


def test_an_alarm_sent_again_is_journaled_once_and_counted_as_a_duplicate(tmp_path):
    journal = tmp_path / "j.sqlite3"

    async def send_and_ack(st: Station, frame_alarm) -> None:
        r, w = await alarm_connection(st)
        w.write(encode_alarm_frame(frame_alarm))
        decoder, acks = FrameDecoder(), []
        while not acks:
            acks = [f for f in decoder.feed(await asyncio.wait_for(r.read(4096), 10))
                    if type(f).__name__ == "Ack"]
        assert acks[0].alarm_id == frame_alarm.alarm_id
        w.close()

    async def main():
        async with running(station(journal_path=journal)) as st:
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            first = alarm(1)
            await send_and_ack(st, first)
            await send_and_ack(st, first)  # the device lost the ACK and reconnected
            assert (st.journal.count(), st.journal.duplicates) == (1, 1)
            assert st.alarm_listener.duplicates == 1
            assert (await next_message(ws, "alarm"))["alarm"]["alarm_id"] == first.alarm_id
            await send_and_ack(st, alarm(2, condition="HR HIGH"))
            shown = (await next_message(ws, "alarm"))["alarm"]["alarm_id"]
            assert shown == alarm(2).alarm_id, "the re-send was never shown a second time"
            ws.close()
        again = station(journal_path=journal)  # restarted on the same journal
        await again.start()
        try:
            await send_and_ack(again, alarm(1))
            assert (again.journal.count(), again.journal.duplicates) == (2, 1)
        finally:
            await again.stop()
    run(main())


def test_a_device_started_twice_against_one_journal_raises_new_alarms(tmp_path):
    journal = tmp_path / "j.sqlite3"

    async def one_run() -> tuple[str, int]:
        cfg = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0,
                                         journal_path=journal),
                           WardConfig(beds=1, scenario="stable_adult", waves=False,
                                      limits=TIGHT))
        async with System(cfg) as sys_:
            st = sys_.station
            await wait_until(lambda: sys_.ward.links[0].alarms_raised >= 1
                             and not sys_.ward.links[0].sender.outbox, what="an ACKed alarm")
            # the journal, not the board: the board folds the second run's HR HIGH into the
            # entry replayed from the first (one entry per bed and condition)
            raised = [r for r in st.journal.events()
                      if r["state"] == "raised" and alarm_source(r["alarm_id"]) == "device"]
            newest = max(raised, key=lambda r: r["timestamp"])
            return newest["alarm_id"], st.journal.duplicates

    async def main():
        first, _ = await one_run()
        second, duplicates = await one_run()
        assert first != second and duplicates == 0, (first, second)
        assert second.startswith("1001-") and second.count("-") == 2  # device-boot-counter
    run(main())


def test_technical_alarms_from_before_a_restart_clear_once_telemetry_and_link_are_back(tmp_path):
    journal = tmp_path / "j.sqlite3"

    async def main():
        cfg = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0,
                                         journal_path=journal, telemetry_timeout=1.0),
                           WardConfig(beds=1, scenario="stable_adult", waves=False))
        sys_ = System(cfg)
        await sys_.start()
        try:
            st = sys_.station
            await wait_until(lambda: st.beds.beds.get(1) and st.beds.beds[1].alarm_connected,
                             what="bed 1 with its alarm link")
            await sys_.ward.stop()
            sys_.ward = None
            await wait_until(lambda: {"TELEMETRY LOST", "ALARM LINK LOST"} <= {
                e.condition for e in st.board.entries("active")}, timeout=10,
                what="both technical alarms")
        finally:
            await sys_.stop()
        again = System(cfg)  # a restarted station, and the monitor plugged in again
        await again.start()
        try:
            st = again.station
            assert {c for _, c in st.technical.active} == {"TELEMETRY LOST", "ALARM LINK LOST"}
            await wait_until(lambda: not st.technical.active and not [
                e for e in st.board.entries() if e.source == "station"
                and e.condition_present], timeout=10, what="both cleared")
        finally:
            await again.stop()
    run(main())


def test_silent_and_half_frame_alarm_connections_are_closed_and_the_link_is_reported_lost():
    async def main():
        st = station(alarm_dead_after=1.0, alarm_frame_timeout=1.0, telemetry_timeout=60.0)
        async with running(st), Udp(st.udp_port) as udp:
            udp.send(encode(numerics(1)))
            await wait_until(lambda: 1 in st.beds.beds, what="bed 1")
            silent_r, silent_w = await alarm_connection(st)  # HELLO, then nothing, no FIN
            await wait_until(lambda: st.beds.beds[1].alarm_connected, what="link up")
            half_r, half_w = await asyncio.open_connection("127.0.0.1", st.tcp_port)
            half_w.write(encode_alarm_frame(Hello(1002, 2))[:7])
            mute_r, mute_w = await asyncio.open_connection("127.0.0.1", st.tcp_port)
            started = time.monotonic()
            for reader in (silent_r, half_r, mute_r):
                frames = await frames_until_closed(reader)
                assert frames and type(frames[-1]).__name__ == "Error", frames
            assert time.monotonic() - started < 5, "closed within the stated time"
            await wait_until(lambda: any(e.condition == "ALARM LINK LOST"
                                         for e in st.board.entries("active")), timeout=3,
                             what="ALARM LINK LOST within a second of the close")
            assert st.alarm_listener.errors["timeout"] == 3
            for w in (silent_w, half_w, mute_w):
                w.close()
    run(main())


def test_http_connections_that_send_no_complete_header_are_closed():
    async def main():
        async with running(station(http_idle_timeout=0.5)) as st:
            r, w = await asyncio.open_connection("127.0.0.1", st.http_port)
            w.write(b"GET /api/beds HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            assert await asyncio.wait_for(r.read(), 10) == b""
            w.close()
    run(main())


@pytest.mark.parametrize("beds, raises_per_second", [
    (150, 20),  # the default rate limit: the flood is spread over seconds
    (1000, 1000),  # no rate limit to speak of: grouping alone keeps the dashboard
])
def test_a_flood_of_technical_alarms_never_disconnects_a_healthy_dashboard(beds,
                                                                         raises_per_second):
    """A whole ward goes silent at once. The dashboard's alarm queue holds 32 messages, so one
    message per alarm would close it with 4000 (its queue four times full); grouped, every
    TELEMETRY LOST reaches it, each by its id, and it stays open."""
    async def main():
        st = Station(StationConfig(http_port=0, udp_port=0, tcp_port=0, telemetry_timeout=2.0,
                                   devices=ward_devices(beds), client_alarm_queue=32,
                                   technical_raises_per_second=raises_per_second))
        await st.start()
        udp = Udp(st.udp_port)
        try:
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            for first in range(1, beds + 1, 100):  # every bed heard once, then the network goes
                batch = range(first, min(first + 100, beds + 1))
                for bed in batch:
                    udp.send(encode(numerics(1, device_id=1000 + bed, bed=bed)))
                await wait_until(lambda b=batch[-1]: len(st.beds.beds) == b,
                                 what="every bed of the batch heard")
            lost: dict[int, str] = {}  # bed -> id of its TELEMETRY LOST, as the dashboard got it
            messages = 0
            while len(lost) < beds:
                raw = await asyncio.wait_for(ws.read_message(), 30)
                assert raw is not None, "the station closed a healthy dashboard"
                msg = json.loads(raw)
                if msg["type"] in ("alarm", "alarms"):
                    messages += 1
                    for entry in msg["alarms"] if msg["type"] == "alarms" else [msg["alarm"]]:
                        if entry["condition"] == "TELEMETRY LOST":
                            assert entry["bed"] not in lost, "an alarm twice"
                            lost[entry["bed"]] = entry["alarm_id"]
            assert st.hub.disconnected_slow == 0 and len(st.hub.clients) == 1
            assert ws.close_code is None
            on_board = {e.bed: e.alarm_id for e in st.board.entries()
                        if e.condition == "TELEMETRY LOST"}
            assert lost == on_board and st.journal.count() == beds, "every alarm accounted for"
            assert messages <= beds // raises_per_second + 2, "grouped: one message a check"
            ws.close()
        finally:
            udp.close()
            await st.stop()
    run(main())


# -- the smaller holes (item 8) --------------------------------------------------------------


def test_an_ack_whose_user_holds_a_lone_surrogate_is_refused_and_changes_nothing():
    async def main():
        async with running(station()) as st:
            r, w = await alarm_connection(st)
            w.write(encode_alarm_frame(alarm(1)))
            await wait_until(lambda: st.board.entries(), what="the alarm on the board")
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            ws.write_message(json.dumps({"type": "ack", "alarm_id": alarm(1).alarm_id,
                                         "user": "\udc00night-shift"}))
            error = await next_message(ws, "error")
            # the station's own words, not a codec's ("surrogates not allowed")
            assert "must be printable text" in error["error"], error
            assert "codec" not in error["error"], error
            assert st.board.get(alarm(1).alarm_id).acked_by is None
            assert st.journal.actions() == []
            w.close()
            ws.close()
    run(main())


def test_deeply_nested_json_on_the_websocket_gets_an_error_and_the_socket_stays_open():
    async def main():
        async with running(station()) as st:
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            ws.write_message("[" * 100_000 + "]" * 100_000)
            assert "nested too deeply" in (await next_message(ws, "error"))["error"]
            ws.write_message(json.dumps({"type": "subscribe", "waves": []}))
            await next_message(ws, "subscribed")
            ws.close()
    run(main())


def test_alarm_fields_of_the_wrong_type_are_counted_by_reason_and_answered():
    async def main():
        async with running(station()) as st:
            r, w = await alarm_connection(st)
            payload = json.dumps({**alarm(1).__dict__, "alarm_id": {"x": 1}}).encode()
            w.write((1 + len(payload)).to_bytes(4, "big") + b"\x02" + payload)
            frames = await frames_until_closed(r)
            assert "alarm_id" in frames[-1].error and "expected str" in frames[-1].error
            w.close()
            assert st.alarm_listener.counters()["errors"] == {"bad_value": 1}
    run(main())


@pytest.mark.parametrize(("path", "status", "words"), [
    ("api/alarms?since=NaN", 400, "not a finite number"),
    ("api/alarms?since=inf", 400, "not a finite number"),
    ("api/beds/1/history?since=-inf", 400, "not a finite number"),
    ("api/beds/" + "9" * 5001, 404, "a bed is a number"),
    ("api/beds/-1", 404, "a bed is a number"),
    ("api/nothing-here", 404, "no API at /api/nothing-here"),
])
def test_bad_api_requests_get_a_json_error_with_nosniff(path, status, words):
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            udp.send(encode(numerics(1)))
            await wait_until(lambda: 1 in st.beds.beds, what="bed 1")
            code, body, headers = await get(st, path)
            assert code == status and words in body["error"], body
            assert headers["X-Content-Type-Options"] == "nosniff"
            code, _, headers = await get(st, "api/beds")
            assert code == 200 and headers["X-Content-Type-Options"] == "nosniff"
    run(main())


def test_a_nul_in_a_file_path_is_a_404_not_a_500():
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    async def main():
        async with running(station()) as st:
            for path in ("%00", "index.html%00.js"):
                with pytest.raises(HTTPClientError) as info:
                    await AsyncHTTPClient().fetch(st.url + path)
                assert info.value.code == 404, path
                assert info.value.response.headers["X-Content-Type-Options"] == "nosniff"
    run(main())


def test_udp_and_tcp_rejects_are_logged_alike_first_of_each_reason_always(caplog):
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            for burst in range(6):  # in bursts the socket buffer holds: nothing dropped
                for _ in range(50):
                    udp.send(b"x")  # short
                await wait_until(lambda b=burst: st.ingest.rejects.total == 50 * (b + 1),
                                 what="the burst counted")
            udp.send(encode(numerics(1, device_id=4242, bed=9)))  # unknown_device, after 300
            for n in range(30):
                r, w = await asyncio.open_connection("127.0.0.1", st.tcp_port)
                w.write(b"\x00\x00\x00\x00" if n < 29 else encode_alarm_frame(Hello(4242, 9)))
                await frames_until_closed(r)
                w.close()
            await wait_until(lambda: st.ingest.rejects.total == 301
                             and st.alarm_listener.rejects.total == 30, what="every reject")

    with caplog.at_level(logging.WARNING):
        run(main())
    udp_lines = [r.getMessage() for r in caplog.records if r.name == "server.ingest"]
    tcp_lines = [r.getMessage() for r in caplog.records if r.name == "server.alarms"]
    assert len(udp_lines) <= 12 and len(tcp_lines) <= 12, (len(udp_lines), len(tcp_lines))
    for lines, reason in ((udp_lines, "unknown_device"), (tcp_lines, "unknown_device"),
                          (udp_lines, "short"), (tcp_lines, "length")):
        assert any(f"{reason} #1 (the first of its reason)" in line for line in lines), reason


def test_every_websocket_message_and_api_answer_is_strict_json():
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            udp.send(encode(numerics(1, hr=float("nan"))))  # NaN on the wire: "not available"
            await wait_until(lambda: 1 in st.beds.beds, what="bed 1")
            for _ in range(5):
                strict(await asyncio.wait_for(ws.read_message(), 10))
            for path in ("api/beds", "api/beds/1", "api/stats", "api/alarms",
                         "api/beds/1/history"):
                code, body, _ = await get(st, path)
                assert code == 200
                strict(json.dumps(body, allow_nan=False))
            ws.close()
    run(main())
