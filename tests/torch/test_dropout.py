"""Torch dropout from primitives: parity with F.dropout / F.dropout2d on matched masks,
statistics, explicit generators, device, that the built-ins never run, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.dropout import dropout, dropout2d, vanilla_dropout

TOL = {torch.float64: dict(rtol=1e-12, atol=0), torch.float32: dict(rtol=1e-6, atol=0)}
SIGMAS = 5  # statistical checks fail by chance with probability < 1e-6


def nonzero_randn(shape, seed=0, dtype=torch.float64):
    """Normal values without exact zeros, so a zero output reveals a dropped element."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return x + torch.sign(x) * 0.1


def run(fn, x, dout, **kwargs):
    x = x.clone().requires_grad_()
    out = fn(x, **kwargs)
    out.backward(dout)
    return out.detach(), x.grad


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple),
    p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 99),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)
def test_dropout_matches_torch_on_the_same_mask(shape, p, seed, dtype):
    x, dout = nonzero_randn(shape, seed, dtype), nonzero_randn(shape, seed + 1, dtype)
    torch.manual_seed(seed)  # F.dropout draws from the global generator
    out_ref, dx_ref = run(F.dropout, x, dout, p=p)
    out, dx = run(dropout, x, dout, p=p, mask=out_ref != 0)
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    torch.testing.assert_close(dx, dx_ref, **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    p=st.sampled_from([0.2, 0.5, 1.0]),
    seed=st.integers(0, 99),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)
def test_dropout2d_matches_torch_on_the_same_mask(n, c, p, seed, dtype):
    x, dout = nonzero_randn((n, c, 3, 4), seed, dtype), nonzero_randn((n, c, 3, 4), seed + 1)
    dout = dout.to(dtype)
    torch.manual_seed(seed)
    out_ref, dx_ref = run(F.dropout2d, x, dout, p=p)
    out, dx = run(dropout2d, x, dout, p=p, mask=out_ref[:, :, :1, :1] != 0)
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    torch.testing.assert_close(dx, dx_ref, **TOL[dtype])


def test_evaluation_modes():
    x = nonzero_randn((3, 4, 2, 2))
    assert torch.equal(dropout(x, p=0.7, training=False), F.dropout(x, p=0.7, training=False))
    assert torch.equal(dropout2d(x, p=0.7, training=False), x)
    torch.testing.assert_close(vanilla_dropout(x, p=0.3, training=False), 0.7 * x)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    assert torch.equal(vanilla_dropout(x, p=0.3, mask=mask), torch.where(mask, x, 0))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_and_expectation(p, device):
    n = 200_000
    x = torch.full((n,), 1.5, dtype=torch.float64, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    out = dropout(x, p=p, generator=gen)
    assert out.device == x.device
    keep_rate = (out != 0).double().mean().item()
    assert abs(keep_rate - (1 - p)) <= SIGMAS * (p * (1 - p) / n) ** 0.5
    assert abs(out.mean().item() - 1.5) <= SIGMAS * 1.5 * (p / (1 - p) / n) ** 0.5
    out_v = vanilla_dropout(x, p=p, generator=gen)
    assert abs(out_v.mean().item() - 1.5 * (1 - p)) <= SIGMAS * 1.5 * (p * (1 - p) / n) ** 0.5


def test_dropout2d_drops_whole_channels(device):
    gen = torch.Generator(device=device).manual_seed(0)
    out = dropout2d(torch.ones(500, 64, 2, 3, device=device), p=0.3, generator=gen)
    per_channel = out.reshape(500, 64, -1)
    assert ((per_channel == 0).all(-1) | (per_channel != 0).all(-1)).all()
    keep_rate = (per_channel[:, :, 0] != 0).double().mean().item()
    assert abs(keep_rate - 0.7) <= SIGMAS * (0.3 * 0.7 / (500 * 64)) ** 0.5


def test_same_generator_seed_same_mask_and_gradcheck(device):
    x = nonzero_randn((6, 7)).to(device).requires_grad_()
    a = dropout(x, generator=torch.Generator(device=device).manual_seed(3))
    b = dropout(x, generator=torch.Generator(device=device).manual_seed(3))
    assert torch.equal(a, b)
    assert torch.autograd.gradcheck(
        lambda x: dropout(x, p=0.4, generator=torch.Generator(device=device).manual_seed(3)), (x,)
    )


def test_never_calls_a_dropout_op(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in dropout was called")

    for module in (F, torch, torch.Tensor):
        for name in ("dropout", "dropout2d", "feature_dropout", "native_dropout"):
            monkeypatch.setattr(module, name, forbidden, raising=False)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        (dropout(x) + dropout2d(x) + vanilla_dropout(x)).sum().backward()
    ops = {e.name for e in prof.events()}
    assert not [o for o in ops if "dropout" in o], ops


@pytest.mark.parametrize("fn", [dropout, vanilla_dropout, dropout2d])
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(p=-0.1), ValueError, "p"),
        (dict(p=1.5), ValueError, "p"),
        (dict(p=float("nan")), ValueError, "p"),
        (dict(p="0.5"), TypeError, "p"),
        (dict(generator=0), TypeError, "generator"),
        (dict(mask=torch.ones(2, 3, 4, 5, dtype=torch.bool)), ValueError, "mask"),
        (dict(mask=torch.ones(2, 3, 4, 4)), TypeError, "mask"),
    ],
)
def test_bad_inputs_raise(fn, kwargs, error, match):
    if fn is dropout2d and "mask" in kwargs:
        kwargs = dict(mask=kwargs["mask"][:, :, :1, :2])
    with pytest.raises(error, match=match):
        fn(torch.ones(2, 3, 4, 4), **kwargs)


def test_bad_x_raises():
    with pytest.raises(ValueError, match="4-D"):
        dropout2d(torch.ones(3, 4, 4))
    with pytest.raises(TypeError, match="input"):
        dropout(torch.ones(3, dtype=torch.long))
