"""Argument checks for the torch operations: tensors, the convolutions' tensor arguments,
random generators.

One function per concept, used by every operation, so that the same mistake gets the same
message everywhere. Messages name the function, the argument, what was expected and what
came. Checks of plain numbers (hyperparameters, ints, dimension indices) are in
:mod:`d2lcnn.checks`, shared with the NumPy backend.
"""

import torch

from d2lcnn.checks import check_int

__all__ = ["check_tensor", "check_generator", "check_input_and_weight", "check_bias"]


def check_tensor(
    t,
    name: str,
    fn: str,
    *,
    floating: bool = True,
    ndim: int | None = None,
    min_dim: int = 0,
    layout: str = "",
) -> torch.Tensor:
    """``t``, if it is a tensor (floating point unless ``floating=False``) of ``ndim`` or at
    least ``min_dim`` dimensions (``layout`` says what they mean, for the message).

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: the wrong number of dimensions.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if floating and not t.is_floating_point():
        raise TypeError(f"{fn}: {name} must be floating point, got dtype {t.dtype}")
    layout = f" {layout}" if layout else ""
    got = f"got {t.dim()}-D shape {tuple(t.shape)}"
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D{layout}, {got}")
    if t.dim() < min_dim:
        raise ValueError(f"{fn}: {name} must be at least {min_dim}-D{layout}, {got}")
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
    groups = check_int(groups, "groups", fn, minimum=1)
    c_in = x.shape[1]
    if c_in % groups != 0:
        raise ValueError(
            f"{fn}: C_in = input.shape[1] = {c_in} must be divisible by groups = {groups}"
        )
    return groups


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
