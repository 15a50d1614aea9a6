"""Hostile submissions, one attack class at a time, through the real sandbox.

Two kinds of test:

* **The OS layer alone** (``audit_hook=False``): each attack runs in a bwrap sandbox with the
  Python audit hook switched off, as if the student had already got past it, and reports
  what it could reach by raising ``RuntimeError(report)``; the report is asserted.
* **End to end**: attacker notebooks graded in one batch, two at a time, next to honest
  submissions ("victims"), with the EXACT scores each must get.
"""

import copy
import csv
import json
import os
import resource
import socket
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from grading_support import FAST, HW1, ISOLATION, needs_bwrap

import d2lcnn
from d2lcnn.grading.authoring import assign
from d2lcnn.grading.grade import grade_batch
from d2lcnn.grading.isolation import BwrapView
from d2lcnn.grading.sandbox import ForkServer, Limits, run_question

FULL = {"q1": 5, "q2": 8, "q3": 9, "q4": 8, "q5": 6}
ZERO = dict.fromkeys(FULL, 0)
PKG = Path(d2lcnn.__file__).resolve().parent
FORBID = ["d2lcnn.numpy.optim", "torch"]
PRELOAD = ("d2lcnn.numpy",)
MARK = "77.4242"  # argument of the processes the attacks try to leave behind


def _report(run, i):
    """What cell ``i`` raised as ``RuntimeError(report)``, handed back by the probe (the
    grader's notes carry only an exception's type and line, see ``brief_error``)."""
    reports = run.cases["q1/reports"].value
    assert str(i) in reports, (run.cells[i + 1].error, reports)  # cell 0 makes REPORTS
    return reports[str(i)]


def _reporting(i: int, source: str) -> str:
    body = "\n".join("    " + line for line in source.split("\n"))
    return (f"try:\n{body}\nexcept RuntimeError as e:\n"
            f"    REPORTS[{str(i)!r}] = str(e)\n")


def _os_layer(cells, *, limits=None):
    """Run ``cells`` in one bwrap sandbox with the audit hook OFF; the question's run."""
    view = BwrapView(FORBID)
    server = ForkServer(PRELOAD, isolation="bwrap", view=view, scratch=(8, 200))
    limits = limits or Limits(preload=PRELOAD, memory_mb=1536, cell_timeout=20,
                              audit_hook=False, scratch_mb=8, scratch_files=200)
    cells = ["REPORTS = {}"] + [_reporting(i, s) for i, s in enumerate(cells)]
    cells = [{"key": i, "label": f"cell {i + 1}", "source": s} for i, s in enumerate(cells)]
    tests = ["@case('q1', 'reports')\ndef _(ns, rng):\n    return ns.REPORTS\n"]
    try:
        return run_question(cells, tests, [{"key": "q1/reports", "seed": 0, "timeout": 5.0}],
                            limits=limits, forbid=FORBID, deny_read=[], stubs=[],
                            skip_cells={}, launcher=lambda: server)
    finally:
        server.close()
        view.close()


def _leftovers() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if MARK in line and "ps -eo" not in line]


# --- the OS layer on its own --------------------------------------------------------------


@needs_bwrap
def test_no_process_or_thread_can_be_started_and_none_outlives_the_question():
    cells = [
        # fork, a shell, a thread: all need a new task, and RLIMIT_NPROC = 0 binds
        "import os, subprocess, threading\nout = []\n"
        "for name, f in [('fork', os.fork),\n"
        f"                ('popen', lambda: subprocess.Popen(['/usr/bin/sleep', '{MARK}'])),\n"
        "                ('thread', lambda: threading.Thread(target=int).start())]:\n"
        "    try:\n        f()\n        out.append(name + ' ok')\n"
        "    except (OSError, RuntimeError) as e:\n        out.append(name + ' refused')\n"
        "raise RuntimeError(' '.join(out))",
        # a user namespace of its own gives capabilities there, still no new process
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.unshare(0x10000000)\n"  # refused by seccomp (and fork by RLIMIT_NPROC)
        "try:\n    os.fork()\n    forked = 'forked'\nexcept OSError:\n    forked = 'refused'\n"
        "raise RuntimeError(f'unshare={r} fork={forked}')",
    ]
    run = _os_layer(cells)
    assert _report(run, 0) == "fork refused popen refused thread refused"
    assert _report(run, 1) == "unshare=-1 fork=refused"
    assert _leftovers() == []


