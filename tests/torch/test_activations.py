"""Torch activations from primitives: parity with torch.nn.functional (values and gradients,
float64 and float32), torch.autograd.gradcheck, dtype/device, overflow safety, that the
same-named built-in op never runs, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch import activations as A

TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    # ~1e-5 absolute for float32: see tests/numpy/test_activations.py (GELU-tanh cancellation).
    torch.float32: dict(rtol=1e-5, atol=1e-5),
}

# (name of the built-in op, ours, reference, kwargs)
ELEMENTWISE = [
    ("sigmoid", A.sigmoid, torch.sigmoid, {}),
    ("tanh", A.tanh, torch.tanh, {}),
    ("relu", A.relu, F.relu, {}),
    ("leaky_relu", A.leaky_relu, F.leaky_relu, {}),
    ("leaky_relu", A.leaky_relu, F.leaky_relu, dict(negative_slope=0.3)),
    ("elu", A.elu, F.elu, {}),
    ("elu", A.elu, F.elu, dict(alpha=0.6)),
    ("selu", A.selu, F.selu, {}),
    ("gelu", A.gelu, F.gelu, {}),
    ("gelu", A.gelu, F.gelu, dict(approximate="tanh")),
    ("silu", A.silu, F.silu, {}),
    ("mish", A.mish, F.mish, {}),
    ("softplus", A.softplus, F.softplus, {}),
    ("softplus", A.softplus, F.softplus, dict(beta=2.0, threshold=3.0)),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(ELEMENTWISE)]
DTYPES = st.sampled_from([torch.float64, torch.float32])


def forward_backward(fn, inputs, dout, **kwargs):
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves, **kwargs)
    out.backward(dout)
    return out.detach(), [t.grad for t in leaves]


def assert_matches(ours, ref, inputs, dtype, seed=0, **kwargs):
    out_ref = ref(*inputs, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    dout = torch.randn(out_ref.shape, generator=gen, dtype=dtype).to(inputs[0].device)
    out_ref, grads_ref = forward_backward(ref, inputs, dout, **kwargs)
    out, grads = forward_backward(ours, inputs, dout, **kwargs)
    assert out.dtype == dtype and out.device == inputs[0].device
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, **TOL[dtype])


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@settings(max_examples=30, deadline=None)
@given(
    case=st.sampled_from(ELEMENTWISE),
    shape=shapes,
    dtype=DTYPES,
    seed=st.integers(0, 99),
    scale=st.sampled_from([1.0, 10.0]),
)
def test_elementwise_matches_torch(case, shape, dtype, seed, scale):
    _, ours, ref, kwargs = case
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * scale
    assert_matches(ours, ref, [x], dtype, seed, **kwargs)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),
    shared=st.booleans(),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_prelu_matches_torch(shape, shared, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    weight = torch.rand(1 if shared else shape[1], generator=gen, dtype=dtype) - 0.5
    assert_matches(A.prelu, F.prelu, [x, weight], dtype, seed)


def maxout_reference(x, pieces):
    return x.unflatten(1, (x.shape[1] // pieces, pieces)).amax(dim=2)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    groups=st.integers(1, 4),
    pieces=st.integers(1, 4),
    rest=st.lists(st.integers(1, 4), max_size=2).map(tuple),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_maxout_matches_reshape_amax(n, groups, pieces, rest, dtype, seed):
    x = torch.randn(
        (n, groups * pieces, *rest), generator=torch.Generator().manual_seed(seed), dtype=dtype
    )
    assert_matches(A.maxout, maxout_reference, [x], dtype, seed, pieces=pieces)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, log=st.booleans(), dtype=DTYPES, seed=st.integers(0, 99), data=st.data())
def test_softmax_matches_torch(shape, log, dtype, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    ours, ref = (A.log_softmax, torch.log_softmax) if log else (A.softmax, torch.softmax)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 5
    assert_matches(ours, ref, [x], dtype, seed, dim=dim)


CASES = [(c[1], c[3]) for c in ELEMENTWISE] + [
    (A.maxout, dict(pieces=2)),
    (A.softmax, dict(dim=1)),
    (A.log_softmax, dict(dim=-1)),
]


@pytest.mark.parametrize("fn, kwargs", CASES)
def test_gradcheck_and_device(fn, kwargs, device):
    # Distinct values away from 0: every function is differentiable at every element.
    x = torch.randperm(24, generator=torch.Generator().manual_seed(0)).double() * 0.25 - 2.9
    x = x.reshape(2, 4, 3).to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: fn(x, **kwargs), (x,))
    assert fn(x, **kwargs).device == x.device


def test_prelu_gradcheck(device):
    x = (
        (
            torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
            + 0.0
        )
        .to(device)
        .requires_grad_()
    )
    w = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(A.prelu, (x, w))


def test_finite_gradients_for_extreme_inputs():
    x = torch.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=torch.float64)
    for fn, kwargs in [
        (A.sigmoid, {}),
        (A.tanh, {}),
        (A.elu, {}),
        (A.silu, {}),
        (A.mish, {}),
        (A.softplus, dict(threshold=1e9)),
        (A.softmax, dict(dim=0)),
        (A.log_softmax, dict(dim=0)),
    ]:
        xg = x.clone().requires_grad_()
        out = fn(xg, **kwargs)
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(xg.grad).all(), fn.__name__


def test_tanh_exact_near_zero():
    x = torch.tensor([1e-12, -3e-9, 0.0], dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(A.tanh(x), torch.tanh(x), rtol=1e-15, atol=0)
    A.tanh(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(3, dtype=torch.float64))


# --------------------------------------------------------------------------- no same-named op


def aten_ops(fn, *args, **kwargs):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args, **kwargs).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


NAMED = [(c[0], c[1], c[3]) for c in ELEMENTWISE] + [
    ("softmax", A.softmax, dict(dim=1)),
    ("log_softmax", A.log_softmax, dict(dim=1)),
]


@pytest.mark.parametrize("name, fn, kwargs", NAMED)
def test_never_calls_the_same_named_op(name, fn, kwargs, monkeypatch):
    x = torch.randn(3, 4, requires_grad=True)

    def forbidden(*args, **kw):
        raise AssertionError(f"the built-in {name} was called")

    for module in (F, torch, torch.Tensor, torch.special):
        monkeypatch.setattr(module, name, forbidden, raising=False)
    ops = aten_ops(fn, x, **kwargs)
    assert not [o for o in ops if o.startswith((f"aten::{name}", f"aten::_{name}"))], ops


def test_prelu_never_calls_prelu(monkeypatch):
    monkeypatch.setattr(F, "prelu", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(torch, "prelu", lambda *a, **k: 1 / 0)
    ops = aten_ops(A.prelu, torch.randn(2, 3, requires_grad=True), torch.rand(3))
    assert not [o for o in ops if "prelu" in o], ops


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: A.relu([1.0]), TypeError, "input must be a torch.Tensor"),
        (lambda: A.sigmoid(torch.arange(3)), TypeError, "floating"),
        (lambda: A.prelu(torch.zeros(2, 3), torch.zeros(2)), ValueError, "weight"),
        (lambda: A.prelu(torch.zeros(2, 3), torch.zeros(3, 1)), ValueError, "weight"),
        (lambda: A.gelu(torch.zeros(2), approximate="erf"), ValueError, "approximate"),
        (lambda: A.softplus(torch.zeros(2), beta=0), ValueError, "beta"),
        (lambda: A.maxout(torch.zeros(2, 5), pieces=2), ValueError, "pieces"),
        (lambda: A.maxout(torch.zeros(4), pieces=2), ValueError, "2-D"),
        (lambda: A.softmax(torch.zeros(2, 3), dim=2), ValueError, "dim"),
        (lambda: A.log_softmax(torch.zeros(2, 3), dim=None), TypeError, "dim"),
    ],
)
def test_bad_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_relu_propagates_nan_like_torch():
    x = torch.tensor([float("nan"), -1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    ours = A.relu(x)
    ours.backward(torch.ones(4, dtype=torch.float64))
    x_ref = x.detach().clone().requires_grad_()
    ref = torch.relu(x_ref)
    ref.backward(torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(ours, ref, equal_nan=True)
    torch.testing.assert_close(x.grad, x_ref.grad)
