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
# # Homework 1: Convolution in NumPy
#
# **Follows:** [chapter 1, Convolution](../../01-convolution.ipynb)
# **Estimated time:** 3–4 hours (a first draft, not yet timed on students: the reference
# solution is 68 lines of loops; we allow about 3 minutes a line for a first encounter, reading
# included)
#
# **Learning goals.** After this assignment you can
#
# - compute the output size of a convolution or pooling layer and say when a geometry
#   is impossible;
# - write a convolution layer's forward and backward passes with stride and padding, and
#   a max-pooling layer's, with loops;
# - check any backward pass against a centred-difference numerical gradient.
#
# You will write the layers of chapter 01 yourself, with loops, forward **and** backward:
#
# | question | what you write | points |
# | --- | --- | --- |
# | q1 | `conv_output_size`: the output-size formula, and when to refuse | 5 |
# | q2 | `conv2d_forward_naive`: a convolution layer with stride and padding | 8 |
# | q3 | `conv2d_backward_naive`: its gradients `dx`, `dw`, `db` | 9 |
# | q4 | `max_pool2d_forward_naive` / `max_pool2d_backward_naive` | 8 |
# | q5 | `numerical_gradient`: a centred-difference gradient checker | 6 |
#
# **Rules.** Use NumPy only: `torch`, `scipy` and the package's reference modules
# (`d2lcnn.numpy`, `d2lcnn.torch`, `d2lcnn.geometry`, `d2lcnn.gradcheck`) are blocked when
# your notebook is graded. Write your code where it says `# YOUR CODE HERE`; do not rename the
# functions or change their arguments (they are those of `d2lcnn.numpy` and
# `torch.nn.functional`, so your layers can be swapped for the package's). Run
# `check("qN")` after each answer: it runs the public tests. The grade also uses hidden tests
# (other shapes, strides and paddings), so pass the public ones for the right reasons. When
# you are done, save the notebook and run `submit()` at the end.

# %%
import numpy as np

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw1-convolution", globals())
check, submit = grader.check, grader.submit

# %% [markdown]
# ## Question 1 (5 points, guided): Output size
#
# A convolution (or pooling window) of size $K$ with stride $S$ slides over an input of size
# $N$ padded with $P$ zeros on each side. Its output size is
#
# $$N_{out} = \left\lfloor \frac{N + 2P - K}{S} \right\rfloor + 1 .$$
#
# Like PyTorch, floor when the stride does not tile the input exactly (the last rows are
# ignored). Raise `ValueError` when the geometry is impossible: `K < 1`, `S < 1`, `P < 0`,
# or a window larger than the padded input ($K > N + 2P$).

# %% tags=["answer", "q1"]
def conv_output_size(input_size, kernel_size, *, stride=1, padding=0):
    """Output size along one axis for an input of ``input_size``, a kernel of
    ``kernel_size``, ``stride`` and ``padding`` zeros on each side."""
    ### BEGIN SOLUTION
    n, k = input_size, kernel_size
    if k < 1 or stride < 1 or padding < 0:
        raise ValueError(f"need kernel_size >= 1, stride >= 1, padding >= 0; got kernel_size={k}, "
                         f"stride={stride}, padding={padding}")
    if k > n + 2 * padding:
        raise ValueError(f"kernel {k} is larger than the padded input {n} + 2*{padding}")
    return (n + 2 * padding - k) // stride + 1
    ### END SOLUTION


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (8 points, guided): Convolution, forward
#
# `input` ($x$) has shape `(N, C, H, W)`, the filters `weight` ($w$) shape `(F, C, HH, WW)`,
# the bias `bias` ($b$) shape `(F,)`: the names and layout of `torch.nn.functional.conv2d`
# and `nd.conv2d_forward`. Zero-pad $x$ by `padding` on each side of H and W, then for every
# image `n`, filter
# `f` and output position `(i, j)`:
#
# $$out[n, f, i, j] = b[f] + \sum_{c, p, q} x_{pad}[n, c, iS + p, jS + q] \, w[f, c, p, q].$$
#
# Return `out` of shape `(N, F, H_out, W_out)` and a `cache` holding whatever your backward
# pass needs. Loops are fine (four nested loops, or three and an `np.sum`).

