"""Train a model: :func:`fit`, :func:`evaluate`, :func:`predict`, checkpoints and a History.

One training loop for every chapter::

    from d2lcnn.train import fit, evaluate, seed_everything

    gens = seed_everything(0)                       # gens.torch feeds the DataLoader
    history = fit(model, train_loader, val_loader, epochs=5, optimizer=opt)
    test_loss, test_acc = evaluate(model, test_loader)
    fig = history.plot()

What ``fit`` shows depends on where it runs, so that an executed chapter is reproducible
byte for byte (``progress="auto"``, ``live_plot="auto"``):

==================================  ====================  ================================
where                               progress bar          loss/accuracy figure
==================================  ====================  ================================
Jupyter, a person at the frontend   tqdm (``tqdm.auto``)  redrawn after every epoch
notebook executed by nbclient       none                  drawn once, at the end
terminal (stderr is a TTY)          tqdm on stderr        none (call ``history.plot()``)
anything else (pytest, CI, logs)    none                  none
==================================  ====================  ================================

A person at JupyterLab, Notebook or VS Code is told apart from nbclient, nbconvert and
papermill by the ``allow_stdin`` flag each execute request carries: frontends that can answer
``input()`` set it, batch executors do not. Timings are recorded in the History, never printed.

The same functions take a NumPy network (a :class:`d2lcnn.numpy.nn.Module`, e.g. a
``Sequential``) with a :mod:`d2lcnn.numpy.optim` optimizer, so a chapter can train both
backends with one loop and compare the Histories; nothing to wrap::

    seq = nd.nn.Sequential(nd.nn.Conv2d(1, 16, 3, padding=1, rng=rng), ...)
    history = fit(seq, train_loader, val_loader, epochs=5, optimizer=nd.optim.SGD(
        seq.parameters(), lr=0.1), scheduler=partial(cosine_lr, lr=0.1, total_steps=5))

Each torch batch becomes NumPy (``.numpy()``, inputs cast to the model's dtype); the loss is
cross-entropy (:func:`d2lcnn.numpy.losses.cross_entropy_forward`); the scheduler is a plain
function ``t -> lr`` (see :mod:`d2lcnn.schedules`); the run is on the CPU. See :func:`fit`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from d2lcnn.numpy.clip import clip_grad_norm as _np_clip_grad_norm
from d2lcnn.numpy.losses import cross_entropy_backward, cross_entropy_forward
from d2lcnn.numpy.nn import Module as _NumpyModule
from d2lcnn.numpy.optim import Optimizer as _NumpyOptimizer
from d2lcnn.torch.device import device as _pick_device

__all__ = [
    "fit",
    "evaluate",
    "predict",
    "History",
    "StepRecord",
    "EpochRecord",
    "EarlyStopping",
    "save_checkpoint",
    "load_checkpoint",
    "seed_everything",
    "Generators",
]

_CHECKPOINT_FORMAT = "d2lcnn.train/1"
_HOOKS = ("on_fit_start", "on_step_end", "on_epoch_end", "on_fit_end")


# ----------------------------------------------------------------------------- History


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step."""

    step: int  # 1-based count of optimizer steps since the run began (continues on resume)
    epoch: int  # 1-based epoch the step belongs to
    loss: float  # the batch's loss, computed before this step's update
    lr: float  # learning rate of the first parameter group used by this step
    grad_norm: float  # global L2 norm of all gradients BEFORE clipping; nan if not computed
    time: float  # seconds since training began (wall clock, continues on resume)


@dataclass(frozen=True)
class EpochRecord:
    """One completed epoch. Accuracies are ``None`` when targets are not class indices."""

    epoch: int  # 1-based
    train_loss: float  # mean batch loss over the epoch, weighted by batch size
    train_accuracy: float | None  # running accuracy while the weights were changing
    val_loss: float | None  # None without a val_loader
    val_accuracy: float | None
    lr: float  # learning rate at the start of the epoch (first parameter group)
    time: float  # seconds the epoch took, validation included


