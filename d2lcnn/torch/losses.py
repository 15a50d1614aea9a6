"""Loss functions from tensor primitives (our :func:`~d2lcnn.torch.activations.log_softmax`,
``gather``, sums), with ``torch.nn.functional`` names and semantics; differentiable by
autograd, on the input's device. The formulas, including label smoothing, class weights,
``ignore_index`` and class-probability targets, are explained in :mod:`d2lcnn.numpy.losses`."""

from __future__ import annotations

import torch

from d2lcnn.checks import (
    check_class_index,
    check_index_target,
    check_no_ignore_index,
    check_probability,
    check_probability_target,
    check_reduction,
)
from d2lcnn.torch._checks import check_tensor
from d2lcnn.torch.activations import log_softmax

__all__ = ["cross_entropy", "nll_loss", "mse_loss"]

def _class_weights(weight, x, fn):
    """Per-class weights ``(C,)`` (all ones for ``None``)."""
    n_classes = x.shape[1]
    if weight is None:
        return torch.ones(n_classes, dtype=x.dtype, device=x.device)
    return check_tensor(
        weight, "weight", fn, floating=False, shape=(n_classes,), shape_formula="(C,)"
    )


def _class_rows(x):
    """Move the class dimension last and fold the others: ``(N, C, *) -> (M, C)``."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def _check_classification(x, target, weight, ignore_index, reduction, fn):
    """Validate; return ``x`` as ``(M, C)`` rows (class dimension last), the target ``(M,)``
    with ignored entries replaced by 0, the mask of rows not ignored and the weights."""
    check_tensor(x, "input", fn, min_dim=2, layout="(N, C, d1, ...)")
    integer = isinstance(target, torch.Tensor) and not (
        target.is_floating_point() or target.is_complex()
    )
    check_index_target(target, integer, x.shape, fn, kind="tensor")
    check_reduction(reduction, fn)
    n_classes = x.shape[1]
    t = target.reshape(-1).long()  # (M,)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():  # one device sync, for an error message instead of a device assert
        check_class_index(t[bad][0].item(), n_classes, ignore_index, fn)
    w = _class_weights(weight, x, fn)
    return _class_rows(x), torch.where(valid, t, 0), valid, w


def _check_probabilities(x, target, weight, ignore_index, reduction, fn):
    """Validate class-probability targets (``target.shape == x.shape``); return ``x`` and
    ``target`` as ``(M, C)`` rows and the weights ``(C,)``."""
    check_tensor(x, "input", fn, min_dim=2, layout="(N, C, d1, ...)")
    check_probability_target(target, target.is_floating_point(), x.shape, fn)
    check_no_ignore_index(ignore_index, fn)
    check_reduction(reduction, fn)
    return _class_rows(x), _class_rows(target), _class_weights(weight, x, fn)


def _reduce(losses, divisor, reduction, loss_shape):
    if reduction == "none":
        return losses.reshape(loss_shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / divisor  # 0 / 0 = nan when every target is ignored


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy between logits and a target, as ``torch.nn.functional.cross_entropy``:
    our ``log_softmax`` over the classes, then :math:`\\ell_i = -\\sum_c q_{ic} \\log p_{ic}`
    against a smoothed, weighted target distribution ``q``. The target is either

    - class indices: :math:`q_{ic} = (1 - \\varepsilon) w_{y_i} [c = y_i] +
      \\tfrac{\\varepsilon}{C} w_c`, and ``"mean"`` divides by the summed weight of the
      targets not ignored; or
    - class probabilities of ``input``'s shape (floating point):
      :math:`q_{ic} = w_c ((1 - \\varepsilon) t_{ic} + \\varepsilon / C)`, and ``"mean"``
      divides by the number of samples (``N`` times the spatial size); ``ignore_index`` does
      not apply. Gradients flow to such a target too.

    Args:
        input: logits ``(N, C)`` or ``(N, C, d1, ...)``, floating point.
        target: class indices in ``[0, C)``, ``(N,)`` or ``(N, d1, ...)``, integer dtype; or
            class probabilities of ``input``'s shape, floating point.
        weight: per-class weights ``(C,)`` or ``None``. Default ``None``.
        ignore_index: class-index targets equal to this contribute nothing. Default -100;
            must stay negative with probabilities.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample losses ``(N, d1, ...)``).
            Default ``"mean"``.
        label_smoothing: ``eps`` in ``[0, 1]``. Default 0.0.

    Returns:
        A scalar, or ``(N, d1, ...)`` for ``"none"``.

    Raises:
        ValueError: wrong shapes, a target outside ``[0, C)``, an unknown ``reduction``, a
            ``label_smoothing`` outside ``[0, 1]``, or ``ignore_index >= 0`` with
            probabilities.
        TypeError: a non-float ``input``, a class-index target that is not integer, a
            target of ``input``'s shape that is not floating point, a ``weight`` that is not
            a tensor or a ``label_smoothing`` that is not a number.
    """
    fn = "cross_entropy"
    label_smoothing = check_probability(label_smoothing, "label_smoothing", fn)
    if _holds_probabilities(input, target):
        rows, t_rows, w = _check_probabilities(input, target, weight, ignore_index, reduction, fn)
        q = w * ((1 - label_smoothing) * t_rows + label_smoothing / rows.shape[1])  # (M, C)
        losses = -(q * log_softmax(rows, dim=1)).sum(dim=1)  # (M,)
        divisor = rows.shape[0]  # every sample counts once, whatever its weights
    else:
        rows, t, valid, w = _check_classification(
            input, target, weight, ignore_index, reduction, fn
        )
        log_p = log_softmax(rows, dim=1)  # (M, C)
        row_weight = torch.where(valid, w[t], 0)  # (M,)
        nll = -row_weight * log_p.gather(1, t[:, None])[:, 0]  # (M,)
        smooth = torch.where(valid, -(log_p * w).sum(dim=1), 0)  # (M,)
        losses = (1 - label_smoothing) * nll + (label_smoothing / rows.shape[1]) * smooth
        divisor = row_weight.sum()
    return _reduce(losses, divisor, reduction, (input.shape[0], *input.shape[2:]))


