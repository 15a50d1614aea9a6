"""Scoring and result writing without a sandbox: grade_notebook against a stand-in bundle
whose cases return chosen results, so fractional credit, question totals and notes are
checked against hand-computed numbers; then feedback.md, results.json and grades.csv
written from a hand-made result (the expected text is spelled out, not re-derived)."""

import contextlib
import csv
import io
import json

import pytest

from d2lcnn.grading.report import feedback_markdown, gradebook, reusable_result, write_result
from d2lcnn.grading.sandbox import CaseRun, CellRun, QuestionRun
from d2lcnn.grading.scoring import empty_result, grade_file, grade_notebook, score_case


class StandInBundle:
    """What grade_notebook asks of a Bundle, with each case's run and checker given."""

    name = "hw0"
    sha256 = "b" * 64

    def __init__(self, cases, runs, checkers, cell_errors=None):
        self.meta = {
            "source_sha256": "s" * 64,
            "questions": {"q1": 4.0, "q2": 2.0, "q3": 1.0},
            "template": [{"role": "answer", "question": q, "id": f"id-{q}", "sha256": ""}
                         for q in ("q1", "q2", "q3")],
            "settings": {"forbid": ["torch"]},
            "cases": cases,
        }
        self.expected = {c["key"]: 1.0 for c in cases}
        self._runs, self._checkers = runs, checkers
        self._cell_errors = cell_errors or {}

    def checkers(self):
        return self._checkers

    def submission_budget(self):
        return 60.0

    def inputs(self, case):
        return None

    @contextlib.contextmanager
    def session(self):
        yield None

    def run(self, q, cells, skip, deny_read, server, deadline):
        run = QuestionRun(processes=1, wall=0.5)
        run.cases = {k: r for k, r in self._runs.items() if k.startswith(q + "/")}
        for key, error in self._cell_errors.get(q, {}).items():
            run.cells[key] = CellRun(key, f"cell {key + 1} (answer {q})", error=error)
        return run


def _case(question, name, points, hidden=False, hint=""):
    return {"question": question, "name": name, "key": f"{question}/{name}", "points": points,
            "hidden": hidden, "hint": hint}


def _notebook(*questions):
    return {"metadata": {"d2lcnn_grading": {"assignment": "hw0", "source_sha256": "s" * 64}},
            "cells": [{"cell_type": "code", "source": "x = 1", "id": f"id-{q}",
                       "metadata": {"tags": ["answer", q]}} for q in questions]}


def _checker(fraction):
    return lambda got, expected: (fraction, f"checked {fraction}")


def test_fractional_credit_adds_up_per_case_question_and_total():
    # q1: 3 cases of 1, 2 and 1 points scoring 1, 0.25 and 0 -> 1 + 0.5 + 0 = 1.5 of 4;
    # q2: one case of 2 points scoring 0.5 -> 1 of 2; q3: a fraction above 1 is clamped -> 1.
    cases = [_case("q1", "a", 1.0), _case("q1", "b", 2.0, hint="look at b"),
             _case("q1", "c", 1.0, hidden=True), _case("q2", "a", 2.0), _case("q3", "a", 1.0)]
    runs = {c["key"]: CaseRun(c["key"], "ok", 1.0) for c in cases}
    checkers = {"q1/a": _checker(True), "q1/b": _checker(0.25), "q1/c": _checker(False),
                "q2/a": _checker(0.5), "q3/a": _checker(7.0)}
    bundle = StandInBundle(cases, runs, checkers)
    result = grade_notebook(bundle, _notebook("q1", "q2", "q3"), name="ada")
    assert [t["score"] for t in result["tests"]] == [1.0, 0.5, 0.0, 1.0, 1.0]
    assert [t["max_score"] for t in result["tests"]] == [1.0, 2.0, 1.0, 2.0, 1.0]
    assert result["extra_data"]["questions"] == {"q1": [1.5, 4.0], "q2": [1.0, 2.0],
                                                 "q3": [1.0, 1.0]}
    assert result["score"] == 3.5 and result["max_score"] == 7.0
    assert result["output"].startswith("3.5 / 7 points; ")
    notes = result["extra_data"]["notes"]
    assert "q1: 1.5/4 (2 of 3 cases failed)" in notes
    assert "q2: 1/2 (1 of 1 cases failed)" in notes
    assert not any(n.startswith("q3") for n in notes)
    tests = {t["name"]: t for t in result["tests"]}
    assert tests["q1: a"]["output"] == "passed" and tests["q3: a"]["output"] == "passed"
    assert tests["q1: b"]["output"] == "failed: checked 0.25\nhint: look at b"
    assert tests["q1: c"]["output"] == "failed: wrong result"  # hidden: the kind only
    assert tests["q1: c"]["visibility"] == "after_published"
    assert tests["q1: a"]["visibility"] == "visible"
    assert result["extra_data"]["timing"]["processes"] == 3


