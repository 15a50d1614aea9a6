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
# # Homework 2: Batch normalization and dropout in NumPy
#
# **Follows:** [chapter 5, Batch normalization and other normalization
# layers](../../05-normalization.ipynb) and [chapter 6, Dropout, regularization and
# ensembles](../../06-dropout-and-ensembles.ipynb)
# **Estimated time:** 4–5 hours (a first draft, not yet timed on students: the reference
# solution is 86 lines, at about 3 minutes a line for a first encounter, reading included,
# plus about 30 minutes for deriving the BatchNorm backward pass and writing down its key
# step)
#
# **Learning goals.** After this assignment you can
#
# - write batch normalization's forward pass in training and evaluation mode, with
#   running statistics, and avoid the batch-of-one trap;
# - derive batch normalization's backward pass from its computational graph, without being
#   handed the formula, and explain through which paths one input reaches the loss;
# - write layer and group normalization forward and backward by reducing them to the same
#   per-row normalization, and say over which axes each one takes its statistics;
# - compute exact inference statistics in one extra pass without catastrophic
#   cancellation;
# - write inverted dropout so that evaluation needs no rescaling.
#
# Chapters 05 and 06 use the package's normalization and dropout layers. Here you write them
# yourself, forward **and** backward, in training and in evaluation mode:
#
# | question | what you do | points | difficulty |
# | --- | --- | --- | --- |
# | 1 | `batch_norm_forward`: batch statistics to train, running ones to evaluate | 9 | standard |
# | 2 | `batch_norm_backward`: `dx`, `dgamma`, `dbeta`, derived by you | 8 | challenge |
# | 3 | written: the key step of that derivation | 3 | challenge |
# | 4 | `spatial_batch_norm_forward` / `_backward` for `(N, C, H, W)` maps | 5 | standard |
# | 5 | `layer_norm_forward` / `_backward`: statistics per sample | 6 | standard |
# | 6 | `group_norm_forward` / `_backward`: statistics per sample and group | 6 | standard |
# | 7 | `population_statistics`: exact inference statistics, one extra pass | 4 | standard |
# | 8 | `dropout_forward` / `_backward`: inverted dropout, PyTorch's convention | 7 | guided |
#
# **Rules.** Use NumPy only: `torch`, `scipy` and the package (`d2lcnn.numpy`,
# `d2lcnn.torch`, `d2lcnn.gradcheck`) are blocked when your notebook is graded. Write your
# code where it says `# YOUR CODE HERE`; do not rename the functions or change their
# arguments (they are those of `d2lcnn.numpy` and `torch.nn.functional`). Run `check("qN")`
# after each answer: it runs the public tests. The grade also uses hidden tests (other
# shapes, momenta, dropout rates, and evaluation-mode traps), so pass the public ones for the
# right reasons. Question 3 is answered in words, in the markdown cell under it, and graded
# by hand. When you are done, save the notebook and run `submit()`.

# %%
import numpy as np

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw2-batchnorm-dropout", globals())
check, submit = grader.check, grader.submit


# %% [markdown]
# Two helpers for checking your own work: the relative error between two arrays, and a
# centred-difference numerical gradient of a scalar function `f()` of the array `x`
# (homework 1, q5).

# %%
def rel_error(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))