def test_the_seccomp_program_denies_exactly_its_list():
    """Run the classic-BPF program on made-up seccomp_data (an interpreter in 15 lines)."""
    from d2lcnn.grading.isolation import _AUDIT_ARCH_X86_64, _DENIED_X86_64, seccomp_program

    prog = seccomp_program()

    def run(nr, arch=_AUDIT_ARCH_X86_64):
        data, acc, pc = {0: nr, 4: arch}, 0, 0
        while True:
            code, jt, jf, k = prog[pc]
            if code == 0x20:
                acc = data[k]
            elif code == 0x06:
                return "allow" if k == 0x7FFF0000 else "deny"
            else:
                taken = acc == k if code == 0x15 else acc >= k
                pc += jt if taken else jf
            pc += 1

    denied = set(_DENIED_X86_64.values())
    assert {nr for nr in range(600) if run(nr) == "deny"} == denied
    assert run(0x40000000 + 1) == "deny"  # the x32 ABI cannot go around the list
    assert run(101, arch=0xC00000B7) == "allow"  # other architectures are not filtered
    assert {0, 1, 2, 3, 9, 11, 12, 56, 57, 60, 231, 257, 318} & denied == set()  # read, ...


@needs_bwrap
def test_it_runs_as_an_unprivileged_user_without_capabilities():
    root = os.geteuid() == 0  # a root grader's sandboxes run as nobody
    uid, gid = (65534, 65534) if root else (os.getuid(), os.getgid())
    cells = [
        "import os, ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "try:\n    os.setuid(0)\n    su = 'root'\nexcept OSError:\n    su = 'refused'\n"
        "chown = libc.chown(b'/tmp', 0, 0)\n"
        "raise RuntimeError(f'uid={os.getuid()} gid={os.getgid()} setuid0={su} '\n"
        "                   f'chown={chown}')",
    ]
    assert _report(_os_layer(cells), 0) == f"uid={uid} gid={gid} setuid0=refused chown=-1"


@needs_bwrap
def test_it_sees_and_signals_no_other_process():
    me = os.getpid()
    cells = [
        "import os, signal\nseen = []\n"
        "for pid in range(1, 5000):\n"
        "    try:\n        fd = os.pidfd_open(pid)\n    except OSError:\n        continue\n"
        "    seen.append(pid)\n"
        "    if pid != os.getpid():\n        signal.pidfd_send_signal(fd, signal.SIGKILL)\n"
        "try:\n    os.kill(-1, signal.SIGKILL)\n    all_ = 'sent'\nexcept OSError as e:\n"
        "    all_ = e.strerror\n"
        f"try:\n    os.kill({me}, 0)\n    grader = 'reachable'\nexcept OSError:\n"
        "    grader = 'unreachable'\n"
        "raise RuntimeError(f'pids={seen} me={os.getpid()} parent={os.getppid()} '\n"
        "                   f'proc={os.listdir(\"/proc\")} grader={grader}')",
        # ptrace by pid: there is nobody to attach to (the grader's pid means nothing here)
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"r = libc.ptrace(16, {me}, 0, 0)\n"
        "raise RuntimeError(f'ptrace={r} errno={ctypes.get_errno()}')",
    ]
    run = _os_layer(cells)
    assert _report(run, 0) == "pids=[1] me=1 parent=0 proc=[] grader=unreachable"
    assert _report(run, 1) == "ptrace=-1 errno=1"  # EPERM: seccomp refuses ptrace itself


