"""assign: the student version leaks nothing, the solution scores full marks, and every
malformed source fails loudly, naming the cell and line."""

import json
import re
import textwrap

import jupytext
import numpy as np
import pytest

from d2lcnn.grading.authoring import AssignError, assign, parse
from d2lcnn.grading.payload import unpack


def _secret_lines(source):
    """Solution-block lines and hidden-test/autograder lines, computed independently."""
    nb = jupytext.read(source)
    secret = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "hidden" in tags or "autograder" in tags:
            secret += cell.source.split("\n")
        inside = False
        for line in cell.source.split("\n"):
            if line.strip() == "### END SOLUTION":
                inside = False
            if inside:
                secret.append(line)
            if line.strip() == "### BEGIN SOLUTION":
                inside = True
    public = "\n".join(c.source for c in nb.cells
                       if not {"hidden", "autograder"} & set(c.metadata.get("tags", [])))
    public = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", public, flags=re.S)
    return {s.strip() for s in secret if len(s.strip()) > 12} - {
        s.strip() for s in public.split("\n")}


def test_student_files_contain_no_solution_or_hidden_test(hw1, hw1_source):
    texts = []
    for path in hw1["student"].iterdir():
        if path.suffix == ".npz":
            texts.append(json.dumps(unpack(path.read_bytes()), default=str))
        else:
            texts.append(path.read_text())
    blob = "\n".join(texts).replace("\\n", "\n").replace('\\"', '"')
    secret = _secret_lines(hw1_source)
    assert len(secret) > 40  # the check is not vacuous
    leaked = [s for s in secret if s in blob]
    assert not leaked
    assert "### BEGIN SOLUTION" not in blob and "gradient_matches_analytic" not in blob
    assert blob.count("raise NotImplementedError") == 6  # 5 questions, q4 has two functions


def test_solution_scores_full_marks_and_bundle_is_complete(hw1):
    s = hw1["summary"]
    assert s["solution_score"] == s["points"] == 36
    assert s["hidden"] >= 10 and s["cases"] - s["hidden"] >= 5
    meta = json.loads((hw1["bundle"] / "bundle.json").read_text())
    assert {"torch", "d2lcnn.numpy"} <= set(meta["settings"]["forbid"])
    assert meta["source_sha256"] and len(meta["questions"]) == 5
    assert all(c["points"] > 0 for c in meta["cases"])


def _source(body: str) -> str:
    head = textwrap.dedent('''\
        # %%
        import numpy as np

        # %% tags=["setup"]
        from d2lcnn.grading import Checker
        grader = Checker("hwx", globals())
        check, submit = grader.check, grader.submit
        ''')
    tests = textwrap.dedent('''
        # %% tags=["tests", "public"]
        @case("q1", "twice 3")
        def _(ns, rng):
            return ns.f(3)
        ''')
    return head + textwrap.dedent(body) + tests


GOOD = '''
# %% tags=["answer", "q1"]
def f(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION
'''


@pytest.mark.parametrize("body, message", [
    (GOOD.replace("### END SOLUTION", ""), r"cell \d+, line 2: '### BEGIN SOLUTION' is never"),
    (GOOD.replace("### BEGIN SOLUTION", "### BEGIN SOLUTON"), r"line 2: malformed marker"),
    (GOOD.replace("    ### BEGIN SOLUTION", "    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION"),
     r"line 3: nested"),
    (GOOD.replace("    ### END SOLUTION", "    ### END SOLUTION\n    ### END SOLUTION"),
     r"line 5: '### END SOLUTION' without"),
    (GOOD + "\n# %%\n# ### BEGIN SOLUTION\n", r"outside an answer cell"),
    (GOOD + "\n# %% [markdown]\n# ### END SOLUTION\n", r"outside an answer cell"),
    ('\n# %% tags=["answer", "q1"]\n### BEGIN SOLUTION\nf = len\n### END SOLUTION\n',
     r"inside a function body"),
    (GOOD + GOOD, r"a second answer cell for q1"),
    (GOOD + '\n# %% tags=["tests", "hidden"]\n@case("q3", "x")\ndef _(ns, rng):\n    return 1\n',
     r"cases for q3 but no answer cell"),
    (GOOD.replace('"q1"]', '"q2"]'), r"q2 has an answer cell but no cases"),
    (GOOD + '\n# %% tags=["check", "q1"]\nprint(1)\n', r'must call check\("q1"\)'),
])
def test_malformed_sources_fail_loudly(tmp_path, body, message):
    src = tmp_path / "hwx.py"
    src.write_text(_source(body))
    with pytest.raises(AssignError, match=message):
        parse(src)


def test_well_formed_source_assigns(tmp_path):
    src = tmp_path / "hwx.py"
    src.write_text(_source(GOOD))
    summary = assign(src, tmp_path / "out")
    assert summary["solution_score"] == 1


