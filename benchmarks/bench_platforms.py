"""Course-scale grading: the Gradescope image's setup time and the time and memory of one
submission inside ``run_autograder``, per assignment.

    python benchmarks/bench_platforms.py [--only hw1] [--repeat 2]

For each ``instructor/homework/hw*.py``: ``assign`` (without the second grading of the
solution), ``write_gradescope`` (the zip), then the zip laid out like ``/autograder`` in a
temporary folder and set up OFFLINE as ``tests/platform_support.py`` describes: a fresh
``venv``, the pinned requirements hard-linked from this environment (the platform downloads
them instead: that network time is not measured here), then the zip's own ``setup.sh`` (pip
resolves every requirement and installs the wheel). Then ``run_autograder`` grades the
solution ``--repeat`` times: wall time per submission (the whole script: interpreter
start-up, the sandbox, every question), the grader's own time (from its stdout) and the
peak memory (the resident memory of its whole process tree, sampled every 0.1 s: what the
container needs). Compare with the 3.2-3.9 s per submission that
``otter run`` took on an equivalent assignment on this kind of machine, with no timeout
protection. The last columns are the platform settings to pick: a timeout of the grader's
own budget for one submission plus start-up, and memory above the peak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # platform_support: the offline image

from platform_support import build_image, gradescope_layout, submit  # noqa: E402

from d2lcnn.grading.authoring import AssignError, assign  # noqa: E402
from d2lcnn.grading.bundle import Bundle  # noqa: E402
from d2lcnn.grading.bundle_format import read_bundle  # noqa: E402
from d2lcnn.grading.platforms import build_wheel, write_gradescope  # noqa: E402


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (KiB, shared pages counted once
    per process: an upper bound), read from /proc; the sandbox's processes are in other
    PID namespaces but visible from here."""
    parent, rss = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            statm = (d / "statm").read_text().split()
        except OSError:
            continue
        parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        rss[int(d.name)] = int(statm[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    tree, todo = {pid}, [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        todo += kids
    return sum(rss.get(p, 0) for p in tree)


def _run_autograder(root: Path) -> tuple[float, float, float, float]:
    """(wall s, grader-reported s, peak resident memory of the whole process tree MiB,
    score) of one run_autograder, sampled every 0.1 s."""
    t = time.perf_counter()
    proc = subprocess.Popen([str(root / "run_autograder")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=root,
                            env={"PATH": os.environ.get("PATH", ""),
                                 "AUTOGRADER_ROOT": str(root)})
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(stdout + stderr)
    inner = float(stdout.split(" in ")[-1].split(" s;")[0])
    score = json.loads((root / "results" / "results.json").read_text())["score"]
    return wall, inner, peak / 1024, score


def _row(src: Path, tmp: Path, wheel: Path, repeat: int) -> list:
    """One assignment: assign, zip, offline image, ``repeat`` runs of the solution."""
    out = tmp / src.stem
    assign(src, out, secret="bench", verify=False)
    zip_path = write_gradescope(out / "autograder", out / "gradescope", wheel)
    root = tmp / f"{src.stem}-image" / "autograder"
    times = build_image(gradescope_layout(zip_path, root), root, root / "venv")
    solution = nbformat.read(out / "autograder" / "solution.ipynb", as_version=4)
    submit(root / "submission", {f"{src.stem}.submission.ipynb":
                                 nbformat.writes(solution).encode()})
    runs = [_run_autograder(root) for _ in range(repeat)]
    meta, _, _ = read_bundle(out / "autograder")
    budget = Bundle(out / "autograder", meta, {}, "").submission_budget()
    rss = max(r[2] for r in runs)
    size = sum(f.stat().st_size for f in (root / "venv").rglob("*") if f.is_file())
    torch = json.loads((root / "source" / "platform.json").read_text())["torch"]
    return [src.stem, torch, f"{times['linked_files']} ({size / 2**20:.0f} MiB)",
            times["venv"] + times["prefill"], times["setup_sh"],
            statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            rss, runs[0][3], budget, max(512, 2 ** math.ceil(math.log2(rss * 1.5)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="hw", help="assignments whose name starts with this")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    sources = sorted((ROOT / "instructor" / "homework").glob(f"{args.only}*.py"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (other processes slow everything down)\n")
    print("| assignment | torch | files linked (installed size) | venv + links s | "
          "setup.sh s | run_autograder s / submission | grader s | peak RSS MiB | score | "
          "grader budget s | memory to pick MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(tmp / "wheel")
        for src in sources:
            try:
                r = _row(src, tmp, wheel, args.repeat)
            except (AssignError, RuntimeError) as e:
                print(f"| {src.stem} | failed: {str(e)[:200]} |", flush=True)
                continue
            print(f"| {r[0]} | {'yes' if r[1] else 'no'} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} | "
                  f"{r[5]:.1f} | {r[6]:.1f} | {r[7]:.0f} | {r[8]:g} | {r[9]:.0f} | {r[10]} |",
                  flush=True)
    print("\n`otter run` on an equivalent assignment: 3.2-3.9 s per submission, no timeout "
          "protection. setup.sh here installs offline; on the platform add the download and "
          "unpacking of the pinned wheels (the installed size above).")


if __name__ == "__main__":
    main()
