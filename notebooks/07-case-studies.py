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
# # Case studies: from LeNet-5 to ResNet
#
# Between 2012 and 2015 the top-5 error of the best ImageNet classifier fell more than
# fourfold, from 15.3% of the test images to 3.57%. Each year's leading networks changed
# something specific: ReLUs and dropout, smaller first filters, uniform stacks of $3 \times
# 3$ convolutions, parallel branches with cheap $1 \times 1$ reductions, and finally
# shortcut connections that let a network be 152 layers deep. The architectures are worth
# studying one by one, because almost every network you will design borrows from them, and
# because each is small enough to be understood completely from a handful of numbers: the
# shape of every layer's output, how many parameters it owns, how much memory its output
# takes, and how many multiply-adds it costs.
#
# This chapter computes those numbers for LeNet-5, AlexNet, ZFNet, VGG, GoogLeNet and ResNet
# and checks every figure that the lecture notes quote (sometimes finding that a slide's
# figure is off, and saying by how much). It writes the published training recipes as
# ready-to-use arguments for `fit`, plots a decade of ImageNet results, and then trains
# what a laptop can train in a minute: LeNet-5 on real handwritten digits, next to a
# slimmed-down VGG and ResNet on the same data.
#
# The models come from `d2lcnn.torch.models`; `d2lcnn.summary.summary` tabulates them. The
# big ones are built on PyTorch's `meta` device, which records shapes but allocates no
# memory, so a 138-million-parameter VGG costs nothing to inspect.
#
# **Learning goals.** After this chapter you can
#
# - compute the output shape, parameters, activation memory and multiply-adds of every
#   layer of a network, by hand and with `summary`, and say where a network keeps its
#   parameters and where it spends its computation;
# - explain what each of LeNet-5, AlexNet, ZFNet, VGG, GoogLeNet and ResNet changed, and
#   why ($3 \times 3$ stacks, $1 \times 1$ reductions, global average pooling, residual
#   blocks and bottlenecks);
# - write a published training recipe as arguments for `fit`, and train small versions of
#   these networks on real data.
#
# **Prerequisites:** [Convolution](01-convolution.ipynb) (chapter 1),
# [Optimization](04-optimization.ipynb) (chapter 4), [Normalization](05-normalization.ipynb)
# (chapter 5) and [Dropout and ensembles](06-dropout-and-ensembles.ipynb) (chapter 6).

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
import time
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from d2lcnn import diagrams
from d2lcnn import torch as td
from d2lcnn.data import load_dataset, make_loader, sample_image
from d2lcnn.data.transforms import compose, random_crop, random_flip, random_translate
from d2lcnn.geometry import conv2d_output_shape, receptive_field
from d2lcnn.summary import summary
from d2lcnn.torch import models as M
from d2lcnn.train import evaluate, fit, seed_everything

device = td.device("auto")  # CUDA if present, else MPS, else the CPU
# The networks trained here are tiny: splitting their small batches over several CPU threads
# costs more in synchronization than it saves, most of all on a shared machine. (This only
# concerns the CPU; on a GPU it changes nothing.)
torch.set_num_threads(1)


