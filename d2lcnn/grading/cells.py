"""Which cells of a notebook are which: role tags, the template, the cells the sandbox runs.

``assign`` records the student notebook's cells in the bundle as a *template*
(:func:`template`: each cell's id, role, question and hash). ``grade`` matches a submission's
cells against it (:func:`select_cells`): by tag, then by id, noting cells that were edited,
duplicated or deleted, and returns the code cells the sandbox runs. The roles are the
authoring format's (see the package docstring); validating a source's tags is
:func:`d2lcnn.grading.authoring.parse`'s job, so everything here reads tags leniently (a
submission's metadata is untrusted JSON).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["QUESTION_TAG", "ROLE_TAGS", "cell_tags", "cell_source", "cell_role", "template",
           "strip_magics", "select_cells", "find_cells"]

QUESTION_TAG = re.compile(r"^q\d+[a-z]?$")
ROLE_TAGS = ("answer", "check", "setup", "tests", "autograder", "written", "rubric")


def cell_tags(cell) -> list[str]:
    """The string tags of a cell (anything else in its metadata is ignored)."""
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def cell_source(cell) -> str:
    """A cell's source as one string (nbformat may store it as a list of lines)."""
    s = cell.get("source", "")
    if isinstance(s, list):  # nbformat's list of lines; anything else in it is dropped
        return "".join(x for x in s if isinstance(x, str))
    return s if isinstance(s, str) else ""


def cell_role(tags: list[str]) -> tuple[str | None, str | None]:
    """``(role, question)`` of a cell: its first role tag and first question tag, or None."""
    roles = [t for t in tags if t in ROLE_TAGS]
    qs = [t for t in tags if QUESTION_TAG.match(t)]
    return (roles[0] if roles else None), (qs[0] if qs else None)


def template(nb) -> list[dict]:
    """The student notebook's cells as the bundle records them (matched at grading time)."""
    out = []
    for cell in nb.cells:
        role, q = cell_role(cell_tags(cell))
        out.append({"id": cell.id, "cell_type": cell.cell_type, "role": role, "question": q,
                    "sha256": hashlib.sha256(cell.source.encode()).hexdigest()})
    return out


def find_cells(cells: list, role: str, q: str | None, cell_id: str) -> tuple[list[int], bool]:
    """Indices of the cells of ``role`` (and question ``q``) in a submission's ``cells``:
    by tag, else by the template's ``cell_id``; and whether it was found by id only."""
    found = [i for i, c in enumerate(cells)
             if role in cell_tags(c) and (q is None or q in cell_tags(c))]
    if found:
        return found, False
    found = [i for i, c in enumerate(cells) if c.get("id") == cell_id]
    return found, bool(found)


def strip_magics(src: str) -> str:
    """``src`` with IPython magics and shell escapes replaced by ``pass``."""
    lines = src.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass  # IPython magic removed", line)
                     for line in lines)


def select_cells(template: list[dict], nb) -> tuple[list[dict], list[str], dict[str, list[int]]]:
    """The cells the sandbox runs, notes about tagged cells, and question -> answer cells.

    ``template`` is the bundle's (``meta["template"]``). Tagged cells are matched by tag,
    then by cell id; check and setup cells are never run (the sandbox defines
    ``check``/``submit``/``grader`` as no-ops instead), nor are cells tagged ``demo`` (the
    student's own experiments, e.g. training on a validation split).
    """
    notes: list[str] = []
    cells = [c for c in nb.get("cells", []) if isinstance(c, dict)]
    skip: set[int] = set()
    answers: dict[str, list[int]] = {}
    for t in template:
        role, q = t["role"], t["question"]
        if role not in ("answer", "check", "setup"):
            continue
        what = {"answer": f"the answer cell of {q}", "check": f"the check cell of {q}",
                "setup": "the setup cell"}[role]
        found, by_id = find_cells(cells, role, q, t["id"])
        if by_id:
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
                src = cell_source(cells[i])
                if role == "check" and hashlib.sha256(src.encode()).hexdigest() != t["sha256"]:
                    notes.append(f"{what} (cell {i + 1}) was edited; check cells are not run "
                                 "by the grader, so code in it does not count")
    owner = {i: q for q, idx in answers.items() for i in idx}
    run = []
    for i, c in enumerate(cells):
        if c.get("cell_type") != "code" or i in skip or "demo" in cell_tags(c):
            continue
        label = f"cell {i + 1}" + (f" (answer {owner[i]})" if i in owner else "")
        written = cell_role(cell_tags(c))
        if written[0] == "written" and i not in owner:
            label = f"cell {i + 1} (written {written[1]})"
        run.append({"key": i, "label": label, "source": strip_magics(cell_source(c))})
    return run, notes, answers
