"""Grades on disk: a student's ``results.json`` and ``feedback.md``, and ``grades.csv``.

A result is the dict :func:`d2lcnn.grading.scoring.grade_notebook` returns (Gradescope's
format). :func:`write_result` writes its two files atomically, ``results.json`` last, so a
folder with a ``results.json`` is complete; :func:`reusable_result` finds one graded from
the same submission and bundle (a re-run skips it). :func:`gradebook` makes the CSV, with
every text cell escaped so that no spreadsheet reads it as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from d2lcnn.grading.bundle_format import write_atomic

__all__ = ["feedback_markdown", "write_result", "reusable_result", "gradebook"]

_CSV_ACTIVE = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value) -> str:
    """A text cell, with a leading ``'`` if a spreadsheet could read it as a formula (and
    lone surrogates, from undecodable file names or a student's message, as ``\\udcff``)."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return "'" + text if text.startswith(_CSV_ACTIVE) else text


def _csv_number(value) -> str:
    return f"{float(value) + 0.0:g}"  # + 0.0: never "-0"


def _written_cell(e: dict) -> str:
    """A written question's points as grades.csv and feedback.md show them."""
    return "pending" if e["status"] == "pending" else _csv_number(e["points"])


def _comment(text: str) -> str:
    """An instructor's comment on one line of a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def feedback_markdown(result: dict) -> str:
    """The student's ``feedback.md``: scores per question (written questions: points and
    the grader's comment, or "pending"), failed cases, notes."""
    x = result["extra_data"]
    written = x.get("written") or {}
    waiting = [q for q, e in written.items() if e["status"] == "pending"]
    provisional = (f" (provisional: {', '.join(waiting)} still to be graded by hand)"
                   if waiting else "")
    lines = [f"# {x['assignment']}: feedback for {x['student']}", "",
             f"**Score: {result['score']:g} / {result['max_score']:g}**{provisional}", "",
             "| question | points |", "| --- | --- |"]
    lines += [f"| {q} | {s:g} / {m:g} |" for q, (s, m) in x["questions"].items()]
    lines += [f"| {q} (written) | {_written_cell(e)} / {e['max']:g}"
              + (f"; {_comment(e['comment'])}" if e["comment"] else "")
              + (" (no answer)" if e["status"] == "no answer" else "") + " |"
              for q, e in written.items()]
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


def write_result(folder: Path, result: dict) -> None:
    """``folder/feedback.md``, then ``folder/results.json`` (its presence means complete)."""
    folder = Path(folder)
    write_atomic(folder / "feedback.md",  # a student's message may hold a lone surrogate
                 feedback_markdown(result).encode("utf-8", "backslashreplace"))
    write_atomic(folder / "results.json", json.dumps(result, indent=1, default=float))


def reusable_result(folder: Path, submission_sha256: str | None,
                    bundle_sha256: str) -> dict | None:
    """The result in ``folder`` if it was graded from the same submission and bundle."""
    target = Path(folder) / "results.json"
    if not target.exists():
        return None
    try:
        old = json.loads(target.read_text())
        x = old["extra_data"]
        if x["submission_sha256"] == submission_sha256 and x["bundle_sha256"] == bundle_sha256:
            return old
    except (ValueError, KeyError, TypeError):
        pass
    return None


def gradebook(questions: list[str], graded: list[tuple[str, Path | str, dict]],
              written: list[str] = ()) -> tuple[str, list[dict]]:
    """``grades.csv``'s text and its rows as dicts, from ``(student, file, result)``.

    Columns: student, file, one per question (``questions`` graded automatically, then the
    ``written`` ones, in question order), total, max, then (only if there are written
    questions) status, and notes. A written question's cell is its points or "pending"
    (nothing entered yet); status is "final" or "provisional: q6 pending". Text cells are
    escaped against formula injection; scores are numbers formatted here.
    """
    order = sorted([*questions, *written], key=lambda q: (int("0" + "".join(
        c for c in q if c.isdigit())), q))
    header = ["student", "file", *order, "total", "max", *(["status"] if written else []),
              "notes"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # so a "\r" in a cell is quoted too
    w.writerow(header)
    rows = []
    for name, file, r in graded:
        x = r["extra_data"]
        entered = x.get("written") or {}
        cells = [_csv_number(x["questions"][q][0]) if q in x["questions"]
                 else _written_cell(entered[q]) if q in entered else "" for q in order]
        waiting = [q for q in written if q in entered and entered[q]["status"] == "pending"]
        status = [f"provisional: {', '.join(waiting)} pending" if waiting else "final"]
        row = [_csv_text(name), _csv_text(file), *cells,
               _csv_number(r["score"]), _csv_number(r["max_score"]),
               *(status if written else []), _csv_text("; ".join(x["notes"]))]
        w.writerow(row)
        rows.append(dict(zip(header, row, strict=True)))
    return buf.getvalue(), rows
