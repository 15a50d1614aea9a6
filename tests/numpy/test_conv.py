"""Tests of d2lcnn.numpy.conv: numerical gradients, parity with torch, naive vs fast,
scratch-buffer safety, and every documented error."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from d2lcnn.geometry import conv2d_output_shape
from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy import _im2col
from d2lcnn.numpy.conv import ConvCache, conv2d_backward, conv2d_forward, conv2d_forward_naive

FORWARDS = [conv2d_forward, conv2d_forward_naive]


def make_inputs(x_shape, w_shape, *, bias=True, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


def torch_conv(x, w, b, dout, **kwargs):
    """Output and gradients (dx, dw, db) of torch.nn.functional.conv2d by autograd."""
    xt = torch.from_numpy(x.copy()).requires_grad_()
    wt = torch.from_numpy(w.copy()).requires_grad_()
    bt = None if b is None else torch.from_numpy(b.copy()).requires_grad_()
    out = F.conv2d(xt, wt, bt, **kwargs)
    out.backward(torch.from_numpy(dout))
    db = None if bt is None else bt.grad.numpy()
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), db


def assert_close_scaled(ours, ref, *, rtol, atol):
    """allclose with ``atol`` relative to the largest magnitude in ``ref``."""
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol * scale)


# (x shape, w shape, kwargs, bias): stride 2, padding, dilation 2, groups, non-square
# kernels and inputs, no bias, strides that do not tile the input.
GEOMETRIES = [
    pytest.param((2, 3, 7, 7), (4, 3, 3, 3), {}, True, id="basic"),
    pytest.param((2, 3, 8, 7), (4, 3, 3, 3), dict(stride=2, padding=1), True, id="stride2-pad1"),
    pytest.param(
        (1, 2, 9, 8), (3, 2, 3, 2), dict(padding=(1, 2), dilation=2), True, id="dilation2"
    ),
    pytest.param(
        (2, 4, 6, 7), (6, 2, 3, 3), dict(stride=(2, 1), padding=1, groups=2), True, id="groups2"
    ),
    pytest.param((2, 3, 5, 9), (2, 3, 2, 4), dict(stride=(1, 2)), False, id="nonsquare-nobias"),
    pytest.param((2, 3, 6, 6), (3, 1, 3, 3), dict(padding=1, groups=3), True, id="depthwise"),
    pytest.param((1, 2, 7, 7), (3, 2, 3, 3), dict(stride=3), True, id="stride3-floor"),
    pytest.param((2, 3, 7, 5), (5, 3, 1, 1), dict(stride=2), False, id="1x1-stride2"),
    pytest.param(
        (1, 4, 8, 9), (4, 2, 2, 3), dict(stride=(2, 3), padding=(2, 0), dilation=(1, 2), groups=2),
        True, id="everything",
    ),
]


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", GEOMETRIES)
def test_backward_matches_numerical_gradient(x_shape, w_shape, kwargs, bias):
    x, w, b = make_inputs(x_shape, w_shape, bias=bias)
    # The convolution is linear in each of x, w and b, so the centred difference has no
    # truncation error and a step of 1e-3 (not the default 1e-6) only divides the rounding
    # error of the sum by less: the check then resolves ~1e-10 instead of ~1e-7.
    errors = check_backward(
        conv2d_forward, conv2d_backward, [x, w, b], kwargs=kwargs, h=1e-3
    )
    for name, err in zip(("dx", "dw", "db"), errors, strict=True):
        if name == "db" and not bias:
            assert err is None
        else:
            assert err <= 1e-7, f"{name}: relative error {err:.2e} > 1e-7"


# --------------------------------------------------------------------------------------
# Parity with torch.nn.functional.conv2d
# --------------------------------------------------------------------------------------


@st.composite
def conv_geometries(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    bias = draw(st.booleans())
    return (n, c_in, h, w), (c_out, c_in // groups, kh, kw), dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups
    ), bias


def _fits(x_shape, w_shape, kwargs):
    for size, k, p, d in zip(x_shape[2:], w_shape[2:], kwargs["padding"], kwargs["dilation"],
                             strict=True):
        if size + 2 * p < d * (k - 1) + 1:
            return False
    return True


@settings(max_examples=60, deadline=None)
@given(geometry=conv_geometries(), seed=st.integers(0, 2**16))
def test_matches_torch_float64(geometry, seed):
    x_shape, w_shape, kwargs, bias = geometry
    assume(_fits(x_shape, w_shape, kwargs))
    x, w, b = make_inputs(x_shape, w_shape, bias=bias, seed=seed)
    out, cache = conv2d_forward(x, w, b, **kwargs)
    dout = np.random.default_rng(seed + 1).standard_normal(out.shape)
    ref_out, ref_dx, ref_dw, ref_db = torch_conv(x, w, b, dout, **kwargs)
    dx, dw, db = conv2d_backward(dout, cache)
    assert out.shape == ref_out.shape
    for ours, ref in ((out, ref_out), (dx, ref_dx), (dw, ref_dw)):
        assert ours.dtype == np.float64
        assert_close_scaled(ours, ref, rtol=1e-10, atol=1e-10)
    if bias:
        assert_close_scaled(db, ref_db, rtol=1e-10, atol=1e-10)
    else:
        assert db is None


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        pytest.param((4, 1, 28, 28), (6, 1, 5, 5), {}, id="lenet"),
        pytest.param((4, 16, 14, 14), (32, 16, 3, 3), dict(padding=1), id="14x14"),
        pytest.param((2, 64, 16, 16), (64, 64, 3, 3), dict(padding=1), id="resnet-cifar"),
        pytest.param((2, 3, 64, 64), (64, 3, 7, 7), dict(stride=2, padding=3), id="stem"),
        pytest.param((3, 8, 13, 11), (8, 2, 3, 3), dict(padding=2, dilation=2, groups=4),
                     id="grouped-dilated"),
    ],
)
def test_matches_torch_float32(x_shape, w_shape, kwargs):
    x, w, b = make_inputs(x_shape, w_shape, dtype=np.float32, seed=1)
    w *= np.float32(0.1)
    out, cache = conv2d_forward(x, w, b, **kwargs)
    dout = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    dx, dw, db = conv2d_backward(dout, cache)
    ref = torch_conv(x, w, b, dout, **kwargs)
    for ours, r in zip((out, dx, dw, db), ref, strict=True):
        assert ours.dtype == np.float32
        assert_close_scaled(ours, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        pytest.param((5, 16, 24, 24), (8, 16, 3, 3), dict(padding=1), id="stride1"),
        pytest.param((5, 16, 48, 48), (8, 8, 3, 3), dict(stride=2, padding=1, groups=2),
                     id="stride2-groups2"),
    ],
)
def test_matches_torch_over_several_chunks(x_shape, w_shape, kwargs):
    x, w, b = make_inputs(x_shape, w_shape, seed=13)
    out, cache = conv2d_forward(x, w, b, **kwargs)
    chunk = _im2col.layout(cache).chunk
    assert 1 < chunk < x_shape[0] and x_shape[0] % chunk != 0, "want a partial last chunk"
    dout = np.random.default_rng(14).standard_normal(out.shape)
    ref = torch_conv(x, w, b, dout, **kwargs)
    for ours, r in zip((out, *conv2d_backward(dout, cache)), ref, strict=True):
        assert_close_scaled(ours, r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        pytest.param((7, 16, 24, 24), (8, 16, 3, 3), dict(padding=1), id="3x3-pad1"),
        pytest.param((10, 8, 40, 36), (8, 4, 3, 2),
                     dict(padding=(2, 1), dilation=(2, 3), groups=2), id="dilated-groups2"),
    ],
)
def test_stride1_layouts_match_torch_over_several_chunks(x_shape, w_shape, kwargs, dtype):
    # With stride 1 the forward pass computes H_out rows per padded plane and the backward
    # pass whole planes: each layout must hold up over several chunks and a partial last.
    x, w, b = make_inputs(x_shape, w_shape, dtype=dtype, seed=15)
    w *= dtype(0.1)
    out, cache = conv2d_forward(x, w, b, **kwargs)
    for lay in (_im2col.layout(cache), _im2col.layout(cache, whole_planes=True)):
        assert 1 < lay.chunk < x_shape[0] and x_shape[0] % lay.chunk != 0, lay
    assert _im2col.layout(cache).h_work == out.shape[2]
    assert _im2col.layout(cache, whole_planes=True).h_work == (
        x_shape[2] + 2 * cache.padding[0]
    )
    dout = np.random.default_rng(16).standard_normal(out.shape).astype(dtype)
    ref = torch_conv(x, w, b, dout, **kwargs)
    # The same tolerances as the float64 and float32 parity tests above.
    rtol, atol = (1e-10, 1e-10) if dtype == np.float64 else (1e-4, 1e-5)
    for ours, r in zip((out, *conv2d_backward(dout, cache)), ref, strict=True):
        assert ours.dtype == dtype
        assert_close_scaled(ours, r, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("forward", FORWARDS)
def test_output_shape_and_dtype(forward, dtype):
    x, w, b = make_inputs((2, 3, 9, 7), (5, 3, 3, 2), dtype=dtype)
    kwargs = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    out, cache = forward(x, w, b, **kwargs)
    expected = conv2d_output_shape((9, 7), (3, 2), **kwargs)
    assert out.shape == (2, 5, *expected)
    assert out.dtype == dtype
    assert isinstance(cache, ConvCache)
    assert cache.out_shape == out.shape
    grads = conv2d_backward(np.ones_like(out), cache)
    for g, a in zip(grads, (x, w, b), strict=True):
        assert g.shape == a.shape and g.dtype == dtype


def test_empty_batch_matches_torch():
    x, w, b = make_inputs((0, 3, 6, 6), (4, 3, 3, 3))
    out, cache = conv2d_forward(x, w, b, padding=1)
    assert out.shape == (0, 4, 6, 6)
    dx, dw, db = conv2d_backward(out, cache)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros_like(b))


# --------------------------------------------------------------------------------------
# Naive loops vs the fast path
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", GEOMETRIES)
def test_naive_matches_fast(x_shape, w_shape, kwargs, bias):
    x, w, b = make_inputs(x_shape, w_shape, bias=bias, seed=3)
    out_fast, cache_fast = conv2d_forward(x, w, b, **kwargs)
    out_naive, cache_naive = conv2d_forward_naive(x, w, b, **kwargs)
    np.testing.assert_allclose(out_naive, out_fast, rtol=1e-12, atol=1e-12)
    for field in ConvCache._fields:
        if field not in ("x", "w"):
            assert getattr(cache_naive, field) == getattr(cache_fast, field), field
    # The naive forward's cache drives the shared backward pass.
    dout = np.random.default_rng(4).standard_normal(out_fast.shape)
    for g_naive, g_fast in zip(conv2d_backward(dout, cache_naive),
                               conv2d_backward(dout, cache_fast), strict=True):
        if g_fast is None:
            assert g_naive is None
        else:
            np.testing.assert_array_equal(g_naive, g_fast)


def test_naive_docstring_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out, _ = conv2d_forward_naive(x, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(out[0, 0], [[10, 14, 18], [26, 30, 34], [42, 46, 50]])


# --------------------------------------------------------------------------------------
# Scratch buffers are reused between calls: results must not depend on call history,
# and nothing returned may alias a scratch buffer.
# --------------------------------------------------------------------------------------


def _run(x, w, b, dout, **kwargs):
    out, cache = conv2d_forward(x, w, b, **kwargs)
    return (out, *conv2d_backward(dout, cache))


def test_results_do_not_depend_on_previous_calls():
    a = make_inputs((3, 4, 10, 9), (6, 4, 3, 3), seed=5)
    a_dout = np.random.default_rng(6).standard_normal((3, 6, 10, 9))
    b = make_inputs((2, 6, 17, 5), (4, 3, 2, 2), seed=7)  # bigger buffers, other layout
    b_kwargs = dict(stride=(2, 1), dilation=(2, 1), groups=2)
    first = [r.copy() for r in _run(*a, a_dout, padding=1)]
    b_out, _ = conv2d_forward(*b, **b_kwargs)
    _run(*b, np.ones_like(b_out), **b_kwargs)
    _run(*(v.astype(np.float32) for v in a), a_dout.astype(np.float32), padding=1)
    again = _run(*a, a_dout, padding=1)
    for r1, r2 in zip(first, again, strict=True):
        np.testing.assert_array_equal(r1, r2)


def test_returned_arrays_are_not_overwritten_by_later_calls():
    x, w, b = make_inputs((4, 3, 8, 8), (5, 3, 3, 3), seed=8)
    dout = np.random.default_rng(9).standard_normal((4, 5, 8, 8))
    results = _run(x, w, b, dout, padding=1)
    saved = [r.copy() for r in results]
    _run(-x, 2 * w, b, -dout, padding=1)  # same shapes: the same scratch buffers
    for r, s in zip(results, saved, strict=True):
        np.testing.assert_array_equal(r, s)


def test_inputs_are_not_modified():
    x, w, b = make_inputs((2, 3, 6, 6), (4, 3, 3, 3), seed=10)
    dout = np.ones((2, 4, 6, 6))
    copies = [a.copy() for a in (x, w, b, dout)]
    _run(x, w, b, dout, padding=1)
    for a, c in zip((x, w, b, dout), copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_noncontiguous_inputs():
    x, w, b = make_inputs((5, 6, 9, 3), (4, 3, 2, 3), seed=11)
    x_view = x.transpose(0, 1, 3, 2)[::2]  # (3, 6, 3, 9), strided
    w_view = w[:, :, :, ::-1]
    out, cache = conv2d_forward(x_view, w_view, b, padding=1, groups=2)
    dout = np.random.default_rng(12).standard_normal(out.shape[::-1]).T  # Fortran order
    ours = (out, *conv2d_backward(dout, cache))
    ref = torch_conv(np.ascontiguousarray(x_view), np.ascontiguousarray(w_view), b, dout,
                     padding=1, groups=2)
    for o, r in zip(ours, ref, strict=True):
        assert_close_scaled(o, r, rtol=1e-10, atol=1e-10)


def test_threads_get_their_own_scratch_buffers():
    cases = [
        (make_inputs((4, 3, 12, 12), (8, 3, 3, 3), seed=s), dict(padding=1 + s % 2))
        for s in range(4)
    ]
    expected = [conv2d_forward(*inputs, **kw)[0] for inputs, kw in cases]
    failures = []

    def worker(i):
        inputs, kw = cases[i]
        for _ in range(20):
            out, _ = conv2d_forward(*inputs, **kw)
            if not np.array_equal(out, expected[i]):
                failures.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# --------------------------------------------------------------------------------------
# Errors name the argument, what was expected and what came
# --------------------------------------------------------------------------------------

GOOD_X_SHAPE, GOOD_W_SHAPE = (2, 4, 6, 6), (6, 2, 3, 3)  # valid with groups=2


@pytest.mark.parametrize("forward", FORWARDS)
@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(x_shape=(4, 6, 6)), ValueError,
         r"input must be 4-D \(N, C_in, H, W\), got 3-D shape"),
        (dict(w_shape=(6, 2, 9)), ValueError, r"weight must be 4-D \(C_out, C_in/groups, kH, kW\)"),
        (dict(x_shape=(2, 6, 6, 6)), ValueError,
         r"input has C_in = input.shape\[1\] = 6 channels but weight expects "
         r"weight.shape\[1\] \* groups = 2 \* 2 = 4"),
        (dict(w_shape=(5, 2, 3, 3)), ValueError,
         r"C_out = weight.shape\[0\] = 5 must be divisible by groups = 2"),
        (dict(x_shape=(2, 5, 6, 6)), ValueError,
         r"C_in = input.shape\[1\] = 5 must be divisible by groups = 2"),
        (dict(b_shape=(3,)), ValueError, r"bias must have shape \(C_out,\) = \(6,\), got \(3,\)"),
        (dict(b_shape=(6, 1)), ValueError,
         r"bias must have shape \(C_out,\) = \(6,\), got \(6, 1\)"),
        (dict(w_dtype=np.float32), TypeError,
         r"weight must have input's dtype float64, got float32"),
        (dict(b_dtype=np.float32), TypeError,
         r"bias must have input's dtype float64, got float32"),
        (dict(x_dtype=np.int64), TypeError,
         r"input must be a floating-point array, got dtype int64"),
        (dict(w_dtype=np.int32), TypeError,
         r"weight must be a floating-point array, got dtype int32"),
        (dict(x_shape=(2, 4, 2, 6)), ValueError, r"kernel does not fit in the input along H"),
        (dict(kwargs=dict(dilation=(1, 4))), ValueError, r"kernel does not fit .* along W"),
        (dict(kwargs=dict(groups=0)), ValueError, r"groups must be an int >= 1, got 0"),
        (dict(kwargs=dict(groups=2.0)), TypeError, r"groups must be an int >= 1, got float 2.0"),
        (dict(kwargs=dict(stride=0)), ValueError, r"stride must be >= 1"),
        (dict(kwargs=dict(padding=(1, -1))), ValueError, r"padding must be >= 0"),
        (dict(kwargs=dict(dilation=(1, 2, 3))), TypeError, r"dilation must be an int or a pair"),
    ],
)
def test_bad_forward_arguments(forward, change, error, match):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(change.get("x_shape", GOOD_X_SHAPE)).astype(
        change.get("x_dtype", np.float64)
    )
    w = rng.standard_normal(change.get("w_shape", GOOD_W_SHAPE)).astype(
        change.get("w_dtype", np.float64)
    )
    b = np.zeros(change.get("b_shape", (6,)), dtype=change.get("b_dtype", np.float64))
    kwargs = {"groups": 2, **change.get("kwargs", {})}
    with pytest.raises(error, match=match):
        forward(x, w, b, **kwargs)


@pytest.mark.parametrize("forward", FORWARDS)
def test_non_array_input(forward):
    w = np.ones((1, 1, 2, 2))
    fn = forward.__name__
    with pytest.raises(TypeError, match=rf"^{fn}: input must be a numpy array, got list"):
        forward([[[[1.0, 2.0], [3.0, 4.0]]]], w)
    with pytest.raises(TypeError, match=rf"^{fn}: bias must be a numpy array, got list"):
        forward(np.ones((1, 1, 2, 2)), w, [0.0])


def test_bad_dout():
    x, w, b = make_inputs((2, 3, 5, 5), (4, 3, 3, 3))
    out, cache = conv2d_forward(x, w, b)
    with pytest.raises(
        ValueError,
        match=r"^conv2d_backward: dout must have the forward output's shape "
        r"\(N, C_out, H_out, W_out\) = "
        r"\(2, 4, 3, 3\), got \(2, 4, 3, 4\)",
    ):
        conv2d_backward(np.ones((2, 4, 3, 4)), cache)
    with pytest.raises(TypeError, match=r"dout must have the forward pass's dtype float64, got "
                                        r"float32"):
        conv2d_backward(out.astype(np.float32), cache)
    with pytest.raises(TypeError, match=r"dout must be a floating-point array"):
        conv2d_backward(out.astype(np.int64), cache)