def on_meta(factory, *args, **kwargs):
    """Build a model on the meta device: every shape, no storage."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


def n_params(model):
    """Number of parameters of a model (biases included)."""
    return sum(p.numel() for p in model.parameters())


# %% [markdown]
# ## The published results
#
# The ImageNet results this chapter quotes come from the papers, and they all live in the
# one table below, which the text checks and the timeline at the end plots. Each is a top-5
# error (the fraction of images whose true class is not among the network's five best
# guesses) on the 1000-class task of the ImageNet Large Scale Visual Recognition Challenge,
# ILSVRC (Russakovsky et al., 2015). Most are on the challenge's test set, scored by its
# server; two are on the 50,000 validation images. Almost every entry averaged several
# networks, and two used extra training data; the table says which.

# %%
class Published(NamedTuple):
    """One published ILSVRC classification result."""

    year: int  # of the result: the ILSVRC edition for a challenge entry, else the paper's
    top5: float  # top-5 error in %
    split: str  # "test" (the challenge's server) or "val" (the 50,000 validation images)
    nets: int | None  # networks averaged (None: not stated, or not a neural network)
    extra_data: bool  # trained with images from outside the ILSVRC training set


PUBLISHED = {
    # Krizhevsky et al. (2012), Table 2; the "*" rows pre-train two of the networks on the
    # 2011 Fall release of ImageNet. The runner-up's 26.2% is from the same table.
    "AlexNet, 1 CNN (val)": Published(2012, 18.2, "val", 1, False),
    "AlexNet, 7 CNNs (val)": Published(2012, 15.4, "val", 7, True),
    "AlexNet, 5 CNNs": Published(2012, 16.4, "test", 5, False),
    "AlexNet, 7 CNNs": Published(2012, 15.3, "test", 7, True),  # the winning entry
    "runner-up 2012 (SIFT + FVs)": Published(2012, 26.2, "test", None, False),
    # Zeiler and Fergus (2014), Table 2: the ensemble of their networks (a) and (b)
    "ZFNet, 6 CNNs": Published(2013, 14.8, "test", 6, False),
    # Szegedy et al. (2015), Table 2: the ILSVRC 2013 winner, without and with extra data
    "Clarifai": Published(2013, 11.7, "test", None, False),
    "Clarifai, extra data": Published(2013, 11.2, "test", None, True),
    # Simonyan and Zisserman (2015), Table 7: the ILSVRC submission (2nd place)
    "VGG, 7 CNNs": Published(2014, 7.3, "test", 7, False),
    # Szegedy et al. (2015), Table 2 (and Table 3: 7 networks, 144 crops): 1st place
    "GoogLeNet, 7 CNNs": Published(2014, 6.67, "test", 7, False),
    # He et al. (2016), Table 5: an ensemble of six networks of different depths, 1st place
    "ResNet, 6 CNNs": Published(2015, 3.57, "test", 6, False),
}
WINNERS = {2012: "AlexNet, 7 CNNs", 2013: "Clarifai", 2014: "GoogLeNet, 7 CNNs",
           2015: "ResNet, 6 CNNs"}  # first place of each year, by the challenge's ranking
top5 = {name: r.top5 for name, r in PUBLISHED.items()}  # the numbers the text quotes
winning = [PUBLISHED[WINNERS[y]].top5 for y in sorted(WINNERS)]
print("winners' top-5 error (%):", dict(zip(sorted(WINNERS), winning, strict=True)))
assert winning == sorted(winning, reverse=True) == [15.3, 11.7, 6.67, 3.57]
assert winning[0] / winning[-1] > 4  # "more than fourfold"


# %% [markdown]
# ## Reading an architecture by its numbers
#
# Four numbers describe what a convolutional layer costs. Take an input of $C_{in}$ maps
# of size $H \times W$ and $C_{out}$ filters of size $k \times k$ with stride $s$ and
# padding $p$ (and, as in AlexNet, possibly $G$ groups of channels that do not see each
# other). Then the output is $H' \times W'$ with
#
# $$
# H' = \left\lfloor \frac{H + 2p - k}{s} \right\rfloor + 1, \qquad
# \text{params} = \Big(k^2 \frac{C_{in}}{G} + 1\Big) C_{out},
# $$
#
# $$
# \text{activations} = C_{out} H' W', \qquad
# \text{MACs} = C_{out} H' W' \cdot k^2 \frac{C_{in}}{G}.
# $$
#
# The activations are the values the layer's output holds (4 bytes each in float32), which
# the forward pass must keep for the backward pass. The multiply-adds (MACs) count one per
# filter weight per output position: every weight is used once at every output position,
# so MACs $=$ weights $\times\, H' W'$. The papers of this chapter call the same
# count "FLOPs" or "ops". A fully connected layer from $D_{in}$ to $D_{out}$ units has
# $(D_{in} + 1) D_{out}$ parameters and $D_{in} D_{out}$ MACs: it is a convolution whose
# filter covers the whole input. Pooling layers have no parameters and, by the papers'
# convention, no MACs.
#
# Written out for a single layer:

# %%
def conv_numbers(c_in, size, c_out, k, *, stride=1, padding=0, groups=1):
    """Output side, weights, biases, output values and multiply-adds of one square conv."""
    side = (size + 2 * padding - k) // stride + 1  # floor, as every framework does
    weights = k * k * (c_in // groups) * c_out  # the "not counting biases" count
    return dict(side=side, weights=weights, biases=c_out, values=c_out * side * side,
                macs=side * side * weights)  # each weight is used once per output position


# %% [markdown]
# AlexNet's first layer applies 96 filters of size $11 \times 11$ with stride 4 and no
# padding to a $227 \times 227 \times 3$ image. The slide's question, "what is the output
# volume?", has the answer $(227 - 11)/4 + 1 = 55$; the next question, "how many
# parameters?", has the answer $11 \cdot 11 \cdot 3 \cdot 96 = 34{,}848$ weights, the
# slide's "35K", plus 96 biases.

# %%
conv1 = conv_numbers(3, 227, 96, 11, stride=4)
print("CONV1:", ", ".join(f"{key} {value:,}" for key, value in conv1.items()))
assert conv1["side"] == (227 - 11) // 4 + 1 == 55 and (227 - 11) % 4 == 0  # the stride fits
assert conv1["weights"] == 11 * 11 * 3 * 96 == 34_848 and round(conv1["weights"], -3) == 35_000
assert conv1["values"] == 55 * 55 * 96 == 290_400 and conv1["macs"] == 105_415_200

# %% [markdown]
# The handwritten notes feed AlexNet $224 \times 224$ images "with zero padding" instead.
# That works only approximately: with 2 pixels of padding the windows do not tile the
# padded image ($224 + 4 - 11 = 217$ is not a multiple of 4), PyTorch floors to 55 and the
# last column is never read. `strict=True` refuses, which is why the slides (and our
# `AlexNet`) use 227.

# %%
assert conv2d_output_shape(224, 11, stride=4, padding=2) == (55, 55)
try:
    conv2d_output_shape(224, 11, stride=4, padding=2, strict=True)
except ValueError as err:
    print("strict:", str(err).split(";")[0])

# %% [markdown]
# `summary(model, input_shape)` does the same bookkeeping for every layer of a model, by
# running one forward pass with a hook on each layer. Before trusting it with VGG, we check
# it against the hand formula on every convolution of AlexNet, following the spatial size
# through the network.

# %%
alexnet = on_meta(M.AlexNet)  # 1000 classes, 227x227 inputs, a single "tower"
alex_table = summary(alexnet, (1, 3, 227, 227))
modules = dict(alexnet.named_modules())
side, checked = 227, 0
for row in alex_table:
    layer = modules[row.name]
    if isinstance(layer, nn.Conv2d):
        n = conv_numbers(layer.in_channels, side, layer.out_channels, layer.kernel_size[0],
                         stride=layer.stride[0], padding=layer.padding[0], groups=layer.groups)
        assert row.output_shape == (1, layer.out_channels, n["side"], n["side"])
        assert row.params == n["weights"] + n["biases"] and row.macs == n["macs"]
        assert row.activation_bytes == 4 * n["values"]  # float32
        checked += 1
    if len(row.output_shape) == 4:
        side = row.output_shape[-1]  # the next layer's input side
print(f"summary agrees with the formulas on all {checked} convolutions of AlexNet")
assert checked == 5

# %% [markdown]
# One more tool. The lecture summarizes the classic networks by a pattern,
#
# $$
# \text{INPUT} \to \big[(\text{CONV} \to \text{RELU}) \times L_{conv} \to
# \text{POOL?}\big] \times B \to (\text{FC} \to \text{RELU}) \times L_{fc} \to \text{FC}
# \to \text{SOFTMAX},
# $$
#
# with $L_{conv}$ convolutions per block (up to about 5), $B$ blocks (possibly many) and
# $0 \le L_{fc} \le 2$ hidden fully connected layers. For a network that is a simple chain
# of layers we can read $L_{conv}$ (per block), $B$ and $L_{fc}$ off the list of its
# layers:

# %%
SHORT = {nn.Conv2d: "CONV", nn.Linear: "FC", nn.MaxPool2d: "POOL", nn.AvgPool2d: "POOL"}


def layer_chain(model):
    """The conv, pool and FC layers of a chain-shaped model, in order, as short names."""
    return [SHORT[type(m)] for m in model.modules() if type(m) in SHORT]


def typical_pattern(model):
    """L_conv of each [(CONV-RELU)*L_conv-POOL?] block, and L_fc hidden FC layers."""
    blocks, n = [], 0
    for name in layer_chain(model):
        if name == "CONV":
            n += 1
        elif name == "POOL" and n:
            blocks, n = blocks + [n], 0
    blocks += [n] if n else []  # a last run of convs with no pool after it
    return blocks, layer_chain(model).count("FC") - 1  # the last FC gives the class scores


# %% [markdown]
# ## LeNet-5 (1998)
#
# LeNet-5 (LeCun et al., 1998) read handwritten digits, and versions of it were deployed to read the
# amounts on bank cheques in the late 1990s. It already has everything: $5 \times 5$
# convolutions with stride 1, $2 \times 2$ subsampling with stride 2, alternated, and a
# classifier on top. The input is $32 \times 32$: the $28 \times 28$ MNIST digits padded by
# 2 pixels, so that the third convolution reduces a $5 \times 5$ map to a single position.
# The original used tanh-like units and average pooling with trainable coefficients; the
# package's `LeNet5` keeps tanh and average pooling by default and takes ReLU and max
# pooling as options, which train faster.

# %%
lenet = M.LeNet5(10)
lenet_table = summary(lenet, (1, 1, 32, 32))
print(lenet_table)
shapes = [r.output_shape[1:] for r in lenet_table if r.type in ("Conv2d", "AvgPool2d")]
assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
assert all(m.kernel_size == (5, 5) and m.stride == (1, 1)
           for m in lenet.modules() if isinstance(m, nn.Conv2d))
assert all(m.kernel_size == 2 and m.stride == 2
           for m in lenet.modules() if isinstance(m, nn.AvgPool2d))
assert lenet_table.total_params == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
assert lenet_table.total_macs == 416_520  # per 32x32 image
assert lenet_table.total_params / 62_378_344 < 0.001  # vs AlexNet, below
print("-".join(layer_chain(lenet)))
assert layer_chain(lenet) == ["CONV", "POOL", "CONV", "POOL", "CONV", "FC", "FC"]

# %% [markdown]
# The same network drawn as a pipeline, with the paper's layer names and the output shape
# of each layer (channels $\times$ height $\times$ width), read off a forward pass of the
# package's model. Follow the height and width from left to right: $32 \to 28 \to 14 \to 10
# \to 5 \to 1$. Each $5 \times 5$ convolution trims 4 pixels, each subsampling halves the
# map, and by C5 a single position is left, so C5 sees the whole $16 \times 5 \times 5$
# volume at once and works like a fully connected layer. Meanwhile the channels grow from 1
# to 6, 16 and 120.

# %%
fig = diagrams.lenet5()
plt.show()

# %% [markdown]
# The slide writes the architecture as CONV-POOL-CONV-POOL-CONV-FC. Our chain has a second
# FC at the end because the original output layer was not a fully connected layer but ten
# "Euclidean radial basis function" units, each comparing the 84 features of F6 with a
# fixed prototype of its digit; we use an ordinary linear layer, as almost every
# re-implementation does. LeNet-5 has 61,706 parameters, about 0.4 million multiply-adds
# per image, and 0.1% of AlexNet's size.
#
# ## AlexNet (2012)
#
# Krizhevsky, Sutskever and Hinton won ILSVRC 2012 with a top-5 test error of 15.3%,
# against 26.2% for the runner-up, which did not use a neural network (Table 2 of
# Krizhevsky et al., 2012). The winning entry averaged seven networks, two of which had first been
# trained on the larger 2011 Fall release of ImageNet; five networks trained on the
# challenge's data alone scored 16.4%, the number often quoted (and the one the GoogLeNet
# paper compares against), and a single network 18.2% on the validation set. AlexNet is
# LeNet made bigger and trained on 1.2 million images with two GPUs. The table is the
# slide's layer-by-layer architecture, computed:

# %%
assert (top5["AlexNet, 7 CNNs"], top5["runner-up 2012 (SIFT + FVs)"]) == (15.3, 26.2)
assert (top5["AlexNet, 5 CNNs"], top5["AlexNet, 1 CNN (val)"]) == (16.4, 18.2)
assert PUBLISHED["AlexNet, 7 CNNs"].extra_data and not PUBLISHED["AlexNet, 5 CNNs"].extra_data
print(alex_table)

# %% [markdown]
# As a picture (the two normalization layers and the final adaptive pooling change no
# shape and are left out), AlexNet reads like a bigger LeNet on two rows. The spatial size
# falls fast, $227 \to 55 \to 27 \to 13 \to 6$, mostly in CONV1 with its $11 \times 11$
# filters at stride 4 and in the three overlapping $3 \times 3$ poolings with stride 2, while
# the channels grow to 384. After POOL3 the $256 \times 6 \times 6$ maps are flattened into
# the 9216 inputs of FC6. The next cell checks these shapes against the slide's table and
# counts where the parameters and the multiply-adds are: keep an eye on the three purple
# FC boxes at the end, only three of the eleven layers drawn.

# %%
fig = diagrams.alexnet()
plt.show()

# %%
slide_rows = [  # the slide's table: (layer, output shape as C, H, W)
    ("Conv2d", (96, 55, 55)), ("MaxPool2d", (96, 27, 27)), ("LocalResponseNorm", (96, 27, 27)),
    ("Conv2d", (256, 27, 27)), ("MaxPool2d", (256, 13, 13)),
    ("LocalResponseNorm", (256, 13, 13)),
    ("Conv2d", (384, 13, 13)), ("Conv2d", (384, 13, 13)), ("Conv2d", (256, 13, 13)),
    ("MaxPool2d", (256, 6, 6)), ("Linear", (4096,)), ("Linear", (4096,)), ("Linear", (1000,)),
]
kept = {"Conv2d", "MaxPool2d", "LocalResponseNorm", "Linear"}
assert [(r.type, r.output_shape[1:]) for r in alex_table if r.type in kept] == slide_rows
assert all(r.params == 0 for r in alex_table if r.type in ("MaxPool2d", "LocalResponseNorm"))
fcs = [r for r in alex_table if r.type == "Linear"]
assert fcs[0].params == 6 * 6 * 256 * 4096 + 4096  # FC6 reads 9216 = 6 x 6 x 256 values
alex_fc = sum(r.params for r in fcs)
alex_conv_macs = sum(r.macs for r in alex_table if r.type == "Conv2d")
print(f"parameters {alex_table.total_params:,}: {alex_fc / alex_table.total_params:.1%} "
      f"in the three FC layers")
print(f"multiply-adds {alex_table.total_macs:,}: "
      f"{alex_conv_macs / alex_table.total_macs:.1%} in the five conv layers")
assert alex_table.total_params == 62_378_344 and alex_fc == 58_631_144
assert alex_fc / alex_table.total_params > 0.93 and alex_conv_macs / alex_table.total_macs > 0.94

# %% [markdown]
# Two numbers frame everything that follows: **94% of AlexNet's parameters sit in the
# three fully connected layers, and 95% of its computation in the five convolutions**.
# The first layer alone, with its 34,848 weights, costs 105 million multiply-adds, more
# than FC6 with its 37.7 million weights (a weight of FC6 is used once per image; a weight
# of CONV1 at each of $55 \times 55$ positions).
#
# The "60 million parameters" of the paper are the two-GPU network: each GPU held half of
# every layer's filters, and CONV2, CONV4 and CONV5 only saw the maps on their own GPU, which
# `groups=2` reproduces. The output shapes are the same, and 1.4 million weights fewer:

# %%
alexnet_2gpu = on_meta(M.AlexNet, one_tower=False)
alex2_table = summary(alexnet_2gpu, (1, 3, 227, 227))
print(f"two towers: {alex2_table.total_params:,} parameters, "
      f"{alex2_table.total_macs / 1e9:.3f} G multiply-adds "
      f"(one tower: {alex_table.total_macs / 1e9:.3f} G)")
assert alex2_table.total_params == 60_965_224 and round(alex2_table.total_params, -6) == 61e6
assert [r.output_shape for r in alex2_table] == [r.output_shape for r in alex_table]
assert alex2_table.total_macs == 724_406_816 and alex_table.total_macs == 1_135_256_096
assert alex_table.total_params - alex2_table.total_params == 1_413_120

# %% [markdown]
# Looking back, the slides list what made AlexNet work: the first large-scale use of
# ReLU (7 of them here, after every conv and hidden FC layer), "local response
# normalization" layers (after POOL1 and POOL2; no longer used), heavy data augmentation,
# dropout with $p_{drop} = 0.5$ before FC7 and FC8, and an ensemble of 7 networks that
# brought the validation error from 18.2% for one network to 15.4% (15.3% on the test
# set).

# %%
count = {kind: sum(isinstance(m, kind) for m in alexnet.modules())
         for kind in (nn.ReLU, nn.LocalResponseNorm, nn.Dropout)}
print({kind.__name__: c for kind, c in count.items()})
assert count == {nn.ReLU: 7, nn.LocalResponseNorm: 2, nn.Dropout: 2}
assert all(m.p == 0.5 for m in alexnet.modules() if isinstance(m, nn.Dropout))
assert (top5["AlexNet, 1 CNN (val)"], top5["AlexNet, 7 CNNs (val)"]) == (18.2, 15.4)
blocks, l_fc = typical_pattern(alexnet)
print(f"[(CONV-RELU)*L_conv-POOL]*B with L_conv = {blocks}, B = {len(blocks)}; "
      f"(FC-RELU)*L_fc with L_fc = {l_fc}")
assert (blocks, l_fc) == ([1, 1, 3], 2)

# %% [markdown]
# ### The training recipe as a `fit` configuration
#
# The rest of the recipe on the slide: batch size 128, SGD with momentum 0.9, learning rate
# $10^{-2}$ divided by 10 by hand whenever the validation accuracy stopped improving, and
# L2 weight decay $5 \cdot 10^{-4}$. The paper trained for roughly 90 passes over the data.
# Everything except the data fits in a few objects. "Divide by 10 when validation stalls"
# is `ReduceLROnPlateau(factor=0.1)`, which `fit` steps with the validation loss after
# every epoch. The augmentation takes a random $227 \times 227$ crop of a $256 \times 256$
# image and flips it left-right half of the time (the paper also jittered the colours
# along their principal components).

# %%
def alexnet_recipe(model, generator):
    """The lecture's AlexNet recipe: (batch size, augmentation, keyword arguments of fit)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1)
    augment = compose(lambda x: random_crop(x, 227, generator=generator),
                      lambda x: random_flip(x, generator=generator))
    return 128, augment, dict(epochs=90, optimizer=optimizer, scheduler=scheduler)


