"""The same telemetry messages as JSON: readable, self-describing, and bigger and slower.

It exists so that a lab can put the two encodings side by side: bytes per datagram, and the cost
of parsing. It follows the binary codec's rules: one error type, :class:`TelemetryError`, with a
reason word, and nothing else is ever raised on bad input.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..rhythms import RHYTHM_NAMES
from .telemetry import CHANNELS, VERSION, Message, NumericsMessage, TelemetryError, WaveMessage

_COMMON = ("device_id", "bed", "seq", "sent_at", "flags")  # then boot_id, last
_NUMERIC_VALUES = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "nibp_time")
_V3_VALUES = ("etco2", "awrr", "abp_sys", "abp_dia", "abp_map")  # after boot_id, as in the message
_LIMITS = {"device_id": 2**32 - 1, "bed": 2**16 - 1, "seq": 2**32 - 1, "flags": 255,
           "boot_id": 2**64 - 1}


def encode_json(msg: Message) -> bytes:
    """One message as compact UTF-8 JSON."""
    out: dict[str, Any] = {"v": VERSION}
    if isinstance(msg, NumericsMessage):
        out["type"] = "numerics"
        out.update({k: getattr(msg, k) for k in _COMMON + _NUMERIC_VALUES})
        out["boot_id"] = msg.boot_id
        out.update({k: getattr(msg, k) for k in ("rhythm", "pvc_per_min", *_V3_VALUES)})
    elif isinstance(msg, WaveMessage):
        out["type"] = "wave"
        out.update({k: getattr(msg, k) for k in _COMMON})
        out.update(channel=msg.channel, rate=msg.rate, first_index=msg.first_index,
                   samples=np.asarray(msg.samples).astype(int).tolist(), boot_id=msg.boot_id)
    else:
        raise TypeError(f"cannot encode {type(msg).__name__}")
    return json.dumps(out, separators=(",", ":"), allow_nan=False).encode()


def _int(obj: dict, key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _LIMITS[key]:
        raise TelemetryError("bad_value", f"{key}={value!r}; expected an integer 0..{_LIMITS[key]}")
    return value


def _number(obj: dict, key: str, *, optional: bool) -> float | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TelemetryError("bad_value", f"{key}={value!r}; expected a number"
                             + (" or null" if optional else ""))
    return float(value)


def decode_json(data: bytes) -> Message:
    """Parse one JSON datagram. Raises :class:`TelemetryError` and nothing else."""
    try:
        obj = json.loads(bytes(data))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise TelemetryError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise TelemetryError("bad_json", f"expected a JSON object, got {type(obj).__name__}")
    if obj.get("v") != VERSION:
        raise TelemetryError("bad_version", f"v={obj.get('v')!r}, this decoder speaks {VERSION}")
    common = (_int(obj, "device_id"), _int(obj, "bed"), _int(obj, "seq"),
              _number(obj, "sent_at", optional=False), _int(obj, "flags"))
    boot_id = _int(obj, "boot_id")
    kind = obj.get("type")
    if kind == "numerics":
        values = [_number(obj, k, optional=True) for k in _NUMERIC_VALUES]
        rhythm = obj.get("rhythm")
        if rhythm is not None and rhythm not in RHYTHM_NAMES:
            raise TelemetryError("bad_rhythm", f"rhythm={rhythm!r}; expected null or one of "
                                 f"{RHYTHM_NAMES}")
        pvc = obj.get("pvc_per_min")
        if pvc is not None and (isinstance(pvc, bool) or not isinstance(pvc, int)
                                or not 0 <= pvc <= 254):
            raise TelemetryError("bad_value", f"pvc_per_min={pvc!r}; expected null or 0..254")
        extra = [_number(obj, k, optional=True) for k in _V3_VALUES]
        return NumericsMessage(*common, *values, boot_id, rhythm, pvc,  # type: ignore[arg-type]
                               *extra)
    if kind == "wave":
        channel = obj.get("channel")
        if channel not in CHANNELS:
            raise TelemetryError("bad_channel", f"channel={channel!r}; expected one of {CHANNELS}")
        rate, first = obj.get("rate"), obj.get("first_index")
        for key, value, top in (("rate", rate, 2**16 - 1), ("first_index", first, 2**32 - 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise TelemetryError("bad_value", f"{key}={value!r}; expected 0..{top}")
        samples = obj.get("samples")
        if not isinstance(samples, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and -32768 <= x <= 32767
                for x in samples):
            raise TelemetryError("bad_value", "samples must be a list of int16 integers")
        return WaveMessage(*common, channel, rate, first,  # type: ignore[arg-type]
                           np.asarray(samples, dtype=np.int16), boot_id)
    raise TelemetryError("bad_type", f"type={kind!r}; expected 'numerics' or 'wave'")
