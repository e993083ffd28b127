"""The code of a lab's cells, read from its text source, for tests that run a lab's own check
cell against an answer of the test's choosing (a wrong one, to see the check fail).

Running the cell itself, rather than a copy of its logic, is the point: a check that passes a
wrong answer is a bug in the lab, and only the lab's own code can show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from course.build import keep_solutions, read_source

SOURCES = Path(__file__).resolve().parent.parent / "labs" / "source"


def lab_source(lab: str) -> Path:
    """``labs/source/NN_*.py`` for a lab's number, "03"."""
    (path,) = SOURCES.glob(f"{lab}_*.py")
    return path


def code_cells(lab: str) -> list[str]:
    """Every code cell of a lab, as the instructor version runs it (solutions kept)."""
    nb = read_source(lab_source(lab))
    return ["\n".join(keep_solutions("".join(c["source"]).split("\n")))
            for c in nb["cells"] if c["cell_type"] == "code"]


def cell_with(lab: str, text: str) -> str:
    """The one code cell of a lab that contains ``text``."""
    found = [c for c in code_cells(lab) if text in c]
    if len(found) != 1:
        raise LookupError(f"{len(found)} code cells of lab {lab} contain {text!r}; expected 1")
    return found[0]


def run_cell(lab: str, text: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run the lab's cell that contains ``text`` in ``namespace`` (the names the cells before it
    would have defined); the namespace afterwards."""
    exec(compile(cell_with(lab, text), f"<lab {lab} cell>", "exec"), namespace)  # noqa: S102
    return namespace
