# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Residual Networks in Depth, U-Nets and Hourglass Networks
#
# The case studies ended with a surprise: ResNet won ImageNet in 2015 with 152 layers, at a
# time when networks a fifth as deep were hard to train, and all it changed was to add each
# block's input to its output. This chapter asks why that works. We look at what goes wrong
# in a deep network *without* the shortcut (its gradients become noise, and it trains worse
# than a shallower one), write the residual equations and unravel them into an ensemble of
# paths, see why the order of operations inside a block matters, and watch the activations'
# variance explode with depth until normalization stops it.
#
# The second half turns the same idea, connections that skip across layers, to networks
# that output an image instead of a label. A **U-Net** shrinks an image to a small map and
# grows it back, concatenating the fine maps from the way down onto the coarse maps on the
# way up; we build it, crop and concatenate as the original paper does, and train a small
# one to segment shapes. A **stacked hourglass** network repeats the U-shape several times
# and supervises every repetition. The chapter ends with a question that every model in it
# raises: they all have far more parameters than training examples. Why do they work at all?
#
# Every number in the text is computed below and checked by an `assert` in the cell that
# prints it. The models come from `d2lcnn.torch.models`, training from `d2lcnn.train`, the
# segmentation metrics from `d2lcnn.metrics`.

# %%
from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from torch import nn

from d2lcnn import torch as td
from d2lcnn.data import SEGMENTATION_CLASSES, load_dataset, make_loader, synthetic_segmentation
from d2lcnn.metrics import iou, mean_iou, pixel_accuracy
from d2lcnn.plots import show_images
from d2lcnn.summary import summary
from d2lcnn.torch.models import (
    BasicBlock,
    CifarResNet,
    Hourglass,
    PreActBasicBlock,
    PreActBottleneck,
    ResNet,
    StackedHourglass,
    UNet,
    center_crop,
    crop_amounts,
    resnet18,
    resnet50,
    resnet152,
    unet_output_size,
    vgg16,
)
from d2lcnn.train import fit, predict, seed_everything

gens = seed_everything(0)  # torch's global seed (weight init) and explicit generators
rng = gens.numpy  # every NumPy random array in this chapter comes from here
device = td.device("auto")  # CUDA if present, else MPS, else the CPU
# The networks trained here are small: on a CPU one thread is about as fast as several, and
# it does not slow to a crawl when other programs compete for the cores.
torch.set_num_threads(1)


def n_params(model):
    """Number of parameters of a model (on any device, the meta device included)."""
    return sum(p.numel() for p in model.parameters())


