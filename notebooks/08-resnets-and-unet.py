# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Residual Networks in Depth, U-Nets and Hourglass Networks
#
# The [case studies](07-case-studies.ipynb) ended with a surprise: ResNet won ImageNet in 2015
# with 152 layers, at a time when networks of twenty-odd layers (VGG-19, GoogLeNet's 22) were
# already hard to train, and all it changed was to add each
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
#
# **Learning goals.** After this chapter you can
#
# - explain, with measurements, why deep plain networks train badly (shattered gradients,
#   degradation) and how a residual connection fixes both;
# - unravel a residual network into its $2^B$ paths and choose the order of operations and
#   the normalization inside a residual block;
# - build a U-Net (crop, concatenate, upsample), train it to segment images and score it by
#   intersection over union on held-out data;
# - describe a stacked hourglass network and what intermediate supervision changes.
#
# **Prerequisites:** [Preprocessing and initialization](03-preprocessing-and-init.ipynb)
# (chapter 3), [Normalization](05-normalization.ipynb) (chapter 5) and
# [Case studies](07-case-studies.ipynb) (chapter 7).

# %% tags=["remove-cell"]
# Colab, Binder or a fresh Python: install the book's package if it is missing.
# Where d2lcnn is installed (make book, make lab, Binder) this cell does nothing.
import importlib.util
import subprocess
import sys

# The book's address, the same in every chapter (python -m d2lcnn.book set-repository URL).
REPOSITORY = ""
if importlib.util.find_spec("d2lcnn") is None:
    if not REPOSITORY:
        raise ModuleNotFoundError(
            "d2lcnn is not installed, and this copy of the book does not know its repository: "
            "install it from a checkout with `pip install -e .` (see the README)"
        )
    print(f"Installing d2lcnn from {REPOSITORY} (a few minutes the first time)...")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                           f"d2lcnn @ git+{REPOSITORY}"])

# %%
import copy
from functools import partial
from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from torch import nn

from d2lcnn import diagrams
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
from d2lcnn.train import evaluate, fit, predict, seed_everything

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


# Numbers this chapter quotes from the papers (full entries under References at the end).
# The cells below read them from here and assert against them.
PAPERS = {
    # He et al. (2016), ResNet, CIFAR-10 (fig. 1, 6): plain-56 trains worse than plain-20,
    # ResNet-56 better than ResNet-20, after 64,000 iterations.
    "resnet_cifar": dict(depths=(20, 56), iterations=64_000),
    # Veit et al. (2016): a ResNet with 54 blocks has 2^54 paths, of which more than 95%
    # pass through 19 to 35 blocks.
    "veit": dict(blocks=54, lengths=(19, 35), share=0.95),
    # He et al. (2016), identity mappings: pre-activation ResNet-200 on ImageNet and
    # ResNet-1001 on CIFAR-10.
    "preact_depths": (200, 1001),
    # Ronneberger et al. (2015): a 572x572 input tile gives a 388x388 segmentation map;
    # trained on 30 images.
    "unet": dict(tile=572, output=388, train_images=30),
    # Newell et al. (2016): 8 stacked hourglasses of 256 channels, 256x256 images, one
    # 64x64 heatmap per body joint, 16 joints.
    "hourglass": dict(stacks=8, channels=256, image=256, heatmap=64, joints=16),
    # Huang et al. (2017), table 1: DenseNet-121 has growth rate k = 32, a stem of 2k = 64
    # channels and dense blocks of 6, 12, 24 and 16 layers.
    "densenet121": dict(growth_rate=32, stem=64, blocks=(6, 12, 24, 16)),
    # Russakovsky et al. (2015): training images of the ImageNet classification task.
    "imagenet_train_images": 1_281_167,
    # Prince (2023), fig. 20.3: most ImageNet models have 10 to 100 times more parameters
    # than training examples.
    "params_per_example": (10, 100),
}

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
# * a **deep plain** net: 24 hidden layers,
#   $\mathbf{h}_{\ell+1} = \mathbf{f}_\ell[\mathbf{h}_\ell]$;
# * a **deep residual** net: 24 layers too, but $\mathbf{h}_{\ell+1} = \mathbf{h}_\ell +
#   \mathbf{f}_\ell[\mathbf{h}_\ell]$.
#
# Each layer is
# $\mathbf{f}_\ell[\mathbf{h}] = \mathbf{W}_\ell\, \mathrm{ReLU}(\mathrm{BN}(\mathbf{h}))$
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
# The ResNet paper (He et al., 2016) started from a different observation. A deeper
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
assert all((d - 2) % 6 == 0 for d in (8, 20, *PAPERS["resnet_cifar"]["depths"]))  # all 6n + 2
final_loss = {k: h.epochs[-1].train_loss for k, h in histories.items()}
final_error = {k: 1 - h.epochs[-1].train_accuracy for k, h in histories.items()}
# Over seeds 0-3 (initialization and shuffling): plain-20 / plain-8 was 6.3 to 12.4 (loss)
# and 8 to 20 (error); plain-20 / ResNet-20 was 6.3 to 11.4 here, but 2.5 (loss) and 2.7
# (error) for seed 2 run outside the chapter, whose round-off differs: hence 2, not 3.
assert final_loss["plain-20"] > 3 * final_loss["plain-8"]  # deeper plain net trains worse
assert final_error["plain-20"] > 3 * final_error["plain-8"]
assert final_loss["ResNet-20"] < final_loss["plain-20"] / 2  # the shortcut closes the gap
assert final_error["ResNet-20"] < final_error["plain-20"] / 2
assert max(final_error, key=final_error.get) == "plain-20"  # the worst of the four

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for name, hist in histories.items():
    ax.plot([e.epoch for e in hist.epochs], [1 - e.train_accuracy for e in hist.epochs],
            "--" if name.startswith("plain") else "-", marker="o", label=name)
