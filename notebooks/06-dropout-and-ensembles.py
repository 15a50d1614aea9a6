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
# # Dropout, regularization and ensembles
#
# A network with three hundred thousand weights and three hundred training images can learn
# every image by heart. It then reaches 100% training accuracy while its predictions on new
# images get *less* reliable the longer it trains. This chapter is about the two oldest
# remedies that still matter in practice. The first is to train many models and let them
# vote or average. The second is **dropout**, which trains an astronomically large ensemble
# inside a single network by switching random units off, and averages it at test time at
# the cost of one forward pass. Weight decay, the $L_2$ penalty, is the third tool and is
# usually used alongside the other two.
#
# We make overfitting visible on the real 8x8 digits, derive dropout from the lecture's
# three-layer NumPy example, check the expectation argument behind its test-time scaling by
# Monte Carlo, explain why every framework uses the *inverted* variant instead, and measure
# how good the one-pass approximation of the ensemble really is. The second half builds
# ensembles four ways (independent models, bootstrap samples, one trunk with several heads,
# snapshots of a single run) and compares averaging probabilities with majority voting.
#
# **A warning about `p`.** The lecture code calls its `p` the probability of *keeping* a
# unit. PyTorch, and this book's package, call `p` the probability of *dropping* it. In the
# text we write $p_{drop}$ for the drop probability (PyTorch's `p`) and $1 - p_{drop}$ for
# the keep probability, and convert explicitly wherever the two conventions meet.
#
# **Learning goals.** After this chapter you can
#
# - recognize overfitting in the training and validation curves, and explain dropout as
#   training an ensemble of weight-sharing thinned networks;
# - implement vanilla and inverted dropout, derive the test-time scaling from the
#   expectation argument, and convert between the keep and drop conventions;
# - build and compare ensembles (averaging, majority vote, bagging, shared trunks and
#   snapshots) and say what each costs and gains.
#
# **Prerequisites:** [Convolution](01-convolution.ipynb) (chapter 1),
# [Optimization](04-optimization.ipynb) (chapter 4: SGD with momentum, weight decay and
# learning-rate schedules) and [Normalization](05-normalization.ipynb) (chapter 5, for
# train and eval mode).

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
import itertools
import math
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from d2lcnn import numpy as nd
from d2lcnn import torch as td
from d2lcnn.data import load_dataset, make_loader, sample_image
from d2lcnn.ensemble import average_probabilities, bootstrap_indices, majority_vote
from d2lcnn.plots import show_images
from d2lcnn.schedules import cosine_lr
from d2lcnn.torch.models import AlexNet, GoogLeNet
from d2lcnn.torch.schedules import as_torch_scheduler
from d2lcnn.train import fit, predict, seed_everything

rng = np.random.default_rng(0)  # every NumPy random number in this chapter comes from here
torch.manual_seed(0)  # each training run below reseeds with its own seed
device = td.device("auto")  # CUDA if present, else MPS, else the CPU
# The models here are tiny: on a CPU one thread is as fast as several, and it does not
# slow to a crawl when other programs compete for the cores.
torch.set_num_threads(1)

# %% [markdown]
# ## A network that memorizes
#
# We take 30 images per class from the training split of the digits (300 images) and
# keep the whole validation and test splits. The model is a multilayer perceptron with two
# hidden layers of 512 units, about 300,000 weights: a thousand per training image. The
# two small functions below build such a network (with a dropout probability that is zero
# for now) and train one with SGD and momentum; they are reused by every experiment of the
# chapter.

# %%
data = load_dataset("digits")  # 1,797 real 8x8 digits: stratified train / val / test
small = np.concatenate(
    [rng.choice(np.flatnonzero(data.y_train == c), 30, replace=False) for c in range(10)]
)
x_small, y_small = data.x_train[small], data.y_train[small]  # (300, 1, 8, 8), (300,)
val_loader = make_loader(data.x_val, data.y_val, batch_size=512, shuffle=False)
x_test, y_test = torch.as_tensor(data.x_test), data.y_test  # (359, 1, 8, 8), (359,)
print("small training set", x_small.shape, "| validation", data.x_val.shape,
      "| test", data.x_test.shape)
assert x_small.shape == (300, 1, 8, 8) and np.bincount(y_small).tolist() == [30] * 10


