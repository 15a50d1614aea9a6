"""NumPy normalization layers: numerical gradients, parity with torch.nn.functional (values,
gradients and the running statistics of batch and instance norm), conv-BN folding, and bad
inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.conv import conv2d_forward
from d2lcnn.numpy.norm import (
    batch_norm_backward,
    batch_norm_forward,
    fuse_conv_bn,
    group_norm_backward,
    group_norm_forward,
    instance_norm_backward,
    instance_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
    local_response_norm_backward,
    local_response_norm_forward,
    rms_norm_backward,
    rms_norm_forward,
)

GRAD_TOL = 1e-7  # relative error of float64 centred differences (h = 1e-6)
# check_backward draws its random dout from this seed. It must differ from the seed of the
# inputs: with both 0, dout would be an affine function of x, which a normalization's
# backward projects out, leaving a gradient of pure roundoff.
DOUT_SEED = 12345
# A normalization's input gradient has entries near zero (it sums to zero over each group),
# where the elementwise relative error is most sensitive. The centred difference's error is
# ~h^2 (truncation) + 1e-16 |f| / h (roundoff), smallest near h = cbrt(1e-16) * scale ~ 1e-5;
# gradcheck's default 1e-6 leaves ~1e-9 of roundoff, 3e-7 relative on a 5e-4 entry.
STEP = 1e-5
# Parity with torch: float64 differs only in summation order; float32 by rounding, which
# the normalization (a division by a standard deviation) can amplify a little.
TOL = {
    np.float64: dict(rtol=1e-10, atol=1e-10),
    np.float32: dict(rtol=1e-5, atol=1e-5),
}
DTYPES = st.sampled_from([np.float64, np.float32])


def rand(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def torch_grads(fn, arrays, dout, **kwargs):
    """``fn(*tensors, **kwargs)`` and the gradients of ``sum(out * dout)`` (``None`` kept)."""
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts, **kwargs)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [None if t is None else t.grad.numpy() for t in ts]


def assert_close(ours, theirs, dtype):
    if theirs is None:
        assert ours is None
        return
    assert ours.dtype == dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, **TOL[dtype])


# --------------------------------------------------------------------------- batch norm


def bn_forward_with_copies(x, gamma, beta, running_mean, running_var, **kwargs):
    """Training mode mutates the running stats on every call: the numerical gradient calls
    forward hundreds of times, so hand each call fresh copies."""
    return batch_norm_forward(x, running_mean.copy(), running_var.copy(), gamma, beta, **kwargs)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 2), (2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_numerical_gradient(shape, training, affine):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rand(rng, shape) * 2 + 1
    gamma, beta = (rand(rng, c), rand(rng, c)) if affine else (None, None)
    stats = (rand(rng, c), rng.uniform(0.5, 2, c))

    def forward(x, gamma, beta):
        return bn_forward_with_copies(x, gamma, beta, *stats, training=training)

    errors = check_backward(forward, batch_norm_backward, [x, gamma, beta], seed=DOUT_SEED, h=STEP)
    assert all(e is None or e <= GRAD_TOL for e in errors), errors


@st.composite
def bn_case(draw):
    ndim = draw(st.sampled_from([2, 3, 4]))
    shape = [draw(st.integers(1, 4)), draw(st.integers(1, 4))]
    shape += [draw(st.integers(1, 5)) for _ in range(ndim - 2)]
    if int(np.prod(shape)) // shape[1] < 3:
        shape[0] = 3  # at least 3 values per channel: see TINY_GROUPS
    return tuple(shape)


@settings(max_examples=30, deadline=None)
@given(
    shape=bn_case(),
    training=st.booleans(),
    affine=st.booleans(),
    momentum=st.floats(0, 1),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_batch_norm_matches_torch(shape, training, affine, momentum, eps, dtype, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rand(rng, shape, dtype) * 3 + 1
    gamma, beta = (rand(rng, c, dtype), rand(rng, c, dtype)) if affine else (None, None)
    rm, rv = rand(rng, c, dtype), rng.uniform(0.5, 2, c).astype(dtype)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    hyper = dict(training=training, momentum=momentum, eps=eps)

    out, cache = batch_norm_forward(x, rm, rv, gamma, beta, **hyper)
    dout = rand(rng, shape, dtype)
    grads = batch_norm_backward(dout, cache)
    out_ref, grads_ref = torch_grads(
        lambda x, g, b: F.batch_norm(x, rm_t, rv_t, g, b, **hyper), [x, gamma, beta], dout
    )
    assert_close(out, out_ref, dtype)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref, dtype)
    assert_close(rm, rm_t.numpy(), dtype)  # updated in place in training, unchanged in eval
    assert_close(rv, rv_t.numpy(), dtype)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batch_norm_running_stats_follow_torch_over_several_steps(momentum):
    rng = np.random.default_rng(1)
    bn = torch.nn.BatchNorm2d(3, momentum=momentum, dtype=torch.float64)
    rm, rv = np.zeros(3), np.ones(3)  # torch's initial state: mean 0, variance 1
    for step in range(5):
        x = rand(rng, (4, 3, 5, 2)) * (step + 1) + step
        out, _ = batch_norm_forward(
            x,
            rm,
            rv,
            training=True,
            momentum=momentum,
            num_batches_tracked=step,
        )
        np.testing.assert_allclose(out, bn(torch.tensor(x)).detach().numpy(), **TOL[np.float64])
        np.testing.assert_allclose(rm, bn.running_mean.numpy(), **TOL[np.float64])
        np.testing.assert_allclose(rv, bn.running_var.numpy(), **TOL[np.float64])
    # and in eval mode both use the statistics they tracked
    bn.eval()
    x = rand(rng, (2, 3, 5, 2))
    out, _ = batch_norm_forward(x, rm, rv)  # eval mode, F's default
    np.testing.assert_allclose(out, bn(torch.tensor(x)).detach().numpy(), **TOL[np.float64])


def test_batch_norm_does_not_modify_x_and_running_var_uses_the_unbiased_variance():
    x = np.array([[1.0], [3.0]])  # mean 2, biased variance 1, unbiased 2
    x0 = x.copy()
    rm, rv = np.zeros(1), np.ones(1)
    out, _ = batch_norm_forward(x, rm, rv, training=True, momentum=1.0, eps=0.0)
    np.testing.assert_array_equal(out, [[-1.0], [1.0]])  # normalized with the biased one
    np.testing.assert_array_equal(rm, [2.0])
    np.testing.assert_array_equal(rv, [2.0])
    np.testing.assert_array_equal(x, x0)


def test_batch_norm_training_without_running_stats():
    x = np.random.default_rng(0).standard_normal((4, 3))
    out, _ = batch_norm_forward(x, None, None, training=True)
    np.testing.assert_allclose(out, F.batch_norm(torch.tensor(x), None, None, training=True))


# --------------------------------------------------------------------------- per-row norms

ROW_NORMS = {
    # name: (numpy forward, numpy backward, torch.nn.functional reference)
    "layer": (layer_norm_forward, layer_norm_backward, F.layer_norm),
    "group": (group_norm_forward, group_norm_backward, F.group_norm),
    "instance": (instance_norm_forward, instance_norm_backward, F.instance_norm),
    "rms": (rms_norm_forward, rms_norm_backward, F.rms_norm),
}


# TINY_GROUPS: a group of one element normalizes to exactly 0, and one of two to +-1 whatever
# x is, so their input gradient is (nearly) zero: a cancellation of terms of size
# |dout| / std, which float32 cannot resolve to 1e-5 (PyTorch and we both return roundoff,
# differently). The strategies only make groups (and BatchNorm channels) of >= 3 elements;
# the one-element case is tested exactly on its own.
#
# ILL_CONDITIONED: a group whose values nearly coincide, e.g. (3.14, 3.05, 3.21) (std 0.07,
# max |x| / std ~ 50), loses most of float32's digits to the cancellation in x - mean, and
# the input gradient, of size |dout| / std, inherits that error: PyTorch's float32 and ours
# (each rounding differently; ours is the closer to float64 there) then differ by ~2e-5. The
# float32 comparisons skip groups with max |x| / std above MAX_CONDITION_32; float64 keeps them.
MAX_CONDITION_32 = 10.0


def well_conditioned(x, cache) -> bool:
    """Every normalized group of ``x`` has ``max |x| / std <= MAX_CONDITION_32`` (the
    groups are the rows of ``cache.x_hat``, ``cache.inv_std`` is ``1 / std`` per row)."""
    rows = x.reshape(cache.x_hat.shape)
    return bool((np.abs(rows).max(axis=1, keepdims=True) * cache.inv_std).max() <= MAX_CONDITION_32)


@st.composite
def row_norm_case(draw):
    """(kind, x shape, the op's second positional argument or None, param shape)."""
    kind = draw(st.sampled_from(sorted(ROW_NORMS)))
    n = draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, 5)) for _ in range(draw(st.integers(0, 2)))]
    if kind == "group":
        g = draw(st.integers(1, 3))
        c = g * draw(st.integers(1, 3))
        if c // g * int(np.prod(spatial)) < 3:
            c = 3 * g  # TINY_GROUPS
        if n * int(np.prod(spatial)) == 1:
            n = 2  # F.group_norm refuses N * H * W == 1 (we don't: see the test below)
        return kind, (n, c, *spatial), g, (c,)
    if kind == "instance":
        c = draw(st.integers(1, 4))
        spatial = spatial or [draw(st.integers(2, 5))]
        if int(np.prod(spatial)) < 3:
            spatial[-1] = 3  # TINY_GROUPS
        return kind, (n, c, *spatial), None, (c,)
    shape = (n, draw(st.integers(1, 4)), *spatial)
    k = draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k :]
    if kind == "layer" and int(np.prod(normalized)) < 3:
        shape = (*shape[:-1], 3)  # TINY_GROUPS
        normalized = shape[len(shape) - k :]
    return kind, shape, normalized, normalized


