"""The lock, pyproject.toml and environment.yml agree, and this venv was installed from the lock.

pyproject.toml says which releases the course accepts, requirements.lock which exact ones every
entry point installs, and environment.yml the same exact ones for conda and Binder. When they
drift apart a learner gets versions nobody tested: these tests name the package that drifted.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _requirement_lines(text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def _lock() -> list[Requirement]:
    text = (ROOT / "requirements.lock").read_text()
    return [Requirement(line) for line in _requirement_lines(text)]


def _pinned(req: Requirement) -> str:
    (spec,) = req.specifier
    return spec.version


def _pyproject_requirements() -> list[tuple[str, Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [("dependencies", Requirement(r)) for r in project["dependencies"]]
    for extra, reqs in project["optional-dependencies"].items():
        found += [(f"optional-dependencies.{extra}", Requirement(r)) for r in reqs]
    return found


def test_every_lock_entry_is_one_exact_version():
    loose = [str(r) for r in _lock()
             if len(r.specifier) != 1 or next(iter(r.specifier)).operator != "=="]
    assert loose == [], f"requirements.lock entries without an exact '==' pin: {loose}"


def test_every_pyproject_requirement_is_locked_within_its_range():
    locked: dict[str, list[str]] = {}
    for req in _lock():
        locked.setdefault(canonicalize_name(req.name), []).append(_pinned(req))
    problems = []
    for where, req in _pyproject_requirements():
        versions = locked.get(canonicalize_name(req.name))
        if not versions:
            problems.append(f"{req.name} ({where}) is not in requirements.lock: run `make lock`")
            continue
        for version in versions:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name} ({where}) wants '{req.specifier}' "
                                f"but requirements.lock pins {version}: run `make lock`")
    assert problems == [], "\n".join(problems)


def test_environment_yml_pins_what_the_lock_pins():
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    in_env = {str(Requirement(line)) for line in pip_section if not line.startswith("-e")}
    in_lock = {str(r) for r in _lock()}
    assert sorted(in_lock - in_env) == [], "locked but not in environment.yml: run `make lock`"
    assert sorted(in_env - in_lock) == [], "in environment.yml but not locked: run `make lock`"
    assert "python=3.11" in env["dependencies"], "environment.yml must pin the tested Python, 3.11"


def test_this_environment_was_installed_from_the_lock():
    """The venv that runs the tests holds exactly the locked version of each package."""
    wrong = []
    for req in _lock():
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{req.name}: locked {_pinned(req)}, not installed")
            continue
        if have != _pinned(req):
            wrong.append(f"{req.name}: locked {_pinned(req)}, installed {have}")
    if wrong:
        pytest.fail("this environment is not the locked one (rebuild it with `make clean test`):\n"
                    + "\n".join(wrong), pytrace=False)