def mlp(p=0.0, hidden=512):
    """64 -> hidden -> hidden -> 10 with ReLUs and dropout (drop probability p) after each."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(p),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(p),
        nn.Linear(hidden, 10),
    )


def train(make_model, x, y, *, seed, epochs, weight_decay=0.0, lr=0.05, schedule=None,
          loss_fn=F.cross_entropy, callbacks=()):
    """Build make_model() under `seed`, train it with SGD (momentum 0.9, batches of 50)."""
    seed_everything(seed)  # fixes the initial weights and the dropout masks
    model = make_model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    sched = None if schedule is None else as_torch_scheduler(opt, schedule)
    loader = make_loader(x, y, batch_size=50, shuffle=True, seed=seed)
    history = fit(model, loader, val_loader, epochs=epochs, optimizer=opt, scheduler=sched,
                  scheduler_step="step", loss_fn=loss_fn, callbacks=callbacks,
                  live_plot=False)
    return model, history


n_weights = sum(w.numel() for w in mlp().parameters())
print(f"{n_weights:,} parameters, {n_weights / 300:.0f} per training image")
assert n_weights == 64 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10 == 301_066

# %% [markdown]
# Sixty epochs of training without any regularization:

# %% tags=["nbval-ignore-output"]
EPOCHS = 60
plain, h_plain = train(mlp, x_small, y_small, seed=0, epochs=EPOCHS)
last = h_plain.epochs[-1]
val_losses = [r.val_loss for r in h_plain.epochs]
best = int(np.argmin(val_losses))
print(f"train: loss {last.train_loss:.4f}, accuracy {last.train_accuracy:.3f}")
print(f"validation loss: lowest {val_losses[best]:.3f} at epoch {best + 1}, "
      f"final {last.val_loss:.3f} ({last.val_loss / val_losses[best]:.2f}x)")
# Seeds 0-3: the lowest validation loss came at epochs 15-19; the final one was 1.08-1.28x it.
assert last.train_accuracy == 1.0 and last.train_loss < 0.01
assert best + 1 <= EPOCHS // 2 and last.val_loss > 1.05 * val_losses[best]

# %% [markdown]
# The network classifies every training image correctly and drives the training loss
# towards zero. The validation loss reaches its minimum in the first half of training and
# then creeps up (by more than 5% by the end): the network
# keeps making its training predictions more confident, and the extra confidence is wrong
# often enough on new images to cost more than it gains. That is overfitting, seen in the
# quantity the network is optimizing.

# %%
epochs_axis = np.arange(1, EPOCHS + 1)
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
ax.semilogy(epochs_axis, [r.train_loss for r in h_plain.epochs], label="training loss")
ax.semilogy(epochs_axis, val_losses, label="validation loss")
ax.axvline(best + 1, color="0.6", ls=":", label="lowest validation loss")
ax.set(xlabel="epoch", ylabel="cross-entropy (log scale)",
       title="300 training digits, no regularization: memorization")
ax.legend()
plt.show()

# %% [markdown]
# ## Dropout: an ensemble of thinned networks
#
# Dropout (Srivastava et al., 2014) changes the forward pass during training only: every
# hidden unit is set to zero with probability $p_{drop}$ and kept otherwise, with a fresh
# random choice for every example and every step. With a keep mask $m \in \{0, 1\}$ of
# Bernoulli entries,
#
# $$
# \tilde h_i = m_i \, h_i, \qquad m_i \sim \mathrm{Bernoulli}(1 - p_{drop}) .
# $$
#
# Two ways to see why this helps:
#
# * **Redundancy.** No unit can rely on a particular other unit being present, so the
#   network has to spread each piece of evidence over several units. Dropping input pixels
#   is like training on partly occluded images; dropping hidden units is the same
#   "augmentation", applied inside the network.
# * **An ensemble.** Each mask selects a *thinned* sub-network that shares its weights with
#   all the others. A network with $L$ dropout layers of $D$ units each has $2^{LD}$
#   masks, hence $2^{LD}$ thinned networks, and every training step trains a few of them (one per
#   example in the batch) on a single example each.
#
# For a toy network with two layers of three units we can list the thinned networks; for
# ours the number has 309 decimal digits.

# %%
n_layers, n_units = 2, 3
masks = list(itertools.product([0, 1], repeat=n_layers * n_units))
n_thinned = 2 ** (2 * 512)  # our MLP: 2 dropout layers of 512 units
steps = EPOCHS * math.ceil(300 / 50)
print(f"toy network: {len(masks)} thinned networks; "
      f"our MLP: 2^1024, a number with {len(str(n_thinned))} digits; "
      f"examples seen in training: {steps * 50:,}")
assert len(masks) == 2 ** (n_layers * n_units) == 64 and len(str(n_thinned)) == 309

# %% [markdown]
# Training shows the network 18,000 examples, so almost all of the $2^{1024}$ thinned
# networks are never trained at all. They still work, because every one of them shares its
# weights with the ones that were. What dropout applied to the input looks like, for one
# digit and $p_{drop} = 0.5$:

# %%
digit = data.x_train[small[0], 0]  # (8, 8)
keep = rng.random((4, 8, 8)) < 0.5  # four keep masks, p_drop = 0.5
show_images([digit, *(digit * keep)], ["all pixels", *[f"mask {i + 1}" for i in range(4)]],
            suptitle="Dropout on the input: each mask is a partly occluded training image")
plt.show()

# %% [markdown]
# ## The lecture's three-layer example: vanilla dropout
#
# The lecture writes dropout into the forward pass of a three-layer network in NumPy. The
# data are columns ($X$ is $D \times N$), and `p_keep` is the lecture's `p`, the keep
# probability. (In the slides the first mask reads `U1 = np.random.rand(*H1.shape)`
# without the comparison `< p`; that would multiply the activations by uniform noise
# instead of dropping units. The second mask has the comparison, and so does our code.)

# %%
p_keep = 0.5  # the lecture's p: probability of KEEPING a unit; the package's p is 1 - p_keep
D, H = 64, 32  # input size, hidden width
W1, b1 = rng.standard_normal((H, D)) * 0.2, np.full((H, 1), 0.1)
W2, b2 = rng.standard_normal((H, H)) * 0.2, np.full((H, 1), 0.1)
W3, b3 = rng.standard_normal((10, H)) * 0.2, np.zeros((10, 1))
X = data.x_test[:5].reshape(5, D).T.astype(np.float64)  # (D, N): five test digits as columns


def train_forward(X, U1, U2):
    """Training forward pass with vanilla dropout, given the keep masks U1, U2."""
    H1 = np.maximum(0, W1 @ X + b1) * U1  # drop!  (H, N)
    H2 = np.maximum(0, W2 @ H1 + b2) * U2  # drop!  (H, N)
    return W3 @ H2 + b3  # (10, N)


def predict_vanilla(X):
    """Test time: every unit is on, so scale each activation by the keep probability."""
    H1 = np.maximum(0, W1 @ X + b1) * p_keep
    H2 = np.maximum(0, W2 @ H1 + b2) * p_keep
    return W3 @ H2 + b3


U1 = rng.random((H, X.shape[1])) < p_keep  # first dropout mask
U2 = rng.random((H, X.shape[1])) < p_keep  # second dropout mask
out_train, out_test = train_forward(X, U1, U2), predict_vanilla(X)
print("fraction of hidden units dropped:", np.round([1 - U1.mean(), 1 - U2.mean()], 3))

# %% [markdown]
# The package's `vanilla_dropout_forward` is this layer. Its `p` is the *drop* probability
# $p_{drop}$, so the lecture's `p = 0.5` becomes `p = 1 - p_keep`, here also 0.5. (For a keep
# probability of 0.8 it would be 0.2: the same number in the two conventions only at one
# half.) Passing the same masks gives the same numbers, in training and at test time:

# %%
p_drop = 1 - p_keep  # the package's (and PyTorch's) p


def vanilla_net(X, training, masks=(None, None)):
    """The same network written with the package's vanilla dropout layer."""
    H1, _ = nd.vanilla_dropout_forward(np.maximum(0, W1 @ X + b1), p=p_drop,
                                       training=training, mask=masks[0])
    H2, _ = nd.vanilla_dropout_forward(np.maximum(0, W2 @ H1 + b2), p=p_drop,
                                       training=training, mask=masks[1])
    return W3 @ H2 + b3


assert np.array_equal(vanilla_net(X, True, (U1, U2)), out_train)
assert np.allclose(vanilla_net(X, False), out_test, rtol=0, atol=1e-12)
print("package == lecture code, in training and at test time")

# %% [markdown]
# ## Why scale at test time: the expectation argument
#
# Take one unit of the next layer with two inputs, $a = w_0 x + w_1 y$. At test time both
# inputs are present. In training, with $p_{drop} = \tfrac12$, each of the four masks
# occurs with probability $\tfrac14$:
#
# $$
# \mathbb{E}[a] = \tfrac14 (w_0 \cdot 0 + w_1 \cdot 0) + \tfrac14 (w_0 \cdot 0 + w_1 y)
#               + \tfrac14 (w_0 x + w_1 \cdot 0) + \tfrac14 (w_0 x + w_1 y)
#              = \tfrac12 (w_0 x + w_1 y).
# $$
#
# For a general drop probability, linearity of expectation gives
# $\mathbb{E}[a] = (1 - p_{drop})\,(w_0 x + w_1 y)$. So the test-time unit, which sees
# every input, would receive twice (in general $1/(1 - p_{drop})$ times) what it received
# on average in training, and every layer after it would be fed activations of a scale it
# has never seen. Vanilla dropout therefore multiplies by the keep probability
# $1 - p_{drop}$ at test time. We check the formula by enumerating the
# masks and by Monte Carlo with 200,000 masks drawn by the package:

