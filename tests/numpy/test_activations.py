"""NumPy activations: numerical gradients, parity with torch.nn.functional in float64 and
float32 (values and gradients), maxout against a reshape + amax reference, overflow
safety, and bad inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy import activations as A

GRAD_TOL = 1e-7  # relative error of float64 centred differences
# These functions are smooth away from their kinks, so a step of 1e-5 keeps the truncation
# error (~h^2) below 1e-9 while cutting the roundoff (~1e-16 * |f| / h) tenfold against the
# default 1e-6. Inputs stay within a few units of 0: far out, derivatives such as GELU's
# (~1e-17 at x = -9) are below the roundoff floor and no relative error is meaningful.
STEP = 1e-5
TOL = {
    np.float64: dict(rtol=1e-10, atol=1e-12),
    # float32 at the library's ~1e-5: for |x| ~ 10, GELU-tanh's derivative cancels
    # (1 + tanh(u) with tanh(u) ~ -1), and torch's own float32 result is off by ~1e-6 from
    # the float64 value, so an absolute 1e-6 would only measure torch's rounding.
    np.float32: dict(rtol=1e-5, atol=1e-5),
}


def away_from_zero(shape, seed=0, gap=0.05):
    """Standard normal values pushed at least ``gap`` away from 0, so a +-1e-6 probe never
    crosses the kink of ReLU-like functions."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + np.sign(x) * gap + (x == 0) * gap


# (name, our forward, our backward, torch reference, kwargs for ours, kwargs for torch)
ELEMENTWISE = [
    ("sigmoid", A.sigmoid_forward, A.sigmoid_backward, torch.sigmoid, {}),
    ("tanh", A.tanh_forward, A.tanh_backward, torch.tanh, {}),
    ("relu", A.relu_forward, A.relu_backward, F.relu, {}),
    ("leaky_relu", A.leaky_relu_forward, A.leaky_relu_backward, F.leaky_relu, {}),
    (
        "leaky_relu_0.2",
        A.leaky_relu_forward,
        A.leaky_relu_backward,
        F.leaky_relu,
        dict(negative_slope=0.2),
    ),
    ("elu", A.elu_forward, A.elu_backward, F.elu, {}),
    ("elu_alpha", A.elu_forward, A.elu_backward, F.elu, dict(alpha=0.7)),
    ("selu", A.selu_forward, A.selu_backward, F.selu, {}),
    ("gelu", A.gelu_forward, A.gelu_backward, F.gelu, {}),
    ("gelu_tanh", A.gelu_forward, A.gelu_backward, F.gelu, dict(approximate="tanh")),
    ("silu", A.silu_forward, A.silu_backward, F.silu, {}),
    ("mish", A.mish_forward, A.mish_backward, F.mish, {}),
    ("softplus", A.softplus_forward, A.softplus_backward, F.softplus, {}),
    (
        "softplus_beta",
        A.softplus_forward,
        A.softplus_backward,
        F.softplus,
        dict(beta=2.5, threshold=1.0),
    ),  # beta * x > threshold for x > 0.4: both branches
]
IDS = [case[0] for case in ELEMENTWISE]


def torch_forward_backward(fn, inputs, dout, **kwargs):
    leaves = [torch.tensor(a, requires_grad=True) for a in inputs]
    out = fn(*leaves, **kwargs)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in leaves]


# --------------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("name, fwd, bwd, ref, kwargs", ELEMENTWISE, ids=IDS)
def test_elementwise_numerical_gradient(name, fwd, bwd, ref, kwargs):
    x = away_from_zero((2, 3, 4))
    (err,) = check_backward(fwd, bwd, [x], kwargs=kwargs, h=STEP)
    assert err <= GRAD_TOL


@pytest.mark.parametrize("channels", [1, 4])
def test_prelu_numerical_gradient(channels):
    x = away_from_zero((2, 4, 3, 3), seed=1)
    weight = np.random.default_rng(2).uniform(0.05, 0.5, channels)
    err_x, err_w = check_backward(A.prelu_forward, A.prelu_backward, [x, weight], h=STEP)
    assert err_x <= GRAD_TOL and err_w <= GRAD_TOL


@pytest.mark.parametrize("shape", [(3, 6), (2, 6, 3, 4)])
def test_maxout_numerical_gradient(shape):
    # A permutation of 0.01 * arange: no ties, and a probe never changes the winner.
    x = 0.01 * np.random.default_rng(3).permutation(int(np.prod(shape))).reshape(shape)
    (err,) = check_backward(
        A.maxout_forward, A.maxout_backward, [x.astype(float)], kwargs=dict(pieces=3), h=1e-4
    )
    assert err <= GRAD_TOL