def test_zero_points_say_why():
    cases = [_case("q1", "a", 1.0), _case("q2", "a", 1.0), _case("q3", "a", 1.0)]
    runs = {"q1/a": CaseRun("q1/a", "not_attempted"),
            "q2/a": CaseRun("q2/a", "error", error="ValueError (line 3)"),
            "q3/a": CaseRun("q3/a", "timeout")}
    bundle = StandInBundle(cases, runs, {c["key"]: _checker(True) for c in cases},
                           cell_errors={"q2": {1: "ValueError (line 3)"}})
    result = grade_notebook(bundle, _notebook("q1", "q2", "q3"), name="bo")
    notes = result["extra_data"]["notes"]
    assert result["score"] == 0 and result["max_score"] == 7  # the questions' points
    assert "q1: not attempted" in notes
    assert "q2: 0 points; its answer cell failed (cell 2 (answer q2): ValueError (line 3))" \
        in notes
    assert "q3: 0 points; all cases failed (first: timed out)" in notes
    tests = {t["name"]: t["output"] for t in result["tests"]}
    assert tests["q2: a"] == "failed: ValueError (line 3)"


def test_wrong_assignment_and_missing_metadata():
    cases = [_case("q1", "a", 2.0), _case("q2", "a", 1.0, hidden=True)]
    runs = {c["key"]: CaseRun(c["key"], "ok", 1.0) for c in cases}
    bundle = StandInBundle(cases, runs, {c["key"]: _checker(True) for c in cases})
    nb = _notebook("q1", "q2")
    nb["metadata"]["d2lcnn_grading"]["assignment"] = "hw9"
    result = grade_notebook(bundle, nb, name="cy")
    assert result["score"] == 0.0 and result["max_score"] == 3.0
    assert result["output"] == "wrong assignment: this notebook is 'hw9', expected 'hw0'"
    assert [t["max_score"] for t in result["tests"]] == [2.0, 1.0]
    assert [t["visibility"] for t in result["tests"]] == ["visible", "after_published"]
    assert result["extra_data"]["questions"] == {"q1": [0.0, 4.0], "q2": [0.0, 2.0],
                                                 "q3": [0.0, 1.0]}
    nb["metadata"] = {}
    result = grade_notebook(bundle, nb, name="cy")
    assert result["score"] == 3.0
    assert result["extra_data"]["notes"][0].startswith("no assignment metadata")
    nb["metadata"] = {"d2lcnn_grading": {"assignment": "hw0", "source_sha256": "old"}}
    result = grade_notebook(bundle, nb, name="cy")
    assert result["extra_data"]["notes"][0] == ("made from a different version of the "
                                                "assignment; graded anyway")


@pytest.mark.parametrize("status, error, kind", [
    ("not_attempted", None, "not attempted"),
    ("timeout", None, "timed out"),
    ("crash", None, "the process crashed"),
    ("error", "KeyError (line 2)", "raised KeyError"),
    ("error", "an exception", "raised an exception"),
])
def test_a_case_that_did_not_run_scores_nothing(status, error, kind):
    frac, detail, got_kind = score_case({}, CaseRun("q1/a", status, error=error), 1,
                                        _checker(True))
    assert frac == 0.0 and got_kind == kind
    if status == "not_attempted":
        assert detail.startswith("not attempted (the function still raises")


def test_a_checker_that_raises_scores_nothing_and_says_so():
    def checker(got, expected):
        raise TypeError("bad shape")

    frac, detail, kind = score_case({}, CaseRun("q1/a", "ok", 1), 1, checker)
    assert (frac, kind) == (0.0, "wrong result")
    assert detail == "the result could not be checked (TypeError: bad shape)"
    kept = []
    frac, _, _ = score_case({"inputs": True}, CaseRun("q1/a", "ok", 1), 1,
                            lambda g, e, k: (kept.append(k) or True, ""), kept="labels")
    assert frac == 1.0 and kept == ["labels"]


# ----------------------------------------------------------------------------- on disk


def _result():
    return {
        "score": 2.5, "max_score": 4.0, "output": "2.5 / 4 points",
        "tests": [
            {"name": "q1: a", "score": 2.0, "max_score": 2.0, "output": "passed",
             "visibility": "visible"},
            {"name": "q1: b", "score": 0.5, "max_score": 1.0, "output": "failed: off\nhint: h",
             "visibility": "visible"},
            {"name": "q2: a", "score": 0.0, "max_score": 1.0, "output": "failed: timed out",
             "visibility": "after_published"},
        ],
        "extra_data": {"student": "ada", "assignment": "hw0", "bundle_sha256": "b",
                       "submission_sha256": "s", "notes": ["=1+1", "q2: 0 points"],
                       "questions": {"q1": [2.5, 3.0], "q2": [0.0, 1.0]}},
    }


