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
# # Batch normalization and other normalization layers
#
# We standardize the *inputs* of a network (subtract the mean, divide by the standard
# deviation) because gradient descent works best when every input lives on the same scale.
# A deep network, however, is a stack of layers, and each layer's input is the previous
# layer's output. Nothing keeps those intermediate values standardized: they start wherever
# the initialization puts them and move every time the weights below them change. Batch
# normalization (Ioffe and Szegedy, 2015) applies the standardization inside the network,
# at every layer, with statistics computed from the current minibatch.
#
# This chapter measures the drift that motivates it, derives the layer for vectors and for
# feature maps and implements it step by step, works out its backward pass three ways, and
# then deals with the awkward part: at test time there is no batch. We compare the four ways
# of getting test-time statistics, reproduce the classic bug of evaluating in training mode,
# fold the layer into the preceding convolution for free inference, and measure what it
# buys in training (learning rates, initialization) and what it costs (dependence on the
# batch size). The chapter ends with the family of normalizations that avoid the batch
# altogether: LayerNorm, InstanceNorm, GroupNorm and RMSNorm.
#
# Every number stated in the text is computed by a cell that asserts it. The functions come
# from the companion package: `d2lcnn.numpy` (reference layers with hand-written backward
# passes), `d2lcnn.torch` (the same operations from tensor primitives), `d2lcnn.train`
# (the training loop) and `d2lcnn.data` (the 8x8 digits that ship with scikit-learn).
#
# **Learning goals.** After this chapter you can
#
# - write BatchNorm's forward and backward passes for vectors and for feature maps, and
#   check them against autograd and a numerical gradient;
# - explain the difference between training and evaluation mode, recognise the bugs that
#   come from confusing them, and fold an evaluation-mode BatchNorm into the convolution
#   before it;
# - choose between BatchNorm, LayerNorm, InstanceNorm, GroupNorm and RMSNorm from the axes
#   each one normalizes over and from the batch size you can afford.
#
# **Prerequisites:** [Convolution](01-convolution.ipynb) (chapter 1),
# [Data preprocessing and weight initialization](03-preprocessing-and-init.ipynb)
# (chapter 3) and [Optimizers](04-optimization.ipynb) (chapter 4); a training loop in
# PyTorch.

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
import timeit
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from d2lcnn import numpy as nd
from d2lcnn import torch as td
from d2lcnn.data import load_dataset, make_loader
from d2lcnn.gradcheck import check_backward
from d2lcnn.plots import show_images
from d2lcnn.summary import summary
from d2lcnn.train import evaluate, fit, seed_everything

rng = np.random.default_rng(0)  # every random NumPy array in this chapter comes from here
torch.set_num_threads(1)  # the networks here are tiny: one thread beats two fighting over them
device = td.device("auto")  # CUDA if present, else MPS, else CPU: training runs here
device64 = td.device("auto", dtype=torch.float64)  # for float64 checks (MPS has no float64)


def to64(a):
    """A NumPy array as a float64 tensor on the float64 device."""
    return torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device64)


# %% [markdown]
# ## The problem: statistics that drift
#
# The data are the 1,797 real $8 \times 8$ handwritten digits of scikit-learn, split per
# class into training, validation and test sets. The network is a small CNN: four $3 \times 3$
# convolutions with 16, 16, 32 and 32 channels, ReLUs, two $2 \times 2$ max-poolings and a
# linear classifier. The argument `norm` inserts a normalization layer after every
# convolution, before its ReLU; we use it throughout the chapter. (With a normalization
# layer the convolutions have no bias: as we will see, the normalization subtracts it again.)

# %%
data = load_dataset("digits")
print(data)
train_loader = make_loader(data.x_train, data.y_train, batch_size=32, shuffle=True, seed=0)
val_loader = make_loader(data.x_val, data.y_val, batch_size=256, shuffle=False)
test_loader = make_loader(data.x_test, data.y_test, batch_size=256, shuffle=False)
x_test = torch.as_tensor(data.x_test, device=device)  # (359, 1, 8, 8)
y_test = torch.as_tensor(data.y_test, device=device)  # (359,)
assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1259, 179, 359)

NORMS = {  # name -> a normalization layer over c channels (all are explained below)
    "batch": lambda c: nn.BatchNorm2d(c),
    "layer": lambda c: nn.GroupNorm(1, c),  # LayerNorm over (C, H, W), per-channel affine
    "instance": lambda c: nn.GroupNorm(c, c),  # InstanceNorm with affine parameters
    "group": lambda c: nn.GroupNorm(4, c),
}


