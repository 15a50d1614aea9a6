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
# # Is it training, and what has it learned?
#
# The earlier chapters built the parts of a convolutional network and trained it, and every
# training run in them worked. Real runs often do not, and a network that fails rarely says
# why: a bug in the data pipeline, a wrong loss, a learning rate ten times too large all end
# in the same place, a loss curve that is flat or ragged and an accuracy that is poor. This
# chapter collects the habits that find such problems early, and the tools that show what a
# trained network has learned.
#
# The first half is about *babysitting* a run. Before training we check that the untrained
# network's loss is what probability theory predicts, and that the network can memorise
# twenty examples; bugs injected on purpose show what each check catches. During training
# we watch the size of each update relative to the weights, the distribution of
# activations and gradients in every layer, and the loss curves of three learning rates.
# The second half opens the network up: first-layer filters as images, feature maps,
# occlusion and gradient saliency maps, and images made to excite one unit, on the digits
# and on photographs. Two experiments close the chapter: data augmentation measured over
# several seeds, and transfer learning from one task to another.
#
# Every number stated in the text is computed by a cell that asserts it. The checks and
# callbacks come from `d2lcnn.diagnostics`, the visualizations from `d2lcnn.viz`.
#
# **Learning goals.** After this chapter you can
#
# - predict the initial loss of a classifier, run the "overfit twenty examples" test, and
#   say which bugs each of them catches and which they miss;
# - read a training run from its loss curves, its update-to-weight ratios and its
#   activation histograms, and tell a learning rate that is too high from one too low;
# - show what a trained CNN responds to with filters, feature maps, occlusion, saliency and
#   activation maximisation, and measure what data augmentation and transfer learning buy.
#
# **Prerequisites:** [Convolution](01-convolution.ipynb) (chapter 1),
# [Activation functions](02-activations.ipynb) (chapter 2) and
# [Optimizers](04-optimization.ipynb) (chapter 4); LeNet-5 from the
# [case studies](07-case-studies.ipynb) (chapter 7).

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
import math
from collections import OrderedDict

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from d2lcnn import diagnostics, viz
from d2lcnn import torch as td
from d2lcnn.data import load_dataset, make_loader, sample_image
from d2lcnn.data.transforms import random_flip, random_translate
from d2lcnn.torch.models import LeNet5
from d2lcnn.train import evaluate, fit, seed_everything

SEED = 0  # the chapter's seed: weight init, shuffling, the photo patches
gens = seed_everything(SEED)  # torch's global seed (weight init) and explicit generators
rng = gens.numpy  # every NumPy random array in this chapter comes from here
device = td.device("auto")  # CUDA if present, else MPS, else the CPU
# The networks trained here are small: on a CPU one thread is about as fast as several, and
# it does not slow to a crawl when other programs compete for the cores.
torch.set_num_threads(1)
QUIET = dict(progress=False, live_plot=False, device=device)  # fit() without live output

# %% [markdown]
# ## Data and networks
#
# Three data sets, all offline. The 1,797 handwritten digits of scikit-learn, split per
# class into training, validation and test sets, at two sizes: $16 \times 16$ for the small
# network trained throughout the chapter, and $32 \times 32$ for LeNet-5. And photographs of
# three textures that ship with scikit-image (brick, grass, gravel), cut into
# $16 \times 16$ patches: the training patches come from the top half of each photograph,
# the test patches from the bottom half, so no test pixel was ever seen in training.

# %%
digits = load_dataset("digits", size=16)  # (N, 1, 16, 16) in [0, 1]
digits32 = load_dataset("digits", size=32)  # the same split at LeNet-5's input size
assert (len(digits.y_train), len(digits.y_val), len(digits.y_test)) == (1259, 179, 359)
x_val = torch.as_tensor(digits.x_val, device=device)  # (179, 1, 16, 16)
y_val = torch.as_tensor(digits.y_val, device=device)
train_loader = make_loader(digits.x_train, digits.y_train, batch_size=32, shuffle=True,
                           seed=SEED)
val_loader = make_loader(digits.x_val, digits.y_val, batch_size=512, shuffle=False)

TEXTURES = ("brick", "grass", "gravel")
photos = np.stack([sample_image(name, size=256) for name in TEXTURES])  # (3, 256, 256)
MEAN, STD = photos.mean(), photos.std()  # standardize: the textures are low in contrast


def texture_patches(rows, n, side=16):
    """n random side x side patches from the given rows of each photograph: (x, y)."""
    xs = []
    for img in photos:
        tops = rng.integers(rows[0], rows[1] - side + 1, n)
        lefts = rng.integers(0, img.shape[1] - side + 1, n)
        xs += [img[t:t + side, s:s + side] for t, s in zip(tops, lefts, strict=True)]
    x = (np.stack(xs)[:, None] - MEAN) / STD  # (3n, 1, side, side)
    return x.astype(np.float32), np.repeat(np.arange(len(TEXTURES)), n)


tex_x_train, tex_y_train = texture_patches((0, 128), n=20)  # 20 patches per texture
tex_x_test, tex_y_test = texture_patches((128, 256), n=200)
print(f"digits: {digits.x_train.shape} train; textures: {tex_x_train.shape} train, "
      f"{tex_x_test.shape} test")
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9), layout="constrained")
axes[0].imshow(digits.x_train[0, 0], cmap="gray")
axes[0].set(title=f"digit {digits.y_train[0]} (16x16)", xlabel="column", ylabel="row")
for ax, img, name in zip(axes[1:], photos, TEXTURES, strict=True):
    ax.imshow(img, cmap="gray", vmin=0, vmax=1)
    ax.axhline(128, color="tab:red", lw=1.5)
    ax.set(title=name, xlabel="column", ylabel="row")
fig.suptitle("A digit, and the three texture photographs (training patches come from above "
             "the red line, test patches from below)")
plt.show()

# %% [markdown]
# The small network is two convolutions with ReLUs and max-pooling, and a linear layer. Its
# first five layers, the *trunk*, are shared by the digit network and the texture network;
# only their *heads* differ. The digit head flattens the $16 \times 4 \times 4$ maps into a
# linear layer; the texture head averages each map over all positions first (global average
# pooling), so that the texture network accepts images of any size, which we use later.

# %%
def trunk():
    """conv 5x5 (8) - ReLU - pool - conv 3x3 (16) - ReLU, as named layers."""
    return [
        ("conv1", nn.Conv2d(1, 8, 5, padding=2)),  # (N, 8, H, W)
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),  # (N, 8, H/2, W/2)
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)),  # (N, 16, H/2, W/2)
        ("relu2", nn.ReLU()),
    ]


def digit_net():
    """The trunk, then pool - flatten - linear to 10 classes, for 16x16 inputs."""
    head = [("pool2", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),  # (N, 16 * 4 * 4)
            ("fc", nn.Linear(16 * 4 * 4, 10))]
    return nn.Sequential(OrderedDict(trunk() + head)).to(device)