def numerical_gradient(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = f()
        x[idx] = old - h
        minus = f()
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


# %% [markdown]
# ## Question 1 (9 points, standard): Batch normalization, forward
#
# The arguments are those of `torch.nn.functional.batch_norm` (and `nd.batch_norm_forward`):
# `input` ($x$) has shape `(N, D)`, `weight` is the scale $\gamma$ and `bias` the shift
# $\beta$, each `(D,)`. In **training** mode, normalize each feature with the mean and the
# *biased* variance of the batch, then scale and shift:
#
# $$\mu_d = \frac1N \sum_n x_{nd}, \qquad \sigma^2_d = \frac1N \sum_n (x_{nd} - \mu_d)^2,
# \qquad y_{nd} = \gamma_d \frac{x_{nd} - \mu_d}{\sqrt{\sigma^2_d + \epsilon}} + \beta_d ,$$
#
# and update the running statistics **in place** (`running_mean[:] = ...`) with PyTorch's
# conventions: `momentum` weights the NEW batch, and the running variance tracks the
# *unbiased* batch variance $\frac{N}{N-1}\sigma^2_d$:
#
# ```
# running_mean = (1 - momentum) * running_mean + momentum * mu
# running_var  = (1 - momentum) * running_var  + momentum * var * N / (N - 1)
# ```
#
# In **evaluation** mode (`training=False`), normalize with `running_mean` and `running_var`
# instead and leave them unchanged. This is the trap of the chapter: a layer that uses the
# batch's own statistics at test time gives a different answer for the same image depending on
# what else is in the batch, and for a batch of one image outputs $\beta$ whatever the input.
# Return `out` and a `cache` for q2.

# %% tags=["answer", "q1"]
def batch_norm_forward(input, running_mean, running_var, weight, bias, *, training=False,
                       momentum=0.1, eps=1e-5):
    """``out, cache = batch_norm_forward(x, running_mean, running_var, gamma, beta,
    training=...)`` for ``x`` of shape ``(N, D)``: the arguments of ``nd.batch_norm_forward``
    and ``F.batch_norm`` (``weight`` is gamma, ``bias`` is beta)."""
    ### BEGIN SOLUTION
    x, gamma, beta = input, weight, bias
    if training:
        n = x.shape[0]
        mu = x.mean(axis=0)  # (D,)
        var = x.var(axis=0)  # (D,) biased
        running_mean[:] = (1 - momentum) * running_mean + momentum * mu
        running_var[:] = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mu, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)  # (D,)
    x_hat = (x - mu) * inv_std  # (N, D)
    out = gamma * x_hat + beta
    cache = (x_hat, gamma, inv_std)
    ### END SOLUTION
    return out, cache


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (8 points, challenge): Batch normalization, backward
#
# Write the backward pass of the **training-mode** forward pass of q1. Given
# `dout` $= \partial L/\partial y$ of shape `(N, D)` and the `cache` your q1 returned, return
# `dx, dgamma, dbeta` $= \partial L/\partial x$, $\partial L/\partial\gamma$,
# $\partial L/\partial\beta$, with the shapes of `x`, `gamma` and `beta`. The cache is yours:
# store in it, in q1, whatever this pass needs (it must still be returned as `cache`).
#
# No formula is given: derive it. Draw the computational graph from $x$ to $y$ (it goes
# through $\mu$, $\sigma^2$ and $\hat x$), backpropagate through it node by node, and then,
# if you like, simplify. Check yourself with `numerical_gradient` before you run
# `check("q2")`. The hidden tests compare your three arrays with the exact gradient, entry by
# entry (relative error below $10^{-6}$), on inputs you do not see, among them a batch of
# only **N = 2** rows (where most of $\hat x$'s dependence on $x$ cancels, so a step that is
# only roughly right shows) and a batch with **thousands of features** (so no Python loop
# over rows or features).

# %% tags=["answer", "q2"]
def batch_norm_backward(dout, cache):
    """``dx, dgamma, dbeta = batch_norm_backward(dout, cache)`` for the training-mode forward."""
    ### BEGIN SOLUTION
    x_hat, gamma, inv_std = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma * inv_std / n * (n * dout - dbeta - x_hat * dgamma)
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (3 points, challenge): BatchNorm backward, the key step
#
# In the forward pass, $\hat x_{nd}$ depends on its own input $x_{nd}$ and on every other
# input of its column. In three to six sentences (formulas welcome): through which paths does
# one input $x_{nd}$ reach the loss? Write $\partial L/\partial x_{nd}$ as a sum of one term
# per path (a term may stay a product of partial derivatives, such as
# $\frac{\partial L}{\partial \mu_d}\frac{\partial \mu_d}{\partial x_{nd}}$, if you say what
# each factor is). Then say what an answer that forgets one of the paths gets wrong; a hint:
# what must $\sum_n \partial L/\partial x_{nd}$ be, and why?

