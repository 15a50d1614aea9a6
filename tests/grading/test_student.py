"""The student's side: the handed-out notebook runs top to bottom, check() is friendly and
shows public cases only, submit() writes a gradable file."""

import hashlib
import os
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from d2lcnn.grading import Checker
from d2lcnn.grading.grade import Bundle, grade_file


def test_untouched_notebook_runs_and_submission_grades_to_zero(hw1, tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # found as the folder's one notebook
    for f in hw1["student"].iterdir():
        shutil.copy(f, tmp_path)
    path = tmp_path / "hw1-convolution.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[-1].source == "submit()"  # the student's last step
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


def test_the_student_folder_alone_is_enough_to_answer_check_and_submit(hw1, tmp_path,
                                                                     monkeypatch):
    """A student receives student/ only. Copied alone to an empty folder, answered in a
    renamed copy (answers taken from the solution) next to the untouched original, run top
    to bottom in a kernel that JupyterLab would start (JPY_SESSION_NAME names the copy): every
    check passes, the last cell submits the COPY, and the submission gets full marks."""
    work = tmp_path / "hw1"
    shutil.copytree(hw1["student"], work)
    assert sorted(p.name for p in work.iterdir()) == ["hw1-convolution.ipynb",
                                                      "hw1-convolution.public.npz"]
    solution = nbformat.read(hw1["bundle"] / "solution.ipynb", as_version=4)
    answers = {c.id: c.source for c in solution.cells if c.id.endswith("-answer")}
    nb = nbformat.read(work / "hw1-convolution.ipynb", as_version=4)
    for cell in nb.cells:
        cell.source = answers.get(cell.id, cell.source)
    copy = work / "alice's copy.ipynb"
    nbformat.write(nb, copy)  # the student saves before submitting
    monkeypatch.setenv("JPY_SESSION_NAME", str(copy))
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute()
    outputs = {c.id: "".join(o.get("text", "") for o in c.outputs) for c in nb.cells
               if c.cell_type == "code"}
    for q in ("q1", "q2", "q3", "q4", "q5"):
        assert f"{q}: all public tests passed" in outputs[f"{q}-check"]
    submission = work / "hw1-convolution.submission.ipynb"
    assert f"Submitted the saved {copy.name}: wrote {submission} (" in outputs[nb.cells[-1].id]
    with Bundle.load(hw1["bundle"]) as bundle:
        result = grade_file(bundle, submission, name="alice")
    assert result["score"] == result["max_score"] == 36


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


# submit(): the notebook the student works in, whatever its name; never a guess.

def _notebook(path, assignment="hw1-convolution", text="x = 1", mtime=None):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])
    nb.metadata["d2lcnn_grading"] = {"assignment": assignment, "source_sha256": "abc"}
    nbformat.write(nb, path)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _submitted(path):
    nb = nbformat.read(path, as_version=4)
    return nb.cells[0].source, nb.metadata["d2lcnn_grading"]


@pytest.fixture
def no_session(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def test_submit_a_renamed_notebook_found_by_its_metadata(tmp_path, capsys, no_session):
    _notebook(tmp_path / "my work.ipynb", text="mine")
    _notebook(tmp_path / "other.ipynb", assignment="hw2-batchnorm-dropout")
    (tmp_path / "notes.ipynb").write_text("not json")
    out = tmp_path / "hw1-convolution.submission.ipynb"
    assert Checker("hw1-convolution", {}, directory=tmp_path).submit() is None
    source, meta = _submitted(out)
    assert source == "mine" and meta["assignment"] == "hw1-convolution"
    assert meta["notebook_sha256"] == hashlib.sha256(
        (tmp_path / "my work.ipynb").read_bytes()).hexdigest()
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1  # one plain line: what was written, its size and hash
    assert (f"Submitted the saved my work.ipynb: wrote {out} ({out.stat().st_size:,} bytes, "
            f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()[:12]})") in printed
    # A second submit ignores the submission file it wrote.
    Checker("hw1-convolution", {}, directory=tmp_path).submit()
    assert "Submitted the saved my work.ipynb" in capsys.readouterr().out


def _submit(checker, capsys, *args):
    """``(first cell of what submit() wrote, or None if nothing, what it printed)``."""
    out = checker.directory / "hw1-convolution.submission.ipynb"
    out.unlink(missing_ok=True)
    checker.submit(*args)
    return (_submitted(out)[0] if out.exists() else None), capsys.readouterr().out