def digits_cnn(norm=None, init_scale=1.0):
    """conv-[norm]-ReLU x4 (16, 16, 32, 32 channels, pooling after the 2nd and 4th) + linear.

    Weights are He-normal times `init_scale`; biases zero (convs have none with a norm).
    """
    layers, c_in = [], 1
    for i, c in enumerate((16, 16, 32, 32)):
        layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=norm is None))
        if norm is not None:
            layers.append(NORMS[norm](c))
        layers.append(nn.ReLU())
        if i in (1, 3):
            layers.append(nn.MaxPool2d(2))  # 8x8 -> 4x4 -> 2x2
        c_in = c
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(32 * 2 * 2, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            with torch.no_grad():
                m.weight.mul_(init_scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model.to(device)


def train(model, *, lr=0.03, epochs=3):
    """SGD with momentum 0.9 via d2lcnn.train.fit, quietly (no bar, no plot, no warning).

    Every run gets a fresh loader with the same seed, so all runs see the same batches.
    """
    loader = make_loader(data.x_train, data.y_train, batch_size=32, shuffle=True, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a diverging run stops with a warning; we read
        return fit(  # history.stop_reason instead
            model, loader, val_loader, epochs=epochs, device=device,
            optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
            progress=False, live_plot=False,
        )


# %% [markdown]
# To watch the statistics we attach a *forward hook* to every layer whose output feeds the
# next ReLU: the convolutions of the plain network and the BatchNorm layers of the
# normalized one. During training (`module.training` is true; the validation passes run in
# evaluation mode and are skipped) the hook records the mean and standard deviation of that
# output over the minibatch. A second hook on each BatchNorm layer keeps the per-channel
# mean and variance of the layer's *input*, the batch statistics BatchNorm itself
# computes; we will need them when we discuss test time. Both networks get the same seed,
# the same data order and the same optimizer, three epochs each.

# %%
def watch(modules, handles):
    """Record (mean, std) of each module's output at every training step."""
    trace = [[] for _ in modules]
    for k, m in enumerate(modules):
        def hook(mod, inputs, out, k=k):
            if mod.training:
                trace[k].append((out.mean().item(), out.std().item()))
        handles.append(m.register_forward_hook(hook))
    return trace


def record_batch_stats(bns, handles):
    """Record each BatchNorm's per-channel batch mean and unbiased variance at every step."""
    seen = [[] for _ in bns]
    for k, bn in enumerate(bns):
        def hook(mod, inputs, out, k=k):
            if mod.training and torch.is_grad_enabled():  # training steps only
                x = inputs[0].detach()
                seen[k].append((x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=True)))
        handles.append(bn.register_forward_hook(hook))
    return seen


hooks = []  # handles, to remove the hooks after training
seed_everything(0)
plain = digits_cnn(None)
plain_trace = watch([m for m in plain if isinstance(m, nn.Conv2d)], hooks)
hist_plain = train(plain)

seed_everything(0)
bn_model = digits_cnn("batch")
bns = [m for m in bn_model if isinstance(m, nn.BatchNorm2d)]
bn_trace = watch(bns, hooks)
batch_stats = record_batch_stats(bns, hooks)
hist_bn = train(bn_model)
for h in hooks:
    h.remove()

# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
acc_plain = evaluate(plain, test_loader)[1]
acc_bn = evaluate(bn_model, test_loader)[1]
steps = len(plain_trace[0])
plain_std = np.array([[s for _, s in t] for t in plain_trace])  # (4 layers, steps)
bn_std = np.array([[s for _, s in t] for t in bn_trace])
drift_plain = plain_std[:, -20:].mean(1) / plain_std[:, :5].mean(1)  # late / early std
drift_bn = bn_std[:, -20:].mean(1) / bn_std[:, :5].mean(1)
print(f"{steps} steps; test accuracy: plain {acc_plain:.3f}, with BatchNorm {acc_bn:.3f}")
print("std of each layer's output, end / start of training:")
print("  plain:     ", np.round(drift_plain, 2))
print("  BatchNorm: ", np.round(drift_bn, 2))
assert steps == 3 * len(train_loader) == 120
assert acc_plain >= 0.85 and acc_bn >= 0.95
assert drift_plain[3] > 2 and np.all(np.diff(drift_plain) > 0)  # deeper layers drift more
assert np.all(np.abs(drift_bn - 1) < 0.2)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, trace, title in [
    (axes[0], plain_trace, "plain network: conv outputs"),
    (axes[1], bn_trace, "with BatchNorm: BatchNorm outputs"),
]:
    for k, t in enumerate(trace):
        t = np.array(t)  # (steps, 2): mean, std
        ax.plot(t[:, 1], color=f"C{k}", label=f"layer {k + 1} std")
        ax.plot(t[:, 0], color=f"C{k}", ls="--", label=f"layer {k + 1} mean")
    ax.set_title(title)
    ax.set_xlabel("training step")
    ax.axhline(0, color="gray", lw=0.5)
axes[0].set_ylabel("over the minibatch")
axes[1].legend(ncol=2, fontsize=8, loc="center right")
fig.suptitle("Statistics of the inputs to each ReLU during training (dashed: mean, solid: std)")
fig.tight_layout()
plt.show()

# %% [markdown]
# In the plain network the outputs drift while it trains, and the drift grows with depth:
# the ratio of the final to the initial standard deviation increases from the first layer to
# the last, and the deepest layer's ends up more than twice what it was, because each layer
# inherits the changes of all the layers below it. Ioffe and Szegedy called this *internal
# covariate shift*: every layer is chasing a moving input distribution. Whether that is
# *the* reason BatchNorm helps is debated (Santurkar et al., 2018, argue it mostly smooths
# the loss surface), but the remedy is the same. The right panel shows it: after BatchNorm
# the inputs to every ReLU start with mean 0 and standard deviation 1 and stay close to that
# for the whole run (every layer's final standard deviation is within 20% of its initial
# one); only the layer's own learnable scale and shift can move them. The convolutions
# inside the normalized network are free to drift; the normalization removes the drift
# before the next layer sees it.
#
# ## Batch normalization for vectors ($N \times D$)
#
# Take a minibatch of activations $x \in \mathbb{R}^{N \times D}$: $N$ examples, $D$
# features (the output of a fully connected layer). If we want every feature to have mean 0
# and variance 1, we can simply impose it: for every feature $j$, compute the batch mean and
# the (biased) batch variance and standardize,
#
# $$
# \mu_j = \frac{1}{N} \sum_{i=1}^N x_{ij}, \qquad
# \sigma_j^2 = \frac{1}{N} \sum_{i=1}^N (x_{ij} - \mu_j)^2, \qquad
# \hat x_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma_j^2 + \epsilon}} .
# $$
#
# The small $\epsilon$ (PyTorch uses $10^{-5}$) protects against a feature that is constant
# over the batch. It goes under the square root, as in the original paper and in PyTorch;
# the lecture notes add it to the standard deviation instead, $(x - \mu_j) / (\sigma_j +
# \epsilon)$, which gives practically the same result unless the variance is about as small
# as $\epsilon$ (we compare the two below).
#
# Forcing every feature to mean 0 and variance 1 may be too strong a constraint (a sigmoid
# would be stuck in its linear middle, a ReLU would always pass half of its inputs), so a
# learnable scale $\gamma_j$ and shift $\beta_j$ per feature give the network its freedom
# back:
#
# $$
# y_{ij} = \gamma_j \hat x_{ij} + \beta_j , \qquad \gamma, \beta \in \mathbb{R}^D,
# \quad \text{initialized to } \gamma = 1,\ \beta = 0 .
# $$
#
# In practice $\gamma$ and $\beta$ are usually exempted from weight decay (in PyTorch, by
# putting them in an optimizer parameter group with `weight_decay=0`), as the lecture notes
# also advise: they are few, and pulling $\gamma$ towards 0 would shrink the layer's output.
# The section on learning rates below shows why, and builds the two groups.
#
# Every step is a plain array operation. Here it is on a batch of eight examples whose three
# features live on very different scales:

# %%
X = rng.normal(loc=[5.0, -2.0, 0.0], scale=[10.0, 0.5, 3.0], size=(8, 3))  # (N, D)
eps = 1e-5
assert nn.BatchNorm1d(3).eps == eps  # PyTorch's default

mu = X.mean(axis=0)  # (D,): per-feature mean
var = ((X - mu) ** 2).mean(axis=0)  # (D,): per-feature biased variance
X_hat = (X - mu) / np.sqrt(var + eps)  # (N, D): standardized
gamma, beta = np.ones(3), np.zeros(3)  # (D,) each: the initial values
Y = gamma * X_hat + beta  # (N, D)

print("before: mean", np.round(X.mean(0), 3), " std", np.round(X.std(0), 3))
print("after:  mean", np.round(Y.mean(0), 3) + 0.0, " std", np.round(Y.std(0), 3),
      " 1 - std", np.array2string(1 - Y.std(0), precision=1))
assert np.allclose(Y.mean(0), 0, atol=1e-12)
assert np.allclose(Y.std(0), np.sqrt(var / (var + eps)))  # 1, up to the eps
assert np.allclose(1 - Y.std(0), eps / (2 * var), rtol=1e-3)
short = 1 - Y.std(0)  # (D,): how far each std falls short of 1
assert np.argmin(var) == 1 and short[1] < 1e-3 and np.delete(short, 1).max() < short[1]

# %% [markdown]
# The standard deviations after normalization are $\sqrt{\sigma^2 / (\sigma^2 +
# \epsilon)}$, one to within $\epsilon / 2\sigma^2$: the second feature, with the smallest
# variance, falls short of one the most, by less than $10^{-3}$.
#
# Where $\epsilon$ goes matters only for tiny variances. On these features, dividing by
# $\sigma_j + \epsilon$ instead of $\sqrt{\sigma_j^2 + \epsilon}$ changes the output by
# less than $10^{-3}$ of its size. Shrink the same data a thousand times, so that the
# smallest standard deviation falls below $\sqrt{\epsilon} \approx 0.003$, and the two
# versions differ by more than a factor of two: dividing by $\sigma_j + \epsilon$ still
# stretches such a feature to unit spread, while with $\epsilon$ under the root its
# normalized values stay well below 1.

# %%
def standardize_eps_inside(x):
    """(x - mu) / sqrt(var + eps): PyTorch's and this book's BatchNorm."""
    return (x - x.mean(0)) / np.sqrt(x.var(0) + eps)


def standardize_eps_outside(x):
    """(x - mu) / (std + eps): the variant of the lecture notes."""
    return (x - x.mean(0)) / (x.std(0) + eps)


for name, xs in [("X", X), ("X / 1000", X / 1000)]:
    ratio = standardize_eps_outside(xs)[0] / standardize_eps_inside(xs)[0]  # (D,)
    print(f"{name:9s} std {np.array2string(xs.std(0), precision=4)}: "
          f"eps outside / eps inside = {np.array2string(ratio, precision=5)}")
assert np.all(np.abs(standardize_eps_outside(X) / standardize_eps_inside(X) - 1) < 1e-3)
assert X.std(0).min() / 1000 < np.sqrt(eps)
assert np.max(standardize_eps_outside(X / 1000)[0] / standardize_eps_inside(X / 1000)[0]) > 2
k_min = np.argmin(X.std(0))  # the feature with the smallest spread
assert standardize_eps_outside(X / 1000)[:, k_min].std() > 0.9  # stretched to about 1
assert standardize_eps_inside(X / 1000)[:, k_min].std() < 0.5  # damped
#
# ### Recovering the identity
#
# The scale and shift can undo the normalization completely: with
# $\gamma_j = \sqrt{\sigma_j^2 + \epsilon}$ and $\beta_j = \mu_j$ the layer returns its
# input. So adding BatchNorm never makes the network less expressive; it only changes which
# parameter values are easy to reach. (The lecture slides write $\gamma = \sigma$; with the
# $\epsilon$ inside the square root that is off by a factor
# $\sigma / \sqrt{\sigma^2 + \epsilon}$, a relative error of about $\epsilon / 2\sigma^2$,
# which the cell measures too.)

# %%
out_id, _ = nd.batch_norm_forward(X, None, None, np.sqrt(var + eps), mu, training=True)
assert np.allclose(out_id, X, rtol=0, atol=1e-12)
out_sigma, _ = nd.batch_norm_forward(X, None, None, np.sqrt(var), mu, training=True)
rel = np.abs(out_sigma - X).max(0) / np.abs(X - mu).max(0)  # (D,) relative error per feature
print("gamma = sqrt(var + eps): y == x to rounding error (max |y - x| < 1e-12)")
print("gamma = sigma: relative error per feature", np.array2string(rel, precision=3))
assert np.allclose(rel, 1 - np.sqrt(var / (var + eps)))

# %% [markdown]
# Gradient descent finds these values by itself. The loss $\sum (y - x)^2$, "reproduce the
# input", is quadratic in $\gamma$ and $\beta$, and its minimum is exactly
# $\gamma = \sqrt{\sigma^2 + \epsilon}$, $\beta = \mu$ (a least-squares fit of $x$ on
# $\hat x$). Starting from $\gamma = 1, \beta = 0$ and using only the package's backward
# pass for the gradients:

# %%
g_, b_ = np.ones(3), np.zeros(3)
for _ in range(200):
    out, cache = nd.batch_norm_forward(X, None, None, g_, b_, training=True)
    _, dg, db = nd.batch_norm_backward(2 * (out - X) / len(X), cache)  # d mean((y-x)^2)
    g_, b_ = g_ - 0.3 * dg, b_ - 0.3 * db
print("learned gamma", np.round(g_, 4), "  sqrt(var + eps)", np.round(np.sqrt(var + eps), 4))
print("learned beta ", np.round(b_, 4), "  mu             ", np.round(mu, 4))
assert np.allclose(g_, np.sqrt(var + eps), atol=1e-6) and np.allclose(b_, mu, atol=1e-6)

# %% [markdown]
# ## Spatial batch normalization ($N \times C \times H \times W$)
#
# After a convolution the activations are a batch of feature maps, $x \in
# \mathbb{R}^{N \times C \times H \times W}$. A convolution applies the *same* filter at
# every position, so the values of one channel at all positions are the same kind of
# feature and should be normalized together. Spatial BatchNorm (`BatchNorm2d`) therefore
# computes one mean and one variance per channel over the batch *and* the spatial
# positions, $m = N H W$ values each, and learns one $\gamma_c, \beta_c$ per channel:
#
# $$
# \mu_c = \frac{1}{NHW} \sum_{n,h,w} x_{nchw}, \qquad
# \sigma_c^2 = \frac{1}{NHW} \sum_{n,h,w} (x_{nchw} - \mu_c)^2, \qquad
# y_{nchw} = \gamma_c \frac{x_{nchw} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c .
# $$
#
# In array terms the statistics have shape $1 \times C \times 1 \times 1$ and broadcast
# against the input. Equivalently, move the channel axis last, flatten to an
# $(NHW) \times C$ matrix and apply the vector version: every position of every image is one
# more "example" of each channel.

# %%
x4 = rng.normal(3.0, 2.0, size=(4, 3, 5, 5))  # (N, C, H, W)
g4, b4 = rng.normal(1, 0.1, 3), rng.normal(0, 0.1, 3)  # (C,) each

mu4 = x4.mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
var4 = x4.var(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1), biased
y_spatial = g4[:, None, None] * (x4 - mu4) / np.sqrt(var4 + eps) + b4[:, None, None]

rows = x4.transpose(0, 2, 3, 1).reshape(-1, 3)  # (N*H*W, C): positions become examples
r_mu, r_var = rows.mean(0), rows.var(0)
y_rows = g4 * (rows - r_mu) / np.sqrt(r_var + eps) + b4  # the N x D version
y_rows = y_rows.reshape(4, 5, 5, 3).transpose(0, 3, 1, 2)  # back to (N, C, H, W)
assert mu4.shape == (1, 3, 1, 1) and np.allclose(y_spatial, y_rows)
print("per-channel stats over", 4 * 5 * 5, "values each; both routes agree")

# %% [markdown]
# The package's NumPy layer `nd.batch_norm_forward`, its PyTorch version `td.batch_norm`
# (tensor primitives only), PyTorch's `F.batch_norm` and the module `nn.BatchNorm2d` must
# all compute the same thing, including the update of the running statistics that we
# discuss below:

# %%
rm_nd, rv_nd = np.zeros(3), np.ones(3)
y_nd, _ = nd.batch_norm_forward(x4, rm_nd, rv_nd, g4, b4, training=True)
rm_td, rv_td = to64(np.zeros(3)), to64(np.ones(3))
y_td = td.batch_norm(to64(x4), rm_td, rv_td, to64(g4), to64(b4), training=True)
rm_f, rv_f = to64(np.zeros(3)), to64(np.ones(3))
y_f = F.batch_norm(to64(x4), rm_f, rv_f, to64(g4), to64(b4), training=True)
module = nn.BatchNorm2d(3).to(device64, torch.float64)
with torch.no_grad():
    module.weight.copy_(to64(g4))
    module.bias.copy_(to64(b4))
    y_mod = module(to64(x4))

for name, y in [("td.batch_norm", y_td), ("F.batch_norm", y_f), ("nn.BatchNorm2d", y_mod)]:
    assert np.allclose(y.detach().cpu().numpy(), y_nd, atol=1e-12), name
for rm, rv in [(rm_td, rv_td), (rm_f, rv_f), (module.running_mean, module.running_var)]:
    assert np.allclose(rm.cpu().numpy(), rm_nd) and np.allclose(rv.cpu().numpy(), rv_nd)
assert np.allclose(y_nd, y_spatial, atol=1e-12)
print("this page, nd, td, F.batch_norm and nn.BatchNorm2d agree (outputs and running stats)")

# %% [markdown]
# One consequence is worth a check. A constant added to a channel before BatchNorm is
# subtracted again with the mean, so a convolution followed by BatchNorm does not need a
# bias: $\beta$ plays its role. That is why `digits_cnn` builds its convolutions with
# `bias=False` when it adds a normalization layer.

# %%
shifted, _ = nd.batch_norm_forward(x4 + rng.normal(size=(1, 3, 1, 1)), None, None, g4, b4,
                                   training=True)
assert np.allclose(shifted, y_nd, atol=1e-12)
print("a per-channel bias before BatchNorm changes nothing")

# %% [markdown]
# ### Where to put it
#
# BatchNorm usually sits right after a fully connected or convolutional layer and before the
# nonlinearity, as in `digits_cnn`: conv, BatchNorm, ReLU. Then the ReLU always sees inputs
# centred near $\beta$ with spread $\gamma$, and at initialization ($\gamma = 1$, $\beta =
# 0$) it passes roughly half of them, whatever the scale of the weights. Putting it after
# the nonlinearity also works (the lecture notes allow either); the original paper and most
# convolutional networks (ResNet, He et al., 2016, for one) use "before". We can count the
# active ReLU units of the untrained BatchNorm network on a batch of training digits,
# including one whose weights are a hundred times too large:

# %%
def active_fraction(model, x):
    """Fraction of positive outputs of each ReLU, in training mode, without learning."""
    fractions, relus = [], [m for m in model if isinstance(m, nn.ReLU)]
    hooks = [r.register_forward_hook(lambda m, i, o: fractions.append((o > 0).float().mean()))
             for r in relus]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return np.array([f.item() for f in fractions])


x_probe = torch.as_tensor(data.x_train[:256], device=device)
for scale in (1.0, 100.0):
    torch.manual_seed(0)
    frac = active_fraction(digits_cnn("batch", init_scale=scale), x_probe)
    print(f"init scale {scale:5}: active ReLU fraction per layer {np.round(frac, 2)}")
    assert np.all((frac > 0.35) & (frac < 0.65))

# %% [markdown]
# ## The backward pass
#
# BatchNorm is a composition of differentiable operations, so backpropagation goes through
# it like through anything else. The only subtlety is that the batch statistics depend on
# the input: every $x_i$ influences its own output directly *and* every other output
# through $\mu$ and $\sigma^2$. The computational graph of one channel makes the three paths
# visible.

# %%
fig, ax = plt.subplots(figsize=(12, 3.2))
nodes = {
    "x": (0.0, 1.0, "$x$"),
    "mu": (1.7, 2.0, r"$\mu = \frac{1}{m}\sum_i x_i$"),
    "xc": (3.4, 1.0, r"$x - \mu$"),
    "var": (5.3, 2.0, r"$\sigma^2 = \frac{1}{m}\sum_i (x_i - \mu)^2$"),
    "istd": (8.0, 2.0, r"$1 / \sqrt{\sigma^2 + \epsilon}$"),
    "xhat": (8.0, 1.0, r"$\hat x$"),
    "gamma": (9.3, 2.0, r"$\gamma$"),
    "beta": (9.3, 0.0, r"$\beta$"),
    "y": (10.6, 1.0, r"$y = \gamma \hat x + \beta$"),
}
edges = [("x", "mu"), ("x", "xc"), ("mu", "xc"), ("xc", "var"), ("var", "istd"),
         ("xc", "xhat"), ("istd", "xhat"), ("xhat", "y"), ("gamma", "y"), ("beta", "y")]
boxes = {}
for key, (px, py, label) in nodes.items():
    boxes[key] = ax.text(px, py, label, ha="center", va="center", fontsize=12, zorder=3,
                         bbox=dict(boxstyle="round", fc="lightyellow" if key in ("gamma", "beta")
                                   else "white", ec="k"))
ax.set_xlim(-0.5, 11.6)
ax.set_ylim(-0.4, 2.5)
for a, b in edges:
    (xa, ya, _), (xb, yb, _) = nodes[a], nodes[b]
    ax.annotate("", xy=(xb, yb), xytext=(xa, ya), zorder=4,  # after the boxes, to their edges
                arrowprops=dict(arrowstyle="->", color="k", shrinkA=2, shrinkB=2,
                                patchA=boxes[a].get_bbox_patch(),
                                patchB=boxes[b].get_bbox_patch()))
ax.text(1.6, 0.35, "three paths from $x$ to $y$: direct, through $\\mu$, through $\\sigma^2$",
        ha="center", fontsize=10, color="C3")
ax.axis("off")
ax.set_title("BatchNorm for one channel as a computational graph (backward: right to left)")
plt.show()

# %% [markdown]
# **Staged backward.** Walk the graph from right to left, one node at a time, adding up the
# contributions where paths meet. This is what autograd does, and the most reliable way to
# write it by hand:

# %%
def bn_forward_staged(x, gamma, beta, eps=1e-5):
    """BatchNorm of an (m, D) array, one graph node per line."""
    m = x.shape[0]
    mu = x.sum(0) / m  # (D,)
    xc = x - mu  # (m, D)
    var = (xc**2).sum(0) / m  # (D,)
    std = np.sqrt(var + eps)  # (D,)
    istd = 1 / std  # (D,)
    x_hat = xc * istd  # (m, D)
    return gamma * x_hat + beta, (xc, std, istd, x_hat, gamma)


def bn_backward_staged(dy, cache):
    """The same graph, right to left."""
    xc, std, istd, x_hat, gamma = cache
    m = dy.shape[0]
    dbeta = dy.sum(0)  # (D,)
    dgamma = (dy * x_hat).sum(0)  # (D,)
    dx_hat = dy * gamma  # (m, D)
    dxc = dx_hat * istd  # path through x_hat directly
    distd = (dx_hat * xc).sum(0)  # (D,)
    dvar = -distd / std**2 * 0.5 / std  # through 1/std, then sqrt
    dxc += 2 * xc * dvar / m  # path through the variance
    dmu = -dxc.sum(0)  # (D,)
    dx = dxc + dmu / m  # path through the mean, plus the direct one
    return dx, dgamma, dbeta


# %% [markdown]
# **Compact formula.** Doing the algebra once gives a much shorter expression. Write
# $g_i = \gamma\, \partial L / \partial y_i$ for the gradient reaching $\hat x_i$ and
# $\hat\sigma = \sqrt{\sigma^2 + \epsilon}$. Then
#
# $$
# \frac{\partial L}{\partial \sigma^2} = -\frac{1}{2 \hat\sigma^2} \sum_j g_j \hat x_j, \qquad
# \frac{\partial L}{\partial \mu} = -\frac{1}{\hat\sigma} \sum_j g_j
# $$
#
# (the mean's effect through the variance vanishes because $\sum_j (x_j - \mu) = 0$), and
# collecting the three paths into $x_i$,
#
# $$
# \frac{\partial L}{\partial x_i}
#   = \frac{g_i}{\hat\sigma} + \frac{\partial L}{\partial \sigma^2} \frac{2 (x_i - \mu)}{m}
#     + \frac{1}{m} \frac{\partial L}{\partial \mu}
#   = \frac{1}{m \hat\sigma} \Big( m\, g_i - \sum_j g_j - \hat x_i \sum_j g_j \hat x_j \Big),
# $$
#
# with $\partial L / \partial \gamma = \sum_i \hat x_i\, \partial L / \partial y_i$ and
# $\partial L / \partial \beta = \sum_i \partial L / \partial y_i$. The two subtracted terms
# are the gradient through the mean and through the variance: the gradient is the plain
# "divide by $\hat\sigma$" one with its mean and its component along $\hat x$ projected out. In
# code it is one line. The package's `nd.batch_norm_backward` uses it (with the sums taken
# over $N, H, W$ for feature maps), and all must agree with PyTorch's autograd:

# %%
def bn_backward_compact(dy, x_hat, istd, gamma):
    m = dy.shape[0]
    g = dy * gamma  # (m, D)
    return istd / m * (m * g - g.sum(0) - x_hat * (g * x_hat).sum(0))


dY = rng.standard_normal(X.shape)  # an upstream gradient
gamma_r, beta_r = rng.normal(1, 0.2, 3), rng.normal(0, 0.2, 3)
y_st, cache_st = bn_forward_staged(X, gamma_r, beta_r)
dx_st, dg_st, db_st = bn_backward_staged(dY, cache_st)
dx_cp = bn_backward_compact(dY, cache_st[3], cache_st[2], gamma_r)
y_pk, cache_pk = nd.batch_norm_forward(X, None, None, gamma_r, beta_r, training=True)
dx_pk, dg_pk, db_pk = nd.batch_norm_backward(dY, cache_pk)

xt_, gt_, bt_ = (to64(a).requires_grad_() for a in (X, gamma_r, beta_r))
F.batch_norm(xt_, None, None, gt_, bt_, training=True).backward(to64(dY))
for dx in (dx_st, dx_cp, dx_pk):
    assert np.allclose(dx, xt_.grad.cpu().numpy(), atol=1e-12)
for dg, db in ((dg_st, db_st), (dg_pk, db_pk)):
    assert np.allclose(dg, gt_.grad.cpu().numpy()) and np.allclose(db, bt_.grad.cpu().numpy())
assert np.allclose(y_st, y_pk)
assert np.allclose(dx_pk.sum(0), 0, atol=1e-12)  # zero sum per feature (see below)
print("staged, compact, nd.batch_norm_backward and autograd agree")

# %% [markdown]
# The last assert is a property of the formula: the gradient with respect to the inputs of
# one channel sums to zero. Shifting all of a channel's inputs by the same amount changes
# nothing after normalization, so the gradient cannot have a component in that direction.
#
# **Gradient check.** Finally, the numerical check of
# [chapter 1](01-convolution.ipynb): centred differences in
# float64 against the hand-written backward pass, for the vector layer and for the spatial
# one with its sums over $N, H, W$, and in evaluation mode, where the statistics are
# constants and the layer is just a per-channel affine map. BatchNorm is not linear, so the
# centred difference has a truncation error proportional to $h^2$ besides the round-off
# proportional to $1/h$; $h = 10^{-4}$ balances the two.

# %% tags=["nbval-ignore-output"]
# (the last digits of a float64 rounding error vary between CPUs; the assert does not)
# check_backward draws its random upstream gradient from a generator of its own. Had it
# reused the normal draws that made X, a dout proportional to x_hat would have an input
# gradient of almost exactly zero (the formula projects x_hat out), and the check would
# compare two round-off errors. The relative error is taken per entry, so an entry of the
# gradient close to zero can have one far above the typical 1e-8; over 200 random draws of
# these shapes the largest stayed below 5e-6, hence the tolerance 1e-5 here and for the
# other normalizations below (same step h = 1e-4).
checks = {
    "N x D, training": (X, dict(training=True)),
    "N x C x H x W, training": (x4, dict(training=True)),
    "N x C x H x W, eval": (x4, dict(training=False)),
}
for name, (xa, mode) in checks.items():
    c = xa.shape[1]
    stats = dict(running_mean=rng.normal(size=c), running_var=rng.uniform(0.5, 2, c))
    if mode["training"]:
        stats = dict(running_mean=None, running_var=None)
    errors = check_backward(
        lambda x, g, b, stats=stats, mode=mode: nd.batch_norm_forward(
            x, stats["running_mean"], stats["running_var"], g, b, **mode
        ),
        nd.batch_norm_backward,
        [xa.copy(), rng.normal(1, 0.2, c), rng.normal(0, 0.2, c)],
        h=1e-4,
    )
    print(f"{name:24s} rel. errors dx {errors[0]:.0e}, dgamma {errors[1]:.0e}, "
          f"dbeta {errors[2]:.0e}")
    assert max(errors) < 1e-5

# %% [markdown]
# ## Training mode and evaluation mode
#
# At test time the batch statistics are a problem. A prediction for one image should not
# depend on which other images happen to share its batch, and there may be no batch at all
# (one request at a time). So BatchNorm has two modes:
#
# * **training**: normalize with the batch's $\mu_c, \sigma_c^2$, and update *running
#   averages* of them;
# * **evaluation**: normalize with the running averages, fixed numbers. The layer becomes
#   the per-channel affine map $y = \gamma (x - \mu_{run}) / \sqrt{\sigma^2_{run} +
#   \epsilon} + \beta$, a linear operation.
#
# PyTorch's convention (the package follows it) is an exponential moving average in which
# `momentum` $= 0.1$ is the weight of the *new* batch,
# $\mu_{run} \leftarrow 0.9\,\mu_{run} + 0.1\,\mu_\mathcal{B}$, with $\mu_{run}$ starting at 0 and
# $\sigma^2_{run}$ at 1, and the running variance tracks the *unbiased* batch variance
# $\frac{m}{m-1}\sigma^2_\mathcal{B}$. (Some course code uses momentum 0.9 for the weight of
# the *old* value; same average, opposite name.) Feeding the same batch again and again, the running
# mean after $t$ steps is exactly $(1 - 0.9^t)\mu_\mathcal{B}$ and the running variance
# $0.9^t + (1 - 0.9^t)\frac{m}{m-1}\sigma^2_\mathcal{B}$:

# %%
assert nn.BatchNorm2d(3).momentum == 0.1  # PyTorch's default: the weight of the new batch
xb = rng.normal(3.0, 2.0, size=(16, 1))  # one batch, one feature
rm, rv = np.zeros(1), np.ones(1)
for _ in range(30):
    nd.batch_norm_forward(xb, rm, rv, training=True)
w_new = 1 - 0.9**30
assert np.allclose(rm, w_new * xb.mean()) and np.allclose(rv, 0.9**30 + w_new * xb.var(ddof=1))
print(f"after 30 steps: running mean {rm[0]:.4f} = {w_new:.4f} x batch mean {xb.mean():.4f}")

# %% [markdown]
# In evaluation mode the output for an example depends only on that example. In training
# mode it depends on the whole batch: the same digit, normalized with two different
# companions, gets two different outputs.

# %%
xa_, xb_ = x4[:2], np.concatenate([x4[:1], 5 + x4[2:3]])  # same first image, other partner
run = (rng.normal(size=3), rng.uniform(0.5, 2, 3))  # running mean and variance
train_a = nd.batch_norm_forward(xa_, *copy.deepcopy(run), g4, b4, training=True)[0][0]
train_b = nd.batch_norm_forward(xb_, *copy.deepcopy(run), g4, b4, training=True)[0][0]
eval_a = nd.batch_norm_forward(xa_, *run, g4, b4, training=False)[0][0]
eval_b = nd.batch_norm_forward(xb_, *run, g4, b4, training=False)[0][0]
assert np.allclose(eval_a, eval_b) and not np.allclose(train_a, train_b)
print("same image, different batch: training-mode outputs differ by up to",
      f"{np.abs(train_a - train_b).max():.2f}; eval-mode outputs identical")

# %% [markdown]
# ### The classic bug: evaluating in training mode
#
# A layer that computes one function in training and another in evaluation invites a
# classic bug: forgetting `model.eval()` (or calling `model.train()` too early). For a vector
# BatchNorm and a single example PyTorch refuses outright, because a variance of one value
# is zero; the package raises the same error:

# %%
calls = {
    "PyTorch": lambda: nn.BatchNorm1d(4).train()(torch.zeros(1, 4)),
    "d2lcnn": lambda: nd.batch_norm_forward(np.zeros((1, 4)), np.zeros(4), np.ones(4),
                                            training=True),
}
for name, call in calls.items():
    try:
        call()
    except ValueError as err:
        print(f"{name}: {err}")
        assert "more than 1 value per channel" in str(err)
    else:
        raise AssertionError(f"{name} accepted one example in training mode")

# %% [markdown]
# For feature maps there is no error, and that makes the bug dangerous: one image still has
# $H \times W$ values per channel, so spatial BatchNorm in training mode quietly normalizes
# each image by its own statistics (it becomes the InstanceNorm of the last section). A
# *skewed* batch, for example a test set processed in class order, is just as wrong: the
# batch statistics of thirty-odd "7"s are not those of the training distribution, and the
# normalization subtracts what the images of the batch have in common, which for a batch
# of one class is much of what makes it that class. We evaluate the trained
# BatchNorm network on the test set correctly, then in training mode with one image at a
# time, in class-sorted batches of 32 and in shuffled batches of 32. (We set the copy's
# momentum to 0 so that these passes do not also overwrite the running averages, which is
# the second half of the bug and is measured next.)

# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
def predict_in_batches(model, order, batch):
    """Predictions for the test set, fed to `model` as it is (train or eval) in batches."""
    pred = torch.empty_like(y_test)
    with torch.no_grad():
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            pred[idx] = model(x_test[idx]).argmax(1)
    return pred


buggy = copy.deepcopy(bn_model).train()
for m in buggy.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.momentum = 0.0  # running averages stay as they are: 1.0 * old + 0.0 * new

in_order = torch.arange(len(y_test), device=device)
by_class = torch.argsort(y_test, stable=True)
shuffled = torch.randperm(len(y_test), generator=torch.Generator().manual_seed(0)).to(device)
pred_eval = predict_in_batches(bn_model.eval(), in_order, 256)
pred_one = predict_in_batches(buggy, in_order, 1)
pred_sorted = predict_in_batches(buggy, by_class, 32)
pred_shuffled = predict_in_batches(buggy, shuffled, 32)
acc = {name: (p == y_test).float().mean().item() for name, p in [
    ("eval mode (correct)", pred_eval), ("train mode, batch of 1", pred_one),
    ("train mode, class-sorted batches", pred_sorted),
    ("train mode, shuffled batches", pred_shuffled)]}
for name, a in acc.items():
    print(f"{name:34s} test accuracy {a:.3f}")
assert acc["eval mode (correct)"] >= 0.95
assert acc["train mode, batch of 1"] < acc["eval mode (correct)"] - 0.02
assert acc["train mode, class-sorted batches"] < acc["eval mode (correct)"] - 0.05
assert abs(acc["train mode, shuffled batches"] - acc["eval mode (correct)"]) <= 0.01

# %% [markdown]
# Shuffled batches of 32 are harmless: their statistics are close to the population's, and
# the accuracy stays within one point of the correct one. On the same weights, single
# images lose more than two points of accuracy and class-sorted batches more than five.
# Here are some of the digits the correctly evaluated network gets right and the buggy
# evaluation gets wrong:

# %%
wrong = ((pred_eval == y_test) & ((pred_one != y_test) | (pred_sorted != y_test)))
idx = wrong.nonzero()[:6, 0].tolist()  # the first six such test digits
assert len(idx) == 6
fig = show_images(
    [data.x_test[i, 0] for i in idx],
    [f"true {y_test[i]}: eval mode {pred_eval[i]}\n"
     f"one at a time {pred_one[i]}, sorted {pred_sorted[i]}" for i in idx],
    ncols=3, cmap="gray_r", xlabel="column", ylabel="row", size=3.4,
    suptitle="Test digits right in evaluation mode, wrong in training mode\n"
    "(predicted class with running statistics; one image at a time; class-sorted batches)",
)
plt.show()

# %% [markdown]
# The second half of the bug: in training mode every forward pass also *updates* the
# running averages, so running a model in training mode on unrepresentative data corrupts
# the statistics that correct evaluation relies on later. Suppose a deployed model sees a
# stream of one class for a while (twenty batches of all the test images of one digit),
# in training mode with the default momentum, and is then evaluated correctly on the
# whole test set. We do this for each of the ten digits in turn, each time on a fresh copy:

# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
after_stream = []
for digit in range(10):
    corrupted = copy.deepcopy(bn_model).train()  # momentum 0.1: running stats will move
    same_digit = (y_test == digit).nonzero()[:, 0]
    with torch.no_grad():
        for _ in range(20):
            corrupted(x_test[same_digit])
    pred = predict_in_batches(corrupted.eval(), in_order, 256)
    after_stream.append((pred == y_test).float().mean().item())
print("eval accuracy after a stream of one digit, per digit:", np.round(after_stream, 3))
print(f"mean {np.mean(after_stream):.3f}, worst {min(after_stream):.3f} "
      f"(correct running averages: {acc['eval mode (correct)']:.3f})")
assert np.mean(after_stream) < acc["eval mode (correct)"] - 0.005
assert min(after_stream) < acc["eval mode (correct)"] - 0.015

# %% [markdown]
# The weights never changed; only the running averages did, and the accuracy on the whole
# test set pays for it: on average over the ten digits it drops by more than half a point,
# and after the most damaging digit by more than a point and a half. The cure for both
# halves of the bug is the same: call `model.eval()` before evaluating or deploying, and
# `model.train()` only to train.

# %% [markdown]
# ## Four ways to get the test-time statistics
#
# The running average is one answer to "which $\mu$ and $\sigma^2$ at test time?". Before
# the answers, the non-answer, "try 0": **do nothing**, that is, keep normalizing every test
# batch with its own statistics, as in training. With one image at a time this is the bug we
# just measured. Each image is then normalized by its own per-channel mean and standard
# deviation, which throws away its scale: a channel that barely responds to this image is
# stretched to unit variance just like one that responds strongly, so "how much of this
# feature is there" is lost. On the trained network, with single images:

# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
with torch.no_grad():
    logits_run = bn_model.eval()(x_test)  # running statistics
    logits_own = torch.cat([buggy(x_test[i : i + 1]) for i in range(len(y_test))])  # own stats
loss_run, loss_own = F.cross_entropy(logits_run, y_test), F.cross_entropy(logits_own, y_test)
drop = acc["eval mode (correct)"] - acc["train mode, batch of 1"]
print(f"running statistics:         test accuracy {acc['eval mode (correct)']:.3f}, "
      f"test loss {loss_run:.3f}")
print(f"each image's own statistics: test accuracy {acc['train mode, batch of 1']:.3f}, "
      f"test loss {loss_own:.3f}")
# Over training seeds 0-3: the accuracy dropped by 3.6 to 5.9 points, the loss rose 1.8 to 3.2x.
assert drop > 0.02 and loss_own > 1.5 * loss_run

# %% [markdown]
# The accuracy drops by more than two points and the test loss grows by more than half:
# doing nothing does not work. The lecture notes then list four ways that do:
#
# 1. **Last-epoch average**: average the batch means and variances seen during the last
#    epoch of training.
# 2. **Extra pass**: after training, run one more epoch over the training data with the
#    weights frozen (no gradient updates) and average its batch statistics. PyTorch does
#    this when `momentum=None` (a cumulative average instead of an exponential one).
# 3. **Running average**: the exponential moving average kept during training (PyTorch's
#    default, what `bn_model` holds now).
# 4. **Held-out data**: estimate them on data not used for training, here the validation
#    set. (One can go further and fit them to minimize the held-out loss; see the
#    exercises.)
#
# As a reference we compute the exact statistics of the whole training set under the final
# weights: one forward pass with all 1,259 training digits as a single batch (momentum 1
# makes the running statistics equal that batch's). Each method's statistics are compared
# with the reference, per BatchNorm layer: the mean absolute error of $\mu$ in units of the
# reference standard deviation, and the mean absolute log-ratio of $\sigma^2$.

# %%
def bn_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def stats_from_pass(x, batch, momentum=None):
    """(mean, var) per BatchNorm after one no-grad training-mode pass of bn_model over x."""
    model = copy.deepcopy(bn_model).train()
    for m in bn_layers(model):
        m.reset_running_stats()  # mean 0, var 1, count 0
        m.momentum = momentum  # None: cumulative average of the batches seen
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(torch.as_tensor(x[i : i + batch], device=device))
    return [(m.running_mean.clone(), m.running_var.clone()) for m in bn_layers(model)]


per_epoch = len(train_loader)  # 40 steps; the recorded stats cover 3 epochs
last_epoch = [tuple(torch.stack(s).mean(0) for s in zip(*seen[-per_epoch:], strict=True))
              for seen in batch_stats]
perm = np.random.default_rng(1).permutation(len(data.x_train))
methods = {
    "1. last-epoch average": last_epoch,
    "2. extra pass": stats_from_pass(data.x_train[perm], 32),
    "3. running average": [(m.running_mean.clone(), m.running_var.clone()) for m in bns],
    "4. held-out data": stats_from_pass(data.x_val, 32),
}
reference = stats_from_pass(data.x_train, len(data.x_train), momentum=1.0)


def stats_error(stats):
    """Per layer: mean |mu - mu_ref| / sigma_ref and mean |log(var / var_ref)|."""
    return np.array([[((m - rm).abs() / rv.sqrt()).mean().item(),
                      (v / rv).log().abs().mean().item()]
                     for (m, v), (rm, rv) in zip(stats, reference, strict=True)])


# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
def accuracy_with(stats):
    model = copy.deepcopy(bn_model).eval()
    for m, (mean, var) in zip(bn_layers(model), stats, strict=True):
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
    return evaluate(model, test_loader)[1]


summary_err, summary_acc = {}, {}
print(f"{'method':24s} {'mean error':>10s} {'var error':>10s} {'test acc':>9s}")
for name, stats in methods.items():
    err = stats_error(stats).mean(0)  # averaged over the 4 layers
    summary_err[name], summary_acc[name] = err, accuracy_with(stats)
    print(f"{name:24s} {err[0]:10.4f} {err[1]:10.4f} {summary_acc[name]:9.3f}")
print(f"{'exact (reference)':24s} {0:10.4f} {0:10.4f} {accuracy_with(reference):9.3f}")
total = {k: e.sum() for k, e in summary_err.items()}
assert total["2. extra pass"] < min(total["1. last-epoch average"],
                                    total["3. running average"], total["4. held-out data"])
assert total["1. last-epoch average"] > max(total["2. extra pass"], total["3. running average"],
                                            total["4. held-out data"])
assert total["3. running average"] < total["1. last-epoch average"]
assert min(summary_acc.values()) >= 0.95
assert max(summary_acc.values()) - min(summary_acc.values()) <= 0.02

# %% [markdown]
# All four work on this network: the test accuracies agree to within two points. The
# statistics themselves differ in a sensible order. The **extra pass** is the most accurate,
# since it averages forty batches computed with exactly the final weights. The **last-epoch
# average** is the worst, because its early batches were computed with weights that have
# since changed; the **running average** forgets old batches at the rate 0.9 per step, so
# it mostly remembers the last twenty or so, which are nearly up to date. **Held-out
# data** uses the right weights but only 179 digits, so it is noisier than the extra pass.
# In practice the running average is the default because it is free; an extra pass (with
# `momentum=None`) is worth doing when the running average is stale, for example after
# a large final learning rate, after fine-tuning, or when the weights were averaged.
#
# ## Folding BatchNorm into the convolution
#
# In evaluation mode BatchNorm is a per-channel affine map, and the convolution before it
# is linear, so the two compose into a single convolution. With
# $\alpha_o = \gamma_o / \sqrt{\sigma^2_{run,o} + \epsilon}$ for output channel $o$,
#
# $$
# \mathrm{BN}(w * x + b)_o = \alpha_o (w_o * x + b_o - \mu_{run,o}) + \beta_o
#   = \underbrace{(\alpha_o w_o)}_{w'_o} * x + \underbrace{\alpha_o (b_o - \mu_{run,o}) +
#   \beta_o}_{b'_o} .
# $$
#
# The package's `nd.fuse_conv_bn` and `td.fuse_conv_bn` compute $w', b'$. First in float64
# with the NumPy layers, where the two routes must agree to rounding error:

# %%
xc_ = rng.standard_normal((2, 3, 9, 9))
wc_, bc_ = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
gc_, betac_ = rng.normal(1, 0.2, 4), rng.normal(0, 0.2, 4)
rmc_, rvc_ = rng.normal(size=4), rng.uniform(0.5, 2.0, 4)
z, _ = nd.conv2d_forward(xc_, wc_, bc_, padding=1)
two_layers, _ = nd.batch_norm_forward(z, rmc_, rvc_, gc_, betac_, training=False)
w_f, b_f = nd.fuse_conv_bn(wc_, bc_, rmc_, rvc_, 1e-5, gc_, betac_)
one_layer, _ = nd.conv2d_forward(xc_, w_f, b_f, padding=1)
w_ft, b_ft = td.fuse_conv_bn(to64(wc_), to64(bc_), to64(rmc_), to64(rvc_), 1e-5, to64(gc_),
                             to64(betac_))
assert np.allclose(one_layer, two_layers, atol=1e-12)
assert np.allclose(w_ft.cpu().numpy(), w_f) and np.allclose(b_ft.cpu().numpy(), b_f)
print("conv + BN and the fused conv agree to rounding error (max difference < 1e-12)")

# %% [markdown]
# Now the whole trained network: replace every (convolution, BatchNorm) pair by one
# convolution with a bias. The fused network must make the same predictions; in float32
# the logits agree to within $10^{-4}$ (the same sums, rounded in a different order).

# %%
def fuse_network(model):
    """A copy of a Sequential of conv/BN/... with every conv followed by a BN folded."""
    layers, mods = [], list(copy.deepcopy(model).eval())
    i = 0
    while i < len(mods):
        m = mods[i]
        bn = mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(m, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            w, b = td.fuse_conv_bn(m.weight, m.bias, bn.running_mean, bn.running_var,
                                   bn.eps, bn.weight, bn.bias)
            conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                             padding=m.padding).to(w.device)
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(b)
            layers.append(conv)
            i += 2
        else:
            layers.append(m)
            i += 1
    return nn.Sequential(*layers).eval()


fused = fuse_network(bn_model)
with torch.no_grad():
    out_bn, out_fused = bn_model.eval()(x_test), fused(x_test)
diff = (out_bn - out_fused).abs().max().item()
print(f"{len(bn_model)} layers -> {len(fused)}; max |logit difference| over the test set "
      f"< 1e-4; identical predictions: {torch.equal(out_bn.argmax(1), out_fused.argmax(1))}")
assert diff < 1e-4 and torch.equal(out_bn.argmax(1), out_fused.argmax(1))
assert len(fused) == len(bn_model) - 4

# %% [markdown]
# What does it save? In arithmetic, very little: an evaluation-mode BatchNorm costs one
# multiply and one add per activation, while each output of a $3 \times 3$ convolution over
# $C_{in}$ channels costs $9 C_{in}$ multiply-adds. `d2lcnn.summary` counts the
# convolutions' multiply-adds and every layer's output size; per image, the four BatchNorm
# layers touch 3,072 activations (6,144 floating-point operations) against 377,856
# multiply-adds in the convolutions, under 1% of the arithmetic. The real saving is memory
# traffic and overhead: each BatchNorm reads and writes a whole activation tensor (12 KB per
# image for the four of them here) and is one more operation to launch.

# %%
table = summary(bn_model, (1, 1, 8, 8))
bn_rows = [r for r in table if r.type == "BatchNorm2d"]
bn_elements = sum(r.output_numel for r in bn_rows)
conv_macs = sum(r.macs for r in table if r.type == "Conv2d")
print(f"BatchNorm activations per image: {bn_elements:,} ({2 * bn_elements:,} flops, "
      f"{sum(r.activation_bytes for r in bn_rows) / 1024:.0f} KB written); "
      f"conv multiply-adds: {conv_macs:,}; ratio {2 * bn_elements / (2 * conv_macs):.2%}")
assert bn_elements == 16 * 64 * 2 + 32 * 16 * 2 == 3072
assert conv_macs == 64 * 9 * (1 * 16 + 16 * 16) + 16 * 9 * (16 * 32 + 32 * 32) == 377_856
assert 2 * bn_elements / (2 * conv_macs) < 0.01
assert sum(r.activation_bytes for r in bn_rows) == 4 * 3072  # float32: 12 KB

# %% [markdown]
# And in time, measured on the test set (359 images), alternating the two networks so that
# both see the same machine load and keeping the fastest of several repeats:

# %% tags=["nbval-ignore-output"]
# (timings vary from run to run and machine to machine: printed, not asserted)
times = {"conv + BatchNorm": [], "fused": []}
with torch.inference_mode():
    for _ in range(7):
        for name, model in [("conv + BatchNorm", bn_model), ("fused", fused)]:
            times[name].append(timeit.timeit(lambda model=model: model(x_test), number=5) / 5)
t_bn, t_fused = min(times["conv + BatchNorm"]), min(times["fused"])
print(f"conv + BatchNorm {t_bn * 1e3:.2f} ms, fused {t_fused * 1e3:.2f} ms per pass: "
      f"{1 - t_fused / t_bn:.0%} saved (ratio {t_fused / t_bn:.2f})")

# %% [markdown]
# Timings depend on the machine and on whatever else it is running, so read the printed
# ratio as one measurement of your computer, not as a property of the method. What the
# counts above do guarantee is that folding saves under 1% of the arithmetic here; any
# larger gain comes from memory traffic and per-layer overhead, which matter most on a GPU,
# where small layers are dominated by them. Folding is a standard step of inference
# compilers for that reason. Either way the slides' promise of no extra cost at test time
# holds exactly after folding: the folded network *is* a plain network of convolutions.
#
# ## What BatchNorm buys: learning rates and initialization
#
# The slides promise two benefits: BatchNorm allows higher learning rates, and it makes a
# network less sensitive to its initialization. Both are easy to test. We train `digits_cnn`
# with and without BatchNorm on a grid of four learning rates (SGD with momentum 0.9) and
# three initialization scales (He-normal times 0.1, 1 and 10), two epochs per cell, and
# record the validation accuracy. A run whose loss exceeds three times its initial value, or
# becomes infinite, is stopped by `fit` and marked as diverged.

# %%
LRS, SCALES = (0.003, 0.03, 0.1, 0.3), (0.1, 1.0, 10.0)
grid = {}  # (norm, lr, scale) -> (validation accuracy, diverged?)
for norm in (None, "batch"):
    for lr in LRS:
        for scale in SCALES:
            seed_everything(0)
            model = digits_cnn(norm, init_scale=scale)
            history = train(model, lr=lr, epochs=2)
            grid[norm, lr, scale] = (evaluate(model, val_loader)[1], bool(history.stop_reason))

# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
for ax, norm, title in [(axes[0], None, "without BatchNorm"), (axes[1], "batch", "with BatchNorm")]:
    acc_grid = np.array([[grid[norm, lr, s][0] for s in SCALES] for lr in LRS])
    im = ax.imshow(acc_grid, vmin=0, vmax=1, cmap="viridis")
    for i, lr in enumerate(LRS):
        for j, s in enumerate(SCALES):
            a, diverged = grid[norm, lr, s]
            ax.text(j, i, f"{a:.2f}" + ("\ndiverged" if diverged else ""), ha="center",
                    va="center", color="white" if a < 0.6 else "black", fontsize=10)
    ax.set_xticks(range(3), [f"{s:g} x He" for s in SCALES])
    ax.set_yticks(range(len(LRS)), [f"{lr:g}" for lr in LRS])
    ax.set_xlabel("initialization scale")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
fig.colorbar(im, ax=axes, label="validation accuracy after 2 epochs")
fig.suptitle("Digits CNN: which (learning rate, initialization) pairs train?")
plt.show()

def acc_of(norm, lr, s):
    return grid[norm, lr, s][0]


# Without BatchNorm: only He's scale learns anything; 0.1 x He stays at chance (10 classes),
# 10 x He diverges at every rate.
assert all(acc_of(None, lr, s) <= 0.15 for lr in LRS for s in (0.1, 10.0))
assert all(grid[None, lr, 10.0][1] for lr in LRS)
assert acc_of(None, 0.03, 1.0) >= 0.9
# With BatchNorm: every scale trains at the middle rates, and at 0.1 it beats the plain
# network for every scale by more than 5 points.
assert all(acc_of("batch", lr, s) >= 0.75 for lr in (0.03, 0.1) for s in SCALES)
assert all(acc_of("batch", 0.1, s) > acc_of(None, 0.1, s) + 0.05 for s in SCALES)
# Its limits: at 0.3 at most one scale trains, and the small scale diverges; at 0.003 the
# large scale is the slowest of its row.
assert sum(acc_of("batch", 0.3, s) >= 0.5 for s in SCALES) <= 1 and grid["batch", 0.3, 0.1][1]
assert acc_of("batch", 0.003, 10.0) < min(acc_of("batch", 0.003, s) for s in (0.1, 1.0)) - 0.1
trained = {norm: sum(acc_of(norm, lr, s) >= 0.75 for lr in LRS for s in SCALES)
           for norm in (None, "batch")}
print(f"cells reaching 75% validation accuracy: {trained[None]} of 12 without BatchNorm, "
      f"{trained['batch']} of 12 with")

# %% [markdown]
# Without BatchNorm only the He initialization learns anything: with weights ten times too
# small the network stays at chance level (at most 15%; guessing gives 10% on ten classes),
# because the signal and the gradients shrink layer after layer, and with weights ten times
# too large the loss blows up and every run is stopped as diverged. Even with He's scale the
# plain network needs a small rate: at 0.1 it already falls more than 5 points behind the
# normalized one. With BatchNorm every initialization reaches at least 75% at the rates 0.03
# and 0.1. BatchNorm widens the range of usable rates but does not remove its upper end: at
# 0.3 at most one initialization reaches even 50%. The reason for the robustness is that a
# convolution followed by BatchNorm is *invariant to the scale of its weights*: multiplying
# $w$ by $a > 0$ multiplies the convolution's output, its batch mean and its batch standard
# deviation by $a$, and the normalized result is unchanged. A bad initialization scale then
# cannot blow up or kill the forward signal. It still has an effect: the gradient with
# respect to $w$ scales like $1/a$, so weights that start too large learn with too small an
# effective learning rate (at the smallest rate the right column is the slowest, more than
# 10 points behind the others), and weights that start too small with too large a one (at
# the largest rate the small initialization diverges). The last linear layer has no
# BatchNorm after it and stays as sensitive as before.

# %% [markdown]
# ### No weight decay on $\gamma$, $\beta$ and biases
#
# Weight decay (the $L_2$ penalty of [chapter 6](06-dropout-and-ensembles.ipynb)) adds
# $\lambda w$ to the gradient of every parameter, pulling it towards zero. The scale
# invariance we just met changes what that does. For a convolution followed by BatchNorm,
# shrinking the weights does not change the function at all; it only makes the next
# gradient steps relatively larger. For $\gamma$ it is the opposite: $\gamma$ *is* the scale
# of the channel's output, so decaying it shrinks the channel itself, and pulled to zero it
# leaves only the constant $\beta$, a channel that carries no information; decaying $\beta$
# pulls each channel's learned shift back to zero. On the first BatchNorm layer of the
# trained network, in training mode:

# %%
conv1, bn1 = bn_model[0], bn_model[1]  # the first convolution and its BatchNorm
gamma, beta = bn1.weight.detach(), bn1.bias.detach()
with torch.no_grad():
    def conv_bn(weight, gamma):
        """conv1 with `weight`, then training-mode BatchNorm with `gamma` and bn1's beta."""
        z = F.conv2d(x_test, weight, padding=1)  # (359, 16, 8, 8)
        return F.batch_norm(z, None, None, gamma, beta, training=True, eps=bn1.eps)

    out = conv_bn(conv1.weight, gamma)
    out_w = conv_bn(0.5 * conv1.weight, gamma)  # conv weights halved
    out_g = conv_bn(conv1.weight, 0.5 * gamma)  # gamma halved
shift = beta.view(1, -1, 1, 1)
same_w = (out_w - out).abs().max().item() < 1e-3  # only BatchNorm's epsilon tells them apart
halved_g = torch.allclose(out_g - shift, 0.5 * (out - shift), atol=1e-5)
print(f"conv weights halved -> same output (to 1e-3): {same_w}; "
      f"gamma halved -> output minus beta halved: {halved_g}")
assert same_w and halved_g

# %% [markdown]
# So the usual practice, already in Caffe's model files (`decay_mult: 0` for biases), is to
# decay only the weights of the convolutions and linear layers, and to exempt $\gamma$,
# $\beta$ and all biases. In PyTorch that means two *parameter groups*, each with its own
# `weight_decay`. The one-dimensional parameters are exactly the ones to exempt:

# %%
decay, no_decay, exempt = [], [], []
for name, p in bn_model.named_parameters():
    # conv and linear weights are >= 2-D; BatchNorm's gamma and beta and all biases are 1-D
    if p.ndim > 1:
        decay.append(p)
    else:
        no_decay.append(p)
        exempt.append(name)
optimizer = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                             {"params": no_decay, "weight_decay": 0.0}], lr=0.03, momentum=0.9)
print(f"decayed: {len(decay)} tensors, {sum(p.numel() for p in decay)} values; "
      f"not decayed: {len(no_decay)} tensors, {sum(p.numel() for p in no_decay)} values")
