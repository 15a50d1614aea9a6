"""Stacked hourglass networks (Newell et al., 2016) with intermediate supervision.

An hourglass is a recursive U-shape: at each scale a residual branch keeps the current
resolution while the other branch pools, recurses one scale down, and is upsampled
(nearest neighbour) and *added* back. Stacking hourglasses lets later ones refine the
predictions of earlier ones; every stack ends in a prediction head, and all predictions are
returned so each can get its own loss ("intermediate supervision").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HourglassResidual", "Hourglass", "StackedHourglass"]


class HourglassResidual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1 (C/2), BN-ReLU-3x3 (C/2), BN-ReLU-1x1 (C),
    plus a 1x1 conv shortcut when the channel count changes.

    Shape: ``(N, in_channels, H, W) -> (N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = max(1, out_channels // 2)
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, out_channels, 1),
        )
        self.skip = (nn.Identity() if in_channels == out_channels
                     else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``order`` downsamplings at a constant width.

    Shape: ``(N, channels, H, W) -> (N, channels, H, W)``.
    """

    def __init__(self, order: int, channels: int):
        super().__init__()
        if order < 1:
            raise ValueError(f"Hourglass: order must be >= 1, got {order}")
        self.upper = HourglassResidual(channels, channels)
        self.pool = nn.MaxPool2d(2, 2)
        self.low1 = HourglassResidual(channels, channels)
        self.low2 = (Hourglass(order - 1, channels) if order > 1
                     else HourglassResidual(channels, channels))
        self.low3 = HourglassResidual(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upper(x)  # (N, C, H, W)
        low = self.low3(self.low2(self.low1(self.pool(x))))  # (N, C, H/2, W/2)
        return up + F.interpolate(low, size=up.shape[-2:], mode="nearest")  # (N, C, H, W)


class StackedHourglass(nn.Module):
    """``n_stacks`` hourglasses, each followed by a prediction head.

    Stem: 7x7 stride-2 conv (64) - BN - ReLU, residual to 128, 2x2 max pool, residual,
    residual to ``channels``: the hourglasses work at a quarter of the input resolution.
    After stack ``i`` the features and the prediction are mapped back to ``channels`` by 1x1
    convs and added to the stack's input, which feeds stack ``i + 1``.

    Args:
        num_classes: heatmaps per prediction (16 body joints in the paper). Default: 16.
        in_channels: input channels. Default: 3.
        n_stacks: number of hourglasses (8 in the paper). Default: 2.
        channels: width inside the hourglasses (256 in the paper). Default: 256.
        order: downsamplings inside each hourglass. Default: 4.

    Shape:
        Input ``(N, in_channels, H, W)``; output a list of ``n_stacks`` tensors
        ``(N, num_classes, H/4, W/4)``, earliest stack first (the last one is the final
        prediction).
    """

    def __init__(
        self,
        num_classes: int = 16,
        in_channels: int = 3,
        *,
        n_stacks: int = 2,
        channels: int = 256,
        order: int = 4,
    ):
        super().__init__()
        if n_stacks < 1:
            raise ValueError(f"StackedHourglass: n_stacks must be >= 1, got {n_stacks}")
        c_stem = min(64, channels)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 7, stride=2, padding=3),  # (N, 64, H/2, W/2)
            nn.BatchNorm2d(c_stem),
            nn.ReLU(),
            HourglassResidual(c_stem, 2 * c_stem),
            nn.MaxPool2d(2, 2),  # (N, 128, H/4, W/4)
            HourglassResidual(2 * c_stem, 2 * c_stem),
            HourglassResidual(2 * c_stem, channels),  # (N, channels, H/4, W/4)
        )
        self.hourglasses = nn.ModuleList(Hourglass(order, channels) for _ in range(n_stacks))
        self.features = nn.ModuleList(
            nn.Sequential(
                HourglassResidual(channels, channels),
                nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(),
            )
            for _ in range(n_stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(channels, num_classes, 1) for _ in range(n_stacks))
        self.merge_features = nn.ModuleList(
            nn.Conv2d(channels, channels, 1) for _ in range(n_stacks - 1))
        self.merge_preds = nn.ModuleList(
            nn.Conv2d(num_classes, channels, 1) for _ in range(n_stacks - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)  # (N, C, H/4, W/4)
        preds = []
        for i, (hg, feat, head) in enumerate(
            zip(self.hourglasses, self.features, self.heads, strict=True)
        ):
            y = feat(hg(x))  # (N, C, H/4, W/4)
            pred = head(y)  # (N, num_classes, H/4, W/4)
            preds.append(pred)
            if i < len(self.merge_features):
                x = x + self.merge_features[i](y) + self.merge_preds[i](pred)
        return preds
