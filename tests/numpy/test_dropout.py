"""NumPy dropout (inverted, vanilla, channel): numerical gradients with a fixed mask, parity
with torch.nn.functional on matched masks, keep-rate and expectation statistics, and bad
inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.dropout import (
    dropout2d_backward,
    dropout2d_forward,
    dropout_backward,
    dropout_forward,
    vanilla_dropout_backward,
    vanilla_dropout_forward,
)

GRAD_TOL = 1e-7  # dropout is linear in x for a fixed mask
TOL = {np.float64: dict(rtol=1e-12, atol=0), np.float32: dict(rtol=1e-6, atol=0)}
SIGMAS = 5  # statistical checks fail by chance with probability < 1e-6


def nonzero_normal(shape, seed=0, dtype=np.float64):
    """Normal values with no exact zeros, so a zero output reveals a dropped element."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return (x + np.sign(x) * 0.1).astype(dtype)


# --------------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "fwd, bwd, mask_shape",
    [
        (dropout_forward, dropout_backward, (2, 3, 4, 4)),
        (vanilla_dropout_forward, vanilla_dropout_backward, (2, 3, 4, 4)),
        (dropout2d_forward, dropout2d_backward, (2, 3, 1, 1)),
    ],
)
def test_numerical_gradient(fwd, bwd, mask_shape, training):
    x = nonzero_normal((2, 3, 4, 4))
    mask = np.random.default_rng(1).random(mask_shape) < 0.6
    (err,) = check_backward(fwd, bwd, [x], kwargs=dict(p=0.4, training=training, mask=mask), h=1e-4)
    assert err <= GRAD_TOL


# --------------------------------------------------------------------------- torch parity


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple),
    p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 99),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_dropout_matches_torch_on_the_same_mask(shape, p, seed, dtype):
    x = nonzero_normal(shape, seed, dtype)
    xt = torch.tensor(x, requires_grad=True)
    torch.manual_seed(seed)  # F.dropout draws from the global generator; this is a test
    out_ref = F.dropout(xt, p=p, training=True)
    dout = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    out_ref.backward(torch.tensor(dout))
    mask = out_ref.detach().numpy() != 0  # x has no zeros: zero output = dropped
    out, cache = dropout_forward(x, p=p, mask=mask)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, out_ref.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(dropout_backward(dout, cache), xt.grad.numpy(), **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    p=st.sampled_from([0.2, 0.5, 1.0]),
    seed=st.integers(0, 99),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_dropout2d_matches_torch_on_the_same_mask(n, c, p, seed, dtype):
    x = nonzero_normal((n, c, 3, 4), seed, dtype)
    xt = torch.tensor(x, requires_grad=True)
    torch.manual_seed(seed)
    out_ref = F.dropout2d(xt, p=p, training=True)
    out_ref.sum().backward()
    mask = out_ref.detach().numpy()[:, :, :1, :1] != 0  # (N, C, 1, 1)
    out, cache = dropout2d_forward(x, p=p, mask=mask)
    np.testing.assert_allclose(out, out_ref.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(
        dropout2d_backward(np.ones_like(x), cache), xt.grad.numpy(), **TOL[dtype]
    )


@pytest.mark.parametrize(
    "fwd, ref", [(dropout_forward, F.dropout), (dropout2d_forward, F.dropout2d)]
)
def test_evaluation_is_the_identity_as_in_torch(fwd, ref):
    x = nonzero_normal((2, 3, 4, 5))
    out, cache = fwd(x, p=0.7, training=False)
    np.testing.assert_array_equal(out, ref(torch.tensor(x), p=0.7, training=False).numpy())
    np.testing.assert_array_equal(dropout_backward(x, cache), x)


def test_p_one_drops_everything_as_in_torch():
    x = nonzero_normal((3, 4))
    out, cache = dropout_forward(x, p=1.0, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(out, F.dropout(torch.tensor(x), p=1.0).numpy())
    np.testing.assert_array_equal(out, 0)
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), 0)


def test_vanilla_dropout_scales_at_test_time():
    x = nonzero_normal((4, 5))
    mask = np.random.default_rng(0).random(x.shape) < 0.5
    out, _ = vanilla_dropout_forward(x, p=0.3, mask=mask)
    np.testing.assert_array_equal(out, np.where(mask, x, 0))  # no 1 / (1 - p)
    out, cache = vanilla_dropout_forward(x, p=0.3, training=False)
    np.testing.assert_allclose(out, 0.7 * x, rtol=1e-15)
    np.testing.assert_allclose(vanilla_dropout_backward(np.ones_like(x), cache), 0.7)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_and_expectation(p):
    n = 200_000
    x = np.full(n, 1.5)
    out, _ = dropout_forward(x, p=p, generator=np.random.default_rng(42))
    keep_rate = np.mean(out != 0)
    assert abs(keep_rate - (1 - p)) <= SIGMAS * np.sqrt(p * (1 - p) / n)
    # Each output is 1.5 / (1 - p) with probability 1 - p: mean 1.5, std 1.5 sqrt(p/(1-p)).
    assert abs(out.mean() - 1.5) <= SIGMAS * 1.5 * np.sqrt(p / (1 - p) / n)
    np.testing.assert_allclose(out[out != 0], 1.5 / (1 - p), rtol=1e-15)
    # Vanilla: E[train output] = (1 - p) x = the test-time output.
    out_v, _ = vanilla_dropout_forward(x, p=p, generator=np.random.default_rng(43))
    test_v, _ = vanilla_dropout_forward(x, p=p, training=False)
    assert abs(out_v.mean() - test_v[0]) <= SIGMAS * 1.5 * np.sqrt(p * (1 - p) / n)


def test_dropout2d_drops_whole_channels_at_rate_p():
    n, c, p = 500, 64, 0.3
    out, _ = dropout2d_forward(np.ones((n, c, 2, 3)), p=p, generator=np.random.default_rng(0))
    per_channel = out.reshape(n, c, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel != 0).all(-1))
    keep_rate = np.mean(per_channel[:, :, 0] != 0)
    assert abs(keep_rate - (1 - p)) <= SIGMAS * np.sqrt(p * (1 - p) / (n * c))