def on_meta(factory, *args, **kwargs):
    """Build a model on the meta device: shapes and counts, no memory, no time."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


# %% [markdown]
# ## If ResNet is the answer, what was the question?
#
# ### Shattered gradients
#
# Training follows the gradient, so it helps if the gradient at one input tells us
# something about the gradient at a nearby input. Balduzzi et al. (2017) showed that in deep
# plain networks it does not: as depth grows, the gradient of the output with respect to the
# input becomes so irregular that neighbouring inputs have unrelated gradients. They called
# this *shattering*.
#
# The cleanest way to see it is a network from $\mathbb{R}$ to $\mathbb{R}$: one input $x$,
# one output $y$, and many hidden layers in between. We evaluate $dy/dx$ on a grid of 1001
# points in $[-2, 2]$ for three networks with 200 hidden units per layer:
#
# * a **shallow** net: one hidden layer;
# * a **deep plain** net: 24 hidden layers, $\mathbf{h}_{k+1} = \mathbf{f}_k[\mathbf{h}_k]$;
# * a **deep residual** net: 24 layers too, but $\mathbf{h}_{k+1} = \mathbf{h}_k +
#   \mathbf{f}_k[\mathbf{h}_k]$.
#
# Each layer is $\mathbf{f}_k[\mathbf{h}] = \mathbf{W}_k\, \mathrm{ReLU}(\mathrm{BN}(\mathbf{h}))$
# with He-initialized weights (and BatchNorm shifts $\beta$ drawn from $N(0, 1)$, so that
# the units switch on at different inputs rather than all at the grid's mean). BatchNorm
# uses the statistics of the whole grid, computed once and then frozen (a training-mode
# pass with `momentum=None` stores exactly the batch statistics; `eval()` then uses them),
# so that every point's gradient depends only on that point and one backward pass of the
# summed output gives all 1001 derivatives.

# %%
class Net1D(nn.Module):
    """x (N, 1) -> y (N, 1): a linear layer to `width` units, `depth` layers
    h <- [h +] W ReLU(BN(h)), then BN-ReLU-linear to one output."""

    def __init__(self, depth, width=200, residual=False):
        super().__init__()
        self.first = nn.Linear(1, width)  # default init: kinks spread over [-1, 1]

        def layer(n_out):
            return nn.Sequential(nn.BatchNorm1d(width, momentum=None), nn.ReLU(),
                                 nn.Linear(width, n_out))

        self.layers = nn.ModuleList(layer(width) for _ in range(depth))
        self.last = layer(1)
        self.residual = residual
        for lin in [b[2] for b in self.layers]:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")  # He: Var(w) = 2 / 200
            nn.init.zeros_(lin.bias)
        for bn in [b[0] for b in [*self.layers, self.last]]:
            nn.init.normal_(bn.bias)  # random shifts beta ~ N(0, 1): ReLU kinks spread out

    def forward(self, x):
        h = self.first(x)  # (N, width)
        for f in self.layers:
            h = h + f(h) if self.residual else f(h)  # (N, width)
        return self.last(h)  # (N, 1)


x_grid = torch.linspace(-2, 2, 1001, device=device)[:, None]  # (1001, 1)


def input_gradient(net):
    """dy/dx at every grid point, with BatchNorm statistics of the grid frozen."""
    net.to(device).train()
    with torch.no_grad():
        net(x_grid)  # momentum=None: running stats := the grid's statistics
    net.eval()
    x = x_grid.clone().requires_grad_()
    (g,) = torch.autograd.grad(net(x).sum(), x)  # each y_i depends on x_i only
    return g[:, 0].cpu().numpy()


NETS = {"shallow (1 layer)": dict(depth=0), "plain (24 layers)": dict(depth=24),
        "residual (24 layers)": dict(depth=24, residual=True)}
grads = {}  # name -> the gradients of 3 random initializations
for name, kwargs in NETS.items():
    grads[name] = []
    for seed in range(3):
        torch.manual_seed(seed)
        grads[name].append(input_gradient(Net1D(**kwargs)))

# %%
x_np = x_grid[:, 0].cpu().numpy()
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
for ax, (name, g) in zip(axes, grads.items(), strict=True):
    ax.plot(x_np, g[0], lw=0.7)  # the first initialization
    ax.set(title=name, xlabel="input x", ylabel="dy/dx")
fig.suptitle("Gradient of the output with respect to the input: the deep plain net's is noise")
plt.show()

# %% [markdown]
# The shallow net's gradient is piecewise constant, with one step wherever one of its 200
# hidden units switches on or off. The deep plain net's looks like white noise. The
# residual net of the same depth has a gradient that varies too, but with structure on a
# much larger scale.
#
# To measure "neighbouring gradients are unrelated", use the **autocorrelation** of the
# gradient along the grid, $\rho(\delta) = \operatorname{corr}(g(x), g(x + \delta))$:
# 1 means the gradient a distance $\delta$ away is the same, 0 means it is unrelated. We
# average it over the three random initializations of each network.

# %% tags=["nbval-ignore-output"]
def autocorrelation(g, max_lag):
    """corr(g[i], g[i + lag]) for lag = 0 .. max_lag, along a 1-D array."""
    g = g - g.mean()
    return np.array([np.mean(g[: len(g) - k] * g[k:]) for k in range(max_lag + 1)]) / g.var()


MAX_LAG = 50  # grid steps of 0.004: delta up to 0.2
acf = {}
for name, gs in grads.items():
    acf[name] = np.mean([autocorrelation(g, MAX_LAG) for g in gs], axis=0)
    print(f"{name:22s} autocorrelation at delta = 0.004: {acf[name][1]:+.2f}, "
          f"at 0.04: {acf[name][10]:+.2f}")
assert acf["shallow (1 layer)"][1] > 0.9 and acf["shallow (1 layer)"][10] > 0.8
assert abs(acf["plain (24 layers)"][1]) < 0.3  # neighbours almost unrelated: shattered
assert acf["residual (24 layers)"][1] > 0.8 and acf["residual (24 layers)"][10] > 0.3

# %%
fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
delta = np.arange(MAX_LAG + 1) * float(x_np[1] - x_np[0])
for name, curve in acf.items():
    ax.plot(delta, curve, label=name)
ax.axhline(0, color="0.6", lw=0.8)
ax.set(xlabel="distance between inputs, delta", ylabel="autocorrelation of dy/dx",
       title="Deep plain nets shatter the gradient; residual nets do not")
ax.legend()
plt.show()

# %% [markdown]
# The plain net's gradient is almost uncorrelated even between neighbouring grid points,
# 0.004 apart. The residual net keeps much of its correlation over a distance ten times larger.
# Balduzzi et al. show that in a plain ReLU network the correlation decays exponentially
# with depth, and in a residual network with BatchNorm only like $1/\sqrt{L}$. A gradient
# that is noise tells the optimizer nothing about the loss just a small step away.
#
# ### The degradation problem
#
# The ResNet paper (He et al., 2015) started from a different observation. A deeper
# network can represent everything a shallower one can: let the extra layers compute the
# identity. So a deeper plain network should never have a *higher training error*. Yet it
# does: in the paper a 56-layer plain net trained on CIFAR-10 had a higher training error
# than a 20-layer one, even with BatchNorm, so this is not vanishing gradients and not
# overfitting (it is the *training* error). Optimization simply fails to find the good
# solutions that exist.
#
# We repeat the experiment on the 8x8 digits with the package's `CifarResNet`, the paper's
# $6n+2$-layer CIFAR network (three stages of $n$ blocks of two $3 \times 3$ convs, with
# BatchNorm), at a width of 8 channels: depth 8 ($n = 1$) and 20 ($n = 3$), each as a plain
# net (`residual=False`) and as a ResNet. Same data, same optimizer, same five epochs.

# %%
digits = load_dataset("digits")  # (1259, 1, 8, 8) training images
train_loader = make_loader(digits.x_train, digits.y_train, batch_size=64, shuffle=True,
                           seed=0)

# %% tags=["nbval-ignore-output"]
histories = {}
for depth in (8, 20):
    for residual in (False, True):
        name = f"{'ResNet' if residual else 'plain'}-{depth}"
        seed_everything(0)
        net = CifarResNet(depth, 10, in_channels=1, residual=residual, base_width=8)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        histories[name] = fit(net, train_loader, epochs=5, optimizer=opt, device=device,
                              live_plot=False)
        last = histories[name].epochs[-1]
        print(f"{name:10s} {n_params(net):6,} parameters   final training loss "
              f"{last.train_loss:.3f}, training error {1 - last.train_accuracy:.1%}")
final_loss = {k: h.epochs[-1].train_loss for k, h in histories.items()}
assert final_loss["plain-20"] > 3 * final_loss["plain-8"]  # deeper plain net trains worse
assert final_loss["ResNet-20"] < final_loss["plain-20"] / 3  # the shortcut removes the gap

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for name, hist in histories.items():
    ax.plot([e.epoch for e in hist.epochs], [1 - e.train_accuracy for e in hist.epochs],
            "--" if name.startswith("plain") else "-", marker="o", label=name)
ax.set(yscale="log", xlabel="epoch", ylabel="training error (log scale)",
       title="Degradation: the deeper plain net trains worse, the deeper ResNet does not")
ax.legend()
plt.show()

# %% [markdown]
# The 20-layer plain net ends with a training error several times that of the 8-layer
# plain net; with shortcuts, the 20-layer net trains about as well as the 8-layer one and
# far better than its plain twin. (The paper's full-size CIFAR-10 runs, 64,000 iterations,
# show the same ordering one step deeper: plain-56 above plain-20, ResNet-56 below
# ResNet-20.) The plain and residual nets of each depth have exactly the same parameters;
# only the additions differ.
#
# ## Residual connections
#
# ### The equations
#
# A plain network with four layers computes
#
# $$
# \mathbf{h}_1 = \mathbf{f}_1[\mathbf{x}, \phi_1],\quad
# \mathbf{h}_2 = \mathbf{f}_2[\mathbf{h}_1, \phi_2],\quad
# \mathbf{h}_3 = \mathbf{f}_3[\mathbf{h}_2, \phi_3],\quad
# \mathbf{y} = \mathbf{f}_4[\mathbf{h}_3, \phi_4].
# $$
#
# A residual network adds each block's input to its output, so each block only has to learn
# the *residual*, the change it makes:
#
# $$
# \mathbf{h}_1 = \mathbf{x} + \mathbf{f}_1[\mathbf{x}, \phi_1],\quad
# \mathbf{h}_2 = \mathbf{h}_1 + \mathbf{f}_2[\mathbf{h}_1, \phi_2],\quad
# \mathbf{h}_3 = \mathbf{h}_2 + \mathbf{f}_3[\mathbf{h}_2, \phi_3],\quad
# \mathbf{y} = \mathbf{h}_3 + \mathbf{f}_4[\mathbf{h}_3, \phi_4].
# $$
#
# If a block is not useful, pushing its weights towards zero turns it into the identity:
# exactly the solution the degradation experiment showed plain nets cannot find.
# Substituting each equation into the next *unravels* the network,
#
# $$
# \mathbf{y} = \mathbf{x} + \mathbf{f}_1[\mathbf{x}]
# + \mathbf{f}_2\big[\mathbf{x} + \mathbf{f}_1[\mathbf{x}]\big]
# + \mathbf{f}_3\big[\mathbf{x} + \mathbf{f}_1[\mathbf{x}]
#   + \mathbf{f}_2[\mathbf{x} + \mathbf{f}_1[\mathbf{x}]]\big]
# + \mathbf{f}_4\big[\ldots\big],
# $$
#
# the input plus four smaller networks. Differentiating, every factor of the chain rule is
# $\mathbf{I} + \partial \mathbf{f}_k / \partial \mathbf{h}_{k-1}$, and multiplying out the
# four factors gives $2^4 = 16$ terms: the gradient flows along **16 paths**, one for each
# subset of blocks it passes through (the others it skips). Short paths exist however deep
# the network is, and their gradients do not shatter.
#
# For linear blocks, $\mathbf{f}_k[\mathbf{h}] = \mathbf{A}_k \mathbf{h}$, this is exact for
# the output too: $\mathbf{y} = (\mathbf{I} + \mathbf{A}_4)(\mathbf{I} + \mathbf{A}_3)
# (\mathbf{I} + \mathbf{A}_2)(\mathbf{I} + \mathbf{A}_1)\mathbf{x}$ is the sum over the 16
# subsets $S$ of the blocks of $\big(\prod_{k \in S} \mathbf{A}_k\big)\mathbf{x}$, the
# product taken in block order. We check it by running the residual network and summing
# the 16 path outputs separately.

# %%
A = [rng.standard_normal((5, 5)) / 5 for _ in range(4)]  # four linear residual blocks
x_vec = rng.standard_normal(5)

h = x_vec
for A_k in A:
    h = h + A_k @ h  # h_k = h_{k-1} + f_k[h_{k-1}]
y_net = h

paths = [S for r in range(5) for S in combinations(range(4), r)]  # subsets of blocks
path_out = []
for S in paths:
    v = x_vec
    for k in S:  # in block order: the first block acts first
        v = A[k] @ v
    path_out.append(v)
lengths = np.bincount([len(S) for S in paths])
print(f"{len(paths)} paths; number of paths through 0..4 blocks: {lengths.tolist()}")
print("residual network output == sum of the 16 path outputs:",
      np.allclose(y_net, np.sum(path_out, axis=0)))
assert len(paths) == 2**4 == 16 and lengths.tolist() == [1, 4, 6, 4, 1]
assert np.allclose(y_net, np.sum(path_out, axis=0))

# %% [markdown]
# The path lengths follow a binomial distribution, so in a deep ResNet most paths are of
# medium length. Veit et al. (2016) counted them for a 54-block ResNet: $2^{54}$ paths,
# of which "95%" (exactly 98.0%) pass through between 19 and 35 blocks, far from the
# full 54, and showed that the gradient during training comes mostly from paths even shorter.
# That is the *ensemble view*: a ResNet behaves like an ensemble of many shallower networks
# that share weights. (Deleting a single block from a trained ResNet barely hurts it; deleting
# a layer from a plain net destroys it.)

# %%
n_blocks = 54
counts = np.array([np.exp(np.sum(np.log(np.arange(n_blocks - k + 1, n_blocks + 1)))
                          - np.sum(np.log(np.arange(1, k + 1)))) for k in range(n_blocks + 1)])
share_mid = counts[19:36].sum() / 2.0**n_blocks  # C(54, k) / 2^54, for k = 19..35
print(f"54 blocks: 2^54 = {2**54:.3g} paths; {share_mid:.1%} have length 19 to 35")
assert 0.97 < share_mid < 0.99

# %% [markdown]
# ### Order of operations in a residual block
#
# What should $\mathbf{f}_k$ be? The obvious choice, a linear layer (or convolution)
# followed by a ReLU, has a flaw: its output is never negative, so every block can only
# *add* non-negative values and each hidden unit can only grow from block to block. We
# check it on random data with eight such blocks.

# %%
torch.manual_seed(0)
x_rand = torch.randn(256, 32, device=device)
linear_then_relu = [nn.Linear(32, 32).to(device) for _ in range(8)]
h, steps = x_rand, []
with torch.no_grad():
    for lin in linear_then_relu:
        update = F.relu(lin(h))  # f[h] = ReLU(W h + b) >= 0
        steps.append(update)
        h = h + update
smallest = min(s.min().item() for s in steps)
print(f"smallest value any block added: {smallest:.3g} (never negative)")
assert smallest >= 0

# %% [markdown]
# The fix is to reverse the order: **pre-activation** blocks apply the nonlinearity first,
# $\mathbf{f}[\mathbf{h}] = \mathbf{W}\,\mathrm{ReLU}(\mathbf{h})$, or with BatchNorm
# BN-ReLU-conv-BN-ReLU-conv (He et al., 2016), and nothing at all follows the addition, so
# the block can add values of either sign and the identity path runs cleanly from input to
# output. The original ResNet block sits in between: its branch ends with BN (either sign),
# but a ReLU follows the *addition*, so every block's output is non-negative. The package
# has both, `BasicBlock` and `PreActBasicBlock`; on the same input:

# %%
torch.manual_seed(0)
x_maps = torch.randn(4, 8, 6, 6, device=device)
post, pre = BasicBlock(8, 8).to(device).eval(), PreActBasicBlock(8, 8).to(device).eval()
with torch.no_grad():
    out_post, change_pre = post(x_maps), pre(x_maps) - x_maps
print(f"original block: output min {out_post.min().item():.3g} (ReLU after the sum)")
print(f"pre-activation block: adds values from {change_pre.min().item():.2f} "
      f"to {change_pre.max().item():.2f}")
assert (out_post >= 0).all()
assert (change_pre < 0).any() and (change_pre > 0).any()

# %% [markdown]
# Pre-activation has one catch. If the network's input were all negative, the first
# block's ReLU would turn it into zeros, and the first branch would output a constant
# whatever the input: it could learn nothing from it. Hence a pre-activation network starts
# with a plain linear layer, whose outputs have both signs whatever the sign of the input
# (the package's `ResNet` starts with a 7x7 convolution stem before any block).

# %%
torch.manual_seed(0)
branch = nn.Linear(16, 16).to(device)  # f[h] = W ReLU(h) + b
stem = nn.Linear(16, 16).to(device)
x_neg = -torch.rand(2, 16, device=device) - 0.1  # two different, all-negative inputs
with torch.no_grad():
    same = torch.allclose(branch(F.relu(x_neg[0])), branch(F.relu(x_neg[1])))
    differ = not torch.allclose(branch(F.relu(stem(x_neg[0]))), branch(F.relu(stem(x_neg[1]))))
print(f"branch on the raw negative inputs: identical outputs = {same}; "
      f"after a linear stem: different outputs = {differ}")
assert same and differ

# %% [markdown]
# ### Exploding variance, and two fixes
#
# He initialization keeps the variance of a *plain* network's activations constant from
# layer to layer: with $\mathrm{Var}(w) = 2/D$, a branch
# $\mathbf{f}[\mathbf{h}] = \mathbf{W}\,\mathrm{ReLU}(\mathbf{h})$ outputs
# $D \cdot \tfrac{2}{D} \cdot \tfrac12 \mathrm{Var}(h) = \mathrm{Var}(h)$, because the ReLU
# keeps half of the second moment of a symmetric input. A residual block adds that output
# to its input, and the two are uncorrelated (the weights have zero mean), so
#
# $$
# \mathrm{Var}(\mathbf{h}_{k+1}) = \mathrm{Var}(\mathbf{h}_k)
# + \mathrm{Var}(\mathbf{f}[\mathbf{h}_k]) = 2\, \mathrm{Var}(\mathbf{h}_k):
# $$
#
# the variance **doubles in every block**, $2^{24} \approx 1.7 \times 10^7$ after 24 of them,
# and the gradients explode with it. Two fixes:
#
# * **BatchNorm** at the start of each branch,
#   $\mathbf{f}[\mathbf{h}] = \mathbf{W}\,\mathrm{ReLU}(\mathrm{BN}(\mathbf{h}))$: the branch
#   now adds variance 1 whatever $\mathrm{Var}(\mathbf{h}_k)$ is, so the variance grows only
#   linearly, $1 + k$;
# * **scaling** each branch by $1/\sqrt{K}$ for $K$ blocks (or initializing its last layer
#   near zero): each block multiplies the variance by about $1 + 1/K$, and all $K$ blocks
#   by about $(1 + 1/K)^K$, less than $e \approx 2.72$ however deep the network.
#
# We measure all three on 24 blocks of 200 units, with a batch of 2000 standard normal
# inputs.

# %%
def variance_by_block(n_blocks=24, width=200, fix=None, n=2000):
    """Variance of the activations after each of n_blocks pre-activation residual blocks."""
    h = torch.randn(n, width, device=device)  # (n, width), variance 1
    out = [h.var().item()]
    for _ in range(n_blocks):
        W = torch.randn(width, width, device=device) * np.sqrt(2 / width)  # He init
        z = (h - h.mean(0)) / h.std(0) if fix == "batchnorm" else h
        update = F.relu(z) @ W.T  # f[h] = W ReLU(h) (or of BN(h))
        h = h + (update / np.sqrt(n_blocks) if fix == "scaled" else update)
        out.append(h.var().item())
    return np.array(out)


torch.manual_seed(0)
var = {fix: variance_by_block(fix=fix) for fix in (None, "batchnorm", "scaled")}
ratios = var[None][1:] / var[None][:-1]
print(f"no normalization: variance x{np.exp(np.log(ratios).mean()):.3f} per block "
      f"(geometric mean), {var[None][-1]:.3g} after 24 blocks (2^24 = {2**24:.3g})")
print(f"BatchNorm in the branch: {var['batchnorm'][-1]:.1f} after 24 blocks (1 + 24 = 25)")
print(f"branch scaled by 1/sqrt(24): {var['scaled'][-1]:.2f} (expected (1 + 1/24)^24 = "
      f"{(1 + 1 / 24) ** 24:.2f})")
assert 1.9 < np.exp(np.log(ratios).mean()) < 2.1
assert 2**22 < var[None][-1] < 2**26
assert 20 < var["batchnorm"][-1] < 30
assert 2 < var["scaled"][-1] < 3.5

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
labels = {None: "no normalization", "batchnorm": "BatchNorm in each branch",
          "scaled": "branch scaled by 1/sqrt(24)"}
for fix, v in var.items():
    ax.plot(np.arange(len(v)), v, marker=".", label=labels[fix])
ax.plot(np.arange(25), 2.0 ** np.arange(25), "k:", lw=1, label="2^k")
ax.set(yscale="log", xlabel="residual block k", ylabel="variance of h_k (log scale)",
       title="Without normalization the variance doubles in every residual block")
ax.legend()
plt.show()

# %% [markdown]
# ### The ResNet block with BatchNorm: 18C² + 4C parameters
#
# For images, BatchNorm normalizes each channel over the batch *and* all positions
# (spatial BatchNorm: mean and variance of shape $1 \times C \times 1 \times 1$) and learns
# one scale $\gamma$ and one shift $\beta$ per channel. A ResNet basic block at $C$ channels
# keeps its $H \times W \times C$ shape and has two $3 \times 3 \times C \times C$
# convolutions without biases (BatchNorm's $\beta$ replaces them) and two BatchNorms:
# $2 \cdot 9C^2 + 2 \cdot 2C = 18C^2 + 4C$ parameters.

# %%
for C in (16, 64, 256, 512):
    block = BasicBlock(C, C)
    assert n_params(block) == 18 * C**2 + 4 * C
    assert block.bn1.weight.shape == block.bn1.bias.shape == (C,)  # gamma, beta per channel
    print(f"C = {C:3d}: {n_params(block):9,} = 18 * {C}^2 + 4 * {C}")

# %% [markdown]
# With blocks this cheap, depth is affordable. **ResNet-200** (He et al., 2016) is the
# pre-activation ResNet with bottleneck blocks (1x1, 3x3, 1x1 convs) in stages of 3, 24, 36
# and 3 blocks: $3 \cdot (3 + 24 + 36 + 3) = 198$ convolutions in the blocks, plus the stem
# convolution and the classifier, makes 200 layers. The package builds it from the same
# parts as ResNet-50; on the meta device it costs nothing.

# %%
resnet200 = on_meta(ResNet, PreActBottleneck, (3, 24, 36, 3))
layers = [n for n, m in resnet200.named_modules()
          if isinstance(m, nn.Conv2d | nn.Linear) and "shortcut" not in n]
macs_200 = summary(resnet200, (1, 3, 224, 224)).total_macs
print(f"ResNet-200: {len(layers)} weighted layers (projection shortcuts not counted), "
      f"{n_params(resnet200) / 1e6:.1f} M parameters, {macs_200 / 1e9:.1f} G multiply-adds "
      f"per 224x224 image")
assert len(layers) == 200 and n_params(resnet200) == 64_666_280
assert round(macs_200 / 1e9, 1) == 14.8
r50 = on_meta(resnet50)
param_ratio = n_params(resnet200) / n_params(r50)
macs_ratio = macs_200 / summary(r50, (1, 3, 224, 224)).total_macs
print(f"versus ResNet-50: {param_ratio:.2f}x the parameters, {macs_ratio:.2f}x the multiply-adds")
assert round(param_ratio, 1) == 2.5 and round(macs_ratio, 1) == 3.8

# %% [markdown]
# That is 2.5 times the parameters of ResNet-50 (25.6 M) for 3.8 times its multiply-adds.
# The pre-activation paper built it to show that with a clean identity path, depth keeps
# paying off well beyond 152 layers (on CIFAR-10 it went to 1001).
#
# ## U-Net: an encoder, a decoder, and skips between them
#
# A classifier outputs one label; **semantic segmentation** outputs one per pixel. The
# network must understand the whole object (a large receptive field, hence downsampling)
# and still say exactly where its boundary is (full resolution). The **U-Net** (Ronneberger
# et al., 2015) does both:
#
# * a **contracting path** (encoder): at each level two $3 \times 3$ convolutions with ReLU,
#   then a $2 \times 2$ max pooling; the number of channels doubles at each level;
# * an **expanding path** (decoder): at each level a $2 \times 2$ *up-convolution* (a
#   transposed convolution with stride 2) that doubles the size and halves the channels,
#   then two $3 \times 3$ convolutions;
# * **skip connections**: before the decoder's convolutions, the encoder's map from the same
#   level is *concatenated* onto the upsampled map, giving back the detail that pooling
#   threw away;
# * a final $1 \times 1$ convolution to one score map per class.
#
# The original paper uses *unpadded* convolutions, so each one removes a pixel on every
# side. A 572x572 tile gives a 388x388 segmentation. The package's `UNet(padding=False)`
# is that network; `summary` traces the side length through it (forward hooks on the
# meta device, so the 31-million-parameter model costs nothing).

# %%
unet_paper = on_meta(UNet, 1, 2, depth=4, base_width=64, padding=False)
table = summary(unet_paper, (1, 1, 572, 572))
trace = [(r.name, r.output_shape[1], r.output_shape[2]) for r in table
         if r.type in ("MaxPool2d", "ConvTranspose2d") or r.name == "head"
         or r.name.endswith(".3") and r.type == "ReLU"]
print("   ".join(f"{name}: {c}x{s}" for name, c, s in trace))
assert unet_output_size(572, depth=4, padding=False) == 388 == table[-1].output_shape[-1]
assert n_params(unet_paper) == 31_030_658
print(f"output {table[-1].output_shape[2]}x{table[-1].output_shape[3]}, "
      f"{n_params(unet_paper):,} parameters")

# %% [markdown]
# Reading the trace (the package's module names: `down.i` is encoder level $i$, `up.i` an
# up-convolution, `dec.i` a decoder level; each entry is channels x side): the encoder
# goes 572 → 568 (two convs) → 284 (pool) → 280 → 140 → 136 → 68 → 64 → 32 → 28 at the
# bottom with 1024 channels, and the decoder 56 → 52 → 104 → 100 → 200 → 196 → 392 →
# 388. At every level the encoder's map is larger than the decoder's (568 against 392 at
# the top), so before concatenating, the encoder map is **cropped** to the centre.
#
# ### Crop and concatenate
#
# Cropping takes the difference of the two sizes and removes half of it from each side.
# When the difference is odd, one side loses one pixel more. Written out as the lecture
# notes do it:

# %%
def determine_crop(target, goal):
    """(top, bottom) pixels to cut from a side of `target` to reach `goal` (notes' version)."""
    diff = target - goal
    if diff % 2 != 0:
        return diff // 2, diff // 2 + 1  # odd: one more pixel off the bottom / right
    return diff // 2, diff // 2


agree = all(determine_crop(t, g) == crop_amounts(t, g) for t in range(80) for g in range(t + 1))
print("crop_amounts agrees with the notes' rule for all sizes up to 79:", agree)
print("568 -> 392:", crop_amounts(568, 392), "   7 -> 4:", crop_amounts(7, 4))
assert agree and crop_amounts(568, 392) == (88, 88) and crop_amounts(7, 4) == (1, 2)

grid = torch.arange(7 * 9).reshape(1, 1, 7, 9)  # entry = 9 * row + column
cropped = center_crop(grid, (4, 6))
print(cropped[0, 0])
assert torch.equal(cropped, grid[..., 1:5, 1:7])  # rows 1..4 of 0..6, columns 1..6 of 0..8

# %% [markdown]
# The odd case is not hypothetical. Max pooling floors odd sizes, and a floor is exactly
# what makes a difference odd; in the paper's depth-4 network every pooled map is even
# only for sides of the form $16k + 124$ (572 is one), as the loop below checks. With a
# depth-2 U-Net on a 45x45 input, a forward hook on each encoder level and each
# up-convolution shows which crop each skip connection needs:

# %%
def encoder_sides(side, depth=4):
    """Sides of the unpadded encoder maps just before each pooling."""
    sides = []
    for _ in range(depth):
        side -= 4  # two unpadded 3x3 convs
        sides.append(side)
        side //= 2
    return sides


even = [s for s in range(188, 1000) if all(e % 2 == 0 for e in encoder_sides(s))]
assert even == list(range(188, 1000, 16)) and (572 - 124) % 16 == 0

unet_odd = UNet(1, 2, depth=2, base_width=4, padding=False).to(device)
sizes = {}
for name, module in [*[(f"down{i}", m) for i, m in enumerate(unet_odd.down)],
                     *[(f"up{i}", m) for i, m in enumerate(unet_odd.up)]]:
    module.register_forward_hook(
        lambda mod, inp, out, name=name: sizes.__setitem__(name, out.shape[-1]))
with torch.no_grad():
    y_odd = unet_odd(torch.zeros(1, 1, 45, 45, device=device))
for level, up in ((1, "up0"), (0, "up1")):
    skip = sizes[f"down{level}"]
    print(f"level {level}: encoder map {skip}x{skip}, upsampled map {sizes[up]}x{sizes[up]}, "
          f"crop (top, bottom) = {crop_amounts(skip, sizes[up])}")
print("output", tuple(y_odd.shape[-2:]))
assert crop_amounts(sizes["down0"], sizes["up1"]) == (16, 17)  # 41 -> 8: odd difference
assert y_odd.shape[-1] == unet_output_size(45, depth=2, padding=False) == 4

# %% [markdown]
# The output is small because this tiny input loses most of its border to the unpadded
# convolutions; the paper predicts large images tile by tile, feeding each tile with a
# border of context (mirrored at the image edge), which is why it can afford valid
# convolutions. Most modern U-Nets instead **pad** the convolutions: nothing needs cropping,
# and for a side that is a multiple of $2^{\text{depth}}$ the output has the input's size.
#
# For the upsampling, the up-convolution (`upsample="transpose"`) learns its $2 \times 2$
# kernels; the alternative (`"bilinear"`) interpolates with no parameters and follows with
# a $1 \times 1$ convolution to halve the channels, a quarter of the weights. Bilinear
# upsampling avoids the checkerboard artifacts that strided transposed convolutions can
# produce.

# %%
for upsample in ("transpose", "bilinear"):
    net = UNet(1, 4, depth=3, base_width=8, upsample=upsample, batch_norm=True).to(device)
    with torch.no_grad():
        out = net(torch.zeros(2, 1, 32, 32, device=device))
    up_params = sum(n_params(m) for m in net.up)
    print(f"padded U-Net, {upsample:9s}: (2, 1, 32, 32) -> {tuple(out.shape)}, "
          f"{up_params:,} upsampling parameters of {n_params(net):,}")
    assert out.shape == (2, 4, 32, 32)
paper_up = {u: sum(n_params(m) for m in on_meta(UNet, padding=False, upsample=u).up)
            for u in ("transpose", "bilinear")}
print(f"paper-size U-Net: up-convolutions {paper_up['transpose']:,} parameters, "
      f"bilinear + 1x1 conv {paper_up['bilinear']:,}")
assert paper_up["transpose"] == 2_786_240
assert paper_up["transpose"] - 960 == 4 * (paper_up["bilinear"] - 960)  # weights 4:1, biases equal

# %% [markdown]
# ### Training a U-Net to segment shapes
#
# Offline, we use the package's generated segmentation set: gray images of disks,
# rectangles and triangles on textured backgrounds, with a label per pixel
# (background, disk, rectangle, triangle). Brightness does not tell the classes apart, so
# a network must use shape. We train a padded U-Net of depth 3 and base width 12, with
# BatchNorm, on 32x32 images, with per-pixel cross-entropy (`F.cross_entropy` accepts
# $(N, K, H, W)$ scores and $(N, H, W)$ labels, and `fit` then reports pixel accuracy).

# %%
x_seg, y_seg = synthetic_segmentation(800, size=32, seed=0)  # (800, 1, 32, 32), (800, 32, 32)
x_seg_test, y_seg_test = synthetic_segmentation(200, size=32, seed=1)  # a separate draw
share = np.bincount(y_seg.ravel(), minlength=4) / y_seg.size
print("share of training pixels:", ", ".join(
    f"{c} {s:.0%}" for c, s in zip(SEGMENTATION_CLASSES, share, strict=True)))
seg_loader = make_loader(x_seg, y_seg, batch_size=32, shuffle=True, seed=0)
seg_test_loader = make_loader(x_seg_test, y_seg_test, batch_size=100, shuffle=False)

# %% tags=["nbval-ignore-output"]
seed_everything(0)
unet = UNet(1, 4, depth=3, base_width=12, batch_norm=True)
EPOCHS = 12
opt = torch.optim.Adam(unet.parameters(), lr=0.02)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02,
                                            total_steps=EPOCHS * len(seg_loader))
