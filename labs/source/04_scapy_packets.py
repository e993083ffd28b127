# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 04 — Packets with scapy
#
# **Objectives.** By the end of this lab you will be able to
# 1. open a capture with the course's scapy layers, read any field of a datagram or of an alarm
#    frame, and pick out one device's traffic;
# 2. answer questions about a capture with evidence: packet numbers and field values, in a pandas
#    table, and read the same capture in Wireshark's tshark with the course's dissector;
# 3. write a scapy layer of your own from a byte table, and bind it so that scapy dissects what
#    follows it;
# 4. sniff the ward on the wire, forge a telemetry datagram, inject it into a running station and
#    watch a fake heart rate reach the dashboard;
# 5. turn on the authentication tag and watch the same forgery being refused while the real
#    monitors carry on.
#
# **Prerequisites.** Lab 01 (the telemetry datagram and its 34-byte header). Lab 02 helps for the
# alarm channel in Section 2. A first look at pandas.
#
# **Time.** About 50 minutes. **No root needed.** With root (sudo on Linux, or CI), Section 4
# sniffs the ward live and Section 6 also sends a forgery with scapy's own `send()`; without root
# they read the recorded captures in `course/recordings/` instead, which show the same things.
#
# Each exercise has a cell for your code (it starts as `raise NotImplementedError`) and a check cell
# that tells you *expected X because Y, got Z*, or that the exercise is not done yet.

# %%
import socket
import time

import pandas as pd
from scapy.all import IP, TCP, UDP, Packet, bind_layers
from scapy.fields import ByteField, IntField, LongField, ShortField, XShortField

from course import Checks, not_done_yet, wait_until
from course.constants import RECORDED_ALARM_PORT
from course.formatting import packet_fields, table, tcp_flags
from course.packets import (
    alarm_table,
    get_json,
    header_differences,
    recorded,
    sniff_or_recorded,
    telemetry_table,
)
from vitalsim.layers import AlarmFrame, Telemetry, TelemetryNumerics, bind_ports
from vitalsim.protocol import NumericsMessage, TelemetryError, decode, encode

# %% [markdown]
# ## 1. A capture, dissected
#
# `course/recordings/telemetry-clean.pcap` holds what two bedside monitors sent a receiver on the
# recorded UDP port, `RECORDED_TELEMETRY_PORT` in `course.constants`, for four seconds (the ward ran
# at five times real speed). `recorded()` reads it and tells scapy that this port carries telemetry
# (`bind_ports`), so every datagram to it dissects into the course's `Telemetry` layer.
# `packet_fields` prints a packet layer by layer, field by field, in the course's layout: here IP,
# UDP (a few of their fields), then ours, with the numerics body that travels inside it. (Its values
# are 32-bit floats, shown to two decimals: 36.8 is stored as 36.79999923706055.)

# %%
# NBVAL_CHECK_OUTPUT
clean = recorded("telemetry-clean")
print(len(clean), "packets, the first:")
print(packet_fields(clean[0], layers=["IP", "UDP", "Telemetry", "TelemetryNumerics"],
                    fields={"IP": ["src", "dst", "proto", "len"], "UDP": ["sport", "dport", "len"]}))

# %% [markdown]
# Without `layers` and `fields`, `packet_fields` prints every field of every layer, Ethernet (all
# zeros on the loopback interface) included. (scapy's own `show` method prints the same in scapy's
# layout, which changes between scapy releases; try it yourself.)

# %%
print(packet_fields(clean[0]))

# %% [markdown]
# `pkt[Telemetry]` is the telemetry layer of a packet; its fields are attributes. The body is a
# packet of its own, in the field `numerics` (or `wave`). A field holds a number; `sprintf` shows it
# the way `show()` does, with names for enumerations such as `type`.

# %%
# NBVAL_CHECK_OUTPUT
t = clean[0][Telemetry]
print("device", t.device_id, "bed", t.bed, "seq", t.seq, "type", t.type, t.sprintf("(%type%)"))
print("heart rate", t.numerics.hr, "from", clean[0][IP].src, "port", clean[0][UDP].sport)
print("header", len(bytes(t)) - t.body_len, "bytes, body", t.body_len, "bytes")

# %% [markdown]
# A capture is a list of packets, so picking out one device's traffic is a list comprehension over
# a field. Device 1002's datagrams, and how far apart their send times are:

# %%
# NBVAL_CHECK_OUTPUT
bed2 = [p for p in clean if p[Telemetry].device_id == 1002]
print(len(bed2), "datagrams from device 1002, seq", [p[Telemetry].seq for p in bed2])
steps = [b[Telemetry].sent_at_us - a[Telemetry].sent_at_us for a, b in zip(bed2, bed2[1:], strict=False)]
print("send times apart, in ms:", sorted({round(s / 1000) for s in steps}))

