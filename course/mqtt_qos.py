"""MQTT's QoS levels measured through a connection that is reset: what each loses and repeats.

A publisher sends numbered messages straight to a real broker; the subscriber reaches the broker
through the course's TCP impairment proxy (``vitalsim.impair.TcpImpairmentProxy``), 20 ms each
way so that messages are in flight, and the proxy resets the subscriber's connection at fixed
points of the run. The subscriber reconnects at once, with a clean session or a persistent one,
and subscribes again. Counting the numbers it got:

- *lost*: numbers never received; *duplicated*: copies beyond the first.

QoS is per hop: this measures the broker-to-subscriber hop, where a session lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass

import aiomqtt

from server.mqtt_bridge import settle
from vitalsim.impair import TcpImpairmentProxy, TcpSettings
from vitalsim.waiting import wait_until

END = b"end"


@dataclass(frozen=True)
class QosResult:
    qos: int
    session: str  # "clean" or "persistent"
    sent: int
    received: int
    lost: int
    duplicated: int
    resets: int

    def row(self) -> list[object]:
        return [self.qos, self.session, self.sent, self.received, self.lost, self.duplicated,
                self.resets]


COLUMNS = ["QoS", "session", "sent", "received", "lost", "duplicated", "resets"]


async def measure(broker_port: int, qos: int, *, persistent: bool, messages: int = 120,
                  resets_at: tuple[int, ...] = (30, 60, 90), gap: float = 0.005,
                  tag: str = "") -> QosResult:
    """Publish ``messages`` numbered messages at ``qos``; reset the subscriber's connection
    after each number in ``resets_at``; count what the subscriber got."""
    topic = f"lab/qos/{qos}/{'p' if persistent else 'c'}{tag}"
    sub_id = f"lab-sub-{qos}-{'p' if persistent else 'c'}{tag}"
    # the resets are the experiment: the client library's warnings about them are not news
    quiet = logging.getLogger("course.mqtt_qos.subscriber")
    quiet.setLevel(logging.CRITICAL)
    proxy = await TcpImpairmentProxy(("127.0.0.1", broker_port),
                                     TcpSettings(latency=0.02)).start()
    got: Counter[int] = Counter()
    state = {"connected": False, "ended": False, "connections": 0}

    async def subscriber() -> None:
        while True:
            client = aiomqtt.Client("127.0.0.1", proxy.port, identifier=sub_id,
                                    clean_session=not persistent, keepalive=5, timeout=5.0,
                                    logger=quiet)
            try:
                async with client:
                    await client.subscribe(topic, qos=2)
                    state["connected"] = True
                    state["connections"] += 1
                    async for message in client.messages:
                        payload = bytes(message.payload)
                        if payload == END:
                            state["ended"] = True
                        else:
                            got[int(payload)] += 1
            except aiomqtt.MqttError:
                state["connected"] = False
                settle(client)
                await asyncio.sleep(0.05)

    if persistent:  # a session from an earlier run with the same id starts this one empty
        async with aiomqtt.Client("127.0.0.1", broker_port, identifier=sub_id,
                                  clean_session=True):
            pass
    listening = asyncio.create_task(subscriber())
    try:
        await wait_until(lambda: state["connected"], what="the subscriber to connect")
        async with aiomqtt.Client("127.0.0.1", broker_port, identifier=f"lab-pub{tag}",
                                  clean_session=True) as pub:
            for n in range(messages):
                await pub.publish(topic, str(n).encode(), qos=qos)
                if n in resets_at:
                    # each reset hits a connection: the subscriber's previous reconnect is done
                    done = resets_at.index(n) + 1
                    await wait_until(lambda k=done: state["connections"] >= k, timeout=15,
                                     what="the subscriber to be back before the next reset")
                    proxy.reset_connections()
                await asyncio.sleep(gap)
            before = state["connections"]
            await wait_until(lambda: state["connected"] and state["connections"] >= before,
                             timeout=15, what="the subscriber to be back")
            # the marker goes last at QoS 2: every earlier message the broker will deliver
            # is delivered before it (MQTT keeps the order on one topic)
            await pub.publish(topic, END, qos=2)
            await wait_until(lambda: state["ended"], timeout=15, what="the end marker")
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await proxy.stop()
    received = sum(got.values())
    return QosResult(qos, "persistent" if persistent else "clean", messages, received,
                     messages - len(got), received - len(got), proxy.counters["resets"])


async def qos_table(broker_port: int, **kwargs: object) -> list[QosResult]:
    """Every QoS with a clean and a persistent session, one after another."""
    return [await measure(broker_port, qos, persistent=persistent, **kwargs)  # type: ignore[arg-type]
            for qos in (0, 1, 2) for persistent in (False, True)]
