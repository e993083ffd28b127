# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 03 — WebSocket push
#
# **Objectives.** By the end of this lab you will be able to
# 1. read a WebSocket opening handshake in a capture, and compute the `Sec-WebSocket-Accept` that
#    proves the station understood it;
# 2. parse WebSocket frames by hand: FIN, opcode, MASK, the three sizes of payload length, and
#    unmasking;
# 3. measure push against polling the HTTP API, in latency and in bytes, and say what each costs;
# 4. explain, with the station's own counters, why a dashboard that stops reading loses vitals but
#    never alarms, and why it is cut off with close code 4000 when it falls too far behind;
# 5. make a notebook cell a WebSocket client that feeds a live plot.
#
# **Prerequisites.** Labs 00 and 01 (a system started from a notebook; bytes read against a
# table). HTTP requests and headers; TCP as a byte stream. Section 3 of `docs/PROTOCOL.md`, the
# WebSocket schema.
#
# **Time.** About 60 minutes. No root needed: with root, section 1 also captures a handshake live;
# without, it uses the capture of section 1 again: your own (from your student id) or the course's
# recording, which hold the same things.
#
# Each exercise has a cell for your code (it starts as `raise NotImplementedError`) and a check cell
# that tells you *expected X because Y, got Z*, or that the exercise is not done yet.

# %%
import asyncio
import base64
import hashlib
import json

import pandas as pd
from tornado.websocket import websocket_connect

from course import Checks, not_done_yet
from course.constants import RECORDED_HTTP_PORT
from course.formatting import table
from course.traces import student_traces
from course.websocket import explain_header, http_head, iter_frames, tcp_streams
from vitalsim.impair.live import capture_unavailable_reason

# %% [markdown]
# ## 1. The upgrade handshake, from a capture
#
# A WebSocket starts life as HTTP. The client sends an ordinary `GET` that asks to *upgrade* the
# connection; the server agrees with `101 Switching Protocols`, and from the next byte on, the same
# TCP connection carries WebSocket frames both ways, with no more HTTP.
#
# `websocket.pcap` holds one dashboard's whole conversation with a station on the recorded HTTP
# port, `RECORDED_HTTP_PORT` in `course.constants` (see `course/recordings/README.md`). Your course
# may give you a capture of your own, generated from a seed of your student id (its own keys,
# masks, values and packet numbers, so your answers are yours): `student_traces()` reads it when
# `VITALSIM_STUDENT` names you (your instructor sets it, or `python -m course traces --student ID`
# makes it), and the course's recording otherwise; the first line says which. TCP delivers a
# byte stream, not packets: `tcp_streams` puts each side's bytes back in order, and remembers which
# packet carried each byte (packet numbers here are indices into `packets`, counting from 0).

# %%
# NBVAL_CHECK_OUTPUT
traces = student_traces()
print("reading", traces.note)
packets = traces.read("websocket")
streams = tcp_streams(packets, port=RECORDED_HTTP_PORT)
client, server = streams["client"], streams["server"]
request_line, request, request_end = http_head(client.data)
status_line, response, response_end = http_head(server.data)
print(f"{len(packets)} packets to and from port {RECORDED_HTTP_PORT}; the client sent "
      f"{len(client.data)} bytes, the station {len(server.data)}")
print(f"\n--- packet {client.packet_at(0)}, client to station ---")
print(client.data[:request_end].decode().strip())
print(f"\n--- packet {server.packet_at(0)}, station to client ---")
print(server.data[:response_end].decode().strip())

# %% [markdown]
# `Upgrade: websocket` with `Connection: Upgrade` asks to change protocol on *this* connection;
# `Sec-WebSocket-Version: 13` is RFC 6455. `Sec-WebSocket-Key` is 16 random bytes in base64, new for
# every handshake. The station's `Sec-WebSocket-Accept` is derived from that key: a server that
# merely echoes headers, or an HTTP cache replaying an old answer, could not produce it, so the
# client knows it is talking to a WebSocket server that read this very request. The status is 101,
# not 200: nothing was fetched, the protocol changed.
#
# ### Exercise 1: the accept key
#
# RFC 6455 (section 4.2.2): take the key exactly as sent (the base64 text, not decoded), append
# the fixed GUID `258EAFA5-E914-47DA-95CA-C5AB0DC85B11`, hash that string with SHA-1, and
# base64-encode the 20-byte digest. Write `accept_for(key)`; `hashlib` and `base64` are imported.

