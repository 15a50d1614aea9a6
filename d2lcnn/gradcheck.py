"""Numerical gradients by centred differences, and checks of hand-written backward passes.

The centred difference

.. math::
    \\frac{\\partial f}{\\partial x_i} \\approx \\frac{f(x + h e_i) - f(x - h e_i)}{2h}

has error O(h^2), so with float64 and ``h = 1e-6`` a correct backward pass agrees to a
relative error around 1e-8 to 1e-10. Always check in float64: in float32 the rounding
error of ``f`` swamps the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["rel_error", "numerical_gradient", "numerical_gradient_array", "check_backward"]


def rel_error(x, y, eps: float = 1e-12) -> float:
    """Largest elementwise relative error ``|x - y| / max(|x| + |y|, eps)``.

    Scale-free, so one tolerance works for gradients of any magnitude.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes differ, got x {x.shape} and y {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(x) + np.abs(y), eps)))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar ``f()`` with respect to the array ``x``, perturbed in place.

    ``f`` takes no arguments and reads ``x`` (a closure), so any function of several arrays
    can be checked one array at a time. ``x`` is restored exactly after each probe.

    Args:
        f: returns a scalar computed from the current contents of ``x``.
        x: float array, modified in place during the call and restored.
        h: step size.

    Returns:
        An array shaped like ``x``.
    """
    _require_float(x, "x")
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = float(f())
        x[i] = old - h
        minus = float(f())
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def numerical_gradient_array(
    f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Vector-Jacobian product ``sum(dout * d f() / d x)`` by centred differences.

    This is what a backward pass computes from an upstream gradient ``dout``.
    """
    dout = np.asarray(dout, dtype=np.float64)
    return numerical_gradient(lambda: np.sum(np.asarray(f(), dtype=np.float64) * dout), x, h)


def check_backward(
    forward: Callable,
    backward: Callable,
    inputs: Sequence[np.ndarray | None],
    *,
    kwargs: dict | None = None,
    seed: int = 0,
    h: float = 1e-6,
) -> list[float | None]:
    """Compare a ``forward -> (out, cache)`` / ``backward(dout, cache) -> grads`` pair
    against numerical gradients.

    Args:
        forward: called as ``forward(*inputs, **kwargs)``, returning ``(out, cache)``.
        backward: called as ``backward(dout, cache)``, returning one gradient per input
            (a single array when there is one input).
        inputs: float64 arrays; ``None`` entries (e.g. no bias) are passed through and
            must get a ``None`` gradient.
        kwargs: keyword hyperparameters for ``forward``.
        seed: seeds the random upstream gradient ``dout``. It is drawn from its own stream,
            ``np.random.default_rng([seed, 1])``, never equal to ``default_rng(seed)``: an
            input drawn first from ``default_rng(0)`` would otherwise be a copy of ``dout``,
            and for a layer like BatchNorm (whose input gradient is orthogonal to its
            normalized input) the check would compare two near-zero gradients.
        h: finite-difference step.

    Returns:
        The relative error for each input (``None`` for ``None`` inputs).
    """
    kwargs = kwargs or {}
    inputs = list(inputs)
    out, cache = forward(*inputs, **kwargs)
    dout = np.random.default_rng([seed, 1]).standard_normal(np.shape(out))
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(inputs):
        raise ValueError(
            f"check_backward: backward returned {len(grads)} gradients for {len(inputs)} inputs"
        )
    errors: list[float | None] = []
    for i, (x, g) in enumerate(zip(inputs, grads, strict=True)):
        if x is None:
            if g is not None:
                raise ValueError(f"check_backward: input {i} is None but its gradient is not")
            errors.append(None)
            continue
        if g is None or np.shape(g) != np.shape(x):
            raise ValueError(
                f"check_backward: gradient {i} has shape {np.shape(g)}, expected {np.shape(x)}"
            )
        num = numerical_gradient_array(lambda: forward(*inputs, **kwargs)[0], x, dout, h)
        errors.append(rel_error(g, num))
    return errors


def _require_float(x, name):
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point numpy array, got {got}")
    if x.dtype != np.float64:
        raise TypeError(
            f"{name} must be float64 for a meaningful numerical gradient, got {x.dtype}; "
            f"cast with x.astype(np.float64)"
        )
