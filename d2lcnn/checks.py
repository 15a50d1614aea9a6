"""Rules about plain numbers that both backends share: argument checks and the formulas of a
few hyperparameters.

:mod:`d2lcnn.numpy` and :mod:`d2lcnn.torch` both import from here, so the two reject the same
arguments with the same message and compute the same constants, and neither backend reaches
into the other's private helpers.

What belongs here: anything about a Python number (not an array, not a tensor) that both
backends need:

- checks of scalar arguments: real numbers and their ranges (learning rate, momentum,
  ``betas``, ``eps``, weight decay, probabilities), ints, dimension indices, a choice among
  strings, an int-or-pair size, and each optimizer's set of hyperparameters;
- what an array's or a tensor's shape must be (its number of dimensions, or the shape
  itself), for the backends' array and tensor checks;
- rules between arguments that do not look inside an array or a tensor: a loss's
  ``reduction``, ``ignore_index`` with class-probability targets, the class-index target's
  shape and range, running statistics given in pairs, ``interpolate``'s ``mode`` and
  ``align_corners``;
- BatchNorm's running-average weight (``momentum``, or ``None`` for a cumulative average);
- the numbers a layer is defined by: fan-in and fan-out, the gain of a nonlinearity, the
  Xavier and Kaiming standard deviations, SELU's ``alpha`` and ``scale``.

What does not: checks of arrays (:mod:`d2lcnn.numpy._checks`) or tensors
(:mod:`d2lcnn.torch._checks`), and output-size arithmetic (:mod:`d2lcnn.geometry`). This module
imports only the standard library, never numpy or torch; numpy scalars pass the checks
because numpy registers them as :class:`numbers.Real` and :class:`numbers.Integral`.

Every check takes the argument's ``name`` and the calling function ``fn`` and raises
``TypeError`` for a value of the wrong kind or ``ValueError`` for one out of range, with a
message that names both and shows what came: ``"SGD: lr must be >= 0, got -0.1"``.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Sequence

__all__ = [
    "check_real",
    "check_nonnegative",
    "check_positive",
    "check_fraction",
    "check_probability",
    "check_int",
    "check_groups",
    "check_dim",
    "check_dim_span",
    "check_choice",
    "check_size_pair",
    "check_shape",
    "check_both_or_neither",
    "running_average_weight",
    "REDUCTIONS",
    "check_reduction",
    "check_index_target",
    "check_probability_target",
    "check_class_index",
    "check_no_ignore_index",
    "INTERPOLATE_MODES",
    "check_interpolate_mode",
    "check_sgd",
    "check_momentum_velocity",
    "check_adagrad",
    "check_rmsprop",
    "check_adam",
    "fan_in_fan_out",
    "calculate_gain",
    "xavier_std",
    "kaiming_std",
    "SELU_ALPHA",
    "SELU_SCALE",
]

# A loss's reductions, as torch.nn.functional's.
REDUCTIONS = ("mean", "sum", "none")
# The modes of interpolate, in both backends.
INTERPOLATE_MODES = ("nearest", "bilinear", "bicubic")

# The SELU constants of Klambauer et al. (2017), as in PyTorch.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _show(value) -> str:
    """``type value`` for a message, the value's repr cut short (an array can be huge)."""
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# --------------------------------------------------------------------------- numbers


