"""Small named checks, in the manner of CS144's checkpoints.

A check says what it expected and why, and what it got: "expected 0.10 ± 0.02 because the proxy
drops one datagram in ten, got 0.31". A learner's exercise that still raises NotImplementedError is
reported as "not done yet", never as a crash.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class NotDoneYet(Exception):
    """Raised by a check whose exercise is still a stub."""


def not_done_yet(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a learner's function; turn its NotImplementedError into :class:`NotDoneYet`."""
    try:
        return func(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotDoneYet(str(exc) or func.__name__) from None


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass" | "fail" | "not done yet"
    message: str

    def __str__(self) -> str:
        mark = {"pass": "PASS", "fail": "FAIL", "not done yet": "TODO"}[self.status]
        return f"{mark} {self.name}: {self.message}"


@dataclass
class Check:
    """One named expectation. ``actual`` may be a value or a callable that computes it."""

    name: str
    expected: Any
    because: str
    tolerance: float = 0.0
    relative: bool = False

    def matches(self, actual: Any) -> bool:
        if isinstance(self.expected, int | float) and isinstance(actual, int | float) \
                and not isinstance(actual, bool):
            if math.isnan(actual):
                return False
            tol = self.tolerance * abs(self.expected) if self.relative else self.tolerance
            return abs(actual - self.expected) <= tol
        return actual == self.expected

    def describe_expected(self) -> str:
        if self.tolerance:
            tol = f"{self.tolerance:.0%}" if self.relative else f"{self.tolerance:g}"
            return f"{self.expected!r} ± {tol}"
        return repr(self.expected)

    def run(self, actual: Any) -> CheckResult:
        try:
            value = actual() if callable(actual) else actual
        except NotDoneYet as exc:
            return CheckResult(self.name, "not done yet", f"the exercise is a stub ({exc})")
        except NotImplementedError as exc:
            return CheckResult(self.name, "not done yet", f"the exercise is a stub ({exc})")
        except Exception as exc:  # a learner's bug is feedback, not a crash
            return CheckResult(self.name, "fail", f"raised {type(exc).__name__}: {exc}")
        shown = f"{value:.4g}" if isinstance(value, float) else repr(value)
        if self.matches(value):
            return CheckResult(self.name, "pass", f"got {shown}, as expected")
        return CheckResult(self.name, "fail",
                           f"expected {self.describe_expected()} because {self.because}, "
                           f"got {shown}")


@dataclass
class Checks:
    """A group of checks for one exercise, printed together."""

    title: str
    results: list[CheckResult] = field(default_factory=list)

    def expect(self, name: str, actual: Any, *, expected: Any, because: str,
               tolerance: float = 0.0, relative: bool = False) -> CheckResult:
        result = Check(name, expected, because, tolerance, relative).run(actual)
        self.results.append(result)
        return result

    def that(self, name: str, condition: Callable[[], bool] | bool, *, because: str,
             got: Callable[[], Any] | Any = None) -> CheckResult:
        """A yes/no check; ``got`` describes what was seen when it fails."""
        try:
            ok = condition() if callable(condition) else condition
            seen = got() if callable(got) else got
        except (NotDoneYet, NotImplementedError) as exc:
            result = CheckResult(name, "not done yet", f"the exercise is a stub ({exc})")
        else:
            if ok:
                result = CheckResult(name, "pass", "as expected")
            else:
                result = CheckResult(name, "fail", f"expected it to hold because {because}"
                                     + ("" if seen is None else f", got {seen!r}"))
        self.results.append(result)
        return result

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