# %% [markdown]
# One simulated second of a monitor is 200 ms of real time at five times speed, and every
# sequence number is there: nothing was lost on the way to this receiver.
#
# For questions about many packets, `telemetry_table()` puts each datagram in a pandas row. Its
# `packet` column is the packet's number in the capture, so any answer can point at its evidence:
# `clean[row.packet]`.

# %%
# NBVAL_CHECK_OUTPUT
datagrams = telemetry_table(clean)
print(table(datagrams.head(6), ["packet", "time", "device_id", "bed", "seq", "sent_at_us", "hr",
                                "spo2"], decimals={"time": 6, "hr": 1, "spo2": 1}))
print()
print(table(datagrams.groupby("device_id").seq.agg(["count", "min", "max"]), index="device_id"))

# %% [markdown]
# ### Exercise 1: what UDP lost, with evidence
#
# `course/recordings/telemetry-loss.pcap` was recorded after an impairment proxy that dropped 20% of the
# datagrams of three beds: it is what the station received. UDP itself says nothing about what
# went missing; only the sequence numbers do.
#
# Your course may give you a capture of your own instead: the same ward, from a seed of your
# student id, so that its losses (and so your answers) are yours. `student_traces()` reads it
# when `VITALSIM_STUDENT` names you (your instructor sets it, or `python -m course traces
# --student ID` makes it), and the course's recording otherwise; the first line says which.
#
# Write, with scapy's field access (no table):
#
# * `lost(packets, device_id)`: the sequence numbers of that device that are missing between its
#   first and its last datagram in the capture, in increasing order;
# * `first_after(packets, device_id, seq)`: the number (index in the capture) of the first packet
#   from that device whose sequence number is above `seq`: the earliest moment a receiver could
#   notice that what came after `seq` was lost.

# %%
# NBVAL_CHECK_OUTPUT
from course.capture_analysis import longest_gap
from course.traces import student_traces

traces = student_traces()
print("reading", traces.note)
lossy = traces.read("telemetry-loss")
print(len(lossy), "datagrams; per device:",
      {d: sum(p[Telemetry].device_id == d for p in lossy) for d in (1001, 1002, 1003)})
GAP_DEVICE, GAP_FIRST, GAP_LAST = longest_gap(lossy)
print(f"the longest loss: device {GAP_DEVICE} lost seq {GAP_FIRST} to {GAP_LAST}")


# %%
def lost(packets, device_id: int) -> list[int]:
    ### BEGIN SOLUTION
    seqs = {p[Telemetry].seq for p in packets
            if p.haslayer(Telemetry) and p[Telemetry].device_id == device_id}
    return sorted(set(range(min(seqs), max(seqs) + 1)) - seqs)
    ### END SOLUTION


def first_after(packets, device_id: int, seq: int) -> int:
    ### BEGIN SOLUTION
    for number, p in enumerate(packets):
        if p.haslayer(Telemetry) and p[Telemetry].device_id == device_id \
                and p[Telemetry].seq > seq:
            return number
    raise ValueError(f"no datagram from device {device_id} after seq {seq}")
    ### END SOLUTION


# %% tags=["check"]
from course.capture_analysis import telemetry_gaps

gaps = telemetry_gaps(lossy)
evidence = telemetry_table(lossy)
before = GAP_FIRST - 1   # the last seq of that device to arrive before the loss
after_gap = evidence[(evidence.device_id == GAP_DEVICE) & (evidence.seq > before)].iloc[0]
checks = Checks("Exercise 1: what UDP lost")
for device in (1001, 1002, 1003):
    checks.expect(f"device {device}, missing seq", lambda d=device: not_done_yet(lost, lossy, d),
                  expected=gaps[device],
                  because="the course's gap analysis finds these numbers absent from the capture")
checks.expect(f"device {GAP_DEVICE}, first packet after seq {before}",
              lambda: not_done_yet(first_after, lossy, GAP_DEVICE, before),
              expected=int(after_gap.packet),
              because=f"device {GAP_DEVICE}'s next datagram to arrive after seq {before} is seq "
                      f"{after_gap.seq}, in that packet")
checks

# %% [markdown]
# **Question.** The longest loss in your capture is printed above: device `GAP_DEVICE` lost seq
# `GAP_FIRST` to `GAP_LAST`. From the table (`evidence`), at which packet number and at what time
# did the seq just before it arrive, and when did the station first have reason to think
# something was missing? Why could it not know sooner?

# %% [markdown] tags=["instructor"]
# *Model answer* (with `D`, `F` and `L` the device and the first and last seq printed above:
# each capture has its own numbers, the reasoning is the same).
# `evidence[evidence.device_id == D]` shows seq `F - 1` (its packet number and time) and then
# seq `L + 1` as the next row: the packet `first_after(lossy, D, F - 1)` returns, about
# `L - F + 2` monitor periods later (a monitor period is 0.2 s at 5x). Until seq `L + 1` arrived,
# a missing `F` looked exactly like a monitor that had not sent yet: UDP has no acknowledgement
# and no "I sent F" message, so the only sign of a loss is a
# *later* sequence number.

