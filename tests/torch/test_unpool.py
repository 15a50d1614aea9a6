"""Torch max unpooling from scatter: parity with F.max_unpool2d (values and gradients, with and
without output_size), the pool -> unpool round trip, torch.autograd.gradcheck, that no
unpooling op runs, dtype/device, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import pool_geometry
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.pool import max_pool2d
from d2lcnn.torch.unpool import max_unpool2d

# `device` is a parameter that hypothesis never changes, so sharing it between examples is safe.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@st.composite
def unpool_geometry(draw):
    """``(input shape, (H_out, W_out), kwargs)`` for a max_unpool2d that torch accepts,
    output_size included (``None``, ``(H, W)`` or ``(N, C, H, W)``, strictly within one
    stride of the default)."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    s = k if stride is None else stride
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    default = [(size - 1) * s[i] - 2 * p[i] + k[i] for i, size in enumerate((h, w))]
    form = draw(st.sampled_from(["default", "hw", "nchw"]))
    out_hw = list(default)
    if form != "default":
        out_hw = [default[i] + draw(st.integers(1 - s[i], s[i] - 1)) for i in range(2)]
    assume(min(out_hw) >= 1 and out_hw[0] * out_hw[1] >= h * w)  # room for distinct indices
    output_size = {"default": None, "hw": tuple(out_hw), "nchw": (n, c, *out_hw)}[form]
    kwargs = dict(kernel_size=k, stride=stride, padding=p, output_size=output_size)
    return (n, c, h, w), tuple(out_hw), kwargs


def distinct_indices(gen, shape, plane):
    """int64 indices of ``shape`` with no repeat within a plane (PyTorch leaves the winner of
    a repeated position unspecified)."""
    n, c, h, w = shape
    rows = [torch.randperm(plane, generator=gen)[: h * w] for _ in range(n * c)]
    return torch.stack(rows).reshape(shape)


def forward_backward(fn, x, indices, dout, **kwargs):
    x = x.detach().clone().requires_grad_()
    out = fn(x, indices, **kwargs)
    out.backward(dout)
    return out.detach(), x.grad


# --------------------------------------------------------------------------- parity


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(geometry=unpool_geometry(), seed=st.integers(0, 99))
def test_matches_torch(device, geometry, seed):
    shape, out_hw, kwargs = geometry
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device)
    indices = distinct_indices(gen, shape, out_hw[0] * out_hw[1]).to(device)
    dout = torch.randn((*shape[:2], *out_hw), generator=gen, dtype=torch.float64).to(device)
    out_ref, dx_ref = forward_backward(F.max_unpool2d, x, indices, dout, **kwargs)
    out, dx = forward_backward(max_unpool2d, x, indices, dout, **kwargs)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)  # copies: exact
    torch.testing.assert_close(dx, dx_ref, rtol=0, atol=0)


@settings(max_examples=60, deadline=None)
@given(geometry=pool_geometry(with_dilation=False), ties=st.booleans(), seed=st.integers(0, 99))
def test_unpooling_pooled_features_matches_torch(geometry, ties, seed):
    # The usual use, with the indices of our own max_pool2d. Overlapping windows repeat an
    # index, always with the same value, so the result is defined.
    shape, kwargs = geometry
    gen = torch.Generator().manual_seed(seed)
    if ties:
        x = torch.randint(-2, 3, shape, generator=gen).double()
    else:
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
    y, indices = max_pool2d(x, **kwargs, return_indices=True)
    unpool_kwargs = dict(kernel_size=kwargs["kernel_size"], stride=kwargs["stride"])
    unpool_kwargs.update(padding=kwargs["padding"], output_size=shape[2:])
    dout = torch.randn(shape, generator=gen, dtype=torch.float64)
    out_ref, dy_ref = forward_backward(F.max_unpool2d, y, indices, dout, **unpool_kwargs)
    out, dy = forward_backward(max_unpool2d, y, indices, dout, **unpool_kwargs)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
    torch.testing.assert_close(dy, dy_ref, rtol=0, atol=0)


def test_unbatched_input():
    x = torch.randn(3, 2, 3, dtype=torch.float64)
    indices = distinct_indices(torch.Generator().manual_seed(0), (1, 3, 2, 3), 4 * 7)[0]
    kwargs = dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), output_size=(4, 7))
    out = max_unpool2d(x, indices, **kwargs)
    assert out.shape == (3, 4, 7)
    torch.testing.assert_close(out, F.max_unpool2d(x, indices, **kwargs), rtol=0, atol=0)