seg_history = fit(unet, seg_loader, seg_test_loader, epochs=EPOCHS, optimizer=opt,
                  scheduler=sched, scheduler_step="step", device=device)

# %% [markdown]
# Pixel accuracy is a poor score for segmentation: about 80% of the pixels are background,
# so predicting "background" everywhere already scores 80%. The standard score is the
# **intersection over union** of each class $c$: with $P_c$ the pixels predicted as $c$
# and $T_c$ those labelled $c$,
#
# $$
# \mathrm{IoU}_c = \frac{|P_c \cap T_c|}{|P_c \cup T_c|}
# = \frac{\mathrm{TP}_c}{\mathrm{TP}_c + \mathrm{FP}_c + \mathrm{FN}_c},
# $$
#
# and the **mean IoU** averages it over the classes. Directly from the definition, with
# boolean masks, and then with `d2lcnn.metrics.iou`, which reads it off a confusion matrix:

# %%
pred_seg = predict(unet, torch.as_tensor(x_seg_test), device=device).argmax(dim=1).numpy()
iou_by_hand = np.array([((pred_seg == c) & (y_seg_test == c)).sum()
                        / ((pred_seg == c) | (y_seg_test == c)).sum() for c in range(4)])
iou_package = iou(pred_seg, y_seg_test, num_classes=4)
assert np.allclose(iou_by_hand, iou_package)

