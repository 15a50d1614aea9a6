"""The same operations as :mod:`d2lcnn.numpy`, written from tensor primitives (unfold,
as_strided, matmul), differentiable by autograd and running on the input's device; each takes
``torch.nn.functional``'s parameters (see ``tests/test_signatures.py``).

The package exports what each module lists in its ``__all__``: a new operation is exported by
adding it there, nothing else to edit here.
"""

import sys

from d2lcnn.geometry import *  # noqa: F403
from d2lcnn.torch.activations import *  # noqa: F403
from d2lcnn.torch.adaptive_pool import *  # noqa: F403
from d2lcnn.torch.clip import *  # noqa: F403
from d2lcnn.torch.conv import *  # noqa: F403
from d2lcnn.torch.conv_transpose import *  # noqa: F403
from d2lcnn.torch.device import *  # noqa: F403
from d2lcnn.torch.dropout import *  # noqa: F403
from d2lcnn.torch.init import *  # noqa: F403
from d2lcnn.torch.linear import *  # noqa: F403
from d2lcnn.torch.losses import *  # noqa: F403
from d2lcnn.torch.norm import *  # noqa: F403
from d2lcnn.torch.optim import *  # noqa: F403
from d2lcnn.torch.pool import *  # noqa: F403
from d2lcnn.torch.schedules import *  # noqa: F403
from d2lcnn.torch.unpool import *  # noqa: F403
from d2lcnn.torch.upsample import *  # noqa: F403

_MODULES = tuple(
    sys.modules[name]
    for name in (
        "d2lcnn.geometry",
        "d2lcnn.torch.activations",
        "d2lcnn.torch.adaptive_pool",
        "d2lcnn.torch.clip",
        "d2lcnn.torch.conv",
        "d2lcnn.torch.conv_transpose",
        "d2lcnn.torch.device",
        "d2lcnn.torch.dropout",
        "d2lcnn.torch.init",
        "d2lcnn.torch.linear",
        "d2lcnn.torch.losses",
        "d2lcnn.torch.norm",
        "d2lcnn.torch.optim",
        "d2lcnn.torch.pool",
        "d2lcnn.torch.schedules",
        "d2lcnn.torch.unpool",
        "d2lcnn.torch.upsample",
    )
)

__all__ = list(dict.fromkeys(name for module in _MODULES for name in module.__all__))