def texture_net():
    """The trunk, then global average pooling - linear to 3 classes, for any input size."""
    head = [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),  # (N, 16)
            ("fc", nn.Linear(16, len(TEXTURES)))]
    return nn.Sequential(OrderedDict(trunk() + head)).to(device)


model = digit_net()
print(model)
assert sum(p.numel() for p in model.parameters()) == 3946

# %% [markdown]
# ## Before training: the initial loss
#
# ### What the loss should be
#
# A classifier with $K$ classes outputs scores $\mathbf{z} \in \mathbb{R}^K$, turns them
# into probabilities with the softmax $p_k = e^{z_k} / \sum_j e^{z_j}$, and pays the
# cross-entropy $-\ln p_y$ for the true class $y$. With the usual initializations the
# scores of an untrained network are small and nearly equal, so every $p_k$ is close to
# $1/K$ and the loss is close to
#
# $$
# -\ln \frac{1}{K} = \ln K, \qquad \ln 10 \approx 2.303, \qquad \ln 3 \approx 1.099.
# $$
#
# This is the first number to look at in any run: it costs one forward pass, and a
# training log that starts far from $\ln K$ points at a bug before any time is spent.
# `diagnostics.check_initial_loss` measures the mean loss of a model on some data without
# training it and compares it with $\ln K$ (it reads $K$ off the width of the output).

# %%
assert round(diagnostics.expected_initial_loss(10), 3) == 2.303
assert round(diagnostics.expected_initial_loss(3), 3) == 1.099

x32 = torch.as_tensor(digits32.x_train[:512], device=device)  # (512, 1, 32, 32)
y32 = torch.as_tensor(digits32.y_train[:512], device=device)
x16 = torch.as_tensor(digits.x_train[:512], device=device)  # (512, 1, 16, 16)
y16 = torch.as_tensor(digits.y_train[:512], device=device)
tex_batch = (torch.as_tensor(tex_x_train), torch.as_tensor(tex_y_train))

checks = {
    "LeNet-5, 32x32 digits": diagnostics.check_initial_loss(LeNet5(10).to(device), (x32, y32)),
    "small CNN, 16x16 digits": diagnostics.check_initial_loss(digit_net(), (x16, y16)),
    "small CNN, texture patches": diagnostics.check_initial_loss(texture_net(), tex_batch),
}
for name, check in checks.items():
    print(f"{name:28s} loss {check.loss:.2f}, ln K = {check.expected:.2f}")
    # Within 5% of ln K: over seeds 0-3 the ratios stayed between 0.97 and 1.03.
    assert abs(check.ratio - 1) < 0.05, (name, check)

# %% [markdown]
# All three untrained networks, two architectures and two data sets, start within 5% of
# $\ln K$, for $K = 10$ and for $K = 3$ alike.
#
# ### Bugs the initial loss reveals
#
# Now we break LeNet-5 (LeCun et al., 1998) on purpose, three ways, and measure the initial
# loss of each:
#
# 1. **An overconfident last layer**: its weights multiplied by 100, as a wrong
#    initialization scale or a forgotten rescaling would do. The scores are now large, the
#    softmax puts almost all its mass on one class, and that class is usually wrong.
# 2. **The wrong number of classes**: the network outputs 100 scores while the labels use
#    10, as when a model is built for another data set. The softmax spreads over all 100,
#    so the loss starts near $\ln 100 \approx 4.605$, twice $\ln 10$.
# 3. **Softmax applied twice**: the network ends in a softmax layer, and the loss function
#    (`F.cross_entropy`) applies its own. The initial loss looks perfect. We return to this
#    bug below: it shows that a good initial loss is necessary, not sufficient.

# %%
def scaled_last_layer(factor):
    """LeNet-5 whose output layer's weights and bias are multiplied by `factor`."""
    model = LeNet5(10).to(device)
    with torch.no_grad():
        model.classifier[-1].weight.mul_(factor)
        model.classifier[-1].bias.mul_(factor)
    return model


def softmax_twice():
    """LeNet-5 followed by a softmax: the loss then applies a second one."""
    return nn.Sequential(LeNet5(10), nn.Softmax(dim=1)).to(device)


bugs = {
    "last layer x100": scaled_last_layer(100.0),
    "100 outputs for 10 classes": LeNet5(100).to(device),
    "softmax twice": softmax_twice(),
}
ln10 = math.log(10)
bug_loss = {name: diagnostics.initial_loss(m, (x32, y32)) for name, m in bugs.items()}
for name, loss in bug_loss.items():
    print(f"{name:28s} loss {loss:6.2f} = {loss / ln10:5.2f} x ln 10")
# Over seeds 0-3 the x100 loss was 5.0-6.2 ln 10; the 100-output loss within 0.03 of
# ln 100; the double softmax within 0.001 of ln 10.
assert bug_loss["last layer x100"] > 4 * ln10
assert abs(bug_loss["100 outputs for 10 classes"] - math.log(100)) < 0.1
assert abs(bug_loss["softmax twice"] - ln10) < 1e-3
print(diagnostics.check_initial_loss(bugs["last layer x100"], (x32, y32)).message)

# %% [markdown]
# The overconfident network starts at more than four times $\ln 10$. The network with
# 100 outputs starts at $\ln 100$: the initial loss tells us the $K$ that the loss function
# actually sees. The double softmax starts within 0.001 of $\ln 10$, as a correct network
# would: its scores are probabilities, all near $0.1$, and the second softmax of nearly
# equal scores is again nearly uniform.
#
# ### The loss with regularisation switched on
#
# With L2 regularisation (weight decay) the objective is the data loss plus
# $\frac{\lambda}{2} \sum_\ell \lVert \mathbf{W}_\ell \rVert^2$ over the weight matrices
# and kernels. At initialization the data loss is still about $\ln K$, so switching the
# penalty on must *raise* the initial loss, by exactly the penalty. If it does not, the
# penalty is not in the loss. (Beware: the `weight_decay` argument of PyTorch's optimizers
# adds $\lambda \mathbf{W}$ to the gradient and never appears in the loss that `fit`
# records, so there the check has to be done by hand, as here.)

# %%
LAMBDA = 5e-3  # a strong penalty, to make the effect easy to see
lenet = LeNet5(10).to(device)
data_loss = diagnostics.initial_loss(lenet, (x32, y32))
penalty = LAMBDA / 2 * sum((m.weight ** 2).sum().item() for m in lenet.modules()
                           if isinstance(m, nn.Conv2d | nn.Linear))
regularized = diagnostics.initial_loss(
    lenet, (x32, y32),
    loss_fn=lambda out, y: F.cross_entropy(out, y) + penalty)
print(f"data loss {data_loss:.2f}, with the L2 term {regularized:.2f} "
      f"(+{regularized - data_loss:.2f})")
assert regularized > data_loss and abs(regularized - data_loss - penalty) < 1e-5
# Over seeds 0-3 the penalty was 0.25-0.27: "about a quarter".
assert 0.15 < penalty < 0.25  # over seeds 0-3: 0.196-0.198

