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
# **Estimated time:** 2–3 hours (a first draft, not yet timed on students: the reference
# solution is 48 lines; we allow about 3 minutes a line for a first encounter, reading
# included)
#
# **Learning goals.** After this assignment you can
#
# - write batch normalization's forward pass in training and evaluation mode, with
#   running statistics, and avoid the batch-of-one trap;
# - backpropagate through batch normalization and its spatial version for feature maps;
# - compute exact inference statistics in one extra pass without catastrophic
#   cancellation;
# - write inverted dropout so that evaluation needs no rescaling.
#
# Chapters 05 and 06 use the package's normalization and dropout layers. Here you write them
# yourself, forward **and** backward, in training and in evaluation mode:
#
# | question | what you write | points |
# | --- | --- | --- |
# | q1 | `batch_norm_forward`: batch statistics in training, running statistics in evaluation | 9 |
# | q2 | `batch_norm_backward`: `dx`, `dgamma`, `dbeta` with the compact formula | 8 |
# | q3 | `spatial_batch_norm_forward` / `_backward` for `(N, C, H, W)` feature maps | 5 |
# | q4 | `population_statistics`: exact inference statistics from one extra pass | 4 |
# | q5 | `dropout_forward` / `dropout_backward`: inverted dropout, PyTorch's convention | 7 |
#
# **Rules.** Use NumPy only: `torch`, `scipy` and the package (`d2lcnn.numpy`,
# `d2lcnn.torch`, `d2lcnn.gradcheck`) are blocked when your notebook is graded. Write your
# code where it says `# YOUR CODE HERE`; do not rename the functions or change their
# arguments (they are those of `d2lcnn.numpy` and `torch.nn.functional`). Run `check("qN")`
# after each answer: it runs the public tests. The grade also uses hidden tests (other
# shapes, momenta, dropout rates, and evaluation-mode traps), so pass the public ones for the
# right reasons. When you are done, save the notebook and run `submit()`.

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
# ## Question 2 (8 points, guided): Batch normalization, backward
#
# For the training-mode forward pass, derive the gradients. $\beta$ and $\gamma$ are easy:
# $\partial L/\partial\beta_d = \sum_n g_{nd}$ and
# $\partial L/\partial\gamma_d = \sum_n g_{nd}\,\hat x_{nd}$ with $g = \partial L/\partial y$.
# For $x$, every $\hat x_{nd}$ depends on every $x_{md}$ of its column through $\mu_d$ and
# $\sigma_d$. Work through the computational graph once, then simplify to the compact form
#
# $$\frac{\partial L}{\partial x_{nd}} = \frac{\gamma_d}{N\sqrt{\sigma^2_d + \epsilon}}
# \Big(N g_{nd} - \sum_m g_{md} - \hat x_{nd} \sum_m g_{md} \hat x_{md}\Big).$$
#
# Return `dx, dgamma, dbeta` with the shapes of `x, gamma, beta`. Check yourself with
# `numerical_gradient` before you run `check("q2")`.

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
# ## Question 3 (5 points, standard): Spatial batch normalization
#
# For convolutional features `x` of shape `(N, C, H, W)`, each channel has ONE mean and
# variance, shared by all $N \cdot H \cdot W$ positions (a channel detects the same thing
# everywhere). Reuse q1 and q2: move the channel axis last, flatten to `(N*H*W, C)`, call your
# 1-D functions, and undo the reshape. The running statistics have shape `(C,)` and the
# unbiased correction uses $m = N H W$.

# %% tags=["answer", "q3"]
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


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# ## Question 4 (4 points, standard): Inference statistics from an extra pass
#
# Running averages are one way to get test-time statistics; another is one extra pass over
# the training set with the trained weights, accumulating the exact per-feature mean and
# *unbiased* variance of all the rows the layer sees. `batches` is an iterable of arrays of
# shape `(N_i, D)` (the sizes may differ, and it may be a generator that can be read only
# once). Return `mean, var`, each of shape `(D,)`, equal to what
# `np.concatenate(list(batches))` would give with `.mean(0)` and `.var(0, ddof=1)`, without
# keeping the batches in memory: accumulate counts, sums and sums of squares (in float64).

# %% tags=["answer", "q4"]
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


# %% tags=["check", "q4"]
check("q4")

# %% [markdown]
# ## Question 5 (7 points, guided): Inverted dropout
#
# PyTorch's convention: `p` is the probability of DROPPING a unit (the lecture's vanilla
# dropout used the keep probability; here keep $= 1 - p$). In training, keep each element
# where `generator.random(input.shape) >= p` (draw exactly this, once, so that your mask
# matches the tests'), zero the others, and scale the survivors by $1/(1-p)$ so that the
# expected output equals the input; in evaluation return `input` unchanged, so the test-time
# network needs no
# rescaling. Raise `ValueError` unless `0 <= p < 1`. The backward pass applies the same mask
# and scale to `dout`.

# %% tags=["answer", "q5"]
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


# %% tags=["check", "q5"]
check("q5")

# %% [markdown]
# Finally, check your batch norm backward pass numerically on a small batch: the relative
# errors should be around `1e-8` or smaller.