# %% tags=["nbval-ignore-output"]
fg_iou = iou(pred_seg > 0, y_seg_test > 0, num_classes=2)[1]  # any shape vs background
miou = mean_iou(pred_seg, y_seg_test, num_classes=4)
print("IoU per class: " + ", ".join(
    f"{c} {v:.2f}" for c, v in zip(SEGMENTATION_CLASSES, iou_package, strict=True)))
print(f"test pixel accuracy {pixel_accuracy(pred_seg, y_seg_test):.1%}   mean IoU {miou:.2f}"
      f"   shape-vs-background IoU {fg_iou:.2f}")
assert fg_iou >= 0.85
assert miou >= 0.35

# %%
cmap = ListedColormap(["#222222", "tab:orange", "tab:green", "tab:blue"])  # one per class
show = [0, 1, 2, 3, 4]
fig = show_images(
    [*x_seg_test[show, 0], *y_seg_test[show], *pred_seg[show]],
    [f"test image {i}" for i in show] + ["true mask"] * len(show)
    + ["predicted mask"] * len(show),
    ncols=len(show), xlabel=None, ylabel=None, size=2.2,
    suptitle="U-Net on held-out shapes; orange disk, green rectangle, blue triangle",
)
for ax in fig.axes[len(show):]:
    ax.images[0].set(cmap=cmap, clim=(-0.5, 3.5))
