"""Grading one submission on a platform: Gradescope's ``run_autograder`` and PrairieLearn's
entry point (both written by :mod:`d2lcnn.grading.platforms`) run this module.

``python -I -m d2lcnn.grading.platform_run gradescope --root /autograder`` reads the bundle
from ``ROOT/source/bundle`` and the platform settings from ``ROOT/source/platform.json``,
finds the ONE notebook in ``ROOT/submission`` (any name, in any folder of it; none or
several give a zero with a message saying what to upload), grades it with the same engine
as ``python -m d2lcnn.grading grade`` (:func:`d2lcnn.grading.scoring.grade_file`, so the
same file gets the same score) and writes ``ROOT/results/results.json`` in Gradescope's
format. ``prairielearn --root /grade`` does the same from ``ROOT/tests`` and
``ROOT/student`` into PrairieLearn's format (``score`` in [0, 1], ``tests`` with points).

Every failure of the grader itself still writes a results file (score 0, a message for the
student, the reason on standard output for the instructor), so a submission never ends
without a result.

Run as root (as both platforms do), the grading step reads what only it may read (the
bundle, root's and mode 0700 after ``setup.sh``; the submission, copied to a private
folder) and opens the results file, then, in ``process`` isolation, becomes ``nobody``
before any student code runs (:func:`drop_privileges`): the sandbox's processes, children
of the grader, can then neither read the bundle nor write a result, where bwrap's
namespaces (the default) are not available. In ``bwrap`` isolation the grader stays root
(bubblewrap needs it) and the sandbox never sees the layout at all.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
import time
import traceback
from pathlib import Path

from d2lcnn.grading.bundle import Bundle, IsolationUnavailable
from d2lcnn.grading.isolation import NOBODY, drop_root, set_dumpable
from d2lcnn.grading.scoring import empty_result, grade_file
from d2lcnn.grading.submissions import Refused, expand, read_submission, submission_name

__all__ = ["find_notebooks", "grade_submission", "gradescope_results",
           "prairielearn_results", "drop_privileges", "run", "main", "LAYOUTS"]

# platform -> (folder of the bundle and platform.json, submission folder, results file)
LAYOUTS = {
    "gradescope": ("source", "submission", "results/results.json"),
    "prairielearn": ("tests", "student", "results/results.json"),
}
_NAME_CHARS = 80  # of a file name echoed back to the student


def find_notebooks(folder: Path) -> list:
    """The ``.ipynb`` files under ``folder`` (hidden files and folders, such as
    ``.ipynb_checkpoints``, left out; links listed, never followed), as
    :class:`d2lcnn.grading.submissions.Submission`."""
    if not Path(folder).is_dir():
        return []
    return [s for s in expand([folder]) if s.path.name.lower().endswith(".ipynb")]


def _short(name) -> str:
    text = str(name)
    return text if len(text) <= _NAME_CHARS else text[:_NAME_CHARS - 3] + "..."


def _private_copy(s, private: Path) -> Path:
    """The submission's bytes, read as the grader (links refused), in ``private``, a folder
    of the sandbox's user; a file that cannot be read is left for grade_file to report."""
    try:
        data = read_submission(s.path, s.root)
    except (Refused, OSError):
        return s.path
    copy = private / "submission.ipynb"
    copy.write_bytes(data)
    if os.geteuid() == 0:
        os.chown(private, NOBODY, NOBODY)
        os.chown(copy, NOBODY, NOBODY)
    return copy


