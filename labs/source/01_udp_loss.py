# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 01 — UDP telemetry and loss
#
# **Objectives.** By the end of this lab you will be able to
# 1. send and receive a telemetry datagram with a plain UDP socket, and read its bytes against the
#    protocol table in `docs/PROTOCOL.md`;
# 2. compare a binary encoding with JSON, in bytes and in bandwidth per bed;
# 3. make the network lose datagrams on purpose, and see the loss in the sequence numbers;
# 4. compute loss and RFC 3550 jitter yourself with pandas, and check them against the station's.
#
# **Prerequisites.** Lab 00. Python's `struct` module; a first look at pandas.
#
# **Time.** About 45 minutes. No root needed.
#
# Each exercise has a cell for your code (it starts as `raise NotImplementedError`) and a check cell
# that tells you *expected X because Y, got Z*, or that the exercise is not done yet.

# %%
import socket
import struct

import pandas as pd

from course import Checks, not_done_yet
from vitalsim.protocol import NumericsMessage, WaveMessage, encode
from vitalsim.protocol.json_codec import encode_json

# %% [markdown]
# ## 1. One datagram, by hand
#
# A bedside monitor packs one bed's numerics into one datagram and sends it. UDP adds nothing but
# ports, a length and a checksum: no connection, no acknowledgement, no retransmission. Here we play
# both sides with two plain sockets on this machine.

# %%
# NBVAL_CHECK_OUTPUT
msg = NumericsMessage(device_id=1003, bed=3, seq=41, sent_at=1_764_000_000.5, flags=0,
                      hr=72.0, spo2=97.0, rr=14.0, temp=36.8, boot_id=1_763_990_000_000_000)
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))            # port 0: any free port
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.sendto(encode(msg), receiver.getsockname())
data, source = receiver.recvfrom(2048)
sender.close()
receiver.close()
print(len(data), "bytes")
for offset in range(0, len(data), 16):
    print(f"{offset:3d}  {data[offset:offset + 16].hex(' ')}")


# %% [markdown]
# ### Exercise 1: read the header
#
# The header is 34 bytes (version 3): `magic u16, version u8, type u8, flags u8, key_id u8,
# bed u16, device_id u32, seq u32, sent_at_us u64, boot_id u64, body_len u16`, all big-endian
# (network byte order). `boot_id` is when the monitor started, in microseconds: a monitor that
# restarts numbers its datagrams from 0 again, and the newer boot id tells the station so.
# Write `parse_header(data)` returning a dict with those eleven names. `struct.unpack_from` with a
# format string that starts with `!` is all you need.

# %%
def parse_header(data: bytes) -> dict:
    names = ("magic", "version", "type", "flags", "key_id", "bed", "device_id", "seq",
             "sent_at_us", "boot_id", "body_len")
    ### BEGIN SOLUTION
    return dict(zip(names, struct.unpack_from("!HBBBBHIIQQH", data), strict=True))
    ### END SOLUTION


# %% tags=["check"]
checks = Checks("Exercise 1: read the header")
header = lambda: not_done_yet(parse_header, data)
checks.expect("magic", lambda: header()["magic"], expected=0x5653, fmt="#06x",
              because="every telemetry datagram starts with the bytes 'VS' (0x56 0x53)")
checks.expect("bed", lambda: header()["bed"], expected=3, because="the message was for bed 3")
checks.expect("seq", lambda: header()["seq"], expected=41, because="we sent sequence number 41")
checks.expect("sent_at_us", lambda: header()["sent_at_us"], expected=1_764_000_000_500_000,
              because="the send time travels as microseconds since 1970")
checks.expect("boot_id", lambda: header()["boot_id"], expected=1_763_990_000_000_000,
              because="the monitor started at 1_763_990_000 s, in microseconds")
checks.expect("body_len", lambda: header()["body_len"], expected=len(data) - 34,
              because="everything after the 34-byte header is the body")
checks

# %% [markdown]
# ## 2. Binary against JSON
#
# The same message can travel as JSON: readable, self-describing, and bigger. For the numerics that
# is one datagram a second; for waveforms it is twelve a second per bed (three channels, four chunks
# each).