print("not decayed:", ", ".join(exempt))  # module index in the Sequential . parameter
bn_ids = {id(p) for m in bn_layers(bn_model) for p in (m.weight, m.bias)}
assert bn_ids <= {id(p) for p in no_decay} and (len(decay), len(no_decay)) == (5, 9)
assert sum(p.numel() for p in decay) == 17552 and sum(p.numel() for p in no_decay) == 202

# One step with zero loss gradient shows the groups at work: only the decayed group shrinks.
before = [p.detach().clone() for p in bn_model.parameters()]
for p in bn_model.parameters():
    p.grad = torch.zeros_like(p)
optimizer.step()
for p, p0 in zip(bn_model.parameters(), before, strict=True):
    factor = 1 - 0.03 * 5e-4 if p.ndim > 1 else 1.0
    assert torch.allclose(p.detach(), factor * p0, rtol=1e-6, atol=0)
with torch.no_grad():  # undo the step: the network is used again below
    for p, p0 in zip(bn_model.parameters(), before, strict=True):
        p.copy_(p0)
        p.grad = None

# %% [markdown]
# The exempted parameters are few (here 9 tensors of 202 numbers, against 5 tensors of 17,552
# weights), but each of them sets the scale or the offset of a whole channel.
#
# ## Batch-size dependence
#
# BatchNorm's statistics are estimates from the batch, and their quality depends on its
# size. The standard error of a batch mean falls like $1/\sqrt{N}$, and with it the noise
# that training-mode normalization adds. Two measurements on the trained network: the
# spread of the batch means of the first BatchNorm layer over the test set, and the
# accuracy of training-mode predictions (the "bug" above) as a function of the batch size,
# with the running averages left untouched.

# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
BATCHES = (1, 2, 4, 8, 16, 32, 64)
first_conv = bn_model[0]
with torch.no_grad():
    z_test = first_conv(x_test)  # (359, 16, 8, 8): the first BatchNorm's input
gen = torch.Generator().manual_seed(0)
spread, acc_b = [], []
for b in BATCHES:
    orders = [torch.randperm(len(y_test), generator=gen).to(device) for _ in range(10)]
    n_full = len(y_test) // b * b  # whole batches only
    means = torch.cat([z_test[o[:n_full]].reshape(-1, b, 16, 64).mean((1, 3))
                       for o in orders])  # (batches, C): batch means per channel
    spread.append((means.std(0) / z_test.std((0, 2, 3))).mean().item())
    acc_b.append((predict_in_batches(buggy, orders[0], b) == y_test).float().mean().item())
print("batch size       ", BATCHES)
print("spread of means  ", np.round(spread, 3))
print("train-mode acc.  ", np.round(acc_b, 3))
slope = np.polyfit(np.log(BATCHES), np.log(spread), 1)[0]
print(f"log-log slope of the spread: {slope:.2f} (1/sqrt(N) would be -0.5)")
assert -0.7 < slope < -0.3
assert acc_b[0] < acc_b[-1] - 0.01 and acc_b[-1] >= acc["eval mode (correct)"] - 0.02

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].loglog(BATCHES, spread, "o-", label="measured")
axes[0].loglog(BATCHES, spread[0] / np.sqrt(BATCHES), "k--", label=r"$\propto 1/\sqrt{N}$")
axes[0].set_xlabel("batch size $N$")
axes[0].set_ylabel("std of batch mean / std of data")
axes[0].set_title("Noise of the batch statistics")
axes[0].legend()
axes[1].semilogx(BATCHES, acc_b, "o-", label="training-mode statistics")
axes[1].axhline(acc["eval mode (correct)"], color="k", ls="--", label="running averages")
axes[1].set_xlabel("batch size $N$")
axes[1].set_ylabel("test accuracy")
axes[1].set_title("Predictions with batch statistics")
axes[1].legend()
fig.suptitle("BatchNorm depends on the batch size")
fig.tight_layout()
plt.show()

