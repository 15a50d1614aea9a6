"""The grader's side of the sandbox: fork servers, one process per question, deadlines.

:class:`ForkServer` starts ``python -I -m d2lcnn.grading._runner --zygote`` (inside bubblewrap
in ``bwrap`` isolation, see :mod:`d2lcnn.grading.isolation`) and asks it for one child per
question. :func:`run_question` sends the child its job and reads its frames with deadlines:
one per cell (``cell_timeout``), one per case (the case's timeout), and the question's and
submission's time budgets. When the child hangs or dies, the grader has it killed and starts
a new child that skips the culprit (the cell is skipped for every later question of the
submission too; the case scores zero), so one infinite loop costs one cell or one case, not
the submission. Everything read from the child is bounded plain data, and any text in it is
reduced to grader-known words (:func:`brief_error`, :func:`brief_violation`) before it can
reach a note.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from d2lcnn.grading._runner import BLOCKED_EVENTS, FS_EVENTS
from d2lcnn.grading.isolation import SCRATCH, forbidden_locations
from d2lcnn.grading.payload import JOB_LIMITS, MAX_TOTAL, FrameReader, PayloadError, pack

__all__ = ["Limits", "CellRun", "CaseRun", "QuestionRun", "run_question", "ForkServer",
           "SandboxError", "question_budget"]

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
    question_timeout: float | None = None  # seconds for a whole question; None: derived
    scratch_mb: int = 64  # bwrap: size of the private /tmp (all files together)
    scratch_files: int = 1024  # bwrap: number of files and folders in it
    # The Python audit hook, the second layer. Only tests turn it off, to show that the OS
    # layer holds on its own (a bundle's settings cannot).
    audit_hook: bool = True


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


def _death(code: int | None, log: str) -> str:
    if code is None:
        return "the process stopped responding"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"died (signal {-code})"
        why = {signal.SIGXCPU: "CPU time limit exceeded", signal.SIGKILL: "killed",
               signal.SIGXFSZ: "output size limit exceeded",
               signal.SIGSEGV: "crashed (segmentation fault)"}.get(sig, f"died ({sig.name})")
        return why
    return f"the process exited with code {code}" + (" (MemoryError)" if "MemoryError" in log
                                                     else "")


# --- text from the sandbox -----------------------------------------------------------------
# Student code can put anything into an exception message or into the audit hook's list of
# violations, and notes reach the student (results.json, feedback.md). Free text would be a
# channel out of the sandbox for what it can see and the student cannot (the hidden probes'
# code and inputs), so only grader-known words pass: a builtin exception's name, a line
# number inside the cell, and violations rebuilt from a fixed list of templates.
_EXCEPTIONS = frozenset(n for n, v in vars(builtins).items()
                        if isinstance(v, type) and issubclass(v, BaseException)) | {
    "SandboxViolation", "PayloadError"}


def brief_error(text, max_line: int | None = None, forbid=()) -> str | None:
    """``"Type (line N)"`` from the sandbox's ``"Type: message (line N)"``: the type if it
    is a builtin exception (else "an exception"), the line if it is inside the cell. The
    ImportError of a forbidden module's stub keeps the (forbidden) module's name."""
    if text is None:
        return None
    text = str(text)[:1000]
    m = re.match(r"([A-Za-z_]\w*)", text)
    name = m.group(1) if m and m.group(1) in _EXCEPTIONS else "an exception"
    if text.startswith("returned something that is not plain data"):
        return "returned something that is not plain data (see check() in the notebook)"
    stub = re.match(r"ImportError: ([\w.]+) is not available in the grader", text)
    if stub and stub.group(1) in forbid:
        name = f"ImportError: {stub.group(1)} is forbidden in this assignment"
    line = re.search(r"\(line (\d{1,6})\)$", text)
    n = int(line.group(1)) if line else None
    ok = n is not None and (max_line is None or 1 <= n <= max_line)
    return name + (f" (line {n})" if ok else "")


_EVENT_NAMES = BLOCKED_EVENTS | set(FS_EVENTS)
_EVENT = re.compile(r"([\w.]+(?:/[\w]+)?) (?:outside the working directory )?is not allowed")


def brief_violation(text, forbid) -> str | None:
    """A violation reported by the sandbox, rebuilt from grader-known words (or None)."""
    text = str(text)[:300]
    m = re.match(r"import of ([\w.]+) is not allowed", text)
    if m:
        hit = [f for f in (*forbid, "_posixsubprocess", "_xxsubinterpreters", "_interpreters")
               if m.group(1) == f or m.group(1).startswith(f + ".")]
        return f"import of {hit[0]} (forbidden)" if hit else None
    if text.startswith("writing outside the working directory"):
        return "writing outside the working directory"
    if text.startswith("reading "):
        return "reading a file the sandbox may not read"
    if text.startswith("loading the library"):
        return "loading a shared library from the working directory"
    m = _EVENT.match(text)
    if m and m.group(1) in _EVENT_NAMES:
        return f"{m.group(1)} is not allowed in the grader"
    return None


@functools.cache
def forbidden_paths(forbid: tuple[str, ...]) -> tuple[str, ...]:
    """Files a process-mode sandbox may not open because they hold forbidden modules.

    ``importlib.import_module`` bypasses the "import" audit event, but loading a module
    still opens its source or bytecode, so refusing those opens blocks every way in (and
    reading the reference source). Packages give their folder; modules their file and
    their ``__pycache__/<name>.`` prefix (an entry ending in ``*`` is a raw prefix).
    """
    out = []
    for _, kind, path in forbidden_locations(forbid):
        if kind == "bytecode":
            continue
        out.append(path)
        if kind == "module":
            folder, file = os.path.split(path)
            out.append(os.path.join(folder, "__pycache__", file.split(".")[0] + ".") + "*")
    return tuple(out)


def _env(home: str | None) -> dict:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    if home:
        env.update(HOME=home, TMPDIR=home, MPLCONFIGDIR=home)
    return env


REPLY_TIMEOUT = 10.0  # seconds the grader waits for the fork server's answer
MAX_REPLY = 4096  # bytes of one answer line
# The first answer of a new server waits for its preloads (torch: seconds, minutes on a
# machine that is swapping); a server a student cannot reach does not hang on purpose.
START_TIMEOUT = 180.0


class SandboxError(RuntimeError):
    """The fork server died, did not answer in time, or answered nonsense."""


class _Child:
    """A running question: ends and reaps itself through the fork server that made it."""

    def __init__(self, server, pid: int):
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def finish(self) -> None:
        self.returncode = self.server.finish(self.pid)


class ForkServer:
    """A fork server: one interpreter that has imported NumPy, the runner and ``preload``
    and forks one child per question, so imports are paid once, not per question.

    ``isolation="bwrap"``: the server runs inside bubblewrap (see
    :mod:`d2lcnn.grading.isolation`), each child enters its own namespaces with a private
    scratch ``/tmp``; ONE server per submission (never shared between students).
    ``isolation="process"``: a plain process of the grader's user, each child in a new
    session and a temporary directory made by the grader; one per grading thread.

    The protocol trusts nothing that comes back: answers are one JSON line of at most
    ``MAX_REPLY`` bytes within ``REPLY_TIMEOUT`` seconds, else the server is killed
    (its children with it) and :class:`SandboxError` is raised.
    """

    def __init__(self, preload=(), *, isolation: str = "process", view=None,
                 scratch: tuple[int, int] = (64, 1024)):
        self.isolation = isolation
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-I", "-m", "d2lcnn.grading._runner", "--zygote",
                str(theirs.fileno()), json.dumps(list(preload))]
        if isolation == "bwrap":
            argv += ["--bwrap", json.dumps([*scratch, view.tmp_free])]
            argv = view.command(argv)
        elif isolation != "process":
            raise ValueError(f"isolation must be 'bwrap' or 'process', got {isolation!r}")
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=_env(None), pass_fds=(theirs.fileno(),),
                start_new_session=True, close_fds=True, cwd="/")
        finally:
            theirs.close()
        self._sock.settimeout(REPLY_TIMEOUT)
        self._buf = b""
        self.dead = False

    def _reply(self, timeout: float = REPLY_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or len(self._buf) > MAX_REPLY:
                self.kill()
                raise SandboxError("the sandbox fork server did not answer")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(MAX_REPLY)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.kill()
                raise SandboxError("the sandbox fork server died")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self.kill()
            raise SandboxError("the sandbox fork server answered nonsense")
        return reply

    def _send(self, req: dict, body: bytes = b"", fds=()) -> None:
        if self.dead:
            raise SandboxError("the sandbox fork server is gone")
        head = json.dumps(dict(req, size=len(body))).encode() + b"\n"
        try:
            socket.send_fds(self._sock, [head], list(fds))
            if body:
                self._sock.sendall(body)
        except OSError as e:
            self.kill()
            raise SandboxError(f"the sandbox fork server went away ({e})") from None

    def start(self, job: dict, workdir: str | None) -> tuple[_Child, int]:
        """Fork a child for ``job``; returns it and the read end of its result pipe."""
        job = dict(job, env=_env(workdir or SCRATCH))
        body = pack(job, limits=JOB_LIMITS)
        r, w = os.pipe()
        try:
            self._send({"op": "fork", "workdir": workdir}, body, [w])
            pid = self._reply(START_TIMEOUT).get("pid")
            if not isinstance(pid, int) or pid <= 1:
                self.kill()
                raise SandboxError(f"the sandbox fork server gave a bad pid {pid!r}")
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        return _Child(self, pid), r

    def finish(self, pid: int) -> int | None:
        """Kill the child ``pid`` (and, in process mode, its process group); its status."""
        if self.isolation == "process":
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self._send({"op": "finish", "pid": pid})
            status = self._reply().get("status")
        except SandboxError:
            return None
        return status if isinstance(status, int) else None

    def kill(self) -> None:
        """Kill the server and everything it started (bwrap: the whole namespace)."""
        self.dead = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            self.kill()
            self.proc.wait()


def question_budget(limits: Limits, cases: list[dict]) -> float:
    """Seconds one question may take in all (its cells, restarts and cases)."""
    if limits.question_timeout:
        return float(limits.question_timeout)
    return limits.startup_timeout + 2 * limits.cell_timeout + sum(c["timeout"] for c in cases)


def run_question(cells: list[dict], tests: list[str], cases: list[dict], *, limits: Limits,
                 forbid: list[str], deny_read: list[str], stubs: list[str],
                 skip_cells: dict[int, str], launcher, deadline: float | None = None
                 ) -> QuestionRun:
    """Run the submission's ``cells`` then the probes of ``cases`` in fresh processes.

    Args:
        cells: ``{"key", "label", "source"}`` in notebook order.
        tests: sources of the tests cells (public and hidden probes).
        cases: ``{"key", "seed", "timeout"}``, and ``"inputs"`` (plain data made in the
            grader) for a case declared with ``inputs=``.
        skip_cells: cell key -> reason, shared across a submission's questions; cells that
            hung or killed the process are added here and not run again.
        launcher: returns a live :class:`ForkServer` (called for every process started,
            so a server that died is replaced; see ``Bundle.session``).
        deadline: ``time.monotonic()`` value when the SUBMISSION's budget runs out; the
            question stops at the earlier of that and its own budget
            (:func:`question_budget`), and its unfinished cases score zero.
    """
    out = QuestionRun()
    remaining = list(cases)
    t_start = time.perf_counter()
    budget_end = time.monotonic() + question_budget(limits, cases)
    if deadline is not None:
        budget_end = min(budget_end, deadline)
    cpu = int(limits.cpu_seconds or limits.startup_timeout + limits.cell_timeout * (
        len(cells) + 1) + sum(c["timeout"] for c in cases)) + 1
    labels = {c["key"]: c["label"] for c in cells}
    nlines = {c["key"]: c["source"].count("\n") + 1 for c in cells}
    bytes_left = MAX_TOTAL  # over all of the question's processes: bounds what is kept
    while remaining:
        server = launcher()
        isolated = server.isolation == "bwrap"
        if _give_up(out, remaining, bytes_left, budget_end):
            break
        job = {"cells": [c for c in cells if c["key"] not in skip_cells], "tests": tests,
               "cases": [{k: c[k] for k in ("key", "seed", "inputs") if k in c}
                         for c in remaining],
               "forbid": forbid, "stubs": stubs,
               "deny_read": [] if isolated else [*deny_read,
                                                 *forbidden_paths(tuple(forbid))],
               "preload": list(limits.preload),
               "limits": {"memory_mb": limits.memory_mb, "output_kb": limits.output_kb,
                          "cpu_s": cpu},
               "audit_hook": limits.audit_hook}
        timeouts = {c["key"]: c["timeout"] for c in remaining}
        workdir = None if isolated else tempfile.mkdtemp(prefix="d2lcnn-sandbox-")
        out.processes += 1
        try:
            proc, fd = server.start(job, workdir)
        except (OSError, RuntimeError, PayloadError) as e:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            _fail(out, remaining, "crash", f"the sandbox could not start: {e}")
            break
        reader = FrameReader(fd, max_total=bytes_left)
        at = _Progress()
        try:
            _read_frames(reader, at, out, limits=limits, budget_end=budget_end, labels=labels,
                         nlines=nlines, timeouts=timeouts, forbid=forbid)
        finally:
            log = _reap(proc, fd, workdir, out)
            bytes_left -= reader.total
        remaining = [c for c in remaining if c["key"] not in out.cases]
        if at.done or not remaining:
            _fail(out, remaining, "crash", "no result was returned")
            break
        if not _blame(at, out, remaining, proc.returncode, log, limits=limits, labels=labels,
                      timeouts=timeouts, skip_cells=skip_cells):
            break
        remaining = [c for c in remaining if c["key"] not in out.cases]
    out.wall = time.perf_counter() - t_start
    return out


def _fail(out: QuestionRun, cases: list[dict], status: str, error: str) -> None:
    """Give each of ``cases`` a result with ``status`` and ``error`` (it scores zero)."""
    for c in cases:
        out.cases[c["key"]] = CaseRun(c["key"], status, error=error)


def _give_up(out: QuestionRun, remaining: list[dict], bytes_left: int,
             budget_end: float) -> bool:
    """True (and the remaining cases failed) when no further process may start: too many
    restarts, the question's results over their size budget, or its time budget gone."""
    if out.processes > MAX_RESTARTS:
        _fail(out, remaining, "crash", "too many crashes")
    elif bytes_left <= 0:
        _fail(out, remaining, "error", "the question's results exceeded their size budget")
    elif time.monotonic() >= budget_end:
        _fail(out, remaining, "timeout", "the time budget ran out before this case could run")
        out.notes.append("the time budget ran out (slow cells use it up; tag "
                         "experiments as demo cells)")
    else:
        return False
    return True


