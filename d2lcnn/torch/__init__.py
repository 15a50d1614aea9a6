"""The same operations as :mod:`d2lcnn.numpy`, written from tensor primitives (unfold,
as_strided, matmul), differentiable by autograd and running on the input's device."""

from d2lcnn.geometry import (
    conv2d_output_shape,
    conv_transpose2d_output_shape,
    interpolate_output_shape,
    pool2d_output_shape,
    receptive_field,
)
from d2lcnn.torch.activations import (
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    maxout,
    mish,
    prelu,
    relu,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    swish,
    tanh,
)
from d2lcnn.torch.adaptive_pool import (
    adaptive_avg_pool2d,
)
from d2lcnn.torch.clip import (
    clip_grad_norm,
    clip_grad_value,
)
from d2lcnn.torch.conv import Conv2dFunction, conv2d, conv2d_manual
from d2lcnn.torch.conv_transpose import (
    conv_transpose2d,
)
from d2lcnn.torch.device import device
from d2lcnn.torch.dropout import (
    dropout,
    dropout2d,
    vanilla_dropout,
)
from d2lcnn.torch.init import (
    calculate_gain,
    fan_in_fan_out,
    kaiming_normal,
    kaiming_uniform,
    normal,
    orthogonal,
    uniform,
    xavier_normal,
    xavier_uniform,
    zeros,
)
from d2lcnn.torch.linear import (
    flatten,
    linear,
)
from d2lcnn.torch.losses import (
    cross_entropy,
    mse_loss,
    nll_loss,
)
from d2lcnn.torch.norm import (
    batch_norm,
    fuse_conv_bn,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
    rms_norm,
)
from d2lcnn.torch.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    MomentumVelocity,
    RMSprop,
)
from d2lcnn.torch.pool import avg_pool2d, max_pool2d
from d2lcnn.torch.schedules import (
    as_torch_scheduler,
)
from d2lcnn.torch.upsample import (
    interpolate,
)

__all__ = [
    "conv2d_output_shape",
    "pool2d_output_shape",
    "conv_transpose2d_output_shape",
    "interpolate_output_shape",
    "receptive_field",
    "conv2d",
    "conv2d_manual",
    "Conv2dFunction",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "rms_norm",
    "local_response_norm",
    "fuse_conv_bn",
    "device",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "maxout",
    "softmax",
    "log_softmax",
    "linear",
    "flatten",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "dropout",
    "vanilla_dropout",
    "dropout2d",
    "SGD",
    "MomentumVelocity",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "fan_in_fan_out",
    "calculate_gain",
    "zeros",
    "normal",
    "uniform",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "clip_grad_norm",
    "clip_grad_value",
    "as_torch_scheduler",
    "conv_transpose2d",
    "interpolate",
    "adaptive_avg_pool2d",
]
