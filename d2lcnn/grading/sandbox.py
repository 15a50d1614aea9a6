"""The parent side of the sandbox: one fresh process per question, timeouts, restarts.

:func:`run_question` starts ``python -I -m d2lcnn.grading._runner`` in a new session and a
temporary directory, sends it the job on stdin and reads its frames with deadlines: one per
cell (``cell_timeout``) and one per case (the case's timeout). When the child hangs or dies,
the parent kills its process group and starts a new child that skips the culprit (the cell is
skipped for every later question of the submission too; the case scores zero), so one
infinite loop costs one cell or one case, not the submission.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from d2lcnn.grading.payload import FrameReader, PayloadError

__all__ = ["Limits", "CellRun", "CaseRun", "QuestionRun", "run_question", "SpawnLauncher",
           "ZygoteLauncher"]

MAX_RESTARTS = 8


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox process (the assignment's ``settings``)."""

    case_timeout: float = 10.0  # wall-clock seconds per test case
    cell_timeout: float = 60.0  # wall-clock seconds per notebook cell
    memory_mb: int = 2048  # RLIMIT_AS
    output_kb: int = 1024  # RLIMIT_FSIZE: the captured stdout+stderr and any file written
    startup_timeout: float = 30.0  # interpreter start + imports
    cpu_seconds: float | None = None  # RLIMIT_CPU; None: from the timeouts
    preload: tuple[str, ...] = ()  # modules imported before the audit hook is installed


@dataclass
class CellRun:
    key: int
    label: str
    error: str | None = None
    seconds: float = 0.0


@dataclass
class CaseRun:
    key: str
    status: str  # "ok", "not_attempted", "error", "timeout", "crash"
    value: object = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class QuestionRun:
    cases: dict[str, CaseRun] = field(default_factory=dict)
    cells: dict[int, CellRun] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    processes: int = 0
    wall: float = 0.0  # seconds, the whole question
    compute: float = 0.0  # seconds spent inside cells and probes (the student's own compute)


def _death(proc, log: str) -> str:
    code = proc.returncode
    if code is None:
        return "the process stopped responding"
    if code < 0:
        sig = signal.Signals(-code)
        why = {signal.SIGXCPU: "CPU time limit exceeded", signal.SIGKILL: "killed",
               signal.SIGXFSZ: "output size limit exceeded",
               signal.SIGSEGV: "crashed (segmentation fault)"}.get(sig, f"died ({sig.name})")
        return why
    tail = log.strip().splitlines()[-1:] if "MemoryError" in log else []
    return f"the process exited with code {code}" + (f" ({tail[0][:120]})" if tail else "")


@functools.cache
def forbidden_paths(forbid: tuple[str, ...]) -> tuple[str, ...]:
    """Files the sandbox may not open because they hold forbidden modules.

    ``importlib.import_module`` bypasses the "import" audit event, but loading a module
    still opens its source or bytecode, so refusing those opens blocks every way in (and
    reading the reference source). Packages give their folder; modules their file and
    their ``__pycache__/<name>.`` prefix (an entry ending in ``*`` is a raw prefix).
    Computed in the grader (finding ``a.b`` imports the package ``a`` here, not there).
    """
    out = []
    for name in forbid:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            spec = None
        if spec is None:
            continue
        if spec.submodule_search_locations:
            out += [os.path.realpath(p) for p in spec.submodule_search_locations]
        elif spec.origin and os.path.isfile(spec.origin):
            origin = os.path.realpath(spec.origin)
            folder, file = os.path.split(origin)
            out += [origin, os.path.join(folder, "__pycache__", file.split(".")[0] + ".") + "*"]
    return tuple(out)


def _env(workdir: str | None) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "LANG": "C.UTF-8"}
    if workdir:
        env.update(HOME=workdir, TMPDIR=workdir)
    return env


