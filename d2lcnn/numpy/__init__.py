"""Reference layers in pure NumPy: ``name_forward(x, ..., *, hyper) -> (out, cache)`` and
``name_backward(dout, cache) -> grads``. NCHW layout, ``torch.nn.functional`` semantics."""

from d2lcnn.geometry import conv2d_output_shape, pool2d_output_shape, receptive_field
from d2lcnn.numpy.conv import conv2d_backward, conv2d_forward, conv2d_forward_naive
from d2lcnn.numpy.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ = [
    "conv2d_output_shape",
    "pool2d_output_shape",
    "receptive_field",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_forward_naive",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
]
