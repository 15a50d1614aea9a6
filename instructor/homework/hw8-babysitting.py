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
# # Homework 8: Babysitting a training run, and what a network looks at
#
# **Follows:** [chapter 9, Is it training, and what has it
# learned?](../../09-training-and-seeing.ipynb)
# **Estimated time:** 3–4 hours (a first draft, not yet timed on students: the reference
# solution is 61 lines, at about 3 minutes a line for a first encounter, plus running the
# demo cells and about 20 minutes for the written answer)
#
# **Learning goals.** After this assignment you can
#
# - predict the initial loss of a classifier and turn "is it about ln K?" into a check that
#   names what is wrong, and say which bug the check cannot see;
# - write the "overfit a tiny subset" test and tell from its curve whether a network can
#   learn at all;
# - measure the update-to-weight ratio of one SGD step per layer, from gradients that belong
#   to the current batch only;
# - compute an occlusion map by hand, with strides and patches that reach the image's
#   border, and read three loss curves for the learning rate that made them.
#
# | question | what you do | points | difficulty |
# | --- | --- | --- | --- |
# | 1 | `expected_initial_loss`, `initial_loss_verdict`: the first sanity check | 7 | guided |
# | 2 | `overfit_curve`: memorise a tiny subset, or fail to | 5 | standard |
# | 3 | `update_ratios`: one SGD step, per layer | 5 | standard |
# | 4 | `occlusion_map`: what the decision depends on | 8 | challenge |
# | 5 | written: three loss curves, three learning rates | 4 | standard |
#
# **Rules.** Use PyTorch (`torch`, `torch.nn`, `torch.nn.functional`) and NumPy. The
# package's own versions of these tools (`d2lcnn.diagnostics`, `d2lcnn.viz`), its training
# loop (`d2lcnn.train`), its torch layers and models (`d2lcnn.torch`) and `torchvision` are
# blocked when your notebook is graded. Write your code where it says `# YOUR CODE HERE`; do
# not rename the functions or change their arguments. Run `check("qN")` after each answer:
# it runs the public tests. The grade also uses hidden tests, on networks and images you do
# not see. Question 5 is answered in words and graded by hand. When you are done, save the
# notebook and run `submit()`.

# %%
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw8-babysitting", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# ## Question 1 (7 points, guided): the initial loss
#
# An untrained classifier with $K$ classes should be unsure: its scores start small and
# nearly equal, the softmax gives each class about $1/K$, and the mean cross-entropy is
# about $-\ln(1/K) = \ln K$. Write two functions.
#
# - `expected_initial_loss(num_classes)`: $\ln K$ as a Python float (natural logarithm).
#   Raise `ValueError` unless `num_classes` is an int $\ge 2$.
# - `initial_loss_verdict(model, x, y, num_classes, *, rtol=0.2)`: the mean cross-entropy
#   `loss` of `model` on the batch `(x, y)` (evaluation mode, no gradients: afterwards the
#   model must be in the mode it was in, and no parameter may have a `.grad`), and a
#   verdict comparing it with $\ln K$ for the task's `num_classes`, through
#   `ratio = loss / ln K`: `"ok"` if $|\text{ratio} - 1| \le$ `rtol`, `"too high"` if the
#   ratio is larger, `"too low"` if it is smaller. Return `(loss, verdict)`, `loss` a
#   Python float.
#
# Take $K$ from `num_classes`, the number of classes of the *task*, not from the width of
# the model's output: a network built with the wrong number of outputs is one of the bugs
# this check must catch. The hidden tests also use a last layer initialised too large, a
# label that leaks into the input, a network with dropout in training mode, and the bug the
# chapter showed this check cannot see.

# %% tags=["answer", "q1"]
def expected_initial_loss(num_classes):
    """``ln(num_classes)``: the cross-entropy of a uniform guess."""
    ### BEGIN SOLUTION
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"expected_initial_loss: num_classes must be an int >= 2, "
                         f"got {num_classes!r}")
    return math.log(num_classes)
    ### END SOLUTION