def test_feedback_markdown_spelled_out():
    assert feedback_markdown(_result()) == "\n".join([
        "# hw0: feedback for ada", "",
        "**Score: 2.5 / 4**", "",
        "| question | points |", "| --- | --- |",
        "| q1 | 2.5 / 3 |", "| q2 | 0 / 1 |", "",
        "## Test cases", "",
        "- **q1: a**: 2/2, passed",
        "- **q1: b**: 0.5/1, FAILED", "  failed: off", "  hint: h",
        "- **q2: a** (hidden): 0/1, FAILED", "  failed: timed out", "",
        "## Notes", "",
        "- =1+1", "- q2: 0 points",
    ]) + "\n"


def test_write_result_and_reuse(tmp_path):
    write_result(tmp_path, _result())
    assert json.loads((tmp_path / "results.json").read_text()) == _result()
    assert (tmp_path / "feedback.md").read_text() == feedback_markdown(_result())
    assert reusable_result(tmp_path, "s", "b") == _result()
    assert reusable_result(tmp_path, "other", "b") is None
    assert reusable_result(tmp_path, "s", "other") is None
    assert reusable_result(tmp_path / "missing", "s", "b") is None
    (tmp_path / "results.json").write_text("{not json")
    assert reusable_result(tmp_path, "s", "b") is None
    (tmp_path / "results.json").write_text('{"extra_data": {}}')
    assert reusable_result(tmp_path, "s", "b") is None


def test_gradebook_spelled_out():
    other = _result()
    other["score"], other["extra_data"]["questions"] = -0.0, {"q1": [0.0, 3.0], "q2": [-0.0, 1]}
    other["extra_data"]["notes"] = []
    text, rows = gradebook(["q1", "q2"], [("ada", "subs/ada.ipynb", _result()),
                                          ("-bo", "+x.ipynb", other)])
    assert text == ("student,file,q1,q2,total,max,notes\r\n"
                    "ada,subs/ada.ipynb,2.5,0,2.5,4,'=1+1; q2: 0 points\r\n"
                    "'-bo,'+x.ipynb,0,0,0,4,\r\n")
    assert rows[0] == {"student": "ada", "file": "subs/ada.ipynb", "q1": "2.5", "q2": "0",
                       "total": "2.5", "max": "4", "notes": "'=1+1; q2: 0 points"}
    assert list(csv.reader(io.StringIO(text)))[2][0] == "'-bo"


def test_empty_result_lists_every_case_at_zero():
    cases = [_case("q1", "a", 2.0), _case("q2", "a", 1.5, hidden=True)]
    bundle = StandInBundle(cases, {}, {})
    result = empty_result(bundle, "ada", ["unreadable"], submission="x.ipynb")
    assert result["score"] == 0.0 and result["max_score"] == 3.5
    assert result["output"] == "unreadable"
    assert [(t["name"], t["score"], t["max_score"], t["output"], t["visibility"])
            for t in result["tests"]] == [("q1: a", 0.0, 2.0, "not graded", "visible"),
                                          ("q2: a", 0.0, 1.5, "not graded", "after_published")]
    assert result["extra_data"]["submission"] == "x.ipynb"
    assert result["extra_data"]["questions"]["q1"] == [0.0, 4.0]


def test_grade_file_refuses_what_is_not_a_notebook_and_grades_a_damaged_one(tmp_path):
    cases = [_case("q1", "a", 4.0)]
    bundle = StandInBundle(cases, {"q1/a": CaseRun("q1/a", "ok", 1.0)},
                           {"q1/a": _checker(True)})
    bad = {"garbage.ipynb": b"{not json", "latin.ipynb": b'"\xff"',
           "list.ipynb": b'{"cells": 3}'}
    why = {"garbage.ipynb": "not a Jupyter notebook (invalid JSON at line 1)",
           "latin.ipynb": "not a Jupyter notebook (invalid JSON, not UTF-8)",
           "list.ipynb": "not a Jupyter notebook (no list of cells)"}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        result = grade_file(bundle, tmp_path / name, name="ada")
        assert result["score"] == 0.0 and result["extra_data"]["notes"] == [why[name]]
        assert result["extra_data"]["submission"] == str(tmp_path / name)
    damaged = dict(_notebook("q1"), nbformat=4, nbformat_minor=5)
    damaged["cells"][0].update(execution_count="one", outputs=[])  # invalid: graded anyway
    (tmp_path / "damaged.ipynb").write_text(json.dumps(damaged))
    result = grade_file(bundle, tmp_path / "damaged.ipynb", name="ada")
    assert result["score"] == 4.0
    assert any(n.startswith("the notebook does not validate (")
               for n in result["extra_data"]["notes"])
    assert len(result["extra_data"]["submission_sha256"]) == 64
