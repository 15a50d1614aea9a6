"""NumPy interpolate (nearest, bilinear): numerical gradients, parity with
torch.nn.functional.interpolate (sizes, scale factors, align_corners, recompute_scale_factor),
the scale_factor rule, and bad inputs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.upsample import (
    interpolate_backward,
    interpolate_forward,
    upsample_bilinear2d_forward,
    upsample_nearest2d_forward,
)

GRAD_TOL = 1e-7  # relative error of float64 centred differences
# Interpolation is linear in x (the index tables do not depend on x), so the centred
# difference has no truncation error; a larger step only shrinks the round-off.
STEP = 1e-3
F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-5, atol=1e-5)


@st.composite
def resize(draw):
    """``(x shape, kwargs)`` for an interpolate call that torch accepts."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
             draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    kwargs = dict(mode=mode, align_corners=None if mode == "nearest" else draw(st.booleans()))
    if draw(st.booleans()):
        kwargs["size"] = (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
    else:
        scale = st.one_of(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 1 / 3]), st.floats(0.2, 3.5))
        kwargs["scale_factor"] = (draw(scale), draw(scale))
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
        sizes = zip(shape[2:], kwargs["scale_factor"], strict=True)
        assume(all(math.floor(n * s) >= 1 for n, s in sizes))  # torch rejects an empty output
    return shape, kwargs


def torch_reference(x, dout, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    out = F.interpolate(xt, **kwargs)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy()


@settings(max_examples=40, deadline=None)
@given(geo=resize(), double=st.booleans(), seed=st.integers(0, 99))
def test_matches_torch(geo, double, seed):
    shape, kwargs = geo
    dtype, tol = (np.float64, F64) if double else (np.float32, F32)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = interpolate_forward(x, **kwargs)
    dout = rng.standard_normal(out.shape).astype(dtype)
    out_ref, dx_ref = torch_reference(x, dout, **kwargs)
    assert out.shape == out_ref.shape and out.dtype == dtype
    np.testing.assert_allclose(out, out_ref, **tol)
    dx = interpolate_backward(dout, cache)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, **tol)


GRAD_CASES = [
    ((2, 2, 3, 4), dict(scale_factor=2)),
    ((1, 2, 5, 4), dict(size=(3, 7))),
    ((1, 2, 4, 6), dict(scale_factor=(1.7, 0.6))),
    ((1, 1, 1, 5), dict(size=(3, 9))),  # a single input row: both bilinear rows are row 0
]


@pytest.mark.parametrize("shape, kwargs", GRAD_CASES)
@pytest.mark.parametrize(
    "mode_kwargs",
    [dict(mode="nearest"), dict(mode="bilinear", align_corners=False),
     dict(mode="bilinear", align_corners=True)],
)
def test_numerical_gradient(shape, kwargs, mode_kwargs):
    x = np.random.default_rng(0).standard_normal(shape)
    (err,) = check_backward(
        interpolate_forward, interpolate_backward, [x], kwargs=dict(kwargs, **mode_kwargs),
        h=STEP,
    )
    assert err <= GRAD_TOL


def test_scale_factor_is_used_for_the_mapping_unless_recomputed():
    # 2 columns * 1.7 = 3.4 -> 3 output columns. By default torch maps output column o to
    # src = (o + 0.5) / 1.7 - 0.5; recomputed, the factor is 3 / 2 and src = (o + 0.5) * 2/3
    # - 0.5. Same size, different values.
    x = np.array([[[[0.0, 1.0]]]])
    kwargs = dict(scale_factor=(1.0, 1.7), mode="bilinear")
    given_, _ = interpolate_forward(x, **kwargs)
    recomputed, _ = interpolate_forward(x, **kwargs, recompute_scale_factor=True)
    np.testing.assert_allclose(given_[0, 0, 0], [0, 1.5 / 1.7 - 0.5, 2.5 / 1.7 - 0.5], rtol=1e-15)
    np.testing.assert_allclose(recomputed[0, 0, 0], [0, 0.5, 1], rtol=1e-15)
    for recompute, ours in ((None, given_), (True, recomputed)):
        ref = F.interpolate(torch.tensor(x), **kwargs, recompute_scale_factor=recompute)
        np.testing.assert_allclose(ours, ref.numpy(), **F64)


def test_align_corners_keeps_the_corners():
    x = np.array([[[[0.0, 3.0]]]])
    out, _ = interpolate_forward(x, size=(1, 4), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(out[0, 0, 0], [0, 1, 2, 3], rtol=1e-15)
    out, _ = interpolate_forward(x, size=(1, 4), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(out[0, 0, 0], [0, 0.75, 2.25, 3], rtol=1e-15)


@pytest.mark.filterwarnings("ignore:`nn.functional.upsample_.*` is deprecated")
def test_aliases():
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4))
    np.testing.assert_array_equal(
        upsample_nearest2d_forward(x, scale_factor=2)[0],
        F.upsample_nearest(torch.tensor(x), scale_factor=2).numpy(),
    )
    np.testing.assert_allclose(
        upsample_bilinear2d_forward(x, size=(5, 7))[0],
        F.upsample_bilinear(torch.tensor(x), size=(5, 7)).numpy(), **F64,
    )


X = np.zeros((1, 1, 4, 4))
BAD = [
    (np.zeros((4, 4)), dict(size=2), ValueError, "x must be 4-D"),
    (X.tolist(), dict(size=2), TypeError, "x must be a numpy array"),
    (X.astype(int), dict(size=2), TypeError, "floating-point"),
    (X, dict(size=2, mode="bicubic"), ValueError, "mode must be one of"),
    (X, dict(size=2, align_corners=True), ValueError, "align_corners"),
    (X, dict(), ValueError, "exactly one of size and scale_factor"),
    (X, dict(size=2, scale_factor=2), ValueError, "exactly one of size and scale_factor"),
    (X, dict(size=0), ValueError, "size must be >= 1"),
    (X, dict(size=2.0), TypeError, "size must be an int"),
    (X, dict(size=(2, 2, 2)), TypeError, "size must be an int"),
    (X, dict(scale_factor=-1.0), ValueError, "scale_factor must be > 0"),
    (X, dict(scale_factor="2"), TypeError, "scale_factor must be a number"),
    (X, dict(scale_factor=0.1), ValueError, "empty output"),
    (X, dict(size=2, recompute_scale_factor=True), ValueError, "recompute_scale_factor"),
]


@pytest.mark.parametrize("x, kwargs, error, match", BAD)
def test_bad_inputs_raise(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        interpolate_forward(x, **kwargs)


def test_backward_rejects_dout_of_the_wrong_shape():
    _, cache = interpolate_forward(X, scale_factor=2)
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape"):
        interpolate_backward(np.zeros((1, 1, 8, 7)), cache)
