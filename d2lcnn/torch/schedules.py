"""Plug the schedules of :mod:`d2lcnn.schedules` into ``torch.optim``."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["as_torch_scheduler"]


def as_torch_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Callable[[int], float]
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that sets every parameter group's lr to ``schedule(step)``.

    ``LambdaLR`` multiplies each group's initial lr by a factor; here the factor is
    ``schedule(step) / initial_lr``, so the group's lr *is* the schedule's value (up to one
    rounding). Call ``scheduler.step()`` after each ``optimizer.step()``, as usual.

    Args:
        optimizer: any ``torch.optim.Optimizer``; every group's lr must be > 0.
        schedule: a function ``step -> lr``, e.g.
            ``functools.partial(d2lcnn.schedules.cosine_lr, lr=0.1, total_steps=1000)``.

    Returns:
        The ``torch.optim.lr_scheduler.LambdaLR``. Creating it already sets the lr to
        ``schedule(0)``.

    Example:
        >>> from functools import partial
        >>> from d2lcnn.schedules import step_lr
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = as_torch_scheduler(opt, partial(step_lr, lr=0.1, step_size=2, gamma=0.5))
        >>> for _ in range(3):
        ...     opt.step()
        ...     sched.step()
        >>> round(opt.param_groups[0]["lr"], 12)
        0.05
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"as_torch_scheduler: optimizer must be a torch.optim.Optimizer, "
            f"got {type(optimizer).__name__}"
        )
    if not callable(schedule):
        raise TypeError(f"as_torch_scheduler: schedule must be callable, got {schedule!r}")
    lambdas = []
    for i, group in enumerate(optimizer.param_groups):
        base = group.get("initial_lr", group["lr"])
        if not base > 0:
            raise ValueError(
                f"as_torch_scheduler: param group {i} needs lr > 0 to be rescaled, got {base!r}"
            )
        lambdas.append(lambda step, base=base: schedule(step) / base)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
