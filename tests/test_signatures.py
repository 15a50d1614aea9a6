"""One API in two backends: every NumPy forward, its torch twin and the PyTorch function it
mirrors take the same parameters, with the same names, in the same order, with the same
defaults.

Code then moves from ``d2lcnn.numpy`` (``nd``) to ``d2lcnn.torch`` (``td``) to
``torch.nn.functional`` (``F``) by changing the prefix. The only freedom the rule allows is
the one the package documents: in ``nd`` the hyperparameters after the tensors are
keyword-only (``nd.max_pool2d_forward(x, kernel_size=2)``), because a NumPy forward also
returns a cache and a positional slip there is silent. Every other difference is listed in
:data:`DIFFERENCES`, with its reason; the test fails on any difference not listed there, and
on a listed difference that no longer exists (so the table stays true).
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch
import torch.nn.functional as F
import torch.nn.init
import torch.nn.utils

from d2lcnn import numpy as nd
from d2lcnn import torch as td

_ALL = "*"

# Each nd forward's torch twin and the PyTorch function they both mirror. ``None``: PyTorch
# has no such function (the pair is still compared with each other).
TWINS = {
    "conv2d": F.conv2d,
    "conv2d_naive": F.conv2d,
    "conv_transpose2d": F.conv_transpose2d,
    "conv_transpose2d_naive": F.conv_transpose2d,
    "max_pool2d": F.max_pool2d,
    "max_unpool2d": F.max_unpool2d,
    "avg_pool2d": F.avg_pool2d,
    "adaptive_avg_pool2d": F.adaptive_avg_pool2d,
    "batch_norm": F.batch_norm,
    "layer_norm": F.layer_norm,
    "group_norm": F.group_norm,
    "instance_norm": F.instance_norm,
    "rms_norm": F.rms_norm,
    "local_response_norm": F.local_response_norm,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "prelu": F.prelu,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "silu": F.silu,
    "swish": F.silu,
    "mish": F.mish,
    "softplus": F.softplus,
    "maxout": None,
    "softmax": F.softmax,
    "log_softmax": F.log_softmax,
    "linear": F.linear,
    "flatten": torch.flatten,
    "cross_entropy": F.cross_entropy,
    "nll_loss": F.nll_loss,
    "mse_loss": F.mse_loss,
    "dropout": F.dropout,
    "vanilla_dropout": None,
    "dropout2d": F.dropout2d,
    "interpolate": F.interpolate,
}

# td functions that are not layers: compared with PyTorch only (the nd versions create
# arrays from a NumPy generator instead of filling a tensor; see test_numpy_init_...).
TORCH_ONLY_TWINS = {
    "conv2d_manual": F.conv2d,
    "zeros": torch.nn.init.zeros_,
    "normal": torch.nn.init.normal_,
    "uniform": torch.nn.init.uniform_,
    "xavier_uniform": torch.nn.init.xavier_uniform_,
    "xavier_normal": torch.nn.init.xavier_normal_,
    "kaiming_uniform": torch.nn.init.kaiming_uniform_,
    "kaiming_normal": torch.nn.init.kaiming_normal_,
    "orthogonal": torch.nn.init.orthogonal_,
    "calculate_gain": torch.nn.init.calculate_gain,
    "clip_grad_norm": torch.nn.utils.clip_grad_norm_,
    "clip_grad_value": torch.nn.utils.clip_grad_value_,
    "fuse_conv_bn": torch.nn.utils.fusion.fuse_conv_bn_weights,
}

_INPLACE = "an out-of-place library: the backward needs the input, and teaching code that "
_INPLACE += "overwrites its argument hides bugs; call the result's in-place op yourself"
_DEPRECATED = "deprecated in PyTorch since 0.4 (use reduction=)"
_GENERATOR = (
    "every random draw in the book is reproducible: pass a generator (a numpy.random."
    "Generator in nd, a torch.Generator in td)"
)

# (op, backend, parameter, kind, reason). backend: "nd", "td" or "*" (both); kind:
# "omitted" (PyTorch has it, we do not), "extra" (we have it, PyTorch does not),
# "default" (same name and place, another default; PyTorch's default is ignored),
# "renamed:<ours>" (the same parameter under another name). op "*": every op.
DIFFERENCES = [
    (_ALL, _ALL, "inplace", "omitted", _INPLACE),
    ("cross_entropy", _ALL, "size_average", "omitted", _DEPRECATED),
    ("cross_entropy", _ALL, "reduce", "omitted", _DEPRECATED),
    ("nll_loss", _ALL, "size_average", "omitted", _DEPRECATED),
    ("nll_loss", _ALL, "reduce", "omitted", _DEPRECATED),
    ("mse_loss", _ALL, "size_average", "omitted", _DEPRECATED),
    ("mse_loss", _ALL, "reduce", "omitted", _DEPRECATED),
    ("mse_loss", _ALL, "weight", "omitted",
     "a per-element weight (added to F.mse_loss in PyTorch 2.7) is input-shaped, unlike "
     "every other loss weight here; weight the target or the residual instead"),
    ("softmax", _ALL, "dim", "default",
     "required: F's implicit dim (None) is deprecated because it guesses"),
    ("softmax", _ALL, "_stacklevel", "omitted", "F's internal warning plumbing"),
    ("softmax", _ALL, "dtype", "omitted", "cast the input first: input.astype / input.to"),
    ("log_softmax", _ALL, "dim", "default",
     "required: F's implicit dim (None) is deprecated because it guesses"),
    ("log_softmax", _ALL, "_stacklevel", "omitted", "F's internal warning plumbing"),
    ("log_softmax", _ALL, "dtype", "omitted", "cast the input first: input.astype / input.to"),
    ("flatten", _ALL, "start_dim", "default",
     "1, as torch.nn.Flatten: the batch dimension is kept (torch.flatten's default is 0)"),
    ("interpolate", _ALL, "antialias", "omitted",
     "anti-aliased downsampling is a resampling filter of its own, not taught here; "
     "blur first (avg_pool2d) as the chapter shows"),
    ("batch_norm", _ALL, "num_batches_tracked", "extra",
     "nn.BatchNorm's counter, needed for momentum=None (a cumulative average), which F "
     "leaves to the module"),
    ("dropout", _ALL, "generator", "extra", _GENERATOR),
    ("dropout", _ALL, "mask", "extra",
     "a given keep-mask makes the forward deterministic, for tests and homework"),
    ("dropout2d", _ALL, "generator", "extra", _GENERATOR),
    ("dropout2d", _ALL, "mask", "extra",
     "a given keep-mask makes the forward deterministic, for tests and homework"),
    # torch-only twins
    ("normal", "td", "generator", "default", _GENERATOR),
    ("uniform", "td", "generator", "default", _GENERATOR),
    ("xavier_uniform", "td", "generator", "default", _GENERATOR),
    ("xavier_normal", "td", "generator", "default", _GENERATOR),
    ("kaiming_uniform", "td", "generator", "default", _GENERATOR),
    ("kaiming_normal", "td", "generator", "default", _GENERATOR),
    ("orthogonal", "td", "generator", "default", _GENERATOR),
    ("clip_grad_norm", "td", "foreach", "omitted",
     "a CUDA kernel-fusion switch; the result is the same"),
    ("clip_grad_value", "td", "foreach", "omitted",
     "a CUDA kernel-fusion switch; the result is the same"),
    ("fuse_conv_bn", "td", "transpose", "omitted",
     "for transposed convolutions, which the book does not fuse"),
]

# nd functions compared with the parameters of a PyTorch function after dropping the
# first: NumPy has no tensor to fill in place, so nd.init takes (generator, shape) and
# returns a new array; its hyperparameters match torch.nn.init's.
ND_INIT = ("normal", "uniform", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "orthogonal")


# --------------------------------------------------------------------------- reading


_DOC_SIGNATURE = re.compile(r"^\s*(\w+)\((.*?)\)\s*(?:->.*)?$", re.M)


def _parse_default(text: str):
    text = text.strip()
    try:
        return eval(text, {})  # noqa: S307 -- literals from PyTorch's own docstrings
    except Exception:  # e.g. an unquoted name
        return text


def parameters(fn) -> list[tuple[str, object]]:
    """``[(name, default or inspect._empty), ...]`` of ``fn``; PyTorch built-ins (no
    ``inspect`` signature, or ``*args, **kwargs`` wrappers) are read from the signature
    line that opens their docstring."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except ValueError:
        params = None
    wrapper = [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]
    if params is None or [p.kind for p in params] == wrapper:
        match = _DOC_SIGNATURE.search(fn.__doc__ or "")
        assert match, f"cannot read the signature of {fn}"
        out = []
        for part in match.group(2).split(","):
            name, _, default = part.partition("=")
            if name.strip() in ("*", ""):
                continue
            out.append((name.strip(), _parse_default(default) if default else inspect._empty))
        return out
    return [(p.name, p.default) for p in params if p.kind not in (p.VAR_POSITIONAL,
                                                                   p.VAR_KEYWORD)]


