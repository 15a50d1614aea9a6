"""Torch cross_entropy, nll_loss and mse_loss from primitives: parity with
torch.nn.functional (reductions, label smoothing, weights, ignore_index, K-dim inputs,
class-probability targets) in float64 and float32, the divisor of "mean", gradcheck, device,
that the built-ins never run, and bad inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from d2lcnn.torch.losses import cross_entropy, mse_loss, nll_loss

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}
REDUCTIONS = ["mean", "sum", "none"]


@st.composite
def classification_args(draw):
    gen = torch.Generator().manual_seed(draw(st.integers(0, 99)))
    n, rest = draw(st.integers(1, 5)), draw(st.lists(st.integers(1, 3), max_size=2))
    n_classes = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    x = torch.randn((n, n_classes, *rest), generator=gen, dtype=dtype)
    target = torch.randint(0, n_classes, (n, *rest), generator=gen)
    kwargs = dict(reduction=draw(st.sampled_from(REDUCTIONS)))
    if draw(st.booleans()):  # ignore some targets, but keep one so 'mean' is finite
        target[torch.rand(target.shape, generator=gen) < 0.3] = -100
        target.view(-1)[0] = 0
    if draw(st.booleans()):
        kwargs["weight"] = torch.rand(n_classes, generator=gen, dtype=dtype) + 0.2
    return x, target, kwargs, dtype


def assert_matches(ours, ref, x, target, dtype, **kwargs):
    results = []
    for fn in (ref, ours):
        xl = x.clone().requires_grad_()
        out = fn(xl, target, **kwargs)
        dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        out.backward(dout)
        results.append((out.detach(), xl.grad))
    (out_ref, dx_ref), (out, dx) = results
    assert out.dtype == dtype and out.shape == out_ref.shape
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    torch.testing.assert_close(dx, dx_ref, **TOL[dtype])


@settings(max_examples=30, deadline=None)
@given(args=classification_args(), label_smoothing=st.sampled_from([0.0, 0.1, 0.5]))
def test_cross_entropy_matches_torch(args, label_smoothing):
    x, target, kwargs, dtype = args
    assert_matches(
        cross_entropy, F.cross_entropy, x, target, dtype, label_smoothing=label_smoothing, **kwargs
    )


@st.composite
def probability_args(draw):
    gen = torch.Generator().manual_seed(draw(st.integers(0, 99)))
    n, rest = draw(st.integers(1, 4)), draw(st.lists(st.integers(1, 3), max_size=2))
    n_classes = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    shape = (n, n_classes, *rest)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    target = torch.softmax(2 * torch.randn(shape, generator=gen, dtype=dtype), dim=1)
    hard = torch.rand((n, 1, *rest), generator=gen) < 0.3  # a few one-hot targets
    onehot = torch.zeros_like(target).scatter_(1, target.argmax(1, keepdim=True), 1.0)
    target = torch.where(hard, onehot, target)
    kwargs = dict(
        reduction=draw(st.sampled_from(REDUCTIONS)),
        label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5])),
    )
    if draw(st.booleans()):
        kwargs["weight"] = torch.rand(n_classes, generator=gen, dtype=dtype) + 0.2
    return x, target, kwargs, dtype


@settings(max_examples=40, deadline=None)
@given(args=probability_args())
def test_cross_entropy_with_probabilities_matches_torch(args):
    x, target, kwargs, dtype = args
    assert_matches(cross_entropy, F.cross_entropy, x, target, dtype, **kwargs)
    # the target is differentiable too (distillation trains through a teacher's softmax)
    grads = []
    for fn in (F.cross_entropy, cross_entropy):
        t = target.clone().requires_grad_()
        fn(x, t, **kwargs).sum().backward()
        grads.append(t.grad)
    torch.testing.assert_close(grads[1], grads[0], **TOL[dtype])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_mean_over_ignored_targets_divides_by_the_counted_weight(label_smoothing):
    # Non-uniform weights and two ignored targets: every plausible wrong divisor (the number
    # of counted targets, of all targets, the weight of all targets with the ignored ones
    # read as class 0, the sum of the class weights) gives another value.
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    target = torch.tensor([0, 2, -100, 1, -100, 2])
    weight = torch.tensor([0.2, 3.0, 1.5], dtype=torch.float64)
    kwargs = dict(weight=weight, label_smoothing=label_smoothing)
    assert_matches(cross_entropy, F.cross_entropy, x, target, torch.float64, **kwargs)
    out = cross_entropy(x, target, **kwargs)
    total = cross_entropy(x, target, reduction="none", **kwargs).sum()
    counted = target != -100
    torch.testing.assert_close(out, total / weight[target[counted]].sum(), rtol=1e-14, atol=0)
    for wrong in (counted.sum(), target.numel(), weight[torch.where(counted, target, 0)].sum(),
                  weight.sum()):
        assert abs(total / wrong - out) > 1e-3 * abs(out)


def test_cross_entropy_with_probabilities_mean_divides_by_the_number_of_samples():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, 4, 2, generator=gen, dtype=torch.float64)  # M = 6 samples
    target = torch.randint(0, 4, (3, 2), generator=gen)
    onehot = F.one_hot(target, 4).movedim(-1, 1).double()  # (N, C, d1)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    soft = cross_entropy(x, onehot, weight, reduction="none")
    torch.testing.assert_close(soft, cross_entropy(x, target, weight, reduction="none"))
    torch.testing.assert_close(cross_entropy(x, onehot, weight), soft.sum() / 6)
    torch.testing.assert_close(
        cross_entropy(x, target, weight), soft.sum() / weight[target].sum()
    )


@settings(max_examples=30, deadline=None)
@given(args=classification_args())
def test_nll_loss_matches_torch(args):
    x, target, kwargs, dtype = args
    assert_matches(nll_loss, F.nll_loss, x, target, dtype, **kwargs)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    reduction=st.sampled_from(REDUCTIONS),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 99),
)
def test_mse_loss_matches_torch(shape, reduction, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    assert_matches(
        mse_loss,
        F.mse_loss,
        x,
        torch.randn(shape, generator=gen, dtype=dtype),
        dtype,
        reduction=reduction,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_and_device(reduction, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 2, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    target = torch.tensor([[0, 1], [2, -100], [1, 1], [0, 2]], device=device)
    weight = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64, device=device)
    assert torch.autograd.gradcheck(
        lambda x: cross_entropy(x, target, weight=weight, reduction=reduction, label_smoothing=0.2),
        (x,),
    )
    assert torch.autograd.gradcheck(lambda x: nll_loss(x, target, reduction=reduction), (x,))
    probs = torch.softmax(torch.randn(4, 3, 2, generator=gen, dtype=torch.float64), 1)
    probs = probs.to(device).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, t: cross_entropy(x, t, weight, reduction=reduction, label_smoothing=0.2),
        (x, probs),
    )
    assert cross_entropy(x, probs).device == x.device
    y = torch.randn(4, 3, 2, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: mse_loss(x, y, reduction=reduction), (x, y))
    assert cross_entropy(x, target).device == x.device


def test_cross_entropy_stable_for_huge_logits():
    x = torch.tensor([[1000.0, 0.0, -1000.0]], dtype=torch.float64, requires_grad=True)
    loss = cross_entropy(x, torch.tensor([2]))
    loss.backward()
    torch.testing.assert_close(loss, torch.tensor(2000.0, dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.float64))


@pytest.mark.parametrize(
    "fn, names",
    [
        (cross_entropy, ["cross_entropy", "nll_loss", "log_softmax"]),
        ("soft cross_entropy", ["cross_entropy", "nll_loss", "log_softmax"]),
        (nll_loss, ["nll_loss"]),
        (mse_loss, ["mse_loss"]),
    ],
)
def test_never_calls_the_built_in_loss(fn, names, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a built-in loss was called")

    for name in names:
        for module in (F, torch, torch.Tensor, torch._C._nn):
            monkeypatch.setattr(module, name, forbidden, raising=False)
    x = torch.randn(3, 4, requires_grad=True)
    target = torch.randn(3, 4) if fn is mse_loss else torch.tensor([0, 3, 1])
    if fn == "soft cross_entropy":
        fn, target = cross_entropy, torch.full((3, 4), 0.25)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(x, target).backward()
    ops = {e.name for e in prof.events()}
    assert not [o for o in ops if any(n in o for n in names)], ops


X = torch.zeros(2, 3)


@pytest.mark.parametrize("fn", [cross_entropy, nll_loss])
@pytest.mark.parametrize(
    "x, target, kwargs, error, match",
    [
        (torch.zeros(3), torch.tensor(0), {}, ValueError, "input"),
        (X, torch.tensor([0, 1, 2]), {}, ValueError, "target must have shape"),
        (X, torch.tensor([0.0, 1.0]), {}, TypeError, "target"),
        (X, torch.tensor([0, 3]), {}, ValueError, "target values"),
        (X, torch.tensor([-1, 0]), {}, ValueError, "target values"),
        (X.long(), torch.tensor([0, 1]), {}, TypeError, "input"),
        (X, torch.tensor([0, 1]), dict(reduction="avg"), ValueError, "reduction"),
        (X, torch.tensor([0, 1]), dict(weight=torch.ones(2)), ValueError, "weight"),
    ],
)
def test_bad_inputs_raise(fn, x, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(x, target, **kwargs)


P = torch.full((2, 3), 1 / 3)  # class probabilities for X


@pytest.mark.parametrize(
    "target, kwargs, error, match",
    [
        (P.long(), {}, TypeError, "class probabilities and must be floating point"),
        (P > 0, {}, TypeError, "class probabilities and must be floating point"),
        (torch.full((2, 4), 0.25), {}, TypeError, r"class probabilities with input's shape"),
        (torch.full((2, 3, 1), 0.25), {}, TypeError, r"of shape \(2, 3, 1\)"),
        (P, dict(ignore_index=0), ValueError, "ignore_index applies to class-index targets"),
        (P, dict(reduction="avg"), ValueError, "reduction"),
        (P, dict(weight=torch.ones(4)), ValueError, "weight"),
    ],
)
def test_cross_entropy_bad_probability_targets_raise(target, kwargs, error, match):
    with pytest.raises(error, match=match):
        cross_entropy(X, target, **kwargs)


def test_other_bad_inputs_raise():
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy(X, torch.tensor([0, 1]), label_smoothing=-0.1)
    with pytest.raises(ValueError, match="target must have input's shape"):
        mse_loss(X, torch.zeros(3))


def brute_force_mean_cross_entropy(x, target, weight, ignore_index, label_smoothing):
    """``reduction="mean"`` cross-entropy by a loop over the samples, in plain Python floats:
    the sum of the counted samples' losses over the sum of their target's class weight."""
    n_classes = x.shape[1]
    rows = x.movedim(1, -1).reshape(-1, n_classes).tolist()  # (M, C)
    w = [1.0] * n_classes if weight is None else weight.tolist()
    total = counted_weight = 0.0
    for row, y in zip(rows, target.reshape(-1).tolist(), strict=True):
        if y == ignore_index:
            continue
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        nll = [log_z - v for v in row]  # -log p_c
        total += (1 - label_smoothing) * w[y] * nll[y]
        total += label_smoothing / n_classes * sum(wc * lc for wc, lc in zip(w, nll, strict=True))
        counted_weight += w[y]
    return total / counted_weight


# Deterministic (hypothesis may never draw "mean" with ignored targets): the default
# ignore_index, a real class being ignored, and a segmentation "void" label outside [0, C).
WEIGHT = torch.tensor([0.2, 3.0, 1.5], dtype=torch.float64)
MEAN_IGNORE_CASES = [
    ((6,), -100, None, 0.0),
    ((6,), -100, WEIGHT, 0.0),
    ((6,), 1, WEIGHT, 0.3),
    ((2, 3, 4), 255, None, 0.0),
    ((2, 3, 4), 255, WEIGHT, 0.1),
]


def _ignore_case(shape, ignore_index, seed):
    gen = torch.Generator().manual_seed(seed)
    n, *rest = shape
    x = torch.randn((n, 3, *rest), generator=gen, dtype=torch.float64)
    target = torch.randint(0, 3, shape, generator=gen)
    flat = target.view(-1)
    flat[[1, 3, 4]] = ignore_index  # three ignored samples, the others counted
    flat[[0, 2]] = torch.tensor([0, 2])
    return x, target


@pytest.mark.parametrize("shape, ignore_index, weight, label_smoothing", MEAN_IGNORE_CASES)
def test_cross_entropy_mean_with_ignored_targets_matches_a_loop_and_torch(
    shape, ignore_index, weight, label_smoothing
):
    x, target = _ignore_case(shape, ignore_index, seed=11)
    kwargs = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)
    expected = brute_force_mean_cross_entropy(x, target, weight, ignore_index, label_smoothing)
    torch.testing.assert_close(cross_entropy(x, target, **kwargs).item(), expected,
                               rtol=1e-12, atol=0)
    assert_matches(cross_entropy, F.cross_entropy, x, target, torch.float64, **kwargs)
    xl = x.clone().requires_grad_()
    cross_entropy(xl, target, **kwargs).backward()
    assert (xl.grad.movedim(1, -1)[target == ignore_index] == 0).all()


@pytest.mark.parametrize("shape, ignore_index, weight, label_smoothing",
                         [c for c in MEAN_IGNORE_CASES if c[3] == 0.0])
def test_nll_loss_mean_with_ignored_targets_matches_a_loop_and_torch(
    shape, ignore_index, weight, label_smoothing
):
    x, target = _ignore_case(shape, ignore_index, seed=12)
    log_p = torch.log_softmax(x, dim=1)
    kwargs = dict(weight=weight, ignore_index=ignore_index)
    expected = brute_force_mean_cross_entropy(x, target, weight, ignore_index, 0.0)
    torch.testing.assert_close(nll_loss(log_p, target, **kwargs).item(), expected,
                               rtol=1e-12, atol=0)
    assert_matches(nll_loss, F.nll_loss, log_p, target, torch.float64, **kwargs)
