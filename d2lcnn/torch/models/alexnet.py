"""AlexNet (Krizhevsky et al., 2012) and ZFNet (Zeiler and Fergus, 2013).

Both follow the "simplified" 227x227 layout of the lecture slides::

    INPUT  227x227x3
    CONV1  96 11x11 stride 4 pad 0  -> 55x55x96    (34,848 weights + 96 biases)
    POOL1  3x3 stride 2             -> 27x27x96
    NORM1  local response normalization
    CONV2  256 5x5 stride 1 pad 2   -> 27x27x256
    POOL2  3x3 stride 2             -> 13x13x256
    NORM2
    CONV3  384 3x3 pad 1            -> 13x13x384
    CONV4  384 3x3 pad 1            -> 13x13x384
    CONV5  256 3x3 pad 1            -> 13x13x256
    POOL3  3x3 stride 2             -> 6x6x256
    FC6    9216 -> 4096, FC7 4096 -> 4096, FC8 4096 -> num_classes

The original network was split over two GPUs ("two towers"): each GPU held half of every
layer's kernels (48, 128, 192, 192, 128), and CONV2, CONV4 and CONV5 only saw the maps of the
half on their own GPU, while CONV3 and the FC layers read both halves. ``one_tower=True``
(default) is the single-device network of the slides; ``one_tower=False`` reproduces the
original connectivity with ``groups=2`` on CONV2, CONV4 and CONV5, which halves their weights
(62,378,344 -> 60,965,224 parameters: the paper's "60 million"). The output shapes are the
same either way.

The paper applies normalization before pooling (conv-ReLU-norm-pool); the slides list it
after (conv-ReLU-pool-norm). We follow the slides: it changes no shape or parameter count.
"""

from __future__ import annotations

import torch
from torch import nn

from d2lcnn.torch.models._common import scaled

__all__ = ["AlexNet", "ZFNet", "local_response_norm"]


def local_response_norm(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
    """The paper's LRN: ``b = a / (k + alpha * sum_{neighbours} a^2) ** beta``.

    ``nn.LocalResponseNorm`` divides ``alpha`` by ``size``, so we pass ``alpha * size`` to get
    the paper's formula with the paper's constants (n=5, alpha=1e-4, beta=0.75, k=2).
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


class _ConvFCNet(nn.Module):
    """Five conv layers (with pooling and optional LRN) then three FC layers."""

    def __init__(
        self,
        convs: list[tuple[int, int, int, int, int]],  # (out, kernel, stride, pad, groups)
        pools: dict[int, tuple[int, int, int]],  # conv index -> (kernel, stride, pad) after it
        norms: set[int],  # conv indices followed (after their pool) by LRN
        *,
        num_classes: int,
        in_channels: int,
        width_mult: float,
        fc_width: int,
        dropout: float,
        lrn: bool,
        pool_size: int,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, (c_out, k, s, p, g) in enumerate(convs):
            c_out = scaled(c_out, width_mult)
            layers += [nn.Conv2d(c_in, c_out, k, stride=s, padding=p, groups=g), nn.ReLU()]
            if i in pools:
                pk, ps, pp = pools[i]
                layers.append(nn.MaxPool2d(pk, stride=ps, padding=pp))
            if lrn and i in norms:
                layers.append(local_response_norm())
            c_in = c_out
        self.features = nn.Sequential(*layers)
        # at the design resolution the maps are already pool_size x pool_size: a no-op there,
        # and it lets reduced models run on small images
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * pool_size * pool_size, fc_width),  # FC6
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),  # FC7
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),  # FC8
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C5, 6, 6) at the design resolution
        x = self.avgpool(x)  # (N, C5, pool_size, pool_size)
        return self.classifier(x)  # (N, num_classes)


class AlexNet(_ConvFCNet):
    """AlexNet for 227x227 inputs (see the module docstring for the layer table).

    Args:
        num_classes: outputs of FC8. Default: 1000.
        in_channels: input channels. Default: 3.
        one_tower: single-device network (True) or the original two-GPU connectivity with
            ``groups=2`` in CONV2/4/5 (False). Default: True.
        width_mult: multiplies every conv width (96, 256, 384, 384, 256); with
            ``one_tower=False`` the widths must stay even. Default: 1.0.
        fc_width: width of FC6 and FC7. Default: 4096.
        dropout: drop probability after FC6 and FC7. Default: 0.5.
        lrn: local response normalization after POOL1 and POOL2. Default: True.
        pool_size: spatial size fed to FC6 (adaptive average pooling; a no-op at 227x227).
            Default: 6.

    Shape:
        Input ``(N, in_channels, 227, 227)``; output ``(N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        one_tower: bool = True,
        width_mult: float = 1.0,
        fc_width: int = 4096,
        dropout: float = 0.5,
        lrn: bool = True,
        pool_size: int = 6,
    ):
        g = 1 if one_tower else 2
        super().__init__(
            [(96, 11, 4, 0, 1), (256, 5, 1, 2, g), (384, 3, 1, 1, 1), (384, 3, 1, 1, g),
             (256, 3, 1, 1, g)],
            {0: (3, 2, 0), 1: (3, 2, 0), 4: (3, 2, 0)},
            {0, 1},
            num_classes=num_classes, in_channels=in_channels, width_mult=width_mult,
            fc_width=fc_width, dropout=dropout, lrn=lrn, pool_size=pool_size,
        )


class ZFNet(_ConvFCNet):
    """ZFNet: AlexNet with CONV1 7x7 stride 2 and CONV3/4/5 = 512, 1024, 512 filters.

    Geometry of the ZFNet paper for 224x224 inputs (one tower)::

        CONV1 96 7x7 s2 p1 -> 110x110, POOL 3x3 s2 p1 -> 55x55, NORM
        CONV2 256 5x5 s2   -> 26x26,   POOL 3x3 s2 p1 -> 13x13, NORM
        CONV3 512, CONV4 1024, CONV5 512 (3x3 p1) -> 13x13, POOL 3x3 s2 -> 6x6
        FC6 6*6*512 -> 4096, FC7 4096 -> 4096, FC8 -> num_classes

    Args: as :class:`AlexNet` (without ``one_tower``).

    Shape:
        Input ``(N, in_channels, 224, 224)``; output ``(N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        width_mult: float = 1.0,
        fc_width: int = 4096,
        dropout: float = 0.5,
        lrn: bool = True,
        pool_size: int = 6,
    ):
        super().__init__(
            [(96, 7, 2, 1, 1), (256, 5, 2, 0, 1), (512, 3, 1, 1, 1), (1024, 3, 1, 1, 1),
             (512, 3, 1, 1, 1)],
            {0: (3, 2, 1), 1: (3, 2, 1), 4: (3, 2, 0)},
            {0, 1},
            num_classes=num_classes, in_channels=in_channels, width_mult=width_mult,
            fc_width=fc_width, dropout=dropout, lrn=lrn, pool_size=pool_size,
        )
