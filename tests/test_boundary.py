"""The station's boundary, over real loopback sockets: input that *decodes* but makes no sense
(infinite or implausible values, send times in the future, forged sequence numbers, devices
nobody provisioned) is refused with a reason, and every dashboard keeps getting its alarms.

Each test here is one item of issue 15, written to fail on the station before the fix."""

import json
import math
import struct
import time

import pytest
from tornado.websocket import websocket_connect

from tests.helpers import next_message, run, wait_until
from tests.station_client import (
    WARD,
    Udp,
    alarm,
    alarm_connection,
    frames_until_closed,
    get,
    numerics,
    raw_numerics,
    running,
    station,
    strict,
)
from vitalsim.protocol.alarm_channel import (
    FrameType,
    encode_alarm_frame,
)
from vitalsim.protocol.telemetry import (
    encode,
)


def test_an_infinite_heart_rate_dated_a_year_ahead_is_refused_and_dashboards_keep_working():
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            ws = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            await next_message(ws, "snapshot")
            udp.send(encode(numerics(1)))
            await wait_until(lambda: 1 in st.beds.beds, what="bed 1 from its device")
            inf = (math.inf, 97.0, 14.0, 36.8, math.nan, math.nan, math.nan, math.nan)
            udp.send(raw_numerics(2, inf, sent_at=time.time() + 365 * 86400))
            udp.send(raw_numerics(3, inf, sent_at=time.time()))
            await wait_until(lambda: st.ingest.rejected["future"] == 1
                             and st.ingest.rejected["bad_value"] == 1, what="both refused")
            for path in ("api/beds", "api/beds/1", "api/stats", "api/alarms"):
                code, body, _ = await get(st, path)
                assert code == 200, (path, body)
            assert st.beds.beds[1].latest.hr == 72.0
            fresh = await websocket_connect(f"ws://127.0.0.1:{st.http_port}/ws")
            strict(json.dumps(await next_message(fresh, "snapshot")))
            r, w = await alarm_connection(st)
            w.write(encode_alarm_frame(alarm(1)))
            got = await next_message(ws, "alarm")
            assert got["alarm"]["condition"] == "SpO2 LOW", "the open dashboard still hears alarms"
            w.close()
            ws.close()
            fresh.close()
    run(main())


def test_an_alarm_frame_with_nan_gets_an_error_frame_and_never_reaches_the_journal():
    async def main():
        async with running(station()) as st:
            r, w = await alarm_connection(st)
            payload = (b'{"alarm_id":"1001-77-1","device_id":1001,"bed":1,"condition":"HR HIGH",'
                       b'"priority":"high","state":"raised","value":NaN,"limit":Infinity,'
                       b'"timestamp":1.0}')
            w.write(struct.pack("!IB", 1 + len(payload), FrameType.ALARM) + payload)
            frames = await frames_until_closed(r)
            errors = [f for f in frames if type(f).__name__ == "Error"]
            assert errors and "value" in errors[0].error and "finite" in errors[0].error, frames
            w.close()
            assert st.journal.count() == 0
            code, body, _ = await get(st, "api/alarms")
            assert code == 200 and body == {"alarms": []}
            assert st.alarm_listener.errors["bad_value"] == 1
    run(main())


def test_an_alarm_value_that_json_reads_as_infinity_gets_an_error_frame_too():
    """``1e400`` is a plain JSON number, which Python reads as inf without calling
    ``parse_constant``: only the frame's schema check (every number finite) stands between it
    and the journal."""
    async def main():
        async with running(station()) as st:
            r, w = await alarm_connection(st)
            payload = (b'{"alarm_id":"1001-77-1","device_id":1001,"bed":1,"condition":"HR HIGH",'
                       b'"priority":"high","state":"raised","value":1e400,"limit":90,'
                       b'"timestamp":1.0}')
            w.write(struct.pack("!IB", 1 + len(payload), FrameType.ALARM) + payload)
            frames = await frames_until_closed(r)
            errors = [f.error for f in frames if type(f).__name__ == "Error"]
            assert errors and "value=inf is not a finite number" in errors[0], frames
            w.close()
            assert st.journal.count() == 0 and st.alarm_listener.errors["bad_value"] == 1
    run(main())


