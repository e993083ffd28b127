"""Station settings, in one object so that a test or a lab can make several stations at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vitalsim.keys import KeyFile

from .sessions import Operator


@dataclass
class StationConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080
    udp_port: int = 5005
    tcp_port: int = 5006
    journal_path: str | Path = ":memory:"
    history_seconds: int = 600  # numerics kept per bed (1 Hz)
    # the push policy (server.hub). A dashboard that keeps up is sent each change at once, up to
    # push_budget update messages a second on average and push_burst back to back; one that
    # falls behind gets what changed as one message when its write finishes, one over budget
    # at the next coalescing tick (push_hz a second) or as soon as the budget has room (latest
    # wins per bed, either way). push_hz
    # also paces the housekeeping: each tick judges 1/push_hz of the ward's beds (stale,
    # technical alarms)
    push_hz: float = 10.0
    push_budget: float = 200.0
    push_burst: int = 20
    wave_history_seconds: int = 30  # waveform chunks kept per bed and channel
    stale_after: float = 3.0  # seconds without numerics before a bed is shown as stale
    telemetry_timeout: float = 10.0  # seconds without numerics before TELEMETRY LOST
    client_alarm_queue: int = 256  # alarms a slow dashboard may lag behind before it is dropped
    # the kernel's send buffer per dashboard is part of its outgoing queue: keep it small, or
    # Linux grows it to megabytes and a stalled dashboard looks healthy for minutes
    client_send_buffer: int = 64 * 1024
    telemetry_keys: dict[int, bytes] | None = None  # key id -> key, the same for every device
    require_tag: bool = False
    # device credentials (issue 16): each device's own keys, from a key file the ward reads
    # too. A tagged datagram is verified with its device's key (retired keys are refused).
    # require_auth refuses untagged telemetry, and makes every alarm connection prove its
    # device's key (HELLO, CHALLENGE, AUTH) before it is taken for that device
    device_keys: KeyFile | None = None
    require_auth: bool = False
    # the anti-replay window (docs/PROTOCOL.md, reason `replay`). False only to show what it
    # prevents (lab 06): a replayed datagram is then stored again
    anti_replay: bool = True
    # dashboard sessions (issue 16, server/sessions.py): the operators who may log in, each
    # with a role and a token. None: no sessions, and the API and WebSocket answer anyone who
    # can reach the port (the station logs so at start, python -m server prints it).
    # python -m server turns them on unless told --no-auth
    operators: list[Operator] | None = None
    # origins besides the station's own whose pages may use the API and WebSocket (exact
    # "scheme://host:port" strings, e.g. a hub's origin when the dashboard is proxied)
    allowed_origins: tuple[str, ...] = ()
    # HTTPS for the dashboard and TLS for the alarm channel (server/tls.py): a PEM certificate
    # and its key (None: the key is in the certificate's file). None: plain HTTP and TCP
    tls_cert: str | Path | None = None
    tls_key: str | Path | None = None
    # True: vitals and waves are coalesced at push_hz and each message is encoded once for every
    # dashboard that shares a subscription. False: the naive design that the capacity benchmark
    # (python -m bench) measures against: one WebSocket message per datagram per
    # dashboard, each encoded for that dashboard, none replaced by a newer one
    coalesce: bool = True
    # SO_RCVBUF of the telemetry socket in bytes (None: the kernel's default, about 208 KiB on
    # Linux). A burst larger than it is dropped: 4 MiB holds a third of a second of 4,000 beds
    # with waveforms. The kernel caps it at net.core.rmem_max; /api/stats reports what it gave
    # (udp.receive_buffer, which Linux doubles for its bookkeeping)
    udp_receive_buffer: int | None = 4 << 20
    # freeze the ward's long-lived objects out of the garbage collector's full collections
    # as a ward of 256 beds or more grows (server.gc_pauses): a full collection over thousands
    # of beds held the loop for 80-140 ms. False: the collector as Python sets it up
    gc_freeze: bool = True
    # the boundary (issue 15). devices: device id -> bed, provisioned at start (a System adds
    # its ward's; Station.provision adds more); telemetry or a HELLO from any other device is
    # refused as unknown_device. max_beds bounds the beds, and so their memory
    devices: dict[int, int] | None = None
    max_beds: int = 1024
    max_clock_skew: float = 2.0  # seconds a send time may be ahead of the station's clock
    # liveness of an alarm connection: nothing heard for alarm_dead_after seconds (a device
    # sends a heartbeat every 2 s when quiet), or half a frame waiting for alarm_frame_timeout
    # seconds, closes it, and ALARM LINK LOST follows within a second
    alarm_dead_after: float = 6.0
    alarm_frame_timeout: float = 5.0
    # HTTP: a connection that sends no complete request header (or nothing at all) for this
    # long is closed; so is a request body that takes longer
    http_idle_timeout: float = 30.0
    # technical alarms raised per second at most; the rest wait for the next seconds, so a
    # whole ward losing its network at once does not bury a dashboard under alarms
    technical_raises_per_second: int = 20
    # alarm frames taken per second per alarm connection; beyond, the station reads no
    # further (TCP holds the rest back), so a flooding device cannot swamp the dashboards
    alarm_frames_per_second: float = 200.0
    # the HL7 v2 outbound interface (server/hl7_outbound.py): the hospital's MLLP receiver as
    # (host, port), None for off. Vitals go as ORU^R01 every hl7_interval seconds per bed,
    # alarms as ORU^R40 as they are journaled; an unanswered message is sent again after
    # hl7_ack_timeout seconds, an AE/AR answer or a reconnect after hl7_retry seconds
    hl7_target: tuple[str, int] | None = None
    hl7_interval: float = 60.0
    hl7_ack_timeout: float = 5.0
    hl7_retry: float = 1.0
    # seconds after an acknowledge when an alarm whose condition is still present sounds
    # again (IEC 60601-1-8 leaves the time to the maker; None: never, until raised anew)
    alarm_resound_after: float | None = 120.0


def ward_devices(beds: int, *, first_bed: int = 1) -> dict[int, int]:
    """The devices of a simulated ward of ``beds`` beds: device ``1000 + bed`` for each bed,
    as :class:`vitalsim.devices.Ward` numbers them. What a station provisions for its ward."""
    return {1000 + bed: bed for bed in range(first_bed, first_bed + beds)}
