"""Manual grading of written questions: one page per question, one CSV of points, the merge.

``grade`` writes, next to ``grades.csv``, a folder ``manual/`` with

``<assignment>-<question>.html``
    Every student's answer to one written question, one after the other (a section per
    student, a page each when printed: Gradescope's "grade by question"), under the prompt,
    the rubric and the model answer. Students' answers are untrusted: every text is
    HTML-escaped and shown as written (markdown source, code and text outputs in
    preformatted blocks), images appear only as PNG data checked by
    :func:`d2lcnn.grading.written.valid_png` and re-encoded here, and the page's
    Content-Security-Policy forbids scripts, remote resources and any image that is not
    inline data, so that even a mistake in the escaping could not run code or call out.
``scores.csv``
    One row per student and written question: ``student, question, max_points, points,
    comment``, ``points`` empty until the instructor fills it in. Re-running ``grade``
    rewrites it with the rows of new students and keeps every point and comment already
    entered (also those of students no longer in the batch).

``grade --merge-manual FILE`` (:func:`read_scores`, then
:func:`d2lcnn.grading.written.apply_scores`) checks the whole file first (an unknown student
or question, a duplicated row, points that are not a number or lie outside ``[0,
max_points]``: a :class:`ManualScoresError` naming every bad row, and nothing is written),
then puts the points and comments into each result, its ``feedback.md`` and ``grades.csv``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
from pathlib import Path

from d2lcnn.grading.bundle_format import write_atomic
from d2lcnn.grading.written import valid_png

__all__ = ["ManualScoresError", "SCORES", "FOLDER", "SCORE_COLUMNS", "page", "write_manual",
           "read_scores", "existing_scores"]

FOLDER, SCORES = "manual", "scores.csv"
SCORE_COLUMNS = ["student", "question", "max_points", "points", "comment"]
MAX_SCORES_BYTES = 16 << 20  # a scores.csv larger than this is not an instructor's file
_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; "
        "base-uri 'none'; frame-ancestors 'none'")
_STYLE = """
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; line-height: 1.4; }
header, section { border-bottom: 2px solid #888; padding-bottom: 1rem; margin-bottom: 2rem; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f4f4; padding: .5rem; }
pre.model { background: #eef6ee; }
.omitted, .note { color: #a33; font-style: italic; }
img { max-width: 100%; border: 1px solid #ccc; }
@media print { section { page-break-before: always; } }
"""


class ManualScoresError(ValueError):
    """A scores file that cannot be merged; the message names every bad row."""


def _pre(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}>{html.escape(text, quote=True)}</pre>"


def _part(part: dict) -> str:
    """One part of a student's answer as HTML; every text escaped, images re-checked."""
    kind = part.get("kind")
    if kind == "image":
        png = valid_png(part.get("png"))
        if png is None:
            return '<p class="omitted">not shown: an image that is not a valid PNG</p>'
        data = base64.b64encode(png).decode("ascii")
        return f'<img alt="figure" src="data:image/png;base64,{data}">'
    text = str(part.get("text", ""))
    if kind == "omitted":
        return f'<p class="omitted">{html.escape(text)}</p>'
    label = {"code": "code", "output": "output"}.get(kind, "")
    return (f"<p><small>{label}</small></p>" if label else "") + _pre(text)


def _answer_html(student: str, entry: dict) -> str:
    answer = entry.get("answer") or {}
    body = [f'<section id="{html.escape(student, quote=True)}">',
            f"<h2>{html.escape(student)}</h2>",
            f"<p>points: ____ / {entry['max']:g}"
            + (f" (entered: {entry['points']:g})" if entry["status"] == "graded" else "")
            + "</p>"]
    if answer.get("status") != "answered":
        body.append('<p class="note">no answer (0 points unless you enter some)</p>')
    body += [f'<p class="note">{html.escape(n)}</p>' for n in answer.get("notes", [])]
    body += [_part(p) for p in answer.get("parts", []) if isinstance(p, dict)]
    return "\n".join(body + ["</section>"])


def page(assignment: str, question: str, meta: dict, students: list[tuple[str, dict]]) -> str:
    """The grading page of one written question: prompt, rubric and model answer from the
    bundle (``meta``), then ``(student, written entry)`` for every student."""
    title = html.escape(f"{assignment}, {question}: written answers")
    head = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{title}</h1>",
        f"<p>{len(students)} submissions; {meta['points']:g} points. Enter points and "
        f"comments in {FOLDER}/{SCORES}, then run grade with --merge-manual.</p>",
        "<h2>Prompt</h2>", _pre(meta.get("prompt", "")),
        "<h2>Rubric</h2>", _pre(meta.get("rubric", "")),
        "<h2>Model answer</h2>", _pre(meta.get("answer", ""), "model"), "</header>"]
    body = [_answer_html(s, e) for s, e in students]
    return "\n".join(head + body + ["</body></html>", ""])


def _safe_file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def existing_scores(path: Path) -> dict[tuple[str, str], dict]:
    """The rows of an existing scores file, ``(student, question) -> row`` (none if there
    is no file). A file that is not a scores file raises :class:`ManualScoresError`: it is
    never overwritten, so what an instructor entered is not lost."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        rows = _rows(path)
    except OSError as e:
        raise ManualScoresError(f"cannot read {path}: {e.strerror}") from None
    out, lines = {}, {}
    for line, r in rows:
        key = ((r.get("student") or "").strip(), (r.get("question") or "").strip())
        if key in out:
            raise ManualScoresError(f"{path}, line {line}: {key[0]} {key[1]} is given twice "
                                    f"(also on line {lines[key]}); keep one row")
        out[key], lines[key] = r, line
    return out


def write_manual(out: Path, meta: dict, results: list[tuple[str, dict]]) -> list[Path]:
    """Write ``out/manual/``: a page per written question and ``scores.csv`` (keeping the
    points and comments already entered). ``results``: ``(student, result)``. Returns the
    files written; nothing when the assignment has no written questions."""
    written = meta.get("written") or {}
    if not written:
        return []
    folder = Path(out) / FOLDER
    target = folder / SCORES
    old = existing_scores(target)  # first: a file that cannot be read stops here, untouched
    unique = {}  # files whose ids collide share a name (neither was graded): one row
    for name, r in results:
        unique.setdefault(name, r)
    results = list(unique.items())
    files, rows = [], []
    for q, w in written.items():
        students = [(name, r["extra_data"]["written"][q]) for name, r in results
                    if q in (r["extra_data"].get("written") or {})]
        path = folder / f"{_safe_file_part(meta['assignment'])}-{_safe_file_part(q)}.html"
        write_atomic(path, page(meta["assignment"], q, w, students).encode(
            "utf-8", "backslashreplace"))
        files.append(path)
        for name, _ in students:
            kept = old.pop((name, q), {})
            rows.append([name, q, f"{w['points']:g}", kept.get("points") or "",
                         kept.get("comment") or ""])
    for (name, q), r in old.items():  # students no longer here: keep what was entered
        if (r.get("points") or "").strip() or (r.get("comment") or "").strip():
            rows.append([name, q, r.get("max_points") or "", r.get("points") or "",
                         r.get("comment") or ""])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(SCORE_COLUMNS)
    w.writerows(rows)
    write_atomic(target, buf.getvalue().encode("utf-8", "backslashreplace"))
    return [*files, target]


def _rows(path: Path) -> list[tuple[int, dict]]:
    """``(line number, row)`` of a scores file; ``ManualScoresError`` if it is not one."""
    data = path.read_bytes()
    if len(data) > MAX_SCORES_BYTES:
        raise ManualScoresError(f"{path}: larger than {MAX_SCORES_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet may add a byte-order mark
    except UnicodeDecodeError as e:
        raise ManualScoresError(f"{path}: not UTF-8 text ({e.reason} at byte "
                                f"{e.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in SCORE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ManualScoresError(f"{path}: line 1 must name the columns "
                                f"{', '.join(SCORE_COLUMNS)}; missing {', '.join(missing)}")
    rows = []
    for row in reader:
        rows.append((reader.line_num, {k: (v if isinstance(v, str) else "")
                                       for k, v in row.items() if isinstance(k, str)}))
    return rows


def read_scores(path: Path, students: set[str], written: dict
                ) -> dict[str, dict[str, tuple[float | None, str]]]:
    """``student -> question -> (points or None, comment)`` from an instructor's scores
    file, checked against the graded ``students`` and the bundle's ``written`` questions.

    Raises :class:`ManualScoresError` listing every bad row by its line: an unknown student
    or question, a row given twice, a ``max_points`` that is not the question's, points
    that are not a number or lie outside ``[0, max_points]``. Empty points: pending.
    """
    path = Path(path)
    try:
        rows = _rows(path)
    except OSError as e:
        raise ManualScoresError(f"cannot read {path}: {e.strerror}") from None
    errors, out, seen = [], {}, {}
    for line, row in rows:
        where = f"{path.name}, line {line}"
        student, q = row.get("student", "").strip(), row.get("question", "").strip()
        if student not in students:
            errors.append(f"{where}: unknown student {student[:80]!r} (not graded in this "
                          "output folder)")
            continue
        if q not in written:
            errors.append(f"{where}: unknown question {q[:20]!r} (written questions: "
                          f"{', '.join(written) or 'none'})")
            continue
        if (student, q) in seen:
            errors.append(f"{where}: {student} {q} is given twice (also on line "
                          f"{seen[student, q]})")
            continue
        seen[student, q] = line
        top = written[q]["points"]
        given_max = row.get("max_points", "").strip()
        if given_max and _number(given_max) != top:
            errors.append(f"{where}: max_points {given_max[:20]!r} is not {q}'s {top:g} "
                          "(a file for another version of the assignment?)")
            continue
        text = row.get("points", "").strip()
        points = None
        if text:
            points = _number(text)
            if points is None:
                errors.append(f"{where}: points {text[:20]!r} is not a number")
                continue
            if not 0 <= points <= top:
                errors.append(f"{where}: points {text[:20]!r} outside [0, {top:g}]")
                continue
        out.setdefault(student, {})[q] = (points, row.get("comment", "").strip())
    if errors:
        more = f" (and {len(errors) - 30} more)" if len(errors) > 30 else ""
        raise ManualScoresError(f"{path}: {len(errors)} bad row(s), nothing merged:\n"
                                + "\n".join(errors[:30]) + more)
    return out


def _number(text: str) -> float | None:
    """A finite number written as ``2``, ``1.5`` or ``1e0``; None otherwise."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
