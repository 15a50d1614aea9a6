"""NumPy max unpooling: parity with F.max_unpool2d (values and gradients, with and without
output_size), the pool -> unpool round trip, unpooling as max pooling's transpose, numerical
gradients, and every bad-input path."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import pool_geometry

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.pool import max_pool2d_backward, max_pool2d_forward
from d2lcnn.numpy.unpool import max_unpool2d_backward, max_unpool2d_forward

GRAD_TOL = 1e-7  # relative error of float64 centred differences
STEP = 1e-4  # unpooling is linear in its input: no truncation error, less roundoff than 1e-6


@st.composite
def unpool_geometry(draw):
    """``(input shape, kwargs)`` for a max_unpool2d that torch accepts, output_size included
    (``None``, ``(H, W)`` or ``(N, C, H, W)``, strictly within one stride of the default)."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    s = k if stride is None else stride
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    default = [(size - 1) * s[i] - 2 * p[i] + k[i] for i, size in enumerate((h, w))]
    form = draw(st.sampled_from(["default", "hw", "nchw"]))
    out_hw = list(default)
    if form != "default":
        out_hw = [default[i] + draw(st.integers(1 - s[i], s[i] - 1)) for i in range(2)]
    assume(min(out_hw) >= 1)
    output_size = {"default": None, "hw": tuple(out_hw), "nchw": (n, c, *out_hw)}[form]
    kwargs = dict(kernel_size=k, stride=stride, padding=p, output_size=output_size)
    return (n, c, h, w), tuple(out_hw), kwargs


def distinct_indices(rng, shape, plane):
    """Indices of ``shape`` with no repeat within an ``(n, c)`` plane (PyTorch leaves the
    winner of a repeated position unspecified)."""
    n, c, h, w = shape
    rows = [rng.permutation(plane)[: h * w] for _ in range(n * c)]
    return np.stack(rows).reshape(shape)


def torch_unpool(x, indices, dout, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    out = F.max_unpool2d(xt, torch.tensor(indices, dtype=torch.int64), **kwargs)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy()


# --------------------------------------------------------------------------- torch parity


@settings(max_examples=80, deadline=None)
@given(geometry=unpool_geometry(), seed=st.integers(0, 99))
def test_max_unpool2d_matches_torch(geometry, seed):
    shape, out_hw, kwargs = geometry
    assume(out_hw[0] * out_hw[1] >= shape[2] * shape[3])  # room for distinct indices
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    indices = distinct_indices(rng, shape, out_hw[0] * out_hw[1])
    out, cache = max_unpool2d_forward(x, indices, **kwargs)
    assert out.shape == (*shape[:2], *out_hw)
    dout = rng.standard_normal(out.shape)
    out_ref, dx_ref = torch_unpool(x, indices, dout, **kwargs)
    np.testing.assert_array_equal(out, out_ref)  # a copy: exact
    np.testing.assert_array_equal(max_unpool2d_backward(dout, cache), dx_ref)


@settings(max_examples=60, deadline=None)
@given(
    geometry=pool_geometry(with_dilation=False),
    ties=st.booleans(),
    full_shape=st.booleans(),
    seed=st.integers(0, 99),
)
def test_unpooling_pooled_features_matches_torch(geometry, ties, full_shape, seed):
    # The usual use: unpool with the indices and the input size of a max pooling. Overlapping
    # windows repeat an index, always with the same value.
    shape, kwargs = geometry
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape) * 1.0 if ties else rng.standard_normal(shape)
    (y, indices), _ = max_pool2d_forward(x, **kwargs, return_indices=True)
    unpool_kwargs = dict(kernel_size=kwargs["kernel_size"], stride=kwargs["stride"])
    unpool_kwargs["padding"] = kwargs["padding"]
    unpool_kwargs["output_size"] = shape if full_shape else shape[2:]
    out, cache = max_unpool2d_forward(y, indices, **unpool_kwargs)
    dout = rng.standard_normal(out.shape)
    out_ref, dy_ref = torch_unpool(y, indices, dout, **unpool_kwargs)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(max_unpool2d_backward(dout, cache), dy_ref)