def test_assign_checks_the_written_files_for_leaks(tmp_path, monkeypatch):
    """If the student notebook were built with its solutions, assign must refuse it."""
    from d2lcnn.grading import authoring

    real = authoring.build_notebook
    monkeypatch.setattr(authoring, "build_notebook", lambda a, solution: real(a, solution=True))
    src = tmp_path / "hwx.py"
    src.write_text(_source(GOOD.replace("return 2 * x", "return x + x  # the secret")))
    with pytest.raises(AssignError, match="secret lines survived.*return x \\+ x"):
        assign(src, tmp_path / "out")
    assert not list((tmp_path / "out" / "student").iterdir())  # the leaky files are removed


SECRET = "tests"  # the hw1 fixture's (conftest.py)


def test_assign_is_deterministic(hw1, hw1_source, fast_settings, tmp_path):
    """Same source and secret, same bytes: rebuilding changes no handed-out file and no
    bundle hash. Without a secret each build draws its own (only bundle.json differs)."""
    assign(hw1_source, tmp_path, overrides=fast_settings, secret=SECRET)
    for part in ("student", "autograder"):
        for path in (hw1["out"] / part).iterdir():
            assert (tmp_path / part / path.name).read_bytes() == path.read_bytes(), path.name


def test_assign_refuses_a_solution_without_full_marks(tmp_path):
    body = GOOD.replace("return 2 * x", "return 2 * x if x != 3 else float('nan') + [1][5]")
    src = tmp_path / "hwx.py"
    src.write_text(_source(body))
    with pytest.raises(AssignError, match="solution fails these cases.*IndexError"):
        assign(src, tmp_path / "out")


def test_cli_assign_reports_errors(tmp_path, capsys):
    from d2lcnn.grading.__main__ import main

    src = tmp_path / "hwx.py"
    src.write_text(_source(GOOD.replace("### END SOLUTION", "")))
    assert main(["assign", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "never closed" in capsys.readouterr().err


def test_raised_turns_an_outcome_into_data_and_lets_not_attempted_through():
    import pytest

    from d2lcnn.grading import checks

    def refuse():
        raise ValueError("bad geometry")

    def unanswered():
        raise NotImplementedError("q1: write your code")

    assert checks.raised(refuse) == "ValueError"
    assert checks.raised(lambda: 1 / 0) == "ZeroDivisionError"
    assert checks.raised(lambda: None) == "no error"
    with pytest.raises(NotImplementedError):
        checks.raised(unanswered)


def test_course_secret_draws_the_hidden_inputs(tmp_path, capsys):
    """``assign --secret-file``: the same secret gives the same hidden inputs (and bundle),
    another secret other ones; the public cases, and so the student files, never change."""
    from d2lcnn.grading.__main__ import main

    src = tmp_path / "hwx.py"
    src.write_text(_source(GOOD + textwrap.dedent('''
        # %% tags=["tests", "hidden"]
        @case("q1", "random")
        def _(ns, rng):
            return ns.f(rng.standard_normal(3))
        ''')))
    for name, text in [("a", "course A"), ("a-again", "course A\n"), ("b", "course B")]:
        (tmp_path / f"{name}.txt").write_text(text)
        assert main(["assign", str(src), "--out", str(tmp_path / name),
                     "--secret-file", str(tmp_path / f"{name}.txt")]) == 0

    def built(name):
        meta = json.loads((tmp_path / name / "autograder" / "bundle.json").read_text())
        expected = unpack((tmp_path / name / "autograder" / "expected.npz").read_bytes())
        seeds = {c["key"]: c["seed"] for c in meta["cases"]}
        student = {p.name: p.read_bytes() for p in (tmp_path / name / "student").iterdir()}
        return meta["secret"], seeds, expected, student

    (sa, seeds_a, exp_a, stud_a), (sa2, seeds_a2, exp_a2, _), (sb, seeds_b, exp_b, stud_b) = (
        built("a"), built("a-again"), built("b"))
    assert sa == sa2 == "course A" and sb == "course B"
    assert seeds_a == seeds_a2 and (exp_a["q1/random"] == exp_a2["q1/random"]).all()
    assert seeds_a["q1/random"] != seeds_b["q1/random"]
    assert not np.allclose(exp_a["q1/random"], exp_b["q1/random"])
    assert seeds_a["q1/twice 3"] == seeds_b["q1/twice 3"] and stud_a == stud_b

    (tmp_path / "empty.txt").write_text("\n")
    assert main(["assign", str(src), "--out", str(tmp_path / "c"),
                 "--secret-file", str(tmp_path / "empty.txt")]) == 1
    assert "--secret-file: " in capsys.readouterr().err  # and nothing was built
    assert not (tmp_path / "c").exists()