batch_size, augment, fit_kwargs = alexnet_recipe(alexnet, torch.Generator().manual_seed(0))
print(fit_kwargs["optimizer"])
print(f"ReduceLROnPlateau(factor={fit_kwargs['scheduler'].factor}), batch size {batch_size}")
group = fit_kwargs["optimizer"].param_groups[0]
assert (group["lr"], group["momentum"], group["weight_decay"]) == (1e-2, 0.9, 5e-4)
photo = torch.as_tensor(sample_image("astronaut", gray=False, size=256)).permute(2, 0, 1)
assert augment(photo).shape == (3, 227, 227)  # (C, H, W) as a data set item

# %% [markdown]
# With the images in arrays `x_train, y_train`, training is one call:
#
# ```python
# loader = make_loader(x_train, y_train, batch_size=batch_size, shuffle=True, transform=augment)
# history = fit(alexnet, loader, val_loader, **fit_kwargs)
# ```
#
# We do not run it: an epoch of ImageNet is 1.2 million images at a billion multiply-adds
# each, forward only.
#
# ## ZFNet (2013)
#
# Zeiler and Fergus (2014) visualized what AlexNet's filters responded to and found the
# first layer too coarse: $11 \times 11$ filters at stride 4 skip over fine detail and leave
# "dead" filters. Their network is AlexNet with two changes, CONV1 $7 \times 7$ at stride 2
# instead of $11 \times 11$ at stride 4, and 512, 1024, 512 filters in CONV3, 4, 5 instead
# of 384, 384, 256. An ensemble of six such networks reached 14.8% top-5 error on the
# challenge's test set (their Table 2), against 16.4% for AlexNet's five networks trained
# on the same data and 15.3% for its winning entry with extra data. (The ILSVRC 2013 winner,
# Clarifai, Zeiler's company, scored 11.7%.)

# %%
assert top5["ZFNet, 6 CNNs"] == 14.8 and top5["Clarifai"] == 11.7
assert top5["ZFNet, 6 CNNs"] < top5["AlexNet, 7 CNNs"] < top5["AlexNet, 5 CNNs"]
zfnet = on_meta(M.ZFNet)
zf_table = summary(zfnet, (1, 3, 224, 224))
zf_convs = [m for m in zfnet.modules() if isinstance(m, nn.Conv2d)]
for m, r in zip(zf_convs, [r for r in zf_table if r.type == "Conv2d"], strict=True):
    print(f"conv {m.kernel_size[0]}x{m.kernel_size[0]} stride {m.stride[0]}: "
          f"{list(r.output_shape[1:])}, {r.params:,} parameters")
assert zf_convs[0].kernel_size == (7, 7) and zf_convs[0].stride == (2, 2)
assert [m.out_channels for m in zf_convs] == [96, 256, 512, 1024, 512]
assert [r.output_shape[2] for r in zf_table if r.type == "Conv2d"] == [110, 26, 13, 13, 13]
print(f"total {zf_table.total_params:,} parameters, {zf_table.total_macs / 1e9:.2f} G MACs")
assert zf_table.total_params == 107_627_624 and zf_table.total_macs == 2_476_704_896

# %% [markdown]
# The finer first layer keeps a $110 \times 110$ map instead of $55 \times 55$, and the
# wider middle layers more than double the computation (2.48 G multiply-adds against
# 1.14 G). The parameter count grows to 108 million, again mostly in FC6, which now reads
# $6 \cdot 6 \cdot 512$ values.
#
# ## VGG (2014)
#
# Simonyan and Zisserman asked what happens if you fix every design choice except depth.
# VGG uses only $3 \times 3$ convolutions with stride 1 and padding 1 (which keep the
# size) and $2 \times 2$ max pooling with stride 2 (which halves it), doubles the number
# of filters after each pooling, from 64 to 512, and ends with the same three FC layers as
# AlexNet. Their entry, an ensemble of seven networks, took second place in ILSVRC 2014
# with 7.3% top-5 error (Table 7 of Simonyan and Zisserman, 2015), against 11.7% for the
# winner of 2013 (11.2% with extra training data).
#
# Why only $3 \times 3$? A stack of two $3 \times 3$ convolutions sees a $5 \times 5$
# window of the input, and three see $7 \times 7$; with $C$ channels in and out, three
# $3 \times 3$ layers have $3 \cdot 9 C^2 = 27 C^2$ weights, a single $7 \times 7$ layer
# $49 C^2$, and the stack puts three nonlinearities where the big filter has one.

# %%
assert (top5["VGG, 7 CNNs"], top5["Clarifai"], top5["Clarifai, extra data"]) == (7.3, 11.7, 11.2)
C = 256
assert receptive_field([3, 3]) == 5 and receptive_field([3, 3, 3]) == 7
stack = conv_numbers(C, 56, C, 3, padding=1)["weights"] * 3
single = conv_numbers(C, 56, C, 7, padding=3)["weights"]
print(f"C = {C}: three 3x3 layers {stack:,} weights, one 7x7 layer {single:,} "
      f"({single / stack:.2f}x as many)")
assert stack == 27 * C**2 == 1_769_472 and single == 49 * C**2 == 3_211_264
assert (2 * 9) / 25 == 0.72  # two 3x3 layers vs one 5x5: 28% fewer weights

