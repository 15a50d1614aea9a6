"""Argument checks for the torch operations: tensors, the convolutions' tensor arguments,
random generators.

One function per concept, used by every operation, so that the same mistake gets the same
message everywhere. Messages name the function, the argument, what was expected and what
came. Checks of plain numbers (hyperparameters, ints, dimension indices) are in
:mod:`d2lcnn.checks`, shared with the NumPy backend.
"""

import torch

from d2lcnn.checks import check_groups, check_shape

__all__ = [
    "check_tensor",
    "check_images",
    "check_generator",
    "check_input_and_weight",
    "check_bias",
]


def check_tensor(
    t,
    name: str,
    fn: str,
    *,
    optional: bool = False,
    floating: bool = True,
    ndim: int | None = None,
    min_dim: int = 0,
    layout: str = "",
    shape: tuple[int, ...] | None = None,
    shape_formula: str = "",
) -> torch.Tensor | None:
    """``t``, if it is a tensor (or, with ``optional``, None), floating point unless
    ``floating=False``, whose shape passes :func:`d2lcnn.checks.check_shape` with ``ndim``,
    ``min_dim``, ``layout`` and ``shape`` (``shape_formula`` says where that comes from).

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: the wrong number of dimensions or the wrong shape.
    """
    if optional and t is None:
        return None
    if not isinstance(t, torch.Tensor):
        what = "a torch.Tensor or None" if optional else "a torch.Tensor"
        raise TypeError(f"{fn}: {name} must be {what}, got {type(t).__name__}")
    if floating and not t.is_floating_point():
        raise TypeError(f"{fn}: {name} must be floating point, got dtype {t.dtype}")
    check_shape(
        t.shape, name, fn, ndim=ndim, min_ndim=min_dim, layout=layout,
        expected=shape, formula=shape_formula,
    )  # fmt: skip
    return t


def check_images(t, name: str, fn: str) -> torch.Tensor:
    """A floating-point batch of images ``(N, C, H, W)`` or one image ``(C, H, W)``: what the
    2-D pooling and unpooling operations take (max, average, adaptive), as their torch twins do.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: neither 4-D nor 3-D.
    """
    check_tensor(t, name, fn)
    if t.dim() not in (3, 4):
        raise ValueError(
            f"{fn}: {name} must be 4-D (N, C, H, W) or 3-D (C, H, W), got {t.dim()}-D shape "
            f"{tuple(t.shape)}"
        )
    return t


def check_generator(generator, fn: str, *, optional: bool = False) -> torch.Generator | None:
    """A :class:`torch.Generator` (or, with ``optional``, None: torch's default generator).

    Raises:
        TypeError: anything else.
    """
    if not (isinstance(generator, torch.Generator) or (optional and generator is None)):
        raise TypeError(
            f"{fn}: generator must be a torch.Generator (torch.Generator().manual_seed(s)), "
            f"got {type(generator).__name__}"
        )
    return generator


def check_input_and_weight(x, weight, groups, fn: str, *, weight_layout: str) -> int:
    """A convolution's ``input`` ``(N, C_in, H, W)`` and 4-D ``weight`` (``weight_layout``
    says what its dimensions mean): floating point, same dtype and device; and ``groups``,
    an int >= 1 that divides ``C_in``. Returns ``groups`` as an int."""
    check_tensor(x, "input", fn)
    if x.dim() != 4:
        raise ValueError(
            f"{fn}: input must be 4-D (N, C_in, H, W) or 3-D (C_in, H, W), got shape "
            f"{tuple(x.shape)}"
        )
    # Not checked for floating point: its dtype must be input's.
    check_tensor(weight, "weight", fn, floating=False, ndim=4, layout=weight_layout)
    if weight.dtype != x.dtype:
        raise TypeError(
            f"{fn}: weight dtype must match input's dtype {x.dtype}, got {weight.dtype}"
        )
    if weight.device != x.device:
        raise ValueError(f"{fn}: weight must be on input's device {x.device}, got {weight.device}")
    return check_groups(groups, x.shape[1], fn)


def check_bias(bias, x, c_out: int, fn: str, *, c_out_formula: str = "C_out") -> None:
    """``bias`` is None or a ``(C_out,)`` tensor with ``x``'s dtype and device."""
    if bias is None:
        return
    if not isinstance(bias, torch.Tensor):
        raise TypeError(f"{fn}: bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if tuple(bias.shape) != (c_out,):
        raise ValueError(
            f"{fn}: bias must have shape ({c_out_formula},) = ({c_out},), got {tuple(bias.shape)}"
        )
    if bias.dtype != x.dtype or bias.device != x.device:
        raise TypeError(
            f"{fn}: bias must have input's dtype and device ({x.dtype}, {x.device}), "
            f"got ({bias.dtype}, {bias.device})"
        )
