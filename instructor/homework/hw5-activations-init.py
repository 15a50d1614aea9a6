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
# # Homework 5: Activation functions and weight initialization
#
# **Follows:** [chapter 2, Activation functions](../../02-activations.ipynb) and
# [chapter 3, Data preprocessing and weight initialization](../../03-preprocessing-and-init.ipynb)
# **Estimated time:** 3–4 hours (a first draft, not yet timed on students: the reference
# solution is 60 lines, at about 3 minutes a line for a first encounter, plus about 15
# minutes for each of the two written answers)
#
# **Learning goals.** After this assignment you can
#
# - write the common activation functions and their derivatives so that they stay finite
#   and accurate for inputs near 0 and far from it;
# - derive the Xavier (Glorot) and He initializations from the variance of one layer, and
#   implement them for fully connected and convolutional weights;
# - measure how the activation statistics of a deep network depend on the weight scale, and
#   explain the collapse, the saturation and the fix.
#
# | question | what you do | points | difficulty |
# | --- | --- | --- | --- |
# | 1 | `activation_forward`: seven activations, one function | 5 | guided |
# | 2 | `activation_backward`: their derivatives | 8 | challenge |
# | 3 | `init_std` and `init_weight`: Xavier and He | 5 | standard |
# | 4 | written: the key step of the variance argument | 3 | standard |
# | 5 | `activation_stds`: the ten-layer experiment | 6 | standard |
# | 6 | written: what the experiment's plot shows | 3 | standard |
#
# **Rules.** Use NumPy only: `torch`, `scipy` and the package's reference modules
# (`d2lcnn.numpy`, `d2lcnn.torch`, `d2lcnn.gradcheck`, `d2lcnn.checks`) are blocked when your
# notebook is graded. Write your code where it says `# YOUR CODE HERE`; do not rename the
# functions or change their arguments. Run `check("qN")` after each answer: it runs the
# public tests. The grade also uses hidden tests (other inputs, inputs near 0 and far from
# it), so pass the public ones for the right reasons. Questions 4 and 6 are answered in
# words, in the markdown cell under the question, and graded by hand. When you are done,
# save the notebook and run `submit()`.

# %%
import numpy as np

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw5-activations-init", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# A helper for checking your own work: a centred-difference estimate of the derivative of
# an elementwise function `f` at every point of `x` (homework 1, question 5, for elementwise
# functions).