def run_row_norm(kind, x, arg, gamma, beta, eps):
    forward, backward, _ = ROW_NORMS[kind]
    if kind == "rms":
        return forward(x, arg, gamma, eps=eps)
    if kind == "instance":
        return forward(x, weight=gamma, bias=beta, eps=eps)
    return forward(x, arg, gamma, beta, eps=eps)


def torch_row_norm(kind, arg, eps):
    if kind == "rms":
        return lambda x, g: F.rms_norm(x, arg, g, eps=eps)
    if kind == "instance":
        return lambda x, g, b: F.instance_norm(x, weight=g, bias=b, eps=eps)
    return lambda x, g, b: ROW_NORMS[kind][2](x, arg, g, b, eps=eps)  # layer, group


@settings(max_examples=30, deadline=None)
@given(
    case=row_norm_case(),
    affine=st.booleans(),
    eps=st.sampled_from([1e-5, 1e-2, None]),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_row_norms_match_torch(case, affine, eps, dtype, seed):
    kind, shape, arg, pshape = case
    if eps is None and kind != "rms":
        eps = 1e-5  # only rms_norm has a dtype-dependent default
    rng = np.random.default_rng(seed)
    x = rand(rng, shape, dtype) * 2 + 0.5
    gamma, beta = (rand(rng, pshape, dtype), rand(rng, pshape, dtype)) if affine else (None, None)
    params = [gamma] if kind == "rms" else [gamma, beta]
    out, cache = run_row_norm(kind, x, arg, gamma, beta, eps)
    if dtype == np.float32 and kind != "rms":  # RMSNorm does not centre: nothing cancels
        assume(well_conditioned(x, cache))  # ILL_CONDITIONED
    dout = rand(rng, shape, dtype)
    grads = ROW_NORMS[kind][1](dout, cache)
    out_ref, grads_ref = torch_grads(torch_row_norm(kind, arg, eps), [x, *params], dout)
    assert_close(out, out_ref, dtype)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref, dtype)


