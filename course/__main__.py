"""``python -m course doctor|bundle|grade|traces``: the course's commands for an instructor.

- ``doctor``: what this environment allows, and what each lab will do about it.
- ``bundle [OUT]``: the learner bundle (a directory and OUT.zip), without solutions.
- ``grade SUBMISSIONS OUT [--timeout S] [--jobs N]``: run every student's notebooks headless
  and write the check results as CSV.
- ``traces --student ID [--student ID ...] [--out DIR]``: each student's own captures for the
  trace exercises, generated from the simulator (no root), the same bytes every time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="what this environment allows, lab by lab")
    bundle = commands.add_parser("bundle", help="write the learner bundle (directory and zip)")
    bundle.add_argument("out", nargs="?", type=Path, default=Path("dist/learner-bundle"))
    grade = commands.add_parser("grade", help="run a class's notebooks and tabulate the checks")
    grade.add_argument("submissions", type=Path, help="one sub-folder per student")
    grade.add_argument("out", type=Path, help="folder for checks.csv, exercises.csv, "
                                              "notebooks.csv")
    grade.add_argument("--timeout", type=float, default=300.0,
                       help="seconds each notebook may run in all (default 300)")
    grade.add_argument("--jobs", type=int, default=1, help="notebooks run at once (default 1)")
    traces = commands.add_parser("traces", help="write students' own trace-exercise captures")
    traces.add_argument("--student", action="append", required=True, metavar="ID",
                        help="a student's id (repeat for several); the same id always gives "
                             "the same captures")
    traces.add_argument("--out", type=Path, default=None,
                        help="folder for one sub-folder per student (default: $VITALSIM_TRACES "
                             "or traces/)")
    args = parser.parse_args(argv)

    if args.command == "doctor":
        from .doctor import check

        print(check())
    elif args.command == "bundle":
        from .bundle import write_bundle

        folder, archive = write_bundle(args.out)
        print(f"learner bundle: {folder}/ and {archive}")
    elif args.command == "grade":
        from .grading import grade as run

        checks, exercises, notebooks = run(args.submissions, args.out, timeout=args.timeout,
                                           jobs=args.jobs)
        print(notebooks.to_string(index=False))
        print()
        print(exercises.to_string())
        print(f"\nwritten: {args.out}/checks.csv, exercises.csv, notebooks.csv")
    elif args.command == "traces":
        from .traces import STUDENT_VARIABLE, write_traces

        for student in args.student:
            try:
                folder = write_traces(student, args.out)
            except ValueError as exc:
                parser.error(str(exc))
            names = ", ".join(sorted(p.name for p in folder.glob("*.pcap")))
            print(f"{student}: {folder}/ ({names})")
        print(f"a lab reads a student's own with {STUDENT_VARIABLE}=ID in its environment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
