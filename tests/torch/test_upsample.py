"""Torch interpolate from gathers (nearest, bilinear, bicubic): parity with F.interpolate
(values and gradients, float64 and float32), torch.autograd.gradcheck, bicubic overshoot, that
no upsampling op runs, and bad inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.upsample import interpolate, upsample_bilinear2d, upsample_nearest2d

F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-5, atol=1e-5)
# `device` is a parameter that hypothesis never changes, so sharing it between examples is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


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


def forward_backward(fn, x, dout, **kwargs):
    x = x.detach().clone().requires_grad_()
    out = fn(x, **kwargs)
    out.backward(dout)
    return out.detach(), x.grad


def transpose_of_torch_forward(x_shape, dout, **kwargs):
    """``J^T dout``, with ``J`` the Jacobian of ``F.interpolate``: the map is linear, so ``J``'s
    columns are its outputs on the unit images. The gradient reference where PyTorch's own
    backward is not the gradient of its forward (bicubic at an unchanged size)."""
    n, c, h, w = x_shape
    units = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    jac_t = F.interpolate(units, **kwargs).reshape(h * w, -1)  # (H W, H_out W_out)
    dx = dout.cpu().double().reshape(n, c, -1) @ jac_t.T
    return dx.reshape(x_shape).to(dout.dtype).to(dout.device)


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(geo=resize(), double=st.booleans(), seed=st.integers(0, 99))
def test_matches_torch(device, geo, double, seed):
    shape, kwargs = geo
    dtype, tol = (torch.float64, F64) if double else (torch.float32, F32)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    out_ref = F.interpolate(x, **kwargs)
    dout = torch.randn(out_ref.shape, generator=gen, dtype=dtype).to(device)
    out_ref, dx_ref = forward_backward(F.interpolate, x, dout, **kwargs)
    out, dx = forward_backward(interpolate, x, dout, **kwargs)
    if kwargs["mode"] == "bicubic" and out.shape == x.shape:
        # PyTorch special-cases an unchanged size: its CPU backward (and its CUDA forward and
        # backward) copy, even when a scale_factor makes the CPU forward interpolate. We
        # follow the CPU forward on every device, with its exact gradient.
        out_ref = F.interpolate(x.cpu(), **kwargs).to(device)
        dx_ref = transpose_of_torch_forward(x.shape, dout, **kwargs)
    assert out.dtype == dtype and out.device == x.device
    torch.testing.assert_close(out, out_ref, **tol)
    torch.testing.assert_close(dx, dx_ref, **tol)


@pytest.mark.parametrize(
    "kwargs",
    [dict(mode="nearest", scale_factor=(1.5, 0.7)),
     dict(mode="bilinear", size=(5, 3), align_corners=True),
     dict(mode="bilinear", scale_factor=2.5, align_corners=False),
     dict(mode="bicubic", scale_factor=(2.5, 0.6), align_corners=False),
     dict(mode="bicubic", size=(5, 2), align_corners=True),
     dict(mode="bicubic", scale_factor=(1.2, 1.1))],  # same size, and still interpolated
)
def test_autograd_gradcheck(device, kwargs):
    x = torch.randn(2, 2, 3, 4, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: interpolate(t, **kwargs), (x,))


def test_aliases(device):
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, device=device)
    torch.testing.assert_close(upsample_nearest2d(x, scale_factor=2),
                               F.interpolate(x, scale_factor=2), **F64)
    torch.testing.assert_close(upsample_bilinear2d(x, size=(5, 7)),
                               F.interpolate(x, (5, 7), mode="bilinear", align_corners=True),
                               **F64)


def test_bicubic_overshoots_the_input_range(device):
    # Keys' kernel has negative lobes: a step rings below 0 and above 1 (exact in binary).
    x = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]], dtype=torch.float64, device=device)
    out = interpolate(x, size=(1, 8), mode="bicubic")
    expected = [0, -0.03515625, -0.10546875, 0.2265625, 0.7734375, 1.10546875, 1.03515625, 1]
    assert out[0, 0, 0].tolist() == expected
    torch.testing.assert_close(out, F.interpolate(x, size=(1, 8), mode="bicubic"), **F64)


def test_bicubic_float32_stays_float32(device):
    x = torch.randn(1, 2, 3, 4, device=device)
    out = interpolate(x, scale_factor=1.5, mode="bicubic")
    assert out.dtype == torch.float32 and out.device == x.device
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=1.5, mode="bicubic"), **F32)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_source_coordinate_is_floored_in_float32(mode):
    # src = 7.5 / s - 0.5 = 3 - 1e-8 rounds to 3 in float32, where PyTorch's CPU kernels floor
    # it (floorf). (Its CUDA kernels floor differently; we follow the CPU on every device.)
    s = 7.5 / (3.5 - 1e-8)
    x = torch.zeros(1, 1, 1, 6, dtype=torch.float64)
    x[..., 2] = 1.0
    out = interpolate(x, scale_factor=(1.0, s), mode=mode)
    assert out[0, 0, 0, 7].item() == 0.0
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=(1.0, s), mode=mode),
                               rtol=0, atol=1e-15)


def aten_ops(fn, *args, **kwargs):
    """Names of the ATen ops run by ``fn(*args, **kwargs).sum().backward()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args, **kwargs).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_never_calls_an_upsampling_op(mode, monkeypatch):
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    assert [o for o in aten_ops(F.interpolate, x, scale_factor=1.5, mode=mode) if "upsample" in o]

    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in upsampling op was called")

    for module, name in [
        (F, "interpolate"), (F, "upsample"), (F, "upsample_nearest"), (F, "upsample_bilinear"),
        (torch._C._nn, "upsample_nearest2d"), (torch._C._nn, "upsample_bilinear2d"),
        (torch._C._nn, "upsample_bicubic2d"),
    ]:
        monkeypatch.setattr(module, name, forbidden, raising=False)
    ops = aten_ops(interpolate, x, scale_factor=1.5, mode=mode)
    assert not [o for o in ops if "upsample" in o or "interp" in o], sorted(ops)


X = torch.zeros(1, 1, 4, 4)
BAD = [
    (torch.zeros(4, 4), dict(size=2), ValueError, "input must be 4-D"),
    (X.tolist(), dict(size=2), TypeError, "input must be a torch.Tensor"),
    (X.long(), dict(size=2), TypeError, "floating point"),
    (X, dict(size=2, mode="area"), ValueError,
     r"interpolate: mode must be 'nearest', 'bilinear' or 'bicubic', got 'area'"),
    (X, dict(size=2, align_corners=True), ValueError,
     "align_corners can only be set with mode='bilinear' or 'bicubic'"),
    (X, dict(), ValueError, "exactly one of size and scale_factor"),
    (X, dict(size=0), ValueError, "size must be >= 1"),
    (X, dict(scale_factor=-1.0), ValueError, "scale_factor must be > 0"),
    (X, dict(scale_factor=0.1), ValueError, "empty output"),
]


@pytest.mark.parametrize("x, kwargs, error, match", BAD)
def test_bad_inputs_raise(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        interpolate(x, **kwargs)
