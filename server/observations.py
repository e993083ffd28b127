"""NEWS2 per observation set, as a ward charts it: not every second.

A nurse scores NEWS2 when a set of observations is taken. The monitor's set is complete when a
new cuff (NIBP) reading arrives, so that is when the chart scores one, from the numerics of that
moment; staff can also score on demand. Two of NEWS2's parameters are not measured by a monitor
at all: supplemental oxygen and consciousness (ACVPU). Staff enter them; until they do, the
score *assumes* air and alert, and says so in ``assumed``.

Also here, because it changes with the same cuff readings: when the latest NIBP was measured
(wall-clock, the stamp of the first datagram that carried it) and the cuff's cycle.

Per datagram this costs a dictionary lookup and a comparison; a score is computed only per cuff
reading or per staff action.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vitalsim.physiology import news2
from vitalsim.protocol import NumericsMessage

ACVPU = ("A", "C", "V", "P", "U")
ACVPU_WORDS = {"A": "alert", "C": "new confusion", "V": "responds to voice",
               "P": "responds to pain", "U": "unresponsive"}


@dataclass
class _BedChart:
    cuff: float | None = None  # the simulated time of the cuff reading last scored
    nibp_at: float | None = None  # wall-clock of that reading
    o2: bool | None = None  # supplemental oxygen as entered (None: not entered)
    acvpu: str | None = None
    entered_by: str | None = None
    entered_at: float | None = None
    sets: deque[dict] = field(default_factory=lambda: deque(maxlen=96))
    scored: int = 0  # sets scored so far (what a cached summary compares)


class ObservationChart:
    """Each bed's NEWS2 observation sets, newest last."""

    def __init__(self) -> None:
        self._beds: dict[int, _BedChart] = {}
        self.cycles: dict[int, float] = {}  # bed -> the cuff's automatic cycle, seconds

    def on_numerics(self, bed: int, msg: NumericsMessage) -> bool:
        """A bed's newest numerics; True when they bring a new cuff reading (or the bed's
        first numerics), and so a new observation set was scored."""
        chart = self._beds.get(bed)
        if chart is not None and chart.cuff == msg.nibp_time:
            return False
        if chart is None:
            chart = self._beds[bed] = _BedChart()
        chart.cuff = msg.nibp_time
        chart.nibp_at = msg.sent_at if msg.nibp_time is not None else None
        self._score(chart, msg, msg.sent_at, "cuff reading" if msg.nibp_time is not None
                    else "admission (no cuff reading yet)", None)
        return True

    def enter(self, bed: int, msg: NumericsMessage | None, *, at: float, user: str,
              supplemental_o2: bool | None = None, consciousness: str | None = None) -> dict:
        """Staff enter what a monitor cannot measure, and a set is scored now. Raises
        ValueError naming what was wrong."""
        if msg is None:
            raise ValueError(f"bed {bed} has sent no observations yet; nothing to score")
        if supplemental_o2 is not None and not isinstance(supplemental_o2, bool):
            raise ValueError(f"supplemental_o2={supplemental_o2!r}; expected true or false")
        if consciousness is not None and consciousness not in ACVPU:
            raise ValueError(f"consciousness={consciousness!r}; expected one of "
                             f"{', '.join(ACVPU)} (ACVPU)")
        chart = self._beds.setdefault(bed, _BedChart())
        if supplemental_o2 is not None:
            chart.o2 = supplemental_o2
        if consciousness is not None:
            chart.acvpu = consciousness
        chart.entered_by, chart.entered_at = user, at
        trigger = "on demand" if supplemental_o2 is None and consciousness is None \
            else "staff entry"
        return self._score(chart, msg, at, trigger, user)

    def _score(self, chart: _BedChart, m: NumericsMessage, at: float, trigger: str,
               user: str | None) -> dict:
        o2 = bool(chart.o2)
        acvpu = chart.acvpu or "A"
        result = news2(rr=m.rr, spo2=m.spo2, temp=m.temp, systolic=m.nibp_sys, hr=m.hr,
                       on_oxygen=o2, consciousness=acvpu)
        assumed = []
        if chart.o2 is None:
            assumed.append("air (no oxygen entered)")
        if chart.acvpu is None:
            assumed.append("alert (no ACVPU entered)")
        obs = {"at": at, "trigger": trigger, "by": user, "total": result.total,
               "band": result.band, "complete": result.complete,
               "missing": list(result.missing), "scores": dict(result.scores),
               "supplemental_o2": o2, "consciousness": acvpu, "assumed": assumed,
               "values": {"rr": m.rr, "spo2": m.spo2, "temp": m.temp, "nibp_sys": m.nibp_sys,
                          "hr": m.hr}}
        chart.sets.append(obs)
        chart.scored += 1
        return obs

    def version(self, bed: int) -> int:
        """Changes whenever the bed's latest set does."""
        chart = self._beds.get(bed)
        return 0 if chart is None else chart.scored

    def latest(self, bed: int) -> dict | None:
        chart = self._beds.get(bed)
        return chart.sets[-1] if chart is not None and chart.sets else None

    def sets(self, bed: int) -> list[dict]:
        chart = self._beds.get(bed)
        return list(chart.sets) if chart is not None else []

    def nibp(self, bed: int) -> tuple[float | None, str | None]:
        """When the bed's latest cuff reading was measured (wall clock), and the cuff's mode:
        "auto 5 min" for a reading on the cycle, "manual" for one requested between."""
        chart = self._beds.get(bed)
        if chart is None or chart.cuff is None:
            return None, None
        cycle = self.cycles.get(bed)
        if cycle is None:
            return chart.nibp_at, None
        on_cycle = abs(chart.cuff / cycle - round(chart.cuff / cycle)) < 1e-6
        return chart.nibp_at, f"auto {cycle / 60:g} min" if on_cycle else "manual"
