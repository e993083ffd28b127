"""The course's teaching constants and the ports its captures were recorded on, in one place.

The recorded captures (``course/recordings/*.pcap``) and the live recordings a lab makes use
the same fixed ports, so that ``vitalsim.layers.bind_ports(telemetry=RECORDED_TELEMETRY_PORT,
alarms=RECORDED_ALARM_PORT)`` decodes both; everything else the course starts uses port 0.
"""

from __future__ import annotations

from pathlib import Path

from vitalsim.alarms import FLAPPING_HR, Limit

#: the recorded captures, for learners who cannot sniff (their README says what each shows).
#: Package data of ``course`` (only the labs and their tests read them), so that a non-editable
#: install has them too; ``python -m course.captures`` rewrites them
RECORDINGS = Path(__file__).resolve().parent / "recordings"

#: UDP telemetry, as recorded in the captures
RECORDED_TELEMETRY_PORT = 15005
#: the TCP alarm channel, as recorded in the captures
RECORDED_ALARM_PORT = 15006
#: the lossy UDP proxy between ward and receiver in ``telemetry-loss.pcap``
RECORDED_PROXY_PORT = 15105
#: the station's HTTP and WebSocket port in ``websocket.pcap``
RECORDED_HTTP_PORT = 15080
#: the hospital's MLLP receiver in ``hl7-mllp.pcap``: 2575, IANA's port for HL7 over MLLP
RECORDED_HL7_PORT = 2575
#: the broker's port in ``mqtt-qos.pcap``: IANA's MQTT port, which Wireshark's and scapy's MQTT
#: dissectors take without being told
RECORDED_MQTT_PORT = 1883
#: the seed of every ward and impairment the capture generator starts
CAPTURE_SEED = 2026
#: a heart-rate limit every adult breaches at once (20-30 bpm, no delay): every bed is in alarm
#: from its first numerics, for the labs and tests that need alarms to act on
HR_ALARM_AT_ONCE = (Limit("hr", 20, 30, "high", delay=0.0),)

__all__ = ["CAPTURE_SEED", "FLAPPING_HR", "HR_ALARM_AT_ONCE", "RECORDED_ALARM_PORT",
           "RECORDED_HL7_PORT", "RECORDED_HTTP_PORT", "RECORDED_MQTT_PORT", "RECORDED_PROXY_PORT",
           "RECORDED_TELEMETRY_PORT"]