# %%
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for(key: str) -> str:
    ### BEGIN SOLUTION
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")
    ### END SOLUTION


# %% [markdown]
# ### The same, live
#
# Now a station of our own, for the rest of the lab: four beds on ephemeral ports, on this
# notebook's event loop. Four settings are spelled out, for sections 3 and 4:
#
# * the hub's coalescing tick runs four times a second (`push_hz=4`), whatever the station's
#   default, so that the figures in this text are the ones you will see (a dashboard that keeps
#   up is sent each change at once; one that falls behind gets what changed meanwhile as one
#   message when its write finishes; one over its budget waits for the tick);
# * a heart-rate limit every adult breaches, so that every bed is in alarm from its first second
#   (section 4 needs alarms to act on);
# * a dashboard may fall 20 alarm messages behind before it is cut off (256 by default);
# * the kernel's send buffer for each dashboard is 8 KiB (64 KiB by default), so that a dashboard
#   that stops reading is noticed within a couple of seconds.

# %%
from course.constants import HR_ALARM_AT_ONCE
from server import StationConfig, System
from server.system import SystemConfig
from vitalsim.devices import WardConfig

config = SystemConfig(
    StationConfig(http_port=0, udp_port=0, tcp_port=0,   # 0: any free port
                  push_hz=4.0, client_alarm_queue=20, client_send_buffer=8192),
    WardConfig(beds=4, scenario="stable_adult", seed=3, waves=True,
               limits=HR_ALARM_AT_ONCE))   # an HR limit of 20-30 bpm: every bed in alarm
system = System(config)
await system.start()
await system.wait_ready()
host, port = "127.0.0.1", system.station.http_port
ws_url = f"ws://{host}:{port}/ws"
from IPython.display import display

from course.links import dashboard_link

display(dashboard_link(system.url))  # opens where this notebook runs, on a hub too

# %% [markdown]
# With root (as in CI, or with `sudo`), the next cell sniffs the loopback interface while it
# connects to this station, reads the snapshot and closes: it waits for both sides' FIN, for three
# seconds at most. Without root it says why and uses section 1's conversation instead. Either way,
# `live_key` and `live_accept` hold one more handshake to test your function on.

# %%
from course.websocket import LoopbackSniffer, connection_closed

reason = capture_unavailable_reason()
if reason is None:
    with LoopbackSniffer(f"tcp port {port}") as sniffer:
        ws = await websocket_connect(ws_url)
        await ws.read_message()                               # the snapshot
        ws.close()
        await sniffer.wait_until(connection_closed, timeout=3)
    live = tcp_streams(sniffer.packets, port)
    print(f"captured live on lo: {len(sniffer.packets)} packets, port {port}")
else:
    print(reason)
    live = streams
live_key = http_head(live["client"].data)[1]["sec-websocket-key"]
live_accept = http_head(live["server"].data)[1]["sec-websocket-accept"]
print("Sec-WebSocket-Key:", live_key, "  Sec-WebSocket-Accept:", live_accept)

# %% tags=["check"]
checks = Checks("Exercise 1: the accept key")
checks.expect("RFC 6455's own example",
              lambda: not_done_yet(accept_for, "dGhlIHNhbXBsZSBub25jZQ=="),
              expected="s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
              because="section 1.3 of the RFC works this very key through")
checks.expect(f"the captured answer (packet {server.packet_at(0)})",
              lambda: not_done_yet(accept_for, request["sec-websocket-key"]),
              expected=response["sec-websocket-accept"],
              because=f"the station computed it from the key in packet {client.packet_at(0)}")
checks.expect("the live answer (the captured one again, without root)",
              lambda: not_done_yet(accept_for, live_key), expected=live_accept,
              because="every handshake's answer is derived from its own, fresh key")
