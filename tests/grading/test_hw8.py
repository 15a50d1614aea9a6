"""Homework 8: plausible wrong answers lose points, and answers that only get the output's
form right earn nothing.

Each graded notebook is the solution notebook (``autograder/solution.ipynb`` of the
session's build, the ``assignment_builds`` fixture) with ONE answer changed:

- a plausible wrong answer (the same ones, with their scores, are listed at the top of
  hw8's hidden tests) replaces one line of a solution, and must cost its own question
  exactly the stated points and nothing elsewhere;
- a form-only answer replaces a whole answer cell with functions that return output of the
  right type and shape computed from nothing (a constant verdict, an accuracy curve that is
  always 1.0, the rule-of-thumb ratio for every layer, a map of zeros), and must score 0 on
  its question.

The do-nothing stubs (``pass``, ``raise``, identity, zeros) of every question are
test_homework_integrity.py's, which runs them for every assignment, hw8 included.
"""

import csv
import json
from pathlib import Path

import nbformat
import pytest

from d2lcnn.grading.grade import grade_batch

STEM = "hw8-babysitting"

# (label, answer cell id, text in the solution, its replacement, question, score earned).
WRONG = [
    ("K from the model's output width", "q1-answer",
     "    expected = expected_initial_loss(num_classes)\n",
     "    with torch.no_grad():\n"
     "        expected = expected_initial_loss(model(x).shape[1])\n", "q1", 5),
    ("accuracy measured on all of x", "q2-answer",
     "        curve.append((out.argmax(dim=1) == y).float().mean().item())\n",
     "        with torch.no_grad():\n"
     "            acc = (model(x_all).argmax(dim=1) == y_all).float().mean().item()\n"
     "        curve.append(acc)\n", "q2", 2),
    ("no zero_grad: stale gradients added", "q3-answer",
     "    opt.zero_grad()  # drop the gradients of an earlier batch\n", "", "q3", 3),
    ("the last position (the border) missed", "q4-answer",
     "            for i, top in enumerate(range(0, h - patch + 1, stride)):\n"
     "                for j, left in enumerate(range(0, w - patch + 1, stride)):\n",
     "            for i, top in enumerate(range(0, h - patch, stride)):\n"
     "                for j, left in enumerate(range(0, w - patch, stride)):\n", "q4", 0),
]
# The q2 wrong answer keeps the full batch under another name for its measurement.
Q2_KEEP = ("    x, y = x[:n], y[:n]\n", "    x_all, y_all = x, y\n    x, y = x[:n], y[:n]\n")

# Question -> an answer cell whose functions return the right form and nothing else.
FORM_ONLY = {
    "q1": '''
def expected_initial_loss(num_classes):
    return 1.0


def initial_loss_verdict(model, x, y, num_classes, *, rtol=0.2):
    return 1.0, "ok"
''',
    "q2": '''
def overfit_curve(model, x, y, *, n=20, steps=100, lr=1e-2):
    return [1.0] * (steps + 1)
''',
    "q3": '''
def update_ratios(model, x, y, lr):
    return {name: 1e-3 for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), nn.Parameter) and m.weight.ndim >= 2}
''',
    "q4": '''
def occlusion_map(model, x, target, *, patch=4, stride=1, fill=0.0):
    h_out, w_out = (x.shape[1] - patch) // stride + 1, (x.shape[2] - patch) // stride + 1
    return np.zeros((h_out, w_out))
''',
}


def _replace(cell, old: str, new: str) -> None:
    source = cell.source + "\n"  # a cell's last line has no newline of its own
    assert old in source, f"{cell.id}: the solution no longer contains {old!r}"
    cell.source = source.replace(old, new, 1).removesuffix("\n")


def _notebooks(out: Path) -> dict:
    """``name -> (notebook, question, score it must earn there)`` for every variant."""
    made = {}
    for i, (label, cell_id, old, new, question, score) in enumerate(WRONG):
        nb = nbformat.read(out / "autograder" / "solution.ipynb", as_version=4)
        cell = next(c for c in nb.cells if c.id == cell_id)
        _replace(cell, old, new)
        if question == "q2":
            _replace(cell, *Q2_KEEP)
        made[f"wrong{i}"] = nb, question, score, label
    for question, source in FORM_ONLY.items():
        nb = nbformat.read(out / "autograder" / "solution.ipynb", as_version=4)
        next(c for c in nb.cells if c.id == f"{question}-answer").source = source.strip("\n")
        made[f"form_{question}"] = nb, question, 0, "form only"
    return made


def _question_points(out: Path) -> dict:
    """Auto-graded question -> its points (the sum of its cases'), from the bundle."""
    bundle = json.loads((out / "autograder" / "bundle.json").read_text())
    points = {}
    for c in bundle["cases"]:
        points[c["question"]] = points.get(c["question"], 0.0) + c["points"]
    return points


@pytest.fixture(scope="module")
def graded(assignment_builds, tmp_path_factory):
    """The bundle's question maxima, the variants, and their grades.csv rows (one batch)."""
    _, out, _ = assignment_builds(STEM)
    made = _notebooks(out)
    folder = tmp_path_factory.mktemp("hw8-variants")
    paths = []
    for name, (nb, *_) in made.items():
        paths.append(folder / f"{name}.ipynb")
        nbformat.write(nb, paths[-1])
    grade_batch(out / "autograder", paths, folder / "grades", jobs=2, progress=False)
    with open(folder / "grades" / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return _question_points(out), made, rows


def test_the_questions_and_their_points(graded):
    maxima, _, _ = graded
    assert maxima == {"q1": 7, "q2": 5, "q3": 5, "q4": 8}


@pytest.mark.parametrize("i", range(len(WRONG)), ids=[w[0] for w in WRONG])
def test_a_plausible_wrong_answer_loses_points_on_its_question_only(graded, i):
    maxima, made, rows = graded
    _, question, score, label = made[f"wrong{i}"]
    row = rows[f"wrong{i}"]
    assert score < maxima[question]
    assert float(row[question]) == score, (label, row)
    for q, full in maxima.items():  # the questions do not call each other
        if q != question:
            assert float(row[q]) == full, (label, q, row)


@pytest.mark.parametrize("question", sorted(FORM_ONLY))
def test_an_answer_with_only_the_right_form_scores_zero(graded, question):
    maxima, _, rows = graded
    row = rows[f"form_{question}"]
    assert float(row[question]) == 0, row
    assert "not attempted" not in row["notes"]  # it ran, and it was wrong
    for q, full in maxima.items():
        if q != question:
            assert float(row[q]) == full, (question, q, row)