# %%
def numerical_derivative(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


# %% [markdown]
# ## Question 1 (5 points, guided): the activation zoo, forward
#
# Write `activation_forward(x, name)`, which applies the activation `name` elementwise to the
# array `x` and returns an array of the same shape:
#
# | `name` | $f(x)$ |
# | --- | --- |
# | `"sigmoid"` | $\sigma(x) = 1 / (1 + e^{-x})$ |
# | `"tanh"` | $\tanh x$ |
# | `"relu"` | $\max(0, x)$ |
# | `"leaky_relu"` | $x$ for $x > 0$, else $a x$ with $a$ = `negative_slope` |
# | `"elu"` | $x$ for $x > 0$, else $\alpha (e^{x} - 1)$ with $\alpha$ = `alpha` |
# | `"gelu"` | $\tfrac12 x (1 + \tanh u)$, $u = \sqrt{2/\pi}\,(x + 0.044715\, x^3)$ (tanh form) |
# | `"silu"` | $x\, \sigma(x)$ |
#
# Raise `ValueError` for any other name. The hidden tests evaluate every activation at
# points near 0 and at large $|x|$ (up to a thousand): the results must be finite and
# accurate there. A formula can be right on paper and still give `nan` or `inf` in floating
# point (what is $e^{800}/e^{800}$ in float64?). `np.tanh` is safe; for $\sigma$, compute
# $e^{-|x|}$ only, which never overflows.

# %% tags=["answer", "q1"]
SQRT_2_OVER_PI = np.sqrt(2 / np.pi)


def sigmoid(x):
    """The logistic function, without overflow for any float ``x``."""
    ### BEGIN SOLUTION
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    ### END SOLUTION


def activation_forward(x, name, *, negative_slope=0.01, alpha=1.0):
    """``f(x)`` elementwise for the activation ``name`` (see the table above)."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    if name == "sigmoid":
        return sigmoid(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, negative_slope * x)
    if name == "elu":
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    if name == "gelu":
        u = SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        return 0.5 * x * (1 + np.tanh(u))
    if name == "silu":
        return x * sigmoid(x)
    raise ValueError(f"activation_forward: unknown name {name!r}")
    ### END SOLUTION


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (8 points, challenge): the activation zoo, backward
#
# Write `activation_backward(dout, x, name)`: given the upstream gradient `dout`
# ($\partial L / \partial y$, same shape as `x`) and the input `x` of the forward pass, return
# $\partial L / \partial x = $ `dout` $\cdot f'(x)$. Derive each $f'$ yourself (for the GELU,
# the product rule and the chain rule through $u$ both matter). At $x = 0$ exactly, ReLU and
# leaky ReLU may take either one-sided derivative; the tests never ask there. Check every
# derivative against `numerical_derivative` before you run `check("q2")`: the hidden tests
# compare yours with the exact one at points near 0 and far from it (relative error
# $10^{-6}$), where a derivative written as a ratio of exponentials turns into `nan`.

# %% tags=["answer", "q2"]
def activation_backward(dout, x, name, *, negative_slope=0.01, alpha=1.0):
    """``dx = dout * f'(x)`` for the activation ``name``."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    if name == "sigmoid":
        s = sigmoid(x)
        local = s * (1 - s)
    elif name == "tanh":
        local = 1 - np.tanh(x) ** 2
    elif name == "relu":
        local = (x > 0).astype(np.float64)
    elif name == "leaky_relu":
        local = np.where(x > 0, 1.0, negative_slope)
    elif name == "elu":
        local = np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))
    elif name == "gelu":
        u = SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = np.tanh(u)
        du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x**2)
        local = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * du
    elif name == "silu":
        s = sigmoid(x)
        local = s * (1 + x * (1 - s))
    else:
        raise ValueError(f"activation_backward: unknown name {name!r}")
    return dout * local
    ### END SOLUTION


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (5 points, standard): Xavier and He initialization
#
# Chapter 03 derives the scale of the initial weights from one requirement: the variance of
# the signal should neither grow nor shrink from layer to layer. Write
# `init_std(fan_in, fan_out, nonlinearity)`, the standard deviation of a zero-mean Gaussian
# initialization:
#
# - `"linear"`, `"tanh"`, `"sigmoid"`: Xavier (Glorot), $\sqrt{2 / (n_{in} + n_{out})}$;
# - `"relu"`: He, $\sqrt{2 / n_{in}}$;
# - `"leaky_relu"`: He with the slope $a$ = `negative_slope`, $\sqrt{2 / ((1 + a^2)\, n_{in})}$.
#
# Raise `ValueError` for any other nonlinearity. Then write
# `init_weight(shape, nonlinearity, rng)`, which draws a weight array of `shape` from
# $\mathcal N(0, \text{std}^2)$ with the generator `rng`. The shape is PyTorch's: `(out, in)`
# for a fully connected layer, `(out, in, kH, kW)` for a convolution, where every output
# sees $n_{in} = \text{in} \cdot k_H k_W$ inputs and every input reaches
# $n_{out} = \text{out} \cdot k_H k_W$ outputs. The tests measure the mean and the standard
# deviation of large draws.

# %% tags=["answer", "q3"]
def init_std(fan_in, fan_out, nonlinearity, *, negative_slope=0.01):
    """Standard deviation of the Xavier or He Gaussian initialization."""
    ### BEGIN SOLUTION
    if nonlinearity in ("linear", "tanh", "sigmoid"):
        return float(np.sqrt(2.0 / (fan_in + fan_out)))
    if nonlinearity == "relu":
        return float(np.sqrt(2.0 / fan_in))
    if nonlinearity == "leaky_relu":
        return float(np.sqrt(2.0 / ((1 + negative_slope**2) * fan_in)))
    raise ValueError(f"init_std: unknown nonlinearity {nonlinearity!r}")
    ### END SOLUTION