checks

# %% [markdown]
# ## 2. Frames and their opcodes
#
# After the 101, each side sends *frames*. Every frame starts with a header (RFC 6455, section 5.2):
#
# ```
# byte 0   FIN (bit 7: the last frame of a message), RSV1-3 (bits 6-4, 0 here), opcode (bits 3-0)
# byte 1   MASK (bit 7), payload length (bits 6-0): 0-125 is the length itself;
#          126: the length is in the next 2 bytes; 127: in the next 8 bytes (network byte order)
# then     if MASK: a 4-byte masking key
# then     the payload; if masked, payload byte i is XORed with key[i % 4]
# ```
#
# Opcodes: `0x1` text, `0x2` binary, `0x0` continuation (of a fragmented message), `0x8` close,
# `0x9` ping, `0xA` pong. A client masks every frame it sends, with a fresh random key each time;
# a server never masks. (Masking is not secrecy, the key travels with the frame: it stops a
# hostile page from making a browser send bytes of its choosing, which a proxy that does not
# understand WebSocket might mistake for an HTTP request and cache.)
#
# Here are the first bytes each side sent after the handshake:

# %%
# NBVAL_CHECK_OUTPUT
print(f"station, packet {server.packet_at(response_end)}: "
      f"{server.data[response_end:response_end + 8].hex(' ')} ...")
print(f"client,  packet {client.packet_at(request_end)}: "
      f"{client.data[request_end:request_end + 10].hex(' ')} ...")

# %% [markdown]
# Read aloud, byte by byte (`explain_header` says what each header field holds):

# %%
# NBVAL_CHECK_OUTPUT
print("station:", explain_header(server.data, response_end))
print("client: ", explain_header(client.data, request_end))


# %% [markdown]
# ### Exercise 2: parse a frame
#
# Write `parse_frame(data)` for the frame at the start of `data` (assume it holds the whole frame).
# Return a dict with `fin` (bool), `opcode` (int), `masked` (bool), `length` (the payload's length),
# `header_size` (bytes before the payload: 2, plus the extended length, plus the key) and `payload`
# (bytes, unmasked). `int.from_bytes(b, "big")` reads the extended lengths.

# %%
def parse_frame(data: bytes) -> dict:
    ### BEGIN SOLUTION
    fin, opcode = bool(data[0] & 0x80), data[0] & 0x0F
    masked, length = bool(data[1] & 0x80), data[1] & 0x7F
    pos = 2
    if length == 126:
        length, pos = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        length, pos = int.from_bytes(data[2:10], "big"), 10
    key = b""
    if masked:
        key, pos = data[pos:pos + 4], pos + 4
    payload = data[pos:pos + length]
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return {"fin": fin, "opcode": opcode, "masked": masked, "length": length,
            "header_size": pos, "payload": payload}
    ### END SOLUTION


# %% tags=["check"]
from course.websocket import encode_websocket_frame


def reference(frame) -> dict:
    # the package's parser (course.websocket), in this exercise's terms
    return {"fin": frame.fin, "opcode": frame.opcode, "masked": frame.masked,
            "length": frame.length, "header_size": frame.header_size, "payload": frame.payload}


def differences() -> list[str]:
    wrong = []
    for side, stream, start in (("client", client, request_end), ("station", server, response_end)):
        for offset, frame in iter_frames(stream.data, start):
            if not_done_yet(parse_frame, stream.data[offset:]) != reference(frame):
                wrong.append(f"{side}, packet {stream.packet_at(offset)}")
    return wrong


big = encode_websocket_frame(bytes(range(256)) * 300, opcode=0x2, mask=bytes([1, 2, 3, 4]))
checks = Checks("Exercise 2: parse a frame")
checks.expect("captured frames parsed unlike the reference", differences, expected=[],
              because="every frame of the capture, both ways, has one right reading")
checks.expect("a 76,800-byte masked binary frame",
              lambda: {k: v for k, v in not_done_yet(parse_frame, big).items() if k != "payload"},
              expected={"fin": True, "opcode": 2, "masked": True, "length": 76800,
                        "header_size": 14},
              because="above 65,535 bytes the length takes the 8 bytes after 127, then the key")
