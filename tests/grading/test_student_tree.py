"""What students browse holds no solutions: ``notebooks/`` (the ``make lab`` and book tree)
has no solution block and no hidden-test or autograder cell, its homework folders are the
handed-out student files of the instructor sources, and chapters link those student
notebooks, never the instructor sources (``instructor/``, outside the tree)."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from d2lcnn.grading.payload import unpack

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
INSTRUCTOR = ROOT / "instructor" / "homework"
SOURCES = sorted(INSTRUCTOR.glob("hw[0-9]*-*.py"))
# The marker as assign recognises it, near-misses included (authoring._solution_blocks).
MARKER = re.compile(r"\b(BEGIN|END)[\s_]*SOL", re.IGNORECASE)
SECRET_TAGS = {"tests", "hidden", "autograder", "rubric"}
SKIP = {".ipynb_checkpoints", "__pycache__"}


def _files():
    return [p for p in sorted(NOTEBOOKS.rglob("*"))
            if p.is_file() and not SKIP & set(p.relative_to(NOTEBOOKS).parts)]


def _text(path: Path) -> str:
    if path.suffix == ".npz":
        return json.dumps(unpack(path.read_bytes()), default=str)
    return path.read_bytes().decode("utf-8", errors="replace")


def test_instructor_sources_are_outside_the_student_tree():
    numbers = [int(p.stem.split("-")[0][2:]) for p in SOURCES]
    assert len(numbers) >= 4 and numbers == list(range(1, len(numbers) + 1)), numbers
    assert (ROOT / "instructor" / "README.md").exists()
    assert not list(NOTEBOOKS.rglob("hw[0-9]*-*.py")), "an instructor source is under notebooks/"


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_no_file_under_notebooks_holds_a_solution_or_hidden_tests(path):
    text = _text(path)
    found = MARKER.search(text)
    assert not found, f"{path.relative_to(ROOT)}: solution marker {found.group(0)!r}"
    if path.suffix == ".ipynb":
        for i, cell in enumerate(nbformat.reads(text, as_version=4).cells):
            tags = set(cell.get("metadata", {}).get("tags", []))
            assert not tags & SECRET_TAGS, f"{path.name}: cell {i + 1} is tagged {tags}"
            assert "@case(" not in cell.source, f"{path.name}: cell {i + 1} declares a case"
    if path.suffix == ".npz":  # a public-test file: public tests only
        assert "hidden" not in unpack(path.read_bytes()), path.name


def test_homework_folders_are_the_student_files_of_the_instructor_sources():
    """One folder per source, holding exactly what ``assign`` writes to ``student/`` (that
    the contents match a fresh build is tests/grading/test_assignments.py's job)."""
    folders = sorted(p.name for p in (NOTEBOOKS / "homework").iterdir() if p.is_dir())
    assert folders == [p.stem for p in SOURCES]
    for name in folders:
        files = sorted(p.name for p in (NOTEBOOKS / "homework" / name).iterdir()
                       if not _yours(p))
        assert files == [f"{name}.ipynb", f"{name}.public.npz"], (
            f"notebooks/homework/{name}/ holds {files}: only the student files belong there "
            "(run `make homework` to refresh them)")


def _yours(path: Path) -> bool:
    """What working in the book tree adds (git ignores it): a submission, checkpoints."""
    return path.name.endswith(".submission.ipynb") or path.name == ".ipynb_checkpoints"


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@pytest.mark.parametrize("chapter", sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py")),
                         ids=lambda p: p.stem)
def test_chapters_link_the_student_notebooks_not_the_instructor_sources(chapter):
    text = chapter.read_text()
    assert "instructor/" not in text and not re.search(r"hw\d+-[\w-]+\.py\b", text), (
        f"{chapter.name} points to an instructor source")
    assert "build/homework" not in text, f"{chapter.name} points to a build folder"
    for m in LINK.finditer(text):
        target = m.group("target")
        if "homework" in target:
            assert not target.startswith(("/", "http")), target
            assert (chapter.parent / target).is_file(), f"{chapter.name}: broken link {target}"


def test_each_student_notebook_is_a_page_of_the_book():
    """The book renders the student notebooks (never executed: `execute_notebooks: off`) as
    sections of their chapters, so the chapters' links to them resolve in the HTML too."""
    import yaml

    toc = yaml.safe_load((NOTEBOOKS / "_toc.yml").read_text())
    sections = [s["file"] for part in toc["parts"] for c in part["chapters"]
                for s in c.get("sections", [])]
    assert sorted(sections) == [f"homework/{p.stem}/{p.stem}" for p in SOURCES]
