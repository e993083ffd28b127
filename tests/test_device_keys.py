"""Device credentials: a key per device, telemetry tagged with it, alarm connections
authenticated by HELLO, CHALLENGE, AUTH, and keys rotated with a grace period.

Each attack of issue 16 against the alarm channel is played against a station that requires
keys: an alarm injected without credentials, a fake HELLO for a connected device followed by a
close, a wrong key, an old key after its grace period. Each is refused with an ERROR frame
naming why, counted by reason in ``/api/stats``, and leaves no trace: no alarm journaled or
shown, the real device's link untouched."""

import asyncio
import json
import time

import pytest

from tests.helpers import run, wait_until
from tests.station_client import Udp, alarm, frames_until_closed, numerics, running, station
from vitalsim.keys import KeyFile, KeyFileError, KeyRefused
from vitalsim.protocol.alarm_channel import (
    Ack,
    AlarmReceiver,
    AlarmSender,
    Auth,
    Challenge,
    Error,
    FrameDecoder,
    Hello,
    LocalProtocolError,
    RemoteProtocolError,
    auth_mac,
    encode_alarm_frame,
)
from vitalsim.protocol.telemetry import decode, encode

NONCE = bytes(range(32))


def keys_for(*devices: int) -> KeyFile:
    return KeyFile.generate(list(devices))


# --- the key file -------------------------------------------------------------------------

def test_a_key_file_round_trips_and_is_written_for_its_owner_only(tmp_path):
    keys = keys_for(1001, 1002)
    path = tmp_path / "keys.json"
    keys.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = KeyFile.load(path)
    assert again.devices == keys.devices
    assert again.current(1001).key_id == 1 and len(again.current(1001).key) == 32
    assert keys.current(1001).key.hex() not in repr(keys.current(1001))  # never in a log line


@pytest.mark.parametrize("text, says", [
    ("not json", "not JSON"),
    ('{"format": "other"}', "not a key file"),
    ('{"format": "vitalsim-keys", "version": 9, "devices": {}}', "version 9"),
    ('{"format": "vitalsim-keys", "version": 1, "devices": {"x": []}}', "device id 'x'"),
    ('{"format": "vitalsim-keys", "version": 1, "devices": {"1": [{"key_id": 1, "key": "ab",'
     ' "retire_at": null}]}}', "at least 32 hex digits"),
    ('{"format": "vitalsim-keys", "version": 1, "devices": {"1": [{"key_id": 0, "key": "ab",'
     ' "retire_at": null}]}}', "key_id must be an integer 1..255"),
])
def test_a_bad_key_file_is_refused_naming_what_is_wrong(tmp_path, text, says):
    path = tmp_path / "keys.json"
    path.write_text(text)
    with pytest.raises(KeyFileError, match=says):
        KeyFile.load(path)
    with pytest.raises(KeyFileError, match="cannot read key file"):
        KeyFile.load(tmp_path / "missing.json")


def test_a_rotated_key_is_accepted_until_its_grace_period_ends_then_refused():
    keys = keys_for(1001)
    old = keys.current(1001)
    new = keys.rotate(1001, now=1000.0, grace=60.0)
    assert (new.key_id, keys.current(1001)) == (2, new)
    assert keys.lookup(1001, 1, now=1059.0) == old.key  # within the grace period
    assert keys.lookup(1001, 2, now=5000.0) == new.key
    with pytest.raises(KeyRefused) as err:
        keys.lookup(1001, 1, now=1060.0)
    assert err.value.reason == "retired_key" and "grace period" in str(err.value)
    with pytest.raises(KeyRefused) as err:
        keys.lookup(1001, 3, now=1000.0)
    assert err.value.reason == "unknown_key"
    with pytest.raises(KeyRefused) as err:
        keys.lookup(1002, 1, now=1000.0)  # another device's key id 1 is not this one's
    assert err.value.reason == "unknown_key"