# %% [markdown]
# With $\lambda = 5 \times 10^{-3}$ the penalty adds about 0.2 to LeNet-5's initial loss,
# which rises from about 2.30 to about 2.50.
#
# ## Before training: overfit twenty examples
#
# The second check costs little more. Take 20 training examples, train on them alone
# (one full batch, many steps, no regularisation) and require 100% training accuracy. A
# network with tens of thousands of parameters can memorise 20 examples; if it cannot, the
# data, the model or the loss is broken, and no amount of training on the full set will
# fix it. `diagnostics.overfit_tiny` runs the test. We run it on three networks: the intact
# LeNet-5; LeNet-5 with a one-character bug, a mean over the features taken along
# dimension 0 (the batch) where a global average pooling should have used dimensions 2
# and 3; and the double softmax from above.

# %%
class BatchMeanBug(nn.Module):
    """LeNet-5 whose pooling averages over the batch instead of over the positions."""

    def __init__(self):
        super().__init__()
        self.net = LeNet5(10)

    def forward(self, x):
        h = self.net.features(x)  # (N, 120, 1, 1)
        h = h.mean(dim=0, keepdim=True).expand_as(h)  # the bug: dim=0 instead of (2, 3)
        return self.net.classifier(h)  # (N, 10): the same row for every example


tiny = (x32[:20], y32[:20])
tiny_runs = {
    "LeNet-5": diagnostics.overfit_tiny(LeNet5(10).to(device), tiny, lr=1e-2, steps=100),
    "batch-mean bug": diagnostics.overfit_tiny(BatchMeanBug().to(device), tiny, steps=30),
    "softmax twice": diagnostics.overfit_tiny(softmax_twice(), tiny, steps=200),
}
largest_class = np.bincount(digits32.y_train[:20]).max() / 20  # the best constant answer
assert largest_class == 0.2
for name, run in tiny_runs.items():
    print(f"{name:15s} reaches 100% training accuracy: {run.ok}")
# Over seeds 0-3: LeNet-5 needed 6-8 steps, the double softmax 15-107.
assert tiny_runs["LeNet-5"].ok and tiny_runs["LeNet-5"].steps_to_fit < 100
assert tiny_runs["batch-mean bug"].accuracy <= largest_class
assert tiny_runs["softmax twice"].ok
assert tiny_runs["softmax twice"].steps_to_fit > tiny_runs["LeNet-5"].steps_to_fit
n_lenet = sum(p.numel() for p in LeNet5(10).parameters())
assert 10_000 < n_lenet < 100_000  # "tens of thousands": 61,706

# %% tags=["nbval-ignore-output"]
for name, run in tiny_runs.items():
    print(f"{name:15s} steps to 100%: {run.steps_to_fit}, last loss {run.losses[-1]:.3f}")

# %% [markdown]
# `overfit_tiny` stops as soon as every example is classified correctly. To see what the
# loss does afterwards, we train the two networks that passed again, from scratch, for 80
# full steps each, with the same optimizer settings (Adam, learning rate 0.01).

