"""Grading submissions against an autograder bundle: one file, or a batch in parallel.

Every submission gets a result, whatever is wrong with it; a batch never stops on one
student. Results are written atomically, ``results.json`` last, and carry the hashes of the
submission and the bundle, so a re-run skips what is already graded (resume) and rebuilds
``grades.csv`` from the result files (idempotent).

This module drives a batch (:func:`grade_batch`, what ``python -m d2lcnn.grading grade``
runs) and is the grader's front door: it re-exports the pieces, which live in

* :mod:`d2lcnn.grading.bundle` -- :class:`Bundle`, the loaded bundle that runs questions in
  sandboxes, and the isolation mode (:func:`resolve_isolation`);
* :mod:`d2lcnn.grading.scoring` -- :func:`grade_file`, :func:`grade_notebook`,
  :func:`score_case`: one submission in, one result out;
* :mod:`d2lcnn.grading.submissions` -- finding and reading submission files, student ids;
* :mod:`d2lcnn.grading.report` -- ``results.json``, ``feedback.md`` and ``grades.csv``;
* :mod:`d2lcnn.grading.written` and :mod:`d2lcnn.grading.manual` -- written questions: the
  answers collected, the grading pages and ``manual/scores.csv``, the merge of the points;
* :mod:`d2lcnn.grading.cells` and :mod:`d2lcnn.grading.bundle_format` -- what ``assign``
  and ``grade`` share: cell roles and the bundle's files.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from d2lcnn.grading.bundle import ISOLATION_MODES, Bundle, IsolationUnavailable, resolve_isolation
from d2lcnn.grading.bundle_format import write_atomic
from d2lcnn.grading.cells import select_cells
from d2lcnn.grading.manual import ManualScoresError, read_scores, write_manual
from d2lcnn.grading.report import feedback_markdown, gradebook, reusable_result, write_result
from d2lcnn.grading.scoring import (
    empty_result,
    forbidden_imports,
    grade_file,
    grade_notebook,
    score_case,
)
from d2lcnn.grading.submissions import (
    ID_MAX,
    MAX_SUBMISSION_BYTES,
    Submission,
    expand,
    id_collisions,
    read_submission,
    real_path,
    submission_name,
)
from d2lcnn.grading.written import apply_scores

__all__ = [
    "grade_batch",  # defined here; the rest is re-exported from the modules listed above
    "ManualScoresError",
    "Bundle", "IsolationUnavailable", "resolve_isolation", "ISOLATION_MODES",
    "grade_notebook", "grade_file", "score_case", "forbidden_imports", "select_cells",
    "Submission", "expand", "read_submission", "submission_name", "MAX_SUBMISSION_BYTES",
    "ID_MAX", "feedback_markdown",
]


def _grade_one(bundle: Bundle, path: Path, name: str, out: Path, deny_read,
               root=None) -> tuple[dict, bool]:
    """Grade one file into ``out/name`` unless it is already graded; ``(result, reused)``."""
    try:
        sha = hashlib.sha256(read_submission(path, root)).hexdigest()
    except OSError:
        sha = None  # grade_file says why; such a result has no hash, so it is never reused
    old = reusable_result(out / name, sha, bundle.sha256)
    if old is not None:
        return old, True
    try:
        result = grade_file(bundle, path, name=name, deny_read=deny_read, root=root)
    except Exception as e:  # noqa: BLE001 - a grader bug must not stop the batch
        result = empty_result(bundle, name, [f"internal grader error: {type(e).__name__}: "
                                             f"{e}"], submission=str(path))
        return result, False  # no results.json: retried on the next run
    write_result(out / name, result)
    return result, False


def grade_batch(bundle_dir, paths, out, *, jobs: int = 1, progress: bool = True,
                isolation: str | None = None, merge_manual=None) -> dict:
    """Grade many submissions into ``out``; returns ``{"rows", "graded", "skipped",
    "manual"}`` (``manual``: the files written for the written questions).

    ``isolation``: ``"bwrap"`` (the default; :class:`IsolationUnavailable` if this machine
    cannot run it) or ``"process"`` (no OS isolation: for trusted submissions only).
    ``merge_manual``: an instructor's scores file (``manual/scores.csv`` filled in) whose
    points and comments go into the results, their feedback and ``grades.csv``; checked
    whole first (:class:`ManualScoresError` naming the bad rows, after grading, with
    nothing merged). The assignment's written questions always get their pages and
    ``out/manual/scores.csv`` (see :mod:`d2lcnn.grading.manual`)."""
    with Bundle.load(bundle_dir, isolation=isolation) as bundle:
        return _grade_batch(bundle, paths, Path(out), jobs=jobs, progress=progress,
                            merge_manual=merge_manual)


def _grade_batch(bundle: Bundle, paths, out: Path, *, jobs: int, progress: bool,
                 merge_manual=None) -> dict:
    bundle.prestart = max(1, jobs)

    out.mkdir(parents=True, exist_ok=True)
    here = out.resolve()  # an output folder inside the submissions folder is not graded
    subs = [s for s in expand(paths)  # (resolving the folder: a file may be a link loop)
            if not {here} & {s.path.parent.resolve(), *s.path.parent.resolve().parents}]
    files = [s.path for s in subs]
    # One row per file; the id depends only on the file's own relative path (stable), and
    # files whose ids coincide are all refused: a result folder is never shared.
    names = [submission_name(s.rel, bundle.name) for s in subs]
    results = {i: empty_result(bundle, names[i], [note], submission=str(files[i]))
               for i, note in id_collisions(subs, names).items()}
    deny = [out.resolve(), *map(real_path, files)]  # no peeking at classmates
    skipped = 0
    saved = set()  # results with a results.json of their own (a merge may rewrite them)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(files) - len(results), desc=f"grading {bundle.name}",
                 unit="submission", disable=not progress) as bar:
        futures = {pool.submit(_grade_one, bundle, s.path, n, out, deny, s.root): i
                   for i, (s, n) in enumerate(zip(subs, names, strict=True))
                   if i not in results}
        for fut in as_completed(futures):
            result, reused = fut.result()
            results[futures[fut]] = result
            skipped += reused
            if (out / names[futures[fut]] / "results.json").exists():
                saved.add(futures[fut])
            bar.update(1)
    written = list(bundle.meta.get("written") or {})
    by_name = [(n, results[i]) for i, n in enumerate(names)]

    def gradebook_file():
        text, rows = gradebook(list(bundle.meta["questions"]),
                               [(n, f, results[i])
                                for i, (f, n) in enumerate(zip(files, names, strict=True))],
                               written)
        write_atomic(out / "grades.csv", text)
        return rows

    rows = gradebook_file()
    if merge_manual is not None and not written:
        raise ManualScoresError(f"{bundle.name} has no written questions: nothing to merge "
                                f"from {merge_manual}")
    scores = None
    if merge_manual is not None:  # checked whole before anything is written
        scores = read_scores(Path(merge_manual), set(names), bundle.meta["written"])
    if scores is not None:
        for i, name in enumerate(names):
            apply_scores(results[i], scores.get(name, {}))
    manual = write_manual(out, bundle.meta, by_name)  # the pages show the merged points
    if scores is not None:
        for i, name in enumerate(names):
            if i in saved:
                write_result(out / name, results[i])
        rows = gradebook_file()
    return {"rows": rows, "graded": len(futures) - skipped, "skipped": skipped,
            "manual": [str(p) for p in manual]}