ax.set(yscale="log", xlabel="epoch", ylabel="training error (log scale)",
       title="Degradation: the 20-layer plain net trains worst of the four")
ax.legend()
plt.show()

# %% [markdown]
# The 20-layer plain net ends with more than three times the training loss and the
# training error of the 8-layer plain net, the worst of the four. With shortcuts, the
# 20-layer net's training loss and error are less than half its plain twin's. (The
# paper's full-size CIFAR-10 runs, 64,000 iterations, show the same ordering one step
# deeper: plain-56 above plain-20, ResNet-56 below ResNet-20.) The plain and residual nets
# of each depth have exactly the same parameters; only the additions differ.
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
# $\mathbf{I} + \partial \mathbf{f}_\ell / \partial \mathbf{h}_{\ell-1}$, and multiplying out the
# four factors gives $2^4 = 16$ terms: the gradient flows along **16 paths**, one for each
# subset of blocks it passes through (the others it skips). Short paths exist however deep
# the network is, and their gradients do not shatter.
#
# For linear blocks, $\mathbf{f}_\ell[\mathbf{h}] = \mathbf{A}_\ell \mathbf{h}$, this is exact for
# the output too: $\mathbf{y} = (\mathbf{I} + \mathbf{A}_4)(\mathbf{I} + \mathbf{A}_3)
# (\mathbf{I} + \mathbf{A}_2)(\mathbf{I} + \mathbf{A}_1)\mathbf{x}$ is the sum over the 16
# subsets $S$ of the blocks of $\big(\prod_{\ell \in S} \mathbf{A}_\ell\big)\mathbf{x}$, the
# product taken in block order. We check it by running the residual network and summing
# the 16 path outputs separately.

# %%
A = [rng.standard_normal((5, 5)) / 5 for _ in range(4)]  # four linear residual blocks
x_vec = rng.standard_normal(5)

h = x_vec
for A_k in A:
    h = h + A_k @ h  # h_l = h_{l-1} + f_l[h_{l-1}]
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
n_blocks, (shortest, longest) = PAPERS["veit"]["blocks"], PAPERS["veit"]["lengths"]  # 54; 19, 35
counts = np.array([np.exp(np.sum(np.log(np.arange(n_blocks - k + 1, n_blocks + 1)))
                          - np.sum(np.log(np.arange(1, k + 1)))) for k in range(n_blocks + 1)])
share_mid = counts[shortest:longest + 1].sum() / 2.0**n_blocks  # sum of C(54, k) / 2^54
print(f"{n_blocks} blocks: 2^{n_blocks} = {2**n_blocks:.3g} paths; {share_mid:.1%} have "
      f"length {shortest} to {longest}")
assert share_mid > PAPERS["veit"]["share"] and round(share_mid, 3) == 0.980

# %% [markdown]
# ### Order of operations in a residual block
#
# What should $\mathbf{f}_\ell$ be? The obvious choice, a linear layer (or convolution)
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
# Here are the blocks side by side, each layer in the order the package's blocks call it,
# on 64 channels of $56 \times 56$ maps (ResNet's first stage). Look at what comes after
# the $\oplus$: in the original basic block (left) a ReLU follows the addition, so
# $F(x) + x$ is clipped at zero; in the pre-activation block (right) the addition is the
# last step, and $x$ reaches the output untouched. The middle column is the **bottleneck**
# block of ResNet-50 and deeper: a $1 \times 1$ convolution narrows the 256 channels to 64,
# the $3 \times 3$ convolution works on the narrow maps, and a second $1 \times 1$
# convolution widens them back to 256 so that they can be added to $x$. ResNet-200, below,
# stacks the pre-activation version of it.