# %%
# NBVAL_CHECK_OUTPUT
ecg = WaveMessage(device_id=1003, bed=3, seq=42, sent_at=1_764_000_000.75, flags=0,
                  channel="ecg", rate=250, first_index=62_500,
                  samples=[(i * 37) % 1200 - 200 for i in range(63)])
for name, m in (("numerics", msg), ("ecg chunk", ecg)):
    binary, text = len(encode(m)), len(encode_json(m))
    print(f"{name:10} binary {binary:4d} B   JSON {text:4d} B   ratio {text / binary:.2f}")

# %% [markdown]
# ### Exercise 2: bandwidth of one bed
#
# Each datagram also carries an IPv4 header (20 bytes) and a UDP header (8 bytes). Write
# `bytes_per_second(numerics_payload, wave_payloads)` giving the bytes per second one bed puts on
# the wire: one numerics datagram a second, plus, for every waveform payload size in the list, four
# datagrams a second.

# %%
IP_UDP_HEADERS = 20 + 8

def bytes_per_second(numerics_payload: int, wave_payloads: list[int]) -> int:
    ### BEGIN SOLUTION
    return (numerics_payload + IP_UDP_HEADERS) + sum(4 * (p + IP_UDP_HEADERS)
                                                     for p in wave_payloads)
    ### END SOLUTION


# %% tags=["check"]
# ECG 63 samples, pleth 32, respiration 7 per quarter second
waves_binary = [len(encode(WaveMessage(1, 1, 0, 0.0, 0, ch, r, 0, [0] * n)))
                for ch, r, n in (("ecg", 250, 63), ("pleth", 125, 32), ("resp", 25, 7))]
waves_json = [len(encode_json(WaveMessage(1, 1, 0, 0.0, 0, ch, r, 0, [-1000] * n)))
              for ch, r, n in (("ecg", 250, 63), ("pleth", 125, 32), ("resp", 25, 7))]
checks = Checks("Exercise 2: bandwidth of one bed")
checks.expect("binary, bytes per second",
              lambda: not_done_yet(bytes_per_second, len(encode(msg)), waves_binary),
              expected=(len(encode(msg)) + 28) + 4 * sum(p + 28 for p in waves_binary),
              because="1 numerics + 12 wave datagrams a second, each with 28 bytes of headers")
checks.that("JSON costs more than twice as much",
            lambda: not_done_yet(bytes_per_second, len(encode_json(msg)), waves_json)
            > 2 * not_done_yet(bytes_per_second, len(encode(msg)), waves_binary),
            because="text digits and field names are bigger than packed integers")
checks

# %% [markdown]
# ## 3. Loss you can see
#
# Now the whole system, with an impairment proxy between the ward and the station. The sliders
# change the proxy while it runs (try them on a live notebook; below, code sets them, so that the
# run is the same every time). The station cannot know a datagram was lost, except that a sequence
# number never arrived.

# %%
from course.impair_widgets import controls
from server import System

system = System.ephemeral(beds=2, scenario="stable_adult", waves=False, impaired=True,
                          seed=3, speed=10.0)
await system.start()
from IPython.display import display

from course.links import dashboard_link

display(dashboard_link(system.url))  # opens where this notebook runs, on a hub too
controls(system.udp_proxy)

# %%
import asyncio

from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from IPython.display import display
from jupyter_bokeh import BokehModel

from course.plots import load_bokehjs

load_bokehjs()                              # BokehJS, from the installed bokeh, into this page
system.udp_proxy.settings.loss = 0.2       # what a slider would do: the loss slider moves to 20
source = ColumnDataSource({"t": [], "lost": []})
plot = figure(height=220, width=600, x_axis_label="seconds", y_axis_label="datagrams lost (bed 1)")
plot.step("t", "lost", source=source)
display(BokehModel(plot))
for tick in range(8):                       # four seconds, bounded
    await asyncio.sleep(0.5)
    source.stream({"t": [tick / 2], "lost": [system.station.beds.beds[1].stats.lost]}, rollover=200)