@pytest.mark.parametrize(
    "fwd, bwd",
    [(A.softmax_forward, A.softmax_backward), (A.log_softmax_forward, A.log_softmax_backward)],
)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_numerical_gradient(fwd, bwd, dim):
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    (err,) = check_backward(fwd, bwd, [x], kwargs=dict(dim=dim), h=STEP)
    assert err <= GRAD_TOL


# --------------------------------------------------------------------------- torch parity

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)
dtypes = st.sampled_from([np.float64, np.float32])


@settings(max_examples=30, deadline=None)
@given(
    case=st.sampled_from(ELEMENTWISE),
    shape=shapes,
    dtype=dtypes,
    seed=st.integers(0, 99),
    scale=st.sampled_from([1.0, 10.0]),
)
def test_elementwise_matches_torch(case, shape, dtype, seed, scale):
    _, fwd, bwd, ref, kwargs = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out, cache = fwd(x, **kwargs)
    out_ref, (dx_ref,) = torch_forward_backward(ref, [x], dout, **kwargs)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, out_ref, **TOL[dtype])
    dx = bwd(dout, cache)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),
    shared=st.booleans(),
    dtype=dtypes,
    seed=st.integers(0, 99),
)
def test_prelu_matches_torch(shape, shared, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    weight = rng.uniform(-0.5, 0.5, 1 if shared else shape[1]).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out, cache = A.prelu_forward(x, weight)
    out_ref, (dx_ref, dw_ref) = torch_forward_backward(F.prelu, [x, weight], dout)
    np.testing.assert_allclose(out, out_ref, **TOL[dtype])
    dx, dw = A.prelu_backward(dout, cache)
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])
    np.testing.assert_allclose(dw, dw_ref, **TOL[dtype])
    assert dw.dtype == dtype and dw.shape == weight.shape


def maxout_reference(x, pieces):
    return x.unflatten(1, (x.shape[1] // pieces, pieces)).amax(dim=2)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    groups=st.integers(1, 4),
    pieces=st.integers(1, 4),
    rest=st.lists(st.integers(1, 4), max_size=2).map(tuple),
    dtype=dtypes,
    seed=st.integers(0, 99),
)
def test_maxout_matches_reshape_amax(n, groups, pieces, rest, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (n, groups * pieces, *rest)
    x = rng.standard_normal(shape).astype(dtype)  # continuous: no ties, amax agrees
    out, cache = A.maxout_forward(x, pieces=pieces)
    dout = rng.standard_normal(out.shape).astype(dtype)
    out_ref, (dx_ref,) = torch_forward_backward(maxout_reference, [x], dout, pieces=pieces)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_allclose(A.maxout_backward(dout, cache), dx_ref, **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(shape=shapes, log=st.booleans(), dtype=dtypes, seed=st.integers(0, 99), data=st.data())
def test_softmax_matches_torch(shape, log, dtype, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    fwd, bwd = (
        (A.log_softmax_forward, A.log_softmax_backward)
        if log
        else (A.softmax_forward, A.softmax_backward)
    )
    ref = torch.log_softmax if log else torch.softmax
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out, cache = fwd(x, dim=dim)
    out_ref, (dx_ref,) = torch_forward_backward(ref, [x], dout, dim=dim)
    np.testing.assert_allclose(out, out_ref, **TOL[dtype])
    np.testing.assert_allclose(bwd(dout, cache), dx_ref, **TOL[dtype])


def test_swish_is_silu():
    assert A.swish_forward is A.silu_forward and A.swish_backward is A.silu_backward


# --------------------------------------------------------------------------- numerical care


def test_no_overflow_for_extreme_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for fwd, bwd, kwargs in [
            (A.sigmoid_forward, A.sigmoid_backward, {}),
            (A.softplus_forward, A.softplus_backward, dict(threshold=1e9)),
            (A.silu_forward, A.silu_backward, {}),
            (A.elu_forward, A.elu_backward, {}),
            (A.softmax_forward, A.softmax_backward, dict(dim=0)),
            (A.log_softmax_forward, A.log_softmax_backward, dict(dim=0)),
        ]:
            out, cache = fwd(x, **kwargs)
            assert np.all(np.isfinite(out)) and np.all(np.isfinite(bwd(np.ones(5), cache)))
    out, _ = A.softmax_forward(np.array([1000.0, 1000.0]), dim=0)
    np.testing.assert_array_equal(out, [0.5, 0.5])


def test_relu_gradient_at_zero_is_zero_as_in_torch():
    x = np.array([-1.0, 0.0, 1.0])
    _, cache = A.relu_forward(x)
    np.testing.assert_array_equal(A.relu_backward(np.ones(3), cache), [0.0, 0.0, 1.0])


def test_relu_backward_blocks_non_finite_gradients_as_in_torch():
    # The fast route multiplies dout by the 0/1 mask, where inf * 0 would be NaN.
    x = np.array([-1.0, 0.0, 1.0, -2.0, 3.0], dtype=np.float32)
    dout = np.array([np.inf, np.nan, 2.0, -np.inf, np.inf], dtype=np.float32)
    _, cache = A.relu_forward(x)
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(dout))
    dx = A.relu_backward(dout, cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, xt.grad.numpy())


# inf * 0 (an infinite dout at slope 0) is NaN in torch too; NumPy also warns about it.
@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
@pytest.mark.parametrize("slope", [0.01, 1.0, 0.0, -0.5, 1.5])  # fast route only for (0, 1]
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_matches_torch_exactly_with_non_finite_values(slope, dtype):
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.inf, -np.inf, np.nan, -1e-30], dtype=dtype)
    dout = np.array([1.5, np.inf, -2.0, np.nan, -np.inf, 0.5, 1.0, np.inf], dtype=dtype)
    out, cache = A.leaky_relu_forward(x, negative_slope=slope)
    xt = torch.tensor(x, requires_grad=True)
    out_ref = F.leaky_relu(xt, negative_slope=slope)
    out_ref.backward(torch.tensor(dout))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, out_ref.detach().numpy())
    np.testing.assert_array_equal(np.signbit(out), np.signbit(out_ref.detach().numpy()))
    dx = A.leaky_relu_backward(dout, cache)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, xt.grad.numpy())