def init_weight(shape, nonlinearity, rng, *, negative_slope=0.01):
    """A weight array of ``shape`` ``(out, in)`` or ``(out, in, kH, kW)``, Gaussian."""
    ### BEGIN SOLUTION
    receptive = int(np.prod(shape[2:]))  # 1 for a fully connected layer
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    std = init_std(fan_in, fan_out, nonlinearity, negative_slope=negative_slope)
    return rng.standard_normal(shape) * std
    ### END SOLUTION


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# ## Question 4 (3 points, standard): the key step of the variance argument
#
# Take one fully connected layer $z_i = \sum_{j=1}^{n_{in}} w_{ij} x_j$ with weights and
# inputs independent, the weights zero-mean with variance $\text{Var}(w)$. In three to six
# sentences (formulas welcome): what is $\text{Var}(z_i)$ in terms of $n_{in}$,
# $\text{Var}(w)$ and the inputs, and which assumption makes that step work? Then say where the
# factor 2 of He's initialization comes from when $x_j = \max(0, z_j)$ for the previous
# layer's zero-mean, symmetric $z_j$.

# %% [markdown] tags=["written", "q4"]
# _Write your answer here._
# ### BEGIN SOLUTION
# The terms $w_{ij} x_j$ are independent and each has mean zero (the weight is zero-mean and
# independent of the input), so the variance of the sum is the sum of the variances:
# $\text{Var}(z_i) = n_{in} \text{Var}(w)\, E[x_j^2]$, because
# $\text{Var}(w x) = E[w^2] E[x^2] - (E[w] E[x])^2 = \text{Var}(w) E[x^2]$. For zero-mean
# inputs (linear or tanh layers near 0) $E[x^2] = \text{Var}(x)$, so keeping
# $\text{Var}(z) = \text{Var}(x)$ needs $\text{Var}(w) = 1/n_{in}$ (Glorot averages this with
# the backward pass's $1/n_{out}$). After a ReLU the input is not zero-mean: for a symmetric
# $z$, $E[\max(0, z)^2] = \tfrac12 E[z^2] = \tfrac12 \text{Var}(z)$, since half of the mass of
# $z^2$ is set to zero. So $\text{Var}(z_i) = \tfrac12 n_{in} \text{Var}(w) \text{Var}(z_j)$,
# and keeping it constant needs $\text{Var}(w) = 2 / n_{in}$.
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q4"]
# points: 3
# - 1 point: $\text{Var}(z) = n_{in} \text{Var}(w) E[x^2]$ (or $\text{Var}(x)$ for
#   zero-mean inputs), giving $\text{Var}(w) = 1/n_{in}$ for a linear or tanh layer.
# - 1 point: names the assumption: independent, zero-mean weights (so the cross terms and
#   $E[w]E[x]$ vanish and the variances add).
# - 1 point: the ReLU keeps half of $E[z^2]$ for a symmetric $z$, so $E[x^2] =
#   \tfrac12\text{Var}(z)$ and the weights need twice the variance, $2/n_{in}$. An answer
#   that only says "ReLU kills half the units" without the second moment gets 0.5.

# %% [markdown]
# ## Question 5 (6 points, standard): activation statistics in a deep network
#
# Rerun chapter 03's experiment with your own code. Write
# `activation_stds(weight_std, nonlinearity, *, depth, width, n, rng)`:
#
# 1. draw the input, `n` samples of `width` unit Gaussian features,
#    `h = rng.standard_normal((n, width))`;
# 2. for each of the `depth` layers, draw a fresh weight matrix `(width, width)` from
#    $\mathcal N(0, \text{weight\_std}^2)$, compute $z = h W^T$ (no bias) and
#    $h = f(z)$ with your `activation_forward` (`"tanh"` or `"relu"`);
# 3. return a float array of shape `(depth,)`: the standard deviation of the activations
#    $h$ of each layer, over all of its `n * width` values.
#
# No training and no backward pass. The tests call it with several weight scales (0.01, 1.0,
# Xavier's $1/\sqrt{\text{width}}$, He's $\sqrt{2/\text{width}}$) and compare each layer's
# value with the reference's, within 10% for tanh and within a factor 1.35 for ReLU (your
# random draws are not ours, so the values differ a little; random ReLU networks differ
# more from one draw to the next: run yours with a few seeds and see).

