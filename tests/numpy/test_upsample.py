"""NumPy interpolate (nearest, bilinear, bicubic): numerical gradients, parity with
torch.nn.functional.interpolate (sizes up and down, scale factors, align_corners,
recompute_scale_factor), the scale_factor rule, bicubic overshoot, and bad inputs."""

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
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic"]))
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


def transpose_of_torch_forward(x_shape, dout, **kwargs):
    """``J^T dout``, with ``J`` the Jacobian of ``F.interpolate``: the map is linear, so ``J``'s
    columns are its outputs on the unit images. The gradient reference where PyTorch's own
    backward is not the gradient of its forward (bicubic at an unchanged size)."""
    n, c, h, w = x_shape
    units = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    jac_t = F.interpolate(units, **kwargs).reshape(h * w, -1)  # (H W, H_out W_out)
    dout = torch.tensor(dout, dtype=torch.float64).reshape(n, c, -1)
    return (dout @ jac_t.T).reshape(x_shape).numpy()


def torch_backward_is_wrong(x_shape, out_shape, mode):
    """PyTorch's CPU bicubic backward copies ``dout`` whenever the size does not change, even
    when a scale_factor made its forward interpolate (see the test below)."""
    return mode == "bicubic" and tuple(x_shape) == tuple(out_shape)


@settings(max_examples=60, deadline=None)
@given(geo=resize(), double=st.booleans(), seed=st.integers(0, 99))
def test_matches_torch(geo, double, seed):
    shape, kwargs = geo
    dtype, tol = (np.float64, F64) if double else (np.float32, F32)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = interpolate_forward(x, **kwargs)
    dout = rng.standard_normal(out.shape).astype(dtype)
    out_ref, dx_ref = torch_reference(x, dout, **kwargs)
    if torch_backward_is_wrong(x.shape, out.shape, kwargs["mode"]):
        dx_ref = transpose_of_torch_forward(x.shape, dout, **kwargs)
    assert out.shape == out_ref.shape and out.dtype == dtype
    np.testing.assert_allclose(out, out_ref, **tol)
    dx = interpolate_backward(dout, cache)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, **tol)


GRAD_CASES = [
    ((2, 2, 3, 4), dict(scale_factor=2)),
    ((1, 2, 5, 4), dict(size=(3, 7))),
    ((1, 2, 4, 6), dict(scale_factor=(1.7, 0.6))),
    ((1, 1, 1, 5), dict(size=(3, 9))),  # a single input row: every tap reads row 0
    ((1, 2, 7, 8), dict(size=(3, 2))),  # downsampling: bicubic taps no longer overlap
    ((1, 1, 3, 5), dict(scale_factor=(1.2, 1.1))),  # same size; bicubic still interpolates
]


@pytest.mark.parametrize("shape, kwargs", GRAD_CASES)
@pytest.mark.parametrize(
    "mode_kwargs",
    [dict(mode="nearest"), dict(mode="bilinear", align_corners=False),
     dict(mode="bilinear", align_corners=True), dict(mode="bicubic", align_corners=False),
     dict(mode="bicubic", align_corners=True)],
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


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_source_coordinate_is_floored_in_float32(mode):
    # PyTorch floors src with C's floorf even for float64 input. Here output column 7 maps to
    # src = 7.5 / s - 0.5 = 3 - 1e-8, which float32 rounds to 3: torch reads pixel 3 alone
    # (t = 0), where a float64 floor would give pixel 2 a weight of about 1e-8.
    s = 7.5 / (3.5 - 1e-8)
    x = np.zeros((1, 1, 1, 6))
    x[..., 2] = 1.0
    out, _ = interpolate_forward(x, scale_factor=(1.0, s), mode=mode)
    assert out[0, 0, 0, 7] == 0.0
    ref = F.interpolate(torch.tensor(x), scale_factor=(1.0, s), mode=mode)
    np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=1e-15)