@needs_bwrap
def test_files_outside_the_environment_do_not_exist_and_nothing_is_writable(tmp_path):
    secret = tmp_path / "bundle" / "expected.npz"
    secret.parent.mkdir()
    secret.write_bytes(b"the answers")
    repo = PKG.parent
    paths = [str(secret), str(secret.parent), str(HW1), str(repo / "README.md"),
             str(repo / "notebooks"), str(repo / "tests"), "/root/.bash_history",
             "/etc/passwd", "/etc/shadow", "/home", "/var", "/run", "/sys", "/work/.library",
             str(Path.home() / ".ssh")]
    cells = [
        f"import os\npaths = {paths!r}\n"
        "seen = [p for p in paths if os.path.lexists(p)]\n"
        # descriptor-relative and /proc routes to the same places
        "root = os.open('/', os.O_RDONLY)\n"
        "for p in paths:\n"
        "    try:\n        os.close(os.open(p.lstrip('/'), os.O_RDONLY, dir_fd=root))\n"
        "        seen.append('dirfd:' + p)\n    except OSError:\n        pass\n"
        "for via in ['/proc/self/root', '/proc/1/root', '/proc/self/cwd', '/dev/fd']:\n"
        "    if os.path.exists(via):\n        seen.append(via)\n"
        "raise RuntimeError(f'seen={seen}')",
        f"import os, sys\nwrote = []\n"
        f"for d in ['/', '/usr', '/etc', {str(PKG)!r}, os.path.dirname(os.__file__),\n"
        "          sys.prefix, '/dev', '/dev/shm', '/proc']:\n"
        "    try:\n        open(os.path.join(d, 'x'), 'w').close()\n        wrote.append(d)\n"
        "    except OSError:\n        pass\n"
        "raise RuntimeError(f'wrote={wrote} cwd={os.getcwd()}')",
    ]
    run = _os_layer(cells)
    assert _report(run, 0) == "seen=[]"
    assert _report(run, 1) == "wrote=[] cwd=/sandbox"


@needs_bwrap
def test_memory_outside_the_address_space_limit_is_refused():
    """System V segments and message queues keep pages after detaching (outside RLIMIT_AS);
    a process may hold only 256 files (socket buffers)."""
    cells = [
        "import ctypes, os, socket\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "shm = libc.shmget(0, 2**30, 0o1600)\nmsg = libc.msgget(0, 0o1600)\n"
        "socks = []\ntry:\n    while True:\n        socks.append(socket.socketpair())\n"
        "except OSError:\n    pass\n"
        "raise RuntimeError(f'shm={shm} msg={msg} socketpairs<{(len(socks) + 20) // 10 * 10}')",
    ]
    report = _report(_os_layer(cells), 0)
    assert report.startswith("shm=-1 msg=-1 socketpairs<"), report
    assert int(report.split("<")[1]) <= 150  # 256 descriptors: about 126 pairs


@needs_bwrap
def test_the_scratch_disk_is_capped_in_bytes_and_in_files():
    cells = [
        "import os\nn = 0\ntry:\n    for n in range(100000):\n"
        "        open(f'f{n}', 'w').close()\nexcept OSError as e:\n    why = e.strerror\n"
        "for i in range(n):\n    os.remove(f'f{i}')\n"
        "size = 0\ntry:\n    with open('big', 'wb') as f:\n"
        "        for size in range(1, 1000):\n            f.write(b'x' * 2**20)\n"
        "            f.flush()\nexcept OSError as e:\n    big = e.strerror\n"
        "raise RuntimeError(f'files={n} ({why}) mib={size} ({big})')",
    ]
    limits = Limits(preload=PRELOAD, audit_hook=False, scratch_mb=8, scratch_files=200,
                    output_kb=64 * 1024, cell_timeout=20)
    report = _report(_os_layer(cells, limits=limits), 0)
    files = int(report.split("files=")[1].split()[0])
    written = int(report.split("mib=")[1].split()[0]) - 1  # the last write failed
    assert files < 200 and written <= 8 and report.count("No space left on device") == 2, \
        report


