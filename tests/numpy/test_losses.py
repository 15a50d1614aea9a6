"""NumPy cross-entropy, NLL and MSE losses: numerical gradients, parity with
torch.nn.functional (every reduction, label smoothing, class weights, ignore_index, K-dim
inputs, class-probability targets) in float64 and float32, the divisor of "mean", and bad
inputs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from d2lcnn.gradcheck import check_backward
from d2lcnn.numpy.losses import (
    cross_entropy_backward,
    cross_entropy_forward,
    mse_loss_backward,
    mse_loss_forward,
    nll_loss_backward,
    nll_loss_forward,
)

GRAD_TOL = 1e-7  # relative error of float64 centred differences
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}
REDUCTIONS = ["mean", "sum", "none"]


def classification_case(shape, n_classes, seed, with_ignored=False):
    """Logits ``(N, C, *)`` and targets ``(N, *)``; optionally some targets ignored (-100)."""
    rng = np.random.default_rng(seed)
    n, *rest = shape
    logits = rng.standard_normal((n, n_classes, *rest))
    target = rng.integers(0, n_classes, (n, *rest))
    if with_ignored:
        target[rng.random(target.shape) < 0.3] = -100
        target.reshape(-1)[0] = 0  # at least one target counts, so 'mean' is finite
    return logits, target


def probability_case(shape, n_classes, seed):
    """Logits and class-probability targets, both ``(N, C, *)``; some targets one-hot."""
    rng = np.random.default_rng(seed)
    n, *rest = shape
    logits = rng.standard_normal((n, n_classes, *rest))
    scores = 2 * rng.standard_normal((n, n_classes, *rest))
    target = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    hard = rng.random((n, *rest)) < 0.3  # a few hard labels: zeros in the distribution
    onehot = np.moveaxis(np.eye(n_classes)[rng.integers(0, n_classes, (n, *rest))], -1, 1)
    return logits, np.where(hard[:, None], onehot, target)


# --------------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((4,), {}),
        ((3, 2, 2), dict(label_smoothing=0.3)),
        ((5,), dict(weight=np.array([0.5, 2.0, 1.0]), label_smoothing=0.2)),
        ((6,), dict(weight=np.array([0.5, 2.0, 1.0]))),
    ],
)
def test_cross_entropy_numerical_gradient(reduction, shape, kwargs):
    logits, target = classification_case(shape, 3, seed=1, with_ignored=True)
    kwargs = dict(kwargs, reduction=reduction)
    # Precondition: no gradient entry p - q is nearly cancelled. An entry of ~1e-5 has a
    # relative error set by the finite-difference floor (~1e-11 absolute), not by the
    # backward pass; with label smoothing, p can sit close to eps / C.
    g = np.abs(
        cross_entropy_backward(
            1.0, cross_entropy_forward(logits, target, **dict(kwargs, reduction="sum"))[1]
        )
    )
    assert g[g > 0].min() > 1e-3
    (err,) = check_backward(
        lambda z, **kw: cross_entropy_forward(z, target, **kw),
        cross_entropy_backward,
        [logits],
        kwargs=kwargs,
        h=1e-5,
    )
    assert err <= GRAD_TOL


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((4,), {}),
        ((3, 2, 2), dict(label_smoothing=0.3)),
        ((5,), dict(weight=np.array([0.5, 2.0, 1.0]), label_smoothing=0.2)),
        ((2, 3), dict(weight=np.array([0.5, 2.0, 1.0]))),
    ],
)
def test_cross_entropy_with_probabilities_numerical_gradient(reduction, shape, kwargs):
    logits, target = probability_case(shape, 3, seed=4)
    (err,) = check_backward(
        lambda z, **kw: cross_entropy_forward(z, target, **kw),
        cross_entropy_backward,
        [logits],
        kwargs=dict(kwargs, reduction=reduction),
        h=1e-5,
    )
    assert err <= GRAD_TOL


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_numerical_gradient(reduction):
    log_p, target = classification_case((4, 3), 5, seed=2, with_ignored=True)
    weight = np.linspace(0.5, 1.5, 5)
    (err,) = check_backward(
        lambda z, **kw: nll_loss_forward(z, target, **kw),
        nll_loss_backward,
        [log_p],
        kwargs=dict(reduction=reduction, weight=weight),
        h=1e-4,
    )
    assert err <= GRAD_TOL


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_numerical_gradient(reduction):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    errs = check_backward(
        mse_loss_forward, mse_loss_backward, [x, y], kwargs=dict(reduction=reduction), h=1e-4
    )
    assert max(errs) <= GRAD_TOL


# --------------------------------------------------------------------------- torch parity


def torch_loss(fn, x, target, dout, **kwargs):
    xt = torch.tensor(x, requires_grad=True)
    kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = fn(xt, torch.tensor(target), **kwargs)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy()


@st.composite
def classification_args(draw):
    shape = (draw(st.integers(1, 5)), *draw(st.lists(st.integers(1, 3), max_size=2)))
    n_classes = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 99))
    logits, target = classification_case(shape, n_classes, seed, draw(st.booleans()))
    kwargs = dict(reduction=draw(st.sampled_from(REDUCTIONS)))
    if draw(st.booleans()):
        kwargs["weight"] = np.random.default_rng(seed).uniform(0.2, 2.0, n_classes)
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return logits.astype(dtype), target, kwargs, dtype


@settings(max_examples=30, deadline=None)
@given(args=classification_args(), label_smoothing=st.sampled_from([0.0, 0.1, 0.5]))
def test_cross_entropy_matches_torch(args, label_smoothing):
    logits, target, kwargs, dtype = args
    kwargs = dict(kwargs, label_smoothing=label_smoothing)
    if "weight" in kwargs:
        kwargs["weight"] = kwargs["weight"].astype(dtype)
    out, cache = cross_entropy_forward(logits, target, **kwargs)
    dout = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    out_ref, dx_ref = torch_loss(F.cross_entropy, logits, target, dout, **kwargs)
    assert out.dtype == dtype and out.shape == out_ref.shape
    np.testing.assert_allclose(out, out_ref, **TOL[dtype])
    np.testing.assert_allclose(cross_entropy_backward(dout, cache), dx_ref, **TOL[dtype])


@st.composite
def probability_args(draw):
    shape = (draw(st.integers(1, 4)), *draw(st.lists(st.integers(1, 3), max_size=2)))
    n_classes = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 99))
    logits, target = probability_case(shape, n_classes, seed)
    kwargs = dict(
        reduction=draw(st.sampled_from(REDUCTIONS)),
        label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5])),
    )
    if draw(st.booleans()):
        kwargs["weight"] = np.random.default_rng(seed).uniform(0.2, 2.0, n_classes)
    if draw(st.booleans()):
        kwargs["ignore_index"] = -1  # negative: allowed (and meaningless) with probabilities
    return logits, target, kwargs


@settings(max_examples=40, deadline=None)
@given(args=probability_args(), dtype=st.sampled_from([np.float64, np.float32]))
def test_cross_entropy_with_probabilities_matches_torch(args, dtype):
    logits, target, kwargs = args
    logits, target = logits.astype(dtype), target.astype(dtype)
    if "weight" in kwargs:
        kwargs["weight"] = kwargs["weight"].astype(dtype)
    out, cache = cross_entropy_forward(logits, target, **kwargs)
    dout = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    out_ref, dx_ref = torch_loss(F.cross_entropy, logits, target, dout, **kwargs)
    assert out.dtype == dtype and out.shape == out_ref.shape
    np.testing.assert_allclose(out, out_ref, **TOL[dtype])
    np.testing.assert_allclose(cross_entropy_backward(dout, cache), dx_ref, **TOL[dtype])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_mean_over_ignored_targets_divides_by_the_counted_weight(label_smoothing):
    # Non-uniform weights and two ignored targets: every plausible wrong divisor (the number
    # of counted targets, of all targets, the weight of all targets with the ignored ones
    # read as class 0, the sum of the class weights) gives another value.
    logits = np.random.default_rng(6).standard_normal((6, 3))
    target = np.array([0, 2, -100, 1, -100, 2])
    weight = np.array([0.2, 3.0, 1.5])
    kwargs = dict(weight=weight, label_smoothing=label_smoothing)
    out, cache = cross_entropy_forward(logits, target, **kwargs)
    per_sample, _ = cross_entropy_forward(logits, target, reduction="none", **kwargs)
    counted = target != -100
    np.testing.assert_array_equal(per_sample[~counted], 0.0)
    right = weight[target[counted]].sum()  # 0.2 + 1.5 + 3.0 + 1.5 = 6.2
    np.testing.assert_allclose(out, per_sample.sum() / right, rtol=1e-14)
    for wrong in (counted.sum(), target.size, weight[np.where(counted, target, 0)].sum(),
                  weight.sum()):
        assert abs(per_sample.sum() / wrong - out) > 1e-3 * abs(out)
    out_ref, dx_ref = torch_loss(F.cross_entropy, logits, target, np.array(1.0), **kwargs)
    np.testing.assert_allclose(out, out_ref, **TOL[np.float64])
    np.testing.assert_allclose(cross_entropy_backward(1.0, cache), dx_ref, **TOL[np.float64])


def test_cross_entropy_with_probabilities_mean_divides_by_the_number_of_samples():
    # One-hot probabilities give the class-index losses sample by sample; only "mean"
    # differs once there are weights: by the sample count M, not by the targets' weight.
    logits, target = classification_case((3, 2), 4, seed=7)  # M = 6 samples
    onehot = np.moveaxis(np.eye(4)[target], -1, 1)  # (N, C, d1)
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    soft, _ = cross_entropy_forward(logits, onehot, weight, reduction="none")
    hard, _ = cross_entropy_forward(logits, target, weight, reduction="none")
    np.testing.assert_allclose(soft, hard, rtol=1e-14)
    mean_soft, _ = cross_entropy_forward(logits, onehot, weight)
    mean_hard, _ = cross_entropy_forward(logits, target, weight)
    np.testing.assert_allclose(mean_soft, soft.sum() / 6, rtol=1e-14)
    np.testing.assert_allclose(mean_hard, hard.sum() / weight[target].sum(), rtol=1e-14)
    np.testing.assert_allclose(
        mean_soft, F.cross_entropy(torch.tensor(logits), torch.tensor(onehot),
                                   torch.tensor(weight)), rtol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(args=classification_args())
def test_nll_loss_matches_torch(args):
    log_p, target, kwargs, dtype = args
    if "weight" in kwargs:
        kwargs["weight"] = kwargs["weight"].astype(dtype)
    out, cache = nll_loss_forward(log_p, target, **kwargs)
    dout = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    out_ref, dx_ref = torch_loss(F.nll_loss, log_p, target, dout, **kwargs)
    np.testing.assert_allclose(out, out_ref, **TOL[dtype])
    np.testing.assert_allclose(nll_loss_backward(dout, cache), dx_ref, **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    reduction=st.sampled_from(REDUCTIONS),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 99),
)
def test_mse_loss_matches_torch(shape, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    out, cache = mse_loss_forward(x, y, reduction=reduction)
    dout = rng.standard_normal(out.shape).astype(dtype)
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    out_ref = F.mse_loss(xt, yt, reduction=reduction)
    out_ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, out_ref.detach().numpy(), **TOL[dtype])
    dx, dy = mse_loss_backward(dout, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(dy, yt.grad.numpy(), **TOL[dtype])


def test_cross_entropy_is_log_softmax_then_nll():
    logits, target = classification_case((6,), 4, seed=5)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(
        cross_entropy_forward(logits, target)[0], nll_loss_forward(log_p, target)[0], rtol=1e-14
    )


def test_cross_entropy_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    loss, cache = cross_entropy_forward(logits, np.array([2]))
    np.testing.assert_allclose(loss, 2000.0)
    np.testing.assert_allclose(cross_entropy_backward(1.0, cache), [[1.0, 0.0, -1.0]])


# --------------------------------------------------------------------------- bad inputs

Z = np.zeros((2, 3))


@pytest.mark.parametrize("fwd", [cross_entropy_forward, nll_loss_forward])
@pytest.mark.parametrize(
    "x, target, kwargs, error, match",
    [
        (np.zeros(3), np.array(0), {}, ValueError, "input"),
        (Z, np.array([0, 1, 2]), {}, ValueError, "target must have shape"),
        (Z, np.array([[0], [1]]), {}, ValueError, "target must have shape"),
        (Z, np.array([0.0, 1.0]), {}, TypeError, "target"),
        (Z, np.array([0, 3]), {}, ValueError, "target values"),
        (Z, np.array([-1, 0]), {}, ValueError, "target values"),
        (Z.astype(int), np.array([0, 1]), {}, TypeError, "input"),
        (Z, np.array([0, 1]), dict(reduction="avg"), ValueError, "reduction"),
        (Z, np.array([0, 1]), dict(weight=np.ones(2)), ValueError, "weight"),
    ],
)
def test_classification_bad_inputs_raise(fwd, x, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        fwd(x, target, **kwargs)


P = np.full((2, 3), 1 / 3)  # class probabilities for Z


@pytest.mark.parametrize(
    "target, kwargs, error, match",
    [
        (P.astype(int), {}, TypeError, "class probabilities and must be floating point"),
        (P > 0, {}, TypeError, "class probabilities and must be floating point"),
        (P.astype(np.float32), {}, TypeError, "must have input's dtype float64"),
        (np.full((2, 4), 0.25), {}, TypeError, r"class probabilities with input's shape \(2, 3\)"),
        (np.full((2, 3, 1), 1 / 3), {}, TypeError, r"got float64 of shape \(2, 3, 1\)"),
        (P, dict(ignore_index=0), ValueError, "ignore_index applies to class-index targets"),
        (P, dict(reduction="avg"), ValueError, "reduction"),
        (P, dict(weight=np.ones(4)), ValueError, "weight"),
        (P, dict(label_smoothing=-0.1), ValueError, "label_smoothing"),
    ],
)
def test_cross_entropy_bad_probability_targets_raise(target, kwargs, error, match):
    with pytest.raises(error, match=match):
        cross_entropy_forward(Z, target, **kwargs)


def test_other_bad_inputs_raise():
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy_forward(Z, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="target must have input's shape"):
        mse_loss_forward(Z, np.zeros(3))
    with pytest.raises(TypeError, match="target"):
        mse_loss_forward(Z, np.zeros((2, 3), int))
    _, cache = cross_entropy_forward(Z, np.array([0, 1]), reduction="none")
    with pytest.raises(ValueError, match="dout"):
        cross_entropy_backward(1.0, cache)
    _, cache = mse_loss_forward(Z, Z)
    with pytest.raises(ValueError, match="dout"):
        mse_loss_backward(np.ones(2), cache)


def brute_force_mean_cross_entropy(logits, target, weight, ignore_index, label_smoothing):
    """``reduction="mean"`` cross-entropy by a loop over the samples, in plain Python floats:
    the sum of the counted samples' losses over the sum of their target's class weight."""
    n_classes = logits.shape[1]
    rows = np.moveaxis(logits, 1, -1).reshape(-1, n_classes)  # (M, C)
    total = counted_weight = 0.0
    for row, y in zip(rows.tolist(), target.reshape(-1).tolist(), strict=True):
        if y == ignore_index:
            continue
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        nll = [log_z - v for v in row]  # -log p_c
        w = [1.0] * n_classes if weight is None else weight.tolist()
        total += (1 - label_smoothing) * w[y] * nll[y]
        total += label_smoothing / n_classes * sum(wc * lc for wc, lc in zip(w, nll, strict=True))
        counted_weight += w[y]
    return total / counted_weight


# Deterministic (hypothesis may never draw "mean" with ignored targets): the default
# ignore_index, a real class being ignored, and a segmentation "void" label outside [0, C).
MEAN_IGNORE_CASES = [
    ((6,), -100, None, 0.0),
    ((6,), -100, np.array([0.2, 3.0, 1.5]), 0.0),
    ((6,), 1, np.array([0.2, 3.0, 1.5]), 0.3),
    ((2, 3, 4), 255, None, 0.0),
    ((2, 3, 4), 255, np.array([0.2, 3.0, 1.5]), 0.1),
]


@pytest.mark.parametrize("shape, ignore_index, weight, label_smoothing", MEAN_IGNORE_CASES)
def test_cross_entropy_mean_with_ignored_targets_matches_a_loop_and_torch(
    shape, ignore_index, weight, label_smoothing
):
    logits, target = classification_case(shape, 3, seed=11)
    flat = target.reshape(-1)
    flat[[1, 3, 4]] = ignore_index  # three ignored samples, the others counted
    flat[[0, 2]] = [0, 2]
    kwargs = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)
    out, cache = cross_entropy_forward(logits, target, **kwargs)
    expected = brute_force_mean_cross_entropy(logits, target, weight, ignore_index,
                                              label_smoothing)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    out_ref, dx_ref = torch_loss(F.cross_entropy, logits, target, np.array(1.0),
                                 **{k: v for k, v in kwargs.items() if v is not None})
    np.testing.assert_allclose(out, out_ref, **TOL[np.float64])
    dx = cross_entropy_backward(1.0, cache)
    np.testing.assert_allclose(dx, dx_ref, **TOL[np.float64])
    ignored = np.moveaxis(dx, 1, -1)[target == ignore_index]  # (ignored, C)
    np.testing.assert_array_equal(ignored, 0.0)


@pytest.mark.parametrize("shape, ignore_index, weight, label_smoothing",
                         [c for c in MEAN_IGNORE_CASES if c[3] == 0.0])
def test_nll_loss_mean_with_ignored_targets_matches_a_loop_and_torch(
    shape, ignore_index, weight, label_smoothing
):
    logits, target = classification_case(shape, 3, seed=12)
    flat = target.reshape(-1)
    flat[[1, 3, 4]] = ignore_index
    flat[[0, 2]] = [0, 2]
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))  # (N, C, *)
    out, cache = nll_loss_forward(log_p, target, weight, ignore_index=ignore_index)
    expected = brute_force_mean_cross_entropy(logits, target, weight, ignore_index, 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    kwargs = dict(ignore_index=ignore_index, **({} if weight is None else dict(weight=weight)))
    out_ref, dx_ref = torch_loss(F.nll_loss, log_p, target, np.array(1.0), **kwargs)
    np.testing.assert_allclose(out, out_ref, **TOL[np.float64])
    np.testing.assert_allclose(nll_loss_backward(1.0, cache), dx_ref, **TOL[np.float64])