# %% [markdown] tags=["written", "q3"]
# _Write your answer here._
# ### BEGIN SOLUTION
# Write $s_d = \sqrt{\sigma^2_d + \epsilon}$ and $\hat g_{nd} = \partial L/\partial \hat x_{nd}
# = \gamma_d g_{nd}$. The input $x_{nd}$ reaches the loss along three paths: directly through
# its own $\hat x_{nd} = (x_{nd} - \mu_d)/s_d$; through the mean $\mu_d$, which every
# $\hat x_{md}$ of the column uses; and through the variance $\sigma^2_d$, which every
# $\hat x_{md}$ uses too. The chain rule adds one term per path:
# $$\frac{\partial L}{\partial x_{nd}} = \frac{\hat g_{nd}}{s_d}
# + \frac{\partial L}{\partial \mu_d}\frac{1}{N}
# + \frac{\partial L}{\partial \sigma^2_d}\frac{2(x_{nd} - \mu_d)}{N},$$
# with $\partial L/\partial \sigma^2_d = -\frac{1}{2 s_d^3}\sum_m \hat g_{md}(x_{md} - \mu_d)$
# and $\partial L/\partial \mu_d = -\frac{1}{s_d}\sum_m \hat g_{md}$ (the variance's own
# dependence on $\mu_d$ adds $\frac{\partial L}{\partial\sigma^2_d}\cdot(-\frac2N)\sum_m
# (x_{md} - \mu_d) = 0$). Substituting gives $\frac{\gamma_d}{N s_d}\big(N g_{nd} - \sum_m
# g_{md} - \hat x_{nd}\sum_m g_{md}\hat x_{md}\big)$: the mean path subtracts the batch mean
# of the gradient and the variance path its projection on $\hat x$. Shifting the whole
# column by a constant changes neither $\hat x$ nor the loss, so $\sum_n \partial L/\partial
# x_{nd} = 0$ (and scaling the column changes $\hat x$ only through $\epsilon$, so
# $\sum_n \hat x_{nd}\,\partial L/\partial x_{nd} \approx 0$). An answer that treats $\mu$
# and $\sigma^2$ as constants returns $\gamma_d g_{nd}/s_d$, which breaks both identities;
# with $N = 2$ the true gradient is almost 0 (two rows normalize to about $\pm 1$ whatever
# they are) while that answer is not.
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q3"]
# points: 3
# - 1 point: names the three paths: directly through $\hat x_{nd}$, through the mean $\mu_d$
#   and through the variance $\sigma^2_d$ (both shared by the whole column).
# - 1 point: the sum of one term per path with right factors: $1/s_d$ for the direct one,
#   $\partial\mu_d/\partial x_{nd} = 1/N$, $\partial\sigma^2_d/\partial x_{nd} =
#   2(x_{nd} - \mu_d)/N$, and $\partial L/\partial\mu_d$, $\partial L/\partial\sigma^2_d$ as
#   sums over the batch. 0.5 if one factor is wrong or missing.
# - 1 point: what a missing path breaks: $\sum_n \partial L/\partial x_{nd} = 0$ because a
#   shift of the column changes nothing (a missing mean path breaks it; a missing variance
#   path breaks the scale identity, or the answer says the result is wrong for small
#   batches such as $N = 2$). 0.5 for "it is wrong" with no property or example.

# %% [markdown]
# ## Question 4 (5 points, standard): Spatial batch normalization
#
# For convolutional features `x` of shape `(N, C, H, W)`, each channel has ONE mean and
# variance, shared by all $N \cdot H \cdot W$ positions (a channel detects the same thing
# everywhere). Reuse q1 and q2: move the channel axis last, flatten to `(N*H*W, C)`, call your
# 1-D functions, and undo the reshape. The running statistics have shape `(C,)` and the
# unbiased correction uses $m = N H W$.

# %% tags=["answer", "q4"]
def spatial_batch_norm_forward(input, running_mean, running_var, weight, bias, *,
                               training=False, momentum=0.1, eps=1e-5):
    """``out, cache`` for ``input`` of shape ``(N, C, H, W)``; statistics per channel."""
    ### BEGIN SOLUTION
    N, C, H, W = input.shape
    x2 = input.transpose(0, 2, 3, 1).reshape(-1, C)  # (N*H*W, C)
    out2, cache = batch_norm_forward(x2, running_mean, running_var, weight, bias,
                                     training=training, momentum=momentum, eps=eps)
    out = out2.reshape(N, H, W, C).transpose(0, 3, 1, 2)  # (N, C, H, W)
    ### END SOLUTION
    return out, cache


def spatial_batch_norm_backward(dout, cache):
    """``dx, dgamma, dbeta`` for :func:`spatial_batch_norm_forward` in training mode."""
    ### BEGIN SOLUTION
    N, C, H, W = dout.shape
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, C)  # (N*H*W, C)
    dx2, dgamma, dbeta = batch_norm_backward(d2, cache)
    dx = dx2.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% tags=["check", "q4"]
check("q4")

# %% [markdown]
# ## Question 5 (6 points, standard): Layer normalization, forward and backward
#
# Layer normalization (the arguments of `torch.nn.functional.layer_norm` and
# `nd.layer_norm_forward`) turns batch normalization around: each **sample** is normalized
# with the mean and biased variance of its own trailing `normalized_shape` dimensions (an
# int `D` for `(N, D)` inputs, or a tuple such as `(C, H, W)` or `(H, W)` for feature maps),
# and the scale `weight` ($\gamma$) and shift `bias` ($\beta$) have shape `normalized_shape`:
# one per feature, shared by the samples. There are no running statistics, training and
# evaluation are the same, and a batch of one is fine.
#
# Return `out, cache` from the forward pass, and `dx, dgamma, dbeta` (the shapes of `input`,
# `weight` and `bias`) from the backward pass. The normalization part of the backward pass is
# the one you derived in q2 with the roles of the axes swapped (flatten to
# `(rows, features)`); the parameter gradients sum over every leading dimension.