checks.that("its payload, unmasked", lambda: not_done_yet(parse_frame, big)["payload"]
            == bytes(range(256)) * 300, because="XOR with the same key, round and round, undoes it")
checks

# %% [markdown]
# The whole conversation, frame by frame, as the package's parser reads it (`key` is the masking
# key, `-` for a frame sent without one):

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for side, stream, start in (("client", client, request_end), ("station", server, response_end)):
    for offset, frame in iter_frames(stream.data, start):
        if frame.kind == "close":
            shown = f"status {frame.close_code} {frame.close_reason!r}"
        else:
            shown = frame.payload[:44].decode(errors="replace")
        rows.append({"packet": stream.packet_at(offset), "from": side, "FIN": int(frame.fin),
                     "opcode": f"{frame.opcode:#x} {frame.kind}", "MASK": int(frame.masked),
                     "key": frame.mask, "header": frame.header_size, "length": frame.length,
                     "payload": shown})
print(table(pd.DataFrame(rows).sort_values("packet")))

# %% [markdown]
# **Questions** (answer with packet numbers and field values from the table and the bytes above).
#
# 1. Which frames are masked, and which side sent them? What are their masking keys, and why does
#    the client not reuse one?
# 2. Some of the station's text frames have a 4-byte header, others a 2-byte header. Why?
# 3. Who closed the connection first, and with what status code? What does the other side's close
#    frame say back?

# %% [markdown] tags=["instructor"]
# **Model answers** (the packet numbers, keys and lengths are in the table: each student's capture
# has its own, the answers read the same).
# 1. The client's two frames, the `subscribe` and the close, have MASK = 1, each with its own
#    key (the `key` column); every station frame has MASK = 0. A client picks a fresh,
#    unpredictable key per frame, so a page cannot choose the bytes that cross the network.
# 2. The snapshot and the two vitals pushes are 126 bytes or longer, so byte 1 holds 126 and two
#    more bytes the length (`header` 4); `subscribed` (under 126 bytes) fits in the 7 bits
#    (`header` 2).
# 3. The client, with its close frame: status 1000 (normal closure), reason "dashboard closed".
#    The station answers in the next packet of its own with its own close frame, status 1000;
#    then the TCP FINs follow.

# %% [markdown]
# ## 3. Push against polling, with numbers
#
# A screen can learn of new values in two ways: ask (poll `GET /api/beds` every so often) or be told
# (the WebSocket pushes). The next cell runs both against our station over the same four seconds:
# one push client, and pollers every second and every tenth of a second.
#
# The monitors send numerics once a second, all on the same beat. One poller meets that beat at one
# fixed phase, so its latency would be the luck of when it started, anywhere from nothing to a whole
# interval. So each polling interval gets four screens, started a quarter-interval apart, as the many
# screens of a ward would be. Every client logs each *new* value (a bed's `sent_at` it had not seen)
# with its arrival time, and counts every byte both ways: the WebSocket handshake and frames; each
# HTTP request and response, headers included. (The clients are in `course/push_vs_poll.py`.)

# %%
from course.push_vs_poll import push_versus_polling

arrivals, traffic = await push_versus_polling(host, port, seconds=4.0, intervals=(1.0, 0.1),
                                              screens=4)
print(len(arrivals), "new values logged; the first few:")
print(table(arrivals.head(3), decimals=3))
print()
print(table(traffic, index=traffic.index.name or "method", decimals=3))


# %% [markdown]
# ### Exercise 3: the summary table
#
# Write `summarize(arrivals, traffic)`: one row per method, in the order of `traffic.index`, with
# the columns
#
# * `new_values`: how many rows `arrivals` has for the method;
# * `median_latency_ms`, `max_latency_ms`: of `received_at - sent_at`, in milliseconds;
# * `bytes_per_s`: `bytes / seconds / screens`, what one screen costs;
# * `bytes_per_value`: `bytes / new_values`, what each new value cost on the wire.
#
# `groupby("method")` and `.reindex(traffic.index)` will help.

