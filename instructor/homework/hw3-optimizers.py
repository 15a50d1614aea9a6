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
# # Homework 3: Optimizers, a schedule, and training a CNN
#
# **Follows:** [chapter 4, Optimizers, learning-rate schedules and hyperparameter
# search](../../04-optimization.ipynb)
# **Estimated time:** 5–7 hours (a first draft, not yet timed on students: the reference
# solution is 102 lines, at about 3 minutes a line for a first encounter, plus an hour or two
# of training runs for q5, each about a minute on a laptop's CPU, and about 30 minutes for
# q8's plot and q9's written analysis)
#
# **Learning goals.** After this assignment you can
#
# - write SGD with momentum, RMSProp, Adam with bias correction and AdamW (decoupled
#   weight decay) as PyTorch defines them, and tell AdamW from Adam with an L2 penalty;
# - schedule the learning rate with a linear warmup and a cosine decay;
# - wrap an update rule in an optimizer object and train a small CNN with it to a target
#   accuracy on data it has never seen, within a time budget;
# - run an experiment (initialization scale x learning rate, with and without BatchNorm),
#   plot it, and explain what it shows.
#
# Chapter 04 races the optimizers on a surface and on a CNN. Here you write the update rules
# yourself and then use them to train a network in NumPy:
#
# | question | what you write | points |
# | --- | --- | --- |
# | q1 | `sgd_momentum_step`: SGD with momentum (PyTorch's form) | 6 |
# | q2 | `adam_step`: Adam with bias correction | 8 |
# | q3 | `warmup_cosine_lr`: linear warmup, then cosine decay | 6 |
# | q4 | `Adam`: an optimizer object that updates a model's parameters in place | 4 |
# | q5 | `train_and_predict`: train a small CNN on moving digits; graded on held-out ones | 10 |
# | q6 | `rmsprop_step`: RMSProp | 4 |
# | q7 | `adamw_step`: AdamW, Adam with decoupled weight decay | 6 |
# | q8 | written: a figure, initialization scale x learning rate, with and without BatchNorm | 2 |
# | q9 | written: what the figure shows | 4 |
#
# **Rules.** Use NumPy and the package's *layers* (`d2lcnn.numpy.nn`: `Conv2d`, `Linear`,
# `ReLU`, `MaxPool2d`, `BatchNorm2d`, `Sequential`, ...). The things you implement here are
# blocked when your notebook is graded: `torch`, the package's optimizers
# (`d2lcnn.numpy.optim`, `d2lcnn.torch`), schedules (`d2lcnn.schedules`) and training loop
# (`d2lcnn.train`); so are the package's data sets (`d2lcnn.data`) and scikit-learn: q5's
# data come from the grader, so import `d2lcnn.data` only in the demo cell that is already
# there (the grader does not run it).
# Write your code where it says `# YOUR CODE HERE`; do not rename the functions or change
# their arguments. Run `check("qN")` after each answer. The grade also uses hidden tests, and
# q5 is graded by the accuracy of your predictions on digits that are not in your training
# set (full marks from 85%, nothing below 60%), within a time limit of 90 s of CPU.
# Questions 8 and 9 are graded by hand: q8 is the figure your code cell draws (the grader
# looks at the output you saved, so run the cell before saving), q9 the markdown cell under
# its question. When you are done, save the notebook and run `submit()`.

# %%
import time

import numpy as np

from d2lcnn.numpy import nn
from d2lcnn.numpy.losses import cross_entropy_backward, cross_entropy_forward

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw3-optimizers", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# ## Question 1 (6 points, guided): SGD with momentum
#
# Plain SGD steps along the current gradient only, so on a long narrow valley it zig-zags
# across and crawls along. Momentum keeps a velocity $v$, a running sum of past gradients,
# and steps along it. Use PyTorch's form (the lecture shows it is the same as
# $v \leftarrow \rho v - \alpha g,\ w \leftarrow w + v$ up to a rescaling of $v$):
#
# $$v \leftarrow \rho\, v + g, \qquad w \leftarrow w - \alpha\, v .$$
#
# Return NEW arrays `(w, v)`; do not modify the arguments.

# %% tags=["answer", "q1"]
def sgd_momentum_step(w, dw, v, *, lr, momentum=0.9):
    """One step: ``w, v = sgd_momentum_step(w, dw, v, lr=0.1, momentum=0.9)``."""
    ### BEGIN SOLUTION
    v = momentum * v + dw
    w = w - lr * v
    ### END SOLUTION
    return w, v


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (8 points, guided): Adam
#
# Adam keeps running averages of the gradient ($m$, the momentum) and of its square ($v$, as
# RMSProp) and divides one by the square root of the other. Both start at zero, so in the
# first steps they are biased toward zero; dividing by $1 - \beta^t$ removes the bias. With
# the step counter $t = 1, 2, \ldots$:
#
# $$m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad v \leftarrow \beta_2 v + (1 - \beta_2) g^2,
# \quad \hat m = \frac{m}{1 - \beta_1^t}, \quad \hat v = \frac{v}{1 - \beta_2^t},
# \quad w \leftarrow w - \alpha \frac{\hat m}{\sqrt{\hat v} + \epsilon}.$$
#
# Return NEW arrays `(w, m, v)`. Think about what the first step would look like without the
# correction: with $\beta_2 = 0.999$, $\sqrt{v}$ is about $0.03\,|g|$, and the step is about
# $3$ times too large (the hidden tests look at the first step).