# %% [markdown]
# The spread of the batch means falls as the theory predicts: the fitted log-log slope lies
# between $-0.7$ and $-0.3$, around the $-0.5$ of $1/\sqrt{N}$. Predictions with batch
# statistics are more than a point less accurate at $N = 1$ than at $N = 64$, where they
# come within two points of the running averages.
#
# The same noise is present during training, where it acts as a mild regularizer for
# moderate batches (the slides count it as a side benefit) and becomes harmful for
# tiny ones: the network learns with normalizations that jump from batch to batch, and the
# running averages it is tested with no longer match what it saw. On ImageNet, Wu and He
# (2018) report the top-1 error of a ResNet-50 with BatchNorm rising from 23.6% at 32
# images per GPU to 34.7% at 2, while GroupNorm (below) stays at 24.1%: at 2 images per
# GPU GroupNorm's error is 10.6 points lower. The cell below holds these numbers.
# Small batches are the norm in detection, segmentation and video, where one image is
# large, which is why those models often use GroupNorm or "frozen" BatchNorm statistics.
# BatchNorm also couples the examples of a batch, which complicates distributed training
# (statistics per device or synchronized across devices) and sequence models.

# %%
# Wu and He (2018), Group Normalization, arXiv:1803.08494: top-1 validation error (%) of a
# ResNet-50 on ImageNet against images per GPU (Table 1 and Figure 1), and the number of
# groups G of their GroupNorm layers (the paper's default).
WU_HE_2018 = {
    "error": {"BatchNorm": {32: 23.6, 2: 34.7}, "GroupNorm": {32: 24.1, 2: 24.1}},
    "groups": 32,
}
err = WU_HE_2018["error"]
gap = err["BatchNorm"][2] - err["GroupNorm"][2]
rise = err["BatchNorm"][2] - err["BatchNorm"][32]
print(f"BatchNorm's error rises by {rise:.1f} points from 32 to 2 images per GPU; "
      f"at 2, GroupNorm's (G = {WU_HE_2018['groups']}) is {gap:.1f} points lower")
