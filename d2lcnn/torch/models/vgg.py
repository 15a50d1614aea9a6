"""VGG (Simonyan and Zisserman, 2014): configurations A, A-LRN, B, C, D, E from one table.

Every conv is 3x3 stride 1 pad 1 (C also has 1x1 convs), every pool is 2x2 max stride 2, and
three FC layers (4096, 4096, num_classes) follow. In :data:`VGG_CONFIGS` an int is a 3x3 conv
with that many filters, ``(c, 1)`` a 1x1 conv, ``"M"`` a max pool and ``"LRN"`` local
response normalization. Parameter counts with 1000 classes (biases included)::

    A, A-LRN  132,863,336   (133 M)      D (VGG-16)  138,357,544   (138 M)
    B         133,047,848   (133 M)      E (VGG-19)  143,667,240   (144 M)
    C         133,638,952   (134 M)
"""

from __future__ import annotations

import torch
from torch import nn

from d2lcnn.torch.models._common import scaled

__all__ = ["VGG", "VGG_CONFIGS", "vgg11", "vgg13", "vgg16", "vgg19"]

VGG_CONFIGS: dict[str, list] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """A VGG network built from one row of :data:`VGG_CONFIGS`.

    Args:
        config: ``"A"``, ``"A-LRN"``, ``"B"``, ``"C"``, ``"D"`` or ``"E"``. Default: ``"D"``.
        num_classes: outputs of the last FC layer. Default: 1000.
        in_channels: input channels. Default: 3.
        width_mult: multiplies every conv width (64 ... 512). Default: 1.0.
        fc_width: width of the first two FC layers. Default: 4096.
        dropout: drop probability after the first two FC layers. Default: 0.5.
        batch_norm: BatchNorm after every conv (the later "VGG-BN" variants, not in the
            paper). Default: False.
        pool_size: spatial size fed to the first FC layer (adaptive average pooling; a no-op
            at 224x224, where the maps are already 7x7). Default: 7.

    Shape:
        Input ``(N, in_channels, H, W)``, 224x224 in the paper; output ``(N, num_classes)``.
    """

    def __init__(
        self,
        config: str = "D",
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        width_mult: float = 1.0,
        fc_width: int = 4096,
        dropout: float = 0.5,
        batch_norm: bool = False,
        pool_size: int = 7,
    ):
        super().__init__()
        if config not in VGG_CONFIGS:
            raise ValueError(f"VGG: config must be one of {list(VGG_CONFIGS)}, got {config!r}")
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in VGG_CONFIGS[config]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            elif item == "LRN":
                # the paper uses Krizhevsky's constants (n=5, alpha=1e-4, beta=0.75, k=2)
                layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
            else:
                c_out, k = item if isinstance(item, tuple) else (item, 3)
                c_out = scaled(c_out, width_mult)
                layers.append(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.ReLU())
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * pool_size * pool_size, fc_width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 512, H/32, W/32)
        x = self.avgpool(x)  # (N, 512, pool_size, pool_size)
        return self.classifier(x)  # (N, num_classes)


def vgg11(**kwargs) -> VGG:
    """VGG-11, configuration A."""
    return VGG("A", **kwargs)


def vgg13(**kwargs) -> VGG:
    """VGG-13, configuration B."""
    return VGG("B", **kwargs)


def vgg16(**kwargs) -> VGG:
    """VGG-16, configuration D (C is the 16-layer variant with 1x1 convs)."""
    return VGG("D", **kwargs)


def vgg19(**kwargs) -> VGG:
    """VGG-19, configuration E."""
    return VGG("E", **kwargs)