# %% tags=["answer", "q5"]
def layer_norm_forward(input, normalized_shape, weight, bias, *, eps=1e-5):
    """``out, cache`` for ``input`` of shape ``(*, *normalized_shape)``; ``weight`` and
    ``bias`` of shape ``normalized_shape``; statistics per sample."""
    ### BEGIN SOLUTION
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    shape = tuple(normalized_shape)
    m = int(np.prod(shape))
    x2 = input.reshape(-1, m)  # (rows, m): one row per sample
    mu = x2.mean(axis=1, keepdims=True)  # (rows, 1)
    inv_std = 1.0 / np.sqrt(x2.var(axis=1, keepdims=True) + eps)  # (rows, 1)
    x_hat = ((x2 - mu) * inv_std).reshape(input.shape)
    out = weight * x_hat + bias
    cache = (x_hat, weight, inv_std, shape)
    ### END SOLUTION
    return out, cache


def layer_norm_backward(dout, cache):
    """``dx, dgamma, dbeta`` for :func:`layer_norm_forward`."""
    ### BEGIN SOLUTION
    x_hat, weight, inv_std, shape = cache
    lead = tuple(range(dout.ndim - len(shape)))  # the axes gamma and beta are shared over
    dbeta = dout.sum(axis=lead)
    dgamma = (dout * x_hat).sum(axis=lead)
    m = int(np.prod(shape))
    g = (dout * weight).reshape(-1, m)  # dL/dx_hat, (rows, m)
    xh = x_hat.reshape(-1, m)
    dx = inv_std * (g - g.mean(axis=1, keepdims=True)
                    - xh * (g * xh).mean(axis=1, keepdims=True))
    dx = dx.reshape(dout.shape)
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% tags=["check", "q5"]
check("q5")

# %% [markdown]
# ## Question 6 (6 points, standard): Group normalization, forward and backward
#
# Group normalization (`torch.nn.functional.group_norm`, `nd.group_norm_forward`) sits
# between the two: for `input` of shape `(N, C, H, W)`, the `C` channels are split into
# `num_groups` $= G$ groups of `C // G` **consecutive** channels, and each sample's group is
# normalized with the mean and biased variance of its `C // G * H * W` values. The scale
# `weight` and shift `bias` are per channel, shape `(C,)`. $G = 1$ normalizes each sample as
# a whole (layer normalization over `(C, H, W)` with per-channel parameters) and $G = C$ each
# channel of each sample on its own (instance normalization). Raise `ValueError` unless `G`
# divides `C`.
#
# Return `out, cache` and `dx, dgamma, dbeta` as in q5. A reshape to `(N * G, -1)` makes the
# groups the rows, so the normalization backward is q5's; the parameters are per channel,
# so their gradients sum over `N`, `H` and `W`.

# %% tags=["answer", "q6"]
def group_norm_forward(input, num_groups, weight, bias, *, eps=1e-5):
    """``out, cache`` for ``input`` of shape ``(N, C, H, W)`` and ``num_groups`` groups of
    consecutive channels; ``weight`` and ``bias`` of shape ``(C,)``."""
    ### BEGIN SOLUTION
    N, C, H, W = input.shape
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"num_groups must divide C = {C}, got {num_groups}")
    x2 = input.reshape(N * num_groups, -1)  # (N*G, C//G*H*W): one row per sample and group
    mu = x2.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(x2.var(axis=1, keepdims=True) + eps)  # (N*G, 1)
    x_hat = ((x2 - mu) * inv_std).reshape(N, C, H, W)
    out = weight.reshape(1, C, 1, 1) * x_hat + bias.reshape(1, C, 1, 1)
    cache = (x_hat, weight, inv_std, num_groups)
    ### END SOLUTION
    return out, cache


def group_norm_backward(dout, cache):
    """``dx, dgamma, dbeta`` for :func:`group_norm_forward`."""
    ### BEGIN SOLUTION
    x_hat, weight, inv_std, num_groups = cache
    N, C, H, W = dout.shape
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    g = (dout * weight.reshape(1, C, 1, 1)).reshape(N * num_groups, -1)  # dL/dx_hat
    xh = x_hat.reshape(N * num_groups, -1)
    dx = inv_std * (g - g.mean(axis=1, keepdims=True)
                    - xh * (g * xh).mean(axis=1, keepdims=True))
    dx = dx.reshape(N, C, H, W)
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% tags=["check", "q6"]
check("q6")

