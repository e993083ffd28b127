# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 08 — A hospital of wards
#
# **Objectives.** By the end of this lab you will be able to
# 1. subscribe to a whole hospital with MQTT's wildcards (`+`, `#`) and explain what a
#    *retained* message gives a subscriber that arrives late;
# 2. measure what MQTT's QoS 0, 1 and 2 lose and repeat when a connection is reset, with a clean
#    and with a persistent session, and say which guarantee belongs to which hop;
# 3. write the consumer's half of "exactly once": deduplicating QoS 1 alarms by their id;
# 4. kill a ward's station and watch the broker publish its Last Will to the hospital view;
# 5. read MQTT's handshakes in a capture: PUBLISH and PUBACK, PUBREC, PUBREL and PUBCOMP, with
#    their packet ids.
#
# **Prerequisites.** Lab 02 (the alarm channel: application ACK, outbox, dedup by alarm id),
# lab 01 (UDP loss), lab 04 (reading captures with scapy).
#
# **Time.** About 45 minutes. **No root needed.** The lab starts a real broker, Eclipse
# Mosquitto (`apt-get install mosquitto`). Where mosquitto is not installed, the lab says so and
# shows what the same steps showed when the course was recorded; every exercise still has its
# data.
#
# One station holds about 2,000 beds on two cores. A hospital has many wards, each with its own
# station, and systems that all want their data: a hospital-wide view, the electronic record, a
# research feed. Rather than have each system connect to each station, every station hands its
# ward to a **broker**, and each system subscribes once. MQTT is the usual protocol for this in
# device telemetry, and its three QoS levels are this course's lessons under other names:
#
# | MQTT | guarantee | in this course |
# |---|---|---|
# | QoS 0 | at most once | UDP telemetry (lab 01) |
# | QoS 1 | at least once | the alarm channel before the station's dedup (lab 02) |
# | QoS 2 | exactly once, per hop and per session | (nothing: we will see why we do not need it) |
#
# Each exercise has a cell for your code (it starts as `raise NotImplementedError`) and a check
# cell that tells you *expected X because Y, got Z*, or that the exercise is not done yet.

# %%
import time

LAB_STARTED = time.monotonic()

import pandas as pd
from IPython.display import display

from course import Checks, hospital_lab, not_done_yet
from course.constants import RECORDINGS
from course.formatting import table
from course.links import dashboard_link
from course.mqtt_capture import HANDSHAKES, handshake, mqtt_messages, tshark_mqtt, tshark_reason
from course.mqtt_qos import COLUMNS as QOS_COLUMNS
from server.hospital_state import AlarmDedup

# %% [markdown]
# ## 0. The hospital
#
# The next cell starts, on free ports of 127.0.0.1:
#
# - a real **mosquitto** broker, with its own configuration and persistence directory;
# - ward **icu**: a station and 3 beds in this notebook, whose MQTT bridge
#   (`python -m server --mqtt HOST:PORT --ward icu`) reaches the broker through the course's TCP
#   impairment proxy, so that we can reset that connection. The heart-rate limit sits on the
#   patients' own rate, so alarms raise and clear every few seconds;
# - ward **cardiology**: `python -m server --mqtt ... --ward cardiology`, 2 beds, in a process
#   of its own, so that we can kill it;
# - the **hospital view** (`python -m server.hospital`), which subscribes to every ward and
#   serves the station's dashboard grouped by ward;
# - a listener subscribed to every ward's alarms and status, which keeps every message as it
#   came, duplicates and all.
#
# Each station publishes (docs/HOSPITAL.md has the whole table):
#
# | topic | QoS | retained |
# |---|---|---|
# | `hospital/{ward}/bed/{bed}/vitals` | 0 | yes |
# | `hospital/{ward}/alarms` | 1 | no |
# | `hospital/{ward}/alarms/open` | 1 | yes: the ward's open alarm entries, for a view that starts later |
# | `hospital/{ward}/station/status` | 1 | yes, with a Last Will saying `"online": false` |

