"""Torch normalization layers from primitives: parity with torch.nn.functional (values,
gradients, running statistics of batch and instance norm), autograd gradcheck, that no
normalization op runs, conv-BN folding, dtype/device, and bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.norm import (
    batch_norm,
    fuse_conv_bn,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
    rms_norm,
)

TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),  # only the summation order differs
    torch.float32: dict(rtol=1e-5, atol=1e-5),
}
DTYPES = st.sampled_from([torch.float64, torch.float32])


def randn(gen, shape, dtype, device):
    return torch.randn(shape, generator=gen, dtype=dtype).to(device)


def forward_backward(fn, tensors, dout):
    ts = [None if t is None else t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*ts)
    out.backward(dout)
    return out.detach(), [None if t is None else t.grad for t in ts]


def assert_matches(ours, theirs, tensors, dtype):
    """Same outputs and gradients (w.r.t. every non-None tensor) as the built-in, each
    called once (BatchNorm's running statistics are updated on every call)."""
    x = tensors[0]  # every op here returns x's shape
    dout = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    out_ref, grads_ref = forward_backward(theirs, tensors, dout.to(x.device))
    out, grads = forward_backward(ours, tensors, dout.to(x.device))
    assert out.dtype == dtype and out.device == out_ref.device
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        if g_ref is None:
            assert g is None
        else:
            torch.testing.assert_close(g, g_ref, **TOL[dtype])


# --------------------------------------------------------------------------- batch norm


@st.composite
def bn_shape(draw):
    ndim = draw(st.sampled_from([2, 3, 4]))
    shape = [draw(st.integers(1, 4)), draw(st.integers(1, 4))]
    shape += [draw(st.integers(1, 5)) for _ in range(ndim - 2)]
    if (shape[0] * torch.Size(shape[2:]).numel()) < 3:
        shape[0] = 3  # at least 3 values per channel: see TINY_GROUPS
    return tuple(shape)


@settings(max_examples=30, deadline=None)
@given(
    shape=bn_shape(),
    training=st.booleans(),
    affine=st.booleans(),
    momentum=st.floats(0, 1),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_batch_norm_matches_torch(shape, training, affine, momentum, eps, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = randn(gen, shape, dtype, "cpu") * 3 + 1
    w, b = (randn(gen, c, dtype, "cpu"), randn(gen, c, dtype, "cpu")) if affine else (None, None)
    rm, rv = randn(gen, c, dtype, "cpu"), torch.rand(c, generator=gen, dtype=dtype) + 0.5
    stats = {"ours": (rm.clone(), rv.clone()), "theirs": (rm.clone(), rv.clone())}
    hyper = dict(training=training, momentum=momentum, eps=eps)
    assert_matches(
        lambda x, w, b: batch_norm(x, *stats["ours"], w, b, **hyper),
        lambda x, w, b: F.batch_norm(x, *stats["theirs"], w, b, **hyper),
        [x, w, b],
        dtype,
    )
    # updated in place in training, unchanged in eval
    for ours, theirs in zip(stats["ours"], stats["theirs"], strict=True):
        torch.testing.assert_close(ours, theirs, **TOL[dtype])


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_running_stats_follow_torch_over_several_steps(momentum, device):
    bn = torch.nn.BatchNorm2d(3, momentum=momentum, dtype=torch.float64, device=device)
    rm = torch.zeros(3, dtype=torch.float64, device=device)
    rv = torch.ones(3, dtype=torch.float64, device=device)
    gen = torch.Generator().manual_seed(0)
    for step in range(5):
        x = randn(gen, (4, 3, 5, 2), torch.float64, device) * (step + 1) + step
        out = batch_norm(x, rm, rv, training=True, momentum=momentum, num_batches_tracked=step)
        torch.testing.assert_close(out, bn(x), **TOL[torch.float64])
        torch.testing.assert_close(rm, bn.running_mean, **TOL[torch.float64])
        torch.testing.assert_close(rv, bn.running_var, **TOL[torch.float64])
    bn.eval()
    x = randn(gen, (2, 3, 5, 2), torch.float64, device)
    torch.testing.assert_close(batch_norm(x, rm, rv), bn(x), **TOL[torch.float64])


# --------------------------------------------------------------------------- per-sample norms


# TINY_GROUPS: a group of one element normalizes to exactly 0, and one of two to +-1 whatever
# x is, so their input gradient is (nearly) zero: a cancellation of terms of size
# |dout| / std, which float32 cannot resolve to 1e-5 (PyTorch and we both return roundoff,
# differently). The strategies only make groups (and BatchNorm channels) of >= 3 elements;
# the one-element case is tested exactly on its own.


@st.composite
def row_norm_case(draw):
    """(ours, theirs, x shape, param shapes): the per-sample norms as closures."""
    kind = draw(st.sampled_from(["layer", "group", "instance", "rms"]))
    eps = draw(st.sampled_from([1e-5, 1e-2]))
    n = draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, 5)) for _ in range(draw(st.integers(0, 2)))]
    if kind == "group":
        g = draw(st.integers(1, 3))
        c = g * draw(st.integers(1, 3))
        if c // g * torch.Size(spatial).numel() < 3:
            c = 3 * g  # TINY_GROUPS
        if n * torch.Size(spatial).numel() == 1:
            n = 2  # F.group_norm refuses N * H * W == 1
        return (
            lambda x, w, b: group_norm(x, g, w, b, eps),
            lambda x, w, b: F.group_norm(x, g, w, b, eps),
            (n, c, *spatial),
            [(c,), (c,)],
        )
    if kind == "instance":
        c = draw(st.integers(1, 4))
        spatial = spatial or [2]
        if torch.Size(spatial).numel() < 3:
            spatial[-1] = 3  # TINY_GROUPS
        return (
            lambda x, w, b: instance_norm(x, weight=w, bias=b, eps=eps),
            lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=eps),
            (n, c, *spatial),
            [(c,), (c,)],
        )
    shape = (n, draw(st.integers(1, 4)), *spatial)
    k = draw(st.integers(1, len(shape)))
    if kind == "layer" and torch.Size(shape[len(shape) - k :]).numel() < 3:
        shape = (*shape[:-1], 3)  # TINY_GROUPS
    ns = shape[len(shape) - k :]
    if kind == "layer":
        return (
            lambda x, w, b: layer_norm(x, ns, w, b, eps),
            lambda x, w, b: F.layer_norm(x, ns, w, b, eps),
            shape,
            [ns, ns],
        )
    rms_eps = draw(st.sampled_from([eps, None]))
    return (
        lambda x, w: rms_norm(x, ns, w, rms_eps),
        lambda x, w: F.rms_norm(x, ns, w, rms_eps),
        shape,
        [ns],
    )


