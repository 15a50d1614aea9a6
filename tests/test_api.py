"""The public API: both backends expose the same operations, every exported name exists, and
importing the package does no work (no torch import, no global state changes)."""

import subprocess
import sys

from d2lcnn import numpy as nd
from d2lcnn import torch as td

# NumPy ops that have no torch counterpart of the same name, with the reason.
NUMPY_ONLY = {
    "conv2d_naive",  # the loop versions, for teaching; torch has one version of each
    "conv_transpose2d_naive",
}


def test_every_exported_name_exists():
    for module in (nd, td):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ lists missing names {missing}"
        assert len(set(module.__all__)) == len(module.__all__), "duplicate names in __all__"


def test_every_numpy_forward_has_a_backward_and_a_torch_twin():
    forwards = [n.removesuffix("_forward") for n in nd.__all__ if n.endswith("_forward")]
    assert forwards, "no NumPy layers exported"
    for op in forwards:
        assert f"{op}_backward" in nd.__all__, f"nd.{op}_forward has no nd.{op}_backward"
    naive = {n.replace("_forward_naive", "_naive") for n in nd.__all__ if n.endswith("_naive")}
    for op in sorted(set(forwards) | naive):
        if op not in NUMPY_ONLY:
            assert op in td.__all__, f"nd.{op}_forward has no torch twin td.{op}"


def test_importing_d2lcnn_does_not_import_torch_or_touch_matplotlib():
    code = (
        "import sys, d2lcnn, d2lcnn.geometry, d2lcnn.gradcheck\n"
        "assert 'torch' not in sys.modules, 'd2lcnn imported torch'\n"
        "assert 'matplotlib' not in sys.modules, 'd2lcnn imported matplotlib'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_package_exports_exactly_what_its_modules_list():
    """``__all__`` is built from the modules' own lists (one place to add a name); every
    public module of a backend contributes, and the lazily loaded optimizers are exactly
    ``d2lcnn.numpy.optim.__all__``."""
    import importlib
    import pkgutil

    from d2lcnn.numpy import optim

    assert set(nd._LAZY) == set(optim.__all__)
    for package, extra in ((nd, {"nn", *optim.__all__}), (td, set())):
        public = [
            m.name for m in pkgutil.iter_modules(package.__path__)
            if not m.name.startswith("_") and m.name not in ("nn", "optim", "models")
            or (package is td and m.name == "optim")
        ]
        listed = {f"{package.__name__}.{name}" for name in public} | {"d2lcnn.geometry"}
        assert {m.__name__ for m in package._MODULES} == listed
        expected = {n for name in listed for n in importlib.import_module(name).__all__}
        assert set(package.__all__) == expected | extra


def test_numpy_optimizers_load_on_first_use_by_either_name():
    """`nd.optim.SGD` works in a fresh interpreter, as `nd.SGD` does, and neither name is
    loaded before it is used."""
    code = (
        "import sys\n"
        "from d2lcnn import numpy as nd\n"
        "assert 'd2lcnn.numpy.optim' not in sys.modules\n"
        "assert nd.optim.SGD is nd.SGD and nd.optim.__name__ == 'd2lcnn.numpy.optim'\n"
        "first = nd.Adam\n"
        "assert nd.Adam is first and nd.Adam is nd.optim.Adam  # cached on first use\n"
        "try:\n"
        "    nd.optimm\n"
        "except AttributeError as e:\n"
        "    assert 'optimm' in str(e)\n"
        "else:\n"
        "    raise AssertionError('nd.optimm exists')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