@dataclass
class _Progress:
    """How far one child got, from its frames: what a hang or a death is blamed on."""

    phase: str = "startup"  # "startup", "cell", "case" or "between" (events)
    key: object = None  # the key of the cell or case it is in
    timed_out: bool = False  # no frame came before the phase's deadline
    budget_out: bool = False  # ... which was the question's (or submission's) time budget
    done: bool = False  # it reported the end of its job


def _read_frames(reader: FrameReader, at: _Progress, out: QuestionRun, *, limits: Limits,
                 budget_end: float, labels: dict, nlines: dict, timeouts: dict,
                 forbid) -> None:
    """Record the child's frames in ``out`` until it is done, goes quiet past a deadline
    (one per cell, per case and between them, and the time budget), dies or misbehaves."""
    phase_end = time.monotonic() + limits.startup_timeout
    while True:
        try:
            frame = reader.read(min(phase_end, budget_end))
        except PayloadError as e:
            out.notes.append(f"sandbox sent a malformed frame ({e})")
            return
        if frame is None:
            at.timed_out = not reader.eof
            at.budget_out = at.timed_out and time.monotonic() >= budget_end
            return
        if not isinstance(frame, dict):
            out.notes.append("sandbox sent a malformed frame (not a dict)")
            return
        kind = frame.get("type")
        if kind == "cell_start":
            at.phase, at.key = "cell", _key(frame.get("key"), int)
            phase_end = time.monotonic() + limits.cell_timeout
        elif kind == "cell_end":
            k = _key(frame.get("key"), int)
            if k in labels:
                out.cells[k] = CellRun(k, labels[k],
                                       brief_error(frame.get("error"), nlines[k], forbid),
                                       _seconds(frame.get("seconds")))
                out.compute += out.cells[k].seconds
            at.phase, at.key = "between", None
            phase_end = time.monotonic() + limits.startup_timeout
        elif kind == "tests_error":
            out.notes.append(f"test code failed to load: {brief_error(frame.get('error'))}")
        elif kind == "case_start":
            k = _key(frame.get("key"), str)
            at.phase, at.key = "case", k
            phase_end = time.monotonic() + float(timeouts.get(k, limits.case_timeout))
        elif kind == "case_end":
            k = _key(frame.get("key"), str)
            if k in timeouts and k not in out.cases:
                status = frame.get("status")
                if status not in ("ok", "not_attempted", "error"):
                    status = "error"
                out.cases[k] = CaseRun(k, status, frame.get("value"),
                                       brief_error(frame.get("error"), forbid=forbid),
                                       _seconds(frame.get("seconds")))
                out.compute += out.cases[k].seconds
            at.phase, at.key = "between", None
            phase_end = time.monotonic() + limits.startup_timeout
        elif kind == "done":
            v = frame.get("violations")
            v = v if isinstance(v, list) else []
            for x in v[:20]:
                b = brief_violation(x, forbid)
                if b and b not in out.violations:
                    out.violations.append(b)
            at.done = True
            return