# %% tags=["answer", "q5"]
def activation_stds(weight_std, nonlinearity="tanh", *, depth=10, width=500, n=1000, rng):
    """Per-layer standard deviation of the activations of a random deep network."""
    ### BEGIN SOLUTION
    h = rng.standard_normal((n, width))  # (n, width)
    stds = []
    for _ in range(depth):
        w = rng.standard_normal((width, width)) * weight_std  # (out, in)
        h = activation_forward(h @ w.T, nonlinearity)  # (n, width)
        stds.append(h.std())
    return np.array(stds)
    ### END SOLUTION


# %% tags=["check", "q5"]
check("q5")

# %% [markdown]
# Now look at the numbers. The next cell draws one curve per initialization (a log scale:
# the collapse spans orders of magnitude). It is a demo cell: the grader never runs it.

# %% tags=["demo"]
import matplotlib.pyplot as plt  # noqa: E402

try:
    width = 500
    settings_ = {"tanh, std 0.01": (0.01, "tanh"), "tanh, std 1.0": (1.0, "tanh"),
                 "tanh, Xavier": (1 / np.sqrt(width), "tanh"),
                 "ReLU, Xavier": (1 / np.sqrt(width), "relu"),
                 "ReLU, He": (np.sqrt(2 / width), "relu")}
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for label, (std, act) in settings_.items():
        curve = activation_stds(std, act, width=width, rng=np.random.default_rng(0))
        ax.semilogy(np.arange(1, len(curve) + 1), curve, "o-", label=label)
        print(f"{label:16s}", " ".join(f"{s:9.3g}" for s in curve))
    ax.set(xlabel="layer", ylabel="std of the activations",
           title="Ten layers of 500 units, no training")
    ax.legend()
    plt.show()
except NotImplementedError:
    print("finish questions 1 and 5 first")

# %% [markdown]
# ## Question 6 (3 points, standard): what the plot shows
#
# Using the numbers and the plot above, explain in four to eight sentences: (a) why the
# activations with std 0.01 shrink by about the same factor in every layer, and what that
# factor is (compute it); (b) what goes wrong with std 1.0 even though the activations do
# not shrink, and what it does to the gradients; (c) why Xavier keeps tanh healthy but lets
# ReLU activations decay, and how He fixes that.

# %% [markdown] tags=["written", "q6"]
# _Write your answer here._
# ### BEGIN SOLUTION
# (a) With std 0.01 the pre-activations are small, where $\tanh z \approx z$, so each layer
# multiplies the standard deviation by $\sqrt{n_{in}}\,\sigma_w = \sqrt{500} \cdot 0.01
# \approx 0.22$: after ten layers about $0.22^{10} \approx 3 \cdot 10^{-7}$. (b) With std 1.0
# the pre-activations have std about $\sqrt{500} \approx 22$, so almost every unit sits at
# $\pm 1$ (the std stays near 0.98): the local gradients $1 - \tanh^2 z$ are almost all zero,
# so the backward pass is choked off and the network cannot learn; it behaves like a stack
# of sign functions. (c) Xavier makes the factor $\sqrt{n_{in}}\sigma_w = 1$, and $\tanh$ is
# close to linear at that scale, so its activations decay only slowly (it is a little
# contracting). A ReLU keeps only half of the second moment, so with Xavier each layer
# multiplies the std by about $1/\sqrt 2$ and the activations decay geometrically; He's
# $\sqrt{2 / n_{in}}$ puts the factor 2 back and the std stays roughly constant.
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q6"]
# points: 3
# - 1 point: (a) tanh is about linear for small inputs, factor $0.01 \sqrt{500} \approx 0.22$
#   per layer (any equivalent computation), hence the geometric collapse.
# - 1 point: (b) saturation at $\pm 1$: the std does not shrink, but the local gradients
#   $1 - \tanh^2$ vanish, so learning stalls.
# - 1 point: (c) ReLU halves the second moment: Xavier decays by about $1/\sqrt{2}$ per
#   layer; He's factor 2 compensates. Half a point if only one of tanh/ReLU is explained.

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
ZOO = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu")


def _points(rng, n=40):
    """Points of both signs away from 0 (where ReLU's derivative is a convention)."""
    x = rng.uniform(0.05, 4.0, size=n) * rng.choice([-1.0, 1.0], size=n)
    x[:2] = [-1.5, 2.0]  # both signs, whatever the draw
    return x