assert round(gap, 1) == 10.6 and round(rise, 1) == 11.1  # 10.6: the paper's abstract
assert err["GroupNorm"][2] == err["GroupNorm"][32]
#
# ## The normalization family: LayerNorm, InstanceNorm, GroupNorm, RMSNorm
#
# All of these layers compute the same thing,
#
# $$
# y = \gamma \frac{x - \mu_S}{\sqrt{\sigma_S^2 + \epsilon}} + \beta ,
# $$
#
# and differ only in the set $S$ of elements that share a mean and a variance. For an
# $N \times C \times H \times W$ input:
#
# * **BatchNorm**: per channel, over $N, H, W$ (the batch and all positions);
# * **LayerNorm** (Ba et al., 2016): per example, over $C, H, W$ (all its features);
# * **InstanceNorm** (Ulyanov et al., 2016): per example and channel, over $H, W$;
# * **GroupNorm** (Wu and He, 2018): per example, over $H, W$ and a group of $C/G$
#   consecutive channels; $G = 1$ is LayerNorm, $G = C$ is InstanceNorm;
# * **RMSNorm** (Zhang and Sennrich, 2019): LayerNorm's set, but no centring: divide by the
#   root mean square $\sqrt{\frac{1}{|S|}\sum_{i \in S} x_i^2 + \epsilon}$ and scale by
#   $\gamma$, with no $\beta$. (As for BatchNorm, the lecture notes also write the variant
#   with $\epsilon$ added outside the root.)
#
# The picture that goes with the list draws the activations as a box with the batch on
# one axis, the channels on another and the spatial positions flattened into the third;
# the shaded cells are normalized together (one set $S$ of each kind).