@dataclass
class History:
    """What :func:`fit` recorded: every step, every completed epoch, and why it stopped.

    ``stop_reason`` is ``None`` when all epochs ran; otherwise a sentence such as
    ``"loss exploded: ..."``, ``"loss is nan ..."`` or ``"early stopping: ..."``.
    An epoch interrupted by a stop has its steps recorded but no :class:`EpochRecord`.
    """

    steps: list[StepRecord] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    stop_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Columns of plain Python values: ``{"steps": {"loss": [...], ...}, "epochs": {...},
        "stop_reason": ...}``, ready for ``json.dump`` (except nan) or ``torch.save``."""
        return {
            "steps": {f.name: [getattr(r, f.name) for r in self.steps] for f in fields(StepRecord)},
            "epochs": {
                f.name: [getattr(r, f.name) for r in self.epochs] for f in fields(EpochRecord)
            },
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """The inverse of :meth:`as_dict`."""

        def rows(columns, record):
            names = [f.name for f in fields(record)]
            return [record(*values) for values in zip(*(columns[n] for n in names), strict=True)]

        return cls(
            rows(data["steps"], StepRecord), rows(data["epochs"], EpochRecord), data["stop_reason"]
        )

    def plot(self, *, title: str | None = None):
        """Loss (every step, and per epoch) and accuracy per epoch, against the epoch.

        Returns:
            The ``matplotlib.figure.Figure`` (made with pyplot, so a notebook shows it once);
            axes 0 is the loss, axes 1 the accuracy.
        """
        import matplotlib.pyplot as plt  # lazy: keep ``import d2lcnn.train`` light

        fig = plt.figure(figsize=(10, 3.6), layout="constrained")
        self._draw(fig, title)
        return fig

    def _draw(self, fig, title: str | None = None) -> None:
        ax_loss, ax_acc = fig.subplots(1, 2)
        if self.steps:
            # A step's x is its position in epochs: step j of n in epoch e sits at e - 1 + j/n.
            n = _steps_per_epoch(self)
            x, seen = [], {}
            for r in self.steps:
                seen[r.epoch] = seen.get(r.epoch, 0) + 1
                x.append(r.epoch - 1 + seen[r.epoch] / n)
            loss = [r.loss for r in self.steps]
            ax_loss.plot(x, loss, color="0.75", lw=0.8, label="train (step)")
            ax_loss.legend()
        self._plot_column(ax_loss, "train_loss", "train (epoch)", "o-")
        self._plot_column(ax_loss, "val_loss", "validation", "s-")
        ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
        has_train = self._plot_column(ax_acc, "train_accuracy", "train", "o-")
        has_val = self._plot_column(ax_acc, "val_accuracy", "validation", "s-")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
        if not (has_train or has_val):
            ax_acc.text(
                0.5,
                0.5,
                "no accuracy recorded",
                ha="center",
                va="center",
                transform=ax_acc.transAxes,
            )
        if self.stop_reason or title:
            fig.suptitle(title or f"stopped: {self.stop_reason}", fontsize="medium")

    def _plot_column(self, ax, name: str, label: str, style: str) -> bool:
        """Plot one EpochRecord field against the epoch, skipping None; True if anything."""
        points = [(r.epoch, getattr(r, name)) for r in self.epochs if getattr(r, name) is not None]
        if not points:
            return False
        ax.plot(*zip(*points, strict=True), style, label=label)
        ax.legend()
        return True


def _steps_per_epoch(history: History) -> int:
    if not history.steps:
        return 1
    first = history.steps[0].epoch
    return max(1, sum(r.epoch == first for r in history.steps))


# ----------------------------------------------------------------------------- seeding


class Generators(NamedTuple):
    """Explicit random generators returned by :func:`seed_everything`."""

    torch: torch.Generator  # for DataLoader(generator=...), torch.randn(generator=...)
    numpy: np.random.Generator  # for NumPy code: rng.normal(...), rng.permutation(...)


def seed_everything(seed: int) -> Generators:
    """Seed Python's ``random``, NumPy's legacy global state and torch (CPU and CUDA).

    The book prefers explicit generators, passed to whatever draws random numbers
    (``DataLoader(..., generator=gens.torch)``, ``gens.numpy.permutation(n)``): the global
    seeds are set too only so that code we do not control (weight initialisation, dropout,
    third-party helpers) is reproducible as well.

    Args:
        seed: a non-negative integer.

    Returns:
        ``Generators(torch=torch.Generator seeded with seed, numpy=np.random.default_rng(seed))``.

    Raises:
        TypeError: if ``seed`` is not an int. ValueError: if it is negative.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed_everything: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed_everything: seed must be >= 0, got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # the legacy global state accepts 32-bit seeds only
    torch.manual_seed(seed)  # also seeds every CUDA device
    return Generators(torch.Generator().manual_seed(seed), np.random.default_rng(seed))


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


def _loader_generators(loader) -> list[torch.Generator]:
    """The generators a DataLoader draws its shuffling from (for exact resumes)."""
    found = []
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    for owner in (loader, sampler, getattr(batch_sampler, "sampler", None)):
        g = getattr(owner, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not h for h in found):
            found.append(g)
    return found


