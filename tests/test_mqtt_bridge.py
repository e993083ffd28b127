"""The station's MQTT bridge and the hospital view against a real Eclipse Mosquitto.

Each test starts its own broker on a free port with its own persistence directory
(course/mqtt_broker.py) and stops it however the test ends. Under CI=true a missing mosquitto
fails these tests (tests/requirements.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import aiomqtt
import pytest
from tornado.httpclient import AsyncHTTPClient

from course.mqtt_broker import VIEW_USER, Mosquitto, station_user
from server import System
from server.config import StationConfig
from server.hospital import HospitalConfig, HospitalView
from server.mqtt_bridge import MqttBridge
from server.mqtt_topics import REASONS, alarms_topic, status_payload, status_topic, vitals_topic
from server.system import SystemConfig
from tests.helpers import run, wait_until
from tests.requirements import require_mosquitto
from vitalsim.alarms import FLAPPING_HR
from vitalsim.devices import WardConfig
from vitalsim.impair import TcpImpairmentProxy, TcpSettings
from vitalsim.waiting import wait_until_blocking


@pytest.fixture
def broker():
    require_mosquitto()
    with Mosquitto() as b:
        yield b


def ward_system(beds: int = 3, **ward) -> System:
    ward.setdefault("waves", False)
    ward.setdefault("scenario", "stable_adult")
    # nothing goes stale or raises TELEMETRY LOST while a test holds the ward still
    return System(SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0,
                                             stale_after=600, telemetry_timeout=600),
                               WardConfig(beds=beds, **ward)))


async def latest(port: int, topic: str, done, *, retained_only: bool = False,
                 timeout: float = 10.0) -> dict[str, dict]:
    """Subscribe to ``topic`` and read until ``done(got)``, where ``got`` maps each topic to
    its latest payload (only those the broker sent as retained, if ``retained_only``)."""
    got: dict[str, dict] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)

        async def read() -> None:
            async for message in client.messages:
                if message.retain or not retained_only:
                    got[str(message.topic)] = json.loads(message.payload)
                if done(got):
                    return
        try:
            await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            raise AssertionError(f"after {timeout} s on {topic}, got only {got}") from None
    return got


def test_the_bridge_publishes_what_the_station_holds(broker):
    async def main():
        async with ward_system(beds=3) as system:
            await system.wait_ready()
            bridge = MqttBridge(system.station, "127.0.0.1", broker.port, ward="icu").start()
            try:
                await wait_until(lambda: bridge.connected, what="the bridge to connect")
                await system.ward.stop()  # hold the ward still: the station's values stop
                system.ward = None
                beds = system.station.beds.beds
                await wait_until(lambda: not any(b.alarm_connected for b in beds.values()),
                                 what="the ward's alarm connections closed")
                held = {f"hospital/icu/bed/{bed}/vitals":
                        json.loads(json.dumps(system.station.bed_summary(bed)))
                        for bed in (1, 2, 3)}

                def holds(got: dict) -> bool:
                    return all(got.get(topic) == value for topic, value in held.items())
                await latest(broker.port, "hospital/icu/bed/+/vitals", holds)
                # and a subscriber that comes later reads it all at once, retained
                got = await latest(broker.port, "hospital/icu/#", lambda g: len(g) == 4,
                                   retained_only=True)
                assert holds(got) and got["hospital/icu/station/status"]["online"] is True
            finally:
                await bridge.stop()
            # a clean stop says so: offline, retained
            await latest(broker.port, status_topic("icu"),
                         lambda g: g.get(status_topic("icu"), {}).get("online") is False,
                         retained_only=True)
    run(main())


def test_alarms_exactly_once_by_id_across_bridge_resets_and_a_broker_restart(broker):
    """Flapping limits make every bed raise and clear alarms all the time. The bridge reaches
    the broker through the impairment proxy (100 ms each way): its connection is reset three
    times, each when an alarm has reached the view and its PUBACK is still on the way back to
    the bridge, so that the bridge publishes it again; then the broker is restarted with its
    persistence. The hospital view (a persistent session) must end with every alarm event the
    station journaled, each exactly once."""
    async def main():
        view = await HospitalView(HospitalConfig("127.0.0.1", broker.port,
                                                 client_id="hospital-test")).start()
        proxy = await TcpImpairmentProxy(("127.0.0.1", broker.port),
                                         TcpSettings(latency=0.1)).start()
        taken: Counter[str] = Counter()
        view.listeners.append(lambda kind, what: taken.update(
            [what["event_id"]] if kind == "alarm" else []))
        try:
            async with ward_system(beds=4, limits=FLAPPING_HR, speed=5.0) as system:
                st = system.station
                bridge = MqttBridge(st, "127.0.0.1", proxy.port, ward="icu",
                                    backoff=(0.05, 0.5)).start()
                try:
                    await wait_until(lambda: bridge.connected and view.mqtt_connected,
                                     what="bridge and view connected")
                    used: set[str] = set()  # a new alarm for each reset

                    def acked_too_late() -> set[str]:
                        """Alarms at the view whose PUBACK is still on its way back to the
                        bridge: a reset now loses that PUBACK."""
                        return {a for a in bridge.outbox.pending if f"icu/{a}" in taken} - used

                    for n in range(1, 4):
                        used |= await wait_until(acked_too_late, timeout=20,
                                                 what="an alarm at the view, its PUBACK in "
                                                      "flight")
                        proxy.reset_connections()
                        await wait_until(lambda n=n: bridge.connections > n, timeout=20,
                                         what=f"bridge reconnection {n}")
                    await asyncio.get_running_loop().run_in_executor(None, broker.restart)
                    await wait_until(lambda: bridge.connections > 4 and view.mqtt_connected,
                                     timeout=20, what="both back after the broker restart")
                    before = bridge.outbox.counters["queued"]
                    await wait_until(lambda: bridge.outbox.counters["queued"] > before + 5,
                                     timeout=20, what="alarms after the restart")
                    await system.ward.stop()  # no new alarms: what was raised must arrive
                    system.ward = None
                    def journaled() -> set[str]:
                        return {f"icu/{row['alarm_id']}" for row in st.journal.events()}
                    # technical alarms (ALARM LINK LOST) follow the ward's stop: each look
                    # takes what the journal holds then
                    await wait_until(lambda: journaled() <= set(taken), timeout=30,
                                     what="every journaled alarm at the hospital view")
                    waited_for = journaled()
                finally:
                    await bridge.stop()
                    everything = journaled()
            lost = waited_for - set(taken)
            twice = [a for a, n in taken.items() if n > 1]
            assert not lost and not twice
            # the resets did make the bridge publish again, and the view drop the repeats: the
            # dedup was put to work, not merely never needed
            assert bridge.outbox.counters["republished"] > 0
            assert view.hospital.dedup.duplicates > 0
            assert set(taken) <= everything  # nothing the station did not journal
            assert len(waited_for) > 15
            print(f"alarms {len(waited_for)}, republished by the bridge "
                  f"{bridge.outbox.counters['republished']}, duplicates the view dropped "
                  f"{view.hospital.dedup.duplicates}")
        finally:
            await proxy.stop()
            await view.stop()
    run(main())


def _station(broker: Mosquitto, ward: str, beds: int = 2) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--beds", str(beds), "--no-auth", "--journal",
         ":memory:", "--http-port", "0", "--udp-port", "0", "--tcp-port", "0",
         "--mqtt", broker.address, "--ward", ward],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("telemetry:"):
            return proc
    proc.wait()
    raise AssertionError(f"python -m server --mqtt did not start (exit {proc.returncode})")


def test_a_killed_station_is_seen_offline_by_its_last_will(broker):
    async def main():
        view = await HospitalView(HospitalConfig("127.0.0.1", broker.port,
                                                 client_id="hospital-will")).start()
        proc = _station(broker, "icu")
        try:
            await wait_until(lambda: "icu" in view.hospital.wards
                             and view.hospital.wards["icu"].online is True
                             and len(view.hospital.beds) == 2, what="ward icu online")
            assert not view.hospital.rejected  # a real station's messages pass every check
            proc.send_signal(signal.SIGKILL)  # no goodbye: only the broker can tell
            proc.wait(10)
            await wait_until(lambda: view.hospital.wards["icu"].online is False, timeout=15,
                             what="icu's Last Will")
            assert all(b["stale"] for b in view.hospital.beds.values())
        finally:
            proc.kill()
            proc.wait()
            await view.stop()
    run(main())


@pytest.mark.browser
def test_the_hospital_view_in_chromium_shows_two_wards_and_one_going_offline(broker, chromium):
    from tests.browser import ARTIFACTS

    procs = [_station(broker, "icu", beds=3), _station(broker, "cardiology", beds=2)]
    view = subprocess.Popen([sys.executable, "-m", "server.hospital", "--mqtt", broker.address,
                             "--http-port", "0"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    procs.append(view)
    try:
        line = view.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("hospital: "), line
        url = line.split()[1]
        page = chromium.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('.tile').length === 5",
                               timeout=15_000)
        heads = page.locator(".ward-heading")
        wait_until_blocking(lambda: heads.count() == 2, what="two ward headings")
        texts = heads.all_text_contents()
        assert any("Ward cardiology" in t for t in texts) and any("Ward icu" in t for t in texts)
        assert page.locator('.tile[data-ward="icu"]').count() == 3
        assert page.locator('.tile[data-ward="cardiology"]').count() == 2
        assert "icu · Bed 1" in page.locator('.tile[data-ward="icu"] .bed').all_text_contents()
        # it reads the broker and acts on nothing: no button a nurse would press in vain
        page.wait_for_function("() => document.body.dataset.mayAct === 'false'", timeout=10_000)
        assert page.locator("#view-only").is_visible()
        assert not page.locator("label.user").is_visible()
        assert not any(b.is_visible() for b in page.locator(".tile .pause-btn").all())
        page.wait_for_selector('.ward-heading[data-online="true"]', timeout=10_000)
        procs[1].send_signal(signal.SIGKILL)  # cardiology's station dies
        page.wait_for_function(
            "() => [...document.querySelectorAll('.ward-heading')].some((h) => "
            "h.dataset.online === 'false' && h.textContent.includes('cardiology') && "
            "h.textContent.includes('OFFLINE'))", timeout=15_000)
        offline = page.locator('.tile[data-ward="cardiology"] .stale-label').all_text_contents()
        assert offline and all("WARD OFFLINE" in t for t in offline)
        assert page.locator('.tile[data-ward="icu"][data-stale="true"]').count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hospital.png"), full_page=True)
        assert not errors, errors
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_retained_poisoned_message_does_not_end_the_view(broker):
    """``hospital/icu/bed/²/vitals`` (retained: every restart of the view reads it first) is
    refused, and the view's task goes on taking the messages after it."""
    async def main():
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish("hospital/icu/station/status", status_payload(True, time.time()),
                                 qos=1, retain=True)
            await client.publish("hospital/icu/bed/²/vitals", b'{"bed": 2}', qos=1, retain=True)
            view = await HospitalView(HospitalConfig("127.0.0.1", broker.port,
                                                     client_id="hospital-poison")).start()
            try:
                await wait_until(lambda: sum(view.hospital.rejected.values()) == 1,
                                 what="the poisoned message refused")
                await client.publish(vitals_topic("icu", 1), b'{"bed": 1, "hr": 80.0}', qos=1)
                await wait_until(lambda: len(view.hospital.beds) == 1,
                                 what="the next real message taken")
                assert not view._task.done() and view.mqtt_connections == 1
            finally:
                await view.stop()
    run(main())


