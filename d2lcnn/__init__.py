"""d2lcnn: convolutional neural networks from the ground up.

Two backends with the same operation names and ``torch.nn.functional`` semantics::

    from d2lcnn import numpy as nd   # reference layers: forward AND backward, pure NumPy
    from d2lcnn import torch as td   # the same operations from torch primitives, any device

Shared modules: :mod:`d2lcnn.geometry` (output sizes, receptive fields),
:mod:`d2lcnn.gradcheck` (numerical gradients), :mod:`d2lcnn.schedules` (learning-rate
schedules), :mod:`d2lcnn.data` (offline datasets), :mod:`d2lcnn.summary` (layer tables),
:mod:`d2lcnn.train` (the training loop), :mod:`d2lcnn.ensemble` (averaging, voting,
bootstrap), :mod:`d2lcnn.metrics` (confusion matrix, IoU, pixel accuracy),
:mod:`d2lcnn.hparam` (random, grid and coarse-to-fine hyperparameter search),
:mod:`d2lcnn.diagnostics` (is it training? initial loss, tiny-subset overfit, update ratios,
activation statistics), :mod:`d2lcnn.viz` (filters, feature maps, occlusion, saliency),
:mod:`d2lcnn.grading` (autograded homework: assign, self-check, sandboxed grading),
:mod:`d2lcnn.plots`, :mod:`d2lcnn.diagrams` (schematic figures of layers and networks, drawn
by code) and :mod:`d2lcnn.book`.
Importing ``d2lcnn`` imports none of them (and not torch); nothing runs on import.
"""

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "book",
    "data",
    "diagnostics",
    "diagrams",
    "ensemble",
    "geometry",
    "gradcheck",
    "grading",
    "hparam",
    "metrics",
    "numpy",
    "plots",
    "schedules",
    "summary",
    "torch",
    "train",
    "viz",
]