ROW_GRAD_CASES = [
    # (kind, x shape, second positional argument, param shape)
    ("layer", (3, 4), 4, (4,)),
    ("layer", (2, 3, 2, 2), (3, 2, 2), (3, 2, 2)),
    ("group", (2, 6, 2, 2), 3, (6,)),
    ("group", (2, 4, 3), 1, (4,)),
    ("instance", (2, 3, 2, 3), None, (3,)),
    ("rms", (3, 5), 5, (5,)),
    ("rms", (2, 3, 2, 2), (2, 2), (2, 2)),
]


@pytest.mark.parametrize("kind, shape, arg, pshape", ROW_GRAD_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_row_norms_numerical_gradient(kind, shape, arg, pshape, affine):
    rng = np.random.default_rng(2)
    x = rand(rng, shape)
    gamma, beta = (rand(rng, pshape), rand(rng, pshape)) if affine else (None, None)
    eps = 1e-5
    if kind == "rms":
        inputs = [x, gamma]

        def forward(x, gamma):
            return rms_norm_forward(x, arg, gamma, eps=eps)
    else:
        inputs = [x, gamma, beta]

        def forward(x, gamma, beta):
            return run_row_norm(kind, x, arg, gamma, beta, eps)

    errors = check_backward(forward, ROW_NORMS[kind][1], inputs, seed=DOUT_SEED, h=STEP)
    assert all(e is None or e <= GRAD_TOL for e in errors), errors


def test_group_norm_extremes_are_layer_and_instance_norm():
    x = np.random.default_rng(3).standard_normal((2, 4, 3, 3))
    np.testing.assert_allclose(
        group_norm_forward(x, 1)[0], layer_norm_forward(x, x.shape[1:])[0], rtol=1e-13
    )
    np.testing.assert_allclose(group_norm_forward(x, 4)[0], instance_norm_forward(x)[0], rtol=1e-13)


def test_group_norm_of_a_single_position():
    # F.group_norm raises "Expected more than 1 value per channel" when N * H * W == 1, a
    # check borrowed from BatchNorm; each group still has C/G values, so we normalize them.
    x = np.array([[1.0, 3.0, 0.0, 4.0]])
    out, _ = group_norm_forward(x, 2, eps=0.0)
    np.testing.assert_allclose(out, [[-1.0, 1.0, -1.0, 1.0]])
    # groups of one element (TINY_GROUPS): the output is beta, the input gradient zero
    beta = np.arange(4.0)
    out, cache = group_norm_forward(x, 4, np.ones(4), beta)
    np.testing.assert_array_equal(out, [beta])
    dx, _, _ = group_norm_backward(np.ones((1, 4)), cache)
    np.testing.assert_array_equal(dx, np.zeros((1, 4)))


# --------------------------------------------------------------------------- instance norm


@st.composite
def instance_norm_case(draw):
    """(x shape, use_input_stats, with running statistics)."""
    use_input_stats = draw(st.booleans())
    tracked = draw(st.booleans()) or not use_input_stats  # eval needs running statistics
    spatial = [draw(st.integers(1, 5)) for _ in range(draw(st.integers(1, 2)))]
    if use_input_stats and int(np.prod(spatial)) < 3:
        spatial[-1] = 3  # TINY_GROUPS; with running statistics one position is fine
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), *spatial)
    return shape, use_input_stats, tracked


