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
# # Convolution
#
# A photograph is a grid of numbers with a lot of structure: neighbouring pixels are
# related, the same pattern (an edge, an eye, a wheel) can appear anywhere, and moving the
# camera a little should not change what the picture shows. A convolutional layer is a
# linear layer built around exactly these three facts. This chapter derives it from a fully
# connected layer, computes it by hand, in loops, and fast, checks its gradient, works out
# every piece of output-size and parameter arithmetic you will meet in later chapters, and
# ends with the mathematical properties (equivariance and invariance) that make it the right
# tool for images.
#
# Everything below is computed, and every number stated in the text is checked by an
# `assert` in the cell that produces it. The functions come from the companion package:
# `d2lcnn.numpy` (reference layers with hand-written backward passes), `d2lcnn.torch` (the
# same operations in PyTorch) and `d2lcnn.geometry` (output sizes and receptive fields).
#
# **Learning goals.** After this chapter you can
#
# - explain why a convolutional layer is a fully connected layer with local, shared weights,
#   and compute it (and its gradient) by hand, in loops and with a library;
# - work out the output size, parameter count and receptive field of any stack of
#   convolutions and poolings from its kernel size $k$, stride $s$, padding $p$ and
#   dilation $d$;
# - say precisely to which transformations convolution and pooling are equivariant or
#   invariant, and check it numerically.
#
# **Prerequisites:** none beyond Python and NumPy.

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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy import signal
from torch import nn

from d2lcnn import diagrams
from d2lcnn import numpy as nd
from d2lcnn import torch as td
from d2lcnn.data import sample_image
from d2lcnn.geometry import (
    conv2d_output_shape,
    conv_transpose2d_output_shape,
    pool2d_output_shape,
    receptive_field,
)
from d2lcnn.gradcheck import check_backward
from d2lcnn.plots import show_images

rng = np.random.default_rng(0)  # every random array in this chapter comes from here
torch.manual_seed(0)  # only used by nn.Conv2d's initializer, whose values we never print
DTYPE = torch.float64  # float64 so that comparisons with NumPy are exact to ~1e-12
device = td.device("auto", dtype=DTYPE)  # CUDA if present, else CPU (MPS has no float64)
torch.set_num_threads(1)  # the tensors here are small: one thread avoids threading overhead


def to_torch(a):
    """A NumPy array as a float64 tensor on the chapter's device."""
    return torch.as_tensor(np.asarray(a), dtype=DTYPE).to(device)


# %% [markdown]
# ## Why not a fully connected layer?
#
# Suppose the input is a $200 \times 200$ RGB image and the first hidden layer has 1000
# units. A fully connected layer connects every unit to every input value, so it needs
# $200 \cdot 200 \cdot 3 \cdot 1000$ weights. We can ask PyTorch to build that layer on the
# `meta` device, which records shapes without allocating memory, and count:

# %%
fc = nn.Linear(200 * 200 * 3, 1000, device="meta")
n_weights = fc.weight.numel()
print(f"{n_weights:,} weights + {fc.bias.numel():,} biases")
assert n_weights == 200 * 200 * 3 * 1000 == 120_000_000

# %% [markdown]
# One hundred and twenty million weights, about 480 MB in float32, for a single layer on a
# small image. Worse than the size is what those weights ignore. Pixel $(17, 40)$ and pixel
# $(18, 40)$ get unrelated weights although they are neighbours, and a cat detected in the
# top-left corner teaches the layer nothing about cats in the bottom-right corner: move the
# object by one pixel and the layer sees an entirely different input vector.
#
# Convolutional networks replace the fully connected layer with four ideas.
#
# 1. **Local connectivity.** Each hidden unit looks only at a small patch of the image (for
#    example $5 \times 5$ pixels), through all of its channels. The patch is the unit's
#    *receptive field*. Useful image features (edges, corners, textures) are local, so
#    nothing is lost at the first layer.
# 2. **Weight sharing.** All units of one *feature map* use the same weights, each on its
#    own patch. The map is the result of sliding one small filter over the whole image, so
#    a pattern learned in one place is detected everywhere.
# 3. **Pooling.** Neighbouring units are summarized (by their maximum or average), which
#    shrinks the map and makes the representation robust to small shifts and deformations.
# 4. **Interleaving.** Convolution and pooling alternate, so later layers see larger and
#    larger regions and can compose edges into parts and parts into objects.
#
# The first two ideas say that a convolutional layer *is* a fully connected layer, only
# with a very particular weight matrix: most entries are zero (each output depends on a
# few nearby inputs) and the nonzero entries repeat (every output uses the same filter).
# We can see the matrix by feeding a $3 \times 3$ convolution every unit image of a
# $6 \times 6$ input in turn: column $i$ of the matrix is the response to a single bright
# pixel at position $i$.

# %%
w_small = to_torch(rng.standard_normal((1, 1, 3, 3)))
basis = torch.eye(36, dtype=DTYPE, device=device).reshape(36, 1, 6, 6)  # 36 unit images
M = td.conv2d(basis, w_small).reshape(36, 16).T.cpu().numpy()  # (16 outputs, 36 inputs)
print("matrix", M.shape, "| nonzero entries:", np.count_nonzero(M), "of", M.size,
      "| distinct nonzero values:", len(np.unique(M[M != 0])))
assert np.count_nonzero(M) == 16 * 9 and len(np.unique(M[M != 0])) == 9

# %% [markdown]
# Of the 576 entries, 144 are nonzero (nine per output) and they take only nine distinct
# values, the nine filter weights. A fully connected layer would learn all 576 separately.
#
# As a consequence the parameter count of a convolutional layer does not depend on the
# image size at all: sixty-four $5 \times 5$ filters over three channels cost
# $64 \cdot (5 \cdot 5 \cdot 3 + 1) = 4864$ parameters whether the image is
# $32 \times 32$ or $2000 \times 2000$. (The two layers do not compute the same thing, so
# the ratio is only a sense of scale.)

# %%
conv = nn.Conv2d(3, 64, kernel_size=5)
n_conv = sum(p.numel() for p in conv.parameters())
print(f"{n_conv:,} parameters, {n_weights // n_conv:,}x fewer than the fully connected layer")
assert n_conv == 64 * (5 * 5 * 3 + 1) == 4864

# %% [markdown]
# ## Convolution and cross-correlation
#
# The lecture notes write a convolutional layer as a sum over a small window centred on the
# output position. For one input and one output channel, with a $k_H \times k_W$ filter
# $W$ (odd sizes) applied to activations $a$,
#
# $$
# z[i, j] = \sum_{u=0}^{k_H-1} \sum_{v=0}^{k_W-1} W[u, v]\;
#           a\!\left[i + u - \tfrac{k_H-1}{2},\; j + v - \tfrac{k_W-1}{2}\right],
# $$
#
# With channels, the sum also runs over the $C_{in}$ input channels $c$, and the filter gets
# an output-channel index $o$ (the notes store weights as height, width, output channel,
# input channel):
#
# $$
# z[i, j, o] = \sum_{u=0}^{k_H-1} \sum_{v=0}^{k_W-1} \sum_{c=0}^{C_{in}-1} W[u, v, o, c]\;
#              a\!\left[i + u - \tfrac{k_H-1}{2},\; j + v - \tfrac{k_W-1}{2},\; c\right].
# $$
#
# A nonlinearity then gives the next layer's activations, $a^{(2)} = \sigma(z^{(2)})$.
#
# Notice the sign: the filter index $u$ and the image index move *together*. That is a
# **cross-correlation**. The textbook **convolution** of two arrays moves them in opposite
# directions,
#
# $$
# (A * B)_{ij} = \sum_u \sum_v A_{uv}\, B_{i-u,\, j-v},
# $$
#
# which is the same as cross-correlating with the kernel rotated by 180 degrees (flipped
# along both axes). Convolution is commutative and associative, which is why mathematicians
# prefer it; cross-correlation is what you get when you "slide a filter and take dot
# products", which is why deep-learning libraries compute it and still call it convolution.
# For a *learned* filter the difference is irrelevant: the network simply learns the flipped
# filter. For a *given* filter (Sobel, a slide's worked example) the difference matters, so
# we will be careful.
#
# The centred formula and PyTorch's `conv2d` differ only in how they number the outputs:
# the notes label an output by the centre of its window, PyTorch by its top-left corner.
# Let us check one output of each on random data.

# %%
a = rng.standard_normal((9, 9))
W = rng.standard_normal((3, 3))
r = (3 - 1) // 2  # (k_H - 1) / 2: the filter's half-width

i, j = 4, 6  # an output position, numbered by its centre as in the notes
z_centred = sum(W[u, v] * a[i + u - r, j + v - r] for u in range(3) for v in range(3))
z_torch = F.conv2d(to_torch(a)[None, None], to_torch(W)[None, None])[0, 0]  # (7, 7)
assert np.isclose(z_centred, z_torch[i - r, j - r].item())
print(f"centred formula = PyTorch output at ({i - r}, {j - r})")

# %% [markdown]
# ### Worked example 1: a full 2-D convolution
#
# The lecture notes convolve the $3 \times 3$ array
# $A = \begin{pmatrix} 1 & 3 & 1 \\ 0 & -1 & 1 \\ 2 & 2 & -1 \end{pmatrix}$ with the
# $2 \times 2$ kernel $B = \begin{pmatrix} 1 & 2 \\ 0 & -1 \end{pmatrix}$ using the
# definition above, keeping every output position where the two overlap at all (the *full*
# convolution, of size $(3 + 2 - 1) \times (3 + 2 - 1) = 4 \times 4$).
#
# The definition has a friendly reading: every input entry $A_{uv}$ stamps a copy of the
# kernel, scaled by $A_{uv}$, with its top-left corner at $(u, v)$, and the output is the sum
# of all the stamps. Written that way it is a two-line loop.

# %%
A = np.array([[1, 3, 1], [0, -1, 1], [2, 2, -1]], dtype=np.float64)
B = np.array([[1, 2], [0, -1]], dtype=np.float64)

full = np.zeros((A.shape[0] + B.shape[0] - 1, A.shape[1] + B.shape[1] - 1))  # (4, 4)
for (u, v), value in np.ndenumerate(A):
    full[u : u + B.shape[0], v : v + B.shape[1]] += value * B  # stamp a scaled kernel
print(full.astype(int))

# %% [markdown]
# SciPy's `convolve2d` implements the textbook definition, and agrees. To get the same
# numbers out of a deep-learning convolution (a cross-correlation), flip the kernel and pad
# the input with $k - 1 = 1$ zeros on every side so that partial overlaps count; the
# package's NumPy layer and PyTorch then agree too.

# %%
assert np.array_equal(full, signal.convolve2d(A, B, mode="full"))
assert np.array_equal(full, [[1, 5, 7, 2], [0, -2, -4, 1], [2, 6, 4, -3], [0, -2, -2, 1]])

B_flipped = B[::-1, ::-1]  # rotate the kernel by 180 degrees
out_nd, _ = nd.conv2d_forward(A[None, None], B_flipped[None, None].copy(), padding=1)
out_td = td.conv2d(to_torch(A)[None, None], to_torch(B_flipped.copy())[None, None], padding=1)
assert np.allclose(out_nd[0, 0], full) and np.allclose(out_td[0, 0].cpu().numpy(), full)

# Without the flip, the same layer computes a different array: cross-correlation.
corr, _ = nd.conv2d_forward(A[None, None], B[None, None], padding=1)
print("cross-correlation differs from convolution:", not np.allclose(corr[0, 0], full))
assert np.allclose(corr[0, 0], signal.correlate2d(A, B, mode="full"))

