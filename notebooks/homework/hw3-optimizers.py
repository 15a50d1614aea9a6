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
# Chapter 04 races the optimizers on a surface and on a CNN. Here you write the update rules
# yourself and then use them to train a network in NumPy:
#
# | question | what you write | points |
# | --- | --- | --- |
# | q1 | `sgd_momentum_step`: SGD with momentum (PyTorch's form) | 6 |
# | q2 | `adam_step`: Adam with bias correction | 8 |
# | q3 | `warmup_cosine_lr`: linear warmup, then cosine decay | 6 |
# | q4 | `Adam`: an optimizer object that updates a model's parameters in place | 4 |
# | q5 | `train_and_predict`: train a small CNN on the digits; graded on a held-out split | 10 |
#
# **Rules.** Use NumPy and the package's *layers* (`d2lcnn.numpy.nn`: `Conv2d`, `Linear`,
# `ReLU`, `MaxPool2d`, `BatchNorm2d`, `Sequential`, ...). The things you implement here are
# blocked when your notebook is graded: `torch`, the package's optimizers
# (`d2lcnn.numpy.optim`, `d2lcnn.torch`), schedules (`d2lcnn.schedules`) and training loop
# (`d2lcnn.train`).
# Write your code where it says `# YOUR CODE HERE`; do not rename the functions or change
# their arguments. Run `check("qN")` after each answer. The grade also uses hidden tests, and
# q5 is graded by the accuracy of your predictions on digits that are not in your training
# set (full marks from 95%, partial credit from 80%), within a time limit of 90 s of CPU.
# When you are done, save the notebook and run `submit()`.

# %%
import time

import numpy as np

from d2lcnn.data import load_dataset
from d2lcnn.numpy import nn
from d2lcnn.numpy.losses import cross_entropy_backward, cross_entropy_forward

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw3-optimizers", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# ## q1. SGD with momentum
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
# ## q2. Adam
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
# ## q3. A learning-rate schedule: warmup, then cosine
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
# ## q4. An optimizer object
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
# ## q5. Train a CNN on the digits
#
# Write `train_and_predict(x_train, y_train, x_test)`: build a small CNN from
# `d2lcnn.numpy.nn` layers, train it on `(x_train, y_train)` with your `Adam` (and, if you
# like, your schedule: set `opt.lr` before each epoch or step), and return the predicted
# class of every image of `x_test` as an integer array of shape `(len(x_test),)`. Inputs are
# float32 arrays `(N, 1, 8, 8)` with values in `[0, 1]`; labels are integers 0–9.
#
# The grader calls your function with about 1,400 training digits and asks for predictions
# on about 360 others that are NOT in your notebook (the split below holds them out). It
# scores the accuracy of what you return: full marks from 95%, partial credit from 80%.
# Seed your generators (`np.random.default_rng(0)`) so that your result is reproducible; the
# call must finish within 90 s of CPU. Below, try it on a validation split first.

# %% tags=["answer", "q5"]
def train_and_predict(x_train, y_train, x_test):
    """Train a small CNN on the digits and return its predicted labels for ``x_test``."""
    ### BEGIN SOLUTION
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng), nn.ReLU(),   # (N, 16, 8, 8)
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.ReLU(),  # (N, 32, 8, 8)
        nn.MaxPool2d(2),                                      # (N, 32, 4, 4)
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10, rng=rng),     # (N, 10)
    )
    opt = Adam(model.parameters(), lr=3e-3)
    epochs, batch_size = 12, 32
    steps = epochs * -(-len(x_train) // batch_size)
    schedule = dict(lr=3e-3, warmup_steps=steps // 10, total_steps=steps)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(x_train), batch_size):
            idx = order[start:start + batch_size]
            opt.lr = warmup_cosine_lr(step, **schedule)
            logits = model.forward(x_train[idx], training=True)
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
# Try it on a validation split carved from the training digits (the grader's held-out digits
# are not in `data` at all):

# %% tags=["demo"]
data = load_dataset("digits", split=(0.15, 0.2), seed=0)
try:
    start = time.process_time()
    pred = train_and_predict(data.x_train, data.y_train, data.x_val)
    print(f"validation accuracy {np.mean(pred == data.y_val):.3f} "
          f"in {time.process_time() - start:.1f} s of CPU")
except NotImplementedError:
    print("finish q2-q5 first")

# %% [markdown]
# ## Submit
#
# Save the notebook (Ctrl+S), then run the next cell and upload the file it names.

# %%
# submit()

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


@case("q5", "returns one integer label per test image", points=1, timeout=120)
def _(ns, rng):
    from d2lcnn.data import load_digits

    x, y = load_digits()
    pick = rng.permutation(len(x))
    x_tr, y_tr, x_te = x[pick[:300]], y[pick[:300]], x[pick[300:320]]
    pred = np.asarray(ns.train_and_predict(x_tr, y_tr, x_te))
    return {"shape": list(pred.shape), "integer": bool(pred.dtype.kind in "iu"),
            "in range": bool(pred.size and pred.min() >= 0 and pred.max() <= 9)}


# %% tags=["tests", "hidden"]
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


@case("q5", "accuracy on held-out digits", points=9, timeout=150, checker="holdout_accuracy")
def _(ns, rng):
    from d2lcnn.data import load_dataset

    data = load_dataset("digits", split=(0.0, 0.2), seed=20261202)
    return np.asarray(ns.train_and_predict(data.x_train, data.y_train, data.x_test))


# %% tags=["autograder"]
settings(
    forbid=["torch", "d2lcnn.numpy.optim", "d2lcnn.torch",
            "d2lcnn.schedules", "d2lcnn.train"],
    preload=["d2lcnn.numpy", "d2lcnn.data"],
    case_timeout=30,
    cell_timeout=150,
    cpu_seconds=200,
    memory_mb=2048,
)


def holdout_accuracy(got, expected):
    """Accuracy of the returned labels against labels that never enter the sandbox."""
    from d2lcnn.data import load_dataset

    y = load_dataset("digits", split=(0.0, 0.2), seed=20261202).y_test
    pred = np.asarray(got)
    if pred.shape != y.shape:
        return False, f"expected {y.shape[0]} predicted labels, got shape {pred.shape}"
    if pred.dtype.kind not in "iu":
        return False, f"expected integer labels, got dtype {pred.dtype}"
    acc = float(np.mean(pred == y))
    score = min(1.0, max(0.0, (acc - 0.80) / (0.95 - 0.80)))
    return score, f"held-out accuracy {acc:.3f} (full marks from 0.950, none below 0.800)"