def test_telemetry_is_verified_with_its_own_devices_key():
    keys = keys_for(1001, 1002)
    msg = numerics(1)

    def key_for(device_id, key_id):
        return keys.lookup(device_id, key_id, now=0.0)

    assert decode(encode(msg, key=keys.current(1001).key), key_for=key_for).hr == 72.0
    forged = encode(msg, key=keys.current(1002).key)  # device 1002's key, claiming 1001
    with pytest.raises(Exception, match="does not verify") as err:
        decode(forged, key_for=key_for)
    assert err.value.reason == "bad_tag"


# --- the alarm channel's handshake, sans-I/O ------------------------------------------------

def handshake(keys: KeyFile, sender: AlarmSender, now: float = 0.0):
    """Drive a sender and a receiver through HELLO, CHALLENGE, AUTH; return the receiver and
    the events it gave."""
    receiver = AlarmReceiver(key_for=lambda d, k: keys.lookup(d, k, now), challenge=NONCE)
    events = receiver.receive_data(sender.connection_made(now), now)
    assert events == [] and receiver.hello is None  # nothing is anybody's yet
    sender.receive_data(receiver.data_to_send(now), now)
    events += receiver.receive_data(sender.tick(now), now)
    return receiver, events


def test_a_device_with_its_key_authenticates_and_its_outbox_follows():
    keys = keys_for(1001)
    sender = AlarmSender(1001, 1, key=keys.current(1001).key)
    sender.send_alarm(alarm(1), 0.0)  # raised while disconnected: waits in the outbox
    receiver, events = handshake(keys, sender)
    assert [type(e).__name__ for e in events] == ["Hello", "AlarmMessage"]
    assert events[1].alarm_id == sender.outbox.popitem()[0]
    assert receiver.hello == Hello(1001, 1) and sender.authenticated


def test_an_auth_proof_from_another_connection_or_device_is_refused():
    keys = keys_for(1001, 1002)
    key = keys.current(1001).key
    receiver = AlarmReceiver(key_for=lambda d, k: keys.lookup(d, k, 0.0), challenge=NONCE)
    receiver.receive_data(encode_alarm_frame(Hello(1001, 1)), 0.0)
    recorded = auth_mac(key, "00" * 32, 1001, 1)  # the proof of an earlier connection's nonce
    with pytest.raises(RemoteProtocolError) as err:
        receiver.receive_data(encode_alarm_frame(Auth(1, recorded)), 0.0)
    assert err.value.reason == "bad_auth" and receiver.hello is None
    other = AlarmReceiver(key_for=lambda d, k: keys.lookup(d, k, 0.0), challenge=NONCE)
    other.receive_data(encode_alarm_frame(Hello(1001, 1)), 0.0)
    with pytest.raises(RemoteProtocolError, match="does not verify"):  # 1002's key for 1001
        other.receive_data(encode_alarm_frame(Auth(1, auth_mac(
            keys.current(1002).key, NONCE.hex(), 1001, 1))), 0.0)


def test_frames_before_auth_are_refused_and_a_keyless_device_is_told_why():
    keys = keys_for(1001)
    receiver = AlarmReceiver(key_for=lambda d, k: keys.lookup(d, k, 0.0), challenge=NONCE)
    with pytest.raises(RemoteProtocolError) as err:
        receiver.receive_data(
            encode_alarm_frame(Hello(1001, 1)) + encode_alarm_frame(alarm(1)), 0.0)
    assert err.value.reason == "unauthenticated" and receiver.hello is None
    keyless = AlarmSender(1001, 1)
    keyless.connection_made(0.0)
    with pytest.raises(RemoteProtocolError, match="has no key"):
        keyless.receive_data(encode_alarm_frame(Challenge(NONCE.hex())), 0.0)
    with pytest.raises(LocalProtocolError, match="challenge"):
        AlarmReceiver(key_for=lambda d, k: b"", challenge=None)


# --- the station --------------------------------------------------------------------------

def secured(keys: KeyFile, **kw):
    return station(device_keys=keys, require_auth=True, **kw)


async def connect(st):
    return await asyncio.open_connection("127.0.0.1", st.tcp_port)