# %%
w0, w1, x_in, y_in = 0.8, -0.3, 1.5, 2.0
a_test = w0 * x_in + w1 * y_in
T_MC = 200_000
for drop in (0.5, 0.2):
    keep_prob = 1 - drop
    exact = sum(keep_prob ** (m0 + m1) * drop ** (2 - m0 - m1)
                * (w0 * m0 * x_in + w1 * m1 * y_in) for m0 in (0, 1) for m1 in (0, 1))
    inputs = np.tile([x_in, y_in], (T_MC, 1))  # (T, 2): one row per random mask
    dropped, _ = nd.vanilla_dropout_forward(inputs, p=drop,
                                         generator=np.random.default_rng(1))
    a = dropped @ np.array([w0, w1])  # (T,)
    stderr = a.std() / np.sqrt(T_MC)
    print(f"p_drop = {drop}: test a = {a_test:.4f}, E[a] = (1 - p_drop) a = "
          f"{keep_prob * a_test:.4f} (enumerated {exact:.4f}), "
          f"Monte Carlo {a.mean():.4f} +- {stderr:.4f}")
    assert math.isclose(exact, keep_prob * a_test, rel_tol=1e-12)
    assert abs(a.mean() - keep_prob * a_test) < 4 * stderr

# %% [markdown]
# The argument is exact for the unit right after the dropout layer, because that unit is
# linear in its inputs. It is only approximate for the whole network, because the ReLUs
# (and the softmax) in between are not linear; we measure how good the approximation is
# on a trained network below.
#
# ## Inverted dropout: scale while training instead
#
# Vanilla dropout makes the *deployed* network different from the plain one: `predict`
# must know the keep probability of every layer and scale by it. Inverted dropout moves
# the correction into training. The kept units are divided by the keep probability,
#
# $$
# \tilde h_i = \frac{m_i\, h_i}{1 - p_{drop}}, \qquad \mathbb{E}[\tilde h_i] = h_i ,
# $$
#
# so the expected training activation already equals the test activation and test time is
# the identity. This is what `torch.nn.Dropout`, `F.dropout` and the package's
# `dropout_forward` do, with `p` $= p_{drop}$. It is preferred because the
# network you ship is the plain network: `model.eval()` switches dropout off and nothing
# else changes, inference code never needs to know the keep probabilities, and $p_{drop}$ can be
# retuned (or dropout removed) without touching it.
#
# With one mask, the two variants differ by the factor $1/(1 - p_{drop})$ in training and
# by the same factor at test time:

# %%
h = rng.random((4, 6))
keep = rng.random(h.shape) < 0.7  # keep probability 0.7, p_drop = 0.3
inverted, _ = nd.dropout_forward(h, p=0.3, mask=keep)
vanilla, _ = nd.vanilla_dropout_forward(h, p=0.3, mask=keep)
assert np.allclose(inverted, vanilla / 0.7, rtol=1e-12)
assert np.array_equal(nd.dropout_forward(h, p=0.3, training=False)[0], h)  # identity
assert np.allclose(nd.vanilla_dropout_forward(h, p=0.3, training=False)[0], 0.7 * h)
# the torch version agrees with NumPy given the same mask...
t_inv = td.dropout(torch.as_tensor(h), 0.3, mask=torch.as_tensor(keep))
assert np.allclose(t_inv.numpy(), inverted, rtol=1e-12)
# ...and PyTorch's own F.dropout follows the same rule: zeros, or x / (1 - p)
torch.manual_seed(0)
z = F.dropout(torch.ones(100_000, dtype=torch.float64), p=0.3)
values = sorted({round(v, 12) for v in z.unique().tolist()})
print(f"F.dropout(ones, p=0.3): values {values}, fraction zeroed {(z == 0).double().mean():.2f}")
assert values == [0.0, round(1 / 0.7, 12)] and abs((z == 0).double().mean() - 0.3) < 0.01

# %% [markdown]
# The two variants train exactly the same family of functions. With $q = 1 - p_{drop}$
# for short, inverted dropout with weights $(W_1, qW_2, qW_3)$ computes, in training (same
# masks) and at test time, what vanilla dropout computes with $(W_1, W_2, W_3)$: the
# factors $1/q$ are absorbed by the next layer's weights. Inverted dropout simply stores the weights
# already scaled.

# %%
def inverted_net(X, training, masks=(None, None), scale=p_keep):
    """The lecture's network with inverted dropout and W2, W3 multiplied by `scale`."""
    H1, _ = nd.dropout_forward(np.maximum(0, W1 @ X + b1), p=p_drop, training=training,
                               mask=masks[0])
    H2, _ = nd.dropout_forward(np.maximum(0, scale * W2 @ H1 + b2), p=p_drop,
                               training=training, mask=masks[1])
    return scale * W3 @ H2 + b3


assert np.allclose(inverted_net(X, True, (U1, U2)), out_train, rtol=1e-12, atol=1e-12)
assert np.allclose(inverted_net(X, False), out_test, rtol=1e-12, atol=1e-12)
print("inverted dropout with (W1, q W2, q W3) == vanilla dropout with (W1, W2, W3)")

# %% [markdown]
# ## $L_2$ weight decay
#
# The classical regularizer adds $\tfrac{\lambda}{2}\lVert w \rVert^2$ to the loss. Its
# gradient is $\lambda w$, so a gradient step becomes
#
# $$
# w \leftarrow w - \eta\,(\nabla L(w) + \lambda w) = (1 - \eta\lambda)\, w - \eta\,\nabla L(w):
# $$
#
# every step first shrinks ("decays") the weights by the factor $1 - \eta\lambda$. In
# PyTorch's SGD this is the `weight_decay` argument; AlexNet used $\lambda = 5 \cdot 10^{-4}$
# (Krizhevsky et al., 2012).
# (For Adam the penalty and the decay differ, because Adam rescales the gradient; AdamW
# (Loshchilov and Hutter, 2019) applies the decay directly.) One step of `SGD(weight_decay=λ)`
# equals a step on the penalized loss:

# %%
lam, eta = 1e-2, 0.1
w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
w_start = w.detach().clone()
target = torch.tensor([0.3, 0.1, -0.4], dtype=torch.float64)
opt = torch.optim.SGD([w], lr=eta, weight_decay=lam)
((w - target) ** 2).sum().backward()
opt.step()
w_manual = w_start.clone().requires_grad_(True)
penalized = ((w_manual - target) ** 2).sum() + lam / 2 * (w_manual ** 2).sum()
(grad,) = torch.autograd.grad(penalized, w_manual)
assert torch.allclose(w.detach(), w_start - eta * grad, rtol=1e-14)
print("SGD(weight_decay=λ) step == gradient step on loss + λ/2 ||w||^2")

# %% [markdown]
# ## Dropout and weight decay on the digits
#
# Now the experiment: the same network, the same 300 images, the same 60 epochs and the
# same seed, trained four ways: plain, with dropout $p_{drop} = 0.5$ after both hidden layers,
# with weight decay $\lambda = 10^{-3}$, and with both.

# %% tags=["nbval-ignore-output"]
configs = {"plain": (0.0, 0.0), "dropout": (0.5, 0.0), "weight decay": (0.0, 1e-3),
           "both": (0.5, 1e-3)}