# %% [markdown]
# ### The same capture in Wireshark
#
# Wireshark, and its command-line twin tshark, is where network engineers read captures. Without
# help it shows our telemetry as "Data": it knows thousands of protocols, not this course's. The
# course ships a dissector for it, `wireshark/vitalsim.lua` (the README says how to install it in
# Wireshark), written from the same layout table as the scapy layers, with the same field names:
# `vitalsim.telemetry.seq` in a display filter is `pkt[Telemetry].seq` in scapy. It also keeps
# track of each device's sequence numbers, as a receiver does, and marks the datagram that reveals
# a loss (`vitalsim.telemetry.gap`, with an expert-info warning).
#
# The next cell runs tshark on the same file and lists the datagrams of the device above that
# reveal a loss: what the display filter `vitalsim.telemetry.device_id == D &&
# vitalsim.telemetry.gap > 0` shows in Wireshark. tshark numbers packets from **1**; scapy's list
# counts from **0**.

# %%
from course.wireshark import tshark_fields, unavailable_reason

loss_file = traces.path("telemetry-loss")
no_tshark = unavailable_reason()
FILTER = f"vitalsim.telemetry.device_id == {GAP_DEVICE} && vitalsim.telemetry.gap > 0"
if no_tshark:
    print("tshark cannot run here:", no_tshark)
    print("(the README shows what it prints for the course's recording)")
else:
    # every datagram once, with the fields this section compares and tshark's own Info column
    shown = tshark_fields(loss_file, ["frame.time_relative", "_ws.col.Protocol", "_ws.col.Info",
                                      "vitalsim.telemetry.device_id", "vitalsim.telemetry.seq",
                                      "vitalsim.telemetry.gap"])
    print(f"$ tshark -r {loss_file.name} -Y '{FILTER}'")
    for p in shown:
        if int(p["vitalsim.telemetry.device_id"][0]) == GAP_DEVICE \
                and int(p.get("vitalsim.telemetry.gap", ["0"])[0]) > 0:
            print(f'{p["frame.number"][0]:>5}  {float(p["frame.time_relative"][0]):9.6f}  '
                  f'{p["_ws.col.Protocol"][0]}  {p["_ws.col.Info"][0]}')

# %% [markdown]
# Two tools, one capture: the check below compares every datagram's device and sequence number
# as tshark read them with what scapy read, packet by packet; and it finds your `first_after`
# answer among the packets tshark marks, one number higher.

# %% tags=["check"]
checks = Checks("tshark and scapy read the same capture")
if no_tshark:
    checks.that("tshark runs here", False, because=no_tshark)
else:
    by_tshark = [(int(p["frame.number"][0]) - 1, int(p["vitalsim.telemetry.device_id"][0]),
                  int(p["vitalsim.telemetry.seq"][0])) for p in shown]
    checks.expect("every datagram: scapy's packet number, device and seq, as tshark reads them",
                  by_tshark, expected=[(int(r.packet), int(r.device_id), int(r.seq))
                                       for r in evidence.itertuples()],
                  because="the dissector and the scapy layers are written from one layout table")
    revealing = [int(p["frame.number"][0]) for p in shown
                 if int(p["vitalsim.telemetry.device_id"][0]) == GAP_DEVICE
                 and int(p.get("vitalsim.telemetry.gap", ["0"])[0]) > 0]
    checks.that(f"tshark marks your first_after({GAP_DEVICE}, {before}) answer + 1 as a gap",
                lambda: not_done_yet(first_after, lossy, GAP_DEVICE, before) + 1 in revealing,
                because="the datagram after a loss is the first that shows it, and tshark "
                        "numbers packets from 1", got=lambda: revealing)
checks

# %% [markdown]
# **Questions: what is each tool good for?**
#
# 1. You are handed a capture from a ward you have never seen, and told "the monitors drop out
#    sometimes". Which would you open first, Wireshark or a notebook with scapy, and why?
# 2. You must report each device's loss rate per minute over a day of captures. Which tool, and
#    what would the other make hard?
# 3. Wireshark can *only* read what a dissector has been written for. What did the course have
#    to write so that each tool understands its protocols, and what keeps the two in agreement?
# 4. Which of the two could *send* the forged datagram of Section 5?

# %% [markdown] tags=["instructor"]
# *Model answers.* (1) Wireshark: it needs no code, shows every layer at once, follows TCP
# streams, reassembles, colours the expert warnings, and filters interactively; it is for
# *looking*. (2) scapy with pandas: a loss rate per device per minute is a groupby over a table,
# repeatable and testable; in Wireshark it would be many filters and a spreadsheet (tshark's
# `-T fields` helps, but the analysis still needs code). (3) A scapy layer (Python) and a
# Wireshark dissector (Lua); both are written from the codec's layout table, and a test runs
# tshark over every capture and compares every field with the codec. (4) Only scapy: Wireshark
# reads, scapy also builds and sends.