# %% [markdown]
# ## Question 7 (4 points, standard): Inference statistics from an extra pass
#
# Running averages are one way to get test-time statistics; another is one extra pass over
# the training set with the trained weights, accumulating the exact per-feature mean and
# *unbiased* variance of all the rows the layer sees. `batches` is an iterable of arrays of
# shape `(N_i, D)` (the sizes may differ, and it may be a generator that can be read only
# once). Return `mean, var`, each of shape `(D,)`, equal to what
# `np.concatenate(list(batches))` would give with `.mean(0)` and `.var(0, ddof=1)`, without
# keeping the batches in memory: accumulate counts, sums and sums of squares (in float64).

# %% tags=["answer", "q7"]
def population_statistics(batches):
    """Exact per-feature mean and unbiased variance over all rows of ``batches``."""
    ### BEGIN SOLUTION
    count, total, total_sq = 0, 0.0, 0.0
    for b in batches:
        b = np.asarray(b, dtype=np.float64)
        count += b.shape[0]
        total = total + b.sum(axis=0)
        total_sq = total_sq + (b * b).sum(axis=0)
    mean = total / count
    var = (total_sq - count * mean * mean) / (count - 1)
    return mean, var
    ### END SOLUTION


# %% tags=["check", "q7"]
check("q7")

# %% [markdown]
# ## Question 8 (7 points, guided): Inverted dropout
#
# PyTorch's convention: `p` is the probability of DROPPING a unit (the lecture's vanilla
# dropout used the keep probability; here keep $= 1 - p$). In training, keep each element
# where `generator.random(input.shape) >= p` (draw exactly this, once, so that your mask
# matches the tests'), zero the others, and scale the survivors by $1/(1-p)$ so that the
# expected output equals the input; in evaluation return `input` unchanged, so the test-time
# network needs no
# rescaling. Raise `ValueError` unless `0 <= p < 1`. The backward pass applies the same mask
# and scale to `dout`.

# %% tags=["answer", "q8"]
def dropout_forward(input, *, p=0.5, training=True, generator):
    """``out, cache = dropout_forward(x, p=0.5, training=True,
    generator=np.random.default_rng(0))``."""
    ### BEGIN SOLUTION
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    if not training:
        return input, (None, 1.0)
    mask = generator.random(input.shape) >= p
    scale = 1.0 / (1.0 - p)
    out = input * mask * scale
    cache = (mask, scale)
    ### END SOLUTION
    return out, cache


def dropout_backward(dout, cache):
    """``dx = dropout_backward(dout, cache)``."""
    ### BEGIN SOLUTION
    mask, scale = cache
    if mask is None:
        return dout
    dx = dout * mask * scale
    ### END SOLUTION
    return dx


# %% tags=["check", "q8"]
check("q8")

# %% [markdown]
# Finally, check your three backward passes numerically on small inputs: the relative
# errors should be around `1e-6` or smaller (the centred difference itself is not much more
# accurate than that); a wrong gradient gives errors near 1.

# %% tags=["demo"]
def gradient_errors(forward, backward, x, params):
    """Relative errors of ``backward``'s ``dx, dgamma, dbeta`` against numerical gradients
    of ``sum(forward(x, *params)[0] * dout)``."""
    dout = np.random.default_rng(1).standard_normal(forward(x, *params)[0].shape)

    def loss():
        return float(np.sum(forward(x, *params)[0] * dout))

    grads = backward(dout, forward(x, *params)[1])
    pairs = zip(grads, (x, *params), strict=True)
    return [rel_error(g, numerical_gradient(loss, a)) for g, a in pairs]


rng = np.random.default_rng(0)
checks_to_run = {
    "batch norm": (lambda x, g, b: batch_norm_forward(x, np.zeros(3), np.ones(3), g, b,
                                                      training=True),
                   lambda d, c: batch_norm_backward(d, c),
                   rng.standard_normal((5, 3)) * 2 + 1, (3,)),
    "layer norm": (lambda x, g, b: layer_norm_forward(x, (3, 2), g, b),
                   lambda d, c: layer_norm_backward(d, c),
                   rng.standard_normal((4, 3, 2)) * 2 + 1, (3, 2)),
    "group norm": (lambda x, g, b: group_norm_forward(x, 2, g, b),
                   lambda d, c: group_norm_backward(d, c),
                   rng.standard_normal((2, 4, 2, 3)) * 2 + 1, (4,)),
}
for name, (forward, backward, x, pshape) in checks_to_run.items():
    params = (rng.standard_normal(pshape), rng.standard_normal(pshape))
    try:
        errors = gradient_errors(forward, backward, x, params)
        print(f"{name}: dx {errors[0]:.1e}, dgamma {errors[1]:.1e}, dbeta {errors[2]:.1e}")
    except NotImplementedError as e:
        print(f"{name}: not written yet ({e})")

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
def _bn_problem(rng, n, d, *, scale=3.0, shift=2.0):
    x = rng.standard_normal((n, d)) * scale + shift
    return x, rng.standard_normal(d), rng.standard_normal(d)