def initial_loss_verdict(model, x, y, num_classes, *, rtol=0.2):
    """``(loss, verdict)``: the mean cross-entropy of ``model`` on ``(x, y)`` and
    ``"ok"``, ``"too high"`` or ``"too low"`` against ``ln(num_classes)``."""
    ### BEGIN SOLUTION
    expected = expected_initial_loss(num_classes)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss = F.cross_entropy(model(x), y).item()
    finally:
        model.train(was_training)
    ratio = loss / expected
    if abs(ratio - 1) <= rtol:
        return loss, "ok"
    return loss, "too high" if ratio > 1 else "too low"
    ### END SOLUTION


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (5 points, standard): overfit a tiny subset
#
# Before a long run, train the network on a handful of examples alone: a network with
# thousands of parameters can memorise twenty examples, and if it cannot, something is
# broken. Write `overfit_curve(model, x, y, *, n=20, steps=100, lr=1e-2)`:
#
# - take the first `n` examples of `(x, y)` and train `model` on them (in place, in training
#   mode) with `torch.optim.Adam(model.parameters(), lr=lr)`, one full batch of the `n`
#   examples per step, on the mean cross-entropy, for `steps` steps;
# - return the training accuracy on those `n` examples as a list of `steps + 1` Python
#   floats: before the first update, then after each update (do not stop early).
#
# The tests use networks that can memorise their subset (your curve must reach 1.0 within
# the budget) and one whose output does not depend on its input (its curve must not: it
# can at best predict the most frequent class). They also check the first entry exactly: the
# accuracy of the untrained network on the first `n` examples.

# %% tags=["answer", "q2"]
def overfit_curve(model, x, y, *, n=20, steps=100, lr=1e-2):
    """Training accuracy on the first ``n`` examples before and after each of ``steps``
    full-batch Adam updates: a list of ``steps + 1`` floats."""
    ### BEGIN SOLUTION
    x, y = x[:n], y[:n]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    curve = []
    for step in range(steps + 1):
        out = model(x)  # (n, K)
        curve.append((out.argmax(dim=1) == y).float().mean().item())
        if step == steps:  # the last forward pass only measures
            break
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return curve
    ### END SOLUTION


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (5 points, standard): the update-to-weight ratio
#
# A rule of thumb for the learning rate looks at each layer's step relative to its weights:
# $\lVert \Delta W \rVert / \lVert W \rVert$ (Frobenius norms) near $10^{-3}$ per step is
# healthy, far below it the layer hardly moves, far above it each step rewrites the layer.
# Write `update_ratios(model, x, y, lr)`: take ONE step of plain SGD (no momentum, no weight
# decay) on the mean cross-entropy of the batch `(x, y)`, in training mode, and return a dict
# `{layer name: ||ΔW|| / ||W||}`, $W$ the weights before the step, for every module of
# `model.named_modules()` whose `weight` parameter has two or more dimensions (convolutions
# and linear layers; not BatchNorm, not biases), keyed by the module's name (`"0"`,
# `"features.3"`, ...). Whether the step is applied to `model` is up to you: the tests
# read the dict only.
#
# **Careful:** the model may arrive with gradients of an earlier batch in its `.grad`
# (PyTorch *adds* new gradients to them). The step must use this batch's gradient only.
# The tests use float64 networks and compare your ratios with ours to 6 digits.