# %% [markdown]
# ## 2. The alarm channel across a restart
#
# `alarm-restart.pcap` follows one device's TCP alarm channel while the station stops for a few
# seconds and starts again: your own (from your student id, like Exercise 1's capture) or the
# course's recording. `pkt[TCP].flags` holds TCP's flags: **S**YN opens a connection,
# **A**CK acknowledges, **F**IN closes, **R**ST refuses, **P**USH hands data to the application.
# The connections' openings, closings and refusals (`tcp_flags` writes the flags as letters):

# %%
# NBVAL_CHECK_OUTPUT
restart = traces.read("alarm-restart")
print("reading", traces.path("alarm-restart").name, "from", traces.note)
t0 = restart[0].time
for number, p in enumerate(restart):
    if p[TCP].flags.S or p[TCP].flags.F or p[TCP].flags.R:
        print(f"{number:3d}  {float(p.time - t0):6.3f} s  {p[TCP].sport:5d} -> {p[TCP].dport:5d}"
              f"  {tcp_flags(p[TCP].flags)}")

# %% [markdown]
# What those lines show, with your capture's packet numbers (`restart_landmarks` reads them off
# the flags and the frames):

# %%
# NBVAL_CHECK_OUTPUT
from course.tcp_evidence import restart_landmarks, short_id

marks = restart_landmarks(restart)
waits = ", ".join(f"{wait:g}" for _, wait in marks.refused)
print(f"Packets {marks.closing[0]}–{marks.closing[-1]}: the station goes away (its FIN first) "
      "and both sides close.")
print(f"Packets {marks.refused[0][0]}–{marks.refused[-1][0] + 1}: the device tries to connect "
      "again and the kernel answers each SYN with a RST (nothing listens on the port), while "
      f"the device waits longer each time ({waits} s: its back-off doubles).")
print(f"Packet {marks.reconnect}: the station is back, and a new connection starts from a new "
      f"source port, {marks.new_port} (the first was {marks.first_port}).")

# %% [markdown]
# The course's `AlarmFrame` layer dissects what travelled inside the segments. A segment can carry
# several frames: `p.getlayer(AlarmFrame)` is the first, and each frame's `payload` is the next
# one (or no frame at all, at the end). `message()` parses a frame's JSON body. The first segment
# with an ALARM in it:

# %%
# NBVAL_CHECK_OUTPUT
frames = alarm_table(restart)
FIRST_ALARM = int(frames[frames.frame == "ALARM"].packet.iloc[0])
frame = restart[FIRST_ALARM].getlayer(AlarmFrame)
print(f"packet {FIRST_ALARM}:", frame.sprintf("%type%"), "frame of", frame.length,
      "bytes (type and body), type number", frame.type)
print(frame.message())
print("followed by another frame:", isinstance(frame.payload, AlarmFrame))


# %% [markdown]
# ### Exercise 2: the alarms that waited
#
# While the station was down, the device kept its new alarm events in its outbox. Write
# `after_reconnect(packets, alarm_port)` returning, in capture order, a `(packet number,
# alarm_id)` tuple for every ALARM frame that the device sent on any connection but its first.
# The device's connections go *to* `alarm_port`; each has its own source port, and the first is
# the one of the capture's first SYN.

# %%
def after_reconnect(packets, alarm_port: int) -> list[tuple[int, str]]:
    ### BEGIN SOLUTION
    first = next(p[TCP].sport for p in packets
                 if p[TCP].flags.S and p[TCP].dport == alarm_port)
    found = []
    for number, p in enumerate(packets):
        if p[TCP].dport != alarm_port or p[TCP].sport == first:
            continue
        frame = p.getlayer(AlarmFrame)
        while isinstance(frame, AlarmFrame):
            if frame.sprintf("%type%") == "ALARM":
                found.append((number, frame.message()["alarm_id"]))
            frame = frame.payload
    return found
    ### END SOLUTION


# %% tags=["check"]
frames = alarm_table(restart)
alarms = frames[frames.frame == "ALARM"]
later = alarms[alarms.sport != alarms.sport.iloc[0]]
checks = Checks("Exercise 2: the alarms that waited")
checks.expect("ALARM frames after the reconnect",
              lambda: [tuple(x) for x in not_done_yet(after_reconnect, restart,
                                                      RECORDED_ALARM_PORT)],
              expected=[(int(r.packet), r.alarm_id) for r in later.itertuples()],
              because=f"the device's second connection (source port {later.sport.iloc[0]}) "
                      "carries these ALARM frames")
checks.that("each of them ACKed by the station",
            lambda: {a for _, a in not_done_yet(after_reconnect, restart, RECORDED_ALARM_PORT)}
            <= set(frames[frames.frame == "ACK"].alarm_id),
            because="the station ACKs an alarm once its journal holds it")
checks

# %% [markdown]
# The same answer, with its evidence, in a table: `alarm_table()` lists every frame of the capture,
# with the packet that carried it.