@needs_bwrap
def test_live_objects_do_not_lead_to_a_forbidden_module():
    """hw3's shape: d2lcnn.numpy preloaded and allowed, its optimizers forbidden. They were
    never loaded in the sandbox, so no class, function or module object leads to them."""
    cells = [
        "import sys, gc\nfound = set()\n"
        "def subclasses(c, seen):\n"
        "    for s in type.__subclasses__(c):\n"
        "        if s not in seen:\n            seen.add(s)\n            subclasses(s, seen)\n"
        "    return seen\n"
        "for c in subclasses(object, set()):\n"
        "    if 'optim' in str(getattr(c, '__module__', '')):\n        found.add(c.__qualname__)\n"
        "for o in gc.get_objects():\n"
        "    if 'd2lcnn.numpy.optim' in str(getattr(o, '__module__', '') or ''):\n"
        "        found.add(repr(o)[:40])\n"
        "found |= {m for m in sys.modules if 'optim' in m or m.startswith('torch')}\n"
        f"src = open({str(PKG / 'numpy' / 'optim.py')!r}).read()\n"
        "raise RuntimeError(f'found={sorted(found)} source_has_sgd={\"class SGD\" in src}')",
        "import importlib\n"
        "try:\n    importlib.import_module('d2lcnn.numpy.optim')\n    r = 'imported'\n"
        "except ImportError as e:\n    r = str(e).split(' is ')[0]\n"
        "raise RuntimeError(r)",
    ]
    run = _os_layer(cells)
    assert _report(run, 0) == "found=[] source_has_sgd=False"
    assert _report(run, 1) == "d2lcnn.numpy.optim"


@needs_bwrap
def test_no_network_not_even_the_graders_loopback():
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    unix = socket.socket(socket.AF_UNIX)
    name = f"\0d2lcnn-test-{os.getpid()}"
    unix.bind(name)
    unix.listen()
    try:
        cells = [
            "import socket\nout = []\n"
            f"for fam, addr in [(socket.AF_INET, ('127.0.0.1', {tcp.getsockname()[1]})),\n"
            f"                  (socket.AF_UNIX, {name!r}), (socket.AF_INET, ('1.1.1.1', 53))]:\n"
            "    s = socket.socket(fam)\n    s.settimeout(2)\n"
            "    try:\n        s.connect(addr)\n        out.append('connected')\n"
            "    except OSError:\n        out.append('refused')\n"
            "raise RuntimeError(' '.join(out))",
        ]
        assert _report(_os_layer(cells), 0) == "refused refused refused"
    finally:
        tcp.close()
        unix.close()


# --- end to end: attacker notebooks graded next to honest ones -------------------------

# Everything outside the Python environment that looks like a bundle, a notebook or a
# gradebook: the bundle, the other submissions and the output folder are not mounted.
ORACLE = """
import os, sys
import d2lcnn
env = {sys.prefix, sys.base_prefix, os.path.dirname(d2lcnn.__file__), '/usr', '/proc', '/dev'}
hits = []
for top in ['/', '/tmp', '/proc/self/root', '/proc/1/root']:
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in env]
        hits += [f for f in files if f.endswith(('.npz', '.ipynb', '.csv', '.json', '.md'))]
if hits:
    raise RuntimeError(f'oracle found {sorted(hits)}')
"""

# Forge frames: every result this process sends says "ok" with the value a wrong answer
# would give; the grader compares with ITS expected values, so nothing is gained.
TAMPER = """
import sys, builtins
runner = sys.modules['__main__']
real = runner.write_frame
def forged(fd, frame):
    if isinstance(frame, dict) and frame.get('type') == 'case_end':
        frame = dict(frame, status='ok', value=0.0, error=None)
    real(fd, frame)
runner.write_frame = forged
builtins.NotImplementedError = type('NotImplementedError', (Exception,), {})
"""

PIDS = """
import os, signal
for pid in range(1, 3000):
    try:
        signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGSTOP if pid % 2 else signal.SIGKILL)
    except OSError:
        pass
"""

GARBAGE = """
import os, stat
for fd in range(3, 256):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, PAYLOAD)
    except OSError:
        pass
"""


