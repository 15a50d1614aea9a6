# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Homework 4: A residual block and a U-Net in PyTorch
#
# Chapters 07 and 08 use the package's ResNets and U-Net. Here you build their parts yourself
# in PyTorch and train a small U-Net to segment shapes:
#
# | question | what you write | points |
# | --- | --- | --- |
# | q1 | `ResidualBlock`: the basic block of ResNet-18/34, with a projection shortcut | 8 |
# | q2 | `SmallUNet`: a two-level U-Net with skip connections, exact architecture given | 8 |
# | q3 | `train_and_segment`: train your U-Net; graded by IoU on held-out images | 8 |
#
# **Rules.** Use PyTorch (`torch`, `torch.nn`, `torch.nn.functional`). The package's models
# (`d2lcnn.torch.models`) and `torchvision` are blocked when your notebook is graded. Write
# your code where it says `# YOUR CODE HERE`; do not rename the classes or functions or change
# their arguments. Run `check("qN")` after each answer. The hidden tests check more shapes,
# the exact parameter counts, the block's behaviour, and q3's segmentation quality on images
# you never see. When you are done, save the notebook and run `submit()`.

# %%
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from d2lcnn.data import synthetic_segmentation

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw4-resnet-unet", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# ## q1. The residual block
#
# A basic ResNet block computes $y = \mathrm{ReLU}(F(x) + s(x))$ with the residual branch
#
# $$F(x) = \mathrm{BN}\Big(\mathrm{conv}_{3\times3}\big(\mathrm{ReLU}(\mathrm{BN}(
#   \mathrm{conv}_{3\times3,\ \text{stride}}(x)))\big)\Big)$$
#
# (both convolutions with padding 1 and **no bias**: the BatchNorm after each has its own
# shift). The shortcut $s$ is the identity when the shapes agree (`stride == 1` and
# `in_channels == out_channels`), and otherwise a projection: a $1\times1$ convolution with
# the block's stride and no bias, followed by BatchNorm. Name the last BatchNorm of the
# residual branch `self.bn2` (ResNet implementations often initialise its $\gamma$ to zero so
# that every block starts as the identity; a hidden test does exactly that).
#
# With $C$ channels and the identity shortcut the block has $2 \cdot 9C^2$ weights and
# $2 \cdot 2C$ BatchNorm parameters: $18C^2 + 4C$, e.g. 73,984 for $C = 64$.

