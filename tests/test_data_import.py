"""`import d2lcnn.data` from the folder that holds the clone (issue 14).

`git clone ... d2lcnn` makes a folder named d2lcnn with no __init__.py (and a top-level data/
folder). Run from its parent, that folder is `./d2lcnn` on sys.path[0]. With setuptools'
default editable install (an import hook on sys.meta_path, consulted only after sys.path), it
won as a namespace package and `d2lcnn.data` was the repository's data/ folder. `make install`
uses editable_mode=compat: the package's parent folder is a sys.path entry, so the real,
regular package is found first (as it is in site-packages after a non-editable install).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def parent_of_clone(tmp_path):
    """A folder holding `d2lcnn`, a stand-in for the clone: a link to this repository."""
    try:
        (tmp_path / "d2lcnn").symlink_to(REPO, target_is_directory=True)
    except OSError as e:  # e.g. Windows without the symlink privilege
        pytest.skip(f"cannot create a symbolic link: {e}")
    return tmp_path


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_import_finds_the_real_subpackage(parent_of_clone):
    out = run(parent_of_clone, "-c", "import d2lcnn.data; print(d2lcnn.data.__file__)")
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == REPO / "d2lcnn" / "data" / "__init__.py"


def test_module_command_runs(parent_of_clone):
    out = run(parent_of_clone, "-m", "d2lcnn.data", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m d2lcnn.data")


def test_install_puts_the_package_on_a_sys_path_entry(tmp_path):
    # The fix is the install mode: d2lcnn must be a regular package reached through a
    # sys.path entry (compat editable or site-packages), not through an import hook.
    code = (
        "import os, sys, d2lcnn\n"
        "parent = os.path.dirname(os.path.dirname(os.path.realpath(d2lcnn.__file__)))\n"
        "print(any(os.path.realpath(p or '.') == parent for p in sys.path[1:]))\n"
        "print(type(d2lcnn.__spec__.loader).__name__)\n"
    )
    out = run(tmp_path, "-c", code)
    assert out.returncode == 0, out.stderr
    on_path, loader = out.stdout.split()
    assert loader == "SourceFileLoader"
    assert on_path == "True", (
        "d2lcnn is not installed through a sys.path entry: reinstall with `make install` "
        "(pip install -e . --config-settings editable_mode=compat)"
    )
