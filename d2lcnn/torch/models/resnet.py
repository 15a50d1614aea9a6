"""ResNet (He et al., 2015) for ImageNet, its pre-activation variant (He et al., 2016), and
the 6n+2-layer ResNets and plain nets for CIFAR-size inputs.

ImageNet ResNets (224x224 input)::

    conv1    7x7, 64, stride 2          -> 112x112
             3x3 max pool, stride 2     -> 56x56
    conv2_x  blocks at 64 (x4 for bottlenecks)   -> 56x56
    conv3_x  blocks at 128, first stride 2       -> 28x28
    conv4_x  blocks at 256, first stride 2       -> 14x14
    conv5_x  blocks at 512, first stride 2       -> 7x7
             global average pool, FC num_classes

    depth   block       blocks per stage   multiply-adds (paper)
    18      BasicBlock  2, 2, 2, 2         1.8e9
    34      BasicBlock  3, 4, 6, 3         3.6e9
    50      Bottleneck  3, 4, 6, 3         3.8e9
    101     Bottleneck  3, 4, 23, 3        7.6e9
    152     Bottleneck  3, 8, 36, 3        11.3e9

Shortcuts are identities, except where the shape changes: there a 1x1 conv (with the
block's stride) and BatchNorm project (the paper's option B). A BasicBlock at width C with
unchanged shape has ``2 * 9 C^2`` conv weights (no conv biases: BatchNorm's shift replaces
them) and ``2 * 2C`` BatchNorm parameters: ``18 C^2 + 4 C``.

``stride_in_1x1`` chooses where a downsampling Bottleneck strides: on its first 1x1 conv as
in the paper (True, default, "ResNet v1") or on the 3x3 conv as in torchvision ("v1.5",
slightly more accurate and about 0.3 G MACs more for ResNet-50).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "preact_resnet18",
    "preact_resnet50",
    "CifarResNet",
    "resnet20",
    "resnet32",
    "resnet56",
    "resnet110",
    "plain20",
    "plain32",
    "plain56",
]


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """3x3 conv, padding 1, no bias (a BatchNorm follows)."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """1x1 conv, no bias."""
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


def _projection(c_in: int, c_out: int, stride: int, bn: bool = True) -> nn.Module | None:
    """Option B shortcut: a strided 1x1 conv (+ BN) where the shape changes, else None."""
    if stride == 1 and c_in == c_out:
        return None
    layers: list[nn.Module] = [conv1x1(c_in, c_out, stride)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.

    Args:
        in_channels: input channels.
        channels: width of both convs (the output width; ``expansion`` = 1).
        stride: stride of the first conv (2 at the start of a stage). Default: 1.
        residual: add the shortcut (False gives the matching "plain" block). Default: True.
        shortcut: a module for the skip path, or None for the identity. Default: None.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, *,
                 residual: bool = True, shortcut: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.residual = residual
        self.shortcut = shortcut if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, C, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (N, C, H/s, W/s)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 (reduce) - 3x3 - 1x1 (expand x4), each followed by BN, ReLU after the sum.

    Args: as :class:`BasicBlock`, where ``channels`` is the bottleneck width and the output
    has ``4 * channels``; plus ``stride_in_1x1``: stride on the first 1x1 conv (paper, True)
    or on the 3x3 conv (torchvision, False). Default: True.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, *,
                 residual: bool = True, shortcut: nn.Module | None = None,
                 stride_in_1x1: bool = True):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_channels, channels, s1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, s3)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU()
        self.residual = residual
        self.shortcut = shortcut if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, C, H/s, W/s)
        out = self.relu(self.bn2(self.conv2(out)))  # (N, C, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (N, 4C, H/s, W/s)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(out)


class PreActBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus the shortcut.

    Nothing follows the addition, so a block can add negative values too and the identity
    path stays clean from input to output. A projection shortcut reads the pre-activated
    input, as in He et al. (2016).
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, *,
                 residual: bool = True, shortcut: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.relu = nn.ReLU()
        self.residual = residual
        self.shortcut = shortcut if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv1(pre)  # (N, C, H/s, W/s)
        out = self.conv2(self.relu(self.bn2(out)))  # (N, C, H/s, W/s)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(pre))
        return out


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: (BN-ReLU-conv) x 3 with 1x1, 3x3, 1x1 (x4) convs."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, *,
                 residual: bool = True, shortcut: nn.Module | None = None,
                 stride_in_1x1: bool = True):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv1x1(in_channels, channels, s1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, s3)
        self.bn3 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.relu = nn.ReLU()
        self.residual = residual
        self.shortcut = shortcut if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv1(pre)  # (N, C, H/s, W/s)
        out = self.conv2(self.relu(self.bn2(out)))  # (N, C, H/s, W/s)
        out = self.conv3(self.relu(self.bn3(out)))  # (N, 4C, H/s, W/s)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(pre))
        return out


_BOTTLENECKS = (Bottleneck, PreActBottleneck)
_PREACT = (PreActBasicBlock, PreActBottleneck)


class ResNet(nn.Module):
    """An ImageNet-style ResNet: 7x7 stem, max pool, four stages, average pool, FC.

    Args:
        block: :class:`BasicBlock`, :class:`Bottleneck` or a pre-activation block.
        layers: number of blocks in each of the four stages, e.g. ``(2, 2, 2, 2)``.
        num_classes: outputs of the FC layer. Default: 1000.
        in_channels: input channels. Default: 3.
        base_width: width of the stem and of the first stage; stages use 1x, 2x, 4x, 8x.
            Default: 64.
        residual: False drops every shortcut (a plain net of the same depth). Default: True.
        stride_in_1x1: for bottlenecks, stride on the 1x1 conv (paper) or the 3x3 conv
            (torchvision). Default: True.

    With a pre-activation block, the stem keeps its conv-BN-ReLU (the blocks start with
    BN-ReLU of their own and the first one reads the pooled stem output), and a final BN-ReLU
    precedes the average pool because the last block ends with a bare conv.

    Shape:
        Input ``(N, in_channels, H, W)`` (224x224 in the paper); output ``(N, num_classes)``.
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: tuple[int, int, int, int],
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        base_width: int = 64,
        residual: bool = True,
        stride_in_1x1: bool = True,
    ):
        super().__init__()
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"ResNet: layers must be 4 positive counts, got {tuple(layers)}")
        self.conv1 = nn.Conv2d(in_channels, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        extra = {"stride_in_1x1": stride_in_1x1} if block in _BOTTLENECKS else {}
        preact = block in _PREACT
        c_in = base_width
        stages = []
        for i, n in enumerate(layers):
            width = base_width * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                c_out = width * block.expansion
                shortcut = _projection(c_in, c_out, stride, bn=not preact) if residual else None
                blocks.append(block(c_in, width, stride, residual=residual, shortcut=shortcut,
                                    **extra))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.final = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU()) if preact else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer1(x)  # (N, 64e, H/4, W/4), e = block.expansion
        x = self.layer2(x)  # (N, 128e, H/8, W/8)
        x = self.layer3(x)  # (N, 256e, H/16, W/16)
        x = self.layer4(x)  # (N, 512e, H/32, W/32)
        x = self.avgpool(self.final(x))  # (N, 512e, 1, 1)
        return self.fc(torch.flatten(x, 1))  # (N, num_classes)


