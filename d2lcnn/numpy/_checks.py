"""Argument checks for the NumPy layers: arrays, upstream gradients, random generators.

One function per concept, used by every layer, so that the same mistake gets the same
message everywhere: ``"relu_forward: input must be a numpy array, got list"``. Messages name
the function, the argument, what was expected and what came. Checks of plain numbers
(hyperparameters, ints, dimension indices) are in :mod:`d2lcnn.checks`, shared with the torch
backend.
"""

from __future__ import annotations

import reprlib

import numpy as np

from d2lcnn.checks import check_groups, check_shape

__all__ = [
    "check_array",
    "check_dout",
    "check_generator",
    "check_array_dict",
    "check_input_and_weight",
]


def check_array(
    a,
    name: str,
    fn: str,
    *,
    optional: bool = False,
    floating: bool = True,
    ndim: int | None = None,
    min_ndim: int = 0,
    layout: str = "",
    dtype=None,
    dtype_of: str = "input",
    shape: tuple[int, ...] | None = None,
    shape_formula: str = "",
) -> np.ndarray | None:
    """``a``, if it is a numpy array as described; the checks run in the order of the args.

    Args:
        a: the argument to check.
        name, fn: the argument's and the calling function's names, for the message.
        optional: let ``None`` through (an absent ``weight`` or ``bias``). Default False.
        floating: require a floating-point dtype. Default True.
        ndim: the exact number of dimensions, or None.
        min_ndim: the least number of dimensions. Default 0.
        layout: what the dimensions mean, for the message, e.g. ``"(N, C, H, W)"``.
        dtype: the dtype ``a`` must have, or None; ``dtype_of`` says whose it is
            (``"input"``: "must have input's dtype float32").
        shape: the shape ``a`` must have, or None; ``shape_formula`` says where it comes
            from (``"(C_out,)"``: "must have shape (C_out,) = (16,)").

    Raises:
        TypeError: not a numpy array, not floating point, or the wrong dtype.
        ValueError: the wrong number of dimensions or the wrong shape.

    Example:
        >>> check_array([1.0], "input", "relu_forward")
        Traceback (most recent call last):
        TypeError: relu_forward: input must be a numpy array, got list
    """
    if optional and a is None:
        return None
    if not isinstance(a, np.ndarray):
        what = "a numpy array or None" if optional else "a numpy array"
        raise TypeError(f"{fn}: {name} must be {what}, got {type(a).__name__}")
    if floating and not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{fn}: {name} must be a floating-point array, got dtype {a.dtype}")
    check_shape(a.shape, name, fn, ndim=ndim, min_ndim=min_ndim, layout=layout)
    if dtype is not None and a.dtype != dtype:
        raise TypeError(
            f"{fn}: {name} must have {dtype_of}'s dtype {np.dtype(dtype)}, got {a.dtype}"
        )
    check_shape(a.shape, name, fn, expected=shape, formula=shape_formula)
    return a


def check_dout(
    dout, shape: tuple[int, ...], fn: str, *, layout: str = "", dtype=None
) -> np.ndarray:
    """The upstream gradient of a backward pass: an array of the forward output's ``shape``.

    Without ``dtype``, anything :func:`numpy.asarray` takes is accepted (and converted);
    with it, ``dout`` must be a floating-point array of that dtype (the fast convolution
    writes it into scratch buffers of the forward pass's dtype).

    Args:
        dout: the upstream gradient.
        shape: the forward output's shape.
        fn: the calling function's name, for the message.
        layout: what the dimensions mean, e.g. ``"(N, C_out, H_out, W_out)"``.
        dtype: the dtype ``dout`` must have, or None.

    Raises:
        ValueError: ``dout`` has another shape.
        TypeError: (with ``dtype``) not a floating-point array of that dtype.
    """
    if dtype is None:
        dout = np.asarray(dout)
    else:
        check_array(dout, "dout", fn)
    expected = f"{layout} = {tuple(shape)}" if layout else f"{tuple(shape)}"
    if dout.shape != tuple(shape):
        raise ValueError(
            f"{fn}: dout must have the forward output's shape {expected}, got {dout.shape}"
        )
    if dtype is not None and dout.dtype != dtype:
        raise TypeError(
            f"{fn}: dout must have the forward pass's dtype {np.dtype(dtype)}, got {dout.dtype}"
        )
    return dout


def check_generator(generator, fn: str) -> np.random.Generator:
    """A :class:`numpy.random.Generator`, the only source of randomness a layer takes.

    Raises:
        TypeError: anything else (also the legacy ``np.random.RandomState``).
    """
    if not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"{fn}: generator must be a np.random.Generator (np.random.default_rng(seed)), "
            f"got {type(generator).__name__}"
        )
    return generator


def check_array_dict(arrays, name: str, fn: str, *, nonempty: bool = False) -> dict:
    """A dict of floating-point arrays (an optimizer's parameters, their gradients).

    Raises:
        TypeError: not a dict (or an empty one with ``nonempty``), or a value that is not a
            floating-point numpy array.
    """
    if not isinstance(arrays, dict) or (nonempty and not arrays):
        what = "a non-empty dict" if nonempty else "a dict"
        raise TypeError(f"{fn}: {name} must be {what} of numpy arrays, got {reprlib.repr(arrays)}")
    for key, a in arrays.items():
        if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.floating):
            raise TypeError(
                f"{fn}: {name}[{key!r}] must be a floating-point numpy array, "
                f"got {type(a).__name__} {getattr(a, 'dtype', '')}"
            )
    return arrays


def check_input_and_weight(input, weight, groups, fn: str, *, weight_layout: str) -> int:
    """A convolution's ``input`` ``(N, C_in, H, W)`` and 4-D ``weight`` of input's dtype
    (``weight_layout`` says what its dimensions mean), and ``groups``, an int >= 1 that
    divides ``C_in``; returns ``groups`` as an int.

    Raises:
        TypeError: not floating-point arrays, different dtypes, a non-int ``groups``.
        ValueError: not 4-D, ``groups < 1``, or ``C_in`` not divisible by ``groups``.
    """
    check_array(input, "input", fn, ndim=4, layout="(N, C_in, H, W)")
    check_array(weight, "weight", fn, ndim=4, layout=weight_layout, dtype=input.dtype)
    return check_groups(groups, input.shape[1], fn)
