"""The bedside monitor's logic, without sockets or clocks (both are passed in)."""

from __future__ import annotations

import math

from ..alarms import AlarmMonitor, Limit, alarm_inputs, default_limits
from ..physiology import WAVE_RATES, Numerics, PatientModel
from ..protocol.alarm_channel import AlarmMessage
from ..protocol.stats import SEQ_MOD
from ..protocol.telemetry import MAX_WAVE_SAMPLES, NumericsMessage, WaveMessage, encode


class BedsideMonitor:
    """One bed's monitor: samples its patient, numbers its datagrams, watches its alarm limits.

    Call :meth:`poll` with the simulated time and the wall time; it returns the datagrams that are
    due (numerics once per simulated second, each waveform in chunks of ``wave_chunk`` seconds) and
    any alarm events. Numerics go out at simulated seconds 0, 1, 2, ... exactly, so a run is
    reproducible whatever the caller's tick rate.
    """

    def __init__(self, device_id: int, bed: int, scenario: str, *, seed: int,
                 wave_chunk: float = 0.25, waves: bool = True, key: bytes | None = None,
                 key_id: int = 1, limits: tuple[Limit, ...] | None = None,
                 boot_id: int | None = None) -> None:
        self.device_id = device_id
        self.bed = bed
        # this run of the device: in every alarm id (see AlarmMonitor) and every datagram's
        # header, so that the station tells this run from an earlier one; 0 when none is given
        self.boot_id = boot_id
        self.model = PatientModel(scenario, seed=seed)
        self.alarms = AlarmMonitor(device_id, bed, limits if limits is not None
                                   else default_limits(), boot_id=boot_id)
        self.wave_chunk = wave_chunk
        self.waves = waves
        self.key = key
        self.key_id = key_id
        self.seq = 0
        self._next_numerics = 0  # next whole simulated second to report
        # the channels this patient's sensors give (capnograph, arterial line add theirs)
        self.channels = {ch: WAVE_RATES[ch] for ch in self.model.channels}
        self._next_index = {ch: 0 for ch in self.channels}
        self.latest: Numerics | None = None

    @property
    def scenario_name(self) -> str:
        return self.model.scenario.name

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % SEQ_MOD
        return seq

    def poll(self, sim_t: float, wall_now: float) -> tuple[list[bytes], list[AlarmMessage]]:
        """Everything due up to simulated time ``sim_t``; ``wall_now`` stamps what is sent."""
        datagrams: list[bytes] = []
        events: list[AlarmMessage] = []
        while self._next_numerics <= sim_t:
            n = self.model.numerics(float(self._next_numerics))
            self._next_numerics += 1
            self.latest = n
            datagrams.append(self._encode(self._numerics_message(n, wall_now)))
            events.extend(self.alarms.update(alarm_inputs(n), n.t, stamp=wall_now,
                                             flags=int(n.flags)))
        if self.waves:
            flags = int(self.latest.flags) if self.latest else 0
            for channel, rate in self.channels.items():
                available = math.floor(sim_t * rate)
                start = self._next_index[channel]
                if available - start < rate * self.wave_chunk:
                    continue
                samples = self.model.waveform(channel, start, available - start)
                for off in range(0, len(samples), MAX_WAVE_SAMPLES):
                    part = samples[off : off + MAX_WAVE_SAMPLES]
                    datagrams.append(self._encode(WaveMessage(
                        self.device_id, self.bed, self._next_seq(), wall_now, flags,
                        channel, rate, start + off, part, self.boot_id or 0)))
                self._next_index[channel] = available
        return datagrams, events

    def _numerics_message(self, n: Numerics, wall_now: float) -> NumericsMessage:
        return NumericsMessage(
            self.device_id, self.bed, self._next_seq(), wall_now, int(n.flags),
            n.hr, n.spo2, n.rr, n.temp, n.nibp_sys, n.nibp_dia, n.nibp_map, n.nibp_time,
            self.boot_id or 0, n.rhythm, n.pvc_per_min, n.etco2, n.awrr, n.abp_sys, n.abp_dia,
            n.abp_map,
        )

    def _encode(self, msg: NumericsMessage | WaveMessage) -> bytes:
        return encode(msg, key=self.key, key_id=self.key_id)