def _far(rng):
    """Large |x| of both signs, some past float64's exp overflow (|x| > 709.8)."""
    mags = np.concatenate([rng.uniform(30, 700, size=4), rng.uniform(720, 1000, size=2)])
    return np.concatenate([-mags, mags])


def _forward_all(ns, x, names, **kw):
    return {name: np.asarray(ns.activation_forward(x, name, **kw), dtype=np.float64)
            for name in names}


def _backward_all(ns, x, dout, names, **kw):
    return {name: np.asarray(ns.activation_backward(dout, x, name, **kw), dtype=np.float64)
            for name in names}


def _stds_close(max_log_ratio):
    """Checker: every layer's std within a factor ``exp(max_log_ratio)`` of the expected."""

    def check(got, expected):
        g, e = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        if g.shape != e.shape:
            return False, f"expected shape {e.shape}, got shape {g.shape}"
        if not np.all(np.isfinite(g)) or np.any(g <= 0):
            return False, "every standard deviation must be finite and positive"
        ratio = np.abs(np.log(g / e))
        worst = int(np.argmax(ratio))
        ok = bool(ratio[worst] <= max_log_ratio)
        return ok, "" if ok else (f"layer {worst + 1}: expected about {e[worst]:.4g}, got "
                                  f"{g[worst]:.4g}")

    check.__name__ = f"stds_close({max_log_ratio})"
    return check


@case("q1", "sigmoid, tanh and relu at 40 points", points=1,
      hint="np.tanh, np.maximum(x, 0); for the sigmoid see the note on overflow")
def _(ns, rng):
    return _forward_all(ns, _points(rng), ("sigmoid", "tanh", "relu"))


@case("q2", "sigmoid, tanh and relu derivatives at 40 points", points=2,
      hint="sigma' = sigma (1 - sigma); tanh' = 1 - tanh^2; multiply by dout")
def _(ns, rng):
    x = _points(rng)
    return _backward_all(ns, x, rng.standard_normal(x.shape), ("sigmoid", "tanh", "relu"))


@case("q3", "init_std: tanh 300 -> 100, relu 300 -> 100", points=1,
      hint="Xavier: sqrt(2 / (fan_in + fan_out)); He: sqrt(2 / fan_in)")
def _(ns, rng):
    return [float(ns.init_std(300, 100, "tanh")), float(ns.init_std(300, 100, "relu"))]


@case("q5", "tanh, std 0.01 and 1.0, 5 layers of 100 units", points=2,
      checker=_stds_close(0.1), hint="a fresh weight matrix per layer; record the std of "
      "the activations AFTER the nonlinearity, one number per layer")
def _(ns, rng):
    return np.concatenate([
        np.asarray(ns.activation_stds(s, "tanh", depth=5, width=100, n=300,
                                      rng=np.random.default_rng(seed)), dtype=np.float64)
        for seed, s in ((1, 0.01), (2, 1.0))])


# %% tags=["tests", "hidden"]
# Plausible wrong answers, and what they score (tests/grading/test_new_homework.py):
# q1: tanh written as (e^x - e^-x) / (e^x + e^-x): nan at large |x|, 4 of 5.
# q2: the GELU derivative without the product rule's second term, 0.5 (1 + tanh u): 5 of 8.
# q3: He with fan_out instead of fan_in: 0 of 5 (every case has a ReLU layer).
# q5: the std of the pre-activations z instead of the activations h: 0 of 6.
@case("q1", "leaky ReLU and ELU with their own slope and alpha", points=1)
def _(ns, rng):
    return _forward_all(ns, _points(rng), ("leaky_relu", "elu"), negative_slope=0.2,
                        alpha=1.7)


@case("q1", "GELU (tanh approximation) and SiLU", points=1)
def _(ns, rng):
    return _forward_all(ns, _points(rng), ("gelu", "silu"))


@case("q1", "all seven at large |x| (finite and right)", points=1,
      checker=checks.close(rtol=1e-6, atol=1e-12))
def _(ns, rng):
    x = _far(rng)
    with np.errstate(all="ignore"):
        return _forward_all(ns, x, ZOO)


