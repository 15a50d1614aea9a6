"""A Gradescope or PrairieLearn image, laid out in a temporary folder and set up OFFLINE.

Used by ``tests/grading/test_platforms.py`` and ``benchmarks/bench_platforms.py``.

How the image is made without a network, fast, and still for real:

1. ``python -m venv --without-pip`` with the platform's "system Python":
   ``/usr/bin/python3.X`` of this interpreter's version where there is one (as on Ubuntu;
   its folders are open to the sandbox's unprivileged user), else the base interpreter of
   this environment (``sys._base_executable``).
2. pip and every pinned requirement of the package's ``requirements.txt`` are already
   installed here: their files (each distribution's RECORD) are HARD-LINKED into the new
   environment's
   site-packages, a local cache that costs no copy and no download (torch: about 15,000
   links). The new environment then holds real, complete distributions of its own, inside
   its own prefix, which is what the sandbox mounts (a ``.pth`` pointing at this
   environment instead would leave the sandbox without NumPy).
3. The platform's own ``setup.sh`` runs with ``D2LCNN_SKIP_SYSTEM=1`` (no apt) and pip's
   ``PIP_NO_INDEX=1 PIP_FIND_LINKS=<wheel folder>``: pip resolves every requirement offline
   (all satisfied by step 2) and installs the d2lcnn wheel from the zip, as on the platform.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

_SYSTEM = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
BASE_PYTHON = str(_SYSTEM) if _SYSTEM.exists() else getattr(sys, "_base_executable",
                                                              sys.executable)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy instead
        shutil.copy2(src, dst)


def prefill(venv: Path, requirements_txt: Path) -> int:
    """Hard-link the installed files of pip and of every requirement into ``venv``; returns
    how many files."""
    site = next((venv / "lib").glob("python3.*/site-packages"))
    names = ["pip"] + [Requirement(line).name for line in requirements_txt.read_text()
                       .splitlines() if line.strip() and not line.startswith("#")]
    n = 0
    for name in names:
        dist = metadata.distribution(name)
        for f in dist.files or []:
            if f.parts and f.parts[0] == "..":  # console scripts in bin/: not needed
                continue
            src = Path(dist.locate_file(f))
            dst = site / f
            if src.is_file() and not dst.exists():
                _link(src, dst)
                n += 1
    return n


def unpack(zip_path: Path, folder: Path) -> None:
    """Unzip keeping the executable bits (Gradescope's extraction does; zipfile does not)."""
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            target = folder / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(info))
            os.chmod(target, (info.external_attr >> 16) & 0o777 or 0o644)


def setup_env(source: Path, root: Path, venv: Path) -> dict:
    """The environment variables of an offline ``setup.sh`` run."""
    wheels = sorted(source.glob("d2lcnn-*.whl"))
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root),
            "AUTOGRADER_ROOT": str(root), "D2LCNN_VENV": str(venv),
            "D2LCNN_SKIP_SYSTEM": "1", "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheels[0].parent) if wheels else str(source)}


def build_image(source: Path, root: Path, venv: Path) -> dict:
    """Make ``venv`` for the package in ``source`` (its setup.sh, requirements.txt and
    wheel): returns the seconds of each step and setup.sh's output."""
    times = {}
    t = time.perf_counter()
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    times["venv"] = time.perf_counter() - t
    t = time.perf_counter()
    times["linked_files"] = prefill(venv, source / "requirements.txt")
    times["prefill"] = time.perf_counter() - t
    t = time.perf_counter()
    proc = subprocess.run(["bash", str(source / "setup.sh")], capture_output=True, text=True,
                          env=setup_env(source, root, venv), cwd=source)
    times["setup_sh"] = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"setup.sh failed ({proc.returncode}):\n{proc.stdout}\n"
                           f"{proc.stderr}")
    times["output"] = proc.stdout
    return times


def gradescope_layout(zip_path: Path, root: Path) -> Path:
    """``root`` laid out like Gradescope's ``/autograder`` before setup: ``source/`` (the
    zip), ``run_autograder`` copied next to it, empty ``submission/`` and ``results/``."""
    source = root / "source"
    unpack(zip_path, source)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(parents=True, exist_ok=True)
    return source


def submit(folder: Path, files: dict[str, bytes]) -> None:
    """Empty ``folder``, then write ``files`` (name -> bytes) into it."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def run_script(script: Path, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run a platform script as the platform does (a clean environment plus ``env``)."""
    return subprocess.run([str(script)], capture_output=True, text=True, cwd=cwd,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                          timeout=1800)