# %%
measured = {bed: s.stats.lost for bed, s in system.station.beds.beds.items()}
print("the proxy dropped", system.udp_proxy.counters["dropped"], "datagrams")
print("the station counted, per bed, from sequence gaps:", measured)

# %% [markdown]
# The two numbers agree (give or take a datagram dropped in the last instant, whose gap is not
# visible until the next one arrives): everything the proxy dropped shows up as a missing sequence
# number, and nothing else does.

# %% [markdown]
# ### Exercise 3: loss and jitter with pandas
#
# A receiver's log, one row per datagram that arrived, in arrival order: `seq`, `sent_at` and
# `received_at`. Write `loss_and_jitter(log)` returning `(loss_ratio, jitter_ms)`:
#
# * loss ratio: the share of sequence numbers from the first to the last seen that never arrived
#   (count each sequence number once: duplicates are not extra datagrams);
# * jitter: RFC 3550's interarrival jitter, over the datagrams in arrival order (duplicates left
#   out): with transit time `D = received_at - sent_at`, for each datagram after the first,
#   `J += (|D - D_previous| - J) / 16`. Return it in milliseconds.

# %%
from course.datasets import lossy_telemetry

log = lossy_telemetry(n=600, loss=0.12, jitter=0.015, duplicate=0.02, seed=7)
log.head()


# %%
def loss_and_jitter(log: pd.DataFrame) -> tuple[float, float]:
    ### BEGIN SOLUTION
    unique = log.drop_duplicates("seq")
    expected = unique["seq"].max() - unique["seq"].min() + 1
    loss = 1 - len(unique) / expected
    transit = unique["received_at"] - unique["sent_at"]
    jitter = 0.0
    for d in transit.diff().abs().iloc[1:]:
        jitter += (d - jitter) / 16
    return loss, jitter * 1000
    ### END SOLUTION


# %% tags=["check"]
from vitalsim.protocol import ReceiverStats

reference = ReceiverStats()
for row in log.itertuples():
    reference.observe(row.seq, row.sent_at, row.received_at)
checks = Checks("Exercise 3: loss and jitter")
checks.expect("loss ratio", lambda: not_done_yet(loss_and_jitter, log)[0],
              expected=reference.loss_ratio, tolerance=1e-9,
              because="the station's own tracker counts the same sequence gaps")
checks.expect("jitter (ms)", lambda: not_done_yet(loss_and_jitter, log)[1],
              expected=reference.jitter * 1000, tolerance=1e-6,
              because="RFC 3550 section 6.4.1 gives one formula for it")
checks

# %% [markdown]
# ## 4. Why losing a vitals sample is acceptable
#
# A heart rate is replaced by a newer one a second later; a waveform sample by the next one 4 ms
# later. Retransmitting a lost one would deliver it *late*, after its successor, when it is worth
# nothing to a screen that shows "now", and it would hold up everything behind it. UDP lets the
# station show a gap and move on. Alarms are different: one must never be lost, so they travel
# over TCP, with the application's own acknowledgement (Lab 02).

# %%
await system.stop()
print("stopped:", not system.station.running)

# %% [markdown]
# ## Reflection
#
# 1. In Section 3, a datagram dropped in the last instant before we read the counters does not show
#    as a gap yet. Why not, and when would it?
# 2. The proxy's loss was set to 20%, yet one bed can see more or less than that in a few seconds.
#    How many datagrams would you need for the measured loss to be within ±2% most of the time?
# 3. JSON was about three times bigger. On a ward of 1,000 beds, what does that cost per second,
#    and when would you still choose JSON?
# 4. Turn the `burst` slider up with the same loss, and run the plot's cell again. What changes in
#    the steps of the plot, and for how long does bed 1's tile on the dashboard then go without a
#    new value? Why is a burst of losses worse for a clinician than the same number spread out?
#    (This lab runs the ward without waveforms, `waves=False`; with them, a burst would also cut a
#    visible gap into the ECG.)
