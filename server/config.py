"""Station settings, in one object so that a test or a lab can make several stations at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class StationConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080
    udp_port: int = 5005
    tcp_port: int = 5006
    journal_path: str | Path = ":memory:"
    history_seconds: int = 600  # numerics kept per bed (1 Hz)
    push_hz: float = 4.0  # coalesced dashboard updates per second
    wave_history_seconds: int = 30  # waveform chunks kept per bed and channel
    stale_after: float = 3.0  # seconds without numerics before a bed is shown as stale
    telemetry_timeout: float = 10.0  # seconds without numerics before TELEMETRY LOST
    client_alarm_queue: int = 256  # alarms a slow dashboard may lag behind before it is dropped
    # the kernel's send buffer per dashboard is part of its outgoing queue: keep it small, or
    # Linux grows it to megabytes and a stalled dashboard looks healthy for minutes
    client_send_buffer: int = 64 * 1024
    telemetry_keys: dict[int, bytes] | None = None
    require_tag: bool = False
