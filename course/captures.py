"""``python -m course.captures``: record the course's packet captures into ``course/recordings/``.

Learners who cannot sniff (no root) read these instead. Each is recorded live (root needed to
sniff) from a seeded ward on fixed ports, so that the scapy layers recognise it, and is small:

| file | what it shows |
|---|---|
| telemetry-clean.pcap | telemetry datagrams, every sequence number present |
| telemetry-loss.pcap | the same through the impairment proxy at 20% loss: sequence gaps |
| alarm-retransmissions.pcap | the alarm channel under 20% kernel loss: TCP retransmissions |
| alarm-restart.pcap | the alarm channel across a station restart: reconnect, re-send, ACKs |
| websocket.pcap | a WebSocket upgrade, pushed frames, a masked command, the close handshake |
| spoofed-telemetry.pcap | a telemetry datagram forged with scapy: bed 3's heart rate at 180 |
| hl7-mllp.pcap | HL7 v2 over MLLP: ORU^R01, ORU^R40, their ACKs, a reset, the re-send |
| mqtt-qos.pcap | a message at each MQTT QoS via mosquitto: PUBACK, PUBREC/PUBREL/PUBCOMP |

The station runs as a subprocess (``python -m server``): vitalsim never imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scapy.all import IP, UDP, wrpcap

from course.constants import (
    CAPTURE_SEED,
    FLAPPING_HR,
    RECORDED_ALARM_PORT,
    RECORDED_HL7_PORT,
    RECORDED_HTTP_PORT,
    RECORDED_MQTT_PORT,
    RECORDED_PROXY_PORT,
    RECORDED_TELEMETRY_PORT,
    RECORDINGS,
)
from course.mqtt_broker import Mosquitto
from course.mqtt_capture import qos_exchange
from course.netns_recorder import record_alarm_channel
from course.waiting import wait_until
from vitalsim.devices.ward import Ward, WardConfig
from vitalsim.impair import UdpImpairmentProxy, UdpSettings
from vitalsim.impair.live import start_sniffer
from vitalsim.layers import Telemetry, TelemetryNumerics, bind_ports

TELEMETRY_PORT, PROXY_PORT = RECORDED_TELEMETRY_PORT, RECORDED_PROXY_PORT
ALARM_PORT, HTTP_PORT, SEED = RECORDED_ALARM_PORT, RECORDED_HTTP_PORT, CAPTURE_SEED


class Capture:
    """Sniff ``iface`` with a BPF filter while the body runs; write the pcap at the end."""

    def __init__(self, path: Path, bpf: str, iface: str = "lo", limit: int = 400) -> None:
        self.path, self.bpf, self.iface, self.limit = path, bpf, iface, limit

    def __enter__(self) -> Capture:
        self.sniffer = start_sniffer(self.bpf, iface=self.iface, timeout=10, store=True)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)  # the last packets are in the kernel's queue, not yet read by scapy
        packets = self.sniffer.stop() or []
        wrpcap(str(self.path), list(packets)[: self.limit])
        print(f"{self.path.name}: {min(len(packets), self.limit)} packets")


async def _ward_to(port: int, seconds: float, *, beds: int = 2, waves: bool = False,
                   storm: bool = False, tcp_port: int = ALARM_PORT) -> Ward:
    ward = Ward(WardConfig(beds=beds, scenario="stable_adult", seed=SEED, waves=waves,
                           speed=5.0, limits=FLAPPING_HR if storm else None),
                "127.0.0.1", port, tcp_port)
    await ward.start()
    await asyncio.sleep(seconds)  # how long the recording runs
    await ward.stop()
    return ward


async def _sink(port: int) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       local_addr=("127.0.0.1", port))
    return transport


def telemetry_clean(out: Path) -> None:
    async def main() -> None:
        sink = await _sink(TELEMETRY_PORT)
        try:
            await _ward_to(TELEMETRY_PORT, 4.0)
        finally:
            sink.close()
    with Capture(out / "telemetry-clean.pcap", f"udp port {TELEMETRY_PORT}"):
        asyncio.run(main())


def telemetry_loss(out: Path) -> None:
    async def main() -> None:
        sink = await _sink(TELEMETRY_PORT)
        proxy = UdpImpairmentProxy(("127.0.0.1", TELEMETRY_PORT), UdpSettings(loss=0.2),
                                   seed=SEED, listen=("127.0.0.1", PROXY_PORT))
        await proxy.start()
        try:
            await _ward_to(PROXY_PORT, 8.0, beds=3)
        finally:
            await proxy.stop()
            sink.close()
    # only the leg after the proxy: what the station would see
    with Capture(out / "telemetry-loss.pcap", f"udp dst port {TELEMETRY_PORT}"):
        asyncio.run(main())


def _station(journal: Path, beds: int = 0) -> subprocess.Popen:
    proc = subprocess.Popen(
        # --devices: the recordings' wards (up to 3 beds) send from outside the station
        [sys.executable, "-m", "server", "--beds", str(beds), "--devices", str(max(beds, 3)),
         "--http-port", str(HTTP_PORT),
         "--udp-port", str(TELEMETRY_PORT), "--tcp-port", str(ALARM_PORT), "--journal",
         str(journal), "--seed", str(SEED),
         # the recordings show the early labs' station, without sessions (lab 03 reads the
         # WebSocket upgrade as it is there); lab 06 shows the authenticated one
         "--no-auth"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "dashboard:" not in line:
        proc.kill()
        raise RuntimeError(f"the station did not start: {line!r}")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def alarm_restart(out: Path, tmp: Path) -> None:
    journal = tmp / "restart.sqlite3"

    async def main() -> None:
        ward = Ward(WardConfig(beds=1, scenario="stable_adult", seed=SEED, waves=False,
                               speed=10.0, limits=FLAPPING_HR),
                    "127.0.0.1", TELEMETRY_PORT, ALARM_PORT)
        station = _station(journal)
        await ward.start()
        try:
            await asyncio.sleep(3.0)
            _stop(station)  # the station goes down; alarms pile up in the outbox
            await asyncio.sleep(2.0)
            station = _station(journal)
            link = ward.links[0]
            await wait_until(lambda: link.connections >= 2 and not link.sender.outbox,
                             timeout=30, interval=0.1, what="the reconnect and the outbox re-sent")
            for link in ward.links:
                await link.stop_telemetry()
        finally:
            await ward.stop()
            _stop(station)
    with Capture(out / "alarm-restart.pcap", f"tcp port {ALARM_PORT}", limit=600):
        asyncio.run(main())


def websocket(out: Path, tmp: Path) -> None:
    """A dashboard's whole conversation, for Lab 03: the upgrade, the snapshot and a push, one
    command of its own (a masked text frame), the station's answer, and a close handshake whose
    status code and reason travel masked one way and unmasked the other."""
    import json

    from tornado.websocket import websocket_connect

    async def main() -> None:
        station = _station(tmp / "ws.sqlite3", beds=2)
        try:
            ws = await websocket_connect(f"ws://127.0.0.1:{HTTP_PORT}/ws")
            for _ in range(2):  # the snapshot, then the first coalesced push
                await ws.read_message()
            ws.write_message(json.dumps({"type": "subscribe", "beds": [1]}))
            while json.loads(await ws.read_message())["type"] != "subscribed":
                pass
            await ws.read_message()  # bed 1 in full, as a new subscription gets it
            ws.close(1000, "dashboard closed")
            # None once the station's close frame has come back: the handshake is complete
            while await asyncio.wait_for(ws.read_message(), 10) is not None:
                pass
        finally:
            _stop(station)
    with Capture(out / "websocket.pcap", f"tcp port {HTTP_PORT}"):
        asyncio.run(main())


def alarm_retransmissions(out: Path, tmp: Path) -> None:
    """The alarm channel under 20% kernel loss, recorded between two network namespaces by the
    same recorder as lab 02's live capture (:func:`course.netns_recorder.record_alarm_channel`),
    for longer and with fewer beds, so that a few retransmissions are easy to follow."""
    capture = record_alarm_channel(tmp, pcap=out / "alarm-retransmissions.pcap", loss=0.2,
                                   beds=2, seconds=8, speed=10, seed=SEED, max_packets=400,
                                   timeout=80)
    print(f"{capture.path.name}: recorded in the namespaces; the ward: {capture.ward}, "
          f"device alarms journaled: {capture.journaled}")


def spoofed(out: Path) -> None:
    """No network at all: the forgery is built with scapy and written as it would be sent."""
    forged = (IP(src="10.0.0.66", dst="127.0.0.1") / UDP(sport=40404, dport=5005) /
              Telemetry(bed=3, device_id=1003, seq=4_000_000_000, sent_at_us=1_764_000_000_000_000,
                        numerics=TelemetryNumerics(hr=180, spo2=99, rr=14, temp=36.8)))
    wrpcap(str(out / "spoofed-telemetry.pcap"), [forged])
    print("spoofed-telemetry.pcap: 1 packet")


def hl7_mllp(out: Path) -> None:
    """The station's HL7 interface talking to the course's interface engine on port 2575, for
    Lab 07: vitals (ORU^R01) and alarms (ORU^R40) each answered (ACK, ORA^R41), then the
    engine stalls on one message and resets the connection (RST); the station connects again
    and sends that message again under the same control id."""
    from course.hl7_receiver import Hl7Receiver
    from server import System
    from server.config import StationConfig
    from server.system import SystemConfig

    async def main() -> None:
        async with Hl7Receiver(port=RECORDED_HL7_PORT) as engine:
            system = System(SystemConfig(
                StationConfig(http_port=0, udp_port=0, tcp_port=0, hl7_target=engine.target,
                              hl7_interval=2.0, hl7_ack_timeout=5.0, hl7_retry=0.5),
                WardConfig(beds=1, scenario="stable_adult", seed=SEED, speed=5.0,
                           waves=False, limits=FLAPPING_HR)))
            async with system:
                kinds = lambda: {r.type for r in engine.received}  # noqa: E731
                await wait_until(lambda: {"ORU^R01", "ORU^R40"} <= kinds()
                                 and len(engine.received) >= 3, timeout=30,
                                 what="vitals and an alarm answered")
                engine.stall()  # the next message is received and never answered...
                n = len(engine.received)
                await wait_until(lambda: len(engine.received) > n, timeout=30,
                                 what="a message left unanswered")
                engine.reset()  # ...and the engine cuts the connection with an RST
                engine.resume()
                await wait_until(lambda: engine.connections >= 2 and any(
                    r.duplicate and r.answer == "AA" for r in engine.received), timeout=30,
                    what="the re-send answered")
                await wait_until(lambda: len(engine.received) >= n + 3, timeout=30,
                                 what="two more messages after the re-send")
    with Capture(out / "hl7-mllp.pcap", f"tcp port {RECORDED_HL7_PORT}"):
        asyncio.run(main())


def mqtt_qos(out: Path) -> None:
    """For Lab 08: a publisher sends one message at each QoS to a subscriber (QoS 2
    subscription) through a real mosquitto on 1883, MQTT's own port, so that Wireshark and
    scapy dissect it without being told. Each hop has its own handshake and packet ids."""
    with Mosquitto(port=RECORDED_MQTT_PORT, persistence=False) as broker, \
            Capture(out / "mqtt-qos.pcap", f"tcp port {broker.port}"):
        got = asyncio.run(qos_exchange(broker.port))
    print(f"mqtt-qos.pcap: the subscriber got {got}")


RECORDERS = ("telemetry-clean", "telemetry-loss", "alarm-restart", "websocket",
             "alarm-retransmissions", "spoofed-telemetry", "hl7-mllp", "mqtt-qos")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m course.captures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=RECORDINGS)
    p.add_argument("--skip-netns", action="store_true",
                   help="leave alarm-retransmissions.pcap as it is (needs nftables)")
    p.add_argument("--only", choices=RECORDERS, action="append", default=None,
                   help="record only this file (repeatable); default: every one")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        p.error("recording needs root (to sniff); the recorded pcaps in course/recordings/ are for "
                "everyone else")
    args.out.mkdir(parents=True, exist_ok=True)
    for port in (TELEMETRY_PORT, PROXY_PORT):
        bind_ports(telemetry=port)
    chosen = set(args.only or RECORDERS)
    if args.skip_netns:
        chosen.discard("alarm-retransmissions")
    with tempfile.TemporaryDirectory() as tmp:
        recorders = {"telemetry-clean": lambda: telemetry_clean(args.out),
                     "telemetry-loss": lambda: telemetry_loss(args.out),
                     "alarm-restart": lambda: alarm_restart(args.out, Path(tmp)),
                     "websocket": lambda: websocket(args.out, Path(tmp)),
                     "alarm-retransmissions": lambda: alarm_retransmissions(args.out, Path(tmp)),
                     "spoofed-telemetry": lambda: spoofed(args.out),
                     "hl7-mllp": lambda: hl7_mllp(args.out),
                     "mqtt-qos": lambda: mqtt_qos(args.out)}
        for name in RECORDERS:
            if name in chosen:
                recorders[name]()
    with contextlib.suppress(FileNotFoundError):
        (args.out / ".gitkeep").unlink()


if __name__ == "__main__":
    main()
