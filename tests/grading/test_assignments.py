"""Every homework source builds, its solution scores full marks, and its untouched student
version runs top to bottom and grades to zero with "not attempted" notes.

``assign`` itself grades the solution through the real sandbox and fails unless it gets full
marks, and reads back the student files for leaked solution or hidden-test lines; here we
also check the student notebook independently of the engine.
"""

import csv
import json
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from grading_support import bwrap_notes
from nbclient import NotebookClient

from d2lcnn.grading.grade import grade_batch
from d2lcnn.grading.payload import unpack

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "instructor" / "homework").glob("hw[0-9]*-*.py"))


def test_assignments_are_numbered_from_hw1_without_gaps():
    numbers = [int(p.stem.split("-")[0][2:]) for p in SOURCES]
    assert len(numbers) >= 4 and numbers == list(range(1, len(numbers) + 1)), numbers


@pytest.fixture(params=SOURCES, ids=lambda p: p.stem)
def built(request, assignment_builds):
    """(source, out, summary) of each assignment, built once per session (conftest)."""
    return assignment_builds(request.param)


def test_solution_scores_full_marks_and_every_question_has_hidden_cases(built):
    source, out, summary = built
    # written questions are graded by hand: the solution gets every automatic point
    assert summary["solution_score"] == summary["points"] - summary["written_points"] > 0
    assert summary["hidden"] >= 1 and summary["cases"] - summary["hidden"] >= 1
    questions = set(re.findall(r'tags=\["answer", "(q\d+)"\]', source.read_text()))
    assert len(questions) >= 3


def test_student_notebook_has_no_solution_and_runs_top_to_bottom(built, tmp_path,
                                                                 monkeypatch):
    source, out, _ = built
    shutil.copytree(out / "student", tmp_path / "student")  # its submit() writes there
    nb_path = tmp_path / "student" / f"{source.stem}.ipynb"
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
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
    assert f"Submitted the saved {nb_path.name}: wrote " in outputs


def _assert_same_data(committed, fresh, where):
    """Equal plain data; floats to 1e-12 relative (another machine's BLAS may round the
    expected values of the public cases differently in the last bits)."""
    if isinstance(fresh, dict):
        assert isinstance(committed, dict) and committed.keys() == fresh.keys(), where
        for k in fresh:
            _assert_same_data(committed[k], fresh[k], f"{where}/{k}")
    elif isinstance(fresh, list | tuple):
        assert type(committed) is type(fresh) and len(committed) == len(fresh), where
        for i, (c, f) in enumerate(zip(committed, fresh, strict=True)):
            _assert_same_data(c, f, f"{where}[{i}]")
    elif isinstance(fresh, np.ndarray | float) and np.asarray(fresh).dtype.kind in "fc":
        assert np.asarray(committed).dtype == np.asarray(fresh).dtype, where
        np.testing.assert_allclose(committed, fresh, rtol=1e-12, atol=0, err_msg=where)
    else:
        assert type(committed) is type(fresh), where
        np.testing.assert_array_equal(committed, fresh, err_msg=where)


def test_committed_student_files_match_a_fresh_build(built):
    """notebooks/homework/hwN-name/ (what the book links and `make lab` shows) is exactly
    what assign hands out: the same notebook, byte for byte, and the same public tests and
    expected values. Refresh with `make homework`."""
    source, out, _ = built
    committed = ROOT / "notebooks" / "homework" / source.stem
    fresh = out / "student"
    names = sorted(p.name for p in fresh.iterdir())
    handed_out = sorted(p.name for p in committed.iterdir()
                        if not p.name.endswith(".submission.ipynb") and p.name[0] != ".")
    assert handed_out == names, "run `make homework`"
    for name in names:
        a, b = (committed / name).read_bytes(), (fresh / name).read_bytes()
        if name.endswith(".npz"):
            _assert_same_data(unpack(a), unpack(b), name)
        else:
            assert a == b, f"{committed / name} is stale: run `make homework`"


def test_untouched_student_notebook_grades_to_zero(built, tmp_path):
    source, out, summary = built
    nb_path = out / "student" / f"{source.stem}.ipynb"
    grade_batch(out / "autograder", [nb_path], tmp_path / "grades", jobs=1, progress=False)
    with open(tmp_path / "grades" / "grades.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["total"]) == 0 and float(row["max"]) == summary["points"]
    questions = [k for k in row if re.fullmatch(r"q\d+[a-z]?", k)]
    assert len(questions) >= 3
    written = json.loads((out / "autograder" / "bundle.json").read_text()).get("written", {})
    for q in questions:  # a written question's cell still holds its placeholder: no answer
        assert f"{q}: {'no answer' if q in written else 'not attempted'}" in row["notes"]
        assert float(row[q]) == 0, (q, row[q])  # 0, not "pending"
    if written:
        assert row["status"] == "final"


def _grade_one(out, nb, tmp_path, name):
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    grade_batch(out / "autograder", [path], tmp_path / "grades", jobs=1, progress=False)
    with open(tmp_path / "grades" / "grades.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    return row


def _solution_with(out, cell_id, old, new):
    nb = nbformat.read(out / "autograder" / "solution.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.id == cell_id)
    assert old in cell.source
    cell.source = cell.source.replace(old, new, 1)
    return nb


@pytest.mark.parametrize("stem, cell_id, old, new, question, blocked", [
    # hw3 allows the package's NumPy layers but not its optimizers: they are removed from the
    # preloaded d2lcnn.numpy, so an answer that calls them loses that question only.
    # (q1: the other answers do not call sgd_momentum_step, so they keep full marks; q2's
    # adam_step is used by q4 and q5, which would fail with it.)
    ("hw3-optimizers", "q1-answer", "def sgd_momentum_step",
     "from d2lcnn.numpy import SGD as _PackageSGD\n\n\ndef sgd_momentum_step", ("q1", 6),
     "ImportError: d2lcnn.numpy.optim is forbidden in this assignment"),
    ("hw3-optimizers", "q1-answer", "def sgd_momentum_step",
     "import torch\n\n\ndef sgd_momentum_step", ("q1", 6), "torch"),
    # hw3's q5 data come from the grader: the digits (d2lcnn.data, scikit-learn) are absent.
    ("hw3-optimizers", "q5-answer", "def train_and_predict",
     "from d2lcnn.data import load_digits\n\n\ndef train_and_predict", ("q5", 10),
     "d2lcnn.data"),
    # hw4 allows torch (preloaded) but not the package's models.
    ("hw4-resnet-unet", "q1-answer", "class ResidualBlock",
     "from d2lcnn.torch.models.resnet import BasicBlock\n\n\nclass ResidualBlock", ("q1", 8),
     "d2lcnn.torch.models"),
])
@bwrap_notes
def test_answer_calling_a_forbidden_reference_loses_only_that_question(
        assignment_builds, tmp_path, stem, cell_id, old, new, question, blocked):
    source, out, summary = assignment_builds(stem)
    row = _grade_one(out, _solution_with(out, cell_id, old, new), tmp_path, "cheat")
    question, points = question
    assert float(row[question]) == 0
    # every other automatic question: full marks (written questions stay pending, out of total)
    assert float(row["total"]) == summary["solution_score"] - points
    assert blocked in row["notes"]