# %%
def summarize(arrivals: pd.DataFrame, traffic: pd.DataFrame) -> pd.DataFrame:
    ### BEGIN SOLUTION
    latency = (arrivals["received_at"] - arrivals["sent_at"]) * 1000
    grouped = latency.groupby(arrivals["method"])
    out = pd.DataFrame(index=traffic.index)
    out["new_values"] = grouped.size().reindex(traffic.index, fill_value=0)
    out["median_latency_ms"] = grouped.median().reindex(traffic.index)
    out["max_latency_ms"] = grouped.max().reindex(traffic.index)
    out["bytes_per_s"] = traffic["bytes"] / traffic["seconds"] / traffic["screens"]
    out["bytes_per_value"] = traffic["bytes"] / out["new_values"]
    return out
    ### END SOLUTION


# %% tags=["check"]
from course.push_vs_poll import summarize as reference_summary

table = reference_summary(arrivals, traffic)
push, slow, fast = table.index        # push, poll every 1 s, poll every 0.1 s
tick_ms = 1000 / system.station.config.push_hz
checks = Checks("Exercise 3: push against polling")
for column in table.columns:
    checks.expect(column, lambda c=column: not_done_yet(summarize, arrivals, traffic)[c]
                  .round(6).tolist(), expected=table[column].round(6).tolist(),
                  because="the same log gives the same table (course.push_vs_poll.summarize)")
# what physics promises, whatever the machine (500 ms of slack for a busy one)
checks.that(f"push: every value within {tick_ms + 500:.0f} ms",
            table.loc[push, "max_latency_ms"] <= tick_ms + 500,
            got=table.loc[push, "max_latency_ms"],
            because="the hub sends a change at once, as soon as the screen's write under way "
                    f"finishes, or at the latest at its next tick (every {tick_ms:.0f} ms) "
                    "when the screen is over its budget")
checks.that("poll every 1 s: median latency of 250 ms or more",
            table.loc[slow, "median_latency_ms"] >= 250, got=table.loc[slow, "median_latency_ms"],
            because="a value waits for the next poll: half an interval (500 ms) on average, and "
                    "four screens at four phases cannot all be lucky")
checks.that("poll every 1 s: every value within 1500 ms",
            table.loc[slow, "max_latency_ms"] <= 1500, got=table.loc[slow, "max_latency_ms"],
            because="no value waits more than one interval for the next poll")
checks.that("poll every 0.1 s: at least twice push's bytes per second",
            table.loc[fast, "bytes_per_s"] >= 2 * table.loc[push, "bytes_per_s"],
            got=table.loc[fast, "bytes_per_s"] / table.loc[push, "bytes_per_s"],
            because="ten answers a second, each with its headers and every bed, changed or not")
checks

# %%
table.round(1)


# %% [markdown]
# Read the table (your numbers differ from run to run, and from your neighbour's):
#
# * **Push** delivers each value as soon as the station has it, to a screen that keeps up: a few
#   milliseconds here. Only a screen that falls behind (a write to it still under way), or that
#   would be sent more than `push_budget` messages a second, has its updates *coalesced*:
#   whatever changed meanwhile travels as one message, newest values only, as soon as the write
#   finishes (or, over budget, at the hub's next tick: at `push_hz = 4`, within 250 ms). Its bytes are the one-off handshake and snapshot, then only what
#   changed, plus the statistics once a second.
# * **Polling every second** is the cheapest in bytes here (push also carries the station's
#   statistics every second, and every alarm), but a value waits for the next poll: half a second
#   on average, up to a whole second.
# * **Polling ten times a second** brings the latency down to push's or below, and pays for it:
#   several times the bytes, nearly all of them repeating what the screen already had, headers
#   included, and ten requests a second per screen for the station to answer.
#
# Push gets a bounded latency at a modest, steady cost because the sender knows when something
# changed; a poller can only ask, and pays for every question. The bound is the station's choice
# (`push_budget`, `push_hz`), not the network's.

