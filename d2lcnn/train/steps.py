"""The backends of the training loop: one step object for torch models, one for NumPy models.

The loop in :mod:`d2lcnn.train.loop` is written once; it asks a step object for everything
a backend does its own way::

    lr = step.start_epoch(epoch, t)                     # training mode; the epoch's lr
    lr = step.start_step(t)                             # the lr this step uses
    loss, n = step.forward(batch, who, training=True)   # batch -> loss value, batch size
    grad_norm, applied = step.update()                  # backward, norm, clipping, update
    hits = step.hits()                                  # (correct, counted), or None
    step.end_epoch(train_loss, val_loss)                # an epoch scheduler's step
    with step.evaluating(): ...                         # eval mode, no gradients
    outs = [step.predict_batch(x, probs) ...]; step.concat(outs)

``t`` counts the optimizer steps done so far. ``update`` returns the global gradient norm
BEFORE clipping and whether it updated the weights: ``applied`` is False, and the weights
untouched, when that norm is not finite (the loop then stops the run).

:class:`TorchStep` moves batches to the device, runs float16 autocast with a ``GradScaler``
(``amp``), clips with ``torch.nn.utils`` and steps a ``torch.optim.lr_scheduler``.
:class:`NumpyStep` converts each torch batch with ``.numpy()``, trains with cross-entropy
(:mod:`d2lcnn.numpy.losses`), clips with :func:`d2lcnn.numpy.clip.clip_grad_norm` and sets
``optimizer.lr = scheduler(t)`` from a plain schedule function. :func:`_training_step` and
:func:`_inference_step` pick and build the right one for a model.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from d2lcnn.numpy.clip import clip_grad_norm as _np_clip_grad_norm
from d2lcnn.numpy.losses import cross_entropy_backward, cross_entropy_forward
from d2lcnn.numpy.nn import Module as _NumpyModule
from d2lcnn.torch.device import device as _pick_device

__all__ = ["TorchStep", "NumpyStep"]


# ----------------------------------------------------------------------------- torch


class TorchStep:
    """Training and inference steps of a ``torch.nn.Module``.

    Args:
        model: the network, already on ``device``; callbacks and checkpoints get this one.
        device: where each batch is moved.
        loss_fn: ``loss_fn(outputs, targets) -> scalar tensor``. Default ``F.cross_entropy``.
        optimizer: a ``torch.optim.Optimizer``; ``None`` for evaluation and prediction.
        scheduler: a ``torch.optim.lr_scheduler`` (anything with ``step()``), or ``None``.
        scheduler_step: ``"epoch"`` or ``"step"``: when ``scheduler.step()`` runs.
        clip_grad_norm: the largest global gradient norm applied, or ``None``.
        amp: float16 autocast and a ``GradScaler`` (CUDA only: ``fit`` decides).
        net: what runs the forward pass: ``torch.compile(model)``, or ``model`` (default).
    """

    array_types = (torch.Tensor,)  # what predict cuts into batches itself

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        loss_fn=F.cross_entropy,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler=None,
        scheduler_step: str = "epoch",
        clip_grad_norm: float | None = None,
        amp: bool = False,
        net: torch.nn.Module | None = None,
    ):
        self.model, self.device, self.loss_fn = model, device, loss_fn
        self.net = model if net is None else net
        self.optimizer, self.scheduler, self.scheduler_step = optimizer, scheduler, scheduler_step
        self.clip_grad_norm, self.amp = clip_grad_norm, amp
        self.scaler = torch.amp.GradScaler("cuda") if amp else None
        self.params = [p for p in model.parameters() if p.requires_grad]

    def start_epoch(self, epoch: int, steps_done: int) -> float:
        """Training mode; the learning rate the epoch starts with (first parameter group)."""
        self.net.train()
        return _lr(self.optimizer)

    def start_step(self, steps_done: int) -> float:
        """The learning rate this step uses (a torch scheduler set it after the last one)."""
        return _lr(self.optimizer)

    def forward(self, batch, who: str, *, training: bool) -> tuple[float, int]:
        """``(loss, batch size)`` of an ``(inputs, targets)`` batch (``who`` names the
        loader in errors); keeps the outputs for :meth:`update` and :meth:`hits`."""
        x, y = _split_batch(batch, self.device, who)
        if training:
            self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = self.net(x)
            loss = self.loss_fn(out, y)
        _check_loss(loss, self.loss_fn)
        self._out, self._y, self._loss = out, y, loss
        return loss.item(), x.shape[0]

    def update(self) -> tuple[float, bool]:
        """Backward, global gradient norm, clipping, optimizer (and per-step scheduler) step.

        Returns:
            ``(norm before clipping, applied)``; not applied if the norm is not finite
            (with AMP the GradScaler decides instead, skipping such steps itself).
        """
        scaler = self.scaler
        if scaler is not None:
            scaler.scale(self._loss).backward()
            scaler.unscale_(self.optimizer)
        else:
            self._loss.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        grad_norm = norm.item()
        if not math.isfinite(grad_norm) and scaler is None:
            return grad_norm, False
        if self.clip_grad_norm is not None and grads:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.clip_grad_norm, norm)
        if scaler is not None:
            scaler.step(self.optimizer)  # skips the update if grads are inf/nan
            scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None and self.scheduler_step == "step":
            self.scheduler.step()
        return grad_norm, True

    def hits(self) -> tuple[int, int] | None:
        """``(correct, counted)`` of the last forward pass, ``None`` without class targets."""
        return _correct(self._out.detach(), self._y)

    def end_epoch(self, train_loss: float, val_loss: float | None) -> None:
        """The epoch scheduler's step; ``ReduceLROnPlateau`` watches the val (or train) loss."""
        if self.scheduler is None or self.scheduler_step != "epoch":
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(train_loss if val_loss is None else val_loss)
        else:
            self.scheduler.step()

    @contextlib.contextmanager
    def evaluating(self):
        """Eval mode without gradients; the network's mode is restored afterwards."""
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.net.train(was_training)

    def predict_batch(self, x: torch.Tensor, probs: bool) -> torch.Tensor:
        """Outputs (or softmax probabilities) for inputs ``x``, on the CPU."""
        out = self.net(x.to(self.device))  # (B, C, ...)
        return (out.softmax(dim=1) if probs else out).cpu()

    @staticmethod
    def concat(outs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(outs)


# ----------------------------------------------------------------------------- NumPy


class NumpyStep:
    """Training and inference steps of a :class:`d2lcnn.numpy.nn.Module`, on the CPU.

    The loss is cross-entropy; inputs are cast to the dtype of the model's parameters.

    Args:
        model: the network (e.g. a ``Sequential``).
        optimizer: a :mod:`d2lcnn.numpy.optim` optimizer over ``model.parameters()``;
            ``None`` for evaluation and prediction.
        scheduler: a function ``t -> lr`` (see :mod:`d2lcnn.schedules`), or ``None``.
        scheduler_step: ``"epoch"`` (``t`` = epochs completed, set as each epoch starts) or
            ``"step"`` (``t`` = steps completed, set before each step), as ``LambdaLR``.
        clip_grad_norm: the largest global gradient norm applied, or ``None``.
    """

    array_types = (torch.Tensor, np.ndarray)  # what predict cuts into batches itself
    scaler = None  # no mixed precision in NumPy

    def __init__(
        self,
        model: _NumpyModule,
        optimizer=None,
        *,
        scheduler=None,
        scheduler_step: str = "epoch",
        clip_grad_norm: float | None = None,
    ):
        self.model, self.optimizer = model, optimizer
        self.scheduler, self.scheduler_step = scheduler, scheduler_step
        self.clip_grad_norm = clip_grad_norm
        self.dtype = _numpy_dtype(model)

    def start_epoch(self, epoch: int, steps_done: int) -> float:
        if self.scheduler is not None:  # as LambdaLR: the lr the next step will use
            t = epoch - 1 if self.scheduler_step == "epoch" else steps_done
            self.optimizer.lr = float(self.scheduler(t))
        return float(self.optimizer.lr)

    def start_step(self, steps_done: int) -> float:
        if self.scheduler is not None and self.scheduler_step == "step":
            self.optimizer.lr = float(self.scheduler(steps_done))
        return float(self.optimizer.lr)

    def forward(self, batch, who: str, *, training: bool) -> tuple[float, int]:
        x, y = _numpy_batch(batch, self.dtype, who)
        out = self.model.forward(x, training=training)  # (B, classes)
        loss, self._cache = cross_entropy_forward(out, y)
        self._out, self._y = out, y
        return float(loss), x.shape[0]

    def update(self) -> tuple[float, bool]:
        dout = cross_entropy_backward(np.ones((), self._out.dtype), self._cache)
        self.model.backward(dout)
        grads = self.model.gradients()  # the layers' own arrays: clipped in place
        if self.clip_grad_norm is not None:
            grad_norm = _np_clip_grad_norm(grads, self.clip_grad_norm)
        else:
            norms = [np.linalg.norm(g.ravel()) for g in grads.values()]
            grad_norm = float(np.linalg.norm(norms)) if norms else 0.0
        if not math.isfinite(grad_norm):
            return grad_norm, False
        self.optimizer.step(grads)
        return grad_norm, True

    def hits(self) -> tuple[int, int] | None:
        return _correct(torch.from_numpy(self._out), torch.from_numpy(self._y))

    def end_epoch(self, train_loss: float, val_loss: float | None) -> None:
        """Nothing to do: the schedule function sets the lr as the next epoch starts."""

    def evaluating(self):
        """Nothing to switch: ``forward(..., training=False)`` is the eval mode."""
        return contextlib.nullcontext()

    def predict_batch(self, x, probs: bool) -> np.ndarray:
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        out = self.model.forward(x.astype(self.dtype, copy=False), training=False)  # (B, C, ...)
        if probs:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        return out

    @staticmethod
    def concat(outs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(outs)


# ----------------------------------------------------------------------------- choosing a step


def _training_step(
    model,
    optimizer,
    scheduler,
    *,
    loss_fn,
    device,
    clip_grad_norm: float | None,
    amp: bool,
    compile: bool,
    scheduler_step: str,
    checkpoint,
    wrap=None,
) -> TorchStep | NumpyStep:
    """The step ``fit`` trains ``model`` with; a torch model is moved to ``device`` here.

    ``wrap(model, device)``, if given, returns what runs the forward pass (e.g. the model in
    ``DistributedDataParallel``); ``torch.compile`` then compiles the wrapper.
    """
    if isinstance(model, _NumpyModule):
        _check_numpy_options(
            loss_fn=loss_fn, device=device, amp=amp, compile=compile, checkpoint=checkpoint
        )
        return NumpyStep(
            model,
            optimizer,
            scheduler=scheduler,
            scheduler_step=scheduler_step,
            clip_grad_norm=clip_grad_norm,
        )
    dev = _resolve_device(device)
    model.to(dev)
    use_amp = _enabled_on("amp", amp, dev)
    net = model if wrap is None else wrap(model, dev)
    net = torch.compile(net) if _enabled_on("compile", compile, dev) else net
    return TorchStep(
        model,
        dev,
        loss_fn,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_step=scheduler_step,
        clip_grad_norm=clip_grad_norm,
        amp=use_amp,
        net=net,
    )


def _inference_step(model, *, loss_fn=F.cross_entropy, device, who: str) -> TorchStep | NumpyStep:
    """The step ``evaluate`` and ``predict`` (``who``) run ``model`` with."""
    if isinstance(model, _NumpyModule):
        _check_numpy_options(loss_fn=loss_fn, device=device, who=who)
        return NumpyStep(model)
    dev = _resolve_device(device, model)
    model.to(dev)
    return TorchStep(model, dev, loss_fn)


def _enabled_on(feature: str, wanted: bool, dev: torch.device) -> bool:
    """AMP and torch.compile run on CUDA only; elsewhere warn and train as usual."""
    if not wanted:
        return False
    if dev.type == "cuda":
        return True
    why = {
        "amp": "float16 autocast with a GradScaler needs CUDA; training in float32",
        "compile": "compiling is slow on the CPU and rarely pays off for small models; "
        "training uncompiled",
    }[feature]
    # stacklevel: fit -> _training_step -> here, so the warning names the caller of fit
    warnings.warn(f"fit: {feature}=True ignored on {dev}: {why}", UserWarning, stacklevel=4)
    return False


def _check_numpy_options(
    *, loss_fn=F.cross_entropy, device=None, amp=False, compile=False, checkpoint=None, who="fit"
) -> None:
    """Refuse, by name, the options a NumPy model cannot honour."""
    if loss_fn is not F.cross_entropy:
        name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
        raise ValueError(
            f"{who}: a NumPy model is trained with cross-entropy; loss_fn must be the default "
            f"F.cross_entropy, got {name}"
        )
    on_cpu = device is None or (
        device.type == "cpu" if isinstance(device, torch.device) else device in ("auto", "cpu")
    )
    if not on_cpu:
        raise ValueError(
            f"{who}: a NumPy model runs on the CPU; device must be 'auto' or 'cpu', got {device!r}"
        )
    for name, value in (("amp", amp), ("compile", compile)):
        if value:
            raise ValueError(
                f"{who}: {name}=True is for torch models only; a NumPy model "
                f"needs {name}=False, got {value!r}"
            )
    if checkpoint is not None:
        raise ValueError(
            f"{who}: checkpoint is not supported for NumPy models yet; got {checkpoint!r} "
            "(save model.state_dict() and optimizer.state_dict() yourself)"
        )


# ----------------------------------------------------------------------------- helpers


def _resolve_device(device, model: torch.nn.Module | None = None) -> torch.device:
    """``None`` -> the model's device (CPU if it has no tensors); str -> d2lcnn.torch.device."""
    if device is None:
        if model is not None:
            for t in (*model.parameters(), *model.buffers()):
                return t.device
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        return _pick_device(device)
    raise TypeError(
        f"device must be None, 'auto', a device name or a torch.device, got {type(device).__name__}"
    )


def _split_batch(batch, dev: torch.device, who: str):
    """``(inputs, targets)`` from a batch, on ``dev``."""
    if not isinstance(batch, list | tuple) or len(batch) != 2:
        kind = (
            f"a {type(batch).__name__} of length {len(batch)}"
            if isinstance(batch, list | tuple)
            else f"a {type(batch).__name__}"
        )
        raise TypeError(f"{who}: every batch must be a pair (inputs, targets), got {kind}")
    x, y = batch
    return x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)


def _check_loss(loss, loss_fn) -> None:
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn ({name}) must return a tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(
            f"loss_fn ({name}) must return a scalar (use reduction='mean'), "
            f"got a tensor of shape {tuple(loss.shape)}"
        )


def _correct(output: torch.Tensor, target: torch.Tensor) -> tuple[int, int] | None:
    """(number correct, number of predictions) if targets are class indices, else None.

    Works for (N, C) logits with (N,) labels and (N, C, H, W) with (N, H, W) (pixel accuracy).
    """
    if target.dtype.is_floating_point or target.dtype == torch.bool or output.ndim < 2:
        return None
    if output.shape[:1] + output.shape[2:] != target.shape:
        return None
    pred = output.argmax(dim=1)
    return int((pred == target).sum().item()), target.numel()


def _lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _numpy_dtype(model: _NumpyModule) -> np.dtype:
    """The dtype of the model's parameters (float32 for a model without any)."""
    for p in model.parameters().values():
        return p.dtype
    return np.dtype(np.float32)


def _numpy_batch(batch, dtype, who: str) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)`` of a batch as NumPy arrays, inputs in ``dtype``."""
    x, y = _split_batch(batch, torch.device("cpu"), who)
    return x.numpy().astype(dtype, copy=False), y.numpy()