# %% tags=["demo"]
try:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3)) * 2 + 1
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    dout = rng.standard_normal((5, 3))

    def loss():
        out, _ = batch_norm_forward(x, np.zeros(3), np.ones(3), gamma, beta, training=True)
        return float(np.sum(out * dout))

    _, cache = batch_norm_forward(x, np.zeros(3), np.ones(3), gamma, beta, training=True)
    dx, dgamma, dbeta = batch_norm_backward(dout, cache)
    print(f"dx relative error:     {rel_error(dx, numerical_gradient(loss, x)):.1e}")
    print(f"dgamma relative error: {rel_error(dgamma, numerical_gradient(loss, gamma)):.1e}")
except NotImplementedError:
    print("finish q1 and q2 first")

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


@case("q2", "dx, dgamma, dbeta for a batch of 6", points=3,
      hint="dbeta = dout.sum(0); dgamma = (dout * x_hat).sum(0); then the compact formula")
def _(ns, rng):
    x, gamma, beta = _bn_problem(rng, 6, 5)
    out, cache, _, _ = _bn_train(ns, x, gamma, beta)
    dx, dgamma, dbeta = ns.batch_norm_backward(rng.standard_normal(out.shape), cache)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


@case("q3", "forward, training, (2, 3, 4, 5)", points=1,
      hint="x.transpose(0, 2, 3, 1).reshape(-1, C), and back")
def _(ns, rng):
    x = rng.standard_normal((2, 3, 4, 5)) * 2 - 1
    rm, rv = np.zeros(3), np.ones(3)
    out, _ = ns.spatial_batch_norm_forward(x, rm, rv, rng.standard_normal(3),
                                           rng.standard_normal(3), training=True)
    return {"out": out, "running_mean": rm, "running_var": rv}


@case("q4", "three batches of different sizes", points=1)
def _(ns, rng):
    batches = [rng.standard_normal((n, 3)) * 4 + 1 for n in (5, 7, 2)]
    mean, var = ns.population_statistics(iter(batches))
    return {"mean": np.asarray(mean), "var": np.asarray(var)}


@case("q5", "training, p = 0.5", points=1,
      hint="draw the keep mask once, from generator.random(input.shape); scale by 1 / (1 - p)")
def _(ns, rng):
    x = rng.standard_normal((4, 6))
    return ns.dropout_forward(x, p=0.5, training=True, generator=np.random.default_rng(7))[0]


@case("q5", "evaluation is the identity, training is not", points=1,
      hint="training=False: return x itself; training=True: mask and scale")
def _(ns, rng):
    x = rng.standard_normal((3, 5))
    return {"evaluation": ns.dropout_forward(x, p=0.3, training=False,
                                             generator=np.random.default_rng(7))[0],
            "training": ns.dropout_forward(x, p=0.3, training=True,
                                           generator=np.random.default_rng(7))[0]}


# %% tags=["tests", "hidden"]
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


@case("q2", "dx, dgamma, dbeta: batch of 32, eps 1e-2", points=3,
      checker=checks.rel_error_below(1e-6))
def _(ns, rng):
    x = rng.standard_normal((32, 4)) * 5
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, cache = ns.batch_norm_forward(x, np.zeros(4), np.ones(4), gamma, beta, training=True,
                                       eps=1e-2)
    dx, dgamma, dbeta = ns.batch_norm_backward(rng.standard_normal(out.shape), cache)
    return np.concatenate([dx.ravel(), dgamma.ravel(), dbeta.ravel()])


@case("q3", "forward in training and evaluation, and backward, (3, 2, 5, 3)", points=4)
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


@case("q4", "a generator of 20 batches with a large mean (no catastrophic cancellation)",
      points=3, checker=checks.close(rtol=1e-6, atol=1e-6))
def _(ns, rng):
    data = [rng.standard_normal((int(n), 4)) * [1, 2, 3, 4] + 100 for n in rng.integers(1, 9, 20)]
    mean, var = ns.population_statistics(b for b in data)
    return {"mean": np.asarray(mean, dtype=np.float64), "var": np.asarray(var, dtype=np.float64)}


@case("q5", "training and backward, p = 0.2, 3-D input", points=2)
def _(ns, rng):
    x = rng.standard_normal((2, 3, 4))
    out, cache = ns.dropout_forward(x, p=0.2, training=True, generator=np.random.default_rng(11))
    return {"out": out, "dx": ns.dropout_backward(rng.standard_normal(x.shape), cache)}


@case("q5", "keeps the expected value: mean of 200,000 units at p = 0.75", points=1,
      checker=checks.close(rtol=0.0, atol=0.02))
def _(ns, rng):
    out, _ = ns.dropout_forward(np.ones(200_000), p=0.75, training=True,
                                generator=np.random.default_rng(3))
    out = np.asarray(out)  # the identity keeps the mean too: the dropped fraction must be p
    return {"mean": float(np.mean(out)), "dropped": float(np.mean(out == 0))}


# The refusals count only together with right outputs (an answer that always raises
# ValueError, or returns x unchanged, must not score).
@case("q5", "p = 0 is the identity, p = 0.5 is not; p = 1 and p = -0.1 are refused",
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
