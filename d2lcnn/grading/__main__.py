"""Command line: ``python -m d2lcnn.grading {assign,grade,start} ...`` (see the package
docstring)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from d2lcnn.grading.authoring import AssignError, assign
from d2lcnn.grading.grade import IsolationUnavailable, ManualScoresError, grade_batch
from d2lcnn.grading.platforms import VISIBILITIES, build_wheel, write_gradescope, write_prairielearn
from d2lcnn.grading.student import DEFAULT_WORKSPACE, start


def read_secret(path: Path) -> str:
    """The course secret in ``path`` (surrounding whitespace ignored); ``AssignError`` if the
    file is missing or blank."""
    try:
        secret = Path(path).read_text().strip()
    except OSError as e:
        raise AssignError(f"--secret-file: cannot read {path} ({e.strerror})") from None
    if not secret:
        raise AssignError(f"--secret-file: {path} is empty")
    return secret


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: ``assign`` and ``grade``, every option with its help."""
    p = argparse.ArgumentParser(
        prog="python -m d2lcnn.grading",
        description="Build and grade autograded homework (see the README, "
                    "'Homework and grading').")
    sub = p.add_subparsers(dest="command", required=True, metavar="{assign,grade,start}",
                           help="assign: build an assignment; grade: grade submissions; "
                                "start: copy an assignment out of a clone to work on it")
    a = sub.add_parser(
        "assign", help="write the student notebook and the autograder bundle",
        description="Write OUT/student/ (the notebook and its public tests: hand out) and "
                    "OUT/autograder/ (keep private), after checking that no solution or "
                    "hidden test reaches the student files and that the solution scores "
                    "full marks in the sandbox.")
    a.add_argument("source", type=Path,
                   help="the instructor source hwN-name.py (jupytext py:percent, with "
                        "solutions and tests)")
    a.add_argument("--out", type=Path, required=True,
                   help="folder to write student/ and autograder/ into")
    a.add_argument("--secret-file", type=Path, default=None, metavar="PATH",
                   help="a file holding the course secret (any text, e.g. from `python -c "
                        "\"import secrets; print(secrets.token_hex(16))\"`): it seeds the "
                        "inputs of every hidden case, so reading the hidden tests does not "
                        "reveal them; the same secret rebuilds the same bundle. Default: a "
                        "fresh random secret per build")
    _platform_options(a)
    g = sub.add_parser(
        "grade", help="grade submissions into a gradebook",
        description="Grade submitted notebooks in a sandbox and write OUT/grades.csv and, "
                    "per student, results.json and feedback.md. Submissions already "
                    "graded against the same bundle are skipped. Written (manually "
                    "graded) questions: OUT/manual/<assignment>-<question>.html shows "
                    "every student's answer to one question, OUT/manual/scores.csv takes "
                    "your points and comments (kept when grade runs again), and "
                    "--merge-manual puts them into the gradebook and the feedback.")
    g.add_argument("bundle", type=Path, help="the autograder/ folder written by assign")
    g.add_argument("submissions", nargs="+", type=Path,
                   help="submitted .ipynb files, or folders of them (one per student)")
    g.add_argument("--out", type=Path, required=True,
                   help="folder for grades.csv and the per-student feedback")
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="submissions graded at once (default: the number of CPUs)")
    g.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    g.add_argument("--merge-manual", type=Path, default=None, metavar="FILE",
                   help="after grading (already graded submissions are skipped), merge the "
                        "points and comments of the written questions from FILE (usually "
                        "OUT/manual/scores.csv, filled in) into grades.csv, results.json "
                        "and feedback.md; a bad row (unknown student or question, points "
                        "not a number or outside [0, max_points]) stops the merge, named")
    g.add_argument("--isolation", choices=["bwrap", "process"], default=None,
                   help="bwrap (default): every sandbox in its own namespaces with a "
                        "read-only view of the Python environment (Linux, package "
                        "'bubblewrap'); process: plain processes, for TRUSTED submissions "
                        "only")
    s = sub.add_parser(
        "start", help="copy an assignment's student files out of this clone to work on them",
        description="Copy the student notebook and its public tests from the book's "
                    "notebooks/homework/ to a folder of your own, so your answers never "
                    "touch the files git tracks. Never overwrites an existing notebook.")
    s.add_argument("assignment", help="its id or a unique prefix, e.g. hw1")
    s.add_argument("--to", type=Path, default=None, metavar="DIR",
                   help=f"destination folder (default: {DEFAULT_WORKSPACE}/<assignment>)")
    return p