# %%
N_, C_, HW_ = 6, 6, 4  # a small (N, C, H*W) box
masks = {
    "BatchNorm": np.zeros((N_, C_, HW_), bool),
    "LayerNorm (and RMSNorm)": np.zeros((N_, C_, HW_), bool),
    "InstanceNorm": np.zeros((N_, C_, HW_), bool),
    "GroupNorm (G = 3)": np.zeros((N_, C_, HW_), bool),
}
# The sets drawn are those on the faces the camera sees: the last example, the first channel.
masks["BatchNorm"][:, 0, :] = True  # one channel, every example and position
masks["LayerNorm (and RMSNorm)"][-1, :, :] = True  # one example, everything
masks["InstanceNorm"][-1, 0, :] = True  # one example, one channel
masks["GroupNorm (G = 3)"][-1, 0:2, :] = True  # one example, a group of C/G = 2 channels

fig = plt.figure(figsize=(14, 4))
for k, (name, mask) in enumerate(masks.items()):
    ax = fig.add_subplot(1, 4, k + 1, projection="3d")
    colors = np.where(mask[..., None], [0.15, 0.4, 0.8, 0.95], [0.85, 0.85, 0.85, 0.15])
    ax.voxels(np.ones_like(mask), facecolors=colors, edgecolor=(0, 0, 0, 0.3), linewidth=0.3)
    ax.set_xlabel("N (batch)")
    ax.set_ylabel("C (channels)")
    ax.set_zlabel("H, W")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])
    ax.set_title(name)
    ax.view_init(elev=20, azim=-60)
    ax.set_box_aspect(None, zoom=0.8)
fig.suptitle("Which activations share one mean and variance (shaded: one normalization set)")
plt.show()

# %% [markdown]
# Each description is one line of array code, and each must agree with the package's NumPy
# and PyTorch layers and with `torch.nn.functional`:

# %%
xn = rng.normal(2.0, 3.0, size=(4, 6, 5, 5))  # (N, C, H, W)
gc, bc = rng.normal(1, 0.2, 6), rng.normal(0, 0.2, 6)  # per-channel affine
gl, bl = rng.normal(1, 0.2, (6, 5, 5)), rng.normal(0, 0.2, (6, 5, 5))  # LayerNorm: per element
ch = (1, 6, 1, 1)  # broadcast shape of a per-channel vector


def standardize(x, axes):
    """(x - mean) / sqrt(var + eps) with the statistics taken over `axes`."""
    return (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)


grouped = xn.reshape(4, 3, 2, 5, 5)  # (N, G, C/G, H, W) with G = 3
by_hand = {
    "layer": gl * standardize(xn, (1, 2, 3)) + bl,
    "instance": gc.reshape(ch) * standardize(xn, (2, 3)) + bc.reshape(ch),
    "group": gc.reshape(ch) * standardize(grouped, (2, 3, 4)).reshape(xn.shape)
    + bc.reshape(ch),
    "rms": gl * xn / np.sqrt((xn**2).mean((1, 2, 3), keepdims=True) + eps),
}
package_nd = {
    "layer": nd.layer_norm_forward(xn, (6, 5, 5), gl, bl)[0],
    "instance": nd.instance_norm_forward(xn, None, None, gc, bc)[0],
    "group": nd.group_norm_forward(xn, 3, gc, bc)[0],
    "rms": nd.rms_norm_forward(xn, (6, 5, 5), gl, eps=eps)[0],
}
t = {k: to64(v) for k, v in dict(x=xn, gc=gc, bc=bc, gl=gl, bl=bl).items()}
package_td = {
    "layer": td.layer_norm(t["x"], (6, 5, 5), t["gl"], t["bl"]),
    "instance": td.instance_norm(t["x"], weight=t["gc"], bias=t["bc"]),
    "group": td.group_norm(t["x"], 3, t["gc"], t["bc"]),
    "rms": td.rms_norm(t["x"], (6, 5, 5), t["gl"], eps=eps),
}
torch_f = {
    "layer": F.layer_norm(t["x"], (6, 5, 5), t["gl"], t["bl"]),
    "instance": F.instance_norm(t["x"], weight=t["gc"], bias=t["bc"]),
    "group": F.group_norm(t["x"], 3, t["gc"], t["bc"]),
    "rms": F.rms_norm(t["x"], (6, 5, 5), t["gl"], eps=eps),
}
for k in by_hand:
    for impl in (package_nd[k], package_td[k].cpu().numpy(), torch_f[k].cpu().numpy()):
        assert np.allclose(impl, by_hand[k], atol=1e-12), k
print("by hand, nd, td and torch.nn.functional agree for layer, instance, group and RMS norm")

# %% [markdown]
# The relations between them hold exactly: GroupNorm with one group is LayerNorm over
# $(C, H, W)$ (with per-channel rather than per-element affine parameters), GroupNorm with
# $C$ groups is InstanceNorm, and RMSNorm equals LayerNorm on inputs whose mean is already
# zero. Their backward passes pass the same gradient check as BatchNorm's.

# %%
assert np.allclose(nd.group_norm_forward(xn, 1)[0], nd.layer_norm_forward(xn, (6, 5, 5))[0])
assert np.allclose(nd.group_norm_forward(xn, 6)[0], nd.instance_norm_forward(xn)[0])
centred = xn - xn.mean((1, 2, 3), keepdims=True)
assert np.allclose(nd.rms_norm_forward(centred, (6, 5, 5), eps=eps)[0],
                   nd.layer_norm_forward(centred, (6, 5, 5))[0])
small = rng.normal(size=(2, 4, 3, 3))
grad_errors = {
    "layer": check_backward(lambda x: nd.layer_norm_forward(x, (4, 3, 3)),
                            lambda d, c: nd.layer_norm_backward(d, c)[0], [small.copy()],
                            h=1e-4),
    "instance": check_backward(lambda x, g, b: nd.instance_norm_forward(x, None, None, g, b),
                               nd.instance_norm_backward,
                               [small.copy(), rng.normal(1, .2, 4), rng.normal(0, .2, 4)],
                               h=1e-4),
    "group": check_backward(lambda x, g, b: nd.group_norm_forward(x, 2, g, b),
                            nd.group_norm_backward,
                            [small.copy(), rng.normal(1, .2, 4), rng.normal(0, .2, 4)],
                            h=1e-4),
    "rms": check_backward(lambda x: nd.rms_norm_forward(x, (4, 3, 3)),
                          lambda d, c: nd.rms_norm_backward(d, c)[0], [small.copy()], h=1e-4),
}
assert all(max(e) < 1e-5 for e in grad_errors.values())  # the tolerance of BatchNorm's check
print("GroupNorm(G=1) = LayerNorm, GroupNorm(G=C) = InstanceNorm, RMSNorm = LayerNorm on "
      "centred inputs; all gradient checks pass")

