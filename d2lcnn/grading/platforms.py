"""Course-scale grading: an assignment packaged for Gradescope and for PrairieLearn.

``python -m d2lcnn.grading assign SOURCE --out DIR --gradescope --prairielearn`` builds the
assignment as usual (``DIR/student``, ``DIR/autograder``), then writes

``DIR/gradescope/autograder.zip`` (Gradescope's documented layout, unpacked on the platform
into ``/autograder/source``)
    ``setup.sh`` (run once, as root, when the platform builds the image: Python >= 3.11 and
    bubblewrap from apt if missing, a virtual environment at ``/autograder/venv`` with the
    pinned runtime dependencies of :func:`requirements`, the CPU build of torch only where
    the assignment uses it, and the d2lcnn wheel shipped in the zip; then the bundle is made
    readable by root only); ``run_autograder`` (per submission: grades the one notebook in
    ``/autograder/submission`` with :mod:`d2lcnn.grading.platform_run`); ``requirements.txt``;
    ``platform.json`` (isolation mode, visibility of hidden cases); the wheel; ``bundle/``
    (``bundle.json`` and ``expected.npz``, never ``solution.ipynb``).
``DIR/prairielearn/`` (an external-grading question and the image it grades in)
    ``questions/<assignment>/`` with ``info.json`` (``gradingMethod: External``, a JupyterLab
    workspace whose graded file is the student notebook), ``question.html``, ``workspace/``
    (the student files and the wheel) and ``tests/`` (the bundle, ``platform.json`` and
    ``run.sh``, the grading entry point); ``grader-image/`` (a ``Dockerfile`` running the
    same ``setup.sh``): build and push it under the name ``info.json`` gives.

Both scripts take their root from an environment variable (``AUTOGRADER_ROOT``, default
``/autograder``; ``GRADE_ROOT``, default ``/grade``) and the environment from
``D2LCNN_VENV``, so that tests lay out a temporary folder like the platform's.
``setup.sh`` honours ``D2LCNN_SKIP_SYSTEM=1`` (no apt) and pip's own environment variables
(``PIP_NO_INDEX``, ``PIP_FIND_LINKS``: an offline install from local wheels).

The sandbox on the platform is ``bwrap`` by default, as locally. A container that refuses
user namespaces (Docker's default seccomp profile does) cannot run it: every result then
says the grader could not grade, and its log says why. ``--isolation process`` is for such
platforms: no namespaces, but the grader drops from root to ``nobody`` before any student
code runs (:func:`d2lcnn.grading.platform_run.drop_privileges`).
"""

from __future__ import annotations

import ast
import email.parser
import io
import json
import math
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from importlib import metadata
from pathlib import Path

import nbformat
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import d2lcnn
from d2lcnn.grading.bundle import Bundle
from d2lcnn.grading.bundle_format import EXPECTED, META, SOLUTION, AssignError, write_atomic

__all__ = ["VISIBILITIES", "PLATFORM_FILE", "build_wheel", "wheel_requirements",
           "needs_torch", "requirements", "write_gradescope", "write_prairielearn",
           "TORCH_CPU_INDEX"]

PLATFORM_FILE = "platform.json"
VISIBILITIES = ("after_published", "after_due_date", "hidden")  # of hidden cases on Gradescope
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Never pinned: the CUDA runtime a GPU build of torch pulls in (the image grades on the CPU).
_GPU_ONLY = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip entries' timestamp: the same inputs give the same zip


# --- the wheel and its dependencies -----------------------------------------------------


def build_wheel(dest: Path) -> Path:
    """Build the d2lcnn wheel from the checkout this package runs from into ``dest``
    (``pip wheel --no-deps``); ``AssignError`` if it is not a checkout (pass ``--wheel``)."""
    project = Path(d2lcnn.__file__).resolve().parents[1]
    if not (project / "pyproject.toml").is_file():
        raise AssignError(f"d2lcnn is not running from a checkout ({project} has no "
                          "pyproject.toml): pass --wheel PATH to the d2lcnn wheel")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--no-build-isolation", "-w", str(dest), str(project)],
                          capture_output=True, text=True)
    wheels = sorted(dest.glob("d2lcnn-*.whl"), key=lambda p: p.stat().st_mtime)
    if proc.returncode != 0 or not wheels:
        raise AssignError(f"building the d2lcnn wheel failed: {proc.stderr.strip()[-500:]}")
    return wheels[-1]


