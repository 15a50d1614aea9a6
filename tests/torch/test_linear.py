"""Torch linear and flatten from matmul / reshape: parity with F.linear and torch.flatten,
gradcheck, device, that the built-ins never run, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.linear import flatten, linear

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


@settings(max_examples=30, deadline=None)
@given(
    batch=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    fin=st.integers(1, 6),
    fout=st.integers(1, 6),
    bias=st.booleans(),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 99),
)
def test_linear_matches_torch(batch, fin, fout, bias, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    args = [
        torch.randn((*batch, fin), generator=gen, dtype=dtype),
        torch.randn((fout, fin), generator=gen, dtype=dtype),
        torch.randn(fout, generator=gen, dtype=dtype) if bias else None,
    ]
    dout = torch.randn((*batch, fout), generator=gen, dtype=dtype)
    results = []
    for fn in (linear, F.linear):
        leaves = [None if a is None else a.clone().requires_grad_() for a in args]
        out = fn(*leaves)
        out.backward(dout)
        results.append((out.detach(), [None if t is None else t.grad for t in leaves]))
    (out, grads), (out_ref, grads_ref) = results
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5).map(tuple), data=st.data())
def test_flatten_matches_torch(shape, data):
    start = data.draw(st.integers(-len(shape), len(shape) - 1))
    end = data.draw(st.integers(-len(shape), len(shape) - 1))
    if start % len(shape) > end % len(shape):
        start, end = end, start
    x = torch.randn(shape)
    torch.testing.assert_close(flatten(x, start, end), torch.flatten(x, start, end), rtol=0, atol=0)


def test_flatten_default_keeps_the_batch_dimension():
    assert flatten(torch.zeros(2, 3, 4, 5)).shape == (2, 60)


def test_gradcheck_and_device(device):
    gen = torch.Generator().manual_seed(0)
    x, w, b = (
        torch.randn(s, generator=gen, dtype=torch.float64).to(device).requires_grad_()
        for s in [(2, 3, 4), (5, 4), (5,)]
    )
    assert torch.autograd.gradcheck(linear, (x, w, b))
    assert torch.autograd.gradcheck(lambda x: flatten(x) * 2, (x,))
    assert linear(x, w, b).device == x.device


def test_never_calls_linear_or_flatten(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in linear/flatten was called")

    for module, name in [
        (F, "linear"),
        (torch, "flatten"),
        (torch.Tensor, "flatten"),
        (torch.nn.functional, "linear"),
    ]:
        monkeypatch.setattr(module, name, forbidden)
    x = torch.randn(2, 3, 4, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        linear(flatten(x), torch.randn(5, 12, requires_grad=True), torch.randn(5)).sum().backward()
    ops = {e.name for e in prof.events()}
    assert "aten::linear" not in ops and "aten::flatten" not in ops, ops


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: linear(torch.zeros(2, 3), torch.zeros(4, 2)), ValueError, "weight"),
        (lambda: linear(torch.zeros(2, 3), torch.zeros(3)), ValueError, "weight"),
        (lambda: linear(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(3)), ValueError, "bias"),
        (
            lambda: linear(torch.zeros(2, 3, dtype=torch.long), torch.zeros(4, 3)),
            TypeError,
            "input must be floating point",
        ),
        (lambda: flatten(torch.zeros(2, 3), start_dim=2), ValueError, "start_dim"),
        (lambda: flatten(torch.zeros(2, 3), start_dim=1, end_dim=0), ValueError, "end_dim"),
    ],
)
def test_bad_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()
