"""U-Net (Ronneberger et al., 2015): a contracting path, an expanding path, and skip
connections that concatenate encoder maps onto decoder maps at the same scale.

With ``padding=False`` (the paper) every 3x3 conv loses a pixel on each side, so an encoder
map is larger than the decoder map it joins; it is center-cropped first ("crop and
concatenate"). With ``padding=True`` the convs keep the size, and for inputs whose sides are
multiples of ``2 ** depth`` the output has the input's size.
"""

from __future__ import annotations

import torch
from torch import nn

from d2lcnn.torch.models._common import scaled

__all__ = ["UNet", "center_crop", "crop_amounts", "unet_output_size"]


def crop_amounts(size: int, target: int) -> tuple[int, int]:
    """Pixels to cut from the (top, bottom) or (left, right) to go from ``size`` to ``target``.

    The difference is split evenly; when it is odd the extra pixel is cut from the bottom
    (or right) side: ``crop_amounts(7, 4) == (1, 2)``.
    """
    if target > size or target < 0:
        raise ValueError(f"crop_amounts: target must be in [0, {size}], got {target}")
    diff = size - target
    return diff // 2, diff - diff // 2


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dimensions of ``x`` to ``size = (H, W)`` around the center.

    Odd differences remove one more row at the bottom and one more column at the right (see
    :func:`crop_amounts`), so the kept window starts at ``((H_in - H) // 2, (W_in - W) // 2)``.
    """
    h_in, w_in = x.shape[-2:]
    top, _ = crop_amounts(h_in, size[0])
    left, _ = crop_amounts(w_in, size[1])
    return x[..., top : top + size[0], left : left + size[1]]


def unet_output_size(size: int, depth: int = 4, padding: bool = True) -> int:
    """Output side length of :class:`UNet` for an input side of ``size``.

    Each level's two 3x3 convs remove 4 pixels when unpadded; each max pool halves (floor);
    each up-convolution doubles. ``unet_output_size(572, 4, padding=False) == 388``.
    """
    loss = 0 if padding else 4
    steps = [lambda s: (s - loss) // 2] * depth + [lambda s: s - loss]  # down, bottom
    steps += [lambda s: 2 * s - loss] * depth  # up
    original = size
    for step in steps:
        size = step(size)
        if size <= 0:
            raise ValueError(
                f"unet_output_size: input size {original} is too small for depth {depth} "
                f"(padding={padding})"
            )
    return size


class _DoubleConv(nn.Sequential):
    """(3x3 conv [-BN] -ReLU) x 2."""

    def __init__(self, c_in: int, c_out: int, padding: bool, batch_norm: bool):
        layers: list[nn.Module] = []
        for c in (c_in, c_out):
            layers.append(nn.Conv2d(c, c_out, 3, padding=int(padding), bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU())
        super().__init__(*layers)


class UNet(nn.Module):
    """A U-Net with configurable depth and width.

    Level ``i`` (0 = top) has ``base_width * 2**i`` channels; there are ``depth`` max pools
    on the way down and ``depth`` 2x upsamplings on the way up; a final 1x1 conv maps to
    ``num_classes`` score maps. The paper's network is ``UNet(1, 2, depth=4, base_width=64,
    padding=False)``: a 572x572 tile gives a 388x388 map.

    Args:
        in_channels: input channels. Default: 1.
        num_classes: output channels (one score map per class). Default: 2.
        depth: number of downsamplings. Default: 4.
        base_width: channels of the top level. Default: 64.
        padding: pad the 3x3 convs (True) or not (False, the paper, with crop-and-concatenate).
            Default: True.
        upsample: ``"transpose"`` (2x2 stride-2 transposed conv halving the channels, the
            paper's up-convolution) or ``"bilinear"`` (bilinear 2x upsampling then a 1x1 conv
            halving the channels). Default: ``"transpose"``.
        batch_norm: BatchNorm after every 3x3 conv (not in the paper). Default: False.

    Shape:
        Input ``(N, in_channels, H, W)``; output ``(N, num_classes, H', W')`` with
        ``H' = unet_output_size(H, depth, padding)`` (``H' = H`` when padded and ``H`` is a
        multiple of ``2**depth``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        *,
        depth: int = 4,
        base_width: int = 64,
        padding: bool = True,
        upsample: str = "transpose",
        batch_norm: bool = False,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet: depth must be >= 1, got {depth}")
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"UNet: upsample must be 'transpose' or 'bilinear', got {upsample!r}")
        widths = [scaled(base_width, 2**i) for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = in_channels
        for w in widths[:-1]:
            self.down.append(_DoubleConv(c_in, w, padding, batch_norm))
            c_in = w
        self.pool = nn.MaxPool2d(2, 2)
        self.bottom = _DoubleConv(c_in, widths[-1], padding, batch_norm)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w_low, w in zip(reversed(widths[1:]), reversed(widths[:-1]), strict=True):
            if upsample == "transpose":
                self.up.append(nn.ConvTranspose2d(w_low, w, 2, stride=2))
            else:
                self.up.append(nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(w_low, w, 1),
                ))
            self.dec.append(_DoubleConv(2 * w, w, padding, batch_norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)  # (N, w_i, H_i, W_i)
            skips.append(x)
            x = self.pool(x)  # (N, w_i, H_i // 2, W_i // 2)
        x = self.bottom(x)  # (N, w_depth, h, w)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = up(x)  # (N, w_i, 2h, 2w)
            skip = center_crop(skip, x.shape[-2:])  # (N, w_i, 2h, 2w)
            x = dec(torch.cat([skip, x], dim=1))  # (N, 2 w_i, ...) -> (N, w_i, ...)
        return self.head(x)  # (N, num_classes, H', W')
