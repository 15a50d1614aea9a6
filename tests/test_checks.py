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
from d2lcnn.torch._checks import check_images, check_tensor


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


def test_shapes():
    checks.check_shape((2, 3), "x", "f", ndim=2, expected=(2, 3))
    match = r"^f: x must be 4-D \(N, C, H, W\), got 2-D shape \(2, 3\)$"
    with pytest.raises(ValueError, match=match):
        checks.check_shape((2, 3), "x", "f", ndim=4, layout="(N, C, H, W)")
    with pytest.raises(ValueError, match=r"^f: x must be at least 3-D, got 2-D shape \(2, 3\)$"):
        checks.check_shape((2, 3), "x", "f", min_ndim=3)
    with pytest.raises(ValueError, match=r"^f: x must have shape \(C,\) = \(4,\), got \(3,\)$"):
        checks.check_shape((3,), "x", "f", expected=(4,), formula="(C,)")


def test_arguments_that_come_in_pairs():
    checks.check_both_or_neither(None, None, ("a", "b"), "f")
    checks.check_both_or_neither(1, 2, ("a", "b"), "f")
    with pytest.raises(ValueError, match=r"^f: a and b must both be given or both None$"):
        checks.check_both_or_neither(None, 2, ("a", "b"), "f")


def test_loss_arguments():
    assert checks.check_reduction("sum", "f") == "sum"
    match = r"^f: reduction must be 'mean', 'sum' or 'none', got 'avg'$"
    with pytest.raises(ValueError, match=match):
        checks.check_reduction("avg", "f")
    checks.check_no_ignore_index(-100, "f")
    with pytest.raises(ValueError, match=r"^f: ignore_index applies to class-index targets only"):
        checks.check_no_ignore_index(0, "f")
    checks.check_class_index(-100, 3, -100, "f")
    with pytest.raises(ValueError, match=r"^f: target values must be class indices in \[0, 2\] "):
        checks.check_class_index(3, 3, -100, "f")


def test_interpolate_modes():
    assert checks.check_interpolate_mode("bicubic", True, "f") == "bicubic"
    with pytest.raises(ValueError, match=r"^f: mode must be 'nearest', 'bilinear' or 'bicubic'"):
        checks.check_interpolate_mode("area", None, "f")
    with pytest.raises(ValueError, match=r"^f: align_corners can only be set with mode="):
        checks.check_interpolate_mode("nearest", False, "f")


Z = np.zeros((2, 3))


@pytest.mark.parametrize(
    "target, kwargs",
    [
        (np.array([0, 1]), dict(reduction="avg")),
        (np.array([0, 3]), {}),
        (np.array([0, 1, 2]), {}),
        (np.array([0.0, 1.0]), {}),
        (np.full((2, 3), 1 / 3), dict(ignore_index=0)),
        (np.full((2, 3), 1), {}),
        (np.array([0, 1]), dict(label_smoothing=1.5)),
        (np.array([0, 1]), dict(weight=np.ones(2))),
    ],
)
def test_both_cross_entropies_reject_a_bad_argument_with_the_same_message(target, kwargs):
    numpy_message = _message(lambda: nd.cross_entropy_forward(Z, target, **kwargs))
    t_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    torch_message = _message(
        lambda: td.cross_entropy(torch.tensor(Z), torch.tensor(target), **t_kwargs)
    )
    # Only the names differ: the function's, the container's and the dtype's.
    numpy_message = numpy_message.replace("cross_entropy_forward", "cross_entropy")
    numpy_message = numpy_message.replace("numpy array", "tensor")
    assert numpy_message == torch_message.replace("torch.", "")


@pytest.mark.parametrize("kwargs", [dict(mode="area"), dict(mode="nearest", align_corners=True)])
def test_both_interpolates_reject_a_bad_mode_with_the_same_message(kwargs):
    x = np.zeros((1, 1, 2, 2))
    numpy_message = _message(lambda: nd.interpolate_forward(x, size=4, **kwargs))
    torch_message = _message(lambda: td.interpolate(torch.tensor(x), size=4, **kwargs))
    assert numpy_message.replace("interpolate_forward", "interpolate") == torch_message


def test_tensor_checks_say_what_came():
    assert check_tensor(None, "weight", "f", optional=True, shape=(3,)) is None
    with pytest.raises(TypeError, match=r"^f: weight must be a torch.Tensor or None, got list$"):
        check_tensor([1.0], "weight", "f", optional=True)
    match = r"^f: weight must have shape \(C,\) = \(4,\), got \(3,\)$"
    with pytest.raises(ValueError, match=match):
        check_tensor(torch.ones(3), "weight", "f", shape=(4,), shape_formula="(C,)")
    assert check_images(torch.zeros(3, 4, 4), "input", "f").dim() == 3
    match = r"^f: input must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got 2-D shape \(4, 4\)$"
    with pytest.raises(ValueError, match=match):
        check_images(torch.zeros(4, 4), "input", "f")