def test_submit_the_copy_the_kernel_runs(tmp_path, monkeypatch, capsys):
    """JupyterLab names the kernel's notebook in JPY_SESSION_NAME, VS Code in
    ``__vsc_ipynb_file__``: the copy is submitted, not the untouched original."""
    _notebook(tmp_path / "hw1-convolution.ipynb", text="original", mtime=1_000)
    copy = _notebook(tmp_path / "copy.ipynb", text="copy", mtime=2_000)
    checker = Checker("hw1-convolution", {}, directory=tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(copy))
    assert _submit(checker, capsys)[0] == "copy"
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "renamed-since.ipynb"))  # stale
    written, printed = _submit(checker, capsys)
    assert written is None and "cannot tell which notebook is yours" in printed
    monkeypatch.delenv("JPY_SESSION_NAME")
    vscode = Checker("hw1-convolution", {"__vsc_ipynb_file__": str(copy)}, directory=tmp_path)
    assert _submit(vscode, capsys)[0] == "copy"


def test_submit_refuses_when_a_newer_copy_exists(tmp_path, monkeypatch, capsys):
    """"Save As" keeps the kernel (and its JPY_SESSION_NAME) of the original."""
    original = _notebook(tmp_path / "hw1-convolution.ipynb", text="original", mtime=1_000)
    _notebook(tmp_path / "saved-as.ipynb", text="copy", mtime=2_000)
    monkeypatch.setenv("JPY_SESSION_NAME", str(original))
    written, printed = _submit(Checker("hw1-convolution", {}, directory=tmp_path), capsys)
    assert written is None
    assert ('Nothing submitted: cannot tell which notebook is yours (hw1-convolution.ipynb, '
            'saved-as.ipynb); pass its name, e.g. submit("hw1-convolution.ipynb")\n'
            == printed)


def test_submit_ambiguous_missing_and_explicit(tmp_path, capsys, no_session):
    checker = Checker("hw1-convolution", {}, directory=tmp_path)
    written, printed = _submit(checker, capsys)
    assert written is None and "Nothing submitted: no notebook of hw1-convolution in" in printed
    _notebook(tmp_path / "a.ipynb", text="a")
    _notebook(tmp_path / "b.ipynb", text="b")
    assert _submit(checker, capsys) == (None, (
        "Nothing submitted: cannot tell which notebook is yours (a.ipynb, b.ipynb); "
        'pass its name, e.g. submit("a.ipynb")\n'))
    assert _submit(checker, capsys, "b.ipynb")[0] == "b"
    assert _submit(checker, capsys, tmp_path / "a.ipynb")[0] == "a"
    assert _submit(checker, capsys, "c.ipynb") == (
        None, f"Nothing submitted: there is no notebook {tmp_path / 'c.ipynb'}\n")


def test_start_copies_an_assignment_out_of_the_clone_and_never_overwrites(tmp_path, capsys):
    from pathlib import Path

    from d2lcnn.grading import student
    from d2lcnn.grading.__main__ import main

    book = Path(student.__file__).resolve().parents[2] / "notebooks" / "homework"
    dest = tmp_path / "mine"
    assert main(["start", "hw2", "--to", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == [
        "hw2-batchnorm-dropout.ipynb", "hw2-batchnorm-dropout.public.npz"]
    for f in dest.iterdir():  # the exact student files, byte for byte
        assert f.read_bytes() == (book / "hw2-batchnorm-dropout" / f.name).read_bytes()
    assert f"jupyter lab {dest / 'hw2-batchnorm-dropout.ipynb'}" in capsys.readouterr().out
    (dest / "hw2-batchnorm-dropout.ipynb").write_text("my answers")
    assert main(["start", "hw2-batchnorm-dropout", "--to", str(dest)]) == 1
    assert "already exists: nothing copied" in capsys.readouterr().err
    assert (dest / "hw2-batchnorm-dropout.ipynb").read_text() == "my answers"
    for bad in ("hw", "hw9", "q1"):  # ambiguous or unknown: the message lists the choices
        with pytest.raises(LookupError, match="hw1-convolution, hw2-batchnorm-dropout"):
            student.start(bad, tmp_path / bad)
    assert not (tmp_path / "hw").exists()


def test_checker_notes_once_when_run_in_the_committed_copy(tmp_path, capsys):
    from d2lcnn.grading.student import committed_copy

    folder = tmp_path / "clone" / "notebooks" / "homework" / "hw1-convolution"
    folder.mkdir(parents=True)
    assert committed_copy(folder) is None  # not in a git checkout
    (tmp_path / "clone" / ".git").mkdir()
    assert committed_copy(folder) == (tmp_path / "clone").resolve()
    Checker("hw1-convolution", {}, folder)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "python -m d2lcnn.grading start hw1-convolution" in out
    for elsewhere in (tmp_path, tmp_path / "clone" / "notebooks", tmp_path / "clone"):
        assert committed_copy(elsewhere) is None
        Checker("hw1-convolution", {}, elsewhere)
    assert capsys.readouterr().out == ""