plt.show()

# %% [markdown]
# The network learns *where* the shapes are first: the shape-versus-background IoU is
# high and the predicted outlines follow the true ones. *What* they are comes later,
# because telling a disk from a triangle needs a view of the whole shape, its corners and
# its curved or straight edges. In runs like this one it is still being learned in the
# last epochs, so the per-class IoUs (and the mean IoU) are the numbers that vary most
# between runs and machines; a narrower network trained for fewer epochs (width 8, eight
# epochs) labels most shapes as rectangles. The asserts therefore ask only for what every
# run we tried achieved. The skip connections are what keep the boundaries sharp
# (exercise 3).
#
# ## Stacked hourglass networks
#
# The **hourglass** network (Newell et al., 2016), built for human pose estimation, is a
# U-shape too, with two differences: the skip connections *add* (through a residual block)
# instead of concatenating, and the whole U is repeated. One hourglass of order $n$ is
# defined recursively: at the current resolution a residual block computes the skip branch;
# the other branch pools, runs residual blocks and an hourglass of order $n - 1$ at half
# the resolution, and is upsampled and added back. Its output has its input's shape, so
# hourglasses can be **stacked**: each one refines the previous one's result. Each stack
# ends in a prediction (one heatmap per body joint in the paper), and each prediction gets
# its own loss, **intermediate supervision**, so that early stacks already learn to predict
# and the gradient reaches them directly. The prediction is also mapped back into the
# features that feed the next stack.