def nd_forward(op: str):
    name = op.replace("_naive", "_forward_naive") if op.endswith("_naive") else f"{op}_forward"
    return getattr(nd, name)


def td_function(op: str):
    return getattr(td, op.removesuffix("_naive"))


# --------------------------------------------------------------------------- comparing


def _rules(op: str, backend: str) -> list[tuple]:
    return [d for d in DIFFERENCES if d[0] in (op, _ALL) and d[1] in (backend, _ALL)]


def _apply(op, backend, ours, theirs, used):
    """Both lists with the listed differences taken out; records the rules that applied."""
    ours, theirs = dict(ours), dict(theirs)
    for rule in _rules(op, backend):
        _, _, param, kind, _ = rule
        if kind == "omitted" and param in theirs and param not in ours:
            del theirs[param]
        elif kind == "extra" and param in ours and param not in theirs:
            del ours[param]
        elif kind == "default" and param in ours and param in theirs:
            if ours[param] == theirs[param]:
                continue
            theirs[param] = ours[param]
        elif kind.startswith("renamed:") and kind[8:] in ours and param in theirs:
            theirs = {kind[8:] if k == param else k: v for k, v in theirs.items()}
        else:
            continue
        used.add(rule)
    return list(ours.items()), list(theirs.items())


def _differences(ours, theirs) -> list[str]:
    names, ref = [n for n, _ in ours], [n for n, _ in theirs]
    if names != ref:
        return [f"names/order {names} != {ref}"]
    return [
        f"{n}: default {d!r} != {r!r}"
        for (n, d), (_, r) in zip(ours, theirs, strict=True)
        if not (d is r or (d == r and type(d) is type(r)) or _same_number(d, r))
    ]