def _platform_options(a: argparse.ArgumentParser) -> None:
    """``assign``'s options for course-scale grading (:mod:`d2lcnn.grading.platforms`)."""
    a.add_argument("--gradescope", action="store_true",
                   help="also write OUT/gradescope/autograder.zip: upload it as the "
                        "assignment's autograder (setup.sh, run_autograder, the bundle and "
                        "the d2lcnn wheel)")
    a.add_argument("--prairielearn", action="store_true",
                   help="also write OUT/prairielearn/: a question with external grading "
                        "(questions/<assignment>/) and its grading image (grader-image/)")
    a.add_argument("--wheel", type=Path, default=None, metavar="PATH",
                   help="the d2lcnn wheel to ship (default: built from this checkout)")
    a.add_argument("--isolation", choices=["bwrap", "process"], default="bwrap",
                   help="the platform's sandbox: bwrap (default; setup.sh installs "
                        "bubblewrap) or process, for containers that refuse namespaces: "
                        "no namespaces, but the grader (root there) becomes nobody before "
                        "any student code runs, so the bundle stays unreadable")
    a.add_argument("--hidden-visibility", choices=VISIBILITIES, default="after_published",
                   help="when Gradescope shows students the hidden cases' results (default: "
                        "after_published; PrairieLearn lists them unless 'hidden')")
    a.add_argument("--prairielearn-image", default=None, metavar="NAME",
                   help="the grading image's name in info.json (default: "
                        "d2lcnn-grader:<version>[-torch]; build and push it from "
                        "OUT/prairielearn/grader-image)")


def _write_platforms(args, summary: dict) -> None:
    """``--gradescope`` / ``--prairielearn``: the packages next to the bundle."""
    if not (args.gradescope or args.prairielearn):
        return
    wheel = args.wheel or build_wheel(args.out / "wheel")
    common = {"isolation": args.isolation, "hidden_visibility": args.hidden_visibility}
    if args.gradescope:
        summary["gradescope"] = str(write_gradescope(args.out / "autograder",
                                                     args.out / "gradescope", wheel, **common))
    if args.prairielearn:
        summary["prairielearn"] = str(write_prairielearn(
            args.out / "autograder", args.out / "student", args.out / "prairielearn", wheel,
            image=args.prairielearn_image, **common))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    if args.command == "assign":
        try:
            secret = read_secret(args.secret_file) if args.secret_file else None
            summary = assign(args.source, args.out, secret=secret)
            _write_platforms(args, summary)
        except AssignError as e:
            print(f"assign: {e}", file=sys.stderr)
            return 1
        print(json.dumps(summary, indent=1))
        return 0

    if args.command == "start":
        try:
            notebook = start(args.assignment, args.to)
        except (LookupError, FileExistsError) as e:
            print(f"start: {e.args[0]}", file=sys.stderr)
            return 1
        print(f"Copied {args.assignment} to {notebook.parent}; open it with: "
              f"jupyter lab {notebook}")
        return 0

    if args.isolation == "process":
        print("grade: WARNING: --isolation process runs submissions as plain processes of "
              "your user, guarded only by resource limits and a Python audit hook, which a "
              "determined student can get around; use it for trusted submissions only.",
              file=sys.stderr)
    try:
        res = grade_batch(args.bundle, args.submissions, args.out, jobs=args.jobs,
                          progress=not args.no_progress, isolation=args.isolation,
                          merge_manual=args.merge_manual)
    except IsolationUnavailable as e:
        print(f"grade: {e}", file=sys.stderr)
        return 2
    except ManualScoresError as e:
        print(f"grade: the grades are written, but the manual scores were not merged: {e}",
              file=sys.stderr)
        return 1
    print(f"{res['graded']} graded, {res['skipped']} unchanged; "
          f"gradebook: {args.out / 'grades.csv'}")
    if res["manual"]:
        merged = "merged from " + str(args.merge_manual) if args.merge_manual else \
            "enter points there, then run again with --merge-manual"
        print(f"written questions: {len(res['manual']) - 1} grading page(s) and "
              f"{res['manual'][-1]} ({merged})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
