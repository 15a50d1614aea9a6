"""Hypothesis strategies shared by the NumPy and torch test suites."""

import torch
import torch.nn.functional as F
from hypothesis import assume
from hypothesis import strategies as st

__all__ = [
    "every_window_touches_input",
    "optimizer_hyperparameters",
    "pool_geometry",
    "torch_output_hw",
]


def torch_output_hw(op: str, x_shape, w_shape=None, **kwargs):
    """``(H_out, W_out)`` torch's ``F.<op>`` gives for zeros of these shapes, or ``None``
    when torch rejects the geometry. Strategies ask torch, not d2lcnn.geometry, which
    geometries are valid: a geometry the code under test wrongly rejects then fails the
    test instead of being silently left out (``assume(False)``)."""
    x = torch.zeros(x_shape)
    args = () if w_shape is None else (torch.zeros(w_shape),)
    try:
        out = getattr(F, op)(x, *args, **kwargs)
    except (RuntimeError, ValueError):
        return None
    if out.numel() == 0:  # an empty output is no test of the arithmetic
        return None
    return tuple(out.shape[2:])


def every_window_touches_input(size, kernel, stride, padding, dilation, out_size):
    """Whether each window has at least one tap inside the input along one axis.

    With dilation a window can fall entirely into the padding; PyTorch's CPU kernel then
    returns -inf and routes its gradient to an unrelated element, so such geometries are
    left out of the parity tests.
    """
    return all(
        any(0 <= o * stride - padding + j * dilation < size for j in range(kernel))
        for o in range(out_size)
    )


@st.composite
def pool_geometry(draw, with_dilation):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if with_dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    out_hw = torch_output_hw("max_pool2d", (1, 1, h, w), kernel_size=k, stride=stride,
                             padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    assume(out_hw is not None)
    s = k if stride is None else stride
    for i, size in enumerate((h, w)):
        assume(every_window_touches_input(size, k[i], s[i], padding[i], dilation[i], out_hw[i]))
    kwargs = dict(kernel_size=k, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if with_dilation:
        kwargs["dilation"] = dilation
    return (n, c, h, w), kwargs


def optimizer_hyperparameters():
    """``(name, kwargs)`` for a ``torch.optim`` optimizer, in the ranges people actually use."""
    lr = st.floats(1e-4, 0.2)
    decay = st.sampled_from([0.0, 1e-4, 0.01, 0.1])
    beta = st.floats(0.0, 0.999)
    return st.one_of(
        st.builds(lambda lr, m, d, nest, wd: ("SGD", dict(
            lr=lr, momentum=m, dampening=0.0 if nest else d, nesterov=nest and m > 0,
            weight_decay=wd)), lr, st.floats(0, 0.99), st.floats(0, 0.5), st.booleans(), decay),
        st.builds(lambda lr, lrd, wd, acc: ("Adagrad", dict(
            lr=lr, lr_decay=lrd, weight_decay=wd, initial_accumulator_value=acc)),
            lr, st.floats(0, 0.1), decay, st.floats(0, 1)),
        st.builds(lambda lr, a, m, c, wd: ("RMSprop", dict(
            lr=lr / 10, alpha=a, momentum=m, centered=c, weight_decay=wd)),
            lr, st.floats(0.5, 0.999), st.floats(0, 0.9), st.booleans(), decay),
        st.builds(lambda name, lr, b1, b2, wd, ams: (name, dict(
            lr=lr / 10, betas=(b1, b2), weight_decay=wd, amsgrad=ams)),
            st.sampled_from(["Adam", "AdamW"]), lr, beta, st.floats(0.5, 0.9999), decay,
            st.booleans()),
    )