# %% tags=["answer", "q3"]
def update_ratios(model, x, y, lr):
    """``{layer name: ||ΔW|| / ||W||}`` for one plain SGD step on the batch ``(x, y)``."""
    ### BEGIN SOLUTION
    weights = {name: m.weight for name, m in model.named_modules()
               if isinstance(getattr(m, "weight", None), nn.Parameter) and m.weight.ndim >= 2}
    before = {name: w.detach().clone() for name, w in weights.items()}
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    opt.zero_grad()  # drop the gradients of an earlier batch
    F.cross_entropy(model(x), y).backward()
    opt.step()
    return {name: ((w.detach() - before[name]).norm() / before[name].norm()).item()
            for name, w in weights.items()}
    ### END SOLUTION


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# ## Question 4 (8 points, challenge): an occlusion map
#
# Which pixels does a decision depend on? Cover a `patch` x `patch` square of the image with
# the value `fill`, and measure how much the probability of class `target` drops; slide the
# square over the image with step `stride` (Zeiler and Fergus, 2014). Write
# `occlusion_map(model, x, target, *, patch=4, stride=1, fill=0.0)` for one image `x` of
# shape `(C, H, W)` (a tensor) and a classifier returning logits `(N, K)`:
#
# - entry `(i, j)` of the map is $p(\text{target} \mid x) - p(\text{target} \mid x')$, where
#   $x'$ is `x` with every channel of rows `i*stride` to `i*stride + patch - 1` and columns
#   `j*stride` to `j*stride + patch - 1` set to `fill`, and $p$ the softmax of the logits;
# - the map has `H_out = (H - patch) // stride + 1` rows and `W_out` columns alike: every
#   position where the whole square fits, the last ones included;
# - run the model in evaluation mode, without gradients (restore its mode afterwards), and
#   return a float64 NumPy array `(H_out, W_out)`;
# - raise `ValueError` unless `1 <= patch <= min(H, W)` and `stride >= 1`.
#
# A plain double loop over the positions is fine (and what we grade against, on tiny
# networks); scoring all covered images in one batch is faster. The hidden tests use
# non-square images with three channels, strides that do not divide `H - patch`, a patch
# as tall as the image, and a network with dropout and BatchNorm.

# %% tags=["answer", "q4"]
def occlusion_map(model, x, target, *, patch=4, stride=1, fill=0.0):
    """``(H_out, W_out)`` float64: the drop in ``p(target)`` when each ``patch`` x
    ``patch`` square (step ``stride``) of ``x`` is set to ``fill``."""
    ### BEGIN SOLUTION
    c, h, w = x.shape
    if not 1 <= patch <= min(h, w):
        raise ValueError(f"occlusion_map: patch must be in [1, {min(h, w)}], got {patch}")
    if stride < 1:
        raise ValueError(f"occlusion_map: stride must be >= 1, got {stride}")
    h_out, w_out = (h - patch) // stride + 1, (w - patch) // stride + 1
    drops = np.zeros((h_out, w_out))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            base = F.softmax(model(x[None]), dim=1)[0, target]
            for i, top in enumerate(range(0, h - patch + 1, stride)):
                for j, left in enumerate(range(0, w - patch + 1, stride)):
                    covered = x.clone()
                    covered[:, top:top + patch, left:left + patch] = fill
                    p = F.softmax(model(covered[None]), dim=1)[0, target]
                    drops[i, j] = (base - p).item()
    finally:
        model.train(was_training)
    return drops
    ### END SOLUTION


# %% tags=["check", "q4"]
check("q4")

# %% [markdown]
# Try your map on a real network (a demo cell: the grader never runs it). It trains a small
# CNN on the 8x8 digits for a few seconds and shows, for one test digit, where covering
# the image costs the true class most.

# %% tags=["demo"]
import matplotlib.pyplot as plt  # noqa: E402

from d2lcnn.data import load_digits  # noqa: E402

digits_x, digits_y = load_digits()  # (1797, 1, 8, 8) in [0, 1], labels 0-9
digits_x, digits_y = torch.as_tensor(digits_x), torch.as_tensor(digits_y)
torch.manual_seed(0)
demo_net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 10))
demo_opt = torch.optim.Adam(demo_net.parameters(), lr=1e-2)
for _ in range(3):  # three epochs on the first 1,500 digits
    for idx in torch.randperm(1500).split(50):
        demo_loss = F.cross_entropy(demo_net(digits_x[idx]), digits_y[idx])
        demo_opt.zero_grad()
        demo_loss.backward()
        demo_opt.step()