def _same_number(a, b) -> bool:
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool)
            and not isinstance(b, bool) and a == b)


USED: set[tuple] = set()


@pytest.mark.parametrize("op", sorted(TWINS))
def test_nd_td_and_pytorch_take_the_same_parameters(op):
    fn_nd, fn_td, ref = nd_forward(op), td_function(op), TWINS[op]
    p_nd, p_td = parameters(fn_nd), parameters(fn_td)
    problems = []
    if ref is not None:
        p_ref = parameters(ref)
        for backend, ours in (("nd", p_nd), ("td", p_td)):
            a, b = _apply(op, backend, ours, p_ref, USED)
            problems += [f"{backend}.{op} vs {ref.__name__}: {d}" for d in _differences(a, b)]
    else:
        problems += [f"nd vs td: {d}" for d in _differences(p_nd, p_td)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("op", sorted(TWINS))
def test_nd_hyperparameters_are_keyword_only_and_tensors_positional(op):
    """The one documented freedom: after the leading array parameters, nd is keyword-only."""
    kinds = [(p.name, p.kind) for p in inspect.signature(nd_forward(op)).parameters.values()]
    seen_keyword = False
    for name, kind in kinds:
        if kind is inspect.Parameter.KEYWORD_ONLY:
            seen_keyword = True
        else:
            assert not seen_keyword, f"nd {op}: {name} after a keyword-only parameter"
    td_kinds = {p.kind for p in inspect.signature(td_function(op)).parameters.values()}
    assert inspect.Parameter.KEYWORD_ONLY not in td_kinds or op in ("batch_norm",), (
        f"td.{op} has keyword-only parameters; F takes them positionally"
    )


@pytest.mark.parametrize("name", sorted(TORCH_ONLY_TWINS))
def test_torch_only_functions_take_pytorchs_parameters(name):
    ref = TORCH_ONLY_TWINS[name]
    a, b = _apply(name, "td", parameters(getattr(td, name)), parameters(ref), USED)
    problems = _differences(a, b)
    assert not problems, f"td.{name} vs {ref.__module__}.{ref.__name__}: " + "; ".join(problems)


@pytest.mark.parametrize("name", ND_INIT)
def test_numpy_init_takes_torch_inits_hyperparameters(name):
    ours = [(n, d) for n, d in parameters(getattr(nd, name)) if n not in ("generator",
                                                                             "shape", "dtype")]
    theirs = [(n, d) for n, d in parameters(TORCH_ONLY_TWINS[name]) if n not in ("tensor",
                                                                                 "generator")]
    assert parameters(getattr(nd, name))[:2] == [("generator", inspect._empty),
                                                 ("shape", inspect._empty)]
    assert not _differences(ours, theirs), _differences(ours, theirs)


def test_every_listed_difference_is_still_needed():
    """Runs last in this module: a listed difference that no comparison used is stale."""
    for op in TWINS:
        if TWINS[op] is not None:
            for backend in ("nd", "td"):
                fn = nd_forward(op) if backend == "nd" else td_function(op)
                _apply(op, backend, parameters(fn), parameters(TWINS[op]), USED)
    for name, ref in TORCH_ONLY_TWINS.items():
        _apply(name, "td", parameters(getattr(td, name)), parameters(ref), USED)
    stale = [d[:4] for d in DIFFERENCES if d not in USED]
    assert not stale, f"listed differences that no longer exist: {stale}"


def test_every_nd_forward_and_td_function_is_compared():
    forwards = {n.removesuffix("_forward") for n in nd.__all__ if n.endswith("_forward")}
    naive = {n.replace("_forward_naive", "_naive") for n in nd.__all__ if n.endswith("_naive")}
    assert forwards | naive <= set(TWINS), sorted((forwards | naive) - set(TWINS))
    layers = {n for n in td.__all__ if callable(getattr(td, n)) and n[0].islower()}
    not_compared = layers - set(TWINS) - set(TORCH_ONLY_TWINS)
    assert not_compared <= TD_NOT_COMPARED.keys(), sorted(not_compared - TD_NOT_COMPARED.keys())


TD_NOT_COMPARED = {
    "device": "chooses a torch.device; PyTorch has no such helper",
    "fan_in_fan_out": "PyTorch's equivalent is private (init._calculate_fan_in_and_fan_out)",
    "as_torch_scheduler": "adapts a d2lcnn.schedules function to a LambdaLR",
    "conv2d_output_shape": "geometry, shared by both backends (d2lcnn.geometry)",
    "pool2d_output_shape": "geometry, shared by both backends (d2lcnn.geometry)",
    "conv_transpose2d_output_shape": "geometry, shared by both backends (d2lcnn.geometry)",
    "interpolate_output_shape": "geometry, shared by both backends (d2lcnn.geometry)",
    "receptive_field": "geometry, shared by both backends (d2lcnn.geometry)",
    "max_unpool2d_output_shape": "geometry, shared by both backends (d2lcnn.geometry)",
    "conv2d_padding": "geometry, shared by both backends (d2lcnn.geometry)",
    "pair": "geometry, shared by both backends (d2lcnn.geometry)",
}
