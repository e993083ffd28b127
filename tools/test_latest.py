"""`make test-latest`: the course against the newest releases pyproject.toml allows.

The lock keeps every learner on versions the course was tested with. Releases keep coming, and
one of them (pandas 3.1 printing NaN where 2.x printed None) once turned a checked lab output
red on a fresh clone. This builds a throwaway venv with the newest allowed releases, prints
which packages differ from the lock, then runs the unit tests and the labs under nbval.
Run it before a term starts, or when you plan to re-lock: if it passes, `make lock` is safe;
if a checked lab output differs, re-record it with the notebook builder and re-lock.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for raw in lines:
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins.setdefault(name.strip().lower().replace("_", "-"), version.strip())
    return pins


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="vitalsim-latest-") as tmp:
        venv = Path(tmp) / "venv"
        py = venv / "bin" / "python"
        subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)],
                       check=True)
        subprocess.run([str(UV), "pip", "install", "--quiet", "--python", str(py),
                        "--resolution", "highest", "-e", f"{ROOT}[course,dev]"], check=True)
        freeze = subprocess.run([str(UV), "pip", "freeze", "--python", str(py)],
                                check=True, capture_output=True, text=True).stdout.splitlines()
        locked = _pins((ROOT / "requirements.lock").read_text().splitlines())
        latest = _pins(freeze)
        changed = sorted(n for n in latest if n in locked and latest[n] != locked[n])
        print(f"\n{len(changed)} packages newer than the lock:")
        for name in changed:
            print(f"  {name:32} {locked[name]:>12} -> {latest[name]}")
        tests = subprocess.run(
            [str(py), "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests", "labs",
             "--nbval-lax", "--nbval-current-env", "-m", "not browser and not root",
             "--deselect", "tests/test_lock.py::test_this_environment_was_installed_from_the_lock"],
            cwd=ROOT)
        verdict = "pass" if tests.returncode == 0 else "FAIL (see the failures above)"
        print(f"\nthe course on the newest allowed releases: {verdict}")
        return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