def test_send_times_in_the_future_and_forged_sequence_numbers_cannot_freeze_a_bed():
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            for seq in range(1, 6):
                udp.send(encode(numerics(seq)))
            await wait_until(lambda: 1 in st.beds.beds and st.beds.beds[1].stats.received == 5,
                             what="five real datagrams")
            udp.send(encode(numerics(6, hr=250.0, spo2=50.0, sent_at=time.time() + 3600)))
            udp.send(encode(numerics(4_000_000_000, hr=250.0, spo2=50.0)))
            await wait_until(lambda: st.ingest.rejected["future"] == 1
                             and st.ingest.rejected["sequence"] == 1, what="both refused")
            udp.send(encode(numerics(6, hr=80.0)))
            await wait_until(lambda: st.beds.beds[1].stats.received == 6, what="the next real one")
            bed = st.beds.beds[1]
            assert (bed.latest.hr, bed.latest.spo2) == (80.0, 97.0)
            assert bed.stats.lost == 0 and bed.stats.restarts == 0
    run(main())


def test_a_reading_dated_before_its_device_started_is_refused_and_reaches_nothing():
    """A forged reading dated 1970 (sent_at 0) from a device that booted minutes ago: no device
    measures before it is switched on. It must not reach the bed, a chart, FHIR or HL7."""
    async def main():
        boot = int((time.time() - 300) * 1_000_000)  # the device started five minutes ago
        async with running(station()) as st, Udp(st.udp_port) as udp:
            udp.send(encode(numerics(1, boot_id=boot)))
            await wait_until(lambda: 1 in st.beds.beds and st.beds.beds[1].stats.received == 1,
                             what="a real datagram")
            udp.send(encode(numerics(2, hr=0.0, spo2=0.0, sent_at=0.0, boot_id=boot)))
            await wait_until(lambda: st.ingest.rejected["before_boot"] == 1,
                             what="the 1970 reading refused")
            assert "before the device's boot" in st.ingest.last_error["before_boot"]
            udp.send(encode(numerics(3, hr=81.0, boot_id=boot)))
            await wait_until(lambda: st.beds.beds[1].stats.received == 2, what="the next real one")
            assert st.beds.beds[1].latest.hr == 81.0
            assert [m.hr for m in st.beds.beds[1].history] == [72.0, 81.0], \
                "no zero from 1970 in the bed's history"
    run(main())


def test_a_device_restart_is_believed_after_two_datagrams_that_agree():
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            for seq in range(5000, 5010):
                udp.send(encode(numerics(seq)))
            await wait_until(lambda: 1 in st.beds.beds and st.beds.beds[1].stats.received == 10,
                             what="ten datagrams")
            for seq in range(0, 3):  # the monitor rebooted: its numbering starts again
                udp.send(encode(numerics(seq, hr=90.0)))
            await wait_until(lambda: st.beds.beds[1].latest.hr == 90.0, what="the new run")
            assert st.ingest.rejected["sequence"] == 1 and st.beds.beds[1].stats.restarts == 1
    run(main())


def test_beds_exist_only_for_provisioned_devices_and_their_number_is_bounded():
    async def main():
        async with running(station(max_beds=3)) as st, Udp(st.udp_port) as udp:
            udp.send(encode(numerics(1, device_id=4242, bed=7)))  # nobody's device
            udp.send(encode(numerics(1, device_id=1001, bed=2)))  # a real device, wrong bed
            udp.send(encode(numerics(1, device_id=1002, bed=2)))
            await wait_until(lambda: st.ingest.rejected["unknown_device"] == 2
                             and 2 in st.beds.beds, what="two refused, one bed")
            assert sorted(st.beds.beds) == [2]
            r, w = await alarm_connection(st, device_id=4242, bed=7)
            frames = await frames_until_closed(r)
            assert any("not provisioned" in getattr(f, "error", "") for f in frames), frames
            w.close()
            with pytest.raises(ValueError, match="at most 3 beds"):
                for n in range(3, 10):
                    st.provision(2000 + n, n)
            assert st.beds.devices == {**WARD, 2003: 3}
    run(main())


def test_a_json_datagram_is_told_that_telemetry_here_is_binary():
    async def main():
        async with running(station()) as st, Udp(st.udp_port) as udp:
            udp.send(b'{"v":1,"type":"numerics","device_id":1001}')
            await wait_until(lambda: st.ingest.rejected["bad_magic"] == 1, what="the reject")
            assert "looks like JSON" in st.ingest.last_error["bad_magic"]
            assert "docs/PROTOCOL.md" in st.ingest.last_error["bad_magic"]
    run(main())