# %%
def keep_training(model, x, y, steps=80, lr=1e-2):
    """Full-batch Adam on (x, y): the loss before each step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


loss_floor = math.log(1 + 9 / math.e)  # the double softmax's floor, derived below
seed_everything(SEED)
longer = {"LeNet-5": keep_training(LeNet5(10).to(device), *tiny),
          "softmax twice": keep_training(softmax_twice(), *tiny)}
print(f"loss floor of the double softmax: {loss_floor:.4f}")
# Over seeds 0-3 the intact network's loss fell below 0.01 and the double softmax's stayed
# above the floor (it cannot go below it) and above 1.47.
assert longer["LeNet-5"][-1] < 0.01
assert min(longer["softmax twice"]) > loss_floor
fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
for name, losses in longer.items():
    ax.plot(losses, label=name)
ax.plot(tiny_runs["batch-mean bug"].losses, label="batch-mean bug")
ax.axhline(ln10, color="0.5", ls=":", label="ln 10")
ax.axhline(loss_floor, color="k", ls="--", lw=1, label="ln(1 + 9/e)")
ax.set(yscale="log", xlabel="step", ylabel="training loss on 20 examples",
       title="Training on 20 digits: one working network, two bugs")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# The intact LeNet-5 memorises the 20 digits in well under 100 steps, and trained on, its
# loss falls below 0.01. The batch-mean bug gives every example the same output, so the
# best it can do is to answer the most frequent class among the 20: its accuracy can never
# exceed that class's share, 0.2 here, and the initial loss had not noticed anything.
#
# The double softmax is subtler. It passes the test, since its accuracy reaches 100% (the
# largest probability is still the largest score), though it needs more steps than the
# intact network, and its loss stalls. The second softmax sees scores $q_k \in [0, 1]$,
# and the best it can do is $q_y = 1$ and $q_k = 0$ otherwise, which costs
#
# $$
# -\ln \frac{e^1}{e^1 + (K - 1)\, e^0} = \ln\left(1 + \frac{K - 1}{e}\right) \approx 1.461
# \quad (K = 10).
# $$
#
# The loss can never fall below this floor however long we train. A loss curve
# that flattens far above zero while the training accuracy is perfect is this bug's
# signature.
#
# ## Watching a run
#
# ### Three learning rates
#
# The learning rate is the hyperparameter that most often decides whether a run works
# ([chapter 4](04-optimization.ipynb) compared the optimizers). We train the small digit
# network three times for six epochs, with SGD and momentum 0.9, at a learning rate that is
# too high (0.3), one too low ($10^{-3}$) and one about right (0.05). Two callbacks watch
# each run and write into the run's `History`: `UpdateRatio` records, for every layer, the
# size of each update relative to the weights,
# $\lVert \Delta \mathbf{W} \rVert / \lVert \mathbf{W} \rVert$; `ActivationStats` records
# the mean, standard deviation and histogram of every layer's outputs and of the gradients
# flowing back into them, every few steps.

# %%
LRS = {"too high": 0.3, "too low": 1e-3, "about right": 0.05}
runs, nets = {}, {}
for name, lr in LRS.items():
    seed_everything(SEED)
    nets[name] = digit_net()
    callbacks = [diagnostics.UpdateRatio(every=4)]
    if name == "about right":
        callbacks.append(diagnostics.ActivationStats(every=40, layers=["conv1", "relu1",
                                                                        "conv2", "relu2"]))
    runs[name] = fit(nets[name], train_loader, val_loader, epochs=6,
                     optimizer=torch.optim.SGD(nets[name].parameters(), lr=lr, momentum=0.9),
                     callbacks=callbacks, explode_factor=None, **QUIET)
net = nets["about right"]  # the trained digit network of the rest of the chapter

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained", sharey=True)
for ax, (name, h) in zip(axes, runs.items(), strict=True):
    steps_per_epoch = len(train_loader)
    ax.plot([r.step / steps_per_epoch for r in h.steps], [r.loss for r in h.steps],
            color="0.7", lw=0.8, label="train (step)")
    ax.plot([e.epoch for e in h.epochs], [e.val_loss for e in h.epochs], "o-",
            label="validation")
    ax.axhline(ln10, color="k", ls=":", lw=1, label="ln 10")
    ax.set(title=f"lr = {LRS[name]:g} ({name})", xlabel="epoch", ylabel="loss")
    ax.legend(fontsize="small")
fig.suptitle("Loss curves of the same network at three learning rates")
plt.show()

# %% tags=["nbval-ignore-output"]
final = {name: h.epochs[-1] for name, h in runs.items()}
for name, e in final.items():
    print(f"{name:12s} train loss {e.train_loss:.1f}, validation loss {e.val_loss:.1f}, "
          f"validation accuracy {e.val_accuracy:.1f}")
# Over seeds 0-3: too high ended at validation loss 2.3 and accuracy 0.1 (chance); too low
# at train loss 2.2-2.3; about right at 0.03-0.07 with validation accuracy 0.97-0.99.
assert final["too high"].val_loss > 2.2 and final["too high"].val_accuracy < 0.2
assert final["too low"].train_loss > 2.0
assert runs["too low"].epochs[0].train_loss > final["too low"].train_loss
assert final["about right"].train_loss < 0.15 and final["about right"].val_accuracy > 0.95

# %% [markdown]
# The three curves are the three textbook shapes. **Too high**: the loss is unstable and
# ends on a plateau at $\ln 10$, with the validation accuracy at chance (10%); the network
# has stopped learning altogether, and we will see why in a moment. **Too low**: the loss
# goes down, but so slowly that after six epochs it is still above 2; the curve is almost
# a straight line, the sign that a larger step would help. **About right**: the loss
# falls fast in the first epoch and keeps falling, to below 0.15, and the validation
# accuracy exceeds 95%.
#
# ### The update-to-weight ratio
#
# How large should a step be? A rule of thumb looks at each layer's update relative to its
# weights: around $10^{-3}$ per step is healthy; around $10^{-5}$ the weights hardly move;
# around $10^{-1}$ each step rewrites a tenth of the layer, and the training is chaotic.
# The plot shows the ratio of the three runs for every layer over the training.

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained", sharey=True)
for ax, (name, h) in zip(axes, runs.items(), strict=True):
    diagnostics.plot_update_ratios(h, ax=ax)
    ax.set_title(f"lr = {LRS[name]:g} ({name})")
plt.show()

median_ratio = {name: {layer: float(np.nanmedian(r)) for layer, r in
                       diagnostics.update_ratio_table(h).items()}
                for name, h in runs.items()}
for name, ratios in median_ratio.items():
    print(f"{name:12s}", ", ".join(f"{layer} {r:.0e}" for layer, r in ratios.items()))
first_steps = {layer: r[:5] for layer, r in
               diagnostics.update_ratio_table(runs["too high"]).items()}

# %%
# Over seeds 0-3, median per layer: about right 8.7e-3 to 1.4e-2; too low 1.2e-4 to 1.0e-3,
# 11 to 80 times less, layer by layer. Too high: the largest ratio of the first five
# recorded steps was 0.17-0.38.
right, low = median_ratio["about right"], median_ratio["too low"]
assert all(r < 2e-3 for r in low.values()) and all(3e-3 < r < 3e-2 for r in right.values())
assert all(right[layer] > 5 * low[layer] for layer in right)
assert max(max(r) for r in first_steps.values()) > 0.1

# %% [markdown]
# The ratio separates the three runs. Too low, every layer's median ratio is at most
# $2 \times 10^{-3}$. About right, the medians lie between $3 \times 10^{-3}$ and
# $3 \times 10^{-2}$, layer by layer more than five times those of the slow run. The rule
# of thumb is only a rough guide (this small network with momentum learns well at updates
# of about 1% per step), but a ratio well below it flags a run that wastes its steps. Too
# high, the first steps change some layer by more than a tenth of its weights at once.
#
# ### Activations, gradients and dead units
#
# Why did the run with the high learning rate stop learning? A ReLU unit whose input is
# negative for *every* example outputs 0 and passes back a zero gradient, so nothing ever
# changes its weights again: it is dead. A few large updates can push the biases of a whole
# layer so far negative that all its units die; then the network's output no longer
# depends on the input, the best it can do is predict the class frequencies, and the loss
# sits at $\ln 10$. We count the dead channels of each ReLU layer on the validation set.

# %% tags=["nbval-ignore-output"]
def dead_channels(model, x, layer):
    """Fraction of the channels of `layer` that output 0 for every example and position."""
    out = viz.feature_maps(model, x, layers=[layer])[layer]  # (N, C, H, W)
    return (out == 0).all(dim=(0, 2, 3)).float().mean().item()


dead = {name: {layer: dead_channels(m, x_val, layer) for layer in ("relu1", "relu2")}
        for name, m in nets.items()}
for name, d in dead.items():
    print(f"{name:12s} dead channels: relu1 {d['relu1']:.0%}, relu2 {d['relu2']:.0%}")

# %%
# Over seeds 0-3 the too-high run killed every channel of at least one ReLU layer; the
# other two runs kept at least half of each layer alive.
assert max(dead["too high"].values()) == 1.0
assert all(v <= 0.5 for name in ("too low", "about right") for v in dead[name].values())

# %% [markdown]
# The high learning rate killed every channel of a ReLU layer: nothing reaches the
# classifier, and the run is over even though the loop goes on. The other two runs keep
# at least half of every layer alive.
#
# `ActivationStats` watched the healthy run. Its histograms at the first recorded step and
# at the last show how the distributions moved: each column is a layer, the top row its
# outputs, the bottom row the gradients of the loss with respect to them (on a log scale).
# Outputs of exactly zero after a ReLU pile up in the leftmost bin, and so do their zero
# gradients in the middle bin. Over the training every layer's activations spread out.
# A layer whose histogram collapses to a spike at zero, or whose gradients are orders of
# magnitude smaller than the next layer's, is the first place to look when a deeper
# network does not train.

# %% tags=["nbval-ignore-output"]
right = runs["about right"]
steps = diagnostics.recorded_steps(right, "activations")
for step in (steps[0], steps[-1]):
    fig = diagnostics.plot_activation_histograms(right, step=step)
    fig.set_size_inches(12, 4.5)
    fig.suptitle(f"Activations (top) and their gradients (bottom) at step {step}")
    plt.show()
act_std = diagnostics.activation_table(right, "std")
grad_std = diagnostics.activation_table(right, "grad_std")
for layer in act_std:
    print(f"{layer}: activation std {act_std[layer][0]:.2g} -> {act_std[layer][-1]:.2g}, "
          f"gradient std {grad_std[layer][0]:.2g} -> {grad_std[layer][-1]:.2g}")
# Over seeds 0-3 every layer's activations spread out (the gradients' spread went up or
# down, depending on the last batch).
assert all(v[-1] > v[0] for v in act_std.values())

# %% [markdown]
# ### The gap between training and validation
#
# The last thing to read off the curves is the gap between the training and the
# validation accuracy. A large gap (training near 100%, validation well below) is
# overfitting: more data, data augmentation (below), dropout or weight decay
# ([chapter 6](06-dropout-and-ensembles.ipynb)), or a smaller network. No gap with both
# accuracies low is underfitting: train longer, with a better learning rate, or a bigger
# network. On the full training set the healthy run shows little gap; the same network
# trained on 100 digits in the augmentation experiment below shows a large one.

# %% tags=["nbval-ignore-output"]
gap = final["about right"].train_accuracy - final["about right"].val_accuracy
print(f"train accuracy {final['about right'].train_accuracy:.2f}, "
      f"validation {final['about right'].val_accuracy:.2f}")
assert abs(gap) < 0.05  # over seeds 0-3 between -0.02 and 0.02

# %% [markdown]
# ## Seeing inside a trained network
#
# A trained network is a few thousand numbers (3,946 for the digit network). The tools
# below turn them into pictures that answer a question each: what does a first-layer
# filter look for, what does a layer make of one input, which pixels does the decision
# depend on, and what input would a unit like most? Zeiler and Fergus (2014) made several
# of these methods popular, for a network trained on ImageNet; we apply them to our small
# digit network and, further down, to a network trained on photographs.
#
# ### Filters and feature maps
#
# The first layer's filters act directly on pixels, so they can be drawn as images:
# `viz.filter_grid` rescales each $5 \times 5$ kernel to $[0, 1]$ (black is its most
# negative weight, white its most positive). Deeper filters act on feature maps, not
# pixels, and are hard to read this way; their *outputs* are easier. `viz.feature_maps`
# records the output of chosen layers for one input with forward hooks.

# %% tags=["nbval-ignore-output"]
seed_everything(SEED)
initial = digit_net()  # the weights all three runs above started from
fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
viz.show_filters(initial.conv1.weight, ax=axes[0], title="conv1 filters at initialization")
viz.show_filters(net.conv1.weight, ax=axes[1], title="conv1 filters after training")
plt.show()


def roughness(w):
    """Mean squared difference of neighbouring kernel weights over their variance.

    About 2 for independent random weights; near 0 for smooth kernels.
    """
    w = w.detach()
    dx = (w[..., 1:] - w[..., :-1]).pow(2).mean()
    dy = (w[..., 1:, :] - w[..., :-1, :]).pow(2).mean()
    return ((dx + dy) / 2 / w.var()).item()


rough = {"initial": roughness(initial.conv1.weight), "trained": roughness(net.conv1.weight)}
print(f"roughness of conv1: at initialization {rough['initial']:.1f}, "
      f"trained {rough['trained']:.1f}")
# Over seeds 0-3: trained 0.6-0.8, at initialization 1.7-2.2 (random weights give about 2).
assert rough["trained"] < 0.5 * rough["initial"]

# %%
example = x_val[y_val == 2][0]  # (1, 16, 16): a validation "2"
maps = viz.feature_maps(net, example, layers=["conv1", "relu1", "relu2"])
fig = viz.show_feature_maps(maps, max_channels=8)
fig.set_size_inches(12, 5)
fig.suptitle("Feature maps of a validation 2 (channels 0-7 of three layers)")
plt.show()
assert maps["relu1"].shape == (1, 8, 16, 16) and maps["relu2"].shape == (1, 16, 8, 8)

# %% [markdown]
# The trained first-layer filters are smoother than the random ones and look like small
# stroke and edge detectors. We can measure the smoothness: the mean squared difference
# between neighbouring weights of a kernel, divided by the variance of its weights, is
# about 2 for independent random weights and near 0 for a smooth kernel. Training brings
# it below half of the untrained value (printed below). Their
# feature maps are the input filtered: each responds to a different part or edge of the
# digit. After the ReLU only the positive responses remain, and the second layer, at half
# the resolution, combines them into larger parts.
#
# ### Occlusion and saliency
#
# Which pixels does the decision depend on? Two answers. **Occlusion**
# (Zeiler and Fergus, 2014): cover a small square of the image with grey, and measure how
# much the probability of the true class drops; slide the square over all positions and
# draw the drops as a map. **Saliency** (Simonyan et al., 2014): the gradient of the true
# class's score with respect to each pixel, $\lvert \partial z_y / \partial x_{ij} \rvert$,
# computed in one backward pass. Occlusion measures the effect of a real change; saliency
# the effect of an infinitesimal one.
#
# First the algorithm written out plainly for one position, then the package's vectorised
# version over all positions, and a check that they agree.

# %% tags=["nbval-ignore-output"]
def occlusion_at(model, x, target, top, left, patch=4):
    """p(target | x) - p(target | x with a patch x patch square of the mean at (top, left))."""
    covered = x.clone()
    covered[:, top:top + patch, left:left + patch] = x.mean()
    with torch.no_grad():
        p = F.softmax(model(torch.stack([x, covered])), dim=1)[:, target]  # (2,)
    return (p[0] - p[1]).item()


occ = viz.occlusion(net, example, target=2, patch=6)  # (11, 11): 16 - 6 + 1 positions
net.eval()
assert abs(occ[6, 5] - occlusion_at(net, example, 2, 6, 5, patch=6)) < 1e-6
sal = viz.saliency(net, example, target=2)  # (16, 16)

# Where are the strokes? The pixels brighter than half the maximum.
ink = (example[0] > 0.5 * example.max()).cpu().numpy()  # (16, 16) bool


def ink_and_background(model, x, target, patch=6):
    """Mean occlusion drop of the squares centred on ink, and on background."""
    drop = viz.occlusion(model, x, target, patch=patch)  # (17 - patch, 17 - patch)
    ink = (x[0] > 0.5 * x.max()).cpu().numpy()  # (16, 16): the stroke pixels
    c = patch // 2  # the square with top-left (i, j) has its centre at (i + c, j + c)
    centred = ink[c:c + drop.shape[0], c:c + drop.shape[1]]
    return drop[centred].mean(), drop[~centred].mean()


# One validation example of each class.
pairs = np.array([ink_and_background(net, x_val[y_val == k][0], k) for k in range(10)])
on_ink, on_background = pairs.mean(axis=0)
print(f"mean drop of p(true class), squares centred on ink: {on_ink:.2f}, "
      f"on background: {on_background:.2f}")
# Over seeds 0-3 the ratio of the two means was 2.3 to 4.5.
assert on_ink > 1.5 * on_background

fig, axes = plt.subplots(1, 3, figsize=(11, 4), layout="constrained")
axes[0].imshow(example[0].cpu(), cmap="gray")
axes[0].set(title="input (class 2)")
im = axes[1].imshow(occ, cmap="magma", extent=(2.5, 13.5, 13.5, 2.5))
axes[1].set(title="occlusion: drop in p(2)", xlim=(-0.5, 15.5), ylim=(15.5, -0.5))
fig.colorbar(im, ax=axes[1])
im = axes[2].imshow(sal, cmap="magma")
axes[2].set(title="saliency |dz_2 / dx|")
fig.colorbar(im, ax=axes[2])
for ax in axes:
    ax.set(xlabel="column", ylabel="row")
fig.suptitle("Which pixels the digit network's decision depends on")
plt.show()

# %% [markdown]
# Covering most squares hardly changes the answer; the squares that matter lie on strokes,
# where the digit differs from its look-alikes. Over one validation example of each class,
# a square centred on ink costs the true class more than one and a half times as much
# probability, on average, as one centred on background. (The network is so sure of its
# answers that a $4 \times 4$ square barely moves them; we use $6 \times 6$.) The saliency
# map answers a different question, where a single pixel's value is most sensitive, and
# its answer includes the background next to the strokes: ink added there would change
# the digit. A saliency map is a derivative, and derivatives of ReLU networks are noisy;
# read it for its broad pattern.
#
# ### The input a unit likes most
#
# Turn the question around: instead of asking what an input does to a unit, search for the
# input that excites the unit most. Start from faint noise and climb the gradient of the
# unit's activation with respect to the *pixels*, keeping the weights fixed. Left alone,
# the ascent fills the image with high-frequency patterns that the unit responds to but
# that look like nothing; a small weight decay on the pixels, a slight blur every few steps
# and random shifts keep the image smooth (Yosinski et al., 2015). `viz.maximize_activation`
# does this for a channel of a layer or for a class score.

# %% tags=["nbval-ignore-output"]
dream = np.stack([viz.maximize_activation(net, None, k, shape=(1, 16, 16), steps=150, seed=SEED)
                  for k in range(10)])  # (10, 1, 16, 16)
net.eval()
with torch.no_grad():
    z_dream = net(torch.as_tensor(dream, device=device))  # (10, 10)
    noise = torch.as_tensor(rng.uniform(0, 1, (10, 1, 16, 16)), dtype=torch.float32,
                            device=device)
    z_noise = net(noise)
gain = (z_dream.diagonal() - z_noise.diagonal()).min().item()
print(f"each class's score rises by at least {gain:.0f} over a random input's,",
      f"and is the top score for {(z_dream.argmax(1) == torch.arange(10)).sum().item()} of 10")
# Over seeds 0-3 the smallest rise was above 10 and every image was classified as its class.
assert gain > 5 and (z_dream.argmax(1).cpu() == torch.arange(10)).all()
fig, axes = plt.subplots(1, 10, figsize=(12, 1.9), layout="constrained")
for k, ax in enumerate(axes):
    ax.imshow(dream[k, 0], cmap="gray")
    ax.set(title=f"class {k}", xticks=[], yticks=[])
fig.suptitle("Inputs that maximise each class score of the digit network")
plt.show()

# %% [markdown]
# Every synthesised image is classified as the class it was made for, with a score far
# above that of a random image. Some look like blurry digits; others are collections of
# the strokes that separate their class from the rest, which is what the network actually
# looks for.
#
# ### A network trained on photographs
#
# Digits are simple images. The texture patches are photographs: brick, grass and gravel,
# cut from the top halves of the three pictures. We train the texture network on 20
# patches per texture and test it on 200 patches per texture from the bottom halves.

# %% tags=["nbval-ignore-output"]
tex_train = make_loader(tex_x_train, tex_y_train, batch_size=30, shuffle=True, seed=SEED)
tex_test = make_loader(tex_x_test, tex_y_test, batch_size=600, shuffle=False)
seed_everything(SEED)
tex_net = texture_net()
tex_runs = {"from scratch": fit(tex_net, tex_train, tex_test, epochs=16,
                                optimizer=torch.optim.Adam(tex_net.parameters(), lr=1e-2),
                                **QUIET)}
tex_acc = tex_runs["from scratch"].epochs[-1].val_accuracy
print(f"texture test accuracy {tex_acc:.2f} (chance 0.33)")
assert tex_acc > 0.6  # over seeds 0-3: 0.74 to 0.89

fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
viz.show_filters(tex_net.conv1.weight, ax=axes[0], title="texture network: conv1 filters")
viz.show_filters(net.conv1.weight, ax=axes[1], title="digit network: conv1 filters")
plt.show()
rough["texture"] = roughness(tex_net.conv1.weight)
print(f"roughness of conv1: texture network {rough['texture']:.1f}, "
      f"digit network {rough['trained']:.1f}")
assert rough["texture"] > rough["trained"]  # over seeds 0-3: 1.2-1.7 against 0.6-0.8

# %% [markdown]
# The texture network reaches more than 60% test accuracy from 60 training patches. Its
# first-layer filters differ from the digit network's: they are rough, high-frequency
# patterns, closer to their random start. The textures are made of fine detail (blades of
# grass, grains of gravel, thin joints between bricks), and that is what these filters
# respond to.
#
# Because the texture network averages its last maps over all positions, it runs on images
# of any size. We build a $32 \times 32$ collage from the *test* halves, brick on the left
# and grass on the right, and ask where the network sees brick: we slide an $8 \times 8$
# square over it in steps of 2 pixels and record the drop in $p(\text{brick})$.

# %% tags=["nbval-ignore-output"]
brick = photos[0, 200:232, 40:56]  # (32, 16), from the test half
grass = photos[1, 200:232, 100:116]  # (32, 16), from the test half
collage = (np.concatenate([brick, grass], axis=1) - MEAN) / STD  # (32, 32): brick | grass
collage = torch.as_tensor(collage[None], dtype=torch.float32, device=device)  # (1, 32, 32)
occ_tex = viz.occlusion(tex_net, collage, target=0, patch=8, stride=2)  # (13, 13)
# The square at column 2j covers columns 2j..2j+7: all brick for j <= 4, all grass for j >= 8.
on_brick, on_grass = occ_tex[:, :5].mean(), occ_tex[:, 8:].mean()
with torch.no_grad():
    p_brick = F.softmax(tex_net.eval()(collage[None]), dim=1)[0, 0].item()
print(f"occlusion drop over the brick half {on_brick:.2f}, over the grass half {on_grass:.2f}")
# Over seeds 0-3 covering brick lowered p(brick) and covering grass raised it.
assert on_brick > 0 > on_grass

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), layout="constrained")
axes[0].imshow(collage[0].cpu(), cmap="gray")
axes[0].set(title="brick (left) and grass (right)")
im = axes[1].imshow(occ_tex, cmap="magma", extent=(3.5, 27.5, 27.5, 3.5))
axes[1].set(title="occlusion: drop in p(brick)", xlim=(-0.5, 31.5), ylim=(31.5, -0.5))
fig.colorbar(im, ax=axes[1])
for ax in axes:
    ax.set(xlabel="column", ylabel="row")
fig.suptitle("Where the texture network sees brick")
plt.show()

# %% [markdown]
# Covering part of the brick lowers $p(\text{brick})$; covering part of the grass raises
# it, because less grass is left to argue against brick. The same network also shows its
# feature maps on a photograph it was never trained on, the camera man of scikit-image:
# the first-layer channels respond to edges, fine detail,
# or whole dark or bright regions; the second layer's maps are coarser, at half the
# resolution.

# %%
camera = (sample_image("camera", size=96) - MEAN) / STD  # (96, 96)
camera = torch.as_tensor(camera[None], dtype=torch.float32, device=device)  # (1, 96, 96)
fig = viz.show_feature_maps(viz.feature_maps(tex_net, camera, layers=["relu1", "relu2"]),
                            max_channels=6)
fig.set_size_inches(12, 4.5)
fig.suptitle("Feature maps of the texture network on a photograph (channels 0-5)")
plt.show()

# %% [markdown]
# ## Data augmentation, measured
#
# When the training set is small, one cheap way to get more out of it is to show the
# network modified copies of each example that keep its label: shifted by a pixel, cropped
# a little differently, or, for natural photographs, mirrored. The network then has to
# learn the invariance instead of memorising the pixels. Whether an augmentation keeps the
# label depends on the data: a photograph of a cat is still a cat when mirrored, a "2" is
# not a "2".

# %%
twos = digits.x_train[digits.y_train == 2][:4, 0]  # (4, 16, 16)
fig, axes = plt.subplots(2, 4, figsize=(8, 4.2), layout="constrained")
for j, img in enumerate(twos):
    axes[0, j].imshow(img, cmap="gray")
    axes[1, j].imshow(img[:, ::-1], cmap="gray")
    axes[0, j].set(title="a 2", xticks=[], yticks=[])
    axes[1, j].set(title="flipped left-right", xticks=[], yticks=[])
fig.suptitle("Horizontal flips do not preserve a digit's label")
plt.show()

# %% [markdown]
# We train the digit network on only 100 training digits (10 per class) under three
# regimes: no augmentation; random shifts of up to one pixel in each direction
# (`random_translate`); random left-right flips with probability 0.5 (`random_flip`). Each
# regime is trained with three seeds (different subsets of 100 digits, initializations and
# augmentation draws), and scored on the 359 test digits.

# %% tags=["nbval-ignore-output"]
AUG_SEEDS = (SEED, SEED + 1, SEED + 2)
REGIMES = {"none": None,
           "shift +-1 px": lambda g: lambda x: random_translate(x, 1, generator=g),
           "flip": lambda g: lambda x: random_flip(x, generator=g)}
test_loader = make_loader(digits.x_test, digits.y_test, batch_size=512, shuffle=False)
aug_acc = {name: [] for name in REGIMES}
aug_train = {name: [] for name in REGIMES}  # training accuracy of the last epoch
for seed in AUG_SEEDS:
    pick = np.random.default_rng(seed)
    idx = np.concatenate([pick.choice(np.flatnonzero(digits.y_train == k), 10, replace=False)
                          for k in range(10)])  # 10 training digits per class
    for name, make in REGIMES.items():
        g = torch.Generator().manual_seed(seed)  # the augmentation's own random stream
        loader = make_loader(digits.x_train[idx], digits.y_train[idx], batch_size=25,
                             shuffle=True, seed=seed, transform=make and make(g))
        seed_everything(seed)
        model = digit_net()
        h = fit(model, loader, epochs=40,
                optimizer=torch.optim.Adam(model.parameters(), lr=5e-3), **QUIET)
        aug_acc[name].append(evaluate(model, test_loader)[1])
        aug_train[name].append(h.epochs[-1].train_accuracy)

mean = {name: float(np.mean(a)) for name, a in aug_acc.items()}
for name, a in aug_acc.items():
    print(f"{name:13s} test accuracy {mean[name]:.2f} (range {min(a):.2f} to {max(a):.2f})")

# %% [markdown]
# <!-- The numbers in this paragraph are asserted in the next cell. -->
# Shifts of one pixel raise the mean test accuracy over the three seeds; flips lower it
# clearly, on every seed. A flipped digit is a wrong training example: a flipped "2"
# labelled 2 teaches the network that a mirrored "2" is a 2, and mirrored versions of
# different digits look alike. For photographs of objects, flips are among the most useful
# augmentations; for digits and text, never.

# %% tags=["nbval-ignore-output"]
# Over chapter seeds 0-3 (seed triples 0-2 ... 3-5) shift beat none on average, by 0.01 to
# 0.03, and flip lost to none on every seed of every triple, by 0.02 to 0.07.
assert mean["shift +-1 px"] > mean["none"]
assert all(f < n for f, n in zip(aug_acc["flip"], aug_acc["none"], strict=True))
gaps = [tr - te for tr, te in zip(aug_train["none"], aug_acc["none"], strict=True)]
print(f"no augmentation: training accuracy {min(aug_train['none']):.1f} on every seed, "
      f"test accuracy lower by {min(gaps):.2f} or more")
assert min(gaps) > 0.05  # over seeds 0-3: 0.10 to 0.16

fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
for i, (name, accs) in enumerate(aug_acc.items()):
    ax.plot([i] * len(accs), accs, "o", ms=7, alpha=0.7, label=name)
    ax.plot([i - 0.2, i + 0.2], [np.mean(accs)] * 2, "k-", lw=2)
ax.set(xticks=range(len(aug_acc)), xticklabels=list(aug_acc), xlabel="augmentation",
       ylabel="test accuracy", xlim=(-0.5, len(aug_acc) - 0.5),
       title="100 training digits, three seeds each (bar: mean)")
plt.show()

# %% [markdown]
# The last printout is the train/validation gap promised above: trained on 100 digits
# without augmentation, the network fits its training set perfectly and scores more than
# five points lower on the test set.
#
# ## Transfer learning
#
# A network trained on one task has learned features, and the features may be useful for
# another task with little data: keep the trunk, replace the head, and train on the new
# task. There are two ways to do it. **Feature extraction** freezes the trunk and trains
# only the new head; **fine-tuning** trains everything, starting from the pretrained
# weights. Both beat training from scratch when the first task was large and general, as
# with networks pretrained on the 1.3 million training photographs of ImageNet
# (Russakovsky et al., 2015). Yosinski et al. (2014) measured how well each layer of such
# a network transfers: the first layers learn general features (edge and colour detectors
# that nearly every network trained on photographs learns), the last layers features
# specific to their task, and the more the two tasks differ, the less the features help.
#
# Here the pretrained trunk is that of the digit network trained above, and the new task
# is the textures: 20 patches per class, as for the texture network trained from scratch,
# whose run serves as the baseline. The head is the texture network's.

# %%
IMAGENET_TRAIN_IMAGES = 1_281_167  # Russakovsky et al. (2015): classification training set
assert round(IMAGENET_TRAIN_IMAGES / 1e6, 1) == 1.3  # "1.3 million" in the text
n_trunk = sum(p.numel() for layer in ("conv1", "conv2") for p in getattr(net, layer).parameters())
print(f"the trunk has {n_trunk} parameters, pretrained on {len(digits.y_train)} digits")
assert n_trunk == 8 * 25 + 8 + 16 * 8 * 9 + 16


# %% tags=["nbval-ignore-output"]
def from_digits(freeze):
    """A texture network whose trunk starts as the trained digit network's."""
    model = texture_net()
    for layer in ("conv1", "conv2"):
        getattr(model, layer).load_state_dict(getattr(net, layer).state_dict())
        getattr(model, layer).requires_grad_(not freeze)
    return model