# %%
# NBVAL_CHECK_OUTPUT
print(table(frames, ["packet", "time", "sender", "sport", "frame", "alarm_id", "state"],
            decimals={"time": 6}))

# %% [markdown]
# One packet carries the second HELLO and, behind it, the alarm events that waited in the
# device's outbox while the station was down (alarms raised, `…-n`, and their clearings, `…-nc`);
# one segment of the station's ACKs them. Stacked layers are numbered: `p[AlarmFrame:2]` is the
# second frame of the segment.

# %%
# NBVAL_CHECK_OUTPUT
print(f"packet {marks.hello}: HELLO and {len(marks.waiting)} alarms that waited: "
      f"{', '.join(short_id(a) for a in marks.waiting)}; packet {marks.acked} ACKs them")
second = restart[marks.hello][AlarmFrame:2]
print(second.sprintf("%type%"), "frame:", second.message())

# %% [markdown]
# ## 3. A layer of your own
#
# A scapy layer is a `Packet` subclass whose `fields_desc` lists its fields in the order they are
# on the wire. Each field class knows its size and how to read, write and show its value; all of
# these are big-endian, like the protocol:
#
# | field class | bytes | for |
# |---|---|---|
# | `ByteField` | 1 | u8 |
# | `ShortField` / `XShortField` | 2 | u16 (the X one shows it in hex) |
# | `IntField` | 4 | u32 |
# | `LongField` | 8 | u64 |
#
# `vitalsim.layers` builds its `Telemetry` from the codec's layout table. Its header fields:

# %%
for field in Telemetry.fields_desc[:11]:
    print(f"{field.name:11} {type(field).__name__:14} {int(field.sz)} byte(s)")


# %% [markdown]
# `bind_layers(Lower, Upper, field=value)` tells scapy: after a `Lower`, when its `field` equals
# `value`, comes an `Upper`. That is all `bind_ports(telemetry=RECORDED_TELEMETRY_PORT)` does:
# `bind_layers(UDP, Telemetry, dport=RECORDED_TELEMETRY_PORT)`.
#
# ### Exercise 3: the telemetry header, by hand
#
# Complete `make_header_layer()` so that it returns your own layer for the 34-byte header of
# version 3: the eleven fields of the table in `docs/PROTOCOL.md`, in order, with the same names
# (`magic`, `version`, `type`, `flags`, `key_id`, `bed`, `device_id`, `seq`, `sent_at_us`,
# `boot_id`, `body_len`), and defaults `0x5653` for `magic` and `3` for `version`. `boot_id` is
# the device's start time in microseconds, the same number as in the middle of its alarm ids: it
# is how the station tells a monitor that restarted (its `seq` starts again at 0, under a newer
# boot id) from old datagrams replayed. Then, still inside the function, bind it so that when your
# header's `type` is 1 the course's `TelemetryNumerics` follows.
#
# The check reads the 40 captured datagrams with your layer and with `vitalsim.layers` and compares
# the eleven fields; builds the header from those fields with your layer and compares the bytes; and
# reads packet 0's heart rate through your binding.
#
# (The class lives inside a function so that the rest of the notebook runs while yours is still a
# stub, and each run makes a fresh class. Binding *your* header to the numerics body changes
# nothing for the course's own layers; the check makes sure of that too.)

# %%
def make_header_layer() -> type[Packet]:
    class MyTelemetryHeader(Packet):
        name = "MyTelemetryHeader"
        ### BEGIN SOLUTION
        fields_desc = [
            XShortField("magic", 0x5653), ByteField("version", 3), ByteField("type", 1),
            ByteField("flags", 0), ByteField("key_id", 0), ShortField("bed", 0),
            IntField("device_id", 0), IntField("seq", 0), LongField("sent_at_us", 0),
            LongField("boot_id", 0), ShortField("body_len", 0),
        ]
        ### END SOLUTION

    ### BEGIN SOLUTION
    bind_layers(MyTelemetryHeader, TelemetryNumerics, type=1)
    ### END SOLUTION
    return MyTelemetryHeader


# %% tags=["check"]
layer = lambda: not_done_yet(make_header_layer)
packet0 = bytes(clean[0][Telemetry])
checks = Checks("Exercise 3: a layer of your own")
checks.expect("fields where your layer and vitalsim.layers differ",
              lambda: header_differences(layer(), clean), expected=[],
              because=f"both layers read the same 34 bytes of the same {len(clean)} datagrams, "
                      "and build them back from the same fields")
checks.expect("the first bytes of a header built with no arguments",
              lambda: bytes(layer()())[:3], expected=b"VS\x03",
              because="magic 0x5653 ('VS') and version 3 are the defaults every datagram needs")
HR0 = clean[0][TelemetryNumerics].hr   # what the course's layers read in packet 0
checks.expect("packet 0's heart rate through your binding",
              lambda: layer()(packet0)[TelemetryNumerics].hr, expected=HR0,
              because="after your header with type 1 comes TelemetryNumerics, whose first "
                      f"field is hr, and the course's layers read {HR0:g} in packet 0")
