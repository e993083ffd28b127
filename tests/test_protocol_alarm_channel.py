"""The alarm channel's framing and state machines, on a virtual clock, without sockets."""

import struct

import pytest

from vitalsim.clock import VirtualClock
from vitalsim.protocol.alarm_channel import (
    MAX_FRAME,
    Ack,
    AlarmMessage,
    AlarmReceiver,
    AlarmSender,
    FrameDecoder,
    FrameType,
    Heartbeat,
    Hello,
    LocalProtocolError,
    RemoteProtocolError,
    SenderState,
    encode_alarm_frame,
)


def alarm(n: int) -> AlarmMessage:
    return AlarmMessage(f"1001-{n}", 1001, 1, "HR HIGH", "high", "raised", 140.0, 130.0, float(n))


def test_frames_cut_anywhere_decode_the_same():
    stream = (encode_alarm_frame(Hello(1001, 1)) + encode_alarm_frame(alarm(1))
              + encode_alarm_frame(Ack("x")))
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
    again = receiver.receive_data(encode_alarm_frame(alarm(1)), 1.0)
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
        AlarmReceiver().receive_data(encode_alarm_frame(alarm(1)), 0.0)


# -- CS144-style scenarios on a virtual clock ---------------------------------------------------



class Wire:
    """A device and a station joined by a lossless pipe, with a journal on the station side."""

    def __init__(self) -> None:
        self.clock = VirtualClock(1000.0)
        self.sender = AlarmSender(1001, 1, heartbeat_interval=2.0, dead_after=6.0,
                                  ack_timeout=5.0)
        self.receiver = AlarmReceiver()
        self.journal: list[str] = []
        self.deliver_acks = True

    def connect(self) -> None:
        self.receiver = AlarmReceiver()
        self.to_station(self.sender.connection_made(self.clock.now()))

    def to_station(self, data: bytes) -> None:
        now = self.clock.now()
        for ev in self.receiver.receive_data(data, now):
            if isinstance(ev, AlarmMessage):
                if ev.alarm_id not in self.journal:
                    self.journal.append(ev.alarm_id)
                self.receiver.confirm(ev.alarm_id, now)
        back = self.receiver.data_to_send(now)
        if back and self.deliver_acks:
            self.sender.receive_data(back, now)


def test_scenario_burst_then_reset_mid_burst_loses_and_duplicates_nothing():
    w = Wire()
    w.connect()
    for n in range(1, 3):
        w.to_station(w.sender.send_alarm(alarm(n), w.clock.now()))
    w.deliver_acks = False  # the connection dies with alarms 3..5 in flight
    for n in range(3, 6):
        w.to_station(w.sender.send_alarm(alarm(n), w.clock.now()))
    w.sender.connection_lost(w.clock.now())
    assert list(w.sender.outbox) == ["1001-3", "1001-4", "1001-5"]
    w.clock.advance(w.sender.reconnect_delay())
    w.deliver_acks = True
    w.connect()
    assert w.sender.outbox == {}
    assert w.journal == [f"1001-{n}" for n in range(1, 6)]
    assert w.sender.resent == 3


def test_scenario_alarm_raised_while_disconnected_waits_then_goes():
    w = Wire()
    assert w.sender.send_alarm(alarm(1), w.clock.now()) == b""
    w.clock.advance(3.0)
    w.connect()
    assert w.journal == ["1001-1"] and not w.sender.outbox


def test_scenario_missing_ack_declares_the_connection_dead():
    w = Wire()
    w.connect()
    w.deliver_acks = False
    w.to_station(w.sender.send_alarm(alarm(1), w.clock.now()))
    w.clock.advance(2.0)
    w.sender.receive_data(encode_alarm_frame(Heartbeat(w.clock.now())), w.clock.now())  # peer alive
    w.clock.advance(3.0)
    assert not w.sender.is_dead(w.clock.now()), "exactly at the timeout: not yet"
    w.clock.advance(0.01)
    assert w.sender.is_dead(w.clock.now()), "an ACK overdue means re-send via reconnect"


def test_scenario_quiet_line_keeps_alive_with_heartbeats_both_ways():
    w = Wire()
    w.connect()
    for _ in range(10):
        w.clock.advance(2.0)
        w.to_station(w.sender.tick(w.clock.now()))
        assert not w.sender.is_dead(w.clock.now())
    assert w.sender.state is SenderState.CONNECTED


def test_a_station_speaking_another_version_is_refused():
    with pytest.raises(RemoteProtocolError, match="v9"):
        AlarmReceiver().receive_data(encode_alarm_frame(Hello(1, 1, version=9)), 0.0)


def test_frames_that_break_the_rules_name_what_is_wrong():
    def frame(ftype: int, payload: bytes) -> bytes:
        return struct.pack("!IB", 1 + len(payload), ftype) + payload

    cases = [
        (frame(9, b"{}"), "unknown frame type 9"),
        (frame(FrameType.ACK, b"not json"), "not JSON"),
        (frame(FrameType.ACK, b"[1]"), "not a JSON object"),
        (frame(FrameType.ACK, b'{"id": 1}'), "bad Ack frame"),
        (frame(FrameType.ALARM, encode_alarm_frame(alarm(1))[5:].replace(b'"high"', b'"urgent"')),
         "priority 'urgent'"),
        (struct.pack("!I", 0), "outside 1.."),
    ]
    for data, words in cases:
        with pytest.raises(RemoteProtocolError, match=words):
            FrameDecoder().feed(data)


def test_local_misuse_is_a_local_error():
    sender = AlarmSender(1, 1)
    sender.send_alarm(alarm(1), 0.0)
    with pytest.raises(LocalProtocolError, match="already in the outbox"):
        sender.send_alarm(alarm(1), 0.0)
    sender.connection_made(0.0)
    with pytest.raises(LocalProtocolError, match="already connected"):
        sender.connection_made(0.0)
    with pytest.raises(LocalProtocolError, match="exceeds MAX_FRAME"):
        encode_alarm_frame(Ack("x" * MAX_FRAME))
    with pytest.raises(RemoteProtocolError, match="does not send Hello"):
        sender.receive_data(encode_alarm_frame(Hello(1, 1)), 0.0)


def test_an_alarm_says_its_parameter_and_artefact_and_both_may_be_left_out():
    full = AlarmMessage("1001-9", 1001, 1, "SpO2 LOW", "medium", "raised", 84.0, 90.0, 5.0,
                        parameter="spo2", artefact=True)
    assert FrameDecoder().feed(encode_alarm_frame(full)) == [full]
    body = b'{"alarm_id":"1001-9","device_id":1001,"bed":1,"condition":"VF","priority":"high",' \
        b'"state":"raised","value":null,"limit":null,"timestamp":5.0}'
    old = struct.pack("!IB", len(body) + 1, FrameType.ALARM) + body
    (event,) = FrameDecoder().feed(old)
    assert (event.parameter, event.artefact) == (None, False)


@pytest.mark.parametrize(("field", "value"), [("artefact", '"yes"'), ("artefact", "1"),
                                              ("parameter", "7"), ("parameter", '""')])
def test_a_wrong_parameter_or_artefact_is_refused_naming_the_field(field, value):
    body = ('{"alarm_id":"1001-9","device_id":1001,"bed":1,"condition":"VF","priority":"high",'
            f'"state":"raised","value":null,"limit":null,"timestamp":5.0,"{field}":{value}}}')
    frame = struct.pack("!IB", len(body) + 1, FrameType.ALARM) + body.encode()
    with pytest.raises(RemoteProtocolError, match=field):
        FrameDecoder().feed(frame)