@settings(max_examples=40, deadline=None)
@given(
    case=instance_norm_case(),
    affine=st.booleans(),
    momentum=st.floats(0, 1),
    eps=st.sampled_from([1e-5, 1e-2]),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_instance_norm_matches_torch(case, affine, momentum, eps, dtype, seed):
    shape, use_input_stats, tracked = case
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rand(rng, shape, dtype) * 2 + 0.5
    w, b = (rand(rng, c, dtype), rand(rng, c, dtype)) if affine else (None, None)
    rm, rv = (rand(rng, c, dtype), rng.uniform(0.5, 2, c).astype(dtype)) if tracked else (None,) * 2
    rm_t, rv_t = (torch.tensor(rm), torch.tensor(rv)) if tracked else (None, None)
    hyper = dict(use_input_stats=use_input_stats, momentum=momentum, eps=eps)

    out, cache = instance_norm_forward(x, rm, rv, w, b, **hyper)
    if dtype == np.float32 and use_input_stats:
        assume(well_conditioned(x, cache))  # ILL_CONDITIONED
    dout = rand(rng, shape, dtype)
    grads = instance_norm_backward(dout, cache)
    out_ref, grads_ref = torch_grads(
        lambda x, w, b: F.instance_norm(x, rm_t, rv_t, w, b, **hyper), [x, w, b], dout
    )
    assert_close(out, out_ref, dtype)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref, dtype)
    if tracked:  # updated in place with input statistics, unchanged without
        assert_close(rm, rm_t.numpy(), dtype)
        assert_close(rv, rv_t.numpy(), dtype)