def test_pool_then_unpool_puts_the_maxima_back_in_place():
    x = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    y, indices = max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    out = max_unpool2d(y, indices, 3, stride=2, padding=1, output_size=x.shape)
    winners = torch.zeros(2, 3, 63, dtype=torch.bool).scatter(-1, indices.flatten(-2), True)
    torch.testing.assert_close(out, torch.where(winners.view(x.shape), x, 0.0), rtol=0, atol=0)


def test_any_integer_index_type():
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    y, indices = max_pool2d(x, 2, stride=1, return_indices=True)
    expected = F.max_unpool2d(y, indices, 2, stride=1)
    for dtype in (torch.int32, torch.int16, torch.uint8):
        out = max_unpool2d(y, indices.to(dtype), 2, stride=1)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_gradcheck():
    x = torch.randn(2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    indices = distinct_indices(torch.Generator().manual_seed(1), x.shape, 5 * 4)
    assert torch.autograd.gradcheck(
        lambda x: max_unpool2d(x, indices, 3, stride=2, padding=1, output_size=(5, 4)), (x,)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(device, dtype):
    x = torch.randn(2, 3, 4, 3, dtype=dtype, device=device, requires_grad=True)
    indices = torch.arange(12, device=device).reshape(4, 3).expand(2, 3, 4, 3)
    out = max_unpool2d(x, indices, 3, stride=2, padding=1)
    assert out.shape == (2, 3, 7, 5) and out.dtype == dtype and out.device == x.device
    out.sum().backward()
    assert x.grad.dtype == dtype and x.grad.device == x.device


# --------------------------------------------------------------------------- no unpool op


def test_never_calls_an_unpooling_op(monkeypatch):
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    indices = torch.arange(16).reshape(4, 4).expand(2, 3, 4, 4)

    def ops(fn):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(x, indices, 2).sum().backward()
        return {e.name for e in prof.events() if e.name.startswith("aten::")}

    assert "aten::max_unpool2d" in ops(F.max_unpool2d)  # the profiler would see the built-in

    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in unpooling op was called")

    monkeypatch.setattr(F, "max_unpool2d", forbidden)
    monkeypatch.setattr(torch._C._nn, "max_unpool2d", forbidden)
    ours = ops(max_unpool2d)
    assert "aten::scatter" in ours
    assert not [o for o in ours if "pool" in o], sorted(ours)


# --------------------------------------------------------------------------- bad inputs

X = torch.zeros(1, 1, 2, 2)
I = torch.zeros(1, 1, 2, 2, dtype=torch.int64)  # noqa: E741

BAD = [
    # (input, indices, kwargs, error, message fragment)
    ([[[[0.0]]]], I, dict(kernel_size=2), TypeError, "input must be a torch.Tensor"),
    (X[0, 0], I[0, 0], dict(kernel_size=2), ValueError, "input must be 4-D"),
    (X.long(), I, dict(kernel_size=2), TypeError, "input must be floating"),
    (X, I.tolist(), dict(kernel_size=2), TypeError, "indices must be a torch.Tensor"),
    (X, I.double(), dict(kernel_size=2), TypeError, "indices must be an integer tensor"),
    (X, I.bool(), dict(kernel_size=2), TypeError, "indices must be an integer tensor"),
    (X, I[..., :1], dict(kernel_size=2), ValueError, r"input's shape \(1, 1, 2, 2\)"),
    (X, I - 1, dict(kernel_size=2), ValueError, r"\[0, 16\), got -1 at \(0, 0, 0, 0\)"),
    (X, I + 16, dict(kernel_size=2), ValueError, r"\[0, 16\), got 16"),
    (X, I, dict(kernel_size=0), ValueError, "kernel_size"),
    (X, I, dict(kernel_size=2, output_size=(4, 4, 4)), ValueError, "2 elements"),
    (X, I, dict(kernel_size=2, output_size=(6, 4)), ValueError, "H=6 .* between 2 and 6"),
]


@pytest.mark.parametrize("x, indices, kwargs, error, match", BAD)
def test_bad_inputs_raise(x, indices, kwargs, error, match):
    with pytest.raises(error, match="max_unpool2d: .*" + match):
        max_unpool2d(x, indices, **kwargs)
