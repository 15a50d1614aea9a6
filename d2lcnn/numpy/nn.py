"""Layer objects over the functional NumPy ops, and a ``Sequential`` container to train.

Each functional op is ``name_forward(input, ...) -> (out, cache)`` and
``name_backward(dout, cache) -> grads``. A layer here is the thin stateful wrapper that a
training loop needs on top: it owns its parameters (``layer.params``), keeps the cache of
its last forward pass, and after ``backward`` holds the parameter gradients
(``layer.grads``)::

    model = Sequential(Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(6 * 14 * 14, 10, rng=rng))
    opt = SGD(model.parameters(), lr=0.02, momentum=0.9)
    logits = model.forward(x, training=True)             # (N, 10)
    loss, cache = cross_entropy_forward(logits, y)
    model.backward(cross_entropy_backward(1.0, cache))   # fills model.gradients()
    opt.step(model.gradients())                          # updates the arrays in place

Conventions, as in torch: parameter and buffer names (``"0.weight"``, ``"1.running_mean"``,
nested ``"0.1.bias"``) match ``torch.nn.Sequential.state_dict()`` for the same layers, so
``model.load_state_dict(torch_model.state_dict())`` copies torch's weights in; the default
initialization is torch's (see :class:`Conv2d`). Unlike torch:

- there is no global train/eval mode: ``forward`` takes ``training`` explicitly;
- ``backward`` *overwrites* ``grads`` (nothing to zero between steps);
- layers are created in ``dtype`` (float32 by default, torch's default) and stay in it.
"""

from __future__ import annotations

import math

import numpy as np

