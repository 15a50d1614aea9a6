"""Torch interpolate from gathers: parity with F.interpolate (values and gradients, float64
and float32), torch.autograd.gradcheck, that no upsampling op runs, and bad inputs."""

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


def forward_backward(fn, x, dout, **kwargs):
    x = x.detach().clone().requires_grad_()
    out = fn(x, **kwargs)
    out.backward(dout)
    return out.detach(), x.grad


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
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
    assert out.dtype == dtype and out.device == x.device
    torch.testing.assert_close(out, out_ref, **tol)
    torch.testing.assert_close(dx, dx_ref, **tol)


@pytest.mark.parametrize(
    "kwargs",
    [dict(mode="nearest", scale_factor=(1.5, 0.7)),
     dict(mode="bilinear", size=(5, 3), align_corners=True),
     dict(mode="bilinear", scale_factor=2.5, align_corners=False)],
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


def aten_ops(fn, *args, **kwargs):
    """Names of the ATen ops run by ``fn(*args, **kwargs).sum().backward()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args, **kwargs).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_never_calls_an_upsampling_op(mode, monkeypatch):
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    assert [o for o in aten_ops(F.interpolate, x, scale_factor=1.5, mode=mode) if "upsample" in o]

    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in upsampling op was called")

    for module, name in [
        (F, "interpolate"), (F, "upsample"), (F, "upsample_nearest"), (F, "upsample_bilinear"),
        (torch._C._nn, "upsample_nearest2d"), (torch._C._nn, "upsample_bilinear2d"),
    ]:
        monkeypatch.setattr(module, name, forbidden, raising=False)
    ops = aten_ops(interpolate, x, scale_factor=1.5, mode=mode)
    assert not [o for o in ops if "upsample" in o or "interp" in o], sorted(ops)


X = torch.zeros(1, 1, 4, 4)
BAD = [
    (torch.zeros(4, 4), dict(size=2), ValueError, "x must be 4-D"),
    (X.tolist(), dict(size=2), TypeError, "x must be a torch.Tensor"),
    (X.long(), dict(size=2), TypeError, "floating point"),
    (X, dict(size=2, mode="bicubic"), ValueError, "mode must be one of"),
    (X, dict(size=2, align_corners=True), ValueError, "align_corners"),
    (X, dict(), ValueError, "exactly one of size and scale_factor"),
    (X, dict(size=0), ValueError, "size must be >= 1"),
    (X, dict(scale_factor=-1.0), ValueError, "scale_factor must be > 0"),
    (X, dict(scale_factor=0.1), ValueError, "empty output"),
]


@pytest.mark.parametrize("x, kwargs, error, match", BAD)
def test_bad_inputs_raise(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        interpolate(x, **kwargs)