def _publish(broker: Mosquitto, messages: list[tuple[str, bytes]], *, retain: bool = True) -> None:
    """Publish from a plain client, as any client of the broker may (QoS 1: each is at the
    broker when this returns)."""
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _summary(bed: int, hr: float) -> bytes:
    now = time.time()
    return json.dumps({"bed": bed, "device_id": 1000 + bed, "alarm_connected": True,
                       "stale": False, "hr": hr, "spo2": 97.0, "flags": [], "rhythm": "sinus",
                       "sent_at": now, "received_at": now, "news2": None}).encode()


def _view_process(broker: Mosquitto) -> tuple[subprocess.Popen, str]:
    view = subprocess.Popen([sys.executable, "-m", "server.hospital", "--mqtt", broker.address,
                             "--http-port", "0"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = view.stdout.readline()  # type: ignore[union-attr]
    assert line.startswith("hospital: "), line
    return view, line.split()[1]


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.browser
def test_forged_messages_of_the_wrong_types_leave_every_ward_on_the_page(broker, chromium):
    """Each of these had broken the page for every ward in every browser (flags.some is not a
    function, "undefined ... Invalid Date"); the view refuses them, and the page still shows
    both wards and goes on drawing."""
    now = time.time()
    _publish(broker, [(status_topic("icu"), status_payload(True, now)),
                      (status_topic("cardiology"), status_payload(True, now)),
                      (vitals_topic("icu", 1), _summary(1, 70.0)),
                      (vitals_topic("cardiology", 1), _summary(1, 80.0))])
    view, url = _view_process(broker)
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_function("() => document.querySelectorAll('.ward-heading').length === 2",
                               timeout=15_000)
        forged = [{"flags": "probe_off"}, {"rhythm": 5}, {"news2": {"assumed": "air"}},
                  {"hr": -40}, {"spo2": 250}, {"temp": -300}, {"hr": 1e308},
                  {"sent_at": now + 10 * 365 * 86400}, {"device_id": int("9" * 4000)}]
        # each for a bed of its own, so that each stays what the view holds for it
        _publish(broker, [(vitals_topic("icu", bed), json.dumps(
            {**json.loads(_summary(bed, 70.0)), **change}).encode())
            for bed, change in enumerate(forged, start=2)]
            + [(vitals_topic("icu", 1), b'{"bed": true}'),
               ("hospital/icu/bed/²/vitals", b'{"bed": 2}')])
        _publish(broker, [(alarms_topic("icu"), b'{"alarm_id":"x","entry":{"bed":2}}')],
                 retain=False)
        _publish(broker, [(vitals_topic("cardiology", 1), _summary(1, 99.0))])
        # the page goes on drawing what comes after them
        page.wait_for_function(
            "() => document.querySelector('.tile[data-ward=\"cardiology\"] "
            "[data-field=\"hr\"]').textContent === '99'", timeout=15_000)
        for reload in (False, True):  # and a page opened now draws them from its snapshot
            if reload:
                page.reload()
            page.wait_for_function("() => document.querySelectorAll('.ward-heading').length === 2 "
                                   "&& document.querySelectorAll('.tile').length === 2",
                                   timeout=15_000)
            page.wait_for_function("() => document.querySelector('.tile[data-ward=\"icu\"] "
                                   "[data-field=\"hr\"]').textContent === '70'", timeout=15_000)
        assert not page.locator("#alarm-list li").count()
        assert not errors, errors
    finally:
        _stop(view)


def test_api_wards_stays_small_under_a_flood_of_junk(broker):
    """3,000 junk messages through the broker (forged wards, refused fields, long topics, text
    that is not JSON): the view's counters and /api/wards stay bounded."""
    def junk(i: int) -> tuple[str, bytes]:
        long_text = "x" * 4000
        return [
            (status_topic(f"forged{i:05d}{'w' * 20}"), status_payload(True, time.time())),
            (vitals_topic(f"unknown{i}", i % 500 + 1), b'{"bed": %d}' % (i % 500 + 1)),
            (vitals_topic("icu", 1), b"not json " + long_text.encode()),
            (f"hospital/{long_text[:i % 300 + 33]}/alarms", b"{}"),  # a ward name too long
            (vitals_topic("icu", 1), json.dumps({"bed": 1, "patient": long_text}).encode()),
            (alarms_topic("icu"), json.dumps({"alarm_id": long_text[:100], "entry": {
                "bed": 1, "condition": long_text}}).encode()),
        ][i % 6]

    async def main():
        view = await HospitalView(HospitalConfig("127.0.0.1", broker.port,
                                                 client_id="hospital-flood")).start()
        try:
            await wait_until(lambda: view.mqtt_connected, what="the view connected")
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                await client.publish(status_topic("icu"), status_payload(True, time.time()),
                                     qos=1)
                for i in range(3000):
                    await client.publish(*junk(i), qos=1)
            h = view.hospital
            await wait_until(lambda: sum(h.rejected.values()) + h.held
                             + h.received["status"] >= 3001, timeout=30,
                             what="the view has taken all 3,001")
            body = (await AsyncHTTPClient().fetch(f"{view.url}api/wards")).body
            wards = json.loads(body)
            print(f"/api/wards after 3,000 junk messages: {len(body)} bytes, "
                  f"{len(wards['wards'])} wards, refused {dict(h.rejected)}, "
                  f"waiting for a status {h.held}")
            assert len(body) < 8 * 1024
            assert len(wards["wards"]) == h.max_wards and h.held <= h.held_limit
            assert set(wards["mqtt"]["refused"]) <= set(REASONS)
        finally:
            await view.stop()
    run(main())


@pytest.mark.browser
def test_the_page_header_says_when_the_views_own_broker_link_is_down(broker, chromium):
    """A broker that goes away takes every ward's status with it: the header says that the
    view's link is down (not every station), and when it is back."""
    _publish(broker, [(status_topic("icu"), status_payload(True, time.time())),
                      (vitals_topic("icu", 1), _summary(1, 70.0))])
    view, url = _view_process(broker)
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_function("() => document.querySelector('#broker').dataset.connected "
                               "=== 'true'", timeout=15_000)
        assert page.title() == "Hospital view"
        assert page.locator("h1").text_content() == "Hospital view"
        broker.stop()
        page.wait_for_function("() => document.querySelector('#broker').dataset.connected "
                               "=== 'false'", timeout=15_000)
        assert "BROKER UNREACHABLE since" in page.locator("#broker").text_content()
        assert page.locator("#conn").text_content() == "connected"  # the page's own link
        broker.start()
        page.wait_for_function("() => document.querySelector('#broker').dataset.connected "
                               "=== 'true'", timeout=20_000)
    finally:
        _stop(view)


def test_a_view_started_later_shows_the_alarms_open_at_the_station(broker):
    """Alarm events are not retained, and the view's board is in memory: each station's bridge
    keeps its open alarm entries retained (hospital/{ward}/alarms/open), which a view that
    starts later reads at once."""
    async def main():
        async with ward_system(beds=4, limits=FLAPPING_HR, speed=5.0) as system:
            st = system.station
            bridge = MqttBridge(st, "127.0.0.1", broker.port, ward="icu").start()
            try:
                await wait_until(lambda: bridge.connected and any(
                    e.state != "cleared" for e in st.board.entries()), timeout=20,
                    what="an alarm open at the station")
                await system.ward.stop()  # no new alarm events from here
                system.ward = None
                await wait_until(lambda: not bridge.outbox.pending
                                 and bridge._open_sent == bridge.open_payload(), timeout=20,
                                 what="the bridge has published the open alarms")
                open_now = {f"icu/{e.alarm_id}" for e in st.board.entries()
                            if e.state != "cleared"}
                view = await HospitalView(HospitalConfig(
                    "127.0.0.1", broker.port, client_id="hospital-late",
                    clean_session=True)).start()
                try:
                    await wait_until(lambda: open_now <= set(view.hospital.alarms),
                                     what="the station's open alarms at the view")
                    assert view.hospital.received["open"] >= 1
                finally:
                    await view.stop()
            finally:
                await bridge.stop()
    run(main())


def test_with_accounts_and_an_acl_a_station_writes_only_its_ward_and_the_view_only_reads():
    """The course's broker with a password each and an ACL: a forged clear from another ward's
    station, or from the view, or from an anonymous client, never reaches the view."""
    require_mosquitto()

    async def main(broker: Mosquitto):
        pw = broker.passwords
        view = await HospitalView(HospitalConfig(
            "127.0.0.1", broker.port, client_id="hospital-acl", username=VIEW_USER,
            password=pw[VIEW_USER])).start()
        try:
            await wait_until(lambda: view.mqtt_connected, what="the view connected")

            async def publish(user: str | None, topic: str, payload: bytes) -> None:
                async with aiomqtt.Client("127.0.0.1", broker.port, username=user,
                                          password=pw.get(user or "")) as client:
                    await client.publish(topic, payload, qos=1)
            await publish(station_user("icu"), status_topic("icu"),
                          status_payload(True, time.time(), "real"))
            await wait_until(lambda: "icu" in view.hospital.wards, what="icu's own status")
            # another ward's station, and the view itself, try to say icu is offline
            await publish(station_user("cardiology"), status_topic("icu"),
                          status_payload(False, time.time(), "forged"))
            await publish(VIEW_USER, status_topic("icu"), status_payload(False, time.time()))
            with pytest.raises(aiomqtt.MqttError):  # no account: not even connected
                await publish(None, status_topic("icu"), status_payload(False, time.time()))
            # a real message after them: when it is in, the forged ones would have been too
            await publish(station_user("icu"), vitals_topic("icu", 1), _summary(1, 75.0))
            await wait_until(lambda: len(view.hospital.beds) == 1, what="icu's vitals")
            assert view.hospital.wards["icu"].online is True
            assert view.hospital.received["status"] == 1
        finally:
            await view.stop()

    with Mosquitto(wards=("icu", "cardiology")) as broker:
        run(main(broker))


@pytest.mark.browser
def test_two_stations_claiming_a_ward_show_as_a_conflict_on_its_heading(broker, chromium):
    now = time.time()
    _publish(broker, [(status_topic("icu"), status_payload(True, now, "aaaa1111")),
                      (vitals_topic("icu", 1), _summary(1, 70.0))])
    view, url = _view_process(broker)
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelector('.ward-heading[data-online=\"true\"]')", timeout=15_000)
        _publish(broker, [(status_topic("icu"), status_payload(True, now, "bbbb2222"))])
        page.wait_for_function("() => document.querySelector('.ward-heading').dataset.conflict "
                               "=== 'true'", timeout=15_000)
        assert "2 stations claim ward icu" in page.locator(".ward-heading").text_content()
    finally:
        _stop(view)


def test_a_station_process_connects_with_its_account_and_the_view_reads_it():
    require_mosquitto()

    async def main(broker: Mosquitto):
        view = await HospitalView(HospitalConfig(
            "127.0.0.1", broker.port, client_id="hospital-acl-cli", username=VIEW_USER,
            password=broker.passwords[VIEW_USER])).start()
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--beds", "2", "--no-auth", "--journal", ":memory:",
             "--http-port", "0", "--udp-port", "0", "--tcp-port", "0", "--mqtt",
             broker.address, "--ward", "icu", "--mqtt-user", station_user("icu")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "MQTT_PASSWORD": broker.passwords[station_user("icu")]})
        try:
            await wait_until(lambda: "icu" in view.hospital.wards
                             and view.hospital.wards["icu"].online
                             and len(view.hospital.beds) == 2, timeout=20,
                             what="icu's station, with its account, at the view")
        finally:
            proc.kill()
            proc.wait()
            await view.stop()

    with Mosquitto(wards=("icu",)) as broker:
        run(main(broker))


def test_mqtt_user_without_its_password_is_an_error_that_says_so(capsys, monkeypatch):
    from server.__main__ import main
    monkeypatch.delenv("MQTT_PASSWORD", raising=False)
    with pytest.raises(SystemExit):
        main(["--mqtt", "127.0.0.1:1883", "--mqtt-user", "station-icu"])
    assert "MQTT_PASSWORD" in capsys.readouterr().err