from d2lcnn.numpy.activations import (
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from d2lcnn.numpy.conv import conv2d_backward, conv2d_forward
from d2lcnn.numpy.dropout import dropout_backward, dropout_forward
from d2lcnn.numpy.init import kaiming_uniform, uniform
from d2lcnn.numpy.linear import flatten_backward, flatten_forward, linear_backward, linear_forward
from d2lcnn.numpy.losses import cross_entropy_backward, cross_entropy_forward
from d2lcnn.numpy.norm import batch_norm_backward, batch_norm_forward
from d2lcnn.numpy.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ = [
    "Module",
    "Sequential",
    "Conv2d",
    "Linear",
    "Flatten",
    "MaxPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "GELU",
    "train_epoch",
    "evaluate",
]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class Module:
    """Base class: parameters, buffers, the last forward's cache, and naming.

    Subclasses implement :meth:`_forward` (returning ``(out, cache)``) and :meth:`_backward`
    (returning ``dx`` and writing ``self.grads``); :meth:`forward`/:meth:`backward` add the
    bookkeeping and error messages.

    Attributes:
        params: ``{name: array}`` of this layer's own parameters (``"weight"``, ``"bias"``).
        grads: ``{name: array}``, the gradients from the last :meth:`backward`.
        buffers: ``{name: array}`` of state that is saved but not trained (BatchNorm's
            running statistics).
    """

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._cache = None

    # ----------------------------------------------------------------- forward / backward

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """Apply the layer; keep what :meth:`backward` needs.

        Args:
            x: the input (see each layer's Shape).
            training: batch statistics and dropout (True) or running statistics and the
                identity (False). Keyword-only and required: there is no global mode.
        """
        if not isinstance(training, bool | np.bool_):
            raise TypeError(f"{self!r}.forward: training must be a bool, got {training!r}")
        out, self._cache = self._forward(x, bool(training))
        return out

    __call__ = forward

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Gradient with respect to the last forward's input; parameter gradients go to
        :attr:`grads` (overwritten, not accumulated)."""
        if self._cache is None:
            raise RuntimeError(f"{self!r}.backward called before forward: there is no cache")
        return self._backward(dout, self._cache)

    # Leaf layers override _forward/_backward; containers (Sequential) override forward and
    # backward themselves. A subclass that does neither fails here with a clear message.
    def _forward(self, x, training):
        raise TypeError(f"{type(self).__name__} defines neither _forward nor forward")

    def _backward(self, dout, cache):
        raise TypeError(f"{type(self).__name__} defines neither _backward nor backward")

    # ----------------------------------------------------------------- names and state

    def children(self) -> list[tuple[str, Module]]:
        """``(name, layer)`` pairs of the layers inside this one (none for a plain layer)."""
        return []

    def _named(self, attr: str, prefix: str = "") -> dict[str, np.ndarray]:
        out = {prefix + k: v for k, v in getattr(self, attr).items()}
        for name, child in self.children():
            out.update(child._named(attr, f"{prefix}{name}."))
        return out

    def parameters(self) -> dict[str, np.ndarray]:
        """Every parameter, by its torch name (``"0.weight"``): the arrays themselves, so an
        optimizer given this dict updates the model in place."""
        return self._named("params")

    def gradients(self) -> dict[str, np.ndarray]:
        """Every parameter gradient from the last backward pass, named as
        :meth:`parameters`."""
        return self._named("grads")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, named and ordered as torch's
        ``state_dict()`` (parameters of a layer, then its buffers)."""
        out = {}
        for prefix, layer in self._layers(""):
            for k, v in (*layer.params.items(), *layer.buffers.items()):
                out[prefix + k] = v.copy()
        return out

    def load_state_dict(self, state_dict) -> None:
        """Copy values into the existing arrays, in place (so an optimizer holding them
        stays valid), cast to each array's dtype.

        Args:
            state_dict: ``{name: array-like}``, e.g. from :meth:`state_dict` or torch's
                ``module.state_dict()`` (CPU tensors convert with ``np.asarray``).

        Raises:
            KeyError: missing or unexpected names (all of them listed).
            ValueError: a value whose shape differs from the array it replaces.
        """
        targets = {}
        for prefix, layer in self._layers(""):
            for k, v in (*layer.params.items(), *layer.buffers.items()):
                targets[prefix + k] = v
        missing = sorted(set(targets) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(targets))
        if missing or unexpected:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        for name, target in targets.items():
            value = np.asarray(state_dict[name])
            if value.shape != target.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {name!r} must have shape "
                    f"{target.shape}, got {value.shape}"
                )
            target[...] = value

    def _layers(self, prefix: str):
        yield prefix, self
        for name, child in self.children():
            yield from child._layers(f"{prefix}{name}.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._extra_repr()})"

    def _extra_repr(self) -> str:
        return ""

    def _bad_input(self, expected: str, x) -> ValueError:
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        return ValueError(f"{self!r}: expected input of shape {expected}, got {got}")


# --------------------------------------------------------------------------- container


class Sequential(Module):
    """Layers applied in order; the children are named ``"0"``, ``"1"``, ... as in torch.

    Args:
        *layers: :class:`Module` instances (a ``Sequential`` may nest another).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> net = Sequential(Linear(4, 3, rng=rng), ReLU(), Linear(3, 2, rng=rng))
        >>> list(net.parameters())
        ['0.weight', '0.bias', '2.weight', '2.bias']
        >>> net.forward(np.ones((5, 4), np.float32), training=False).shape
        (5, 2)
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} must be a Module, got {layer!r}")
        self.layers = list(layers)

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x, training=training)
            except (ValueError, TypeError) as e:  # say which layer, keep the type
                raise type(e)(f"Sequential layer {i}: {e}") from e
        self._cache = True
        return x

    __call__ = forward

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("Sequential.backward called before forward")
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


# --------------------------------------------------------------------------- layers with weights


class Conv2d(Module):
    """2-D convolution layer over :func:`~d2lcnn.numpy.conv.conv2d_forward`, as
    ``torch.nn.Conv2d``.

    Initialization is torch's default: weights ``kaiming_uniform(a=sqrt(5))``, i.e.
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and the bias ``U(-1/sqrt(fan_in),
    1/sqrt(fan_in))``, with ``fan_in = in_channels / groups * kH * kW``.

    Args:
        in_channels, out_channels: ``C_in`` and ``C_out``.
        kernel_size: ``k`` or ``(kH, kW)``.
        stride, padding, dilation, groups: as :func:`conv2d_forward`. Defaults 1, 0, 1, 1.
        bias: learn a bias. Default True.
        rng: the generator for the initial weights (required: no hidden seeding).
        dtype: parameter dtype, and the input dtype expected. Default float32.

    Shape:
        ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``, with
        ``H_out = floor((H + 2*padding - dilation*(kH - 1) - 1) / stride) + 1``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        *,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        rng: np.random.Generator,
        dtype=np.float32,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"be divisible by groups ({groups})"
            )
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.hyper = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        shape = (out_channels, in_channels // groups, kh, kw)
        self.params["weight"] = kaiming_uniform(rng, shape, a=math.sqrt(5), dtype=dtype)
        if bias:
            bound = 1 / math.sqrt(shape[1] * kh * kw)
            self.params["bias"] = uniform(rng, (out_channels,), a=-bound, b=bound, dtype=dtype)

    def _extra_repr(self):
        h = self.hyper
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={h['stride']}, padding={h['padding']}"
        )

    def _forward(self, x, training):
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != self.in_channels:
            raise self._bad_input(f"(N, {self.in_channels}, H, W)", x)
        return conv2d_forward(x, self.params["weight"], self.params.get("bias"), **self.hyper)

    def _backward(self, dout, cache):
        dx, dw, db = conv2d_backward(dout, cache)
        self.grads = {"weight": dw} if db is None else {"weight": dw, "bias": db}
        return dx