valid, _ = nd.conv2d_forward(A[None, None], B_flipped[None, None].copy())  # no padding
assert np.array_equal(valid[0, 0], full[1:-1, 1:-1])  # the middle 2x2 of the full result

# %% [markdown]
# The $2 \times 2$ *valid* part in the middle, $\begin{pmatrix} -2 & -4 \\ 6 & 4
# \end{pmatrix}$ (positions where $B$ lies entirely inside $A$), is what a convolutional
# layer with no padding returns, as the last assert checks.
#
# ### Worked example 2: a "convolved feature"
#
# The second example from the notes slides the $3 \times 3$ kernel
# $\begin{pmatrix} 1 & 0 & 1 \\ 0 & 1 & 0 \\ 1 & 0 & 1 \end{pmatrix}$ over a $5 \times 5$
# binary image. The slide shows the image and the first output, 4, at the top-left window.
# Below we rebuild the image from the slide and compute the whole $3 \times 3$ feature.
# This kernel is symmetric under a 180-degree rotation, so here convolution and
# cross-correlation coincide.

# %%
image = np.array(
    [[1, 1, 1, 0, 0],
     [0, 1, 1, 1, 0],
     [0, 0, 1, 1, 1],
     [0, 0, 1, 1, 0],
     [0, 1, 1, 0, 0]], dtype=np.float64)  # fmt: skip
kernel = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float64)

feature, _ = nd.conv2d_forward(image[None, None], kernel[None, None])
feature = feature[0, 0]  # (3, 3)
assert feature[0, 0] == 4
assert np.array_equal(feature, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
assert np.array_equal(kernel, kernel[::-1, ::-1])  # flip-symmetric: conv == cross-corr
assert np.array_equal(feature, signal.convolve2d(image, kernel, mode="valid"))

# %%
fig = show_images(
    [image, kernel, feature],
    ["5x5 binary image", "3x3 kernel", "3x3 convolved feature"],
    annotate=True,
    cmap="Blues",
    suptitle="Sliding a 3x3 kernel over a 5x5 image: each output is one window's dot product",
)
plt.show()

# %% [markdown]
# Each output counts how many of the five "x"-shaped positions of its window are on. The
# top-left window contains ones at four of them, hence the 4.
#
# ## The algorithm: loops, then vectorized
#
# A convolutional layer takes a batch $x$ of shape $(N, C_{in}, H, W)$ (PyTorch's NCHW
# layout), $C_{out}$ filters $w$ of shape $(C_{out}, C_{in}, k_H, k_W)$ and one bias per
# filter, and computes
#
# $$
# \text{out}[n, o, i, j] = b[o] + \sum_{c=0}^{C_{in}-1} \sum_{u=0}^{k_H-1}
# \sum_{v=0}^{k_W-1} w[o, c, u, v]\; x_{\text{pad}}[n, c, is + u, js + v],
# $$
#
# where $x_{\text{pad}}$ is the input with $p$ zeros added on each side and $s$ is the
# stride (the step between neighbouring windows).
#
# The figure below shows the sum at work on the smallest interesting case, a $3 \times 3$
# kernel on a $5 \times 5$ input (stride 1, no padding), for the first four output
# positions. Look at where the orange window sits in each frame and which output cell it
# fills: output $(i, j)$ reads the window whose top-left corner is input $(i, j)$, the
# outputs are filled row by row, and the window fits at only $5 - 3 + 1 = 3$ positions
# across and down, so the output is $3 \times 3$, smaller than the input.

# %%
fig = diagrams.conv_window()
plt.show()
assert conv2d_output_shape(5, 3) == (3, 3)

# %% [markdown]
# The most direct program does exactly what the figure shows: it loops over the output
# positions and takes one dot product per window and filter.

# %%
def conv2d_loops(x, w, b, stride=1, padding=0):
    """Teaching version: one dot product per output position (all filters at once)."""
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = (xp.shape[2] - kh) // stride + 1
    w_out = (xp.shape[3] - kw) // stride + 1
    out = np.empty((x.shape[0], w.shape[0], h_out, w_out))  # (N, C_out, H_out, W_out)
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


# %% [markdown]
# Python loops over output positions are slow. The standard fix, *im2col*, first copies
# every receptive field into a column of a matrix and then does a single matrix product of
# the $(C_{out}, C_{in} k_H k_W)$ filter matrix with that $(C_{in} k_H k_W, H' W')$
# column matrix. NumPy can even build the windows without copying: `sliding_window_view`
# returns a view of shape $(N, C_{in}, H', W', k_H, k_W)$ and one `einsum`
# contracts it with the filters.

# %%
def conv2d_windows(x, w, b, stride=1, padding=0):
    """Teaching version: a window view plus one contraction."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    win = win[:, :, ::stride, ::stride]  # (N, C_in, H_out, W_out, kH, kW)
    return np.einsum("nchwpq,ocpq->nohw", win, w) + b[:, None, None]


# %% [markdown]
# The package's `nd.conv2d_forward` is a tuned im2col (cache-sized chunks, a reused
# workspace) with the same contract, and `nd.conv2d_forward_naive` keeps the loops for
# reading. All of them, PyTorch's own `F.conv2d`, and the package's two PyTorch versions
# (`td.conv2d` from tensor primitives and `td.conv2d_manual` with a hand-written backward)
# must give the same numbers, here with stride 2 and padding 1:

# %%
x = rng.standard_normal((2, 3, 9, 9))  # (N, C_in, H, W)
w = rng.standard_normal((4, 3, 3, 3))  # (C_out, C_in, kH, kW)
b = rng.standard_normal(4)
hyper = dict(stride=2, padding=1)

reference = F.conv2d(to_torch(x), to_torch(w), to_torch(b), **hyper).cpu().numpy()
candidates = {
    "loops (this page)": conv2d_loops(x, w, b, **hyper),
    "window view (this page)": conv2d_windows(x, w, b, **hyper),
    "nd.conv2d_forward_naive": nd.conv2d_forward_naive(x, w, b, **hyper)[0],
    "nd.conv2d_forward": nd.conv2d_forward(x, w, b, **hyper)[0],
    "td.conv2d": td.conv2d(to_torch(x), to_torch(w), to_torch(b), **hyper).cpu().numpy(),
    "td.conv2d_manual": td.conv2d_manual(to_torch(x), to_torch(w), to_torch(b), **hyper)
    .detach().cpu().numpy(),
}
for name, out in candidates.items():
    assert out.shape == reference.shape == (2, 4, 5, 5)
    assert np.allclose(out, reference, rtol=1e-10, atol=1e-10), name
print(f"{len(candidates)} implementations agree with F.conv2d; output shape {reference.shape}")

# %% [markdown]
# Six programs, one answer, to a relative tolerance of $10^{-10}$ in float64. They differ
# enormously in speed. The package's loop version does a little Python work for every
# output value; on a modest layer (four $32 \times 32$ images, 16 channels in and out,
# $3 \times 3$ filters) it is more than thirty times slower than the im2col version, and
# the gap widens with the layer's size. That is why loops live only in tests and in
# chapters like this one. The im2col versions pay in memory instead: the column matrix
# holds every input value $k_H k_W$ times (nine times for a $3 \times 3$ filter), which is
# why the package builds it a few images at a time.

# %% tags=["nbval-ignore-output"]
# Timing varies from run to run and machine to machine: the printout is ignored, and the
# assert keeps a wide margin (we measured 200-400x on a 2-core CPU, 30x is the claim).
def best_time(fn, repeat):
    """Fastest of `repeat` runs of fn(), in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


x_t = rng.standard_normal((4, 16, 32, 32))  # (N, C_in, H, W)
w_t = rng.standard_normal((16, 16, 3, 3))  # (C_out, C_in, kH, kW)
t_loops = best_time(lambda: nd.conv2d_forward_naive(x_t, w_t, padding=1), repeat=1)
t_im2col = best_time(lambda: nd.conv2d_forward(x_t, w_t, padding=1), repeat=5)
print(f"loops {t_loops * 1e3:.0f} ms, im2col {t_im2col * 1e3:.1f} ms: "
      f"{t_loops / t_im2col:.0f}x slower")
assert t_loops > 30 * t_im2col

# %% [markdown]
# ### The backward pass
#
# Because the output is linear in both $x$ and $w$, the gradients are convolutions too.
# Take stride 1 and one channel in and out, so that $\text{out}[i, j] = \sum_{u, v}
# w[u, v]\, x_{\text{pad}}[i + u, j + v]$, and write $\text{dout} = \partial L /
# \partial \text{out}$ for the upstream gradient.
#
# * The **bias** gradient sums $\text{dout}$ over the batch and all positions.
# * The **filter** gradient, $\partial L / \partial w[u, v] = \sum_{i, j}
#   \text{dout}[i, j]\, x_{\text{pad}}[i + u, j + v]$, is a *valid cross-correlation* of
#   the padded input with $\text{dout}$.
# * The **input** gradient collects, for each input pixel $x_{\text{pad}}[a, b]$, every
#   output whose window covers it, $\text{out}[a - u, b - v]$, weighted by $w[u, v]$:
#
# $$
# \frac{\partial L}{\partial x_{\text{pad}}[a, b]} = \sum_{u, v} w[u, v]\,
# \text{dout}[a - u, b - v] = (w * \text{dout})[a, b] .
# $$
#
# By the definition of worked example 1, that is a *full convolution of the upstream
# gradient with the filter as it is*, unflipped: each output's gradient stamps a scaled
# copy of the filter back onto its window. Since a convolution is a cross-correlation with
# the flipped kernel, the same array is a full cross-correlation with the flipped filter,
# which is how a deep-learning library computes it: a convolutional layer with padding
# $k - 1$ and the filters flipped (and their two channel axes swapped, since the gradient
# flows from $C_{out}$ channels back to $C_{in}$). With channels, input channel $c$ sums
# the contributions of every output channel $o$ through $w[o, c]$. The cell checks all of
# this against the package's `nd.conv2d_backward`, and checks that a full convolution
# with the *flipped* filter gives a different array.

# %%
x_b = rng.standard_normal((1, 2, 6, 6))  # (N, C_in, H, W)
w_b = rng.standard_normal((3, 2, 3, 3))  # (C_out, C_in, k, k)
out_b, cache_b = nd.conv2d_forward(x_b, w_b)  # stride 1, no padding: (1, 3, 4, 4)
dout_b = rng.standard_normal(out_b.shape)  # a random upstream gradient
dx_b, dw_b, _ = nd.conv2d_backward(dout_b, cache_b)

# input gradient: full convolution with the unflipped filter, summed over output channels
dx_conv = np.stack([sum(signal.convolve2d(dout_b[0, o], w_b[o, c], mode="full")
                        for o in range(3)) for c in range(2)])
# ... = full cross-correlation with the flipped filter
dx_corr = np.stack([sum(signal.correlate2d(dout_b[0, o], w_b[o, c, ::-1, ::-1], mode="full")
                        for o in range(3)) for c in range(2)])
# ... = a conv layer with padding k - 1, flipped filters, C_in and C_out swapped
w_back = w_b[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).copy()  # (C_in, C_out, k, k)
dx_layer = nd.conv2d_forward(dout_b, w_back, padding=3 - 1)[0]
assert np.allclose(dx_b[0], dx_conv) and np.allclose(dx_b[0], dx_corr)
assert np.allclose(dx_b, dx_layer)
dx_wrong = np.stack([sum(signal.convolve2d(dout_b[0, o], w_b[o, c, ::-1, ::-1], mode="full")
                         for o in range(3)) for c in range(2)])
assert not np.allclose(dx_b[0], dx_wrong)  # a convolution with the flipped filter is wrong

# filter gradient: valid cross-correlation of the input with the upstream gradient
dw_corr = np.stack([np.stack([signal.correlate2d(x_b[0, c], dout_b[0, o], mode="valid")
                              for c in range(2)]) for o in range(3)])
assert np.allclose(dw_b, dw_corr)
print("dx = full conv(dout, w) = full cross-corr(dout, flipped w); "
      "dw = valid cross-corr(x, dout)")

# %% [markdown]
# With a stride greater than 1 the picture is the same, except that the upstream gradient
# is spread out first (stride $s$ leaves $s - 1$ zeros between its entries) before the
# filter stamps it back; the package handles the general case. We check it against centred
# finite differences $\frac{f(x + h e_i) - f(x - h e_i)}{2h}$ in float64, with stride 2
# and padding 1, where $f = \sum \text{out} \odot \text{dout}$ for a random upstream
# gradient.
#
# One detail about the step $h$. A centred difference has two errors: truncation,
# proportional to $h^2$ and to the third derivative, and floating-point round-off, about
# $\epsilon |f| / h$ with $\epsilon \approx 2 \cdot 10^{-16}$. A convolution is *linear* in
# each of $x$, $w$ and $b$, so the truncation error is exactly zero and only round-off is
# left: a large step is better. With the customary $h = 10^{-6}$ the round-off is about
# $10^{-8}$ in absolute terms, so the few gradient entries that happen to be tiny get
# larger elementwise relative errors; with $h = 10^{-3}$ the largest relative error
# stays below $10^{-7}$, and below the one at $h = 10^{-6}$. The cell runs both.

# %% tags=["nbval-ignore-output"]
# The last digits of a float64 rounding error vary between CPUs; the assert does not.
# (Over twenty random draws of this test, h = 1e-6 gave relative errors up to 3e-5.)
xs = rng.standard_normal((2, 3, 7, 7))
ws = rng.standard_normal((4, 3, 3, 3))
bs = rng.standard_normal(4)
errors = {}
for h in (1e-6, 1e-3):
    errors[h] = check_backward(
        nd.conv2d_forward, nd.conv2d_backward, [xs, ws, bs], kwargs=hyper, h=h
    )
    print(f"h = {h:.0e}: " + ", ".join(
        f"{name} {err:.0e}" for name, err in zip(["dx", "dw", "db"], errors[h], strict=True)))
assert max(errors[1e-3]) < 1e-7 and max(errors[1e-3]) < max(errors[1e-6])

# %% [markdown]
# The PyTorch version with a hand-written backward must match autograd through
# `F.conv2d`, and `torch.autograd.gradcheck` (the same finite-difference test, in PyTorch)
# must pass:

# %%
params = [to_torch(v).requires_grad_() for v in (xs, ws, bs)]
loss_manual = td.conv2d_manual(*params, **hyper).square().sum()  # any scalar loss will do
loss_auto = F.conv2d(*params, **hyper).square().sum()
grads_manual = torch.autograd.grad(loss_manual, params)
grads_auto = torch.autograd.grad(loss_auto, params)
assert all(torch.allclose(g1, g2) for g1, g2 in zip(grads_manual, grads_auto, strict=True))
tiny = [to_torch(rng.standard_normal(shape)).requires_grad_()
        for shape in [(1, 2, 5, 5), (2, 2, 3, 3), (2,)]]  # gradcheck probes every entry
assert torch.autograd.gradcheck(lambda *t: td.conv2d_manual(*t, **hyper), tiny)
print("manual backward == autograd, and torch.autograd.gradcheck passes")

# %% [markdown]
# ## Filters on a real photograph
#
# Before any learning, a few hand-designed $3 \times 3$ and $5 \times 5$ filters show what a
# single convolution can do. We use the "camera" photograph that ships with scikit-image.
#
# * The **Sobel** filters $\begin{pmatrix} 1 & 0 & -1 \\ 2 & 0 & -2 \\ 1 & 0 & -1
#   \end{pmatrix}$ and its transpose estimate the horizontal and vertical derivatives of
#   intensity, so they light up at edges; their weights sum to zero, so flat regions give 0.
# * A **box blur** averages a $5 \times 5$ neighbourhood (all weights $1/25$).
# * A **sharpen** filter adds the difference between a pixel and its neighbours back to the
#   pixel ($5$ in the centre, $-1$ at the four neighbours; weights sum to 1).
#
# Stacking several filters as the output channels of one weight tensor computes all their
# feature maps in a single call; we pad so that the maps keep the photo's size.

# %%
photo = sample_image("camera", size=256).astype(np.float64)  # (256, 256), values in [0, 1]
sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)
bank3 = np.stack([sobel_x, sobel_x.T, sharpen])[:, None]  # (3, 1, 3, 3): three filters
box5 = np.full((1, 1, 5, 5), 1 / 25)