def test_same_generator_seed_same_mask():
    x = nonzero_normal((10, 10))
    a, _ = dropout_forward(x, generator=np.random.default_rng(7))
    b, _ = dropout_forward(x, generator=np.random.default_rng(7))
    c, _ = dropout_forward(x, generator=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --------------------------------------------------------------------------- bad inputs

X = np.ones((2, 3, 4, 4))


@pytest.mark.parametrize("fwd", [dropout_forward, vanilla_dropout_forward, dropout2d_forward])
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(p=-0.1), ValueError, "p"),
        (dict(p=1.5), ValueError, "p"),
        (dict(p=float("nan")), ValueError, "p"),
        (dict(p="0.5"), TypeError, "p"),
        (dict(generator=np.random.RandomState(0)), TypeError, "rng"),
        (dict(mask=np.ones((2, 3, 4, 5), bool)), ValueError, "mask"),
        (dict(mask=np.ones((2, 3, 4, 4))), TypeError, "mask"),
    ],
)
def test_bad_inputs_raise(fwd, kwargs, error, match):
    if fwd is dropout2d_forward and "mask" in kwargs:
        kwargs = dict(mask=kwargs["mask"][:, :, :1, :2])
    with pytest.raises(error, match=match):
        fwd(X, **kwargs)


def test_bad_x_raises():
    with pytest.raises(ValueError, match="4-D"):
        dropout2d_forward(np.ones((3, 4, 4)))
    with pytest.raises(TypeError, match="input"):
        dropout_forward(np.ones(3, int))
    with pytest.raises(ValueError, match="dout"):
        dropout_backward(np.ones(2), dropout_forward(np.ones(3), p=0.2)[1])


def test_vanilla_dropout_errors_name_the_function():
    with pytest.raises(ValueError, match="^vanilla_dropout_forward: p"):
        vanilla_dropout_forward(np.ones(3), p=1.5, generator=np.random.default_rng(0))
