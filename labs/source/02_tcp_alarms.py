# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 02 — TCP and reliable alarms
#
# **Objectives.** By the end of this lab you will be able to
# 1. explain why TCP delivers a *byte stream*, not messages, and write the frame decoder that turns
#    the alarm channel's bytes back into frames, however `recv()` cuts them;
# 2. show, with the station's SQLite journal, that the application-level ACK and the device's
#    outbox lose no alarm and store none twice when the connection is reset in the middle of a
#    burst;
# 3. find TCP's own retransmissions in a packet capture with scapy, and explain each one with
#    packet numbers, sequence numbers and times;
# 4. say what TCP guarantees (bytes, in order, to the peer's *kernel*) and what it does not (that the
#    station's application *stored* them), and what head-of-line blocking costs.
#
# **Prerequisites.** Lab 01. Python's `struct` and `json` modules; pandas; a first look at scapy
# (`rdpcap`, `pkt[TCP].seq`). The alarm channel's section of `docs/PROTOCOL.md`.
#
# **Time.** About 60 minutes. No root needed: with root (and nftables) section 3 records its own
# capture in two network namespaces; without, it reads a trace that shows the same things: your
# own, generated from your student id (`VITALSIM_STUDENT`), or the course's recording in
# `course/recordings/`.
#
# Each exercise has a cell for your code (it starts as `raise NotImplementedError`) and a check cell
# that tells you *expected X because Y, got Z*, or that the exercise is not done yet.

# %%
import asyncio
import json
import socket
import sqlite3
import struct
import tempfile
from collections import Counter

import pandas as pd
from scapy.all import IP, TCP, rdpcap

from course import Checks, not_done_yet
from course.formatting import table
from vitalsim.protocol import AlarmMessage, Heartbeat, Hello
from vitalsim.protocol.alarm_channel import encode_alarm_frame

# %% [markdown]
# ## 1. A byte stream, not messages
#
# A bedside monitor sends its alarms to the station over one TCP connection. TCP promises that the
# bytes arrive, in order, once each. It promises nothing about *where one alarm ends*: the sender's
# `write()` calls are not kept apart. One `recv()` can return half a frame, or three frames and a
# bit of a fourth. So the alarm channel puts a length in front of every frame:
#
# ```
# +----------------+--------+---------------------------+
# | length: u32    | type:u8| body: UTF-8 JSON object   |
# +----------------+--------+---------------------------+
#   counts type + body (1 .. 16384)
# ```
#
# Types: 1 HELLO, 2 ALARM, 3 ACK, 4 HEARTBEAT. Here is what a device writes when it connects: a
# HELLO, two alarms, a heartbeat.

# %%
# NBVAL_CHECK_OUTPUT
frames = [
    Hello(device_id=1003, bed=3),
    AlarmMessage("1003-1", 1003, 3, "HR HIGH", "high", "raised", 142.0, 130.0, 1_764_000_000.25),
    AlarmMessage("1003-1c", 1003, 3, "HR HIGH", "high", "cleared", 127.0, 130.0, 1_764_000_009.5),
    Heartbeat(sent_at=1_764_000_011.5),
]
stream = b"".join(encode_alarm_frame(f) for f in frames)
for f in frames:
    data = encode_alarm_frame(f)
    print(f"{type(f).__name__:12} {len(data):3d} bytes: {data[:12].hex(' ')} ...")
print("the stream:", len(stream), "bytes")

# %% [markdown]
# Now send those four frames over a real TCP connection on this machine, one `sendall()` per frame,
# and read on the other side with `recv(50)`. Compare what was written with what each read returned.
# Here the reader starts only once every byte is waiting in its kernel, so each read takes a full 50
# bytes, the same on every run: the reads are cut by the reader's buffer size, not by the writer's
# frames. Across a real network the cuts also fall wherever segments happen to arrive, and change
# from run to run.

# %%
listener = socket.create_server(("127.0.0.1", 0))
device = socket.create_connection(listener.getsockname())
station_side, _ = listener.accept()
for f in frames:
    device.sendall(encode_alarm_frame(f))
device.close()
reads = []
while chunk := station_side.recv(50):
    reads.append(len(chunk))
