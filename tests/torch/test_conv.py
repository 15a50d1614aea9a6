"""Torch conv2d from primitives: parity with F.conv2d (values and gradients), gradcheck of
the hand-written backward, dtype/device, that no convolution op runs, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import torch_output_hw
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.conv import Conv2dFunction, conv2d, conv2d_manual

OURS = [conv2d, conv2d_manual]
F64_TOL = dict(rtol=1e-10, atol=1e-10)  # float64, only the summation order differs


def make_inputs(x_shape, w_shape, bias, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=gen, dtype=dtype)
    w = torch.randn(w_shape, generator=gen, dtype=dtype)
    b = torch.randn(w_shape[0], generator=gen, dtype=dtype) if bias else None
    return x, w, b


def forward_backward(fn, x, w, b, dout, **kwargs):
    """Run ``fn`` on fresh leaf copies and return ``(out, [dx, dw, db])``."""
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in (x, w, b)]
    out = fn(*leaves, **kwargs)
    out.backward(dout)
    return out.detach(), [None if t is None else t.grad for t in leaves]


def assert_matches_torch(fn, x, w, b, tol, **kwargs):
    out_shape = F.conv2d(x, w, b, **kwargs).shape
    dout = torch.randn(out_shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    out_ref, grads_ref = forward_backward(F.conv2d, x, w, b, dout, **kwargs)
    out, grads = forward_backward(fn, x, w, b, dout, **kwargs)
    torch.testing.assert_close(out, out_ref, **tol)
    for name, g, g_ref in zip(("x", "weight", "bias"), grads, grads_ref, strict=True):
        if g_ref is None:
            assert g is None, f"{name} has no gradient in torch but got one"
        else:
            torch.testing.assert_close(g, g_ref, **tol, msg=lambda m, n=name: f"grad {n}: {m}")


@st.composite
def conv_geometry(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    mode = draw(st.sampled_from(["ints", "valid", "same"]))
    if mode == "same":
        stride, padding = 1, "same"
    else:
        stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
        padding = (
            0
            if mode == "valid"
            else draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2))))
        )
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    assume(torch_output_hw("conv2d", (1, c_in, h, w), (c_out, c_in // groups, *k), **kwargs))
    return (n, c_in, h, w), (c_out, c_in // groups, *k), draw(st.booleans()), kwargs


# --------------------------------------------------------------------------- parity


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # F.conv2d's own warning
@settings(max_examples=60, deadline=None)
@given(geometry=conv_geometry(), seed=st.integers(0, 99))
def test_matches_torch_float64(geometry, seed):
    x_shape, w_shape, bias, kwargs = geometry
    x, w, b = make_inputs(x_shape, w_shape, bias, seed=seed)
    for fn in OURS:
        assert_matches_torch(fn, x, w, b, F64_TOL, **kwargs)


@pytest.mark.parametrize("fn", OURS)
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((4, 8, 16, 16), (16, 8, 3, 3), dict(padding=1)),
        ((2, 6, 15, 12), (9, 2, 5, 3), dict(stride=2, padding=(2, 1), groups=3)),
        ((3, 4, 12, 12), (4, 4, 3, 3), dict(dilation=2, padding="same")),
    ],
)
def test_matches_torch_float32(fn, x_shape, w_shape, kwargs):
    x, w, b = make_inputs(x_shape, w_shape, bias=True, dtype=torch.float32)
    # Sums of up to ~100 products of O(1) values, accumulated in a different order than
    # oneDNN: a few float32 ulps of the largest partial sums.
    assert_matches_torch(fn, x, w, b, dict(rtol=1e-5, atol=1e-4), **kwargs)


@pytest.mark.parametrize("fn", OURS)
def test_unbatched_input(fn):
    x, w, b = make_inputs((3, 7, 6), (5, 3, 3, 2), bias=True)
    out = fn(x, w, b, stride=(2, 1), padding=1)
    torch.testing.assert_close(out, F.conv2d(x, w, b, stride=(2, 1), padding=1), **F64_TOL)


# --------------------------------------------------------------------------- hand backward


@pytest.mark.parametrize(
    "x_shape, w_shape, args",
    [
        # args: (stride, padding, dilation, groups) as Conv2dFunction.apply takes them
        ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1, 1, 1)),
        ((2, 4, 7, 6), (6, 2, 3, 2), ((2, 1), (1, 0), (1, 2), 2)),
        ((1, 3, 8, 8), (3, 1, 2, 2), (3, 0, 1, 3)),  # depthwise, stride leaves a remainder
        ((1, 2, 6, 7), (3, 2, 2, 4), (1, "same", (2, 1), 1)),  # asymmetric 'same' padding
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_function_gradcheck(x_shape, w_shape, args, bias):
    x, w, b = make_inputs(x_shape, w_shape, bias)
    inputs = tuple(t.requires_grad_() for t in (x, w, b) if t is not None)
    if bias:

        def fn(x, w, b):
            return Conv2dFunction.apply(x, w, b, *args)
    else:

        def fn(x, w):
            return Conv2dFunction.apply(x, w, None, *args)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-7)


def test_conv2d_function_second_derivative():
    # The backward is made of differentiable ops, so double backward works too.
    x, w, b = make_inputs((1, 4, 5, 5), (2, 2, 3, 3), bias=True)
    inputs = tuple(t.requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradgradcheck(
        lambda x, w, b: conv2d_manual(x, w, b, stride=2, padding=1, groups=2), inputs
    )


def test_conv2d_function_skips_unneeded_gradients():
    x, w, b = make_inputs((2, 3, 6, 6), (4, 3, 3, 3), bias=True)
    w.requires_grad_()
    conv2d_manual(x, w, b).sum().backward()
    assert x.grad is None and b.grad is None and w.grad is not None


# --------------------------------------------------------------------------- dtype, device


@pytest.mark.parametrize("fn", OURS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(fn, dtype):
    x, w, b = make_inputs((2, 3, 9, 8), (5, 3, 3, 3), bias=True, dtype=dtype)
    for t in (x, w, b):
        t.requires_grad_()
    out = fn(x, w, b, stride=2, padding=1)
    assert out.shape == (2, 5, 5, 4)
    assert out.dtype == dtype and out.device == x.device
    out.sum().backward()
    for t in (x, w, b):
        assert t.grad.dtype == dtype and t.grad.device == x.device


# --------------------------------------------------------------------------- no conv op


def aten_ops(fn, *args, **kwargs):
    """Names of the ATen ops run by ``fn(*args, **kwargs).sum().backward()``.

    The profiler sees ops dispatched from C++ too, which monkeypatching cannot.
    """
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args, **kwargs).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


def conv_inputs():
    return [t.requires_grad_() for t in make_inputs((2, 4, 8, 8), (6, 2, 3, 3), bias=True)]


def test_the_profiler_would_see_a_builtin_convolution():
    assert "aten::convolution" in aten_ops(F.conv2d, *conv_inputs(), stride=2, padding=1, groups=2)


@pytest.mark.parametrize("fn", OURS)
def test_never_calls_a_convolution_op(fn, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in convolution was called")

    for module, name in [
        (F, "conv2d"),
        (torch, "conv2d"),
        (torch, "convolution"),
        (torch, "_convolution"),
    ]:
        monkeypatch.setattr(module, name, forbidden)
    ops = aten_ops(fn, *conv_inputs(), stride=2, padding=1, groups=2)
    assert "aten::im2col" in ops and "aten::col2im" in ops
    assert not [op for op in ops if "conv" in op], sorted(ops)


# --------------------------------------------------------------------------- bad inputs

BAD = [
    # (x shape, w shape, bias shape, kwargs, error, message fragment)
    ((4, 4), (2, 1, 1, 1), None, {}, ValueError, "input must be 4-D"),
    ((1, 1, 1, 4, 4), (2, 1, 1, 1), None, {}, ValueError, "input must be 4-D"),
    ((1, 3, 5, 5), (2, 3, 3), None, {}, ValueError, "weight must be 4-D"),
    ((1, 3, 5, 5), (2, 2, 3, 3), None, {}, ValueError, r"weight.shape\[1\] must be"),
    ((1, 4, 5, 5), (2, 4, 3, 3), None, dict(groups=2), ValueError, r"weight.shape\[1\]"),
    ((1, 3, 5, 5), (2, 1, 3, 3), None, dict(groups=2), ValueError, "divisible by groups"),
    ((1, 4, 5, 5), (3, 2, 3, 3), None, dict(groups=2), ValueError, r"C_out = weight.shape\[0\]"),
    ((1, 3, 5, 5), (2, 3, 3, 3), None, dict(groups=0), ValueError, "groups"),
    ((1, 3, 5, 5), (2, 3, 3, 3), (3,), {}, ValueError, r"bias must have shape \(C_out,\)"),
    ((1, 3, 5, 5), (2, 3, 3, 3), (1, 2), {}, ValueError, "bias"),
    ((1, 3, 5, 5), (2, 3, 7, 3), None, {}, ValueError, "does not fit"),
    ((1, 3, 5, 5), (2, 3, 3, 3), None, dict(dilation=3), ValueError, "does not fit"),
    ((1, 3, 5, 5), (2, 3, 3, 3), None, dict(stride=0), ValueError, "stride"),
    ((1, 3, 5, 5), (2, 3, 3, 3), None, dict(padding=-1), ValueError, "padding"),
    ((1, 3, 5, 5), (2, 3, 3, 3), None, dict(padding="full"), ValueError, "padding"),
    ((1, 3, 5, 5), (2, 3, 3, 3), None, dict(padding="same", stride=2), ValueError, "same"),
    ((1, 3, 5, 5), (2, 3, 3, 3), None, dict(stride=1.5), TypeError, "stride"),
]


@pytest.mark.parametrize("fn", OURS)
@pytest.mark.parametrize("x_shape, w_shape, b_shape, kwargs, error, match", BAD)
def test_bad_inputs_raise(fn, x_shape, w_shape, b_shape, kwargs, error, match):
    x, w = torch.zeros(x_shape), torch.zeros(w_shape)
    b = None if b_shape is None else torch.zeros(b_shape)
    with pytest.raises(error, match=match):
        fn(x, w, b, **kwargs)


@pytest.mark.parametrize("fn", OURS)
def test_bad_dtypes_raise(fn):
    x, w = torch.zeros(1, 3, 5, 5), torch.zeros(2, 3, 3, 3)
    with pytest.raises(TypeError, match="weight dtype"):
        fn(x, w.double())
    with pytest.raises(TypeError, match="floating point"):
        fn(x.long(), w.long())
    with pytest.raises(TypeError, match="bias"):
        fn(x, w, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(x.numpy(), w)