@settings(max_examples=30, deadline=None)
@given(case=row_norm_case(), affine=st.booleans(), dtype=DTYPES, seed=st.integers(0, 99))
def test_row_norms_match_torch(case, affine, dtype, seed):
    ours, theirs, shape, param_shapes = case
    gen = torch.Generator().manual_seed(seed)
    x = randn(gen, shape, dtype, "cpu") * 2 + 0.5
    params = [randn(gen, s, dtype, "cpu") if affine else None for s in param_shapes]
    assert_matches(ours, theirs, [x, *params], dtype)


@st.composite
def instance_norm_case(draw):
    """(x shape, use_input_stats, with running statistics)."""
    use_input_stats = draw(st.booleans())
    tracked = draw(st.booleans()) or not use_input_stats  # eval needs running statistics
    spatial = [draw(st.integers(1, 5)) for _ in range(draw(st.integers(1, 2)))]
    if use_input_stats and torch.Size(spatial).numel() < 3:
        spatial[-1] = 3  # TINY_GROUPS; with running statistics one position is fine
    return (draw(st.integers(1, 3)), draw(st.integers(1, 4)), *spatial), use_input_stats, tracked


@settings(max_examples=40, deadline=None)
@given(
    case=instance_norm_case(),
    affine=st.booleans(),
    momentum=st.floats(0, 1),
    eps=st.sampled_from([1e-5, 1e-2]),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_instance_norm_with_running_stats_matches_torch(
    case, affine, momentum, eps, dtype, seed
):
    shape, use_input_stats, tracked = case
    gen = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = randn(gen, shape, dtype, "cpu") * 2 + 0.5
    w, b = (randn(gen, c, dtype, "cpu"), randn(gen, c, dtype, "cpu")) if affine else (None, None)
    if tracked:
        rm, rv = randn(gen, c, dtype, "cpu"), torch.rand(c, generator=gen, dtype=dtype) + 0.5
        stats = {"ours": (rm.clone(), rv.clone()), "theirs": (rm.clone(), rv.clone())}
    else:
        stats = {"ours": (None, None), "theirs": (None, None)}
    hyper = dict(use_input_stats=use_input_stats, momentum=momentum, eps=eps)
    assert_matches(
        lambda x, w, b: instance_norm(x, *stats["ours"], w, b, **hyper),
        lambda x, w, b: F.instance_norm(x, *stats["theirs"], w, b, **hyper),
        [x, w, b],
        dtype,
    )
    if tracked:  # updated in place with input statistics, unchanged without
        for ours, theirs in zip(stats["ours"], stats["theirs"], strict=True):
            torch.testing.assert_close(ours, theirs, **TOL[dtype])


def test_instance_norm_running_stats_follow_torch_over_several_steps(device):
    layer = torch.nn.InstanceNorm2d(3, track_running_stats=True, dtype=torch.float64)
    layer = layer.to(device)
    rm = torch.zeros(3, dtype=torch.float64, device=device)
    rv = torch.ones(3, dtype=torch.float64, device=device)
    gen = torch.Generator().manual_seed(2)
    for step in range(4):
        x = randn(gen, (4, 3, 5, 2), torch.float64, device) * (step + 1) + step
        torch.testing.assert_close(instance_norm(x, rm, rv), layer(x), **TOL[torch.float64])
        torch.testing.assert_close(rm, layer.running_mean, **TOL[torch.float64])
        torch.testing.assert_close(rv, layer.running_var, **TOL[torch.float64])
    layer.eval()  # now both normalize with the statistics they tracked
    x = randn(gen, (2, 3, 5, 2), torch.float64, device)
    out = instance_norm(x, rm, rv, use_input_stats=False)
    torch.testing.assert_close(out, layer(x), **TOL[torch.float64])


# --------------------------------------------------------------------------- LRN


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3)),
    three_d=st.booleans(),
    size=st.integers(1, 6),
    alpha=st.sampled_from([1e-4, 0.1, 1.0]),
    beta=st.sampled_from([0.75, 0.5, 1.5]),
    k=st.sampled_from([1.0, 2.0]),
    dtype=DTYPES,
    seed=st.integers(0, 99),
)
def test_local_response_norm_matches_torch(shape, three_d, size, alpha, beta, k, dtype, seed):
    x = randn(torch.Generator().manual_seed(seed), shape[:3] if three_d else shape, dtype, "cpu")
    assert_matches(
        lambda x: local_response_norm(x, size, alpha, beta, k),
        lambda x: F.local_response_norm(x, size, alpha, beta, k),
        [x * 2],
        dtype,
    )


