"""Torch initializers: given the same generator state they fill exactly what torch.nn.init
fills, on every device and dtype; and they reject bad arguments."""

import math

import pytest
import torch

from d2lcnn.torch.init import (
    kaiming_normal,
    kaiming_uniform,
    normal,
    orthogonal,
    uniform,
    xavier_normal,
    xavier_uniform,
    zeros,
)

SHAPES = [(3, 4), (16, 3, 3, 3), (8, 2, 5, 1), (7, 3), (2, 3, 2, 2)]

CASES = [
    # (ours, torch's, kwargs)
    (normal, torch.nn.init.normal_, dict(mean=0.5, std=0.02)),
    (uniform, torch.nn.init.uniform_, dict(a=-2.0, b=1.0)),
    (xavier_uniform, torch.nn.init.xavier_uniform_, dict()),
    (
        xavier_uniform,
        torch.nn.init.xavier_uniform_,
        dict(gain=torch.nn.init.calculate_gain("tanh")),
    ),
    (xavier_normal, torch.nn.init.xavier_normal_, dict(gain=0.7)),
    (kaiming_uniform, torch.nn.init.kaiming_uniform_, dict()),
    (kaiming_uniform, torch.nn.init.kaiming_uniform_, dict(a=math.sqrt(5))),  # nn.Linear's
    (kaiming_uniform, torch.nn.init.kaiming_uniform_, dict(mode="fan_out", nonlinearity="relu")),
    (kaiming_normal, torch.nn.init.kaiming_normal_, dict(a=0.1, mode="fan_out")),
    (kaiming_normal, torch.nn.init.kaiming_normal_, dict(nonlinearity="selu")),
    (orthogonal, torch.nn.init.orthogonal_, dict()),
    (orthogonal, torch.nn.init.orthogonal_, dict(gain=2.0)),
]


@pytest.mark.parametrize("ours, theirs, kwargs", CASES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_nn_init_exactly(ours, theirs, kwargs, shape, dtype, device):
    a = torch.empty(shape, dtype=dtype, device=device)
    b = torch.empty(shape, dtype=dtype, device=device)
    out = ours(a, **kwargs, generator=torch.Generator(device).manual_seed(3))
    theirs(b, **kwargs, generator=torch.Generator(device).manual_seed(3))
    assert out is a
    assert torch.equal(a, b)


def test_fills_in_place_without_recording_autograd():
    w = torch.nn.Parameter(torch.empty(5, 4))
    zeros(w)
    assert w.abs().sum() == 0 and w.grad_fn is None
    out = kaiming_uniform(w, generator=torch.Generator().manual_seed(0))
    assert out is w and w.grad_fn is None and w.abs().sum() > 0


def test_orthogonal_of_a_non_contiguous_view():
    w = torch.empty(6, 8)
    view = w.T  # (8, 6), not contiguous
    orthogonal(view, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(view.T @ view, torch.eye(6), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda g: normal(torch.empty(2, 2), std=-1.0, generator=g), "std must be >= 0"),
        (lambda g: uniform(torch.empty(2, 2), a=1.0, b=0.0, generator=g), "need a <= b"),
        (lambda g: xavier_uniform(torch.empty(4), generator=g), "at least 2 dimensions"),
        (lambda g: kaiming_normal(torch.empty(3, 3), mode="fan", generator=g), "mode must be"),
        (lambda g: kaiming_uniform(torch.empty(3, 3), nonlinearity="elu", generator=g), "elu"),
        (lambda g: orthogonal(torch.empty(4), generator=g), "at least 2 dimensions"),
        (lambda g: orthogonal(torch.empty(4, 4), gain=-1.0, generator=g), "gain must be >= 0"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.Generator().manual_seed(0))


def test_generator_is_required():
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        xavier_uniform(torch.empty(3, 3), generator=0)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument"):
        xavier_uniform(torch.empty(3, 3))
