"""Reference layers in pure NumPy: ``name_forward(input, ..., *, hyper) -> (out, cache)`` and
``name_backward(dout, cache) -> grads``. NCHW layout; ``torch.nn.functional``'s parameter names,
order, defaults and semantics (see ``tests/test_signatures.py``).

The package exports what each module lists in its ``__all__``: a new operation is exported by
adding it there, nothing else to edit here.
"""

import sys

from d2lcnn.geometry import *  # noqa: F403
from d2lcnn.numpy import nn as nn  # layer objects and Sequential, on these functions
from d2lcnn.numpy.activations import *  # noqa: F403
from d2lcnn.numpy.adaptive_pool import *  # noqa: F403
from d2lcnn.numpy.batch_norm import *  # noqa: F403
from d2lcnn.numpy.clip import *  # noqa: F403
from d2lcnn.numpy.conv import *  # noqa: F403
from d2lcnn.numpy.conv_transpose import *  # noqa: F403
from d2lcnn.numpy.dropout import *  # noqa: F403
from d2lcnn.numpy.init import *  # noqa: F403
from d2lcnn.numpy.linear import *  # noqa: F403
from d2lcnn.numpy.losses import *  # noqa: F403
from d2lcnn.numpy.norm import *  # noqa: F403
from d2lcnn.numpy.pool import *  # noqa: F403
from d2lcnn.numpy.unpool import *  # noqa: F403
from d2lcnn.numpy.upsample import *  # noqa: F403

_MODULES = tuple(
    sys.modules[name]
    for name in (
        "d2lcnn.geometry",
        "d2lcnn.numpy.activations",
        "d2lcnn.numpy.adaptive_pool",
        "d2lcnn.numpy.batch_norm",
        "d2lcnn.numpy.clip",
        "d2lcnn.numpy.conv",
        "d2lcnn.numpy.conv_transpose",
        "d2lcnn.numpy.dropout",
        "d2lcnn.numpy.init",
        "d2lcnn.numpy.linear",
        "d2lcnn.numpy.losses",
        "d2lcnn.numpy.norm",
        "d2lcnn.numpy.pool",
        "d2lcnn.numpy.unpool",
        "d2lcnn.numpy.upsample",
    )
)

# The optimizers load on first use (PEP 562), so this package imports without
# d2lcnn.numpy.optim: an assignment can allow the layers and forbid the optimizers, and the
# grader's sandbox then leaves the optimizers' files out altogether. Their names are spelled
# here (importing the module to read its __all__ would defeat the point); test_api checks
# that they are exactly optim.__all__.
_LAZY = {name: "d2lcnn.numpy.optim" for name in
         ("Optimizer", "SGD", "MomentumVelocity", "Adagrad", "RMSprop", "Adam", "AdamW")}

__all__ = list(dict.fromkeys(
    [name for module in _MODULES for name in module.__all__] + ["nn", *_LAZY]
))


def __getattr__(name):
    if name == "optim":  # `nd.optim.SGD` as well as `nd.SGD`, also before either was imported
        import importlib  # noqa: PLC0415

        return importlib.import_module("d2lcnn.numpy.optim")
    if name in _LAZY:
        import importlib  # noqa: PLC0415 -- only when an optimizer is first used

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
