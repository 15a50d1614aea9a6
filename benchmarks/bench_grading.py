"""The autograder: time to grade one submission of each assignment, the per-submission
overhead of the sandbox, and a batch of 50 generated submissions on 2 cores.

    python benchmarks/bench_grading.py [--batch 50] [--jobs 2] [--repeat 3]

(a) Every ``instructor/homework/hw*.py`` is assigned (which also grades its solution twice
    through the sandbox) into a temporary folder.
(b) Its solution notebook is graded ``--repeat`` times in each isolation mode, side by
    side: ``bwrap`` (the default: a bubblewrap fork server started for EACH submission, each
    question in its own namespaces) and ``process`` (one fork server per grading thread,
    reused across submissions; trusted code only): wall time per submission, the time spent
    inside the student's cells and probes (reported by the sandbox), and the difference:
    the grader's overhead (sandbox and interpreter start-up with the preloads, limits,
    frames, checks), to compare with the target of 1.5 s and with the 3.2-3.9 s that
    ``otter run`` took per submission on this kind of machine. One process per question.
    The last column is what bwrap adds per question over process (target: <= 0.1 s).
(c) A batch of ``--batch`` generated submissions (solutions, untouched student notebooks,
    and solutions with one answer broken, in rotation) graded with ``--jobs`` workers and no
    progress bar: total wall time and submissions per second. A second run of the same batch
    shows the cost of resuming (everything skipped).
(d) The cost of one bare ``python -I -c "import numpy"`` for reference.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from d2lcnn.grading.authoring import AssignError, assign
from d2lcnn.grading.grade import Bundle, grade_batch, grade_file

ROOT = Path(__file__).resolve().parents[1]


def _generated(bundle_dir: Path, student: Path, n: int, folder: Path) -> None:
    """``n`` submissions: solution, untouched, solution with one answer cell broken, ..."""
    solution = nbformat.read(bundle_dir / "solution.ipynb", as_version=4)
    untouched = nbformat.read(student, as_version=4)
    answers = [c.id for c in solution.cells if c.id.endswith("-answer")]
    for i in range(n):
        kind = i % 3
        if kind == 0:
            nb = solution
        elif kind == 1:
            nb = untouched
        else:
            nb = copy.deepcopy(solution)
            cell = next(c for c in nb.cells if c.id == answers[i % len(answers)])
            cell.source += "\n\n\ndef _broken():\n    return 1 / 0\n"
            cell.source = cell.source.replace("return ", "return 0 * ", 1)
        (folder / f"student{i:03d}.ipynb").write_text(nbformat.writes(nb))


def _grade_solution(bundle_dir: Path, repeat: int, mode: str) -> tuple[float, float, int]:
    """Median wall and student-compute seconds of grading the solution, and processes."""
    walls, computes, procs = [], [], 0
    with Bundle.load(bundle_dir, isolation=mode) as bundle:
        for _ in range(repeat):
            t = time.perf_counter()  # bwrap: a new sandbox per submission, every time
            r = grade_file(bundle, bundle_dir / "solution.ipynb", name="solution")
            walls.append(time.perf_counter() - t)
            computes.append(r["extra_data"]["timing"]["compute"])
            procs = r["extra_data"]["timing"]["processes"]
            assert r["score"] == r["max_score"], r["output"]
    return statistics.median(walls), statistics.median(computes), procs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default="hw", help="assignments whose name starts with this")
    args = p.parse_args()
    sources = sorted((ROOT / "instructor" / "homework").glob(f"{args.only}*.py"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (other processes slow everything down)")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-I", "-c", "import numpy"], check=True)
    print(f"bare `python -I -c 'import numpy'`: {time.perf_counter() - t:.2f} s\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for src in sources:
            t = time.perf_counter()
            try:
                summary = assign(src, tmp / src.stem)
            except AssignError as e:
                print(f"{src.stem}: assign failed: {str(e)[:300]}")
                continue
            t_assign = time.perf_counter() - t
            bundle_dir = tmp / src.stem / "autograder"
            per_question = {}
            for mode in ("process", "bwrap"):
                wall, compute, procs = _grade_solution(bundle_dir, args.repeat, mode)
                per_question[mode] = (wall - compute) / procs
                rows.append([src.stem, mode, summary["cases"], procs, t_assign, wall, compute,
                             wall - compute, None, None, None])
            rows[-1][10] = per_question["bwrap"] - per_question["process"]
            subs = tmp / f"{src.stem}-subs"
            subs.mkdir()
            _generated(bundle_dir, tmp / src.stem / "student" / f"{src.stem}.ipynb",
                       args.batch, subs)
            out = tmp / f"{src.stem}-graded"
            t = time.perf_counter()
            res = grade_batch(bundle_dir, [subs], out, jobs=args.jobs, progress=False)
            t_batch = time.perf_counter() - t
            t = time.perf_counter()
            again = grade_batch(bundle_dir, [subs], out, jobs=args.jobs, progress=False)
            t_resume = time.perf_counter() - t
            assert res["graded"] == args.batch and again["skipped"] == args.batch
            rows[-1][8:10] = [t_batch, t_resume]

    print(f"{'assignment':<22} {'sandbox':<7} {'cases':>5} {'procs':>5} {'assign':>7} "
          f"{'grade 1':>8} {'student':>8} {'overhead':>9} {'batch':>7} {'per sub':>8} "
          f"{'resume':>7} {'+bwrap/q':>9}")
    for name, mode, cases, procs, ta, wall, comp, over, tb, tr, extra in rows:
        batch = f"{tb:>6.1f}s {tb / args.batch:>7.2f}s {tr:>6.2f}s" if tb else " " * 24
        added = f" {extra:>8.3f}s" if extra is not None else ""
        print(f"{name:<22} {mode:<7} {cases:>5} {procs:>5} {ta:>6.1f}s {wall:>7.2f}s "
              f"{comp:>7.2f}s {over:>8.2f}s {batch}{added}")
    print(f"\ngrade 1: one solution graded (median of {args.repeat}); bwrap = OS isolation, "
          "a new sandbox per submission (the default); process = plain processes from a "
          "fork server per thread (trusted code only); student: time inside its cells and "
          "probes; overhead = grade 1 - student (target <= 1.5 s; otter run: 3.2-3.9 s). "
          f"batch: {args.batch} generated submissions, --jobs {args.jobs}, bwrap; per sub = "
          "batch / count; resume: the same batch again (all skipped). +bwrap/q: overhead per "
          "question of bwrap minus that of process, measured side by side (target <= 0.1 s).")


if __name__ == "__main__":
    main()
