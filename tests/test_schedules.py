"""Learning-rate schedules: values equal torch.optim.lr_scheduler's over many steps, the
closed forms from the notes, warmup composition, the LambdaLR wrapper, and bad arguments."""

import math
from functools import partial

import pytest
import torch
from torch.optim import lr_scheduler

from d2lcnn.schedules import (
    cosine_lr,
    exponential_lr,
    inverse_sqrt_lr,
    inverse_time_lr,
    linear_lr,
    multistep_lr,
    step_lr,
    warmup,
)
from d2lcnn.torch.schedules import as_torch_scheduler

STEPS = 300
TOL = dict(rel=1e-12, abs=1e-15)  # torch updates its lr multiplicatively, step by step

LR = 0.1


def torch_lrs(make_scheduler, steps=STEPS, lr=LR):
    """The lr that ``torch.optim`` would use at steps 0, 1, ..., steps - 1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def assert_lrs(ours, theirs):
    assert len(ours) == len(theirs)
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == pytest.approx(b, **TOL), f"step {t}: {a} != {b}"


# --------------------------------------------------------------------------- parity with torch


@pytest.mark.parametrize("step_size, gamma", [(1, 0.99), (30, 0.1), (7, 0.5)])
def test_step_lr_matches_torch(step_size, gamma):
    ours = [step_lr(t, lr=LR, step_size=step_size, gamma=gamma) for t in range(STEPS)]
    theirs = torch_lrs(lambda o: lr_scheduler.StepLR(o, step_size=step_size, gamma=gamma))
    assert_lrs(ours, theirs)


@pytest.mark.parametrize("milestones", [[30, 60, 90], [5, 5, 100], [250, 10]])
def test_multistep_lr_matches_torch(milestones):
    ours = [multistep_lr(t, lr=LR, milestones=milestones, gamma=0.1) for t in range(STEPS)]
    theirs = torch_lrs(lambda o: lr_scheduler.MultiStepLR(o, milestones=milestones, gamma=0.1))
    assert_lrs(ours, theirs)


@pytest.mark.parametrize("gamma", [0.99, 0.9, 1.0])
def test_exponential_lr_matches_torch(gamma):
    ours = [exponential_lr(t, lr=LR, gamma=gamma) for t in range(STEPS)]
    assert_lrs(ours, torch_lrs(lambda o: lr_scheduler.ExponentialLR(o, gamma=gamma)))


@pytest.mark.parametrize("total_steps, min_lr", [(STEPS - 1, 0.0), (100, 1e-3), (7, 0.05)])
def test_cosine_lr_matches_torch_up_to_total_steps(total_steps, min_lr):
    steps = total_steps + 1
    ours = [cosine_lr(t, lr=LR, total_steps=total_steps, min_lr=min_lr) for t in range(steps)]
    theirs = torch_lrs(
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=total_steps, eta_min=min_lr), steps
    )
    assert_lrs(ours, theirs)
    assert ours[-1] == pytest.approx(min_lr, abs=1e-15)
    # and then it stays there (torch's would climb back up)
    assert cosine_lr(steps + 5, lr=LR, total_steps=total_steps, min_lr=min_lr) == min_lr


@pytest.mark.parametrize(
    "start_factor, end_factor, total_steps", [(1 / 3, 1.0, 5), (1.0, 0.1, 200), (0.5, 0.25, 40)]
)
def test_linear_lr_matches_torch(start_factor, end_factor, total_steps):
    ours = [
        linear_lr(
            t, lr=LR, total_steps=total_steps, start_factor=start_factor, end_factor=end_factor
        )
        for t in range(STEPS)
    ]
    theirs = torch_lrs(
        lambda o: lr_scheduler.LinearLR(
            o, start_factor=start_factor, end_factor=end_factor, total_iters=total_steps
        )
    )
    assert_lrs(ours, theirs)


@pytest.mark.parametrize("start_factor, warmup_steps", [(0.01, 10), (0.5, 3), (1e-3, 50)])
def test_warmup_then_cosine_matches_sequential_lr(start_factor, warmup_steps):
    total = STEPS - warmup_steps - 1
    schedule = warmup(
        partial(cosine_lr, lr=LR, total_steps=total, min_lr=1e-4),
        warmup_steps=warmup_steps,
        start_factor=start_factor,
    )

    def make(opt):
        linear = lr_scheduler.LinearLR(
            opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps
        )
        cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=1e-4)
        return lr_scheduler.SequentialLR(opt, [linear, cosine], milestones=[warmup_steps])

    assert_lrs([schedule(t) for t in range(STEPS)], torch_lrs(make))


def test_warmup_then_step_matches_sequential_lr():
    schedule = warmup(
        partial(step_lr, lr=LR, step_size=20, gamma=0.5), warmup_steps=5, start_factor=0.2
    )

    def make(opt):
        linear = lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=5)
        step = lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
        return lr_scheduler.SequentialLR(opt, [linear, step], milestones=[5])

    assert_lrs([schedule(t) for t in range(STEPS)], torch_lrs(make))


# --------------------------------------------------------------------------- closed forms


def test_closed_forms_from_the_notes():
    assert inverse_time_lr(0, lr=LR, decay=0.5) == LR
    assert inverse_time_lr(10, lr=LR, decay=0.5) == pytest.approx(LR / 6)
    assert exponential_lr(10, lr=LR, gamma=math.exp(-0.2)) == pytest.approx(LR * math.exp(-2))
    assert cosine_lr(50, lr=LR, total_steps=100) == pytest.approx(LR / 2)
    assert linear_lr(25, lr=LR, total_steps=100) == pytest.approx(0.75 * LR)
    assert linear_lr(150, lr=LR, total_steps=100) == 0.0
    assert [inverse_sqrt_lr(t, lr=LR) for t in (0, 1, 4, 100)] == pytest.approx(
        [LR, LR, LR / 2, LR / 10]
    )
    assert [inverse_sqrt_lr(t, lr=LR, timescale=4) for t in (0, 3, 4, 16)] == pytest.approx(
        [LR, LR, LR, LR / 2]
    )


def test_warmup_from_zero():
    schedule = warmup(partial(inverse_sqrt_lr, lr=LR), warmup_steps=4)
    assert [schedule(t) for t in range(6)] == pytest.approx([0, LR / 4, LR / 2, 3 * LR / 4, LR, LR])


# --------------------------------------------------------------------------- torch wrapper


@pytest.mark.parametrize(
    "schedule",
    [
        partial(cosine_lr, lr=LR, total_steps=100, min_lr=1e-3),
        partial(inverse_time_lr, lr=LR, decay=0.1),
        warmup(partial(inverse_sqrt_lr, lr=LR, timescale=10), warmup_steps=10),
    ],
)
def test_as_torch_scheduler_follows_the_schedule(schedule):
    theirs = torch_lrs(lambda o: as_torch_scheduler(o, schedule), steps=120)
    assert_lrs([schedule(t) for t in range(120)], theirs)


def test_as_torch_scheduler_sets_every_group():
    w, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
    sched = as_torch_scheduler(opt, partial(step_lr, lr=0.2, step_size=1, gamma=0.5))
    for _ in range(3):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.025, 0.025])


def test_as_torch_scheduler_errors():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
    with pytest.raises(ValueError, match="param group 0 needs lr > 0"):
        as_torch_scheduler(opt, partial(step_lr, lr=0.1, step_size=1))
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        as_torch_scheduler(None, partial(step_lr, lr=0.1, step_size=1))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: step_lr(-1, lr=LR, step_size=1), "step must be an int >= 0, got -1"),
        (lambda: step_lr(0, lr=-LR, step_size=1), "lr must be >= 0"),
        (lambda: step_lr(0, lr=LR, step_size=0), "step_size must be an int >= 1, got 0"),
        (lambda: step_lr(0, lr=LR, step_size=1, gamma=-0.1), "gamma must be >= 0"),
        (lambda: multistep_lr(0, lr=LR, milestones=[3, -1]), "milestones must be ints >= 0"),
        (lambda: exponential_lr(0, lr=float("nan"), gamma=0.9), "lr must be >= 0"),
        (lambda: inverse_time_lr(0, lr=LR, decay=-1.0), "decay must be >= 0"),
        (lambda: cosine_lr(0, lr=LR, total_steps=0), "total_steps must be an int >= 1"),
        (lambda: cosine_lr(0, lr=LR, total_steps=10, min_lr=-1.0), "min_lr must be >= 0"),
        (lambda: linear_lr(0, lr=LR, total_steps=10, end_factor=-0.5), "end_factor must be"),
        (lambda: inverse_sqrt_lr(0, lr=LR, timescale=0), "timescale must be an int >= 1"),
        (lambda: warmup(lambda t: LR, warmup_steps=0), "warmup_steps must be an int >= 1"),
        (lambda: warmup(lambda t: LR, warmup_steps=5, start_factor=1.5), r"in \[0, 1\]"),
        (lambda: warmup(lambda t: LR, warmup_steps=5)(-2), "warmup: step must be"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="lr must be a real number"):
        step_lr(0, lr="0.1", step_size=1)
    with pytest.raises(TypeError, match="step_lr: step must be an int >= 0, got float 1.5"):
        step_lr(1.5, lr=LR, step_size=1)
    with pytest.raises(TypeError, match="schedule must be a function"):
        warmup(0.1, warmup_steps=5)


def test_step_lr_default_gamma_is_torchs():
    """StepLR's default gamma (0.1), taken from torch rather than restated."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    torch_lrs = []
    for _ in range(5):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [step_lr(t, lr=1.0, step_size=2) for t in range(5)] == pytest.approx(torch_lrs)


def test_inverse_sqrt_lr_rejects_a_negative_step():
    with pytest.raises(ValueError, match="inverse_sqrt_lr: step"):
        inverse_sqrt_lr(-1, lr=1.0)