# %% tags=["answer", "q2"]
def adam_step(w, dw, m, v, t, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Step ``t`` (from 1): ``w, m, v = adam_step(w, dw, m, v, t, lr=1e-3)``."""
    ### BEGIN SOLUTION
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw * dw
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    ### END SOLUTION
    return w, m, v


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (6 points, standard): A learning-rate schedule: warmup, then cosine
#
# Large learning rates at the very start, when the weights are random and Adam's statistics
# are poor, can throw training off; a short linear warmup avoids that. After it, cosine decay
# lowers the rate smoothly to `min_lr`. For step $s = 0, 1, \ldots$ with $W$ warmup steps and
# $T$ total steps:
#
# $$\text{lr}(s) = \begin{cases}
# \text{lr} \cdot \dfrac{s + 1}{W} & s < W \\[1ex]
# \text{min\_lr} + \dfrac{\text{lr} - \text{min\_lr}}{2}
#   \left(1 + \cos\dfrac{\pi (s - W)}{T - W}\right)
# & W \le s < T \\[1ex]
# \text{min\_lr} & s \ge T
# \end{cases}$$
#
# Raise `ValueError` if `warmup_steps < 0`, `total_steps <= warmup_steps` or `step < 0`.

# %% tags=["answer", "q3"]
def warmup_cosine_lr(step, *, lr, warmup_steps, total_steps, min_lr=0.0):
    """The learning rate at ``step`` (a float)."""
    ### BEGIN SOLUTION
    if warmup_steps < 0 or total_steps <= warmup_steps or step < 0:
        raise ValueError(f"need 0 <= warmup_steps < total_steps and step >= 0, got "
                         f"step={step}, warmup_steps={warmup_steps}, total_steps={total_steps}")
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (lr - min_lr) * 0.5 * (1 + np.cos(np.pi * progress))
    ### END SOLUTION


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# ## Question 4 (4 points, standard): An optimizer object
#
# A training loop needs the update rule wrapped around a model's parameters. The package's
# NumPy models expose them as a dict of arrays, `model.parameters()` (name -> array), and
# after `model.backward(...)` the gradients as `model.gradients()` (same names). Write a class
# `Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)` whose `step(grads)` applies your
# `adam_step` to every parameter and writes the result INTO the parameter arrays
# (`p[...] = new_p`, so the model sees it), keeping one `m`, `v` per parameter and one step
# counter. The attribute `lr` must be settable between steps (that is how a schedule drives
# it). A training loop calls `step` once per minibatch, right after `model.backward(...)`,
# with the model's gradients; `d2lcnn.numpy.nn.train_epoch(model, opt, ...)` does exactly that.

# %% tags=["answer", "q4"]
class Adam:
    """``opt = Adam(model.parameters(), lr=1e-3)``; ``opt.step(model.gradients())``."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        ### BEGIN SOLUTION
        self.params = params
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0
        ### END SOLUTION

    def step(self, grads):
        ### BEGIN SOLUTION
        self.t += 1
        for k, p in self.params.items():
            new_p, self.m[k], self.v[k] = adam_step(
                p, grads[k], self.m[k], self.v[k], self.t, lr=self.lr, beta1=self.betas[0],
                beta2=self.betas[1], eps=self.eps)
            p[...] = new_p
        ### END SOLUTION


# %% tags=["check", "q4"]
check("q4")

# %% [markdown]
# ## Question 5 (10 points, challenge): Train a CNN on digits that move
#
# Write `train_and_predict(x_train, y_train, x_test)`: build a small CNN from
# `d2lcnn.numpy.nn` layers, train it on `(x_train, y_train)` with your `Adam` (and, if you
# like, your schedule: set `opt.lr` before each epoch or step), and return the predicted
# class of every image of `x_test` as an integer array of shape `(len(x_test),)`. Inputs are
# float32 arrays `(N, 1, 28, 28)` with values in `[0, 1]`; labels are integers 0–9.
#
# **What is graded.** The grader makes the data itself, with a seed you do not have: it
# splits the 1,797 real 8x8 digits into about 1,440 training and 360 test digits, upsamples
# each to a random side of 10–12 pixels and pastes it at a random position of a black
# 28x28 canvas (`d2lcnn.data.translated_digits` does the same), then adds one to three
# small specks of ink (pieces of other digits) away from the digit. It calls your function
# with about 1,440 such training images and scores the accuracy of your predictions on
# about 360 images made from the test digits: full marks from 85%, linear down to nothing
# at 60%. All 10 points come from there; `check("q5")` only tells you whether your function
# works at all (right format, learns an easy task of ten coarse patterns) and is worth none.
#
# **What to expect.** The position of the digit changes from image to image, so
# pixel-space methods fail here. Measured on the grader's kind of data: nearest neighbour
# gets about 30%, logistic regression about 10%, and even a CNN that ends in `Flatten` +
# `Linear` over the whole 7x7 map (so every position has its own weights) only 49–59%. A
# CNN of two 3x3 convolution blocks (each with ReLU and 2x2 max pooling) followed by a max
# over all remaining positions (`nn.MaxPool2d(7)`: global max pooling, which does not care
# where a feature was found) and one `Linear`, trained with Adam, gets 89–94% with 16 and 32
# channels and 12 epochs (about 3.5 s of CPU), and 95–98% with 32 and 64 channels, 20 epochs
# and each minibatch shifted by a pixel or two (augmentation; about 14 s of CPU).
# Seed your generators (`np.random.default_rng(0)`) so that your result is
# reproducible; the call must finish within 90 s of CPU. Below, try it on a validation split
# first.

# %% tags=["answer", "q5"]
def train_and_predict(x_train, y_train, x_test):
    """Train a small CNN on the digits and return its predicted labels for ``x_test``."""
    ### BEGIN SOLUTION
    rng = np.random.default_rng(0)
    side = x_train.shape[2] // 4  # the map's side after two 2x2 poolings (7 for 28x28)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, rng=rng), nn.ReLU(),   # (N, 32, 28, 28)
        nn.MaxPool2d(2),                                      # (N, 32, 14, 14)
        nn.Conv2d(32, 64, 3, padding=1, rng=rng), nn.ReLU(),  # (N, 64, 14, 14)
        nn.MaxPool2d(2),                                      # (N, 64, 7, 7)
        nn.MaxPool2d(side),  # global max pooling: where the digit is no longer matters
        nn.Flatten(), nn.Linear(64, 10, rng=rng),             # (N, 10)
    )
    opt = Adam(model.parameters(), lr=3e-3)
    epochs, batch_size = 20, 32
    steps = epochs * -(-len(x_train) // batch_size)
    schedule = dict(lr=3e-3, warmup_steps=steps // 10, total_steps=steps)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(x_train), batch_size):
            idx = order[start:start + batch_size]
            shift = rng.integers(-2, 3, size=2)  # augmentation: move the batch a little
            xb = np.roll(x_train[idx], (int(shift[0]), int(shift[1])), axis=(2, 3))
            opt.lr = warmup_cosine_lr(step, **schedule)
            logits = model.forward(xb, training=True)
            loss, cache = cross_entropy_forward(logits, y_train[idx])
            model.backward(cross_entropy_backward(np.ones((), logits.dtype), cache))
            grads = model.gradients()
            opt.step(grads)
            step += 1
    preds = [model.forward(x_test[i:i + 500], training=False).argmax(axis=1)
             for i in range(0, len(x_test), 500)]
    return np.concatenate(preds).astype(np.int64)
    ### END SOLUTION


# %% tags=["check", "q5"]
check("q5")

# %% [markdown]
# Try it on data like the grader's (without the specks), made from your own split: the
# validation images are built from digits that are not in the training images. This cell is
# a demo cell, so the grader never runs it (`d2lcnn.data` is blocked there).

# %% tags=["demo"]
from d2lcnn.data import load_digits, translated_digits

digits_x, digits_y = load_digits()
val_rng = np.random.default_rng(1)
val_pick = val_rng.permutation(len(digits_y))
val_src, train_src = val_pick[:360], val_pick[360:]
demo_x_train, demo_y_train = translated_digits(
    len(train_src), size=28, digit_size=(10, 12), seed=2,
    source=(digits_x[train_src], digits_y[train_src]))
demo_x_val, demo_y_val = translated_digits(
    len(val_src), size=28, digit_size=(10, 12), seed=3,
    source=(digits_x[val_src], digits_y[val_src]))
try:
    start = time.process_time()
    pred = train_and_predict(demo_x_train, demo_y_train, demo_x_val)
    print(f"validation accuracy {np.mean(pred == demo_y_val):.3f} "
          f"in {time.process_time() - start:.1f} s of CPU")
except NotImplementedError:
    print("finish q2-q5 first")

# %% [markdown]
# ## Question 6 (4 points, standard): RMSProp
#
# RMSProp keeps only the second of Adam's two averages: a running average $s$ of the squared
# gradient, and divides the gradient by its square root, so that every weight takes steps of
# about the same size whatever the scale of its gradient. In PyTorch's form (no momentum, not
# centred, no bias correction):
#
# $$s \leftarrow \alpha\, s + (1 - \alpha)\, g^2, \qquad
# w \leftarrow w - \text{lr}\, \frac{g}{\sqrt{s} + \epsilon}.$$
#
# Return NEW arrays `(w, s)`. There is no step counter: with $s$ starting at zero, the first
# steps are large ($\sqrt{s} = \sqrt{1 - \alpha}\,|g|$, so the first step is $10\,\text{lr}$
# with $\alpha = 0.99$), which is one reason why Adam added the bias correction.

# %% tags=["answer", "q6"]
def rmsprop_step(w, dw, s, *, lr=1e-2, alpha=0.99, eps=1e-8):
    """One step: ``w, s = rmsprop_step(w, dw, s, lr=1e-2, alpha=0.99)``."""
    ### BEGIN SOLUTION
    s = alpha * s + (1 - alpha) * dw * dw
    w = w - lr * dw / (np.sqrt(s) + eps)
    ### END SOLUTION
    return w, s


# %% tags=["check", "q6"]
check("q6")

# %% [markdown]
# ## Question 7 (6 points, standard): AdamW, weight decay decoupled from the gradient
#
# With plain SGD, weight decay (shrinking every weight a little at each step) and an L2
# penalty $\frac{\lambda}{2}\|w\|^2$ in the loss are the same thing: the penalty adds
# $\lambda w$ to the gradient. With Adam they are not. Added to the gradient, $\lambda w$ goes
# into $m$ and is divided by $\sqrt{\hat v}$ like the rest, so a weight whose gradients are
# large is hardly decayed at all, and one whose gradients are small is decayed a lot.
# Loshchilov and Hutter's AdamW (2019) takes the decay out of the gradient: it shrinks the
# weights directly, by the same factor for every weight, and runs Adam on the loss's gradient
# alone. In PyTorch's form, with weight decay $\lambda$ and the step counter $t = 1, 2, \ldots$:
#
# $$w \leftarrow (1 - \text{lr}\,\lambda)\, w, \quad\text{then the Adam step of q2 with the
# gradient } g \text{ (not } g + \lambda w\text{)}.$$
#
# Return NEW arrays `(w, m, v)`; $m$ and $v$ never see $\lambda$. (You may call your
# `adam_step`.) The hidden tests include a step with a zero gradient, where AdamW's answer is
# obvious and Adam with an L2 penalty's is not.

# %% tags=["answer", "q7"]
def adamw_step(w, dw, m, v, t, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
               weight_decay=1e-2):
    """Step ``t`` (from 1): ``w, m, v = adamw_step(w, dw, m, v, t, lr=1e-3)``."""
    ### BEGIN SOLUTION
    w = w * (1 - lr * weight_decay)  # decoupled: the gradient does not see the decay
    w, m, v = adam_step(w, dw, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    ### END SOLUTION
    return w, m, v


# %% tags=["check", "q7"]
check("q7")

# %% [markdown]
# ## An experiment: initialization scale x learning rate, with and without BatchNorm
#
# Chapter 05 claims that BatchNorm makes training far less sensitive to the scale of the
# initial weights and lets larger learning rates work. Measure it on a tiny problem (about a
# second of CPU in all): 256 points in 16 dimensions, 4 classes, and a multilayer perceptron
# of three hidden layers of 32 ReLU units, with or without `BatchNorm1d` after each hidden
# `Linear`. The weights of the hidden layers are drawn from $\mathcal N(0,
# (\text{scale} \cdot \sqrt{2 / \text{fan\_in}})^2)$: scale 1 is He's initialization, 0.1 and
# 10 are a hundred times too little and too much variance. The next cell makes the data and
# the networks (run it as it is).

# %%
def experiment_data(seed=0):
    """256 points in 16 dimensions and their labels (4 classes, from a noisy teacher)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((256, 16)).astype(np.float32)
    teacher = rng.standard_normal((16, 4))
    y = np.argmax(np.tanh(x @ teacher) + 0.3 * rng.standard_normal((256, 4)), axis=1)
    return x, y


def make_mlp(scale, batchnorm, rng, *, n_in=16, width=32, depth=3, n_classes=4):
    """A ReLU MLP whose hidden weights have std ``scale * sqrt(2 / fan_in)``; the last
    layer has std ``sqrt(1 / fan_in)`` whatever the scale."""
    layers, fan_in = [], n_in
    for _ in range(depth):
        hidden = nn.Linear(fan_in, width, rng=rng)
        hidden.params["weight"][...] = rng.standard_normal((width, fan_in)) * (
            scale * np.sqrt(2 / fan_in))
        layers += [hidden, nn.BatchNorm1d(width), nn.ReLU()] if batchnorm else [hidden,
                                                                                nn.ReLU()]
        fan_in = width
    last = nn.Linear(fan_in, n_classes, rng=rng)
    last.params["weight"][...] = rng.standard_normal((n_classes, fan_in)) / np.sqrt(fan_in)
    return nn.Sequential(*layers, last)


# %% [markdown]
# ## Question 8 (2 points, standard): the figure
#
# In the next cell, write `final_loss(scale, lr, batchnorm)`: build `make_mlp(scale,
# batchnorm, np.random.default_rng(1))`, train it on `experiment_data()` with full-batch
# gradient descent and your `sgd_momentum_step` (momentum 0.9) for 25 steps, and return the
# mean of the last 5 training losses, or `np.inf` as soon as a loss is not finite (the run
# diverged; `np.errstate(all="ignore")` silences NumPy's warnings on the way). Then run it
# for every scale in `SCALES` and learning rate in `LRS`, with and without BatchNorm, and
# draw ONE figure with two panels side by side, without and with BatchNorm: a heat map of
# the final loss (rows: scales, columns: learning rates, both labelled with their values,
# one colour scale for both panels, diverged runs shown as such) with the numbers written in
# the cells. 40 runs, under a second in all. The figure is graded by hand (the saved
# output of this cell): the two panels, labelled axes and a readable loss in every cell.

# %% tags=["written", "q8"]
SCALES = (0.1, 0.3, 1.0, 3.0, 10.0)
LRS = (0.03, 0.1, 0.3, 1.0)


def final_loss(scale, lr, batchnorm):
    """Mean of the last 5 of 25 full-batch losses (np.inf if the run diverges)."""
    ### BEGIN SOLUTION
    x, y = experiment_data()
    model = make_mlp(scale, batchnorm, np.random.default_rng(1))
    params = model.parameters()
    velocity = {k: np.zeros_like(p) for k, p in params.items()}
    losses = []
    with np.errstate(all="ignore"):
        for _ in range(25):
            logits = model.forward(x, training=True)
            loss, cache = cross_entropy_forward(logits, y)
            if not np.isfinite(loss):
                return np.inf
            losses.append(float(loss))
            model.backward(cross_entropy_backward(np.ones((), logits.dtype), cache))
            grads = model.gradients()
            for k, p in params.items():
                p[...], velocity[k] = sgd_momentum_step(p, grads[k], velocity[k], lr=lr,
                                                        momentum=0.9)
    return float(np.mean(losses[-5:]))
    ### END SOLUTION


def plot_experiment():
    """Two heat maps of the final loss, without and with BatchNorm."""
    ### BEGIN SOLUTION
    import matplotlib.pyplot as plt

    grids = {bn: np.array([[final_loss(s, lr, bn) for lr in LRS] for s in SCALES])
             for bn in (False, True)}
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    vmax = float(finite.max())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ax, (bn, grid) in zip(axes, grids.items(), strict=True):
        shown = np.where(np.isfinite(grid), grid, vmax)  # diverged: the top colour, "inf"
        im = ax.imshow(np.log10(shown), cmap="viridis", vmin=np.log10(finite.min()),
                       vmax=np.log10(vmax))
        for i in range(len(SCALES)):
            for j in range(len(LRS)):
                text = "diverged" if not np.isfinite(grid[i, j]) else f"{grid[i, j]:.2g}"
                dark = shown[i, j] < np.sqrt(finite.min() * vmax)  # the lower half in log
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="w" if dark else "k")
        ax.set(xticks=range(len(LRS)), xticklabels=[f"{lr:g}" for lr in LRS],
               yticks=range(len(SCALES)), yticklabels=[f"{s:g}" for s in SCALES],
               xlabel="learning rate (SGD, momentum 0.9)", ylabel="initialization scale",
               title="with BatchNorm" if bn else "without BatchNorm")
    fig.colorbar(im, ax=axes, label="log10 of the final training loss")
    plt.show()
    ### END SOLUTION


try:
    plot_experiment()
except NotImplementedError:
    print("finish q1 and q8 first")

# %% [markdown] tags=["rubric", "q8"]
# points: 2
# - 1 point: two heat maps side by side (without / with BatchNorm) of the final loss over
#   the 5 x 4 grid, rows and columns labelled with the scales and learning rates, one colour
#   scale for both (or a log colour scale in each with the numbers written in).
# - 1 point: every cell readable (its loss written in, diverged runs marked), and the values
#   plausible: without BatchNorm only scale 1 at lr 0.1-0.3 gets far below $\ln 4$; with
#   BatchNorm most cells end well below it.

# %% [markdown]
# ## Question 9 (4 points, standard): what the figure shows
#
# Using your figure, answer in five to ten sentences: (a) without BatchNorm, which
# combinations train (a final loss well below $\ln 4 \approx 1.39$, the loss of a uniform
# guess) and why the small scales stall and the large ones blow up; (b) with BatchNorm, how
# much of the grid trains, and why the scale of the hidden weights no longer changes what the
# network computes (what does BatchNorm do to $Wx$ when $W$ is multiplied by a constant $c$?);
# (c) why, with BatchNorm, the best learning rate still moves with the scale, and in which
# direction (hint: what happens to the gradient with respect to $W$ when $W$ is multiplied by
# $c$, and so to the relative size of a step?).

# %% [markdown] tags=["written", "q9"]
# _Write your answer here._
# ### BEGIN SOLUTION
# (a) Without BatchNorm only a thin band trains: He's scale 1 with a learning rate of 0.1 to
# 0.3 (losses 0.53 and 0.09); a few neighbours get to 0.8-1, and everything else stays at
# about $\ln 4$ or diverges. At scale 0.1 or 0.3 each layer shrinks the signal (by about the
# scale), so after three layers the outputs and the gradients of the first layers are tiny
# and 25 steps do not move the loss; at scale 3 or 10 the activations grow by about the scale
# per layer, the logits and the gradients are huge, the first steps throw the network into a
# state it does not recover from (dead ReLUs, losses near $\ln 4$ or above) and the largest
# learning rate diverges. (b) With BatchNorm most of the grid trains, the best cells down to
# $10^{-2}$ to $10^{-3}$: BatchNorm subtracts the batch mean and divides by the batch std of
# $Wx$, and $cWx$ has mean $c\mu$ and std $|c|\sigma$, so the normalized output (for $c > 0$)
# is exactly the same: the forward pass does not depend on the scale of the hidden weights at
# all, only the last layer's scale matters. (c) The gradient does: since the output is
# unchanged by $W \to cW$, the gradient with respect to $cW$ is $1/c$ times the gradient with
# respect to $W$, so a step of a given learning rate changes $W$ by a fraction $1/c^2$ as
# large. The effective learning rate is about $\text{lr}/c^2$: large scales need larger
# learning rates (scale 10 does best at lr 1, loss 0.3, and hardly moves at 0.03), small
# scales smaller ones (scale 0.1 is best at lr 0.1, loss 0.017, and ten times worse at 1), so
# the good region is a diagonal band of the grid.
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q9"]
# points: 4
# - 1 point: (a) only a narrow band (scale about 1, a moderate learning rate) trains without
#   BatchNorm; small scales stall because the signal and the gradients shrink layer by layer,
#   large scales blow up (huge logits, divergence at large learning rates).
# - 1 point: (b) with BatchNorm most of the grid trains, read off the figure.
# - 1 point: (b) the reason: BatchNorm of $cWx$ equals BatchNorm of $Wx$ for $c > 0$ (mean and
#   std both scale by $c$), so the hidden weights' scale does not change the forward pass.
# - 1 point: (c) the gradient scales as $1/c$, the relative step as $1/c^2$: an effective
#   learning rate $\text{lr}/c^2$, so larger scales need larger learning rates (a diagonal).
#   Half a point for the direction without the reason.

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
@case("q1", "three steps on a 2x3 array", points=2,
      hint="update the velocity first (momentum times the old one, plus the gradient), "
           "then step the weights along it")
def _(ns, rng):
    w, v = rng.standard_normal((2, 3)), np.zeros((2, 3))
    out = []
    for _ in range(3):
        w, v = ns.sgd_momentum_step(w, rng.standard_normal((2, 3)), v, lr=0.1, momentum=0.9)
        out.append([w, v])
    return out


@case("q2", "two steps with the defaults", points=2,
      hint="t starts at 1; divide m by (1 - beta1**t) and v by (1 - beta2**t)")
def _(ns, rng):
    w, m, v = rng.standard_normal(5), np.zeros(5), np.zeros(5)
    out = []
    for t in (1, 2):
        w, m, v = ns.adam_step(w, rng.standard_normal(5), m, v, t, lr=1e-2)
        out.append([w, m, v])
    return out


@case("q3", "warmup 5 of 20 steps: the whole curve", points=2,
      hint="during warmup lr * (step + 1) / warmup_steps; at step >= total_steps, min_lr")
def _(ns, rng):
    return np.array([ns.warmup_cosine_lr(s, lr=0.1, warmup_steps=5, total_steps=20)
                     for s in range(25)], dtype=np.float64)


@case("q4", "two steps on a dict of two parameters", points=2,
      hint="write the new values into the arrays: p[...] = new_p")
def _(ns, rng):
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    opt = ns.Adam(params, lr=0.05)
    for _ in range(2):
        opt.step({"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)})
    return {"w": params["w"], "b": params["b"]}


@case("q6", "two steps with the defaults", points=1,
      hint="s = alpha * s + (1 - alpha) * dw**2, then w - lr * dw / (sqrt(s) + eps)")
def _(ns, rng):
    w, s = rng.standard_normal((2, 3)), np.zeros((2, 3))
    out = []
    for _ in range(2):
        w, s = ns.rmsprop_step(w, rng.standard_normal((2, 3)), s)
        out.append([w, s])
    return out


@case("q7", "two steps with weight_decay 0.1", points=1,
      hint="shrink w by (1 - lr * weight_decay) first, then the Adam step with dw alone; "
           "weight_decay * w is NOT added to the gradient")
def _(ns, rng):
    w, m, v = rng.standard_normal(5), np.zeros(5), np.zeros(5)
    out = []
    for t in (1, 2):
        w, m, v = ns.adamw_step(w, rng.standard_normal(5), m, v, t, lr=1e-2,
                                weight_decay=0.1)
        out.append([w, m, v])
    return out


def _pattern_task(rng, n_train=200, n_test=100, size=28, jitter=3):
    """Ten distinct coarse 9x9 ink patterns (3x3 blocks of 3x3 pixels), one per class, near
    the centre of a ``size x size`` canvas (moved by up to ``jitter`` pixels): an easy task
    that any working CNN learns in seconds (the reference solution gets every test image
    right, so its predictions, the expected output, are the true labels)."""
    codes = rng.choice(np.arange(1, 512), size=10, replace=False)
    bits = (codes[:, None] >> np.arange(9)) & 1  # (10, 9)
    patterns = np.kron(bits.reshape(10, 3, 3), np.ones((3, 3))).astype(np.float32)

    def sample(n):
        y = rng.integers(0, 10, size=n)
        x = np.zeros((n, 1, size, size), dtype=np.float32)
        for i, label in enumerate(y):
            r, c = (size - 9) // 2 + rng.integers(-jitter, jitter + 1, size=2)
            x[i, 0, r:r + 9, c:c + 9] = patterns[label]
        return x, y

    return (*sample(n_train), *sample(n_test))  # x_train, y_train, x_test, y_test


def _labels_agree(min_fraction):
    """Checker: one integer label in 0..9 per test image, not all the same, and at least
    ``min_fraction`` of them equal to the expected ones (the reference solution's)."""

    def check(got, expected):
        pred, ref = np.asarray(got), np.asarray(expected)
        if pred.shape != ref.shape:
            return False, f"expected {ref.size} labels, shape {ref.shape}; got shape {pred.shape}"
        if pred.dtype.kind not in "iu":
            return False, f"expected integer labels, got dtype {pred.dtype}"
        if pred.min() < 0 or pred.max() > 9:
            return False, f"labels must be in 0..9, got {pred.min()}..{pred.max()}"
        if np.all(pred == pred[0]):
            return False, f"every prediction is {pred[0]}: the network learned nothing"
        frac = float(np.mean(pred == ref))
        return frac >= min_fraction, (f"{frac:.0%} of the test images right (needs "
                                      f"{min_fraction:.0%})")

    check.__name__ = f"labels_agree({min_fraction})"
    return check


# Worth no points: it only tells the student that the function works (format, learning at
# all). All of q5's points come from the grader's digits, where only a CNN scores.
@case("q5", "learns an easy task: one integer label per test image", points=0, timeout=120,
      checker=_labels_agree(0.3),
      hint="return model predictions as np.int64, shape (len(x_test),); 10 classes, so "
           "chance is 10%")
def _(ns, rng):
    x_train, y_train, x_test, _ = _pattern_task(rng)
    return np.asarray(ns.train_and_predict(x_train, y_train, x_test))


# %% tags=["tests", "hidden"]
# Plausible wrong answers, and what they score (tests/grading/test_new_homework.py):
# q6: RMSProp's average without its (1 - alpha), s = alpha * s + dw**2: 0 of 4.
# q7: Adam with an L2 penalty, the decay added to the gradient (adam_step(w, dw +
#     weight_decay * w, ...)) instead of decoupled: 0 of 6.
@case("q1", "momentum 0 is plain SGD; arguments are not modified", points=2)
def _(ns, rng):
    w, dw, v = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)
    w0, v0 = w.copy(), v.copy()
    w1, v1 = ns.sgd_momentum_step(w, dw, np.zeros(4), lr=0.5, momentum=0.0)
    ns.sgd_momentum_step(w, dw, v, lr=0.5, momentum=0.5)
    return {"w1": w1, "v1": v1, "unchanged": bool(np.array_equal(w, w0)
                                                  and np.array_equal(v, v0))}


@case("q1", "50 steps on an ill-conditioned quadratic", points=2,
      checker=checks.close(rtol=1e-6, atol=1e-9))
def _(ns, rng):
    a = np.array([1.0, 50.0])  # f(w) = sum(a * w**2) / 2
    w, v = np.array([1.0, 1.0]), np.zeros(2)
    for _ in range(50):
        w, v = ns.sgd_momentum_step(w, a * w, v, lr=0.015, momentum=0.8)
    return w


@case("q2", "first step without bias correction would be too big", points=3)
def _(ns, rng):
    g = rng.standard_normal(6) * 10
    w1, m1, v1 = ns.adam_step(np.zeros(6), g, np.zeros(6), np.zeros(6), 1, lr=0.1)
    return {"step": w1, "m": m1, "v": v1}


@case("q2", "100 steps on a quadratic, custom betas and eps", points=3,
      checker=checks.close(rtol=1e-6, atol=1e-9))
def _(ns, rng):
    a = rng.random(4) * 10 + 0.1
    w, m, v = rng.standard_normal(4), np.zeros(4), np.zeros(4)
    for t in range(1, 101):
        w, m, v = ns.adam_step(w, a * w, m, v, t, lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6)
    return [w, m, v]


@case("q3", "no warmup, min_lr > 0, and bad arguments refused", points=2)
def _(ns, rng):
    curve = np.array([ns.warmup_cosine_lr(s, lr=1.0, warmup_steps=0, total_steps=7,
                                          min_lr=0.1) for s in range(9)], dtype=np.float64)
    return [curve,
            checks.raised(lambda: ns.warmup_cosine_lr(0, lr=1.0, warmup_steps=5,
                                                            total_steps=5)),
            checks.raised(lambda: ns.warmup_cosine_lr(-1, lr=1.0, warmup_steps=1,
                                                            total_steps=5))]


@case("q3", "continuous at the end of warmup, monotone after it", points=2)
def _(ns, rng):
    lrs = np.array([ns.warmup_cosine_lr(s, lr=0.3, warmup_steps=10, total_steps=110)
                    for s in range(115)], dtype=np.float64)
    return {"peak": float(lrs[9]), "after": float(lrs[10]),
            "monotone": bool(np.all(np.diff(lrs[10:]) <= 1e-15)), "end": float(lrs[-1])}


@case("q4", "a schedule can change lr; the step counter is shared", points=2)
def _(ns, rng):
    params = {"a": rng.standard_normal(3), "b": rng.standard_normal((2, 2))}
    opt = ns.Adam(params, lr=0.1, betas=(0.5, 0.9), eps=1e-6)
    for lr in (0.1, 0.01, 0.001):
        opt.lr = lr
        opt.step({"a": params["a"] * 2, "b": params["b"] - 1})
    return {"a": params["a"], "b": params["b"]}


@case("q6", "the first step from s = 0 has no bias correction", points=1)
def _(ns, rng):
    g = rng.standard_normal(6) * 10
    w1, s1 = ns.rmsprop_step(np.zeros(6), g, np.zeros(6), lr=0.1, alpha=0.9)
    return {"step": w1, "s": s1}


@case("q6", "100 steps on an ill-conditioned quadratic, custom alpha and eps", points=2,
      checker=checks.close(rtol=1e-6, atol=1e-9))
def _(ns, rng):
    a = rng.random(4) * 50 + 0.1  # f(w) = sum(a * w**2) / 2
    w, s = rng.standard_normal(4), np.zeros(4)
    for _ in range(100):
        w, s = ns.rmsprop_step(w, a * w, s, lr=0.01, alpha=0.9, eps=1e-4)
    return [w, s]


@case("q7", "a zero gradient: the weights only decay, m and v stay zero", points=2,
      hint="AdamW shrinks w by (1 - lr * weight_decay) per step whatever the gradient; "
           "with the decay in the gradient, Adam would step by about lr instead")
def _(ns, rng):
    w, m, v = rng.standard_normal(6), np.zeros(6), np.zeros(6)
    for t in range(1, 6):
        w, m, v = ns.adamw_step(w, np.zeros(6), m, v, t, lr=0.1, weight_decay=0.5)
    return {"w": w, "m": m, "v": v}


@case("q7", "m and v average the gradient only, not the decay", points=1)
def _(ns, rng):
    w, m, v = rng.standard_normal(4) * 3, np.zeros(4), np.zeros(4)
    for t in range(1, 4):
        w, m, v = ns.adamw_step(w, rng.standard_normal(4), m, v, t, lr=0.01,
                                weight_decay=1.0)
    return {"m": m, "v": v}


@case("q7", "100 steps on a quadratic, custom betas, eps and weight decay", points=2,
      checker=checks.close(rtol=1e-6, atol=1e-9))
def _(ns, rng):
    a = rng.random(4) * 10 + 0.1
    c = rng.standard_normal(4)  # f(w) = sum(a * (w - c)**2) / 2: decay pulls w toward 0
    w, m, v = rng.standard_normal(4), np.zeros(4), np.zeros(4)
    for t in range(1, 101):
        w, m, v = ns.adamw_step(w, a * (w - c), m, v, t, lr=0.05, beta1=0.8, beta2=0.99,
                                eps=1e-6, weight_decay=0.3)
    return [w, m, v]


@case("q5", "accuracy on moving digits made by the grader", points=10, timeout=150,
      checker="digit_accuracy", inputs="graded_digits")
def _(ns, rng, sent):
    return np.asarray(ns.train_and_predict(sent["x_train"], sent["y_train"], sent["x_test"]))


# %% tags=["autograder"]
settings(
    # d2lcnn.data and sklearn hold the digits: q5's data come only from graded_digits below.
    forbid=["torch", "d2lcnn.numpy.optim", "d2lcnn.torch", "d2lcnn.schedules", "d2lcnn.train",
            "d2lcnn.data", "sklearn"],
    preload=["d2lcnn.numpy"],
    case_timeout=30,
    cell_timeout=150,
    cpu_seconds=200,
    memory_mb=2048,
)

DIGIT_CANVAS, DIGIT_SIDES, DIGIT_TEST = 28, (10, 12), 360  # q5's graded data
ACCURACY_NONE, ACCURACY_FULL = 0.60, 0.85  # q5: no points up to NONE, full marks from FULL


def add_specks(x, material, rng, *, count=(1, 3), sides=(3, 5)):
    """A copy of ``x`` (N, 1, H, W) with ``count`` specks of ink per image: square pieces
    (``sides`` pixels) cut from random images of ``material`` (M, 1, h, w) and pasted (max)
    where they do not touch the digit's bounding box. They move the bounding box and the
    centre of mass, so "crop or re-centre the digit, then nearest neighbour" fails too."""
    x = np.array(x, dtype=np.float32)
    _, _, h, w = x.shape
    m = material.shape[-1]
    for img in x[:, 0]:
        rows = np.flatnonzero(img.max(axis=1) > 0)
        cols = np.flatnonzero(img.max(axis=0) > 0)
        top, bottom, left, right = rows[0] - 1, rows[-1] + 1, cols[0] - 1, cols[-1] + 1
        want, placed = int(rng.integers(count[0], count[1] + 1)), 0
        for _ in range(50):
            if placed == want:
                break
            s = int(rng.integers(sides[0], sides[1] + 1))
            r, c = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            if r <= bottom and r + s - 1 >= top and c <= right and c + s - 1 >= left:
                continue  # would touch the digit
            i, j = rng.integers(0, m - s + 1, size=2)
            piece = material[int(rng.integers(len(material))), 0, i:i + s, j:j + s]
            if piece.max() < 0.3:
                continue  # (almost) no ink there
            img[r:r + s, c:c + s] = np.maximum(img[r:r + s, c:c + s], piece)
            placed += 1
    return x


def graded_digits(rng):
    """q5's data, made in the grader from the bundle's secret: ``(sent, kept)``.

    The 1,797 real digits are split into disjoint training and test SOURCES; each image is
    a source digit upsampled to a random side in DIGIT_SIDES, pasted at a random position of
    a DIGIT_CANVAS x DIGIT_CANVAS canvas (``translated_digits``), plus specks. The sandbox
    gets the training images and labels and the test images; the test labels stay here."""
    from d2lcnn.data import load_digits, translated_digits

    x, y = load_digits()  # (1797, 1, 8, 8)
    material, _ = load_digits(size=12)  # the same digits upsampled: speck material
    order = rng.permutation(len(y))
    test, train = order[:DIGIT_TEST], order[DIGIT_TEST:]
    seed_train, seed_test = (int(s) for s in rng.integers(0, 2**62, size=2))
    x_train, y_train = translated_digits(len(train), size=DIGIT_CANVAS,
                                         digit_size=DIGIT_SIDES, seed=seed_train,
                                         source=(x[train], y[train]))
    x_test, y_test = translated_digits(len(test), size=DIGIT_CANVAS, digit_size=DIGIT_SIDES,
                                       seed=seed_test, source=(x[test], y[test]))
    sent = {"x_train": add_specks(x_train, material[train], rng), "y_train": y_train,
            "x_test": add_specks(x_test, material[test], rng)}
    return sent, y_test


# Accuracy measured on graded_digits' data for 8 secrets (its rng seeded 0-7; 1,437 training
# and 360 test images each; 2-core CPU, one BLAS thread; reproduce with OMP_NUM_THREADS=1
# D2LCNN_MEASURE_Q5=1 pytest tests/grading/test_homework_integrity.py -k measure -s):
#   1-nearest-neighbour on pixels (scikit-learn) ............ 0.275-0.325
#   logistic regression on pixels (scikit-learn) ............ 0.089-0.125
#   MLP, one hidden layer of 256 (scikit-learn) ............. 0.169-0.197
#   re-centre on the centre of mass, then 1-NN .............. 0.392-0.475
#   CNN 32/64 channels ending in Flatten + Linear, 20 epochs  0.489-0.594
#   CNN 16/32 channels, global max pooling, 12 epochs ....... 0.892-0.936 (3.1-3.6 s of CPU)
#   the reference solution (32/64, global max, 20 epochs) ... 0.950-0.981 (13.3-14.4 s)
# So with no points up to 0.60 and full marks from 0.85, every non-CNN baseline scores 0
# (the best, re-centring, is 0.12 below the floor), and the reference solution scores full
# marks with 0.10 to spare.
def digit_accuracy(got, expected, kept):
    """Accuracy of the returned labels against the test labels, which never left the
    grader: 0 up to ACCURACY_NONE, linear to full marks at ACCURACY_FULL."""
    y = kept
    pred = np.asarray(got)
    if pred.shape != y.shape:
        return False, f"expected {y.shape[0]} predicted labels, got shape {pred.shape}"
    if pred.dtype.kind not in "iu":
        return False, f"expected integer labels, got dtype {pred.dtype}"
    if np.all(pred == pred[0]):
        return False, f"every prediction is {pred[0]}"
    acc = float(np.mean(pred == y))
    score = min(1.0, max(0.0, (acc - ACCURACY_NONE) / (ACCURACY_FULL - ACCURACY_NONE)))
    return score, (f"accuracy {acc:.3f} on the grader's test digits (full marks from "
                   f"{ACCURACY_FULL:.3f}, none up to {ACCURACY_NONE:.3f})")
