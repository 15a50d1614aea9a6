"""Mutation testing of the modules where a silent error hurts most (``make mutate``).

mutmut (pinned in the dev extra; configured in pyproject.toml, ``[tool.mutmut]``) copies
the package and the tests to ``mutants/`` and plants every mutant there, so the work tree is
never modified. Each mutant runs only the selected tests that call the mutated function
(mutmut's own test-to-function map, built in one traced run of the selected tests).

All ~9,600 mutants would take hours, so a deterministic sample is run: ``--per-module``
mutants from each file (a seeded shuffle of its mutants, the same every run for the same
source), all of them for a file with fewer. Then the kill rate per module and every
surviving mutant (its diff) are printed. A mutant that changes only the text of a string
(mutmut's ``"XX...XX"`` and case mutants: mostly error messages, which tests match by
their key words) is counted apart from those that change what the code computes.

    python tools/mutate.py                   # the sample (default 8 per module), 2 workers
    python tools/mutate.py --per-module 0    # every mutant (hours)
    python tools/mutate.py --keep            # reuse mutants/ (and the test map) of a last run
    python tools/mutate.py --report          # the table and survivors of the last run again

Exit status 0 whatever the kill rate: the output is for reading, not a gate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = [str(Path(sys.executable).with_name("mutmut"))]  # not -m: mutmut warns against it
KILLED = {1, 3}  # pytest failed, or pytest's internal error
TIMEOUT = {36, -24, 24, 152, 255}  # SIGXCPU: an endless loop is caught too
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not run"}


def all_mutants() -> dict[str, list[str]]:
    """Module (dotted) -> its mutant names, from mutmut's ``.meta`` files."""
    out = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        names = sorted(json.loads(meta.read_text())["exit_code_by_key"])
        if names:
            out[module_of(names[0])] = names
    return out


def module_of(mutant: str) -> str:
    """``d2lcnn.numpy.conv.xǁ...`` or ``d2lcnn.numpy.conv.x_conv2d__mutmut_3`` -> module."""
    return re.split(r"\.x[ǁ_]", mutant, maxsplit=1)[0]


def results() -> dict[str, int | None]:
    out = {}
    for meta in (ROOT / "mutants").rglob("*.py.meta"):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def sample(mutants: dict[str, list[str]], per_module: int, seed: int) -> list[str]:
    chosen = []
    for module, names in sorted(mutants.items()):
        if per_module and len(names) > per_module:
            names = random.Random(f"{seed}:{module}").sample(names, per_module)
        chosen += sorted(names)
    return chosen


def mutmut(*args: str, check: bool = True) -> None:
    # mutmut's spinner redraws one line; its own summary is printed below instead.
    # CI=true: hypothesis derandomized (tests/conftest.py), as in CI, so a verdict repeats.
    done = subprocess.run([*MUTMUT, *args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=dict(os.environ, CI="true"))
    (ROOT / "mutants").mkdir(exist_ok=True)
    with open(ROOT / "mutants" / "mutmut-output.log", "a") as log:
        log.write(done.stdout)
    if check and done.returncode != 0:
        sys.exit(f"mutmut {args[0]} failed (exit {done.returncode}); see "
                 f"mutants/mutmut-output.log:\n{done.stdout[-3000:]}")


def diff(mutant: str) -> str:
    done = subprocess.run([*MUTMUT, "show", mutant], cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    return "\n".join(ln for ln in lines if ln.startswith(("-", "+")) and
                     not ln.startswith(("---", "+++")))


def text_only(change: str) -> bool:
    """Whether a mutant changes only a string's text (``"XXa bXX"``, ``"A B"``, ``"a b"``)."""
    removed = [ln[1:] for ln in change.splitlines() if ln.startswith("-")]
    added = [ln[1:] for ln in change.splitlines() if ln.startswith("+")]
    if len(removed) != len(added) or not removed:
        return False

    def code(line: str) -> str:  # the line with every string literal's text blanked
        return re.sub(r"""(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?P=q)""", '""', line)

    return all(code(a) == code(r) for r, a in zip(removed, added, strict=True))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-module", type=int, default=8,
                        help="mutants sampled from each file; 0 runs every mutant")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true",
                        help="reuse mutants/ from the last run instead of starting afresh")
    parser.add_argument("--report", action="store_true",
                        help="only print the report of the last run's sample (nothing runs)")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    if args.report:
        report(sample(all_mutants(), args.per_module, args.seed), 0.0)
        return 0
    if not args.keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    # 1. Plant the mutants and map tests to functions: one traced run of the selected tests.
    #    The few mutants named here (History.as_dict's, with its few tests) only make
    #    mutmut stop after that; the sample is chosen from what it planted.
    print("== planting mutants and tracing the selected tests (a few minutes)", flush=True)
    mutmut("run", "--max-children", str(args.jobs), "d2lcnn.train.history.xǁHistoryǁas_dict*")
    chosen = sample(all_mutants(), args.per_module, args.seed)
    total = sum(len(v) for v in all_mutants().values())
    print(f"== running {len(chosen)} of {total} mutants on {args.jobs} workers "
          f"({time.monotonic() - t0:.0f} s so far)", flush=True)
    mutmut("run", "--max-children", str(args.jobs), *chosen)
    report(chosen, time.monotonic() - t0)
    return 0


def report(chosen: list[str], seconds: float) -> None:
    codes = results()
    rows = defaultdict(lambda: defaultdict(int))
    survivors = []
    for name in chosen:
        code, module = codes.get(name), module_of(name)
        if code in KILLED or code in TIMEOUT:
            rows[module]["killed"] += 1
            continue
        status = STATUS.get(code, f"exit {code}")
        change = diff(name) if status in ("survived", "no tests") else ""
        kind = "text" if status == "survived" and text_only(change) else status
        rows[module][kind] += 1
        survivors.append((name, kind, change))
    print(f"\n{'module':32} {'run':>4} {'killed':>6} {'survived':>8} {'text':>4} "
          f"{'other':>5}  kill rate (without text-only)")
    totals = defaultdict(int)
    for module, row in sorted(rows.items()):
        other = sum(v for k, v in row.items() if k not in ("killed", "survived", "text"))
        n = row["killed"] + row["survived"] + row["text"] + other
        for k, v in (("run", n), ("killed", row["killed"]), ("survived", row["survived"]),
                     ("text", row["text"]), ("other", other)):
            totals[k] += v
        print(f"{module:32} {n:4} {row['killed']:6} {row['survived']:8} {row['text']:4} "
              f"{other:5}  {rate(row['killed'], n - row['text'])}")
    print(f"{'all':32} {totals['run']:4} {totals['killed']:6} {totals['survived']:8} "
          f"{totals['text']:4} {totals['other']:5}  "
          f"{rate(totals['killed'], totals['run'] - totals['text'])}")
    print("\n(text: survivors that change only a string's text, mostly error messages; other: "
          "no test calls the function, or not run)")
    for kind in ("survived", "no tests", "text"):
        listed = [s for s in survivors if s[1] == kind]
        if listed:
            print(f"\n== {kind} ({len(listed)})")
        for name, _, change in listed:
            print(f"\n{name}\n{change}")
    if seconds:
        print(f"\nwall time {seconds / 60:.1f} min", end="; ")
    print("results stay in mutants/ (.venv/bin/mutmut results, .venv/bin/mutmut show NAME)")


def rate(killed: int, n: int) -> str:
    return f"{100 * killed / n:5.1f}%" if n else "    -"


if __name__ == "__main__":
    sys.exit(main())
