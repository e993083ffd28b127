"""Build the learner and instructor notebooks from one source notebook per lab.

``labs/source/NN_name.ipynb`` holds the teaching and the solutions. In a code cell, a solution sits
between two marker lines::

    ### BEGIN SOLUTION
    ...the instructor's code...
    ### END SOLUTION

- The **instructor** version (``labs/instructor/``) keeps the solutions and drops the markers;
  a code cell tagged ``check`` (which builds a ``checks`` object) gets a last line asserting
  that its checks pass, so that running the instructor notebook proves the solutions right.
- The **learner** version (``labs/``) replaces each solution with
  ``raise NotImplementedError("...")`` at the same indentation, and tags the cell
  ``raises-exception`` so that nbval accepts the stub's exception; markdown cells tagged
  ``instructor`` (model answers) are left out.

Both are written without outputs, except the cells marked ``# NBVAL_CHECK_OUTPUT``: they keep
the output recorded in the source, which nbval compares with a fresh run (a cell with no
recorded output would pass whatever it printed). ``python -m vitalsim.labkit.build --execute``
runs the sources first to record those outputs; without it the build rewrites the two versions
from the sources as they are; ``--check`` only reports (exit 1) which ones are out of date, as
CI does.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB_TAG = "raises-exception"
INSTRUCTOR_TAG = "instructor"
CHECK_TAG = "check"


class BuildError(ValueError):
    """A source notebook whose markers do not pair up."""


def _source(cell: dict) -> list[str]:
    src = cell.get("source", "")
    text = src if isinstance(src, str) else "".join(src)
    return text.split("\n")


def strip_solutions(lines: list[str], *, where: str) -> tuple[list[str], bool]:
    """Learner lines: each solution replaced by a NotImplementedError stub."""
    out: list[str] = []
    inside = False
    found = False
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise BuildError(f"{where}, line {number}: {BEGIN} inside another solution")
            inside, found = True, True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("your code here")')
        elif marker == END:
            if not inside:
                raise BuildError(f"{where}, line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise BuildError(f"{where}: {BEGIN} is never closed by {END}")
    return out, found


def keep_solutions(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip() not in (BEGIN, END)]


CHECK_OUTPUT = "NBVAL_CHECK_OUTPUT"


def checks_output(cell: dict) -> bool:
    return cell["cell_type"] == "code" and CHECK_OUTPUT in "".join(cell.get("source", ""))


def _clean(cell: dict, lines: list[str]) -> dict:
    keep = checks_output(cell)
    cell = copy.deepcopy(cell)
    cell["source"] = "\n".join(lines)
    if cell["cell_type"] == "code":
        if not keep:
            cell["outputs"] = []
        # nbval only compares a cell that was run: a recorded output needs a count beside it
        count = 1 if keep else None
        for output in cell["outputs"]:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count
        cell["execution_count"] = count
    cell.pop("id", None)
    return cell


def execute(path: Path, timeout: int = 120) -> None:
    """Run a source notebook and record, in it, the outputs of its NBVAL_CHECK_OUTPUT cells."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code" and not checks_output(cell):
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)


def build(source: dict, *, name: str) -> tuple[dict, dict]:
    """(learner, instructor) notebooks from one source notebook."""
    learner, instructor = copy.deepcopy(source), copy.deepcopy(source)
    learner["cells"], instructor["cells"] = [], []
    for index, cell in enumerate(source["cells"]):
        lines = _source(cell)
        tags = list(cell.get("metadata", {}).get("tags", []))
        kept = keep_solutions(lines)
        if CHECK_TAG in tags:
            kept = [*kept, "assert checks.passed, checks.report()"]
        instructor["cells"].append(_clean(cell, kept))
        if INSTRUCTOR_TAG in tags:
            continue
        if cell["cell_type"] == "code":
            stub_lines, had_solution = strip_solutions(lines, where=f"{name}, cell {index}")
            new = _clean(cell, stub_lines)
            if had_solution and STUB_TAG not in tags:
                new.setdefault("metadata", {})["tags"] = tags + [STUB_TAG]
            learner["cells"].append(new)
        else:
            learner["cells"].append(_clean(cell, lines))
    for nb in (learner, instructor):
        nb["nbformat"], nb["nbformat_minor"] = 4, 4
    return learner, instructor


def dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def sources(labs: Path, only: list[str] | None = None) -> list[Path]:
    """The source notebooks, or those whose names start with one of ``only`` ("02", "03_ws")."""
    found = sorted((labs / "source").glob("*.ipynb"))
    if only:
        found = [src for src in found if any(src.name.startswith(o) for o in only)]
    return found


def targets(labs: Path, only: list[str] | None = None) -> dict[Path, str]:
    """Every file the build would write, with its content."""
    out: dict[Path, str] = {}
    for src in sources(labs, only):
        learner, instructor = build(json.loads(src.read_text()), name=src.name)
        out[labs / src.name] = dump(learner)
        out[labs / "instructor" / src.name] = dump(instructor)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vitalsim.labkit.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("only", nargs="*", metavar="LAB",
                   help="build only the labs whose names start with these (e.g. 02); default all")
    p.add_argument("--labs", type=Path, default=Path("labs"), help="the labs folder")
    p.add_argument("--check", action="store_true", help="report stale notebooks, write nothing")
    p.add_argument("--execute", action="store_true",
                   help="run the sources first, recording their NBVAL_CHECK_OUTPUT outputs")
    args = p.parse_args(argv)
    if not (args.labs / "source").is_dir():
        p.error(f"{args.labs / 'source'} is not a folder of source notebooks")
    if args.only and not sources(args.labs, args.only):
        p.error(f"no source notebook in {args.labs / 'source'} starts with {args.only}")
    if args.execute and not args.check:
        for src in sources(args.labs, args.only):
            print(f"running {src}")
            execute(src)
    try:
        wanted = targets(args.labs, args.only)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"out of date: {path} (run: python -m vitalsim.labkit.build)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
