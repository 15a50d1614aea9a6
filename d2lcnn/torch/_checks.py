"""Argument checks shared by the torch convolutions (``conv2d``, ``conv_transpose2d``).

Messages name the function, the argument, what was expected and what came.
"""

import torch


def check_input_and_weight(x, weight, groups, fn: str, *, weight_layout: str) -> None:
    """Both tensors, both 4-D, floating point, same dtype and device; ``groups`` >= 1."""
    for name, t in (("x", x), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{fn}: x must be 4-D (N, C_in, H, W) or 3-D (C_in, H, W), got shape "
            f"{tuple(x.shape)}"
        )
    if weight.dim() != 4:
        raise ValueError(
            f"{fn}: weight must be 4-D {weight_layout}, got shape {tuple(weight.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{fn}: x must be floating point, got dtype {x.dtype}")
    if weight.dtype != x.dtype:
        raise TypeError(f"{fn}: weight dtype must match x's dtype {x.dtype}, got {weight.dtype}")
    if weight.device != x.device:
        raise ValueError(f"{fn}: weight must be on x's device {x.device}, got {weight.device}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{fn}: groups must be an int >= 1, got {groups!r}")


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
            f"{fn}: bias must have x's dtype and device ({x.dtype}, {x.device}), "
            f"got ({bias.dtype}, {bias.device})"
        )
