"""Torch max/avg pooling from primitives: parity with F.max_pool2d / F.avg_pool2d (values and
gradients), that no pooling op runs, dtype/device, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import pool_geometry
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.pool import avg_pool2d, max_pool2d

F64_TOL = dict(rtol=1e-12, atol=1e-12)  # float64, only the summation order differs


def forward_backward(fn, x, dout, **kwargs):
    x = x.detach().clone().requires_grad_()
    out = fn(x, **kwargs)
    out.backward(dout)
    return out.detach(), x.grad


def assert_matches_torch(ours, theirs, x, **kwargs):
    out_ref = theirs(x, **kwargs)
    dout = torch.randn(out_ref.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    out_ref, dx_ref = forward_backward(theirs, x, dout, **kwargs)
    out, dx = forward_backward(ours, x, dout, **kwargs)
    torch.testing.assert_close(out, out_ref, **F64_TOL)
    torch.testing.assert_close(dx, dx_ref, **F64_TOL)


# --------------------------------------------------------------------------- parity


@settings(max_examples=60, deadline=None)
@given(geometry=pool_geometry(with_dilation=True), ties=st.booleans(), seed=st.integers(0, 99))
def test_max_pool2d_matches_torch(geometry, ties, seed):
    shape, kwargs = geometry
    gen = torch.Generator().manual_seed(seed)
    if ties:  # small integers: many ties, so the first-index tie-breaking is checked too
        x = torch.randint(-2, 3, shape, generator=gen).double()
    else:
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
    assert_matches_torch(max_pool2d, F.max_pool2d, x, **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    geometry=pool_geometry(with_dilation=False),
    count_include_pad=st.booleans(),
    seed=st.integers(0, 99),
)
def test_avg_pool2d_matches_torch(geometry, count_include_pad, seed):
    shape, kwargs = geometry
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert_matches_torch(avg_pool2d, F.avg_pool2d, x, count_include_pad=count_include_pad, **kwargs)


@pytest.mark.parametrize("ours, theirs", [(max_pool2d, F.max_pool2d), (avg_pool2d, F.avg_pool2d)])
def test_unbatched_input(ours, theirs):
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    assert_matches_torch(ours, theirs, x, kernel_size=3, stride=2, padding=1, ceil_mode=True)


def test_max_pool2d_ties_go_to_the_first_element_in_row_major_order():
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    expected = torch.zeros(4, 4)
    expected[::2, ::2] = 1  # top-left corner of each window, as F.max_pool2d on the CPU
    torch.testing.assert_close(x.grad[0, 0], expected, rtol=0, atol=0)


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
def test_gradcheck(fn):
    # Distinct values, so max pooling is differentiable at x.
    x = torch.randperm(2 * 3 * 7 * 6, generator=torch.Generator().manual_seed(0)) * 0.01
    x = x.double().reshape(2, 3, 7, 6).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: fn(x, (3, 2), stride=(2, 1), padding=1, ceil_mode=True), (x,)
    )


# --------------------------------------------------------------------------- dtype, device


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(fn, dtype):
    x = torch.randn(2, 3, 8, 7, dtype=dtype, requires_grad=True)
    out = fn(x, 3, stride=2, padding=1)
    assert out.shape == (2, 3, 4, 4) and out.dtype == dtype and out.device == x.device
    out.sum().backward()
    assert x.grad.dtype == dtype and x.grad.device == x.device


# --------------------------------------------------------------------------- no pool op


def aten_ops(fn, *args, **kwargs):
    """Names of the ATen ops run by ``fn(*args, **kwargs).sum().backward()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args, **kwargs).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


@pytest.mark.parametrize(
    "ours, theirs, op",
    [
        (max_pool2d, F.max_pool2d, "aten::max_pool2d"),
        (avg_pool2d, F.avg_pool2d, "aten::avg_pool2d"),
    ],
)
def test_never_calls_a_pooling_op(ours, theirs, op, monkeypatch):
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    assert op in aten_ops(theirs, x, 2)  # the profiler would see the built-in

    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in pooling op was called")

    for module, name in [
        (F, "max_pool2d"),
        (F, "max_pool2d_with_indices"),
        (F, "avg_pool2d"),
        (torch, "max_pool2d"),
        (torch, "avg_pool2d"),
    ]:
        monkeypatch.setattr(module, name, forbidden, raising=False)
    ops = aten_ops(ours, x, 3, stride=2, padding=1)
    assert "aten::unfold" in ops
    assert not [o for o in ops if "pool" in o], sorted(ops)


# --------------------------------------------------------------------------- bad inputs

BAD = [
    # (x, kwargs, error, message fragment)
    (torch.zeros(4, 4), dict(kernel_size=2), ValueError, "4-D"),
    (torch.zeros(1, 1, 1, 4, 4), dict(kernel_size=2), ValueError, "4-D"),
    (torch.zeros(1, 1, 4, 4, dtype=torch.long), dict(kernel_size=2), TypeError, "floating"),
    ([[[[1.0]]]], dict(kernel_size=1), TypeError, "torch.Tensor"),
    (torch.zeros(1, 1, 4, 4), dict(kernel_size=0), ValueError, "kernel_size"),
    (torch.zeros(1, 1, 4, 4), dict(kernel_size=2, stride=0), ValueError, "stride"),
    (torch.zeros(1, 1, 4, 4), dict(kernel_size=2, padding=2), ValueError, "at most half"),
    (torch.zeros(1, 1, 4, 4), dict(kernel_size=5), ValueError, "does not fit"),
]


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("x, kwargs, error, match", BAD)
def test_bad_inputs_raise(fn, x, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(x, **kwargs)
