"""Device credentials: one key file, read by the ward (to sign) and the station (to verify).

A shared key per *device*, not one for the whole ward: a key taken from one monitor then
speaks for that monitor only, and the station can retire it alone. Each key has an id (the
``key_id`` of a telemetry datagram's header, 1..255, and of an alarm channel's AUTH frame), so
keys can be **rotated**: :meth:`KeyFile.rotate` adds a new key and gives the old ones a
``retire_at`` time (now plus a grace period). Until then the station accepts both, so devices
can move to the new key one by one; after it, the old key is refused (``retired_key``).

The file is JSON (docs/PROTOCOL.md, "Device keys")::

    {"format": "vitalsim-keys", "version": 1,
     "devices": {"1001": [{"key_id": 1, "key": "<64 hex digits>", "retire_at": null}]}}

Keys come from :mod:`secrets`; the file is written readable by its owner only. This module
reads no clock: the time of a lookup or a rotation is passed in.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "vitalsim-keys"
VERSION = 1
KEY_BYTES = 32  # HMAC-SHA256's block-size-friendly key length (RFC 2104: at least the output)


class KeyFileError(ValueError):
    """The key file is missing, not JSON, or not in the format above; the message says where."""


class KeyRefused(Exception):
    """A key id the station will not accept for a device. ``reason`` is counted by the caller:
    ``unknown_key`` (the device has no key of that id) or ``retired_key`` (its grace period is
    over)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DeviceKey:
    key_id: int
    key: bytes = field(repr=False)  # never in a log line or a traceback
    retire_at: float | None = None  # seconds since the epoch after which it is refused