async def real_device(st, keys: KeyFile, device_id: int = 1001, bed: int = 1):
    """A device that holds its key, connected and authenticated (driven like DeviceLink)."""
    sender = AlarmSender(device_id, bed, key=keys.current(device_id).key,
                         key_id=keys.current(device_id).key_id)
    r, w = await connect(st)
    w.write(sender.connection_made(time.time()))
    sender.receive_data(await asyncio.wait_for(r.read(65536), 10), time.time())
    w.write(sender.tick(time.time()))
    await w.drain()
    await wait_until(lambda: st.beds.beds.get(bed) is not None
                     and st.beds.beds[bed].alarm_connected, what="the real device's link")
    return sender, r, w


def errors(st) -> dict:
    return st.stats()["tcp"]["errors"]


def test_an_alarm_injected_without_credentials_is_refused_and_leaves_no_trace():
    keys = keys_for(1001, 1002)

    async def main():
        async with running(secured(keys)) as st:
            r, w = await connect(st)
            w.write(encode_alarm_frame(Hello(1002, 2)) + encode_alarm_frame(alarm(
                1, alarm_id="1002-1-1", device_id=1002, bed=2, condition="ASYSTOLE")))
            frames = await frames_until_closed(r)
            w.close()
            assert isinstance(frames[-1], Error) and "before AUTH" in frames[-1].error, frames
            assert not any(isinstance(f, Ack) for f in frames)
            await wait_until(lambda: errors(st).get("unauthenticated") == 1, what="the count")
            assert st.journal.count() == 0 and st.board.entries() == []
            assert st.beds.beds.get(2) is None or not st.beds.beds[2].alarm_link_seen
    run(main())


def test_a_fake_hello_then_close_changes_nothing_about_the_connected_device():
    keys = keys_for(1001)

    async def main():
        async with running(secured(keys)) as st:
            sender, r, w = await real_device(st, keys)
            fake_r, fake_w = await connect(st)
            fake_w.write(encode_alarm_frame(Hello(1001, 1)))
            await fake_w.drain()
            decoder = FrameDecoder()
            assert isinstance(decoder.feed(await asyncio.wait_for(fake_r.read(65536), 10))[0],
                              Challenge)
            fake_w.close()
            # a second fake: it answers with a guessed proof, and is told why it is refused
            bad_r, bad_w = await connect(st)
            bad_w.write(encode_alarm_frame(Hello(1001, 1)) + encode_alarm_frame(Auth(1, "0" * 64)))
            frames = await frames_until_closed(bad_r)
            bad_w.close()
            assert isinstance(frames[-1], Error) and "does not verify" in frames[-1].error
            await wait_until(lambda: errors(st).get("bad_auth") == 1, what="the bad AUTH count")
            await wait_until(lambda: st.alarm_listener.counters()["open"] == 1,
                             what="both fakes closed")
            assert st.beds.beds[1].alarm_connected and st._alarm_links[1] == 1
            st._every_second()  # the station's own check: no ALARM LINK LOST for bed 1
            assert [e for e in st.board.entries() if e.bed == 1] == []
            w.write(sender.send_alarm(alarm(9, alarm_id="1001-1-9"), time.time()))
            await wait_until(lambda: st.journal.count() == 1, what="the real device's alarm")
            w.close()
    run(main())


def test_an_old_key_after_its_grace_period_is_refused_for_telemetry_and_alarms():
    keys = keys_for(1001)
    old = keys.current(1001)
    keys.rotate(1001, now=time.time() - 120, grace=60)  # retired a minute ago
    within = keys_for(1002)
    within_old = within.current(1002)
    within.rotate(1002, now=time.time(), grace=600)
    keys.devices[1002] = within.devices[1002]

    async def main():
        async with running(secured(keys)) as st, Udp(st.udp_port) as udp:
            udp.send(encode(numerics(1), key=old.key, key_id=old.key_id))
            udp.send(encode(numerics(1, device_id=1002, bed=2), key=within_old.key,
                            key_id=within_old.key_id))
            await wait_until(lambda: st.ingest.rejected["retired_key"] == 1
                             and 2 in st.beds.beds, what="the old key refused, the new admitted")
            assert 1 not in st.beds.beds
            assert "grace period" in st.ingest.last_error["retired_key"]
            r, w = await connect(st)
            w.write(encode_alarm_frame(Hello(1001, 1)))
            await w.drain()
            (challenge,) = FrameDecoder().feed(await asyncio.wait_for(r.read(65536), 10))
            w.write(encode_alarm_frame(
                Auth(old.key_id, auth_mac(old.key, challenge.nonce, 1001, 1))))
            frames = await frames_until_closed(r)
            w.close()
            assert isinstance(frames[-1], Error) and "retired" in frames[-1].error
            await wait_until(lambda: errors(st).get("retired_key") == 1, what="the count")
            assert st.beds.beds.get(1) is None or not st.beds.beds[1].alarm_connected
            # the device's new key works
            await real_device(st, keys)
            stats = json.loads(json.dumps(st.stats()))
            assert stats["udp"]["rejected"]["retired_key"] == 1
    run(main())