# %%
hg = Hourglass(order=3, channels=8).to(device)
pools = sum(isinstance(m, nn.MaxPool2d) for m in hg.modules())
with torch.no_grad():
    out_hg = hg(torch.zeros(1, 8, 32, 32, device=device))
print(f"an hourglass of order 3: {pools} poolings (one per level), "
      f"(1, 8, 32, 32) -> {tuple(out_hg.shape)}")
assert pools == 3 and out_hg.shape == (1, 8, 32, 32)

hg_paper = on_meta(StackedHourglass, 16, n_stacks=8)  # 256 channels, order 4
hg_table = summary(hg_paper, (1, 3, 256, 256))
heads = [r.output_shape for r in hg_table if r.name.startswith("heads.")]
print(f"the paper's 8-stack network: {len(heads)} predictions of shape {heads[0]}, "
      f"{hg_table.total_params:,} parameters")
assert heads == [(1, 16, 64, 64)] * 8 and hg_table.total_params == 25_434_112

# %% [markdown]
# The predictions are at a quarter of the input resolution (64x64 heatmaps for 256x256
# images). To see what intermediate supervision changes, we run a small two-stack network
# on segmentation images (labels taken at a quarter of the resolution) and compare the
# gradient that reaches the *first* stack's prediction head from each loss. Without its
# own loss, that head is trained only indirectly, through the merge of its prediction into
# the second stack's input.

