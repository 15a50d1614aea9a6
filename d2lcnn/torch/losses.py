"""Loss functions from tensor primitives (our :func:`~d2lcnn.torch.activations.log_softmax`,
``gather``, sums), with ``torch.nn.functional`` names and semantics; differentiable by
autograd, on the input's device. The formulas, including label smoothing, class weights and
``ignore_index``, are explained in :mod:`d2lcnn.numpy.losses`."""

from __future__ import annotations

import torch

from d2lcnn.torch.activations import log_softmax

__all__ = ["cross_entropy", "nll_loss", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_classification(x, target, weight, ignore_index, reduction, fn):
    """Validate; return ``x`` as ``(M, C)`` rows (class dimension last), the target ``(M,)``
    with ignored entries replaced by 0, the mask of rows not ignored and the weights."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{fn}: input must be a floating-point torch.Tensor, got {got}")
    if x.dim() < 2:
        raise ValueError(
            f"{fn}: input must be (N, C) or (N, C, d1, ...), got shape {tuple(x.shape)}"
        )
    if not isinstance(target, torch.Tensor) or target.is_floating_point() or target.is_complex():
        got = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
        raise TypeError(
            f"{fn}: target must be an integer tensor of class indices (class probabilities "
            f"are not supported), got {got}"
        )
    expected = (x.shape[0], *x.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{fn}: target must have shape (N, d1, ...) = {expected} for input of shape "
            f"{tuple(x.shape)}, got {tuple(target.shape)}"
        )
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    n_classes = x.shape[1]
    t = target.reshape(-1).long()  # (M,)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():  # one device sync, for an error message instead of a device assert
        raise ValueError(
            f"{fn}: target values must be class indices in [0, {n_classes - 1}] (or "
            f"ignore_index={ignore_index}), got {t[bad][0].item()}"
        )
    if weight is None:
        weight = torch.ones(n_classes, dtype=x.dtype, device=x.device)
    elif not isinstance(weight, torch.Tensor) or tuple(weight.shape) != (n_classes,):
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"{fn}: weight must be a tensor of shape (C,) = ({n_classes},), got {got}")
    rows = x.movedim(1, -1).reshape(-1, n_classes)  # (M, C)
    return rows, torch.where(valid, t, 0), valid, weight


def _reduce(losses, row_weight, reduction, target_shape):
    if reduction == "none":
        return losses.reshape(target_shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / row_weight.sum()  # 0 / 0 = nan when every target is ignored


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy between logits and class indices, as
    ``torch.nn.functional.cross_entropy``: our ``log_softmax`` over the classes, then the
    smoothed, weighted negative log-likelihood
    :math:`\\ell_i = -\\sum_c q_{ic} \\log p_{ic}` with
    :math:`q_{ic} = (1 - \\varepsilon) w_{y_i} [c = y_i] + \\tfrac{\\varepsilon}{C} w_c`.

    Args:
        input: logits ``(N, C)`` or ``(N, C, d1, ...)``, floating point.
        target: class indices in ``[0, C)``, ``(N,)`` or ``(N, d1, ...)``, integer dtype.
        weight: per-class weights ``(C,)`` or ``None``. Default ``None``.
        ignore_index: targets equal to this contribute nothing. Default -100.
        reduction: ``"mean"`` (divided by the summed weight of the targets not ignored),
            ``"sum"`` or ``"none"``. Default ``"mean"``.
        label_smoothing: ``eps`` in ``[0, 1]``. Default 0.0.

    Returns:
        A scalar, or ``(N, d1, ...)`` for ``"none"``.
    """
    fn = "cross_entropy"
    rows, t, valid, w = _check_classification(input, target, weight, ignore_index, reduction, fn)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing}")
    n_classes = rows.shape[1]
    log_p = log_softmax(rows, dim=1)  # (M, C)
    row_weight = torch.where(valid, w[t], 0)  # (M,)
    nll = -row_weight * log_p.gather(1, t[:, None])[:, 0]  # (M,)
    smooth = torch.where(valid, -(log_p * w).sum(dim=1), 0)  # (M,)
    losses = (1 - label_smoothing) * nll + (label_smoothing / n_classes) * smooth
    return _reduce(losses, row_weight, reduction, target.shape)


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
    return _reduce(losses, row_weight, reduction, target.shape)


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
    for name, a in (("input", input), ("target", target)):
        if not isinstance(a, torch.Tensor) or not a.is_floating_point():
            got = a.dtype if isinstance(a, torch.Tensor) else type(a).__name__
            raise TypeError(f"mse_loss: {name} must be a floating-point torch.Tensor, got {got}")
    if target.shape != input.shape:
        raise ValueError(
            f"mse_loss: target must have input's shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    sq = (input - target) ** 2
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()
