"""The sandbox on its own: no way into a forbidden module (import statement, importlib,
the re-exports of a preloaded parent, reading its source), with both launchers."""

from pathlib import Path

import pytest

import d2lcnn
from d2lcnn.grading.sandbox import Limits, SpawnLauncher, ZygoteLauncher, run_question

OPTIM = str(Path(d2lcnn.__file__).parent / "numpy" / "optim.py")

CELLS = [
    "from d2lcnn.numpy import conv2d_forward",  # allowed: a preloaded, permitted module
    "from d2lcnn.numpy import SGD",  # re-exported by the parent of a forbidden module
    "import d2lcnn.numpy.optim",
    "import importlib\nimportlib.import_module('d2lcnn.numpy.optim')",
    "open('notes.txt', 'w').write('fine')",
    "import importlib\nimportlib.import_module('torch')",  # bypasses the import audit event
    f"open({OPTIM!r}).read()",  # copying the reference source
    "import ctypes\nctypes.CDLL(None).fork()",  # libc's fork, behind the audit hook's back
    "import ctypes\nopen('evil.so', 'wb').write(b'ELF')\nctypes.CDLL('./evil.so')",
    "import numpy\nnumpy.ctypeslib.ctypes.c_char.from_address(8)",
]


@pytest.mark.parametrize("kind", ["zygote", "spawn"])
def test_preload_keeps_forbidden_modules_and_their_reexports_out(kind):
    launcher = ZygoteLauncher(["d2lcnn.numpy"]) if kind == "zygote" else SpawnLauncher()
    cells = [{"key": i, "label": f"cell {i + 1}", "source": s} for i, s in enumerate(CELLS)]
    tests = ["@case('q1', 'sees conv2d_forward')\ndef _(ns, rng):\n"
             "    return ns.conv2d_forward.__name__\n"]
    try:
        run = run_question(cells, tests, [{"key": "q1/sees conv2d_forward", "seed": 0,
                                           "timeout": 5.0}],
                           limits=Limits(preload=("d2lcnn.numpy",), memory_mb=1536),
                           forbid=["d2lcnn.numpy.optim", "torch"], deny_read=[], stubs=[],
                           skip_cells={}, launcher=launcher)
    finally:
        launcher.close()
    errors = [run.cells[i].error for i in range(len(CELLS))]
    assert errors[0] is None and errors[4] is None
    assert "ImportError" in errors[1] and "SGD" in errors[1]
    assert all("not allowed" in e for e in errors[2:4] + errors[5:])
    assert run.cases["q1/sees conv2d_forward"].value == "conv2d_forward"
