"""NumPy initializers: fans and gains equal torch's, the drawn values have the intended
spread (within sampling error), orthogonal matrices have all singular values = gain, and bad
arguments raise."""

import math

import numpy as np
import pytest
import torch

from d2lcnn.numpy.init import (
    calculate_gain,
    fan_in_fan_out,
    kaiming_normal,
    kaiming_uniform,
    normal,
    orthogonal,
    uniform,
    xavier_normal,
    xavier_uniform,
    zeros,
)

SHAPES = [(3, 4), (16, 3, 3, 3), (8, 2, 5, 1), (4, 6, 7), (2, 3, 2, 2, 2), (1, 1)]
BIG = (256, 64, 3, 3)  # 147456 draws
N_BIG = math.prod(BIG)
# Relative standard error of a sample std from N draws is sqrt((kurtosis - 1) / (4N)):
# 0.71/sqrt(N) for a normal, 0.45/sqrt(N) for a uniform. Allow 5 standard errors.
STD_RTOL = 5 * 0.71 / math.sqrt(N_BIG)  # ~0.009

NONLINEARITIES = [
    ("linear", None),
    ("conv2d", None),
    ("conv_transpose3d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0),
    ("leaky_relu", 3),
    ("selu", None),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_fan_in_fan_out_matches_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert fan_in_fan_out(shape) == expected


def test_conv_fan_in_is_channels_times_kernel():
    # a grouped conv weight (C_out, C_in / groups, kH, kW) = (32, 16 / 4, 3, 5)
    assert fan_in_fan_out((32, 4, 3, 5)) == (4 * 3 * 5, 32 * 3 * 5)


@pytest.mark.parametrize("nonlinearity, param", NONLINEARITIES)
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


def draw(fn, **kwargs):
    return fn(np.random.default_rng(0), BIG, **kwargs)


@pytest.mark.parametrize(
    "fn, kwargs, std",
    [
        (normal, dict(std=0.02), 0.02),
        (uniform, dict(a=-1.0, b=3.0), 4 / math.sqrt(12)),
        (xavier_normal, dict(gain=2.0), 2.0 * math.sqrt(2 / (64 * 9 + 256 * 9))),
        (xavier_uniform, dict(), math.sqrt(2 / (64 * 9 + 256 * 9))),
        (kaiming_normal, dict(nonlinearity="relu"), math.sqrt(2 / (64 * 9))),
        (kaiming_normal, dict(mode="fan_out", nonlinearity="tanh"), 5 / 3 / math.sqrt(256 * 9)),
        (kaiming_uniform, dict(a=math.sqrt(5)), math.sqrt(2 / 6) / math.sqrt(64 * 9)),
        (kaiming_uniform, dict(mode="fan_out"), math.sqrt(2 / 1.0001) / math.sqrt(256 * 9)),
    ],
)
def test_empirical_std(fn, kwargs, std):
    w = draw(fn, **kwargs)
    assert w.shape == BIG and w.dtype == np.float64
    assert np.std(w) == pytest.approx(std, rel=STD_RTOL)


@pytest.mark.parametrize(
    "fn, kwargs, bound",
    [
        (xavier_uniform, dict(gain=0.5), 0.5 * math.sqrt(6 / (64 * 9 + 256 * 9))),
        (kaiming_uniform, dict(nonlinearity="relu"), math.sqrt(6 / (64 * 9))),
    ],
)
def test_uniform_bounds(fn, kwargs, bound):
    """Uniform on [-bound, bound] with the textbook bound; with 1.5e5 draws the extremes
    come within 1e-3 of it."""
    w = draw(fn, **kwargs)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() == pytest.approx(bound, rel=1e-3)
    assert np.mean(w) == pytest.approx(0.0, abs=5 * bound / math.sqrt(3 * N_BIG))


def test_same_seed_same_weights_and_zeros():
    a = kaiming_normal(np.random.default_rng(7), (4, 3))
    b = kaiming_normal(np.random.default_rng(7), (4, 3))
    np.testing.assert_array_equal(a, b)
    assert zeros((2, 3)).tolist() == [[0.0] * 3] * 2
    assert xavier_uniform(np.random.default_rng(0), (3, 4), dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3), (8, 2, 3, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("gain", [1.0, 0.5, math.sqrt(2)])
def test_orthogonal_singular_values_equal_gain(shape, gain):
    w = orthogonal(np.random.default_rng(1), shape, gain=gain)
    assert w.shape == shape
    m = w.reshape(shape[0], -1)
    np.testing.assert_allclose(np.linalg.svd(m, compute_uv=False), gain, rtol=1e-12)
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m  # (small, small)
    np.testing.assert_allclose(gram, gain**2 * np.eye(small), atol=1e-12)


def test_orthogonal_is_not_biased_towards_positive_diagonal():
    """Without the sign fix, QR returns R with a positive diagonal and Q is not Haar
    distributed; with it, the diagonal of Q is symmetric about 0."""
    diag = [orthogonal(np.random.default_rng(s), (4, 4))[0, 0] for s in range(400)]
    assert abs(np.mean(np.sign(diag))) < 0.2


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda rng: fan_in_fan_out((5,)), "at least 2 dimensions"),
        (lambda rng: calculate_gain("swish"), "unsupported nonlinearity 'swish'"),
        (lambda rng: calculate_gain("leaky_relu", "0.1"), "param must be a number"),
        (lambda rng: normal(rng, (2, 2), std=-1.0), "std must be >= 0, got -1.0"),
        (lambda rng: uniform(rng, (2, 2), a=1.0, b=0.0), "need a <= b"),
        (lambda rng: xavier_uniform(rng, (4,)), "at least 2 dimensions"),
        (lambda rng: xavier_normal(rng, (4, 4), gain=-1), "gain must be >= 0"),
        (lambda rng: kaiming_uniform(rng, (4, 4), mode="in"), "mode must be 'fan_in' or"),
        (lambda rng: kaiming_normal(rng, (4, 4), nonlinearity="gelu"), "unsupported"),
        (lambda rng: kaiming_normal(rng, (4, 0)), "has a zero fan_in"),
        (lambda rng: orthogonal(rng, (4,)), "at least 2 dimensions"),
        (lambda rng: orthogonal(rng, (4, 4), gain=-2.0), "gain must be >= 0"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(np.random.default_rng(0))


def test_generator_must_be_a_numpy_generator():
    with pytest.raises(TypeError, match="generator must be a np.random.Generator"):
        xavier_uniform(0, (3, 3))


def test_normal_defaults_to_the_standard_normal():
    ours = normal(np.random.default_rng(5), (4, 3))
    np.testing.assert_array_equal(ours, np.random.default_rng(5).standard_normal((4, 3)))
    with pytest.raises(TypeError, match="^normal: generator"):
        normal(None, (2,))
