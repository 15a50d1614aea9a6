"""Operating-system isolation of the grading sandbox (Linux): bubblewrap plus namespaces.

Two layers, both set up by trusted code before any student code runs:

1. **Per submission**, :class:`BwrapView` builds a ``bwrap`` command that starts the fork
   server (``python -I -m d2lcnn.grading._runner --bwrap-zygote``) in new PID, IPC, UTS,
   network and mount namespaces (and a new user namespace when the grader is not root),
   with ``--die-with-parent`` and ``--new-session``. Its file system is a read-only view of
   what the Python environment needs and nothing else: ``/usr`` (and the ``/bin``,
   ``/lib*`` links), ``/etc/ld.so.cache``, the interpreter's prefixes (the virtual
   environment, the base installation) and the ``d2lcnn`` package. The checkout, the
   bundle (solution, expected values, hidden tests' home), the output folder and the other
   submissions are not mounted at all. Every FORBIDDEN module is replaced in that view by a
   stub that raises ImportError (a package by a stub package, a module by a stub file, its
   cached bytecode by an empty file), so its code and data are absent, not hidden. When the
   grader runs as root, bwrap cannot map the sandbox to an unprivileged user through a user
   namespace, so it runs privileged and the fork server drops to ``nobody`` (uid/gid 65534)
   as its first act, then enters a user namespace of its own that maps only that user;
   either way every sandboxed process runs as a non-root user of the host, so RLIMIT_NPROC
   binds.

2. **Per question**, the fork server's child calls :func:`enter_question` which unshares a
   further user, PID, mount and IPC namespace and forks the process that runs the question
   as PID 1 of its own PID namespace: it covers ``/proc`` with an empty file system (it
   sees no other process, not even the fork server), mounts a private ``/sandbox`` (tmpfs
   capped in bytes AND in files; also bound on ``/tmp`` unless the environment itself
   lives under ``/tmp``), drops every capability, sets ``no_new_privs``, a seccomp
   filter (no ptrace, System V IPC, keyrings, BPF, io_uring, mounts or namespaces; x86_64)
   and RLIMIT_NPROC = 0 (no process or thread can be started). When the question ends the
   grader has it killed; the PID namespace dies with its init, so nothing outlives a
   question.

:func:`bwrap_status` says whether this machine can do all that (bwrap installed, namespaces
allowed) by running a tiny sandbox once; ``grade`` refuses to grade without it unless
``--isolation process`` is given.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import d2lcnn

__all__ = ["NOBODY", "BwrapView", "bwrap_status", "forbidden_locations", "enter_question",
           "enter_user_namespace", "drop_root", "set_dumpable", "seccomp_program", "INSTALL_HINT"]

NOBODY = 65534
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; "
                "Fedora: sudo dnf install bubblewrap) on a Linux machine whose kernel allows "
                "user namespaces, or pass --isolation process to grade trusted submissions "
                "without OS isolation")

# Linux constants (uapi), for the namespace calls Python 3.11 has no wrapper for.
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x20000, 0x8000000, 0x10000000, \
    0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 1, 2, 4, 8, 4096
SCRATCH = "/sandbox"  # a question's private scratch space (and its cwd, HOME and TMPDIR)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 4, 38, 24
_CAP_VERSION_3 = 0x20080522


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


# --- inside the sandbox ------------------------------------------------------------------


def drop_root() -> None:
    """If running as root (bwrap run privileged by a root grader), become ``nobody``."""
    if os.getuid() == 0 or os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)  # drops every capability too
        if os.getuid() == 0 or os.geteuid() == 0:
            raise OSError("could not drop root privileges")


def enter_user_namespace() -> None:
    """Move this process into a new user namespace that maps only its own (unprivileged)
    uid and gid; the fork server does, so that it too lives in a namespace of its own even
    when bwrap ran privileged (its questions nest theirs inside it). The process must be
    single-threaded (the kernel's rule): call it before importing anything that starts
    threads."""
    _unshare_as_self(0)
    set_dumpable(False)


def _unshare_as_self(flags: int):
    """unshare(CLONE_NEWUSER | flags), the new user namespace mapping only our own uid and
    gid (the only mapping an unprivileged process may write); returns libc."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    set_dumpable(True)  # our own /proc/self/*_map must be writable by us
    _check(libc.unshare(CLONE_NEWUSER | flags), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    return libc


def set_dumpable(flag: bool) -> None:
    """A non-dumpable process cannot be ptraced or have its memory read by its own user."""
    _check(_libc().prctl(PR_SET_DUMPABLE, int(flag), 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _drop_capabilities(libc) -> None:
    for cap in range(64):  # the bounding set first (needs CAP_SETPCAP, which we still have)
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


# System calls a question never needs and an attacker would (x86_64 numbers): another
# process's memory, System V IPC (its segments hold memory outside RLIMIT_AS), kernel
# keyrings, BPF, perf, userfaultfd, io_uring, mounts and namespaces, modules, handles.
_DENIED_X86_64 = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
    "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66,
    "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71,
    "mq_open": 240, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "mount": 165, "umount2": 166,
    "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsmount": 432, "kexec_load": 246,
    "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "name_to_handle_at": 303, "open_by_handle_at": 304,
}
_AUDIT_ARCH_X86_64 = 0xC000003E


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(denied: dict[str, int] = _DENIED_X86_64,
                    arch: int = _AUDIT_ARCH_X86_64) -> list[tuple[int, int, int, int]]:
    """A classic-BPF seccomp filter: ``denied`` system calls (and the x32 ABI) fail with
    EPERM on ``arch``; everything else, and any other architecture, is allowed."""
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, ..JGE.., RET|K
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    nrs = sorted(set(denied.values()))
    n = len(nrs)
    prog = [(ld, 0, 0, 4),  # seccomp_data.arch
            (jeq, 0, n + 2, arch),  # another architecture: allow
            (ld, 0, 0, 0),  # seccomp_data.nr
            (jge, n + 1, 0, 0x40000000)]  # x32 system calls: deny
    prog += [(jeq, n - i, 0, nr) for i, nr in enumerate(nrs)]  # -> deny
    prog += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    return prog


def _install_seccomp(libc) -> None:
    if platform.machine() not in ("x86_64", "AMD64"):
        return  # the numbers above are x86_64's; elsewhere the other layers hold alone
    prog = seccomp_program()
    filt = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), filt)
    _check(libc.prctl(22, 2, ctypes.byref(fprog), 0, 0),  # PR_SET_SECCOMP, MODE_FILTER
           "prctl(PR_SET_SECCOMP)")


def enter_question(*, tmp_mb: int, tmp_files: int, tmp_too: bool = True) -> None:
    """Called in a fresh child of the fork server: returns in the process that runs the
    question, PID 1 of new user/PID/mount/IPC namespaces with an empty /proc, a private
    scratch space at SCRATCH (and on /tmp if ``tmp_too``) and no capabilities. The
    intermediate process waits for it and exits with its status (a signal is re-raised), so
    the fork server's ``waitpid`` sees how the question ended."""
    libc = _unshare_as_self(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC)
    pid = os.fork()  # the child is PID 1 of the new PID namespace
    if pid:
        set_dumpable(False)  # (before the fork, it makes the fork fail with ENOMEM)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    # Mounts made here stay private to this question's mount namespace.
    _check(libc.mount(b"none", b"/", None, 0x40000 | 0x4000, None),  # MS_PRIVATE|MS_REC
           "mount --make-rprivate /")
    # An empty, read-only /proc: no path to any other process (the sandbox's /proc has
    # locked submounts, so the kernel refuses a new proc mount in this user namespace).
    _check(libc.mount(b"tmpfs", b"/proc", b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV
                      | MS_NOEXEC, b"size=4k,nr_inodes=1,mode=0555"), "mount /proc")
    opts = f"size={tmp_mb}m,nr_inodes={tmp_files},mode=0700".encode()
    _check(libc.mount(b"tmpfs", SCRATCH.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts),
           f"mount {SCRATCH}")
    if tmp_too:  # /tmp is the same scratch space, unless the environment lives under /tmp
        _check(libc.mount(SCRATCH.encode(), b"/tmp", None, MS_BIND, None), "bind /tmp")
    _drop_capabilities(libc)
    _install_seccomp(libc)
    set_dumpable(False)
    for res, value in [(resource.RLIMIT_NOFILE, 256), (resource.RLIMIT_MSGQUEUE, 0),
                       (resource.RLIMIT_MEMLOCK, 0)]:
        resource.setrlimit(res, (value, value))
    os.chdir(SCRATCH)


# --- in the grader -----------------------------------------------------------------------


def forbidden_locations(forbid) -> list[tuple[str, str, str]]:
    """``(name, kind, path)`` of every file system location holding a forbidden module.

    ``kind`` is ``"package"`` (a directory), ``"module"`` (a source or extension file) or
    ``"bytecode"`` (a cached ``.pyc`` of a forbidden module). Found in the grader with
    ``importlib.util.find_spec`` (finding ``a.b`` imports the package ``a`` HERE, never in
    the sandbox).
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
            out += [(name, "package", os.path.realpath(p))
                    for p in spec.submodule_search_locations if os.path.isdir(p)]
        elif spec.origin and os.path.isfile(spec.origin):
            origin = os.path.realpath(spec.origin)
            out.append((name, "module", origin))
            cache = Path(origin).parent / "__pycache__"
            stem = Path(origin).name.split(".")[0]
            if cache.is_dir():
                out += [(name, "bytecode", str(p)) for p in sorted(cache.glob(f"{stem}.*.pyc"))]
    return out


def _stub_source(name: str) -> str:
    return (f"raise ImportError({name!r} ' is not available in the grader of this assignment '"
            f"'(it is forbidden), so it cannot be imported or read')\n")


class BwrapView:
    """The bwrap command line of one assignment's sandbox (read-only view, stubs).

    Stub files live in a private staging folder made here and removed by :meth:`close`.
    """

    def __init__(self, forbid=()):
        self.forbid = tuple(forbid)
        self._staging = tempfile.mkdtemp(prefix="d2lcnn-bwrap-")
        os.chmod(self._staging, 0o755)
        self._write("empty", "")
        self.args = self._build()
        # Where the environment itself lives under /tmp (a CI checkout, say), a question's
        # /tmp cannot be its scratch space: it stays read-only and TMPDIR points to SCRATCH.
        self.tmp_free = not any(r == "/tmp" or r.startswith("/tmp/") for r in self.roots())

    def _write(self, rel: str, text: str) -> str:
        path = os.path.join(self._staging, rel)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def _stub(self, name: str, kind: str) -> str:
        """A staged stand-in for a forbidden module: raises ImportError naming it."""
        if kind == "bytecode":
            return os.path.join(self._staging, "empty")
        if kind == "package":
            return os.path.dirname(self._write(f"{name}/__init__.py", _stub_source(name)))
        return self._write(f"{name}.py", _stub_source(name))

    def close(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)

    @staticmethod
    def roots() -> list[str]:
        """Host folders mounted read-only: the interpreter's prefixes and d2lcnn itself."""
        paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                 os.path.dirname(os.path.realpath(sys.executable)),
                 os.path.dirname(os.path.realpath(d2lcnn.__file__))}
        real = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})
        # keep only outermost folders (a venv inside the base prefix, say)
        return [p for p in real if not any(p != q and p.startswith(q + "/") for q in real)]

    def _build(self) -> list[str]:
        args: list[str] = []
        made: set[str] = {"/"}

        def parents(dest: str) -> None:
            # bwrap would copy the HOST permissions of missing parents (a 0700 /root would
            # lock the sandbox's user out of an interpreter installed under it).
            parts = Path(dest).parts[1:-1]
            for i in range(len(parts)):
                d = "/" + "/".join(parts[: i + 1])
                if d not in made:
                    made.add(d)
                    args.extend(["--perms", "0755", "--dir", d])

        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            p = "/" + top
            if os.path.islink(p):
                args += ["--symlink", os.readlink(p), p]
            elif os.path.isdir(p):
                args += ["--ro-bind", p, p]
        args += ["--ro-bind", "/usr", "/usr"]
        made.add("/usr")
        for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
            if os.path.exists(f):
                parents(f)
                args += ["--ro-bind", f, f]
        for root in self.roots():
            if root == "/usr" or root.startswith("/usr/"):
                continue
            parents(root + "/x")
            args += ["--ro-bind", root, root]
            made.add(root)
        for name, kind, path in forbidden_locations(self.forbid):
            args += ["--ro-bind", self._stub(name, kind), path]
        args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
                 "--perms", "0755", "--dir", "/tmp", "--perms", "0755", "--dir", SCRATCH,
                 "--remount-ro", "/", "--chdir", SCRATCH,
                 "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--hostname", "sandbox",
                 "--die-with-parent", "--new-session"]
        if os.geteuid() == 0:
            # bwrap maps a new user namespace to the CALLER (root), where RLIMIT_NPROC does
            # not bind; so it runs privileged and the fork server drops to nobody at once.
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user"]
        return args

    def command(self, argv: list[str]) -> list[str]:
        return [shutil.which("bwrap") or "bwrap", *self.args, "--", *argv]