# %%
reason = hospital_lab.unavailable_reason()
LIVE = reason is None
if LIVE:
    lab = await hospital_lab.HospitalLab(seed=8).start()
    print(f"mosquitto on {lab.broker.address}; ward icu in this notebook, ward cardiology in "
          f"process {lab.cardiology.proc.pid}; hospital view on port {lab.view.http_port}")
    recorded = None
else:
    recorded = hospital_lab.recorded()
    print(f"Not live: {reason}.\nThis lab shows what the same steps showed when the course was "
          f"recorded ({hospital_lab.RECORDED.name} in course/recordings/).")

# %% [markdown]
# Open the hospital view: the tiles of both wards, under a heading per ward, each tile named
# `WARD · Bed N`. It is read-only: alarms are acknowledged at the ward's own station.

# %%
dashboard_link(lab.view.url) if LIVE else print("(no hospital view: not live)")

# %% [markdown]
# ## 1. Wildcards and retained values
#
# A topic is a path of levels separated by `/`. A subscriber gives a **filter**, which may hold
# two wildcards:
#
# - `+` matches exactly one level, whatever it is: `hospital/+/bed/+/vitals` is every bed of
#   every ward;
# - `#` matches any number of levels, including none, and only at the end: `hospital/icu/#` is
#   everything of ward icu, and `hospital/icu` itself.
#
# A **retained** message is kept by the broker, the last one per topic, and handed at once to
# every new subscriber whose filter matches. Vitals are retained: a view that starts (or
# restarts) sees every bed's last values at once, instead of waiting for the next reading.
# In code (aiomqtt) a subscriber is three lines:
#
# ```python
# async with aiomqtt.Client("127.0.0.1", port) as client:
#     await client.subscribe("hospital/+/bed/+/vitals", qos=0)
#     async for message in client.messages: ...   # message.topic, .payload, .retain
# ```
#
# `read_retained` subscribes as a newcomer and keeps what the broker hands over at once:

# %%
retained = (await lab.read_retained("hospital/+/bed/+/vitals") if LIVE
            else recorded["retained"])
print(table(pd.DataFrame(retained), ["topic", "ms", "bed", "hr"]))

# %% [markdown]
# Every bed of both wards, a few milliseconds after subscribing (`ms`), although each bed
# publishes only once a second. That is "retained".
#
# ### Exercise 1: does a filter match a topic?
#
# Write `topic_matches(topic_filter, topic)` following MQTT 3.1.1, section 4.7:
#
# - split both on `/` (an empty level is a level: `/finance` has two levels, `""` and `finance`);
# - `+` matches one level; `#`, which is always last, matches the rest, *including the parent
#   level itself* (`sport/#` matches `sport`);
# - a topic starting with `$` (the broker's own, such as `$SYS/broker/uptime`) is not matched by a
#   filter that starts with a wildcard.
#
# The check compares your function with what the broker itself delivered for nine filters, and
# with the examples of the standard.

# %%
def topic_matches(topic_filter: str, topic: str) -> bool:
    ### BEGIN SOLUTION
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    want, got = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(got) or (level != "+" and level != got[i]):
            return False
    return len(want) == len(got)
    ### END SOLUTION


