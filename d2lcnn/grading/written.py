"""Written (manually graded) questions in a result: the answers collected from a submission,
their points while pending, and the total once an instructor's points are merged.

An assignment's written questions are in its bundle (``meta["written"]``: question ->
points, prompt, rubric, model answer, the written cell's id; see
:mod:`d2lcnn.grading.authoring`). :func:`collect` finds each one's cell in a submitted
notebook, matched like answer cells (by tag, then by id), and keeps what an instructor
grades, bounded and as plain data: the markdown text of a markdown cell; for a code cell,
its source and the outputs the notebook stored (PNG images only, validated and re-encoded;
text). Nothing here renders HTML; :mod:`d2lcnn.grading.manual` does, escaping everything.

In a result (:func:`d2lcnn.grading.scoring.grade_notebook`'s dict), ``extra_data["written"]``
maps each written question to ``{"max", "points", "comment", "status", "answer"}``, status
``"pending"`` (answered, no points entered yet: ``points`` is None), ``"no answer"`` (0
points unless the instructor enters some) or ``"graded"``. ``result["max_score"]`` counts
the written points; ``result["score"]`` only the points known so far (:func:`rescore`), and
the result says it is provisional while any question is pending.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from d2lcnn.grading.cells import cell_source, find_cells

__all__ = ["collect", "entries", "apply_scores", "rescore", "pending", "MAX_TEXT",
           "MAX_IMAGE_BYTES", "MAX_IMAGES", "PNG_SIGNATURE"]

MAX_TEXT = 100_000  # characters of text kept per answer (markdown, code and outputs)
MAX_IMAGE_BYTES = 1 << 20  # decoded bytes of one PNG image
MAX_IMAGES = 4  # images kept per answer
MAX_OUTPUTS = 50  # outputs of a code cell looked at
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _text(value) -> str:
    """nbformat's multiline string (a str or a list of str) as one str; anything else ''."""
    if isinstance(value, list):
        return "".join(x for x in value if isinstance(x, str))
    return value if isinstance(value, str) else ""


class _Budget:
    """The text and images kept of one answer, within :data:`MAX_TEXT` and
    :data:`MAX_IMAGES`; what does not fit is replaced by a line saying so."""

    def __init__(self):
        self.parts: list[dict] = []
        self.chars = 0
        self.images = 0

    def text(self, kind: str, text: str) -> None:
        room = MAX_TEXT - self.chars
        if room <= 0:
            return self.omit(f"{len(text):,} more characters")
        if len(text) > room:
            self.parts.append({"kind": kind, "text": text[:room]})
            self.chars = MAX_TEXT
            return self.omit(f"the remaining {len(text) - room:,} characters of this answer")
        self.chars += len(text)
        self.parts.append({"kind": kind, "text": text})
        return None

    def omit(self, what: str) -> None:
        if len(self.parts) < 2 * MAX_OUTPUTS:
            self.parts.append({"kind": "omitted", "text": f"not shown: {what}"})

    def image(self, data) -> None:
        png = valid_png(data)
        if png is None:
            return self.omit("an image that is not a valid PNG of at most "
                             f"{MAX_IMAGE_BYTES >> 20} MiB")
        if self.images >= MAX_IMAGES:
            return self.omit(f"an image beyond the first {MAX_IMAGES}")
        self.images += 1
        self.parts.append({"kind": "image", "png": base64.b64encode(png).decode("ascii")})
        return None


def valid_png(data) -> bytes | None:
    """The decoded bytes of a notebook's ``image/png`` value if it is base64 of a PNG file
    of at most :data:`MAX_IMAGE_BYTES` bytes, else None."""
    text = _text(data)
    if not text or len(text) > (MAX_IMAGE_BYTES * 4) // 3 + 4096:
        return None
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(PNG_SIGNATURE) and len(raw) <= MAX_IMAGE_BYTES else None


def _outputs(cell: dict, budget: _Budget) -> int:
    """Keep a code cell's stored outputs; the number of outputs kept."""
    outputs = cell.get("outputs")
    kept = 0
    for out in (outputs if isinstance(outputs, list) else [])[:MAX_OUTPUTS]:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            budget.text("output", _text(out.get("text")))
        elif kind == "error":
            budget.text("output", f"error: {str(out.get('ename'))[:200]}")
        elif kind in ("display_data", "execute_result"):
            data = out.get("data") if isinstance(out.get("data"), dict) else {}
            if "image/png" in data:
                budget.image(data["image/png"])
            elif "text/plain" in data:
                budget.text("output", _text(data["text/plain"]))
            for other in sorted(k for k in data if isinstance(k, str) and k != "text/plain"
                                and k != "image/png")[:5]:
                budget.omit(f"an output of type {other[:60]!r} (only PNG images and text "
                            "are shown)")
        else:
            continue
        kept += 1
    return kept


