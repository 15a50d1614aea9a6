"""Reference layers in pure NumPy: ``name_forward(x, ..., *, hyper) -> (out, cache)`` and
``name_backward(dout, cache) -> grads``. NCHW layout, ``torch.nn.functional`` semantics."""

from d2lcnn.geometry import conv2d_output_shape, pool2d_output_shape, receptive_field
from d2lcnn.numpy.conv import conv2d_backward, conv2d_forward, conv2d_forward_naive
from d2lcnn.numpy.norm import (
    batch_norm_backward,
    batch_norm_forward,
    fuse_conv_bn,
    group_norm_backward,
    group_norm_forward,
    instance_norm_backward,
    instance_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
    local_response_norm_backward,
    local_response_norm_forward,
    rms_norm_backward,
    rms_norm_forward,
)
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
    "batch_norm_forward",
    "batch_norm_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "group_norm_forward",
    "group_norm_backward",
    "instance_norm_forward",
    "instance_norm_backward",
    "rms_norm_forward",
    "rms_norm_backward",
    "local_response_norm_forward",
    "local_response_norm_backward",
    "fuse_conv_bn",
]