# %% [markdown]
# ## 4. A slow consumer
#
# The hub (`server/hub.py`) gives each dashboard its own outbox and its own sender task, so that one
# slow dashboard never holds up the others. The outbox has two parts:
#
# * **vitals, waves and statistics**: at most one pending message per kind. A newer one *replaces*
#   the pending one, which is counted in `superseded`. A heart rate from a second ago is worth
#   nothing once a newer one exists (the same reasoning as UDP's in Lab 01). The real hub goes one
#   step further for vitals, which are deltas: the newer message also carries the beds the
#   replaced one had, each with its newest values, so a slow screen skips readings, never beds.
# * **alarms**: a queue, never dropped. An alarm message is an event ("raised", "acknowledged by
#   Nurse Kim", "silenced") that no later message replaces. But a queue for a dashboard that never
#   reads would grow without end; past `client_alarm_queue` messages the hub closes the connection
#   with status **4000** (RFC 6455 leaves 4000-4999 to applications), and the dashboard, when it
#   reconnects, gets a fresh snapshot with every alarm's current state.
#
# ### Exercise 4: latest wins, alarms queue
#
# Write the three methods of `Outbox`, the hub's rule without the sockets:
#
# * `offer_latest(kind, message)`: a pending message of the same kind is replaced (count it in
#   `dropped`), and the kind goes to the back of the line;
# * `offer_alarm(message)`: queue it and return True, or return False (queueing nothing) when
#   `max_alarms` are already waiting;
# * `take()`: the next message to send: the oldest alarm first, else the oldest pending kind's
#   message; `None` when there is nothing.

# %%
class Outbox:
    def __init__(self, max_alarms: int) -> None:
        self.max_alarms = max_alarms
        self.latest: dict[str, str] = {}      # kind -> message; a dict keeps insertion order
        self.alarms: list[str] = []
        self.dropped = 0

    def offer_latest(self, kind: str, message: str) -> None:
        ### BEGIN SOLUTION
        if kind in self.latest:
            self.dropped += 1
            del self.latest[kind]
        self.latest[kind] = message
        ### END SOLUTION

    def offer_alarm(self, message: str) -> bool:
        ### BEGIN SOLUTION
        if len(self.alarms) >= self.max_alarms:
            return False
        self.alarms.append(message)
        return True
        ### END SOLUTION

    def take(self) -> str | None:
        ### BEGIN SOLUTION
        if self.alarms:
            return self.alarms.pop(0)
        if self.latest:
            return self.latest.pop(next(iter(self.latest)))
        return None
        ### END SOLUTION


# %% tags=["check"]
# a dashboard that reads nothing while the station offers it this, then reads everything
offers = [("vitals", "v1"), ("stats", "s1"), ("vitals", "v2"), ("alarm", "a1"), ("vitals", "v3"),
          ("alarm", "a2"), ("stats", "s2"), ("alarm", "a3"), ("alarm", "a4")]


def replay() -> tuple[list[bool], list[str], int]:
    box = Outbox(max_alarms=3)
    accepted = []
    for kind, message in offers:
        if kind == "alarm":
            accepted.append(not_done_yet(box.offer_alarm, message))
        else:
            not_done_yet(box.offer_latest, kind, message)
    sent = []
    while (message := not_done_yet(box.take)) is not None:
        sent.append(message)
    return accepted, sent, box.dropped


checks = Checks("Exercise 4: latest wins, alarms queue")
checks.expect("what it receives when it reads again", lambda: replay()[1],
              expected=["a1", "a2", "a3", "v3", "s2"],
              because="alarms go first and in order; only the newest vitals and stats are left")
checks.expect("dropped", lambda: replay()[2], expected=3,
              because="v1 and v2 were replaced by newer vitals, s1 by s2")
checks.expect("alarms accepted", lambda: replay()[0], expected=[True, True, True, False],
              because="only 3 may wait: at the 4th the hub would close the connection (4000)")


def reordered() -> list[str]:
    box = Outbox(max_alarms=3)
    for kind, message in [("vitals", "v1"), ("stats", "s1"), ("vitals", "v2")]:
        not_done_yet(box.offer_latest, kind, message)
    return [not_done_yet(box.take), not_done_yet(box.take)]