digit, label = digits_x[1600], int(digits_y[1600])
try:
    drop = occlusion_map(demo_net, digit, label, patch=3)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), layout="constrained")
    axes[0].imshow(digit[0], cmap="gray")
    axes[0].set(title=f"a test digit ({label})")
    shown = axes[1].imshow(drop, cmap="magma", extent=(0.5, 6.5, 6.5, 0.5))
    axes[1].set(title=f"drop in p({label}), 3x3 patches", xlim=(-0.5, 7.5), ylim=(7.5, -0.5))
    fig.colorbar(shown, ax=axes[1])
    plt.show()
except NotImplementedError:
    print("finish question 4 first")

# %% [markdown]
# The next demo cell trains the same two-layer network on the 8x8 digits three times (SGD
# with momentum 0.9, batches of 32, four epochs) and plots the training loss of every step:
# runs A, B and C differ only in the learning rate. (The code says which is which; look at
# the curves first.) If your question 3 works, it also prints each run's update-to-weight
# ratios of the first step. Question 5 asks you to read the curves.

# %% tags=["demo"]
def run_digits(lr, epochs=4, seed=0):
    """Per-step training losses of a 64-64-10 network, SGD with momentum, on the digits."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    ratios = None
    try:
        ratios = update_ratios(net, digits_x[:32], digits_y[:32], lr)
        torch.manual_seed(seed)  # the same network again, for the run itself
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    except NotImplementedError:
        pass
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    order = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        for idx in torch.randperm(len(digits_y), generator=order).split(32):
            loss = F.cross_entropy(net(digits_x[idx]), digits_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses, ratios


curves = {"A": run_digits(0.05), "B": run_digits(1.0), "C": run_digits(1e-3)}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained", sharey=True)
for ax, (name, (losses, ratios)) in zip(axes, curves.items(), strict=True):
    ax.plot(losses, lw=0.8)
    ax.axhline(math.log(10), color="k", ls=":", lw=1, label="ln 10")
    ax.set(yscale="log", title=f"run {name}", xlabel="step", ylabel="training loss")
    ax.legend()
    if ratios is not None:
        print(f"run {name}: first-step ||ΔW|| / ||W|| per layer:",
              ", ".join(f"{layer} {r:.1e}" for layer, r in ratios.items()))
plt.show()

# %% [markdown]
# ## Question 5 (4 points, standard): three learning rates
#
# Runs A, B and C above trained the same network on the same data; one learning rate was
# too high, one too low, one about right. In five to ten sentences: (a) which run had which
# learning rate, and for each, which features of its curve tell you (where it starts, how
# fast and how steadily it falls, where it ends); (b) why the curve of the run with the
# largest learning rate ends where it does, near $\ln 10 \approx 2.3$, rather than at
# infinity or near zero; (c) for each run, what you would try next, and what the
# update-to-weight ratios of the first step say about the three learning rates.

# %% [markdown] tags=["written", "q5"]
# _Write your answer here._
# ### BEGIN SOLUTION
# (a) Run A is about right (0.05): it starts at $\ln 10$, falls steeply within the first
# 50 steps and keeps falling, with the batch-to-batch noise of SGD, to about 0.1. Run C is
# too low (0.001): it also starts at $\ln 10$ but falls so slowly that after four epochs it
# is still near 2.2, a smooth, almost flat line with no sign of levelling off: every step is
# too small. Run B is too high (1.0): it is ragged from the first steps, jumps above
# $\ln 10$, dips for a moment (to about 0.5) and then climbs back and stays, noisy, around
# $\ln 10$ for the rest of the run, no better than at the start. (b) The large steps throw
# the hidden layer's weights and biases so far that its ReLU units get a negative input for
# every digit: at the end of run B, 62 of the 64 hidden units output 0 for all of them
# (dead), and a dead unit gets no gradient, so it never recovers. With (almost) no working
# units the output hardly depends on the input, and the best an input-independent output
# can do is predict the class frequencies, which for ten nearly balanced classes costs
# $\ln 10$: the loss settles there instead of diverging, and cannot fall further. (c) A:
# keep it, train longer or add a decaying schedule. B: divide the learning rate by 10 or
# more (or warm up). C: multiply it by 10 or more (search on a log scale). The first-step
# ratios scale with the learning rate: about $10^{-4}$ for C (the layers hardly move), a
# few $10^{-3}$ for A (at the rule of thumb of $10^{-3}$), and about $10^{-1}$ for B (each
# step rewrites a tenth of a layer).
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q5"]
# points: 4
# - 1 point: (a) A about right, C too low, B too high, each with a feature of its curve
#   (A: fast then steady decline; C: slow, almost flat, still high; B: ragged from the
#   start, back at ln 10 and stuck there). Half a point if the assignment is right but no
#   curve feature is given.
# - 1 point: (b) the large steps kill (or saturate) the units so that the output no longer
#   depends on the input; the best such output predicts the class frequencies, loss about
#   ln 10. Half a point for "it diverged" with a plateau explained only vaguely.
# - 1 point: (c) a sensible next step for each run (B: lower by a factor of 10 or more;
#   C: raise by 10 or more; A: keep, longer or with a schedule).
# - 1 point: (c) the update ratios grow with the learning rate, C far below the rule of
#   thumb, B far above it (orders of magnitude, not exact numbers).

# %% [markdown]
# ## Submit
#
# Save the notebook (Ctrl+S), then run the next cell. It copies the saved notebook into
# `<assignment>.submission.ipynb` next to it and prints that file's name: upload that
# file. (If it cannot tell which notebook is yours, it says so: pass the name, as in
# `submit("my-copy.ipynb")`.)

# %%
submit()


# %% tags=["tests", "public"]
import torch
import torch.nn.functional as F
from torch import nn


def _tensor(a, dtype=torch.float32):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def _balanced_labels(rng, n, k):
    """``n`` labels in ``0..k-1``, every class present (in any first ``k`` or more rows the
    counts are close), in a random order."""
    return torch.as_tensor(rng.permutation(np.arange(n) % k), dtype=torch.int64)


def _mlp(d_in, k, hidden=32):
    return nn.Sequential(nn.Flatten(), nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, k))


def _small_cnn(c_in, k, side):
    return nn.Sequential(nn.Conv2d(c_in, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * (side // 2) ** 2, k))


def _verdicts(ns, cases):
    """``[[loss, verdict], ...]`` for ``(model, x, y, num_classes)`` tuples."""
    out = []
    for model, x, y, k in cases:
        loss, verdict = ns.initial_loss_verdict(model, x, y, k)
        out.append([float(loss), str(verdict)])
    return out


def _curve_ok(reach):
    """Checker for q2: ``steps + 1`` accuracies, multiples of 1/n; the first one exactly
    the reference's (the untrained network on the first n examples); and, if ``reach``, a
    curve that reaches 1.0, otherwise one that never beats the most frequent class."""

    def check(got, expected):
        g, e = np.asarray(got), np.asarray(expected["curve"])
        n = expected["n"]
        if g.dtype.kind not in "biuf" or g.shape != e.shape:
            return False, f"expected a list of {len(e)} accuracies (steps + 1), got shape " \
                          f"{g.shape}"
        if not np.allclose(g * n, np.round(g * n), atol=1e-6) or g.min() < 0 or g.max() > 1:
            return False, f"accuracies on {n} examples are multiples of 1/{n} in [0, 1]"
        if abs(g[0] - e[0]) > 1e-6:
            return False, f"before any update: expected accuracy {e[0]:.3f} (the untrained " \
                          f"network on the first {n} examples), got {g[0]:.3f}"
        if reach:
            return bool(g.max() == 1.0), f"best accuracy {g.max():.3f} (this network can " \
                                         "memorise the subset: 1.0 within the budget)"
        ceiling = expected["largest_class"]
        return bool(g.max() <= ceiling + 1e-6), (
            f"best accuracy {g.max():.3f} (an output that ignores the input cannot beat "
            f"the most frequent class, {ceiling:.3f})")

    check.__name__ = f"curve_ok(reach={reach})"
    return check


def _overfit(ns, model, x, y, *, n, steps, lr=1e-2):
    curve = ns.overfit_curve(model, x, y, n=n, steps=steps, lr=lr)
    largest = np.bincount(y[:n].numpy()).max() / n
    return {"curve": np.asarray(curve, dtype=np.float64), "n": n,
            "largest_class": float(largest)}


def _curve_only(checker):
    """The q2 checkers read ``n`` and the class share from the expected output; the probe
    returns them too, but only the curve is the student's."""

    def check(got, expected):
        if not isinstance(got, dict) or "curve" not in got:
            return False, "expected the accuracy curve"
        return checker(got["curve"], expected)

    check.__name__ = checker.__name__
    return check