x_photo = to_torch(photo)[None, None]  # (1, 1, 256, 256)
maps3 = td.conv2d(x_photo, to_torch(bank3), padding=1)[0].cpu().numpy()  # (3, 256, 256)
blur = td.conv2d(x_photo, to_torch(box5), padding=2)[0, 0].cpu().numpy()  # (256, 256)
print("feature maps:", maps3.shape, "| blurred:", blur.shape)

# %%
fig = show_images(
    [photo, maps3[0], maps3[1], blur, np.clip(maps3[2], 0, 1)],
    ["photo", "Sobel x (vertical edges)", "Sobel y (horizontal edges)", "5x5 box blur",
     "sharpen"],
    ncols=5,
    suptitle="Hand-designed filters applied to a photo (camera, 256x256)",
)
plt.show()

# %% [markdown]
# A few checks tie the pictures back to the math. A filter whose weights sum to zero
# returns zero on a constant image; the blur and sharpen filters sum to one and keep the
# mean brightness (away from the zero-padded border); and transposing the photo swaps the
# roles of the two Sobel filters. The last check also shows the flip once more: SciPy's
# true convolution with the Sobel filter is the *negative* of the deep-learning
# cross-correlation, because flipping this kernel negates it.

# %%
flat = td.conv2d(torch.ones(1, 1, 8, 8, dtype=DTYPE, device=device), to_torch(bank3[:2]))
assert torch.allclose(flat, torch.zeros_like(flat))
inner = (slice(8, -8), slice(8, -8))
assert abs(blur[inner].mean() - photo[inner].mean()) < 1e-3
assert abs(maps3[2][inner].mean() - photo[inner].mean()) < 1e-3

maps_t = td.conv2d(to_torch(photo.T.copy())[None, None], to_torch(bank3[:2]), padding=1)[0]
assert np.allclose(maps_t[0].cpu().numpy(), maps3[1].T)  # Sobel x on the transpose
true_conv = signal.convolve2d(photo, sobel_x, mode="same")
assert np.allclose(true_conv, -maps3[0])  # kernel flip = sign flip for Sobel
print("Sobel x on the transposed photo = transposed Sobel y; convolve2d = -conv2d")

# %% [markdown]
# ## Many channels and many filters
#
# A colour image has three channels, and a filter always extends through **all** of the
# input's channels: on a $32 \times 32 \times 3$ image, a "$5 \times 5$" filter is really
# $5 \times 5 \times 3$. Sliding it over every position where it fits produces one number
# per position, a $28 \times 28 \times 1$ *activation map*. Why 28? With the centred
# indexing, the window's centre must stay $\frac{k - 1}{2}$ pixels away from each border,
# so
#
# $$
# H' = H - 2 \cdot \frac{k - 1}{2} = H - k + 1 = 32 - 5 + 1 = 28 .
# $$
#
# A second filter gives a second map. Six filters give six maps, which we stack into a new
# "image" of size $28 \times 28 \times 6$: the number of output channels is the number of
# filters.
#
# It helps to picture the output as neurons. Each entry of an activation map is an ordinary
# neuron, $\sigma(\sum_i w_i x_i + b)$, except that it is connected only to a
# $5 \times 5 \times 3$ region of the input (its receptive field) and shares its weights
# with every other neuron of the same map. The output volume is then a
# $28 \times 28 \times 6$ grid of neurons, and the six neurons stacked at one position all
# look at the same input region, each through its own filter. (Shapes below are NCHW, so
# $28 \times 28 \times 6$ appears as `(1, 6, 28, 28)`.)

# %%
x32 = rng.standard_normal((1, 3, 32, 32))
one, _ = nd.conv2d_forward(x32, rng.standard_normal((1, 3, 5, 5)))
six, _ = nd.conv2d_forward(x32, rng.standard_normal((6, 3, 5, 5)))
print("one 5x5x3 filter:", one.shape, "| six filters:", six.shape)
assert one.shape == (1, 1, 28, 28) and six.shape == (1, 6, 28, 28)
assert conv2d_output_shape(32, 5) == (32 - 5 + 1,) * 2

# %% [markdown]
# Here is the same thing on a real colour photo, with six hand-made $5 \times 5 \times 3$
# filters: four oriented edge detectors that act on brightness (the same weights in all
# three channels), and two colour-opponent filters that respond where red exceeds green and
# where blue exceeds yellow. After the convolution we apply a ReLU, as a layer would.

# %%
ramp = np.linspace(-1, 1, 5) / 5
edge_lr = np.tile(ramp, (5, 1))  # (5, 5): brighter to the right -> positive
diag = edge_lr + edge_lr.T  # brighter towards the bottom-right
blob = np.pad(np.full((3, 3), 1 / 9), 1)  # (5, 5): a 3x3 average in the middle
brightness = [edge_lr, edge_lr.T, diag, np.fliplr(diag)]
filters6 = np.stack(
    [np.stack([k, k, k]) / 3 for k in brightness]  # same kernel on R, G and B
    + [np.stack([blob, -blob, 0 * blob]), np.stack([-blob / 2, -blob / 2, blob])]
)  # (6, 3, 5, 5): C_out = 6 filters of depth C_in = 3
print("filter bank:", filters6.shape)

# %% [markdown]
# The photo arrives in the usual image layout, height by width by channels, and the
# convolution wants channels first, so we transpose it to $(1, 3, 128, 128)$. The output
# has one channel per filter and, without padding, loses $5 - 1 = 4$ pixels in each
# direction.

# %%
astro = sample_image("astronaut", gray=False, size=128).astype(np.float64)  # (128, 128, 3)
x_astro = to_torch(astro.transpose(2, 0, 1))[None]  # HWC -> (1, 3, 128, 128)
fmaps = F.relu(td.conv2d(x_astro, to_torch(filters6)))[0].cpu().numpy()  # (6, 124, 124)
assert fmaps.shape == (6, 128 - 5 + 1, 128 - 5 + 1)

# %%
fig = show_images(
    [astro, *fmaps],
    ["input (RGB)", "edge, left-right", "edge, top-bottom", "edge, diagonal", "edge, anti-diagonal",
     "red - green", "blue - yellow"],
    ncols=4,
    suptitle="Six 5x5x3 filters turn a 128x128x3 photo into a 124x124x6 stack of feature maps",
)
plt.show()

