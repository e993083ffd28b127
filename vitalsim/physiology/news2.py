"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017).

A pure function of one set of observations. Each parameter scores 0-3 from the chart's bands;
the total and the "3 in a single parameter" rule give the clinical-risk band. Values are read as
the chart reads them: whole numbers for rates, saturation and pressure, one decimal for
temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class News2Result:
    total: int
    band: str  # "low" | "low-medium" | "medium" | "high"
    scores: dict[str, int] = field(default_factory=dict)
    any_single_3: bool = False
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """False when a parameter was not measured: the total is then a lower bound."""
        return not self.missing


def _rr(v: int) -> int:
    return 3 if v <= 8 else 1 if v <= 11 else 0 if v <= 20 else 2 if v <= 24 else 3


def _spo2_scale1(v: int) -> int:
    return 3 if v <= 91 else 2 if v <= 93 else 1 if v <= 95 else 0


def _spo2_scale2(v: int, on_oxygen: bool) -> int:
    if v <= 83:
        return 3
    if v <= 85:
        return 2
    if v <= 87:
        return 1
    if v <= 92 or not on_oxygen:
        return 0
    return 1 if v <= 94 else 2 if v <= 96 else 3


def _systolic(v: int) -> int:
    return 3 if v <= 90 else 2 if v <= 100 else 1 if v <= 110 else 0 if v <= 219 else 3


def _pulse(v: int) -> int:
    return 3 if v <= 40 else 1 if v <= 50 else 0 if v <= 90 else 1 if v <= 110 else \
        2 if v <= 130 else 3


def _temp(v: float) -> int:
    return 3 if v <= 35.0 else 1 if v <= 36.0 else 0 if v <= 38.0 else 1 if v <= 39.0 else 2


def news2(*, rr: float | None, spo2: float | None, on_oxygen: bool = False,
          temp: float | None, systolic: float | None, hr: float | None,
          consciousness: str = "A", spo2_scale: int = 1) -> News2Result:
    """Score one set of observations. A missing (None) value scores 0 and is listed in
    ``missing``, so a partial score is never mistaken for a complete one. NaN is refused with a
    ValueError: it is not a measurement, and scoring it would give a number that looks like one."""
    if spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, got {spo2_scale!r}")
    if consciousness not in ("A", "C", "V", "P", "U"):
        raise ValueError(f"consciousness must be one of A, C, V, P, U; got {consciousness!r}")
    scores: dict[str, int] = {}
    missing: list[str] = []

    def score(name: str, value: float | None, fn) -> None:
        if value is not None and value != value:  # NaN is the only value unequal to itself
            # NaN fails every band's comparison, so it would score as if measured (a NaN
            # temperature scores 2): refuse it rather than guess what it meant
            argument = "hr" if name == "pulse" else name
            raise ValueError(f"{argument} is NaN; pass None for a value that was not measured")
        if value is None:
            missing.append(name)
            scores[name] = 0
        else:
            scores[name] = fn(value)

    score("rr", rr, lambda v: _rr(round(v)))
    if spo2_scale == 1:
        score("spo2", spo2, lambda v: _spo2_scale1(round(v)))
    else:
        score("spo2", spo2, lambda v: _spo2_scale2(round(v), on_oxygen))
    scores["air_or_oxygen"] = 2 if on_oxygen else 0
    score("systolic", systolic, lambda v: _systolic(round(v)))
    score("pulse", hr, lambda v: _pulse(round(v)))
    scores["consciousness"] = 0 if consciousness == "A" else 3
    score("temp", temp, lambda v: _temp(round(v, 1)))
    total = sum(scores.values())
    single3 = any(s == 3 for s in scores.values())
    if total >= 7:
        band = "high"
    elif total >= 5:
        band = "medium"
    elif single3:
        band = "low-medium"
    else:
        band = "low"
    return News2Result(total, band, scores, single3, tuple(missing))