def grade_submission(bundle: Bundle, folder: Path, *, before=None) -> dict:
    """The result (:func:`d2lcnn.grading.scoring.grade_notebook`'s dict) of the one notebook
    in ``folder``; a zero result saying why if there is none or more than one. ``before``
    is called once the submission is read, before any of it runs."""
    found = find_notebooks(folder)
    upload = f"upload the one notebook that submit() wrote ({bundle.name}.submission.ipynb)"
    if not found or len(found) > 1:
        if before:
            before()
        if not found:
            return empty_result(bundle, "submission", [f"no notebook (.ipynb) in the "
                                                       f"submission: {upload}"])
        names = ", ".join(_short(s.rel) for s in found[:5]) + (", ..." if len(found) > 5
                                                                else "")
        return empty_result(bundle, "submission", [f"{len(found)} notebooks in the submission "
                                                   f"({names}); nothing was graded: {upload}"])
    s = found[0]
    with tempfile.TemporaryDirectory(prefix="d2lcnn-submission-") as private:
        path = _private_copy(s, Path(private))
        if before:
            before()
        name = submission_name(s.rel, bundle.name)
        if path == s.path:
            return grade_file(bundle, s.path, name=name, root=s.root)
        return grade_file(bundle, path, name=name, root=Path(private))


def _automatic_part(result: dict) -> tuple[float, float, str]:
    """``(score, max_score, output)`` of a result without its written questions, which the
    platform's own manual grading scores: no automatic points, and the output says so."""
    written = result.get("extra_data", {}).get("written") or {}
    if not written:
        return result["score"], result["max_score"], result["output"]
    manual = sum(e["max"] for e in written.values())
    entered = sum(e["points"] or 0.0 for e in written.values())
    names = ", ".join(written)
    text = (f"{round(result['score'] - entered, 6):g} / {result['max_score'] - manual:g} "
            f"points graded automatically. Written question(s) {names} "
            f"({manual:g} points) are graded by hand by your course staff, not by the "
            "autograder, and are not in this score.")
    notes = result["extra_data"].get("notes") or []
    return (round(result["score"] - entered, 6), result["max_score"] - manual,
            text + ("\n" + "; ".join(notes) if notes else ""))


def gradescope_results(result: dict, *, hidden_visibility: str, seconds: float) -> dict:
    """Gradescope's ``results.json`` from a result: public cases ``visible``, hidden ones
    ``hidden_visibility``; their output is the grader's (never a hidden input or code).
    Written questions get no automatic points (grade them as Gradescope's manually graded
    questions); the output says so."""
    tests = []
    for t in result["tests"]:
        hidden = t["visibility"] != "visible"
        tests.append({"name": t["name"], "score": t["score"], "max_score": t["max_score"],
                      "status": "passed" if t["score"] >= t["max_score"] else "failed",
                      "output": t["output"],
                      "visibility": hidden_visibility if hidden else "visible"})
    x = result["extra_data"]
    score, _, output = _automatic_part(result)
    return {"score": score, "execution_time": max(0, round(seconds)),
            "output": output, "output_format": "text",
            "test_output_format": "text", "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {k: x[k] for k in ("assignment", "student", "notes", "questions",
                                             "bundle_sha256", "submission_sha256") if k in x}
            | {"max_score": _automatic_part(result)[1],
               "written": {q: e["max"] for q, e in (x.get("written") or {}).items()}}}


def prairielearn_results(result: dict, *, hidden_visibility: str, seconds: float) -> dict:
    """PrairieLearn's ``results.json``: ``score`` = points / max in [0, 1], a test per case
    (hidden cases left out of the list when ``hidden_visibility`` is ``"hidden"``; they
    still count). Written questions are not in it (give them manual points in the
    assessment); the message says so."""
    auto, total, output = _automatic_part(result)
    total = float(total)
    score = min(1.0, max(0.0, auto / total)) if total > 0 else 0.0
    tests = [{"name": t["name"] + ("" if t["visibility"] == "visible" else " (hidden)"),
              "points": t["score"], "max_points": t["max_score"], "output": t["output"]}
             for t in result["tests"]
             if t["visibility"] == "visible" or hidden_visibility != "hidden"]
    return {"gradable": True, "score": round(score, 6),
            "message": f"{output} ({seconds:.0f} s)", "tests": tests}