# %% [markdown]
# Each map is bright where its pattern occurs: the oriented edge maps pick out the outline
# of the suit, the helmet and the flag, and the red-minus-green map lights up the orange
# suit while the blue-minus-yellow map finds the blue patches. In a trained network nobody
# designs these filters; the first layer of an ImageNet classifier learns oriented edge
# and colour-blob detectors much like these, and later layers combine them into detectors
# of textures, parts and objects.
#
# ## Output size: stride and padding
#
# Most errors in convolutional code are shape errors: a layer that expects $7 \times 7$
# inputs receives $6 \times 6$, or a fully connected layer at the end is sized for the
# wrong number of features. The arithmetic below is short, and worth knowing by heart.
#
# ### Stride
#
# Take a $7 \times 7$ input and a $3 \times 3$ filter. With stride 1 the window fits at 5
# positions per row, so the output is $5 \times 5$. With stride 2 it starts at columns 0, 2
# and 4 and the output is $3 \times 3$. In general, for input size $H$, kernel size $k$ and
# stride $s$,
#
# $$ H' = \frac{H - k}{s} + 1 . $$
#
# With stride 3 the formula gives $(7 - 3)/3 + 1 = 2.33$: the windows at columns 0 and 3
# fit, the next one would start at column 6 and run off the edge. The stride does not fit.

# %%
assert conv2d_output_shape(7, 3, stride=1) == (5, 5)
assert conv2d_output_shape(7, 3, stride=2) == (3, 3)
print("(7 - 3) / 3 + 1 =", round((7 - 3) / 3 + 1, 2))
try:
    conv2d_output_shape(7, 3, stride=3, strict=True)
except ValueError as err:
    print("strict=True raises:", err)
else:
    raise AssertionError("strict=True should have raised")

# %% [markdown]
# The message shows the formula with the numbers filled in: the numerator
# $H + 2p - d(k - 1) - 1 = 4$ is not a multiple of the stride 3, so one row and one column
# are left over.
#
# Libraries have to do *something* with such a geometry. PyTorch (and the package, by
# default) takes the floor, $\lfloor 2.33 \rfloor = 2$, and silently ignores whatever the
# last window would have needed: here the last row and the last column of the input never
# influence the output. We can prove it by changing them and watching nothing happen.

# %%
x7 = rng.standard_normal((1, 1, 7, 7))
w3 = rng.standard_normal((1, 1, 3, 3))
y_torch = F.conv2d(to_torch(x7), to_torch(w3), stride=3)
print("floor semantics:", conv2d_output_shape(7, 3, stride=3), "| torch output:",
      tuple(y_torch.shape[2:]))
assert conv2d_output_shape(7, 3, stride=3) == tuple(y_torch.shape[2:]) == (2, 2)

x7_changed = x7.copy()
x7_changed[..., 6, :] = 100.0  # the last row ...
x7_changed[..., :, 6] = -100.0  # ... and the last column
y_changed, _ = nd.conv2d_forward(x7_changed, w3, stride=3)
assert np.allclose(y_changed, y_torch.cpu().numpy())
print("row 6 and column 6 are never read: True")

# %% [markdown]
# That is convenient when you know it happens and a bug when you do not, which is why the
# package offers `strict=True`. The usual cure is padding.
#
# ### Zero padding
#
# Adding $p$ zeros around the input turns the formula into
#
# $$ H' = \frac{H - k + 2p}{s} + 1 . $$
#
# The figure combines the two on a $5 \times 5$ input with a $3 \times 3$ kernel. The hatched
# ring is the padding, $p = 1$ zero on every side, which turns the input into $7 \times 7$;
# with stride 2 the window jumps two cells at a time, so it starts at columns 0, 2 and 4 of
# the padded grid and the output is $(5 - 3 + 2)/2 + 1 = 3$ wide. Notice that the corner
# windows read five zeros of padding and only four real pixels: padding lets the border
# pixels sit in the middle of a window instead of only at its edge.

