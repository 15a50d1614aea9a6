"""Torch transposed convolution from matmul + F.fold: parity with F.conv_transpose2d (values
and gradients, float64 and float32), torch.autograd.gradcheck, that no convolution op runs,
dtype/device, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import torch_output_hw
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.conv_transpose import conv_transpose2d

F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-5, atol=1e-5)
# `device` is a parameter that hypothesis never changes, so sharing it between examples is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@st.composite
def geometry(draw):
    """``(x shape, weight shape, kwargs)`` for a conv_transpose2d that torch accepts."""
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    op = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    c_out_g = draw(st.integers(1, 3))
    # torch rejects output_padding >= max(stride, dilation) and empty outputs
    assume(torch_output_hw("conv_transpose2d", (1, c_in, h, w), (c_in, c_out_g, *k), stride=s,
                           padding=p, output_padding=op, groups=groups, dilation=d))
    kwargs = dict(stride=s, padding=p, output_padding=op, groups=groups, dilation=d)
    return (n, c_in, h, w), (c_in, c_out_g, *k), kwargs


def forward_backward(fn, inputs, dout, **kwargs):
    inputs = [None if t is None else t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*inputs, **kwargs)
    out.backward(dout)
    return out.detach(), [None if t is None else t.grad for t in inputs]


@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE_OK)
@given(geo=geometry(), bias=st.booleans(), double=st.booleans(), seed=st.integers(0, 99))
def test_matches_torch(device, geo, bias, double, seed):
    x_shape, w_shape, kwargs = geo
    dtype, tol = (torch.float64, F64) if double else (torch.float32, F32)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=gen, dtype=dtype).to(device)
    w = torch.randn(w_shape, generator=gen, dtype=dtype).to(device)
    b = torch.randn(w_shape[1] * kwargs["groups"], generator=gen, dtype=dtype).to(device)
    b = b if bias else None
    out_ref = F.conv_transpose2d(x, w, b, **kwargs)
    dout = torch.randn(out_ref.shape, generator=gen, dtype=dtype).to(device)
    out_ref, grads_ref = forward_backward(F.conv_transpose2d, (x, w, b), dout, **kwargs)
    out, grads = forward_backward(conv_transpose2d, (x, w, b), dout, **kwargs)
    assert out.dtype == dtype and out.device == x.device
    torch.testing.assert_close(out, out_ref, **tol)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        if g_ref is None:
            assert g is None
        else:
            torch.testing.assert_close(g, g_ref, **tol)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(stride=2, padding=1, output_padding=1),
        dict(stride=(1, 2), dilation=(3, 1), output_padding=(2, 0), groups=2),  # op >= stride
    ],
)
def test_autograd_gradcheck(device, kwargs):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, 4, generator=gen, dtype=torch.float64).to(device)
    w = torch.randn(4, 2, 2, 3, generator=gen, dtype=torch.float64).to(device)
    b = torch.randn(2 * kwargs.get("groups", 1), generator=gen, dtype=torch.float64).to(device)
    inputs = tuple(t.requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradcheck(lambda *t: conv_transpose2d(*t, **kwargs), inputs)


def test_unbatched_input(device):
    x = torch.randn(3, 4, 5, dtype=torch.float64, device=device)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, device=device)
    out = conv_transpose2d(x, w, stride=2)
    torch.testing.assert_close(out, F.conv_transpose2d(x, w, stride=2), **F64)


# --------------------------------------------------------------------------- no conv op


def aten_ops(fn, *args, **kwargs):
    """Names of the ATen ops run by ``fn(*args, **kwargs).sum().backward()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args, **kwargs).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


def test_never_calls_a_convolution_op(monkeypatch):
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    kwargs = dict(stride=2, padding=1, output_padding=1, groups=2)
    assert [o for o in aten_ops(F.conv_transpose2d, x, w, b, **kwargs) if "conv" in o]

    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in convolution op was called")

    for module, name in [
        (F, "conv_transpose2d"), (torch, "conv_transpose2d"), (F, "conv2d"), (torch, "conv2d"),
        (torch, "convolution"), (torch.ops.aten, "conv_transpose2d"),
    ]:
        monkeypatch.setattr(module, name, forbidden, raising=False)
    ops = aten_ops(conv_transpose2d, x, w, b, **kwargs)
    assert "aten::col2im" in ops  # F.fold
    assert not [o for o in ops if "conv" in o], sorted(ops)


# --------------------------------------------------------------------------- bad inputs

X, W = torch.zeros(1, 4, 3, 3), torch.zeros(4, 2, 3, 3)
BAD = [
    ((torch.zeros(3, 3), W), {}, ValueError, "input must be 4-D"),
    ((X, W[0]), {}, ValueError, "weight must be 4-D"),
    ((X.tolist(), W), {}, TypeError, "input must be a torch.Tensor"),
    ((X.long(), W), {}, TypeError, "floating point"),
    ((X, W.double()), {}, TypeError, "weight dtype"),
    ((X, torch.zeros(3, 2, 3, 3)), {}, ValueError, r"weight.shape\[0\]"),
    ((X, W), dict(groups=3), ValueError, "divisible by groups"),
    ((X, W), dict(groups=0), ValueError, "groups"),
    ((X, W, torch.zeros(3)), {}, ValueError, r"bias must have shape"),
    ((X, W), dict(stride=0), ValueError, "stride"),
    ((X, W), dict(output_padding=1), ValueError, "output_padding"),
    ((X, W), dict(padding=3), ValueError, "< 1"),
]


@pytest.mark.parametrize("args, kwargs, error, match", BAD)
def test_bad_inputs_raise(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv_transpose2d(*args, **kwargs)