models, histories, results = {"plain": plain}, {"plain": h_plain}, {}
for name, (p, wd) in configs.items():
    if name not in models:
        models[name], histories[name] = train(partial(mlp, p), x_small, y_small, seed=0,
                                              epochs=EPOCHS, weight_decay=wd)
    probs = predict(models[name], x_test, probs=True).numpy()
    w_norm = sum((m.weight ** 2).sum() for m in models[name] if isinstance(m, nn.Linear))
    results[name] = {"acc": (probs.argmax(1) == y_test).mean(),
                     "nll": -np.log(probs[np.arange(len(y_test)), y_test]).mean(),
                     "norm": w_norm.sqrt().item()}
    r = results[name]
    print(f"{name:>12}: test accuracy {r['acc']:.3f}, test loss {r['nll']:.3f}, "
          f"weight norm {r['norm']:.1f}")
curves = {name: np.array([r.val_loss for r in h.epochs]) for name, h in histories.items()}
for name, v in curves.items():
    print(f"{name:>12}: lowest validation loss {v.min():.3f} at epoch {v.argmin() + 1}")
# Seeds 0-3: dropout's test loss was 0.75-0.90x plain's, its accuracy 1.3-2.8 points higher;
# weight decay's loss 0.85-0.89x plain's, accuracy within 0.5 points; both < weight decay.
# Lowest validation loss: dropout's 0.63-0.83x plain's, at epochs 24-37 (plain: 15-19).
assert results["dropout"]["nll"] < 0.95 * results["plain"]["nll"]
assert results["dropout"]["acc"] > results["plain"]["acc"]
assert results["weight decay"]["norm"] < 0.9 * results["plain"]["norm"]
assert results["weight decay"]["nll"] < results["plain"]["nll"]
assert abs(results["weight decay"]["acc"] - results["plain"]["acc"]) <= 0.01
assert results["both"]["nll"] < results["weight decay"]["nll"]
assert curves["dropout"].min() < 0.9 * curves["plain"].min()
assert curves["dropout"].argmin() > curves["plain"].argmin()

# %% [markdown]
# Dropout gives the clearest gain: the test loss drops by more than 5% and the accuracy
# rises. Weight decay shrinks the weights by more than 10%, as it should, and lowers the
# test loss at this small $\lambda$ while changing the accuracy by at most a point; adding
# dropout to it lowers the test loss further. The validation curves show where the
# difference comes from: with dropout the validation loss keeps falling for longer and
# reaches a minimum more than 10% below the plain network's. It too creeps up afterwards,
# so even with dropout the length of training matters.

# %%
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
for name, hist in histories.items():  # from epoch 10 on: the first epochs all look alike
    ax.plot(epochs_axis[9:], [r.val_loss for r in hist.epochs][9:], label=name)
ax.set(xlabel="epoch", ylabel="validation cross-entropy",
       title="Validation loss of the four regularization settings")
ax.legend()
plt.show()

# %% [markdown]
# ## One pass versus many masks
#
# Dropout trains the ensemble of thinned networks; the ideal prediction averages all of
# them, $p(y \mid x) = \mathbb{E}_m[\,p(y \mid x, m)\,]$. Running the network once with
# every unit on (and the weights scaled, which inverted dropout has already done) is the
# *weight-scaling approximation*: it is exact for a single linear layer and approximate
# through the nonlinearities. We can compare it with an honest Monte Carlo average over
# 200 random masks (the network in training mode, one mask per example per pass) on the
# dropout network trained above.

# %% tags=["nbval-ignore-output"]
net = models["dropout"]
p_ws = predict(net, x_test, probs=True).numpy()  # eval mode: the weight-scaling approximation
net.train()  # dropout on; this network has no other train/eval-dependent layer
torch.manual_seed(1)
with torch.no_grad():
    x_rep = x_test.to(device).repeat(50, 1, 1, 1)  # 50 masks per pass: (50 * 359, 1, 8, 8)
    p_mc = torch.cat([net(x_rep).softmax(1).reshape(50, -1, 10).cpu() for _ in range(4)])
net.eval()
p_mc = p_mc.numpy()  # (200, 359, 10): one probability table per mask
n_masks = np.array([1, 2, 5, 10, 20, 50, 100, 200])
acc_mc = [(p_mc[:t].mean(0).argmax(1) == y_test).mean() for t in n_masks]
p_avg = p_mc.mean(0)
acc_ws = (p_ws.argmax(1) == y_test).mean()
agree = (p_avg.argmax(1) == p_ws.argmax(1)).mean()
tv = 0.5 * np.abs(p_avg - p_ws).sum(1)  # total variation distance per example
print(f"test accuracy: weight scaling {acc_ws:.3f}, one mask {acc_mc[0]:.3f}, "
      f"200-mask average {acc_mc[-1]:.3f}")
print(f"same predicted class for {agree:.1%} of test images; total variation distance "
      f"between the two distributions: median {np.median(tv):.3f}, max {tv.max():.3f}")
# Seeds 0-3: agreement 98.9-100%, median distance 0.006-0.009; one mask 1.9-3.1 points
# below weight scaling.
assert agree >= 0.97 and abs(acc_mc[-1] - acc_ws) <= 0.02
assert acc_mc[0] <= min(acc_ws, acc_mc[-1]) - 0.01  # one thinned network is clearly worse
assert np.median(tv) < 0.02

# %% [markdown]
# The single pass with all units on is almost indistinguishable from the average over 200
# thinned networks: they predict the same class for at least 97% of the test images, and
# the median total-variation distance between their distributions is below 0.02. A
# *single* thinned network, on the other hand, is worse than either by at least a point of
# accuracy; the averaging
# is what makes dropout networks good. The figure shows how many masks it takes for the
# Monte Carlo average to catch up with the free approximation.

# %%
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
ax.semilogx(n_masks, acc_mc, "o-", label="average over T random masks")
ax.axhline(acc_ws, color="C1", ls="--", label="one pass, all units on (weight scaling)")
ax.set(xlabel="number of masks T", ylabel="test accuracy",
       title="Monte Carlo dropout average vs the weight-scaling approximation")
ax.legend()
plt.show()

# %% [markdown]
# ## Dropout for convolutional features
#
# In a convolutional layer, neighbouring pixels of a feature map carry almost the same
# information. Zeroing single pixels therefore removes little: the next $3 \times 3$
# convolution sees the neighbours of every dropped pixel. **Channel dropout**
# (`dropout2d`, Tompson et al., 2015) drops whole feature maps instead, one Bernoulli draw
# per example and channel, with the same inverted scaling. We check the package against
# PyTorch, then measure the redundancy argument on feature maps of a real photograph: how
# much of each map survives a $3 \times 3$ average (a stand-in for the next layer's
# filter) after each kind of dropout.

