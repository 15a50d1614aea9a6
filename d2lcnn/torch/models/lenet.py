"""LeNet-5 (LeCun et al., 1998): CONV-POOL-CONV-POOL-CONV-FC-FC on 32x32 inputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from d2lcnn.torch.models._common import scaled

__all__ = ["LeNet5"]


class LeNet5(nn.Module):
    """The classic LeNet-5 with 5x5 convolutions and 2x2 pooling.

    Layers (for a 32x32 input)::

        C1 conv 5x5, 6 maps      -> (N, 6, 28, 28)
        S2 pool 2x2, stride 2    -> (N, 6, 14, 14)
        C3 conv 5x5, 16 maps     -> (N, 16, 10, 10)
        S4 pool 2x2, stride 2    -> (N, 16, 5, 5)
        C5 conv 5x5, 120 maps    -> (N, 120, 1, 1)
        F6 linear 120 -> 84
        output linear 84 -> num_classes

    Simplifications, as in most modern re-implementations: C3 connects to all 6 S2 maps (the
    original used a hand-made partial connection table), subsampling is plain average (or
    max) pooling without trainable coefficients, and the output is a linear layer instead of
    Euclidean RBF units.

    Args:
        num_classes: size of the output layer. Default: 10.
        in_channels: input channels. Default: 1.
        activation: a zero-argument callable returning the nonlinearity module (``nn.Tanh``
            as in the original, ``nn.ReLU``, ``nn.Sigmoid``, ...). Default: ``nn.Tanh``.
        pool: ``"avg"`` (original subsampling) or ``"max"``. Default: ``"avg"``.
        width_mult: multiplies the channel and hidden widths (6, 16, 120, 84). Default: 1.0.

    Shape:
        Input ``(N, in_channels, 32, 32)``; output ``(N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        activation: Callable[[], nn.Module] = nn.Tanh,
        pool: str = "avg",
        width_mult: float = 1.0,
    ):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"LeNet5: pool must be 'avg' or 'max', got {pool!r}")
        pool_cls = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        c1, c3, c5, f6 = (scaled(w, width_mult) for w in (6, 16, 120, 84))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5),  # C1
            activation(),
            pool_cls(2, 2),  # S2
            nn.Conv2d(c1, c3, 5),  # C3
            activation(),
            pool_cls(2, 2),  # S4
            nn.Conv2d(c3, c5, 5),  # C5
            activation(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c5, f6),  # F6
            activation(),
            nn.Linear(f6, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 120, 1, 1)
        return self.classifier(x)  # (N, num_classes)