checks.that("the course's layers still dissect the capture",
            lambda: layer() is not None
            and all(type(IP(bytes(p[IP]))[UDP].payload) is Telemetry for p in clean),
            because="binding your own header to the numerics body leaves UDP's bindings alone")
checks

# %% [markdown]
# Try `print(packet_fields(make_header_layer()(packet0)))`: your header, and under it the course's numerics body,
# found by your binding.
#
# ## 4. The ward, on the wire
#
# Now a running ward: two beds, sending to a station on ephemeral ports. `bind_ports` tells scapy
# that the station's port carries telemetry too.

# %%
from server import System

system = System.ephemeral(beds=2, scenario="stable_adult", waves=False, seed=4, speed=2.0)
await system.start()
await system.wait_ready(timeout=10)
bind_ports(telemetry=system.station.udp_port)
from IPython.display import display

from course.links import dashboard_link

display(dashboard_link(system.url))  # opens where this notebook runs, on a hub too
print("telemetry arrives on UDP port", system.station.udp_port)

# %% [markdown]
# Sniffing opens a raw socket on the loopback interface `lo`, which needs root. The BPF filter
# `udp dst port P` runs in the kernel, so only the station's telemetry reaches scapy. The sniff
# is bounded: it stops after 8 datagrams or 6 seconds, whichever comes first, and it *awaits*, so
# that the monitors (which run on this notebook's event loop) keep sending while it listens.
# Without root, `sniff_or_recorded` reads `telemetry-clean.pcap` instead (the same two beds,
# recorded), and says so.

# %%
sniffed = await sniff_or_recorded(f"udp dst port {system.station.udp_port}", count=8,
                                  seconds=6, recording="telemetry-clean")
print(sniffed)
seen = telemetry_table(sniffed.packets)
seen[["packet", "time", "src", "sport", "device_id", "bed", "seq", "key_id", "hr"]].head(8)


# %% [markdown]
# Everything a forger needs is on the wire, in clear: which device speaks for which bed, its next
# sequence number, where to send. And nothing in a datagram proves who sent it: `key_id` is 0,
# there is no tag, and UDP has no connection that would tie a datagram to a sender.
#
# ## 5. A forged heart rate
#
# The station checks what it can: the device must be provisioned for the bed, the send time may
# not be ahead of the station's clock (by more than 2 s), every value must be plausible, the boot
# id must be the device's current one (an older one is a datagram from before a restart, refused
# as `old_boot`), and the sequence number must be inside the device's window. It keeps, for each
# bed, the reading with the newest *sequence number*. But the boot id and the sequence number are
# just more fields of the datagram: a forger who sends the device's boot id and next numbers,
# dated now, with a plausible heart rate, passes every check, and the real datagram that arrives
# after it with the same number is taken for a duplicate.
#
# A scapy layer also *builds* packets: call it with field values as keyword arguments, and
# `bytes()` gives the datagram. The body is a packet of its own, a `TelemetryNumerics`, given as
# the value of the `numerics` field; the layer fills in `type` and `body_len` from it. The codec
# reads the result as any station would:

# %%
# NBVAL_CHECK_OUTPUT
example = Telemetry(bed=7, device_id=1007, seq=5, sent_at_us=1_764_000_000_000_000,
                    numerics=TelemetryNumerics(hr=61, spo2=99, rr=12, temp=37.0))
data = bytes(example)
print(len(data), "bytes; the header says type", Telemetry(data).type, "and body_len",
      Telemetry(data).body_len)
decoded = decode(data)
print("decoded: bed", decoded.bed, "seq", decoded.seq, "hr", decoded.hr, "spo2", decoded.spo2)

# %% [markdown]
# ### Exercise 4: forge a datagram
#
# Write `forge(bed, device_id, seq, hr, sent_at_us, boot_id)` returning a `Telemetry` packet (the
# course's layer) of a numerics datagram with those header fields and a body with that heart rate and
# plausible other values (SpO₂ 97, respiration 14, temperature 36.8), built as in the cell above.
# Leave `type` and `body_len` alone: the layer fills them in.
#
# The next cell sends `bytes(forge(...))` to the station with a plain UDP socket, as bed 2's
# device 1002, with its boot id and the sequence number after its next one (read here from the
# station's state; Section 4 showed that a sniffer reads both off the wire just as well), dated now,
# and a heart rate of 250. No root is needed: the station listens to anyone.

# %%
def forge(bed: int, device_id: int, seq: int, hr: float, sent_at_us: int,
          boot_id: int) -> Telemetry:
    ### BEGIN SOLUTION
    return Telemetry(bed=bed, device_id=device_id, seq=seq, sent_at_us=sent_at_us,
                     boot_id=boot_id,
                     numerics=TelemetryNumerics(hr=hr, spo2=97, rr=14, temp=36.8))
    ### END SOLUTION


