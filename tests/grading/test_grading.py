"""Grading: the untouched student notebook, adversarial submissions with their expected
scores, and batches (parallel, idempotent, resumable)."""

import copy
import csv
import json

import nbformat
import pytest
from grading_support import ISOLATION, needs_bwrap

from d2lcnn.grading.grade import grade_batch

FULL = {"q1": 5, "q2": 8, "q3": 9, "q4": 8, "q5": 6}


def _solution(hw1):
    return nbformat.read(hw1["bundle"] / "solution.ipynb", as_version=4)


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


def _insert(nb, source, after="setup"):
    i = next(i for i, c in enumerate(nb.cells) if c.id == after)
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"extra-{len(nb.cells)}"
    nb.cells.insert(i + 1, cell)
    return nb


def _replace(nb, cell_id, old, new):
    cell = _cell(nb, cell_id)
    assert old in cell.source
    cell.source = cell.source.replace(old, new)
    return nb


def _adversaries(hw1, out):
    """name -> (notebook dict or raw bytes, expected per-question scores, note substrings)."""
    sol = _solution(hw1)
    student = nbformat.read(hw1["student"] / "hw1-convolution.ipynb", as_version=4)
    s = lambda: copy.deepcopy(sol)  # noqa: E731
    wrong_q2 = ("return out, cache", "return out + 1.0, cache")
    cases = {
        "solution": (s(), FULL, []),
        "untouched": (copy.deepcopy(student), dict.fromkeys(FULL, 0), ["q1: not attempted",
                                                                     "q5: not attempted"]),
        "patch-allclose": (_replace(_insert(s(), (
            "np.allclose = lambda *a, **k: True\nnp.isclose = lambda a, b, **k: True\n"
            "np.array_equal = lambda *a, **k: True\n"
            "import d2lcnn.grading.checks as c\nc.compare = lambda *a, **k: ''\n"
            "c.close = lambda *a, **k: (lambda g, e: (True, ''))")), "q2-answer", *wrong_q2),
            {**FULL, "q2": 0}, []),  # q2 returns out + 1: every case wrong
        "patch-builtins": (_replace(_insert(s(), (
            "import builtins\nbuiltins.print = lambda *a, **k: None\n"
            "builtins.abs = lambda x: 0\nbuiltins.round = lambda *a: 0")),
            "q1-answer", 'raise ValueError(f"kernel', 'print(f"kernel'),
            {**FULL, "q1": 4}, ["q1: 4/5 (1 of 5 cases failed)"]),
        "sys-exit": (_insert(s(), "import sys\nsys.exit('bye')"), FULL, ["SystemExit (line 2)"]),
        "os-exit": (_insert(s(), "import os\nos._exit(0)"), FULL, ["exited with code 0"]),
        "fork-kill": (_insert(s(), "import os\ntry:\n    os.kill(os.getppid(), 9)\nfinally:\n"
                                   "    os.fork()"), FULL,
                      ["blocked: os.kill", "blocked: os.fork"]),
        "loop-cell": (_insert(s(), "while True:\n    pass"), FULL, ["timed out after 1.5 s"]),
        "loop-answer": (_replace(s(), "q5-answer", "grad = np.zeros_like(x, dtype=np.float64)",
                                 "while True:\n        pass"), {**FULL, "q5": 0},
                        ["q5: 0 points; all cases failed (first: timed out)"]),
        "memory-bomb": (_insert(s(), "big = bytearray(8 * 2**30)"), FULL, ["MemoryError"]),
        "huge-print": (_insert(s(), "for i in range(10**7):\n    print('spam' * 100)"), FULL,
                       ["OSError"]),
        "fake-score": (_insert(copy.deepcopy(student), (
            "print('{\"score\": 36, \"max_score\": 36}')\nprint('q1: 5/5 SCORE 36/36')")),
            dict.fromkeys(FULL, 0), ["not attempted"]),
        "writes-files": (_insert(s(), (
            "open('results.json', 'w').write('{}')\n"
            f"for p in [{str(out / 'writes-files' / 'results.json')!r}, "
            f"{str(out / 'grades.csv')!r}, {str(hw1['bundle'] / 'bundle.json')!r}]:\n"
            "    try:\n        open(p, 'w').write('pwned')\n    except PermissionError:\n"
            "        pass\n"
            f"open({str(hw1['bundle'] / 'expected.npz')!r}, 'rb').read()")),
            # bwrap: none of these paths exists in the sandbox; process: the hook refuses
            # (line 4 where /tmp is the scratch space, line 7 where the environment itself
            # lives under /tmp and the hook refuses the writes: neither reaches the grader)
            FULL, ["cell 4: FileNotFoundError (line "] if ISOLATION == "bwrap" else
            ["blocked: writing outside", "blocked: reading"]),
        "imports-reference": (_replace(s(), "q2-answer", "def conv2d_forward_naive",
                                       "from d2lcnn.numpy.conv import conv2d_forward\n\n\n"
                                       "def conv2d_forward_naive"),
                              {**FULL, "q2": 0, "q3": 0},
                              ["imports d2lcnn.numpy, which this assignment forbids",
                               "blocked: import of d2lcnn.numpy"]),
        "imports-torch": (_insert(s(), "import torch"), FULL, ["blocked: import of torch"]),
        "syntax-error": (_replace(s(), "q3-answer", "dw = np.zeros_like(w)", "dw = (("),
                         {**FULL, "q3": 0}, ["q3: 0 points; its answer cell failed",
                                             "SyntaxError"]),
        "top-level-exception": (_insert(s(), "1 / 0"), FULL, ["ZeroDivisionError"]),
        "partial": (_replace(s(), "q4-answer", "dx[n, c, hs + p, ws + q] += dout[n, c, i, j]",
                             "pass"), {**FULL, "q4": 1}, []),
        "deleted-check": (_delete(s(), "q1-check"), FULL, ["the check cell of q1 is missing"]),
        "duplicated-answer": (_duplicate(s(), "q1-answer"), FULL,
                              ["the answer cell of q1 appears 2 times"]),
        "edited-tags": (_retag(s(), "q2-answer"), FULL,
                        ["the answer cell of q2 was found by its id"]),
        "wrong-assignment": (_meta(s(), "hw2-batchnorm"), dict.fromkeys(FULL, 0),
                             ["wrong assignment"]),
        # A cell tagged "demo" is the student's experiment: never run by the grader (see
        # test_demo_cells_are_not_run for the absence of its error).
        "demo-cell": (_demo(s(), "raise ZeroDivisionError('demo cell ran')"), FULL, []),
    }
    files = {name: (nbformat.writes(nb), exp, notes) for name, (nb, exp, notes) in
             cases.items()}
    files["invalid-json"] = ('{"cells": [', dict.fromkeys(FULL, 0), ["invalid JSON"])
    files["not-a-notebook"] = ("[1, 2, 3]", dict.fromkeys(FULL, 0), ["not a Jupyter notebook"])
    files["binary"] = (b"\x89PNG\r\n\x1a\n\x00\xff", dict.fromkeys(FULL, 0),
                       ["not a Jupyter notebook"])
    return files