checks.expect("vitals v1, stats s1, vitals v2: the order they are sent", reordered,
              expected=["s1", "v2"],
              because="v2 replaces v1 and goes to the back of the line, behind s1, which has "
                      "waited longer")
checks

# %% [markdown]
# ### The real thing
#
# A dashboard that stops reading: `RawWebSocket` is a WebSocket client on a plain socket, with a
# small receive buffer. It subscribes to every bed's waveforms (plenty of bytes) and never reads
# again. The next cell waits until the station has had to drop a message for it. The counters are
# the station's, the same as `GET /api/stats` gives under `"websocket"`.

# %%
from course import wait_until
from course.websocket import RawWebSocket


def counters() -> dict:
    return dict(system.station.stats()["websocket"])


before = counters()
stalled = await RawWebSocket.connect(host, port, rcvbuf=4096)
await stalled.send_text(json.dumps({"type": "subscribe", "waves": [1, 2, 3, 4]}))
# from here on, nobody reads `stalled`
await wait_until(lambda: counters()["stalled"] > before["stalled"], timeout=20,
                 what="the station to see the dashboard stop reading")
stalled_at = counters()
print(f"the stalled dashboard took in {stalled.bytes_received} bytes (the 101 answer and the "
      "snapshot), then stopped reading")

# %% [markdown]
# Meanwhile a healthy dashboard (a Tornado client, on this notebook's loop) carries on. A nurse on
# it silences the ward's alarms, one click at a time, 25 times: each silence is an alarm message to
# *every* dashboard, the stalled one included. Then it simply watches for three seconds.

# %%
healthy = await websocket_connect(ws_url)
snapshot = json.loads(await healthy.read_message())
alarm_ids = [a["alarm_id"] for a in snapshot["alarms"] if a["state"] != "cleared"]
updates = 0
for n in range(25):
    healthy.write_message(json.dumps({"type": "silence", "alarm_id": alarm_ids[n % len(alarm_ids)],
                                      "user": "Nurse Kim", "seconds": 60}))
    while json.loads(await asyncio.wait_for(healthy.read_message(), 5))["type"] != "alarm":
        pass                                  # vitals and stats go on arriving meanwhile
    updates += 1

loop = asyncio.get_running_loop()
end = loop.time() + 3.0                       # three seconds of watching, bounded
seen: dict[int, set[float]] = {}
while (left := end - loop.time()) > 0:
    try:
        raw = await asyncio.wait_for(healthy.read_message(), left)
    except TimeoutError:
        break
    message = json.loads(raw)
    if message["type"] == "vitals":
        for bed in message["beds"]:
            seen.setdefault(bed["bed"], set()).add(bed["sent_at"])
new_per_bed = {bed: len(values) for bed, values in sorted(seen.items())}

await wait_until(lambda: counters()["disconnected_slow"] > before["disconnected_slow"],
                 timeout=5, what="the station to cut the stalled dashboard off")
frames, close = await stalled.read_until_close(timeout=5)   # reading again, at last
stalled.close()
print(f"healthy: {updates} alarm updates; new values per bed in 3 s: {new_per_bed}")
print(f"stalled, reading again: {len(frames)} frames still on their way, then a close frame:",
      f"status {close.close_code if close else None}, {close.close_reason if close else ''!r}")
pd.DataFrame({"before": before, "stalled": stalled_at, "after": counters()})

# %% tags=["check"]
after = counters()
checks = Checks("The slow consumer, in the station's counters")
checks.that("vitals were dropped for the stalled dashboard",
            after["superseded"] > before["superseded"],
            because="its pending vitals, waves and stats were replaced by newer ones",
            got=after["superseded"] - before["superseded"])
checks.expect("dashboards cut off for lagging on alarms",
              after["disconnected_slow"] - before["disconnected_slow"], expected=1,
              because="the stalled one fell more than 20 alarm messages behind; no other did")
checks.expect("its close status", close.close_code if close else None, expected=4000,
              because="4000 is the station's 'too far behind on alarms; reconnect to resync'")
