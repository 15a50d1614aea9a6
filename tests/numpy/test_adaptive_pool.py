"""NumPy adaptive average pooling: the window formula, numerical gradients, parity with
torch.nn.functional.adaptive_avg_pool2d, and bad inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.adaptive_pool import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    adaptive_pool_windows,
)

GRAD_TOL = 1e-7  # relative error of float64 centred differences
STEP = 1e-3  # linear in x: no truncation error, and a larger step means less round-off
F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-5, atol=1e-5)


def test_windows_follow_torchs_formula():
    start, end = adaptive_pool_windows(10, 4)
    np.testing.assert_array_equal(start, [0, 2, 5, 7])  # floor(i * 10 / 4)
    np.testing.assert_array_equal(end, [3, 5, 8, 10])  # ceil((i + 1) * 10 / 4): overlaps
    start, end = adaptive_pool_windows(3, 5)  # more outputs than inputs: windows repeat
    np.testing.assert_array_equal(start, [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(end, [1, 2, 2, 3, 3])


def test_global_average_pooling():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7))
    out, _ = adaptive_avg_pool2d_forward(x, output_size=1)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3), keepdims=True), rtol=1e-14)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 3, 2)])
@pytest.mark.parametrize("output_size", [1, (2, 3), 4, (None, 2)])
def test_numerical_gradient(shape, output_size):
    x = np.random.default_rng(1).standard_normal(shape)
    (err,) = check_backward(
        adaptive_avg_pool2d_forward, adaptive_avg_pool2d_backward, [x],
        kwargs=dict(output_size=output_size), h=STEP,
    )
    assert err <= GRAD_TOL


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)),
    output_size=st.one_of(
        st.integers(1, 8),
        st.tuples(st.one_of(st.none(), st.integers(1, 8)), st.one_of(st.none(), st.integers(1, 8))),
    ),
    double=st.booleans(),
    seed=st.integers(0, 99),
)
def test_matches_torch(shape, output_size, double, seed):
    dtype, tol = (np.float64, F64) if double else (np.float32, F32)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = adaptive_avg_pool2d_forward(x, output_size=output_size)
    dout = rng.standard_normal(out.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    ref = F.adaptive_avg_pool2d(xt, output_size)
    ref.backward(torch.tensor(dout))
    assert out.shape == ref.shape and out.dtype == dtype
    np.testing.assert_allclose(out, ref.detach().numpy(), **tol)
    dx = adaptive_avg_pool2d_backward(dout, cache)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)


X = np.zeros((1, 1, 4, 4))
BAD = [
    (np.zeros((4, 4)), 2, ValueError, "input must be 4-D"),
    (X.tolist(), 2, TypeError, "input must be a numpy array"),
    (X.astype(int), 2, TypeError, "floating-point"),
    (X, 0, ValueError, "output_size must be >= 1"),
    (X, 2.0, TypeError, "output_size must be an int"),
    (X, (1, 2, 3), TypeError, "output_size must be an int or a pair"),
]


@pytest.mark.parametrize("x, output_size, error, match", BAD)
def test_bad_inputs_raise(x, output_size, error, match):
    with pytest.raises(error, match=match):
        adaptive_avg_pool2d_forward(x, output_size=output_size)


def test_backward_rejects_dout_of_the_wrong_shape():
    _, cache = adaptive_avg_pool2d_forward(X, output_size=2)
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape"):
        adaptive_avg_pool2d_backward(np.zeros((1, 1, 2, 3)), cache)


def test_errors_name_the_function_and_the_expected_shape():
    _, cache = adaptive_avg_pool2d_forward(np.ones((1, 1, 4, 4)), output_size=(2, 2))
    with pytest.raises(ValueError, match=r"^adaptive_avg_pool2d_backward: dout .*\(1, 1, 2, 2\)"):
        adaptive_avg_pool2d_backward(np.ones((1, 1, 3, 3)), cache)
    with pytest.raises(ValueError, match=r"^adaptive_avg_pool2d_forward: input must be 4-D "
                                         r"\(N, C, H, W\), got 3-D"):
        adaptive_avg_pool2d_forward(np.ones((1, 4, 4)), output_size=(2, 2))
