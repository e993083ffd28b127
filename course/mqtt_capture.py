"""MQTT's QoS handshakes on the wire: the exchange ``mqtt-qos.pcap`` records, and two readers.

:func:`qos_exchange` is what the recording holds: a subscriber (QoS 2 subscription) and a
publisher, each connected to a real mosquitto, the publisher sending one message at each QoS.
Every hop has its own handshake and its own packet ids:

- QoS 0: PUBLISH, nothing back;
- QoS 1: PUBLISH, PUBACK;
- QoS 2: PUBLISH, PUBREC, PUBREL, PUBCOMP.

:func:`mqtt_messages` reads a capture with scapy's MQTT layer (``scapy.contrib.mqtt``, bound to
port 1883), one row per MQTT message (a TCP segment may carry several). :func:`tshark_mqtt` asks
Wireshark's own MQTT dissector, a reader nobody here wrote, for the same rows, when tshark is
installed. The two should agree.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import aiomqtt
import pandas as pd

from course.constants import RECORDED_MQTT_PORT

#: MQTT 3.1.1's control packet types (the high nibble of the first byte)
TYPES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT"}
#: the types that carry a packet id (msgid), and so belong to a handshake
WITH_ID = {"PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE",
           "UNSUBACK"}
TOPIC = "hospital/icu/lab"
COLUMNS = ["frame", "from", "client_port", "type", "qos", "msgid", "topic", "payload"]


async def qos_exchange(port: int, *, host: str = "127.0.0.1") -> list[bytes]:
    """One message at each QoS from a publisher to a subscriber through the broker on ``port``;
    returns what the subscriber got. Each client leaves only when its handshakes are over."""
    got: list[bytes] = []
    async with aiomqtt.Client(host, port, identifier="lab-subscriber") as sub:
        await sub.subscribe(TOPIC, qos=2)

        async def read() -> None:
            async for message in sub.messages:
                got.append(bytes(message.payload))
                if len(got) == 3:
                    return

        async with aiomqtt.Client(host, port, identifier="lab-publisher") as pub:
            for qos in (0, 1, 2):
                # aiomqtt returns at QoS 1 on the PUBACK, at QoS 2 on the PUBCOMP
                await pub.publish(TOPIC, f"reading at QoS {qos}".encode(), qos=qos)
        try:
            await asyncio.wait_for(read(), 10)
        except TimeoutError:
            raise TimeoutError(f"after 10 s the subscriber had only {got}") from None
        # the broker answers an UNSUBSCRIBE after every packet the subscriber sent before it
        # (its PUBREC among them), and the subscriber reads that answer after the PUBREL
        await sub.unsubscribe(TOPIC)
    return got


def _row(frame: int, client_port: int, sport: int, kind: str, qos: int | None,
         msgid: int | None, topic: str | None, payload: str | None) -> dict:
    return {"frame": frame, "from": "broker" if sport != client_port else "client",
            "client_port": client_port, "type": kind, "qos": qos, "msgid": msgid,
            "topic": topic, "payload": payload}


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS).astype({"qos": "Int64", "msgid": "Int64"})


def mqtt_messages(path: str | Path, port: int = RECORDED_MQTT_PORT) -> pd.DataFrame:
    """Every MQTT message in a capture, with scapy's MQTT layer: frame number (from 1, as in
    Wireshark), who sent it (``client`` or ``broker``), the client's TCP port (which
    connection), type, QoS (PUBLISH only), packet id, topic and payload (PUBLISH only)."""
    from scapy.all import TCP, rdpcap
    from scapy.contrib.mqtt import MQTT

    rows = []
    for number, pkt in enumerate(rdpcap(str(path)), start=1):
        if not pkt.haslayer(MQTT):
            continue
        client_port = pkt[TCP].dport if pkt[TCP].sport == port else pkt[TCP].sport
        layer = pkt[MQTT]
        while isinstance(layer, MQTT):
            kind = TYPES.get(layer.type, str(layer.type))
            body = layer.payload
            qos = int(layer.QOS) if kind == "PUBLISH" else None
            msgid = getattr(body, "msgid", None)
            if kind == "PUBLISH" and qos == 0:
                msgid = None  # a QoS 0 PUBLISH has no packet id
            topic = payload = None
            if kind == "PUBLISH":
                topic, payload = body.topic.decode(), bytes(body.value).decode()
            rows.append(_row(number, client_port, pkt[TCP].sport, kind, qos,
                             None if msgid is None else int(msgid), topic, payload))
            layer = body.payload  # the next MQTT message in the same segment, if any
            while layer and not isinstance(layer, MQTT):
                layer = layer.payload
    return _frame(rows)


def tshark_reason() -> str | None:
    """Why tshark cannot be asked here, or None when it can."""
    if shutil.which("tshark") is None:
        return "tshark is not installed (apt-get install tshark)"
    return None


def _first(tree: dict, key: str) -> str | None:
    """A field of a tshark JSON layer, wherever tshark nests it (flags go in a ``_tree``)."""
    if key in tree:
        return tree[key]
    for value in tree.values():
        if isinstance(value, dict):
            found = _first(value, key)
            if found is not None:
                return found
    return None


def tshark_mqtt(path: str | Path, port: int = RECORDED_MQTT_PORT) -> pd.DataFrame:
    """The same rows as :func:`mqtt_messages`, from Wireshark's MQTT dissector (run with an
    empty configuration, so that nobody's preferences change what it says; the broker's port
    given with ``-d`` in case it is not 1883). RuntimeError if tshark fails."""
    with tempfile.TemporaryDirectory() as config:
        env = {**os.environ, "WIRESHARK_CONFIG_DIR": config, "XDG_CONFIG_HOME": config}
        done = subprocess.run(["tshark", "-r", str(path), "-d", f"tcp.port=={port},mqtt",
                               "-Y", "mqtt", "-T", "json", "-J", "frame tcp mqtt"],
                              capture_output=True, text=True, env=env, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"tshark failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    rows = []
    for packet in json.loads(done.stdout or "[]"):
        layers = packet["_source"]["layers"]
        number, tcp = int(layers["frame"]["frame.number"]), layers["tcp"]
        sport, dport = int(tcp["tcp.srcport"]), int(tcp["tcp.dstport"])
        client_port = dport if sport == port else sport
        messages = layers["mqtt"] if isinstance(layers["mqtt"], list) else [layers["mqtt"]]
        for m in messages:
            kind = TYPES.get(int(_first(m, "mqtt.msgtype") or 0), "?")
            qos = int(_first(m, "mqtt.qos") or 0) if kind == "PUBLISH" else None
            msgid = _first(m, "mqtt.msgid")
            topic, payload = _first(m, "mqtt.topic"), _first(m, "mqtt.msg")
            if payload is not None and kind == "PUBLISH":
                payload = bytes.fromhex(payload.replace(":", "")).decode(errors="replace")
            if kind != "PUBLISH":
                topic = payload = None
            rows.append(_row(number, client_port, sport, kind, qos,
                             None if msgid is None else int(msgid), topic, payload))
    return _frame(rows)


#: what completes a PUBLISH's handshake at each QoS, and who sends each packet
HANDSHAKES = {0: [], 1: [("receiver", "PUBACK")],
              2: [("receiver", "PUBREC"), ("sender", "PUBREL"), ("receiver", "PUBCOMP")]}


def handshake(messages: pd.DataFrame, frame: int) -> list[tuple[str, str]]:
    """The packets that answer the PUBLISH in ``frame``: on the same connection, with its
    packet id, after it, up to the PUBACK or PUBCOMP that ends it; as (``sender`` or
    ``receiver`` of the PUBLISH, type). A QoS 0 PUBLISH has none."""
    publish = messages[(messages["frame"] == frame) & (messages["type"] == "PUBLISH")].iloc[0]
    if pd.isna(publish["msgid"]):
        return []
    later = messages[(messages["frame"] > frame)
                     & (messages["client_port"] == publish["client_port"])
                     & (messages["msgid"] == publish["msgid"])
                     & messages["type"].isin(["PUBACK", "PUBREC", "PUBREL", "PUBCOMP"])]
    out = []
    for _, row in later.iterrows():
        out.append(("sender" if row["from"] == publish["from"] else "receiver", row["type"]))
        if row["type"] in ("PUBACK", "PUBCOMP"):
            break
    return out