def _demo(nb, source):
    nb = _insert(nb, source)
    nb.cells[next(i for i, c in enumerate(nb.cells) if c.id == "setup") + 1].metadata[
        "tags"] = ["demo"]
    return nb


def _delete(nb, cell_id):
    nb.cells = [c for c in nb.cells if c.id != cell_id]
    return nb


def _duplicate(nb, cell_id):
    i = next(i for i, c in enumerate(nb.cells) if c.id == cell_id)
    dup = copy.deepcopy(nb.cells[i])
    dup.id = cell_id + "-copy"
    nb.cells.insert(i + 1, dup)
    return nb


def _retag(nb, cell_id):
    _cell(nb, cell_id).metadata["tags"] = ["my-answer"]
    return nb


def _meta(nb, assignment):
    nb.metadata["d2lcnn_grading"]["assignment"] = assignment
    return nb


@pytest.fixture(scope="module")
def batch(hw1, tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("graded")
    expected = {}
    for name, (content, exp, notes) in _adversaries(hw1, out).items():
        path = subs / f"{name}.ipynb"
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        expected[name] = (exp, notes)
    res = grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False)
    return {"subs": subs, "out": out, "expected": expected, "result": res}


def _rows(out):
    with open(out / "grades.csv", newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def test_every_submission_gets_a_row_with_the_expected_scores(batch):
    rows = _rows(batch["out"])
    assert set(rows) == set(batch["expected"])
    for name, (exp, notes) in batch["expected"].items():
        row = rows[name]
        got = {q: float(row[q]) for q in FULL}
        assert got == exp, (name, row["notes"])
        assert float(row["total"]) == sum(exp.values()), name
        for n in notes:
            assert n in row["notes"], (name, n, row["notes"])
        for q, points in exp.items():
            if points < FULL[q]:  # a lost point always comes with a reason
                assert f"{q}: " in row["notes"] or "not a Jupyter" in row["notes"] or \
                    "wrong assignment" in row["notes"], (name, row["notes"])


def test_demo_cells_are_not_run(batch):
    assert "demo cell ran" not in _rows(batch["out"])["demo-cell"]["notes"]
    assert "ZeroDivisionError" in _rows(batch["out"])["top-level-exception"]["notes"]


def test_nothing_outside_the_sandbox_was_written(batch, hw1):
    out = batch["out"]
    assert json.loads((out / "writes-files" / "results.json").read_text())["score"] == 36
    assert "pwned" not in (out / "grades.csv").read_text()
    assert json.loads((hw1["bundle"] / "bundle.json").read_text())["assignment"]


def test_results_json_is_gradescope_style_and_feedback_hides_hidden_cases(batch, hw1):
    r = json.loads((batch["out"] / "partial" / "results.json").read_text())
    assert r["score"] == 29 and r["max_score"] == 36
    tests = {t["name"]: t for t in r["tests"]}
    assert all({"name", "score", "max_score", "output", "visibility"} <= set(t)
               for t in r["tests"])
    hidden = tests["q4: forward and backward, overlapping 3x3 windows, stride 2"]
    assert hidden["visibility"] == "after_published" and hidden["score"] == 0
    assert hidden["output"] == "failed: wrong result"
    public = tests["q4: backward 2x2, stride 2"]
    assert public["visibility"] == "visible" and "values differ" in public["output"]
    assert "hint: only the max" in public["output"]
    feedback = (batch["out"] / "partial" / "feedback.md").read_text()
    assert "overlapping 3x3 windows" in feedback and "FAILED" in feedback
    bundle = json.loads((hw1["bundle"] / "bundle.json").read_text())
    hidden_src = "\n".join(t["source"] for t in bundle["tests"] if t["hidden"])
    for line in hidden_src.split("\n"):
        if len(line.strip()) > 25 and "@case" not in line:
            assert line.strip() not in feedback


def test_rerun_is_idempotent_and_an_interrupted_batch_resumes(batch, hw1):
    out, subs = batch["out"], batch["subs"]
    before = (out / "grades.csv").read_bytes()
    again = grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False)
    assert again["graded"] == 0 and again["skipped"] == len(batch["expected"])
    assert (out / "grades.csv").read_bytes() == before
    # Interrupted: two results never written, and one half-written temp file left behind.
    for name in ("solution", "invalid-json"):
        (out / name / "results.json").unlink()
    (out / "solution" / ".results.json.tmp").write_text("{")
    resumed = grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False)
    assert resumed["graded"] == 2
    assert (out / "grades.csv").read_bytes() == before
    # A changed submission is regraded.
    nb = json.loads((subs / "partial.ipynb").read_text())
    nb["metadata"]["changed"] = True
    (subs / "partial.ipynb").write_text(json.dumps(nb))
    assert grade_batch(hw1["bundle"], [subs], out, progress=False)["graded"] == 1