for name, freeze in (("frozen digit trunk", True), ("fine-tuned digit trunk", False)):
    seed_everything(SEED)
    model = from_digits(freeze)
    tex_runs[name] = fit(model, tex_train, tex_test, epochs=16,
                         optimizer=torch.optim.Adam([p for p in model.parameters()
                                                     if p.requires_grad], lr=1e-2),
                         **QUIET)
final_tex = {name: h.epochs[-1].val_accuracy for name, h in tex_runs.items()}
for name, acc in final_tex.items():
    print(f"{name:22s} texture test accuracy {acc:.2f}")

fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
for name, h in tex_runs.items():
    ax.plot([e.epoch for e in h.epochs], [e.val_accuracy for e in h.epochs], "o-", ms=3,
            label=name)
ax.axhline(1 / 3, color="k", ls=":", lw=1, label="chance")
ax.set(xlabel="epoch", ylabel="texture test accuracy",
       title="Textures from 60 patches: scratch, frozen and fine-tuned digit features")
ax.legend()
plt.show()

# %%
# Over seeds 0-3 (test accuracy): scratch 0.74-0.89, frozen 0.46-0.68 (0.20-0.29 below
# scratch), fine-tuned 0.64-0.83 (0.11 below to 0.01 above scratch).
scratch, frozen = final_tex["from scratch"], final_tex["frozen digit trunk"]
tuned = final_tex["fine-tuned digit trunk"]
assert frozen < scratch - 0.1 and frozen < tuned < scratch + 0.02