# %% [markdown]
# The paper tried six configurations, A to E, from 11 to 19 weight layers (C is D with
# three of the $3 \times 3$ convolutions replaced by $1 \times 1$; A-LRN adds a
# normalization layer to A). Its Table 2 lists their sizes in millions of parameters,
# 133, 133, 133, 134, 138 and 144. Counted:

# %%
paper_millions = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
vgg_counts = {}
for config, millions in paper_millions.items():
    net = on_meta(M.VGG, config)
    depth = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())
    vgg_counts[config] = n_params(net)
    print(f"{config:>5}: {depth} weight layers, {vgg_counts[config]:>11,} parameters "
          f"-> {vgg_counts[config] / 1e6:.0f} M (paper {millions} M)")
    assert round(vgg_counts[config] / 1e6) == millions
assert vgg_counts["D"] == 138_357_544 and vgg_counts["E"] == 143_667_240
vgg_fc = sum(n_params(m) for m in on_meta(M.VGG, "A").modules() if isinstance(m, nn.Linear))
print(f"E / A = {vgg_counts['E'] / vgg_counts['A']:.3f}; the three FC layers: {vgg_fc:,}")
assert round(vgg_counts["E"] / vgg_counts["A"] - 1, 2) == 0.08 and round(vgg_fc / 1e6) == 124

# %% [markdown]
# All six round to the paper's numbers. Depth is cheap in parameters: going from 11 to 19
# layers adds 8% (eight more $3 \times 3$ layers, two of them at 64 and 128 channels, six
# at 256 and 512), because the 124 million weights of the three FC layers dominate every
# configuration.
#
# ### VGG-16: where the memory and the parameters are
#
# The slide tabulates configuration D, VGG-16, layer by layer: the values each layer's
# output holds ("memory") and its weights "not counting biases". We rebuild the table from
# the summary: the input, then every conv, pool and FC output.

# %%
vgg16 = on_meta(M.vgg16)
vgg_table = summary(vgg16, (1, 3, 224, 224))
rows = [r for r in vgg_table if r.type in ("Conv2d", "MaxPool2d", "Linear")]
names, block, conv_in_block = ["input"], 1, 0
for r in rows:
    if r.type == "Conv2d":
        conv_in_block += 1
        names.append(f"conv{block}_{conv_in_block}")
    elif r.type == "MaxPool2d":
        names.append(f"pool{block}")
        block, conv_in_block = block + 1, 0
    else:
        names.append(f"fc{len(names) - 13}")  # fc6, fc7, fc8 after 13 convs and 5 pools
values = [3 * 224 * 224] + [r.output_numel for r in rows]  # the slide's "memory" column
weights = [0] + [r.params - r.output_shape[1] if r.params else 0 for r in rows]  # no biases
for name, v, w in zip(names, values, weights, strict=True):
    print(f"{name:>8}: {v:>9,} values  {w:>11,} weights")
print(f"   total: {sum(values):>9,} values  {sum(weights):>11,} weights "
      f"(+ {vgg_table.total_params - sum(weights):,} biases = {vgg_table.total_params:,})")

# %% [markdown]
# The same 21 layers as a pipeline, with the table's names. The pattern is easy to see
# here: five blocks of two or three $3 \times 3$ convolutions (blue), which keep the size of
# their input, each closed by a $2 \times 2$ max pooling (orange), which halves it,
# $224 \to 112 \to 56 \to 28 \to 14 \to 7$, while the number of channels doubles from 64 up
# to 512. The three FC layers (purple) at the end have AlexNet's widths, 4096, 4096 and 1000.

# %%
vgg_layers = diagrams.layers_from_model(vgg16, (3, 224, 224), names=names[1:])
assert len(vgg_layers) == len(names) == 22  # the input, 13 convs, 5 pools and 3 FC layers
fig = diagrams.pipeline(vgg_layers, "VGG-16 (configuration D): output shapes on a "
                        "3×224×224 image", per_row=8)
plt.show()

# %%
slide_weights = [1_728, 36_864, 73_728, 147_456, 294_912, 589_824, 589_824, 1_179_648,
                 2_359_296, 2_359_296, 2_359_296, 2_359_296, 2_359_296,
                 102_760_448, 16_777_216, 4_096_000]
assert [w for w in weights if w] == slide_weights
assert values[:3] == [150_528, 3_211_264, 3_211_264] and values[-3:] == [4096, 4096, 1000]
assert sum(weights) == 138_344_128 and vgg_table.total_params == 138_357_544
assert sum(values) == 15_237_608 and 4 * sum(values) == 60_950_432

# %% [markdown]
# Every row of the slide is right, and so is the total of 138 million parameters
# (138,344,128 weights plus 13,416 biases). The memory total is not. The slide says
# "24M $\times$ 4 bytes $\approx$ 93 MB / image (only forward! $\approx \times 2$ for
# backward)", but its own rows add up to **15,237,608 values, 61 MB in float32**
# (58.1 MiB). Neither reading of "24M $\times$ 4 bytes" gives 93 either: it is 96 MB, or
# 91.6 MiB. What is true is that the count depends on what you store. If every ReLU
# writes a new tensor instead of overwriting its input, the forward pass holds
# 28.7 million values, 115 MB, which is what `summary` reports when it counts every
# layer's output; with in-place ReLUs it is the 61 MB of the slide's rows. Either way,
# training needs roughly twice as much again for the gradients, per image, times the
# batch size.

# %%
every_output = vgg_table.total_activation_bytes
print(f"slide's rows: {sum(values) / 1e6:.2f} M values = {4 * sum(values) / 1e6:.1f} MB "
      f"= {4 * sum(values) / 2**20:.1f} MiB")
print(f"slide's total: 24 M values x 4 bytes = {24e6 * 4 / 1e6:.0f} MB "
      f"= {24e6 * 4 / 2**20:.1f} MiB (the slide says ~93 MB)")
print(f"every layer output (ReLU not in place): {every_output / 4 / 1e6:.2f} M values "
      f"= {every_output / 1e6:.1f} MB")
assert every_output == 114_804_640 and round(4 * sum(values) / 2**20, 1) == 58.1

# %% [markdown]
# The slide's two observations, "most memory is in the early convs" and "most parameters
# are in the late FC layers", are the same fact as AlexNet's 94% and 95%, seen per layer.

# %%
fig, (ax_mem, ax_par) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True,
                                     layout="constrained")
x = np.arange(len(names))
ax_mem.bar(x, np.array(values) / 1e6, color="tab:blue")
ax_mem.set(ylabel="activations (M values)", title="Memory: the output of each layer")
ax_par.bar(x, np.array(weights) / 1e6, color="tab:orange")
ax_par.set(ylabel="weights (M)", xlabel="layer", title="Parameters: the weights of each layer")
ax_par.set_xticks(x, names, rotation=60)
fig.suptitle("VGG-16, one 224x224 image: memory in the early convs, parameters in the FCs")
plt.show()

# %%
early = sum(values[1:6]) / sum(values)  # conv1_1 ... conv2_2 (with pool1)
fc_share = sum(weights[-3:]) / sum(weights)
print(f"conv1_1 to conv2_2 (with pool1): {early:.0%} of the memory, "
      f"{sum(weights[1:6]) / sum(weights):.2%} of the weights")
print(f"the three FC layers: {fc_share:.1%} of the weights, "
      f"{sum(values[-3:]) / sum(values):.3%} of the memory")
assert max(range(len(values)), key=values.__getitem__) == names.index("conv1_1")
assert max(range(len(weights)), key=weights.__getitem__) == names.index("fc6")
assert early > 0.68 and fc_share > 0.89
blocks, l_fc = typical_pattern(vgg16)
assert (blocks, l_fc) == ([2, 2, 3, 3, 3], 2)  # [(CONV-RELU)*L_conv-POOL]*5-(FC-RELU)*2-FC

# %% [markdown]
# ## GoogLeNet (2014)
#
# Szegedy et al. (2015) won ILSVRC 2014 with 6.67% top-5 error (an ensemble of seven
# networks, their Table 2) using a network built from
# a repeated **inception module**: four branches run side by side on the same input, a
# $1 \times 1$ convolution, a $3 \times 3$, a $5 \times 5$ and a $3 \times 3$ max pooling,
# and their outputs are concatenated along the channels. Run naively, the big branches on
# hundreds of input channels would be expensive, so each is preceded (or, for pooling,
# followed) by a cheap $1 \times 1$ convolution that reduces the number of channels: the
# "#3x3 reduce", "#5x5 reduce" and "pool proj" columns of the paper's table. A
# $1 \times 1$ convolution is a fully connected layer applied at every pixel, so the
# reduction costs few weights. For module 3a, on 192 input channels:

# %%
assert top5["GoogLeNet, 7 CNNs"] == 6.67 and PUBLISHED["GoogLeNet, 7 CNNs"].year == 2014
spec = M.INCEPTION_V1[0]  # 3a: #1x1 64, #3x3 reduce 96, #3x3 128, #5x5 reduce 16, ...
c_in = 192
with_reduce = (c_in * (spec.n1x1 + spec.n3x3red + spec.n5x5red + spec.pool_proj)
               + 9 * spec.n3x3red * spec.n3x3 + 25 * spec.n5x5red * spec.n5x5)
