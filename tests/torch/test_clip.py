"""Torch gradient clipping: same gradients and total norm as torch.nn.utils.clip_grad_norm_ /
clip_grad_value_, on every device; parameters without gradients; errors."""

import math

import pytest
import torch

from d2lcnn.torch.clip import clip_grad_norm, clip_grad_value

TOL = dict(rtol=1e-12, atol=1e-15)


def make_params(device, seed=0, scale=1.0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in [(4, 3, 3, 3), (4,), (10, 36)]:
        p = torch.zeros(shape, dtype=dtype, device=device, requires_grad=True)
        p.grad = (scale * torch.randn(shape, generator=gen, dtype=dtype)).to(device)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.0, 0.5, 5.0, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, device):
    ours, theirs = make_params(device), make_params(device)
    total = clip_grad_norm(ours, max_norm, norm_type)
    total_ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    torch.testing.assert_close(total, total_ref, **TOL)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, **TOL)


def test_clip_grad_norm_float32_and_single_tensor():
    ours = make_params("cpu", dtype=torch.float32)[0]
    theirs = make_params("cpu", dtype=torch.float32)[0]
    total = clip_grad_norm(ours, 1.0)  # a bare tensor, not a list
    assert total == torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert torch.equal(ours.grad, theirs.grad)


def test_parameters_without_grad_are_ignored():
    params = make_params("cpu")
    params.append(torch.zeros(3, requires_grad=True))  # no .grad
    assert clip_grad_norm(params, 1.0) == torch.nn.utils.clip_grad_norm_(make_params("cpu"), 1.0)
    assert params[-1].grad is None
    assert clip_grad_norm([torch.zeros(2, requires_grad=True)], 1.0).item() == 0.0


@pytest.mark.parametrize("clip_value", [0.0, 0.1, 1.0])
def test_clip_grad_value_matches_torch(clip_value, device):
    ours, theirs = make_params(device), make_params(device)
    clip_grad_value(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a.grad, b.grad)


def test_errors():
    params = make_params("cpu")
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm(params, -1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        clip_grad_norm(params, 1.0, norm_type=-2.0)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        clip_grad_value(params, -1.0)
    params[0].grad[0, 0, 0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="is nan"):
        clip_grad_norm(params, 1.0, error_if_nonfinite=True)
