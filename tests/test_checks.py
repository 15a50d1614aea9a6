"""The shared checks of plain numbers (d2lcnn.checks): what they accept, what they reject and
with which message, and that both backends reject a bad argument with the same message."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from d2lcnn import checks
from d2lcnn import numpy as nd
from d2lcnn import torch as td


@pytest.mark.parametrize("value", [0, 3, 0.5, np.float32(0.25), np.int64(2), np.float64(1e-3)])
def test_real_numbers_pass_as_floats(value):
    out = checks.check_nonnegative(value, "lr", "SGD")
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize("value", [True, np.bool_(True), "0.1", None, np.array(0.1), [0.1]])
def test_non_numbers_are_type_errors_that_name_function_and_argument(value):
    with pytest.raises(TypeError, match=r"^SGD: lr must be a real number, got "):
        checks.check_nonnegative(value, "lr", "SGD")


@pytest.mark.parametrize(
    "check, value, match",
    [
        (checks.check_nonnegative, -0.1, r"^f: a must be >= 0, got -0.1$"),
        (checks.check_nonnegative, math.nan, r"^f: a must be >= 0, got nan$"),
        (checks.check_positive, 0, r"^f: a must be > 0, got 0$"),
        (checks.check_fraction, 1.0, r"^f: a must be in \[0, 1\), got 1.0$"),
        (checks.check_probability, 1.5, r"^f: a must be in \[0, 1\], got 1.5$"),
        (checks.check_probability, math.nan, r"^f: a must be in \[0, 1\], got nan$"),
    ],
)
def test_out_of_range_is_a_value_error_with_the_range(check, value, match):
    with pytest.raises(ValueError, match=match):
        check(value, "a", "f")


def test_the_ranges_include_their_closed_ends():
    assert checks.check_nonnegative(0, "a", "f") == 0.0
    assert checks.check_fraction(0, "a", "f") == 0.0
    assert checks.check_probability(1, "a", "f") == 1.0
    assert checks.check_positive(math.inf, "a", "f") == math.inf
    assert math.isnan(checks.check_real(math.nan, "a", "f"))  # no bounds, nothing to fail


def test_ints():
    assert checks.check_int(np.int64(3), "groups", "f", minimum=1) == 3
    for value in (2.0, True, "2"):
        with pytest.raises(TypeError, match=r"^f: groups must be an int >= 1, got "):
            checks.check_int(value, "groups", "f", minimum=1)
    with pytest.raises(ValueError, match=r"^f: groups must be an int >= 1, got 0$"):
        checks.check_int(0, "groups", "f", minimum=1)


def test_dims_are_normalized_like_torch():
    assert checks.check_dim(-1, 4, "f") == 3
    assert checks.check_dim(-1, 0, "f") == 0  # a 0-D input has one dimension to name
    with pytest.raises(ValueError, match=r"^f: dim must be in \[-2, 1\] for a 2-D input, got 2$"):
        checks.check_dim(2, 2, "f")
    with pytest.raises(TypeError, match="dim must be an int"):
        checks.check_dim(None, 2, "f")


def test_choices_and_size_pairs():
    with pytest.raises(ValueError, match=r"^f: mode must be 'a', 'b' or 'c', got 'd'$"):
        checks.check_choice("d", "mode", "f", ("a", "b", "c"))
    assert checks.check_size_pair((None, 3), "size", "f", default=(7, 8)) == (7, 3)
    assert checks.check_size_pair(np.int64(2), "size", "f", default=(7, 8)) == (2, 2)
    with pytest.raises(ValueError, match="size must be >= 1 in each dimension"):
        checks.check_size_pair((0, 3), "size", "f", default=(7, 8))
    with pytest.raises(TypeError, match="size must be an int or a pair"):
        checks.check_size_pair((1, 2, 3), "size", "f", default=(7, 8))


def test_optimizer_hyperparameters_keep_the_constructors_order():
    assert list(checks.check_adam(1e-3, (0.9, 0.999), 1e-8, 0, False, True, "Adam")) == [
        "lr", "betas", "eps", "weight_decay", "amsgrad", "bias_correction",
    ]  # fmt: skip
    assert list(checks.check_momentum_velocity(0.1, 0.9, False, "MomentumVelocity")) == [
        "lr", "momentum", "nesterov",
    ]  # fmt: skip


def _message(call) -> str:
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return f"{info.type.__name__}: {info.value}"


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("SGD", dict(lr=-0.1)),
        ("SGD", dict(momentum="0.9")),
        ("SGD", dict(nesterov=True)),
        ("MomentumVelocity", dict(momentum=-1.0)),
        ("Adagrad", dict(initial_accumulator_value=-1.0)),
        ("RMSprop", dict(alpha=1.0)),
        ("Adam", dict(betas=(0.9, 1.0))),
        ("AdamW", dict(betas=0.9)),
    ],
)
def test_both_backends_reject_a_bad_hyperparameter_with_the_same_message(name, kwargs):
    numpy_message = _message(lambda: getattr(nd, name)({"w": np.zeros(3)}, **kwargs))
    torch_message = _message(lambda: getattr(td, name)([torch.zeros(3)], **kwargs))
    assert numpy_message == torch_message


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_both_dropouts_reject_a_bad_p_with_the_same_message(p):
    numpy_message = _message(lambda: nd.dropout_forward(np.ones(3), p=p))
    torch_message = _message(lambda: td.dropout(torch.ones(3), p=p))
    assert numpy_message.replace("dropout_forward", "dropout") == torch_message