def check_real(
    value,
    name: str,
    fn: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float, if it is a real number (not a bool) within the bounds.

    Args:
        value: the argument to check.
        name, fn: the argument's and the calling function's names, for the message.
        low, high: bounds, ``None`` for none. A bound also rejects NaN.
        low_open, high_open: exclude the bound itself.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is out of the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {_show(value)}")
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    if not (above and below):  # comparisons with NaN are False: NaN fails any bound
        if high is None:
            expected = f"{'>' if low_open else '>='} {_number(low)}"
        elif low is None:
            expected = f"{'<' if high_open else '<='} {_number(high)}"
        else:
            expected = (
                f"in {'(' if low_open else '['}{_number(low)}, "
                f"{_number(high)}{')' if high_open else ']'}"
            )
        raise ValueError(f"{fn}: {name} must be {expected}, got {value!r}")
    return float(value)


def check_nonnegative(value, name: str, fn: str) -> float:
    """A real number >= 0 (a learning rate, ``eps``, a weight decay, a standard deviation)."""
    return check_real(value, name, fn, low=0)


def check_positive(value, name: str, fn: str) -> float:
    """A real number > 0."""
    return check_real(value, name, fn, low=0, low_open=True)


def check_fraction(value, name: str, fn: str) -> float:
    """A decay rate in ``[0, 1)`` (Adam's ``betas``, RMSprop's ``alpha``)."""
    return check_real(value, name, fn, low=0, high=1, high_open=True)


def check_probability(value, name: str, fn: str) -> float:
    """A probability in ``[0, 1]`` (dropout's ``p``; a running average's weight)."""
    return check_real(value, name, fn, low=0, high=1)


def check_int(value, name: str, fn: str, *, minimum: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool) and at least ``minimum``.

    Raises:
        TypeError: ``value`` is not an integer (a float such as ``2.0`` is not).
        ValueError: ``value < minimum``.
    """
    expected = "an int" if minimum is None else f"an int >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be {expected}, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: {name} must be {expected}, got {value!r}")
    return int(value)


def check_groups(groups, c_in: int, fn: str) -> int:
    """A convolution's ``groups``: an int >= 1 that divides ``C_in``; returned as an int.

    Raises:
        TypeError: not an int.
        ValueError: ``groups < 1``, or ``C_in`` not divisible by it.
    """
    groups = check_int(groups, "groups", fn, minimum=1)
    if c_in % groups != 0:
        raise ValueError(
            f"{fn}: C_in = input.shape[1] = {c_in} must be divisible by groups = {groups}"
        )
    return groups


def check_dim(dim, ndim: int, fn: str, name: str = "dim") -> int:
    """A dimension index of an ``ndim``-D input, negative ones counted from the end,
    returned in ``[0, ndim)``. A 0-D input has one dimension to name, as in torch.

    Raises:
        TypeError: ``dim`` is not an int.
        ValueError: ``dim`` is not in ``[-ndim, ndim - 1]``.
    """
    dim = check_int(dim, name, fn)
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise ValueError(
            f"{fn}: {name} must be in [{-size}, {size - 1}] for a {ndim}-D input, got {dim}"
        )
    return dim % size


def check_dim_span(start_dim, end_dim, ndim: int, fn: str) -> tuple[int, int]:
    """The dimensions ``start_dim..end_dim`` (inclusive, as ``flatten``'s), each normalized
    by :func:`check_dim`; returned as ``(start, end)`` with ``start <= end``.

    Raises:
        TypeError: a non-int dimension.
        ValueError: a dimension out of range, or ``start_dim`` after ``end_dim``.
    """
    start = check_dim(start_dim, ndim, fn, "start_dim")
    end = check_dim(end_dim, ndim, fn, "end_dim")
    if start > end:
        raise ValueError(
            f"{fn}: start_dim must not come after end_dim, got start_dim={start_dim}, "
            f"end_dim={end_dim} for a {ndim}-D input"
        )
    return start, end


def check_choice(value, name: str, fn: str, choices: Sequence[str]) -> str:
    """One of a few strings, e.g. ``approximate`` in ``("none", "tanh")``.

    Raises:
        ValueError: ``value`` is not one of ``choices``.
    """
    if not isinstance(value, str) or value not in choices:
        options = [repr(c) for c in choices]
        expected = options[0] if len(options) == 1 else ", ".join(options[:-1])
        if len(options) > 1:
            expected += f" or {options[-1]}"
        raise ValueError(f"{fn}: {name} must be {expected}, got {value!r}")
    return value


def check_size_pair(value, name: str, fn: str, default: Sequence[int]) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1; a ``None`` entry takes ``default``'s entry
    (``adaptive_avg_pool2d``'s ``output_size``).

    Raises:
        TypeError: ``value`` is not an int or a pair of ints and ``None``.
        ValueError: an entry is below 1.
    """
    items = value if isinstance(value, tuple | list) else (value, value)
    if len(items) != 2:
        raise TypeError(f"{fn}: {name} must be an int or a pair, got {value!r}")
    out = []
    for v, d in zip(items, default, strict=True):
        if v is None:
            out.append(int(d))
        elif isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(
                f"{fn}: {name} must be an int or a pair of ints (or None), got {value!r}"
            )
        elif v < 1:
            raise ValueError(f"{fn}: {name} must be >= 1 in each dimension, got {value!r}")
        else:
            out.append(int(v))
    return out[0], out[1]


def check_shape(
    shape: Sequence[int],
    name: str,
    fn: str,
    *,
    ndim: int | None = None,
    min_ndim: int = 0,
    layout: str = "",
    expected: Sequence[int] | None = None,
    formula: str = "",
) -> None:
    """The shape of an array or tensor argument: what both backends' array and tensor checks
    say about dimensions, in the same words.

    Args:
        shape: the argument's shape.
        name, fn: the argument's and the calling function's names, for the message.
        ndim: the exact number of dimensions, or None.
        min_ndim: the least number of dimensions. Default 0.
        layout: what the dimensions mean, e.g. ``"(N, C, H, W)"``.
        expected: the exact shape, or None; ``formula`` says where it comes from
            (``"(C_out,)"``: "must have shape (C_out,) = (16,)").

    Raises:
        ValueError: the wrong number of dimensions or the wrong shape.
    """
    shape = tuple(shape)
    layout = f" {layout}" if layout else ""
    got = f"got {len(shape)}-D shape {shape}"
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D{layout}, {got}")
    if len(shape) < min_ndim:
        raise ValueError(f"{fn}: {name} must be at least {min_ndim}-D{layout}, {got}")
    if expected is not None and shape != tuple(expected):
        what = f"{formula} = {tuple(expected)}" if formula else f"{tuple(expected)}"
        raise ValueError(f"{fn}: {name} must have shape {what}, got {shape}")


def check_both_or_neither(a, b, names: tuple[str, str], fn: str) -> None:
    """Two arguments that come together (``running_mean`` and ``running_var``): both given or
    both None.

    Raises:
        ValueError: one of them is None and the other is not.
    """
    if (a is None) != (b is None):
        raise ValueError(f"{fn}: {names[0]} and {names[1]} must both be given or both None")


def running_average_weight(momentum, num_batches_tracked, fn: str) -> float:
    """The weight of the new batch in BatchNorm's running statistics: ``momentum``, in
    ``[0, 1]``; or, for ``momentum=None`` (a cumulative average, as
    ``nn.BatchNorm2d(momentum=None)``), ``1 / (num_batches_tracked + 1)``.

    Raises:
        TypeError: a ``momentum`` that is not a real number (or None).
        ValueError: a ``momentum`` outside ``[0, 1]``, or ``momentum=None`` without an int
            ``num_batches_tracked >= 0``.
    """
    if momentum is not None:
        return check_probability(momentum, "momentum", fn)
    tracked = num_batches_tracked
    if isinstance(tracked, bool) or not isinstance(tracked, numbers.Integral):
        raise ValueError(
            f"{fn}: momentum=None (cumulative average) needs num_batches_tracked, the "
            f"number of batches seen before this one, got {tracked!r}"
        )
    if tracked < 0:
        raise ValueError(f"{fn}: num_batches_tracked must be >= 0, got {tracked}")
    return 1.0 / (int(tracked) + 1)


# --------------------------------------------------------------------------- losses, resizing


def check_reduction(reduction, fn: str) -> str:
    """A loss's ``reduction``: ``"mean"``, ``"sum"`` or ``"none"``."""
    return check_choice(reduction, "reduction", fn, REDUCTIONS)


def check_index_target(target, integer: bool, input_shape, fn: str, *, kind: str) -> None:
    """A class-index target: an integer ``kind`` (``"numpy array"``, ``"tensor"``) of shape
    ``(N, d1, ...)`` for ``input`` ``(N, C, d1, ...)``.

    Args:
        target: the target.
        integer: whether it is a ``kind`` with an integer dtype (the backend knows its types).
        input_shape: the input's shape.
        fn: the calling function's name, for the message.

    Raises:
        TypeError: not an integer ``kind``.
        ValueError: another shape.
    """
    if not integer:
        dtype = getattr(target, "dtype", None)
        got = type(target).__name__ if dtype is None else f"{dtype} of shape {tuple(target.shape)}"
        raise TypeError(
            f"{fn}: target must be an integer {kind} of class indices (N, d1, ...), or class "
            f"probabilities with input's shape {tuple(input_shape)} (cross_entropy only), "
            f"got {got}"
        )
    expected = (input_shape[0], *input_shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{fn}: target must have shape (N, d1, ...) = {expected} for input of shape "
            f"{tuple(input_shape)}, got {tuple(target.shape)}"
        )


def check_probability_target(target, floating: bool, input_shape, fn: str) -> None:
    """A target of ``input``'s shape, which holds class probabilities: floating point
    (``floating`` says whether it is; the backend knows its dtypes).

    Raises:
        TypeError: not floating point.
    """
    if not floating:
        raise TypeError(
            f"{fn}: a target of input's shape {tuple(input_shape)} holds class probabilities "
            f"and must be floating point, got dtype {target.dtype} (class indices have shape "
            f"(N, d1, ...) = {(input_shape[0], *input_shape[2:])})"
        )


def check_class_index(value: int, n_classes: int, ignore_index, fn: str) -> None:
    """One class-index target: in ``[0, C)``, or ``ignore_index``. (The backends search
    their targets for the first one that is not, and hand it here.)

    Raises:
        ValueError: anything else.
    """
    if value != ignore_index and not 0 <= value < n_classes:
        raise ValueError(
            f"{fn}: target values must be class indices in [0, {n_classes - 1}] (or "
            f"ignore_index={ignore_index}), got {value}"
        )


def check_no_ignore_index(ignore_index, fn: str) -> None:
    """``ignore_index`` with class-probability targets, which have no class index to ignore:
    it must stay negative (a negative one can never match, so PyTorch lets it pass).

    Raises:
        ValueError: ``ignore_index >= 0``.
    """
    if ignore_index >= 0:
        raise ValueError(
            f"{fn}: ignore_index applies to class-index targets only, got "
            f"ignore_index={ignore_index} with class probabilities"
        )


def check_interpolate_mode(mode, align_corners, fn: str) -> str:
    """``interpolate``'s ``mode``, one of :data:`INTERPOLATE_MODES`, and ``align_corners``,
    which only the modes that blend pixels take (it must be None for ``"nearest"``).

    Raises:
        ValueError: an unknown ``mode``, or ``align_corners`` set with ``"nearest"``.
    """
    check_choice(mode, "mode", fn, INTERPOLATE_MODES)
    if mode == "nearest" and align_corners is not None:
        raise ValueError(
            f"{fn}: align_corners can only be set with mode='bilinear' or 'bicubic', got "
            f"align_corners={align_corners!r} with mode='nearest'"
        )
    return mode


# --------------------------------------------------------------------------- optimizers
# Both backends' optimizers build their hyperparameters here, in their constructor's
# order (a state_dict lists them in this order).


def check_sgd(lr, momentum, dampening, weight_decay, nesterov, fn: str) -> dict:
    """SGD's hyperparameters; ``nesterov`` needs ``momentum > 0`` and ``dampening == 0``."""
    hyper = dict(
        lr=check_nonnegative(lr, "lr", fn),
        momentum=check_nonnegative(momentum, "momentum", fn),
        dampening=check_nonnegative(dampening, "dampening", fn),
        weight_decay=check_nonnegative(weight_decay, "weight_decay", fn),
        nesterov=bool(nesterov),
    )
    if nesterov and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
        raise ValueError(
            f"{fn}: nesterov=True needs momentum > 0 and dampening = 0, got "
            f"momentum={momentum!r}, dampening={dampening!r}"
        )
    return hyper


def check_momentum_velocity(lr, momentum, nesterov, fn: str) -> dict:
    """The velocity form's hyperparameters: SGD's without dampening and weight decay."""
    hyper = check_sgd(lr, momentum, 0.0, 0.0, nesterov, fn)
    return dict(lr=hyper["lr"], momentum=hyper["momentum"], nesterov=hyper["nesterov"])


def check_adagrad(lr, lr_decay, weight_decay, initial_accumulator_value, eps, fn: str) -> dict:
    """Adagrad's hyperparameters, all >= 0."""
    return dict(
        lr=check_nonnegative(lr, "lr", fn),
        lr_decay=check_nonnegative(lr_decay, "lr_decay", fn),
        weight_decay=check_nonnegative(weight_decay, "weight_decay", fn),
        initial_accumulator_value=check_nonnegative(
            initial_accumulator_value, "initial_accumulator_value", fn
        ),
        eps=check_nonnegative(eps, "eps", fn),
    )


def check_rmsprop(lr, alpha, eps, weight_decay, momentum, centered, fn: str) -> dict:
    """RMSprop's hyperparameters; ``alpha`` in ``[0, 1)``, the others >= 0."""
    return dict(
        lr=check_nonnegative(lr, "lr", fn),
        alpha=check_fraction(alpha, "alpha", fn),
        eps=check_nonnegative(eps, "eps", fn),
        weight_decay=check_nonnegative(weight_decay, "weight_decay", fn),
        momentum=check_nonnegative(momentum, "momentum", fn),
        centered=bool(centered),
    )


def check_adam(lr, betas, eps, weight_decay, amsgrad, bias_correction, fn: str) -> dict:
    """Adam's (and AdamW's) hyperparameters; ``betas`` a pair in ``[0, 1)``."""
    lr = check_nonnegative(lr, "lr", fn)
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"{fn}: betas must be a pair (beta1, beta2), got {betas!r}")
    return dict(
        lr=lr,
        betas=(check_fraction(betas[0], "betas[0]", fn), check_fraction(betas[1], "betas[1]", fn)),
        eps=check_nonnegative(eps, "eps", fn),
        weight_decay=check_nonnegative(weight_decay, "weight_decay", fn),
        amsgrad=bool(amsgrad),
        bias_correction=bool(bias_correction),
    )


# --------------------------------------------------------------------------- initialization

_LINEAR_GAIN = (
    "linear", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid",
)  # fmt: skip


def fan_in_fan_out(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight, as ``torch.nn.init._calculate_fan_in_and_fan_out``.

    Args:
        shape: ``(out_features, in_features)`` or ``(C_out, C_in / groups, *kernel_size)``.

    Returns:
        ``(shape[1] * R, shape[0] * R)`` with ``R = prod(shape[2:])`` the receptive-field size.

    Raises:
        ValueError: for fewer than 2 dimensions (fan in and out are undefined).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan_in_fan_out: shape must have at least 2 dimensions (out, in, ...), got {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    ====================  =============================
    linear, conv*, sigmoid  1
    tanh                  5/3
    relu                  sqrt(2)
    leaky_relu            sqrt(2 / (1 + slope^2)), slope = ``param`` (default 0.01)
    selu                  3/4
    ====================  =============================

    Raises:
        ValueError: for an unknown ``nonlinearity`` or a non-numeric ``param`` (a
            ``ValueError``, as in torch).
    """
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(
                f"calculate_gain: param must be a number for leaky_relu, got {param!r}"
            )
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
        f"{list(_LINEAR_GAIN) + ['tanh', 'relu', 'leaky_relu', 'selu']}"
    )


def xavier_std(shape: Sequence[int], gain: float, fn: str) -> float:
    """Xavier/Glorot's ``std = gain * sqrt(2 / (fan_in + fan_out))``, ``gain >= 0``."""
    fan_in, fan_out = fan_in_fan_out(shape)
    return check_nonnegative(gain, "gain", fn) * math.sqrt(2.0 / (fan_in + fan_out))


def kaiming_std(shape: Sequence[int], a: float, mode: str, nonlinearity: str, fn: str) -> float:
    """Kaiming/He's ``std = calculate_gain(nonlinearity, a) / sqrt(fan)``, with ``fan`` the
    fan-in or fan-out as ``mode`` says.

    Raises:
        ValueError: a bad ``mode`` or ``nonlinearity``, or a zero fan.
    """
    fan_in, fan_out = fan_in_fan_out(shape)
    fan = fan_in if check_choice(mode, "mode", fn, ("fan_in", "fan_out")) == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"{fn}: shape {tuple(shape)} has a zero {mode}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)
