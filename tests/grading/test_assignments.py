"""Every homework source builds, its solution scores full marks, and its untouched student
version runs top to bottom and grades to zero with "not attempted" notes.

``assign`` itself grades the solution through the real sandbox and fails unless it gets full
marks, and reads back the student files for leaked solution or hidden-test lines; here we
also check the student notebook independently of the engine.
"""

import csv
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from d2lcnn.grading.authoring import assign
from d2lcnn.grading.grade import grade_batch

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "notebooks" / "homework").glob("hw[0-9]*-*.py"))


def test_there_are_four_assignments():
    assert [p.stem.split("-")[0] for p in SOURCES] == ["hw1", "hw2", "hw3", "hw4"]


@pytest.fixture(scope="module", params=SOURCES, ids=lambda p: p.stem)
def built(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param.stem)
    summary = assign(request.param, out)
    return request.param, out, summary


def test_solution_scores_full_marks_and_every_question_has_hidden_cases(built):
    source, out, summary = built
    assert summary["solution_score"] == summary["points"] > 0
    assert summary["hidden"] >= 1 and summary["cases"] - summary["hidden"] >= 1
    questions = set(re.findall(r'tags=\["answer", "(q\d+)"\]', source.read_text()))
    assert len(questions) >= 3


def test_student_notebook_has_no_solution_and_runs_top_to_bottom(built):
    source, out, _ = built
    nb_path = out / "student" / f"{source.stem}.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for marker in ("### BEGIN SOLUTION", "### END SOLUTION", "@case(", "settings("):
        assert marker not in text
    assert text.count("raise NotImplementedError") >= 3
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                        for o in c.get("outputs", []))
    assert "not attempted" in outputs
    assert "Traceback" not in outputs


def test_untouched_student_notebook_grades_to_zero(built, tmp_path):
    source, out, summary = built
    nb_path = out / "student" / f"{source.stem}.ipynb"
    grade_batch(out / "autograder", [nb_path], tmp_path / "grades", jobs=1, progress=False)
    with open(tmp_path / "grades" / "grades.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["total"]) == 0 and float(row["max"]) == summary["points"]
    questions = [k for k in row if re.fullmatch(r"q\d+[a-z]?", k)]
    assert len(questions) >= 3
    for q in questions:
        assert f"{q}: not attempted" in row["notes"]
