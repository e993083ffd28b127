"""A ward replayed on virtual time: each bed's numerics, its monitor's alarms, and NEWS2.

Why this exists: a bedside monitor decides its alarms from its own numerics, on *simulated* time
(see :mod:`vitalsim.alarms`). The same scenario and seed therefore give the same numerics and the
same alarms, with the same alarm ids, whether the bed ran behind real sockets at 300 times real
speed or here, an hour of it in a fraction of a second. Lab 05 uses these replays twice: as
deterministic material for its exercises, and as the ground truth that the live system's alarms
are compared with (what should have reached the dashboard, and when the condition began).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from vitalsim.alarms import ALARM_INPUTS, LABELS, AlarmMonitor, Limit, default_limits
from vitalsim.physiology import news2

from .stretch import simulate

#: the numerics a bedside monitor watches against its limits (vitalsim.alarms.alarm_inputs)
ALARM_PARAMETERS = ALARM_INPUTS
_PARAMETER_OF = {label: parameter for parameter, label in LABELS.items()}

#: NEWS2 aggregate scores at which the RCP chart asks for a response: 5 urgent, 7 emergency
NEWS2_URGENT = 5
NEWS2_EMERGENCY = 7


def _value(x: object) -> float | None:
    if x is None:
        return None
    v = float(x)  # type: ignore[arg-type]
    return None if math.isnan(v) else v


def parameter_of(condition: str) -> str:
    """The numeric an alarm condition is about: "NIBP SYS LOW" -> "nibp_sys"."""
    label = condition.rsplit(" ", 1)[0]
    return _PARAMETER_OF.get(label, label.lower())


@dataclass(frozen=True)
class BedReplay:
    """One bed on virtual time. ``numerics`` is indexed by simulated second ``t``; ``alarms`` has
    one row per alarm event (raised or cleared) with the simulated time ``t`` it happened."""

    bed: int
    scenario: str
    seed: int
    numerics: pd.DataFrame
    alarms: pd.DataFrame
    limits: tuple[Limit, ...]

    def limit(self, parameter: str, condition: str | None = None) -> Limit:
        """The limit on ``parameter`` (the first, when it has several, as HR has its yellow
        limits and its red extremes), or the one that raises ``condition``."""
        for lim in self.limits:
            if lim.parameter == parameter and (
                    condition is None or condition in (lim.condition_for("low"),
                                                       lim.condition_for("high"))):
                return lim
        raise KeyError(f"no alarm limit for {parameter!r} ({condition or 'any condition'}); "
                       f"limits are for {[lim.parameter for lim in self.limits]}")


ALARM_COLUMNS = ["t", "alarm_id", "bed", "condition", "parameter", "priority", "state", "value",
                 "limit", "delay"]


def replay_bed(scenario: str, *, seed: int, duration: float, bed: int = 1,
               device_id: int | None = None,
               limits: Iterable[Limit] | None = None,
               boot_id: int | None = None) -> BedReplay:
    """Run one bed's patient for ``duration`` simulated seconds and feed its numerics, one a
    second, to the same alarm logic the bedside monitor runs. ``device_id`` defaults to the
    ward's numbering (1000 + bed), so alarm ids match those of a live ward."""
    device_id = 1000 + bed if device_id is None else device_id
    limits = tuple(default_limits() if limits is None else limits)
    numerics = simulate(scenario, seed=seed, duration=duration, waves=False).to_dataframe()
    monitor = AlarmMonitor(device_id, bed, limits, boot_id=boot_id)  # a live device's boot id
    delays = {lim.condition_for(side): lim.delay for lim in limits for side in ("low", "high")}
    rows = []
    columns = [numerics[p].to_numpy() for p in ALARM_PARAMETERS]
    flags = numerics["flags"].to_numpy()
    for i, t in enumerate(numerics.index):
        values = {p: (col[i] if p == "rhythm" else _value(col[i]))
                  for p, col in zip(ALARM_PARAMETERS, columns, strict=True)}
        for ev in monitor.update(values, float(t), flags=int(flags[i])):
            rows.append((float(t), ev.alarm_id, bed, ev.condition, ev.parameter, ev.priority,
                         ev.state, ev.value, ev.limit, delays[ev.condition]))
    alarms = pd.DataFrame(rows, columns=ALARM_COLUMNS)
    return BedReplay(bed, scenario, seed, numerics, alarms, limits)


