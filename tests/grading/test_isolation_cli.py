"""``grade --isolation``: bwrap by default, a clear refusal where it cannot run, and a
warning for ``process``."""

import csv

import pytest
from grading_support import bwrap_notes

from d2lcnn.grading import bundle as bundle_module
from d2lcnn.grading import grade as grade_module
from d2lcnn.grading.__main__ import main


def _argv(hw1, tmp_path, *extra):
    return ["grade", str(hw1["bundle"]), str(hw1["bundle"] / "solution.ipynb"),
            "--out", str(tmp_path / "out"), "--no-progress", *extra]


@bwrap_notes
def test_grade_refuses_without_bwrap_and_says_how_to_install_it(hw1, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setattr(bundle_module, "bwrap_status",
                        lambda: (False, "bwrap (bubblewrap) is not installed; install ..."))
    assert main(_argv(hw1, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "cannot grade with OS isolation" in err and "bubblewrap" in err
    assert not (tmp_path / "out" / "grades.csv").exists()
    with pytest.raises(grade_module.IsolationUnavailable):
        grade_module.resolve_isolation("bwrap")


def test_isolation_process_grades_with_a_warning(hw1, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bundle_module, "bwrap_status", lambda: (False, "no bwrap here"))
    assert main(_argv(hw1, tmp_path, "--isolation", "process")) == 0
    assert "trusted submissions only" in capsys.readouterr().err
    with open(tmp_path / "out" / "grades.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["total"]) == 36


def test_the_isolation_names_are_checked():
    with pytest.raises(ValueError, match="isolation must be one of"):
        grade_module.resolve_isolation("docker")
    assert grade_module.resolve_isolation("process") == "process"
