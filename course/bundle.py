"""The learner bundle: what a student gets, and nothing of the solutions.

In the repository the solutions sit one click from the learner notebooks: ``labs/instructor/``
holds them run, and ``labs/source/`` holds them as text. A student who is given the repository
is given the answers. The bundle (``make learner-bundle``, or ``python -m course bundle``) is a
directory and a zip of the same files:

- the learner notebooks (``labs/*.ipynb``: each solution replaced by a stub, the instructor's
  model answers left out, by the notebook builder);
- the recorded captures (``course/recordings/``, inside the course package), for
  environments that cannot sniff, and the protocol document the labs refer to
  (``docs/PROTOCOL.md``), and the Wireshark dissector (``wireshark/vitalsim.lua``) that reads them;
- what installs and runs the course: the packages the labs import, the dashboard, the lock,
  ``pyproject.toml``, ``environment.yml`` and ``postBuild`` (what Binder and repo2docker use)
  and the ``Makefile``.

It holds neither ``labs/instructor/`` nor ``labs/source/``, nor the tests (some of which check
the helpers against worked answers). :func:`solution_fragments` lists what must not appear in
it, so that ``tests/test_bundle.py`` can look for every one.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: what a learner needs to install and run the labs, relative to the repository's root
INCLUDE_DIRS = ("vitalsim", "server", "course")  # the recordings are in course/
INCLUDE_FILES = ("pyproject.toml", "requirements.lock", "environment.yml", "postBuild",
                 "Makefile", "README.md", "docs/PROTOCOL.md", "docs/dashboard.png",
                 "wireshark/vitalsim.lua")
#: never copied, wherever they sit
EXCLUDE_PARTS = {"__pycache__", ".ipynb_checkpoints", "instructor", "source"}
EXCLUDE_SUFFIXES = {".pyc", ".sqlite3"}

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
INSTRUCTOR_TAG = "instructor"


def _wanted(path: Path) -> bool:
    return not (EXCLUDE_PARTS & set(path.parts)) and path.suffix not in EXCLUDE_SUFFIXES


def bundle_files(root: Path = ROOT) -> list[Path]:
    """Every file the bundle holds, relative to ``root``."""
    files = [Path(name) for name in INCLUDE_FILES if (root / name).is_file()]
    files += sorted(p.relative_to(root) for p in (root / "labs").glob("*.ipynb"))
    for folder in INCLUDE_DIRS:
        files += sorted(p.relative_to(root) for p in (root / folder).rglob("*")
                        if p.is_file() and _wanted(p.relative_to(root)))
    return files


def write_bundle(out: Path, root: Path = ROOT) -> tuple[Path, Path]:
    """Write ``out/`` (a fresh directory) and ``out.zip`` from the repository at ``root``."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    files = bundle_files(root)
    for rel in files:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    archive = out.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in files:
            zf.write(out / rel, Path(out.name) / rel)
    return out, archive


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _split(cell_source: str) -> tuple[list[str], list[str]]:
    """A code cell's lines outside and inside its solution markers."""
    outside, inside, within = [], [], False
    for line in cell_source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            within = True
        elif marker == END:
            within = False
        else:
            (inside if within else outside).append(line)
    return outside, inside


def _tokens(line: str) -> int:
    return len(re.findall(r"\"[^\"]*\"|'[^']*'|\w+", line))


def solution_fragments(sources: list[Path], *, fewest_tokens: int = 4) -> dict[str, str]:
    """Every distinctive solution line in the lab sources, mapped to where it came from.

    A solution line is one between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` in a code
    cell, or any line of a markdown cell tagged ``instructor``. It is *distinctive* when it has
    at least ``fewest_tokens`` words, names or literals, and no lab shows it to learners anyway:
    ``return out``, ``continue`` or ``found = []`` give nothing away and appear in any Python
    file, while ``out["bytes_per_s"] = traffic["bytes"] / traffic["seconds"]`` is the answer.
    Comments inside solutions count: they can give the answer away as well.
    """
    import jupytext

    notebooks = {path: jupytext.reads(path.read_text(), fmt="py:percent") for path in sources}
    visible: set[str] = set()  # what learners see anyway
    secret: list[tuple[str, str]] = []
    for path, notebook in notebooks.items():
        for number, cell in enumerate(notebook.cells):
            where = f"{path.name}, cell {number}"
            if cell.cell_type == "markdown" and INSTRUCTOR_TAG in cell.metadata.get("tags", []):
                secret += [(line, where + " (instructor)") for line in cell.source.splitlines()]
            elif cell.cell_type == "code":
                outside, inside = _split(cell.source)
                visible |= {_normalise(line) for line in outside}
                secret += [(line, where + " (solution)") for line in inside]
            else:
                visible |= {_normalise(line) for line in cell.source.splitlines()}
    fragments: dict[str, str] = {}
    for line, where in secret:
        norm = _normalise(line)
        if _tokens(norm) >= fewest_tokens and norm not in visible:
            fragments.setdefault(norm, where)
    return fragments