# %%
fig = diagrams.residual_blocks()  # 64 channels (256 at the bottleneck's ends), 56x56 maps
labels = [t.get_text() for t in fig.axes[0].texts]  # the figure's text, in drawing order
after_sum = [labels[i + 1] for i, text in enumerate(labels) if text == "F(x) + x"]
assert after_sum == ["ReLU", "ReLU", "output"]  # nothing follows the sum in pre-activation
plt.show()

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
# \mathrm{Var}(\mathbf{h}_{\ell+1}) = \mathrm{Var}(\mathbf{h}_\ell)
# + \mathrm{Var}(\mathbf{f}[\mathbf{h}_\ell]) = 2\, \mathrm{Var}(\mathbf{h}_\ell):
# $$
#
# the variance **doubles in every block**, $2^{24} \approx 1.7 \times 10^7$ after 24 of them,
# and the gradients explode with it. Two fixes:
#
# * **BatchNorm** at the start of each branch,
#   $\mathbf{f}[\mathbf{h}] = \mathbf{W}\,\mathrm{ReLU}(\mathrm{BN}(\mathbf{h}))$: the branch
#   now adds variance 1 whatever $\mathrm{Var}(\mathbf{h}_\ell)$ is, so the variance grows only
#   linearly, $1 + \ell$ after $\ell$ blocks;
# * **scaling** each branch by $1/\sqrt{B}$ for $B$ blocks (or initializing its last layer
#   near zero): each block multiplies the variance by about $1 + 1/B$, and all $B$ blocks
#   by about $(1 + 1/B)^B$, less than $e \approx 2.72$ however deep the network.
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
# Seeds 0-3: factor per block 1.90 to 2.05, after 24 blocks 4.9e6 to 3.1e7, with BatchNorm
# 24.3 to 25.2, scaled 2.43 to 2.81 (each run is one random draw of 24 weight matrices).
assert 1.8 < np.exp(np.log(ratios).mean()) < 2.2
assert 2**21 < var[None][-1] < 2**27
assert 20 < var["batchnorm"][-1] < 30
assert 2 < var["scaled"][-1] < 3.5

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
labels = {None: "no normalization", "batchnorm": "BatchNorm in each branch",
          "scaled": "branch scaled by 1/sqrt(24)"}
for fix, v in var.items():
    ax.plot(np.arange(len(v)), v, marker=".", label=labels[fix])
ax.plot(np.arange(25), 2.0 ** np.arange(25), "k:", lw=1, label=r"$2^\ell$")
ax.set(yscale="log", xlabel=r"residual block $\ell$", ylabel=r"variance of $h_\ell$ (log scale)",
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
assert len(layers) == PAPERS["preact_depths"][0] and n_params(resnet200) == 64_666_280
assert round(macs_200 / 1e9, 1) == 14.8
r50 = on_meta(resnet50)
param_ratio = n_params(resnet200) / n_params(r50)
macs_ratio = macs_200 / summary(r50, (1, 3, 224, 224)).total_macs
print(f"versus ResNet-50 ({n_params(r50) / 1e6:.1f} M parameters): {param_ratio:.2f}x the "
      f"parameters, {macs_ratio:.2f}x the multiply-adds")
assert round(param_ratio, 1) == 2.5 and round(macs_ratio, 1) == 3.8
assert round(n_params(r50) / 1e6, 1) == 25.6

# %% [markdown]
# That is 2.5 times the parameters of ResNet-50 (25.6 M) for 3.8 times its multiply-adds.
# The pre-activation paper built it to show that with a clean identity path, depth keeps
# paying off well beyond 152 layers (on CIFAR-10 it went to 1001).

# %% [markdown]
# ### Dense connections: DenseNet
#
# A residual block *adds* its input to its output, so the width stays $C$ however deep the
# stage. **DenseNet** (Huang et al., 2017) takes the other way of reusing earlier features:
# inside a *dense block*, layer $\ell$ receives the *concatenation* of the block's input and
# the outputs of all $\ell - 1$ layers before it,
#
# $$
# x_\ell = H_\ell\big([x_0, x_1, \ldots, x_{\ell-1}]\big),
# $$
#
# where $H_\ell$ is BatchNorm, ReLU and a $3 \times 3$ convolution with only $g$ output
# channels, the **growth rate** $g$ (the paper calls it $k$, our kernel size). Every layer
# is linked to every later one (layer $\ell$ has $\ell$ incoming links, $L(L+1)/2$ in a
# block of $L$ layers), and the concatenated width grows by $g$ per layer: a block whose
# input has $C_0$ channels feeds layer $\ell$ with $C_0 + (\ell - 1) g$ channels and
# outputs $C_0 + L g$. Between blocks a *transition* ($1 \times 1$ convolution and
# $2 \times 2$ average pooling) shrinks the maps and the width again. DenseNet-121 uses
# $g = 32$, a 64-channel stem and blocks of 6, 12, 24 and 16 layers:

# %%
dn = PAPERS["densenet121"]  # growth rate 32, stem of 64 channels, blocks of 6, 12, 24, 16
g, width = dn["growth_rate"], dn["stem"]
for b, L in enumerate(dn["blocks"], start=1):
    reads = [width + i * g for i in range(L)]  # input channels of layers 1..L
    print(f"block {b}: {L:2d} layers read {reads[0]:4d}, {reads[1]:4d}, ..., {reads[-1]:4d} "
          f"channels; the block outputs {width + L * g:4d}")
    assert np.all(np.diff(reads) == g) and reads[-1] + g == width + L * g
    width = width + L * g if b == len(dn["blocks"]) else (width + L * g) // 2  # transition
assert width == 1024  # the classifier's input, as in the paper

# %% [markdown]
# The concatenation has a price in memory. A layer adds only $g$ new channels, but to
# compute its BatchNorm and ReLU it materializes its whole input, all the earlier maps
# again, and backpropagation keeps those tensors until the backward pass. A block of $L$
# layers stores $\sum_{\ell=1}^{L} \big(C_0 + (\ell - 1)g\big) = L C_0 + g L(L-1)/2$ channels
# of maps per stored tensor: quadratic in $L$, where a residual stack of width $C$ stores
# $L C$. We write a dense block in a few lines and count, with a hook on the tensors autograd
# saves for the backward pass, what a training-mode forward pass keeps, next to a stack of
# pre-activation residual blocks with the same depth and the same number of weights:

# %%
def bn_relu_conv(c_in, c_out):
    return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, padding=1,
                                                                   bias=False))


