"""Loss functions from tensor primitives (our :func:`~d2lcnn.torch.activations.log_softmax`,
``gather``, sums), with ``torch.nn.functional`` names and semantics; differentiable by
autograd, on the input's device. The formulas, including label smoothing, class weights,
``ignore_index`` and class-probability targets, are explained in :mod:`d2lcnn.numpy.losses`."""

from __future__ import annotations

import torch

from d2lcnn.torch.activations import log_softmax

__all__ = ["cross_entropy", "nll_loss", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_input(x, fn):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{fn}: input must be a floating-point torch.Tensor, got {got}")
    if x.dim() < 2:
        raise ValueError(
            f"{fn}: input must be (N, C) or (N, C, d1, ...), got shape {tuple(x.shape)}"
        )


def _check_reduction(reduction, fn):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_weight(weight, x, fn):
    """Per-class weights ``(C,)`` (all ones for ``None``)."""
    n_classes = x.shape[1]
    if weight is None:
        return torch.ones(n_classes, dtype=x.dtype, device=x.device)
    if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != (n_classes,):
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"{fn}: weight must be a tensor of shape (C,) = ({n_classes},), got {got}")
    return weight


def _class_rows(x):
    """Move the class dimension last and fold the others: ``(N, C, *) -> (M, C)``."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def _check_classification(x, target, weight, ignore_index, reduction, fn):
    """Validate; return ``x`` as ``(M, C)`` rows (class dimension last), the target ``(M,)``
    with ignored entries replaced by 0, the mask of rows not ignored and the weights."""
    _check_input(x, fn)
    if not isinstance(target, torch.Tensor) or target.is_floating_point() or target.is_complex():
        got = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
        got_shape = f" of shape {tuple(target.shape)}" if isinstance(target, torch.Tensor) else ""
        raise TypeError(
            f"{fn}: target must be an integer tensor of class indices (N, d1, ...), or class "
            f"probabilities with input's shape {tuple(x.shape)} (cross_entropy only), "
            f"got {got}{got_shape}"
        )
    expected = (x.shape[0], *x.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{fn}: target must have shape (N, d1, ...) = {expected} for input of shape "
            f"{tuple(x.shape)}, got {tuple(target.shape)}"
        )
    _check_reduction(reduction, fn)
    n_classes = x.shape[1]
    t = target.reshape(-1).long()  # (M,)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():  # one device sync, for an error message instead of a device assert
        raise ValueError(
            f"{fn}: target values must be class indices in [0, {n_classes - 1}] (or "
            f"ignore_index={ignore_index}), got {t[bad][0].item()}"
        )
    w = _check_weight(weight, x, fn)
    return _class_rows(x), torch.where(valid, t, 0), valid, w


def _check_probabilities(x, target, weight, ignore_index, reduction, fn):
    """Validate class-probability targets (``target.shape == x.shape``); return ``x`` and
    ``target`` as ``(M, C)`` rows and the weights ``(C,)``."""
    _check_input(x, fn)
    if not target.is_floating_point():
        raise TypeError(
            f"{fn}: a target of input's shape {tuple(x.shape)} holds class probabilities and "
            f"must be floating point, got dtype {target.dtype} (class indices have shape "
            f"(N, d1, ...) = {(x.shape[0], *x.shape[2:])})"
        )
    if ignore_index >= 0:  # a negative one can never match, so PyTorch lets it pass
        raise ValueError(
            f"{fn}: ignore_index applies to class-index targets only, got "
            f"ignore_index={ignore_index} with class probabilities"
        )
    _check_reduction(reduction, fn)
    return _class_rows(x), _class_rows(target), _check_weight(weight, x, fn)


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
        TypeError: a non-float ``input``, a class-index target that is not integer, or a
            target of ``input``'s shape that is not floating point.
    """
    fn = "cross_entropy"
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing}")
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
