"""Torch optimizers written by hand: iterates equal torch.optim's step for step (autograd
gradients, float64, on every device), the two momentum forms agree, they work with parameter
groups, schedulers and state_dict, and they reject bad arguments like the NumPy ones."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import optimizer_hyperparameters

from d2lcnn.torch.optim import SGD, Adagrad, Adam, AdamW, MomentumVelocity, RMSprop

STEPS = 20
TOL = dict(rtol=1e-10, atol=1e-12)  # float64; only the order of a few operations differs

OURS = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW}

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.2, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.9)),
    ("RMSprop", dict(lr=0.005, alpha=0.95, centered=True, momentum=0.5, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.3, amsgrad=True)),
]


def make_problem(device, seed=0):
    """A small least-squares problem: ``0.5 * mean ||x w + b - y||^2``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    x = (x * torch.tensor([3.0, 1.0, 0.3, 1.0, 0.1], dtype=torch.float64)).to(device)
    y = torch.randn(16, 3, generator=gen, dtype=torch.float64).to(device)
    w0 = torch.randn(5, 3, generator=gen, dtype=torch.float64).to(device)
    b0 = torch.randn(3, generator=gen, dtype=torch.float64).to(device)

    def loss_fn(w, b):
        return 0.5 * ((x @ w + b - y) ** 2).sum(dim=1).mean()

    return loss_fn, (w0, b0)


def trajectory(make_opt, loss_fn, init, lrs=None):
    params = [p.clone().requires_grad_() for p in init]
    opt = make_opt(params)
    out = []
    for t in range(STEPS):
        opt.zero_grad()
        loss_fn(*params).backward()
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[t]
        opt.step()
        out.append([p.detach().clone() for p in params])
    return out


def assert_same_trajectory(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        for pa, pb in zip(a, b, strict=True):
            torch.testing.assert_close(pa, pb, **TOL)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_matches_torch_optim(name, kwargs, device):
    loss_fn, init = make_problem(device)
    ours = trajectory(lambda ps: OURS[name](ps, **kwargs), loss_fn, init)
    theirs = trajectory(lambda ps: getattr(torch.optim, name)(ps, **kwargs), loss_fn, init)
    assert not torch.allclose(ours[-1][0], init[0])
    assert_same_trajectory(ours, theirs)


@settings(max_examples=30, deadline=None)
@given(case=optimizer_hyperparameters(), seed=st.integers(0, 50))
def test_matches_torch_optim_for_random_hyperparameters(case, seed):
    name, kwargs = case
    loss_fn, init = make_problem("cpu", seed=seed)
    assert_same_trajectory(
        trajectory(lambda ps: OURS[name](ps, **kwargs), loss_fn, init),
        trajectory(lambda ps: getattr(torch.optim, name)(ps, **kwargs), loss_fn, init),
    )


@pytest.mark.parametrize("name, kwargs", [CASES[2], CASES[8], CASES[13]])
def test_matches_torch_optim_with_changing_lr(name, kwargs):
    loss_fn, init = make_problem("cpu", seed=1)
    lrs = [kwargs["lr"] * 0.9**t for t in range(STEPS)]
    assert_same_trajectory(
        trajectory(lambda ps: OURS[name](ps, **kwargs), loss_fn, init, lrs),
        trajectory(lambda ps: getattr(torch.optim, name)(ps, **kwargs), loss_fn, init, lrs),
    )


@pytest.mark.parametrize("nesterov", [False, True])
def test_velocity_form_gives_the_same_iterates(nesterov, device):
    loss_fn, init = make_problem(device, seed=2)
    kwargs = dict(lr=0.03, momentum=0.9, nesterov=nesterov)
    assert_same_trajectory(
        trajectory(lambda ps: MomentumVelocity(ps, **kwargs), loss_fn, init),
        trajectory(lambda ps: torch.optim.SGD(ps, **kwargs), loss_fn, init),
    )


def test_param_groups_scheduler_and_state_dict():
    """Two groups with their own hyperparameters, a torch scheduler driving lr, and a
    state_dict that restores the run exactly."""
    loss_fn, init = make_problem("cpu", seed=3)

    def run(cls, steps, state=None, params=None):
        params = params or [p.clone().requires_grad_() for p in init]
        opt = cls([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.001}], lr=0.01)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        if state is not None:
            opt.load_state_dict(state[0])
            sched.load_state_dict(state[1])
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(*params).backward()
            opt.step()
            sched.step()
        return params, (opt.state_dict(), sched.state_dict())

    ours, _ = run(Adam, 10)
    theirs, _ = run(torch.optim.Adam, 10)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    half, state = run(Adam, 5)
    resumed, _ = run(
        Adam, 5, state=state, params=[p.detach().clone().requires_grad_() for p in half]
    )
    for a, b in zip(resumed, ours, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_closure_loss_is_returned():
    loss_fn, init = make_problem("cpu")
    params = [p.clone().requires_grad_() for p in init]
    opt = SGD(params, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = loss_fn(*params)
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(loss_fn(*init).item())


def test_adam_without_bias_correction_first_step():
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([2.0, -0.5, 30.0], dtype=torch.float64)
    Adam([p], lr=1e-3, eps=0.0, bias_correction=False).step()
    expected = -0.1 / 0.001**0.5 * 1e-3 * torch.sign(p.grad)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (SGD, dict(lr=-0.1), "lr must be >= 0"),
        (SGD, dict(nesterov=True), "nesterov=True needs momentum > 0"),
        (MomentumVelocity, dict(momentum=-0.5), "momentum must be >= 0"),
        (Adagrad, dict(eps=-1.0), "eps must be >= 0"),
        (RMSprop, dict(alpha=1.5), r"alpha must be in \[0, 1\)"),
        (Adam, dict(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\)"),
        (Adam, dict(eps=-1e-8), "eps must be >= 0"),
        (AdamW, dict(lr=-1.0), "AdamW: lr must be >= 0"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([torch.zeros(3, requires_grad=True)], **kwargs)
