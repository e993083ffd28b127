"""Write environment.yml from requirements.lock, so that conda users get the same versions.

conda-forge does not carry every locked version, so the environment takes Python and pip from
conda-forge and every other package, pinned exactly as in the lock, through pip. `make lock`
runs this after writing the lock; tests/test_lock.py fails when the two disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# Written by `make lock` from requirements.lock (tools/environment_from_lock.py): do not edit.
# The same pinned environment as `make demo` and `make test`, for conda users and Binder:
#   conda env create -f environment.yml && conda activate vitalsim-course
name: vitalsim-course
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def locked_lines(lock: Path) -> list[str]:
    """The requirement lines of a uv/pip-tools lock, without comments."""
    lines = []
    for raw in lock.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def render(lock: Path) -> str:
    body = "".join(f'      - "{line}"\n' for line in locked_lines(lock))
    return HEADER + body + "      - -e .\n"


def main() -> int:
    out = ROOT / "environment.yml"
    out.write_text(render(ROOT / "requirements.lock"))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