# Smuggle the hidden probes' source out through anything that reaches the feedback: an
# exception message, an exception class named after it, the audit hook's list of violations,
# a line number far beyond the cell. Only grader-known words may come out.
EXFILTRATE = """
import sys
f, job, violations = sys._getframe(), None, None
while f is not None:
    job = job or f.f_locals.get('job')
    violations = violations if violations is not None else f.f_locals.get('violations')
    f = f.f_back
secret = '\\n'.join(job['tests'])
violations.append('import of torch is not allowed ' + secret)
violations.append('os.kill is not allowed in the grader ' + secret)
try:
    exec(compile('\\n' * 4000 + '1 / 0', '<cell 4>', 'exec'))
except ZeroDivisionError:
    pass
raise type('Leak_' + secret.encode().hex()[:200], (Exception,), {})(secret)
"""


def _bomb() -> bytes:
    """A frame whose only member is deflated: ~250 KB on the wire, 256 MiB decompressed
    (a valid .npy of zeros), far past the grader's caps."""
    import io
    import struct
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, \
            z.open("__json__.npy", "w", force_zip64=True) as f:
        header = {"descr": "|u1", "fortran_order": False, "shape": (2**28,)}
        np.lib.format.write_array_header_1_0(f, header)
        for _ in range(256):
            f.write(bytes(2**20))
    frame = buf.getvalue()
    return struct.pack(">I", len(frame)) + frame


def _insert(nb, source):
    nb = copy.deepcopy(nb)
    i = next(i for i, c in enumerate(nb.cells) if c.id == "setup")
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"attack-{len(nb.cells)}"
    nb.cells.insert(i + 1, cell)
    return nb


def _rows(out):
    with open(out / "grades.csv", newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def attacked(hw1, tmp_path_factory):
    sol = nbformat.read(hw1["bundle"] / "solution.ipynb", as_version=4)
    student = nbformat.read(hw1["student"] / "hw1-convolution.ipynb", as_version=4)
    subs = tmp_path_factory.mktemp("attack-submissions")
    out = tmp_path_factory.mktemp("attack-graded")
    huge = "PAYLOAD = b'\\x7f\\xff\\xff\\xff' + b'A' * 1000\n"
    bomb = f"PAYLOAD = {_bomb()!r}\n"  # noqa: FURB113
    cases = {
        # name: (notebook, exact scores, note that must appear)
        "oracle": (_insert(student, ORACLE), ZERO, "-cell 4"),  # found nothing, no error
        "tamper": (_insert(student, TAMPER), ZERO, "q1: 0 points"),
        "pids": (_insert(sol, PIDS), FULL, None),
        "huge-frame": (_insert(sol, huge + GARBAGE), FULL, "malformed frame"),
        "exfiltrate": (_insert(sol, EXFILTRATE), FULL, "cell 4: an exception (line "),
        "deflate-bomb": (_insert(sol, bomb + GARBAGE), FULL, "malformed frame"),
        "victim-a": (sol, FULL, None),
        "victim-b": (sol, FULL, None),
        "victim-c": (sol, FULL, None),
    }
    for name, (nb, _, _) in cases.items():
        nbformat.write(nb, subs / f"{name}.ipynb")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    res = grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False, isolation=ISOLATION)
    return {"cases": cases, "out": out, "res": res, "wall": time.monotonic() - t0,
            "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
            / 1024}


@needs_bwrap
def test_attackers_get_exactly_their_scores_and_victims_full_marks(attacked):
    rows = _rows(attacked["out"])
    assert set(rows) == set(attacked["cases"])
    for name, (_, exp, note) in attacked["cases"].items():
        got = {q: float(rows[name][q]) for q in FULL}
        assert got == exp, (name, rows[name]["notes"])
        if note and note.startswith("-"):
            assert note[1:] not in rows[name]["notes"], (name, rows[name]["notes"])
        elif note:
            assert note in rows[name]["notes"], (name, rows[name]["notes"])
        result = json.loads((attacked["out"] / name / "results.json").read_text())
        assert result["score"] == sum(exp.values())
    assert _leftovers() == []


