"""Course-scale grading: the Gradescope autograder and the PrairieLearn question that
``assign --gradescope --prairielearn`` writes, built and then run FOR REAL.

The expensive tests (marked ``slow``; they run in CI) lay out a temporary folder like the
platform's (``source/``, ``submission/``, ``results/``), run the zip's ``setup.sh`` into a
fresh virtual environment offline (``tests/platform_support.py`` says how: pip and the
pinned dependencies hard-linked from this environment, ``PIP_NO_INDEX``, the wheel from the
zip) and its ``run_autograder`` on a solution, an untouched notebook, one wrong answer and a
broken file: each ``results.json`` validates against the platform's schema (written from its
documentation: ``tests/grading/schemas/``) and has the score the local ``grade`` gives the
same file. The same for PrairieLearn's entry point, and the sandbox of that layout is probed
with the audit hook off for anything secret it could read.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest
from grading_support import ISOLATION, needs_bwrap
from platform_support import BASE_PYTHON, build_image, gradescope_layout, run_script, submit

from d2lcnn.grading.grade import grade_batch
from d2lcnn.grading.platform_run import (
    find_notebooks,
    gradescope_results,
    prairielearn_results,
    run,
)
from d2lcnn.grading.platforms import build_wheel, write_gradescope, write_prairielearn

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "instructor" / "homework").glob("hw[0-9]*-*.py"))
SCHEMAS = Path(__file__).parent / "schemas"
GRADESCOPE = json.loads((SCHEMAS / "gradescope_results.schema.json").read_text())
PRAIRIELEARN = json.loads((SCHEMAS / "prairielearn_results.schema.json").read_text())
ZIP_FILES = {"setup.sh", "run_autograder", "requirements.txt", "platform.json",
             "bundle/bundle.json", "bundle/expected.npz"}
KINDS = ["solution", "untouched", "one_wrong", "broken"]
# What a hidden case's output may say: never a value, a message or code.
HIDDEN_OUTPUTS = {"passed", "failed: wrong result", "failed: not attempted", "failed: timed out",
                  "failed: the process crashed", "not graded"}


def _validate(results: dict, schema: dict) -> None:
    jsonschema.Draft202012Validator(schema).validate(results)


# --- conversions and schemas (fast) --------------------------------------------------------


def _result():
    """A grader result (the dict grade_notebook returns) with every kind of case."""
    tests = [{"name": "q1: public", "score": 1.0, "max_score": 1.0, "output": "passed",
              "visibility": "visible"},
             {"name": "q1: partial", "score": 0.5, "max_score": 2.0,
              "output": "failed: 1 of 2 values differ", "visibility": "visible"},
             {"name": "q2: hidden", "score": 0.0, "max_score": 3.0,
              "output": "failed: wrong result", "visibility": "after_published"}]
    return {"score": 1.5, "max_score": 6.0, "output": "1.5 / 6 points; q2: 0 points",
            "tests": tests,
            "extra_data": {"student": "s", "assignment": "hw0", "bundle_sha256": "b",
                           "notes": ["q2: 0 points"], "questions": {"q1": [1.5, 3.0]},
                           "timing": {"wall": 1.0}}}


@pytest.mark.parametrize("visibility", ["after_published", "hidden", "after_due_date"])
def test_gradescope_results_follow_the_schema_and_the_visibility_setting(visibility):
    out = gradescope_results(_result(), hidden_visibility=visibility, seconds=2.4)
    _validate(out, GRADESCOPE)
    assert out["score"] == 1.5 and out["execution_time"] == 2
    assert out["stdout_visibility"] == "hidden"
    assert [t["visibility"] for t in out["tests"]] == ["visible", "visible", visibility]
    assert [t["status"] for t in out["tests"]] == ["passed", "failed", "failed"]
    assert out["extra_data"]["max_score"] == 6.0


def test_prairielearn_results_follow_the_schema():
    out = prairielearn_results(_result(), hidden_visibility="after_published", seconds=1)
    _validate(out, PRAIRIELEARN)
    assert out["score"] == 0.25 and out["gradable"] is True
    assert [t["points"] for t in out["tests"]] == [1.0, 0.5, 0.0]
    assert out["tests"][2]["name"] == "q2: hidden (hidden)"
    hidden = prairielearn_results(_result(), hidden_visibility="hidden", seconds=1)
    assert [t["name"] for t in hidden["tests"]] == ["q1: public", "q1: partial"]
    assert hidden["score"] == 0.25  # left out of the list, still counted


@pytest.mark.parametrize("bad", [
    {"score": 1, "visibility": "sometimes"},
    {"score": 1, "tests": [{"score": 1, "status": "ok"}]},
    {"score": 1, "tests": [{"score": 1, "visiblity": "visible"}]},  # misspelt key
    {"tests": [{"name": "no score anywhere"}]},
    {"score": "1"},
])
def test_the_gradescope_schema_rejects_what_the_documentation_does_not_allow(bad):
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad, GRADESCOPE)


@pytest.mark.parametrize("bad", [{"score": 1.5}, {"message": "no score"}, {"score": -0.1},
                                 {"score": 1, "tests": [{"points": 1}]}])
def test_the_prairielearn_schema_rejects_what_the_documentation_does_not_allow(bad):
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad, PRAIRIELEARN)


def test_find_notebooks_takes_any_name_in_any_folder_but_no_checkpoints(tmp_path):
    for name in ["mine.ipynb", "sub/Other.IPYNB", ".ipynb_checkpoints/mine-checkpoint.ipynb",
                 ".hidden.ipynb", "notes.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert sorted(str(s.rel) for s in find_notebooks(tmp_path)) == ["mine.ipynb",
                                                                    "sub/Other.IPYNB"]
    assert find_notebooks(tmp_path / "missing") == []


@pytest.mark.parametrize("platform, schema", [("gradescope", GRADESCOPE),
                                              ("prairielearn", PRAIRIELEARN)])
def test_a_grader_that_cannot_run_still_writes_a_zero_result(platform, schema, tmp_path,
                                                             capsys):
    out = run(platform, tmp_path)  # an empty layout: no bundle, no settings
    _validate(out, schema)
    assert out["score"] == 0
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == out
    assert "internal grader error: FileNotFoundError" in capsys.readouterr().out  # instructor


# --- the packages of homework 1 ------------------------------------------------------------


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def hw1_packages(hw1, wheel, tmp_path_factory):
    """hw1 (FAST settings) packaged for both platforms: ``{"zip", "question", "image"}``."""
    out = tmp_path_factory.mktemp("hw1-platforms")
    opts = {"isolation": ISOLATION, "hidden_visibility": "after_published"}
    zip_path = write_gradescope(hw1["bundle"], out / "gradescope", wheel, **opts)
    question = write_prairielearn(hw1["bundle"], hw1["student"], out / "prairielearn", wheel,
                                  **opts)
    return {"zip": zip_path, "question": question, "image": out / "prairielearn" /
            "grader-image", "wheel": wheel}


def _solution_lines(bundle: Path, student: Path) -> list[str]:
    """Distinctive lines of the solution's answers that the student notebook lacks."""
    sol = nbformat.read(bundle / "solution.ipynb", as_version=4)
    stu = nbformat.read(student / f"{sol.metadata['d2lcnn_grading']['assignment']}.ipynb",
                        as_version=4)
    handed_out = {line.strip() for c in stu.cells for line in c.source.split("\n")}
    return sorted({line.strip() for c in sol.cells if "answer" in c.metadata.get("tags", [])
                   for line in c.source.split("\n")
                   if len(line.strip()) >= 20 and line.strip() not in handed_out})