without = c_in * spec.n1x1 + 9 * c_in * spec.n3x3 + 25 * c_in * spec.n5x5 + c_in * spec.pool_proj
block_3a = M.Inception(c_in, spec)
weights_3a = sum(p.numel() for name, p in block_3a.named_parameters() if name.endswith("weight"))
print(f"3a: {with_reduce:,} weights with the 1x1 reductions, {without:,} without "
      f"({without / with_reduce:.1f}x); output {spec.out_channels} channels")
assert weights_3a == with_reduce == 163_328 and without == 393_216
assert spec.out_channels == 64 + 128 + 32 + 32 == 256

# %% [markdown]
# Here is module 3a with the shapes a $224 \times 224$ image gives it. Read it top to bottom:
# the $192 \times 28 \times 28$ input goes to all four branches at once. In the middle two,
# a $1 \times 1$ "reduce" convolution first shrinks the 192 channels to 96 and 16, so the
# expensive $3 \times 3$ and $5 \times 5$ convolutions run on few channels; in the last one,
# a $1 \times 1$ "pool proj" brings the 192 pooled channels down to 32. Padding (and stride 1
# in the pooling) keeps every branch at $28 \times 28$, which is what allows the four
# outputs to be stacked into $64 + 128 + 32 + 32 = 256$ channels.

# %%
fig = diagrams.inception_module("3a")
plt.show()

# %% [markdown]
# The paper's table lists, for each inception module, the output size, the branch widths,
# the parameters and the "ops" (multiply-adds). The package builds GoogLeNet from those
# widths (`INCEPTION_V1`), so the output sizes must come out right; the parameter and ops
# columns we can recompute. Parameters are given in K, which here means 1024 (the 3x3 stem
# row, $64 \cdot 64 + 9 \cdot 64 \cdot 192 = 114{,}688 = 112 \cdot 1024$, is "112K").

# %%
googlenet = on_meta(M.GoogLeNet)
g_table = summary(googlenet, (1, 3, 224, 224))
paper = {  # name: (output H, W, C), params column (K), ops column (M)
    "3a": ((28, 28, 256), 159, 128), "3b": ((28, 28, 480), 380, 304),
    "4a": ((14, 14, 512), 364, 73), "4b": ((14, 14, 512), 437, 88),
    "4c": ((14, 14, 512), 463, 100), "4d": ((14, 14, 528), 580, 119),
    "4e": ((14, 14, 832), 840, 170), "5a": ((7, 7, 832), 1072, 54),
    "5b": ((7, 7, 1024), 1388, 71),
}
print("module  output       weights (K)  table  ratio   MACs (M)  table")
ratios, ops_match, weights_k = [], [], {}
for name, ((h, w, c), params_k, ops_m) in paper.items():
    module = googlenet.blocks[f"inception{name}"]
    rows_m = [r for r in g_table if r.name.startswith(f"blocks.inception{name}.")]
    out_c = sum([r for r in rows_m if f".branch{b}." in r.name][-1].output_shape[1]
                for b in (1, 2, 3, 4))  # the concatenation of the four branches
    assert out_c == c == module.out_channels
    assert all(r.output_shape[2:] == (h, w) for r in rows_m if r.type == "Conv2d")
    wk = sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight")) / 1024
    macs = sum(r.macs for r in rows_m) / 1e6
    weights_k[name] = wk
    ratios.append(wk / params_k)
    ops_match.append(round(macs) == ops_m)
    print(f"{name:>6}  {h}x{w}x{c:<5} {wk:>11.1f}  {params_k:>5}  {ratios[-1]:.3f}"
          f"  {macs:>9.1f}  {ops_m:>5}")
assert int(weights_k["3a"]) == 159 and all(abs(r - 1) < 0.08 for r in ratios)
assert sum(ops_match) == 7 and not ops_match[2] and not ops_match[7]  # 4a and 5a differ

# %% [markdown]
# Every output size matches, and 7 of the 9 ops entries round to the table (4a is 73.6 M
# against 73, and 5a 51.1 M against 54). The parameter column is looser: 3a, 3b and 4b
# agree to within 1K (159.5, 379.0 and 438.0 against 159, 380 and 437), the other rows
# to within 8%, with the largest gaps at 4c (+7.5%) and 5a (-5%). We have not found a
# reading of the branch widths that reproduces every row, so the exact counts are the ones
# to use.
#
# ### "Only 5 million parameters"?
#
# The slide says GoogLeNet has only 5 million parameters, 12 times fewer than AlexNet,
# and does 2 times more computation. Counting the network that the table describes:

# %%
parts = {"stem": googlenet.stem, "9 inception modules": googlenet.blocks, "FC": googlenet.fc}
for part, module in parts.items():
    print(f"{part:>20}: {n_params(module):>9,}")
print(f"{'total':>20}: {g_table.total_params:>9,}")
googlenet_aux = on_meta(M.GoogLeNet, aux_logits=True)
aux = n_params(googlenet_aux.aux1) + n_params(googlenet_aux.aux2)
print(f"{'+ 2 aux classifiers':>20}: {aux:>9,} (used only in training) "
      f"-> {n_params(googlenet_aux):,}")
column_k = sum(p for _, p, _ in paper.values()) + 2.7 + 112 + 1000  # + stem rows + linear
print(f"the table's params column sums to {column_k:,.1f} K")
assert g_table.total_params == 124_416 + 5_849_136 + 1_025_000 == 6_998_552
assert aux == 6_379_728 and n_params(googlenet_aux) == 13_378_280
assert round(column_k) == 6798

# %% [markdown]
# The network of the table has **6,998,552 parameters, 7.0 million**, without the two
# auxiliary classifiers (each a small conv and two FC layers on module 4a or 4d, used to
# inject extra gradient during training and discarded at test time; they would bring the
# total to 13.4 million). The table itself agrees: its parameter column adds up to
# 6,798K. So the "5 million" does not come from leaving anything out; it matches AlexNet's
# 60 million divided by the "12 times fewer" that the paper claims. Measured, the
# reduction is 8.7 times against the two-GPU AlexNet (8.9 against one tower), and the
# computation ratio, 2.2 times, does match the slide's "2x more compute":

# %%
fewer = alex2_table.total_params / g_table.total_params
more = g_table.total_macs / alex2_table.total_macs
print(f"GoogLeNet: {g_table.total_params / 1e6:.2f} M parameters, "
      f"{g_table.total_macs / 1e9:.2f} G MACs")
print(f"vs the two-GPU AlexNet: {fewer:.2f}x fewer parameters, {more:.2f}x more MACs "
      f"(one tower: {alex_table.total_params / g_table.total_params:.2f}x, "
      f"{g_table.total_macs / alex_table.total_macs:.2f}x)")
assert round(fewer, 2) == 8.71 and round(more, 2) == 2.18
assert g_table.total_macs == 1_582_671_872

# %% [markdown]
# Where did the parameters go? AlexNet's FC layers hold 58.6 million weights. GoogLeNet
# replaces them by a $7 \times 7$ **global average pooling** of the last $7 \times 7 \times
# 1024$ maps and a single linear layer from 1024 to 1000 classes, which has 1,025,000
# parameters, 15% of the network.
#
# The "22 layers" of the paper count the layers with parameters along the longest path:
# 3 convolutions in the stem, 2 per inception module (a reduction and the conv it feeds),
# and the linear layer.

# %%
def longest_path(module):
    """Weight layers on the deepest path through an inception module (or a conv chain)."""
    if isinstance(module, M.Inception):
        return max(longest_path(b) for b in module.children())
    return sum(isinstance(m, nn.Conv2d) for m in module.modules())


googlenet_depth = (longest_path(googlenet.stem)
                   + sum(longest_path(b) for b in googlenet.blocks.values()) + 1)
print("GoogLeNet depth:", googlenet_depth)
assert googlenet_depth == 3 + 2 * 9 + 1 == 22

# %% [markdown]
# ## ResNet (2015)
#
# He et al. (2016) won ILSVRC 2015 with 3.57% top-5 error (an ensemble of six networks,
# their Table 5), using networks of up to 152 layers. Stacking more layers had stopped
# helping: past some depth, a plain network reaches a *higher training* error than a
# shallower one, although it could in principle copy the shallower one and set the extra
# layers to the identity. (This "degradation problem", with plain and residual networks
# trained side by side, is the subject of [chapter 8](08-resnets-and-unet.ipynb).) The fix
# is to make the identity the default. A residual block computes
#
# $$
# \mathbf{y} = \operatorname{ReLU}\big(\mathcal{F}(\mathbf{x}) + \mathbf{x}\big), \qquad
# \mathcal{F}(\mathbf{x}) = \operatorname{BN}(W_2 \ast
#     \operatorname{ReLU}(\operatorname{BN}(W_1 \ast \mathbf{x}))),
# $$
#
# so the layers only learn a correction $\mathcal{F}$ to their input, and $\mathcal{F} = 0$
# (all weights zero) is the identity. Where the shape changes (stride 2, more channels),
# the shortcut becomes a strided $1 \times 1$ convolution. A "basic" block at $C$
# channels has two $3 \times 3 \times C \times C$ convolutions without biases and two
# BatchNorms with a scale and a shift per channel: $18 C^2 + 4C$ parameters.
#
# The deeper ResNets (50 and more layers) use a **bottleneck** block instead:
# a $1 \times 1$ convolution reduces the channels by 4, a $3 \times 3$ works on the
# reduced maps, and another $1 \times 1$ expands them back (GoogLeNet's trick). At 256
# channels, it costs 17 times fewer parameters than a basic block:

# %%
assert top5["ResNet, 6 CNNs"] == 3.57
basic = n_params(M.BasicBlock(256, 256))
bottleneck = M.Bottleneck(256, 64)  # 256 -> 64 (1x1) -> 64 (3x3) -> 256 (1x1)
print(f"basic block at 256 channels: {basic:,}; bottleneck 256-64-64-256: "
      f"{n_params(bottleneck):,} ({basic / n_params(bottleneck):.1f}x fewer)")
assert basic == 18 * 256**2 + 4 * 256 == 1_180_672
assert n_params(bottleneck) == 256 * 64 + 9 * 64 * 64 + 64 * 256 + 2 * (64 + 64 + 256) == 70_400
assert bottleneck.to(device)(torch.zeros(1, 256, 8, 8, device=device)).shape == (1, 256, 8, 8)

# %% [markdown]
# The paper's table gives five depths, all with a $7 \times 7$ stride-2 stem, a max
# pooling, four stages of blocks at $56^2, 28^2, 14^2, 7^2$ positions and 64, 128, 256,
# 512 (times 4 for bottlenecks) channels, global average pooling and one FC layer. Its
# last row is the cost, "FLOPs", which are multiply-adds:

# %%
resnets = {18: M.resnet18, 34: M.resnet34, 50: M.resnet50, 101: M.resnet101,
           152: M.resnet152}
paper_flops = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
res_tables, res_nets = {}, {}
print("depth  block       blocks/stage   parameters   G MACs  paper")
for depth, factory in resnets.items():
    net = res_nets[depth] = on_meta(factory)
    table = res_tables[depth] = summary(net, (1, 3, 224, 224))
    stages = [len(getattr(net, f"layer{i}")) for i in (1, 2, 3, 4)]
    block_name = type(net.layer1[0]).__name__
    # the depth in the name: convs on the main path (not the shortcuts) plus the FC
    main_convs = sum(isinstance(m, nn.Conv2d) for n, m in net.named_modules()
                     if "shortcut" not in n)
    assert main_convs + 1 == depth
    print(f"{depth:>5}  {block_name:<10}  {str(stages):<13} {table.total_params:>11,}"
          f"  {table.total_macs / 1e9:>7.3f}  {paper_flops[depth]:>5}")
macs = {d: t.total_macs for d, t in res_tables.items()}
assert macs == {18: 1_814_073_344, 34: 3_663_761_408, 50: 3_857_973_248,
                101: 7_570_194_432, 152: 11_282_415_616}
assert [round(macs[d] / 1e9, 1) for d in (18, 101, 152)] == [1.8, 7.6, 11.3]
assert [int(macs[d] / 1e8) / 10 for d in (34, 50)] == [3.6, 3.8]  # truncated, not rounded
assert res_tables[50].total_params == 25_557_032 and res_tables[152].total_params == 60_192_808

# %% [markdown]
# Three of the five entries, 1.8, 7.6 and 11.3, are our 1.81, 7.57 and 11.28 G rounded.
# ResNet-34 and ResNet-50 come out at 3.66 and 3.86 G, which the paper writes as 3.6 and
# 3.8: truncated rather than rounded (leaving out the projection shortcuts does not explain
# the difference). Note what the bottleneck buys: ResNet-50 is nearly three times as deep
# as ResNet-18 for about twice the cost, and ResNet-152, with 60 million parameters, as many
# as AlexNet, has almost no FC weights (2 million, 3%): all of its size is convolution.
#
# ### The ResNet recipe
#
# The slide's recipe: BatchNorm after every convolution (Ioffe and Szegedy, 2015), He
# initialization (He et al., 2015; the "Xavier/2" of the slide: weight variance $2 / n$
# for ReLU networks, with $n$ the fan-in $n_{in}$ or, as in the package's ResNets, the fan-out
# $n_{out}$), SGD with momentum 0.9,
# learning rate 0.1 divided by 10 when the validation error plateaus, mini-batches of
# 256, weight decay $10^{-5}$ and no dropout. (The paper states a weight decay of
# $10^{-4}$; we keep the slide's value and flag it.) The first three items are part of the
# model, and we check them on the model itself; the rest is the `fit` configuration.

# %%
resnet50 = res_nets[50]
convs = [m for m in resnet50.modules() if isinstance(m, nn.Conv2d)]
bns = [m for m in resnet50.modules() if isinstance(m, nn.BatchNorm2d)]
assert len(convs) == len(bns) == 53 and all(c.bias is None for c in convs)  # BN's shift
assert not any(isinstance(m, nn.Dropout) for m in resnet50.modules())
torch.manual_seed(0)
small = M.resnet18(num_classes=10, base_width=16)  # real weights, to look at the init
std = small.conv1.weight.std().item()
fan_out = small.conv1.out_channels * 7 * 7
print(f"He init of conv1 (fan-out {fan_out}): std {std:.4f}, sqrt(2 / fan-out) = "
      f"{np.sqrt(2 / fan_out):.4f}")
assert abs(std / np.sqrt(2 / fan_out) - 1) < 0.05