@needs_bwrap
def test_nothing_the_sandbox_sees_reaches_the_feedback(attacked, hw1):
    bundle = json.loads((hw1["bundle"] / "bundle.json").read_text())
    secret = [line.strip() for t in bundle["tests"] for line in t["source"].split("\n")
              if len(line.strip()) > 20]
    out = attacked["out"]
    texts = [(out / "grades.csv").read_text()] + [
        (out / "exfiltrate" / f).read_text() for f in ("results.json", "feedback.md")]
    for text in texts:
        assert not [line for line in secret if line in text or json.dumps(line)[1:-1] in text]
        assert "Leak_" not in text and "line 4001" not in text
    # forged violations come out rebuilt from the grader's own words, without the payload
    notes = _rows(out)["exfiltrate"]["notes"]
    assert notes.endswith("blocked: import of torch (forbidden); "
                          "blocked: os.kill is not allowed in the grader"), notes


@needs_bwrap
def test_hostile_messages_do_not_grow_the_graders_memory(attacked):
    assert attacked["rss_growth_mb"] < 200, attacked["rss_growth_mb"]


def test_slow_cells_are_bounded_by_the_submission_budget(tmp_path):
    """Each cell just under its timeout, in every question: the budget caps the total."""
    out = tmp_path / "hw1"
    assign(HW1, out, overrides={**FAST, "submission_timeout": 8}, secret="tests")
    sol = nbformat.read(out / "autograder" / "solution.ipynb", as_version=4)
    slow = sol
    for _ in range(3):
        slow = _insert(slow, "import time\ntime.sleep(1.3)")
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(slow, subs / "slow.ipynb")
    nbformat.write(sol, subs / "honest.ipynb")
    t0 = time.monotonic()
    grade_batch(out / "autograder", [subs], tmp_path / "graded", jobs=1, progress=False,
                isolation=ISOLATION)
    wall = time.monotonic() - t0
    rows = _rows(tmp_path / "graded")
    assert float(rows["honest"]["total"]) == 36
    # 3 cells x 1.3 s x 5 questions = 19.5 s without a budget; 8 s (+ overheads) with it
    assert wall < 8 + 6, wall
    assert float(rows["slow"]["total"]) < 36
    assert "time budget" in rows["slow"]["notes"]


def test_hostile_messages_in_process_mode_too(hw1, tmp_path):
    """The protocol layer does not depend on the OS layer: the same message bombs, graded
    as plain processes, cost the attacker its cell and nobody anything else."""
    sol = nbformat.read(hw1["bundle"] / "solution.ipynb", as_version=4)
    subs = tmp_path / "subs"
    subs.mkdir()
    bombs = {"huge-frame": "PAYLOAD = b'\\x7f\\xff\\xff\\xff' + b'A' * 1000\n",
             "deflate-bomb": f"PAYLOAD = {_bomb()!r}\n"}
    for name, payload in bombs.items():
        nbformat.write(_insert(sol, payload + GARBAGE), subs / f"{name}.ipynb")
    nbformat.write(sol, subs / "victim.ipynb")
    grade_batch(hw1["bundle"], [subs], tmp_path / "out", jobs=2, progress=False,
                isolation="process")
    rows = _rows(tmp_path / "out")
    for name in [*bombs, "victim"]:
        assert {q: float(rows[name][q]) for q in FULL} == FULL, rows[name]["notes"]
    for name in bombs:
        assert "malformed frame" in rows[name]["notes"]


@pytest.mark.parametrize("text, brief", [
    ("ZeroDivisionError: division by zero (line 3)", "ZeroDivisionError (line 3)"),
    ("ZeroDivisionError: x (line 4001)", "ZeroDivisionError"),  # past the cell's end
    ("Leak_41424344: secret (line 2)", "an exception (line 2)"),
    ("returned something that is not plain data: a value of type set",
     "returned something that is not plain data (see check() in the notebook)"),
    ("ImportError: torch is not available in the grader of this assignment (it is "
     "forbidden), so it cannot be imported or read (line 1)",
     "ImportError: torch is forbidden in this assignment (line 1)"),
    ("ImportError: secret_text is not available in the grader (line 1)", "ImportError (line 1)"),
])
def test_errors_from_the_sandbox_keep_only_grader_known_words(text, brief):
    from d2lcnn.grading.sandbox import brief_error

    assert brief_error(text, max_line=10, forbid=["torch"]) == brief