def _ratios(ns, model, x, y, lr):
    r = ns.update_ratios(model, x, y, lr)
    if not isinstance(r, dict):
        return r
    return {str(k): float(v) for k, v in r.items()}


def _occlusion(ns, model, x, target, **kw):
    return np.asarray(ns.occlusion_map(model, x, target, **kw), dtype=np.float64)


@case("q1", "ln K for K = 2, 10 and 1000", points=1,
      hint="math.log is the natural logarithm: ln 10 = 2.303")
def _(ns, rng):
    return [float(ns.expected_initial_loss(k)) for k in (2, 10, 1000)]


@case("q1", "a default-initialised MLP is ok; its last layer x 30 is too high", points=1,
      checker=checks.close(rtol=1e-5, atol=1e-7),
      hint="F.cross_entropy(model(x), y) under torch.no_grad(), in model.eval(); compare "
           "loss / ln K with 1 +- rtol")
def _(ns, rng):
    torch.manual_seed(0)
    x, y = _tensor(rng.standard_normal((64, 12))), _balanced_labels(rng, 64, 10)
    good, hot = _mlp(12, 10), _mlp(12, 10)
    with torch.no_grad():
        hot[-1].weight.mul_(30)
    return _verdicts(ns, [(good, x, y, 10), (hot, x, y, 10)])