station_side.close()
listener.close()
print("written, one write per frame:", [len(encode_alarm_frame(f)) for f in frames])
print("read, up to 50 bytes a time: ", reads)


# %% [markdown]
# No read lines up with a frame. The receiver must keep the bytes it has not used yet and cut frames
# out of them itself.
#
# ### Exercise 1: a frame decoder
#
# Write the class below. `MyFrameDecoder().feed(data)` is called with whatever one `recv()`
# returned, and returns a list of `(type, body)` for each frame that `data` *completed*, in order,
# with `type` an `int` and `body` the JSON body as a `dict`. It keeps incomplete bytes in
# `self.buffer` until the rest arrives.
#
# * A length of 0, or above `max_frame` (16384), must raise `ValueError` **as soon as the 4 length
#   bytes have arrived**: the station closes such a connection rather than wait for (and allocate) a
#   frame it will never accept.
# * `struct.unpack_from("!I", self.buffer)` reads the length; `del self.buffer[:n]` drops the first
#   `n` bytes; `json.loads` accepts bytes.
#
# The check feeds your decoder and the course's own `vitalsim.protocol.FrameDecoder` the same bytes:
# all in one read, one byte per read, cut at random places, and two frames announcing impossible
# lengths.

# %%
class MyFrameDecoder:
    def __init__(self, max_frame: int = 16384) -> None:
        self.buffer = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[tuple[int, dict]]:
        ### BEGIN SOLUTION
        self.buffer += data
        out = []
        while len(self.buffer) >= 4:
            (length,) = struct.unpack_from("!I", self.buffer)
            if not 1 <= length <= self.max_frame:
                raise ValueError(f"frame length {length} is outside 1..{self.max_frame}")
            if len(self.buffer) < 4 + length:
                break
            ftype, body = self.buffer[4], json.loads(self.buffer[5 : 4 + length])
            del self.buffer[: 4 + length]
            out.append((ftype, body))
        return out
        ### END SOLUTION


# %% tags=["check"]
from course.framing import (
    MAX_FRAME,
    byte_by_byte,
    cut,
    frames_from,
    frames_per_read,
    header,
    reference_frames,
    reference_verdict,
    sample_stream,
    verdict,
)

sample = sample_stream(alarms=2, seed=1)
first_frame = 4 + struct.unpack_from("!I", sample)[0]
checks = Checks("Exercise 1: a frame decoder")
checks.expect("all in one read", lambda: frames_from(MyFrameDecoder, [sample]),
              expected=reference_frames([sample]),
              because="one read can hold several frames: FrameDecoder finds 4 in these bytes")
checks.expect("one byte per read", lambda: frames_from(MyFrameDecoder, byte_by_byte(sample)),
              expected=reference_frames(byte_by_byte(sample)),
              because="TCP may hand the bytes over in pieces as small as one byte")
checks.expect("cut at random", lambda: frames_from(MyFrameDecoder, cut(sample, seed=4)),
              expected=reference_frames(cut(sample, seed=4)),
              because="a read can end anywhere, in a length field too")
checks.expect("frames per read, last byte apart",
              lambda: frames_per_read(MyFrameDecoder, [sample[:first_frame - 1],
                                                       sample[first_frame - 1:]]),
              expected=[0, 4],
              because="the first frame is complete only with its last byte, in the second read")
checks.expect(f"length {MAX_FRAME + 1}", lambda: verdict(MyFrameDecoder, header(MAX_FRAME + 1)),
              expected=reference_verdict(header(MAX_FRAME + 1)),
              because="a length above 16384 is refused as soon as it is read, not after 16 KB")
checks.expect("length 0", lambda: verdict(MyFrameDecoder, header(0)),
              expected=reference_verdict(header(0)),
              because="a frame holds at least its type byte")
checks