# %% tags=["answer", "q2"]
def conv2d_forward_naive(input, weight, bias, *, stride=1, padding=0):
    """Naive convolution: ``out, cache = conv2d_forward_naive(input, weight, bias, stride=1,
    padding=0)``, the arguments of ``nd.conv2d_forward`` and ``F.conv2d``."""
    ### BEGIN SOLUTION
    N, C, H, W = input.shape
    F, _, HH, WW = weight.shape
    H_out = conv_output_size(H, HH, stride=stride, padding=padding)
    W_out = conv_output_size(W, WW, stride=stride, padding=padding)
    xp = np.pad(input, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((N, F, H_out, W_out), dtype=input.dtype)  # (N, F, H_out, W_out)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * weight[f]) + bias[f]
    cache = (input, weight, bias, stride, padding)
    ### END SOLUTION
    return out, cache


# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (9 points, standard): Convolution, backward
#
# Given `dout` $=\partial L/\partial out$ (shape of `out`) and your cache, return
# `dx, dw, db` with the shapes of `x, w, b`. Each output element received contributions from
# one window of the padded input: route `dout[n, f, i, j] * w[f]` back into that window of
# `dx_pad` (`+=`: windows overlap when the stride is smaller than the kernel), accumulate
# `dout[n, f, i, j] * window` into `dw[f]`, and sum `dout` for `db`. Crop the padding at the end.

# %% tags=["answer", "q3"]
def conv2d_backward_naive(dout, cache):
    """Gradients of ``conv2d_forward_naive``: ``dx, dw, db = conv2d_backward_naive(dout,
    cache)``, shaped like ``input``, ``weight`` and ``bias``."""
    ### BEGIN SOLUTION
    x, w, b, stride, pad = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))  # (F,)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dxp[n, :, hs:hs + HH, ws:ws + WW] += dout[n, f, i, j] * w[f]
                    dw[f] += dout[n, f, i, j] * xp[n, :, hs:hs + HH, ws:ws + WW]
    dx = dxp[:, :, pad:pad + H, pad:pad + W]
    ### END SOLUTION
    return dx, dw, db


# %% tags=["check", "q3"]
check("q3")

# %% [markdown]
# ## Question 4 (8 points, standard): Max pooling, forward and backward
#
# `max_pool2d_forward_naive(input, kernel_size=2, stride=2)` takes the maximum of every
# `kernel_size x kernel_size` window (no padding; floor like q1) and returns `out, cache`.
# The backward pass routes each `dout` value to the position of its window's maximum; when
# windows overlap (`stride < kernel_size`) a position can receive several contributions, so
# add them.

# %% tags=["answer", "q4"]
def max_pool2d_forward_naive(input, *, kernel_size=2, stride=2):
    """Max pooling: ``out, cache = max_pool2d_forward_naive(input, kernel_size=2,
    stride=2)``."""
    ### BEGIN SOLUTION
    N, C, H, W = input.shape
    k = kernel_size
    H_out = conv_output_size(H, k, stride=stride)
    W_out = conv_output_size(W, k, stride=stride)
    out = np.zeros((N, C, H_out, W_out), dtype=input.dtype)  # (N, C, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            window = input[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = window.max(axis=(2, 3))
    cache = (input, k, stride)
    ### END SOLUTION
    return out, cache


def max_pool2d_backward_naive(dout, cache):
    """Gradient of max pooling with respect to its input: ``dx`` shaped like ``input``."""
    ### BEGIN SOLUTION
    x, size, stride = cache
    N, C, _, _ = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    window = x[n, c, hs:hs + size, ws:ws + size]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, hs + p, ws + q] += dout[n, c, i, j]
    ### END SOLUTION
    return dx


# %% tags=["check", "q4"]
check("q4")

# %% [markdown]
# ## Question 5 (6 points, guided): Checking gradients numerically
#
# A backward pass is only trusted once it agrees with a numerical gradient. Write
# `numerical_gradient(f, x, h=1e-6)`: `f()` takes no arguments and returns a scalar computed
# from the CURRENT contents of the float array `x`. For every element, nudge it by $\pm h$,
# evaluate `f`, and use the centred difference
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h},$$
#
# restoring the element afterwards: `x` must be unchanged when you return. Its error is
# $O(h^2)$, against $O(h)$ for the one-sided difference.

# %% tags=["answer", "q5"]
def numerical_gradient(f, x, h=1e-6):
    """Centred-difference gradient of the scalar ``f()`` with respect to ``x`` (same shape)."""
    ### BEGIN SOLUTION
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = float(f())
        x[idx] = old - h
        minus = float(f())
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad
    ### END SOLUTION


# %% tags=["check", "q5"]
check("q5")

# %% [markdown]
# With your checker, verify your convolution backward pass on a small random problem: the
# relative errors should be below `1e-6` (and you now know how the hidden tests
# of q3 think).