# %%
torch.manual_seed(0)
shg = StackedHourglass(num_classes=4, in_channels=1, n_stacks=2, channels=16,
                       order=2).to(device)
x_hg = torch.as_tensor(x_seg[:8]).to(device)  # (8, 1, 32, 32)
y_hg = torch.as_tensor(y_seg[:8, 2::4, 2::4]).to(device)  # labels at 1/4 resolution: (8, 8, 8)
preds = shg(x_hg)
print("predictions:", [tuple(p.shape) for p in preds])
assert len(preds) == 2 and all(p.shape == (8, 4, 8, 8) for p in preds)

losses = [F.cross_entropy(p, y_hg) for p in preds]
head0 = shg.heads[0].weight
(g_all,) = torch.autograd.grad(sum(losses), head0, retain_graph=True)
(g_last,) = torch.autograd.grad(losses[-1], head0, retain_graph=True)
(g_first,) = torch.autograd.grad(losses[0], head0)
print(f"gradient norm on stack 1's head: all losses {g_all.norm().item():.3g}, "
      f"its own loss {g_first.norm().item():.3g}, final loss only {g_last.norm().item():.3g}")
assert torch.allclose(g_all, g_first + g_last, atol=1e-6)
assert g_first.norm() > g_last.norm()

# %% [markdown]
# ## Overparameterization
#
# Every network in this chapter has more parameters than training examples, often many
# times more. The same is true of the ImageNet models: with 1,281,167 training images,
# most have 10 to 100 times more parameters than training examples (Prince, *Understanding
# Deep Learning*, fig. 20.3). From the package's models:

