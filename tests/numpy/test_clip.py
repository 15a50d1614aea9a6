"""NumPy gradient clipping: the same clipped gradients and total norm as torch.nn.utils, for
several norms and for gradients below and above the limit; errors."""

import math

import numpy as np
import pytest
import torch

from d2lcnn.numpy.clip import clip_grad_norm, clip_grad_value

TOL = dict(rtol=1e-12, atol=1e-15)  # float64, a different summation order


def make_grads(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    shapes = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,), "fc.weight": (10, 36)}
    return {k: scale * rng.standard_normal(s) for k, s in shapes.items()}


def torch_clip(grads, fn, *args):
    params = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g)
        params.append(p)
    out = fn(params, *args)
    return out, {k: p.grad.numpy() for k, p in zip(grads, params, strict=True)}


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.0, 0.5, 5.0, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    grads = make_grads()
    total_ref, expected = torch_clip(grads, torch.nn.utils.clip_grad_norm_, max_norm, norm_type)
    total = clip_grad_norm(grads, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(total_ref.item(), rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], expected[k], **TOL)


def test_clip_grad_norm_keeps_direction_and_reaches_max_norm():
    grads = make_grads(seed=1, scale=10.0)
    before = np.concatenate([g.ravel() for g in grads.values()])
    total = clip_grad_norm(grads, 1.0)
    after = np.concatenate([g.ravel() for g in grads.values()])
    assert total == pytest.approx(np.linalg.norm(before), rel=1e-12)
    # the 1e-6 in the scale leaves the norm a hair below max_norm
    assert np.linalg.norm(after) == pytest.approx(1.0 * total / (total + 1e-6), rel=1e-12)
    np.testing.assert_allclose(after * total, before * np.linalg.norm(after), rtol=1e-10)


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = make_grads(seed=2, scale=1e-3)
    copy = {k: v.copy() for k, v in grads.items()}
    clip_grad_norm(grads, 10.0)
    for k in grads:
        np.testing.assert_array_equal(grads[k], copy[k])


def test_clip_grad_norm_zero_and_nonfinite():
    grads = {"w": np.zeros(3)}
    assert clip_grad_norm(grads, 1.0) == 0.0
    np.testing.assert_array_equal(grads["w"], 0.0)
    grads = {"w": np.array([1.0, np.inf])}
    with pytest.raises(RuntimeError, match="total 2.0-norm of the gradients is inf"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):  # scale = 0 and inf * 0 = NaN, as in torch
        assert clip_grad_norm(grads, 1.0) == math.inf
    assert grads["w"][0] == 0.0 and np.isnan(grads["w"][1])


@pytest.mark.parametrize("clip_value", [0.0, 0.1, 1.0, 100.0])
def test_clip_grad_value_matches_torch(clip_value):
    grads = make_grads(seed=3)
    _, expected = torch_clip(grads, torch.nn.utils.clip_grad_value_, clip_value)
    assert clip_grad_value(grads, clip_value) is None
    for k in grads:
        np.testing.assert_array_equal(grads[k], expected[k])


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda g: clip_grad_norm(g, -1.0), ValueError, "max_norm must be >= 0, got -1.0"),
        (lambda g: clip_grad_norm(g, 1.0, norm_type=0), ValueError, "norm_type must be > 0"),
        (lambda g: clip_grad_value(g, -0.5), ValueError, "clip_value must be >= 0, got -0.5"),
        (lambda g: clip_grad_norm(list(g.values()), 1.0), TypeError, "grads must be a dict"),
        (lambda g: clip_grad_value({"w": [1.0]}, 1.0), TypeError, r"grads\['w'\] must be"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call(make_grads())


def test_errors_name_the_function():
    with pytest.raises(ValueError, match="^clip_grad_norm: max_norm"):
        clip_grad_norm({"w": np.ones(3)}, -1.0)
