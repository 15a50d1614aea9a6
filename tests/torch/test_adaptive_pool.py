"""Torch adaptive average pooling from matmuls: parity with F.adaptive_avg_pool2d (values and
gradients, float64 and float32), torch.autograd.gradcheck, that no pooling op runs, and bad
inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.adaptive_pool import adaptive_avg_pool2d

F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-5, atol=1e-5)
# `device` is a parameter that hypothesis never changes, so sharing it between examples is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def forward_backward(fn, x, dout, output_size):
    x = x.detach().clone().requires_grad_()
    out = fn(x, output_size)
    out.backward(dout)
    return out.detach(), x.grad


@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)),
        st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)),  # unbatched
    ),
    output_size=st.one_of(
        st.integers(1, 8),
        st.tuples(st.one_of(st.none(), st.integers(1, 8)), st.one_of(st.none(), st.integers(1, 8))),
    ),
    double=st.booleans(),
    seed=st.integers(0, 99),
)
def test_matches_torch(device, shape, output_size, double, seed):
    dtype, tol = (torch.float64, F64) if double else (torch.float32, F32)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    out_ref = F.adaptive_avg_pool2d(x, output_size)
    dout = torch.randn(out_ref.shape, generator=gen, dtype=dtype).to(device)
    out_ref, dx_ref = forward_backward(F.adaptive_avg_pool2d, x, dout, output_size)
    out, dx = forward_backward(adaptive_avg_pool2d, x, dout, output_size)
    assert out.dtype == dtype and out.device == x.device
    torch.testing.assert_close(out, out_ref, **tol)
    torch.testing.assert_close(dx, dx_ref, **tol)


@pytest.mark.parametrize("output_size", [1, (3, 2), (None, 4)])
def test_autograd_gradcheck(device, output_size):
    x = torch.randn(2, 2, 5, 7, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: adaptive_avg_pool2d(t, output_size), (x,))


def aten_ops(fn, *args):
    """Names of the ATen ops run by ``fn(*args).sum().backward()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


def test_never_calls_a_pooling_op(monkeypatch):
    x = torch.randn(2, 3, 7, 5, requires_grad=True)
    assert [o for o in aten_ops(F.adaptive_avg_pool2d, x, 3) if "pool" in o]

    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in pooling op was called")

    for module, name in [
        (F, "adaptive_avg_pool2d"), (torch, "adaptive_avg_pool2d"),
        (torch._C._nn, "adaptive_avg_pool2d"), (F, "avg_pool2d"), (torch, "avg_pool2d"),
    ]:
        monkeypatch.setattr(module, name, forbidden, raising=False)
    ops = aten_ops(adaptive_avg_pool2d, x, 3)
    assert not [o for o in ops if "pool" in o or o == "aten::mean"], sorted(ops)


X = torch.zeros(1, 1, 4, 4)
BAD = [
    (torch.zeros(4, 4), 2, ValueError, "input must be 4-D"),
    (X.tolist(), 2, TypeError, "input must be a torch.Tensor"),
    (X.long(), 2, TypeError, "floating point"),
    (X, 0, ValueError, "output_size must be >= 1"),
    (X, 2.0, TypeError, "output_size must be an int"),
    (X, (1, 2, 3), TypeError, "output_size must be an int or a pair"),
]


@pytest.mark.parametrize("x, output_size, error, match", BAD)
def test_bad_inputs_raise(x, output_size, error, match):
    with pytest.raises(error, match=match):
        adaptive_avg_pool2d(x, output_size)