class Linear(Module):
    """Fully connected layer ``y = x W^T + b``, as ``torch.nn.Linear``; torch's default
    initialization (``U(-1/sqrt(in_features), 1/sqrt(in_features))`` for both).

    Args:
        in_features, out_features: sizes of the last dimension in and out.
        bias: learn a bias. Default True.
        rng: the generator for the initial weights (required).
        dtype: parameter dtype. Default float32.

    Shape:
        ``(N, *, in_features) -> (N, *, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        rng: np.random.Generator,
        dtype=np.float32,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features)
        self.params["weight"] = kaiming_uniform(rng, shape, a=math.sqrt(5), dtype=dtype)
        if bias:
            bound = 1 / math.sqrt(in_features)
            self.params["bias"] = uniform(rng, (out_features,), a=-bound, b=bound, dtype=dtype)

    def _extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={'bias' in self.params}"

    def _forward(self, x, training):
        if not isinstance(x, np.ndarray) or x.ndim < 1 or x.shape[-1] != self.in_features:
            raise self._bad_input(f"(N, *, {self.in_features})", x)
        return linear_forward(x, self.params["weight"], self.params.get("bias"))

    def _backward(self, dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        self.grads = {"weight": dw} if db is None else {"weight": dw, "bias": db}
        return dx


class _BatchNorm(Module):
    """Shared by :class:`BatchNorm1d` and :class:`BatchNorm2d`: parameters ``weight``
    (the scale gamma, starts at 1) and ``bias`` (the shift beta, starts at 0); buffers
    ``running_mean`` (0), ``running_var`` (1) and ``num_batches_tracked`` (0), as torch names
    them."""

    _ndims: tuple[int, ...]
    _shape_text: str

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=np.float32,
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        if affine:
            self.params["weight"] = np.ones(num_features, dtype=dtype)
            self.params["bias"] = np.zeros(num_features, dtype=dtype)
        if track_running_stats:
            self.buffers["running_mean"] = np.zeros(num_features, dtype=dtype)
            self.buffers["running_var"] = np.ones(num_features, dtype=dtype)
            self.buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)

    def _extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def _forward(self, x, training):
        if not isinstance(x, np.ndarray) or x.ndim not in self._ndims:
            raise self._bad_input(self._shape_text.format(c=self.num_features), x)
        if x.shape[1] != self.num_features:
            raise self._bad_input(self._shape_text.format(c=self.num_features), x)
        tracked = self.buffers.get("num_batches_tracked")
        if tracked is None:  # no running statistics: torch uses batch statistics in eval too
            return batch_norm_forward(
                x,
                None,
                None,
                self.params.get("weight"),
                self.params.get("bias"),
                training=True,
                eps=self.eps,
            )
        out, cache = batch_norm_forward(
            x,
            self.buffers["running_mean"],
            self.buffers["running_var"],
            self.params.get("weight"),
            self.params.get("bias"),
            training=training,
            momentum=self.momentum,
            eps=self.eps,
            num_batches_tracked=int(tracked),
        )
        if training:
            tracked += 1  # a 0-d array, updated in place
        return out, cache

    def _backward(self, dout, cache):
        dx, dweight, dbias = batch_norm_backward(dout, cache)
        self.grads = {} if dweight is None else {"weight": dweight, "bias": dbias}
        return dx


class BatchNorm2d(_BatchNorm):
    """Batch normalization over ``(N, C, H, W)``, as ``torch.nn.BatchNorm2d`` (see
    :func:`~d2lcnn.numpy.norm.batch_norm_forward` for the formula and the running averages).

    Args:
        num_features: ``C``.
        eps: added to the variance. Default 1e-5.
        momentum: weight of the new batch in the running statistics; ``None`` for a
            cumulative average. Default 0.1.
        affine: learn ``weight`` and ``bias``. Default True.
        track_running_stats: keep running statistics for eval mode. Default True.
        dtype: Default float32.
    """

    _ndims = (4,)
    _shape_text = "(N, {c}, H, W)"


class BatchNorm1d(_BatchNorm):
    """Batch normalization over ``(N, C)`` or ``(N, C, L)``, as ``torch.nn.BatchNorm1d``;
    arguments as :class:`BatchNorm2d`."""

    _ndims = (2, 3)
    _shape_text = "(N, {c}) or (N, {c}, L)"


# --------------------------------------------------------------------------- parameter-free


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim``, as ``torch.nn.Flatten`` (default: all but
    the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def _extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def _forward(self, x, training):
        return flatten_forward(x, start_dim=self.start_dim, end_dim=self.end_dim)

    def _backward(self, dout, cache):
        return flatten_backward(dout, cache)


class _Pool2d(Module):
    def __init__(self, **hyper):
        super().__init__()
        self.hyper = hyper

    def _extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.hyper.items())

    def _forward(self, x, training):
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise self._bad_input("(N, C, H, W)", x)
        return self._fns[0](x, **self.hyper)

    def _backward(self, dout, cache):
        return self._fns[1](dout, cache)


class MaxPool2d(_Pool2d):
    """2-D max pooling, as ``torch.nn.MaxPool2d``; arguments as
    :func:`~d2lcnn.numpy.pool.max_pool2d_forward` (``stride`` defaults to ``kernel_size``)."""

    _fns = (max_pool2d_forward, max_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
        )


class AvgPool2d(_Pool2d):
    """2-D average pooling, as ``torch.nn.AvgPool2d``; arguments as
    :func:`~d2lcnn.numpy.pool.avg_pool2d_forward`."""

    _fns = (avg_pool2d_forward, avg_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):  # fmt: skip
        super().__init__(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
        )


class Dropout(Module):
    """Inverted dropout, as ``torch.nn.Dropout``: in training each element is zeroed with
    probability ``p`` and the rest scaled by ``1 / (1 - p)``; the identity in eval.

    Args:
        p: probability of dropping. Default 0.5.
        rng: the generator that draws the masks (required).
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator):
        super().__init__()
        self.p, self.rng = p, rng

    def _extra_repr(self):
        return f"p={self.p}"

    def _forward(self, x, training):
        return dropout_forward(x, p=self.p, training=training, generator=self.rng)

    def _backward(self, dout, cache):
        return dropout_backward(dout, cache)