# %% tags=["demo"]
def rel_error(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))


try:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 4))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    dout = rng.standard_normal((1, 3, 2, 2))
    out, cache = conv2d_forward_naive(x, w, b, stride=2, padding=1)
    dx, dw, db = conv2d_backward_naive(dout, cache)
    dx_num = numerical_gradient(
        lambda: np.sum(conv2d_forward_naive(x, w, b, stride=2, padding=1)[0] * dout), x)
    print(f"dx relative error: {rel_error(dx, dx_num):.1e}")
except NotImplementedError:
    print("finish q2, q3 and q5 first")

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
def _conv_problem(rng, n, c, h, w, f, k):
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((f, c, k[0], k[1]))
    return x, wt, rng.standard_normal(f)


def _conv_grads(ns, rng, problem, *, stride, padding):
    """The student's (dx, dw, db) for a random problem and a random upstream gradient."""
    out, cache = ns.conv2d_forward_naive(*problem, stride=stride, padding=padding)
    return ns.conv2d_backward_naive(rng.standard_normal(out.shape), cache)


@case("q1", "padding 2: 34, k=7", points=1)  # not 32, k=5: returning n must not pass
def _(ns, rng):
    return ns.conv_output_size(34, 7, stride=1, padding=2)


@case("q1", "stride 2: 7, k=3", points=1, hint="(N + 2P - K) // S + 1")
def _(ns, rng):
    return ns.conv_output_size(7, 3, stride=2, padding=0)


@case("q2", "1 image, 1 channel, 4x4, 3x3 filter", points=1)
def _(ns, rng):
    x, w, b = _conv_problem(rng, 1, 1, 4, 4, 1, (3, 3))
    return ns.conv2d_forward_naive(x, w, b, stride=1, padding=0)[0]


@case("q2", "stride 2, padding 1", points=2,
      hint="pad x with np.pad on H and W only; the window starts at i * stride")
def _(ns, rng):
    x, w, b = _conv_problem(rng, 2, 3, 5, 5, 4, (3, 3))
    return ns.conv2d_forward_naive(x, w, b, stride=2, padding=1)[0]


@case("q3", "dx, dw, db: stride 1, padding 0", points=2)
def _(ns, rng):
    dx, dw, db = _conv_grads(ns, rng, _conv_problem(rng, 2, 2, 5, 5, 3, (3, 3)), stride=1,
                             padding=0)
    return {"dx": dx, "dw": dw, "db": db}


@case("q4", "forward 2x2, stride 2", points=1)
def _(ns, rng):
    return ns.max_pool2d_forward_naive(rng.standard_normal((2, 3, 4, 6)), kernel_size=2,
                                       stride=2)[0]


@case("q4", "backward 2x2, stride 2", points=2, hint="only the max of each window gets dout")
def _(ns, rng):
    x = rng.standard_normal((2, 3, 4, 6))
    out, cache = ns.max_pool2d_forward_naive(x, kernel_size=2, stride=2)
    return ns.max_pool2d_backward_naive(rng.standard_normal(out.shape), cache)


@case("q5", "gradient of sum(x**2)", points=2, hint="(f(x + h) - f(x - h)) / (2h)")
def _(ns, rng):
    x = rng.standard_normal((3, 4))
    return ns.numerical_gradient(lambda: float(np.sum(x**2)), x)


# %% tags=["tests", "hidden"]
@case("q1", "floors when the stride does not fit", points=1)
def _(ns, rng):
    return [ns.conv_output_size(7, 3, stride=3, padding=0), ns.conv_output_size(10, 4, stride=3,
                                                                             padding=1)]


# A refusal is only worth points together with right answers in the same case: an answer
# that always raises ValueError must not score.
@case("q1", "refuses a kernel larger than the padded input, accepts one that fits", points=1)
def _(ns, rng):
    return [checks.raised(lambda: ns.conv_output_size(4, 7, stride=1, padding=1)),
            ns.conv_output_size(4, 6, stride=1, padding=1)]


@case("q1", "refuses stride 0 and negative padding, accepts stride 2 and padding 1", points=1)
def _(ns, rng):
    return [checks.raised(lambda: ns.conv_output_size(8, 3, stride=0, padding=0)),
            checks.raised(lambda: ns.conv_output_size(8, 3, stride=1, padding=-1)),
            ns.conv_output_size(9, 3, stride=2, padding=1)]