# %%
feats = torch.as_tensor(rng.standard_normal((2, 6, 5, 5)))  # (N, C, H, W)
keep_c = torch.as_tensor(rng.random((2, 6, 1, 1)) < 0.5)  # one draw per (example, channel)
out_np, _ = nd.dropout2d_forward(feats.numpy(), p=0.5, mask=keep_c.numpy())
assert np.allclose(td.dropout2d(feats, 0.5, mask=keep_c).numpy(), out_np, rtol=1e-12)
torch.manual_seed(0)
out_f = F.dropout2d(feats, p=0.5)
per_channel = out_f.flatten(2)  # (N, C, H*W)
zeroed = (per_channel == 0).all(2)
assert torch.allclose(per_channel[~zeroed], 2 * feats.flatten(2)[~zeroed])
print(f"F.dropout2d: {int(zeroed.sum())} of 12 feature maps zeroed entirely, "
      "the others scaled by 1 / (1 - p) = 2")

photo = torch.as_tensor(sample_image("camera", size=64))[None, None]  # (1, 1, 64, 64)
filters = torch.as_tensor(rng.standard_normal((8, 1, 5, 5)), dtype=torch.float32)
maps = F.relu(F.conv2d(photo, filters, padding=2))  # (1, 8, 64, 64) feature maps


def smoothed(a):
    return F.avg_pool2d(a, 3, stride=1, padding=1)


def corr(a, b):
    return np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]


torch.manual_seed(0)
elementwise = F.dropout(maps, p=0.5)
r_el = corr(smoothed(maps), smoothed(elementwise))
print(f"correlation with the smoothed original map: elementwise dropout {r_el:.2f}, "
      "channel dropout 1 (kept map) or 0 (dropped map)")
assert r_el > 0.8

# %% [markdown]
# Even with half the pixels zeroed, a $3 \times 3$ neighbourhood recovers most of each
# map, so elementwise dropout barely forces the network to find other evidence.
# Channel dropout removes a map completely, and the next layer has to do without it.

# %%
show_images([maps[0, 0], elementwise[0, 0], smoothed(elementwise)[0, 0]],
            ["feature map", "elementwise dropout p=0.5", "after a 3x3 average"],
            suptitle="Elementwise dropout on a feature map is undone by the next layer")
plt.show()

# %% [markdown]
# **Where dropout is used.** Mostly in the MLP-style parts of a network: the fully
# connected layers at the end of a classifier and $1 \times 1$ convolutions, which are
# fully connected layers applied at every pixel. AlexNet and VGG use $p_{drop} = 0.5$
# after their first two fully connected layers (Krizhevsky et al., 2012; Simonyan and
# Zisserman, 2015); GoogLeNet drops 40% before its single linear classifier (Szegedy et
# al., 2015). Convolutional trunks mostly rely on BatchNorm and data augmentation
# instead, and use `dropout2d` when they drop anything. The package's models follow the
# papers:

# %%
with torch.device("meta"):  # shapes only, no memory
    alexnet, googlenet = AlexNet(), GoogLeNet()
alex_drops = [(name, mod.p) for name, mod in alexnet.named_modules()
              if isinstance(mod, nn.Dropout)]
print("AlexNet dropout layers:", alex_drops, "| GoogLeNet before its classifier:",
      googlenet.dropout.p)
assert [p for _, p in alex_drops] == [0.5, 0.5] and googlenet.dropout.p == 0.4

# %% [markdown]
# ## Ensembles of independently trained models
#
# Neural networks are high-variance estimators: trained from different random
# initializations on the same data, they make different mistakes. Write $f_\theta(x)$ for
# a model's output and $\bar f(x) = \mathbb{E}_\theta[f_\theta(x)]$ for the average over
# training runs. The spread
# $\mathbb{E}_\theta\lVert f_\theta(x) - \bar f(x) \rVert^2$ is the variance, and the
# average of $M$ trained models, $\tfrac1M \sum_i f_{\theta_i}(x)$, estimates $\bar f$ with
# that variance divided by $M$ (if the runs were independent). Two ways to combine $M$
# classifiers:
#
# * **average the probabilities**, $p_{\text{avg}}(y \mid x) = \frac1M \sum_{i=1}^M
#   p_{\theta_i}(y \mid x)$, and predict its argmax (the principled choice, usually the
#   more robust one);
# * **majority vote**: each model names its top class, the most frequent one wins ("first
#   past the post"); it needs only labels, but ignores how sure each model was.
#
# Our members are small CNNs (two $3 \times 3$ convolutions with pooling and a linear
# classifier, about 6,000 weights), each trained on the same 300 images for 30 epochs,
# with seeds 0 to 4.

