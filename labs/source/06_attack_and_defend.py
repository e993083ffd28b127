# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 06 — Attack and defend the ward
#
# **Objectives.** By the end of this lab you will be able to
# 1. forge a telemetry datagram and show, from the station's counters, that a station requiring
#    per-device keys refuses it;
# 2. replay a captured, correctly *signed* datagram, and explain why a tag alone does not stop a
#    replay and what the anti-replay window adds;
# 3. inject an alarm over the TCP alarm channel without credentials, and read the station's
#    refusal;
# 4. write an anti-replay sliding window (RFC 4303 §3.4.3) yourself and check it against the
#    station's;
# 5. explain cross-site WebSocket hijacking (CSWSH) with a real case, CVE-2024-28179, and show
#    the station refusing a WebSocket from another origin;
# 6. read what TLS leaves an eavesdropper: sizes, timing and ports;
# 7. write a threat model of the ward: asset, attacker, attack, defence, residual risk.
#
# **Prerequisites.** Lab 04 (the datagram, scapy's `Telemetry` layer, the forged heart rate and
# the HMAC tag). Lab 02 for the alarm channel's frames, lab 03 for the WebSocket.
#
# **Time.** About 50 minutes. **No root needed**: the "capture" in Section 3 is taken by an
# observer on the path (the impairment proxy between the ward and the station, standing in for a
# switch an attacker controls), which works everywhere.
#
# Each exercise has a cell for your code (it starts as `raise NotImplementedError`) and a check
# cell that tells you *expected X because Y, got Z*, or that the exercise is not done yet.

# %%
import asyncio
import json
import time

import numpy as np
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from course import Checks, not_done_yet, wait_until
from course.links import dashboard_link
from server import System
from server.config import StationConfig
from server.sessions import default_users
from server.system import SystemConfig
from vitalsim.devices import WardConfig
from vitalsim.impair import UdpSettings
from vitalsim.keys import KeyFile
from vitalsim.layers import Telemetry, TelemetryNumerics
from vitalsim.protocol import decode
from vitalsim.protocol.alarm_channel import AlarmMessage, FrameDecoder, Hello, encode_alarm_frame
from vitalsim.protocol.replay import ReplayWindow

# %% [markdown]
# ## 1. The defended ward
#
# Labs 00–05 ran a station that trusts anyone who can reach its ports. This one has the three
# defences of issue 16 switched on (docs/PROTOCOL.md, sections 1–3):
#
# - **device keys**: a key file with a key per device (`KeyFile`); each monitor tags its
#   telemetry with its own key and proves it on the alarm channel (`require_auth=True`);
# - **anti-replay**: a sliding window per device over (boot id, sequence number);
# - **dashboard sessions**: operators with roles, a token URL, a session cookie, and an Origin
#   check.
#
# The ward's datagrams pass through a UDP relay on their way (`udp_impairment`, with no
# impairment): our stand-in for a network device the attacker has taken over.

# %%
keys = KeyFile.generate([1001, 1002])
operators = default_users()           # a nurse and a viewer, with fresh tokens
system = System(SystemConfig(
    StationConfig(http_port=0, udp_port=0, tcp_port=0, device_keys=keys, require_auth=True,
                  operators=operators),
    WardConfig(beds=2, scenario="stable_adult", seed=6, waves=False, speed=2.0),
    udp_impairment=UdpSettings()))
await system.start()
await system.wait_ready(timeout=10)
station = system.station
await wait_until(lambda: all(station.beds.beds[b].alarm_connected for b in (1, 2)),
                 timeout=10, what="both monitors' alarm links, authenticated")
print("device 1001 signs with key id", keys.current(1001).key_id, "of",
      len(keys.current(1001).key), "bytes")
print("alarm links up:", [station.beds.beds[b].alarm_connected for b in (1, 2)])
dashboard_link(system.login_url())    # the nurse's token URL: opening it logs you in

# %% [markdown]
# Open the link: the page shows "Acting as nurse (nurse)". Open the station's plain URL
# (`system.url`, without the token) in a private window, and the page answers 401 and tells you
# how to log in.
#
# ## 2. Forged telemetry
#
# ### Exercise 1: forge, again
#
# Write `forge(bed, device_id, seq, boot_id, hr)` returning the *bytes* of a numerics datagram
# with those fields, sent now (`sent_at_us`), with SpO₂ 97, respiration 14, temperature 36.8, as in
# lab 04. Then the next cell sends two forgeries as device 1002, with its current boot id and its
# next sequence numbers: one with no tag, and one with a tag made with a key the forger guessed.

