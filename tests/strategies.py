"""Hypothesis strategies shared by the NumPy and torch test suites."""

from hypothesis import assume
from hypothesis import strategies as st

from d2lcnn.geometry import pool2d_output_shape

__all__ = ["every_window_touches_input", "pool_geometry"]


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
    try:
        out_hw = pool2d_output_shape(
            (h, w), k, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
        )
    except ValueError:
        assume(False)
    s = k if stride is None else stride
    for i, size in enumerate((h, w)):
        assume(every_window_touches_input(size, k[i], s[i], padding[i], dilation[i], out_hw[i]))
    kwargs = dict(kernel_size=k, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if with_dilation:
        kwargs["dilation"] = dilation
    return (n, c, h, w), kwargs