def _bn_train(ns, x, gamma, beta, momentum=0.1, *, steps=1):
    rm, rv = np.zeros(x.shape[1]), np.ones(x.shape[1])
    for _ in range(steps):
        out, cache = ns.batch_norm_forward(x, rm, rv, gamma, beta,
                                          training=True, momentum=momentum)
    return out, cache, rm, rv


@case("q1", "training: normalized output, batch of 8", points=2,
      hint="mean and var over axis 0; var is the biased one (np.var's default)")
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 8, 4)
    return ns.batch_norm_forward(x, np.zeros(4), np.ones(4), gamma, beta,
                                training=True)[0]


@case("q1", "training: running statistics updated in place", points=1,
      hint="running_var tracks the UNBIASED variance: multiply by N / (N - 1)")
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 8, 4)
    _, _, rm, rv = _bn_train(ns, x, gamma, beta)
    return {"running_mean": rm, "running_var": rv}


@case("q2", "dx, dgamma, dbeta for a batch of 6", points=2,
      hint="compare with numerical_gradient first (the demo cell at the end does); then "
      "look at dx.sum(axis=0): what must it be?")
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 6, 5)
    out, cache, _, _ = _bn_train(ns, x, gamma, beta)
    dx, dgamma, dbeta = ns.batch_norm_backward(rng.standard_normal(out.shape), cache)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


@case("q4", "forward, training, (2, 3, 4, 5)", points=1,
      hint="x.transpose(0, 2, 3, 1).reshape(-1, C), and back")
def _(ns, rng):
    x = rng.standard_normal((2, 3, 4, 5)) * 2 - 1
    rm, rv = np.zeros(3), np.ones(3)
    out, _ = ns.spatial_batch_norm_forward(x, rm, rv, rng.standard_normal(3),
                                           rng.standard_normal(3), training=True)
    return {"out": out, "running_mean": rm, "running_var": rv}


def _norm_grads(forward, backward, x, params, rng, *args):
    """``out`` of ``forward(x, *args, *params)`` and the gradients its ``backward`` gives for
    a random ``dout``, as one dict."""
    out, cache = forward(x, *args, *params)
    dx, dgamma, dbeta = backward(rng.standard_normal(np.shape(out)), cache)
    return {"out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


@case("q5", "forward and backward, (4, 6), normalized_shape 6", points=2,
      hint="statistics over axis 1 (each row is a sample); dgamma and dbeta sum over axis 0")
def _(ns, rng):
    x = rng.standard_normal((4, 6)) * 3 + 1
    params = (rng.standard_normal(6), rng.standard_normal(6))
    return _norm_grads(ns.layer_norm_forward, ns.layer_norm_backward, x, params, rng, 6)


@case("q6", "forward and backward, (2, 6, 3, 3), 3 groups", points=2,
      hint="x.reshape(N * G, -1): the rows are the groups of consecutive channels; weight and "
      "bias broadcast as (1, C, 1, 1)")
def _(ns, rng):
    x = rng.standard_normal((2, 6, 3, 3)) * 2 - 1
    params = (rng.standard_normal(6), rng.standard_normal(6))
    return _norm_grads(ns.group_norm_forward, ns.group_norm_backward, x, params, rng, 3)


@case("q7", "three batches of different sizes", points=1)
def _(ns, rng):
    batches = [rng.standard_normal((n, 3)) * 4 + 1 for n in (5, 7, 2)]
    mean, var = ns.population_statistics(iter(batches))
    return {"mean": np.asarray(mean), "var": np.asarray(var)}


@case("q8", "training, p = 0.5", points=1,
      hint="draw the keep mask once, from generator.random(input.shape); scale by 1 / (1 - p)")
def _(ns, rng):
    x = rng.standard_normal((4, 6))
    return ns.dropout_forward(x, p=0.5, training=True, generator=np.random.default_rng(7))[0]


@case("q8", "evaluation is the identity, training is not", points=1,
      hint="training=False: return x itself; training=True: mask and scale")
def _(ns, rng):
    x = rng.standard_normal((3, 5))
    return {"evaluation": ns.dropout_forward(x, p=0.3, training=False,
                                             generator=np.random.default_rng(7))[0],
            "training": ns.dropout_forward(x, p=0.3, training=True,
                                           generator=np.random.default_rng(7))[0]}


# %% tags=["tests", "hidden"]
# Plausible wrong answers, and what they score (tests/grading/test_new_homework.py):
# q2: dx without the variance path, gamma / s * (dout - mean(dout)): 0 of 8 (and 1 of 5 on q4,
#     whose backward reuses it).
# q5: dgamma and dbeta summed over axis 0 only: 4 of 6 (wrong for normalized_shape (H, W)).
# q6: the backward forgets the scale, dL/dx_hat = dout instead of dout * gamma: 0 of 6.
@case("q1", "training with momentum 0.3, several steps, eps 1e-3", points=2)
def _(ns, rng):
    rm, rv = np.zeros(3), np.ones(3)
    outs = []
    for _ in range(4):
        x, gamma, beta = _bn_problem(rng, 10, 3, scale=0.5, shift=-4.0)
        outs.append(ns.batch_norm_forward(x, rm, rv, gamma, beta,
                                         training=True, momentum=0.3, eps=1e-3)[0])
    return {"outs": outs, "running_mean": rm, "running_var": rv}


@case("q1", "evaluation uses the running statistics and leaves them unchanged", points=2)
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 7, 4)
    rm = rng.standard_normal(4)
    rv = rng.random(4) + 0.5
    rm0, rv0 = rm.copy(), rv.copy()
    out = ns.batch_norm_forward(x, rm, rv, gamma, beta,
                               training=False)[0]
    return {"out": out, "unchanged": bool(np.array_equal(rm, rm0) and np.array_equal(rv, rv0))}