# --------------------------------------------------------------------------- gradcheck, device


def double(gen, *shape, device):
    return randn(gen, shape, torch.float64, device).requires_grad_()


GRADCHECK = {
    # name: (function of (x, weight, bias), x shape, param shape or None)
    "batch_norm_train": (
        lambda x, w, b: batch_norm(x, None, None, w, b, training=True),
        (3, 2, 3, 2),
        (2,),
    ),
    "batch_norm_eval": (
        lambda x, w, b: batch_norm(
            x,
            torch.zeros(2, dtype=x.dtype, device=x.device),
            torch.full((2,), 2.0, dtype=x.dtype, device=x.device),
            w,
            b,
        ),
        (3, 2, 3, 2),
        (2,),
    ),
    "layer_norm": (lambda x, w, b: layer_norm(x, (3, 2), w, b), (2, 2, 3, 2), (3, 2)),
    "group_norm": (lambda x, w, b: group_norm(x, 2, w, b), (2, 4, 2, 2), (4,)),
    "instance_norm": (lambda x, w, b: instance_norm(x, weight=w, bias=b), (2, 3, 2, 3), (3,)),
    "instance_norm_running_stats": (
        lambda x, w, b: instance_norm(
            x,
            torch.zeros(3, dtype=x.dtype, device=x.device),
            torch.ones(3, dtype=x.dtype, device=x.device),
            w,
            b,
        ),
        (2, 3, 2, 3),
        (3,),
    ),
    "instance_norm_eval": (
        lambda x, w, b: instance_norm(
            x,
            torch.full((3,), 0.5, dtype=x.dtype, device=x.device),
            torch.full((3,), 2.0, dtype=x.dtype, device=x.device),
            w,
            b,
            use_input_stats=False,
        ),
        (2, 3, 2, 3),
        (3,),
    ),
    "rms_norm": (lambda x, w, b: rms_norm(x, (2, 3), w) + b, (2, 3, 2, 3), (2, 3)),
    "local_response_norm": (
        lambda x, w, b: local_response_norm(x, 4, alpha=0.5, k=1.5) * w.sum() + b.sum(),
        (2, 5, 2, 2),
        (1,),
    ),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradcheck(name, device):
    fn, x_shape, p_shape = GRADCHECK[name]
    gen = torch.Generator().manual_seed(0)
    inputs = (
        double(gen, *x_shape, device=device),
        double(gen, *p_shape, device=device),
        double(gen, *p_shape, device=device),
    )
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(dtype, device):
    x = torch.randn(2, 4, 3, 3, dtype=dtype, device=device, requires_grad=True)
    p = torch.ones(4, dtype=dtype, device=device)
    rm = torch.zeros(4, dtype=dtype, device=device)
    rv = torch.ones(4, dtype=dtype, device=device)
    outs = [
        batch_norm(x, rm, rv, p, p, training=True),
        batch_norm(x, rm, rv, p, p),
        layer_norm(x, (3, 3)),
        group_norm(x, 2, p, p),
        instance_norm(x, weight=p, bias=p),
        instance_norm(x, rm, rv, p, p),
        instance_norm(x, rm, rv, p, p, use_input_stats=False),
        rms_norm(x, 3),
        local_response_norm(x, 3),
    ]
    for out in outs:
        assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    sum(o.sum() for o in outs).backward()
    assert x.grad.dtype == dtype and x.grad.device == x.device
    assert rm.device == x.device and rv.dtype == dtype


# --------------------------------------------------------------------------- no norm op


def aten_ops(fn, *args):
    """Names of the ATen ops run by ``fn(*args).sum().backward()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args).sum().backward()
    return {e.name for e in prof.events() if e.name.startswith("aten::")}


NORM_CALLS = [
    # (ours, the built-in)
    (
        lambda x, rm, rv: batch_norm(x, rm, rv, training=True),
        lambda x, rm, rv: F.batch_norm(x, rm, rv, training=True),
    ),
    (lambda x, rm, rv: batch_norm(x, rm, rv), lambda x, rm, rv: F.batch_norm(x, rm, rv)),
    (lambda x, *_: layer_norm(x, (4, 4)), lambda x, *_: F.layer_norm(x, (4, 4))),
    (lambda x, *_: group_norm(x, 3), lambda x, *_: F.group_norm(x, 3)),
    (lambda x, *_: instance_norm(x), lambda x, *_: F.instance_norm(x)),
    (
        lambda x, rm, rv: instance_norm(x, rm, rv),
        lambda x, rm, rv: F.instance_norm(x, rm, rv),
    ),
    (
        lambda x, rm, rv: instance_norm(x, rm, rv, use_input_stats=False),
        lambda x, rm, rv: F.instance_norm(x, rm, rv, use_input_stats=False),
    ),
    (lambda x, *_: rms_norm(x, 4), lambda x, *_: F.rms_norm(x, (4,))),
    (lambda x, *_: local_response_norm(x, 2), lambda x, *_: F.local_response_norm(x, 2)),
]


@pytest.mark.parametrize("ours, theirs", NORM_CALLS)
def test_never_calls_a_normalization_op(ours, theirs, monkeypatch):
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    rm, rv = torch.zeros(3), torch.ones(3)
    # the profiler would see the built-in (local_response_norm is itself made of pooling)
    assert [o for o in aten_ops(theirs, x, rm, rv) if "norm" in o or "pool" in o]

    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in normalization op was called")

    for module in (F, torch):
        for name in (
            "batch_norm",
            "layer_norm",
            "native_layer_norm",
            "group_norm",
            "instance_norm",
            "rms_norm",
            "local_response_norm",
            "avg_pool3d",
            "avg_pool2d",
        ):
            monkeypatch.setattr(module, name, forbidden, raising=False)
    ops = aten_ops(ours, x, rm, rv)
    assert not [o for o in ops if "norm" in o or "pool" in o], sorted(ops)


# --------------------------------------------------------------------------- conv-BN folding


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fuse_conv_bn_gives_the_same_eval_outputs(bias, affine, device):
    gen = torch.Generator().manual_seed(3)
    x = randn(gen, (2, 4, 7, 6), torch.float64, device)
    w = randn(gen, (6, 2, 3, 3), torch.float64, device)
    b = randn(gen, 6, torch.float64, device) if bias else None
    rm = randn(gen, 6, torch.float64, device)
    rv = torch.rand(6, generator=gen, dtype=torch.float64).to(device) + 0.1
    g, beta = (randn(gen, 6, torch.float64, device) for _ in range(2))
    if not affine:
        g = beta = None
    kwargs = dict(stride=2, padding=1, groups=2)
    expected = F.batch_norm(F.conv2d(x, w, b, **kwargs), rm, rv, g, beta, eps=1e-3)
    w_f, b_f = fuse_conv_bn(w, b, rm, rv, 1e-3, g, beta)
    torch.testing.assert_close(F.conv2d(x, w_f, b_f, **kwargs), expected, rtol=1e-12, atol=1e-12)


def test_fuse_conv_bn_matches_an_eval_mode_module_pair():
    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.BatchNorm2d(5)
    bn.train()
    for _ in range(3):  # move the running statistics away from (0, 1)
        bn(conv(torch.randn(4, 3, 6, 6)))
    bn.eval()
    x = torch.randn(2, 3, 6, 6)
    args = (conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    w_f, b_f = fuse_conv_bn(*args)
    torch.testing.assert_close(F.conv2d(x, w_f, b_f, padding=1), bn(conv(x)))
    # PyTorch's own fusion takes the same arguments in the same order
    w_t, b_t = torch.nn.utils.fusion.fuse_conv_bn_weights(*args)
    torch.testing.assert_close(w_f, w_t)
    torch.testing.assert_close(b_f, b_t)


# --------------------------------------------------------------------------- bad inputs

X = torch.zeros(2, 3, 4, 4)
V = torch.ones(3)

BAD = [
    # (call, error, message fragment)
    (lambda: batch_norm(torch.zeros(3), V, V, training=True), ValueError, "at least 2-D"),
    (lambda: batch_norm([[1.0]], V, V), TypeError, "input must be a torch.Tensor"),
    (lambda: batch_norm(X.long(), V, V), TypeError, "floating point"),
    (lambda: batch_norm(X, V, V, torch.ones(4)), ValueError, r"weight must have shape \(3,\)"),
    (lambda: batch_norm(X, V, V, V, torch.ones(2)), ValueError, "bias must have shape"),
    (lambda: batch_norm(X, torch.zeros(2), V), ValueError, "running_mean must have shape"),
    (lambda: batch_norm(X, V, torch.ones(1, 3)), ValueError, "running_var must have shape"),
    (lambda: batch_norm(X, None, None), ValueError, "required in eval mode"),
    (lambda: batch_norm(X, V, None, training=True), ValueError, "running_mean and running_var"),
    (
        lambda: batch_norm(torch.zeros(1, 3), V, V, training=True),
        ValueError,
        "Expected more than 1 value per channel when training",
    ),
    (lambda: batch_norm(X, V, V, training=True, momentum=None), ValueError, "num_batches_tracked"),
    (lambda: batch_norm(X, V, V, training=True, momentum=2.0), ValueError, "momentum"),
    (lambda: layer_norm(X, (3, 4)), ValueError, "normalized_shape"),
    (lambda: layer_norm(X, 4, torch.ones(3)), ValueError, "weight must have shape"),
    (lambda: group_norm(X, 2), ValueError, "num_groups"),
    (lambda: group_norm(X, 1.5), TypeError, "num_groups"),
    (lambda: instance_norm(torch.zeros(2, 3)), ValueError, "at least 3-D"),
    (lambda: instance_norm(torch.zeros(2, 3, 1)), ValueError, "more than 1 spatial"),
    (lambda: instance_norm(X, V, None), ValueError, "running_mean and running_var"),
    (lambda: instance_norm(X, use_input_stats=False), ValueError,
     "required when use_input_stats=False"),
    (lambda: instance_norm(X, torch.zeros(2), V), ValueError, "running_mean must have shape"),
    (lambda: instance_norm(X, V, V, momentum=None), TypeError,
     r"^instance_norm: momentum must be a real number, got NoneType None$"),
    (lambda: instance_norm(X, V, V, momentum=-0.5), ValueError, "momentum"),
    (lambda: rms_norm(X, 3), ValueError, "normalized_shape"),
    (lambda: local_response_norm(X, 0), ValueError, "size"),
    (lambda: local_response_norm(torch.zeros(2, 3), 2), ValueError, "at least 3-D"),
    (lambda: fuse_conv_bn(torch.zeros(3, 2, 3), None, V, V, 1e-5, V, V), ValueError,
     "conv_w must be 4-D"),
    (
        lambda: fuse_conv_bn(torch.zeros(3, 2, 3, 3), None, V, torch.ones(2), 1e-5, V, V),
        ValueError,
        "bn_rv must have shape",
    ),
]


@pytest.mark.parametrize("call, error, match", BAD)
def test_bad_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()
