"""Learning-rate schedules as plain functions of the step number, for either backend.

Each schedule maps ``step = 0, 1, 2, ...`` (a count of optimizer steps, or of epochs: the
unit is whatever the caller advances it by) to a learning rate, with the hyperparameters as
keyword-only arguments::

    for t in range(num_steps):
        opt.lr = cosine_lr(t, lr=0.1, total_steps=num_steps)      # d2lcnn.numpy optimizers
        opt.step(grads)

To fix the hyperparameters once, use ``functools.partial(cosine_lr, lr=0.1, total_steps=T)``;
:func:`warmup` takes such a one-argument function and returns another.
:func:`d2lcnn.torch.schedules.as_torch_scheduler` turns one into a ``LambdaLR``.

The values equal those of ``torch.optim.lr_scheduler``'s ``StepLR``, ``MultiStepLR``,
``ExponentialLR``, ``CosineAnnealingLR`` (up to ``total_steps``), ``LinearLR`` and, for
:func:`warmup`, ``SequentialLR([LinearLR, ...])`` (tests/test_schedules.py).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable

from d2lcnn.checks import check_int, check_nonnegative, check_probability

__all__ = [
    "step_lr",
    "multistep_lr",
    "exponential_lr",
    "inverse_time_lr",
    "cosine_lr",
    "linear_lr",
    "inverse_sqrt_lr",
    "warmup",
]


def step_lr(step: int, *, lr: float, step_size: int, gamma: float = 0.1) -> float:
    """Step decay: multiply by ``gamma`` every ``step_size`` steps, as ``StepLR``.

    ``lr_t = lr * gamma ** floor(t / step_size)``

    Args:
        step: the step ``t >= 0``.
        lr: initial learning rate, >= 0.
        step_size: steps between decays, >= 1.
        gamma: decay factor, >= 0. Default 0.1.
    """
    step = check_int(step, "step", "step_lr", minimum=0)
    lr = check_nonnegative(lr, "lr", "step_lr")
    step_size = check_int(step_size, "step_size", "step_lr", minimum=1)
    gamma = check_nonnegative(gamma, "gamma", "step_lr")
    return lr * gamma ** (step // step_size)


def multistep_lr(step: int, *, lr: float, milestones: Iterable[int], gamma: float = 0.1) -> float:
    """Decay by ``gamma`` at each milestone, as ``MultiStepLR`` (e.g. the common ImageNet
    ResNet recipe's x0.1 at epochs 30, 60 and 90; He et al. divided it when the error
    plateaued).

    ``lr_t = lr * gamma ** (number of milestones <= t)``

    Args:
        step: the step ``t >= 0``.
        lr: initial learning rate, >= 0.
        milestones: steps at which to decay, ints >= 0 (a repeated milestone decays twice).
        gamma: decay factor, >= 0. Default 0.1.
    """
    step = check_int(step, "step", "multistep_lr", minimum=0)
    lr = check_nonnegative(lr, "lr", "multistep_lr")
    gamma = check_nonnegative(gamma, "gamma", "multistep_lr")
    milestones = list(milestones)
    if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 0 for m in milestones):
        raise ValueError(f"multistep_lr: milestones must be ints >= 0, got {milestones!r}")
    return lr * gamma ** bisect.bisect_right(sorted(milestones), step)


def exponential_lr(step: int, *, lr: float, gamma: float) -> float:
    """Exponential decay, as ``ExponentialLR``: ``lr_t = lr * gamma ** t``.

    (``lr * exp(-k t)`` is the same schedule with ``gamma = exp(-k)``.)

    Args:
        step: the step ``t >= 0``.
        lr: initial learning rate, >= 0.
        gamma: decay factor per step, >= 0.
    """
    step = check_int(step, "step", "exponential_lr", minimum=0)
    lr = check_nonnegative(lr, "lr", "exponential_lr")
    gamma = check_nonnegative(gamma, "gamma", "exponential_lr")
    return lr * gamma**step


def inverse_time_lr(step: int, *, lr: float, decay: float) -> float:
    """1/t decay: ``lr_t = lr / (1 + decay * t)``.

    Args:
        step: the step ``t >= 0``.
        lr: initial learning rate, >= 0.
        decay: the rate ``k``, >= 0.
    """
    step = check_int(step, "step", "inverse_time_lr", minimum=0)
    lr = check_nonnegative(lr, "lr", "inverse_time_lr")
    decay = check_nonnegative(decay, "decay", "inverse_time_lr")
    return lr / (1 + decay * step)


def cosine_lr(step: int, *, lr: float, total_steps: int, min_lr: float = 0.0) -> float:
    """Cosine decay from ``lr`` to ``min_lr`` over ``total_steps``, as ``CosineAnnealingLR``
    with ``T_max = total_steps`` and ``eta_min = min_lr``.

    ``lr_t = min_lr + (lr - min_lr) * (1 + cos(pi * t / T)) / 2`` for ``t <= T``, and
    ``min_lr`` after that (torch's scheduler would climb back up instead).

    Args:
        step: the step ``t >= 0``.
        lr: initial learning rate, >= 0.
        total_steps: ``T``, the length of the decay, >= 1.
        min_lr: final learning rate, >= 0. Default 0.
    """
    step = check_int(step, "step", "cosine_lr", minimum=0)
    lr = check_nonnegative(lr, "lr", "cosine_lr")
    total_steps = check_int(total_steps, "total_steps", "cosine_lr", minimum=1)
    min_lr = check_nonnegative(min_lr, "min_lr", "cosine_lr")
    t = min(step, total_steps)
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * t / total_steps)) / 2


def linear_lr(
    step: int,
    *,
    lr: float,
    total_steps: int,
    start_factor: float = 1.0,
    end_factor: float = 0.0,
) -> float:
    """Linear interpolation of the factor from ``start_factor`` to ``end_factor`` over
    ``total_steps``, then constant, as ``LinearLR`` (whose ``total_iters`` is our
    ``total_steps``). The defaults give linear decay to zero, ``lr * (1 - t / T)``.

    ``lr_t = lr * (start + (end - start) * min(t, T) / T)``

    Args:
        step: the step ``t >= 0``.
        lr: the base learning rate, >= 0.
        total_steps: ``T``, >= 1.
        start_factor: factor at ``t = 0``, >= 0. Default 1.
        end_factor: factor from ``t = T`` on, >= 0. Default 0.
    """
    fn = "linear_lr"
    step = check_int(step, "step", fn, minimum=0)
    lr = check_nonnegative(lr, "lr", fn)
    total_steps = check_int(total_steps, "total_steps", fn, minimum=1)
    start = check_nonnegative(start_factor, "start_factor", fn)
    end = check_nonnegative(end_factor, "end_factor", fn)
    return lr * (start + (end - start) * min(step, total_steps) / total_steps)


def inverse_sqrt_lr(step: int, *, lr: float, timescale: int = 1) -> float:
    """Inverse square-root decay: constant for ``timescale`` steps, then ``∝ 1/sqrt(t)``.

    ``lr_t = lr * sqrt(timescale / max(t, timescale))``, so ``lr / sqrt(t)`` for the default
    ``timescale = 1`` (with ``lr_0 = lr``). Usually combined with :func:`warmup`.

    Args:
        step: the step ``t >= 0``.
        lr: initial learning rate, >= 0.
        timescale: steps before the decay starts, >= 1. Default 1.
    """
    step = check_int(step, "step", "inverse_sqrt_lr", minimum=0)
    lr = check_nonnegative(lr, "lr", "inverse_sqrt_lr")
    timescale = check_int(timescale, "timescale", "inverse_sqrt_lr", minimum=1)
    return lr * math.sqrt(timescale / max(step, timescale))


def warmup(
    schedule: Callable[[int], float], *, warmup_steps: int, start_factor: float = 0.0
) -> Callable[[int], float]:
    """Prepend a linear warmup to a schedule.

    For ``t < W`` the learning rate rises linearly from ``start_factor * schedule(0)``
    towards ``schedule(0)``; from ``t = W`` on it is ``schedule(t - W)``, so the schedule
    starts afresh after the warmup (a cosine over ``T`` steps then ends at ``W + T``). This
    is ``SequentialLR([LinearLR(opt, start_factor, 1.0, total_iters=W), scheduler],
    milestones=[W])``; torch's ``LinearLR`` additionally needs ``start_factor > 0``.

    Args:
        schedule: a function of the step returning the learning rate, e.g.
            ``functools.partial(cosine_lr, lr=0.1, total_steps=1000)``.
        warmup_steps: ``W``, >= 1.
        start_factor: fraction of ``schedule(0)`` at ``t = 0``, in [0, 1]. Default 0.

    Returns:
        A function ``step -> lr``.
    """
    if not callable(schedule):
        raise TypeError(f"warmup: schedule must be a function of the step, got {schedule!r}")
    warmup_steps = check_int(warmup_steps, "warmup_steps", "warmup", minimum=1)
    start_factor = check_probability(start_factor, "start_factor", "warmup")

    def warmed_up(step: int) -> float:
        step = check_int(step, "step", "warmup", minimum=0)
        if step >= warmup_steps:
            return schedule(step - warmup_steps)
        factor = start_factor + (1 - start_factor) * step / warmup_steps
        return schedule(0) * factor

    return warmed_up
