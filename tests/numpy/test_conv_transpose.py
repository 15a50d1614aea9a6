"""NumPy transposed convolution: the adjoint identity with conv2d, numerical gradients, the
loop reference, parity with torch.nn.functional.conv_transpose2d, and bad inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import torch_output_hw

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.conv import conv2d_forward
from d2lcnn.numpy.conv_transpose import (
    conv_transpose2d_backward,
    conv_transpose2d_forward,
    conv_transpose2d_forward_naive,
)

GRAD_TOL = 1e-7  # relative error of float64 centred differences
# The layer is linear in x, in w and in b separately, so the centred difference has no
# truncation error at all (every higher derivative is zero); only round-off remains, about
# 1e-16 * |f| / h, so a larger step than gradcheck's default 1e-6 makes the check *tighter*.
STEP = 1e-3
F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-5, atol=1e-5)



def torch_reference(x, w, b, dout, **kwargs):
    """``F.conv_transpose2d`` output and gradients, as NumPy arrays."""
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    out = F.conv_transpose2d(xt, wt, bt, **kwargs)
    out.backward(torch.tensor(dout))
    grads = (xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy())
    return out.detach().numpy(), grads


@st.composite
def geometry(draw):
    """``(x shape, w shape, kwargs)`` for a conv_transpose2d that torch accepts."""
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out_g = draw(st.integers(1, 3))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    op = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    # torch rejects output_padding >= max(stride, dilation) and empty outputs
    assume(torch_output_hw("conv_transpose2d", (1, c_in, h, w), (c_in, c_out_g, *k), stride=s,
                           padding=p, output_padding=op, groups=groups, dilation=d))
    kwargs = dict(stride=s, padding=p, output_padding=op, groups=groups, dilation=d)
    return (n, c_in, h, w), (c_in, c_out_g, *k), kwargs


# --------------------------------------------------------------------------- adjoint


@pytest.mark.parametrize(
    "h, w, k, stride, padding, dilation, groups",
    [
        (7, 6, 3, 1, 0, 1, 1),
        (7, 8, 3, 2, 1, 1, 1),  # 7 + 2 - 3 = 6 is a multiple of 2: output_padding 0 ...
        (8, 9, 3, 2, 1, 1, 2),  # ... here it is 1 along H, 0 along W
        (9, 7, (3, 2), (3, 2), (1, 0), (2, 1), 3),
    ],
)
def test_is_the_adjoint_of_conv2d(h, w, k, stride, padding, dilation, groups):
    # conv2d maps A = 6 channels to B = 3*groups channels with w of shape (B, A/groups, k):
    # read as a conv_transpose2d weight (C_in = B, C_out/groups = A/groups) it maps back.
    rng = np.random.default_rng(0)
    a, b = 6, 3 * groups
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((2, a, h, w))
    wt = rng.standard_normal((b, a // groups, kh, kw))
    geo = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    conv_x, _ = conv2d_forward(x, wt, **geo)  # (2, B, H', W')
    y = rng.standard_normal(conv_x.shape)
    # conv2d floors, so several input sizes map to H'; output_padding picks ours.
    s, p, d = (np.broadcast_to(v, 2) for v in (stride, padding, dilation))
    op = tuple(int((n + 2 * p[i] - d[i] * (kk - 1) - 1) % s[i]) for i, (n, kk) in
               enumerate(((h, kh), (w, kw))))
    convt_y, _ = conv_transpose2d_forward(y, wt, output_padding=op, **geo)
    assert convt_y.shape == x.shape
    lhs, rhs = np.vdot(conv_x, y), np.vdot(x, convt_y)  # <conv2d(x), y> and <x, conv_t(y)>
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(conv_x).sum() * np.abs(y).max())


# --------------------------------------------------------------------------- gradient checks

GRAD_CASES = [
    # (x shape, w shape, kwargs)
    ((2, 3, 4, 5), (3, 2, 3, 3), dict()),
    ((1, 2, 3, 4), (2, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 3, 3), (4, 1, 2, 3), dict(stride=(2, 3), groups=2, dilation=(2, 1))),
    ((1, 3, 4, 3), (3, 2, 3, 3), dict(stride=1, padding=(2, 1), dilation=2, groups=3,
                                      output_padding=(1, 0))),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", GRAD_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_numerical_gradient(x_shape, w_shape, kwargs, bias):
    rng = np.random.default_rng(1)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * groups) if bias else None
    errors = check_backward(
        conv_transpose2d_forward, conv_transpose2d_backward, [x, w, b], kwargs=kwargs, h=STEP
    )
    assert all(e is None or e <= GRAD_TOL for e in errors), errors
    assert (errors[2] is None) == (not bias)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", GRAD_CASES)
def test_matches_the_loop_reference(x_shape, w_shape, kwargs):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * kwargs.get("groups", 1))
    out, _ = conv_transpose2d_forward(x, w, b, **kwargs)
    np.testing.assert_allclose(out, conv_transpose2d_forward_naive(x, w, b, **kwargs)[0], **F64)


def test_scatters_kernel_copies():
    # Two pixels 1 and 10, stride 3 > kernel 2: the two kernel copies do not touch, and the
    # output_padding column stays zero.
    x = np.array([[[[1.0, 10.0]]]])
    w = np.array([[[[1.0, 2.0]]]])
    out, _ = conv_transpose2d_forward(x, w, stride=3, output_padding=(0, 1))
    np.testing.assert_array_equal(out[0, 0], [[1.0, 2.0, 0.0, 10.0, 20.0, 0.0]])


# --------------------------------------------------------------------------- torch parity


@settings(max_examples=30, deadline=None)
@given(geo=geometry(), bias=st.booleans(), double=st.booleans(), seed=st.integers(0, 99))
def test_matches_torch(geo, bias, double, seed):
    x_shape, w_shape, kwargs = geo
    dtype, tol = (np.float64, F64) if double else (np.float32, F32)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * kwargs["groups"]).astype(dtype) if bias else None
    out, cache = conv_transpose2d_forward(x, w, b, **kwargs)
    dout = rng.standard_normal(out.shape).astype(dtype)
    out_ref, grads_ref = torch_reference(x, w, b, dout, **kwargs)
    assert out.dtype == dtype and out.shape == out_ref.shape
    np.testing.assert_allclose(out, out_ref, **tol)
    for name, g, g_ref in zip("xwb", conv_transpose2d_backward(dout, cache), grads_ref,
                              strict=True):
        if g_ref is None:
            assert g is None
        else:
            assert g.dtype == dtype, name
            np.testing.assert_allclose(g, g_ref, **tol, err_msg=name)


# --------------------------------------------------------------------------- bad inputs

X, W = np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3))
BAD = [
    # (args, kwargs, error, message fragment)
    ((X[0], W), {}, ValueError, "input must be 4-D"),
    ((X, W[0]), {}, ValueError, "weight must be 4-D"),
    ((X.tolist(), W), {}, TypeError, "input must be a numpy array"),
    ((X.astype(int), W), {}, TypeError, "input must be a floating-point"),
    ((X, W.astype(np.float32)), {}, TypeError, "weight must have input's dtype"),
    ((X, np.zeros((3, 2, 3, 3))), {}, ValueError, r"weight.shape\[0\]"),
    ((X, W), dict(groups=3), ValueError, "divisible by groups"),
    ((X, W), dict(groups=0), ValueError, "groups"),
    ((X, W), dict(groups=1.0), TypeError, "groups"),
    ((X, W, np.zeros(3)), {}, ValueError, r"bias must have shape \(C_out,\)"),
    ((X, W), dict(stride=0), ValueError, "stride"),
    ((X, W), dict(padding=-1), ValueError, "padding"),
    ((X, W), dict(output_padding=1), ValueError, "output_padding"),
    ((X, W), dict(stride=2, output_padding=2), ValueError, "output_padding"),
    ((X, W), dict(padding=3), ValueError, "< 1"),
]


@pytest.mark.parametrize("args, kwargs, error, match", BAD)
def test_bad_inputs_raise(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv_transpose2d_forward(*args, **kwargs)


def test_backward_rejects_dout_of_the_wrong_shape():
    out, cache = conv_transpose2d_forward(X, W, stride=2)
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        conv_transpose2d_backward(np.zeros((1, 2, 6, 7)), cache)