def dense_block(c0, g, L):
    """A dense block as a function: each layer reads the concatenation of all earlier maps."""
    layers = nn.ModuleList(bn_relu_conv(c0 + i * g, g) for i in range(L))

    def forward(x):
        features = [x]
        for layer in layers:
            features.append(layer(torch.cat(features, dim=1)))  # (N, c0 + i g, H, W) -> g
        return torch.cat(features, dim=1)  # (N, c0 + L g, H, W)
    return forward, layers


def saved_maps(forward, x):
    """Feature maps (N x H x W planes) that autograd saves during forward(x)."""
    saved = {}

    def pack(t):
        if t.dim() == 4 and not isinstance(t, nn.Parameter):  # activations, not weights
            saved[t.data_ptr()] = t.shape[0] * t.shape[1]
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward(x)
    return sum(saved.values())


c0, g, side = dn["stem"], dn["growth_rate"], 8
print(" L   dense: weights   maps stored | residual: width   weights   maps stored | ratio")
rng_state = torch.random.get_rng_state()  # these throwaway layers must not shift later draws
maps_ratio = {}  # depth L -> maps stored by the dense block / by the residual stack
for L in (6, 12, 24):
    dense, dense_layers = dense_block(c0, g, L)
    sum_w = L * c0 + g * L * (L - 1) // 2  # total input width of the block's layers
    C = round(np.sqrt(g * sum_w / L))  # residual width with (about) the same conv weights
    residual = nn.Sequential(*[PreActBasicBlock(C, C) for _ in range(L // 2)])  # L convs
    x_d, x_r = torch.randn(1, c0, side, side), torch.randn(1, C, side, side)
    maps_d, maps_r = saved_maps(dense, x_d), saved_maps(residual, x_r)
    w_d, w_r = n_params(dense_layers), n_params(residual)
    print(f"{L:2d}   {w_d:14,} {maps_d:13,} | {C:15d} {w_r:9,} {maps_r:13,} | "
          f"{maps_d / maps_r:.1f}")
    assert maps_d == 2 * sum_w and maps_r == 2 * L * C  # BatchNorm's input and ReLU's output
    assert abs(w_d / w_r - 1) < 0.02  # the same number of weights, to 2%
    maps_ratio[L] = maps_d / maps_r
    assert abs(maps_ratio[L] / np.sqrt(sum_w / (L * g)) - 1) < 0.05  # sqrt(mean width / k)
torch.random.set_rng_state(rng_state)
assert 2 < maps_ratio[6] < maps_ratio[12] < maps_ratio[24] and 3.5 < maps_ratio[24] < 4

# %% [markdown]
# With the same depth and the same number of weights, the dense block keeps about twice as
# many maps as the residual stack at 6 layers and more than three and a half times as many
# at 24. The factor is close to $\sqrt{\bar w / g}$, the square root of the mean input width
# of the block's layers over the growth rate, so it keeps growing with the depth of the
# block, like $\sqrt{L}$. This is
# the sense in which links from all earlier layers "blow up" the activations: parameters are
# cheap in a DenseNet, memory is not. Efficient implementations write all the maps of a block
# into one shared buffer and recompute BatchNorm and ReLU during the backward pass instead
# of storing them, which brings the memory back to linear in $L$ at the cost of extra
# computation.
#
# ## U-Net: an encoder, a decoder, and skips between them
#
# A classifier outputs one label; **semantic segmentation** outputs one per pixel. The
# network must understand the whole object (a large receptive field, hence downsampling)
# and still say exactly where its boundary is (full resolution). The **U-Net**
# (Ronneberger et al., 2015) does both:
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
# Drawn with the encoder going down on the left and the decoder coming back up on the
# right, the network is a U, hence its name. The figure shows the paper's network with the
# shapes (channels $\times$ height $\times$ width) that the package's `UNet` produces on
# the paper's $572 \times 572$ tile. Follow the side length: it halves at every max pooling
# on the way down and doubles at every up-convolution on the way up, while the channels go
# from 64 to 1024 at the bottom and back. The dashed arrows are the skip connections. Their
# labels (568→392 at the top) say that the encoder's map is larger than the decoder's map
# it joins, so it has to be cropped first; the rest of this section explains why and how.

# %%
fig = diagrams.unet()  # the paper's network: depth 4, 64 channels at the top, no padding
labels = [t.get_text().replace(diagrams.TIMES, "x") for t in fig.axes[0].texts]
tile_in, map_out = PAPERS["unet"]["tile"], PAPERS["unet"]["output"]  # 572, 388
assert f"1x{tile_in}x{tile_in}" in labels and f"2x{map_out}x{map_out}" in labels
plt.show()

# %% [markdown]
# The original paper uses *unpadded* convolutions, so each one removes a pixel on every
# side. A 572x572 tile gives a 388x388 segmentation. The package's `UNet(padding=False)`
# is that network; `summary` traces the side length through it (forward hooks on the
# meta device, so the 31-million-parameter model costs nothing).

# %%
tile, out_side = PAPERS["unet"]["tile"], PAPERS["unet"]["output"]  # 572, 388
unet_paper = on_meta(UNet, 1, 2, depth=4, base_width=64, padding=False)
table = summary(unet_paper, (1, 1, tile, tile))
trace = [(r.name, r.output_shape[1], r.output_shape[2]) for r in table
         if r.type in ("MaxPool2d", "ConvTranspose2d") or r.name == "head"
         or r.name.endswith(".3") and r.type == "ReLU"]
print("   ".join(f"{name}: {c}x{s}" for name, c, s in trace))
assert unet_output_size(tile, depth=4, padding=False) == out_side == table[-1].output_shape[-1]
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
# produce (Odena et al., 2016).

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
# rectangles and triangles on textured backgrounds, with a label per pixel (background,
# disk, rectangle, triangle). Every shape and every background draws its own brightness,
# so brightness does not tell the classes apart: a network has to use shape, corners
# against curves, straight edges against round ones. Shapes may overlap, and the later
# one hides the earlier, in the image and in the mask alike. When the two have similar
# brightness, their textures can blur the edge between them until the image no longer
# shows which pixels belong to which shape, and no network can recover the mask there.
# With the generator's default of up to four shapes in a 32x32 image such overlaps are
# common, so we ask for at most two (`max_shapes=2`): the task stays one of shape, with
# far fewer pixels whose label the image does not determine.
#
# We draw three separate sets from the generator, with different seeds: 1200 **training**
# images; 200 **validation** images, watched during training and the place to compare
# choices such as the width, the learning rate, the class weights and the number of epochs;
# and 400 **test** images that nothing looks at until the end. A validation score has been
# selected for, so it flatters the network; only the test score estimates how it does on
# new images.

# %%
SEG = dict(size=32, max_shapes=2, n_train=1200, n_val=200, n_test=400,  # the data
           width=8, epochs=16, batch_size=16, lr=0.01)  # chosen on the validation set
data = dict(size=SEG["size"], max_shapes=SEG["max_shapes"])
x_seg, y_seg = synthetic_segmentation(SEG["n_train"], **data, seed=0)
x_seg_val, y_seg_val = synthetic_segmentation(SEG["n_val"], **data, seed=1)
x_seg_test, y_seg_test = synthetic_segmentation(SEG["n_test"], **data, seed=2)
print("training images:", x_seg.shape, "masks:", y_seg.shape)
share = np.bincount(y_seg.ravel(), minlength=4) / y_seg.size
print("share of training pixels:", ", ".join(
    f"{c} {s:.0%}" for c, s in zip(SEGMENTATION_CLASSES, share, strict=True)))
assert 0.85 < share[0] < 0.9 and share[1:].max() < 0.07 and share[3] < 0.035
seg_loader = make_loader(x_seg, y_seg, batch_size=SEG["batch_size"], shuffle=True, seed=0)
seg_val_loader = make_loader(x_seg_val, y_seg_val, batch_size=100, shuffle=False)

# %% [markdown]
# Nearly nine pixels in ten are background, and only about 3% belong to triangles.
# With plain cross-entropy the rare classes contribute little to the loss, and a network
# that has not yet worked out what a shape is does best by calling it background or the
# most common shape. So we weight each class's pixels in the loss by
#
# $$
# w_c = \sqrt{\bar f / f_c},
# $$
#
# where $f_c$ is the share of class $c$ among the training pixels and $\bar f = 1/K$ the
# mean share: a background pixel counts about half as much as in the plain loss, a
# triangle pixel about three times as much. The square root tempers the weights: the full
# ratio $\bar f / f_c$ would square them, and risk a network that paints triangles over the
# background around them (exercise 5 compares the two).
#
# The network is a padded U-Net of depth 3 with BatchNorm, trained with Adam on batches of
# 16 under a one-cycle schedule: the learning rate rises to its peak in the first 30% of
# the steps and then falls to almost zero ([chapter 4](04-optimization.ipynb)).
# `F.cross_entropy` accepts $(N, K, H, W)$ scores with $(N, H, W)$ labels, and the class
# weights as `weight=`; `fit` then reports pixel accuracy.

# %%
class_weights = torch.as_tensor(np.sqrt(share.mean() / share), dtype=torch.float32)
print("class weights:", ", ".join(
    f"{c} {w:.2f}" for c, w in zip(SEGMENTATION_CLASSES, class_weights.tolist(), strict=True)))
assert 0.5 < class_weights[0] < 0.6 and 2.5 < class_weights[3] < 3.5
seg_loss = partial(F.cross_entropy, weight=class_weights.to(device))

# %% tags=["nbval-ignore-output"]
seed_everything(0)
unet = UNet(1, 4, depth=3, base_width=SEG["width"], batch_norm=True)
opt = torch.optim.Adam(unet.parameters(), lr=SEG["lr"])
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=SEG["lr"],
                                            total_steps=SEG["epochs"] * len(seg_loader))
seg_history = fit(unet, seg_loader, seg_val_loader, epochs=SEG["epochs"], optimizer=opt,
                  scheduler=sched, scheduler_step="step", loss_fn=seg_loss, device=device)

# %% [markdown]
# While the learning rate is high, the validation loss of a network with BatchNorm can
# lie well above the training loss for an epoch or two (exercise 4 provokes it with a
# higher peak learning rate than ours). That is not overfitting, and it is not the
# validation images: it is BatchNorm. In training mode each BatchNorm layer normalizes
# with the statistics of the current batch; in evaluation mode, with running averages in
# which each new batch has weight 0.1, so that they describe roughly the last ten
# batches. While the learning rate is high, Adam changes the weights faster than those
# averages follow, and the network is evaluated with the statistics of weights it no
# longer has. As the learning rate falls, the averages catch up. We check that they have
# at the end: recomputing the statistics from the whole training set with the final
# weights (`momentum=None` makes BatchNorm keep a plain average) changes the final
# validation loss by less than 10%.

# %%
recomputed = copy.deepcopy(unet).train()
for m in recomputed.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.reset_running_stats()
        m.momentum = None  # a plain average over every batch seen
with torch.no_grad():
    for xb, _ in seg_loader:
        recomputed(xb.to(device))  # training mode, no gradients: only the statistics change
val_running = seg_history.epochs[-1].val_loss
val_recomputed, _ = evaluate(recomputed, seg_val_loader, loss_fn=seg_loss)
assert abs(val_recomputed - val_running) < 0.1 * val_running  # the averages caught up
print("final validation loss with recomputed statistics within 10% of the running ones:",
      abs(val_recomputed - val_running) < 0.1 * val_running)

# %% [markdown]
# Pixel accuracy is a poor score for segmentation: more than 85% of the pixels are
# background, so predicting "background" everywhere already scores above 85%. The standard
# score is the
# **intersection over union** of each class $c$: with $P_c$ the pixels predicted as $c$
# and $T_c$ those labelled $c$,
#
# $$
# \mathrm{IoU}_c = \frac{|P_c \cap T_c|}{|P_c \cup T_c|}
# = \frac{\mathrm{TP}_c}{\mathrm{TP}_c + \mathrm{FP}_c + \mathrm{FN}_c},
# $$
#
# and the **mean IoU** averages it over the classes. Now, and only now, we use the test
# set. Directly from the definition, with boolean masks, and then with
# `d2lcnn.metrics.iou`, which reads it off a confusion matrix:

# %%
pred_seg = predict(unet, torch.as_tensor(x_seg_test), device=device).argmax(dim=1).numpy()
iou_by_hand = np.array([((pred_seg == c) & (y_seg_test == c)).sum()
                        / ((pred_seg == c) | (y_seg_test == c)).sum() for c in range(4)])
iou_package = iou(pred_seg, y_seg_test, num_classes=4)
assert np.allclose(iou_by_hand, iou_package)

# %% tags=["nbval-ignore-output"]
fg_iou = iou(pred_seg > 0, y_seg_test > 0, num_classes=2)[1]  # any shape vs background
miou = mean_iou(pred_seg, y_seg_test, num_classes=4)
print("test IoU per class: " + ", ".join(
    f"{c} {v:.2f}" for c, v in zip(SEGMENTATION_CLASSES, iou_package, strict=True)))
print(f"test pixel accuracy {pixel_accuracy(pred_seg, y_seg_test):.1%}   mean IoU {miou:.2f}"
      f"   shape-vs-background IoU {fg_iou:.2f}")
# Seeds 0-3 (data, initialization and shuffling all changed): triangle, always the lowest,
# 0.75 to 0.78; disk 0.85 to 0.92; rectangle 0.90 to 0.94; shape vs background 0.95 to 0.96.
assert iou_package.min() >= 0.7  # every class, on held-out images
assert np.argmin(iou_package) == 3  # the triangles are the hardest
assert fg_iou >= 0.9

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
# On the held-out images every class reaches an IoU of at least 0.7
# (over four runs with different data, initialization and shuffling, the lowest, always
# the triangle's, ranged from 0.75 to 0.78; disks scored 0.85 to 0.92 and rectangles 0.90
# to 0.94). Finding the shapes is the easier half of the task: shape
# against background reaches an IoU above 0.9. Naming them is harder, because telling a
# disk from a triangle needs a view of the whole shape, its corners and its curved or
# straight edges, and a small shape has few pixels to show them. The skip connections are
# what keep the boundaries sharp (exercise 3).
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

paper = PAPERS["hourglass"]
hg_paper = on_meta(StackedHourglass, paper["joints"], n_stacks=paper["stacks"],
                   channels=paper["channels"], order=4)
hg_table = summary(hg_paper, (1, 3, paper["image"], paper["image"]))
heads = [r.output_shape for r in hg_table if r.name.startswith("heads.")]
print(f"the paper's {paper['stacks']}-stack network: {len(heads)} predictions of shape "
      f"{heads[0]}, {hg_table.total_params:,} parameters")
assert heads == [(1, paper["joints"], paper["heatmap"], paper["heatmap"])] * paper["stacks"]
assert hg_table.total_params == 25_434_112

# %% [markdown]
# The figure draws the first two of those eight stacks, with the shapes the package's
# `StackedHourglass` produces on a $256 \times 256$ image. The stem (a $7 \times 7$
# convolution and a pooling) turns the image into 256 maps of $64 \times 64$, and every
# stack works at that size; inside each hourglass the side shrinks to 4 and grows back to
# 64. Now look for the dashed red boxes: every stack's head predicts 16 heatmaps, one per
# joint, and every prediction has its own loss (the paper compares it with the target
# heatmaps by mean squared error). Between two stacks, the features and the prediction each
# pass a $1 \times 1$ convolution and are added to the stack's input (the line along the
# top), so the second hourglass starts from the first one's estimate, not from scratch.

# %%
fig = diagrams.hourglass()  # 2 stacks of the paper's size on a 256x256 image
labels = [t.get_text().replace(diagrams.TIMES, "x") for t in fig.axes[0].texts]
heatmaps = f"{paper['joints']}x{paper['heatmap']}x{paper['heatmap']}"  # 16x64x64
assert labels.count(heatmaps) == 2 and labels.count("MSE vs. target") == 2  # a loss per stack
plt.show()

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
# times more. The same is true of the ImageNet models: the classification task has
# 1,281,167 training images (Russakovsky et al., 2015), and most models have 10 to 100 times
# more parameters than that (Prince, 2023, fig. 20.3). From the package's models:

# %%
N_IMAGENET = PAPERS["imagenet_train_images"]  # 1,281,167
low, high = PAPERS["params_per_example"]  # 10, 100
ratio = {name: n_params(on_meta(factory)) / N_IMAGENET for name, factory in
         [("ResNet-18", resnet18), ("ResNet-50", resnet50), ("ResNet-152", resnet152),
          ("VGG-16", vgg16)]}
ratio["ResNet-200"] = n_params(resnet200) / N_IMAGENET
for name, r in ratio.items():
    print(f"{name:10s} {r:6.1f} parameters per ImageNet training image")
assert all(low <= ratio[k] <= high for k in ("ResNet-50", "ResNet-152", "ResNet-200"))
assert 0.9 * low < ratio["ResNet-18"] < low and high < ratio["VGG-16"] < 1.1 * high

# %% [markdown]
# ResNet-18 is just below the range and VGG-16 just above; the rest fall inside it. Our
# small models are no different (the U-Net counted per training image, then per labelled
# pixel):

# %%
ours = {
    "ResNet-20 (width 8), digits": (n_params(CifarResNet(20, 10, 1, base_width=8)),
                                    len(digits.y_train)),
    f"U-Net (depth 3, width {SEG['width']}), shapes": (n_params(unet), len(y_seg)),
}
for name, (p, n) in ours.items():
    ratio[name] = p / n
    print(f"{name:34s} {p:7,} parameters / {n:5,} images = {p / n:5.1f}x")
assert all(ratio[name] > 10 for name in ours)
per_pixel = n_params(unet) / y_seg.size  # every pixel of a mask is a labelled example
print(f"U-Net, counting labelled pixels ({y_seg.size:,}) instead: {per_pixel:.2f}x")
assert round(n_params(unet) / len(y_seg)) == 101 and round(per_pixel, 2) == 0.10

# %%
fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
names = list(ratio)
ax.barh(names, [ratio[n] for n in names],
        color=["tab:blue"] * 5 + ["tab:orange"] * len(ours))
ax.axvspan(low, high, color="0.9", zorder=0, label=f"{low}-{high}x")
ax.set(xscale="log", xlabel="parameters / training examples (log scale)",
       title="Overparameterization: ImageNet models (blue) and this chapter's (orange)")
ax.invert_yaxis()
ax.legend(loc="upper right")
plt.show()

# %% [markdown]
# Classical statistics says such models should overfit hopelessly; they do not, and the
# theory is only starting to explain why. One line of work proves that gradient descent
# from a random initialization reaches zero training loss in sufficiently overparameterized
# networks (Du et al., 2019, for two-layer ReLU networks, then for deep ResNets),
# but with widths far beyond practice, polynomial in the number of training examples.
# An intuition (Sejnowski, 2020): with so many parameters there are not a few good
# solutions to find but a huge degenerate family of them, "a haystack of needles" rather
# than a needle in a haystack. For the U-Net, counting labelled *pixels* instead of images
# turns 101 parameters per example into about a tenth of one, which is one reason
# segmentation networks can be trained on a few dozen images (the original U-Net used 30).
#
# ## What to remember
#
# * Deep plain networks **shatter** their gradients: at 24 layers, neighbouring inputs have
#   unrelated gradients. Residual connections keep them correlated.
# * The **degradation problem**: a deeper plain network can train *worse* than a shallower
#   one; with shortcuts it does not. The shortcut makes "do nothing" easy to learn.
# * A residual network with $B$ blocks **unravels** into $2^B$ paths of binomially
#   distributed lengths: an implicit ensemble of shallower networks.
# * A branch that ends with a ReLU can only add; **pre-activation** blocks (BN-ReLU-conv)
#   add either sign and leave the identity path clean, and need a linear layer first.
# * Without normalization the variance **doubles per block**; BatchNorm in the branch makes
#   the growth linear, scaling the branch bounds it. A basic block with BN has
#   $18C^2 + 4C$ parameters, which makes ResNet-200 (64.7 M parameters) affordable.
# * **DenseNet** concatenates instead of adding: layer $\ell$ of a dense block reads
#   $C_0 + (\ell - 1)g$ channels (growth rate $g$), so the stored maps grow quadratically with
#   the block's depth; for the same weights it keeps 2 to 4 times the activations of a
#   residual stack.
# * A **U-Net** is an encoder and a decoder joined by concatenating skip connections; with
#   unpadded convolutions the encoder map is center-cropped first, the odd pixel off the
#   bottom/right. Score segmentation by **IoU** per class, not pixel accuracy, on test
#   images kept apart from the validation images you tuned on; weight rare classes in the
#   loss.
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
# 4. **Stale statistics.** Train the U-Net with a peak learning rate four times this
#    chapter's and plot the validation loss. After the epoch with the largest jump,
#    recompute the BatchNorm statistics from the training set (as in the cell after the
#    training) and evaluate again. Does the jump survive? Then try `momentum=0.5` in every
#    BatchNorm layer instead.
# 5. **A better segmenter (small project).** Improve the smallest per-class IoU on the
#    validation set: more epochs, a wider network, bilinear upsampling, no class weights
#    or full inverse-frequency weights, more images, larger images
#    (`synthetic_segmentation(size=64)`). Which change helps the weakest class most per
#    second of training? Check your best choice once on the test set.
# 6. **Lesion study (small project).** Train `resnet20` and `plain20` (width 8) on the
#    digits, then delete one block at a time (replace it by the identity; for the plain net
#    only where shapes allow) and measure the test accuracy. Does the ensemble view predict
#    what you see?
#
# The fourth homework,
# [`homework/hw4-resnet-unet/hw4-resnet-unet.ipynb`](homework/hw4-resnet-unet/hw4-resnet-unet.ipynb)
# (or the copy your instructor hands out), asks you to write a residual block and a small
# U-Net in PyTorch with prescribed shapes and parameter counts, and to train them to a
# stated score.

# %% [markdown]
# ## References
#
# - Balduzzi, D., Frean, M., Leary, L., Lewis, J. P., Ma, K. W.-D., & McWilliams, B. (2017). The
#   shattered gradients problem: If resnets are the answer, then what is the question? *ICML*.
#   [arXiv:1702.08591](https://arxiv.org/abs/1702.08591)
# - Du, S. S., Zhai, X., Poczos, B., & Singh, A. (2019). Gradient descent provably optimizes
#   over-parameterized neural networks. *ICLR*.
#   [arXiv:1810.02054](https://arxiv.org/abs/1810.02054)
# - Du, S. S., Lee, J. D., Li, H., Wang, L., & Zhai, X. (2019). Gradient descent finds global
#   minima of deep neural networks. *ICML*. [arXiv:1811.03804](https://arxiv.org/abs/1811.03804)
# - He, K., Zhang, X., Ren, S., & Sun, J. (2016). Deep residual learning for image recognition.
#   *CVPR*. [arXiv:1512.03385](https://arxiv.org/abs/1512.03385)
# - He, K., Zhang, X., Ren, S., & Sun, J. (2016). Identity mappings in deep residual networks.
#   *ECCV*. [arXiv:1603.05027](https://arxiv.org/abs/1603.05027)
# - Huang, G., Liu, Z., van der Maaten, L., & Weinberger, K. Q. (2017). Densely connected
#   convolutional networks. *CVPR*. [arXiv:1608.06993](https://arxiv.org/abs/1608.06993)
# - Newell, A., Yang, K., & Deng, J. (2016). Stacked hourglass networks for human pose
#   estimation. *ECCV*. [arXiv:1603.06937](https://arxiv.org/abs/1603.06937)
# - Odena, A., Dumoulin, V., & Olah, C. (2016). Deconvolution and checkerboard artifacts.
#   *Distill*. [doi:10.23915/distill.00003](https://doi.org/10.23915/distill.00003)
# - Prince, S. J. D. (2023). *Understanding Deep Learning*. MIT Press.
#   [udlbook.github.io/udlbook](https://udlbook.github.io/udlbook/)
# - Ronneberger, O., Fischer, P., & Brox, T. (2015). U-Net: Convolutional networks for
#   biomedical image segmentation. *MICCAI*.
#   [arXiv:1505.04597](https://arxiv.org/abs/1505.04597)
# - Russakovsky, O., Deng, J., Su, H., et al. (2015). ImageNet large scale visual recognition
#   challenge. *IJCV*. [arXiv:1409.0575](https://arxiv.org/abs/1409.0575)
# - Sejnowski, T. J. (2020). The unreasonable effectiveness of deep learning in artificial
#   intelligence. *PNAS*. [doi:10.1073/pnas.1907373117](https://doi.org/10.1073/pnas.1907373117)
# - Veit, A., Wilber, M., & Belongie, S. (2016). Residual networks behave like ensembles of
#   relatively shallow networks. *NeurIPS*. [arXiv:1605.06431](https://arxiv.org/abs/1605.06431)