# %%
def forge(bed: int, device_id: int, seq: int, boot_id: int, hr: float) -> bytes:
    ### BEGIN SOLUTION
    return bytes(Telemetry(bed=bed, device_id=device_id, seq=seq, boot_id=boot_id,
                           sent_at_us=time.time_ns() // 1_000,
                           numerics=TelemetryNumerics(hr=hr, spo2=97, rr=14, temp=36.8)))
    ### END SOLUTION


# %%
import hashlib
import hmac
import socket

FORGED_HR = 250.0
attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # any program, no root
victim = station.beds.beds[2].latest
before = dict(station.stats()["udp"]["rejected"])
try:
    plain = forge(2, 1002, victim.seq + 2, victim.boot_id, FORGED_HR)
except NotImplementedError:
    plain = None
    print("forge() is not written yet: nothing sent")
if plain is not None:
    guessed = Telemetry(plain)
    guessed.key_id = 1                                      # "signed with key 1"
    signed_part = bytes(guessed)[:34 + guessed.body_len]   # header and body, as a device signs
    tag = hmac.new(b"a guessed key", signed_part, hashlib.sha256).digest()[:16]
    for data in (plain, signed_part + tag):
        attacker.sendto(data, ("127.0.0.1", station.udp_port))
    await wait_until(lambda: sum(station.stats()["udp"]["rejected"].values())
                     >= sum(before.values()) + 2, timeout=3, what="the station's verdicts")
rejected = station.stats()["udp"]["rejected"]
print("rejected now:", rejected, "\nlast bad_tag message:",
      station.ingest.last_error.get("bad_tag"))

# %% tags=["check"]
history_hr = [m.hr for m in station.beds.beds[2].history]
checks = Checks("Exercise 1: forged telemetry refused")
checks.expect("heart rate in your datagram, decoded without a key",
              lambda: decode(not_done_yet(forge, 2, 1002, 1, 0, FORGED_HR)).hr,
              expected=FORGED_HR, because="forge() puts hr in the numerics body")
checks.expect("datagrams refused as bad_tag, from your two forgeries",
              lambda: not_done_yet(forge, 2, 1002, 1, 0, FORGED_HR) is not None
              and rejected.get("bad_tag", 0) - before.get("bad_tag", 0),
              expected=2, because="one has no tag and this station requires one; the other's "
                                  "tag was made without device 1002's key")
checks.that("bed 2's history holds no 250", FORGED_HR not in history_hr,
            because="a refused datagram never reaches the beds", got=lambda: history_hr[-5:])
checks

# %% [markdown]
# ## 3. Replaying a signed datagram
#
# The forger cannot make a tag. But the relay on the path sees every *genuine* datagram, tag
# included. A tap on it keeps a copy of the first numerics datagram of device 1001 that passes:

# %%
captured: list[bytes] = []


def tap(data: bytes) -> None:
    if not captured and Telemetry(data).device_id == 1001 and Telemetry(data).type == 1:
        captured.append(data)


system.udp_proxy.taps.append(tap)
await wait_until(lambda: captured, timeout=5, what="a numerics datagram of device 1001")
system.udp_proxy.taps.remove(tap)
copy = Telemetry(captured[0])
print(f"captured: device {copy.device_id}, seq {copy.seq}, boot {copy.boot_id}, "
      f"key_id {copy.key_id}, hr {copy.numerics.hr:.1f}, tag {copy.tag.hex()}")

# %% [markdown]
# Replaying it costs the attacker nothing: send the same bytes again. First with the station's
# anti-replay window switched *off* (`set_anti_replay(False)`, which exists only for this lab),
# then *on*. Each time, three copies.

# %%
def copies_in_history(seq: int) -> int:
    return [m.seq for m in station.beds.beds[1].history].count(seq)


def replayed() -> int:
    return station.stats()["udp"]["rejected"].get("replay", 0)


results = {}
for anti_replay in (False, True):
    station.set_anti_replay(anti_replay)
    admitted = station.ingest.received
    refused = replayed()
    for _ in range(3):
        attacker.sendto(captured[0], ("127.0.0.1", station.udp_port))
    await wait_until(lambda r=refused, a=admitted: replayed() >= r + 3
                     or station.ingest.received >= a + 3, timeout=3, what="the three copies")
    results[anti_replay] = {"copies of the reading in history": copies_in_history(copy.seq),
                            "refused as replay": replayed() - refused}
    print("anti-replay", "on: " if anti_replay else "off:", results[anti_replay])