class _Child:
    """A running sandbox child: its pid (= process group) and how to end and reap it."""

    def __init__(self, pid: int, reap):
        self.pid = pid
        self._reap = reap
        self.returncode: int | None = None

    def finish(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.returncode = self._reap()


class SpawnLauncher:
    """A fresh ``python -I -m d2lcnn.grading._runner`` per question (no shared state)."""

    def start(self, job: dict, workdir: str) -> tuple[_Child, int]:
        r, w = os.pipe()
        log = open(os.path.join(workdir, ".output"), "wb")  # noqa: SIM115 - closed below
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "d2lcnn.grading._runner", str(w)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                env=_env(workdir), pass_fds=(w,), start_new_session=True, close_fds=True)
        finally:
            os.close(w)
            log.close()
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        return _Child(proc.pid, proc.wait), r

    def close(self) -> None:
        pass


class ZygoteLauncher:
    """A fork server: one interpreter with NumPy (and ``preload``) imported that forks a
    child per question. After the fork the child is isolated like a spawned one (new
    session, temporary directory, limits and audit hook set in the child) without paying
    for interpreter start-up and imports each time. Not thread-safe: one per thread."""

    def __init__(self, preload=()):
        import socket

        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "d2lcnn.grading._runner", "--zygote",
             str(theirs.fileno()), json.dumps(list(preload))],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=_env(None), pass_fds=(theirs.fileno(),), start_new_session=True,
            close_fds=True, cwd="/")
        theirs.close()
        self._file = self._sock.makefile("rb")

    def _ask(self, req: dict, fds=()) -> dict:
        import socket

        socket.send_fds(self._sock, [json.dumps(req).encode() + b"\n"], list(fds))
        line = self._file.readline()
        if not line:
            raise RuntimeError("the sandbox fork server died")
        return json.loads(line)

    def start(self, job: dict, workdir: str) -> tuple[_Child, int]:
        job = dict(job, env=_env(workdir))
        with open(os.path.join(workdir, ".job.json"), "w") as f:
            json.dump(job, f)
        r, w = os.pipe()
        try:
            pid = self._ask({"op": "fork", "workdir": workdir}, [w])["pid"]
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        return _Child(pid, lambda: self._ask({"op": "wait", "pid": pid})["status"]), r

    def close(self) -> None:
        try:
            self._sock.close()
            self._file.close()
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def run_question(cells: list[dict], tests: list[str], cases: list[dict], *, limits: Limits,
                 forbid: list[str], deny_read: list[str], stubs: list[str],
                 skip_cells: dict[int, str], launcher=None) -> QuestionRun:
    """Run the submission's ``cells`` then the probes of ``cases`` in fresh processes.

    Args:
        cells: ``{"key", "label", "source"}`` in notebook order.
        tests: sources of the tests cells (public and hidden probes).
        cases: ``{"key", "seed", "timeout"}``.
        skip_cells: cell key -> reason, shared across a submission's questions; cells that
            hung or killed the process are added here and not run again.
        launcher: :class:`ZygoteLauncher` (fast) or :class:`SpawnLauncher` (the default).
    """
    launcher = launcher or SpawnLauncher()
    out = QuestionRun()
    remaining = list(cases)
    t_start = time.perf_counter()
    cpu = int(limits.cpu_seconds or limits.startup_timeout + limits.cell_timeout * (
        len(cells) + 1) + sum(c["timeout"] for c in cases)) + 1
    while remaining:
        if out.processes > MAX_RESTARTS:
            for c in remaining:
                out.cases[c["key"]] = CaseRun(c["key"], "crash", error="too many crashes")
            break
        job = {"cells": [c for c in cells if c["key"] not in skip_cells], "tests": tests,
               "cases": [{"key": c["key"], "seed": c["seed"]} for c in remaining],
               "forbid": forbid, "stubs": stubs,
               "deny_read": [*deny_read, *forbidden_paths(tuple(forbid))],
               "preload": list(limits.preload),
               "limits": {"memory_mb": limits.memory_mb, "output_kb": limits.output_kb,
                          "cpu_s": cpu}}
        labels = {c["key"]: c["label"] for c in cells}
        timeouts = {c["key"]: c["timeout"] for c in remaining}
        workdir = tempfile.mkdtemp(prefix="d2lcnn-sandbox-")
        out.processes += 1
        try:
            proc, fd = launcher.start(job, workdir)
        except (OSError, RuntimeError) as e:
            shutil.rmtree(workdir, ignore_errors=True)
            for c in remaining:
                out.cases[c["key"]] = CaseRun(c["key"], "crash",
                                              error=f"the sandbox could not start: {e}")
            break
        reader = FrameReader(fd)
        current: tuple[str, object] = ("startup", None)
        deadline = time.monotonic() + limits.startup_timeout
        timed_out = done = False
        try:
            while True:
                try:
                    frame = reader.read(deadline)
                except PayloadError as e:
                    out.notes.append(f"sandbox sent a malformed frame ({e})")
                    break
                if frame is None:
                    timed_out = not reader.eof
                    break
                if not isinstance(frame, dict):
                    break
                kind = frame.get("type")
                if kind == "cell_start":
                    current = ("cell", frame.get("key"))
                    deadline = time.monotonic() + limits.cell_timeout
                elif kind == "cell_end":
                    k = frame.get("key")
                    out.cells[k] = CellRun(k, labels.get(k, str(k)), frame.get("error"),
                                           float(frame.get("seconds") or 0.0))
                    out.compute += out.cells[k].seconds
                    current = ("between", None)
                    deadline = time.monotonic() + limits.startup_timeout
                elif kind == "tests_error":
                    out.notes.append(f"test code failed to load: {frame.get('error')}")
                elif kind == "case_start":
                    k = frame.get("key")
                    current = ("case", k)
                    deadline = time.monotonic() + float(timeouts.get(k, limits.case_timeout))
                elif kind == "case_end":
                    k = frame.get("key")
                    if k in timeouts and k not in out.cases:
                        status = frame.get("status")
                        if status not in ("ok", "not_attempted", "error"):
                            status = "error"
                        out.cases[k] = CaseRun(k, status, frame.get("value"),
                                               frame.get("error"),
                                               float(frame.get("seconds") or 0.0))
                        out.compute += out.cases[k].seconds
                    current = ("between", None)
                    deadline = time.monotonic() + limits.startup_timeout
                elif kind == "done":
                    v = frame.get("violations") or []
                    out.violations.extend(str(x)[:200] for x in v[:20])
                    done = True
                    break
        finally:
            try:
                proc.finish()
            except (OSError, RuntimeError, ValueError) as e:
                out.notes.append(f"the sandbox could not be reaped: {e}")
            os.close(fd)
            try:
                with open(os.path.join(workdir, ".output"), "rb") as f:
                    log = f.read(200_000).decode(errors="replace")
            except OSError:
                log = ""
            shutil.rmtree(workdir, ignore_errors=True)
        remaining = [c for c in remaining if c["key"] not in out.cases]
        if done or not remaining:
            for c in remaining:
                out.cases[c["key"]] = CaseRun(c["key"], "crash", error="no result was returned")
            break
        phase, key = current
        if timed_out:
            what = (f"timed out after {limits.cell_timeout:g} s" if phase == "cell"
                    else f"timed out after {timeouts.get(key, limits.case_timeout):g} s"
                    if phase == "case" else "timed out")
        else:
            what = _death(proc, log)
        if phase == "cell":
            skip_cells[key] = what
            out.cells[key] = CellRun(key, labels.get(key, str(key)), what)
        elif phase == "case":
            out.cases[key] = CaseRun(key, "timeout" if timed_out else "crash", error=what)
        else:  # startup, tests loading or between events: nothing to skip, give up
            for c in remaining:
                out.cases[c["key"]] = CaseRun(c["key"], "crash",
                                              error=f"the sandbox failed: {what}")
            out.notes.append(f"sandbox failed outside any cell or case: {what}; "
                             f"output: {log[-300:]!r}")
            break
        remaining = [c for c in remaining if c["key"] not in out.cases]
    out.wall = time.perf_counter() - t_start
    return out
