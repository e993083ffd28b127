"""Is a decoded message *plausible*? The checks that come after decoding, sans-I/O.

A datagram can decode perfectly and still make no sense: a heart rate of +inf, an SpO2 of
4.58e23, a send time a year ahead. The codec's job is the layout; these checks are the
station's judgement of the values, with the time passed in. Each failure raises
:class:`~vitalsim.protocol.telemetry.TelemetryError` with a reason word the station counts:
``bad_value`` (not finite, or outside the plausible range of its channel) or ``future``
(sent, or booted, further ahead of the receiver's clock than ``max_skew`` allows).
"""

from __future__ import annotations

import math

from .telemetry import Message, NumericsMessage, TelemetryError, WaveMessage

#: the plausible range of each numerics channel, inclusive: wider than any patient, narrower
#: than anything a sensor could mean
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "hr": (0.0, 350.0),
    "spo2": (0.0, 100.0),
    "rr": (0.0, 150.0),
    "temp": (10.0, 50.0),
    "nibp_sys": (0.0, 400.0),
    "nibp_dia": (0.0, 400.0),
    "nibp_map": (0.0, 400.0),
    "nibp_time": (0.0, 1e10),
    "etco2": (0.0, 150.0),
    "awrr": (0.0, 150.0),
    "abp_sys": (0.0, 400.0),
    "abp_dia": (0.0, 400.0),
    "abp_map": (0.0, 400.0),
}
#: the sample rates a waveform chunk may declare (samples per second)
WAVE_RATE_RANGE = (1, 10_000)
#: how far ahead of the receiver's clock a send time may be (seconds): clocks on a ward agree
#: to well under a second with NTP; more than this is a wrong clock or a forgery
MAX_SKEW = 2.0


def check_value(name: str, value: float | None) -> None:
    """Raise ``bad_value`` unless ``value`` is None (not available) or finite and in range."""
    if value is None:
        return
    low, high = NUMERIC_RANGES[name]
    if not math.isfinite(value) or not low <= value <= high:
        raise TelemetryError("bad_value", f"{name}={value!r} is not a finite number in "
                                          f"{low:g}..{high:g}")


def check_time(sent_at: float, now: float, max_skew: float = MAX_SKEW) -> None:
    """Raise ``future`` when ``sent_at`` is more than ``max_skew`` seconds after ``now``."""
    if not math.isfinite(sent_at) or sent_at - now > max_skew:
        raise TelemetryError("future", f"sent_at {sent_at:.3f} is {sent_at - now:.3f} s ahead of "
                                       f"the receiver's clock (at most {max_skew:g} s allowed)")


def check_boot(boot_id: int, now: float, max_skew: float = MAX_SKEW) -> None:
    """Raise ``future`` when the boot id (a start time in microseconds) is more than
    ``max_skew`` seconds after ``now``: a device cannot have started later than it sends, and
    a boot id far ahead would make every real datagram of the device look older (``old_boot``)."""
    if boot_id / 1_000_000 - now > max_skew:
        raise TelemetryError("future", f"boot id {boot_id} is {boot_id / 1_000_000 - now:.3f} s "
                                       f"ahead of the receiver's clock (at most {max_skew:g} s "
                                       "allowed)")


def check_after_boot(sent_at: float, boot_id: int, max_skew: float = MAX_SKEW) -> None:
    """Raise ``before_boot`` when a datagram says it was sent more than ``max_skew`` seconds
    before its device started (its boot id): no device measures before it is switched on, so
    such a reading (a forged one dated 1970, say) must not reach a chart, a FHIR Observation or
    the hospital's record. A boot id of 0 (a device that gives none) is not checked."""
    if boot_id and sent_at < boot_id / 1_000_000 - max_skew:
        raise TelemetryError("before_boot", f"sent_at {sent_at:.3f} is "
                                            f"{boot_id / 1_000_000 - sent_at:.3f} s before the "
                                            f"device's boot {boot_id} (at most {max_skew:g} s "
                                            "allowed): a reading cannot be older than its device")


def check_message(msg: Message, now: float, *, max_skew: float = MAX_SKEW) -> None:
    """Every check of one decoded message, the times first. Returns None when it passes."""
    check_time(msg.sent_at, now, max_skew)
    check_boot(msg.boot_id, now, max_skew)
    check_after_boot(msg.sent_at, msg.boot_id, max_skew)
    if isinstance(msg, NumericsMessage):
        for name in NUMERIC_RANGES:
            check_value(name, getattr(msg, name))
    elif isinstance(msg, WaveMessage):
        low, high = WAVE_RATE_RANGE
        if not low <= msg.rate <= high:
            raise TelemetryError("bad_value", f"rate={msg.rate} is not in {low}..{high}")
