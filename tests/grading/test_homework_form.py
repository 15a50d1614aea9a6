"""Every assignment's header and question headings have the shape a course needs.

The first markdown cell (the ``# Title`` one) says which chapter the assignment follows (a
link that resolves from the student notebook's folder, ``notebooks/homework/<stem>/``, to a
chapter notebook), how long it takes and how that was measured, and its learning goals (2 to
5). Every question's prompt heading, ``## Question N (P points, difficulty): ...``, states
its points, which must equal the question's total (its cases' points, or its rubric's
``points:`` line for a written question), and a difficulty of ``guided``, ``standard`` or
``challenge``; every question has exactly one heading.
"""

import re
from pathlib import Path

import jupytext
import pytest

from d2lcnn.grading.authoring import parse
from d2lcnn.grading.bundle_format import load_cases

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "instructor" / "homework").glob("hw[0-9]*-*.py"))
CHAPTER = re.compile(r"^\d\d-[a-z0-9-]+\.ipynb$")
HEADING = re.compile(r"^## Question (?P<n>\d+[a-z]?) \((?P<points>\d+(?:\.\d+)?) points?, "
                     r"(?P<difficulty>guided|standard|challenge)\): \S", re.MULTILINE)
QUESTION_TAG = re.compile(r"^q\d+[a-z]?$")


def _cells(source: Path):
    return jupytext.read(source).cells


def _header(source: Path) -> str:
    first = next(c for c in _cells(source) if c.cell_type == "markdown")
    assert first.source.startswith("# "), f"{source.name}: the first markdown cell is the title"
    return first.source


def _section(text: str, start: str, end: str | None) -> str:
    assert start in text, f"missing {start!r}"
    rest = text.split(start, 1)[1]
    return rest.split(end, 1)[0] if end and end in rest else rest


def question_totals(source: Path) -> dict[str, float]:
    """Question tag -> its points: the sum of its cases' for an auto-graded question, the
    rubric's ``points: N`` for a written one."""
    a = parse(source)
    cases, _, _ = load_cases(a.tests, a.autograder)
    totals: dict[str, float] = {}
    for c in cases.values():
        totals[c.question] = totals.get(c.question, 0.0) + float(c.points)
    for cell in _cells(source):
        tags = cell.metadata.get("tags", [])
        if "rubric" in tags:
            (q,) = [t for t in tags if QUESTION_TAG.match(t)]
            first = cell.source.splitlines()[0].removeprefix("#").strip()
            m = re.fullmatch(r"points:\s*(\d+)", first)
            assert m, f"{source.name}: {q}'s rubric must start with 'points: N', got {first!r}"
            assert q not in totals, f"{source.name}: {q} is both auto-graded and written"
            totals[q] = float(m[1])
    return totals


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_header_links_a_chapter_that_exists(source):
    follows = _section(_header(source), "**Follows:**", "**Estimated time:**")
    links = re.findall(r"\[[^\]]+\]\(([^)\s]+)\)", follows)
    assert links, f"{source.name}: **Follows:** has no link"
    student_dir = ROOT / "notebooks" / "homework" / source.stem
    for link in links:
        target = (student_dir / link).resolve()
        assert target.parent == (ROOT / "notebooks").resolve(), (source.name, link)
        assert CHAPTER.match(target.name), (source.name, link)
        assert target.is_file(), f"{source.name}: {link} does not exist"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_header_states_the_time_and_how_it_was_measured(source):
    estimate = _section(_header(source), "**Estimated time:**", "**Learning goals.**")
    # "N hours" or "N–M hours", then in parentheses how it was measured (a sentence or two)
    m = re.match(r"\s*(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))? hours? \(([^()]{20,})\)",
                 estimate)
    assert m, f"{source.name}: expected '**Estimated time:** 3–4 hours (measured: how)', " \
              f"got {estimate[:80]!r}"
    if m[2]:
        assert float(m[1]) < float(m[2]), f"{source.name}: the range {m[0]!r} is backwards"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_header_lists_two_to_five_learning_goals(source):
    goals = _section(_header(source), "**Learning goals.**", None).split("\n")
    bullets, started = 0, False
    for line in goals[1:]:  # after "After this assignment you can"
        if line.startswith("- "):
            bullets, started = bullets + 1, True
        elif started and not line.startswith("  "):  # a goal may wrap onto indented lines
            break
    assert 2 <= bullets <= 5, f"{source.name}: {bullets} learning goals (expected 2 to 5)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_question_has_one_heading_with_its_points_and_difficulty(source):
    totals = question_totals(source)
    headings = {}
    for cell in _cells(source):
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("## Question"):
                m = HEADING.match(line)
                assert m, f"{source.name}: malformed question heading {line!r}; expected " \
                          "'## Question N (P points, guided|standard|challenge): ...'"
                q = f"q{m['n']}"
                assert q not in headings, f"{source.name}: two headings for {q}"
                headings[q] = float(m["points"])
    assert headings.keys() == totals.keys(), \
        f"{source.name}: headings for {sorted(headings)}, questions {sorted(totals)}"
    for q, points in headings.items():
        assert points == totals[q], \
            f"{source.name}: {q}'s heading says {points:g} points, its cases/rubric {totals[q]:g}"


def test_heading_pattern_rejects_near_misses():
    good = "## Question 3 (4 points, challenge): BatchNorm backward, derived"
    assert HEADING.match(good)
    for bad in ("## Question 3 (4 points): no difficulty",
                "## Question 3 (4 pts, challenge): abbreviated",
                "## Question 3 (4 points, hard): unknown difficulty",
                "## q3. the old style"):
        assert not HEADING.match(bad), bad