@case("q2", "rectangular input and kernel, stride 3 that does not tile", points=2)
def _(ns, rng):
    x, w, b = _conv_problem(rng, 2, 2, 8, 11, 3, (2, 4))
    return ns.conv2d_forward_naive(x, w, b, stride=3, padding=1)[0]


@case("q2", "padding 2, 1x1 and 5x5 kernels", points=2)
def _(ns, rng):
    x, w, b = _conv_problem(rng, 1, 3, 6, 6, 2, (1, 1))
    x5, w5, b5 = _conv_problem(rng, 2, 1, 5, 7, 2, (5, 5))
    return [ns.conv2d_forward_naive(x, w, b, stride=1, padding=2)[0],
            ns.conv2d_forward_naive(x5, w5, b5, stride=1, padding=2)[0]]


@case("q2", "returns (out, cache)", points=1)
def _(ns, rng):
    x, w, b = _conv_problem(rng, 1, 2, 4, 4, 2, (3, 3))
    res = ns.conv2d_forward_naive(x, w, b, stride=1, padding=0)
    return {"a pair": isinstance(res, tuple) and len(res) == 2, "out": res[0]}


@case("q3", "dx, dw, db: stride 2, padding 1 (overlapping windows)", points=3,
      checker=checks.rel_error_below(1e-7))
def _(ns, rng):
    dx, dw, db = _conv_grads(ns, rng, _conv_problem(rng, 2, 3, 7, 7, 4, (3, 3)), stride=2,
                             padding=1)
    return np.concatenate([np.ravel(dx), np.ravel(dw), np.ravel(db)])


@case("q3", "dx, dw, db: rectangular kernel, stride 3, padding 2", points=4)
def _(ns, rng):
    dx, dw, db = _conv_grads(ns, rng, _conv_problem(rng, 1, 2, 9, 8, 3, (4, 2)), stride=3,
                             padding=2)
    return {"dx": dx, "dw": dw, "db": db}


@case("q4", "forward and backward, overlapping 3x3 windows, stride 2", points=3)
def _(ns, rng):
    x = rng.standard_normal((2, 2, 7, 9))
    out, cache = ns.max_pool2d_forward_naive(x, kernel_size=3, stride=2)
    return [out, ns.max_pool2d_backward_naive(rng.standard_normal(out.shape), cache)]


@case("q4", "odd input that the stride does not tile", points=2)
def _(ns, rng):
    x = rng.standard_normal((1, 3, 5, 7))
    out, cache = ns.max_pool2d_forward_naive(x, kernel_size=2, stride=2)
    return [out, ns.max_pool2d_backward_naive(np.ones_like(out), cache)]


@case("q5", "agrees with the analytic gradient on a 3-D array", points=2,
      checker="gradient_matches_analytic", inputs="sin_problem")
def _(ns, rng, sent):
    x, c = np.array(sent["x"], dtype=np.float64), np.array(sent["c"], dtype=np.float64)
    return ns.numerical_gradient(lambda: float(np.sum(np.sin(x) * c)), x)


@case("q5", "leaves x unchanged (and gets the gradient right)", points=2)
def _(ns, rng):
    x = rng.standard_normal((4, 5))
    x0 = x.copy()
    grad = ns.numerical_gradient(lambda: float(np.sum(np.exp(x))), x)
    return {"grad": grad, "unchanged": bool(np.array_equal(x, x0))}


# %% tags=["autograder"]
settings(
    forbid=["torch", "scipy", "d2lcnn.numpy", "d2lcnn.torch", "d2lcnn.geometry",
            "d2lcnn.gradcheck"],
    case_timeout=20,
    cell_timeout=60,
    memory_mb=2048,
)


def sin_problem(rng):
    """q5's inputs, made in the grader: ``x`` and ``c`` go to the sandbox, the analytic
    gradient of ``sum(sin(x) * c)``, ``cos(x) * c``, stays here."""
    x, c = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    return {"x": x, "c": c}, np.cos(x) * c


def gradient_matches_analytic(got, expected, analytic):
    """The returned gradient against the analytic one, which never left the grader.

    Centred differences with h = 1e-6 are off by about 1e-9 here (rounding); a one-sided
    difference is off by h/2 * |f''|, about 5e-7, so 1e-7 tells them apart."""
    grad = np.asarray(got)
    if grad.shape != analytic.shape or grad.dtype.kind not in "fiu":
        return False, f"expected a float array of shape {analytic.shape}, got {grad.shape}"
    err = float(np.max(np.abs(grad - analytic)))
    return err < 1e-7, f"max abs error {err:.1e} against the analytic gradient"
