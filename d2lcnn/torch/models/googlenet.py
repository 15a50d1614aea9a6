"""GoogLeNet / Inception v1 (Szegedy et al., 2014), built from the paper's table as data.

Each inception module has four parallel branches whose outputs are concatenated along the
channels::

    1x1 conv (#1x1)
    1x1 conv (#3x3 reduce) -> 3x3 conv (#3x3)
    1x1 conv (#5x5 reduce) -> 5x5 conv (#5x5)
    3x3 max pool, stride 1 -> 1x1 conv (pool proj)

so its output has ``#1x1 + #3x3 + #5x5 + pool proj`` channels. Every conv is followed by a
ReLU. The 1x1 "reduce" convs are what keep the network at about 7 M parameters with no big FC
layer. (torchvision's GoogLeNet differs: BatchNorm everywhere and a 3x3 conv where the paper
has 5x5, which is why it has about 6.6 M parameters.)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from d2lcnn.torch.models._common import scaled

__all__ = ["InceptionSpec", "INCEPTION_V1", "Inception", "GoogLeNet"]


class InceptionSpec(NamedTuple):
    """One row of the GoogLeNet table (channel counts of the four branches)."""

    name: str  # "3a", "3b", ...
    n1x1: int  # #1x1
    n3x3red: int  # #3x3 reduce
    n3x3: int  # #3x3
    n5x5red: int  # #5x5 reduce
    n5x5: int  # #5x5
    pool_proj: int  # pool proj

    @property
    def out_channels(self) -> int:
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj


# The inception rows of the paper's table; "M" is a 3x3 stride-2 max pool between them.
INCEPTION_V1: list[InceptionSpec | str] = [
    InceptionSpec("3a", 64, 96, 128, 16, 32, 32),
    InceptionSpec("3b", 128, 128, 192, 32, 96, 64),
    "M",
    InceptionSpec("4a", 192, 96, 208, 16, 48, 64),
    InceptionSpec("4b", 160, 112, 224, 24, 64, 64),
    InceptionSpec("4c", 128, 128, 256, 24, 64, 64),
    InceptionSpec("4d", 112, 144, 288, 32, 64, 64),
    InceptionSpec("4e", 256, 160, 320, 32, 128, 128),
    "M",
    InceptionSpec("5a", 256, 160, 320, 32, 128, 128),
    InceptionSpec("5b", 384, 192, 384, 48, 128, 128),
]


def _conv_relu(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2), nn.ReLU())


class Inception(nn.Module):
    """One inception module (see the module docstring).

    Args:
        in_channels: input channels.
        spec: the row's branch widths.
        width_mult: multiplies every branch width. Default: 1.0.

    Shape:
        ``(N, in_channels, H, W) -> (N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, spec: InceptionSpec, width_mult: float = 1.0):
        super().__init__()
        n1, r3, n3, r5, n5, pp = (scaled(c, width_mult) for c in spec[1:])
        self.out_channels = n1 + n3 + n5 + pp
        self.branch1 = _conv_relu(in_channels, n1, 1)
        self.branch2 = nn.Sequential(_conv_relu(in_channels, r3, 1), _conv_relu(r3, n3, 3))
        self.branch3 = nn.Sequential(_conv_relu(in_channels, r5, 1), _conv_relu(r5, n5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     _conv_relu(in_channels, pp, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (N, n1x1 + n3x3 + n5x5 + pool_proj, H, W)


class _AuxClassifier(nn.Module):
    """Auxiliary head on 4a and 4d: 5x5/3 avg pool, 1x1 conv 128, FC 1024, dropout 0.7, FC."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)  # = 5x5 stride 3 average pooling on 14x14 maps
        self.conv = _conv_relu(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x))  # (N, 128, 4, 4)
        x = self.dropout(self.relu(self.fc1(torch.flatten(x, 1))))  # (N, 1024)
        return self.fc2(x)  # (N, num_classes)


class GoogLeNet(nn.Module):
    """GoogLeNet for 224x224 inputs.

    Stem (paper's table, first rows)::

        conv 7x7/2, 64        -> 112x112x64
        max pool 3x3/2        -> 56x56x64,   LRN
        conv 1x1, 64 (reduce) then conv 3x3/1, 192 -> 56x56x192,  LRN
        max pool 3x3/2        -> 28x28x192

    then the rows of ``table`` (default :data:`INCEPTION_V1`), 7x7 average pooling, dropout
    40% and a linear layer. Max pools use ``ceil_mode=True`` so the sizes halve exactly
    (112 -> 56 -> 28 -> 14 -> 7).

    Args:
        num_classes: outputs of the linear layer. Default: 1000.
        in_channels: input channels. Default: 3.
        aux_logits: add the two auxiliary classifiers (after 4a and 4d); in training mode
            ``forward`` then returns ``(logits, aux1, aux2)``, in eval mode the logits only.
            Default: False.
        width_mult: multiplies every conv width. Default: 1.0.
        dropout: drop probability before the linear layer. Default: 0.4.
        lrn: local response normalization in the stem, as in the paper. Default: True.
        table: the inception rows and "M" pools. Default: :data:`INCEPTION_V1`.

    Shape:
        Input ``(N, in_channels, H, W)``; output ``(N, num_classes)``.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        aux_logits: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.4,
        lrn: bool = True,
        table: list[InceptionSpec | str] | None = None,
    ):
        super().__init__()
        table = INCEPTION_V1 if table is None else table
        c64, c192 = scaled(64, width_mult), scaled(192, width_mult)

        def norm() -> nn.Module:
            return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0) if lrn else nn.Identity()

        self.stem = nn.Sequential(
            _conv_relu(in_channels, c64, 7, stride=2),  # (N, 64, 112, 112)
            nn.MaxPool2d(3, stride=2, ceil_mode=True),  # (N, 64, 56, 56)
            norm(),
            _conv_relu(c64, c64, 1),
            _conv_relu(c64, c192, 3),  # (N, 192, 56, 56)
            norm(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),  # (N, 192, 28, 28)
        )
        self.blocks = nn.ModuleDict()
        c_in = c192
        n_pools = 0
        aux_in: dict[str, int] = {}
        for row in table:
            if row == "M":
                n_pools += 1
                self.blocks[f"pool{n_pools}"] = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            else:
                block = Inception(c_in, row, width_mult)
                self.blocks[f"inception{row.name}"] = block
                c_in = block.out_channels
                if row.name in ("4a", "4d"):
                    aux_in[row.name] = c_in
        self.aux_logits = aux_logits
        if aux_logits:
            if set(aux_in) != {"4a", "4d"}:
                raise ValueError("GoogLeNet: aux_logits needs rows named '4a' and '4d'")
            self.aux1 = _AuxClassifier(aux_in["4a"], num_classes)
            self.aux2 = _AuxClassifier(aux_in["4d"], num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # = 7x7 average pooling at 224x224
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor):
        x = self.stem(x)  # (N, 192, 28, 28)
        aux = []
        for name, block in self.blocks.items():
            x = block(x)
            if self.aux_logits and self.training and name in ("inception4a", "inception4d"):
                aux.append((self.aux1 if name == "inception4a" else self.aux2)(x))
        x = self.avgpool(x)  # (N, 1024, 1, 1)
        logits = self.fc(self.dropout(torch.flatten(x, 1)))  # (N, num_classes)
        if aux:
            return logits, *aux
        return logits