# %%
fig = diagrams.conv_window(5, 3, stride=2, padding=1)
plt.show()
assert conv2d_output_shape(5, 3, stride=2, padding=1) == ((5 - 3 + 2) // 2 + 1,) * 2 == (3, 3)

# %% [markdown]
# Back to the $7 \times 7$ input of the stride section: padding it with one pixel of zeros
# and applying the $3 \times 3$ filter with stride 1 gives $(7 - 3 + 2)/1 + 1 = 7$: the size
# is preserved. In general, stride 1
# and $p = (k - 1)/2$ preserve the size, so $k = 3, 5, 7$ call for $p = 1, 2, 3$.

# %%
assert conv2d_output_shape(7, 3, padding=1) == (7, 7)
for k_, p_ in [(3, 1), (5, 2), (7, 3)]:
    assert p_ == (k_ - 1) // 2
    assert conv2d_output_shape(7, k_, padding=p_) == (7, 7)
    y = td.conv2d(to_torch(np.zeros((1, 1, 7, 7))), to_torch(np.zeros((1, 1, k_, k_))),
                  padding=p_)
    assert y.shape[2:] == (7, 7)
print("k = 3, 5, 7 with p = 1, 2, 3 keep a 7x7 input at 7x7")

# %% [markdown]
# Padding matters because without it every layer eats a border. A $32 \times 32$ input
# convolved repeatedly with unpadded $5 \times 5$ filters shrinks to 28, 24, 20, ...; after
# seven layers only a $4 \times 4$ map is left, and the pixels at the border have been seen
# by far fewer windows than those in the middle. Shrinking that fast leaves no room for a
# deep network.

# %%
sizes = [32]
while sizes[-1] >= 5:
    sizes.append(conv2d_output_shape(sizes[-1], 5)[0])
print(" -> ".join(map(str, sizes)))
assert sizes[:3] == [32, 28, 24] and sizes[-1] == 4

# %% [markdown]
# ### Putting it together: output volume and parameter count
#
# Input volume $32 \times 32 \times 3$; ten $5 \times 5$ filters with stride 1 and padding 2.
# Spatially, $(32 + 2 \cdot 2 - 5)/1 + 1 = 32$, and ten filters make ten channels: the output
# is $32 \times 32 \times 10$. Each filter has $5 \cdot 5 \cdot 3 = 75$ weights plus one bias,
# 76 parameters, so the layer has $76 \cdot 10 = 760$. PyTorch agrees.

# %%
layer = nn.Conv2d(in_channels=3, out_channels=10, kernel_size=5, stride=1, padding=2)
layer = layer.to(device)
y = layer(torch.zeros(1, 3, 32, 32, device=device))
per_filter = 5 * 5 * 3 + 1
n_params = sum(p.numel() for p in layer.parameters())
print(f"output {tuple(y.shape)}, {per_filter} parameters per filter, {n_params} in total")
assert conv2d_output_shape(32, 5, stride=1, padding=2) == (32, 32) == tuple(y.shape[2:])
assert y.shape[1] == 10 and per_filter == 76 and n_params == 760 == 10 * per_filter

# %% [markdown]
# In summary, a convolutional layer takes an $H \times W \times C_{in}$ volume and four
# hyperparameters (the number of filters $C_{out}$, their size $k$, the stride $s$ and the
# padding $p$) and returns an $H' \times W' \times C_{out}$ volume with
# $H' = (H - k + 2p)/s + 1$ and $W' = (W - k + 2p)/s + 1$. It has
# $k \cdot k \cdot C_{in}$ weights per filter, $(k \cdot k \cdot C_{in}) \cdot C_{out}$ in
# total, plus $C_{out}$ biases. To get output channel $o$, slide filter $o$ over the padded
# input with step $s$, take a dot product at every stop, and add bias $o$.
#
# ### Common settings
#
# The number of filters $C_{out}$ is usually a power of 2 (32, 64, 128, 256, 512), partly
# for memory alignment on accelerators. The usual $(k, s, p)$ choices are $(3, 1, 1)$ and
# $(5, 1, 2)$, which keep the size; $(1, 1, 0)$, a $1 \times 1$ convolution (next section);
# and $(5, 2, ?)$, a downsampling layer, where the slide leaves the padding open ("whatever
# fits"). What fits? On an even input such as $H = 32$, $H + 2p - k = 27 + 2p$ is odd for
# every $p$, so stride 2 never tiles exactly and PyTorch always drops one row. What matters
# is whether that row is real data or padding. Let us tabulate, for $p = 0, \dots, 3$, the
# output size and how many real input rows the windows never read.

# %%
H, k5, s2 = 32, 5, 2
print(" p  out  real rows never read")
for p_ in range(4):
    out = conv2d_output_shape(H, k5, stride=s2, padding=p_)[0]
    last_read = (out - 1) * s2 + k5 - 1  # last padded row a window reads
    unread = max(0, (p_ + H - 1) - last_read)  # real rows occupy padded rows p .. p+H-1
    print(f"{p_:2d}  {out:3d}  {unread:2d}")
    if p_ == 2:
        assert out == H // 2 and unread == 0
assert conv2d_output_shape(H, 5, stride=2, padding=0) == (14, 14)  # p = 0 loses a real row
odd = [conv2d_output_shape(33, 5, stride=2, padding=p_, strict=True)[0] for p_ in range(4)]
assert odd == [15, 16, 17, 18]  # H = 33: every p tiles exactly (strict=True does not raise)

# %% [markdown]
# $p = 2 = (k - 1)/2$ is the sensible answer: the output is exactly half the input
# ($32 \to 16$), only a row of padding goes unread, and the windows are centred on the input
# pixels $0, 2, 4, \dots, 30$, just as $(5, 1, 2)$ centres them on every pixel. $p = 0$
# loses a row of real data, and $p = 3$ shifts the centres to $-1, 1, \dots, 31$, adding an
# output whose window is centred outside the image. (On an odd input, say $H = 33$, every
# $p$ tiles exactly, `strict=True` accepts them all, and $p = 2$ gives 17.)
#
# ## 1x1 convolutions
#
# A $1 \times 1$ filter sounds useless until you remember that filters span all input
# channels. At each pixel it takes the $C_{in}$-vector of channel values and returns a dot
# product; $C_{out}$ such filters return a $C_{out}$-vector. That is a fully connected layer
# applied independently to every pixel, with the same weight matrix
# $W \in \mathbb{R}^{C_{out} \times C_{in}}$ everywhere:
#
# $$ \text{out}[:, i, j] = W\, x[:, i, j] + b . $$

# %%
x1 = rng.standard_normal((2, 64, 14, 14))  # (N, C_in, H, W)
W1 = rng.standard_normal((16, 64))  # (C_out, C_in): one fully connected layer
b1 = rng.standard_normal(16)
y_conv, _ = nd.conv2d_forward(x1, W1[:, :, None, None], b1)  # a 1x1 convolution
y_matmul = np.einsum("oc,nchw->nohw", W1, x1) + b1[:, None, None]  # W x + b at every pixel
assert np.allclose(y_conv, y_matmul)
print("1x1 conv == per-pixel matmul:", y_conv.shape)

# %% [markdown]
# Networks use this to change the number of channels cheaply: the "network in network"
# of Lin et al. (2014), the inception modules of GoogLeNet (Szegedy et al., 2015) and the
# bottlenecks of ResNet (He et al., 2016), all taken apart in
# [chapter 7](07-case-studies.ipynb). Reducing 64 channels to 16 costs
# only $64 \cdot 16 + 16 = 1040$ parameters and keeps the spatial size. A $3 \times 3$
# convolution that follows then works on 16 channels instead of 64, so it is four times
# cheaper. Because it mixes channels but not positions, a $1 \times 1$ convolution is
# sometimes described as pooling across features.

# %%
reduce = nn.Conv2d(64, 16, kernel_size=1)
assert sum(p.numel() for p in reduce.parameters()) == 64 * 16 + 16 == 1040
assert conv2d_output_shape(14, 1) == (14, 14)
cost_64, cost_16 = 3 * 3 * 64 * 64, 3 * 3 * 16 * 64  # multiply-adds per pixel, 3x3 to 64 ch
print(f"3x3 conv after the reduction: {cost_64 // cost_16}x fewer multiply-adds per pixel")
assert cost_64 == 4 * cost_16

# %% [markdown]
# ## How the frameworks spell it
#
# ### PyTorch: `nn.Conv2d` and its output formula
#
# PyTorch's layer is `nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
# dilation=1, groups=1, bias=True)`, with weights of shape $(C_{out}, C_{in}/G, k_H, k_W)$.
# Its documentation states the output size with one more ingredient, the **dilation** $d$:
# the spacing between the filter's taps. A dilated $k \times k$ filter spans
# $d(k - 1) + 1$ pixels, so
#
# $$
# H' = \left\lfloor \frac{H + 2p - d (k - 1) - 1}{s} + 1 \right\rfloor ,
# $$
#
# which is $(H - k + 2p)/s + 1$ again when $d = 1$ and the stride fits.
#
# Dilation is easiest to understand in a picture. Below, a $3 \times 3$ kernel with dilation
# 2 slides over a $7 \times 7$ input: its nine taps (orange) skip every other pixel, so they
# cover a $5 \times 5$ window (dashed) with holes, while the kernel still has only nine
# weights. The window is as wide as a $5 \times 5$ kernel's, so the output is
# $(7 - 2 \cdot 2 - 1)/1 + 1 = 3$ wide, just as for $k = 5$.

# %%
fig = diagrams.conv_window(7, 3, dilation=2)
plt.show()
assert conv2d_output_shape(7, 3, dilation=2) == conv2d_output_shape(7, 5) == (3, 3)

# %% [markdown]
# Other frameworks expose the same four hyperparameters under other names. Caffe describes
# a layer in a configuration file (`num_output: 96`, `kernel_size: 11`, `stride: 4` for
# AlexNet's first layer, with its filters initialized from a Gaussian of standard deviation
# 0.01 and biases at 0); MatConvNet's `vl_nnconv` takes `'Stride'`, `'Pad'` (which may
# differ on the four sides) and `'Dilate'` options. The PyTorch documentation's own example,
# a $(3, 5)$ kernel with stride $(2, 1)$, padding $(4, 2)$ and dilation $(3, 1)$ on a
# $50 \times 100$ input with 16 channels, maps to 33 channels; here are its output shape and
# a few more geometries (AlexNet's first layer among them), each compared with what PyTorch
# actually returns.

# %%
examples = [
    dict(input_size=(50, 100), kernel_size=(3, 5), stride=(2, 1), padding=(4, 2),
         dilation=(3, 1)),
    dict(input_size=(7, 7), kernel_size=3, stride=1, padding=0, dilation=2),
    dict(input_size=(224, 224), kernel_size=11, stride=4, padding=2, dilation=1),
    dict(input_size=(15, 16), kernel_size=(3, 2), stride=(3, 2), padding=(1, 0), dilation=(2, 3)),
]
for g in examples:
    m = nn.Conv2d(16, 33, g["kernel_size"], g["stride"], g["padding"], g["dilation"], bias=False)
    shape = tuple(m(torch.zeros(1, 16, *g["input_size"], device="meta")).shape)
    ours = conv2d_output_shape(**g)
    print(g["input_size"], "->", ours)
    assert shape == (1, 33, *ours)
assert conv2d_output_shape(**examples[0]) == (26, 100)

# %% [markdown]
# ### TensorFlow: NHWC versus NCHW
#
# TensorFlow's `tf.nn.conv2d` defaults to the **NHWC** layout (batch, height, width,
# channels) with filters of shape $(k_H, k_W, C_{in}, C_{out})$; PyTorch uses **NCHW** with
# $(C_{out}, C_{in}, k_H, k_W)$. The numbers are the same, only the axis order differs, so
# converting is a transpose of the input, the filters and the output. Below, a convolution
# written directly in NHWC (windows over the H and W axes, contraction over channels) is
# compared with PyTorch's NCHW one.

# %%
x_nhwc = rng.standard_normal((2, 10, 10, 3))  # (N, H, W, C_in): TensorFlow's default
w_hwio = rng.standard_normal((3, 3, 3, 8))  # (kH, kW, C_in, C_out): TensorFlow's filters
win = np.lib.stride_tricks.sliding_window_view(x_nhwc, (3, 3), axis=(1, 2))  # (N,8,8,C,3,3)
y_nhwc = np.einsum("nhwcpq,pqco->nhwo", win, w_hwio)  # (N, H_out, W_out, C_out)

x_nchw = to_torch(x_nhwc.transpose(0, 3, 1, 2))  # NHWC -> NCHW
w_oihw = to_torch(w_hwio.transpose(3, 2, 0, 1))  # HWIO -> OIHW
y_nchw = F.conv2d(x_nchw, w_oihw)  # (N, C_out, H_out, W_out)
assert np.allclose(y_nchw.permute(0, 2, 3, 1).cpu().numpy(), y_nhwc)  # NCHW -> NHWC
print("NHWC", y_nhwc.shape, "== NCHW", tuple(y_nchw.shape), "transposed")

# %% [markdown]
# Neither layout is "right". In NCHW each channel is a contiguous image, which suits
# per-channel operations and was the historical choice of cuDNN and Caffe; in NHWC the
# channel values of a pixel are contiguous, which suits the per-pixel matrix products of
# perspective 2 below and the tensor cores of recent GPUs. When porting weights between
# frameworks, the filter transpose is the step people forget: the shapes are often still
# compatible after a wrong transpose, and only the accuracy reveals the mistake.
#
# PyTorch can also *store* an NCHW tensor in NHWC order without changing its shape
# (`memory_format=torch.channels_last`), which some GPU kernels prefer. Only the strides,
# the steps in memory between neighbours along each axis, change:

# %%
t = torch.zeros(2, 3, 10, 10, device=device)
t_last = t.to(memory_format=torch.channels_last)
print("shape", tuple(t_last.shape), "| NCHW strides", t.stride(), "| channels_last strides",
      t_last.stride())
assert t_last.shape == t.shape and t_last.stride() == (300, 1, 30, 3)

# %% [markdown]
# ### Groups (and MatConvNet's view of them)
#
# With `groups=G`, the input channels are split into $G$ consecutive groups of $C_{in}/G$,
# the filters into $G$ groups of $C_{out}/G$, and each group of filters sees only its own
# group of channels. The weight shape becomes $(C_{out}, C_{in}/G, k_H, k_W)$, so the layer
# has $G$ times fewer weights. MatConvNet's `vl_nnconv` expresses the same thing from the
# filters' side: its filters have a depth (channels per filter) that must either equal the
# number of input channels $C_{in}$ or divide it, in which case the filters form
# $G = C_{in} / \text{depth}$ groups (and $G$ must divide the number of filters
# $C_{out}$). With $G = C_{in}$ every filter sees one channel: a *depthwise* convolution.
#
# Take $C_{in} = 8$ input channels and filters of depth 2, so $G = 8 / 2 = 4$ groups, and
# $C_{out} = 8$ filters. The grouped convolution equals four independent convolutions,
# concatenated:

# %%
C_in, depth, C_out = 8, 2, 8  # input channels, channels per filter, filters
G = C_in // depth
assert C_in % depth == 0 and C_out % G == 0 and G == 4
xg = rng.standard_normal((1, C_in, 6, 6))
wg = rng.standard_normal((C_out, depth, 3, 3))  # (C_out, C_in / groups, kH, kW)
grouped, _ = nd.conv2d_forward(xg, wg, groups=G)
per_group = C_out // G  # filters per group
pieces = [nd.conv2d_forward(xg[:, g * depth : (g + 1) * depth],
                            wg[g * per_group : (g + 1) * per_group])[0] for g in range(G)]
assert np.allclose(grouped, np.concatenate(pieces, axis=1))
assert np.allclose(grouped, F.conv2d(to_torch(xg), to_torch(wg), groups=G).cpu().numpy())
n_grouped = sum(p.numel() for p in nn.Conv2d(C_in, C_out, 3, groups=G).parameters())
n_dense = sum(p.numel() for p in nn.Conv2d(C_in, C_out, 3).parameters())
print(f"G = {G} groups: {n_grouped} parameters instead of {n_dense}")
assert n_grouped == C_out * depth * 9 + C_out == 152 and n_dense == C_out * C_in * 9 + C_out == 584

# %% [markdown]
# Groups first appeared for a practical reason: AlexNet was trained on two GPUs with 3 GB
# each, and several of its layers used two groups so that each GPU convolved only its own
# half of the channels (Krizhevsky et al., 2012). Later designs use them on purpose: ResNeXt
# (Xie et al., 2017) uses 32 groups, and MobileNet (Howard et al., 2017) pairs a depthwise
# convolution ($G = C_{in}$, spatial filtering per channel) with a
# $1 \times 1$ convolution (mixing channels), which together cost a fraction of a full
# $3 \times 3$ convolution.

# %% [markdown]
# ## Two ways to read a k x k convolution
#
# A $k \times k$ convolution from $C_{in}$ to $C_{out}$ channels has $k^2 C_{in} C_{out}$
# weights and $C_{out}$ biases. Two pictures of the same computation are worth keeping in
# mind.
#
# **Perspective 1: many small convolutions.** It is $C_{out}$ separate convolutions, each
# producing one output channel. Each of those is itself $C_{in}$ single-channel $k \times k$
# convolutions, one per input channel, whose results are added together with a bias.
#
# **Perspective 2: one convolution with matrix-valued weights.** Think of the input at each
# pixel as a vector $\vec h_{in} \in \mathbb{R}^{C_{in}}$. The filter has $k^2$ positions
# (for $k = 3$: north-west, north, north-east, west, centre, ...), and at each position $i$
# sits a $C_{out} \times C_{in}$ matrix $W_i$. The output vector at a pixel is
#
# $$ \vec h_{out} = \vec b + \sum_{i=1}^{k^2} W_i \, \vec h_{in,i}, $$
#
# where $\vec h_{in,i}$ is the input vector at the pixel's $i$-th neighbour. This is the
# view in which a $1 \times 1$ convolution is obviously a per-pixel linear layer, and it is
# how im2col computes the layer. Both readings give the same numbers:

# %%
k, c_in, c_out = 3, 4, 5
xp2 = rng.standard_normal((c_in, 8, 8))
wp2 = rng.standard_normal((c_out, c_in, k, k))
bp2 = rng.standard_normal(c_out)
H_out = 8 - k + 1

reference = nd.conv2d_forward(xp2[None], wp2, bp2)[0][0]  # (C_out, H_out, W_out)

# Perspective 1: C_out x C_in single-channel convolutions, summed per output channel.
persp1 = np.stack([
    sum(signal.correlate2d(xp2[c], wp2[o, c], mode="valid") for c in range(c_in)) + bp2[o]
    for o in range(c_out)
])  # (C_out, H_out, W_out)
assert np.allclose(persp1, reference)

# %% [markdown]
# For perspective 2 we loop over the $k^2 = 9$ filter positions instead. At offset
# $(u, v)$ the weight is the $C_{out} \times C_{in}$ matrix `wp2[:, :, u, v]`, and it
# multiplies the channel vector of every pixel's $(u, v)$-th neighbour at once; the
# neighbours of all output pixels form a shifted view of the input.

# %%
persp2 = np.broadcast_to(bp2[:, None, None], (c_out, H_out, H_out)).copy()
for u in range(k):
    for v in range(k):
        W_i = wp2[:, :, u, v]  # (C_out, C_in)
        persp2 += np.einsum("oc,chw->ohw", W_i, xp2[:, u : u + H_out, v : v + H_out])

assert np.allclose(persp2, reference)
n_params = sum(p.numel() for p in nn.Conv2d(c_in, c_out, k).parameters())
assert n_params == k**2 * c_in * c_out + c_out == 185
print(f"both perspectives == conv2d; k^2 C_in C_out + C_out = {n_params} parameters")

# %% [markdown]
# ## Receptive fields
#
# A unit's *receptive field* is the set of input pixels that can influence it. After one
# convolution with a $k \times k$ kernel it is $k \times k$. Stacking layers grows it: a unit
# of the second $3 \times 3$ layer sees a $3 \times 3$ patch of the first layer, each of
# whose units sees $3 \times 3$ pixels, so $5 \times 5$ in all, and $L$ stacked
# $3 \times 3$ layers see $(2L + 1) \times (2L + 1)$. Downsampling makes it grow faster,
# because after a stride-2 layer each step of the next kernel covers two input pixels.
# Writing $r_\ell$ for the receptive field and $j_\ell$ for the distance in input pixels
# between neighbouring units of layer $\ell$,
#
# $$
# r_\ell = r_{\ell-1} + d_\ell (k_\ell - 1)\, j_{\ell-1}, \qquad j_\ell = j_{\ell-1} s_\ell,
# \qquad r_0 = j_0 = 1 ,
# $$
#
# where layer $\ell$ has kernel size $k_\ell$, stride $s_\ell$ and dilation $d_\ell$ (a
# pooling layer counts as a layer with its window size as $k_\ell$).
#
# **Dilated** convolutions grow it without downsampling and without more parameters: three
# $3 \times 3$ layers with dilations 1, 2 and 4 see $3 \times 3$, $7 \times 7$ and
# $15 \times 15$ pixels, each layer still having exactly nine weights per channel pair.

# %%
stacks = {
    "one 3x3": [3],
    "two 3x3": [3, 3],
    "three 3x3": [3, 3, 3],
    "3x3, pool 2x2 s2, 3x3": [3, (2, 2), 3],
    "dilations 1": [(3, 1, 1)],
    "dilations 1, 2": [(3, 1, 1), (3, 1, 2)],
    "dilations 1, 2, 4": [(3, 1, 1), (3, 1, 2), (3, 1, 4)],
}
expected = [3, 5, 7, 8, 3, 7, 15]
for (name, layers), rf in zip(stacks.items(), expected, strict=True):
    print(f"{name:24s} receptive field {receptive_field(layers)}x{receptive_field(layers)}")
    assert receptive_field(layers) == rf
params = [nn.Conv2d(1, 1, 3, dilation=d, bias=False).weight.numel() for d in (1, 2, 4)]
assert params == [9, 9, 9]

# %% [markdown]
# To see the recurrence at work on the pooled stack "$3 \times 3$ conv, $2 \times 2$ pool
# with stride 2, $3 \times 3$ conv": the first conv sees $r_1 = 1 + 2 \cdot 1 = 3$ pixels;
# the pool adds one more unit of the previous spacing, $r_2 = 3 + 1 \cdot 1 = 4$, and
# doubles the spacing to $j_2 = 2$; the second conv reaches two *pooled* units further on
# each side, each 2 pixels apart, so $r_3 = 4 + 2 \cdot 2 = 8$. Without the pool, two
# $3 \times 3$ convs see only 5.
#
# The formula can be checked without trusting it. Build the stack from real convolutions
# (and average pooling), take the gradient of **one** output pixel with respect to the
# input, and measure the region where it is nonzero: that region is exactly the set of input
# pixels the output depends on. We use all-positive weights so that no two paths can cancel
# by accident, and average rather than max pooling, because max pooling's gradient reaches
# only the winning pixel of each window (we will see why below).

# %%
def empirical_receptive_field(layers, size=41):
    """Side of the nonzero region of d(centre output) / d(input) through `layers`."""
    x = torch.zeros(1, 1, size, size, dtype=DTYPE, device=device, requires_grad=True)
    h = x
    for layer in layers:
        kernel, stride, dilation = (*layer, 1, 1)[:3] if isinstance(layer, tuple) else (layer, 1, 1)
        if stride == 1:
            w = torch.ones(1, 1, kernel, kernel, dtype=DTYPE, device=device)
            h = td.conv2d(h, w, dilation=dilation)
        else:
            h = td.avg_pool2d(h, kernel_size=kernel, stride=stride)
    h[0, 0, h.shape[2] // 2, h.shape[3] // 2].backward()
    rows, cols = np.nonzero(x.grad[0, 0].cpu().numpy())
    assert rows.max() - rows.min() == cols.max() - cols.min()  # a square region
    return int(rows.max() - rows.min() + 1), x.grad[0, 0].cpu().numpy()


for name, layers in stacks.items():
    side, _ = empirical_receptive_field(layers)
    assert side == receptive_field(layers), name
print("gradient-measured receptive fields == receptive_field() for all", len(stacks), "stacks")

# %%
grad_maps = [empirical_receptive_field(stacks[f"dilations {d}"], size=21)[1]
             for d in ("1", "1, 2", "1, 2, 4")]
fig = show_images(
    grad_maps,
    ["dilation 1: 3x3", "dilations 1, 2: 7x7", "dilations 1, 2, 4: 15x15"],
    cmap="magma",
    colorbar=True,
    suptitle="Gradient of one output pixel w.r.t. a 21x21 input: nonzero = receptive field",
)
plt.show()

# %% [markdown]
# With all-ones weights the gradient at an input pixel counts the paths from that pixel
# to the output. The dilated stack covers its $15 \times 15$ field without holes, but
# unevenly: the path counts form a checkerboard-like pattern (dilated stacks whose
# dilations share a factor, say 2, 2, 2, would leave real holes, the "gridding" artefact;
# Yu and Koltun (2016) use exactly the doubling dilations 1, 2, 4, ... to aggregate
# context for segmentation).

# %%
def holes(grad):
    """Number of zero-gradient pixels inside the bounding box of the nonzero ones."""
    rows, cols = np.nonzero(grad)
    return int((grad[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] == 0).sum())


_, dense = empirical_receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)], size=21)
_, gridded = empirical_receptive_field([(3, 1, 2)] * 3, size=21)  # 13x13 box, only even offsets
print("pixels that never reach the output, inside the field: dilations 1, 2, 4:",
      holes(dense), "| dilations 2, 2, 2:", holes(gridded), "of", 13 * 13)
