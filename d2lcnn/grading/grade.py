"""Grading submissions against an autograder bundle: one file, or a batch in parallel.

Every submission gets a result, whatever is wrong with it; a batch never stops on one
student. Results are written atomically, ``results.json`` last, and carry the hashes of the
submission and the bundle, so a re-run skips what is already graded (resume) and rebuilds
``grades.csv`` from the result files (idempotent).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from d2lcnn.grading import checks
from d2lcnn.grading.authoring import BUNDLE_FORMAT, bundle_hash, load_cases, write_atomic
from d2lcnn.grading.payload import unpack
from d2lcnn.grading.sandbox import (
    CaseRun,
    Limits,
    SpawnLauncher,
    ZygoteLauncher,
    run_question,
)

__all__ = ["Bundle", "grade_notebook", "grade_file", "grade_batch", "submission_name"]

MAX_SUBMISSION_BYTES = 50 * 2**20


@dataclass
class Bundle:
    """A loaded autograder directory (``bundle.json``, ``expected.npz``)."""

    dir: Path
    meta: dict
    expected: dict
    sha256: str

    @classmethod
    def load(cls, directory) -> Bundle:
        directory = Path(directory)
        meta = json.loads((directory / "bundle.json").read_text())
        if meta.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{directory}: bundle format {meta.get('format')!r}, "
                             f"this grader reads {BUNDLE_FORMAT}")
        expected = unpack((directory / "expected.npz").read_bytes())
        return cls(directory, meta, expected, bundle_hash(directory))

    @property
    def name(self) -> str:
        return self.meta["assignment"]

    @property
    def limits(self) -> Limits:
        s = self.meta["settings"]
        return Limits(case_timeout=float(s["case_timeout"]),
                      cell_timeout=float(s["cell_timeout"]), memory_mb=int(s["memory_mb"]),
                      output_kb=int(s["output_kb"]), cpu_seconds=s.get("cpu_seconds"),
                      preload=tuple(s.get("preload") or ()))

    def launcher(self):
        """This thread's sandbox launcher: a fork server with the bundle's preloads (default),
        or a fresh interpreter per question if ``D2LCNN_GRADING_SANDBOX=spawn``."""
        if os.environ.get("D2LCNN_GRADING_SANDBOX") == "spawn":
            return SpawnLauncher()
        if not hasattr(self, "_local"):
            self._local, self._launchers, self._lock = threading.local(), [], threading.Lock()
        z = getattr(self._local, "zygote", None)
        if z is None or z.proc.poll() is not None:
            z = self._local.zygote = ZygoteLauncher(self.meta["settings"].get("preload") or ())
            with self._lock:
                self._launchers.append(z)
        return z

    def close(self) -> None:
        """Stop the fork servers this bundle started."""
        for z in getattr(self, "_launchers", []):
            z.close()
        if hasattr(self, "_launchers"):
            self._launchers.clear()
            self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def checkers(self) -> dict:
        """case key -> checker callable (runs the bundle's test code in THIS process)."""
        if not hasattr(self, "_checkers"):
            cases, _, scope = load_cases(self.meta["tests"], self.meta["autograder"])
            out = {}
            for key, c in cases.items():
                chk = c.checker
                out[key] = scope[chk] if isinstance(chk, str) else chk or checks.close()
            self._checkers = out
        return self._checkers

    def run_probes(self, nb, *, deny_read=()) -> dict[str, CaseRun]:
        """Run every case on ``nb`` (no matching, no notes): used by ``assign``."""
        cells, _, _ = select_cells(self, nb)
        runs: dict[str, CaseRun] = {}
        skip: dict[int, str] = {}
        for q in self.meta["questions"]:
            r = self._run(q, cells, skip, deny_read)
            bad = [f"{c.label}: {c.error}" for c in r.cells.values() if c.error]
            if bad:
                raise ValueError(f"a cell of the solution failed in the sandbox ({bad[0]}); "
                                 "check the settings' forbid/preload and memory limits")
            runs.update(r.cases)
        return runs

    def _run(self, q, cells, skip, deny_read):
        cases = [{"key": c["key"], "seed": c["seed"], "timeout": c["timeout"]}
                 for c in self.meta["cases"] if c["question"] == q]
        return run_question(cells, [t["source"] for t in self.meta["tests"]], cases,
                            limits=self.limits, forbid=self.meta["settings"]["forbid"],
                            deny_read=[str(self.dir), f"/proc/{os.getpid()}",
                                       *map(str, deny_read)],
                            stubs=self.meta["stubs"], skip_cells=skip,
                            launcher=self.launcher())


# --- reading a submission --------------------------------------------------------------


def _source(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else str(s)


def _tags(cell) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _strip_magics(src: str) -> str:
    lines = src.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass  # IPython magic removed", line)
                     for line in lines)


def select_cells(bundle: Bundle, nb) -> tuple[list[dict], list[str], dict[str, list[int]]]:
    """The cells the sandbox runs, notes about tagged cells, and question -> answer cells.

    Tagged cells are matched by tag, then by cell id; check and setup cells are never run
    (the sandbox defines ``check``/``submit``/``grader`` as no-ops instead), nor are cells
    tagged ``demo`` (the student's own experiments, e.g. training on a validation split).
    """
    notes: list[str] = []
    cells = [c for c in nb.get("cells", []) if isinstance(c, dict)]
    skip: set[int] = set()
    answers: dict[str, list[int]] = {}
    for t in bundle.meta["template"]:
        role, q = t["role"], t["question"]
        if role not in ("answer", "check", "setup"):
            continue
        what = {"answer": f"the answer cell of {q}", "check": f"the check cell of {q}",
                "setup": "the setup cell"}[role]
        found = [i for i, c in enumerate(cells)
                 if role in _tags(c) and (q is None or q in _tags(c))]
        if not found:
            found = [i for i, c in enumerate(cells) if c.get("id") == t["id"]]
            if found:
                notes.append(f"{what} was found by its id; its tags were edited")
        if not found:
            notes.append(f"{what} is missing" + (" (harmless)" if role == "check" else ""))
        elif len(found) > 1:
            notes.append(f"{what} appears {len(found)} times (cells "
                         f"{', '.join(str(i + 1) for i in found)}); all are run in order"
                         if role == "answer" else f"{what} appears {len(found)} times")
        if role == "answer":
            answers[q] = found
        else:
            skip.update(found)
            for i in found:
                src = _source(cells[i])
                if role == "check" and hashlib.sha256(src.encode()).hexdigest() != t["sha256"]:
                    notes.append(f"{what} (cell {i + 1}) was edited; check cells are not run "
                                 "by the grader, so code in it does not count")
    owner = {i: q for q, idx in answers.items() for i in idx}
    run = []
    for i, c in enumerate(cells):
        if c.get("cell_type") != "code" or i in skip or "demo" in _tags(c):
            continue
        label = f"cell {i + 1}" + (f" (answer {owner[i]})" if i in owner else "")
        run.append({"key": i, "label": label, "source": _strip_magics(_source(c))})
    return run, notes, answers


def forbidden_imports(cells: list[dict], forbid: list[str]) -> list[str]:
    """Static scan (a note only; the sandbox blocks them at run time)."""
    found = []
    for c in cells:
        try:
            tree = ast.parse(c["source"])
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                fn = node.func
                fname = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
                if fname in ("__import__", "import_module"):
                    names = [node.args[0].value]
            for n in names:
                if any(n == f or n.startswith(f + ".") for f in forbid):
                    found.append(f"{c['label']} imports {n}, which this assignment forbids")
                    break
    return list(dict.fromkeys(found))


# --- scoring ---------------------------------------------------------------------------


def _kind(run: CaseRun) -> str:
    if run.status == "not_attempted":
        return "not attempted"
    if run.status == "timeout":
        return "timed out"
    if run.status == "crash":
        return "the process crashed"
    if run.status == "error":
        m = re.match(r"(\w+):", run.error or "")
        return f"raised {m.group(1)}" if m else "error"
    return "wrong result"


def score_case(meta: dict, run: CaseRun, expected, checker) -> tuple[float, str, str]:
    """(fraction of the points, detailed message, short kind) for one case."""
    if run.status != "ok":
        kind = _kind(run)
        detail = {"not attempted": "not attempted (the function still raises "
                  "NotImplementedError)"}.get(kind, run.error or kind)
        return 0.0, detail, kind
    try:
        ok, msg = checker(run.value, expected)
        frac = min(max(float(ok), 0.0), 1.0)
    except Exception as e:  # noqa: BLE001 - a result the checker cannot handle
        frac, msg = 0.0, f"the result could not be checked ({type(e).__name__}: {e})"[:300]
    return frac, (msg or ""), ("passed" if frac == 1.0 else "wrong result")


def _empty_result(bundle: Bundle, name: str, notes: list[str], **extra) -> dict:
    tests = [{"name": f"{c['question']}: {c['name']}", "score": 0.0,
              "max_score": c["points"], "output": "not graded",
              "visibility": "after_published" if c["hidden"] else "visible"}
             for c in bundle.meta["cases"]]
    return {"score": 0.0, "max_score": sum(c["points"] for c in bundle.meta["cases"]),
            "output": "; ".join(notes), "tests": tests,
            "extra_data": {"student": name, "assignment": bundle.name,
                           "bundle_sha256": bundle.sha256, "notes": notes,
                           "questions": {q: [0.0, p] for q, p in
                                         bundle.meta["questions"].items()}, **extra}}


def grade_notebook(bundle: Bundle, nb, *, name: str, deny_read=(), notes=None) -> dict:
    """Grade a parsed notebook (a dict); returns the Gradescope-style result."""
    t0 = time.perf_counter()
    notes = list(notes or [])
    meta = (nb.get("metadata") or {}).get("d2lcnn_grading") or {}
    if meta.get("assignment") not in (None, bundle.name):
        notes.append(f"wrong assignment: this notebook is {meta.get('assignment')!r}, "
                     f"expected {bundle.name!r}")
        return _empty_result(bundle, name, notes)
    if not meta:
        notes.append("no assignment metadata (not made from the student notebook?); graded "
                     "anyway")
    elif meta.get("source_sha256") != bundle.meta["source_sha256"]:
        notes.append("made from a different version of the assignment; graded anyway")
    cells, cell_notes, answers = select_cells(bundle, nb)
    notes += cell_notes
    notes += forbidden_imports(cells, bundle.meta["settings"]["forbid"])
    checkers = bundle.checkers()
    skip: dict[int, str] = {}
    tests, q_scores, cell_errors, violations = [], {}, {}, []
    compute = 0.0
    processes = 0
    for q, q_max in bundle.meta["questions"].items():
        run = bundle._run(q, cells, skip, deny_read)
        processes += run.processes
        compute += run.compute
        for k, c in run.cells.items():
            if c.error and k not in cell_errors:
                cell_errors[k] = f"{c.label}: {c.error}"
        violations += [v for v in run.violations if v not in violations]
        notes += [n for n in run.notes if n not in notes]
        got, kinds = 0.0, []
        for c in (c for c in bundle.meta["cases"] if c["question"] == q):
            r = run.cases.get(c["key"]) or CaseRun(c["key"], "crash", error="no result")
            frac, detail, kind = score_case(c, r, bundle.expected.get(c["key"]),
                                            checkers[c["key"]])
            got += frac * c["points"]
            kinds.append(kind)
            if c["hidden"]:
                output = "passed" if kind == "passed" else f"failed: {kind}"
            else:
                output = "passed" if kind == "passed" else f"failed: {detail}" + (
                    f"\nhint: {c['hint']}" if c["hint"] else "")
            tests.append({"name": f"{q}: {c['name']}", "score": round(frac * c["points"], 6),
                          "max_score": c["points"], "output": output,
                          "visibility": "after_published" if c["hidden"] else "visible"})
        q_scores[q] = [round(got, 6), q_max]
        if all(k == "not attempted" for k in kinds):
            notes.append(f"{q}: not attempted")
        elif got == 0:
            errs = [cell_errors[i] for i in answers.get(q, []) if i in cell_errors]
            if errs:
                notes.append(f"{q}: 0 points; its answer cell failed ({errs[0]})")
            elif not answers.get(q):
                notes.append(f"{q}: 0 points; its answer cell is missing")
            else:
                notes.append(f"{q}: 0 points; all cases failed (first: {kinds[0]})")
        elif got < q_max:
            failed = sum(k != "passed" for k in kinds)
            notes.append(f"{q}: {got:g}/{q_max:g} ({failed} of {len(kinds)} cases failed)")
    notes += [e for e in cell_errors.values() if e not in " ".join(notes)]
    notes += [f"blocked: {v}" for v in violations]
    score = round(sum(s for s, _ in q_scores.values()), 6)
    total = sum(m for _, m in q_scores.values())
    return {"score": score, "max_score": total,
            "output": f"{score:g} / {total:g} points" + ("; " + "; ".join(notes) if notes
                                                         else ""),
            "tests": tests,
            "extra_data": {"student": name, "assignment": bundle.name,
                           "bundle_sha256": bundle.sha256, "notes": notes,
                           "questions": q_scores,
                           "timing": {"wall": time.perf_counter() - t0, "compute": compute,
                                      "processes": processes}}}


def grade_file(bundle: Bundle, path: Path, *, name: str, deny_read=()) -> dict:
    """Grade one submission file; any unreadable file gives a zero result with a reason."""
    import nbformat

    path = Path(path)
    try:
        data = path.read_bytes()[: MAX_SUBMISSION_BYTES + 1]
    except OSError as e:
        return _empty_result(bundle, name, [f"cannot read the file: {e}"])
    sha = hashlib.sha256(data).hexdigest()
    extra = {"submission": str(path), "submission_sha256": sha}
    if len(data) > MAX_SUBMISSION_BYTES:
        return _empty_result(bundle, name, ["the file is larger than 50 MiB"], **extra)
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        why = "not a Jupyter notebook (invalid JSON" + (
            f" at line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ", not UTF-8)")
        return _empty_result(bundle, name, [why], **extra)
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return _empty_result(bundle, name, ["not a Jupyter notebook (no list of cells)"],
                             **extra)
    notes = []
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # noqa: BLE001 - grade what we can of a damaged notebook
        notes.append(f"the notebook does not validate ({type(e).__name__}); graded anyway")
        nb = raw
    result = grade_notebook(bundle, nb, name=name, deny_read=deny_read, notes=notes)
    result["extra_data"].update(extra)
    return result


# --- batches ---------------------------------------------------------------------------


def expand(paths) -> list[Path]:
    """Files named on the command line, and every non-hidden file under named folders."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not any(
                part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def submission_name(path: Path, assignment: str) -> str:
    """``alice.ipynb`` -> alice; ``alice/hw1-convolution.ipynb`` -> alice."""
    stem = path.name.split(".")[0]
    name = path.parent.name if stem == assignment and path.parent.name else stem
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name) or "submission"


def feedback_markdown(result: dict) -> str:
    x = result["extra_data"]
    lines = [f"# {x['assignment']}: feedback for {x['student']}", "",
             f"**Score: {result['score']:g} / {result['max_score']:g}**", "",
             "| question | points |", "| --- | --- |"]
    lines += [f"| {q} | {s:g} / {m:g} |" for q, (s, m) in x["questions"].items()]
    lines += ["", "## Test cases", ""]
    for t in result["tests"]:
        mark = "passed" if t["score"] == t["max_score"] else "FAILED"
        hidden = " (hidden)" if t["visibility"] != "visible" else ""
        lines.append(f"- **{t['name']}**{hidden}: {t['score']:g}/{t['max_score']:g}, {mark}")
        if mark == "FAILED":
            lines += [f"  {line}" for line in t["output"].split("\n")]
    if x["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in x["notes"]]
    return "\n".join(lines) + "\n"


def _grade_one(bundle: Bundle, path: Path, name: str, out: Path, deny_read) -> tuple[dict,
                                                                                     bool]:
    target = out / name / "results.json"
    sha = hashlib.sha256(path.read_bytes()[: MAX_SUBMISSION_BYTES + 1]).hexdigest() \
        if path.is_file() else None
    if target.exists():
        try:
            old = json.loads(target.read_text())
            x = old["extra_data"]
            if x["submission_sha256"] == sha and x["bundle_sha256"] == bundle.sha256:
                return old, True
        except (ValueError, KeyError, TypeError):
            pass
    try:
        result = grade_file(bundle, path, name=name, deny_read=deny_read)
    except Exception as e:  # noqa: BLE001 - a grader bug must not stop the batch
        result = _empty_result(bundle, name, [f"internal grader error: {type(e).__name__}: "
                                              f"{e}"], submission=str(path))
        return result, False  # no results.json: retried on the next run
    write_atomic(out / name / "feedback.md", feedback_markdown(result))
    write_atomic(target, json.dumps(result, indent=1, default=float))
    return result, False


def grade_batch(bundle_dir, paths, out, *, jobs: int = 1, progress: bool = True) -> dict:
    """Grade many submissions into ``out``; returns ``{"rows", "graded", "skipped"}``."""
    with Bundle.load(bundle_dir) as bundle:
        return _grade_batch(bundle, paths, Path(out), jobs=jobs, progress=progress)


def _grade_batch(bundle: Bundle, paths, out: Path, *, jobs: int, progress: bool) -> dict:
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    files = expand(paths)
    names, seen = [], {}
    for f in files:
        n = submission_name(f, bundle.name)
        seen[n] = seen.get(n, 0) + 1
        names.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    deny = [out.resolve(), *(f.resolve() for f in files)]  # no peeking at classmates
    results, skipped = {}, 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(files), desc=f"grading {bundle.name}", unit="submission",
                 disable=not progress) as bar:
        futures = {pool.submit(_grade_one, bundle, f, n, out, deny): n
                   for f, n in zip(files, names, strict=True)}
        for fut in as_completed(futures):
            result, reused = fut.result()
            results[futures[fut]] = result
            skipped += reused
            bar.update(1)
    qs = list(bundle.meta["questions"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "file", *qs, "total", "max", "notes"])
    rows = []
    for f, n in zip(files, names, strict=True):
        r = results[n]
        x = r["extra_data"]
        row = [n, str(f), *(f"{x['questions'][q][0]:g}" for q in qs), f"{r['score']:g}",
               f"{r['max_score']:g}", "; ".join(x["notes"])]
        w.writerow(row)
        rows.append(dict(zip(["student", "file", *qs, "total", "max", "notes"], row,
                             strict=True)))
    write_atomic(out / "grades.csv", buf.getvalue())
    return {"rows": rows, "graded": len(files) - skipped, "skipped": skipped}