@pytest.mark.parametrize("use_input_stats", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_with_running_stats_numerical_gradient(use_input_stats, affine):
    rng = np.random.default_rng(7)
    x = rand(rng, (2, 3, 2, 3)) * 2 + 1
    w, b = (rand(rng, 3), rand(rng, 3)) if affine else (None, None)
    rm, rv = rand(rng, 3), rng.uniform(0.5, 2, 3)

    def forward(x, w, b):  # fresh copies: with input statistics every call updates them
        return instance_norm_forward(
            x, rm.copy(), rv.copy(), w, b, use_input_stats=use_input_stats, momentum=0.3
        )

    errors = check_backward(forward, instance_norm_backward, [x, w, b], seed=DOUT_SEED, h=STEP)
    assert all(e is None or e <= GRAD_TOL for e in errors), errors


def test_instance_norm_running_stats_follow_torch_over_several_steps():
    rng = np.random.default_rng(8)
    layer = torch.nn.InstanceNorm2d(3, track_running_stats=True, dtype=torch.float64)
    rm, rv = np.zeros(3), np.ones(3)  # the module's initial state
    for step in range(4):
        x = rand(rng, (4, 3, 5, 2)) * (step + 1) + step
        out, _ = instance_norm_forward(x, rm, rv)
        np.testing.assert_allclose(out, layer(torch.tensor(x)).detach().numpy(), **TOL[np.float64])
        np.testing.assert_allclose(rm, layer.running_mean.numpy(), **TOL[np.float64])
        np.testing.assert_allclose(rv, layer.running_var.numpy(), **TOL[np.float64])
    layer.eval()  # now both normalize with the statistics they tracked
    x = rand(rng, (2, 3, 5, 2))
    out, _ = instance_norm_forward(x, rm, rv, use_input_stats=False)
    np.testing.assert_allclose(out, layer(torch.tensor(x)).detach().numpy(), **TOL[np.float64])


def test_instance_norm_running_var_is_the_batch_mean_of_unbiased_instance_variances():
    x = np.array([[[1.0, 3.0]], [[2.0, 8.0]]])  # (2, 1, 2): means 2 and 5, variances 2, 18
    x0 = x.copy()
    rm, rv = np.zeros(1), np.ones(1)
    out, _ = instance_norm_forward(x, rm, rv, momentum=1.0, eps=0.0)
    np.testing.assert_array_equal(out, [[[-1.0, 1.0]], [[-1.0, 1.0]]])  # biased: +-1
    np.testing.assert_array_equal(rm, [3.5])
    np.testing.assert_array_equal(rv, [10.0])
    np.testing.assert_array_equal(x, x0)
    # with the running statistics, one spatial position is enough (as in PyTorch)
    out, cache = instance_norm_forward(np.full((2, 1, 1), 13.5), rm, rv, use_input_stats=False)
    np.testing.assert_allclose(out, np.full((2, 1, 1), 10 / np.sqrt(10 + 1e-5)))
    np.testing.assert_array_equal(rm, [3.5])  # unchanged


def test_rms_norm_default_eps_is_the_dtype_epsilon():
    x = np.full((1, 3), 1e-5, dtype=np.float32)  # mean square 1e-10, comparable to eps32
    out, _ = rms_norm_forward(x, 3)
    np.testing.assert_allclose(out, F.rms_norm(torch.tensor(x), (3,)).numpy(), rtol=1e-6)


# --------------------------------------------------------------------------- LRN


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3)).map(
        lambda s: s if s[3] > 1 else s[:3]
    ),  # 3-D and 4-D inputs
    size=st.integers(1, 6),
    alpha=st.sampled_from([1e-4, 0.1, 1.0]),
    beta=st.sampled_from([0.75, 0.5, 1.5]),
    k=st.sampled_from([1.0, 2.0]),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_local_response_norm_matches_torch(shape, size, alpha, beta, k, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, shape, dtype) * 2
    hyper = dict(alpha=alpha, beta=beta, k=k)
    out, cache = local_response_norm_forward(x, size, **hyper)
    dout = rand(rng, shape, dtype)
    dx = local_response_norm_backward(dout, cache)
    out_ref, (dx_ref,) = torch_grads(lambda x: F.local_response_norm(x, size, **hyper), [x], dout)
    assert_close(out, out_ref, dtype)
    assert_close(dx, dx_ref, dtype)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_local_response_norm_numerical_gradient(size):
    x = np.random.default_rng(4).standard_normal((2, 6, 2, 3))
    (err,) = check_backward(
        local_response_norm_forward,
        local_response_norm_backward,
        [x],
        kwargs=dict(size=size, alpha=0.5, beta=0.75, k=1.5),  # big alpha: a strong coupling
        seed=DOUT_SEED,
        h=STEP,
    )
    assert err <= GRAD_TOL