def test_align_corners_keeps_the_corners():
    x = np.array([[[[0.0, 3.0]]]])
    out, _ = interpolate_forward(x, size=(1, 4), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(out[0, 0, 0], [0, 1, 2, 3], rtol=1e-15)
    out, _ = interpolate_forward(x, size=(1, 4), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(out[0, 0, 0], [0, 0.75, 2.25, 3], rtol=1e-15)


def test_bicubic_overshoots_the_input_range():
    # Keys' kernel has negative lobes, so a step rings: below 0 before it, above 1 after it.
    # (Bilinear weights are convex: its output stays within [0, 1].) The values are exact
    # in binary: t = 0.25 or 0.75 and a = -0.75.
    x = np.array([[[[0.0, 0.0, 1.0, 1.0]]]])
    out, _ = interpolate_forward(x, size=(1, 8), mode="bicubic")
    expected = [0, -0.03515625, -0.10546875, 0.2265625, 0.7734375, 1.10546875, 1.03515625, 1]
    np.testing.assert_array_equal(out[0, 0, 0], expected)
    ref = F.interpolate(torch.tensor(x), size=(1, 8), mode="bicubic")
    np.testing.assert_allclose(out, ref.numpy(), **F64)
    linear, _ = interpolate_forward(x, size=(1, 8), mode="bilinear")
    assert out.min() < 0 and out.max() > 1 and linear.min() == 0 and linear.max() == 1


def test_bicubic_passes_through_the_input_pixels():
    # With aligned corners, every other output of a (2n - 1) resize sits on an input pixel,
    # where W(0) = 1 and W(+-1) = W(+-2) = 0.
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 5))
    out, _ = interpolate_forward(x, size=(7, 9), mode="bicubic", align_corners=True)
    np.testing.assert_array_equal(out[:, :, ::2, ::2], x)


def test_bicubic_gradient_when_the_size_does_not_change():
    # 3 rows * 1.2 = 3.6 -> 3 rows, 5 columns * 1.1 -> 5: the same size, but the mapping
    # src = (o + 0.5) / 1.2 - 0.5 is not the identity, and PyTorch's forward interpolates.
    # Its CPU backward ignores that and returns dout. Our backward is the gradient of the
    # forward (test_numerical_gradient checks this case too); if this test starts failing on
    # the torch assert, PyTorch was fixed: drop the special case here and in the docstrings.
    kwargs = dict(scale_factor=(1.2, 1.1), mode="bicubic")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 3, 5))
    out, cache = interpolate_forward(x, **kwargs)
    dout = rng.standard_normal(out.shape)
    out_ref, dx_torch = torch_reference(x, dout, **kwargs)
    np.testing.assert_allclose(out, out_ref, **F64)
    assert out.shape == x.shape and not np.allclose(out, x)
    np.testing.assert_array_equal(dx_torch, dout)
    np.testing.assert_allclose(
        interpolate_backward(dout, cache), transpose_of_torch_forward(x.shape, dout, **kwargs),
        **F64,
    )


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
    (np.zeros((4, 4)), dict(size=2), ValueError, "input must be 4-D"),
    (X.tolist(), dict(size=2), TypeError, "input must be a numpy array"),
    (X.astype(int), dict(size=2), TypeError, "floating-point"),
    (X, dict(size=2, mode="area"), ValueError,
     r"interpolate_forward: mode must be 'nearest', 'bilinear' or 'bicubic', got 'area'"),
    (X, dict(size=2, align_corners=True), ValueError,
     "align_corners can only be set with mode='bilinear' or 'bicubic'"),
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


@pytest.mark.parametrize("kwargs", [
    dict(size=(38, 7)),  # 6 -> 38: float32 o * (6/38) floors differently in float64
    dict(scale_factor=(1.7, 2.6)),  # torch maps back with 1/scale_factor, not in/out
])
def test_nearest_index_arithmetic_is_torchs(kwargs):
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 5))
    out, _ = interpolate_forward(x, mode="nearest", **kwargs)
    ref = F.interpolate(torch.from_numpy(x), mode="nearest", **kwargs).numpy()
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)