def _reap(proc: _Child, fd: int, workdir: str | None, out: QuestionRun) -> str:
    """End the child and close its pipe; in process mode also read its log (returned) and
    remove its working directory."""
    try:
        proc.finish()
    except (OSError, RuntimeError, ValueError) as e:
        out.notes.append(f"the sandbox could not be reaped: {e}")
    os.close(fd)
    log = ""
    if workdir:
        try:
            with open(os.path.join(workdir, ".output"), "rb") as f:
                log = f.read(200_000).decode(errors="replace")
        except OSError:
            pass
        shutil.rmtree(workdir, ignore_errors=True)
    return log


def _blame(at: _Progress, out: QuestionRun, remaining: list[dict], returncode: int | None,
           log: str, *, limits: Limits, labels: dict, timeouts: dict,
           skip_cells: dict[int, str]) -> bool:
    """The child hung or died where ``at`` says: skip that cell (for the rest of the
    submission too) or fail that case, and return True so a new child goes on; outside any
    cell or case, fail every remaining case and return False."""
    if at.budget_out:
        what = "the time budget ran out"
    elif at.timed_out:
        what = (f"timed out after {limits.cell_timeout:g} s" if at.phase == "cell"
                else f"timed out after {timeouts.get(at.key, limits.case_timeout):g} s"
                if at.phase == "case" else "timed out")
    else:
        what = _death(returncode, log)
    if at.phase == "cell" and at.key in labels:
        skip_cells[at.key] = what
        out.cells[at.key] = CellRun(at.key, labels[at.key], what)
    elif at.phase == "case" and at.key in timeouts:
        out.cases[at.key] = CaseRun(at.key, "timeout" if at.timed_out else "crash", error=what)
    else:  # startup, tests loading or between events: nothing to skip, give up
        _fail(out, remaining, "crash", f"the sandbox failed: {what}")
        out.notes.append(f"sandbox failed outside any cell or case: {what}")
        return False
    return True


def _key(value, kind: type):
    """A cell (int) or case (str) key from the sandbox, or None if it is anything else."""
    return value if type(value) is kind else None


def _seconds(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if 0.0 <= v < 1e6 else 0.0