# %% [markdown]
# ## 2. Surviving a reset
#
# TCP acknowledges bytes too. But its ACK comes from the station's *kernel*: it means "the bytes are
# in my receive buffer", not "the station has stored the alarm". When a connection is reset (a
# crashed middlebox, a Wi-Fi roam, a restarted station), bytes in the sender's buffer, on the wire
# and in the receiver's buffer are thrown away, and neither application learns which.
#
# So the alarm channel adds its own acknowledgement (see `docs/PROTOCOL.md`, section 2):
#
# * the device keeps every alarm in an **outbox** until the station's application-level **ACK**
#   for it arrives, and re-sends the whole outbox after every reconnect (*at-least-once*);
# * the station ACKs an alarm only after writing it to its **journal** (SQLite), whose primary key
#   is the alarm id, so a re-sent alarm is recognised and ACKed again, never stored twice (*exactly
#   once*).
#
# First, on a virtual clock: one device raises 40 alarms, and the connection is reset three times.
# The same drill runs under three designs: trusting TCP alone; the ACK and outbox with a station that
# stores every ALARM frame it reads; and the course's design, ACK and outbox with the journal.

# %%
# NBVAL_CHECK_OUTPUT
from course.alarm_drill import compare_designs, run_drill

print(table(compare_designs(seed=2), index="design"))


# %% [markdown]
# Trusting TCP loses the alarms that were on their way when the connection died. The outbox gets
# them all there, but a station that does not recognise a re-sent alarm stores it twice (its first
# ACK was the thing lost). Only outbox plus an idempotent journal gives exactly once.
#
# ### Exercise 2: audit the journal
#
# Write `audit(raised, stored)`. Both are DataFrames with an `alarm_id` column: one row per alarm the
# device raised, one row per alarm the station stored (an alarm stored twice has two rows). Return
# `{"missing": [...], "duplicated": [...]}`: the sorted ids raised but never stored, and the sorted
# ids stored more than once. `set`, `value_counts()` or `duplicated()` will do.

# %%
def audit(raised: pd.DataFrame, stored: pd.DataFrame) -> dict[str, list[str]]:
    ### BEGIN SOLUTION
    counts = stored["alarm_id"].value_counts()
    return {"missing": sorted(set(raised["alarm_id"]) - set(stored["alarm_id"])),
            "duplicated": sorted(counts[counts > 1].index)}
    ### END SOLUTION


# %% tags=["check"]
checks = Checks("Exercise 2: audit the journal (virtual-clock drill)")
for design in ("tcp only", "ack, no dedup", "ack + journal"):
    drill_result = run_drill(design, seed=2)
    found = lambda r=drill_result: not_done_yet(audit, r.raised_frame(), r.stored_frame())
    lost, twice = drill_result.missing, drill_result.duplicated
    checks.expect(f"{design}: missing", lambda f=found: f()["missing"], expected=lost,
                  because=f"under '{design}' {len(lost) or 'no'} raised ids never reached the "
                          "store")
    checks.expect(f"{design}: duplicated", lambda f=found: f()["duplicated"], expected=twice,
                  because=f"under '{design}' {len(twice) or 'no'} ids were stored more than once")
checks

# %% [markdown]
# ### Now for real: the whole system, reset in mid-burst
#
# A ward of four beds whose heart-rate limit sits on the patients' own rate, so that alarms raise and
# clear every few seconds, sends through a TCP impairment proxy that adds 200 ms each way (so that each
# alarm spends a while unacknowledged). We wait until alarms are on the wire in both directions,
# then reset every alarm connection at once, as a crashed middlebox would (an RST both ways). Every
# wait below has a deadline of a few seconds.

# %%
from course.reset_drill import ResetDrill

drill = await ResetDrill(beds=4, seed=2, speed=30.0, latency=0.2).start()
await drill.wait_for_alarms(8)
print("before the reset:", drill.counters())

# %%
reset = await drill.reset_mid_burst()
not_stored, ack_on_the_way = drill.in_flight()
print(f"reset {reset} connections: {not_stored} alarms not yet in the journal, "
      f"{ack_on_the_way} in the journal with their ACK still on the wire")
await drill.wait_reconnected()
await drill.drain()             # no new alarms; wait until every outbox is empty
counts = drill.counters()
for name, value in counts.items():
    print(f"{name:>24}: {value}")

# %% [markdown]
# The first kind were lost with the connection and re-sent from the outbox. The second kind were
# re-sent too (the device never got their ACK), and the journal recognised them: those are the
# duplicates ignored. Now look in the journal itself, as an auditor would: it is an SQLite file. The
# station journals its own technical alarms there too (ids `station-...`), so leave those out:
# `server.alarm_source`, the one place that knows how to tell them apart, gives the SQL condition
# that keeps only the devices' alarms, `DEVICE_ONLY_SQL`.

