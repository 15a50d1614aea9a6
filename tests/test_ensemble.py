"""Tests for d2lcnn.ensemble: averaging, majority vote (against scipy.stats.mode), bootstrap."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from d2lcnn.ensemble import average_probabilities, bootstrap_indices, majority_vote


def _random_probs(rng, m, n, k):
    logits = rng.standard_normal((m, n, k))
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    return e / e.sum(axis=2, keepdims=True)


@pytest.mark.parametrize(("m", "n", "k"), [(1, 1, 2), (3, 7, 5), (8, 20, 10)])
def test_average_is_mean_and_rows_sum_to_one(m, n, k):
    probs = _random_probs(np.random.default_rng(0), m, n, k)
    avg = average_probabilities(probs)
    assert avg.shape == (n, k)
    np.testing.assert_allclose(avg, probs.mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(avg.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_weighted_average_normalizes_weights():
    probs = _random_probs(np.random.default_rng(1), 3, 4, 6)
    w = np.array([2.0, 1.0, 1.0])
    expected = 0.5 * probs[0] + 0.25 * probs[1] + 0.25 * probs[2]
    np.testing.assert_allclose(average_probabilities(probs, w), expected, rtol=0, atol=1e-15)
    # all weight on one member returns that member
    np.testing.assert_allclose(average_probabilities(probs, [0, 5, 0]), probs[1], atol=1e-15)


def test_average_accepts_tensors_and_keeps_float32():
    probs = torch.softmax(torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0)), 2)
    avg = average_probabilities(probs, weights=[1, 1, 1, 1])
    assert isinstance(avg, np.ndarray) and avg.dtype == np.float32
    np.testing.assert_allclose(avg, probs.mean(0).numpy(), rtol=1e-6, atol=1e-7)


def test_tensors_with_gradients_are_accepted():
    logits = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    probs = logits.softmax(2)
    np.testing.assert_allclose(average_probabilities(probs), probs.mean(0).detach().numpy(),
                               rtol=1e-6, atol=1e-7)
    labels = probs.argmax(2)  # an int64 tensor
    assert majority_vote(labels, num_classes=5).shape == (4,)


@pytest.mark.parametrize(
    ("probs", "weights", "match"),
    [
        (np.ones((2, 3)), None, r"\(M, N, K\)"),
        (np.ones((0, 3, 2)), None, "M >= 1"),
        (np.ones((2, 3, 2)), [1.0], r"shape \(2,\)"),
        (np.ones((2, 3, 2)), [1.0, -1.0], ">= 0"),
        (np.ones((2, 3, 2)), [0.0, 0.0], "positive sum"),
    ],
)
def test_average_rejects_bad_arguments(probs, weights, match):
    with pytest.raises(ValueError, match=match):
        average_probabilities(probs, weights)


def test_majority_vote_simple_and_ties_to_smallest_label():
    labels = np.array(
        [
            [0, 1, 2, 3],
            [0, 2, 1, 3],
            [1, 2, 0, 0],
        ]
    )
    # columns: 0 wins 2-1; 2 wins 2-1; three-way tie 0/1/2 -> 0; 3 wins 2-1
    np.testing.assert_array_equal(majority_vote(labels), [0, 2, 0, 3])
    tie = np.array([[4, 7], [2, 7], [4, 1], [2, 1]])  # 2-2 ties: 2 vs 4, 1 vs 7
    np.testing.assert_array_equal(majority_vote(tie, num_classes=10), [2, 1])


@pytest.mark.parametrize(("m", "n", "k"), [(1, 5, 3), (2, 50, 3), (5, 200, 10), (6, 100, 4)])
def test_majority_vote_matches_scipy_mode(m, n, k):
    labels = np.random.default_rng(m * n).integers(0, k, size=(m, n))
    expected = stats.mode(labels, axis=0, keepdims=False).mode  # smallest mode on ties
    out = majority_vote(labels, num_classes=k)
    assert out.dtype == np.int64 and out.shape == (n,)
    np.testing.assert_array_equal(out, expected)


def test_single_member_vote_is_its_prediction():
    labels = np.random.default_rng(3).integers(0, 10, size=(1, 30))
    np.testing.assert_array_equal(majority_vote(labels, num_classes=10), labels[0])


@pytest.mark.parametrize(
    ("labels", "k", "error", "match"),
    [
        (np.zeros(5, dtype=int), None, ValueError, r"\(M, N\)"),
        (np.zeros((0, 5), dtype=int), None, ValueError, "M >= 1"),
        (np.zeros((2, 5)), None, TypeError, "integers"),
        (np.array([[0, 3]]), 3, ValueError, r"\[0, 3\)"),
        (np.array([[0, -1]]), 3, ValueError, r"\[0, 3\)"),
    ],
)
def test_majority_vote_rejects_bad_arguments(labels, k, error, match):
    with pytest.raises(error, match=match):
        majority_vote(labels, num_classes=k)


def test_bootstrap_is_reproducible_and_in_range():
    a = bootstrap_indices(100, rng=np.random.default_rng(0))
    b = bootstrap_indices(100, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (100,) and a.dtype == np.int64 and a.min() >= 0 and a.max() < 100
    assert bootstrap_indices(10, rng=np.random.default_rng(0), size=3).shape == (3,)


def test_bootstrap_unique_fraction_is_one_minus_one_over_e():
    n = 20_000
    fractions = [
        len(np.unique(bootstrap_indices(n, rng=np.random.default_rng(s)))) / n for s in range(5)
    ]
    expected = 1 - (1 - 1 / n) ** n  # 0.63213...
    assert abs(expected - (1 - math.exp(-1))) < 1e-4
    # the unique count has std ~ sqrt(n * 0.0955) / n ~ 0.0022 per sample; 5 samples averaged
    assert abs(np.mean(fractions) - expected) < 0.004


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must be"),
        ({"n": True}, ValueError, "n must be"),
        ({"n": 5, "size": 0}, ValueError, "size must be"),
        ({"n": 5, "rng": 0}, TypeError, "Generator"),
    ],
)
def test_bootstrap_rejects_bad_arguments(kwargs, error, match):
    kwargs = {"rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=match):
        bootstrap_indices(**kwargs)