def test_repeated_indices_keep_the_last_value_and_all_get_the_gradient():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    indices = np.array([[[[0, 5], [5, 0]]]])  # 4.0 and 3.0 come last at positions 0 and 5
    out, cache = max_unpool2d_forward(x, indices, kernel_size=2, stride=2)
    assert out.shape == (1, 1, 4, 4)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[1, 1] = 4.0, 3.0
    np.testing.assert_array_equal(out[0, 0], expected)
    dout = np.arange(16.0).reshape(out.shape)
    dx = max_unpool2d_backward(dout, cache)
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 5.0], [5.0, 0.0]])  # dout at each position
    _, dx_ref = torch_unpool(x, indices, dout, kernel_size=2, stride=2)
    np.testing.assert_array_equal(dx, dx_ref)


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 3, 8, 8), dict(kernel_size=2)),
        ((2, 2, 7, 9), dict(kernel_size=2)),  # a floor-mode border row and column
        ((1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1)),  # overlapping windows
        ((1, 3, 6, 5), dict(kernel_size=(2, 3), stride=(2, 1), ceil_mode=True)),
    ],
)
def test_pool_then_unpool_puts_the_maxima_back_in_place(shape, kwargs):
    x = np.random.default_rng(0).uniform(0.1, 1.0, shape)  # positive: see the last assert
    (y, indices), _ = max_pool2d_forward(x, **kwargs, return_indices=True)
    unpool_kwargs = {k: v for k, v in kwargs.items() if k != "ceil_mode"}
    out, _ = max_unpool2d_forward(y, indices, **unpool_kwargs, output_size=shape[2:])
    assert out.shape == x.shape
    winners = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(
        winners.reshape(*shape[:2], -1), indices.reshape(*shape[:2], -1), True, axis=2
    )
    np.testing.assert_array_equal(out, np.where(winners, x, 0.0))
    # Pooling again finds the same maxima: every window still holds its maximum, and the
    # zeros around it are smaller (the input is positive).
    np.testing.assert_array_equal(max_pool2d_forward(out, **kwargs)[0], y)


def test_unpooling_is_max_pooling_backward_when_windows_do_not_overlap():
    # With the winners fixed, pooling selects and unpooling is its transpose.
    rng = np.random.default_rng(1)
    for kwargs in (dict(kernel_size=2), dict(kernel_size=2, stride=3), dict(kernel_size=(3, 2))):
        x = rng.standard_normal((2, 3, 9, 8))
        (y, indices), cache = max_pool2d_forward(x, **kwargs, return_indices=True)
        dout = rng.standard_normal(y.shape)
        out, _ = max_unpool2d_forward(dout, indices, **kwargs, output_size=x.shape[2:])
        np.testing.assert_array_equal(out, max_pool2d_backward(dout, cache))


# --------------------------------------------------------------------------- gradient, shapes


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 3, 3, 4), dict(kernel_size=2)),
        ((1, 2, 3, 3), dict(kernel_size=3, stride=2, padding=1)),
        ((2, 2, 2, 3), dict(kernel_size=(3, 2), stride=(2, 3), output_size=(4, 8))),
    ],
)
def test_numerical_gradient(shape, kwargs):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    out, _ = max_unpool2d_forward(x, np.zeros(shape, dtype=np.int64), **kwargs)
    indices = distinct_indices(rng, shape, out.shape[2] * out.shape[3])
    (err,) = check_backward(
        lambda x, **kw: max_unpool2d_forward(x, indices, **kw),
        max_unpool2d_backward,
        [x],
        kwargs=kwargs,
        h=STEP,
    )
    assert err <= GRAD_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64, np.uint8])
def test_dtype_and_shape(dtype, index_dtype):
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 3)).astype(dtype)
    indices = np.zeros(x.shape, dtype=index_dtype) + np.arange(3, dtype=index_dtype)
    out, cache = max_unpool2d_forward(x, indices, kernel_size=3, stride=2, padding=1)
    assert out.dtype == dtype and out.shape == (2, 3, 7, 5)  # (4-1)*2 - 2 + 3, (3-1)*2 - 2 + 3
    dx = max_unpool2d_backward(np.ones_like(out), cache)
    assert dx.dtype == dtype and dx.shape == x.shape