# %%
N_IMAGENET = 1_281_167
ratio = {name: n_params(on_meta(factory)) / N_IMAGENET for name, factory in
         [("ResNet-18", resnet18), ("ResNet-50", resnet50), ("ResNet-152", resnet152),
          ("VGG-16", vgg16)]}
ratio["ResNet-200"] = n_params(resnet200) / N_IMAGENET
for name, r in ratio.items():
    print(f"{name:10s} {r:6.1f} parameters per ImageNet training image")
assert all(10 <= r <= 100 for k, r in ratio.items() if k in ("ResNet-50", "ResNet-152",
                                                                "ResNet-200"))
assert 9 < ratio["ResNet-18"] < 10 and 100 < ratio["VGG-16"] < 110

# %% [markdown]
# ResNet-18 is just below the range and VGG-16 just above; the rest fall inside it. Our
# small models are no different (the U-Net counted per training image, then per labelled
# pixel):

# %%
ours = {
    "ResNet-20 (width 8), digits": (n_params(CifarResNet(20, 10, 1, base_width=8)),
                                    len(digits.y_train)),
    "U-Net (depth 3, width 12), shapes": (n_params(unet), len(y_seg)),
}
for name, (p, n) in ours.items():
    ratio[name] = p / n
    print(f"{name:34s} {p:7,} parameters / {n:5,} images = {p / n:5.1f}x")
assert all(ratio[name] > 10 for name in ours)
per_pixel = n_params(unet) / y_seg.size  # every pixel of a mask is a labelled example
print(f"U-Net, counting labelled pixels ({y_seg.size:,}) instead: {per_pixel:.2f}x")
assert round(ratio["U-Net (depth 3, width 12), shapes"]) == 340 and round(per_pixel, 2) == 0.33

# %%
fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
names = list(ratio)
ax.barh(names, [ratio[n] for n in names],
        color=["tab:blue"] * 5 + ["tab:orange"] * len(ours))
ax.axvspan(10, 100, color="0.9", zorder=0, label="10-100x")
ax.set(xscale="log", xlabel="parameters / training examples (log scale)",
       title="Overparameterization: ImageNet models (blue) and this chapter's (orange)")
ax.invert_yaxis()
ax.legend(loc="upper right")
plt.show()

# %% [markdown]
# Classical statistics says such models should overfit hopelessly; they do not, and the
# theory is only starting to explain why. One line of work proves that gradient descent
# from a random initialization reaches zero training loss in sufficiently overparameterized
# networks (Du et al., 2019, for two-layer ReLU networks; later results for deep ResNets),
# but with widths far beyond practice, polynomial in the number of training examples.
# An intuition (Sejnowski, 2020): with so many parameters there are not a few good
# solutions to find but a huge degenerate family of them, "a haystack of needles" rather
# than a needle in a haystack. For the U-Net, counting labelled *pixels* instead of images
# turns 340 parameters per example into a third of one, which is one reason segmentation
# networks can be trained on a few dozen images (the original U-Net used 30).
#
# ## What to remember
#
# * Deep plain networks **shatter** their gradients: at 24 layers, neighbouring inputs have
#   unrelated gradients. Residual connections keep them correlated.
# * The **degradation problem**: a deeper plain network can train *worse* than a shallower
#   one; with shortcuts it does not. The shortcut makes "do nothing" easy to learn.
# * A residual network with $K$ blocks **unravels** into $2^K$ paths of binomially
#   distributed lengths: an implicit ensemble of shallower networks.
# * A branch that ends with a ReLU can only add; **pre-activation** blocks (BN-ReLU-conv)
#   add either sign and leave the identity path clean, and need a linear layer first.
# * Without normalization the variance **doubles per block**; BatchNorm in the branch makes
#   the growth linear, scaling the branch bounds it. A basic block with BN has
#   $18C^2 + 4C$ parameters, which makes ResNet-200 (64.7 M parameters) affordable.
# * A **U-Net** is an encoder and a decoder joined by concatenating skip connections; with
#   unpadded convolutions the encoder map is center-cropped first, the odd pixel off the
#   bottom/right. Score segmentation by **IoU**, not pixel accuracy.
# * **Stacked hourglasses** repeat the U and supervise every repetition.
# * Modern networks have **10-100x more parameters** than training examples, and still
#   generalize.
#
# ## Exercises
#
# 1. **Quick check.** How many parameters does a *bottleneck* block with $4C$ input and
#    output channels and width $C$ have (1x1, 3x3, 1x1 convolutions, three BatchNorms)?
#    Compare with two basic blocks at $4C$ and check your formula with `Bottleneck`.
# 2. **Deeper shattering.** Repeat the autocorrelation experiment for plain nets of depth
#    2, 4, 8, 16 and residual nets of depth 24, 50, 100. Plot the lag-1 autocorrelation
#    against depth and compare with the exponential and $1/\sqrt{L}$ predictions.
# 3. **What do the skips do?** Train the U-Net of this chapter with its skip connections
#    replaced by zeros of the same shape (an encoder-decoder without skips) and compare the
#    IoUs and the predicted masks. Where does the difference show?
# 4. **A better segmenter (small project).** Improve the mean IoU on the shapes: more
#    epochs, a wider network, bilinear upsampling, class-weighted cross-entropy, more
#    images. Which change helps the disk and triangle classes most, per second of training?
# 5. **Lesion study (small project).** Train `resnet20` and `plain20` (width 8) on the
#    digits, then delete one block at a time (replace it by the identity; for the plain net
#    only where shapes allow) and measure the test accuracy. Does the ensemble view predict
#    what you see?
#
# The fourth homework,
# [`homework/hw4-resnet-unet/hw4-resnet-unet.ipynb`](homework/hw4-resnet-unet/hw4-resnet-unet.ipynb)
# (or the copy your instructor hands out), asks you to write a residual block and a small
# U-Net in PyTorch with prescribed shapes and parameter counts, and to train them to a
# stated score.
