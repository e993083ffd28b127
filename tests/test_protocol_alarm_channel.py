"""The alarm channel's framing and state machines, on a virtual clock, without sockets."""

import struct

import pytest

from vitalsim.protocol.alarm_channel import (
    MAX_FRAME,
    Ack,
    AlarmMessage,
    AlarmReceiver,
    AlarmSender,
    FrameDecoder,
    Hello,
    RemoteProtocolError,
    encode_frame,
)


def alarm(n: int) -> AlarmMessage:
    return AlarmMessage(f"1001-{n}", 1001, 1, "HR HIGH", "high", "raised", 140.0, 130.0, float(n))


def test_frames_cut_anywhere_decode_the_same():
    stream = encode_frame(Hello(1001, 1)) + encode_frame(alarm(1)) + encode_frame(Ack("x"))
    for cut in range(len(stream) + 1):
        dec = FrameDecoder()
        events = dec.feed(stream[:cut]) + dec.feed(stream[cut:])
        assert events == [Hello(1001, 1), alarm(1), Ack("x")], f"cut at {cut}"
        assert dec.pending == 0


def test_oversized_length_is_refused_before_allocation():
    with pytest.raises(RemoteProtocolError, match="outside"):
        FrameDecoder().feed(struct.pack("!I", MAX_FRAME + 1))


def test_outbox_is_resent_after_reconnect_and_dedup_gives_exactly_once():
    sender, journal, deliveries = AlarmSender(1001, 1), set(), 0
    sender.send_alarm(alarm(1), 0.0)  # raised while disconnected: waits in the outbox

    def station_connection(data: bytes, now: float, ack: bool) -> bytes:
        nonlocal deliveries
        receiver = AlarmReceiver()  # a new connection has a new receiver
        for ev in receiver.receive_data(data, now):
            if isinstance(ev, AlarmMessage):
                deliveries += 1
                journal.add(ev.alarm_id)  # the journal is keyed by alarm id: idempotent
                receiver.confirm(ev.alarm_id, now)
        return receiver.data_to_send(now) if ack else b""

    station_connection(sender.connection_made(1.0), 1.0, ack=False)  # the ACK is lost
    sender.connection_lost(2.0)
    assert list(sender.outbox) == ["1001-1"]
    acks = station_connection(sender.connection_made(3.0), 3.0, ack=True)
    sender.receive_data(acks, 3.0)
    assert deliveries == 2, "at-least-once: the alarm crossed the wire twice"
    assert journal == {"1001-1"}, "idempotent store: it is kept once"
    assert sender.outbox == {}


def test_receiver_reacks_an_alarm_it_already_confirmed():
    receiver, sender = AlarmReceiver(), AlarmSender(1001, 1)
    sender.send_alarm(alarm(1), 0.0)
    first = receiver.receive_data(sender.connection_made(0.0), 0.0)
    receiver.confirm("1001-1", 0.0)
    receiver.data_to_send(0.0)
    again = receiver.receive_data(encode_frame(alarm(1)), 1.0)
    assert [type(e) for e in first] == [Hello, AlarmMessage]
    assert again == [] and receiver.duplicates == 1
    assert FrameDecoder().feed(receiver.data_to_send(1.0)) == [Ack("1001-1")]


def test_heartbeat_and_dead_peer_detection_follow_the_clock():
    sender = AlarmSender(1001, 1, heartbeat_interval=2.0, dead_after=6.0)
    sender.connection_made(0.0)
    assert sender.tick(1.0) == b""
    assert sender.tick(2.0) != b""
    assert not sender.is_dead(6.0)
    assert sender.is_dead(6.01)


def test_reconnect_backoff_doubles_and_is_capped():
    sender = AlarmSender(1, 1, backoff_initial=0.25, backoff_max=2.0)
    delays = []
    for _ in range(6):
        sender.connection_lost(0.0)
        delays.append(sender.reconnect_delay())
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_alarm_before_hello_is_a_remote_error():
    with pytest.raises(RemoteProtocolError, match="before HELLO"):
        AlarmReceiver().receive_data(encode_frame(alarm(1)), 0.0)