# %%
def small_cnn():
    """conv3x3(16)-ReLU-pool2 -> conv3x3(32)-ReLU-pool2 -> linear(128 -> 10)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 16, 4, 4)
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, 2, 2)
        nn.Flatten(), nn.Linear(128, 10),
    )


M, CNN_EPOCHS = 5, 30
n_cnn = sum(w.numel() for w in small_cnn().parameters())
assert n_cnn == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (128 * 10 + 10) == 6090

# %% tags=["nbval-ignore-output"]
probs_ind = np.stack([
    predict(train(small_cnn, x_small, y_small, seed=s, epochs=CNN_EPOCHS)[0], x_test,
            probs=True).numpy()
    for s in range(M)
])  # (M, N, 10)
acc_members = (probs_ind.argmax(2) == y_test).mean(1)
print("test accuracy of each member:", np.round(acc_members, 3),
      f"mean {acc_members.mean():.3f}")

# %% [markdown]
# Both combination rules, written out plainly, and the package's versions
# (`average_probabilities`, `majority_vote`; the vote breaks ties towards the smaller
# label):

# %%
p_avg_plain = probs_ind.sum(0) / M  # (N, 10)
labels = probs_ind.argmax(2)  # (M, N): each member's vote
vote_plain = np.array([np.bincount(labels[:, n], minlength=10).argmax()
                       for n in range(labels.shape[1])])
assert np.allclose(average_probabilities(probs_ind), p_avg_plain, rtol=1e-6)
assert np.array_equal(majority_vote(labels, num_classes=10), vote_plain)
print("plain loops == d2lcnn.ensemble")

# %% tags=["nbval-ignore-output"]
def nll(probs):
    """Mean test cross-entropy of a (N, 10) table of probabilities."""
    return -np.log(probs[np.arange(len(y_test)), y_test]).mean()


acc_avg = (p_avg_plain.argmax(1) == y_test).mean()
acc_vote = (vote_plain == y_test).mean()
nll_members = np.array([nll(pr) for pr in probs_ind])
print(f"accuracy: mean member {acc_members.mean():.3f}, best member {acc_members.max():.3f}, "
      f"average of probabilities {acc_avg:.3f}, majority vote {acc_vote:.3f}")
print(f"test loss: mean member {nll_members.mean():.3f}, ensemble {nll(p_avg_plain):.3f}")
# Seeds 0-3: averaging gained 0.5-1.9 points over the mean member; the vote was 0.6 points
# below to 0.6 points above the average.
assert acc_avg >= acc_members.mean()
assert abs(acc_vote - acc_avg) <= 0.01
assert nll(p_avg_plain) <= nll_members.mean()  # always: -log is convex (Jensen)

# %% [markdown]
# The averaged ensemble is at least as accurate as its average member, and its test loss
# is lower than the mean loss of the members. The loss comparison is not luck: $-\log$ is
# convex, so by Jensen's inequality $-\log \frac1M\sum_i p_i \le \frac1M \sum_i -\log p_i$
# for every image. The vote, which throws away the confidences, ends within a point of the
# average: with members this similar, the two rules rarely disagree.
# The ensemble need not beat the *best* member (compare the numbers above), but which
# member is best can only be known by looking at the test set; the gain over a typical
# member is what you can count on.
#
# The variance formula can be made exact. For the squared error of the probability vector
# against the one-hot target $t$ (the Brier score), the error of the averaged prediction
# is the members' mean error minus their spread around the average (the "ambiguity
# decomposition" of Krogh and Vedelsby, 1995):
#
# $$
# \lVert \bar p - t \rVert^2 = \frac1M \sum_i \lVert p_i - t \rVert^2
#   - \frac1M \sum_i \lVert p_i - \bar p \rVert^2 .
# $$
#
# The more the members disagree, the more the average gains.

# %% tags=["nbval-ignore-output"]
onehot = np.eye(10)[y_test]  # (N, 10)
brier_members = ((probs_ind - onehot) ** 2).sum(2).mean()  # mean over members and images
spread = ((probs_ind - p_avg_plain) ** 2).sum(2).mean()
brier_ensemble = ((p_avg_plain - onehot) ** 2).sum(1).mean()
print(f"Brier score: members {brier_members:.4f} - spread {spread:.4f} "
      f"= ensemble {brier_ensemble:.4f}")
assert math.isclose(brier_ensemble, brier_members - spread, rel_tol=1e-5)

# %% [markdown]
# ## Bootstrap samples (bagging)
#
# Different seeds make the members differ through their initialization and the order of
# the batches. Bagging adds differences in the *data*: each member is trained on a
# bootstrap sample, 300 draws with replacement from the 300 images. Such a sample contains
# on average a fraction $1 - (1 - 1/n)^n \approx 1 - 1/e = 0.632$ of the distinct images;
# the rest are repeats.

# %% tags=["nbval-ignore-output"]
boot = [bootstrap_indices(300, rng=np.random.default_rng(100 + s)) for s in range(M)]
unique = np.array([len(np.unique(b)) / 300 for b in boot])
expected_unique = 1 - (1 - 1 / 300) ** 300
probs_bag = np.stack([
    predict(train(small_cnn, x_small[b], y_small[b], seed=s, epochs=CNN_EPOCHS)[0], x_test,
            probs=True).numpy()
    for s, b in enumerate(boot)
])
acc_bag_members = (probs_bag.argmax(2) == y_test).mean(1)
acc_bag = (average_probabilities(probs_bag).argmax(1) == y_test).mean()
print(f"distinct images per sample: {np.round(unique, 3)} (expected {expected_unique:.4f})")
print(f"bagging: mean member {acc_bag_members.mean():.3f}, ensemble {acc_bag:.3f}")
# Seeds 0-3: bagged members 0.90-0.92 (independent ones 0.92-0.95); bagged ensemble 0.5-1.7
# points below the independent one.
assert abs(expected_unique - (1 - math.exp(-1))) < 1e-3 and abs(unique.mean() - 0.632) < 0.04
assert acc_bag >= acc_bag_members.mean() and acc_bag <= acc_avg
assert acc_bag_members.mean() < acc_members.mean()

# %% [markdown]
# Each bagged member sees only about 190 distinct images, so it is weaker than a member
# trained on all 300, and the bagged ensemble, although better than its members, does not
# reach the accuracy of the independent one. With flexible models
# whose runs already differ a lot, bagging mostly costs data; it shines with models that
# would otherwise be too similar (decision trees are the classic case).
#
# ## One trunk, several heads
#
# $M$ full models cost $M$ times the training and the inference. A cheaper ensemble
# shares the feature extractor: one convolutional trunk feeds $M$ independent linear
# heads, each trained with its own cross-entropy, and the heads' probabilities are
# averaged. The heads only differ by their initialization, so they disagree less than
# independent models.

# %%
class SharedTrunk(nn.Module):
    """The small CNN's convolutional trunk with `heads` linear classifiers on top."""

    def __init__(self, heads=M):
        super().__init__()
        self.trunk = small_cnn()[:-1]  # everything up to the linear layer: (N, 128)
        self.heads = nn.ModuleList(nn.Linear(128, 10) for _ in range(heads))

    def forward(self, x):
        z = self.trunk(x)  # (N, 128)
        return torch.stack([head(z) for head in self.heads], dim=2)  # (N, 10, heads)


def multi_head_loss(out, y):
    """Mean of the heads' cross-entropies: each head is trained as a classifier."""
    return F.cross_entropy(out, y[:, None].expand(-1, out.shape[2]))


n_shared = sum(w.numel() for w in SharedTrunk().parameters())
print(f"parameters: shared trunk + {M} heads {n_shared:,}, {M} separate CNNs {M * n_cnn:,}")
assert n_shared == n_cnn + (M - 1) * (128 * 10 + 10) == 11_250

# %% tags=["nbval-ignore-output"]
multi, _ = train(SharedTrunk, x_small, y_small, seed=0, epochs=CNN_EPOCHS,
                 loss_fn=multi_head_loss)
probs_heads = predict(multi, x_test).softmax(1).permute(2, 0, 1).numpy()  # (M, N, 10)
acc_heads = (probs_heads.argmax(2) == y_test).mean(1)
acc_shared = (average_probabilities(probs_heads).argmax(1) == y_test).mean()
agree_heads = (probs_heads.argmax(2) == probs_heads[0].argmax(1)).all(0).mean()
agree_ind = (labels == labels[0]).all(0).mean()
print(f"heads: accuracies {np.round(acc_heads, 3)}, averaged {acc_shared:.3f}")
print(f"all five agree on {agree_heads:.1%} of test images "
      f"(the five independent CNNs: {agree_ind:.1%})")
# Seeds 0-3: the heads agreed on 95-98% of the images (independent CNNs: 88-92%), and the
# average was 0.5 points below to 0.2 points above the heads' mean.
assert agree_heads > agree_ind and abs(acc_shared - acc_heads.mean()) < 0.01

# %% [markdown]
# The model has little more than a third of the parameters of five CNNs and is trained
# once. Its heads read the same 128 features, so they agree far more often than
# independent CNNs, and averaging them changes the accuracy by less than a point. The trick pays off
# when the heads are made to differ (different data, different tasks, or trunks that share only
# their first layers).
#
# ## Snapshot ensembles
#
# A snapshot ensemble (Huang et al., 2017) gets its members from a *single* training run.
# The learning rate follows a cyclic cosine: it restarts at its maximum every cycle and
# decays to zero at the end of it. At each low point the weights sit in some minimum; we
# save a snapshot there, and the next restart kicks the weights out towards a different
# one. The package's `cosine_lr`, applied to the step number modulo the cycle length, is
# PyTorch's `CosineAnnealingWarmRestarts`:

# %%
steps_per_epoch = math.ceil(300 / 50)
CYCLE_EPOCHS = 10
cycle = CYCLE_EPOCHS * steps_per_epoch  # 60 steps per cycle