# %%
FORGED_HR = 250.0
attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # any program, no root


def send_forgery(station_port: int) -> Telemetry | None:
    victim = system.station.beds.beds[2].latest
    try:
        pkt = forge(bed=2, device_id=1002, seq=victim.seq + 2, hr=FORGED_HR,
                    sent_at_us=int(time.time() * 1_000_000), boot_id=victim.boot_id)
    except NotImplementedError:
        print("forge() is not written yet: nothing sent")
        return None
    attacker.sendto(bytes(pkt), ("127.0.0.1", station_port))
    print("sent", len(bytes(pkt)), "bytes as device", pkt.device_id, "seq", pkt.seq)
    return pkt


forged = send_forgery(system.station.udp_port)
if forged is not None:
    try:
        await wait_until(lambda: FORGED_HR in [m.hr for m in system.station.beds.beds[2].history],
                         timeout=3, what="the forged heart rate at the station")
    except TimeoutError:
        print("the station did not take it; rejected:", system.station.stats()["udp"]["rejected"])
# what the station had refused when it took the forgery (read now: see below for what follows)
rejected_when_forged = system.station.stats()["udp"]["rejected_total"]
beds = pd.DataFrame((await get_json(system.url + "api/beds"))["beds"]).set_index("bed")
beds["sent_ahead_s"] = (beds.sent_at - time.time()).round(1)   # send time minus now
history = await get_json(system.url + "api/beds/2/history?channels=hr")   # for the check below
beds[["device_id", "hr", "spo2", "rr", "sent_ahead_s"]]

# %% [markdown]
# `/api/beds` is what the dashboard shows: open `system.url` and bed 2's tile reads 250 beats per
# minute (its NEWS2 jumps with it), with no sign that anything is wrong. The history the trend
# plot draws keeps it too, long after the real monitor has taken over again. And a second or
# two later the real monitor's own datagram with that sequence number arrives, and the station
# refuses *it*, as a replay: the forger took its place (`rejected` in `/api/stats` goes up by one).

# %% tags=["check"]
done = lambda: not_done_yet(forge, 2, 1002, 1, FORGED_HR, 0, 0) is not None
checks = Checks("Exercise 4a: the station believed the forgery")
checks.expect("heart rate in your datagram, as the codec decodes it",
              lambda: decode(bytes(not_done_yet(forge, 2, 1002, 1, FORGED_HR, 0, 0))).hr,
              expected=FORGED_HR, because="forge() puts hr into the numerics body")
checks.expect("bed 2's heart rate in /api/beds, just after", lambda: done() and beds.loc[2, "hr"],
              expected=FORGED_HR,
              because="the station shows the reading with the newest sequence number, and the "
                      "forgery carried the device's boot id and its next-but-one")
checks.that("bed 2's history holds the forged heart rate",
            lambda: done() and FORGED_HR in history["hr"],
            because="the station stores every numerics datagram that decodes, whoever sent it",
            got=lambda: history["hr"][-5:])
checks.expect("datagrams the station had rejected when it took yours", rejected_when_forged,
              expected=0,
              because="nothing in an untagged datagram lets the station tell a forgery apart")
checks

# %% [markdown]
# ## 6. The fix: an authentication tag
#
# A monitor that shares a secret key with the station appends a tag to every datagram:
# HMAC-SHA256 of the header and body under that key, 16 bytes, and sets `key_id` to say which key.
# A station that *requires* a tag rejects any datagram without a valid one. Without the key, no
# one can compute the tag of a changed or new datagram. The tag does not hide anything, though:

# %%
# NBVAL_CHECK_OUTPUT
KEY = b"ward 7 telemetry key"
genuine = NumericsMessage(1002, 2, 7, 1_764_000_000.0, 0, 72.0, 97.0, 14.0, 36.8)
signed = encode(genuine, key=KEY)
t = Telemetry(signed)
print(len(signed), "bytes, key_id", t.key_id, "tag", t.tag.hex())
print("heart rate, readable by anyone on the wire:", t.numerics.hr)

tampered = Telemetry(signed)
tampered.numerics.hr = FORGED_HR
for name, data in [("signed", signed), ("unsigned", encode(genuine)),
                   ("heart rate changed", bytes(tampered)),
                   ("tag of zeros", signed[:-16] + bytes(16))]:
    try:
        decode(data, keys={1: KEY}, require_tag=True)
        print(f"{name:20} accepted")
    except TelemetryError as exc:
        print(f"{name:20} rejected: {exc.reason}")

# %% [markdown]
# Now the same ward, with both halves of the fix: monitors that sign with the key
# (`WardConfig(key=...)`) and a station that knows it and requires it
# (`telemetry_keys`, `require_tag=True`). Then the same forgery as before.

# %%
from server.config import StationConfig
from server.system import SystemConfig
from vitalsim.devices import WardConfig

