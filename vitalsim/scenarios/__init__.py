"""Scenarios as data: one TOML file per clinical story, loaded and checked against a schema.

A scenario has a baseline (the patient on admission) and a timeline of events: ``ramp`` (a value
moves linearly to a target over a time), ``step`` (it jumps), ``rhythm`` (e.g. into AF, or VT
degenerating into VF), ``pvcs`` (ventricular ectopics from now on, ``per_min`` of them),
``apnoea`` (no breathing for ``duration`` seconds) and ``fault`` (a sensor problem for a while:
probe off, lead off, motion artefact). ``capnography`` and ``arterial_line`` say which extra
sensors the patient has (they add the ETCO2 and ABP numerics and the co2 and abp waves). A file
that does not fit the schema gets a :class:`ScenarioError` naming the file, the field and what
was expected.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..rhythms import RHYTHM_NAMES

PARAMETERS = ("hr", "spo2", "rr", "temp", "sys", "dia", "etco2")
#: baseline values a scenario may leave out: end-tidal CO2 of a healthy adult, mmHg
OPTIONAL_BASELINE = {"etco2": 38.0}
RHYTHMS = RHYTHM_NAMES
FAULTS = ("probe_off", "lead_off", "artifact")
EVENT_KINDS = ("ramp", "step", "rhythm", "pvcs", "apnoea", "fault")
MAX_PVC_PER_MIN = 30

#: (low, high) a baseline or target value must lie in: physiological bounds
BOUNDS = {"hr": (20, 250), "spo2": (50, 100), "rr": (4, 60), "temp": (32, 42),
          "sys": (50, 260), "dia": (25, 160), "etco2": (5, 90)}


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message names the file and the field."""


@dataclass(frozen=True)
class Event:
    at: float  # seconds after admission
    kind: str
    parameter: str | None = None
    to: float | None = None
    over: float = 0.0
    rhythm: str | None = None
    fault: str | None = None
    duration: float = 0.0
    per_min: float = 0.0  # pvcs: ectopics per minute


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str  # the clinical sentence
    baseline: dict[str, float]
    rhythm: str
    events: tuple[Event, ...]
    on_oxygen: bool = False
    source: str = ""
    capnography: bool = False  # an ETCO2 sampling line: the etco2 numeric and co2 wave
    arterial_line: bool = False  # an arterial cannula: the invasive ABP numerics and abp wave


def _package_dir() -> Path:
    return Path(str(resources.files(__package__)))


def scenario_names() -> list[str]:
    """Names of the scenarios shipped with vitalsim, sorted."""
    return sorted(p.stem for p in _package_dir().glob("*.toml"))


def _field(where: str, table: dict, key: str, kind: type | tuple[type, ...], expected: str):
    if key not in table:
        raise ScenarioError(f"{where}: missing field '{key}' (expected {expected})")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ScenarioError(f"{where}: field '{key}' is {value!r}; expected {expected}")
    return value


def _number_in(where: str, key: str, value: object, param: str) -> float:
    lo, hi = BOUNDS[param]
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ScenarioError(f"{where}: field '{key}' is {value!r}; expected a number in "
                            f"{lo}..{hi} for {param}")
    return float(value)