def test_a_ward_with_keys_signs_and_authenticates_against_a_station_that_requires_them():
    from server.system import System

    async def main():
        keys = keys_for(1001, 1002)
        async with System.ephemeral(beds=2, waves=False, device_keys=keys,
                                    require_auth=True) as system:
            await system.wait_ready()
            st = system.station
            await wait_until(lambda: all(st.beds.beds[b].alarm_connected for b in (1, 2)),
                             what="both alarm links authenticated")
            assert st.stats()["tcp"]["errors"] == {} and st.ingest.rejected.get("bad_tag") is None
    run(main())


def test_python_m_server_takes_a_key_file_creates_it_once_and_requires_it_on_request(
        tmp_path, capsys):
    from server.__main__ import device_keys, parse_args

    with pytest.raises(SystemExit):
        parse_args(["--require-keys"])
    assert "--require-keys needs --keys FILE" in capsys.readouterr().err
    args = parse_args(["--keys", str(tmp_path / "k.json"), "--require-keys", "--beds", "2"])
    assert args.require_keys and args.keys.endswith("k.json")
    made = device_keys(args.keys, 2)
    assert sorted(made.devices) == [1001, 1002] and "wrote a new key" in capsys.readouterr().out
    assert device_keys(args.keys, 2).devices == made.devices  # read back, not made again
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SystemExit):
        device_keys(str(tmp_path / "bad.json"), 2)
    assert "not JSON" in capsys.readouterr().err


def test_python_m_server_with_authentication_on_runs_its_ward_without_a_refusal(tmp_path):
    """What `make demo` runs: device keys made on first start, required; sessions on. The ward
    signs and authenticates, so the station refuses nothing of it; the API answers the token."""
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--beds", "2", "--http-port", "0", "--udp-port", "0",
         "--tcp-port", "0", "--journal", ":memory:", "--keys", str(tmp_path / "k.json"),
         "--require-keys"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("keys: wrote") and lines[1].startswith("dashboard: "), lines
        login = lines[1].split()[1]
        base, token = login.split("?token=")

        def stats() -> dict:
            request = urllib.request.Request(base + "api/stats",
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=10) as resp:
                return json.loads(resp.read())

        run(wait_until(lambda: len(stats()["beds"]) == 2 and stats()["tcp"]["open"] == 2,
                       timeout=20, interval=0.2, what="both beds heard and both alarm links up"))
        now = stats()
        assert now["udp"]["rejected"] == {} and now["tcp"]["errors"] == {}, now
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "api/stats", timeout=10)
        assert err.value.code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_python_m_vitalsim_keys_makes_a_file_and_rotates_a_key(tmp_path, capsys):
    from vitalsim.keys import main

    path = str(tmp_path / "k.json")
    main(["new", path, "--devices", "2"])
    main(["rotate", path, "1002", "--grace", "60"])
    keys = KeyFile.load(path)
    assert [k.key_id for k in keys.devices[1002]] == [1, 2]
    assert keys.devices[1002][0].retire_at is not None and keys.devices[1001][0].retire_at is None
    assert "new key id 2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["rotate", path, "1009"])
    assert "device 1009 has no key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["new", path, "--devices", "1"])  # never overwrites