def replay_ward(scenarios: Sequence[str], *, seed: int = 1, duration: float = 3600.0,
                limits: Iterable[Limit] | None = None) -> dict[int, BedReplay]:
    """Beds 1..N seeded as :class:`vitalsim.devices.Ward` seeds them (``seed * 1000 + bed``), so
    the replay is the very patient a live ward with the same ``seed`` would have."""
    limits = None if limits is None else tuple(limits)
    return {bed: replay_bed(name, seed=seed * 1000 + bed, duration=duration, bed=bed,
                            limits=limits)
            for bed, name in enumerate(scenarios, start=1)}


def breach_onset(values: pd.Series, limit: Limit, raised_at: float) -> float:
    """When the condition behind an alarm began: the first sample of the unbroken run of
    out-of-limit samples that ends at ``raised_at`` (a missing value breaks the run, as it
    resets the monitor's own timer). Reference answer for lab 05's first exercise."""
    window = values.loc[:raised_at]
    onset: float | None = None
    for t, v in zip(reversed(window.index), reversed(window.to_numpy()), strict=True):
        value = _value(v)
        if value is None or limit.breach(value) is None:
            break
        onset = float(t)
    if onset is None:
        raise ValueError(f"{limit.parameter} is not out of its limits at t={raised_at}")
    return onset


def with_onsets(replay: BedReplay) -> pd.DataFrame:
    """The replay's raised limit alarms with the onset of each condition and the wait in
    between. (Rhythm alarms and apnoea, which watch no numeric, have no parameter, and are
    left out.)"""
    alarms = replay.alarms
    raised = alarms[(alarms["state"] == "raised") & alarms["parameter"].notna()].copy()
    raised["onset"] = [breach_onset(replay.numerics[row.parameter],
                                    replay.limit(row.parameter, row.condition), row.t)
                       for row in raised.itertuples()]
    raised["waited"] = raised["t"] - raised["onset"]
    return raised.reset_index(drop=True)


def news2_frame(numerics: pd.DataFrame) -> pd.DataFrame:
    """NEWS2 for every second of a bed's numerics, as the station computes it from the latest
    observations (air, alert: the monitor measures neither oxygen nor consciousness). Columns
    ``total`` and ``band``, indexed like ``numerics``."""
    scores = [news2(rr=_value(r.rr), spo2=_value(r.spo2), temp=_value(r.temp),
                    systolic=_value(r.nibp_sys), hr=_value(r.hr))
              for r in numerics.itertuples()]
    return pd.DataFrame({"total": [s.total for s in scores], "band": [s.band for s in scores]},
                        index=numerics.index)


def first_time(mask: pd.Series) -> float | None:
    """The index of the first True in a boolean series, or None if it is never True."""
    hits = mask[mask.astype(bool)]
    return None if hits.empty else float(hits.index[0])


def early_warning(replays: dict[int, BedReplay]) -> pd.DataFrame:
    """Per bed: when NEWS2 first reached the urgent (5) and emergency (7) thresholds, and when
    the first alarm and the first high-priority alarm were raised, in simulated minutes."""
    rows = []
    for bed, rp in sorted(replays.items()):
        score = news2_frame(rp.numerics)["total"]
        raised = rp.alarms[rp.alarms["state"] == "raised"]
        high = raised[raised["priority"] == "high"]

        def minutes(t: float | None) -> float | None:
            return None if t is None else round(t / 60, 1)

        rows.append({
            "bed": bed, "scenario": rp.scenario,
            "news2_5_min": minutes(first_time(score >= NEWS2_URGENT)),
            "news2_7_min": minutes(first_time(score >= NEWS2_EMERGENCY)),
            "first_alarm_min": minutes(None if raised.empty else float(raised["t"].iloc[0])),
            "first_alarm": None if raised.empty else raised["condition"].iloc[0],
            "first_high_min": minutes(None if high.empty else float(high["t"].iloc[0])),
        })
    return pd.DataFrame(rows).set_index("bed")