def _parse(data: dict, source: str, name: str) -> Scenario:
    title = _field(source, data, "title", str, "a short title (string)")
    description = _field(source, data, "description", str, "one clinical sentence (string)")
    base = _field(source, data, "baseline", dict, f"a table with {', '.join(PARAMETERS)}")
    baseline = {}
    for p in PARAMETERS:
        if p not in base and p in OPTIONAL_BASELINE:
            baseline[p] = OPTIONAL_BASELINE[p]
            continue
        if p not in base:
            raise ScenarioError(f"{source}: missing field 'baseline.{p}' (expected a number)")
        baseline[p] = _number_in(source, f"baseline.{p}", base[p], p)
    unknown = set(base) - set(PARAMETERS)
    if unknown:
        raise ScenarioError(f"{source}: unknown field(s) baseline.{sorted(unknown)}; "
                            f"expected only {PARAMETERS}")
    rhythm = data.get("rhythm", "sinus")
    if rhythm not in RHYTHMS:
        raise ScenarioError(f"{source}: field 'rhythm' is {rhythm!r}; expected one of {RHYTHMS}")
    events = []
    for i, ev in enumerate(data.get("events", [])):
        where = f"{source}: events[{i}]"
        if not isinstance(ev, dict):
            raise ScenarioError(f"{where} is {ev!r}; expected a table")
        at = _field(where, ev, "at", (int, float), "seconds after admission (number >= 0)")
        if at < 0:
            raise ScenarioError(f"{where}: field 'at' is {at}; expected a number >= 0")
        kind = _field(where, ev, "kind", str, f"one of {EVENT_KINDS}")
        if kind in ("ramp", "step"):
            param = _field(where, ev, "parameter", str, f"one of {PARAMETERS}")
            if param not in PARAMETERS:
                raise ScenarioError(f"{where}: field 'parameter' is {param!r}; "
                                    f"expected one of {PARAMETERS}")
            to = _number_in(where, "to", ev.get("to"), param)
            over = 0.0
            if kind == "ramp":
                over = float(_field(where, ev, "over", (int, float), "seconds (number > 0)"))
                if over <= 0:
                    raise ScenarioError(f"{where}: field 'over' is {over}; expected seconds > 0")
            events.append(Event(float(at), kind, parameter=param, to=to, over=over))
        elif kind == "rhythm":
            r = _field(where, ev, "rhythm", str, f"one of {RHYTHMS}")
            if r not in RHYTHMS:
                raise ScenarioError(f"{where}: field 'rhythm' is {r!r}; expected one of {RHYTHMS}")
            events.append(Event(float(at), kind, rhythm=r))
        elif kind == "pvcs":
            n = _field(where, ev, "per_min", (int, float), f"0..{MAX_PVC_PER_MIN} a minute")
            if not 0 <= n <= MAX_PVC_PER_MIN:
                raise ScenarioError(f"{where}: field 'per_min' is {n}; expected "
                                    f"0..{MAX_PVC_PER_MIN} a minute")
            events.append(Event(float(at), kind, per_min=float(n)))
        elif kind == "apnoea":
            d = _field(where, ev, "duration", (int, float), "seconds (number > 0)")
            if d <= 0:
                raise ScenarioError(f"{where}: field 'duration' is {d}; expected seconds > 0")
            events.append(Event(float(at), kind, duration=float(d)))
        elif kind == "fault":
            f = _field(where, ev, "fault", str, f"one of {FAULTS}")
            if f not in FAULTS:
                raise ScenarioError(f"{where}: field 'fault' is {f!r}; expected one of {FAULTS}")
            d = _field(where, ev, "duration", (int, float), "seconds (number > 0)")
            if d <= 0:
                raise ScenarioError(f"{where}: field 'duration' is {d}; expected seconds > 0")
            events.append(Event(float(at), kind, fault=f, duration=float(d)))
        else:
            raise ScenarioError(f"{where}: field 'kind' is {kind!r}; expected one of "
                                f"{EVENT_KINDS}")
    switches = {}
    for key in ("on_oxygen", "capnography", "arterial_line"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise ScenarioError(f"{source}: field '{key}' is {value!r}; expected true/false")
        switches[key] = value
    return Scenario(name, title, description, baseline, rhythm,
                    tuple(sorted(events, key=lambda e: e.at)), switches["on_oxygen"], source,
                    switches["capnography"], switches["arterial_line"])


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """A shipped scenario by name (e.g. "sepsis"), or a TOML file by path."""
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
    else:
        path = _package_dir() / f"{text}.toml"
        if not path.is_file():
            raise ScenarioError(f"unknown scenario {text!r}; known scenarios: "
                                f"{', '.join(scenario_names())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return _parse(data, str(path), path.stem)