def _texts(zip_path: Path):
    """(member name, its text) of a zip and of every zip inside it (the wheel)."""
    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            data = z.read(name)
            if name.endswith(".whl"):
                (inner := zip_path.parent / "_inner.whl").write_bytes(data)
                yield from ((f"{name}/{n}", t) for n, t in _texts(inner))
            else:
                yield name, data.decode("latin-1")


def test_the_gradescope_zip_has_the_documented_layout_and_no_solution(hw1_packages, hw1):
    with zipfile.ZipFile(hw1_packages["zip"]) as z:
        names = set(z.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
        config = json.loads(z.read("platform.json"))
        setup = z.read("setup.sh").decode()
        pins = z.read("requirements.txt").decode()
    assert names == ZIP_FILES | {hw1_packages["wheel"].name}  # at the root, no folder
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert config == {"assignment": "hw1-convolution", "isolation": ISOLATION,
                      "hidden_visibility": "after_published", "torch": False}
    assert 'TORCH=""' in setup and "bubblewrap" in setup and "--force-reinstall" in setup
    lines = [p for p in pins.splitlines() if p and not p.startswith("#")]
    assert all("==" in p for p in lines) and "numpy==" in pins and "nbformat==" in pins
    for absent in ("torch", "jupyterlab", "jupyter-book", "pytest", "nvidia"):
        assert absent not in pins.lower()
    texts = dict(_texts(hw1_packages["zip"]))
    wheel = {n: t for n, t in texts.items() if n.startswith(hw1_packages["wheel"].name)}
    # The wheel is the package (public anyway; a generic line of a solution may be in it):
    # nothing else is in it, and nothing of the solution is anywhere else.
    assert {n.split("/")[1] for n in wheel} == {"d2lcnn", "d2lcnn-0.1.0.dist-info"}
    secret = _solution_lines(hw1["bundle"], hw1["student"])
    assert len(secret) >= 10
    leaks = [(name, line) for name, text in texts.items() if name not in wheel
             for line in secret if line in text]
    assert not leaks


def test_the_prairielearn_question_uses_external_grading_on_the_student_notebook(
        hw1_packages, hw1):
    q = hw1_packages["question"]
    info = json.loads((q / "info.json").read_text())
    assert info["gradingMethod"] == "External" and info["type"] == "v3"
    assert info["externalGradingOptions"]["enabled"] is True
    assert info["externalGradingOptions"]["entrypoint"] == "/grade/tests/run.sh"
    assert 0 < info["externalGradingOptions"]["timeout"] <= 600
    assert info["workspaceOptions"]["gradedFiles"] == ["hw1-convolution.ipynb"]
    for f in hw1["student"].iterdir():
        assert (q / "workspace" / f.name).read_bytes() == f.read_bytes()
    assert sorted(p.name for p in (q / "tests").iterdir()) == ["bundle", "platform.json",
                                                              "run.sh"]
    assert sorted(p.name for p in (q / "tests" / "bundle").iterdir()) == ["bundle.json",
                                                                         "expected.npz"]
    assert (q / "tests" / "run.sh").stat().st_mode & 0o111
    assert "<pl-workspace>" in (q / "question.html").read_text()
    assert "setup.sh" in (hw1_packages["image"] / "Dockerfile").read_text()
    assert not any(p.name == "solution.ipynb" for p in q.parent.parent.parent.rglob("*"))


def test_assign_writes_both_packages_from_the_command_line(tmp_path, wheel, hw1_source):
    proc = subprocess.run(
        [sys.executable, "-m", "d2lcnn.grading", "assign",
         str(hw1_source), "--out", str(tmp_path), "--secret-file", str(_secret(tmp_path)),
         "--gradescope", "--prairielearn", "--wheel", str(wheel),
         "--hidden-visibility", "hidden", "--isolation", ISOLATION],
        capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    with zipfile.ZipFile(summary["gradescope"]) as z:
        assert json.loads(z.read("platform.json"))["hidden_visibility"] == "hidden"
    assert (Path(summary["prairielearn"]) / "info.json").is_file()


def _secret(folder: Path) -> Path:
    (path := folder / "secret.txt").write_text("tests\n")
    return path


# --- every assignment packs (slow: hw3 and hw4 train while assign builds them) -------------


@pytest.fixture(scope="module")
def built(assignment_builds):
    """stem -> the out folder of ``assign``: the session's one build of each assignment,
    shared with test_assignments.py (conftest)."""
    return lambda stem: assignment_builds(next(p for p in SOURCES if p.stem == stem))[1]


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_assignment_packs_and_only_the_torch_one_installs_torch(source, built, wheel,
                                                                       tmp_path):
    out = built(source.stem)
    zip_path = write_gradescope(out / "autograder", tmp_path, wheel, isolation=ISOLATION)
    with zipfile.ZipFile(zip_path) as z:
        assert set(z.namelist()) == ZIP_FILES | {wheel.name}
        pins = z.read("requirements.txt").decode()
        setup = z.read("setup.sh").decode()
        torch = json.loads(z.read("platform.json"))["torch"]
    # torch only where the assignment's own code imports it (hw4 does), never for the NumPy
    # ones (hw1-hw3 forbid it)
    imports = re.search(r"^import torch$", source.read_text(), re.MULTILINE) is not None
    assert torch == imports
    assert torch == (source.stem == "hw4-resnet-unet") or source.stem[:3] not in (
        "hw1", "hw2", "hw3", "hw4")
    assert ("torch==" in pins) == torch
    assert ("download.pytorch.org/whl/cpu" in setup) and (('TORCH=""' in setup) != torch)


# --- the full cycle, for real --------------------------------------------------------------


def _submission(kind: str, bundle: Path, student: Path) -> bytes:
    if kind == "broken":
        return b'{"cells": [ this is not JSON'
    if kind == "untouched":
        name = json.loads((bundle / "bundle.json").read_text())["assignment"]
        return (student / f"{name}.ipynb").read_bytes()
    nb = nbformat.read(bundle / "solution.ipynb", as_version=4)
    if kind == "one_wrong":  # q2's answer returns zeros: q2 fails, everything else passes
        nb = copy.deepcopy(nb)
        cell = next(c for c in nb.cells if c.id == "q2-answer")
        cell.source = cell.source.replace("return out, cache", "return 0 * out, cache", 1)
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def image(hw1_packages):
    """hw1's zip laid out like /autograder and set up offline: ``{"root", "times"}``. In a
    folder open to other users (not pytest's 0700 one), as the platform's is, so that the
    sandbox's unprivileged user can run the environment in process isolation too."""
    top = Path(tempfile.mkdtemp(prefix="d2lcnn-gradescope-"))
    top.chmod(0o755)
    root = top / "autograder"
    source = gradescope_layout(hw1_packages["zip"], root)
    times = build_image(source, root, root / "venv")
    yield {"root": root, "times": times}
    shutil.rmtree(top, ignore_errors=True)


def _local_score(bundle: Path, data: bytes, folder: Path) -> float:
    """What ``python -m d2lcnn.grading grade`` gives the same file."""
    (folder / "subs").mkdir(parents=True)
    (folder / "subs" / "student.ipynb").write_bytes(data)
    res = grade_batch(bundle, [folder / "subs"], folder / "grades", jobs=1, progress=False)
    return float(res["rows"][0]["total"])


def _gradescope(image, files: dict[str, bytes]) -> dict:
    root = image["root"]
    submit(root / "submission", files)
    (root / "results" / "results.json").unlink(missing_ok=True)
    proc = run_script(root / "run_autograder", {"AUTOGRADER_ROOT": str(root)}, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((root / "results" / "results.json").read_text())


def _prairielearn(image, question: Path, files: dict[str, bytes], tmp_path: Path) -> dict:
    grade = tmp_path / "grade"  # /grade as PrairieLearn mounts it for one job
    shutil.copytree(question / "tests", grade / "tests")
    submit(grade / "student", files)
    env = {"GRADE_ROOT": str(grade), "D2LCNN_VENV": str(image["root"] / "venv")}
    proc = run_script(grade / "tests" / "run.sh", env, grade)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (grade / "results" / "results.json").read_text()
    assert len(text.encode()) < 2**20  # PrairieLearn's limit
    return json.loads(text)


def _check_hidden_outputs(results: dict) -> None:
    for t in results["tests"]:
        if t["visibility"] != "visible":
            assert t["visibility"] == "after_published"
            assert t["output"] in HIDDEN_OUTPUTS or t["output"].startswith("failed: raised ")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_both_platforms_give_the_local_score_in_their_documented_format(
        kind, image, hw1, hw1_packages, tmp_path):
    data = _submission(kind, hw1["bundle"], hw1["student"])
    local = _local_score(hw1["bundle"], data, tmp_path / "local")
    gs = _gradescope(image, {"hw1-convolution.submission.ipynb": data})
    _validate(gs, GRADESCOPE)
    assert gs["score"] == local
    assert gs["stdout_visibility"] == "hidden" and gs["execution_time"] >= 0
    _check_hidden_outputs(gs)
    maximum = hw1["summary"]["points"]
    expected = {"solution": maximum, "untouched": 0.0, "broken": 0.0}.get(kind)
    if expected is not None:
        assert local == expected
    else:
        assert 0 < local < maximum
    if kind == "broken":
        assert "not a Jupyter notebook" in gs["output"]
    pl = _prairielearn(image, hw1_packages["question"], {"hw1-convolution.ipynb": data},
                       tmp_path)
    _validate(pl, PRAIRIELEARN)
    assert pl["score"] == pytest.approx(local / maximum, abs=1e-6)
    assert len(pl["tests"]) == len(gs["tests"])


@pytest.mark.slow
@pytest.mark.parametrize("files, message", [
    ({}, "no notebook (.ipynb) in the submission"),
    ({"a.ipynb": b"{}", "folder/b.ipynb": b"{}"}, "2 notebooks in the submission (a.ipynb, "
                                                  "folder/b.ipynb); nothing was graded"),
])
def test_no_notebook_or_several_give_a_clear_zero(image, files, message):
    gs = _gradescope(image, files)
    _validate(gs, GRADESCOPE)
    assert gs["score"] == 0 and message in gs["output"]
    assert "hw1-convolution.submission.ipynb" in gs["output"]
    assert all(t["output"] == "not graded" for t in gs["tests"])


def test_the_image_was_set_up_offline_with_the_zips_wheel(image):
    """(Cheap once the image exists; run_autograder depends on it.)"""
    venv = image["root"] / "venv"
    proc = subprocess.run([str(venv / "bin" / "python"), "-I", "-c",
                           "import d2lcnn, numpy; print(d2lcnn.__file__)"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.startswith(str(venv))  # the wheel's copy, not this checkout
    bundle = image["root"] / "source" / "bundle"
    assert bundle.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in bundle.iterdir())
    assert "setup.sh: ready" in image["times"]["output"]


# The sandbox of that layout, with the audit hook OFF (as if the student had got past it),
# started by the image's own interpreter and package as run_autograder starts it: what can a
# question read or write? (process: after the grader has dropped to nobody, as it does.)
PROBE_CELL = """
import os
root = %r
seen = {}
for p in ['source/bundle/bundle.json', 'source/bundle/expected.npz', 'source/platform.json',
          'source/setup.sh', 'source/requirements.txt', 'run_autograder',
          'submission/hw1-convolution.submission.ipynb', 'results/results.json',
          'venv/bin/python']:
    try:
        with open(os.path.join(root, p), 'rb') as f:
            f.read(1)
        seen[p] = 'read'
    except OSError as e:
        seen[p] = type(e).__name__
for p in ['results/results.json', 'results/fake.json', 'source/bundle/bundle.json']:
    try:
        with open(os.path.join(root, p), 'a') as f:
            f.write(' ')
        seen['write ' + p] = 'written'
    except OSError as e:
        seen['write ' + p] = type(e).__name__
for d in ['', 'source', 'source/bundle', 'results', 'submission']:
    try:
        seen[d + '/'] = sorted(os.listdir(os.path.join(root, d)))
    except OSError as e:
        seen[d + '/'] = type(e).__name__
"""
PROBE = """
import json, sys
from d2lcnn.grading.isolation import BwrapView
from d2lcnn.grading.platform_run import drop_privileges
from d2lcnn.grading.sandbox import ForkServer, Limits, run_question
root, forbid, mode, cell = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
view = None
if mode == "process":
    assert drop_privileges(), "the grader did not drop to nobody"
    server = ForkServer((), isolation="process")
else:
    view = BwrapView(forbid)
    server = ForkServer((), isolation="bwrap", view=view, scratch=(8, 200))
limits = Limits(memory_mb=1024, cell_timeout=20, audit_hook=False, scratch_mb=8,
                scratch_files=200)
try:
    run = run_question([{"key": 0, "label": "cell 1", "source": cell % root}],
                       ["@case('q1', 'seen')\\ndef _(ns, rng):\\n    return ns.seen\\n"],
                       [{"key": "q1/seen", "seed": 0, "timeout": 5.0}], limits=limits,
                       forbid=forbid, deny_read=[], stubs=[], skip_cells={},
                       launcher=lambda: server)
finally:
    server.close()
    if view is not None:
        view.close()
print(json.dumps(run.cases["q1/seen"].value))
"""


def _probe(image, hw1, mode: str) -> dict:
    root = image["root"]
    submit(root / "submission", {"hw1-convolution.submission.ipynb": b"{}"})
    (root / "results" / "results.json").write_text("{}")
    forbid = json.loads((hw1["bundle"] / "bundle.json").read_text())["settings"]["forbid"]
    proc = subprocess.run([str(root / "venv" / "bin" / "python"), "-I", "-c", PROBE,
                           str(root), json.dumps(forbid), mode, PROBE_CELL],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (root / "results" / "results.json").read_text() == "{}"
    return json.loads(proc.stdout)


@pytest.mark.slow
@needs_bwrap
def test_nothing_of_the_layout_is_even_there_in_the_bwrap_sandbox(image, hw1):
    seen = _probe(image, hw1, "bwrap")
    assert seen.pop("venv/bin/python") == "read"  # the probe works: the environment is there
    assert seen.pop("/") == ["venv"]  # of the whole layout, only the environment
    for path, what in seen.items():
        # absent; writes fail earlier, on the read-only file system of the sandbox
        allowed = ("FileNotFoundError", "OSError") if path.startswith("write") else (
            "FileNotFoundError",)
        assert what in allowed, (path, what)


def _open_to_others(path: str) -> bool:
    """The sandbox's unprivileged user can reach ``path`` (every folder on it lets others
    through), as it can a platform's system Python."""
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & 0o001 for d in [p.parent, *p.parent.parents])


needs_root_and_open_python = pytest.mark.skipif(
    os.geteuid() != 0 or not _open_to_others(BASE_PYTHON),
    reason="the platforms grade as root with a system Python open to other users")


@pytest.mark.slow
@needs_root_and_open_python
def test_in_process_isolation_the_grader_drops_to_nobody_before_student_code(image, hw1):
    seen = _probe(image, hw1, "process")
    assert seen["venv/bin/python"] == "read" and seen["source/platform.json"] == "read"
    for secret in ("source/bundle/bundle.json", "source/bundle/expected.npz",
                   "source/bundle/", "write source/bundle/bundle.json",
                   "write results/results.json", "write results/fake.json"):
        assert seen[secret] == "PermissionError", (secret, seen[secret])


@pytest.mark.slow
@needs_root_and_open_python
def test_process_isolation_on_the_platform_gives_the_same_scores(image, hw1, tmp_path):
    config = image["root"] / "source" / "platform.json"
    original = config.read_text()
    config.write_text(json.dumps(dict(json.loads(original), isolation="process")))
    try:
        for kind in ("solution", "one_wrong"):
            data = _submission(kind, hw1["bundle"], hw1["student"])
            gs = _gradescope(image, {"answers.ipynb": data})
            _validate(gs, GRADESCOPE)
            assert gs["score"] == _local_score(hw1["bundle"], data, tmp_path / kind)
    finally:
        config.write_text(original)


@pytest.mark.slow
def test_the_torch_assignment_gets_the_cpu_build_and_its_sandbox_runs_torch(built, wheel,
                                                                           tmp_path, request):
    """hw4's image: torch (the CPU build pinned in requirements.txt) in the environment,
    preloaded in the sandbox, where the notebook's ``import torch`` cells run. (The untouched
    notebook: grading the solution trains a U-Net for minutes; benchmarks/bench_platforms.py
    does that, and hw1's tests compare scores on every kind of submission.)"""
    out = built("hw4-resnet-unet")
    zip_path = write_gradescope(out / "autograder", tmp_path / "zip", wheel,
                                isolation=ISOLATION)
    top = Path(tempfile.mkdtemp(prefix="d2lcnn-gradescope-"))  # reachable by nobody, as
    top.chmod(0o755)  # /autograder is: in process isolation the grader drops to that user
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    root = top / "autograder"
    build_image(gradescope_layout(zip_path, root), root, root / "venv")
    proc = subprocess.run([str(root / "venv" / "bin" / "python"), "-I", "-c",
                           "import torch; print(torch.__file__, torch.__version__)"],
                          capture_output=True, text=True, check=True)
    where, version = proc.stdout.split()
    assert where.startswith(str(root / "venv")) and version.startswith("2.13.0")
    data = _submission("untouched", out / "autograder", out / "student")
    gs = _gradescope({"root": root}, {"my-answers.ipynb": data})
    _validate(gs, GRADESCOPE)
    bundle = json.loads((out / "autograder" / "bundle.json").read_text())
    notes = gs["extra_data"]["notes"]
    assert gs["score"] == _local_score(out / "autograder", data, tmp_path / "local") == 0
    # No cell failed: each automatic question is not attempted, each written one unanswered.
    assert notes == ([f"{q}: not attempted" for q in bundle["questions"]]
                     + [f"{q}: no answer" for q in bundle.get("written", {})]), notes


def test_a_root_grader_that_cannot_drop_privileges_refuses_to_run_the_submission(monkeypatch):
    """Fail closed: never run a submission as root (it could read the bundle and rewrite
    the results) because the interpreter sits where nobody cannot reach it."""
    from d2lcnn.grading import platform_run

    dropped = []
    monkeypatch.setattr(platform_run.os, "geteuid", lambda: 0)
    monkeypatch.setattr(platform_run, "_reachable_by_others", lambda path: False)
    monkeypatch.setattr(platform_run, "drop_root", lambda: dropped.append(True))
    with pytest.raises(RuntimeError, match="cannot drop root before running the submission"):
        platform_run.drop_privileges()
    assert dropped == []


def test_an_interpreter_linked_from_a_closed_folder_is_not_reachable(tmp_path):
    """A venv's bin/python links to a system interpreter, but its site-packages live in the
    venv: a venv under a 0700 folder is out of nobody's reach even if the link's target is
    not (the grader then fails closed instead of dropping into a PermissionError)."""
    from d2lcnn.grading import platform_run

    closed = tmp_path / "closed"
    (closed / "venv" / "bin").mkdir(parents=True)
    closed.chmod(0o700)
    link = closed / "venv" / "bin" / "python"
    link.symlink_to(os.path.realpath(sys.executable))
    assert not platform_run._reachable_by_others(str(link))
    closed.chmod(0o755)
    tmp_path.chmod(0o755)
    opened = all(os.stat(d).st_mode & 0o001 for d in tmp_path.parents)
    assert platform_run._reachable_by_others(str(link)) == (
        opened and platform_run._reachable_by_others(os.path.realpath(sys.executable)))