def wheel_requirements(wheel: Path) -> tuple[list[Requirement], str]:
    """The runtime requirements (no extras) and ``Requires-Python`` of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as z:
        name = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise AssignError(f"{wheel} is not a wheel (no METADATA)")
        meta = email.parser.Parser().parsestr(z.read(name).decode())
    reqs = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    reqs = [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]
    return reqs, meta.get("Requires-Python") or ""


def _imported_modules(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def needs_torch(bundle_dir: Path) -> bool:
    """The assignment preloads torch, or its solution, tests or autograder cells import it
    (and it is not forbidden): only then does the image get torch."""
    bundle_dir = Path(bundle_dir)
    meta = json.loads((bundle_dir / META).read_text())
    settings = meta["settings"]
    if any(f == "torch" for f in settings.get("forbid") or ()):
        return False
    if any(p.split(".")[0] == "torch" for p in settings.get("preload") or ()):
        return True
    sources = [t["source"] for t in meta["tests"]] + list(meta["autograder"])
    if (bundle_dir / SOLUTION).is_file():
        nb = nbformat.read(bundle_dir / SOLUTION, as_version=4)
        sources += [c.source for c in nb.cells if c.cell_type == "code"]
    return any("torch" in _imported_modules(s) for s in sources)


def requirements(wheel: Path, *, torch: bool) -> list[str]:
    """``name==version`` for every runtime dependency of the wheel and theirs, at the
    versions installed here (where the assignment was built and its solution graded).

    Without ``torch``, torch and what only it needs are left out; GPU runtimes never go in
    (the image grades on the CPU). A distribution missing here is listed with the wheel's
    own specifier, for pip to resolve.
    """
    roots, _ = wheel_requirements(wheel)
    if not torch:
        roots = [r for r in roots if canonicalize_name(r.name) != "torch"]
    pinned: dict[str, str] = {}
    todo = list(roots)
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        if key in pinned or _GPU_ONLY.match(key):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pinned[key] = f"{req.name}{req.specifier}"
            continue
        pinned[key] = f"{dist.metadata['Name']}=={Version(dist.version).public}"
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return [pinned[k] for k in sorted(pinned)]


# --- the scripts ----------------------------------------------------------------------

_FIND_PYTHON = r'''find_python() {  # the first Python >= 3.11 on PATH (or $D2LCNN_PYTHON)
  for p in ${D2LCNN_PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if command -v "$p" >/dev/null 2>&1 &&
       "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$p"; return 0
    fi
  done
  return 1
}'''

SETUP_SH = r'''#!/usr/bin/env bash
# Image setup of the d2lcnn autograder for {assignment}: run ONCE, as root, on Ubuntu, when
# the platform builds the image. Written by `python -m d2lcnn.grading assign`.
#   D2LCNN_VENV         the environment to create (default: $AUTOGRADER_ROOT/venv)
#   D2LCNN_SKIP_SYSTEM  1: no apt-get (Python >= 3.11 and bwrap are already there)
#   PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR   pip's own variables: install offline from DIR
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
VENV="${{D2LCNN_VENV:-$ROOT/venv}}"
ISOLATION="{isolation}"
TORCH="{torch}"
{find_python}

# 1. System packages: Python >= 3.11 with venv, and bubblewrap for the sandbox.
if [ "${{D2LCNN_SKIP_SYSTEM:-0}}" != 1 ]; then
  packages=()
  PY="$(find_python || true)"
  if [ -z "$PY" ]; then
    packages+=(python3.11 python3.11-venv)
  elif ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    packages+=("python3.$("$PY" -c 'import sys; print(sys.version_info[1])')-venv")
  fi
  if [ "$ISOLATION" = bwrap ] && ! command -v bwrap >/dev/null 2>&1; then
    packages+=(bubblewrap)
  fi
  if [ ${{#packages[@]}} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${{packages[@]}}"
  fi
fi
PY="$(find_python)" || {{ echo "setup.sh: no Python >= 3.11 found" >&2; exit 1; }}

# 2. The environment: pinned runtime dependencies (torch: the CPU build), then the wheel.
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_install() {{
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "$@"
}}
if [ -n "$TORCH" ]; then
  pip_install --no-deps --index-url {torch_index} "$TORCH"
fi
pip_install -r "$HERE/requirements.txt"
pip_install --no-deps --force-reinstall "$HERE"/{wheel}

# 3. The bundle (expected outputs, hidden tests) is the grading step's alone.
if [ -d "$HERE/bundle" ]; then
  if [ "$(id -u)" = 0 ]; then chown -R 0:0 "$HERE/bundle"; fi
  chmod 700 "$HERE/bundle"
  chmod 600 "$HERE/bundle"/*
fi
"$VENV/bin/python" -I -c 'import d2lcnn.grading.platform_run' && echo "setup.sh: ready"
'''

RUN_AUTOGRADER = r'''#!/usr/bin/env bash
# Grades the one notebook in $AUTOGRADER_ROOT/submission/ into
# $AUTOGRADER_ROOT/results/results.json ({assignment}; Gradescope runs this per submission).
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
VENV="${{D2LCNN_VENV:-$ROOT/venv}}"
exec "$VENV/bin/python" -I -m d2lcnn.grading.platform_run gradescope --root "$ROOT"
'''

PL_RUN = r'''#!/usr/bin/env bash
# PrairieLearn's external-grading entry point for {assignment}: grades the notebook in
# $GRADE_ROOT/student/ into $GRADE_ROOT/results/results.json.
ROOT="${{GRADE_ROOT:-/grade}}"
VENV="${{D2LCNN_VENV:-/opt/d2lcnn-venv}}"
chmod -R go-rwx "$ROOT/tests/bundle" 2>/dev/null  # the grading step's alone
exec "$VENV/bin/python" -I -m d2lcnn.grading.platform_run prairielearn --root "$ROOT"
'''

DOCKERFILE = '''# The PrairieLearn grading image of {assignment} (setup.sh as on Gradescope)
#   docker build -t {image} . && docker push {image}
FROM ubuntu:24.04
COPY . /opt/d2lcnn-setup
RUN apt-get update -qq \\
    && D2LCNN_VENV=/opt/d2lcnn-venv bash /opt/d2lcnn-setup/setup.sh \\
    && rm -rf /opt/d2lcnn-setup /root/.cache /var/lib/apt/lists/*
'''

QUESTION_HTML = '''<pl-question-panel>
  <p>{assignment}: open the workspace, answer in <code>{notebook}</code> (run
  <code>check("q1")</code> and the others as you go), save it, then press
  <b>Save &amp; Grade</b>. Hidden tests count too; their inputs are never shown.</p>
  <pl-workspace></pl-workspace>
</pl-question-panel>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
'''


# --- writing the packages -------------------------------------------------------------


def _platform_config(meta: dict, *, isolation: str, hidden_visibility: str,
                     torch: bool) -> dict:
    if isolation not in ("bwrap", "process"):
        raise AssignError(f"isolation must be 'bwrap' or 'process', got {isolation!r}")
    if hidden_visibility not in VISIBILITIES:
        raise AssignError(f"hidden visibility must be one of {VISIBILITIES}, "
                          f"got {hidden_visibility!r}")
    return {"assignment": meta["assignment"], "isolation": isolation,
            "hidden_visibility": hidden_visibility, "torch": torch}


def _add(z: zipfile.ZipFile, name: str, data: bytes | str, *, executable=False) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data.encode() if isinstance(data, str) else data)


def _setup_files(meta: dict, wheel: Path, torch: bool, isolation: str) -> dict[str, str]:
    """setup.sh and requirements.txt for this assignment and wheel."""
    pins = requirements(wheel, torch=torch)
    torch_pin = next((p for p in pins if canonicalize_name(p.split("==")[0]) == "torch"), "")
    setup = SETUP_SH.format(assignment=meta["assignment"], isolation=isolation,
                            torch=torch_pin, torch_index=TORCH_CPU_INDEX, wheel=wheel.name,
                            find_python=_FIND_PYTHON)
    header = (f"# Runtime dependencies of {wheel.name} for {meta['assignment']}, pinned to "
              "the versions its solution was graded with.\n")
    return {"setup.sh": setup, "requirements.txt": header + "\n".join(pins) + "\n"}


def write_gradescope(bundle_dir: Path, out: Path, wheel: Path, *, isolation: str = "bwrap",
                     hidden_visibility: str = "after_published") -> Path:
    """Write ``out/autograder.zip`` for Gradescope; returns its path."""
    bundle_dir, wheel = Path(bundle_dir), Path(wheel)
    meta = json.loads((bundle_dir / META).read_text())
    torch = needs_torch(bundle_dir)
    config = _platform_config(meta, isolation=isolation, hidden_visibility=hidden_visibility,
                              torch=torch)
    files = _setup_files(meta, wheel, torch, isolation)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        _add(z, "setup.sh", files["setup.sh"], executable=True)
        _add(z, "run_autograder", RUN_AUTOGRADER.format(assignment=meta["assignment"]),
             executable=True)
        _add(z, "requirements.txt", files["requirements.txt"])
        _add(z, PLATFORM_FILE, json.dumps(config, indent=1))
        _add(z, wheel.name, wheel.read_bytes())
        for name in (META, EXPECTED):  # never the solution notebook: grading needs neither
            _add(z, f"bundle/{name}", (bundle_dir / name).read_bytes())
    target = Path(out) / "autograder.zip"
    write_atomic(target, buf.getvalue())
    return target


def write_prairielearn(bundle_dir: Path, student_dir: Path, out: Path, wheel: Path, *,
                       isolation: str = "bwrap", hidden_visibility: str = "after_published",
                       image: str | None = None) -> Path:
    """Write a PrairieLearn question (``out/questions/<assignment>``) and its grading image
    (``out/grader-image``); returns the question's folder."""
    bundle_dir, student_dir, wheel = Path(bundle_dir), Path(student_dir), Path(wheel)
    meta = json.loads((bundle_dir / META).read_text())
    name = meta["assignment"]
    torch = needs_torch(bundle_dir)
    config = _platform_config(meta, isolation=isolation, hidden_visibility=hidden_visibility,
                              torch=torch)
    image = image or f"d2lcnn-grader:{d2lcnn.__version__}" + ("-torch" if torch else "")
    question = Path(out) / "questions" / name
    if question.exists():
        shutil.rmtree(question)
    notebook = f"{name}.ipynb"
    info = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"d2lcnn:{name}:{meta['source_sha256']}")),
        "title": name, "topic": "Autograded homework", "tags": ["d2lcnn", "notebook"],
        "type": "v3", "singleVariant": True, "gradingMethod": "External",
        "workspaceOptions": {"image": "prairielearn/workspace-jupyterlab-python",
                             "port": 8080, "home": "/home/jovyan", "gradedFiles": [notebook]},
        "externalGradingOptions": {
            "enabled": True, "image": image, "entrypoint": "/grade/tests/run.sh",
            # PrairieLearn's cap is 600 s; the grader's own budget is usually below it.
            "timeout": min(600, math.ceil(Bundle(bundle_dir, meta, {}, "").submission_budget()
                                          + 30))},
    }
    write_atomic(question / "info.json", json.dumps(info, indent=2))
    write_atomic(question / "question.html",
                 QUESTION_HTML.format(assignment=name, notebook=notebook))
    for f in sorted(student_dir.iterdir()):
        write_atomic(question / "workspace" / f.name, f.read_bytes())
    write_atomic(question / "workspace" / wheel.name, wheel.read_bytes())
    tests = question / "tests"
    for fname in (META, EXPECTED):
        write_atomic(tests / "bundle" / fname, (bundle_dir / fname).read_bytes())
    write_atomic(tests / PLATFORM_FILE, json.dumps(config, indent=1))
    write_atomic(tests / "run.sh", PL_RUN.format(assignment=name))
    (tests / "run.sh").chmod(0o755)
    files = _setup_files(meta, wheel, torch, isolation)
    image_dir = Path(out) / "grader-image"
    write_atomic(image_dir / "setup.sh", files["setup.sh"])
    (image_dir / "setup.sh").chmod(0o755)
    write_atomic(image_dir / "requirements.txt", files["requirements.txt"])
    write_atomic(image_dir / wheel.name, wheel.read_bytes())
    write_atomic(image_dir / "Dockerfile", DOCKERFILE.format(assignment=name, image=image))
    return question
