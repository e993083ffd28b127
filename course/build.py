"""Build the learner and instructor notebooks from one text source per lab.

``labs/source/NN_name.py`` (jupytext's ``py:percent`` format, so that a change to a lab is a diff
a reviewer can read) holds the teaching and the solutions. In a code cell, a solution sits
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

Both are written without outputs, except the cells marked ``# NBVAL_CHECK_OUTPUT``: they carry
an output that nbval compares with a fresh run (a cell with no recorded output would pass
whatever it printed). Those outputs come from this build, never from a hand-run notebook:
``--execute`` runs the instructor version in ``labs/instructor/`` and records what each checked
cell printed into both versions. Without it the build keeps the outputs already recorded for
checked cells whose code did not change, and refuses (naming the cell) when one has none.
``--check`` only reports (exit 1) which notebooks are out of date, as CI does.
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


def _clean(cell: dict, lines: list[str], outputs: list | None = None) -> dict:
    """The cell as a built notebook holds it: no ids or run metadata, outputs only if checked."""
    cell = copy.deepcopy(cell)
    cell["source"] = "\n".join(lines)
    tags = cell.get("metadata", {}).get("tags")
    cell["metadata"] = {"tags": tags} if tags else {}
    if cell["cell_type"] == "code":
        cell["outputs"] = copy.deepcopy(outputs) if outputs else []
        # nbval only compares a cell that was run: a recorded output needs a count beside it
        count = 1 if outputs else None
        for output in cell["outputs"]:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count
        cell["execution_count"] = count
    cell.pop("id", None)
    return cell


def read_source(path: Path) -> dict:
    """A lab's text source (jupytext py:percent) as a notebook dict."""
    import jupytext

    nb = json.loads(json.dumps(jupytext.read(path)))
    nb["metadata"].pop("jupytext", None)
    return nb


def build(source: dict, *, name: str,
          recorded: dict[str, list] | None = None) -> tuple[dict, dict]:
    """(learner, instructor) notebooks from one source notebook.

    ``recorded`` maps a checked cell's code to the outputs the build recorded for it. Given, every
    checked cell must have one; ``None`` builds without outputs (as the execute step does).
    """
    learner, instructor = copy.deepcopy(source), copy.deepcopy(source)
    learner["cells"], instructor["cells"] = [], []
    for index, cell in enumerate(source["cells"]):
        lines = _source(cell)
        tags = list(cell.get("metadata", {}).get("tags", []))
        kept = keep_solutions(lines)
        if CHECK_TAG in tags:
            kept = [*kept, "assert checks.passed, checks.report()"]
        outputs = None
        if checks_output(cell):
            if kept != lines:
                raise BuildError(f"{name}, cell {index}: a {CHECK_OUTPUT} cell holds a solution "
                                 "or a check, so its learner and instructor code would differ")
            if recorded is not None:
                outputs = recorded.get("\n".join(lines))
                if not outputs:
                    raise BuildError(
                        f"{name}, cell {index}: {CHECK_OUTPUT} cell with no recorded output "
                        f"(its code is new or changed): run python -m course.build "
                        f"--execute {name[:2]}")
        instructor["cells"].append(_clean(cell, kept, outputs))
        if INSTRUCTOR_TAG in tags:
            continue
        if cell["cell_type"] == "code":
            stub_lines, had_solution = strip_solutions(lines, where=f"{name}, cell {index}")
            new = _clean(cell, stub_lines, outputs)
            if had_solution and STUB_TAG not in tags:
                new["metadata"]["tags"] = tags + [STUB_TAG]
            learner["cells"].append(new)
        else:
            learner["cells"].append(_clean(cell, lines))
    for nb in (learner, instructor):
        nb["nbformat"], nb["nbformat_minor"] = 4, 4
    return learner, instructor


def checked_outputs(nb: dict) -> dict[str, list]:
    """A built or executed notebook's checked cells: their code, and what each printed."""
    return {"".join(cell["source"]): cell["outputs"]
            for cell in nb["cells"] if checks_output(cell) and cell.get("outputs")}


def execute(src: Path, labs: Path, timeout: int = 120) -> dict[str, list]:
    """Run a lab's instructor version where it lives; what its checked cells printed."""
    import nbformat
    from nbclient import NotebookClient

    _, instructor = build(read_source(src), name=src.name)
    nb = nbformat.reads(json.dumps(instructor), as_version=4)
    folder = labs / "instructor"
    folder.mkdir(parents=True, exist_ok=True)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return checked_outputs(json.loads(nbformat.writes(nb)))


def dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def sources(labs: Path, only: list[str] | None = None) -> list[Path]:
    """The lab sources, or those whose names start with one of ``only`` ("02", "03_ws")."""
    found = sorted((labs / "source").glob("*.py"))
    if only:
        found = [src for src in found if any(src.name.startswith(o) for o in only)]
    return found


def notebook_name(src: Path) -> str:
    return src.with_suffix(".ipynb").name


def targets(labs: Path, only: list[str] | None = None,
            executed: dict[Path, dict[str, list]] | None = None) -> dict[Path, str]:
    """Every file the build would write, with its content.

    Checked outputs come from ``executed`` (this build ran the lab) or else from the instructor
    notebook already built.
    """
    out: dict[Path, str] = {}
    for src in sources(labs, only):
        name = notebook_name(src)
        recorded = (executed or {}).get(src)
        if recorded is None:
            built = labs / "instructor" / name
            recorded = checked_outputs(json.loads(built.read_text())) if built.exists() else {}
        learner, instructor = build(read_source(src), name=src.name, recorded=recorded)
        out[labs / name] = dump(learner)
        out[labs / "instructor" / name] = dump(instructor)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m course.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("only", nargs="*", metavar="LAB",
                   help="build only the labs whose names start with these (e.g. 02); default all")
    p.add_argument("--labs", type=Path, default=Path("labs"), help="the labs folder")
    p.add_argument("--check", action="store_true", help="report stale notebooks, write nothing")
    p.add_argument("--execute", action="store_true",
                   help="run each lab's instructor version and record its checked outputs")
    args = p.parse_args(argv)
    if not (args.labs / "source").is_dir():
        p.error(f"{args.labs / 'source'} is not a folder of lab sources")
    if args.only and not sources(args.labs, args.only):
        p.error(f"no lab source in {args.labs / 'source'} starts with {args.only}")
    executed: dict[Path, dict[str, list]] = {}
    if args.execute and not args.check:
        for src in sources(args.labs, args.only):
            print(f"running {src}")
            executed[src] = execute(src, args.labs)
    try:
        wanted = targets(args.labs, args.only, executed)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"out of date: {path} (run: python -m course.build)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