# %% tags=["answer", "q1"]
class ResidualBlock(nn.Module):
    """``ResidualBlock(in_channels, out_channels, stride=1)``: (N, C_in, H, W) ->
    (N, C_out, ceil(H / stride), ceil(W / stride))."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = F.relu(self.bn1(self.conv1(x)))  # (N, C_out, H', W')
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))
        ### END SOLUTION


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## q2. A small U-Net
#
# Build exactly this network (padded convolutions, so the output has the input's size; `b` is
# the base width):
#
# | part | layers | output for a (N, 1, 32, 32) input, b = 8 |
# | --- | --- | --- |
# | `enc1` | DoubleConv(in_channels, b) | (N, 8, 32, 32) |
# | `enc2` | MaxPool 2, DoubleConv(b, 2b) | (N, 16, 16, 16) |
# | `bottleneck` | MaxPool 2, DoubleConv(2b, 4b) | (N, 32, 8, 8) |
# | `up2` | ConvTranspose2d(4b, 2b, kernel 2, stride 2), with bias | (N, 16, 16, 16) |
# | `dec2` | concat [enc2 out, up2 out] (channels), DoubleConv(4b, 2b) | (N, 16, 16, 16) |
# | `up1` | ConvTranspose2d(2b, b, kernel 2, stride 2), with bias | (N, 8, 32, 32) |
# | `dec1` | concatenate [enc1 output, up1 output], DoubleConv(2b, b) | (N, 8, 32, 32) |
# | `head` | Conv2d(b, num_classes, kernel 1), with bias | (N, num_classes, 32, 32) |
#
# where DoubleConv(i, o) is conv 3x3 (padding 1, no bias), BatchNorm, ReLU, conv 3x3 (padding
# 1, no bias), BatchNorm, ReLU. The hidden tests count the parameters exactly. The skip
# connections give the decoder the encoder's full-resolution features: without them the
# $8\times8$ bottleneck would have to carry every boundary.

# %% tags=["answer", "q2"]
class SmallUNet(nn.Module):
    """``SmallUNet(in_channels=1, num_classes=2, base=8)``: (N, C, H, W) -> (N, K, H, W)
    for H and W divisible by 4."""

    def __init__(self, in_channels=1, num_classes=2, base=8):
        super().__init__()
        ### BEGIN SOLUTION
        def double_conv(i, o):
            return nn.Sequential(
                nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
            )

        b = base
        self.enc1 = double_conv(in_channels, b)
        self.enc2 = double_conv(b, 2 * b)
        self.bottleneck = double_conv(2 * b, 4 * b)
        self.up2 = nn.ConvTranspose2d(4 * b, 2 * b, 2, stride=2)
        self.dec2 = double_conv(4 * b, 2 * b)
        self.up1 = nn.ConvTranspose2d(2 * b, b, 2, stride=2)
        self.dec1 = double_conv(2 * b, b)
        self.head = nn.Conv2d(b, num_classes, 1)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        e1 = self.enc1(x)  # (N, b, H, W)
        e2 = self.enc2(F.max_pool2d(e1, 2))  # (N, 2b, H/2, W/2)
        m = self.bottleneck(F.max_pool2d(e2, 2))  # (N, 4b, H/4, W/4)
        d2 = self.dec2(torch.cat([e2, self.up2(m)], dim=1))  # (N, 2b, H/2, W/2)
        d1 = self.dec1(torch.cat([e1, self.up1(d2)], dim=1))  # (N, b, H, W)
        return self.head(d1)  # (N, K, H, W)
        ### END SOLUTION


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## q3. Train it
#
# `synthetic_segmentation` draws gray images of disks, rectangles and triangles on textured
# backgrounds, with a mask per pixel (0 background, 1–3 the shape). Here we only ask for
# foreground vs background: the target is `masks > 0`.
#
# Write `train_and_segment(x_train, y_train, x_test)`: `x_*` are float32 `(N, 1, 32, 32)`
# images, `y_train` int64 `(N, 32, 32)` masks with values 0 (background) and 1 (shape). Train
# a `SmallUNet(1, 2)` (any base width, optimizer and schedule you like) and return the
# predicted mask of every test image, an integer array `(len(x_test), 32, 32)` of 0s and 1s.
# Use `torch.manual_seed(0)` for reproducibility and remember `model.eval()` before
# predicting (q1's BatchNorm!). The grader draws the images itself, with a seed you do not
# have: it trains your network on 320 of them and scores the intersection-over-union of the
# foreground on 200 others:
# $\mathrm{IoU} = |P \cap T| / |P \cup T|$, full marks from 0.8, partial credit from 0.5.
# The call must finish within 120 s on one CPU core.

# %% tags=["answer", "q3"]
def train_and_segment(x_train, y_train, x_test):
    """Train a SmallUNet on (x_train, y_train) and return 0/1 masks for x_test."""
    ### BEGIN SOLUTION
    torch.manual_seed(0)
    model = SmallUNet(1, 2, base=8)
    x = torch.as_tensor(x_train, dtype=torch.float32)
    y = torch.as_tensor(y_train, dtype=torch.int64)
    epochs, batch_size = 12, 32
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1e-2, total_steps=epochs * -(-len(x) // batch_size))
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=g).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(x_test, dtype=torch.float32))
    return logits.argmax(dim=1).numpy().astype(np.int64)
    ### END SOLUTION


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# Try it on your own split (the grader's held-out images are drawn with a seed you do not
# have):

# %% tags=["demo"]
x_all, m_all = synthetic_segmentation(400, size=32, seed=0)
y_all = (m_all > 0).astype(np.int64)
try:
    start = time.perf_counter()
    pred = train_and_segment(x_all[:320], y_all[:320], x_all[320:])
    truth = y_all[320:] > 0
    iou = np.logical_and(pred > 0, truth).sum() / np.logical_or(pred > 0, truth).sum()
    print(f"validation IoU {iou:.3f} in {time.perf_counter() - start:.0f} s")
except NotImplementedError:
    print("finish q2 and q3 first")

# %% [markdown]
# ## Submit
#
# Save the notebook (Ctrl+S), then run the next cell and upload the file it names.

# %%
# submit()

# %% tags=["tests", "public"]
import torch
import torch.nn.functional as F


def _n_params(module):
    return int(sum(p.numel() for p in module.parameters()))


@case("q1", "identity shortcut: shape and 18C^2 + 4C parameters", points=2,
      hint="two 3x3 convs without bias, each followed by BatchNorm; the shortcut is free")
def _(ns, rng):
    torch.manual_seed(0)
    block = ns.ResidualBlock(16, 16)
    y = block(torch.as_tensor(rng.standard_normal((2, 16, 8, 8)), dtype=torch.float32))
    return {"shape": list(y.shape), "params": _n_params(block)}


@case("q2", "output shape for a 32x32 image, base 8", points=2,
      hint="concatenate [skip, upsampled] along dim=1 before each decoder DoubleConv")
def _(ns, rng):
    torch.manual_seed(0)
    net = ns.SmallUNet(1, 2, base=8)
    return list(net(torch.zeros(2, 1, 32, 32)).shape)


def _masks_overlap(min_iou):
    """Checker: 0/1 masks of the expected shape whose foreground overlaps the reference
    solution's (the expected output) with an IoU of at least ``min_iou``."""

    def check(got, expected):
        pred, ref = np.asarray(got), np.asarray(expected) > 0
        if pred.shape != ref.shape:
            return False, f"expected masks of shape {ref.shape}, got shape {pred.shape}"
        if pred.dtype.kind not in "iub" or not np.isin(pred, (0, 1)).all():
            return False, "expected integer masks of 0s and 1s"
        iou = float(np.logical_and(pred > 0, ref).sum() / np.logical_or(pred > 0, ref).sum())
        return iou >= min_iou, (f"foreground IoU {iou:.2f} with the reference solution's "
                                f"masks (needs {min_iou:.2f})")

    check.__name__ = f"masks_overlap({min_iou})"
    return check


