"""Command line: ``python -m d2lcnn.grading {assign,grade} ...`` (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from d2lcnn.grading.authoring import AssignError, assign
from d2lcnn.grading.grade import IsolationUnavailable, grade_batch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m d2lcnn.grading",
                                description="Build and grade autograded homework.")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assign", help="write the student notebook and the autograder bundle")
    a.add_argument("source", type=Path, help="hwN-name.py (jupytext py:percent, solutions)")
    a.add_argument("--out", type=Path, required=True, help="folder for student/ and autograder/")
    g = sub.add_parser("grade", help="grade submissions into a gradebook")
    g.add_argument("bundle", type=Path, help="the autograder/ folder written by assign")
    g.add_argument("submissions", nargs="+", type=Path, help="files or folders of submissions")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="submissions graded at once (default: the number of CPUs)")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--isolation", choices=["bwrap", "process"], default=None,
                   help="bwrap (default): every sandbox in its own namespaces with a "
                        "read-only view of the Python environment (Linux, package "
                        "'bubblewrap'); process: plain processes, for TRUSTED submissions "
                        "only")
    args = p.parse_args(argv)

    if args.command == "assign":
        try:
            summary = assign(args.source, args.out)
        except AssignError as e:
            print(f"assign: {e}", file=sys.stderr)
            return 1
        print(json.dumps(summary, indent=1))
        return 0

    if args.isolation == "process":
        print("grade: WARNING: --isolation process runs submissions as plain processes of "
              "your user, guarded only by resource limits and a Python audit hook, which a "
              "determined student can get around; use it for trusted submissions only.",
              file=sys.stderr)
    try:
        res = grade_batch(args.bundle, args.submissions, args.out, jobs=args.jobs,
                          progress=not args.no_progress, isolation=args.isolation)
    except IsolationUnavailable as e:
        print(f"grade: {e}", file=sys.stderr)
        return 2
    print(f"{res['graded']} graded, {res['skipped']} unchanged; "
          f"gradebook: {args.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