def resnet_recipe(model):
    """The lecture's ResNet recipe: (batch size, keyword arguments of fit)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                weight_decay=1e-5)  # the slide; the paper says 1e-4
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1)
    return 256, dict(epochs=120, optimizer=optimizer, scheduler=scheduler)


batch_size, fit_kwargs = resnet_recipe(resnet50)
group = fit_kwargs["optimizer"].param_groups[0]
print(f"SGD(lr={group['lr']}, momentum={group['momentum']}, "
      f"weight_decay={group['weight_decay']}), ReduceLROnPlateau(factor="
      f"{fit_kwargs['scheduler'].factor}), batch size {batch_size}")
assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.9, 1e-5)

# %% [markdown]
# The paper trained for $60 \cdot 10^4$ iterations of 256 images, about 120 epochs, hence
# `epochs=120`. As for AlexNet, `fit(resnet50, loader, val_loader, **fit_kwargs)` would
# run it.
#
# ## Four years of ImageNet
#
# The table of published results from the start of the chapter, in one picture. Filled
# markers are the challenge's winners, open ones other entries on the same test set; the
# dashed line joins the winners. The 2012 runner-up, the best entry without a neural
# network, shows the size of the jump AlexNet made. Every winner averaged several networks
# (and AlexNet's and the 2013 winner's best results used extra training data), so the
# points measure whole entries rather than single architectures; the trend is what
# matters.

# %%
test_results = {name: r for name, r in PUBLISHED.items() if r.split == "test"}
best = {}
for r in test_results.values():
    best[r.year] = min(best.get(r.year, 100.0), r.top5)
print("best test entry per year:", best,
      f"| winners 2012 -> 2015: {winning[0] / winning[-1]:.1f}x fewer errors")
assert [best[y] for y in sorted(WINNERS)] == [15.3, 11.2, 6.67, 3.57]  # better every year
assert all(PUBLISHED[WINNERS[y]].year == y for y in WINNERS)
assert round(winning[0] / winning[-1], 2) == 4.29

fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
years = sorted(WINNERS)
ax.plot(years, winning, "--", color="0.6", label="ILSVRC winner")
offsets = {"AlexNet, 5 CNNs": (7, 2), "AlexNet, 7 CNNs": (7, -10),
           "Clarifai, extra data": (7, -10), "VGG, 7 CNNs": (7, 2),
           "GoogLeNet, 7 CNNs": (7, -10)}
for name, r in test_results.items():
    is_winner = WINNERS.get(r.year) == name
    ax.plot(r.year, r.top5, "o", color="tab:red", mfc="tab:red" if is_winner else "white")
    ax.annotate(f"{name} {r.top5}%", (r.year, r.top5), textcoords="offset points",
                xytext=offsets.get(name, (7, 2)), fontsize=9)
ax.set(xlabel="year (ILSVRC)", ylabel="top-5 test error (%)", xticks=years,
       xlim=(2011.7, 2016.0), ylim=(0, 29),
       title="ImageNet top-5 error of the case-study networks (published results)")
ax.legend()
plt.show()

# %% [markdown]
# ## What can be run here: LeNet-5, a small VGG and a small ResNet on real digits
#
# ImageNet is out of reach of a CPU in a minute, but the scikit-learn digits are not: 1,797
# real handwritten digits of $8 \times 8$ pixels, which `load_dataset("digits", size=32)`
# upsamples to LeNet's $32 \times 32$ and splits (stratified) into 1,259 training, 179
# validation and 359 test images. The recipe is small-data practice rather than any of the
# papers': random shifts of up to 2 pixels (half a pixel of the original digits), AdamW
# (Loshchilov and Hutter, 2019) with weight decay $5 \cdot 10^{-4}$, and a one-cycle
# learning-rate schedule (warm up, then anneal) stepped every batch. The same function
# trains all three networks.

# %%
data = load_dataset("digits", size=32, seed=0)  # (N, 1, 32, 32) in [0, 1]
print("train / val / test:", len(data.y_train), len(data.y_val), len(data.y_test))
assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1259, 179, 359)
val_loader = make_loader(data.x_val, data.y_val, batch_size=512, shuffle=False)
test_loader = make_loader(data.x_test, data.y_test, batch_size=512, shuffle=False)


def train_on_digits(make_model, epochs, *, lr=5e-3, seed=0):
    """Seeded run of the small-data recipe; returns (model, history, test accuracy, seconds)."""
    gens = seed_everything(seed)  # the model's init, the shuffling and the shifts
    train_loader = make_loader(
        data.x_train, data.y_train, batch_size=64, shuffle=True, seed=seed,
        transform=lambda x: random_translate(x, 2, generator=gens.torch),
    )
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * len(train_loader))
    start = time.perf_counter()
    history = fit(model, train_loader, val_loader, epochs=epochs, optimizer=optimizer,
                  scheduler=scheduler, scheduler_step="step", device=device, live_plot=False)
    seconds = time.perf_counter() - start
    _, test_acc = evaluate(model, test_loader)
    return model, history, test_acc, seconds


# %% [markdown]
# LeNet-5 first, with ReLU and max pooling, for 50 epochs (20 batches each):

# %% tags=["nbval-ignore-output"]
runs = {}
runs["LeNet-5"] = train_on_digits(lambda: M.LeNet5(10, activation=nn.ReLU, pool="max"), 50)
_, history, test_acc, seconds = runs["LeNet-5"]
print(f"LeNet-5: test accuracy {test_acc:.2%} ({round((1 - test_acc) * 359)} of 359 wrong), "
      f"validation {history.epochs[-1].val_accuracy:.2%}, {seconds:.1f} s")
assert test_acc >= 0.97  # seeds 0-3 (the split, the init, the batches): 98.3% to 99.7%

# %% [markdown]
# Above 97% on digits it has never seen, with 61,706 parameters (trained from four
# different seeds, it scored between 98.3% and 99.7%). Now two descendants, shrunk to a
# comparable size. The VGG-style network is configuration A (VGG-11) with
# every width divided by 8 (8 to 64 channels) and FC layers of 64 units; after five
# poolings a $32 \times 32$ input is $1 \times 1$. We add BatchNorm after each
# convolution (the "VGG-BN" variant), so that it trains from scratch in a few epochs
# (exercise 3 asks what happens without it); the original VGGs were instead initialized
# from the trained shallower configuration. The ResNet-style network is ResNet-18 with a
# base width of 16 instead of 64. Both train for 10 epochs only.

# %%
small_models = {
    "VGG-11 / 8 + BN": lambda: M.VGG("A", 10, in_channels=1, width_mult=1 / 8, fc_width=64,
                                     pool_size=1, batch_norm=True),
    "ResNet-18 / 4": lambda: M.resnet18(num_classes=10, in_channels=1, base_width=16),
}
small_tables = {name: summary(make(), (1, 1, 32, 32)) for name, make in small_models.items()}
small_tables["LeNet-5"] = summary(M.LeNet5(10, activation=nn.ReLU, pool="max"), (1, 1, 32, 32))
for name, table in small_tables.items():
    print(f"{name:>16}: {table.total_params:>8,} parameters, "
          f"{table.total_macs / 1e6:.2f} M MACs per image")
assert [small_tables[n].total_params for n in ("LeNet-5", "VGG-11 / 8 + BN", "ResNet-18 / 4")] \
    == [61_706, 153_730, 701_818]
assert [small_tables[n].total_macs for n in ("LeNet-5", "VGG-11 / 8 + BN", "ResNet-18 / 4")] \
    == [416_520, 2_441_856, 2_364_672]
ratios_params = [small_tables[n].total_params / small_tables["LeNet-5"].total_params
                 for n in ("VGG-11 / 8 + BN", "ResNet-18 / 4")]
ratios_macs = [small_tables[n].total_macs / small_tables["LeNet-5"].total_macs
               for n in ("VGG-11 / 8 + BN", "ResNet-18 / 4")]
assert [round(ratios_params[0], 1), round(ratios_params[1])] == [2.5, 11]
assert [round(r) for r in ratios_macs] == [6, 6]

# %% tags=["nbval-ignore-output"]
for name, make in small_models.items():
    runs[name] = train_on_digits(make, 10)
print(f"{'network':>16} {'params':>9} {'epochs':>6} {'test acc':>8} {'s/epoch':>8} {'total s':>8}")
for name, (model, history, test_acc, seconds) in runs.items():
    print(f"{name:>16} {n_params(model):>9,} {len(history.epochs):>6} {test_acc:>8.2%} "
          f"{seconds / len(history.epochs):>8.2f} {seconds:>8.1f}")
per_epoch = {name: run[3] / len(run[1].epochs) for name, run in runs.items()}
print("time per epoch relative to LeNet-5:",
      {name: round(t / per_epoch["LeNet-5"], 1) for name, t in per_epoch.items()})
assert all(run[2] >= 0.95 for run in runs.values())  # seeds 0-3: 97.2% to 100% (VGG, ResNet)
big = ("VGG-11 / 8 + BN", "ResNet-18 / 4")
assert max(runs[n][2] for n in big) - runs["LeNet-5"][2] <= 0.02  # at most two points better
# Wall-clock time varies with the machine and its load, hence the wide margin (2.0x to 3.6x
# over seeds 0-3 on a shared 2-core CPU); the claim is only "longer".
assert all(per_epoch[n] > 1.2 * per_epoch["LeNet-5"] for n in big)

# %% [markdown]
# The larger networks reach LeNet-5's level in a fifth of the epochs: above 95% (from four
# seeds, between 97.2% and 100%), and no more than two points above LeNet-5. But each
# of their epochs takes longer: they have 2.5 and 11 times as many parameters, about 6
# times as many multiply-adds per image, and many more layers, each with its own fixed
# overhead per batch. On 1,259 small images the extra depth buys little; the depth of VGG
# and ResNet pays off when there are millions of images and many classes to separate. The
# curves show the trade-off in wall-clock time:

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
for name, (_, history, _, _) in runs.items():
    t = np.cumsum([e.time for e in history.epochs])
    ax.plot(t, [e.val_accuracy for e in history.epochs], "o-", ms=3, label=name)
ax.set(xlabel="training time (s)", ylabel="validation accuracy", ylim=(0.5, 1.01),
       title="Digits 32x32: validation accuracy against training time")
ax.legend()
plt.show()

# %% [markdown]
# ## The trends, in numbers
#
# The lecture ends with three trends: smaller filters, deeper networks, and fewer (or no)
# pooling and fully connected layers. One table of the networks of this chapter shows all
# three. "Depth" counts the layers with weights on the longest path (the number in the
# names), "kernels" the filter sizes used after the first layer.

# %%
nets = {  # name: (year, model, its summary, depth, top-5 error of its family's entry)
    "AlexNet": (2012, alexnet, alex_table, 8, top5["AlexNet, 7 CNNs"]),
    "ZFNet": (2013, zfnet, zf_table, 8, top5["ZFNet, 6 CNNs"]),
    "VGG-16": (2014, vgg16, vgg_table, 16, top5["VGG, 7 CNNs"]),
    "GoogLeNet": (2014, googlenet, g_table, googlenet_depth, top5["GoogLeNet, 7 CNNs"]),
    "ResNet-152": (2015, res_nets[152], res_tables[152], 152, top5["ResNet, 6 CNNs"]),
}
trend = {}
print("network     year  depth  first  kernels  params (M)  in FC  G MACs  top-5")
for name, (year, model, table, depth, err) in nets.items():
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    kernels = sorted({m.kernel_size[0] for m in convs[1:]})
    total = n_params(model)
    fc = sum(n_params(m) for m in model.modules() if isinstance(m, nn.Linear))
    gmacs = table.total_macs / 1e9
    trend[name] = dict(year=year, depth=depth, total=total, fc=fc / total, gmacs=gmacs, err=err,
                       first=convs[0].kernel_size[0], kernels=kernels)
    k1 = convs[0].kernel_size[0]
    print(f"{name:<10}  {year}  {depth:>5}  {k1:>3}x{k1:<2} {str(kernels):<8}"
          f" {total / 1e6:>10.1f}  {fc / total:>5.0%}  {gmacs:>6.2f}  {err:>5}")
assert [t["depth"] for t in trend.values()] == sorted(t["depth"] for t in trend.values())
fc_shares = [round(t["fc"], 2) for t in trend.values()]
assert fc_shares == [0.94, 0.9, 0.89, 0.15, 0.03]
assert [t["first"] for t in trend.values()] == [11, 7, 3, 7, 7]
assert trend["VGG-16"]["kernels"] == [3] and trend["ResNet-152"]["kernels"] == [1, 3]
assert sum(isinstance(m, nn.MaxPool2d) for m in res_nets[152].modules()) == 1  # in the stem
assert (trend["AlexNet"]["err"], trend["ResNet-152"]["err"]) == (15.3, 3.57)

# %% [markdown]
# * **Smaller filters.** The first layer went from $11 \times 11$ (AlexNet) to
#   $7 \times 7$ (ZFNet, GoogLeNet, ResNet) and $3 \times 3$ (VGG), and after the first
#   layer VGG and ResNet use nothing larger than $3 \times 3$. Two $3 \times 3$ layers see
#   as much as one $5 \times 5$ with 28% fewer weights and one more nonlinearity.
# * **Deeper.** 8, 8, 16, 22, 152 layers with weights, while the top-5 error of the
#   entries built from them fell from 15.3% to 3.57%. Depth became usable through better
#   initialization, BatchNorm, and finally the identity shortcuts of ResNet.
# * **No big FC layers, fewer pools.** The share of parameters in FC layers fell from 94%
#   to 3%: GoogLeNet and ResNet replace the FC stack by global average pooling and one
#   linear layer, and ResNet downsamples with strided convolutions, keeping a single max
#   pooling in the stem. The typical pattern
#   $[(\text{CONV-RELU})\times L_{conv}\text{-POOL?}]\times B\text{-}(\text{FC-RELU})
#   \times L_{fc}$ still describes AlexNet ($L_{conv} = 1, 1, 3$; $L_{fc} = 2$) and VGG-16
#   ($L_{conv} = 2, 2, 3, 3, 3$; $L_{fc} = 2$) exactly, but not the branches of GoogLeNet
#   or the shortcuts of ResNet.
#
# Parameters and computation came apart along the way. Plotted against each other, the
# older networks are heavy and cheap (weights in FC layers, used once per image), the
# newer ones light and busy (weights in convolutions, used at every position):

# %%
fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for name, t in trend.items():
    ax.scatter(t["gmacs"], t["total"] / 1e6, s=30 + 6 * t["depth"], color="tab:purple",
               alpha=0.6)
    ax.annotate(f"{name} ({t['year']}, {t['err']}%)", (t["gmacs"], t["total"] / 1e6),
                textcoords="offset points", xytext=(10 + t["depth"] // 8, -4))
ax.set(xscale="log", yscale="log", xlim=(0.5, 60), ylim=(4, 300),
       xlabel="multiply-adds per image (G)", ylabel="parameters (M)",
       title="Size against cost (marker area grows with depth; top-5 error in brackets)")
plt.show()
assert trend["ResNet-152"]["gmacs"] / trend["AlexNet"]["gmacs"] > 9
assert trend["GoogLeNet"]["total"] < trend["AlexNet"]["total"] / 8

# %% [markdown]
# ## Beyond classification: the networks as backbones
#
# The networks of this chapter were built to put one label on an image, but their
# convolutional part, with the classifier cut off, turned out to be a general-purpose
# feature extractor, a *backbone*, for other vision tasks. **Object detection** asks for a
# box and a class for every object in the image. R-CNN (Girshick et al., 2014) proposed
# candidate regions with a classical method, warped each one to a fixed size and ran an
# ImageNet-trained CNN on it to classify it; Faster R-CNN (Ren et al., 2015) computes the
# backbone's feature maps once per image and lets a small *region proposal network* on top
# of them suggest the boxes, so that proposals and classification share the convolutions;
# YOLO (Redmon et al., 2016) drops the proposals altogether and predicts boxes and class
# scores for every cell of a coarse grid in a single forward pass, trading some accuracy for
# speed. A better backbone makes a better detector: the ResNet paper (He et al., 2016)
# reported its gains on detection too, with ResNet-101 in place of VGG-16 inside Faster
# R-CNN. **Semantic segmentation**, one class per pixel, needs the opposite of
# downsampling on the way out: the U-Net of [chapter 8](08-resnets-and-unet.ipynb) adds a
# decoder that brings the backbone's coarse maps back to full resolution.
#
# ## What to remember
#
# * Four numbers describe a layer: output side $H' = \lfloor (H + 2p - k)/s \rfloor + 1$,
#   parameters $(k^2 C_{in} + 1) C_{out}$, activations $C_{out} H' W'$ and
#   multiply-adds = weights $\times H' W'$. `summary` computes them for any model,
#   on the `meta` device for free.
# * Memory lives in the early, high-resolution conv layers; parameters in the FC layers.
#   VGG-16: conv1 outputs 3.2 M values each, FC6 has 103 M weights; 138,357,544
#   parameters; 61 MB of activations per image in the slide's own rows (not 93 MB).
# * AlexNet (2012): 62.4 M parameters (61.0 M on two GPUs), ReLU, dropout, augmentation,
#   SGD + momentum. ZFNet (2013): a finer first layer. VGG (2014): only $3 \times 3$ convs,
#   16-19 layers. GoogLeNet (2014): inception modules with $1 \times 1$ reductions and no
#   FC stack, 7.0 M parameters (not 5 M), 8.7 times fewer than AlexNet for 2.2 times the
#   computation. ResNet (2015): identity shortcuts and bottlenecks, 18 to 152 layers,
#   1.8 to 11.3 G multiply-adds.
# * A published recipe is a handful of objects: an optimizer, a scheduler, a batch size and
#   an augmentation, which `fit` takes as they are.
# * With the classifier removed these networks are *backbones* for detection (R-CNN,
#   Faster R-CNN, YOLO) and, with a decoder added, for segmentation (U-Net).
# * On small data a small network wins on cost: LeNet-5 reaches above 97% on the digits;
#   the slimmed VGG and ResNet reach its level in a fifth of the epochs, but each epoch
#   costs more.
#
# ## Exercises
#
# 1. **Quick check.** Compute by hand the output shape, weights and multiply-adds of
#    VGG-16's conv3_1 (128 to 256 channels on $56 \times 56$ maps), and of FC6. Which of
#    the two costs more computation per image? Check with `summary`.
# 2. **Two towers.** Derive the 1,413,120 parameters that the two-GPU AlexNet saves
#    (CONV2, CONV4 and CONV5 with `groups=2`) and the multiply-adds it saves. Why do the
#    output shapes not change?
# 3. **VGG without BatchNorm.** Train the VGG-style network of this chapter with
#    `batch_norm=False` and the same recipe for 10 epochs. What happens, and why? Try a
#    smaller learning rate, and then the VGG authors' trick: train configuration A, and
#    copy its weights into the first layers of a deeper configuration before training it.
# 4. **LeNet as in 1998.** Train `LeNet5` with its defaults (tanh and average pooling)
#    with the recipe of this chapter, and compare accuracy and epochs to the ReLU and
#    max-pooling version.
# 5. **Run a recipe (small project).** Use `resnet_recipe` (SGD with momentum, learning
#    rate divided by 10 on a plateau) to train the ResNet-style network on the digits, with
#    a batch size that gives a few dozen steps per epoch and `ReduceLROnPlateau`'s
#    `patience` lowered to fit a short run. How does it compare with AdamW and one-cycle,
#    in accuracy and in sensitivity to the learning rate?
# 6. **Inception with auxiliary heads (small project).** Train a `GoogLeNet` with
#    `width_mult=1/8` and `aux_logits=True` on the digits (upsampled to 64x64), adding the
#    two auxiliary losses with weight 0.3 as in the paper. Do the auxiliary heads change the
#    accuracy of a network this shallow?
#
# Homework 4, the student notebook
# [`homework/hw4-resnet-unet/hw4-resnet-unet.ipynb`](homework/hw4-resnet-unet/hw4-resnet-unet.ipynb)
# (or the copy your instructor hands out), asks you to build ResNet's basic block in
# PyTorch, with the projection shortcut and exact parameter counts, and then the small U-Net
# of [chapter 8](08-resnets-and-unet.ipynb).

# %% [markdown]
# ## References
#
# - Girshick, R., Donahue, J., Darrell, T., & Malik, J. (2014). Rich feature hierarchies for
#   accurate object detection and semantic segmentation. *CVPR*.
#   [arXiv:1311.2524](https://arxiv.org/abs/1311.2524)
# - He, K., Zhang, X., Ren, S., & Sun, J. (2015). Delving deep into rectifiers: Surpassing
#   human-level performance on ImageNet classification. *ICCV*.
#   [arXiv:1502.01852](https://arxiv.org/abs/1502.01852)
# - He, K., Zhang, X., Ren, S., & Sun, J. (2016). Deep residual learning for image recognition.
#   *CVPR*. [arXiv:1512.03385](https://arxiv.org/abs/1512.03385)
# - Ioffe, S., & Szegedy, C. (2015). Batch normalization: Accelerating deep network training by
#   reducing internal covariate shift. *ICML*. [arXiv:1502.03167](https://arxiv.org/abs/1502.03167)
# - Krizhevsky, A., Sutskever, I., & Hinton, G. E. (2012). ImageNet classification with deep
#   convolutional neural networks. *NeurIPS*.
#   [proceedings](https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html)
# - LeCun, Y., Bottou, L., Bengio, Y., & Haffner, P. (1998). Gradient-based learning applied to
#   document recognition. *Proceedings of the IEEE*.
#   [doi:10.1109/5.726791](https://doi.org/10.1109/5.726791)
# - Loshchilov, I., & Hutter, F. (2019). Decoupled weight decay regularization. *ICLR*.
#   [arXiv:1711.05101](https://arxiv.org/abs/1711.05101)
# - Redmon, J., Divvala, S., Girshick, R., & Farhadi, A. (2016). You only look once: Unified,
#   real-time object detection. *CVPR*. [arXiv:1506.02640](https://arxiv.org/abs/1506.02640)
# - Ren, S., He, K., Girshick, R., & Sun, J. (2015). Faster R-CNN: Towards real-time object
#   detection with region proposal networks. *NeurIPS*.
#   [arXiv:1506.01497](https://arxiv.org/abs/1506.01497)
# - Russakovsky, O., Deng, J., Su, H., Krause, J., Satheesh, S., et al. (2015). ImageNet large
#   scale visual recognition challenge. *IJCV*. [arXiv:1409.0575](https://arxiv.org/abs/1409.0575)
# - Simonyan, K., & Zisserman, A. (2015). Very deep convolutional networks for large-scale image
#   recognition. *ICLR*. [arXiv:1409.1556](https://arxiv.org/abs/1409.1556)
# - Szegedy, C., Liu, W., Jia, Y., Sermanet, P., Reed, S., et al. (2015). Going deeper with
#   convolutions. *CVPR*. [arXiv:1409.4842](https://arxiv.org/abs/1409.4842)
# - Zeiler, M. D., & Fergus, R. (2014). Visualizing and understanding convolutional networks.
#   *ECCV*. [arXiv:1311.2901](https://arxiv.org/abs/1311.2901)
