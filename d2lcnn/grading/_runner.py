"""The sandbox child: runs one submission's cells, then one question's probes.

Started by :mod:`d2lcnn.grading.sandbox` as ``python -I -m d2lcnn.grading._runner FD`` in a
fresh temporary directory. Reads its job (JSON) from stdin, closes stdin, lowers its resource
limits, installs an audit hook (which cannot be removed), runs the cells and the probes, and
streams one frame per event to the pipe FD. It never computes a score: the parent does.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback

import numpy as np

from d2lcnn.grading import checks
from d2lcnn.grading.api import Namespace, Registry
from d2lcnn.grading.isolation import (
    SCRATCH,
    drop_root,
    enter_question,
    enter_user_namespace,
    set_dumpable,
)
from d2lcnn.grading.payload import JOB_LIMITS, PayloadError, pack, unpack, write_frame

# Audit events refused whatever the assignment: new processes, signals to other processes,
# sockets, raw memory through ctypes (numpy has already imported it), and heap walking.
BLOCKED_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
    "socket.__new__", "socket.socket",
    "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
    "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.PyObj_FromPtr", "ctypes.string_at",
    "ctypes.wstring_at", "ctypes.addressof",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
    "resource.setrlimit", "resource.prlimit", "os.setuid", "os.setgid",
    "sys.remote_exec", "webbrowser.open",
})
# Events that change the file system at path args[0] (and args[1] for rename/link/symlink).
FS_EVENTS = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1,
             "os.utime": 1, "os.truncate": 1, "os.chflags": 1, "os.lchmod": 1,
             "shutil.rmtree": 1, "os.rename": 2, "os.link": 2, "os.symlink": 2,
             "shutil.move": 2, "shutil.copyfile": 2, "os.mkfifo": 1, "os.mknod": 1}
# _posixsubprocess.fork_exec starts processes without an audit event: it is imported (torch
# needs the import to work) and disabled before the hook, and re-importing it is refused.
ALWAYS_FORBIDDEN = ("_posixsubprocess", "_xxsubinterpreters", "_interpreters")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxViolation(PermissionError):
    """Raised inside student code when it tries something the sandbox forbids."""


def _path(p) -> str | None:
    if isinstance(p, int):
        return None
    try:
        return os.path.realpath(os.fsdecode(os.fspath(p)))
    except (TypeError, ValueError):
        return None


def _under(path: str, roots) -> bool:
    """``path`` is one of ``roots`` or inside one (a root ending in ``*`` is a raw prefix)."""
    return any(path.startswith(r[:-1]) if r.endswith("*") else
               path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _disable_fork_exec() -> None:
    # imported here, to be disabled: kept out of the globals of the child's __main__ (this)
    import _posixsubprocess
    import subprocess

    def fork_exec(*args, **kwargs):
        raise SandboxViolation("starting processes is not allowed in the grader")

    _posixsubprocess.fork_exec = fork_exec
    subprocess._fork_exec = fork_exec


def install_hook(*, forbid, deny_read, workdir, violations):
    """Install the audit hook; ``forbid`` are module prefixes, ``deny_read`` paths."""
    _disable_fork_exec()
    forbid = tuple(forbid) + ALWAYS_FORBIDDEN
    writable = (os.path.realpath(workdir), "/dev/null")
    if os.path.realpath(workdir) == SCRATCH:  # bwrap: the scratch space, also bound on /tmp
        try:
            if os.stat("/tmp").st_dev == os.stat(SCRATCH).st_dev:
                writable += ("/tmp",)
        except OSError:
            pass
    deny = tuple(p if p.endswith("*") else os.path.realpath(p) for p in deny_read) + (
        f"/proc/{os.getppid()}",)

    def refuse(msg, exc=SandboxViolation):
        if len(violations) < 20:
            violations.append(msg)
        raise exc(msg)

    def hook(event, args):
        if event == "import":
            name = args[0]
            if any(name == f or name.startswith(f + ".") for f in forbid):
                refuse(f"import of {name} is not allowed in this assignment", ImportError)
        elif event == "open":
            path = _path(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writes and not _under(path, writable):
                refuse(f"writing outside the working directory is not allowed ({path})")
            if _under(path, deny):
                refuse(f"reading {path} is not allowed")
        elif event == "ctypes.dlopen":
            # Installed libraries may be loaded (torch does on import); a library the
            # submission wrote could run native code from its constructor.
            name = args[0]
            if not isinstance(name, str) or ("/" in name and _under(
                    os.path.realpath(name), writable + (os.path.realpath("."),))):
                refuse(f"loading the library {name!r} is not allowed")
        elif event in BLOCKED_EVENTS:
            refuse(f"{event} is not allowed in the grader")
        elif event in FS_EVENTS:
            for p in args[:FS_EVENTS[event]]:
                path = _path(p)
                if path is not None and not _under(path, writable):
                    refuse(f"{event} outside the working directory is not allowed ({path})")

    sys.addaudithook(hook)


def set_limits(limits: dict) -> None:
    mb = 2**20
    for res, value in [(resource.RLIMIT_AS, limits["memory_mb"] * mb),
                       (resource.RLIMIT_FSIZE, limits["output_kb"] * 1024),
                       (resource.RLIMIT_CORE, 0),
                       (resource.RLIMIT_NPROC, 0)]:
        resource.setrlimit(res, (value, value))
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # Beyond the output cap, writes fail with OSError instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def scrub_forbidden(forbid) -> None:
    """Drop loaded forbidden modules, and what their parent packages re-export from them.

    After ``preload=["d2lcnn.numpy"]`` with ``forbid=["d2lcnn.numpy.optim"]``, both
    ``import d2lcnn.numpy.optim`` and ``from d2lcnn.numpy import SGD`` must fail. Other
    modules that imported names from a forbidden module keep them (documented).
    """

    def bad(name) -> bool:
        return isinstance(name, str) and any(name == f or name.startswith(f + ".")
                                             for f in forbid)

    parents = {f.rsplit(".", i)[0] for f in forbid for i in range(1, f.count(".") + 1)}
    for name in list(sys.modules):
        if bad(name):
            del sys.modules[name]
    for name in parents:
        mod = sys.modules.get(name)
        if mod is None:
            continue
        removed = {}
        for key, value in list(vars(mod).items()):
            owner = value.__name__ if isinstance(value, type(sys)) else getattr(
                value, "__module__", None)
            if bad(owner):
                removed[key] = owner
                delattr(mod, key)
        if removed:  # say why, instead of Python's bare "cannot import name"
            mod.__getattr__ = _refuse_removed(name, removed, vars(mod).get("__getattr__"))


def _refuse_removed(module: str, removed: dict, previous):
    """A module ``__getattr__`` (PEP 562) naming the forbidden module a name came from.

    ``from pkg import name`` propagates an ImportError raised here (only AttributeError
    makes Python go on looking for a submodule), so the student's note says why.
    """

    def __getattr__(attr):
        if attr in removed:
            raise ImportError(f"{module}.{attr} comes from {removed[attr]}, which this "
                              "assignment forbids")
        if previous is not None:
            return previous(attr)
        raise AttributeError(f"module {module!r} has no attribute {attr!r}")

    return __getattr__


class _Stub:
    """Stands in for ``check``/``submit``/``grader``: callable, any attribute, does nothing."""

    def __call__(self, *args, **kwargs):
        return None

    def __getattr__(self, name):
        return self


def describe(exc: BaseException, filename: str | None = None) -> str:
    """``Type: message (line N)`` — short, no file paths of the grader."""
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    msg = (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:400]
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
    for fr, lineno in traceback.walk_tb(exc.__traceback__):
        if fr.f_code.co_filename == filename:
            line = lineno
    return f"{msg} (line {line})" if line else msg


def main(fd: int, job: dict) -> None:
    """Run ``job`` (cells, tests, cases, limits), streaming frames to ``fd``."""
    violations: list[str] = []
    preload_errors = []
    for name in job.get("preload", []):
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - reported; the cells will fail visibly
            preload_errors.append(f"preload {name}: {type(e).__name__}: {e}")
    set_limits(job["limits"])
    scrub_forbidden(job["forbid"])
    if job.get("audit_hook", True):
        install_hook(forbid=job["forbid"], deny_read=job["deny_read"], workdir=os.getcwd(),
                     violations=violations)

    student: dict = {"__name__": "__main__", "__builtins__": builtins}
    for stub in job["stubs"]:
        student[stub] = _Stub()
    for cell in job["cells"]:
        write_frame(fd, {"type": "cell_start", "key": cell["key"]})
        filename = f"<{cell['label']}>"
        t0 = time.perf_counter()
        error = None
        try:
            exec(compile(cell["source"], filename, "exec"), student)
        except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt too
            error = describe(e, filename)
        write_frame(fd, {"type": "cell_end", "key": cell["key"], "error": error,
                         "seconds": time.perf_counter() - t0})

    registry = Registry()
    scope = {"case": registry.case, "np": np, "checks": checks, "__builtins__": builtins,
             "settings": lambda **kwargs: None, "__name__": "tests"}
    for i, tests in enumerate(job.pop("tests")):
        try:
            exec(compile(tests, f"<tests {i}>", "exec"), scope)
        except BaseException as e:  # noqa: BLE001
            write_frame(fd, {"type": "tests_error", "error": describe(e)})

    ns = Namespace(student)
    for c in job["cases"]:
        write_frame(fd, {"type": "case_start", "key": c["key"]})
        probe = registry.cases.get(c["key"])
        t0 = time.perf_counter()
        value, error, status = None, None, "ok"
        try:
            if probe is None:
                raise LookupError("the test case could not be loaded")
            rng = np.random.default_rng(c["seed"])
            value = (probe.probe(ns, rng, c["inputs"]) if "inputs" in c
                     else probe.probe(ns, rng))
            pack({"type": "case_end", "key": c["key"], "status": status, "error": None,
                  "value": value, "seconds": 0.0})  # plain data within the caps, or raise
        except NotImplementedError:
            status = "not_attempted"
        except PayloadError as e:
            status, error = "error", f"returned something that is not plain data: {e}"
            value = None
        except BaseException as e:  # noqa: BLE001
            status, error = "error", describe(e, None)
        write_frame(fd, {"type": "case_end", "key": c["key"], "status": status, "error": error,
                         "value": value, "seconds": time.perf_counter() - t0})
    write_frame(fd, {"type": "done", "violations": violations + preload_errors})


def _exit_quietly() -> None:
    """Skip interpreter shutdown: no atexit handlers or finalizers of student code."""
    try:
        sys.stdout.flush()
    finally:
        os._exit(0)


def _recv_request(sock, pending: list[int]) -> tuple[dict, bytes] | None:
    """One request from the grader: a JSON line (with file descriptors attached) and
    ``size`` bytes of body. ``None`` when the grader went away."""
    import socket  # here: kept out of the globals of the sandbox child's __main__ (this)

    line = b""
    while not line.endswith(b"\n"):
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
        pending += fds
        if not msg:
            return None
        line += msg
        # the line and the start of the body can arrive together
        if b"\n" in line and not line.endswith(b"\n"):
            line, rest = line.split(b"\n", 1)
            line += b"\n"
            break
    else:
        rest = b""
    req = json.loads(line)
    body = bytearray(rest)
    while len(body) < req.get("size", 0):
        chunk = sock.recv(min(1 << 20, req["size"] - len(body)))
        if not chunk:
            return None
        body += chunk
    return req, bytes(body)


def _question_child(sock, w: int, req: dict, body: bytes, scratch) -> None:
    """In the fork server's child: isolate, then run the job (never returns)."""
    try:
        sock.close()
        if scratch is not None:  # bwrap: own namespaces, private /proc and /tmp
            enter_question(tmp_mb=int(scratch[0]), tmp_files=int(scratch[1]),
                           tmp_too=bool(scratch[2]))
        else:
            os.setsid()
            os.chdir(req["workdir"])
        out = os.open(".output", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd in (out, null):
            os.close(fd)
        os.closerange(3, w)
        os.closerange(w + 1, 1 << 16)
        job = unpack(body, limits=JOB_LIMITS)
        del body
        os.environ.clear()
        os.environ.update(job.pop("env", {}))
        main(w, job)
    finally:
        _exit_quietly()


def zygote(sock_fd: int, scratch=None) -> None:
    """Fork server: pre-imported modules, then one forked sandbox child per request.

    Requests arrive on the UNIX socket ``sock_fd`` as a JSON line (see
    :class:`d2lcnn.grading.sandbox.ForkServer`): ``{"op": "fork", "size", "workdir"}``
    followed by the packed job, with the write end of the result pipe attached
    (SCM_RIGHTS), answered ``{"pid"}``; ``{"op": "finish", "pid"}`` kills that child and
    answers ``{"status"}`` (exit code, or -signal). With ``scratch`` (bwrap isolation) the
    child enters its own namespaces (:func:`d2lcnn.grading.isolation.enter_question`);
    otherwise it starts a new session in the grader-made ``workdir``.
    """
    import socket  # here: kept out of the globals of the sandbox child's __main__ (this)

    sock = socket.socket(fileno=sock_fd)
    pending: list[int] = []
    children: set[int] = set()
    while True:
        got = _recv_request(sock, pending)
        if got is None:
            os._exit(0)  # the grader went away
        req, body = got
        if req["op"] == "fork":
            w = pending.pop(0)
            for fd in pending:
                os.close(fd)
            pending.clear()
            pid = os.fork()
            if pid == 0:
                _question_child(sock, w, req, body, scratch)
            os.close(w)
            children.add(pid)
            sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        elif req["op"] == "finish":
            pid = req["pid"]
            code = None
            if pid in children:
                children.discard(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
            sock.sendall(json.dumps({"status": code}).encode() + b"\n")


def _preload(names) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S110 - the child reports it again
            pass
    if "torch" in sys.modules:  # no thread pools: a sandboxed question may not start threads
        try:
            sys.modules["torch"].set_num_threads(1)
            sys.modules["torch"].set_num_interop_threads(1)
        except RuntimeError:
            pass


if __name__ == "__main__":
    sys.dont_write_bytecode = True  # the sandbox never writes next to installed modules
    try:
        if "--bwrap" in sys.argv:
            drop_root()  # first: nothing runs as root in the sandbox
            enter_user_namespace()  # then a user namespace mapping only that user
        _preload(json.loads(sys.argv[3]))
        if "--bwrap" in sys.argv:
            set_dumpable(False)  # its questions cannot read or ptrace it
            zygote(int(sys.argv[2]), json.loads(sys.argv[sys.argv.index("--bwrap") + 1]))
        else:
            zygote(int(sys.argv[2]))
    finally:
        _exit_quietly()
