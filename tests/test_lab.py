"""`make lab` starts JupyterLab on the notebooks, also as root (Docker, cloud VMs), and its
file browser lists each chapter once: the .ipynb, not its jupytext .py twin or conf.py.

The test runs `make lab` itself (as the current user, on a free port bound to 127.0.0.1, with
a token of its own and no browser), asks the server for the notebooks folder's listing, and
stops it. About 5 seconds."""

import fnmatch
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JUPYTER = REPO / ".venv" / "bin" / "jupyter"  # the one the Makefile's lab target runs
CHAPTER_TWINS = "[0-9][0-9]-*.py"

pytestmark = [
    pytest.mark.skipif(not JUPYTER.exists(), reason="jupyter lab is not installed (make install)"),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]


def make(*args: str) -> list[str]:
    return ["make", "--no-print-directory", "-C", str(REPO), *args]


def install_stamp() -> str:
    """The Makefile's install stamp, so `make -o STAMP lab` never reinstalls during a test."""
    db = subprocess.run(make("-p", "-n", "install"), capture_output=True, text=True).stdout
    found = re.search(r"^STAMP := (.+)$", db, re.MULTILINE)
    assert found, "the Makefile defines no STAMP"
    return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.load(response)


def test_lab_command_allows_root_only_for_root_and_passes_lab_args():
    out = subprocess.run(make("-n", "-o", install_stamp(), "lab", "LAB_ARGS=--my-option"),
                         capture_output=True, text=True, check=True).stdout
    assert "jupyter lab notebooks" in out and out.rstrip().endswith("--my-option")
    assert ("--allow-root" in out) == (os.geteuid() == 0)


def test_lab_starts_and_lists_each_chapter_once(tmp_path):
    chapters = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    twins = sorted(p.name for p in (REPO / "notebooks").glob(CHAPTER_TWINS))
    assert chapters and len(twins) == len(chapters)  # otherwise nothing would be tested
    port, token = free_port(), secrets.token_hex(16)
    lab_args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
                f"--ServerApp.port_retries=0 --IdentityProvider.token={token}")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(make("-o", install_stamp(), "lab", f"LAB_ARGS={lab_args}"),
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group: stop make and jupyter
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            assert proc.poll() is None, f"make lab exited:\n{log_path.read_text()}"
            try:
                status, _ = get(f"{base}/api/status", token)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"no answer in 45 s:\n{log_path.read_text()}"
            time.sleep(0.2)

        _, listing = get(f"{base}/api/contents/", token)
        names = sorted(item["name"] for item in listing["content"])
        assert [n for n in names if fnmatch.fnmatch(n, "[0-9][0-9]-*")] == chapters
        assert "conf.py" not in names and not fnmatch.filter(names, CHAPTER_TWINS)
        assert "homework" in names
        # hidden from the listing, not from jupytext: the twin is still served by path
        status, model = get(f"{base}/api/contents/{twins[0]}?content=0", token)
        assert status == 200 and model["name"] == twins[0]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