# %% [markdown]
# What the per-example normalizations buy is independence from the batch. None of them
# looks at other examples, so an example's output does not change with its batch
# companions, and there is nothing to track for test time: training and evaluation
# compute the same function. (The question of what to do at inference time simply does not
# arise for them.)

# %%
batch_a, batch_b = xn, np.concatenate([xn[:1], rng.normal(size=(3, 6, 5, 5))])
for name, f in [("layer", lambda x: nd.layer_norm_forward(x, (6, 5, 5))[0]),
                ("instance", lambda x: nd.instance_norm_forward(x)[0]),
                ("group", lambda x: nd.group_norm_forward(x, 3)[0]),
                ("rms", lambda x: nd.rms_norm_forward(x, (6, 5, 5))[0])]:
    assert np.allclose(f(batch_a)[0], f(batch_b)[0]), name
bn_a = nd.batch_norm_forward(batch_a, None, None, training=True)[0]
bn_b = nd.batch_norm_forward(batch_b, None, None, training=True)[0]
assert not np.allclose(bn_a[0], bn_b[0])
gn = nn.GroupNorm(3, 6).to(device64, torch.float64)
assert torch.equal(gn.train()(t["x"]), gn.eval()(t["x"]))
print("per-example norms: output of example 0 independent of the rest of the batch, and "
      "the same in train and eval mode; BatchNorm: neither")

# %% [markdown]
# **Where each is used.**
#
# * **BatchNorm** ($N, H, W$ per channel): convolutional networks for classification trained
#   with reasonably large batches (Inception-v3, Szegedy et al., 2016; ResNet,
#   He et al., 2016); folded into the convolutions for inference.
# * **LayerNorm** (all features of one example): transformers and recurrent networks, where
#   it is independent of the batch and of the sequence length; also modern CNNs such as
#   ConvNeXt (Liu et al., 2022).
# * **InstanceNorm** ($H, W$ per example and channel): style transfer and image generation.
#   It removes each image's contrast and colour statistics, which is the point there and a
#   loss for classification.
# * **GroupNorm** ($H, W$ and $C/G$ channels per example): detection, segmentation and video
#   with one or two images per device (Mask R-CNN, He et al., 2017, in Wu and He's
#   experiments; the U-Nets of diffusion models); $G = 32$ is the paper's default.
# * **RMSNorm** (LayerNorm's set, no centring): large language models such as T5
#   (Raffel et al., 2020) and LLaMA (Touvron et al., 2023); Zhang and Sennrich (2019) found
#   it cheaper than LayerNorm and about as accurate.
#
# Finally, the same small CNN on the digits with each of them, three epochs at batch size
# 32 as before. Every normalization trains (at least 85% test accuracy after three
# epochs), and BatchNorm, whose batches of 32 are large enough here, comes within one point
# of the best of them, the plain network included: on a network this shallow, trained at a
# learning rate that suits the plain network, normalization is not what limits accuracy.

# %% tags=["nbval-ignore-output"]
# (training results: the last digits depend on the CPU; the asserts have margins)
family_acc = {"none": acc_plain, "batch": acc_bn}
for norm in ("layer", "instance", "group"):
    seed_everything(0)
    model = digits_cnn(norm)
    train(model)
    family_acc[norm] = evaluate(model, test_loader)[1]
print("test accuracy after 3 epochs:",
      ", ".join(f"{k} {v:.3f}" for k, v in family_acc.items()))
assert all(a >= 0.85 for a in family_acc.values())
assert family_acc["batch"] >= max(family_acc.values()) - 0.01

# %% [markdown]
# ## What to remember
#
# * BatchNorm standardizes each channel with the batch's mean and variance (over $N$ for
#   vectors, over $N, H, W$ for feature maps: statistics of shape $1 \times C \times 1
#   \times 1$), then applies a learnable $\gamma, \beta$; $\gamma = \sqrt{\sigma^2 +
#   \epsilon}$, $\beta = \mu$ gives back the identity. Put it between the convolution
#   (which then needs no bias) and the nonlinearity.
# * Its backward pass has three paths (direct, through $\mu$, through $\sigma^2$) and the
#   compact form $\frac{1}{m\hat\sigma}(m g - \sum g - \hat x \sum g \hat x)$; the input gradient of
#   each channel sums to zero.
# * Training mode uses batch statistics and updates running averages (PyTorch: momentum
#   0.1 weights the new batch, the variance is unbiased); evaluation mode uses the running
#   averages. Forgetting `model.eval()` makes predictions depend on the batch (single images,
#   sorted batches) and corrupts the running statistics.
# * Test-time statistics: not each test batch's own ("try 0" loses the scale of every single
#   image), but the last-epoch average, an extra pass with frozen weights (the most
#   accurate here), the running average (free, the default), or held-out data.
# * In evaluation mode BatchNorm is affine and folds into the preceding convolution:
#   $w' = \alpha w$, $b' = \alpha(b - \mu) + \beta$ with $\alpha = \gamma / \sqrt{\sigma^2 +
#   \epsilon}$.
# * BatchNorm makes a convolution invariant to its weight scale, which widens the range of
#   learning rates and initializations that train (in our grid: every initialization at the
#   two middle rates with it; without it, only He's). Its price is the dependence on the batch
#   size: batch statistics are noisy like $1/\sqrt{N}$.
# * Exempt $\gamma$, $\beta$ and biases from weight decay (a second parameter group with
#   `weight_decay=0`): decay on weights before BatchNorm leaves the function unchanged,
#   decay on $\gamma$ shrinks the channels themselves.
# * LayerNorm, InstanceNorm, GroupNorm and RMSNorm normalize within each example, over
#   different axes; they do not depend on the batch and behave the same in training and
#   evaluation.
#
# ## Exercises
#
# 1. **Quick check.** A BatchNorm2d layer follows a convolution with 64 output channels.
#    How many learnable parameters and how many running statistics does it have? How many
#    values does each mean average over for a batch of 32 images of $56 \times 56$?
# 2. **Derive it again.** Starting from the staged backward pass, derive the compact
#    formula for $\partial L / \partial x$ and show that, with $\epsilon = 0$, the gradient
#    is orthogonal to both the all-ones vector and $\hat x$ (per channel). What changes when
#    $\epsilon > 0$?
# 3. **Learn the statistics.** Implement the fourth option literally: make the running mean
#    and the log of the running variance of `bn_model` trainable parameters, freeze
#    everything else and minimize the cross-entropy on the validation set. Compare the test
#    accuracy and the learned statistics with the extra pass.
# 4. **Fold a linear layer.** BatchNorm1d after `nn.Linear` folds too. Write the formula,
#    implement it with `nd.linear_forward` and check the output. Can BatchNorm *before* a
#    convolution be folded into it? Where does zero padding get in the way?
# 5. **Small batches (small project).** Train `digits_cnn` with BatchNorm and with
#    GroupNorm at batch sizes 2, 4, 8 and 32 (scale the learning rate with the batch size)
#    and plot test accuracy against batch size. Does the gap reported by Wu and He appear
#    on the digits? Add batch renormalization (Ioffe, 2017) or evaluation with batch
#    statistics and compare.
# 6. **Ghost batch norm (small project).** With a batch of 256, compute BatchNorm
#    statistics over "ghost" sub-batches of 16, as Hoffer et al. (2017) do. How do training
#    curves and the final accuracy change compared with whole-batch statistics?
#
# The second homework,
# [its student notebook](homework/hw2-batchnorm-dropout/hw2-batchnorm-dropout.ipynb)
# (or the copy your instructor hands out), asks you to write BatchNorm (and dropout) forward
# and backward in NumPy, in training and evaluation mode, to pass the same gradient checks,
# and to avoid the running-statistics trap of this chapter.

# %% [markdown]
# ## References
#
# - Ba, J. L., Kiros, J. R., & Hinton, G. E. (2016). Layer normalization. *arXiv preprint*.
#   [arXiv:1607.06450](https://arxiv.org/abs/1607.06450)
# - He, K., Gkioxari, G., Dollár, P., & Girshick, R. (2017). Mask R-CNN. *ICCV*.
#   [arXiv:1703.06870](https://arxiv.org/abs/1703.06870)
# - He, K., Zhang, X., Ren, S., & Sun, J. (2016). Deep residual learning for image recognition.
#   *CVPR*. [arXiv:1512.03385](https://arxiv.org/abs/1512.03385)
# - Hoffer, E., Hubara, I., & Soudry, D. (2017). Train longer, generalize better: closing the
#   generalization gap in large batch training of neural networks. *NeurIPS*.
#   [arXiv:1705.08741](https://arxiv.org/abs/1705.08741)
# - Ioffe, S. (2017). Batch renormalization: towards reducing minibatch dependence in
#   batch-normalized models. *NeurIPS*. [arXiv:1702.03275](https://arxiv.org/abs/1702.03275)
# - Ioffe, S., & Szegedy, C. (2015). Batch normalization: accelerating deep network training by
#   reducing internal covariate shift. *ICML*. [arXiv:1502.03167](https://arxiv.org/abs/1502.03167)
# - Liu, Z., Mao, H., Wu, C.-Y., Feichtenhofer, C., Darrell, T., & Xie, S. (2022). A ConvNet for the
#   2020s. *CVPR*. [arXiv:2201.03545](https://arxiv.org/abs/2201.03545)
# - Raffel, C., Shazeer, N., Roberts, A., Lee, K., Narang, S., Matena, M., Zhou, Y., Li, W., & Liu,
#   P. J. (2020). Exploring the limits of transfer learning with a unified text-to-text transformer.
#   *JMLR*. [arXiv:1910.10683](https://arxiv.org/abs/1910.10683)
# - Santurkar, S., Tsipras, D., Ilyas, A., & Madry, A. (2018). How does batch normalization help
#   optimization? *NeurIPS*. [arXiv:1805.11604](https://arxiv.org/abs/1805.11604)
# - Szegedy, C., Vanhoucke, V., Ioffe, S., Shlens, J., & Wojna, Z. (2016). Rethinking the Inception
#   architecture for computer vision. *CVPR*. [arXiv:1512.00567](https://arxiv.org/abs/1512.00567)
# - Touvron, H., Lavril, T., Izacard, G., et al. (2023). LLaMA: open and efficient foundation
#   language models. *arXiv preprint*. [arXiv:2302.13971](https://arxiv.org/abs/2302.13971)
# - Ulyanov, D., Vedaldi, A., & Lempitsky, V. (2016). Instance normalization: the missing ingredient
#   for fast stylization. *arXiv preprint*. [arXiv:1607.08022](https://arxiv.org/abs/1607.08022)
# - Wu, Y., & He, K. (2018). Group normalization. *ECCV*.
#   [arXiv:1803.08494](https://arxiv.org/abs/1803.08494)
# - Zhang, B., & Sennrich, R. (2019). Root mean square layer normalization. *NeurIPS*.
#   [arXiv:1910.07467](https://arxiv.org/abs/1910.07467)