checks.expect("alarm updates the healthy dashboard got", updates, expected=25,
              because="alarm messages are never dropped, and it was reading")
checks.that("the healthy dashboard got 2 or more new values of every bed in 3 s",
            len(new_per_bed) == 4 and min(new_per_bed.values()) >= 2, got=new_per_bed,
            because="the monitors send every second and nobody waits for the stalled dashboard")
checks

# %% [markdown]
# The stalled dashboard's TCP connection did its job: the station's kernel stopped sending when the
# receive window closed, and Tornado stopped writing. The *application* decided what to do about
# it: drop what has a newer replacement, keep what does not, and give up on a dashboard that lags
# so far that keeping its alarms would cost unbounded memory. The frames it found when it read
# again were the ones already in the kernel's buffers and Tornado's; the alarms queued for it were
# never sent,
# because the snapshot it gets on reconnecting supersedes them.

# %% [markdown]
# ## 5. A notebook cell as a dashboard
#
# Everything the browser dashboard does, a cell can do: connect with Tornado's `websocket_connect`
# on the kernel's own event loop, subscribe to bed 1's waveforms, and stream each `wave` message's
# ECG samples into a bokeh `ColumnDataSource` shown live by jupyter_bokeh's `BokehModel`. `rollover`
# keeps the last three seconds; the loop stops after four.

# %%
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from IPython.display import display
from jupyter_bokeh import BokehModel

from course.plots import load_bokehjs

load_bokehjs()                                # BokehJS, from the installed bokeh, into this page
ecg = ColumnDataSource({"t": [], "uv": []})
plot = figure(height=220, width=640, x_axis_label="seconds", y_axis_label="ECG, bed 1 (µV)",
              title="bed 1")
plot.line("t", "uv", source=ecg)
display(BokehModel(plot))

loop = asyncio.get_running_loop()
dashboard = await websocket_connect(ws_url)
dashboard.write_message(json.dumps({"type": "subscribe", "waves": [1]}))
first = None
end = loop.time() + 4.0                       # bounded: four seconds
while (left := end - loop.time()) > 0:
    try:
        raw = await asyncio.wait_for(dashboard.read_message(), left)
    except TimeoutError:
        break
    if raw is None:                           # the station closed the connection
        break
    message = json.loads(raw)
    if message["type"] == "wave":
        for chunk in message["chunks"]:
            if chunk["channel"] == "ecg":
                first = chunk["first_index"] if first is None else first
                t = [(chunk["first_index"] + i - first) / chunk["rate"]
                     for i in range(len(chunk["samples"]))]
                ecg.stream({"t": t, "uv": chunk["samples"]}, rollover=3 * chunk["rate"])
    elif message["type"] in ("snapshot", "vitals"):
        for bed in message["beds"]:
            if bed["bed"] == 1 and bed["hr"] is not None:
                plot.title.text = f"bed 1, heart rate {bed['hr']:.0f}/min"
dashboard.close()
print(len(ecg.data["t"]), "ECG samples on the plot")

# %%
for ws in (healthy, dashboard):
    ws.close()
stalled.close()
await system.stop()
print("stopped:", not system.station.running)

# %% [markdown]
# ## Reflection
#
# 1. Push's latency is bounded by the hub's tick (250 ms at `push_hz = 4`) only for a screen over
#    its budget. What would `push_hz = 20` buy such a screen, for numerics that change once a
#    second and for waveforms? What would sending every change at once cost a station with 50
#    dashboards, and why does the hub cap it (`push_budget`)?
# 2. A ward has 30 screens polling every 0.1 s. How many requests a second does the station answer,
#    and what share of the answers carry anything new? What would push send instead?
# 3. One poller's latency depended on its phase against the monitors' beat. What does that mean for
#    a latency measured once, on one screen? How would you measure it honestly?
# 4. The stalled dashboard lost vitals without any error, but was cut off once it lagged 20 alarms.
#    What should a dashboard do when it sees status 4000? Why is it safe for the station to discard
#    the alarms it had queued for it, rather than deliver them late?
# 5. Why must a client mask its frames, and a server not? What would masking every frame cost a
#    station pushing to 100 dashboards?