@case("q1", "evaluation on a batch of one image (the train-mode trap)", points=2)
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 16, 5)
    rm, rv = np.zeros(5), np.ones(5)
    for _ in range(20):  # train until the running statistics are close to the data's
        ns.batch_norm_forward(x, rm, rv, gamma, beta, training=True)
    return ns.batch_norm_forward(x[:1], rm, rv, gamma, beta,
                                training=False)[0]


@case("q2", "dx, dgamma, dbeta: batch of 2, 7 features", points=2,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 2, 7, scale=0.1)
    out, cache, _, _ = _bn_train(ns, x, gamma, beta)
    dx, dgamma, dbeta = ns.batch_norm_backward(rng.standard_normal(out.shape), cache)
    return np.concatenate([dx.ravel(), dgamma.ravel(), dbeta.ravel()])


@case("q2", "dx, dgamma, dbeta: batch of 32, eps 1e-2", points=2,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x = rng.standard_normal((32, 4)) * 5
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, cache = ns.batch_norm_forward(x, np.zeros(4), np.ones(4), gamma, beta, training=True,
                                       eps=1e-2)
    dx, dgamma, dbeta = ns.batch_norm_backward(rng.standard_normal(out.shape), cache)
    return np.concatenate([dx.ravel(), dgamma.ravel(), dbeta.ravel()])


@case("q2", "dx, dgamma, dbeta: batch of 4, 3000 features", points=2,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 4, 3000)
    out, cache, _, _ = _bn_train(ns, x, gamma, beta)
    dx, dgamma, dbeta = ns.batch_norm_backward(rng.standard_normal(out.shape), cache)
    return np.concatenate([dx.ravel(), dgamma.ravel(), dbeta.ravel()])


@case("q4", "forward in training and evaluation, and backward, (3, 2, 5, 3)", points=4)
def _(ns, rng):
    x = rng.standard_normal((3, 2, 5, 3)) * 3 + 1
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    rm, rv = np.zeros(2), np.ones(2)
    out, cache = ns.spatial_batch_norm_forward(x, rm, rv, gamma, beta,
                                              training=True, momentum=0.2)
    dx, dgamma, dbeta = ns.spatial_batch_norm_backward(rng.standard_normal(out.shape), cache)
    out_eval, _ = ns.spatial_batch_norm_forward(x[:1], rm, rv, gamma, beta, training=False)
    return {"out": out, "running_mean": rm, "running_var": rv, "dx": dx, "dgamma": dgamma,
            "dbeta": dbeta, "out_eval": out_eval}


@case("q5", "(2, 3, 4, 5) over (C, H, W), and one sample of (1, 3000)", points=2,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    grads = []
    for shape, normalized in (((2, 3, 4, 5), (3, 4, 5)), ((1, 3000), 3000)):
        x = rng.standard_normal(shape) * 2 + 3
        pshape = shape[1:]
        params = (rng.standard_normal(pshape), rng.standard_normal(pshape))
        got = _norm_grads(ns.layer_norm_forward, ns.layer_norm_backward, x, params, rng,
                          normalized)
        grads += [np.asarray(got[k], dtype=np.float64).ravel()
                  for k in ("out", "dx", "dgamma", "dbeta")]
    return np.concatenate(grads)


@case("q5", "(2, 3, 4, 5) over (H, W): parameters shared by samples and channels", points=2,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x = rng.standard_normal((2, 3, 4, 5)) * 0.5 - 2
    params = (rng.standard_normal((4, 5)), rng.standard_normal((4, 5)))
    got = _norm_grads(ns.layer_norm_forward, ns.layer_norm_backward, x, params, rng, (4, 5))
    return np.concatenate([np.asarray(got[k], dtype=np.float64).ravel()
                           for k in ("out", "dx", "dgamma", "dbeta")])


@case("q6", "G = 1 and G = C (the layer and instance norm limits), (3, 4, 2, 5)", points=2,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    grads = []
    for groups in (1, 4):
        x = rng.standard_normal((3, 4, 2, 5)) * 3 + 1
        params = (rng.standard_normal(4), rng.standard_normal(4))
        got = _norm_grads(ns.group_norm_forward, ns.group_norm_backward, x, params, rng, groups)
        grads += [np.asarray(got[k], dtype=np.float64).ravel()
                  for k in ("out", "dx", "dgamma", "dbeta")]
    return np.concatenate(grads)


@case("q6", "8 channels in 2 groups, (2, 8, 4, 4); 3 groups of 8 are refused", points=2)
def _(ns, rng):
    x = rng.standard_normal((2, 8, 4, 4)) * 4 + 5
    params = (rng.standard_normal(8), rng.standard_normal(8))
    got = _norm_grads(ns.group_norm_forward, ns.group_norm_backward, x, params, rng, 2)
    got["refused"] = checks.raised(lambda: ns.group_norm_forward(x, 3, *params))
    return got


@case("q7", "a generator of 20 batches with a large mean (no catastrophic cancellation)",
      points=3, checker=checks.close(rtol=1e-6, atol=1e-6))
def _(ns, rng):
    data = [rng.standard_normal((int(n), 4)) * [1, 2, 3, 4] + 100 for n in rng.integers(1, 9, 20)]
    mean, var = ns.population_statistics(b for b in data)
    return {"mean": np.asarray(mean, dtype=np.float64), "var": np.asarray(var, dtype=np.float64)}


@case("q8", "training and backward, p = 0.2, 3-D input", points=2)
def _(ns, rng):
    x = rng.standard_normal((2, 3, 4))
    out, cache = ns.dropout_forward(x, p=0.2, training=True, generator=np.random.default_rng(11))
    return {"out": out, "dx": ns.dropout_backward(rng.standard_normal(x.shape), cache)}


@case("q8", "keeps the expected value: mean of 200,000 units at p = 0.75", points=1,
      checker=checks.close(rtol=0.0, atol=0.02))
def _(ns, rng):
    out, _ = ns.dropout_forward(np.ones(200_000), p=0.75, training=True,
                                generator=np.random.default_rng(3))
    out = np.asarray(out)  # the identity keeps the mean too: the dropped fraction must be p
    return {"mean": float(np.mean(out)), "dropped": float(np.mean(out == 0))}


# The refusals count only together with right outputs (an answer that always raises
# ValueError, or returns x unchanged, must not score).
@case("q8", "p = 0 is the identity, p = 0.5 is not; p = 1 and p = -0.1 are refused",
      points=2)
def _(ns, rng):
    x = rng.standard_normal(10)
    same = ns.dropout_forward(x, p=0.0, training=True, generator=np.random.default_rng(0))[0]
    half = ns.dropout_forward(x, p=0.5, training=True, generator=np.random.default_rng(0))[0]
    return [same, half, checks.raised(lambda: ns.dropout_forward(
        x, p=1.0, training=True, generator=np.random.default_rng(0))),
        checks.raised(lambda: ns.dropout_forward(
            x, p=-0.1, training=True, generator=np.random.default_rng(0)))]


# %% tags=["autograder"]
settings(
    forbid=["torch", "scipy", "d2lcnn.numpy", "d2lcnn.torch", "d2lcnn.gradcheck"],
    case_timeout=20,
    cell_timeout=60,
    memory_mb=2048,
)
