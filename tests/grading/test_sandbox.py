"""The sandbox on its own, in both isolation modes: no way into a forbidden module (import
statement, importlib, the re-exports of a preloaded parent, reading its source)."""

from pathlib import Path

import pytest
from grading_support import BWRAP, IN_CI, needs_bwrap

import d2lcnn
from d2lcnn.grading.isolation import BwrapView
from d2lcnn.grading.sandbox import ForkServer, Limits, run_question

OPTIM = str(Path(d2lcnn.__file__).parent / "numpy" / "optim.py")

CELLS = [
    "from d2lcnn.numpy import conv2d_forward",  # allowed: a preloaded, permitted module
    "from d2lcnn.numpy import SGD",  # re-exported by the parent of a forbidden module
    "import d2lcnn.numpy.optim",
    "import importlib\nimportlib.import_module('d2lcnn.numpy.optim')",
    "open('notes.txt', 'w').write('fine')",
    "import importlib\nimportlib.import_module('torch')",  # bypasses the import audit event
    f"assert 'class SGD' in open({OPTIM!r}).read(), 'no reference source here'",
    "import ctypes\nctypes.CDLL(None).fork()",  # libc's fork, behind the audit hook's back
    "import ctypes\nopen('evil.so', 'wb').write(b'ELF')\nctypes.CDLL('./evil.so')",
    "import numpy\nnumpy.ctypeslib.ctypes.c_char.from_address(8)",
]
FORBID = ["d2lcnn.numpy.optim", "torch"]
PRELOAD = ("d2lcnn.numpy",)


def _server(isolation):
    if isolation == "process":
        return ForkServer(PRELOAD, isolation="process"), None
    view = BwrapView(FORBID)
    return ForkServer(PRELOAD, isolation="bwrap", view=view), view


def _run(isolation, cells, probe="return ns.conv2d_forward.__name__", limits=None):
    server, view = _server(isolation)
    cells = [{"key": i, "label": f"cell {i + 1}", "source": s} for i, s in enumerate(cells)]
    tests = [f"@case('q1', 'probe')\ndef _(ns, rng):\n    {probe}\n"]
    try:
        return run_question(cells, tests, [{"key": "q1/probe", "seed": 0, "timeout": 5.0}],
                            limits=limits or Limits(preload=PRELOAD, memory_mb=1536),
                            forbid=FORBID, deny_read=[], stubs=[], skip_cells={},
                            launcher=lambda: server)
    finally:
        server.close()
        if view is not None:
            view.close()


@pytest.mark.parametrize("isolation", [pytest.param("bwrap", marks=needs_bwrap), "process"])
def test_preload_keeps_forbidden_modules_and_their_reexports_out(isolation):
    run = _run(isolation, CELLS)
    errors = [run.cells[i].error for i in range(len(CELLS))]
    assert errors[0] is None and errors[4] is None
    # bwrap: the optimizers' file is a stub raising ImportError; process: reading it is refused
    assert errors[1].startswith(("ImportError", "SandboxViolation")), errors[1]
    assert all(e is not None for e in errors[2:4] + errors[5:]), errors
    assert "import of d2lcnn.numpy.optim (forbidden)" in run.violations
    assert run.cases["q1/probe"].value == "conv2d_forward"


def test_bwrap_is_available_in_ci():
    """CI installs bubblewrap (.ci/run); without it the OS-isolation tests would not run."""
    if not IN_CI:
        pytest.skip("outside CI, bwrap is optional (grade then needs --isolation process)")
    assert BWRAP