# The reference solution trained on these 160 images gets an IoU of about 0.75 against the
# true masks of the 16 others; all-background scores 0 and all-foreground about 0.2.
@case("q3", "returns a 0/1 mask per test image that finds the shapes", points=1, timeout=150,
      checker=_masks_overlap(0.4),
      hint="return logits.argmax(dim=1) as int64 numpy, after model.eval()")
def _(ns, rng):
    from d2lcnn.data import synthetic_segmentation

    x, m = synthetic_segmentation(176, size=32, seed=5)
    return np.asarray(ns.train_and_segment(x[:160], (m[:160] > 0).astype(np.int64),
                                           x[160:]))


# %% tags=["tests", "hidden"]
@case("q1", "projection shortcut: stride 2, 64 -> 128 channels", points=2)
def _(ns, rng):
    torch.manual_seed(0)
    block = ns.ResidualBlock(64, 128, stride=2)
    y = block(torch.zeros(1, 64, 9, 9))
    return {"shape": list(y.shape), "params": _n_params(block)}


@case("q1", "channel change at stride 1 needs a projection too", points=1)
def _(ns, rng):
    torch.manual_seed(0)
    block = ns.ResidualBlock(8, 24)
    y = block(torch.zeros(3, 8, 5, 7))
    return {"shape": list(y.shape), "params": _n_params(block)}


@case("q1", "with bn2's gamma at zero the block is ReLU(x)", points=2,
      hint="the identity shortcut adds x itself; the final ReLU comes after the sum")
def _(ns, rng):
    torch.manual_seed(0)
    block = ns.ResidualBlock(6, 6)
    with torch.no_grad():
        block.bn2.weight.zero_()
    x = torch.as_tensor(rng.standard_normal((2, 6, 5, 5)), dtype=torch.float32)
    block.eval()
    with torch.no_grad():
        y = block(x)
    return y.numpy()  # compared in the grader with the solution's output, ReLU(x)


@case("q1", "the identity shortcut passes the gradient through unchanged", points=1)
def _(ns, rng):
    torch.manual_seed(0)
    block = ns.ResidualBlock(4, 4)
    with torch.no_grad():
        block.bn2.weight.zero_()
    x = torch.ones(1, 4, 6, 6, requires_grad=True)
    block(x).sum().backward()
    # ReLU'(1) = 1 on the shortcut, so x.grad is all ones; and bn2's shift receives one per
    # position (36 per channel) whatever the random weights are.
    return {"x": x.grad.numpy(), "bn2 bias": block.bn2.bias.grad.numpy()}


@case("q2", "exact parameter counts for base 8 and base 4 with 3 input channels", points=4)
def _(ns, rng):
    torch.manual_seed(0)
    return [_n_params(ns.SmallUNet(1, 2, base=8)), _n_params(ns.SmallUNet(3, 5, base=4))]


@case("q2", "rectangular input, 4 classes, base 4", points=2)
def _(ns, rng):
    torch.manual_seed(0)
    net = ns.SmallUNet(1, 4, base=4).eval()
    with torch.no_grad():
        return list(net(torch.zeros(1, 1, 24, 40)).shape)


@case("q3", "foreground IoU on 200 held-out images", points=7, timeout=200,
      checker="holdout_iou", inputs="segmentation_data")
def _(ns, rng, sent):
    return np.asarray(ns.train_and_segment(sent["x_train"], sent["y_train"], sent["x_test"]))


# %% tags=["autograder"]
settings(
    forbid=["d2lcnn.torch.models", "torchvision"],
    preload=["torch"],
    case_timeout=60,
    cell_timeout=200,
    memory_mb=4096,
)


def segmentation_data(rng):
    """q3's data, made in the grader with a seed drawn from the bundle's secret (the sandbox
    has synthetic_segmentation but not the seed): 320 training images and masks and 200
    test images go to the sandbox; the test masks stay here."""
    from d2lcnn.data import synthetic_segmentation

    x, m = synthetic_segmentation(520, size=32, seed=int(rng.integers(0, 2**62)))
    y = (m > 0).astype(np.int64)
    return {"x_train": x[:320], "y_train": y[:320], "x_test": x[320:]}, y[320:] > 0


def holdout_iou(got, expected, truth):
    """Foreground IoU of the returned masks against masks that never left the grader."""
    pred = np.asarray(got)
    if pred.shape != truth.shape:
        return False, f"expected masks of shape {truth.shape}, got shape {pred.shape}"
    if pred.dtype.kind not in "iub":
        return False, f"expected integer masks, got dtype {pred.dtype}"
    iou = float(np.logical_and(pred > 0, truth).sum() / np.logical_or(pred > 0, truth).sum())
    score = min(1.0, max(0.0, (iou - 0.5) / (0.8 - 0.5)))
    return score, f"held-out IoU {iou:.3f} (full marks from 0.800, none below 0.500)"