# %% [markdown]
# Transfer is not free. The features of a network trained on 1,259 digits are stroke
# detectors tuned to smooth, high-contrast lines on black; frozen, they describe grass and
# gravel poorly, and the frozen network ends more than ten points below the one trained
# from scratch. Fine-tuning lets the trunk move away from the digits and ends above the
# frozen network, but at best level with training from scratch: on this pair of tasks the
# pretraining does not help. For transfer to pay, the first task must teach features the
# second needs: that is why practitioners start from networks trained on large
# collections of photographs, whose first layers learn the generic edge and colour
# detectors that Zeiler and Fergus (2014) showed, and not from a small network trained on
# digits.
#
# ## What to remember
#
# - Before a long run: the initial loss should be near $\ln K$ (2.303 for ten classes);
#   far above means an overconfident or mismatched output, a wrong $K$ shows up as
#   $\ln K_{\text{wrong}}$. Switching on regularisation must raise it.
# - Then overfit 20 examples to 100% training accuracy. It catches bugs the initial loss
#   misses (outputs that ignore the input), and a loss that stalls above zero at perfect
#   accuracy points at a double softmax.
# - Read the loss curves: an unstable loss that ends on a plateau at $\ln K$ means too
#   high a learning rate (look for dead ReLUs), a slow, almost straight decline too low.
#   Update-to-weight ratios far below the rule of thumb of $10^{-3}$ mean wasted steps;
#   healthy runs can sit well above it.
# - Filters, feature maps, occlusion, saliency and activation maximisation each answer one
#   question about a trained network; an occlusion map should point at the object.
# - Augmentations must preserve the label: shifts helped our digits a little, flips hurt
#   them. Transfer helps only when the first task teaches what the second needs.
#
# ## Exercises
#
# 1. **Quick check.** What initial loss do you expect for a 100-class problem, and for a
#    binary classifier trained with a 2-output softmax? Verify both with
#    `diagnostics.check_initial_loss` on `LeNet5(100)` and `LeNet5(2)` and random labels.
# 2. **The floor of the double softmax.** Derive the smallest loss of a network that
#    applies the softmax twice for $K$ classes, and check it against `overfit_tiny` for
#    $K = 2, 10, 100$. For which $K$ is the bug hardest to see in a loss curve?
# 3. **Labels off by one.** Train the digit network with labels `(y + 1) % 10`. Does the
#    initial loss change? Does `overfit_tiny` pass? Which check does catch the bug, and
#    what does the confusion between predictions and true labels look like?
# 4. **Reviving dead units.** Repeat the run with the learning rate 0.3 using LeakyReLU
#    ([chapter 2](02-activations.ipynb)) or with gradient clipping (`clip_grad_norm=1.0` in
#    `fit`). Plot the update-to-weight ratios and count the dead channels. Which fix works?
# 5. **Training with occlusions (small project).** Occlusion can also be an augmentation:
#    cover a random square of each training image (write the transform with a seeded
#    `torch.Generator`, as `random_translate` does). Train the digit network on 100 digits
#    with squares of side 2, 4 and 6 over three seeds, as in the augmentation experiment.
#    Does it help, and do the occlusion maps of the trained network change?
# 6. **Transfer that works (small project).** Pretrain the trunk on the texture patches of
#    *all* photographs in `d2lcnn.data.SAMPLE_IMAGES` except brick, grass and gravel (say,
#    "which photograph is this patch from?"), then transfer to the three textures. Does
#    pretraining on photographs help where pretraining on digits did not?
#
# The eighth homework,
# [`homework/hw8-babysitting/hw8-babysitting.ipynb`](homework/hw8-babysitting/hw8-babysitting.ipynb)
# (or the copy your instructor hands out), asks you to write the initial-loss check, the
# tiny-subset test, the update-to-weight ratio and an occlusion map yourself, and to read
# three loss curves for the learning rates that made them.

