"""A ward: many bedside monitors, each with its scenario, started and stopped together."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from dataclasses import dataclass
from pathlib import Path

from ..alarms import Limit
from ..clock import Clock, WallClock
from ..keys import KeyFile
from ..protocol.alarm_channel import AlarmSender
from ..scenarios import load_scenario, scenario_names
from .link import DeviceLink
from .monitor import BedsideMonitor


def client_context(cafile: str | Path) -> ssl.SSLContext:
    """A device's TLS settings: it trusts the station's certificate ``cafile`` alone, and
    checks that it names the host it dialled."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context

#: the order in which "mix" hands out scenarios: the interesting ones first
MIX_ORDER = ("stable_adult", "sepsis", "hypoxia", "af_rvr", "haemorrhage", "bradycardia",
             "hypertensive_crisis", "fever")


def assign_scenarios(spec: str | list[str], beds: int) -> list[str]:
    """Scenario names for ``beds`` beds from a spec: one name, a comma list, or "mix".

    A list is used in turn (bed 1 gets the first, bed 2 the second, and round again). Every name
    is checked, so a typo fails here with the list of known scenarios rather than later.
    """
    if beds < 1:
        raise ValueError(f"a ward needs at least one bed, got beds={beds}")
    names = spec if isinstance(spec, list) else [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["mix"]:
        known = scenario_names()
        names = [n for n in MIX_ORDER if n in known] + [n for n in known if n not in MIX_ORDER]
    for name in names:
        load_scenario(name)  # raises ScenarioError naming the known scenarios
    if not names:
        raise ValueError("no scenario given")
    return list(itertools.islice(itertools.cycle(names), beds))


@dataclass
class WardConfig:
    beds: int = 8
    scenario: str | list[str] = "mix"
    seed: int = 1
    speed: float = 1.0
    waves: bool = True
    key: bytes | None = None
    limits: tuple[Limit, ...] | None = None  # None: adult defaults
    # device credentials (vitalsim.keys): each device signs its telemetry with its newest key
    # in the file; with alarm_auth it also answers the alarm channel's CHALLENGE with it (a
    # station started with require_auth sends one; one without never does, so leave it off)
    keys: KeyFile | None = None
    alarm_auth: bool = False
    # a station with TLS on its alarm channel: the certificate (PEM) the devices trust
    tls_ca: str | Path | None = None


class Ward:
    """Bedside devices 1..N sending to one station. ``await start()``, ``await stop()``."""

    def __init__(self, config: WardConfig, host: str, udp_port: int, tcp_port: int, *,
                 clock: Clock | None = None) -> None:
        self.config = config
        clock = clock or WallClock()
        names = assign_scenarios(config.scenario, config.beds)
        # every device of this run boots now: its alarm ids carry this epoch, so a ward
        # started again against the same journal raises alarms the journal has never seen
        boot_id = round(clock.now() * 1_000_000)
        self.links = []
        for bed, name in enumerate(names, start=1):
            device_id = 1000 + bed
            key, key_id = config.key, 1
            if config.keys is not None:
                current = config.keys.current(device_id)  # KeyError names a missing device
                key, key_id = current.key, current.key_id
            sender = AlarmSender(device_id, bed, key=key if config.alarm_auth else None,
                                 key_id=key_id)
            self.links.append(DeviceLink(
                BedsideMonitor(device_id=device_id, bed=bed, scenario=name,
                               seed=config.seed * 1000 + bed, waves=config.waves,
                               key=key, key_id=key_id, limits=config.limits, boot_id=boot_id),
                host, udp_port, tcp_port, clock=clock, speed=config.speed, sender=sender,
                tls=None if config.tls_ca is None else client_context(config.tls_ca),
            ))

    @property
    def monitors(self) -> list[BedsideMonitor]:
        return [link.monitor for link in self.links]

    async def start(self) -> None:
        await asyncio.gather(*(link.start() for link in self.links))

    async def stop(self) -> None:
        await asyncio.gather(*(link.stop() for link in self.links))