# %% tags=["check"]
checks = Checks("Section 3: the replay")
checks.expect("copies of the reading with anti-replay off", results[False][
              "copies of the reading in history"], expected=4,
              because="the tag verifies on every copy: the original and three replays are stored")
checks.expect("refused as replay with anti-replay on", results[True]["refused as replay"],
              expected=3, because="the window has seen (boot id, seq) already")
checks.expect("copies after the replays with anti-replay on",
              results[True]["copies of the reading in history"], expected=4,
              because="nothing refused reaches the history")
checks

# %% [markdown]
# **Question.** The window remembers the 4096 sequence numbers below the highest it has admitted
# from a device. What does it answer for a copy of a datagram 5000 numbers old, and why is that the
# right answer for a device that *has* a boot id? What would a device without one (boot id 0)
# leave open (docs/PROTOCOL.md, reason `sequence`)?

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** It refuses it as `replay`: behind the window the station cannot
# tell a replay from a very late straggler, and RFC 4303 refuses both. With a boot id that costs
# nothing, because a restarted device announces itself with a *newer* boot id instead of numbers
# far behind. A device with boot id 0 cannot say it restarted, so the station must take two
# consecutive numbers far behind as a restart: an attacker with two consecutive old captures
# can then reset the window and replay that run's old readings.

# %% [markdown]
# ## 4. An alarm without credentials
#
# ### Exercise 2: inject an ASYSTOLE
#
# Write `injection()` returning the bytes an attacker writes to the alarm port: a HELLO frame for
# device 1002 on bed 2, then an ALARM frame for it, `condition="ASYSTOLE"`, `priority="high"`,
# `state="raised"`, `alarm_id="1002-666-1"`, `value=0.0`, `limit=None`, `timestamp=time.time()`.
# `encode_alarm_frame(event)` gives the bytes of one frame (lab 02).

# %%
def injection() -> bytes:
    ### BEGIN SOLUTION
    alarm = AlarmMessage(alarm_id="1002-666-1", device_id=1002, bed=2, condition="ASYSTOLE",
                         priority="high", state="raised", value=0.0, limit=None,
                         timestamp=time.time())
    return encode_alarm_frame(Hello(1002, 2)) + encode_alarm_frame(alarm)
    ### END SOLUTION