# %%
from server.alarm_source import DEVICE_ONLY_SQL

db = sqlite3.connect(drill.journal_path)
journal = pd.read_sql_query(
    "SELECT alarm_id, bed, condition, state, received_at FROM alarm_events "
    f"WHERE {DEVICE_ONLY_SQL} ORDER BY received_at", db)
db.close()
journal["received_at"] = pd.to_datetime(journal["received_at"], unit="s")
raised = drill.raised()          # what the devices themselves raised, from their senders
print(len(raised), "alarms raised,", len(journal), "rows in the journal")
journal.tail()

# %% tags=["check"]
checks = Checks("Exercise 2 on the live journal")
found = lambda: not_done_yet(audit, raised, journal)
checks.expect("missing", lambda: found()["missing"], expected=[],
              because="each alarm stays in its device's outbox until its ACK, and the outbox is "
                      "re-sent after reconnecting")
checks.expect("duplicated", lambda: found()["duplicated"], expected=[],
              because="the journal's key is the alarm id: a re-sent alarm is ACKed, not stored, "
                      "again")
checks.expect("rows in the journal", len(journal), expected=counts["raised"],
              because="every alarm raised is journaled exactly once")
checks.that("the reset caught alarms in flight", counts["re-sent after reconnect"] > 0,
            because="we reset while alarms were waiting for their ACK", got=counts)
checks

# %% [markdown]
# ## 3. Reading a capture: TCP's own retransmissions
#
# The proxy above reset connections; it cannot make TCP *retransmit*, because on loopback nothing is
# ever lost. For that the kernel must drop packets. With root and nftables, the next cell builds two
# network namespaces, "bedside" and "station", joined by a virtual Ethernet pair, drops 20% of the
# packets towards the station, and records the alarm channel on the station's side for a few seconds
# (`course.netns_recorder`, on `vitalsim.impair.netns`). Either way, the namespaces are gone when
# the cell ends. Live and recorded, the alarm channel is on the same port, `RECORDED_ALARM_PORT` in
# `course.constants`.
#
# The questions of this section are about a **trace**: a capture of the same set-up that is the
# same every time you run the lab. Your course may give you a trace of your own, generated from a
# seed of your student id (different losses, different alarm times, so your answers are yours):
# `student_traces()` reads it when `VITALSIM_STUDENT` names you (your instructor sets it, or
# `python -m course traces --student ID` makes it), and the course's recording
# `course/recordings/alarm-retransmissions.pcap` otherwise. Without root, your live capture is the
# trace too.
#
# One thing to know when reading it: the sniffer sees a packet *before* nftables drops it. A lost
# packet is in the capture once, like any other; you know it was lost from what follows.

# %%
from course.constants import RECORDED_ALARM_PORT
from course.reset_drill import alarm_channel_capture
from course.traces import student_traces
from vitalsim.layers import bind_ports

bind_ports(alarms=RECORDED_ALARM_PORT)   # scapy decodes the alarm channel's frames on this port
traces = student_traces()
print("the trace:", traces.note)
trace = traces.read("alarm-retransmissions")
workdir = tempfile.TemporaryDirectory(prefix="lab02-")
capture = await asyncio.to_thread(alarm_channel_capture, workdir.name)   # a few seconds
print(capture.note)
if capture.live:
    print("the ward:", capture.ward, "| device alarms journaled:", capture.journaled)
packets = rdpcap(str(capture.path)) if capture.live else trace
print(len(packets), "packets in your capture,", len(trace), "in the trace")

# %% [markdown]
# Start with the trace. Somewhere in it, an alarm was held back behind a lost one. Here is that
# stretch of its connection, each row one TCP segment as seen on the station's side: `no` is the
# packet's number in the capture (from 0), `t` is seconds since the first packet, `seq` numbers the
# first byte the segment carries, `ack` is the next byte its sender expects, `len` the bytes of
# data, and `carries` the alarm-channel frames inside. Under it, what happened, packet by packet
# (an alarm id is `device-boot-n`: the middle number is the device's boot id, the same in every
# alarm of this run of the device, so we write `1002-…-2`).

# %%
# NBVAL_CHECK_OUTPUT
from course.tcp_evidence import (
    head_of_line,
    head_of_line_story,
    retransmission_table,
    segment_table,
    shorten,
    station_resend,
)