@case("q2", "an MLP memorises 20 of 40 random examples within 100 steps", points=1,
      checker=_curve_only(_curve_ok(reach=True)), timeout=60,
      hint="x[:n], y[:n]; measure the accuracy, then zero_grad, backward, step; "
           "steps + 1 entries")
def _(ns, rng):
    torch.manual_seed(0)
    x, y = _tensor(rng.standard_normal((40, 1, 8, 8))), _balanced_labels(rng, 40, 5)
    return _overfit(ns, _mlp(64, 5), x, y, n=20, steps=100)


@case("q3", "an MLP in float64: one ratio per Linear layer", points=1,
      hint="opt.zero_grad(), the loss's backward(), then ||lr * grad|| / ||W|| per layer "
           "(or copy W, opt.step(), and compare)")
def _(ns, rng):
    torch.manual_seed(0)
    model = _mlp(10, 4).double()
    x = _tensor(rng.standard_normal((16, 10)), torch.float64)
    return _ratios(ns, model, x, _balanced_labels(rng, 16, 4), 0.1)


@case("q4", "a small CNN, 8x8 image, 3x3 patch, stride 1", points=1,
      checker=checks.close(rtol=1e-5, atol=1e-8),
      hint="H_out = (H - patch) // stride + 1; positions top = i * stride; p = "
           "softmax(model(x[None]))[0, target] before and after covering")