@functools.cache
def bwrap_status() -> tuple[bool, str]:
    """``(True, "")`` if bubblewrap sandboxes work here, else ``(False, why + how to fix)``."""
    if not sys.platform.startswith("linux"):
        return False, f"OS isolation needs Linux (this is {sys.platform}); " + INSTALL_HINT
    if shutil.which("bwrap") is None:
        return False, "bwrap (bubblewrap) is not installed; " + INSTALL_HINT
    view = BwrapView()
    try:
        probe = ("from d2lcnn.grading import isolation as i; i.drop_root(); "
                 "i.enter_user_namespace(); "
                 "import os, sys; pid = os.fork()\n"
                 "if pid == 0:\n"
                 "    i.enter_question(tmp_mb=1, tmp_files=16, tmp_too=False)\n"
                 "    open('x', 'w')\n"
                 "    print(os.getpid(), os.getuid() != 0, os.listdir('/proc') == [])\n"
                 "    sys.stdout.flush(); os._exit(0)\n"
                 "os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))")
        proc = subprocess.run(view.command([sys.executable, "-I", "-c", probe]),
                              capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                                   "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"bwrap failed to start ({e}); " + INSTALL_HINT
    finally:
        view.close()
    if proc.returncode != 0 or proc.stdout.split() != ["1", "True", "True"]:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return False, f"bwrap cannot create the sandbox here ({why[:300]}); " + INSTALL_HINT
    return True, ""
