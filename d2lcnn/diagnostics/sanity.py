"""Checks to run before a long training run: the initial loss should be about ln K
(:func:`check_initial_loss`), and the network must be able to memorise a handful of examples
(:func:`overfit_tiny`). Torch models and NumPy models (:class:`d2lcnn.numpy.nn.Module`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from d2lcnn.checks import check_int, check_positive
from d2lcnn.numpy.losses import cross_entropy_backward, cross_entropy_forward
from d2lcnn.numpy.nn import Module as NumpyModule
from d2lcnn.numpy.optim import SGD as NumpySGD
from d2lcnn.numpy.optim import Adam as NumpyAdam
from d2lcnn.torch.device import device as pick_device

__all__ = [
    "InitialLossCheck",
    "OverfitResult",
    "check_initial_loss",
    "expected_initial_loss",
    "initial_loss",
    "overfit_tiny",
]


# ----------------------------------------------------------------------------- initial loss


def expected_initial_loss(num_classes: int) -> float:
    """The cross-entropy of a uniform guess over ``num_classes`` classes: ``ln K``.

    An untrained classifier whose logits start small predicts about ``1/K`` for every class,
    so its mean cross-entropy is about ``-ln(1/K) = ln K`` (2.303 for 10 classes).

    Raises:
        ValueError: if ``num_classes`` is not an int >= 2.
    """
    return math.log(check_int(num_classes, "num_classes", "expected_initial_loss", minimum=2))


def initial_loss(
    model,
    data,
    *,
    loss_fn: Callable | None = None,
    device=None,
    batches: int | None = None,
    training: bool = False,
) -> float:
    """Mean loss of a (typically untrained) model over ``data``, without gradients.

    Args:
        model: a ``torch.nn.Module`` or a :class:`d2lcnn.numpy.nn.Module`. Its train/eval
            mode is restored afterwards.
        data: a loader yielding ``(inputs, targets)`` batches, or one ``(inputs, targets)``
            pair of tensors or arrays (cut into batches of 512).
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` with ``reduction='mean'``;
            ``None`` (default) is cross-entropy. NumPy models: cross-entropy only.
        device: ``None`` (default) uses the model's device; ``"auto"``, a name or a
            ``torch.device`` moves the model there first. NumPy models run on the CPU.
        batches: use only the first ``batches`` batches; ``None`` (default) uses them all.
        training: run the forward pass in training mode (batch statistics in BatchNorm,
            dropout on), as the first step of :func:`~d2lcnn.train.fit` does; BatchNorm's
            running statistics are restored afterwards. Default ``False`` (eval mode).

    Returns:
        The loss, averaged over the examples (batch losses weighted by batch size).
    """
    return _mean_loss(model, data, loss_fn, device, batches, training, "initial_loss")[0]


@dataclass(frozen=True)
class InitialLossCheck:
    """What :func:`check_initial_loss` found."""

    loss: float  # the measured mean cross-entropy
    expected: float  # ln K
    ratio: float  # loss / expected
    ok: bool  # |ratio - 1| <= rtol
    message: str  # what the number suggests, in a sentence or two

    def __str__(self) -> str:
        return self.message


def check_initial_loss(
    model,
    data,
    num_classes: int | None = None,
    *,
    rtol: float = 0.2,
    device=None,
    batches: int | None = None,
    training: bool = False,
) -> InitialLossCheck:
    """Compare the initial cross-entropy of ``model`` on ``data`` with ``ln K``.

    Args:
        model, data, device, batches, training: as in :func:`initial_loss`.
        num_classes: ``K``; ``None`` (default) reads it off the width of the model's output.
        rtol: the relative distance from ``ln K`` still called fine. Default 0.2.

    Returns:
        An :class:`InitialLossCheck` ``(loss, expected, ratio, ok, message)``. A loss well
        above ``ln K`` means the untrained network is confident (and mostly wrong): a last
        layer initialised too large, unnormalised inputs, or labels that do not mean what the
        outputs mean. A loss well below ``ln K`` means it beats chance before learning: a
        label leak, or a loss that is not the mean cross-entropy over ``K`` classes.

    Not caught here: a softmax applied inside the model before ``F.cross_entropy`` (which
    applies its own) also starts near ``ln K``. It shows later, as a loss that cannot fall
    below ``ln(1 + (K - 1) / e)`` (1.46 for 10 classes) however well the model fits.
    """
    fn = "check_initial_loss"
    check_positive(rtol, "rtol", fn)
    loss, width = _mean_loss(model, data, None, device, batches, training, fn)
    k = width if num_classes is None else num_classes
    if num_classes is not None and num_classes != width:
        raise ValueError(
            f"{fn}: num_classes={num_classes} but the model outputs {width} scores per example"
        )
    expected = expected_initial_loss(k)
    ratio = loss / expected
    ok = abs(ratio - 1.0) <= rtol
    head = f"initial loss {loss:.3f} vs ln {k} = {expected:.3f} (ratio {ratio:.2f})"
    if ok:
        message = f"{head}: within {rtol:g} of ln K; the untrained outputs are near uniform."
    elif ratio > 1:
        message = (
            f"{head}: too high. The untrained network is confident and mostly wrong: look "
            "for a last layer initialised too large (its weights or an output scale), "
            "inputs that were not normalised, or labels encoded differently from the outputs "
            "(shifted by one, shuffled against the inputs)."
        )
    else:
        message = (
            f"{head}: too low. An untrained network should not beat chance: look for a label "
            "leak (the answer hidden in the input), a loss that is not the mean cross-entropy "
            "over K classes (summed or scaled differently, an MSE), or too few examples "
            "scored."
        )
    return InitialLossCheck(loss, expected, ratio, ok, message)


def _mean_loss(model, data, loss_fn, device, batches, training, fn) -> tuple[float, int]:
    """(mean loss, output width) of ``model`` over ``data``, no gradients, mode restored."""
    if batches is not None:
        check_int(batches, "batches", fn, minimum=1)
    total, seen, width = 0.0, 0, None
    if isinstance(model, NumpyModule):
        if loss_fn is not None:
            raise ValueError(
                f"{fn}: a NumPy model is scored with cross-entropy; loss_fn must "
                f"be None, got {loss_fn!r}"
            )
        _numpy_device(device, fn)
        dtype = _numpy_dtype(model)
        saved = model.state_dict() if training else None  # copies: BatchNorm's statistics
        try:
            for x, y in _batches(data, batches, fn):
                out = model.forward(_np(x).astype(dtype, copy=False), training=training)
                loss, _ = cross_entropy_forward(out, _np(y))
                total, seen, width = (
                    total + float(loss) * len(out),
                    seen + len(out),
                    out.shape[1],
                )
        finally:
            if saved is not None:
                model.load_state_dict(saved)
    else:
        model = _torch_model(model, fn)
        dev = _device_of(model, device, fn)
        loss_fn = F.cross_entropy if loss_fn is None else loss_fn
        saved = {k: b.clone() for k, b in model.named_buffers()} if training else {}
        modes = _modes(model)
        model.train(training)
        try:
            with torch.no_grad():
                for x, y in _batches(data, batches, fn):
                    x, y = _input(model, x, dev), _tensor(y).to(dev)
                    out = model(x)  # (B, K)
                    loss = loss_fn(out, y)
                    if loss.numel() != 1:
                        raise ValueError(
                            f"{fn}: loss_fn must return a scalar (reduction='mean'), "
                            f"got shape {tuple(loss.shape)}"
                        )
                    n = x.shape[0]
                    total, seen, width = total + loss.item() * n, seen + n, out.shape[1]
        finally:
            _restore(modes)
            for k, b in model.named_buffers():
                if k in saved:
                    b.copy_(saved[k])
    if seen == 0:
        raise ValueError(f"{fn}: data holds no examples")
    return total / seen, int(width)


# ----------------------------------------------------------------------------- overfit


@dataclass(frozen=True)
class OverfitResult:
    """What :func:`overfit_tiny` reached."""

    accuracy: float  # training accuracy on the tiny subset at the end
    losses: list[float]  # the loss at every step, before that step's update
    steps_to_fit: int | None  # updates needed to reach accuracy 1.0; None if never
    ok: bool  # accuracy == 1.0


def overfit_tiny(
    model,
    data,
    *,
    n: int = 20,
    steps: int = 300,
    lr: float = 1e-2,
    optimizer: str | Callable = "adam",
    device=None,
    seed: int = 0,
) -> OverfitResult:
    """Train ``model`` on its first ``n`` examples (one full batch) until it fits them.

    A network that cannot drive the training accuracy of 20 examples to 100% has a bug
    (outputs that do not depend on the input, a detached layer, a wrong loss, labels
    scrambled against the inputs): finding out takes seconds, before any long run.

    Each step computes the loss and accuracy of the whole subset in training mode, stops if
    every example is classified right, else takes one optimizer step. ``model`` is trained
    in place (pass ``copy.deepcopy(model)`` to keep the original) and its mode is restored.

    Args:
        model: a ``torch.nn.Module`` classifier, or a :class:`d2lcnn.numpy.nn.Module`.
        data: a loader yielding ``(inputs, targets)``, or an ``(inputs, targets)`` pair.
        n: examples to memorise (the first ``n``). Default 20.
        steps: most optimizer steps. Default 300.
        lr: learning rate. Default 1e-2.
        optimizer: ``"adam"`` (default), ``"sgd"`` (momentum 0.9), or for a torch model a
            function ``params -> torch.optim.Optimizer``.
        device: as in :func:`initial_loss`.
        seed: seeds torch's generator for the run (dropout), restored afterwards.

    Returns:
        An :class:`OverfitResult` ``(accuracy, losses, steps_to_fit, ok)``.
    """
    fn = "overfit_tiny"
    n, steps, lr = (
        check_int(n, "n", fn, minimum=1),
        check_int(steps, "steps", fn, minimum=1),
        check_positive(lr, "lr", fn),
    )
    if not (optimizer in ("adam", "sgd") or callable(optimizer)):
        raise ValueError(
            f"{fn}: optimizer must be 'adam', 'sgd' or a function params -> "
            f"optimizer, got {optimizer!r}"
        )
    x, y = _first(data, n, fn)
    if isinstance(model, NumpyModule):
        return _overfit_numpy(model, _np(x), _np(y), steps, lr, optimizer, device, fn)
    model = _torch_model(model, fn)
    dev = _device_of(model, device, fn)
    x, y = _input(model, x, dev), _tensor(y).to(dev)
    if callable(optimizer):
        opt = optimizer(model.parameters())
    elif optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    modes = _modes(model)
    model.train()
    losses, fitted, acc = [], None, 0.0
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for t in range(steps + 1):
                out = model(x)  # (n, K)
                loss = F.cross_entropy(out, y)
                acc = (out.argmax(1) == y).sum().item() / len(y)
                losses.append(loss.item())
                if acc == 1.0:
                    fitted = t
                    break
                if t == steps:  # the last forward only measures the final weights
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        _restore(modes)
        opt.zero_grad(set_to_none=True)
    return OverfitResult(acc, losses, fitted, acc == 1.0)


def _overfit_numpy(model, x, y, steps, lr, optimizer, device, fn) -> OverfitResult:
    """:func:`overfit_tiny` for a NumPy model: the same loop with a NumPy optimizer."""
    _numpy_device(device, fn)
    if callable(optimizer):
        raise ValueError(f"{fn}: a NumPy model takes optimizer 'adam' or 'sgd', got a function")
    params = model.parameters()
    opt = NumpyAdam(params, lr=lr) if optimizer == "adam" else NumpySGD(params, lr=lr, momentum=0.9)
    x = x.astype(_numpy_dtype(model), copy=False)
    losses, fitted, acc = [], None, 0.0
    for t in range(steps + 1):
        out = model.forward(x, training=True)  # (n, K)
        loss, cache = cross_entropy_forward(out, y)
        acc = float((out.argmax(1) == y).mean())
        losses.append(float(loss))
        if acc == 1.0:
            fitted = t
            break
        if t == steps:
            break
        model.backward(cross_entropy_backward(np.ones((), out.dtype), cache))
        opt.step(model.gradients())
    return OverfitResult(acc, losses, fitted, acc == 1.0)


# ----------------------------------------------------------------------------- helpers


def _modes(model: torch.nn.Module) -> dict:
    """The train/eval flag of every submodule (a frozen BatchNorm may be in eval mode alone)."""
    return {m: m.training for m in model.modules()}


def _restore(modes: dict) -> None:
    for m, mode in modes.items():
        m.training = mode


def _torch_model(model, fn: str) -> torch.nn.Module:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"{fn}: model must be a torch.nn.Module or a d2lcnn.numpy.nn.Module, "
            f"got {type(model).__name__}"
        )
    return model


def _device_of(model: torch.nn.Module, device, fn: str) -> torch.device:
    """``None`` -> the model's device; anything else -> that device, the model moved there."""
    if device is None:
        for t in (*model.parameters(), *model.buffers()):
            return t.device
        return torch.device("cpu")
    if isinstance(device, str):
        device = pick_device(device)
    if not isinstance(device, torch.device):
        raise TypeError(f"{fn}: device must be None, a name or a torch.device, got {device!r}")
    model.to(device)
    return device


def _numpy_device(device, fn: str) -> None:
    if device not in (None, "auto", "cpu") and not (
        isinstance(device, torch.device) and device.type == "cpu"
    ):
        raise ValueError(
            f"{fn}: a NumPy model runs on the CPU; device must be None, 'auto' "
            f"or 'cpu', got {device!r}"
        )


def _numpy_dtype(model: NumpyModule) -> np.dtype:
    for p in model.parameters().values():
        return p.dtype
    return np.dtype(np.float32)


def _batches(data, limit: int | None, fn: str):
    """``(x, y)`` batches from a loader or from one ``(x, y)`` pair (cut into 512s)."""
    if (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(isinstance(a, torch.Tensor | np.ndarray) for a in data)
    ):
        x, y = data
        if len(x) != len(y):
            raise ValueError(
                f"{fn}: data's inputs and targets differ in length: {len(x)} vs {len(y)}"
            )
        pairs = ((x[i : i + 512], y[i : i + 512]) for i in range(0, len(x), 512))
    else:
        pairs = iter(data)
    for i, batch in enumerate(pairs):
        if limit is not None and i >= limit:
            return
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise TypeError(
                f"{fn}: data must be an (inputs, targets) pair or yield such "
                f"pairs, got a batch of type {type(batch).__name__}"
            )
        yield batch


def _first(data, n: int, fn: str):
    """The first ``n`` examples of ``data`` as one ``(x, y)`` pair of tensors or arrays."""
    xs, ys, got = [], [], 0
    for x, y in _batches(data, None, fn):
        xs.append(_tensor(x)[: n - got])
        ys.append(_tensor(y)[: n - got])
        got += len(xs[-1])
        if got >= n:
            break
    if got < n:
        raise ValueError(f"{fn}: data holds {got} examples, fewer than n={n}")
    return torch.cat(xs), torch.cat(ys)


def _input(model: torch.nn.Module, x, dev: torch.device) -> torch.Tensor:
    """Inputs on ``dev``, floating ones in the dtype of the model's first floating parameter."""
    x = _tensor(x).to(dev)
    if x.dtype.is_floating_point:
        for p in model.parameters():
            if p.dtype.is_floating_point:
                return x.to(p.dtype)
    return x


def _tensor(a) -> torch.Tensor:
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