def cyclic_cosine(t):
    return cosine_lr(t % cycle, lr=0.05, total_steps=cycle)


probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
restarts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(probe, T_0=cycle)
torch_lrs = []
for _ in range(3 * cycle):
    torch_lrs.append(probe.param_groups[0]["lr"])
    probe.step()
    restarts.step()
ours = [cyclic_cosine(t) for t in range(3 * cycle)]
assert np.allclose(ours, torch_lrs, rtol=1e-12, atol=1e-15)
print("cosine_lr(t mod T) == CosineAnnealingWarmRestarts(T_0=T) for", 3 * cycle, "steps")

# %% [markdown]
# One run of $5 \times 10$ epochs, saving the weights at the end of every cycle:

# %%
class Snapshots:
    """A `fit` callback that copies the weights at the end of every cycle."""

    def __init__(self, every):
        self.every, self.states = every, []

    def on_epoch_end(self, history, model):
        if history.epochs[-1].epoch % self.every == 0:
            self.states.append(copy.deepcopy(model.state_dict()))


# %% tags=["nbval-ignore-output"]
snaps = Snapshots(every=CYCLE_EPOCHS)
_, h_snap = train(small_cnn, x_small, y_small, seed=0, epochs=M * CYCLE_EPOCHS,
                  schedule=cyclic_cosine, callbacks=[snaps])
snapshot_model = small_cnn().to(device)
probs_snap = []
for state in snaps.states:
    snapshot_model.load_state_dict(state)
    probs_snap.append(predict(snapshot_model, x_test, probs=True).numpy())
probs_snap = np.stack(probs_snap)  # (M, N, 10)
acc_snaps = (probs_snap.argmax(2) == y_test).mean(1)
acc_snap = (average_probabilities(probs_snap).argmax(1) == y_test).mean()
acc_snap3 = (average_probabilities(probs_snap[-3:]).argmax(1) == y_test).mean()
print(f"snapshots: accuracies {np.round(acc_snaps, 3)}; average of all five {acc_snap:.3f}, "
      f"of the last three {acc_snap3:.3f}")
# Seeds 0-3: first snapshot 0.75-0.85, the others 0.89-0.95; the averages 0-0.6 points from
# the best snapshot; the last snapshot 0.4 below to 1.3 points above the independent mean.
assert len(snaps.states) == M and acc_snap >= acc_snaps.mean()
assert acc_snaps[0] <= acc_snaps[1:].min() - 0.03
assert abs(acc_snaps[-1] - acc_members.mean()) <= 0.02
assert max(abs(acc_snap - acc_snaps.max()), abs(acc_snap3 - acc_snaps.max())) <= 0.01

# %%
lrs = [r.lr for r in h_snap.steps]
fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
ax.plot(np.arange(1, len(lrs) + 1) / steps_per_epoch, lrs)
ax.plot(np.arange(1, M + 1) * CYCLE_EPOCHS, np.zeros(M), "v", color="C3", ms=9,
        label="snapshot saved")
ax.set(xlabel="epoch", ylabel="learning rate",
       title="Snapshot ensemble: cyclic cosine schedule, one snapshot per cycle")
ax.legend()
plt.show()

# %% [markdown]
# The snapshots cost one run of 50 epochs instead of five runs of 30, and the run is
# visible in the numbers: the first snapshot, after only ten epochs, is a weak model, and
# the last one is about as good as the independently trained CNNs (within two points of
# their mean). Averaging the snapshots (all of them, or only the last few, as Huang et al.
# do) gives the accuracy of the best snapshot to within a point, no real gain: consecutive
# snapshots come from the same trajectory and make similar mistakes. On larger problems,
# where one run is long and its minima differ more, the snapshot ensemble is a real gain
# at the price of a single training run.
#
# ## How much do ensembles buy?
#
# AlexNet's ImageNet entry is the classic data point. Table 2 of Krizhevsky et al. (2012)
# gives top-5 error rates on ILSVRC-2012: one CNN had 18.2% on the validation set, and
# averaging five CNNs trained alike gave 16.4% (16.4% on the test set as well), a gain of
# 1.8 points or 9.9% relative. Their best entry averaged seven CNNs, two of them
# pre-trained on the larger ImageNet Fall 2011 release, and reached 15.4% on the
# validation set and 15.3% on the test set; that step also uses extra data, so it is not a
# pure ensemble gain. The table in code, and the gains computed from it:

# %%
# Krizhevsky, Sutskever and Hinton (2012), Table 2: ILSVRC-2012 error rates in percent,
# (top-1 val, top-5 val, top-5 test); None where the paper gives no number. The starred
# rows use CNNs pre-trained on the ImageNet Fall 2011 release, then fine-tuned.
ALEXNET_TABLE2 = {
    "1 CNN": (40.7, 18.2, None),
    "5 CNNs": (38.1, 16.4, 16.4),
    "1 CNN*": (39.0, 16.6, None),
    "7 CNNs*": (36.7, 15.4, 15.3),
}
alex_single, alex_five = ALEXNET_TABLE2["1 CNN"][1], ALEXNET_TABLE2["5 CNNs"][1]
alex_relative = (alex_single - alex_five) / alex_single
print(f"AlexNet top-5 validation error: 1 CNN {alex_single}% -> 5 CNNs {alex_five}% "
      f"({alex_single - alex_five:.1f} points, {alex_relative:.1%} relative); 7 CNNs* "
      f"{ALEXNET_TABLE2['7 CNNs*'][1]}% (test {ALEXNET_TABLE2['7 CNNs*'][2]}%)")
assert round(alex_single - alex_five, 1) == 1.8 and round(alex_relative, 3) == 0.099
assert ALEXNET_TABLE2["7 CNNs*"][1:] == (15.4, 15.3) and ALEXNET_TABLE2["5 CNNs"][2] == 16.4

# %% tags=["nbval-ignore-output"]
rows = [  # (name, member accuracies, ensemble accuracy, training epochs)
    ("independent, averaged", acc_members, acc_avg, M * CNN_EPOCHS),
    ("independent, majority vote", acc_members, acc_vote, M * CNN_EPOCHS),
    ("bagging, averaged", acc_bag_members, acc_bag, M * CNN_EPOCHS),
    ("shared trunk, 5 heads", acc_heads, acc_shared, CNN_EPOCHS),
    ("snapshots of one run", acc_snaps, acc_snap, M * CYCLE_EPOCHS),
]
print(f"{'ensemble of 5':<28}{'mean member':>12}{'best member':>12}{'ensemble':>10}"
      f"{'relative':>10}{'epochs':>8}")
print(f"{'':<28}{'error':>12}{'error':>12}{'error':>10}{'gain':>10}")
for name, members, ens, cost in rows:
    mean_err, best_err, ens_err = 1 - members.mean(), 1 - members.max(), 1 - ens
    print(f"{name:<28}{mean_err:>12.1%}{best_err:>12.1%}{ens_err:>10.1%}"
          f"{(mean_err - ens_err) / mean_err:>10.1%}{cost:>8}")