# %% [markdown]
# ## References
#
# - LeCun, Y., Bottou, L., Bengio, Y., & Haffner, P. (1998). Gradient-based learning applied
#   to document recognition. *Proceedings of the IEEE*.
#   [doi:10.1109/5.726791](https://doi.org/10.1109/5.726791)
# - Russakovsky, O., Deng, J., Su, H., et al. (2015). ImageNet large scale visual recognition
#   challenge. *IJCV*. [arXiv:1409.0575](https://arxiv.org/abs/1409.0575)
# - Simonyan, K., Vedaldi, A., & Zisserman, A. (2014). Deep inside convolutional networks:
#   Visualising image classification models and saliency maps. *ICLR Workshop*.
#   [arXiv:1312.6034](https://arxiv.org/abs/1312.6034)
# - Yosinski, J., Clune, J., Bengio, Y., & Lipson, H. (2014). How transferable are features
#   in deep neural networks? *NeurIPS*. [arXiv:1411.1792](https://arxiv.org/abs/1411.1792)
# - Yosinski, J., Clune, J., Nguyen, A., Fuchs, T., & Lipson, H. (2015). Understanding neural
#   networks through deep visualization. *ICML Deep Learning Workshop*.
#   [arXiv:1506.06579](https://arxiv.org/abs/1506.06579)
# - Zeiler, M. D., & Fergus, R. (2014). Visualizing and understanding convolutional
#   networks. *ECCV*. [arXiv:1311.2901](https://arxiv.org/abs/1311.2901)