await system.stop()
system = System(SystemConfig(
    StationConfig(http_port=0, udp_port=0, tcp_port=0,
                  telemetry_keys={1: KEY}, require_tag=True),
    WardConfig(beds=2, scenario="stable_adult", waves=False, seed=4, speed=2.0, key=KEY)))
await system.start()
await system.wait_ready(timeout=10)
from IPython.display import display

from course.links import dashboard_link

display(dashboard_link(system.url))  # opens where this notebook runs, on a hub too

before = system.station.stats()["udp"]
forged = send_forgery(system.station.udp_port)
if forged is not None:
    await wait_until(lambda: system.station.stats()["udp"]["rejected_total"] > 0,
                     timeout=3, what="the station's verdict on the forgery")
await wait_until(lambda: system.station.stats()["udp"]["received"] >= before["received"] + 4,
                 timeout=5, what="four more datagrams from the real monitors")
after = system.station.stats()["udp"]
history = await get_json(system.url + "api/beds/2/history?channels=hr")
print("accepted before", before["received"], "after", after["received"])
print("rejected:", after["rejected"])

# %% tags=["check"]
checks = Checks("Exercise 4b: the authenticated station refused it")
checks.expect("your forgery's heart rate, decoded with no tag required",
              lambda: decode(bytes(not_done_yet(forge, 2, 1002, 1, FORGED_HR, 0, 0))).hr,
              expected=FORGED_HR,
              because="it is a well-formed datagram: the missing tag must be the only reason the "
                      "station refused it")
checks.expect("datagrams rejected as bad_tag",
              lambda: done() and after["rejected"].get("bad_tag", 0), expected=1,
              because="your forgery carries no tag, and this station requires one")
checks.that("the forged heart rate is not in bed 2's history",
            lambda: done() and FORGED_HR not in history["hr"],
            because="a rejected datagram never reaches the beds", got=lambda: history["hr"][-5:])
checks.that("the real monitors keep flowing", after["received"] > before["received"],
            because="their datagrams carry a valid tag under key id 1",
            got=(before["received"], after["received"]))
checks

# %% [markdown]
# With root (if Section 4 could sniff live), scapy writes the whole packet, IP header included,
# and sends it with `send()` through a raw socket: a forger can then also lie about its address.
# Without root, `course/recordings/spoofed-telemetry.pcap` holds such a packet, from 10.0.0.66. Against
# the authenticated station a false address does not help either: the tag is still missing.

# %%
if sniffed.live:   # raw sockets work here (root): Section 4 sniffed live
    from scapy.all import send

    spoofed = (IP(src="10.0.0.66", dst="127.0.0.1")
               / UDP(sport=40404, dport=system.station.udp_port)
               / Telemetry(bed=2, device_id=1002, seq=1, sent_at_us=int(time.time() * 1e6),
                           numerics=TelemetryNumerics(hr=FORGED_HR, spo2=97, rr=14, temp=36.8)))
    rejected = system.station.stats()["udp"]["rejected_total"]
    send(spoofed, verbose=False)
    try:
        await wait_until(lambda: system.station.stats()["udp"]["rejected_total"] > rejected,
                         timeout=2, what="the spoofed datagram at the station")
        print("from", spoofed[IP].src, "->", system.station.stats()["udp"]["rejected"])
    except TimeoutError:
        print("this kernel dropped the spoofed source address before the station saw it")
else:
    spoofed = recorded("spoofed-telemetry")[0]
    print("recorded: from", spoofed[IP].src, "to port", spoofed[UDP].dport,
          "key_id", spoofed[Telemetry].key_id)

# %% [markdown]
# ## 7. Stop everything

# %%
attacker.close()
await system.stop()
print("stopped:", not system.station.running)

# %% [markdown]
# ## Reflection
#
# 1. Exercise 1: a receiver notices a lost datagram only when a later one arrives. What does that
#    mean for the *last* datagram a monitor sends before its cable is pulled, and how does the
#    station notice that case instead?
# 2. The forgery in Section 5 came from 127.0.0.1, like the real monitors. Would a firewall rule
#    that accepts telemetry only from the monitors' addresses have stopped it? What does the
#    spoofed packet of Section 6 say about rules based on addresses?
# 3. The tag gives integrity and authenticity, not confidentiality: a sniffer still reads every
#    heart rate. Is patient data on a ward network a reason to want confidentiality too, and what
#    would it cost the station per datagram?
# 4. Someone records a genuine signed datagram and sends it again an hour later (a replay). The
#    tag verifies. Which fields could the station check to refuse it, and what would it need to
#    remember per device?
# 5. The station refuses a send time more than 2 s ahead of its own clock (try the forgery dated
#    ten seconds ahead: `/api/stats` counts it under `future`). Why a bound of seconds rather than
#    zero, and what does the bound leave a forger who knows it?
# 6. In the restart capture, why did the alarms that waited (printed in Section 2) reach the
#    station only after the second HELLO, and what would have happened to them with plain TCP and
#    no outbox?