def _(ns, rng):
    torch.manual_seed(0)
    model = _small_cnn(1, 3, 8).double()
    x = _tensor(rng.standard_normal((1, 8, 8)), torch.float64)
    return _occlusion(ns, model, x, 1, patch=3)


# %% tags=["tests", "hidden"]
# Plausible wrong answers, and what they score (tests/grading/test_hw8.py):
# q1: K read off the width of the model's output instead of num_classes: the network with
#     100 outputs for 10 classes passes as "ok": 5 of 7.
# q2: trains on the first n examples but measures the accuracy on all of x: never reaches
#     1.0 on the learnable networks: 2 of 5 (the input-independent case, where x holds
#     exactly n examples, still passes).
# q3: no zero_grad: the stale gradient of an earlier batch is added to this one's: 3 of 5.
# q4: positions range(0, H - patch, stride): the last row and column of positions (the
#     patch at the border) are missed: 0 of 8.
class _BatchMean(nn.Module):
    """An MLP whose hidden layer is averaged over the BATCH: every example gets the same
    output, whatever its input (the chapter's one-character bug)."""

    def __init__(self, d_in, k):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(d_in, 32), nn.ReLU())
        self.head = nn.Linear(32, k)

    def forward(self, x):
        h = self.body(x)  # (N, 32)
        return self.head(h.mean(dim=0, keepdim=True).expand_as(h))


def _leaky_batch(rng, n, k, d):
    """Inputs whose first k features are 5 x one-hot(label), and a linear model that reads
    them: it scores the right class before any training."""
    y = _balanced_labels(rng, n, k)
    x = torch.cat([5 * F.one_hot(y, k).float(), _tensor(rng.standard_normal((n, d)))], dim=1)
    model = nn.Linear(k + d, k)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[:, :k] = torch.eye(k)
    return model, x, y


@case("q1", "default init ok, last layer x 50 too high, a label leak too low", points=2,
      checker=checks.close(rtol=1e-5, atol=1e-7))
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    x, y = _tensor(rng.standard_normal((100, 3, 6, 6))), _balanced_labels(rng, 100, 7)
    good, hot = _small_cnn(3, 7, 6), _small_cnn(3, 7, 6)
    with torch.no_grad():
        hot[-1].weight.mul_(50)
        hot[-1].bias.mul_(50)
    leak = _leaky_batch(rng, 80, 7, 9)
    return _verdicts(ns, [(good, x, y, 7), (hot, x, y, 7), (*leak, 7)])


@case("q1", "100 outputs for 10 classes is too high; a double softmax passes (blind spot)",
      points=2, checker=checks.close(rtol=1e-5, atol=1e-7))
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    x, y = _tensor(rng.standard_normal((120, 20))), _balanced_labels(rng, 120, 10)
    wide, twice = _mlp(20, 100), nn.Sequential(_mlp(20, 10), nn.Softmax(dim=1))
    return _verdicts(ns, [(wide, x, y, 10), (twice, x, y, 10)])


@case("q1", "dropout in training mode: scored in eval mode, mode restored, no .grad; "
      "num_classes = 1 refused", points=1, checker=checks.close(rtol=1e-5, atol=1e-7))
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 5))
    with torch.no_grad():
        model[-1].weight.mul_(8)  # loud enough that dropout changes the loss a lot
    model.train()
    x, y = _tensor(rng.standard_normal((60, 16))), _balanced_labels(rng, 60, 5)
    result = _verdicts(ns, [(model, x, y, 5)])
    grads = any(p.grad is not None for p in model.parameters())
    return [result, bool(model.training), bool(model[2].training), grads,
            checks.raised(lambda: ns.expected_initial_loss(1))]


@case("q2", "a small CNN memorises 16 of 48 examples within 150 steps", points=2,
      checker=_curve_only(_curve_ok(reach=True)), timeout=60)
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    x, y = _tensor(rng.standard_normal((48, 1, 8, 8))), _balanced_labels(rng, 48, 5)
    return _overfit(ns, _small_cnn(1, 5, 8), x, y, n=16, steps=150)