gain_ind = (acc_avg - acc_members.mean()) / (1 - acc_members.mean())  # relative error cut
# Seeds 0-3: relative gain of the independent ensemble 8-23%; bagging and snapshot
# ensembles 0.3-1.7 points below it; snapshot members 0.4-4 points worse on average.
assert 0.05 <= gain_ind <= 0.3 and acc_shared < acc_avg
assert acc_snaps.mean() < acc_members.mean() and acc_bag_members.mean() < acc_members.mean()
assert acc_avg - 0.02 <= min(acc_bag, acc_snap) and max(acc_bag, acc_snap) <= acc_avg

# %% [markdown]
# Averaging five independently trained CNNs cuts the error of the typical member by 5 to
# 30% (relative), the same order as AlexNet's 9.9% for five CNNs, on a problem thousands
# of times smaller. The relative gains of bagging and snapshots are measured against
# weaker members (about 190 distinct images each; a snapshot after only ten epochs), so
# they are not comparable with it; what matters is that their ensembles end up within two
# points of the independent one, the snapshots at a third of its training cost. The shared-trunk
# heads agree with each other too often to gain anything. In practice ensembles are the most
# reliable few-percent gain available and also the most expensive at test time, which is why the
# cheap variants exist, and why dropout, the ensemble you get for the price of one forward pass,
# became standard.
#
# ## What to remember
#
# * A big network on a small training set reaches 100% training accuracy while its
#   validation loss climbs: watch the validation loss, not the training accuracy.
# * Dropout zeroes each unit with probability $p_{drop}$ during training. It trains
#   $2^{LD}$ weight-sharing thinned networks at once and forces redundant representations.
# * The lecture's `p` is the keep probability $1 - p_{drop}$; PyTorch's and the package's
#   `p` is the drop probability $p_{drop}$.
# * Vanilla dropout scales by $1 - p_{drop}$ at test time because
#   $\mathbb{E}[a] = (1 - p_{drop})\,(w_0x + w_1y)$; inverted dropout divides by
#   $1 - p_{drop}$ during training so that the deployed network is the plain one. Both train the
#   same functions; every framework uses the inverted form.
# * The one-pass weight-scaling approximation is exact for a linear layer and, on our
#   digits network, agrees with a 200-mask Monte Carlo average on nearly every prediction.
# * Use dropout in fully connected layers and $1 \times 1$ convolutions; for feature maps
#   use `dropout2d`, which drops whole channels, because neighbouring pixels are redundant.
# * Weight decay $\lambda$ shrinks the weights by $1 - \eta\lambda$ each SGD step; it is
#   usually combined with dropout (AlexNet: $p_{drop} = 0.5$, $\lambda = 5 \cdot 10^{-4}$).
# * Averaging the probabilities of $M$ models lowers the test loss for sure (Jensen) and
#   the error usually; majority voting uses less information and is not reliably better.
#   Bagging, shared trunks and snapshots trade some (here: most) of the gain for lower
#   cost; members must disagree for an ensemble to help.
#
# ## Exercises
#
# 1. **Quick check.** A layer has keep probability 0.8 in the lecture's convention. What
#    `p` do you pass to `torch.nn.Dropout`, and by what factor does it multiply the kept
#    units during training? What would vanilla dropout do at test time instead?
# 2. **The expectation, exactly.** For the three-layer network of this chapter, compute
#    $\mathbb{E}_m[\text{output}]$ exactly for one input by enumerating the masks of a
#    version with 4 hidden units per layer ($2^8$ masks), and compare it with the
#    weight-scaled output. Where exactly does the difference come from?
# 3. **Dropout rate sweep.** Repeat the digits experiment for
#    $p_{drop} \in \{0, 0.1, 0.3, 0.5, 0.7, 0.9\}$ and plot test accuracy and test loss
#    against $p_{drop}$. Then train on all 1,259 training images: does the best $p_{drop}$
#    change?
# 4. **Channel dropout in a CNN.** Add `nn.Dropout2d` after each convolution of the
#    small CNN and compare it with elementwise `nn.Dropout` at the same place and the same
#    $p_{drop}$, on the 300 images. Which regularizes more at equal $p_{drop}$, and why?
# 5. **How many members? (small project)** Train 15 small CNNs and plot the test accuracy
#    and test loss of the averaged ensemble against $M = 1, \dots, 15$ (average over
#    several random orders of the members). Fit the curve $a + b/M$ to the loss, and
#    compare majority vote with an even $M$ (ties!) and an odd one.
# 6. **Monte Carlo dropout for uncertainty (small project).** With the dropout network,
#    use the spread of the 200 thinned predictions (for instance the entropy of their
#    average) to rank test images by uncertainty. Are the misclassified digits among the
#    most uncertain? Compare with the entropy of the weight-scaled prediction.
#
# The related homework, on batch normalization and dropout,
# [its student notebook](homework/hw2-batchnorm-dropout/hw2-batchnorm-dropout.ipynb),
# asks you to write inverted dropout's forward and backward passes in NumPy, in PyTorch's
# convention, and checks them on other shapes and drop rates and for evaluation-mode
# mistakes.

# %% [markdown]
# ## References
#
# - Huang, G., Li, Y., Pleiss, G., Liu, Z., Hopcroft, J. E., & Weinberger, K. Q. (2017). Snapshot
#   ensembles: Train 1, get M for free. *ICLR*. [arXiv:1704.00109](https://arxiv.org/abs/1704.00109)
# - Krizhevsky, A., Sutskever, I., & Hinton, G. E. (2012). ImageNet classification with deep
#   convolutional neural networks. *NeurIPS*.
#   [proceedings](https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html)
# - Krogh, A., & Vedelsby, J. (1995). Neural network ensembles, cross validation, and active
#   learning. *NeurIPS 7*.
#   [proceedings](https://papers.nips.cc/paper/1994/hash/b8c37e33defde51cf91e1e03e51657da-Abstract.html)
# - Loshchilov, I., & Hutter, F. (2019). Decoupled weight decay regularization. *ICLR*.
#   [arXiv:1711.05101](https://arxiv.org/abs/1711.05101)
# - Simonyan, K., & Zisserman, A. (2015). Very deep convolutional networks for large-scale image
#   recognition. *ICLR*. [arXiv:1409.1556](https://arxiv.org/abs/1409.1556)
# - Srivastava, N., Hinton, G., Krizhevsky, A., Sutskever, I., & Salakhutdinov, R. (2014). Dropout:
#   A simple way to prevent neural networks from overfitting. *JMLR*, 15, 1929–1958.
#   [jmlr.org](https://jmlr.org/papers/v15/srivastava14a.html)
# - Szegedy, C., Liu, W., Jia, Y., Sermanet, P., Reed, S., Anguelov, D., Erhan, D., Vanhoucke, V., &
#   Rabinovich, A. (2015). Going deeper with convolutions. *CVPR*.
#   [arXiv:1409.4842](https://arxiv.org/abs/1409.4842)
# - Tompson, J., Goroshin, R., Jain, A., LeCun, Y., & Bregler, C. (2015). Efficient object
#   localization using convolutional networks. *CVPR*.
#   [arXiv:1411.4280](https://arxiv.org/abs/1411.4280)