def test_local_response_norm_window_is_asymmetric_and_alpha_is_averaged():
    # size 2: channel c's window is {c-1, c}. A single nonzero channel 1 therefore
    # normalizes channels 1 and 2, not channel 0; alpha is divided by size.
    x = np.zeros((1, 3, 1, 1))
    x[0, 1] = 2.0
    out, _ = local_response_norm_forward(x, 2, alpha=1.0, beta=1.0, k=1.0)
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 2.0 / (1 + 4 / 2), 0.0])
    out, cache = local_response_norm_forward(x + 1, 2, alpha=1.0, beta=1.0, k=1.0)
    # channel 0 sees only itself (1), channel 2 sees channels 1 and 2 (9 + 1)
    np.testing.assert_allclose(
        out[0, :, 0, 0], [1 / (1 + 1 / 2), 3 / (1 + 10 / 2), 1 / (1 + 10 / 2)]
    )


# --------------------------------------------------------------------------- conv-BN folding


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1, groups=2)])
def test_fuse_conv_bn_gives_the_same_eval_outputs(bias, affine, kwargs):
    rng = np.random.default_rng(5)
    x = rand(rng, (2, 4, 7, 6))
    w = rand(rng, (6, 4 // kwargs.get("groups", 1), 3, 3))
    b = rand(rng, 6) if bias else None
    rm, rv = rand(rng, 6), rng.uniform(0.1, 3, 6)
    gamma, beta = (rand(rng, 6), rand(rng, 6)) if affine else (None, None)
    z, _ = conv2d_forward(x, w, b, **kwargs)
    expected, _ = batch_norm_forward(z, rm, rv, gamma, beta, training=False, eps=1e-3)
    w_f, b_f = fuse_conv_bn(w, b, rm, rv, 1e-3, gamma, beta)
    out, _ = conv2d_forward(x, w_f, b_f, **kwargs)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert w_f.shape == w.shape and b_f.shape == (6,)


# --------------------------------------------------------------------------- dtypes, shapes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_preserved(dtype):
    rng = np.random.default_rng(6)
    x = rand(rng, (2, 4, 3, 3), dtype)
    p = np.ones(4, dtype=dtype)
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    cases = [
        (
            lambda: batch_norm_forward(x, rm, rv, p, p, training=True),
            batch_norm_backward,
        ),
        (lambda: layer_norm_forward(x, (3, 3)), layer_norm_backward),
        (lambda: group_norm_forward(x, 2, p, p), group_norm_backward),
        (lambda: instance_norm_forward(x, weight=p, bias=p), instance_norm_backward),
        (lambda: instance_norm_forward(x, rm, rv, p, p), instance_norm_backward),
        (
            lambda: instance_norm_forward(x, rm, rv, p, p, use_input_stats=False),
            instance_norm_backward,
        ),
        (lambda: rms_norm_forward(x, 3), rms_norm_backward),
        (lambda: local_response_norm_forward(x, 3), local_response_norm_backward),
    ]
    for forward, backward in cases:
        out, cache = forward()
        assert out.shape == x.shape and out.dtype == dtype
        grads = backward(np.ones_like(out), cache)
        for g in grads if isinstance(grads, tuple) else (grads,):
            assert g is None or g.dtype == dtype
    assert rm.dtype == dtype and rv.dtype == dtype


# --------------------------------------------------------------------------- bad inputs

X = np.zeros((2, 3, 4, 4))
V = np.ones(3)


_STATS = object()  # bn()'s default: fresh running statistics


def bn(x=X, weight=V, bias=V, running_mean=_STATS, running_var=_STATS, **kwargs):
    rm = np.zeros(3) if running_mean is _STATS else running_mean
    rv = np.ones(3) if running_var is _STATS else running_var
    return batch_norm_forward(x, rm, rv, weight, bias, **dict(dict(training=True), **kwargs))


BAD = [
    # (call, error, message fragment)
    (lambda: bn(x=np.zeros(3)), ValueError, "input must be at least 2-D"),
    (lambda: bn(x=[[1.0, 2.0]]), TypeError, "input must be a numpy array"),
    (lambda: bn(x=np.zeros((2, 3), dtype=np.int64)), TypeError, "input must be a floating"),
    (lambda: bn(weight=np.ones(4)), ValueError, r"weight must have shape \(3,\), got \(4,\)"),
    (lambda: bn(bias=np.ones((3, 1))), ValueError, "bias must have shape"),
    (lambda: bn(running_mean=np.zeros(2)), ValueError, "running_mean must have shape"),
    (lambda: bn(running_var=np.ones(4)), ValueError, "running_var must have shape"),
    (lambda: bn(running_var=None), ValueError, "running_mean and running_var"),
    (lambda: bn(weight=np.ones(3, np.float32)), TypeError, "weight must have input's dtype"),
    (lambda: bn(x=np.zeros((1, 3))), ValueError, "Expected more than 1 value per channel"),
    (lambda: bn(x=np.zeros((1, 3, 1, 1))), ValueError, "Expected more than 1 value per channel"),
    (lambda: bn(training=False, running_mean=None, running_var=None), ValueError,
     "eval mode"),
    (lambda: bn(momentum=None), ValueError, "num_batches_tracked"),
    (lambda: bn(momentum=1.5), ValueError, "momentum"),
    (lambda: bn(eps=-1.0), ValueError, "eps"),
    (lambda: layer_norm_forward(X, (3, 4)), ValueError, "normalized_shape"),
    (lambda: layer_norm_forward(X, 4.0), TypeError, "normalized_shape"),
    (lambda: layer_norm_forward(X, 4, np.ones(3)), ValueError, "weight must have shape"),
    (lambda: group_norm_forward(X, 2), ValueError, "num_groups"),
    (lambda: group_norm_forward(X, 1.0), TypeError, "num_groups"),
    (lambda: group_norm_forward(X, 3, None, np.ones(4)), ValueError, "bias must have shape"),
    (lambda: instance_norm_forward(np.zeros((2, 3))), ValueError, "input must be at least 3-D"),
    (lambda: instance_norm_forward(np.zeros((2, 3, 1))), ValueError, "more than 1 spatial"),
    (lambda: instance_norm_forward(X, V, None), ValueError, "running_mean and running_var"),
    (lambda: instance_norm_forward(X, use_input_stats=False), ValueError,
     "required when use_input_stats=False"),
    (lambda: instance_norm_forward(X, np.zeros(2), V), ValueError,
     r"running_mean must have shape \(3,\), got \(2,\)"),
    (lambda: instance_norm_forward(X, V, V.astype(np.float32)), TypeError,
     "running_var must have input's dtype"),
    (lambda: instance_norm_forward(X, V, V, momentum=None), TypeError,
     r"^instance_norm_forward: momentum must be a real number, got NoneType None$"),
    (lambda: instance_norm_forward(X, V, V, momentum=1.5), ValueError, "momentum"),
    (lambda: instance_norm_forward(X, V, V, use_input_stats=1), TypeError, "use_input_stats"),
    (lambda: instance_norm_forward(X, weight=np.ones(4)), ValueError, "weight must have shape"),
    (lambda: rms_norm_forward(X, (4, 3)), ValueError, "normalized_shape"),
    (lambda: local_response_norm_forward(np.zeros((2, 3)), 2), ValueError, "at least 3-D"),
    (lambda: local_response_norm_forward(X, 0), ValueError, "size"),
    (lambda: local_response_norm_forward(X, 2.0), TypeError, "size"),
    (lambda: fuse_conv_bn(np.zeros((3, 2, 3)), None, V, V, 1e-5, V, V), ValueError,
     "conv_w must be 4-D"),
    (
        lambda: fuse_conv_bn(np.zeros((3, 2, 3, 3)), V, np.zeros(2), V, 1e-5, V, V),
        ValueError,
        "bn_rm must have shape",
    ),
    (lambda: fuse_conv_bn(np.zeros((3, 2, 3, 3)), V, None, V, 1e-5, V, V), TypeError,
     r"^fuse_conv_bn: bn_rm must be a numpy array, got NoneType$"),
    (lambda: fuse_conv_bn(np.zeros((3, 2, 3, 3)), V, V, V, 1e-5, V.astype(np.float32), V),
     TypeError, r"^fuse_conv_bn: bn_w must have conv_w's dtype float64, got float32$"),
    (lambda: fuse_conv_bn(np.zeros((3, 2, 3, 3)), V, V, V, -1.0, V, V), ValueError,
     r"^fuse_conv_bn: bn_eps must be >= 0, got -1.0$"),
    (lambda: bn(weight=[1.0, 1.0, 1.0]), TypeError,
     r"^batch_norm_forward: weight must be a numpy array or None, got list$"),
    (lambda: bn(momentum="0.1"), TypeError,
     r"^batch_norm_forward: momentum must be a real number, got str '0.1'$"),
]


@pytest.mark.parametrize("call, error, match", BAD)
def test_bad_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "forward, backward",
    [
        (lambda x: bn(x=x), batch_norm_backward),
        (lambda x: layer_norm_forward(x, 4), layer_norm_backward),
        (lambda x: group_norm_forward(x, 3), group_norm_backward),
        (lambda x: instance_norm_forward(x), instance_norm_backward),
        (lambda x: rms_norm_forward(x, 4), rms_norm_backward),
        (lambda x: local_response_norm_forward(x, 2), local_response_norm_backward),
    ],
)
def test_backward_rejects_dout_of_the_wrong_shape(forward, backward):
    _, cache = forward(X)
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape"):
        backward(np.zeros((2, 3, 4)), cache)


def test_batch_norm_training_must_be_a_bool_and_the_error_says_so():
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match=r"^batch_norm_forward: training must be a bool, got str"):
        batch_norm_forward(x, np.zeros(3), np.ones(3), training="yes")