@case("q2", "an input-independent network cannot beat its most frequent class", points=2,
      checker=_curve_only(_curve_ok(reach=False)), timeout=60)
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    x = _tensor(rng.standard_normal((20, 1, 8, 8)))
    y = torch.as_tensor(rng.integers(0, 5, size=20), dtype=torch.int64)  # unbalanced
    return _overfit(ns, _BatchMean(64, 5), x, y, n=20, steps=60)


@case("q3", "a float64 CNN with BatchNorm and nested modules, lr 0.03", points=2)
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6),
                      nn.ReLU(), nn.MaxPool2d(2)),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    x = _tensor(rng.standard_normal((12, 2, 8, 8)), torch.float64)
    return _ratios(ns, model, x, _balanced_labels(rng, 12, 3), 0.03)


@case("q3", "stale gradients of an earlier batch in .grad are not this step's", points=2)
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    model = _mlp(12, 5, hidden=20).double()
    earlier = _tensor(rng.standard_normal((8, 12)), torch.float64)
    F.cross_entropy(model(earlier), _balanced_labels(rng, 8, 5)).backward()  # left in .grad
    x = _tensor(rng.standard_normal((10, 12)), torch.float64)
    return _ratios(ns, model, x, _balanced_labels(rng, 10, 5), 0.5)


@case("q4", "3 channels, 11x13, patch 3, stride 2: the last patches touch the border",
      points=2, checker=checks.close(rtol=1e-5, atol=1e-8))
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 9 * 11, 4)).double()
    x = _tensor(rng.standard_normal((3, 11, 13)), torch.float64)
    return _occlusion(ns, model, x, 2, patch=3, stride=2, fill=0.0)


@case("q4", "10x9, patch 4, stride 3 (does not divide H - patch), fill 0.5", points=2,
      checker=checks.close(rtol=1e-5, atol=1e-8))
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    model = _mlp(90, 3, hidden=16).double()
    x = _tensor(rng.standard_normal((1, 10, 9)), torch.float64)
    return _occlusion(ns, model, x, 0, patch=4, stride=3, fill=0.5)


@case("q4", "dropout and BatchNorm in training mode, a patch as tall as the image", points=2,
      checker=checks.close(rtol=1e-5, atol=1e-8))
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 6 * 9, 5)).double()
    model.train()
    with torch.no_grad():
        model(_tensor(rng.standard_normal((16, 2, 6, 9)), torch.float64))  # running stats
    x = _tensor(rng.standard_normal((2, 6, 9)), torch.float64)
    drops = _occlusion(ns, model, x, 4, patch=6, stride=1)
    return [drops, bool(model.training)]


@case("q4", "patch larger than the image and stride 0 are refused", points=1,
      checker=checks.close(rtol=1e-5, atol=1e-8))
def _(ns, rng):
    torch.manual_seed(int(rng.integers(2**31)))
    model = _mlp(25, 2, hidden=8).double()
    x = _tensor(rng.standard_normal((1, 5, 5)), torch.float64)
    return [_occlusion(ns, model, x, 1, patch=2, stride=3),  # (2, 2): rows 0-1, 3-4
            checks.raised(lambda: ns.occlusion_map(model, x, 1, patch=6)),
            checks.raised(lambda: ns.occlusion_map(model, x, 1, patch=2, stride=0))]


# %% tags=["autograder"]
settings(
    # The package's versions of this homework's tools are blocked: the answers are the
    # student's own. torch is preloaded (it takes seconds to import).
    forbid=["d2lcnn.diagnostics", "d2lcnn.viz", "d2lcnn.train", "d2lcnn.torch", "torchvision"],
    preload=["torch"],
    case_timeout=30,
    cell_timeout=60,
    memory_mb=4096,
)
