"""The whole system in one object: a station plus a ward of bedside devices.

This is what ``make demo``, the labs and the tests start. It runs on whatever asyncio loop is
already running (a notebook kernel's, a test's, or the demo's), and stops cleanly, so that a
notebook can start and stop it many times in one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitalsim.clock import Clock, WallClock
from vitalsim.devices import Ward, WardConfig
from vitalsim.impair import TcpImpairmentProxy, TcpSettings, UdpImpairmentProxy, UdpSettings
from vitalsim.waiting import wait_until

from .config import StationConfig, ward_devices
from .patients import ward_names
from .station import Station


@dataclass
class SystemConfig:
    station: StationConfig = field(default_factory=lambda: StationConfig(
        http_port=0, udp_port=0, tcp_port=0))
    ward: WardConfig = field(default_factory=WardConfig)
    # impairment between the ward and the station: None = a direct, perfect loopback
    udp_impairment: UdpSettings | None = None
    tcp_impairment: TcpSettings | None = None
    impairment_seed: int = 0


class System:
    """``async with System() as system:`` or ``await system.start()`` / ``await system.stop()``."""

    def __init__(self, config: SystemConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or SystemConfig()
        self.clock = clock or WallClock()
        self.station = Station(self.config.station, clock=self.clock)
        station = self.config.station
        if station.device_keys is not None and self.config.ward.keys is None:
            # the ward's devices are provisioned with the station's key file: they sign their
            # telemetry, and answer the alarm channel's CHALLENGE when the station asks one
            self.config.ward.keys = station.device_keys
            self.config.ward.alarm_auth = station.require_auth
        if station.tls_cert is not None and self.config.ward.tls_ca is None:
            self.config.ward.tls_ca = station.tls_cert  # the ward trusts its station's cert
        # the ward's devices are the station's provisioned devices (Ward numbers them
        # 1000 + bed); anything else that sends to it is refused as unknown_device
        for device_id, bed in ward_devices(self.config.ward.beds).items():
            self.station.provision(device_id, bed)
        self.ward: Ward | None = None
        self.udp_proxy: UdpImpairmentProxy | None = None
        self.tcp_proxy: TcpImpairmentProxy | None = None

    @classmethod
    def ephemeral(cls, beds: int = 4, scenario: str | list[str] = "mix", *, seed: int = 1,
                  speed: float = 1.0, waves: bool = True, impaired: bool = False,
                  **station: object) -> System:
        """A system on ephemeral ports, for labs and tests. With ``impaired=True`` the ward
        talks to the station through impairment proxies (perfect until their settings are
        changed: ``system.udp_proxy.settings.loss = 0.1``)."""
        cfg = SystemConfig(
            StationConfig(http_port=0, udp_port=0, tcp_port=0, **station),  # type: ignore[arg-type]
            WardConfig(beds=beds, scenario=scenario, seed=seed, speed=speed, waves=waves),
            udp_impairment=UdpSettings() if impaired else None,
            tcp_impairment=TcpSettings() if impaired else None,
            impairment_seed=seed,
        )
        return cls(cfg)

    async def start(self) -> System:
        await self.station.start()
        try:
            host = self.config.station.host
            udp_port, tcp_port = self.station.udp_port, self.station.tcp_port
            if self.config.udp_impairment is not None:
                self.udp_proxy = UdpImpairmentProxy((host, udp_port), self.config.udp_impairment,
                                                    seed=self.config.impairment_seed,
                                                    listen=(host, 0))
                udp_port = (await self.udp_proxy.start()).port
            if self.config.tcp_impairment is not None:
                self.tcp_proxy = TcpImpairmentProxy((host, tcp_port), self.config.tcp_impairment,
                                                    listen=(host, 0))
                tcp_port = (await self.tcp_proxy.start()).port
            if self.config.ward.beds == 0:  # the station alone; devices run elsewhere
                return self
            self.ward = Ward(self.config.ward, host, udp_port, tcp_port, clock=self.clock)
            names = ward_names([m.bed for m in self.ward.monitors], self.config.ward.seed)
            for monitor in self.ward.monitors:
                # a nurse reads a name; the scenario is for the instructor's view
                self.station.patients[monitor.bed] = names[monitor.bed]
                self.station.scenarios[monitor.bed] = monitor.model.scenario.title
                self.station.observations.cycles[monitor.bed] = monitor.model.nibp_interval
            await self.ward.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until every bed of the ward has been heard by the station (or time out)."""
        beds = self.config.ward.beds
        try:
            await wait_until(lambda: sum(1 for b in self.station.beds.beds.values() if b.latest)
                             >= beds, timeout=timeout, interval=0.05, what=f"{beds} beds")
        except TimeoutError:
            heard = sorted(b for b, s in self.station.beds.beds.items() if s.latest)
            raise TimeoutError(f"after {timeout}s the station had heard beds {heard} "
                               f"of {beds}") from None

    async def stop(self) -> None:
        if self.ward is not None:
            await self.ward.stop()
            self.ward = None
        for proxy in (self.udp_proxy, self.tcp_proxy):
            if proxy is not None:
                await proxy.stop()
        self.udp_proxy = self.tcp_proxy = None
        await self.station.stop()

    async def __aenter__(self) -> System:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return self.station.url

    def login_url(self, name: str | None = None) -> str:
        """The dashboard's URL with an operator's login token: what a lab shows
        (``course.links.dashboard_link(system.login_url())``), and the plain URL when the
        station has no sessions. See :meth:`Station.login_url`."""
        return self.station.login_url(name)

    def token(self, name: str | None = None) -> str | None:
        """An operator's token for ``Authorization: Bearer`` (None without sessions)."""
        return self.station.token(name)