assert holes(dense) == 0 and holes(gridded) == 13 * 13 - 7 * 7

# %% [markdown]
# How quickly the field grows with depth depends on the design. Plain stacks grow by
# $k - 1$ pixels per layer; every stride-2 stage doubles the growth rate of everything
# after it; doubling the dilation at every layer doubles the field at every layer. That is
# why networks that need large context at full resolution (semantic segmentation, audio
# generation) use dilations, and why classification networks downsample early.

# %%
depths = np.arange(1, 9)
plain = [receptive_field([3] * L) for L in depths]
pooled = [receptive_field([3, 3, (2, 2)] * (L // 2) + [3] * (L % 2)) for L in depths]
dilated = [receptive_field([(3, 1, 2**i) for i in range(L)]) for L in depths]
assert plain[-1] == 17 and dilated[2] == 15 and dilated[-1] == 2**9 - 1

fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
ax.plot(depths, plain, "o-", label="3x3 convs: linear, 2L + 1")
ax.plot(depths, pooled, "s-", label="two 3x3 convs, then 2x2 pool: faster")
ax.plot(depths, dilated, "^-", label="3x3 convs, dilation doubling: exponential")
ax.set(yscale="log", xlabel="number of layers L", ylabel="receptive field (pixels)",
       title="Receptive field growth with depth")
ax.legend()
plt.show()

# %% [markdown]
# ### What a convolutional network costs as the image grows
#
# Bronstein et al. (2017) sum up why convolutional networks scale to large inputs in three
# costs, each stated as a function of the number $n$ of input pixels:
#
# - **parameters per filter, $O(1)$**: a $k \times k$ filter over $C_{in}$ channels has
#   $k^2 C_{in}$ weights whatever the image size (a fully connected layer from $n$ pixels to
#   $n$ units has $n^2$);
# - **work per layer, $O(n)$**: with stride 1 and "same" padding the filter is applied at
#   each of the $n$ pixels, $k^2 C_{in}$ multiply-adds per output channel each time;
# - **layers for a receptive field that covers the input, $O(\log n)$**: with stride 2 (or
#   a $2 \times 2$ pooling, or a dilation that doubles from layer to layer) the jump $j_\ell$
#   doubles at every layer, so $L$ layers of $3 \times 3$ kernels see $2^{L+1} - 1$ pixels
#   on a side, and a side of $m = \sqrt n$ pixels is covered after about
#   $\log_2 m = \tfrac12 \log_2 n$ layers. A plain stride-1 stack needs about $(m - 1)/2$
#   layers, which grows like $\sqrt n$.
#
# The geometry helpers compute all three for square images from $8 \times 8$ to
# $1024 \times 1024$ pixels, for a layer with $k = 3$ and $C_{in} = C_{out} = 16$; the
# columns on the right count the layers each design needs before one unit sees a whole side.

# %%
def layers_to_cover(side, stack):
    """The smallest L for which the layers stack(L) have a receptive field >= side."""
    L = 1
    while receptive_field(stack(L)) < side:
        L += 1
    return L


k, c_in, c_out = 3, 16, 16
designs = {
    "stride 1": lambda L: [3] * L,
    "stride 2": lambda L: [(3, 2)] * L,
    "dilation 2^l": lambda L: [(3, 1, 2**i) for i in range(L)],
}
print(f"{'side m':>6} {'pixels n':>9} {'weights/filter':>14} {'MACs/n':>7} {'FC weights':>10}"
      "   layers to cover m: " + ", ".join(designs))
for m in (8, 16, 28, 32, 64, 100, 128, 224, 256, 512, 1000, 1024):
    n = m * m
    h_out, w_out = conv2d_output_shape(m, k, padding=1)  # "same" padding keeps m x m
    macs = h_out * w_out * k * k * c_in * c_out  # multiply-adds of the whole layer
    cover = {name: layers_to_cover(m, stack) for name, stack in designs.items()}
    print(f"{m:6d} {n:9d} {k * k * c_in:14d} {macs // n:7d} {n * n:10.2g}   "
          + ", ".join(str(v) for v in cover.values()))
    assert macs == n * k * k * c_in * c_out  # O(n): the same work per pixel at every size
    log_m = math.ceil(math.log2(m))
    assert cover["stride 2"] == cover["dilation 2^l"] == math.ceil(math.log2(m + 1)) - 1
    assert log_m - 1 <= cover["stride 2"] <= log_m  # ceil(log2 m) within a constant
    assert cover["stride 1"] == math.ceil((m - 1) / 2)  # O(sqrt n)
    if m == 2**log_m:  # a power of two: exactly log2 m = (1/2) log2 n layers, down to 1 x 1
        assert cover["stride 2"] == log_m == math.log2(n) / 2
        size, stack_macs = (m, m), []
        for _ in range(log_m):
            size = conv2d_output_shape(size, k, stride=2, padding=1)  # halves each side
            stack_macs.append(size[0] * size[1] * k * k * c_in * c_out)
        assert size == (1, 1) and sum(stack_macs) < 4 / 3 * stack_macs[0]
assert k * k * c_in == 144 and macs // n == 2304  # the same at every size
assert m == 1024 and cover == {"stride 1": 512, "stride 2": 10, "dilation 2^l": 10}

# %% [markdown]
# The weights per filter (144) never change, the multiply-adds per pixel (2304) never change,
# and the stride-2 and doubling-dilation stacks cover a side of $m$ pixels in
# $\lceil \log_2 (m + 1) \rceil - 1$ layers, which is $\log_2 m$ exactly when $m$ is a power of
# two: 10 layers for a $1024 \times 1024$ image, against 512 for a stride-1 stack. The
# stride-2 stack is also cheap in total: each layer has a quarter of the pixels of the one
# before, so (for a side that is a power of two) all its layers together cost less than $4/3$
# of its first.


# %% [markdown]
# ## Pooling
#
# A pooling layer shrinks the feature maps so that later layers have less to process. It
# treats every channel on its own, replacing every $k \times k$ window (moved with stride
# $s$) by its maximum (**max pooling**) or its mean (**average pooling**). For an
# $H \times W \times C$ input it returns $H' \times W' \times C$ with
#
# $$ H' = \frac{H - k}{s} + 1, \qquad W' = \frac{W - k}{s} + 1 . $$
#
# Nothing in it is learned, so it has **zero parameters**, and in practice it is seldom
# padded. The common settings are $k = 2, s = 2$ (halving, non-overlapping windows) and
# $k = 3, s = 2$ (overlapping windows, as in AlexNet, which pools $55 \to 27 \to 13 \to 6$).

# %%
assert pool2d_output_shape(224, 2, stride=2) == (112, 112)
assert [pool2d_output_shape(n, 3, stride=2)[0] for n in (55, 27, 13)] == [27, 13, 6]
for size, k_ in [(224, 2), (55, 3), (27, 3), (13, 3)]:
    y = td.max_pool2d(torch.zeros(1, 1, size, size, device=device), kernel_size=k_, stride=2)
    assert tuple(y.shape[2:]) == pool2d_output_shape(size, k_, stride=2)
assert sum(p.numel() for p in nn.MaxPool2d(2).parameters()) == 0
assert sum(p.numel() for p in nn.AvgPool2d(3, stride=2).parameters()) == 0
print("224 -> 112 (2x2 s2); 55 -> 27 -> 13 -> 6 (3x3 s2); pooling parameters: 0")

# %% [markdown]
# On a small array, max pooling with $2 \times 2$ windows and stride 2 keeps the largest
# value of each quarter, and average pooling the mean:

# %%
xpool = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float64)
mx, mx_cache = nd.max_pool2d_forward(xpool[None, None], kernel_size=2, stride=2)
av, av_cache = nd.avg_pool2d_forward(xpool[None, None], kernel_size=2, stride=2)
print("max pool:", mx[0, 0].tolist(), "| average pool:", av[0, 0].tolist())
assert np.array_equal(mx[0, 0], [[6, 8], [3, 4]])
assert np.array_equal(av[0, 0], [[3.25, 5.25], [2, 2]])
assert np.allclose(mx, td.max_pool2d(to_torch(xpool)[None, None], kernel_size=2).cpu().numpy())
assert np.allclose(av, td.avg_pool2d(to_torch(xpool)[None, None], kernel_size=2).cpu().numpy())

# %% [markdown]
# ### Backward through max pooling
#
# Inside each window, max pooling is $y = \max_i x_i$, whose derivative is 1 for the
# winning input and 0 for the others. So the backward pass **routes each window's upstream
# gradient to the position of its maximum** and sends nothing anywhere else (the layer
# remembers the argmax of each window in its cache). Average pooling instead spreads each
# gradient evenly, $1/k^2$ to every input of the window. PyTorch's autograd agrees with both.

# %%
dout = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]  # upstream gradient, one per window
dx_max = nd.max_pool2d_backward(dout, mx_cache)
dx_avg = nd.avg_pool2d_backward(dout, av_cache)
assert np.array_equal(dx_max[0, 0], [[0, 0, 0, 0], [0, 1, 0, 2], [3, 0, 0, 0], [0, 0, 0, 4]])
assert np.allclose(dx_avg[0, 0], np.kron(dout[0, 0], np.full((2, 2), 0.25)))

for pool, dx in [(td.max_pool2d, dx_max), (td.avg_pool2d, dx_avg)]:
    xt = to_torch(xpool)[None, None].requires_grad_()
    (pool(xt, kernel_size=2) * to_torch(dout)).sum().backward()  # autograd's backward
    assert np.allclose(xt.grad.cpu().numpy(), dx)
print("max-pool gradient:", dx_max[0, 0].astype(int).tolist())

# %%
fig = show_images(
    [xpool, mx[0, 0], dout[0, 0], dx_max[0, 0]],
    ["input x", "max pool 2x2 s2", "upstream gradient", "dL/dx: routed to each argmax"],
    annotate=True,
    cmap="Oranges",
    suptitle="Max pooling's backward pass sends each gradient to the window's maximum",
)
plt.show()

# %% [markdown]
# Which one? Max pooling asks "is the feature present anywhere in this window?", which is
# what a detector wants, and it dominates in classification networks. Average pooling
# keeps a smoothed, low-pass version of the map and is gentler on gradients (every input
# receives some). Its extreme form, **global average pooling**, averages each channel over
# the whole map and replaces the large fully connected layers at the end of older
# networks; we will use it below to build a translation-invariant classifier.
#
# ### Why pool, and what to use instead
#
# Three reasons to pool. Every output summarizes a window, so the receptive field of later
# layers grows faster (above); the maps get smaller and cheaper to process; and a shift of
# the input by a pixel leaves many window maxima where they were, a degree of **spatial
# invariance** (exercise 6 probes how much). The handwritten notes point out the
# alternative that many modern networks prefer: a **strided convolution**, which skips
# positions while it filters. It produces the same output size as a convolution followed
# by $2 \times 2$ pooling, but computes only a quarter of the outputs, and it learns how to
# downsample instead of always taking the maximum. Some argue it works just as well as
# convolution plus pooling: the "all-convolutional" networks of Springenberg et al. (2015)
# do without pooling entirely.

# %%
x16 = torch.zeros(1, 16, 32, 32, device=device)
w16 = torch.zeros(32, 16, 3, 3, device=device)
conv_then_pool = td.max_pool2d(td.conv2d(x16, w16, padding=1), kernel_size=2)
strided = td.conv2d(x16, w16, padding=1, stride=2)
assert conv_then_pool.shape == strided.shape == (1, 32, 16, 16)
per_output = 3 * 3 * 16 * 32  # multiply-adds per output position of the 3x3 conv
macs_full = np.prod(conv2d_output_shape(32, 3, padding=1)) * per_output
macs_strided = np.prod(conv2d_output_shape(32, 3, padding=1, stride=2)) * per_output
print(f"same shape {tuple(strided.shape)}; the strided conv does "
      f"{macs_full // macs_strided}x fewer multiply-adds")
assert macs_full == 4 * macs_strided

# %% [markdown]
# ## Equivariance and invariance
#
# Let $\phi$ map an image $\mathbf{x}$ to a representation $\phi(\mathbf{x})$, and let $g$
# be a transformation of images (a shift, a rotation, ...).
#
# * $\phi$ is **equivariant** to $g$ if transforming the input transforms the output in a
#   predictable way: there is a map $M_g$ with $\phi(g\mathbf{x}) = M_g\, \phi(\mathbf{x})$
#   for all $\mathbf{x}$.
# * $\phi$ is **invariant** to $g$ if the transformation has no effect:
#   $\phi(g\mathbf{x}) = \phi(\mathbf{x})$.
#
# Convolution is equivariant to translation, with $M_g = g$: shift the image and the
# feature map shifts by the same amount, because every position uses the same weights.
# In symbols, let $(T_t x)[i] = x[i - t]$ shift an image by the vector $t$, where $i$ runs
# over pixel positions. Then
#
# $$
# \text{conv}(T_t x)[i] = \sum_u w[u]\, x[i + u - t] = \text{conv}(x)[i - t]
# = T_t\, \text{conv}(x)[i] ,
# $$
#
# as long as every index stays inside the image.
# With circular ("wrap-around") padding this is exact everywhere; with zero padding it is
# exact away from the borders, where the shifted image meets the padding. We check both on
# the photograph, with a random (non-symmetric) $5 \times 5$ filter.

# %%
img = to_torch(sample_image("camera", size=128))[None, None]  # (1, 1, 128, 128)
wk = to_torch(rng.standard_normal((1, 1, 5, 5)))  # a random, non-symmetric 5x5 filter


def shift(t):
    """Translate 9 pixels down and 14 left, wrapping around (a circular shift)."""
    return torch.roll(t, shifts=(9, -14), dims=(2, 3))


def circular(t):
    """Convolve with circular padding: the image is treated as a torus."""
    return td.conv2d(F.pad(t, (2, 2, 2, 2), mode="circular"), wk)


def zeros(t):
    """Convolve with the usual zero padding."""
    return td.conv2d(t, wk, padding=2)


# %% [markdown]
# With zero padding, some output pixels must differ: those whose window touches the border
# of either image (2 pixels, the filter's half-width) and those whose window straddles the
# seam where the circular shift wrapped the image around. We compare the rest.

# %%
assert torch.allclose(circular(shift(img)), shift(circular(img)))  # exact, everywhere
diff = (zeros(shift(img)) - shift(zeros(img))).abs()[0, 0]  # (128, 128)
away = diff[9 + 2 + 2 : -(2 + 2), 2 + 2 : -(14 + 2 + 2)]  # rows/cols untouched by borders
assert torch.allclose(away, torch.zeros_like(away))
print("conv(shift(x)) == shift(conv(x)): everywhere (circular padding);",
      f"away from the borders (zero padding); border pixels differ: {bool(diff.max() > 1e-6)}")

# %% [markdown]
# **Invariance** comes from throwing away position. A convolution followed by a ReLU, a
# *global* average pooling over all positions and a fully connected layer gives a
# prediction that cannot depend on where the pattern was: shifting the input (circularly)
# permutes the feature map, and the average of a permuted map is the same. The scores of
# a fully connected layer on the raw pixels, by contrast, move by more than 10% of their
# size (by how much depends on the random weights; the cell prints it).

# %%
w_feat = to_torch(rng.standard_normal((8, 1, 5, 5)))
fc_head = to_torch(rng.standard_normal((3, 8)))  # 8 pooled features -> 3 "class scores"
fc_pixels = to_torch(rng.standard_normal((3, 128 * 128)) / 128)  # FC on raw pixels


def cnn_scores(t):
    feat = F.relu(td.conv2d(F.pad(t, (2, 2, 2, 2), mode="circular"), w_feat))
    return fc_head @ feat.mean(dim=(2, 3))[0]  # global average pool, then FC


def fc_scores(t):
    return fc_pixels @ t.flatten()


# %% [markdown]
# Both models are random (untrained), which is the point: the invariance is a property of
# the architecture, not something the conv model had to learn.

# %%
assert torch.allclose(cnn_scores(shift(img)), cnn_scores(img))
fc_change = ((fc_scores(shift(img)) - fc_scores(img)).norm() / fc_scores(img).norm()).item()
print("conv + global pool + FC: scores unchanged by the shift: True")
print(f"FC on raw pixels: scores change by {fc_change:.0%}")
assert fc_change > 0.1  # 23% to 72% over the seeds 0-3 of `rng`

# %% [markdown]
# ### Not rotations
#
# Convolution is *not* equivariant to rotation. A horizontal-derivative filter applied to a
# rotated photo finds the rotated photo's horizontal edges, which were the original's
# vertical edges; rotating the original's feature map gives something else. For a
# 90-degree rotation $R$ there is an exact repair: rotate the filter too,
# $\text{conv}(R\mathbf{x}, R\mathbf{w}) = R\, \text{conv}(\mathbf{x}, \mathbf{w})$, because
# $R$ maps the pixel grid onto itself. For other angles even that is only approximate.

# %%
def rot(t):
    """Rotate the last two axes by 90 degrees counter-clockwise."""
    return torch.rot90(t, 1, dims=(-2, -1))


wsob = to_torch(sobel_x)[None, None]  # not symmetric under rotation


def conv_s(t, w=wsob):
    return td.conv2d(t, w, padding=1)


mismatch = ((conv_s(rot(img)) - rot(conv_s(img))).norm() / conv_s(img).norm()).item()
print(f"relative difference between conv(rot(x)) and rot(conv(x)): {mismatch:.2f}")
assert mismatch > 0.5
assert torch.allclose(conv_s(rot(img), rot(wsob)), rot(conv_s(img)))  # rotate the filter too
print("conv(rot(x), rot(w)) == rot(conv(x, w)): True")

# %% [markdown]
# That repair suggests a design. If a network uses the four rotated copies
# $R^r\mathbf{w}$, $r = 0, 1, 2, 3$, of each filter, then rotating the input rotates each of
# the four maps *and* shifts them cyclically by one copy: the stack of feature maps is
# equivariant to 90-degree rotations, with $M_g$ = "rotate and cycle". **Group-equivariant
# networks** (Cohen and Welling, 2016; Kondor and Trivedi, 2018) build this into new
# definitions of convolution and pooling that work for larger groups of transformations.
# **Capsule networks** (Sabour et al., 2017) take another route, replacing pooling with
# units that output a vector encoding a part's pose.

# %%
w4 = torch.cat([torch.rot90(wk, r, dims=(-2, -1)) for r in range(4)])  # (4, 1, 5, 5)
maps_x = td.conv2d(img, w4, padding=2)  # (1, 4, 128, 128)
maps_rx = td.conv2d(rot(img), w4, padding=2)
assert torch.allclose(maps_rx, torch.roll(rot(maps_x), shifts=1, dims=1))
print("rotate the input -> rotate every map and cycle the 4 copies: True")

# %% [markdown]
# ## Downsampling and upsampling
#
# Strided convolution and pooling make maps smaller. Tasks that must output an image, such
# as semantic segmentation, also need the reverse. Three standard tools, each treated in
# detail in [chapter 8](08-resnets-and-unet.ipynb) on residual networks and U-Nets:
#
# * **Transposed convolution** (sometimes misnamed "deconvolution") runs a convolution's
#   backward pass as a forward pass: each input value stamps a scaled copy of a learned
#   kernel into a larger output, exactly like worked example 1, but with a stride.
#   Its size is $H' = (H - 1)s - 2p + d(k - 1) + 1$.
# * **Max unpooling** puts each value back where the matching max pooling found its
#   maximum (the same routing as max pooling's backward pass) and fills the rest with zeros.
# * **Bilinear upsampling** interpolates, with no parameters.

# %%
x8 = torch.arange(64, dtype=DTYPE, device=device).reshape(1, 1, 8, 8)
w_up = torch.ones(1, 1, 4, 4, dtype=DTYPE, device=device)
up_t = F.conv_transpose2d(x8, w_up, stride=2, padding=1)  # (1, 1, 16, 16)
assert tuple(up_t.shape[2:]) == conv_transpose2d_output_shape(8, 4, stride=2, padding=1)
assert tuple(up_t.shape[2:]) == (16, 16)
x16_in = torch.zeros(1, 1, 16, 16, dtype=DTYPE, device=device, requires_grad=True)
(grad_in,) = torch.autograd.grad(F.conv2d(x16_in, w_up, stride=2, padding=1), x16_in, x8)
assert torch.allclose(up_t, grad_in)  # transposed conv == the backward pass of a conv
pooled, idx = F.max_pool2d(x8, 2, return_indices=True)  # (1, 1, 4, 4)
unpooled = F.max_unpool2d(pooled, idx, 2)  # (1, 1, 8, 8): maxima in place, zeros elsewhere
assert torch.equal(unpooled[unpooled != 0], pooled.flatten()) and (unpooled != 0).sum() == 16
up_b = F.interpolate(x8, scale_factor=2, mode="bilinear", align_corners=False)
print("8x8 ->", tuple(up_t.shape[2:]), "(transposed conv),", tuple(unpooled.shape[2:]),
      "(unpool after pool),", tuple(up_b.shape[2:]), "(bilinear)")

# %% [markdown]
# ## What to remember
#
# * A convolutional layer is a linear layer with **local connectivity** and **shared
#   weights**; its parameter count, $(k^2 C_{in} + 1)\, C_{out}$, does not depend on
#   the image size (760 for ten $5 \times 5$ filters on 3 channels, versus 120 million for a
#   fully connected layer on a $200 \times 200 \times 3$ image).
# * Deep-learning "convolution" is cross-correlation; true convolution flips the kernel.
#   It only matters for hand-designed kernels.
# * Output size: $H' = \lfloor (H + 2p - d(k-1) - 1)/s \rfloor + 1$. Stride 1 with
#   $p = (k-1)/2$ keeps the size. When the stride does not fit, PyTorch floors and silently
#   ignores the last rows; `conv2d_output_shape(..., strict=True)` tells you.
# * A $1 \times 1$ convolution is a fully connected layer applied at every pixel; use it to
#   change the number of channels. Groups split the channels into independent convolutions.
# * Receptive fields grow linearly with stacked convolutions, faster with pooling or
#   striding, and exponentially with doubling dilation.
# * Per filter a convolution has $O(1)$ weights, per layer it does $O(n)$ work on $n$ pixels,
#   and with stride 2 or doubling dilation $O(\log n)$ layers see the whole image.
# * Pooling has no parameters; max pooling's gradient goes to the argmax of each window.
# * Convolution is translation-equivariant; global pooling makes the network
#   translation-invariant; neither holds for rotations unless the filters are rotated too.
#
# ## Exercises
#
# 1. **Quick check.** AlexNet's first layer applies 96 filters of size $11 \times 11$ with
#    stride 4 to a $224 \times 224 \times 3$ image (with 2 pixels of padding). Use
#    `conv2d_output_shape` to find the output size and count the layer's weights. Which
#    padding would make a $227 \times 227$ input give the same output size?
# 2. **Flip it.** Find a $2 \times 2$ kernel for which convolution and cross-correlation of
#    the array $A$ of worked example 1 agree, and one for which the two valid outputs are
#    negatives of each other. Characterize all kernels of each kind.
# 3. **Receptive fields of a real network.** VGG-16 stacks thirteen $3 \times 3$
#    convolutions (stride 1) in five blocks of 2, 2, 3, 3 and 3, each block followed by a
#    $2 \times 2$ max pooling with stride 2. Use `receptive_field` to compute the receptive
#    field of a unit after the last convolution, and confirm it with the gradient method of
#    this chapter (on a small enough input).
# 4. **Separable filters.** The Sobel filter is the outer product $(1, 2, 1)^\top (1, 0, -1)$.
#    Show numerically that a $3 \times 1$ convolution followed by a $1 \times 3$ convolution
#    reproduces it, and count multiply-adds per pixel for both versions. Generalize: when can
#    a $k \times k$ filter be replaced by a $k \times 1$ and a $1 \times k$ one?
# 5. **Learn an edge detector (small project).** Cut crops from `sample_image` photos and
#    compute targets with `scipy.signal.convolve2d(crop, sobel_x, mode="valid")` (a true
#    convolution). Start from a random $3 \times 3$ filter and fit it by gradient descent on
#    the squared error, using `nd.conv2d_forward` and `nd.conv2d_backward`. Which filter do
#    you recover, Sobel-x or its flip, and why? What happens with a $5 \times 5$ filter?
# 6. **Equivariance under stride (small project).** Show that a stride-2 convolution is
#    *not* equivariant to a one-pixel shift, but is to a two-pixel shift. What does this
#    imply for max pooling, and for the "invariance" that pooling is supposed to provide?
#    Measure, on a feature map of a real photo, the fraction of $2 \times 2$ max-pool
#    outputs that survive a one-pixel shift.
#
# Homework 1, the student notebook
# [`homework/hw1-convolution/hw1-convolution.ipynb`](homework/hw1-convolution/hw1-convolution.ipynb)
# (or the copy your instructor hands out), asks you to write the output-size formula, a
# naive convolution forward and backward pass, max pooling forward and backward, and your
# own numerical gradient checker; `check("q1")` and friends grade each answer as you go.

# %% [markdown]
# ## References
#
# - Bronstein, M. M., Bruna, J., LeCun, Y., Szlam, A., & Vandergheynst, P. (2017). Geometric
#   deep learning: Going beyond Euclidean data. *IEEE Signal Processing Magazine*, 34(4).
#   [arXiv:1611.08097](https://arxiv.org/abs/1611.08097)
# - Cohen, T., & Welling, M. (2016). Group equivariant convolutional networks. *ICML*.
#   [arXiv:1602.07576](https://arxiv.org/abs/1602.07576)
# - He, K., Zhang, X., Ren, S., & Sun, J. (2016). Deep residual learning for image recognition.
#   *CVPR*. [arXiv:1512.03385](https://arxiv.org/abs/1512.03385)
# - Howard, A. G., Zhu, M., Chen, B., Kalenichenko, D., et al. (2017). MobileNets: Efficient
#   convolutional neural networks for mobile vision applications.
#   [arXiv:1704.04861](https://arxiv.org/abs/1704.04861)
# - Kondor, R., & Trivedi, S. (2018). On the generalization of equivariance and convolution in
#   neural networks to the action of compact groups. *ICML*.
#   [arXiv:1802.03690](https://arxiv.org/abs/1802.03690)
# - Krizhevsky, A., Sutskever, I., & Hinton, G. E. (2012). ImageNet classification with deep
#   convolutional neural networks. *NeurIPS*.
#   [proceedings](https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html)
# - Lin, M., Chen, Q., & Yan, S. (2014). Network in network. *ICLR*.
#   [arXiv:1312.4400](https://arxiv.org/abs/1312.4400)
# - Sabour, S., Frosst, N., & Hinton, G. E. (2017). Dynamic routing between capsules. *NeurIPS*.
#   [arXiv:1710.09829](https://arxiv.org/abs/1710.09829)
# - Springenberg, J. T., Dosovitskiy, A., Brox, T., & Riedmiller, M. (2015). Striving for
#   simplicity: The all convolutional net. *ICLR workshop*.
#   [arXiv:1412.6806](https://arxiv.org/abs/1412.6806)
# - Szegedy, C., Liu, W., Jia, Y., Sermanet, P., Reed, S., et al. (2015). Going deeper with
#   convolutions. *CVPR*. [arXiv:1409.4842](https://arxiv.org/abs/1409.4842)
# - Xie, S., Girshick, R., Dollár, P., Tu, Z., & He, K. (2017). Aggregated residual transformations
#   for deep neural networks. *CVPR*. [arXiv:1611.05431](https://arxiv.org/abs/1611.05431)
# - Yu, F., & Koltun, V. (2016). Multi-scale context aggregation by dilated convolutions. *ICLR*.
#   [arXiv:1511.07122](https://arxiv.org/abs/1511.07122)