@dataclass
class KeyFile:
    """Every device's keys, newest key id last."""

    devices: dict[int, list[DeviceKey]] = field(default_factory=dict)

    @classmethod
    def generate(cls, device_ids: list[int] | range) -> KeyFile:
        """A fresh key (id 1) for each device."""
        return cls({d: [DeviceKey(1, secrets.token_bytes(KEY_BYTES))] for d in device_ids})

    def current(self, device_id: int) -> DeviceKey:
        """The key a device signs with: its newest. KeyError when it has none."""
        keys = self.devices.get(device_id)
        if not keys:
            raise KeyError(f"device {device_id} has no key in the key file")
        return keys[-1]

    def lookup(self, device_id: int, key_id: int, now: float) -> bytes:
        """The key ``key_id`` of ``device_id``, if the station may accept it at ``now``.
        Raises :class:`KeyRefused` otherwise."""
        for k in self.devices.get(device_id, ()):
            if k.key_id == key_id:
                if k.retire_at is not None and now >= k.retire_at:
                    raise KeyRefused("retired_key", f"key id {key_id} of device {device_id} "
                                     f"was retired {now - k.retire_at:.0f} s ago (its grace "
                                     "period after a rotation is over)")
                return k.key
        raise KeyRefused("unknown_key", f"device {device_id} has no key id {key_id}")

    def rotate(self, device_id: int, now: float, grace: float) -> DeviceKey:
        """Give ``device_id`` a new key (the next key id) and retire its older keys ``grace``
        seconds from ``now`` (a key already retiring sooner keeps its time). Returns it."""
        keys = self.devices.get(device_id, [])
        next_id = keys[-1].key_id + 1 if keys else 1
        if next_id > 255:
            raise ValueError(f"device {device_id} has used every key id (1..255)")
        retire = now + grace
        kept = [DeviceKey(k.key_id, k.key, retire if k.retire_at is None
                          else min(k.retire_at, retire)) for k in keys]
        new = DeviceKey(next_id, secrets.token_bytes(KEY_BYTES))
        self.devices[device_id] = [*kept, new]
        return new

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "devices": {
            str(d): [{"key_id": k.key_id, "key": k.key.hex(), "retire_at": k.retire_at}
                     for k in keys] for d, keys in sorted(self.devices.items())}}

    @classmethod
    def from_json(cls, obj: object, where: str = "key file") -> KeyFile:
        """Parse the format above; :class:`KeyFileError` names what is wrong and where."""
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise KeyFileError(f"{where}: not a key file (expected an object with "
                               f'"format": "{FORMAT}")')
        if obj.get("version") != VERSION:
            raise KeyFileError(f"{where}: version {obj.get('version')!r}; this code reads "
                               f"version {VERSION}")
        devices = obj.get("devices")
        if not isinstance(devices, dict):
            raise KeyFileError(f'{where}: "devices" must be an object of device id -> keys')
        out: dict[int, list[DeviceKey]] = {}
        for name, keys in devices.items():
            if not name.isdigit() or not 0 <= int(name) < 2**32:
                raise KeyFileError(f"{where}: device id {name!r} is not an integer 0..2**32-1")
            if not isinstance(keys, list) or not keys:
                raise KeyFileError(f"{where}: device {name}: a non-empty list of keys expected")
            parsed = []
            for i, k in enumerate(keys):
                at = f"{where}: device {name}, key {i}"
                if not isinstance(k, dict) or set(k) != {"key_id", "key", "retire_at"}:
                    raise KeyFileError(f"{at}: expected exactly key_id, key, retire_at")
                kid, hexkey, retire = k["key_id"], k["key"], k["retire_at"]
                if isinstance(kid, bool) or not isinstance(kid, int) or not 1 <= kid <= 255:
                    raise KeyFileError(f"{at}: key_id must be an integer 1..255, got {kid!r}")
                try:
                    key = bytes.fromhex(hexkey) if isinstance(hexkey, str) else b""
                except ValueError:
                    key = b""
                if len(key) < 16:
                    raise KeyFileError(f"{at}: key must be at least 32 hex digits (16 bytes)")
                if retire is not None and (isinstance(retire, bool) or not isinstance(
                        retire, int | float) or not math.isfinite(retire)):
                    raise KeyFileError(f"{at}: retire_at must be a time in seconds or null")
                parsed.append(DeviceKey(kid, key, retire))
            ids = [k.key_id for k in parsed]
            if ids != sorted(set(ids)):
                raise KeyFileError(f"{where}: device {name}: key ids must increase, got {ids}")
            out[int(name)] = parsed
        return cls(out)

    @classmethod
    def load(cls, path: str | Path) -> KeyFile:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise KeyFileError(f"{path}: not JSON: {exc}") from None
        return cls.from_json(obj, str(path))

    def save(self, path: str | Path) -> None:
        """Write the file readable and writable by its owner only (0600)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.to_json(), f, indent=1)
            f.write("\n")
        os.chmod(path, 0o600)


def main(argv: list[str] | None = None) -> None:
    """``python -m vitalsim.keys``: make a key file, or rotate a device's key in one.

    The one place this module reads the clock: a rotation's grace period starts now."""
    import argparse
    import time

    p = argparse.ArgumentParser(prog="python -m vitalsim.keys", description=main.__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="a key file with a fresh key for devices 1001..1000+N")
    new.add_argument("file")
    new.add_argument("--devices", type=int, required=True, metavar="N")
    rot = sub.add_parser("rotate", help="give DEVICE a new key; its old ones are refused "
                                        "after the grace period")
    rot.add_argument("file")
    rot.add_argument("device", type=int)
    rot.add_argument("--grace", type=float, default=3600.0,
                     help="seconds the old key is still accepted (default 3600)")
    args = p.parse_args(argv)
    if args.command == "new":
        if Path(args.file).exists():
            p.error(f"{args.file} exists; a new key file never overwrites one")
        KeyFile.generate(range(1001, 1001 + args.devices)).save(args.file)
        print(f"wrote keys for devices 1001..{1000 + args.devices} to {args.file}")
        return
    try:
        keys = KeyFile.load(args.file)
        if args.device not in keys.devices:
            p.error(f"device {args.device} has no key in {args.file}")
        new_key = keys.rotate(args.device, time.time(), args.grace)
    except (KeyFileError, ValueError) as exc:
        p.error(str(exc))
    keys.save(args.file)
    print(f"device {args.device}: new key id {new_key.key_id}; older keys refused after "
          f"{args.grace:g} s. Restart the station and the device to use it")


if __name__ == "__main__":
    main()
