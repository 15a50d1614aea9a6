"""Scoring one submission: a notebook (or a file) in, a Gradescope-style result out.

:func:`grade_file` reads a submission (refusing links, special files, oversized or
non-notebook files with a zero result that says why) and hands it to
:func:`grade_notebook`, which selects its cells (:mod:`d2lcnn.grading.cells`), runs each
question in the bundle's sandbox (:class:`d2lcnn.grading.bundle.Bundle`), and scores every
case OUTSIDE the sandbox with :func:`score_case`: the case's checker compares the probe's
output with the expected one. Notes say why anything scored 0; text from the sandbox
reaches them only as grader-known words.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import threading
import time
from pathlib import Path

import nbformat

from d2lcnn.grading.bundle import Bundle
from d2lcnn.grading.cells import select_cells
from d2lcnn.grading.sandbox import CaseRun
from d2lcnn.grading.submissions import MAX_SUBMISSION_BYTES, Refused, read_submission
from d2lcnn.grading.written import collect, entries, rescore

__all__ = ["grade_notebook", "grade_file", "score_case", "empty_result", "forbidden_imports"]

# grade_batch grades submissions in threads, and CPython's parser keeps recursion-depth state
# that concurrent ast.parse calls can corrupt ("SystemError: AST constructor recursion depth
# mismatch", seen once in the attack tests): one parse at a time; it is microseconds.
_PARSE_LOCK = threading.Lock()


def forbidden_imports(cells: list[dict], forbid: list[str]) -> list[str]:
    """Static scan (a note only; the sandbox blocks them at run time)."""
    found = []
    for c in cells:
        try:
            with _PARSE_LOCK:
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
                hit = [f for f in forbid if n == f or n.startswith(f + ".")]
                if hit:  # the forbidden prefix, not the student's text (see brief_error)
                    found.append(f"{c['label']} imports {hit[0]}, which this assignment "
                                 "forbids")
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
    if run.status == "error":  # run.error is brief_error's "Type (line N)"
        m = re.match(r"(\w+)", run.error or "")
        return f"raised {m.group(1)}" if m and m.group(1) != "an" else "raised an exception"
    return "wrong result"


def score_case(meta: dict, run: CaseRun, expected, checker,
               kept=None) -> tuple[float, str, str]:
    """(fraction of the points, detailed message, short kind) for one case.

    ``kept``: for a case with grader-made inputs, what the grader kept of them (e.g. the
    held-out labels); the checker gets it as a third argument."""
    if run.status != "ok":
        kind = _kind(run)
        detail = {"not attempted": "not attempted (the function still raises "
                  "NotImplementedError)"}.get(kind, run.error or kind)
        return 0.0, detail, kind
    try:
        ok, msg = (checker(run.value, expected) if not meta.get("inputs")
                   else checker(run.value, expected, kept))
        frac = float(ok)
        frac = min(max(frac, 0.0), 1.0) if math.isfinite(frac) else 0.0  # NaN: no credit
    except Exception as e:  # noqa: BLE001 - a result the checker cannot handle
        frac, msg = 0.0, f"the result could not be checked ({type(e).__name__}: {e})"[:300]
    return frac, (msg or ""), ("passed" if frac == 1.0 else "wrong result")


def empty_result(bundle: Bundle, name: str, notes: list[str], **extra) -> dict:
    """A zero result for a submission that was not graded, with ``notes`` saying why."""
    tests = [{"name": f"{c['question']}: {c['name']}", "score": 0.0,
              "max_score": c["points"], "output": "not graded",
              "visibility": "after_published" if c["hidden"] else "visible"}
             for c in bundle.meta["cases"]]
    written = bundle.meta.get("written") or {}
    result = {"score": 0.0, "max_score": sum(c["points"] for c in bundle.meta["cases"])
              + sum(w["points"] for w in written.values()),
              "output": "; ".join(notes), "tests": tests,
              "extra_data": {"student": name, "assignment": bundle.name,
                             "bundle_sha256": bundle.sha256, "notes": notes,
                             "questions": {q: [0.0, p] for q, p in
                                           bundle.meta["questions"].items()}, **extra}}
    if written:
        result["extra_data"]["written"] = entries(written, None)
        result["output"] = "; ".join(notes)
    return result


def grade_notebook(bundle: Bundle, nb, *, name: str, deny_read=(), notes=None) -> dict:
    """Grade a parsed notebook (a dict); returns the Gradescope-style result."""
    t0 = time.perf_counter()
    notes = list(notes or [])
    meta = (nb.get("metadata") or {}).get("d2lcnn_grading") or {}
    if meta.get("assignment") not in (None, bundle.name):
        notes.append(f"wrong assignment: this notebook is {meta.get('assignment')!r}, "
                     f"expected {bundle.name!r}")
        return empty_result(bundle, name, notes)
    if not meta:
        notes.append("no assignment metadata (not made from the student notebook?); graded "
                     "anyway")
    elif meta.get("source_sha256") != bundle.meta["source_sha256"]:
        notes.append("made from a different version of the assignment; graded anyway")
    cells, cell_notes, answers = select_cells(bundle.meta["template"], nb)
    notes += cell_notes
    notes += forbidden_imports(cells, bundle.meta["settings"]["forbid"])
    checkers = bundle.checkers()
    skip: dict[int, str] = {}
    tests, q_scores, cell_errors, violations = [], {}, {}, []
    compute = 0.0
    processes = 0
    deadline = time.monotonic() + bundle.submission_budget()
    with bundle.session() as server:  # scored question by question: one run in memory
        for q, q_max in bundle.meta["questions"].items():
            run = bundle.run(q, cells, skip, deny_read, server, deadline)
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
                made = bundle.inputs(c)
                frac, detail, kind = score_case(c, r, bundle.expected.get(c["key"]),
                                                checkers[c["key"]], made and made[1])
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
    written = bundle.meta.get("written") or {}
    answers = collect(written, bundle.meta["template"], nb)
    for q, a in answers.items():
        notes += [f"{q}: {n}" for n in a["notes"]]
        if a["status"] != "answered":
            notes.append(f"{q}: no answer")
    notes += [e for e in cell_errors.values() if e not in " ".join(notes)]
    notes += [f"blocked: {v}" for v in violations]
    total = sum(m for _, m in q_scores.values()) + sum(w["points"] for w in written.values())
    result = {"score": 0.0, "max_score": total, "output": "", "tests": tests,
              "extra_data": {"student": name, "assignment": bundle.name,
                             "bundle_sha256": bundle.sha256, "notes": notes,
                             "questions": q_scores,
                             "timing": {"wall": time.perf_counter() - t0, "compute": compute,
                                        "processes": processes}}}
    if written:
        result["extra_data"]["written"] = entries(written, answers)
    return rescore(result)


def grade_file(bundle: Bundle, path: Path, *, name: str, deny_read=(), root=None) -> dict:
    """Grade one submission file; any unreadable file gives a zero result with a reason.

    The file is read by :func:`read_submission`: a symbolic link (below ``root``, the folder
    it was found in, if given) or anything but a regular file is refused, not followed."""
    path = Path(path)
    try:
        data = read_submission(path, root)
    except Refused as e:
        return empty_result(bundle, name, [str(e)], submission=str(path))
    except OSError as e:
        return empty_result(bundle, name, [f"cannot read the file: {e}"], submission=str(path))
    sha = hashlib.sha256(data).hexdigest()
    extra = {"submission": str(path), "submission_sha256": sha}
    if len(data) > MAX_SUBMISSION_BYTES:
        return empty_result(bundle, name, ["the file is larger than 50 MiB"], **extra)
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        why = "not a Jupyter notebook (invalid JSON" + (
            f" at line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ", not UTF-8)")
        return empty_result(bundle, name, [why], **extra)
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return empty_result(bundle, name, ["not a Jupyter notebook (no list of cells)"],
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
