"""d2lcnn: convolutional neural networks from the ground up.

Two backends with the same operation names and ``torch.nn.functional`` semantics::

    from d2lcnn import numpy as nd   # reference layers: forward AND backward, pure NumPy
    from d2lcnn import torch as td   # the same operations from torch primitives, any device

Shared helpers: :mod:`d2lcnn.geometry` (output sizes, receptive fields) and
:mod:`d2lcnn.gradcheck` (numerical gradients). Importing ``d2lcnn`` imports
neither NumPy backend nor torch; nothing runs on import.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "geometry", "gradcheck", "numpy", "torch"]