def _failed(bundle_meta: dict | None, why: str) -> dict:
    """A zero result when the grader itself could not run (no bundle, no sandbox)."""
    cases = (bundle_meta or {}).get("cases") or []
    text = ("The autograder could not grade this submission (a problem on the grader's side, "
            "not in your notebook); your instructor sees why. Submit again later.")
    return {"score": 0.0, "max_score": sum(c["points"] for c in cases), "output": text,
            "tests": [], "extra_data": {"notes": [why], "student": "submission",
                                        "assignment": (bundle_meta or {}).get("assignment")}}


def _reachable_by_others(path: str) -> bool:
    """Every folder on ``path`` lets other users through (the sandbox's user can start the
    interpreter there): true of a system Python, not of one under a 0700 home."""
    # Both the environment's own folders (a venv's bin/python is a link, often to a system
    # interpreter: its site-packages are still under the venv) and the link's target.
    paths = [Path(path).absolute(), Path(path).resolve()]
    return all(os.stat(d).st_mode & stat.S_IXOTH
               for p in paths for d in [p.parent, *p.parent.parents])


def drop_privileges() -> bool:
    """Become ``nobody`` (no groups, no capabilities, not dumpable) if root; True if it was
    done, False if not root. Fails closed: a root grader that cannot drop (an interpreter
    that user cannot reach, e.g. under a 0700 home) raises ``RuntimeError`` instead of
    running a submission as root, which could read the bundle and rewrite the results."""
    if os.geteuid() != 0:
        return False
    if not _reachable_by_others(sys.executable):
        raise RuntimeError(f"{sys.executable} is not reachable by other users, so the grader "
                           "cannot drop root before running the submission: install the "
                           "environment where every user can read it (setup.sh does)")
    drop_root()
    set_dumpable(False)
    return True


def _open_results(path: Path) -> int:
    """The results file, opened (and emptied) while the grader may still write there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                   | getattr(os, "O_CLOEXEC", 0), 0o644)


def run(platform: str, root: Path) -> dict:
    """Grade the submission of a platform layout rooted at ``root``; write and return its
    results file's content."""
    t0 = time.perf_counter()
    home, submission, results = (Path(root) / p for p in LAYOUTS[platform])
    meta, config = None, {}
    fd = _open_results(results)
    try:
        config = json.loads((home / "platform.json").read_text())
        with Bundle.load(home / "bundle", isolation=config["isolation"]) as bundle:
            meta = bundle.meta
            bundle.prestart = 0  # one submission per container: no spare sandbox to warm
            bundle.checkers()  # the tests, loaded while the bundle is readable
            before = drop_privileges if config["isolation"] == "process" else None
            result = grade_submission(bundle, submission, before=before)
    except IsolationUnavailable as e:
        result = _failed(meta, f"the sandbox is unavailable here: {e}")
    except Exception as e:  # noqa: BLE001 - a grader failure still writes a result
        result = _failed(meta, f"internal grader error: {type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stdout)
    seconds = time.perf_counter() - t0
    convert = gradescope_results if platform == "gradescope" else prairielearn_results
    out = convert(result, hidden_visibility=config.get("hidden_visibility", "after_published"),
                  seconds=seconds)
    with os.fdopen(fd, "w") as f:
        json.dump(out, f, indent=1, default=float)
    # Standard output goes to the instructor only (Gradescope: stdout_visibility hidden).
    x = result["extra_data"]
    print(f"{x.get('assignment')}: {result['score']:g} / {result['max_score']:g} in "
          f"{seconds:.1f} s; notes: {'; '.join(x.get('notes') or []) or 'none'}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m d2lcnn.grading.platform_run",
                                description="Grade the submission of a Gradescope or "
                                            "PrairieLearn layout (see the module docstring).")
    p.add_argument("platform", choices=sorted(LAYOUTS))
    p.add_argument("--root", type=Path, required=True,
                   help="the layout's root (/autograder on Gradescope, /grade on "
                        "PrairieLearn)")
    args = p.parse_args(argv)
    run(args.platform, args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
