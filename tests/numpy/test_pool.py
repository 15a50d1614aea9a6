"""NumPy max/avg pooling: numerical gradients, parity with torch.nn.functional (values,
gradients, max pooling's indices, avg pooling's divisor_override), argmax routing, and every
bad-input path."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import pool_geometry

from d2lcnn.geometry import pool2d_output_shape
from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

GRAD_TOL = 1e-7  # relative error of float64 centred differences
# Both poolings are linear in x near any input without ties, so the centred difference has
# no truncation error at all; a step larger than gradcheck's default 1e-6 only shrinks the
# roundoff (f(x+h) - f(x-h) loses ~1e-16 * |f| / h). 1e-4 is still far below the 0.01 gap
# between values in `distinct_values`, so no probe changes which element wins a window.
STEP = 1e-4
PARITY_TOL = dict(rtol=1e-12, atol=1e-12)  # float64, only the summation order differs


def distinct_values(shape, seed=0):
    """A random permutation of 0.01 * arange: no ties, so max pooling is differentiable
    and a +-1e-6 probe never changes which element wins."""
    rng = np.random.default_rng(seed)
    return 0.01 * rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)


def torch_forward_backward(fn, x, dout, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt, **kwargs)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy()


# --------------------------------------------------------------------------- gradient checks

GEOMETRIES = [
    # (x shape, kwargs)
    ((2, 3, 4, 6), dict(kernel_size=2)),
    ((1, 2, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 2, 6, 7), dict(kernel_size=(3, 2), stride=1)),  # overlapping windows
    ((1, 2, 7, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ((1, 3, 5, 8), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), ceil_mode=True)),
]


@pytest.mark.parametrize("shape, kwargs", GEOMETRIES)
@pytest.mark.parametrize("dilation", [1, 2])
def test_max_pool2d_numerical_gradient(shape, kwargs, dilation):
    x = distinct_values(shape)
    (err,) = check_backward(
        max_pool2d_forward,
        max_pool2d_backward,
        [x],
        kwargs=dict(kwargs, dilation=dilation),
        h=STEP,
    )
    assert err <= GRAD_TOL


@pytest.mark.parametrize("shape, kwargs", GEOMETRIES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_numerical_gradient(shape, kwargs, count_include_pad):
    x = np.random.default_rng(1).standard_normal(shape)
    (err,) = check_backward(
        avg_pool2d_forward,
        avg_pool2d_backward,
        [x],
        kwargs=dict(kwargs, count_include_pad=count_include_pad),
        h=STEP,
    )
    assert err <= GRAD_TOL


# --------------------------------------------------------------------------- torch parity


@settings(max_examples=60, deadline=None)
@given(geometry=pool_geometry(with_dilation=True), ties=st.booleans(), seed=st.integers(0, 99))
def test_max_pool2d_matches_torch(geometry, ties, seed):
    shape, kwargs = geometry
    rng = np.random.default_rng(seed)
    # Small integers make ties common, which checks the first-index tie-breaking too.
    x = rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    out, cache = max_pool2d_forward(x, **kwargs)
    dout = rng.standard_normal(out.shape)
    out_ref, dx_ref = torch_forward_backward(F.max_pool2d, x, dout, **kwargs)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_allclose(max_pool2d_backward(dout, cache), dx_ref, **PARITY_TOL)


@settings(max_examples=60, deadline=None)
@given(
    geometry=pool_geometry(with_dilation=False),
    count_include_pad=st.booleans(),
    seed=st.integers(0, 99),
)
def test_avg_pool2d_matches_torch(geometry, count_include_pad, seed):
    shape, kwargs = geometry
    kwargs = dict(kwargs, count_include_pad=count_include_pad)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out, cache = avg_pool2d_forward(x, **kwargs)
    dout = rng.standard_normal(out.shape)
    out_ref, dx_ref = torch_forward_backward(F.avg_pool2d, x, dout, **kwargs)
    np.testing.assert_allclose(out, out_ref, **PARITY_TOL)
    np.testing.assert_allclose(avg_pool2d_backward(dout, cache), dx_ref, **PARITY_TOL)


def test_ceil_mode_divisor_ignores_the_overhang():
    # 5 columns, kernel 2, stride 2, ceil_mode: the last window covers column 4 and one
    # column past the input; the divisor is 1, not 2 (there is no padding to count).
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    for count_include_pad in (True, False):
        out, _ = avg_pool2d_forward(
            x, kernel_size=(1, 2), ceil_mode=True, count_include_pad=count_include_pad
        )
        np.testing.assert_array_equal(out[0, 0, 0], [0.5, 2.5, 4.0])
    # 6 columns, kernel 3, stride 2, padding 1: windows start at -1, 1, 3, 5. The last one
    # covers column 5, the padding column 6 and the overhang column 7: count_include_pad
    # counts the padding (divisor 2) but never the overhang.
    x = np.arange(6.0).reshape(1, 1, 1, 6)
    kwargs = dict(kernel_size=(1, 3), stride=(1, 2), padding=(0, 1), ceil_mode=True)
    out, _ = avg_pool2d_forward(x, **kwargs, count_include_pad=True)
    np.testing.assert_allclose(out[0, 0, 0], [1 / 3, 6 / 3, 12 / 3, 5 / 2], rtol=1e-15)
    out, _ = avg_pool2d_forward(x, **kwargs, count_include_pad=False)
    np.testing.assert_allclose(out[0, 0, 0], [1 / 2, 6 / 3, 12 / 3, 5 / 1], rtol=1e-15)


def test_nan_propagates_like_torch():
    x = np.array([[[[1.0, np.nan, 3.0, np.nan, 0.0, 2.0]]]])
    out, cache = max_pool2d_forward(x, kernel_size=(1, 3), stride=(1, 1))
    dout = np.arange(1.0, 5.0).reshape(out.shape)
    out_ref, dx_ref = torch_forward_backward(
        F.max_pool2d, x, dout, kernel_size=(1, 3), stride=(1, 1)
    )
    np.testing.assert_array_equal(out, out_ref)  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(max_pool2d_backward(dout, cache), dx_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_preserved(dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 7)).astype(dtype)
    for fwd, bwd in (
        (max_pool2d_forward, max_pool2d_backward),
        (avg_pool2d_forward, avg_pool2d_backward),
    ):
        out, cache = fwd(x, kernel_size=3, stride=2, padding=1)
        assert out.dtype == dtype and out.shape == (2, 3, 4, 4)
        dx = bwd(np.ones_like(out), cache)
        assert dx.dtype == dtype and dx.shape == x.shape


def test_ceil_mode_kernel_larger_than_padded_input():
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    out, _ = max_pool2d_forward(x, kernel_size=3, stride=2, ceil_mode=True)
    np.testing.assert_array_equal(out, F.max_pool2d(torch.tensor(x), 3, 2, ceil_mode=True))


# --------------------------------------------------------------------------- argmax routing


def window_argmax_gradient(x, dout, k, s):
    """Loop reference: add each dout to the first maximum of its window (no padding)."""
    dx = np.zeros_like(x)
    n, c, h_out, w_out = dout.shape
    for b, ch, i, j in np.ndindex(n, c, h_out, w_out):
        window = x[b, ch, i * s : i * s + k, j * s : j * s + k]
        di, dj = np.unravel_index(np.argmax(window), window.shape)  # first max, row-major
        dx[b, ch, i * s + di, j * s + dj] += dout[b, ch, i, j]
    return dx


@pytest.mark.parametrize("k, s", [(2, 2), (3, 1), (3, 2)])
def test_max_pool2d_gradient_lands_on_the_argmax(k, s):
    rng = np.random.default_rng(2)
    x = distinct_values((2, 3, 7, 8), seed=3)
    out, cache = max_pool2d_forward(x, kernel_size=k, stride=s)
    dout = rng.standard_normal(out.shape)
    dx = max_pool2d_backward(dout, cache)
    expected = window_argmax_gradient(x, dout, k, s)
    np.testing.assert_array_equal(dx != 0, expected != 0)  # exactly the argmax positions
    np.testing.assert_allclose(dx, expected, rtol=1e-14)  # overlaps add in another order


def test_max_pool2d_ties_go_to_the_first_element_in_row_major_order():
    x = np.zeros((1, 1, 4, 4))
    out, cache = max_pool2d_forward(x, kernel_size=2)
    dx = max_pool2d_backward(np.ones(out.shape), cache)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1  # the top-left corner of each 2x2 window
    np.testing.assert_array_equal(dx[0, 0], expected)


# --------------------------------------------------------------------------- tiling windows
# stride == kernel without padding or dilation: the forward caches the argmax and the
# backward writes each tap's gradient (see pool._tiles); every other geometry finds the
# argmax in the backward. Both must agree with torch, ties, NaNs and infinities included.

TILING = [
    ((2, 3, 8, 8), (2, 2)),
    ((2, 3, 9, 7), (2, 2)),  # floor mode leaves a bottom row and a right column uncovered
    ((1, 2, 9, 9), (3, 3)),
    ((2, 2, 6, 9), (2, 3)),
    ((1, 2, 5, 4), (1, 2)),
]


@pytest.mark.parametrize("shape, k", TILING)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiling_fast_path_matches_torch(shape, k, ties, dtype):
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    x = x.astype(dtype)
    out, cache = max_pool2d_forward(x, kernel_size=k)
    assert cache.argmax is not None  # the fast path ran
    dout = rng.standard_normal(out.shape).astype(dtype)
    out_ref, dx_ref = torch_forward_backward(F.max_pool2d, x, dout, kernel_size=k)
    np.testing.assert_array_equal(out, out_ref)
    dx = max_pool2d_backward(dout, cache)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, dx_ref)


def test_tiling_fast_path_is_not_taken_for_overlapping_or_padded_windows():
    x = np.zeros((1, 1, 6, 6))
    for kwargs in (
        dict(kernel_size=2, stride=1),
        dict(kernel_size=2, padding=1),
        dict(kernel_size=2, dilation=2, stride=2),
        dict(kernel_size=2, ceil_mode=True, stride=2),  # no overhang: 6 is even
    ):
        _, cache = max_pool2d_forward(x, **kwargs)
        assert (cache.argmax is None) == ("ceil_mode" not in kwargs), kwargs
    _, cache = max_pool2d_forward(np.zeros((1, 1, 5, 5)), kernel_size=2, ceil_mode=True)
    assert cache.argmax is None  # the last window hangs past the input


def test_tiling_fast_path_nan_windows_like_torch():
    x = np.array([[[[1.0, np.nan, np.nan, 0.0], [np.nan, 2.0, 5.0, -np.inf]]]])
    dout = np.array([[[[1.0, 2.0]]]])
    out, cache = max_pool2d_forward(x, kernel_size=2)
    assert cache.argmax is not None
    out_ref, dx_ref = torch_forward_backward(F.max_pool2d, x, dout, kernel_size=2)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(max_pool2d_backward(dout, cache), dx_ref)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=2, stride=1)])
def test_non_finite_dout_reaches_only_the_argmax(kwargs):
    # The tiling path multiplies dout by a 0/1 mask; inf * 0 would put NaN at the losers.
    x = distinct_values((1, 2, 4, 6))
    out, cache = max_pool2d_forward(x, **kwargs)
    dout = np.random.default_rng(5).standard_normal(out.shape)
    dout.flat[[0, 3, 5]] = [np.inf, -np.inf, np.nan]
    _, dx_ref = torch_forward_backward(F.max_pool2d, x, dout, **kwargs)
    # Overlapping windows add in another order; NaN and +-inf must still match exactly.
    np.testing.assert_allclose(max_pool2d_backward(dout, cache), dx_ref, **PARITY_TOL)


# --------------------------------------------------------------------------- return_indices


def torch_max_pool2d_with_indices(x, dout, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    out, indices = F.max_pool2d(xt, return_indices=True, **kwargs)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), indices.numpy(), xt.grad.numpy()


@settings(max_examples=80, deadline=None)
@given(
    geometry=pool_geometry(with_dilation=True),
    values=st.sampled_from(["distinct", "ties", "-inf", "nan"]),
    seed=st.integers(0, 99),
)
def test_max_pool2d_indices_match_torch(geometry, values, seed):
    shape, kwargs = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) if values == "distinct" else rng.integers(-2, 3, shape) * 1.0
    if values == "-inf":  # whole windows of -inf tie with the -inf padding
        x[x < 1] = -np.inf
    if values == "nan":
        x[x == 2] = np.nan
    (out, indices), cache = max_pool2d_forward(x, **kwargs, return_indices=True)
    dout = rng.standard_normal(out.shape)
    out_ref, indices_ref, dx_ref = torch_max_pool2d_with_indices(x, dout, **kwargs)
    np.testing.assert_array_equal(out, out_ref)
    assert indices.dtype == np.int64 and indices.shape == out.shape
    np.testing.assert_array_equal(indices, indices_ref)
    np.testing.assert_allclose(max_pool2d_backward(dout, cache), dx_ref, **PARITY_TOL)


@pytest.mark.parametrize("shape, kwargs", GEOMETRIES + [((2, 3, 8, 8), dict(kernel_size=2))])
def test_return_indices_changes_only_what_is_returned(shape, kwargs):
    x = np.random.default_rng(6).integers(-2, 3, shape).astype(np.float64)
    out, cache = max_pool2d_forward(x, **kwargs)
    (out_i, indices), cache_i = max_pool2d_forward(x, **kwargs, return_indices=True)
    np.testing.assert_array_equal(out_i, out)
    dout = np.random.default_rng(7).standard_normal(out.shape)
    np.testing.assert_array_equal(
        max_pool2d_backward(dout, cache_i), max_pool2d_backward(dout, cache)
    )
    # Each index points at the element that won: the maximum is the input there.
    n, c = shape[:2]
    picked = np.take_along_axis(x.reshape(n, c, -1), indices.reshape(n, c, -1), axis=2)
    np.testing.assert_array_equal(picked.reshape(out.shape), out)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=2, stride=2, padding=1, dilation=2, ceil_mode=True),
        dict(kernel_size=(1, 2), ceil_mode=True),  # the last window hangs past the input
    ],
)
def test_all_minus_inf_windows_pick_their_first_element_inside_the_input(kwargs):
    # The -inf padding ties with such a window; PyTorch never visits the padding, so the
    # index (and the gradient) go to the window's first element inside the input.
    x = np.full((1, 2, 5, 5), -np.inf)
    x[0, 1, 0, 0] = 1.0  # some windows of the second channel are finite
    (out, indices), cache = max_pool2d_forward(x, **kwargs, return_indices=True)
    dout = np.random.default_rng(8).standard_normal(out.shape)
    out_ref, indices_ref, dx_ref = torch_max_pool2d_with_indices(x, dout, **kwargs)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(indices, indices_ref)
    _, cache_plain = max_pool2d_forward(x, **kwargs)
    for c in (cache, cache_plain):
        np.testing.assert_allclose(max_pool2d_backward(dout, c), dx_ref, **PARITY_TOL)


def test_indices_count_positions_in_the_unpadded_input():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    (out, indices), _ = max_pool2d_forward(x, kernel_size=2, padding=1, return_indices=True)
    # Windows start at row -1 and 1, column -1, 1 and 3; the maximum is the bottom-right
    # element inside each one, at h * 4 + w.
    np.testing.assert_array_equal(out[0, 0], [[0.0, 2.0, 3.0], [8.0, 10.0, 11.0]])
    np.testing.assert_array_equal(indices[0, 0], [[0, 2, 3], [8, 10, 11]])


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
    kwargs = dict(kwargs, count_include_pad=count_include_pad, divisor_override=divisor_override)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out, cache = avg_pool2d_forward(x, **kwargs)
    dout = rng.standard_normal(out.shape)
    out_ref, dx_ref = torch_forward_backward(F.avg_pool2d, x, dout, **kwargs)
    np.testing.assert_allclose(out, out_ref, **PARITY_TOL)
    np.testing.assert_allclose(avg_pool2d_backward(dout, cache), dx_ref, **PARITY_TOL)


@pytest.mark.parametrize("shape, kwargs", GEOMETRIES)
@pytest.mark.parametrize("divisor_override", [1, 3])
def test_avg_pool2d_divisor_override_numerical_gradient(shape, kwargs, divisor_override):
    x = np.random.default_rng(9).standard_normal(shape)
    (err,) = check_backward(
        avg_pool2d_forward,
        avg_pool2d_backward,
        [x],
        kwargs=dict(kwargs, divisor_override=divisor_override),
        h=STEP,
    )
    assert err <= GRAD_TOL


def test_divisor_override_one_sums_each_window():
    x = np.random.default_rng(10).standard_normal((2, 3, 7, 7))
    kwargs = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    summed, _ = avg_pool2d_forward(x, **kwargs, divisor_override=1)
    np.testing.assert_allclose(summed, _window_sums(x, **kwargs), rtol=1e-13, atol=1e-14)
    # np.int64 is an int too
    np.testing.assert_array_equal(
        avg_pool2d_forward(x, **kwargs, divisor_override=np.int64(1))[0], summed
    )


def _window_sums(x, kernel_size, stride, padding, ceil_mode):
    """Loop reference: the sum of each window over the zero-padded input."""
    k, s, p = kernel_size, stride, padding
    h_out, w_out = pool2d_output_shape(x.shape[2:], k, stride=s, padding=p, ceil_mode=ceil_mode)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p + s), (p, p + s)))  # room for a ceil_mode overhang
    sums = np.zeros((*x.shape[:2], h_out, w_out))
    for i, j in np.ndindex(h_out, w_out):
        sums[:, :, i, j] = xp[:, :, i * s : i * s + k, j * s : j * s + k].sum(axis=(2, 3))
    return sums


@pytest.mark.parametrize(
    "divisor_override, error",
    [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError), ("2", TypeError)],
)
def test_bad_divisor_override_raises(divisor_override, error):
    with pytest.raises(error, match=r"avg_pool2d_forward: divisor_override must be an int >= 1"):
        avg_pool2d_forward(np.zeros((1, 1, 4, 4)), kernel_size=2, divisor_override=divisor_override)


# --------------------------------------------------------------------------- bad inputs

BAD_FORWARD = [
    # (x, kwargs, error, message fragment)
    (np.zeros((3, 4, 4)), dict(kernel_size=2), ValueError, "4-D"),
    (np.zeros((1, 1, 2, 4, 4)), dict(kernel_size=2), ValueError, "4-D"),
    (np.zeros((1, 1, 4, 4), dtype=np.int64), dict(kernel_size=2), TypeError, "floating"),
    ([[[[1.0]]]], dict(kernel_size=1), TypeError, "numpy array"),
    (np.zeros((1, 1, 4, 4)), dict(kernel_size=0), ValueError, "kernel_size"),
    (np.zeros((1, 1, 4, 4)), dict(kernel_size=2.0), TypeError, "kernel_size"),
    (np.zeros((1, 1, 4, 4)), dict(kernel_size=(2, 2, 2)), TypeError, "kernel_size"),
    (np.zeros((1, 1, 4, 4)), dict(kernel_size=2, stride=0), ValueError, "stride"),
    (np.zeros((1, 1, 4, 4)), dict(kernel_size=2, padding=-1), ValueError, "padding"),
    (np.zeros((1, 1, 4, 4)), dict(kernel_size=2, padding=2), ValueError, "at most half"),
    (np.zeros((1, 1, 4, 4)), dict(kernel_size=5), ValueError, "does not fit"),
    (np.zeros((1, 1, 4, 9)), dict(kernel_size=(1, 5), padding=(0, 2)), None, None),  # fits
]


@pytest.mark.parametrize("forward", [max_pool2d_forward, avg_pool2d_forward])
@pytest.mark.parametrize("x, kwargs, error, match", BAD_FORWARD)
def test_bad_forward_arguments_raise(forward, x, kwargs, error, match):
    if error is None:
        forward(x, **kwargs)
        return
    with pytest.raises(error, match=match):
        forward(x, **kwargs)


def test_max_pool2d_bad_dilation_raises():
    with pytest.raises(ValueError, match="dilation"):
        max_pool2d_forward(np.zeros((1, 1, 4, 4)), kernel_size=2, dilation=0)
    with pytest.raises(ValueError, match="does not fit"):
        max_pool2d_forward(np.zeros((1, 1, 4, 4)), kernel_size=3, dilation=2)


@pytest.mark.parametrize(
    "forward, backward",
    [(max_pool2d_forward, max_pool2d_backward), (avg_pool2d_forward, avg_pool2d_backward)],
)
def test_backward_rejects_dout_of_the_wrong_shape(forward, backward):
    out, cache = forward(np.zeros((2, 3, 6, 6)), kernel_size=2)
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape"):
        backward(np.zeros((2, 3, 3, 2)), cache)
    with pytest.raises(ValueError, match=r"\(2, 3, 3, 3\)"):
        backward(np.zeros((3, 3)), cache)