@needs_bwrap
def test_process_isolation_gives_the_same_scores(hw1, tmp_path):
    """``isolation="process"`` (trusted code only) scores honest submissions like bwrap."""
    chosen = {"solution", "os-exit", "partial", "loop-answer"}
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    expected = {}
    for name, (content, exp, _) in _adversaries(hw1, out).items():
        if name in chosen:
            (subs / f"{name}.ipynb").write_text(content)
            expected[name] = exp
    grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False, isolation="process")
    rows = _rows(out)
    assert {n: {q: float(rows[n][q]) for q in FULL} for n in chosen} == expected


def test_payloads_are_plain_data_never_pickles():
    import io

    import numpy as np

    from d2lcnn.grading.payload import PayloadError, pack, unpack

    value = {"a": [1, 2.5, None, True, "s"], "x": np.arange(6.0).reshape(2, 3),
             "n": np.int64(3), "t": (np.zeros(2, bool),)}
    back = unpack(pack(value))
    assert back["a"] == [1, 2.5, None, True, "s"] and back["n"] == 3
    assert np.array_equal(back["x"], value["x"]) and back["t"][0].dtype == bool
    for bad in [object(), np.array([object()]), {1: 2}, lambda: 0]:
        with pytest.raises(PayloadError):
            pack(bad)
    buf = io.BytesIO()
    np.savez(buf, __json__=np.frombuffer(b'{"__ndarray__": "a0"}', np.uint8),
             a0=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(PayloadError):
        unpack(buf.getvalue())  # object arrays need pickle, which is refused


@pytest.mark.parametrize("ok, expected", [(True, 1.0), (False, 0.0), (0.25, 0.25), (1.5, 1.0),
                                          (-2, 0.0), (float("nan"), 0.0), (float("inf"), 0.0),
                                          ("x", 0.0)])
def test_a_checkers_fraction_is_clamped_to_0_1(ok, expected):
    """Fractional credit from a checker: clamped, NaN and nonsense give nothing."""
    from d2lcnn.grading.grade import score_case
    from d2lcnn.grading.sandbox import CaseRun

    frac, _, kind = score_case({}, CaseRun("q1/a", "ok", 1), 1, lambda g, e: (ok, "msg"))
    assert frac == expected
    assert kind == ("passed" if expected == 1.0 else "wrong result")