def _holds_probabilities(input, target) -> bool:
    """PyTorch's rule: a target of the input's shape holds class probabilities."""
    return (
        isinstance(input, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and target.shape == input.shape
    )


def nll_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood :math:`-w_{y_i}\\, \\text{input}[i, y_i]` of class indices, as
    ``torch.nn.functional.nll_loss``; ``input`` holds log-probabilities.

    Args: as :func:`cross_entropy` (without ``label_smoothing``).

    Returns:
        A scalar, or ``(N, d1, ...)`` for ``"none"``.
    """
    rows, t, valid, w = _check_classification(
        input, target, weight, ignore_index, reduction, "nll_loss"
    )
    row_weight = torch.where(valid, w[t], 0)  # (M,)
    losses = -row_weight * rows.gather(1, t[:, None])[:, 0]  # (M,)
    return _reduce(losses, row_weight.sum(), reduction, target.shape)


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error :math:`(x - y)^2`, as ``torch.nn.functional.mse_loss``, averaged,
    summed or elementwise. ``target`` must have ``input``'s shape (no silent broadcasting).

    Args:
        input: any shape, floating point.
        target: ``input``'s shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default ``"mean"``.

    Returns:
        A scalar, or ``input``'s shape for ``"none"``.
    """
    fn = "mse_loss"
    check_tensor(input, "input", fn)
    check_tensor(target, "target", fn)
    if target.shape != input.shape:
        raise ValueError(
            f"{fn}: target must have input's shape {tuple(input.shape)}, got {tuple(target.shape)}"
        )
    check_reduction(reduction, fn)
    sq = (input - target) ** 2
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()