def _frontend() -> str:
    """'notebook' (a person at a Jupyter frontend), 'executed' (a kernel driven by nbclient,
    nbconvert or papermill), 'terminal' (stderr is a TTY) or 'headless'."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        # Frontends a person uses send allow_stdin=True (so input() works); batch executors
        # send False. ipykernel keeps the flag of the request being executed.
        return "notebook" if getattr(kernel, "_allow_stdin", False) else "executed"
    isatty = getattr(sys.stderr, "isatty", None)
    return "terminal" if isatty is not None and isatty() else "headless"


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, desc, refresh=True):
        pass

    def set_postfix(self, refresh=True, **kwargs):
        pass

    def close(self):
        pass


def _progress_bar(enabled: bool, total: int | None):
    if not enabled:
        return _NoBar()
    with warnings.catch_warnings():
        # Without ipywidgets, tqdm.auto warns once and falls back to a text bar: fine.
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True)


class _LivePlot:
    """Loss/accuracy figure in a notebook: redrawn every epoch ("live") or once ("final").

    The figure is made without pyplot and sent as a PNG display, so it never lingers in
    pyplot to be shown a second time when the cell ends.
    """

    def __init__(self, mode: str | None):
        self.mode = mode
        self._handle = None
        self._drawn: tuple[int, int, str | None] | None = None

    def epoch_end(self, history: History) -> None:
        if self.mode == "live":
            self._show(history)

    def finish(self, history: History) -> None:
        if self.mode is not None and history.steps:
            self._show(history)

    def _show(self, history: History) -> None:
        key = (len(history.steps), len(history.epochs), history.stop_reason)
        if key == self._drawn:
            return
        self._drawn = key
        from IPython.display import display
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.6), layout="constrained")
        history._draw(fig)
        buf = io.BytesIO()
        # No "Software: matplotlib x.y" entry: the stored PNG should not depend on versions.
        fig.savefig(buf, format="png", dpi=72, metadata={"Software": None})
        bundle = {
            "image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
            "text/plain": "<Figure: training curves>",
        }
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


def _call_hooks(callbacks, hook: str, history: History, model) -> str | None:
    """Run ``hook`` on every callback; the first non-empty string returned stops training."""
    reason = None
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            out = fn(history, model)
            if out and reason is None:
                reason = str(out)
    return reason


# ----------------------------------------------------------------------------- evaluate


class _Tally:
    """Running mean loss and accuracy over an epoch's batches (accuracy None for targets
    that are not class labels)."""

    def __init__(self):
        self.loss_sum, self.seen, self.correct, self.counted = 0.0, 0, 0, 0

    def add(self, loss: float, n: int, hits: tuple[int, int] | None) -> None:
        self.loss_sum += loss * n
        self.seen += n
        if hits is not None:
            self.correct += hits[0]
            self.counted += hits[1]

    @property
    def loss(self) -> float:
        return self.loss_sum / self.seen

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.counted if self.counted else None


def _evaluate(net, loader, loss_fn, dev, use_amp, who) -> tuple[float, float | None]:
    was_training = net.training
    net.eval()
    tally = _Tally()
    try:
        with torch.no_grad():
            for batch in loader:
                x, y = _split_batch(batch, dev, who)
                with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                    out = net(x)
                    loss = loss_fn(out, y)
                _check_loss(loss, loss_fn)
                tally.add(loss.item(), x.shape[0], _correct(out, y))
    finally:
        net.train(was_training)
    if tally.seen == 0:
        raise ValueError(f"{who}: the loader yielded no batches; it must not be empty")
    return tally.loss, tally.accuracy


def evaluate(
    model: torch.nn.Module,
    loader: Iterable,
    *,
    loss_fn: Callable = F.cross_entropy,
    device=None,
) -> tuple[float, float | None]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode without gradients.

    Args:
        model: the network; its train/eval mode is restored afterwards.
        loader: yields ``(inputs, targets)`` batches.
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` averaged over the batch (torch's
            default ``reduction='mean'``); batch losses are weighted by batch size.
            Default ``F.cross_entropy``.
        device: ``None`` (default) uses the model's device; ``"auto"``, a name or a
            ``torch.device`` moves the model there first.

    Returns:
        ``(loss, accuracy)``; accuracy is the fraction of ``argmax(outputs, dim=1) ==
        targets`` (per pixel for dense outputs), or ``None`` if targets are not class indices.

    Raises:
        ValueError: if the loader is empty or ``loss_fn`` returns a non-scalar.

    A NumPy model (:class:`d2lcnn.numpy.nn.Module`) runs with ``training=False`` and
    cross-entropy; ``loss_fn`` must then be the default and ``device`` ``None``, ``"auto"``
    or ``"cpu"``.
    """
    if isinstance(model, _NumpyModule):
        _check_numpy_options(loss_fn=loss_fn, device=device, who="evaluate")
        return _evaluate_numpy(model, loader, "evaluate")
    dev = _resolve_device(device, model)
    model.to(dev)
    return _evaluate(model, loader, loss_fn, dev, False, "evaluate")