# %% tags=["check"]
matched = await lab.matched() if LIVE else recorded["matched"]
every_topic = sorted({t for topics in matched.values() for t in topics})
SPEC = [("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/#", "sport", True), ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport/", True), ("+/+", "/finance", True), ("+", "/finance", False),
        ("#", "$SYS/broker/uptime", False), ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/broker/uptime", True)]
checks = Checks("Exercise 1: topic filters")
for topic_filter, delivered in matched.items():
    checks.expect(f"topics matching {topic_filter}",
                  lambda f=topic_filter: {t for t in every_topic if not_done_yet(topic_matches,
                                                                                 f, t)},
                  expected=set(delivered),
                  because=f"the broker delivered these of the {len(every_topic)} retained topics")
for topic_filter, topic, answer in SPEC:
    checks.expect(f"{topic_filter} against {topic}",
                  lambda f=topic_filter, t=topic: not_done_yet(topic_matches, f, t),
                  expected=answer, because="MQTT 3.1.1, section 4.7")
display(checks)  # the report, in the learner's and the instructor's notebook

# %% [markdown]
# ## 2. QoS through a connection that is reset
#
# Now the three QoS levels, measured. A publisher sends 120 numbered messages straight to the
# broker; a subscriber (subscribed at QoS 2, so that it gets each message at the publisher's QoS)
# reaches the broker through the impairment proxy, 20 ms each way so that messages are in flight,
# and the proxy **resets** the subscriber's connection after messages 30, 60 and 90. The
# subscriber reconnects at once and subscribes again, either with a **clean session** (the broker
# forgets it between connections) or a **persistent** one (the same client id, clean session off:
# the broker keeps its subscription and its unacknowledged QoS 1 and 2 messages while it is
# away). We count the numbers it got (`course.mqtt_qos`, about 10 s):

# %%
started = time.monotonic()
qos_rows = await lab.qos() if LIVE else recorded["qos"]
qos = pd.DataFrame(qos_rows, columns=QOS_COLUMNS)
print(table(qos))
print(f"({'measured' if LIVE else 'recorded'}; {time.monotonic() - started:.1f} s)")

# %% [markdown]
# How to read it. **Lost** are numbers the subscriber never got, **duplicated** copies beyond the
# first.
#
# - **QoS 0** is fire and forget: whatever was in flight, or published while the subscriber was
#   away, is gone. A persistent session does not help: the broker queues only QoS 1 and 2 for an
#   absent subscriber. Never duplicated.
# - **QoS 1** with a **clean** session loses what was published while the subscriber was away
#   (there was no session to keep it in) and what was in flight. With a **persistent** session
#   nothing is lost: the broker keeps what the subscriber had not acknowledged (PUBACK) and sends
#   it again when it is back. A message the subscriber got whose PUBACK died in the reset comes
#   twice: at least once.
# - **QoS 2** adds a second round trip (PUBREC, PUBREL, PUBCOMP) so that the *receiver* knows it
#   has already had a message with that packet id: exactly once, but only **within one session**.
#   With a clean session the state is forgotten at the reset, so QoS 2 loses like QoS 1.
# - **QoS 2 with a persistent session** should lose nothing and repeat nothing, and yet it most
#   likely lost messages here. A session has two halves. The broker kept its half. The
#   receiver's half is in the client library's memory: paho-mqtt (under aiomqtt) holds a QoS 2
#   message from its PUBLISH until the PUBREL, and only then hands it over. Our subscriber makes
#   a new client for each connection, so the messages waiting for their PUBREL at the reset are
#   forgotten; the broker, which had their PUBREC, sends only the PUBREL again, and paho answers
#   PUBCOMP to a PUBREL it does not know (its source says so: "thus losing a message", paho
#   issue #284). At most 20 per reset: the broker lets 20 messages be in flight to a client
#   (`max_inflight_messages 20`, course/mqtt_broker.py). A session is persistent only if *both*
#   ends keep it.
#
# The counts vary from run to run (where the resets fall among the messages in flight), but what
# the guarantees promise holds every time: QoS 0 and QoS 2 never repeat, and QoS 1 with a
# persistent session never loses (`tests/test_mqtt_qos.py` checks them).
#
# **Question.** The whole run measured one hop: broker to subscriber. Name the other hop, and a
# way a message published at QoS 2 could still reach the subscriber twice.

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** The other hop is publisher to broker. QoS is per hop: if the
# publisher's connection is reset after the broker stored the message but before the publisher
# heard PUBREC (or PUBCOMP), a publisher that sends it again on a *new* session is sending a new
# message as far as the broker is concerned (new session, perhaps a new packet id), and the
# subscriber gets both. Our bridge does exactly that after a reconnect, which is why end-to-end
# exactly-once needs an id of the application's own (Section 3).

# %% [markdown]
# ## 3. Alarms: at least once, made exactly once by id
#
# The bridge publishes each alarm event at QoS 1 and keeps it in its outbox until the broker's
# PUBACK. After a reconnect it publishes every event still there again, so an event whose PUBACK
# was lost in a reset arrives **again**, once more for each reset that finds it still waiting for
# its PUBACK (the table below lists every copy: an event caught by three resets comes four
# times). Each copy is a new PUBLISH, not a re-delivery, so even MQTT's DUP flag does not mark
# it. Each event carries its `alarm_id`, made by the bedside monitor (device id,
# boot id and a counter): that is the key a consumer deduplicates on, as our station does on the
# alarm channel before it ACKs (lab 02).
#
# The next cell resets the icu bridge's connection three times, a few alarms apart, then stops
# the ward and waits until every alarm the icu station journaled has reached our listener. The
# MQTT client library logs each reset it sees ("failed to receive on socket: [Errno 104]
# Connection reset by peer"): those are the resets we made, so the cell counts them instead of
# letting them print:

# %%
alarms = await lab.alarms_through_resets() if LIVE else recorded["alarms"]
deliveries = alarms["deliveries"]
stream = pd.DataFrame(deliveries)
twice = stream[stream.duplicated(["ward", "alarm_id"], keep=False)]
print(f"{len(stream)} deliveries of {len(stream.drop_duplicates(['ward', 'alarm_id']))} alarm "
      f"events; the icu station journaled {len(alarms['journaled'])}; the bridge published "
      f"{alarms['republished']} again after {alarms['resets']} resets "
      f"({alarms.get('reset_notes', 0)} 'connection reset' lines from the MQTT library, not "
      "printed: our resets)")
print(table(twice.head(8), ["n", "ward", "alarm_id", "bed", "condition", "state"]))

# %% [markdown]
# (If no delivery came twice this time, the resets fell where no PUBACK was in flight; the check
# below also feeds your code a stream that certainly has duplicates.)
#
# ### Exercise 2: exactly once by id
#
# Write `exactly_once(deliveries)`: from the deliveries in the order they came (dicts with at
# least `ward` and `alarm_id`), the list of those to act on: the **first** delivery of each alarm
# event, in order. Mind that `alarm_id` is made by the bedside monitor, and that every ward's
# monitors are numbered from 1001.

# %%
def exactly_once(deliveries: list[dict]) -> list[dict]:
    ### BEGIN SOLUTION
    seen: set[tuple[str, str]] = set()
    kept = []
    for d in deliveries:
        key = (d["ward"], d["alarm_id"])
        if key not in seen:
            seen.add(key)
            kept.append(d)
    return kept
    ### END SOLUTION


# %% tags=["check"]
def reference(stream: list[dict]) -> list[int]:
    """The hospital view's own dedup (server.hospital_state.AlarmDedup), keyed ward/alarm_id."""
    dedup = AlarmDedup()
    return [d["n"] for d in stream if dedup.first(f"{d['ward']}/{d['alarm_id']}")]


def kept(stream: list[dict]) -> list[int]:
    return [d["n"] for d in not_done_yet(exactly_once, [dict(d) for d in stream])]


same_id = [{"n": 1, "ward": "icu", "alarm_id": "1001-7f3a-12"},
           {"n": 2, "ward": "cardiology", "alarm_id": "1001-7f3a-12"},
           {"n": 3, "ward": "icu", "alarm_id": "1001-7f3a-12"}]
rng_stream = [{"n": i + 1, "ward": "icu", "alarm_id": f"1002-b007-{k}"}
              for i, k in enumerate([1, 2, 1, 3, 2, 2, 4, 1, 5, 3])]
checks = Checks("Exercise 2: exactly once by id")
checks.expect("deliveries kept from the live stream", lambda: kept(deliveries),
              expected=reference(deliveries),
              because="the first delivery of each (ward, alarm_id), in the order they came")
checks.expect("icu alarm events kept, against the station's journal",
              lambda: sorted(d["alarm_id"] for d in not_done_yet(exactly_once, deliveries)
                             if d["ward"] == "icu"),
              expected=alarms["journaled"],
              because="every event the icu station journaled, each once: none lost, none twice")
checks.expect("a stream with re-sends", lambda: kept(rng_stream),
              expected=reference(rng_stream),
              because="events 1, 2 and 3 come again after their first delivery")
checks.expect("the same alarm id from two wards", lambda: kept(same_id), expected=[1, 2],
              because="device 1001 of icu and device 1001 of cardiology are different monitors; "
                      "only delivery 3 repeats one")
display(checks)  # the report, in the learner's and the instructor's notebook

# %% [markdown]
# **Question.** Your `exactly_once` remembers every id for ever. The hospital view's `AlarmDedup`
# remembers the last 200,000. What goes wrong if the window is too small, and how would you choose
# its size from the bridge's behaviour?

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** An id forgotten before its re-send arrives passes again: a
# duplicate alarm. Re-sends come from the bridge's outbox after a reconnect, so the window must
# hold every id delivered during the longest time an event can wait in an outbox (the broker's
# outage plus back-off), at the hospital's alarm rate, with a margin: 200,000 ids cover hours of a
# large hospital's alarms in a few tens of MB. Forgetting by age rather than by count says the
# same thing in time; a persistent store (keyed by id) survives a restart of the view too.

# %% [markdown]
# ## 4. A station dies: its Last Will
#
# Each bridge connects with a **Last Will**: a message (`{"online": false}` on its status topic,
# retained) that the broker keeps and publishes **if the connection dies without a DISCONNECT**.
# Once connected, the bridge publishes `{"online": true}` on the same topic, retained. A station
# stopped with Ctrl-C says `online: false` itself; one that is killed, or whose host loses power,
# cannot: only the broker can tell.
#
# We kill cardiology's station with SIGKILL (no goodbye) and wait for the hospital view to show
# the ward offline:

# %%
will = await lab.kill_cardiology() if LIVE else recorded["will"]
print("before:\n" + table(pd.DataFrame(will["before"])))
print("after:\n" + table(pd.DataFrame(will["after"])))
print(f"offline at the hospital view {will['seconds'] * 1000:.0f} ms after the kill")
print("status messages the listener got:\n" + table(pd.DataFrame(will["status"])))

# %% [markdown]
# The icu rows of the status messages come from Section 3: each reset killed the icu bridge's
# connection without a DISCONNECT, so the broker published icu's Will (`online` false), and the
# bridge said `online` true again a moment later, once it had reconnected. A hospital view sees
# such a blip as a ward going offline for a fraction of a second.
#
# Look at the hospital view again: cardiology's heading says `STATION OFFLINE (Last Will)`, and
# its tiles are greyed out and marked `WARD OFFLINE`; their last values are still shown, but they
# are no longer current. The icu ward's station is still online, and says what it knows: Section
# 3 stopped its monitors, so each of its beds shows `ALARM LINK LOST`, the station's own
# technical alarm, passed on through the broker like any other.
#
# The kill closed the station's TCP connection at once (the kernel closes a dead process's
# sockets), so the broker noticed within milliseconds.
#
# **Question.** Suppose instead the cardiology station's network cable is pulled: no FIN, no RST,
# nothing. When does the broker publish the Will (the bridge connects with a keep-alive of 5 s),
# and what does the hospital view show until then? Why is the status message *retained*? And
# how would you keep icu's blips from paging the hospital's on-call engineer?

# %% [markdown]
# *Your answer here.*

# %% [markdown] tags=["instructor"]
# **Model answer (instructor).** With no packets at all the broker only notices when the client's
# keep-alive runs out: MQTT lets it wait one and a half keep-alive periods, 7.5 s, before closing
# the connection and publishing the Will. Until then the view shows the ward online with values
# that stop changing (the tiles go stale after a few seconds without vitals, but the heading still
# says online). Retained, because a view that starts later (or reconnects) must learn at once
# which wards are offline; without it, a dead ward would look like a ward nobody has heard of.
# Blips: page only when a ward has been offline for longer than the bridge's reconnect takes (a
# few seconds, the same debouncing as an alarm delay), and show the blip on the view at once.

# %% [markdown]
# ### Security: who may publish what
#
# This lab's broker lets **any client publish anything**, as mosquitto does with
# `allow_anonymous true`. Anyone who can reach port 1883 can publish a clear for a real alarm
# (the view would show it cleared), a retained `{"online": false}` that blanks a live ward for
# every view that starts later, or an alarm with an id a real monitor will use next. The
# hospital view checks every field it passes on (types, ranges, sizes, nesting: a forged
# message cannot break the page), but a well-formed lie passes every check: only the broker
# can tell who sent it.
#
# `course.mqtt_broker.Mosquitto(wards=("icu", "cardiology"))` runs the broker with a password
# for each client and an ACL: `station-icu` may publish only under `hospital/icu/#`, the
# `hospital-view` user may only read, and clients without an account are refused
# (`tests/test_mqtt_bridge.py` shows a forged offline status from cardiology's station, from
# the view and from an anonymous client never reaching the view). What that **stops**: one
# ward's station, a view or a stranger forging another ward's alarms or status. What it does
# **not** stop: a station lying about its own ward (or anyone holding its password); a
# password read off the wire (this is plain TCP: a hospital needs TLS on every listener, and a
# client certificate or a password per station); a station flooding its own ward's topics (the
# view bounds what it keeps, not what it is sent). And the broker stays a way to move data
# between systems, not the alarm system of record: alarms are acknowledged at the station, on
# its authenticated session.

# %% [markdown]
# ## 5. Stop the hospital
#
# The rest of the lab reads a recording. Stopping the ward's station first lets its bridge say
# goodbye (`online: false`, then a clean DISCONNECT, so that the broker drops its Will).

# %%
if LIVE:
    await lab.stop()
print("stopped" if LIVE else "(nothing was started)")

# %% [markdown]
# ## 6. The handshakes in a capture
#
# `course/recordings/mqtt-qos.pcap` holds a short exchange through a real mosquitto on 1883
# (MQTT's own port): a subscriber (QoS 2 subscription) and a publisher that sends one message at
# each QoS. scapy has an MQTT layer (`scapy.contrib.mqtt`); `mqtt_messages` lists every MQTT
# message with it (a TCP segment may carry several). `client_port` tells the two connections
# apart: one is the publisher's, the other the subscriber's.

# %%
# NBVAL_CHECK_OUTPUT
capture = RECORDINGS / "mqtt-qos.pcap"
messages = mqtt_messages(capture)
print(table(messages))

# %% [markdown]
# Each PUBLISH appears twice: once from the publisher to the broker, once from the broker to the
# subscriber. Each hop is a handshake of its own, with **its own packet id** (`msgid`): the
# broker numbers what it sends to the subscriber itself.
#
# ### Exercise 3: the answers to a PUBLISH
#
# Write `answers(messages, frame)`: the types of the packets that answer the PUBLISH in frame
# `frame`, in order: on the same connection (`client_port`), with the same `msgid`, after it, up
# to the PUBACK or PUBCOMP that ends the handshake. A QoS 0 PUBLISH (no `msgid`, shown as `-`,
# `pd.isna` is true) has none. Packet ids are reused once a handshake ends: stop at its end.

# %%
def answers(messages: pd.DataFrame, frame: int) -> list[str]:
    ### BEGIN SOLUTION
    sent = messages[messages["frame"].eq(frame) & messages["type"].eq("PUBLISH")].iloc[0]
    out: list[str] = []
    if sent["qos"] == 0:
        return out
    for row in messages[messages["frame"] > frame].itertuples():
        if row.type in ("PUBACK", "PUBREC", "PUBREL", "PUBCOMP") \
                and row.client_port == sent["client_port"] and row.msgid == sent["msgid"]:
            out.append(row.type)
            if row.type in ("PUBACK", "PUBCOMP"):
                break
    return out
    ### END SOLUTION


# %% tags=["check"]
publishes = messages[messages["type"] == "PUBLISH"]
checks = Checks("Exercise 3: the handshakes")
for _, p in publishes.iterrows():
    hop = "publisher to broker" if p["from"] == "client" else "broker to subscriber"
    checks.expect(f"answers to frame {p['frame']} (QoS {p['qos']}, {hop})",
                  lambda f=p["frame"]: not_done_yet(answers, messages, f),
                  expected=[kind for _, kind in handshake(messages, p["frame"])],
                  because=f"QoS {p['qos']} ends with "
                          + (" ".join(k for _, k in HANDSHAKES[int(p["qos"])]) or "nothing"))
display(checks)  # the report, in the learner's and the instructor's notebook

# %% [markdown]
# And as Wireshark reads it, with its own MQTT dissector (a reader nobody here wrote), when tshark
# is installed:

# %%
reason_tshark = tshark_reason()
if reason_tshark is None:
    seen = tshark_mqtt(capture)
    print("tshark's MQTT dissector and scapy's layer read the same messages:",
          seen.equals(messages))
    print(table(seen[seen["type"].str.startswith("PUB")], ["frame", "from", "client_port",
                                                           "type", "qos", "msgid"]))
else:
    print(f"tshark is not available here ({reason_tshark}); scapy read the capture above")

# %% [markdown]
# The whole lab, from its first cell to here:

# %%
print(f"the lab ran in {time.monotonic() - LAB_STARTED:.0f} s "
      f"({'live' if LIVE else 'from the recording'})")

# %% [markdown]
# ## Reflection
#
# 1. **The broker's guarantees against our alarm channel's.** Our alarm channel (lab 02) ACKs an
#    alarm only after the station has journaled it in SQLite, re-sends from the device's outbox
#    after a reconnect, and dedups by alarm id. MQTT's PUBACK says the *broker* took the message.
#    What does each acknowledgement promise, to whom, and what survives a crash of the receiver
#    in each case (think of a broker without persistence)?
# 2. **Where each belongs in a hospital.** Between the bedside monitor and its ward's station we
#    kept our own channel; between the stations and the rest of the hospital we put a broker.
#    Why not a broker at the bedside too, and why not our alarm channel from every station to
#    every hospital system?
# 3. Vitals go at QoS 0, retained; alarms at QoS 1 with dedup by id; nothing at QoS 2. Argue for
#    each choice from what Section 2 measured. When would QoS 2 be worth its extra round trip?
# 4. The hospital view is read-only: a nurse acknowledges an alarm at the ward's station. What
#    would go wrong if acknowledgements also travelled back through the broker from several
#    views at once?

# %% [markdown] tags=["instructor"]
# **Model answers (instructor).**
#
# 1. Our ACK promises that the alarm is *stored by the application that acts on it* (journaled,
#    fsynced) and names it by id; after a station crash the journal still has it, and a re-send
#    is recognised by id. A PUBACK promises only that the broker has the message (in memory, or
#    on disk if persistence is on and it got to write it); it says nothing about any subscriber
#    having it, and a broker without persistence that crashes loses everything queued. MQTT's
#    guarantees are per hop and per session; ours are end to end by id, which is why our consumer
#    still dedups by id whatever the QoS.
# 2. At the bedside the monitor and the station are one system with one owner, a patient's
#    safety depends on each alarm, and we want the station's own ACK after journaling, an outbox
#    on the device, and a heartbeat we control: one hop, end to end. A broker there would add a
#    component that can fail between them and whose ACK means less. Between a station and many
#    hospital systems, a broker decouples them: each system subscribes once, comes and goes
#    without the stations knowing, and retained values and Last Wills come for free; one
#    point-to-point channel per station per system would be N × M connections to manage.
# 3. Section 2: QoS 0 loses what is in flight and never repeats; for vitals, the next second's
#    values supersede a lost one, and retained gives a newcomer the latest at once. QoS 1 with a
#    persistent session loses nothing but repeats, and dedup by id removes the repeats: exactly
#    once by id, across hops and sessions. QoS 2 costs a second round trip per message and still
#    only holds within a session and a hop, so it does not remove the need for the id; it is worth
#    it where the consumer cannot dedup (a message with no natural id that must not be applied
#    twice, such as "add 1 to a counter") and the sessions are persistent end to end.
# 4. Two views could acknowledge the same alarm at once, and an acknowledgement could be lost or
#    repeated on the way: the station would need to dedup acknowledgements, order them against
#    new alarms, and know who acted, for a safety-relevant action. Keeping the action where the
#    nurse is, on the station's authenticated session, keeps one writer for alarm state; the
#    broker only distributes what the station decided.