def _init_weights(model: nn.Module) -> None:
    """He (fan-out) init for convs, BN weight 1 and bias 0: the papers' recipe."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlock x (2, 2, 2, 2)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlock x (3, 4, 6, 3)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50: Bottleneck x (3, 4, 6, 3)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101: Bottleneck x (3, 4, 23, 3)."""
    return ResNet(Bottleneck, (3, 4, 23, 3), **kwargs)


def resnet152(**kwargs) -> ResNet:
    """ResNet-152: Bottleneck x (3, 8, 36, 3)."""
    return ResNet(Bottleneck, (3, 8, 36, 3), **kwargs)


def preact_resnet18(**kwargs) -> ResNet:
    """Pre-activation ResNet-18 (BN-ReLU-conv blocks)."""
    return ResNet(PreActBasicBlock, (2, 2, 2, 2), **kwargs)


def preact_resnet50(**kwargs) -> ResNet:
    """Pre-activation ResNet-50 (BN-ReLU-conv bottlenecks)."""
    return ResNet(PreActBottleneck, (3, 4, 6, 3), **kwargs)


# ----------------------------------------------------------------------------------------
# CIFAR-size ResNets: 6n+2 layers


class _ShortcutA(nn.Module):
    """Option A: parameter-free shortcut that subsamples by ``stride`` and zero-pads the new
    channels (the identity on the old ones), as in the paper's CIFAR experiments."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (N, C_in, H/s, W/s)
        lo = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))  # (N, C_out, H/s, W/s)


class CifarResNet(nn.Module):
    """The 6n+2-layer networks of the ResNet paper's CIFAR-10 section, and their plain twins.

    A 3x3 conv (16 filters), then three stages of n BasicBlocks at 16, 32, 64 filters on
    32x32, 16x16, 8x8 maps (the first block of stages 2 and 3 strides by 2), global average
    pooling and an FC layer: 1 + 6n + 1 weighted layers (n=3: 20, 5: 32, 9: 56, 18: 110).

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110, ...). Default: 20.
        num_classes: outputs of the FC layer. Default: 10.
        in_channels: input channels. Default: 3.
        shortcut: where the shape changes (twice in the network), ``"A"``: subsample and
            zero-pad the channels, no parameters (the paper's CIFAR choice; ResNet-20 has
            269,722 parameters); ``"B"``: a strided 1x1 conv + BN projection (adds 2 x (conv +
            BN) = 2,752 parameters at base width 16). Default: ``"A"``.
        residual: False removes every shortcut, giving the matching plain net. Default: True.
        base_width: width of the first stage (the stages use 1x, 2x, 4x). Default: 16.

    Shape:
        Input ``(N, in_channels, H, W)`` (32x32 on CIFAR); output ``(N, num_classes)``.
    """

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        shortcut: str = "A",
        residual: bool = True,
        base_width: int = 16,
    ):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n+2 with n >= 1, got {depth}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' or 'B', got {shortcut!r}")
        n = (depth - 2) // 6
        self.conv1 = conv3x3(in_channels, base_width)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU()
        c_in = base_width
        stages = []
        for i in range(3):
            width = base_width * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                skip = None
                if residual and (stride != 1 or c_in != width):
                    skip = (_ShortcutA(c_in, width, stride) if shortcut == "A"
                            else _projection(c_in, width, stride))
                blocks.append(BasicBlock(c_in, width, stride, residual=residual, shortcut=skip))
                c_in = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 16, H, W)
        x = self.layer1(x)  # (N, 16, H, W)
        x = self.layer2(x)  # (N, 32, H/2, W/2)
        x = self.layer3(x)  # (N, 64, H/4, W/4)
        x = self.avgpool(x)  # (N, 64, 1, 1)
        return self.fc(torch.flatten(x, 1))  # (N, num_classes)


def resnet20(**kwargs) -> CifarResNet:
    """CIFAR ResNet-20 (n=3)."""
    return CifarResNet(20, **kwargs)


def resnet32(**kwargs) -> CifarResNet:
    """CIFAR ResNet-32 (n=5)."""
    return CifarResNet(32, **kwargs)


def resnet56(**kwargs) -> CifarResNet:
    """CIFAR ResNet-56 (n=9)."""
    return CifarResNet(56, **kwargs)


def resnet110(**kwargs) -> CifarResNet:
    """CIFAR ResNet-110 (n=18)."""
    return CifarResNet(110, **kwargs)


def plain20(**kwargs) -> CifarResNet:
    """The 20-layer plain net: ResNet-20 without shortcuts."""
    return CifarResNet(20, residual=False, **kwargs)


def plain32(**kwargs) -> CifarResNet:
    """The 32-layer plain net."""
    return CifarResNet(32, residual=False, **kwargs)


def plain56(**kwargs) -> CifarResNet:
    """The 56-layer plain net."""
    return CifarResNet(56, residual=False, **kwargs)