def predict(
    model: torch.nn.Module,
    data,
    *,
    device=None,
    batch_size: int = 256,
    probs: bool = False,
) -> torch.Tensor:
    """The model's outputs for every example, in order, on the CPU.

    Args:
        model: the network; run in eval mode without gradients (its mode is restored).
        data: a tensor of inputs ``(N, ...)``, or a loader yielding inputs or
            ``(inputs, targets)`` pairs (the targets are ignored).
        device: as in :func:`evaluate`.
        batch_size: batch size when ``data`` is a tensor. Default 256.
        probs: return ``softmax(outputs, dim=1)`` instead of the raw logits.

    Returns:
        A tensor ``(N, ...)`` of logits (or probabilities), on the CPU. For a NumPy model
        (``data`` a tensor, an array or a loader; run with ``training=False``), a NumPy
        array in the model's dtype: each backend answers in its own kind of array.

    Raises:
        ValueError: if ``data`` holds no examples or ``batch_size < 1``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(model, _NumpyModule):
        _check_numpy_options(device=device, who="predict")
        return _predict_numpy(model, data, batch_size, probs)
    dev = _resolve_device(device, model)
    model.to(dev)
    batches = data.split(batch_size) if isinstance(data, torch.Tensor) else data
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad():
            for batch in batches:
                x = batch[0] if isinstance(batch, list | tuple) else batch
                out = model(x.to(dev))
                outs.append((out.softmax(dim=1) if probs else out).cpu())
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("predict: data holds no examples")
    return torch.cat(outs)


# ----------------------------------------------------------------------------- checkpoints


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "_orig_mod", model)  # a torch.compile'd module wraps the original


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    *,
    epoch: int,
    history: History | None = None,
    extra: dict | None = None,
) -> Path:
    """Write model, optimizer, scheduler, history and torch's RNG state to ``path`` atomically.

    The checkpoint is first written to a temporary file in the same directory, flushed to
    disk, then renamed over ``path`` with ``os.replace`` (atomic on POSIX and Windows): a
    crash while saving leaves the previous checkpoint intact, never a truncated file.

    Args:
        path: destination file; its directory must exist.
        model, optimizer, scheduler: saved through their ``state_dict()``; optimizer and
            scheduler may be ``None``.
        epoch: the number of completed epochs.
        history: the run's :class:`History` (stored as plain columns).
        extra: more entries (tensors and plain Python values only).

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"save_checkpoint: directory {path.parent} does not exist")
    state = {
        "format": _CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "model": _unwrap(model).state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "history": None if history is None else history.as_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        "extra": dict(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    *,
    map_location="cpu",
) -> dict[str, Any]:
    """Load a :func:`save_checkpoint` file into ``model`` (and optimizer/scheduler if given).

    Loads with ``weights_only=True`` (no arbitrary code runs). Tensors land on the devices of
    the objects they are loaded into. Torch's global RNG is NOT restored here (``fit`` does
    that when resuming); its saved state is in the returned ``"rng"``.

    Returns:
        ``{"epoch": int, "history": History | None, "rng": dict, "extra": dict}``.

    Raises:
        FileNotFoundError: if ``path`` does not exist. ValueError: if it is not a d2lcnn
        checkpoint, or it lacks the optimizer/scheduler state asked for.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"load_checkpoint: {path} is not a {_CHECKPOINT_FORMAT} checkpoint")
    _unwrap(model).load_state_dict(state["model"])
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None:
            if state[name] is None:
                raise ValueError(f"load_checkpoint: {path} holds no {name} state")
            obj.load_state_dict(state[name])
    history = None if state["history"] is None else History.from_dict(state["history"])
    return {
        "epoch": state["epoch"],
        "history": history,
        "rng": state["rng"],
        "extra": state["extra"],
    }


# ----------------------------------------------------------------------------- callbacks


class EarlyStopping:
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    A callback for :func:`fit`. Its state (best value, epochs waited) is saved in
    checkpoints, so a resumed run stops where the uninterrupted one would.

    Args:
        patience: epochs without improvement tolerated. Default 3.
        monitor: an :class:`EpochRecord` field. Default ``"val_loss"``.
        min_delta: smallest change counted as an improvement. Default 0.
        mode: ``"min"`` or ``"max"``; default ``"max"`` for accuracies, else ``"min"``.
    """

    def __init__(
        self,
        patience: int = 3,
        *,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        mode: str | None = None,
    ):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        names = [f.name for f in fields(EpochRecord)]
        if monitor not in names:
            raise ValueError(f"EarlyStopping: monitor must be one of {names}, got {monitor!r}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        mode = mode or ("max" if monitor.endswith("accuracy") else "min")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.monitor, self.min_delta, self.mode = patience, monitor, min_delta, mode
        self.on_fit_start(None, None)

    def on_fit_start(self, history, model) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def on_epoch_end(self, history: History, model) -> str | None:
        record = history.epochs[-1]
        value = getattr(record, self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping: monitor={self.monitor!r} was not recorded (pass a val_loader "
                "to fit, or monitor a training metric)"
            )
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.best_epoch, self.wait = value, record.epoch, 0
            return None
        self.wait += 1
        if self.wait >= self.patience:
            return (
                f"early stopping: {self.monitor} has not improved for {self.patience} epochs "
                f"(best {self.best:.4g} at epoch {self.best_epoch})"
            )
        return None

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


# ----------------------------------------------------------------------------- fit


def _check_fit_args(
    model,
    optimizer,
    scheduler,
    epochs,
    clip_grad_norm,
    explode_factor,
    scheduler_step,
    callbacks,
    progress,
    live_plot,
) -> list:
    numpy_model = isinstance(model, _NumpyModule)
    if numpy_model:
        if not isinstance(optimizer, _NumpyOptimizer):
            raise TypeError(
                "fit: a NumPy model needs a d2lcnn.numpy.optim optimizer, "
                f"got {type(optimizer).__name__}"
            )
    elif not isinstance(model, torch.nn.Module):
        raise TypeError(
            "fit: model must be a torch.nn.Module or a d2lcnn.numpy.nn.Module, "
            f"got {type(model).__name__}"
        )
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"fit: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be an int >= 1, got {epochs!r}")
    if scheduler_step not in ("epoch", "step"):
        raise ValueError(f"fit: scheduler_step must be 'epoch' or 'step', got {scheduler_step!r}")
    if numpy_model:
        if scheduler is not None and not callable(scheduler):
            raise TypeError(
                "fit: a NumPy model's scheduler must be a function t -> lr (see "
                f"d2lcnn.schedules), got {type(scheduler).__name__}"
            )
    elif scheduler is not None:
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError(
                f"fit: scheduler must have a step() method, got {type(scheduler).__name__}"
            )
        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if plateau and scheduler_step != "epoch":
            raise ValueError("fit: ReduceLROnPlateau needs scheduler_step='epoch', got 'step'")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"fit: clip_grad_norm must be None or > 0, got {clip_grad_norm!r}")
    if explode_factor is not None and not explode_factor > 1:
        raise ValueError(f"fit: explode_factor must be None or > 1, got {explode_factor!r}")
    for name, value in (("progress", progress), ("live_plot", live_plot)):
        if value not in ("auto", True, False):
            raise ValueError(f"fit: {name} must be 'auto', True or False, got {value!r}")
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not any(callable(getattr(cb, h, None)) for h in _HOOKS):
            raise TypeError(
                f"fit: callbacks[{i}] ({type(cb).__name__}) has none of the methods {_HOOKS}"
            )
    return callbacks


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
    warnings.warn(f"fit: {feature}=True ignored on {dev}: {why}", UserWarning, stacklevel=3)
    return False


def _displays(progress, live_plot, stacklevel: int) -> tuple[bool, _LivePlot]:
    """Whether to show a progress bar, and the live plot, for where ``fit`` runs
    (``stacklevel`` points a warning at the caller of ``fit``)."""
    where = _frontend()
    show_bar = where in ("notebook", "terminal") if progress == "auto" else progress
    if live_plot == "auto":
        plot_mode = {"notebook": "live", "executed": "final"}.get(where)
    else:
        plot_mode = "live" if live_plot and where in ("notebook", "executed") else None
        if live_plot and plot_mode is None:
            warnings.warn(
                "fit: live_plot=True needs a Jupyter kernel; call history.plot()",
                UserWarning,
                stacklevel=stacklevel,
            )
    return show_bar, _LivePlot(plot_mode)


def fit(
    model: torch.nn.Module | _NumpyModule,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | _NumpyOptimizer,
    scheduler=None,
    loss_fn: Callable = F.cross_entropy,
    device="auto",
    clip_grad_norm: float | None = None,
    amp: bool = False,
    compile: bool = False,
    callbacks: Iterable = (),
    progress="auto",
    live_plot="auto",
    explode_factor: float | None = 3.0,
    scheduler_step: str = "epoch",
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> History:
    """Train ``model`` for ``epochs`` epochs of minibatch gradient descent.

    Each step: ``zero_grad`` → forward → ``loss_fn`` → backward → global gradient norm
    (recorded) → optional clipping → ``optimizer.step()`` (→ ``scheduler.step()`` if
    ``scheduler_step="step"``). Each epoch ends with validation, the epoch scheduler step,
    the callbacks and the checkpoint.

    Training stops early — with a ``RuntimeWarning``, the reason in
    ``history.stop_reason``, and the History returned (never an exception) — when the loss
    is nan/inf or the gradient norm is not finite, when a batch loss exceeds
    ``explode_factor`` times the first batch's loss (the rule "stop if the cost exceeds 3x
    the original cost"), or when a callback asks to.

    Args:
        model: the network; moved to ``device`` in place.
        train_loader: yields ``(inputs, targets)``; shuffle it with a seeded
            ``generator=`` for reproducible (and exactly resumable) runs.
        val_loader: evaluated after every epoch with :func:`evaluate`, or ``None``.
        epochs: total number of epochs (>= 1), counting those done before a resume.
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters.
        scheduler: a ``torch.optim.lr_scheduler`` (or anything with ``step()``), or ``None``.
            ``ReduceLROnPlateau`` is stepped with the validation loss (train loss without a
            val_loader).
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` with ``reduction='mean'``.
            Default ``F.cross_entropy``.
        device: ``"auto"`` (CUDA, then MPS, then CPU; see :func:`d2lcnn.torch.device`),
            a name, or a ``torch.device``.
        clip_grad_norm: rescale the gradients so their global L2 norm is at most this, or
            ``None``. ``StepRecord.grad_norm`` is always the norm BEFORE clipping, so it shows
            how often and how much clipping acted.
        amp: mixed precision (float16 autocast + ``GradScaler``) on CUDA. On other devices it
            is ignored with a warning: CPU bfloat16 autocast is rarely faster for the book's
            small convnets and would change the numbers an executed chapter stores.
        compile: ``torch.compile`` the model, on CUDA only (ignored with a warning elsewhere,
            where compiling takes longer than the book's trainings).
        callbacks: objects with any of ``on_fit_start``, ``on_step_end``, ``on_epoch_end``,
            ``on_fit_end``, each called as ``hook(history, model)``; returning a non-empty
            string stops training with that string as the reason. Callbacks with
            ``state_dict``/``load_state_dict`` are saved in checkpoints. See
            :class:`EarlyStopping`.
        progress: tqdm progress bar. ``"auto"`` (default) shows it only to a person (a
            Jupyter frontend or a terminal), never in executed notebooks, tests or logs.
        live_plot: loss/accuracy figure. ``"auto"`` (default) redraws it after every epoch for
            a person at a Jupyter frontend, draws it once at the end in a notebook executed by
            nbclient (so the stored output is deterministic), and draws nothing outside
            Jupyter. ``True`` redraws every epoch in any notebook; ``False`` never draws.
        explode_factor: the explosion threshold (> 1), or ``None`` to disable the rule. The
            rule is skipped if the first loss is <= 0.
        scheduler_step: ``"epoch"`` (default) or ``"step"``: when ``scheduler.step()`` runs.
        checkpoint: a file written atomically after every completed epoch, or ``None``.
        resume: if ``checkpoint`` exists, restore model, optimizer, scheduler, history,
            callbacks, torch's RNG and the train loader's generator from it and continue after
            its last completed epoch: the final weights equal those of an uninterrupted run.
            A checkpointed run that had stopped (``stop_reason`` set) is returned as is.
            Default ``False``: start afresh and overwrite.

    NumPy models: ``model`` may be a :class:`d2lcnn.numpy.nn.Module` (a ``Sequential``)
    with ``optimizer`` a :mod:`d2lcnn.numpy.optim` optimizer over ``model.parameters()``.
    The loop and the History are the same; each step converts the batch with ``.numpy()``
    (inputs cast to the dtype of the model's parameters, targets as integer class indices),
    runs ``model.forward(x, training=True)``, :func:`~d2lcnn.numpy.losses.
    cross_entropy_forward`/``_backward``, ``model.backward``, the global gradient norm
    (clipped with :func:`d2lcnn.numpy.clip.clip_grad_norm` if ``clip_grad_norm`` is set) and
    ``optimizer.step(model.gradients())``. Validation runs with ``training=False``. For them:

    - ``scheduler`` is a plain function ``t -> lr`` (e.g. ``functools.partial(cosine_lr,
      lr=0.1, total_steps=T)`` from :mod:`d2lcnn.schedules`); ``fit`` sets
      ``optimizer.lr = scheduler(t)`` before each epoch (``t`` = epochs completed,
      ``scheduler_step="epoch"``) or each step (``t`` = steps completed, ``"step"``), which
      is what ``LambdaLR`` does for a torch model;
    - ``loss_fn`` must be the default (cross-entropy);
    - ``device`` must be ``"auto"`` or ``"cpu"``, and ``amp``/``compile`` ``False``:
      asking for anything else raises ``ValueError`` (there is nothing to ignore quietly);
    - ``checkpoint`` is not supported yet (``ValueError``).

    Returns:
        The :class:`History`.

    Raises:
        ValueError: bad ``epochs``, ``scheduler_step``, ``clip_grad_norm``,
            ``explode_factor``, ``progress``, ``live_plot``; an empty loader; a non-scalar
            loss; a checkpoint holding more than ``epochs`` epochs; for a NumPy model, an
            option it does not support (see above).
        TypeError: a model, optimizer, scheduler, callback or batch of the wrong kind.
    """
    callbacks = _check_fit_args(
        model,
        optimizer,
        scheduler,
        epochs,
        clip_grad_norm,
        explode_factor,
        scheduler_step,
        callbacks,
        progress,
        live_plot,
    )
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is not None and hasattr(loader, "__len__") and len(loader) == 0:
            raise ValueError(f"fit: {name} is empty (len 0); it must yield at least one batch")
    if isinstance(model, _NumpyModule):
        _check_numpy_options(
            loss_fn=loss_fn, device=device, amp=amp, compile=compile, checkpoint=checkpoint
        )
        return _fit_numpy(
            model,
            train_loader,
            val_loader,
            epochs=epochs,
            optimizer=optimizer,
            scheduler=scheduler,
            clip_grad_norm=clip_grad_norm,
            callbacks=callbacks,
            progress=progress,
            live_plot=live_plot,
            explode_factor=explode_factor,
            scheduler_step=scheduler_step,
        )
    dev = _resolve_device(device)
    model.to(dev)
    use_amp = _enabled_on("amp", amp, dev)
    net = torch.compile(model) if _enabled_on("compile", compile, dev) else model
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    show_bar, live = _displays(progress, live_plot, stacklevel=3)

    history = History()
    _call_hooks(callbacks, "on_fit_start", history, model)
    start_epoch = 1
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model, optimizer, scheduler)
        if state["epoch"] > epochs:
            raise ValueError(
                f"fit: checkpoint {checkpoint} holds {state['epoch']} epochs, more than "
                f"epochs={epochs}"
            )
        history = state["history"] or History()
        start_epoch = state["epoch"] + 1
        _restore_state(state, train_loader, callbacks, scaler)

    n_batches = len(train_loader) if hasattr(train_loader, "__len__") else None
    remaining = 0 if history.stop_reason else epochs - start_epoch + 1
    bar = _progress_bar(show_bar, None if n_batches is None else remaining * n_batches)
    step = history.steps[-1].step if history.steps else 0
    t0 = time.perf_counter() - (history.steps[-1].time if history.steps else 0.0)
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for epoch in range(start_epoch, start_epoch + remaining):
            bar.set_description(f"epoch {epoch}/{epochs}", refresh=False)
            epoch_start = time.perf_counter()
            epoch_lr = _lr(optimizer)
            net.train()
            tally = _Tally()
            for batch in train_loader:
                x, y = _split_batch(batch, dev, "fit: train_loader")
                lr = _lr(optimizer)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                    out = net(x)
                    loss = loss_fn(out, y)
                _check_loss(loss, loss_fn)
                loss_value = loss.item()
                step += 1
                reason = _loss_problem(loss_value, history, explode_factor, step, epoch)
                grad_norm = math.nan
                if reason is None:
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.unscale_(optimizer)
                    else:
                        loss.backward()
                    grads = [p.grad for p in params if p.grad is not None]
                    norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
                    grad_norm = norm.item()
                    if not math.isfinite(grad_norm) and scaler is None:
                        reason = f"gradient norm is {grad_norm} at step {step} (epoch {epoch})"
                    else:
                        if clip_grad_norm is not None and grads:
                            torch.nn.utils.clip_grads_with_norm_(params, clip_grad_norm, norm)
                        if scaler is not None:
                            scaler.step(optimizer)  # skips the update if grads are inf/nan
                            scaler.update()
                        else:
                            optimizer.step()
                        if scheduler is not None and scheduler_step == "step":
                            scheduler.step()
                history.steps.append(
                    StepRecord(step, epoch, loss_value, lr, grad_norm, time.perf_counter() - t0)
                )
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
                if reason is not None:
                    warnings.warn(f"fit stopped: {reason}", RuntimeWarning, stacklevel=2)
                    history.stop_reason = reason
                    break
                tally.add(loss_value, x.shape[0], _correct(out.detach(), y))
                history.stop_reason = _call_hooks(callbacks, "on_step_end", history, model)
                if history.stop_reason:
                    break
            if history.stop_reason:
                break  # an interrupted epoch gets no EpochRecord and no checkpoint
            if tally.seen == 0:
                raise ValueError(f"fit: train_loader yielded no batches in epoch {epoch}")
            train_loss = tally.loss
            val_loss, val_acc = (
                (None, None)
                if val_loader is None
                else _evaluate(net, val_loader, loss_fn, dev, use_amp, "fit: val_loader")
            )
            if scheduler is not None and scheduler_step == "epoch":
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(train_loss if val_loss is None else val_loss)
                else:
                    scheduler.step()
            history.epochs.append(
                EpochRecord(
                    epoch,
                    train_loss,
                    tally.accuracy,
                    val_loss,
                    val_acc,
                    epoch_lr,
                    time.perf_counter() - epoch_start,
                )
            )
            live.epoch_end(history)
            history.stop_reason = _call_hooks(callbacks, "on_epoch_end", history, model)
            if checkpoint is not None:
                extra = {
                    "generators": [g.get_state() for g in _loader_generators(train_loader)],
                    "callbacks": [
                        cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks
                    ],
                    "scaler": None if scaler is None else scaler.state_dict(),
                }
                save_checkpoint(
                    checkpoint,
                    model,
                    optimizer,
                    scheduler,
                    epoch=epoch,
                    history=history,
                    extra=extra,
                )
            if history.stop_reason:
                break
    finally:
        bar.close()
    _call_hooks(callbacks, "on_fit_end", history, model)
    live.finish(history)
    return history


def _loss_problem(loss: float, history: History, factor, step: int, epoch: int) -> str | None:
    """Why training must stop at this loss, or None."""
    if not math.isfinite(loss):
        return f"loss is {loss} at step {step} (epoch {epoch})"
    if factor is None or not history.steps:
        return None
    initial = history.steps[0].loss
    if initial > 0 and loss > factor * initial:
        return (
            f"loss exploded: {loss:.4g} > {factor:g} x the initial loss {initial:.4g} "
            f"at step {step} (epoch {epoch})"
        )
    return None


def _restore_state(state: dict, train_loader, callbacks: list, scaler) -> None:
    """Put back what a checkpoint saved besides model, optimizer and scheduler."""
    torch.set_rng_state(state["rng"]["torch"])
    cuda = state["rng"]["cuda"]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    extra = state["extra"]
    gens, saved = _loader_generators(train_loader), extra.get("generators", [])
    if len(gens) == len(saved):
        for g, s in zip(gens, saved, strict=True):
            g.set_state(s)
    else:
        warnings.warn(
            f"fit: the checkpoint saved {len(saved)} loader generator(s) but train_loader has "
            f"{len(gens)}; shuffling after the resume will differ from an uninterrupted run",
            RuntimeWarning,
            stacklevel=3,
        )
    for cb, s in zip(callbacks, extra.get("callbacks", []), strict=False):
        if s is not None and hasattr(cb, "load_state_dict"):
            cb.load_state_dict(s)
    if scaler is not None and extra.get("scaler") is not None:
        scaler.load_state_dict(extra["scaler"])


# ----------------------------------------------------------------------------- NumPy models


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


def _numpy_dtype(model: _NumpyModule) -> np.dtype:
    """The dtype of the model's parameters (float32 for a model without any)."""
    for p in model.parameters().values():
        return p.dtype
    return np.dtype(np.float32)


def _numpy_batch(batch, dtype, who: str) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)`` of a batch as NumPy arrays, inputs in ``dtype``."""
    x, y = _split_batch(batch, torch.device("cpu"), who)
    return x.numpy().astype(dtype, copy=False), y.numpy()


def _correct_numpy(out: np.ndarray, y: np.ndarray) -> tuple[int, int] | None:
    return _correct(torch.from_numpy(out), torch.from_numpy(y))


def _evaluate_numpy(model, loader, who) -> tuple[float, float | None]:
    dtype = _numpy_dtype(model)
    tally = _Tally()
    for batch in loader:
        x, y = _numpy_batch(batch, dtype, who)
        out = model.forward(x, training=False)
        loss, _ = cross_entropy_forward(out, y)
        tally.add(float(loss), x.shape[0], _correct_numpy(out, y))
    if tally.seen == 0:
        raise ValueError(f"{who}: the loader yielded no batches; it must not be empty")
    return tally.loss, tally.accuracy


def _predict_numpy(model, data, batch_size: int, probs: bool) -> np.ndarray:
    dtype = _numpy_dtype(model)
    if isinstance(data, torch.Tensor | np.ndarray):
        batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
    else:
        batches = data
    outs = []
    for batch in batches:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        out = model.forward(x.astype(dtype, copy=False), training=False)  # (B, C, ...)
        if probs:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        outs.append(out)
    if not outs:
        raise ValueError("predict: data holds no examples")
    return np.concatenate(outs)


def _fit_numpy(
    model: _NumpyModule,
    train_loader,
    val_loader,
    *,
    epochs: int,
    optimizer: _NumpyOptimizer,
    scheduler: Callable[[int], float] | None,
    clip_grad_norm: float | None,
    callbacks: list,
    progress,
    live_plot,
    explode_factor: float | None,
    scheduler_step: str,
) -> History:
    """:func:`fit`'s loop for a NumPy model: the same steps, records and stopping rules."""
    show_bar, live = _displays(progress, live_plot, stacklevel=4)
    dtype = _numpy_dtype(model)
    history = History()
    _call_hooks(callbacks, "on_fit_start", history, model)
    n_batches = len(train_loader) if hasattr(train_loader, "__len__") else None
    bar = _progress_bar(show_bar, None if n_batches is None else epochs * n_batches)
    step = 0
    t0 = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            bar.set_description(f"epoch {epoch}/{epochs}", refresh=False)
            epoch_start = time.perf_counter()
            if scheduler is not None:  # as LambdaLR: the lr the next step will use
                optimizer.lr = float(scheduler(epoch - 1 if scheduler_step == "epoch" else step))
            epoch_lr = float(optimizer.lr)
            tally = _Tally()
            for batch in train_loader:
                x, y = _numpy_batch(batch, dtype, "fit: train_loader")
                if scheduler is not None and scheduler_step == "step":
                    optimizer.lr = float(scheduler(step))
                lr = float(optimizer.lr)
                out = model.forward(x, training=True)  # (B, classes)
                loss, cache = cross_entropy_forward(out, y)
                loss_value = float(loss)
                step += 1
                reason = _loss_problem(loss_value, history, explode_factor, step, epoch)
                grad_norm = math.nan
                if reason is None:
                    model.backward(cross_entropy_backward(np.ones((), out.dtype), cache))
                    grads = model.gradients()  # the layers' own arrays: clipped in place
                    if clip_grad_norm is not None:
                        grad_norm = _np_clip_grad_norm(grads, clip_grad_norm)
                    else:
                        norms = [np.linalg.norm(g.ravel()) for g in grads.values()]
                        grad_norm = float(np.linalg.norm(norms)) if norms else 0.0
                    if not math.isfinite(grad_norm):
                        reason = f"gradient norm is {grad_norm} at step {step} (epoch {epoch})"
                    else:
                        optimizer.step(grads)
                history.steps.append(
                    StepRecord(step, epoch, loss_value, lr, grad_norm, time.perf_counter() - t0)
                )
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
                if reason is not None:
                    warnings.warn(f"fit stopped: {reason}", RuntimeWarning, stacklevel=3)
                    history.stop_reason = reason
                    break
                tally.add(loss_value, x.shape[0], _correct_numpy(out, y))
                history.stop_reason = _call_hooks(callbacks, "on_step_end", history, model)
                if history.stop_reason:
                    break
            if history.stop_reason:
                break
            if tally.seen == 0:
                raise ValueError(f"fit: train_loader yielded no batches in epoch {epoch}")
            val_loss, val_acc = (
                (None, None)
                if val_loader is None
                else _evaluate_numpy(model, val_loader, "fit: val_loader")
            )
            history.epochs.append(
                EpochRecord(
                    epoch,
                    tally.loss,
                    tally.accuracy,
                    val_loss,
                    val_acc,
                    epoch_lr,
                    time.perf_counter() - epoch_start,
                )
            )
            live.epoch_end(history)
            history.stop_reason = _call_hooks(callbacks, "on_epoch_end", history, model)
            if history.stop_reason:
                break
    finally:
        bar.close()
    _call_hooks(callbacks, "on_fit_end", history, model)
    live.finish(history)
    return history
