"""Torch max/avg pooling from primitives: parity with F.max_pool2d / F.avg_pool2d (values,
gradients, max pooling's indices, avg pooling's divisor_override), that no pooling op runs,
dtype/device, and bad inputs."""

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


# --------------------------------------------------------------------------- return_indices


def forward_backward_with_indices(fn, x, dout, **kwargs):
    x = x.detach().clone().requires_grad_()
    out, indices = fn(x, return_indices=True, **kwargs)
    out.backward(dout)
    return out.detach(), indices, x.grad


@settings(max_examples=80, deadline=None)
@given(
    geometry=pool_geometry(with_dilation=True),
    values=st.sampled_from(["distinct", "ties", "-inf", "nan"]),
    seed=st.integers(0, 99),
)
def test_max_pool2d_indices_match_torch(geometry, values, seed):
    shape, kwargs = geometry
    gen = torch.Generator().manual_seed(seed)
    if values == "distinct":
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
    else:
        x = torch.randint(-2, 3, shape, generator=gen).double()
    if values == "-inf":  # whole windows of -inf tie with the -inf padding
        x[x < 1] = float("-inf")
    if values == "nan":  # a NaN window picks its last NaN
        x[x == 2] = float("nan")
    dout = torch.randn(F.max_pool2d(x, **kwargs).shape, generator=gen, dtype=x.dtype)
    out_ref, indices_ref, dx_ref = forward_backward_with_indices(F.max_pool2d, x, dout, **kwargs)
    out, indices, dx = forward_backward_with_indices(max_pool2d, x, dout, **kwargs)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0, equal_nan=True)
    assert indices.dtype == torch.int64 and indices.shape == out.shape
    torch.testing.assert_close(indices, indices_ref, rtol=0, atol=0)
    torch.testing.assert_close(dx, dx_ref, **F64_TOL)


def test_max_pool2d_indices_unbatched_and_on_device(device):
    x = torch.randn(3, 7, 6, dtype=torch.float64, device=device)
    kwargs = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    out, indices = max_pool2d(x, **kwargs, return_indices=True)
    assert out.shape == indices.shape == (3, 4, 4) and indices.device == x.device
    out_ref, indices_ref = F.max_pool2d(x.cpu(), **kwargs, return_indices=True)
    torch.testing.assert_close(out.cpu(), out_ref, rtol=0, atol=0)
    torch.testing.assert_close(indices.cpu(), indices_ref, rtol=0, atol=0)


def test_all_minus_inf_windows_pick_their_first_element_inside_the_input():
    # The -inf padding ties with them; PyTorch never visits the padding.
    x = torch.full((1, 1, 5, 5), float("-inf"), dtype=torch.float64)
    kwargs = dict(kernel_size=2, stride=2, padding=1, dilation=2, ceil_mode=True)
    dout = torch.arange(9.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    _, indices_ref, dx_ref = forward_backward_with_indices(F.max_pool2d, x, dout, **kwargs)
    _, indices, dx = forward_backward_with_indices(max_pool2d, x, dout, **kwargs)
    expected = torch.tensor([[6, 6, 8], [6, 6, 8], [16, 16, 18]])  # F's answer on the CPU
    torch.testing.assert_close(indices_ref[0, 0], expected, rtol=0, atol=0)
    torch.testing.assert_close(indices[0, 0], expected, rtol=0, atol=0)
    torch.testing.assert_close(dx, dx_ref, rtol=0, atol=0)


# --------------------------------------------------------------------------- divisor_override


@settings(max_examples=60, deadline=None)
@given(
    geometry=pool_geometry(with_dilation=False),
    count_include_pad=st.booleans(),
    divisor_override=st.integers(1, 20),
    seed=st.integers(0, 99),
)
def test_avg_pool2d_divisor_override_matches_torch(
    geometry, count_include_pad, divisor_override, seed
):
    shape, kwargs = geometry
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    kwargs = dict(kwargs, count_include_pad=count_include_pad, divisor_override=divisor_override)
    assert_matches_torch(avg_pool2d, F.avg_pool2d, x, **kwargs)


@pytest.mark.parametrize(
    "divisor_override, error",
    [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)],
)
def test_bad_divisor_override_raises(divisor_override, error):
    with pytest.raises(error, match=r"avg_pool2d: divisor_override must be an int >= 1"):
        avg_pool2d(torch.zeros(1, 1, 4, 4), 2, divisor_override=divisor_override)


# --------------------------------------------------------------------------- gradcheck


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


def first(fn):
    """``fn`` keeping only the first output: ``max_pool2d(..., return_indices=True)[0]``."""
    return lambda *args, **kwargs: fn(*args, **kwargs)[0]


@pytest.mark.parametrize(
    "ours, theirs, op, kwargs",
    [
        (max_pool2d, F.max_pool2d, "aten::max_pool2d", {}),
        (
            first(max_pool2d),
            first(F.max_pool2d),
            "aten::max_pool2d_with_indices",
            dict(return_indices=True),
        ),
        (avg_pool2d, F.avg_pool2d, "aten::avg_pool2d", {}),
        (avg_pool2d, F.avg_pool2d, "aten::avg_pool2d", dict(divisor_override=3)),
    ],
)
def test_never_calls_a_pooling_op(ours, theirs, op, kwargs, monkeypatch):
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    assert op in aten_ops(theirs, x, 2, **kwargs)  # the profiler would see the built-in

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
    ops = aten_ops(ours, x, 3, stride=2, padding=1, **kwargs)
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