@case("q1", "all seven near 0, and an unknown name is refused", points=1,
      checker=checks.close(rtol=1e-6, atol=1e-15))
def _(ns, rng):
    x = rng.uniform(1e-6, 1e-3, size=10) * np.repeat([-1.0, 1.0], 5)
    out = _forward_all(ns, x, ZOO)
    out["refused"] = checks.raised(lambda: ns.activation_forward(x, "softsign"))
    return out


@case("q2", "leaky ReLU and ELU with their own slope and alpha", points=1,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x = _points(rng)
    d = _backward_all(ns, x, rng.standard_normal(x.shape), ("leaky_relu", "elu"),
                      negative_slope=0.2, alpha=1.7)
    return np.concatenate([d["leaky_relu"], d["elu"]])


@case("q2", "GELU derivative", points=2, checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x = _points(rng)
    return _backward_all(ns, x, rng.standard_normal(x.shape), ("gelu",))["gelu"]


@case("q2", "SiLU derivative", points=1, checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x = _points(rng)
    return _backward_all(ns, x, rng.standard_normal(x.shape), ("silu",))["silu"]


@case("q2", "all seven at large |x| (finite and right)", points=1,
      checker=checks.close(rtol=1e-6, atol=1e-12))
def _(ns, rng):
    x = _far(rng)
    with np.errstate(all="ignore"):
        return _backward_all(ns, x, rng.standard_normal(x.shape), ZOO)


@case("q2", "all seven near 0", points=1, checker=checks.close(rtol=1e-6, atol=1e-15))
def _(ns, rng):
    x = rng.uniform(1e-6, 1e-3, size=10) * np.repeat([-1.0, 1.0], 5)
    return _backward_all(ns, x, rng.standard_normal(x.shape), ZOO)


@case("q3", "init_std for every nonlinearity, and an unknown one refused", points=2)
def _(ns, rng):
    fans = [(64, 10), (27, 144), (1000, 1000)]
    out = [float(ns.init_std(a, b, nl)) for a, b in fans
           for nl in ("linear", "sigmoid", "tanh", "relu")]
    out.append(float(ns.init_std(50, 20, "leaky_relu", negative_slope=0.3)))
    return [out, checks.raised(lambda: ns.init_std(10, 10, "softsign"))]


@case("q3", "init_weight: conv and linear shapes, measured mean and std", points=2,
      checker=checks.close(rtol=0.03, atol=0.0))
def _(ns, rng):
    out = {}
    for shape, nl in (((64, 32, 3, 3), "relu"), ((400, 300), "tanh")):
        w = np.asarray(ns.init_weight(shape, nl, np.random.default_rng(int(rng.integers(99)))),
                       dtype=np.float64)
        # centred: the mean within 5 standard errors of 0 (a correct draw always is)
        out[nl] = {"shape": [int(s) for s in w.shape], "std": float(w.std()),
                   "centred": bool(abs(w.mean()) < 5 * w.std() / np.sqrt(w.size))}
    return out


@case("q5", "tanh with Xavier, 10 layers of 250 units", points=2, checker=_stds_close(0.1))
def _(ns, rng):
    return np.asarray(ns.activation_stds(1 / np.sqrt(250), "tanh", depth=10, width=250,
                                         n=500, rng=rng), dtype=np.float64)


# A random ReLU network's statistics fluctuate much more from draw to draw than a tanh
# network's (its activations are positive, so every sample shares the draw's luck): over 30
# seeds, layers 5-6 of this case differ by up to log-ratio 0.16; the tolerance is 0.3.
@case("q5", "ReLU with Xavier and with He, 6 layers of 600 units", points=2,
      checker=_stds_close(0.3))
def _(ns, rng):
    return np.concatenate([
        np.asarray(ns.activation_stds(s, "relu", depth=6, width=600, n=300, rng=rng),
                   dtype=np.float64) for s in (1 / np.sqrt(600), np.sqrt(2 / 600))])


# %% tags=["autograder"]
settings(
    forbid=["torch", "scipy", "d2lcnn.numpy", "d2lcnn.torch", "d2lcnn.gradcheck",
            "d2lcnn.checks"],
    case_timeout=20,
    cell_timeout=60,
    memory_mb=2048,
)
