"""Gradient clipping over a dict of NumPy gradients, with ``torch.nn.utils`` semantics.

Both functions modify the gradient arrays **in place**, so call them between computing the
gradients and ``opt.step(grads)``.

``clip_grad_norm`` treats all gradients as one long vector ``g`` and rescales it when it is
too long, keeping its direction::

    total = ||g||_p                      (p = norm_type; the norm of the per-array norms)
    g <- g * min(1, max_norm / (total + 1e-6))

``clip_grad_value`` clamps each element to ``[-clip_value, clip_value]``, which can change
the direction.
"""

from __future__ import annotations

import math

import numpy as np

from d2lcnn.checks import check_nonnegative, check_positive
from d2lcnn.numpy._checks import check_array_dict

__all__ = ["clip_grad_norm", "clip_grad_value"]

_EPS = 1e-6  # torch's: keeps the scale finite for zero gradients, and makes it just below 1


def _vector_norm(x: np.ndarray, p: float) -> float:
    x = np.abs(np.ravel(x))
    if p == math.inf:
        return float(x.max(initial=0.0))
    return float(np.sum(x**p) ** (1.0 / p))


def clip_grad_norm(
    grads: dict[str, np.ndarray],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Rescale all gradients together so that their joint norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_``.

    Args:
        grads: ``{name: gradient array}``, modified in place.
        max_norm: the largest allowed norm, >= 0.
        norm_type: ``p`` of the p-norm, > 0 or ``math.inf`` (the largest ``|g|``). Default 2.
        error_if_nonfinite: raise if the total norm is NaN or infinite (else the gradients
            become NaN, as in torch). Default False.

    Returns:
        The total norm of the gradients **before** clipping, a float.

    Raises:
        ValueError: for a negative ``max_norm`` or a bad ``norm_type``.
        RuntimeError: with ``error_if_nonfinite``, for a NaN or infinite total norm (as torch).
    """
    fn = "clip_grad_norm"
    arrays = list(check_array_dict(grads, "grads", fn).values())
    max_norm = check_nonnegative(max_norm, "max_norm", fn)
    norm_type = check_positive(norm_type, "norm_type", fn)  # math.inf included
    norms = np.array([_vector_norm(g, norm_type) for g in arrays])
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm: the total {norm_type}-norm of the gradients is {total}; "
            f"pass error_if_nonfinite=False to clip anyway"
        )
    scale = min(max_norm / (total + _EPS), 1.0)
    for g in arrays:
        g *= scale  # always, as torch does (scale is 1.0 when no clipping is needed)
    return total


def clip_grad_value(grads: dict[str, np.ndarray], clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_``.

    Args:
        grads: ``{name: gradient array}``, modified in place.
        clip_value: the largest allowed ``|g|``, >= 0.

    Raises:
        ValueError: for a negative ``clip_value``.
    """
    arrays = list(check_array_dict(grads, "grads", "clip_grad_value").values())
    clip_value = check_nonnegative(clip_value, "clip_value", "clip_grad_value")
    for g in arrays:
        np.clip(g, -clip_value, clip_value, out=g)