def test_input_is_not_modified_and_output_is_fresh():
    x = np.random.default_rng(4).standard_normal((1, 1, 2, 2))
    indices = np.array([[[[0, 3], [8, 15]]]])
    x_copy, indices_copy = x.copy(), indices.copy()
    out, cache = max_unpool2d_forward(x, indices, kernel_size=2)
    out[...] = 7.0
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(indices, indices_copy)
    np.testing.assert_array_equal(max_unpool2d_backward(out, cache), np.full(x.shape, 7.0))


# --------------------------------------------------------------------------- bad inputs

X = np.zeros((1, 1, 2, 2))
I = np.zeros((1, 1, 2, 2), dtype=np.int64)  # noqa: E741

BAD = [
    # (input, indices, kwargs, error, message fragment)
    ([[[[0.0]]]], I[..., :1, :1], dict(kernel_size=2), TypeError, "input must be a numpy"),
    (X[0], I[0], dict(kernel_size=2), ValueError, "input must be 4-D"),
    (X.astype(np.int64), I, dict(kernel_size=2), TypeError, "input must be a floating"),
    (X, I.tolist(), dict(kernel_size=2), TypeError, "indices must be a numpy array"),
    (X, I.astype(np.float64), dict(kernel_size=2), TypeError, "indices must be an integer"),
    (X, I.astype(bool), dict(kernel_size=2), TypeError, "indices must be an integer"),
    (X, I[..., :1], dict(kernel_size=2), ValueError, r"input's shape \(1, 1, 2, 2\)"),
    (X, I - 1, dict(kernel_size=2), ValueError, r"\[0, 16\), got -1 at \(0, 0, 0, 0\)"),
    (X, I + 16, dict(kernel_size=2), ValueError, r"\[0, 16\), got 16"),
    (X, I + 9, dict(kernel_size=2, output_size=(3, 3)), ValueError, r"\[0, 9\), got 9"),
    (X, I, dict(kernel_size=0), ValueError, "kernel_size"),
    (X, I, dict(kernel_size=2, stride=0), ValueError, "stride"),
    (X, I, dict(kernel_size=2, padding=-1), ValueError, "padding"),
    (X, I, dict(kernel_size=2, output_size=(4, 4, 4)), ValueError, "2 elements"),
    (X, I, dict(kernel_size=2, output_size=4), TypeError, "output_size must be a sequence"),
    (X, I, dict(kernel_size=2, output_size=(4.0, 4)), TypeError, "output_size must hold ints"),
    (X, I, dict(kernel_size=2, output_size=(6, 4)), ValueError, "H=6 .* between 2 and 6"),
    (X, I, dict(kernel_size=2, output_size=(4, 2)), ValueError, "W=2 .* between 2 and 6"),
    (X[..., :1, :1], I[..., :1, :1], dict(kernel_size=1, padding=1), ValueError, ">= 0, got -1"),
]


@pytest.mark.parametrize("x, indices, kwargs, error, match", BAD)
def test_bad_forward_arguments_raise(x, indices, kwargs, error, match):
    with pytest.raises(error, match="max_unpool2d_forward: .*" + match):
        max_unpool2d_forward(x, indices, **kwargs)


def test_bad_forward_arguments_are_rejected_by_torch_too():
    # The geometry checks are PyTorch's: the same output_size values fail there.
    for kwargs in (dict(output_size=(6, 4)), dict(output_size=(4, 4, 4))):
        with pytest.raises(ValueError):
            F.max_unpool2d(torch.tensor(X), torch.tensor(I), 2, **kwargs)
    with pytest.raises(RuntimeError, match="invalid max index"):
        F.max_unpool2d(torch.tensor(X), torch.tensor(I + 16), 2)


def test_backward_rejects_dout_of_the_wrong_shape():
    _, cache = max_unpool2d_forward(X, I, kernel_size=2)
    with pytest.raises(ValueError, match=r"max_unpool2d_backward: .*\(1, 1, 4, 4\), got \(4, 4\)"):
        max_unpool2d_backward(np.zeros((4, 4)), cache)