def test_relu_and_leaky_relu_keep_0d_arrays():
    for fwd, bwd in (
        (A.relu_forward, A.relu_backward),
        (A.leaky_relu_forward, A.leaky_relu_backward),
    ):
        out, cache = fwd(np.array(-2.0))
        dx = bwd(np.array(1.0), cache)
        assert isinstance(out, np.ndarray) and out.shape == ()
        assert isinstance(dx, np.ndarray) and dx.shape == ()


def test_relu_keeps_dtype_and_propagates_nan_like_torch():
    x = np.array([np.nan, -np.inf, -0.0, 0.0, -1.0, 2.0])
    dout = np.arange(1.0, 7.0)
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(dout))
    for dtype in (np.float16, np.float32, np.float64):
        out, cache = A.relu_forward(x.astype(dtype))
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, torch.relu(xt).detach().numpy().astype(dtype))
        np.testing.assert_array_equal(A.relu_backward(dout.astype(dtype), cache), xt.grad)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: A.relu_forward([1.0]), TypeError, "input must be a numpy array"),
        (lambda: A.sigmoid_forward(np.arange(3)), TypeError, "floating"),
        (lambda: A.prelu_forward(np.zeros((2, 3)), np.zeros(2)), ValueError, "weight"),
        (lambda: A.prelu_forward(np.zeros((2, 3)), np.zeros((3, 1))), ValueError, "weight"),
        (lambda: A.gelu_forward(np.zeros(2), approximate="erf"), ValueError, "approximate"),
        (lambda: A.softplus_forward(np.zeros(2), beta=0), ValueError, "beta"),
        (
            lambda: A.leaky_relu_forward(np.zeros(2), negative_slope="a"),
            TypeError,
            "negative_slope",
        ),
        (lambda: A.maxout_forward(np.zeros((2, 5)), pieces=2), ValueError, "pieces"),
        (lambda: A.maxout_forward(np.zeros((2, 4)), pieces=0), ValueError, "pieces"),
        (lambda: A.maxout_forward(np.zeros(4), pieces=2), ValueError, "2-D"),
        (lambda: A.softmax_forward(np.zeros((2, 3)), dim=2), ValueError, "dim"),
        (lambda: A.log_softmax_forward(np.zeros((2, 3)), dim=1.0), TypeError, "dim"),
        (lambda: A.relu_backward(np.zeros(3), A.relu_forward(np.zeros(2))[1]), ValueError, "dout"),
    ],
)
def test_bad_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_softplus_rejects_a_non_positive_beta_by_name():
    with pytest.raises(ValueError, match=r"^softplus_forward: beta must be > 0, got 0.0"):
        A.softplus_forward(np.ones(2), beta=0.0)