segments = segment_table(trace)
held = head_of_line(trace)
stretch = segments[(segments.port == held.port)
                   & (segments.index >= held.lost[0]) & (segments.index <= held.jump + 1)]
print(f"port {held.port}, packets {held.lost[0]} to {held.jump + 1}:")
print(table(stretch, index="no", decimals={"t": 3}))
print()
print(head_of_line_story(trace, held))

# %% [markdown]
# Every segment with data that was sent more than once, in the trace:

# %%
# NBVAL_CHECK_OUTPUT
print(table(retransmission_table(trace)))

# %% [markdown]
# And in your capture (live when this machine could, else the trace again). A live capture
# differs from run to run (nftables drops at random), but look for the same patterns: segments sent
# again from the bedside (the segment itself was dropped) and from the station (it arrived, but the
# bedside's TCP ACK of it was dropped on the way back); re-sendings about 200 ms later (the
# retransmission timer) and sooner ones (a duplicate ACK showed the loss first).

# %%
print(table(retransmission_table(packets)))


# %% [markdown]
# ### Exercise 3: find the retransmissions yourself
#
# Write `find_retransmissions(packets)` with scapy: return a dict mapping
# `(src, sport, dst, dport, seq)` to the number of times a segment **with data** was sent, for every
# such segment sent more than once. `pkt[IP].src`, `pkt[TCP].sport`, `pkt[TCP].seq`, and
# `len(pkt[TCP].payload)` for its data are all you need. Careful: a pure ACK carries no data, and
# several pure ACKs in a row share the same seq. They are not retransmissions.
#
# The check compares your answer with `course.capture_analysis.tcp_retransmissions()` on the
# trace and on your live capture.

# %%
def find_retransmissions(packets) -> dict[tuple[str, int, str, int, int], int]:
    ### BEGIN SOLUTION
    sent = Counter()
    for pkt in packets:
        if IP in pkt and TCP in pkt and len(pkt[TCP].payload) > 0:
            sent[(pkt[IP].src, pkt[TCP].sport, pkt[IP].dst, pkt[TCP].dport, pkt[TCP].seq)] += 1
    return {segment: n for segment, n in sent.items() if n > 1}
    ### END SOLUTION


# %% tags=["check"]
from course.capture_analysis import tcp_retransmissions


def reference(pkts):
    return {r.flow + (r.seq,): r.times_sent for r in tcp_retransmissions(pkts)}


expected = reference(trace)
checks = Checks("Exercise 3: TCP retransmissions")
checks.expect(f"the trace ({traces.path('alarm-retransmissions').name})",
              lambda: not_done_yet(find_retransmissions, trace), expected=expected,
              because=f"{len(expected)} segments with data were sent more than once "
                      f"({sum(n > 2 for n in expected.values())} of them three times or more); "
                      "pure ACKs repeat their seq but carry no data")
if capture.live:
    checks.expect("your live capture", lambda: not_done_yet(find_retransmissions, packets),
                  expected=reference(packets),
                  because=f"tcp_retransmissions() finds {len(reference(packets))} in "
                          f"{capture.path.name}")
checks

# %% [markdown]
# ### Questions, answered from the trace
#
# Answer each with packet numbers, sequence numbers, times or counts from the tables above. The
# next cell prints the questions with the trace's own packet numbers, and the stretch of the
# trace the first one is about.

# %%
# NBVAL_CHECK_OUTPUT
resent = station_resend(trace)
most = max(tcp_retransmissions(trace), key=lambda r: (r.times_sent, -r.first_packet))
print(table(segments[(segments.port == resent.port) & (segments.index >= resent.packets[0] - 1)
                     & (segments.index <= resent.packets[-1] + 1)], index="no",
            decimals={"t": 3}))
print()
print(f"1. Packet {resent.packets[1]} is the station sending `{shorten(resent.carries)}` "
      f"(seq {resent.seq}) again, first sent at packet {resent.packets[0]}"
      + (f", and it went {len(resent.packets)} times in all" if len(resent.packets) > 2 else "")
      + ". The drops are only towards the station: why did the *station* retransmit?")
