"""The student's side: the handed-out notebook runs top to bottom, check() is friendly and
shows public cases only, submit() writes a gradable file."""

import shutil

import nbformat
from nbclient import NotebookClient

from d2lcnn.grading import Checker
from d2lcnn.grading.grade import Bundle, grade_file


def test_untouched_notebook_runs_and_submission_grades_to_zero(hw1, tmp_path):
    for f in hw1["student"].iterdir():
        shutil.copy(f, tmp_path)
    path = tmp_path / "hw1-convolution.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source = "submit()"  # the student's last step, uncommented
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on error
    outputs = {c.id: "".join(o.get("text", "") for o in c.outputs) for c in nb.cells
               if c.cell_type == "code"}
    for q in ("q1", "q2", "q3", "q4", "q5"):
        assert f"{q}: not attempted yet" in outputs[f"{q}-check"]
    assert "hw1-convolution.submission.ipynb" in "".join(outputs.values())
    submission = tmp_path / "hw1-convolution.submission.ipynb"
    meta = nbformat.read(submission, as_version=4).metadata["d2lcnn_grading"]
    assert meta["assignment"] == "hw1-convolution" and meta["submitted_at"]
    with Bundle.load(hw1["bundle"]) as bundle:
        result = grade_file(bundle, submission, name="student")
    assert result["score"] == 0 and result["max_score"] == 36
    notes = result["extra_data"]["notes"]
    assert [n for n in notes if n.endswith("not attempted")] == [
        f"{q}: not attempted" for q in ("q1", "q2", "q3", "q4", "q5")]


def test_check_reports_each_public_case_with_expected_and_got(hw1, capsys):
    import numpy as np

    ns = {}
    grader = Checker("hw1-convolution", ns, directory=hw1["student"])
    ns["conv_output_size"] = lambda n, k, *, stride=1, padding=0: (n + padding - k) // stride
    grader.check("q1")
    out = capsys.readouterr().out
    assert "q1: 0/2 public tests passed" in out
    assert "expected 32, got 29" in out and "hint: (N + 2P - K) // S + 1" in out

    def forward(input, weight, bias, *, stride=1, padding=0):
        return np.zeros((input.shape[0], weight.shape[0], 2, 2)), None

    ns["conv2d_forward_naive"] = forward
    grader.check("q2")
    out = capsys.readouterr().out
    assert "expected shape (1, 1, 2, 2)" not in out  # right shape for the first case...
    assert "values differ" in out and "expected shape (2, 4, 3, 3), got shape (2, 4, 2, 2)" in out
    assert "floors" not in out and "hidden" not in out.replace("(hidden tests run", "")

    def numerical_gradient(f, x, h=1e-6):
        raise TypeError("oops")

    ns["numerical_gradient"] = numerical_gradient
    grader.check("q5")
    assert "raised TypeError: oops" in capsys.readouterr().out

    ns["conv_output_size"] = lambda n, k, *, stride=1, padding=0: (
        (n + 2 * padding - k) // stride + 1
    )
    grader.check("q1")
    assert "q1: all public tests passed" in capsys.readouterr().out


def test_check_without_the_public_file_does_not_crash(tmp_path, capsys):
    Checker("hw9-missing", {}, directory=tmp_path).check("q1")
    assert "no public tests found" in capsys.readouterr().out
