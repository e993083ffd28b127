"""Small named checks, in the manner of CS144's checkpoints.

A check says what it expected and why, and what it got: "expected 0.100 ± 0.02 because the proxy
drops one datagram in ten, got 0.310". A learner's exercise that still raises NotImplementedError
is reported as "not done yet", never as a crash.

The feedback is written to be acted on:

- expected and got are printed the same way: numbers at one precision (enough to show the
  tolerance), or with a format the check states (``fmt="#06x"`` for a bit pattern, so that a
  byte swap shows as 0x5653 against 0x5356 rather than 22099 against 21334);
- a structured answer (a list, set or dict) that is wrong says what is missing and what is extra,
  item by item, instead of printing both whole;
- a PASS line is short: the value only when it fits in a few words;
- an exception in the learner's code names the line it came from, once: later checks of the same
  group that hit the same exception say so in a few words.
"""

from __future__ import annotations

import importlib.util
import math
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a value longer than this is left out of a PASS line, and cut short in a FAIL line's items
SHORT = 40
ITEM = 100
#: how many missing, extra or different items a FAIL line lists before "and N more"
LISTED = 5


class NotDoneYet(Exception):
    """Raised by a check whose exercise is still a stub."""


def not_done_yet(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a learner's function; turn its NotImplementedError into :class:`NotDoneYet`."""
    try:
        return func(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotDoneYet(str(exc) or func.__name__) from None


def _library_folders() -> tuple[str, ...]:
    """Where code that is not the learner's lives: Python's own library, installed packages, and
    the course's packages. Anything else (a notebook cell) is the learner's."""
    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    folders.add(str(Path(__file__).resolve().parent))             # this package, course
    for name in ("vitalsim", "server", "course"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            folders.update(str(Path(p).resolve()) for p in spec.submodule_search_locations)
    return tuple(sorted(folders))


_LIBRARY = _library_folders()


def _is_learners(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return False
    try:
        resolved = str(Path(filename).resolve())
    except (OSError, ValueError):
        resolved = filename
    return not any(resolved == f or resolved.startswith(f.rstrip("/") + "/") for f in _LIBRARY)


def where(exc: BaseException) -> str:
    """The line of the learner's code an exception came from (the deepest frame that is not
    Python's, a library's or the course's), as ``"in parse_header, line 4: return ..."``, or
    ``""`` when it came from elsewhere entirely."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_learners(f.filename)]
    if not frames:
        return ""
    last = frames[-1]
    code = (last.line or "").strip()
    place = f"line {last.lineno}" if last.name in ("<module>", "<lambda>") \
        else f"in {last.name}, line {last.lineno}"
    return place + (f": {_cut(code, ITEM)}" if code else "")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _decimals(expected: float, actual: float, tolerance: float) -> int:
    """One precision for both numbers: enough decimals to show the tolerance, and more if the
    two would otherwise print alike."""
    if tolerance > 0:
        digits = max(0, 1 - math.floor(math.log10(tolerance)))
    else:
        digits = max(_repr_decimals(expected), _repr_decimals(actual))
    digits = min(digits, 12)
    while digits < 15 and expected != actual and math.isfinite(expected) \
            and math.isfinite(actual) and f"{expected:.{digits}f}" == f"{actual:.{digits}f}":
        digits += 1
    return digits


def _repr_decimals(x: float) -> int:
    if isinstance(x, int) or not math.isfinite(x):
        return 0
    text = repr(float(x))
    if "e" in text:
        return 12
    return len(text.split(".")[1]) if "." in text else 0


def _fmt_number(x: Any, digits: int) -> str:
    if isinstance(x, int) and digits == 0:
        return str(x)
    return f"{float(x):.{digits}f}"


def _diff(expected: Any, actual: Any) -> str | None:
    """What is missing and what is extra, for two collections of the same kind of thing; None
    when the two are not both collections."""
    def listing(items: list[Any]) -> str:
        shown = ", ".join(_cut(repr(i), ITEM) for i in items[:LISTED])
        more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
        return f"[{shown}]{more}"

    if isinstance(expected, dict) and isinstance(actual, dict):
        parts = []
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        different = [f"{k!r}: expected {_cut(repr(expected[k]), ITEM)}, got "
                     f"{_cut(repr(actual[k]), ITEM)}"
                     for k in expected if k in actual and expected[k] != actual[k]]
        if missing:
            parts.append(f"missing keys {listing(missing)}")
        if extra:
            parts.append(f"extra keys {listing(extra)}")
        if different:
            more = f" and {len(different) - LISTED} more" if len(different) > LISTED else ""
            parts.append("different values " + "; ".join(different[:LISTED]) + more)
        return "; ".join(parts)
    kinds = (list, tuple, set, frozenset)
    if not (isinstance(expected, kinds) and isinstance(actual, kinds)) \
            or isinstance(expected, str | bytes) or isinstance(actual, str | bytes):
        return None
    left = list(expected)
    extra = []
    for item in actual:
        for i, e in enumerate(left):
            if e == item:
                del left[i]
                break
        else:
            extra.append(item)
    count = f"{len(actual)} item{'s' if len(actual) != 1 else ''} where {len(expected)} " \
            f"{'were' if len(expected) != 1 else 'was'} expected"
    if not left and not extra:
        if isinstance(expected, set | frozenset) or isinstance(actual, set | frozenset):
            return None
        first = next(i for i, (e, a) in enumerate(zip(expected, actual, strict=True)) if e != a)
        return (f"the right {len(expected)} items in another order: at position {first} "
                f"expected {_cut(repr(list(expected)[first]), ITEM)}, got "
                f"{_cut(repr(list(actual)[first]), ITEM)}")
    parts = [count]
    if left:
        parts.append(f"missing {listing(left)}")
    if extra:
        parts.append(f"extra {listing(extra)}")
    return "; ".join(parts)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass" | "fail" | "not done yet"
    message: str
    #: for a failure that was an exception: its type, text and place, so that a group can say
    #: "the same error" instead of repeating it
    error: tuple[str, str, str] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        mark = {"pass": "PASS", "fail": "FAIL", "not done yet": "TODO"}[self.status]
        return f"{mark} {self.name}: {self.message}"


def _kind(exc: BaseException) -> str:
    """An exception's class as a learner would look it up: ``KeyError``, ``struct.error``."""
    module = type(exc).__module__
    name = type(exc).__qualname__
    return name if module in ("builtins", "__main__") else f"{module.lstrip('_')}.{name}"


def _raised(name: str, exc: Exception) -> CheckResult:
    place = where(exc)
    text = f"{_kind(exc)}: {_cut(str(exc), 2 * ITEM)}"
    message = f"raised {text}" + (f" ({place})" if place else "")
    return CheckResult(name, "fail", message, (_kind(exc), str(exc), place))


@dataclass
class Check:
    """One named expectation. ``actual`` may be a value or a callable that computes it.

    ``fmt`` prints both expected and got the same way: a format spec (``"#06x"`` for a bit
    pattern) or a function."""

    name: str
    expected: Any
    because: str
    tolerance: float = 0.0
    relative: bool = False
    fmt: str | Callable[[Any], str] | None = None

    def matches(self, actual: Any) -> bool:
        if _is_number(self.expected) and _is_number(actual):
            if math.isnan(actual):
                return False
            return abs(actual - self.expected) <= self._tolerance()
        return bool(actual == self.expected)

    def _tolerance(self) -> float:
        return self.tolerance * abs(self.expected) if self.relative else self.tolerance

    def _show(self, value: Any, digits: int | None) -> str:
        if self.fmt is not None:
            try:
                return self.fmt(value) if callable(self.fmt) else format(value, self.fmt)
            except (TypeError, ValueError):
                return _cut(repr(value), 3 * ITEM)
        if digits is not None and _is_number(value):
            return _fmt_number(value, digits)
        return _cut(repr(value), 3 * ITEM)

    def _digits(self, actual: Any) -> int | None:
        if not (_is_number(self.expected) and _is_number(actual)):
            return None
        if isinstance(self.expected, int) and isinstance(actual, int) and not self.tolerance:
            return 0
        return _decimals(float(self.expected), float(actual), self._tolerance())

    def describe_expected(self, digits: int | None = None) -> str:
        shown = self._show(self.expected, digits)
        if self.tolerance:
            tol = f"{self.tolerance:.0%}" if self.relative else f"{self.tolerance:g}"
            return f"{shown} ± {tol}"
        return shown

    def run(self, actual: Any) -> CheckResult:
        try:
            value = actual() if callable(actual) else actual
        except (NotDoneYet, NotImplementedError) as exc:
            return CheckResult(self.name, "not done yet", f"the exercise is a stub ({exc})")
        except Exception as exc:  # a learner's bug is feedback, not a crash
            return _raised(self.name, exc)
        try:
            ok = self.matches(value)
        except Exception as exc:  # e.g. comparing a DataFrame with a list
            return CheckResult(self.name, "fail",
                               f"expected {self.describe_expected()} because {self.because}, "
                               f"got a {type(value).__name__} that cannot be compared with it "
                               f"({type(exc).__name__}: {_cut(str(exc), ITEM)})")
        digits = self._digits(value)
        shown = self._show(value, digits)
        if ok:
            return CheckResult(self.name, "pass",
                               f"got {shown}, as expected" if len(shown) <= SHORT
                               else "as expected")
        diff = None if self.fmt is not None else _diff(self.expected, value)
        if diff is not None:
            return CheckResult(self.name, "fail", f"wrong because {self.because}: {diff}")
        return CheckResult(self.name, "fail",
                           f"expected {self.describe_expected(digits)} because {self.because}, "
                           f"got {shown}")


@dataclass
class Checks:
    """A group of checks for one exercise, printed together."""

    title: str
    results: list[CheckResult] = field(default_factory=list)

    def _add(self, result: CheckResult) -> CheckResult:
        if result.error is not None:
            for earlier in self.results:
                if earlier.error == result.error:
                    result = CheckResult(result.name, "fail",
                                         f"raised the same {result.error[0]} as "
                                         f"'{earlier.name}' above", result.error)
                    break
        self.results.append(result)
        return result

    def expect(self, name: str, actual: Any, *, expected: Any, because: str,
               tolerance: float = 0.0, relative: bool = False,
               fmt: str | Callable[[Any], str] | None = None) -> CheckResult:
        return self._add(Check(name, expected, because, tolerance, relative, fmt).run(actual))

    def that(self, name: str, condition: Callable[[], bool] | bool, *, because: str,
             got: Callable[[], Any] | Any = None) -> CheckResult:
        """A yes/no check; ``got`` describes what was seen when it fails."""
        try:
            ok = condition() if callable(condition) else condition
            seen = (got() if callable(got) else got) if not ok else None
        except (NotDoneYet, NotImplementedError) as exc:
            result = CheckResult(name, "not done yet", f"the exercise is a stub ({exc})")
        except Exception as exc:  # a learner's bug is feedback, not a crash
            result = _raised(name, exc)
        else:
            if ok:
                result = CheckResult(name, "pass", "as expected")
            else:
                result = CheckResult(name, "fail", f"expected it to hold because {because}"
                                     + ("" if seen is None
                                        else f", got {_cut(repr(seen), 3 * ITEM)}"))
        return self._add(result)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.status == "pass" for r in self.results)

    @property
    def status(self) -> str:
        if any(r.status == "fail" for r in self.results):
            return "fail"
        if any(r.status == "not done yet" for r in self.results):
            return "not done yet"
        return "pass"

    def report(self) -> str:
        lines = [f"{self.title}: {self.status.upper()}"] + [f"  {r}" for r in self.results]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.report()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.report())