class _Activation(Module):
    """An elementwise function ``_fns = (forward, backward)`` with keyword ``hyper``."""

    _fns: tuple

    def __init__(self, **hyper):
        super().__init__()
        self.hyper = hyper

    def _extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())

    def _forward(self, x, training):
        return self._fns[0](x, **self.hyper)

    def _backward(self, dout, cache):
        return self._fns[1](dout, cache)


class ReLU(_Activation):
    """``max(x, 0)``, as ``torch.nn.ReLU``."""

    _fns = (relu_forward, relu_backward)


class Tanh(_Activation):
    """``tanh(x)``, as ``torch.nn.Tanh``."""

    _fns = (tanh_forward, tanh_backward)


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid``."""

    _fns = (sigmoid_forward, sigmoid_backward)


class LeakyReLU(_Activation):
    """``x`` if positive else ``negative_slope * x``, as ``torch.nn.LeakyReLU``."""

    _fns = (leaky_relu_forward, leaky_relu_backward)

    def __init__(self, negative_slope: float = 0.01):
        super().__init__(negative_slope=negative_slope)


class GELU(_Activation):
    """``x * Phi(x)``, as ``torch.nn.GELU`` (``approximate="tanh"`` for the tanh form)."""

    _fns = (gelu_forward, gelu_backward)

    def __init__(self, approximate: str = "none"):
        super().__init__(approximate=approximate)


# --------------------------------------------------------------------------- training loop


def train_epoch(
    model: Module,
    opt,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    rng: np.random.Generator,
    transform=None,
) -> float:
    """One pass over ``(x, y)`` in shuffled minibatches with cross-entropy; returns the mean
    training loss (weighted by batch size).

    Args:
        model: maps ``x[batch]`` to logits ``(B, classes)``.
        opt: a :mod:`d2lcnn.numpy.optim` optimizer built on ``model.parameters()``.
        x, y: inputs ``(N, ...)`` and integer class labels ``(N,)``.
        batch_size: samples per step (the last batch may be smaller).
        rng: shuffles the order (and is passed to ``transform``).
        transform: optional augmentation ``transform(x_batch, rng) -> x_batch``.

    This is the minimal teaching loop, kept apart from :func:`d2lcnn.train.fit` on purpose.
    ``fit`` trains these same models with the loop it shares with torch models, but
    ``d2lcnn.train`` needs torch (its loaders yield tensors) and imports this module:
    calling it from here would make ``import d2lcnn.numpy`` load torch and close an import
    cycle, and hw3's grader forbids ``d2lcnn.train`` and torch while it allows this loop.
    Given the same batches in the same order, ``fit`` takes exactly the same steps.
    """
    order = rng.permutation(len(x))
    total = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        xb = x[idx] if transform is None else transform(x[idx], rng)
        logits = model.forward(xb, training=True)  # (B, classes)
        loss, cache = cross_entropy_forward(logits, y[idx])
        model.backward(cross_entropy_backward(np.ones((), logits.dtype), cache))
        opt.step(model.gradients())
        total += float(loss) * len(idx)
    return total / len(x)


def evaluate(model: Module, x: np.ndarray, y: np.ndarray, *, batch_size: int = 500) -> float:
    """Classification accuracy of ``model`` (in eval mode) on ``(x, y)``, in ``[0, 1]``.

    The teaching counterpart of :func:`d2lcnn.train.evaluate`, torch-free for the reasons
    given in :func:`train_epoch`.
    """
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model.forward(x[start : start + batch_size], training=False)
        correct += int((logits.argmax(axis=1) == y[start : start + batch_size]).sum())
    return correct / len(x)
