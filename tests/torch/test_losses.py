"""Torch cross_entropy, nll_loss and mse_loss from primitives: parity with
torch.nn.functional (reductions, label smoothing, weights, ignore_index, K-dim inputs) in
float64 and float32, gradcheck, device, that the built-ins never run, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.losses import cross_entropy, mse_loss, nll_loss

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}
REDUCTIONS = ["mean", "sum", "none"]


@st.composite
def classification_args(draw):
    gen = torch.Generator().manual_seed(draw(st.integers(0, 99)))
    n, rest = draw(st.integers(1, 5)), draw(st.lists(st.integers(1, 3), max_size=2))
    n_classes = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    x = torch.randn((n, n_classes, *rest), generator=gen, dtype=dtype)
    target = torch.randint(0, n_classes, (n, *rest), generator=gen)
    kwargs = dict(reduction=draw(st.sampled_from(REDUCTIONS)))
    if draw(st.booleans()):  # ignore some targets, but keep one so 'mean' is finite
        target[torch.rand(target.shape, generator=gen) < 0.3] = -100
        target.view(-1)[0] = 0
    if draw(st.booleans()):
        kwargs["weight"] = torch.rand(n_classes, generator=gen, dtype=dtype) + 0.2
    return x, target, kwargs, dtype


def assert_matches(ours, ref, x, target, dtype, **kwargs):
    results = []
    for fn in (ref, ours):
        xl = x.clone().requires_grad_()
        out = fn(xl, target, **kwargs)
        dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        out.backward(dout)
        results.append((out.detach(), xl.grad))
    (out_ref, dx_ref), (out, dx) = results
    assert out.dtype == dtype and out.shape == out_ref.shape
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    torch.testing.assert_close(dx, dx_ref, **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(args=classification_args(), label_smoothing=st.sampled_from([0.0, 0.1, 0.5]))
def test_cross_entropy_matches_torch(args, label_smoothing):
    x, target, kwargs, dtype = args
    assert_matches(
        cross_entropy, F.cross_entropy, x, target, dtype, label_smoothing=label_smoothing, **kwargs
    )


@settings(max_examples=30, deadline=None)
@given(args=classification_args())
def test_nll_loss_matches_torch(args):
    x, target, kwargs, dtype = args
    assert_matches(nll_loss, F.nll_loss, x, target, dtype, **kwargs)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    reduction=st.sampled_from(REDUCTIONS),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 99),
)
def test_mse_loss_matches_torch(shape, reduction, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    assert_matches(
        mse_loss,
        F.mse_loss,
        x,
        torch.randn(shape, generator=gen, dtype=dtype),
        dtype,
        reduction=reduction,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_and_device(reduction, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 2, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    target = torch.tensor([[0, 1], [2, -100], [1, 1], [0, 2]], device=device)
    weight = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64, device=device)
    assert torch.autograd.gradcheck(
        lambda x: cross_entropy(x, target, weight=weight, reduction=reduction, label_smoothing=0.2),
        (x,),
    )
    assert torch.autograd.gradcheck(lambda x: nll_loss(x, target, reduction=reduction), (x,))
    y = torch.randn(4, 3, 2, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: mse_loss(x, y, reduction=reduction), (x, y))
    assert cross_entropy(x, target).device == x.device


def test_cross_entropy_stable_for_huge_logits():
    x = torch.tensor([[1000.0, 0.0, -1000.0]], dtype=torch.float64, requires_grad=True)
    loss = cross_entropy(x, torch.tensor([2]))
    loss.backward()
    torch.testing.assert_close(loss, torch.tensor(2000.0, dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.float64))


@pytest.mark.parametrize(
    "fn, names",
    [
        (cross_entropy, ["cross_entropy", "nll_loss", "log_softmax"]),
        (nll_loss, ["nll_loss"]),
        (mse_loss, ["mse_loss"]),
    ],
)
def test_never_calls_the_built_in_loss(fn, names, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in loss was called")

    for name in names:
        for module in (F, torch, torch.Tensor, torch._C._nn):
            monkeypatch.setattr(module, name, forbidden, raising=False)
    x = torch.randn(3, 4, requires_grad=True)
    target = torch.randn(3, 4) if fn is mse_loss else torch.tensor([0, 3, 1])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(x, target).backward()
    ops = {e.name for e in prof.events()}
    assert not [o for o in ops if any(n in o for n in names)], ops


X = torch.zeros(2, 3)


@pytest.mark.parametrize("fn", [cross_entropy, nll_loss])
@pytest.mark.parametrize(
    "x, target, kwargs, error, match",
    [
        (torch.zeros(3), torch.tensor(0), {}, ValueError, "input"),
        (X, torch.tensor([0, 1, 2]), {}, ValueError, "target must have shape"),
        (X, torch.tensor([0.0, 1.0]), {}, TypeError, "target"),
        (X, torch.tensor([0, 3]), {}, ValueError, "target values"),
        (X, torch.tensor([-1, 0]), {}, ValueError, "target values"),
        (X.long(), torch.tensor([0, 1]), {}, TypeError, "input"),
        (X, torch.tensor([0, 1]), dict(reduction="avg"), ValueError, "reduction"),
        (X, torch.tensor([0, 1]), dict(weight=torch.ones(2)), ValueError, "weight"),
    ],
)
def test_bad_inputs_raise(fn, x, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(x, target, **kwargs)


def test_other_bad_inputs_raise():
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy(X, torch.tensor([0, 1]), label_smoothing=-0.1)
    with pytest.raises(ValueError, match="target must have input's shape"):
        mse_loss(X, torch.zeros(3))