# %%
async def inject(data: bytes) -> list:
    """Write ``data`` to the alarm port and read what the station answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", station.tcp_port)
    writer.write(data)
    frames, decoder = [], FrameDecoder()
    while chunk := await asyncio.wait_for(reader.read(65536), 5):
        frames += decoder.feed(chunk)
    writer.close()
    return frames


journaled = station.journal.count()
answer = []
try:
    answer = await inject(injection())
except NotImplementedError:
    print("injection() is not written yet: nothing sent")
if answer:
    await wait_until(lambda: station.stats()["tcp"]["errors"], timeout=3, what="the count")
for frame in answer:
    print(type(frame).__name__, frame)
print("tcp errors:", station.stats()["tcp"]["errors"])

# %% tags=["check"]
checks = Checks("Exercise 2: the injected alarm refused")
checks.expect("frames in your injection", lambda: len(FrameDecoder().feed(not_done_yet(injection))),
              expected=2, because="a HELLO and an ALARM")
checks.expect("the station's answers",
              lambda: not_done_yet(injection) and [type(f).__name__ for f in answer],
              expected=["Error"], because="an ALARM before the AUTH that answers the station's "
                                          "CHALLENGE is refused, and never ACKed")
checks.expect("refused as unauthenticated",
              lambda: not_done_yet(injection)
              and station.stats()["tcp"]["errors"].get("unauthenticated", 0), expected=1,
              because="the station counts every refusal by its reason")
checks.expect("alarms journaled since", lambda: station.journal.count() - journaled, expected=0,
              because="nothing from an unauthenticated connection is stored")
checks.that("bed 2's real monitor is still connected", station.beds.beds[2].alarm_connected,
            because="an unauthenticated HELLO changes nothing about the device it names",
            got=lambda: station.beds.beds[2].alarm_connected)
checks

# %% [markdown]
# **Question.** The alarm channel proves the key once per connection (HELLO, CHALLENGE, AUTH), not
# with a tag on every frame. Read docs/PROTOCOL.md section 2: which attacker does that stop, and
# which does it leave to TLS?

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** It stops anyone who can reach the port but not see the device's
# traffic: without the key they cannot answer a fresh nonce, and a recorded AUTH from another
# connection is worthless. An attacker on the path can let the real device authenticate and then
# write frames into its TCP connection (or just read the alarms); per-frame tags with a counter, or
# TLS, are needed against that.

# %% [markdown]
# ## 5. The sliding window, by hand
#
# ### Exercise 3: write the window
#
# Write `my_window(seqs, size)` returning, for each sequence number in `seqs` in order, `True` if
# a receiver with an anti-replay window of `size` admits it and `False` if it refuses it. The rule
# (RFC 4303 §3.4.3; one boot, no wrap-around):
#
# - the first number is admitted;
# - a number above the highest admitted is admitted, and becomes the highest;
# - a number more than `size - 1` below the highest is refused (too old to tell);
# - any other number is admitted if it has not been admitted before, and refused if it has.
#
# Keep what you need in a set, or (as the station does) in one integer used as a bitmap of `size`
# bits. The check compares you with the station's `ReplayWindow` over 3000 numbers with
# reordering, duplicates and stragglers.

# %%
def my_window(seqs: list[int], size: int) -> list[bool]:
    ### BEGIN SOLUTION
    highest, bits, out = None, 0, []
    for seq in seqs:
        if highest is None or seq > highest:
            shift = 0 if highest is None else seq - highest
            bits = ((bits << shift) | 1) & ((1 << size) - 1)
            highest = seq
            out.append(True)
        elif highest - seq >= size or bits >> (highest - seq) & 1:
            out.append(False)
        else:
            bits |= 1 << (highest - seq)
            out.append(True)
    return out
    ### END SOLUTION


# %%
rng = np.random.default_rng(2026)
seqs = np.arange(3000) + rng.integers(-40, 3, 3000)     # reordered, some repeated
seqs[rng.choice(3000, 60, replace=False)] -= 500          # stragglers and old replays
seqs = [int(s) for s in np.maximum(seqs, 0)]
reference = ReplayWindow(size=64, max_ahead=10**9)        # never refuses a jump ahead
theirs = [reference.judge(1, s) == "admit" for s in seqs]
try:
    mine = my_window(seqs, 64)
except NotImplementedError:
    mine = None
    print("my_window() is not written yet")
first_difference = None if mine is None else next(
    (i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b), None)
print("the station admits", sum(theirs), "of", len(seqs))
if first_difference is not None:
    i = first_difference
    print(f"first difference at #{i}: seq {seqs[i]}, you {mine[i]}, station {theirs[i]}; "
          f"the numbers before it: {seqs[max(0, i - 5):i]}")

# %% tags=["check"]
checks = Checks("Exercise 3: your window against the station's")
checks.expect("verdicts that differ from the station's",
              lambda: sum(a != b for a, b in zip(not_done_yet(my_window, seqs, 64), theirs,
                                                 strict=True)),
              expected=0, because="the same rule, over the same numbers")
checks.expect("a reordered number inside the window", lambda: not_done_yet(my_window,
              [10, 12, 11], 64), expected=[True, True, True],
              because="reordering is not a replay: 11 was never seen")
checks.expect("a copy, and a number too old", lambda: not_done_yet(my_window,
              [100, 100, 36, 37], 64), expected=[True, False, False, True],
              because="100 was seen; 36 is 64 below 100, outside a window of 64; 37 is inside")
checks

# %% [markdown]
# ## 6. A page from another origin
#
# The dashboard's session is a cookie. A browser sends a site's cookies with every request *to*
# that site, including a WebSocket handshake started by a page from somewhere else. If the
# station accepted any handshake with a valid cookie, any page the nurse opens in another tab
# could open the WebSocket as the nurse, read every patient and acknowledge alarms:
# **cross-site WebSocket hijacking** (CSWSH). WebSockets are not covered by CORS, and
# `SameSite` does not help here: every port of 127.0.0.1 is the *same site*.
#
# A real case: **CVE-2024-28179**. jupyter-server-proxy, the component that lets a hub user open
# this very dashboard at `/user/NAME/proxy/PORT/`, did not check authentication when proxying
# WebSockets: anyone who could reach the hub could open a WebSocket to a user's proxied services
# (in the worst case, a shell) without being that user. It was fixed in versions 3.2.3 and 4.1.1
# (March 2024).
#
# The station checks the `Origin` header that the browser puts on every handshake (and a page
# cannot forge). Below, the nurse's session cookie is used twice: once with the station's own
# origin, as the dashboard sends it, once with another local origin, `http://127.0.0.1:8888`, as a
# page served from a second port (a notebook server, say) would.

# %%
client = AsyncHTTPClient()
login = await client.fetch(HTTPRequest(system.login_url(), follow_redirects=False),
                           raise_error=False)
cookie = login.headers["Set-Cookie"].split(";")[0]
print("the token URL answered", login.code, "and set a cookie:",
      "HttpOnly" in login.headers["Set-Cookie"], "SameSite=Strict" in login.headers["Set-Cookie"])
ws_url = system.url.replace("http://", "ws://") + "ws"
outcomes = {}
for origin in (system.url.rstrip("/"), "http://127.0.0.1:8888"):
    try:
        ws = await websocket_connect(HTTPRequest(ws_url, headers={"Cookie": cookie,
                                                                  "Origin": origin}))
        outcomes[origin] = "connected: " + json.loads(await ws.read_message())["type"]
        ws.close()
    except HTTPClientError as exc:
        outcomes[origin] = f"refused {exc.code}: {json.loads(exc.response.body)['error']}"
for origin, outcome in outcomes.items():
    print(f"{origin:28} {outcome[:110]}")
print("sessions refused:", station.stats()["sessions"]["refused"])

# %% tags=["check"]
checks = Checks("Section 6: the cross-origin WebSocket")
checks.expect("the dashboard's own origin", outcomes[system.url.rstrip("/")],
              expected="connected: snapshot", because="it is the station's own page")
checks.that("another origin, with the same cookie, refused before the upgrade",
            outcomes["http://127.0.0.1:8888"].startswith("refused 403"),
            because="its Origin is neither the station's nor in the allow-list",
            got=outcomes["http://127.0.0.1:8888"])
checks

# %% [markdown]
# ### Exercise 4 (written): CSWSH in your own words
#
# In five lines: what did CVE-2024-28179 let an attacker do, which check was missing, and which
# two checks of this station (section 3 of docs/PROTOCOL.md) stop the same attack here?

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** jupyter-server-proxy forwarded WebSocket connections to a user's
# proxied servers without checking that the request was authenticated as that user, so an
# unauthenticated attacker who could reach the hub could open a WebSocket to them (remote code
# execution when a terminal was proxied). The missing check was authentication on the WebSocket
# path. Here, every handshake needs a session (401 before the upgrade otherwise), and its Origin
# must be the station's own or allowed (403), so a page from elsewhere cannot ride the nurse's
# cookie.

# %% [markdown]
# ## 7. What TLS still shows
#
# Everything above was readable on the wire: heart rates, alarms, the token in a URL, the session
# cookie. With `--tls` the station wraps the alarm channel in TLS and serves the dashboard over
# HTTPS (docs/PROTOCOL.md section 2). A second, small ward below runs its alarm channel through
# TLS and a TCP relay on the path; the relay's tap keeps what an eavesdropper would see. Its
# monitor has an alarm limit at the patient's own heart rate, so it raises alarms every few
# seconds. (Making the self-signed certificate needs the `openssl` command; without it this
# section says so.)

# %%
import tempfile

import pandas as pd

from server.tls import TlsError, self_signed
from vitalsim.alarms import FLAPPING_HR
from vitalsim.impair import TcpSettings

seen_tls: list[tuple[float, str, bytes]] = []
try:
    cert, key = self_signed(tempfile.mkdtemp(prefix="lab06-tls-"))
except TlsError as exc:
    cert = None
    print("no TLS here:", exc)
if cert is not None:
    secure = System(SystemConfig(
        StationConfig(http_port=0, udp_port=0, tcp_port=0, tls_cert=cert, tls_key=key,
                      device_keys=keys, require_auth=True, operators=operators),
        WardConfig(beds=1, scenario="stable_adult", seed=6, waves=False, speed=4.0,
                   limits=FLAPPING_HR),
        tcp_impairment=TcpSettings()))
    await secure.start()
    t0 = time.monotonic()
    secure.tcp_proxy.taps.append(lambda way, data: seen_tls.append((time.monotonic() - t0,
                                                                    way, data)))
    secure.tcp_proxy.reset_connections()     # the monitor reconnects, through the tap
    await wait_until(lambda: secure.station.journal.count() >= 2, timeout=20,
                     what="two alarms journaled over TLS")
    await secure.stop()
    print("the dashboard was at", secure.url)
records = pd.DataFrame([{"t_s": round(t, 2), "way": way, "bytes": len(d),
                         "TLS record type": d[0]} for t, way, d in seen_tls])
print(f"{len(records)} pieces seen; readable 'device_id' in any:",
      any(b"device_id" in d for _, _, d in seen_tls))
records.head(12)

# %% tags=["check"]
checks = Checks("Section 7: the eavesdropper's view of TLS")
checks.that("pieces of the alarm channel seen on the path", cert is None or len(seen_tls) > 0,
            because="TLS hides content, not the traffic itself", got=len(seen_tls))
checks.that("none of them readable", not any(b"device_id" in d for _, _, d in seen_tls),
            because="every frame travels inside encrypted application-data records (type 23)",
            got=lambda: [d[:40] for _, _, d in seen_tls if b"device_id" in d][:1])
checks

# %% [markdown]
# **Question.** From the table alone (times, directions, sizes, the port), what can the
# eavesdropper still tell about bed 1? Think of the handshake, the heartbeats every 2 s, an ALARM
# and the station's ACK right after it.

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** That a device is connected to the station's alarm port, when it
# (re)connected (the handshake's large records), that the line is alive (small records every
# 2 s in each direction), and when an alarm was raised: an upstream record larger than a
# heartbeat followed at once by a small downstream one (the ACK). Sizes even hint at which frame
# (a longer condition name makes a longer record). Padding and constant-rate cover traffic would
# hide this, at a cost in bandwidth.

# %% [markdown]
# ## 8. A threat model of the ward
#
# ### Exercise 5 (written): fill in the last column
#
# For each row, say what risk is left with the defences of this lab, and what would reduce it.
#
# | asset | attacker | attack | defence here | residual risk |
# |---|---|---|---|---|
# | vital signs shown and stored | anyone on the ward network | forged telemetry | per-device HMAC keys, required | … |
# | vital signs shown and stored | on-path observer | replayed signed datagrams | anti-replay window over (boot id, seq) | … |
# | alarms | anyone who reaches the alarm port | injected or hidden alarms, fake link loss | HELLO, CHALLENGE, AUTH per connection | … |
# | patient data, acknowledgements | a web page the nurse visits | CSWSH | session cookie + Origin check | … |
# | acknowledgements | a logged-in viewer | acknowledging as a nurse | roles; the ack records the session's user | … |
# | device keys | someone with the key file or a stolen monitor | signing as that device | a key per device, rotation with a grace period | … |
# | confidentiality of alarms, tokens, cookies | eavesdropper | reading the traffic | TLS with `--tls` (telemetry stays in clear UDP) | … |

# %% [markdown]
# *Your table here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).**
#
# | asset | residual risk |
# |---|---|
# | forged telemetry | a stolen key signs for its device until rotated; keys sit in a file on each host |
# | replays | a device without boot id (0) can be reset by two old consecutive captures; the window is per station process (lost on restart) |
# | alarms | an on-path attacker can hijack an authenticated TCP connection: TLS or per-frame tags with counters |
# | CSWSH | an allowed origin that is itself compromised (the hub) is trusted; tokens in printed URLs may leak into logs or history |
# | roles | a nurse's session cookie stolen from the browser acts as the nurse until it expires (sessions here do not expire) |
# | device keys | one compromised monitor is one device, not the ward; rotation needs every device updated within the grace period |
# | confidentiality | without `--tls` everything is readable; with it, telemetry still is (it would need DTLS), and sizes, timing and who talks to whom stay visible (Section 7) |

# %% [markdown]
# ## 9. Stop everything

# %%
attacker.close()
await system.stop()
print("stopped:", not system.station.running)

# %% [markdown]
# ## Reflection
#
# 1. The forged datagrams of Section 2 were refused as `bad_tag`, the replays of Section 3 as
#    `replay`, the injection of Section 4 as `unauthenticated`, the foreign page of Section 6 as
#    `origin`. Which of these counters would you alarm on in a real hospital, and which would
#    fire during normal operation (think of network duplicates)?
# 2. Section 7's eavesdropper saw one bed. On a ward of 30, with all alarm channels to one port,
#    what could it still tell apart, and what would a VPN between the ward and the station hide?
# 3. Key rotation has a grace period. What goes wrong if it is too short, and what if it is too
#    long?
# 4. The early labs ran without any of this. What did that make easier to teach, and what should a
#    lab environment never be mistaken for?