print(f"2. `{shorten(held.behind_carries)}` reached the station's kernel at packet "
      f"{held.behind}, and its application only after packet {held.jump}. What was lost, how "
      "long did the alarm wait, and what would that wait cost on a ward?")
print(f"3. TCP carried `{shorten(segments.loc[most.first_packet, 'carries'])}` "
      f"{most.times_sent} times "
      f"(packets {', '.join(str(n) for n in most.packets)}). How many rows does the station's "
      "journal hold for what it carried, and which layer made sure of that?")
print("4. In your capture, how many retransmitted segments came from each side? Does that fit "
      "a drop rule that only drops packets *arriving at the station*?")

# %% [markdown] tags=["instructor"]
# **Model answers** (the numbers are the trace's: each student's differ, the reasoning is the same).
# 1. The bedside's TCP ACK of the station's segment (the first bedside row after it whose `ack`
#    is the segment's `seq` + `len`) was dropped on its way into the station, so the station's TCP
#    never learned that its bytes had arrived, and its retransmission timer fired about 200 ms
#    later. The bedside acknowledged the copy again (a duplicate ACK: it already had those bytes);
#    when that ACK was dropped too, a third sending followed. The application's ACK frame reached
#    the bedside's kernel once per sending, and its application once: TCP drops the copies by
#    their seq.
# 2. The segment before it on the same connection (the story's first packet) was dropped. The
#    next one arrived, but TCP delivers in order: the station's kernel held it (and said so with a
#    duplicate ACK that SACKs it) until the lost bytes came again; then the ACK jumped past both,
#    and the application ACKed both alarms in one segment. The wait is the time between the two
#    packets printed (tens to hundreds of milliseconds: a retransmission timer, or a duplicate
#    ACK's round trip): a high-priority alarm can wait behind a low-priority one.
# 3. One row: TCP delivered its bytes once to the application (it discards copies by seq), and
#    even if the application had received it twice (after a reconnect), the journal's primary key
#    would store it once.
# 4. Typically more from the bedside (its data segments are dropped directly) and some from the
#    station (only when the bedside's ACK for them is dropped). Both are consistent with drops on
#    the station's input only: the station retransmits only because an ACK towards it was lost.

# %% [markdown]
# ## 4. What TCP does, and does not, guarantee
#
# | TCP guarantees | TCP does not guarantee |
# |---|---|
# | the bytes reach the peer's **kernel** in order, each once, or the connection fails | that the peer's **application** read them, let alone stored them |
# | lost segments are retransmitted (section 3: about 200 ms at the least) | *which* bytes were lost when a connection dies: `send()` had already returned |
# | an ordered stream | message boundaries (section 1): framing is the application's job |
# | flow and congestion control | timeliness: one lost segment holds up everything behind it (head-of-line blocking, section 3) |
#
# That is why the alarm channel adds an application-level ACK, sent only *after* the journal has the
# alarm, and an outbox re-sent after every reconnect: at-least-once delivery, made exactly-once by an
# idempotent journal keyed by alarm id (section 2). The price is head-of-line blocking on each
# device's connection, which is acceptable for a few alarms a minute. It is the reason the vitals
# travel by UDP instead (lab 01): a heart rate held up behind a lost one is already stale.

# %%
await drill.stop()
workdir.cleanup()
print("stopped:", not drill.system.station.running)

# %% [markdown]
# ## Reflection
#
# 1. In the drill, "tcp only" lost alarms although TCP is reliable. Name the three places an alarm's
#    bytes can be when the connection is reset, and say for each why the device cannot tell.
# 2. The station journals an alarm *before* it sends the ACK. What would the journal audit of
#    section 2 find if it were the other way round and the station crashed between the two?
# 3. An alarm id is `device-boot-n` (`1001-…-5`): the middle number is the device's boot id, its start
#    time in microseconds. What would go wrong without it, after a device reboots and `n` starts from
#    1 again? (The telemetry datagram carries the same boot id since version 2: why does the station
#    need it there too?)
# 4. In section 3, an alarm waited behind a lost one on its device's connection. Would one TCP
#    connection per alarm avoid that? What would it cost? How does QUIC address head-of-line
#    blocking?
# 5. The device declares its connection dead when an alarm waits 5 s for its ACK. What does a
#    shorter timeout buy, and what does it cost on a congested network?