def _answer(cells: list[dict], found: list[int], template_sha: str | None) -> dict:
    """What the instructor sees of the written cells ``found``, and whether it is an
    answer at all (a cell left as handed out is not)."""
    budget = _Budget()
    answered = False
    notes = []
    if len(found) > 1:
        shown = ", ".join(str(i + 1) for i in found[:10]) + (", ..." if len(found) > 10 else "")
        notes.append(f"its cell appears {len(found)} times (cells {shown}); all are shown")
    for i in found:
        cell = cells[i]
        src = cell_source(cell)
        edited = (src.strip() != "" and
                  hashlib.sha256(src.encode()).hexdigest() != template_sha)
        answered = answered or edited
        if cell.get("cell_type") == "code":
            if edited:
                budget.text("code", src)
            if edited and _outputs(cell, budget) == 0:
                notes.append(f"cell {i + 1} has no stored output (not run before saving?)")
        elif edited:
            budget.text("text", src)
            _attachments(cell, budget)
    return {"status": "answered" if answered else "no answer", "parts": budget.parts,
            "notes": notes[:5]}


def _attachments(cell: dict, budget: _Budget) -> None:
    """Images pasted into a markdown cell (its ``attachments``): PNG only."""
    attachments = cell.get("attachments")
    for data in list(attachments.values())[:MAX_OUTPUTS] if isinstance(attachments,
                                                                        dict) else []:
        data = data if isinstance(data, dict) else {}
        if "image/png" in data:
            budget.image(data["image/png"])
        elif data:
            budget.omit("an attachment that is not a PNG image")


def collect(written: dict, template: list[dict], nb) -> dict[str, dict]:
    """question -> the answer in notebook ``nb`` (untrusted JSON) to each written question
    of the bundle (``meta["written"]``), matched by tag then by the template's cell id;
    ``{"status": "answered" | "no answer", "parts": [...], "notes": [...]}``. A part is
    ``{"kind": "text" | "code" | "output" | "omitted", "text"}`` or
    ``{"kind": "image", "png": base64}`` (a PNG, checked and re-encoded here)."""
    cells = [c for c in (nb.get("cells") or []) if isinstance(c, dict)] \
        if isinstance(nb.get("cells"), list) else []
    shas = {t["question"]: t["sha256"] for t in template if t["role"] == "written"}
    out = {}
    for q, w in written.items():
        found, by_id = find_cells(cells, "written", q, w["cell_id"])
        if not found:
            out[q] = {"status": "no answer", "parts": [],
                      "notes": ["its written cell is missing"]}
            continue
        out[q] = _answer(cells, found, shas.get(q))
        if by_id:
            out[q]["notes"].append("its cell was found by its id; its tags were edited")
    return out


def entries(written: dict, answers: dict | None) -> dict[str, dict]:
    """``extra_data["written"]`` of a freshly graded result: answered questions pending,
    the others at 0 ("no answer"). ``answers`` None: the notebook was not graded at all."""
    out = {}
    for q, w in written.items():
        a = (answers or {}).get(q) or {"status": "no answer", "parts": [], "notes": []}
        no = a["status"] != "answered"
        out[q] = {"max": w["points"], "points": 0.0 if no else None, "comment": "",
                  "status": "no answer" if no else "pending", "answer": a}
    return out


def pending(result: dict) -> list[str]:
    """The written questions of ``result`` still waiting for points."""
    return [q for q, e in (result["extra_data"].get("written") or {}).items()
            if e["status"] == "pending"]


def rescore(result: dict) -> dict:
    """Recompute ``score`` and ``output`` from the automatic questions' scores and the
    written questions' points (pending ones count nothing yet); returns ``result``."""
    x = result["extra_data"]
    written = x.get("written") or {}
    auto = sum(s for s, _ in x["questions"].values())
    manual = sum(e["points"] or 0.0 for e in written.values())
    result["score"] = round(auto + manual, 6)
    head = f"{result['score']:g} / {result['max_score']:g} points"
    waiting = pending(result)
    if waiting:
        head += (f" (provisional: {', '.join(waiting)} "
                 f"{'is' if len(waiting) == 1 else 'are'} graded by hand, pending)")
    result["output"] = head + ("; " + "; ".join(x["notes"]) if x["notes"] else "")
    return result


def apply_scores(result: dict, scores: dict[str, tuple[float | None, str]]) -> dict:
    """Set the instructor's ``(points or None, comment)`` per written question (questions
    missing from ``scores`` go back to pending, or to 0 if unanswered), then
    :func:`rescore`."""
    for q, e in (result["extra_data"].get("written") or {}).items():
        points, comment = scores.get(q, (None, ""))
        answered = e["answer"]["status"] == "answered"
        e["comment"] = comment
        if points is not None:
            e["points"], e["status"] = float(points), "graded"
        else:
            e["points"] = None if answered else 0.0
            e["status"] = "pending" if answered else "no answer"
    return rescore(result)
