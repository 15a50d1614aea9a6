"""The one training loop: :func:`fit`, :func:`evaluate` and :func:`predict`, for torch and
NumPy models alike.

What a backend does its own way (moving and converting batches, the forward and backward
passes, mixed precision, clipping, the optimizer and scheduler steps, train/eval mode) is
in its step object, :class:`~d2lcnn.train.steps.TorchStep` or
:class:`~d2lcnn.train.steps.NumpyStep`. Everything else is here, once: epochs and steps,
the :class:`~d2lcnn.train.history.History`, the stopping rules (a non-finite loss or
gradient norm, the explosion rule, callbacks), validation, the progress bar, the live plot
and the checkpoints. One training step is::

    lr = step.start_step(t)                                   # the lr this step uses
    loss, n = step.forward(batch, who, training=True)         # loss value, batch size
    grad_norm, applied = step.update()                        # backward ... optimizer step
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from d2lcnn.numpy.nn import Module as _NumpyModule
from d2lcnn.numpy.optim import Optimizer as _NumpyOptimizer
from d2lcnn.train.callbacks import _HOOKS, _call_hooks
from d2lcnn.train.checkpoint import _resume, _save_progress
from d2lcnn.train.display import _displays, _LivePlot, _progress_bar
from d2lcnn.train.distributed import (
    _SINGLE,
    _data_parallel,
    _eval_shard,
    _Ranks,
    _ranks,
    _set_epoch,
    _train_shard,
)
from d2lcnn.train.history import EpochRecord, History, StepRecord
from d2lcnn.train.steps import NumpyStep, TorchStep, _inference_step, _training_step

__all__ = ["fit", "evaluate", "predict"]

_Step = TorchStep | NumpyStep


# ----------------------------------------------------------------------------- fit


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
    distributed: bool | str = "auto",
    sync_batchnorm: bool = False,
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
        distributed: data-parallel training across processes (see below). ``"auto"``
            (default): distributed if a process group is initialised, or if torchrun's
            environment variables are set (the group is then initialised here); else a
            single process, exactly as before. ``True``: the same, but ``ValueError`` if
            there is neither group nor torchrun. ``False``: a single process even inside a
            group (each rank trains its own copy).
        sync_batchnorm: when distributed, convert the model's BatchNorm layers to
            ``torch.nn.SyncBatchNorm`` in place, so batch statistics are computed over the
            global batch (``world_size * batch_size``) instead of each rank's shard: the
            numbers then equal one process at the global batch, at the price of one more
            all-reduce per BatchNorm layer in every forward and backward pass (slower,
            above all across machines). Default ``False``: each rank normalises with its own
            shard's statistics (and DDP copies rank 0's running statistics to all ranks),
            which is cheaper and for shards of 32+ samples usually as good. Ignored in a
            single process (BatchNorm already sees the whole batch). ``ValueError`` on the
            CPU, where torch's ``SyncBatchNorm`` does not run.

    Distributed (``torchrun --nproc_per_node=N script.py``, no change to the script): the
    model is wrapped in ``DistributedDataParallel`` (rank 0's weights are copied to all ranks;
    the gradients are averaged across ranks in every backward pass); a ``DataLoader``
    ``train_loader`` is rebuilt with a ``DistributedSampler`` seeded with the loader's
    generator seed, reshuffled every epoch with ``set_epoch`` (the same permutation on
    every rank, each rank taking every N-th sample; padded to a multiple of N unless
    ``drop_last``), keeping ``batch_size`` per rank: the global batch is N times the
    loader's. ``val_loader`` is split without padding (rank r takes samples r, r+N, ...).
    Every loss and accuracy recorded in the History is global (sums of ``loss * batch
    size``, samples and correct predictions over all ranks, divided once), so every rank
    returns the same History and stops at the same step. The progress bar, the live plot
    and the checkpoints are rank 0's only; the checkpoint holds the unwrapped model's
    ``state_dict`` and loads into a plain model (and resumes a run of any world size).
    The backend is ``gloo`` on the CPU and ``nccl`` for CUDA tensors. Iterables that are
    not ``DataLoader`` s, and loaders with a ``DistributedSampler``, are used as given
    (sharding them is then the caller's job). ``model`` itself is never wrapped: after
    ``fit`` it holds the trained weights on every rank.

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
    - ``checkpoint`` is not supported yet (``ValueError``);
    - ``distributed`` training is not supported (``ValueError`` inside a process group or
      under torchrun unless ``distributed=False``).

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
        train_loader,
        val_loader,
    )
    if not isinstance(sync_batchnorm, bool):
        raise ValueError(f"fit: sync_batchnorm must be True or False, got {sync_batchnorm!r}")
    ranks = _ranks(distributed, "fit")
    if ranks.enabled and isinstance(model, _NumpyModule):
        raise ValueError(
            "fit: a NumPy model trains in one process; pass distributed=False "
            f"(running as rank {ranks.rank} of {ranks.world_size})"
        )
    train_loader = _train_shard(train_loader, ranks, "fit: train_loader")
    step = _training_step(
        model,
        optimizer,
        scheduler,
        loss_fn=loss_fn,
        device=device,
        clip_grad_norm=clip_grad_norm,
        amp=amp,
        compile=compile,
        scheduler_step=scheduler_step,
        checkpoint=checkpoint,
        wrap=_data_parallel(ranks, sync_batchnorm),
    )
    show_bar, live = _displays(progress, live_plot, stacklevel=3, shown=ranks.is_main)
    history = History()
    _call_hooks(callbacks, "on_fit_start", history, model)
    start_epoch = 1
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history, start_epoch = _resume(checkpoint, step, train_loader, callbacks, epochs)
    remaining = 0 if history.stop_reason else epochs - start_epoch + 1
    n_batches = len(train_loader) if hasattr(train_loader, "__len__") else None
    run = _Run(
        history,
        epochs,
        callbacks,
        explode_factor,
        checkpoint,
        live,
        bar=_progress_bar(show_bar, None if n_batches is None else remaining * n_batches),
        steps=history.steps[-1].step if history.steps else 0,
        t0=time.perf_counter() - (history.steps[-1].time if history.steps else 0.0),
        ranks=ranks,
    )
    try:
        _train(step, train_loader, val_loader, run, range(start_epoch, start_epoch + remaining))
    finally:
        run.bar.close()
    _call_hooks(callbacks, "on_fit_end", history, model)
    live.finish(history)
    return history


@dataclass
class _Run:
    """What one call of :func:`fit` trains with besides its step object, and its progress."""

    history: History
    epochs: int  # total, counting those done before a resume
    callbacks: list
    explode_factor: float | None
    checkpoint: str | os.PathLike | None
    live: _LivePlot
    bar: Any  # a tqdm bar, or a stand-in that shows nothing
    steps: int  # optimizer steps done so far (continues on resume)
    t0: float  # time.perf_counter() when training began (earlier on resume)
    ranks: _Ranks = _SINGLE  # the processes training together (one, unless distributed)


def _train(step: _Step, train_loader, val_loader, run: _Run, epochs: range) -> None:
    """Train for ``epochs``, recording into ``run.history`` (the loop of :func:`fit`)."""
    history = run.history
    for epoch in epochs:
        run.bar.set_description(f"epoch {epoch}/{run.epochs}", refresh=False)
        epoch_start = time.perf_counter()
        epoch_lr = step.start_epoch(epoch, run.steps)
        _set_epoch(train_loader, epoch)
        tally = _Tally()
        for batch in train_loader:
            if _train_step(step, run, batch, epoch, tally):
                return  # an interrupted epoch gets no EpochRecord and no checkpoint
        if tally.seen == 0:
            raise ValueError(f"fit: train_loader yielded no batches in epoch {epoch}")
        val_loss, val_acc = (
            (None, None)
            if val_loader is None
            else _evaluate(_eval_step(step, run.ranks), val_loader, "fit: val_loader", run.ranks)
        )
        step.end_epoch(tally.loss, val_loss)
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
        run.live.epoch_end(history)
        history.stop_reason = _call_hooks(run.callbacks, "on_epoch_end", history, step.model)
        if run.checkpoint is not None and run.ranks.is_main:
            _save_progress(
                run.checkpoint,
                step,
                epoch=epoch,
                history=history,
                train_loader=train_loader,
                callbacks=run.callbacks,
            )
        run.ranks.barrier()  # no rank runs ahead of a checkpoint being written
        if history.stop_reason:
            return


def _train_step(step: _Step, run: _Run, batch, epoch: int, tally: _Tally) -> bool:
    """One optimizer step on ``batch``, recorded; True if training must stop."""
    history = run.history
    lr = step.start_step(run.steps)
    loss, n = step.forward(batch, "fit: train_loader", training=True)
    loss, n, hits = _global(run.ranks, loss, n, step.hits(), step)
    run.steps += 1
    reason = _loss_problem(loss, history, run.explode_factor, run.steps, epoch)
    grad_norm = math.nan
    if reason is None:
        grad_norm, applied = step.update()
        if not applied:
            reason = f"gradient norm is {grad_norm} at step {run.steps} (epoch {epoch})"
    elapsed = time.perf_counter() - run.t0
    history.steps.append(StepRecord(run.steps, epoch, loss, lr, grad_norm, elapsed))
    run.bar.update(1)
    run.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    if reason is not None:
        if run.ranks.is_main:
            # stacklevel: fit -> _train -> here, so the warning names the caller of fit
            warnings.warn(f"fit stopped: {reason}", RuntimeWarning, stacklevel=4)
        history.stop_reason = reason
        return True
    tally.add(loss, n, hits)
    history.stop_reason = _call_hooks(run.callbacks, "on_step_end", history, step.model)
    return bool(history.stop_reason)


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
    train_loader,
    val_loader,
) -> list:
    """Refuse bad arguments to :func:`fit`, by name; the callbacks as a list."""
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
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is not None and hasattr(loader, "__len__") and len(loader) == 0:
            raise ValueError(f"fit: {name} is empty (len 0); it must yield at least one batch")
    return callbacks


# ----------------------------------------------------------------------------- evaluate, predict


def evaluate(
    model: torch.nn.Module,
    loader: Iterable,
    *,
    loss_fn: Callable = F.cross_entropy,
    device=None,
    distributed: bool | str = "auto",
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
        distributed: as in :func:`fit` (default ``"auto"``: in a process group, or under
            torchrun). Distributed, a ``DataLoader`` is split across the ranks without
            padding (rank r evaluates samples r, r+N, ...; every sample counted once) and the
            sums of ``loss * batch size``, samples and correct predictions are added up
            across ranks before dividing: every rank returns the same global numbers, equal
            to a single-process evaluation up to float round-off. Any other iterable is
            evaluated whole on every rank.

    Returns:
        ``(loss, accuracy)``; accuracy is the fraction of ``argmax(outputs, dim=1) ==
        targets`` (per pixel for dense outputs), or ``None`` if targets are not class indices.

    Raises:
        ValueError: if the loader is empty or ``loss_fn`` returns a non-scalar.

    A NumPy model (:class:`d2lcnn.numpy.nn.Module`) runs with ``training=False`` and
    cross-entropy; ``loss_fn`` must then be the default and ``device`` ``None``, ``"auto"``
    or ``"cpu"``.
    """
    ranks = _ranks(distributed, "evaluate")
    step = _inference_step(model, loss_fn=loss_fn, device=device, who="evaluate")
    return _evaluate(step, loader, "evaluate", ranks)


def _evaluate(step: _Step, loader, who: str, ranks: _Ranks = _SINGLE) -> tuple[float, float | None]:
    """Mean loss and accuracy over ``loader`` in eval mode (``who`` names it in errors);
    over all ranks' shards when distributed."""
    loader, split = _eval_shard(loader, ranks, who)
    tally = _Tally()
    with step.evaluating():
        for batch in loader:
            loss, n = step.forward(batch, who, training=False)
            tally.add(loss, n, step.hits())
    if split:
        sums = [tally.loss_sum, tally.seen, tally.correct, tally.counted]
        sums = ranks.sum(sums, getattr(step, "device", torch.device("cpu")))
        tally.loss_sum, tally.seen, tally.correct, tally.counted = sums[0], *map(int, sums[1:])
    if tally.seen == 0:
        raise ValueError(f"{who}: the loader yielded no batches; it must not be empty")
    return tally.loss, tally.accuracy


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

    Under torchrun (or in a process group) every rank computes all the outputs itself:
    there is nothing to reduce, and each rank gets the whole result.

    Returns:
        A tensor ``(N, ...)`` of logits (or probabilities), on the CPU. For a NumPy model
        (``data`` a tensor, an array or a loader; run with ``training=False``), a NumPy
        array in the model's dtype: each backend answers in its own kind of array.

    Raises:
        ValueError: if ``data`` holds no examples or ``batch_size < 1``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be an int >= 1, got {batch_size!r}")
    step = _inference_step(model, device=device, who="predict")
    if isinstance(data, step.array_types):
        batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
    else:
        batches = data
    with step.evaluating():
        outs = [
            step.predict_batch(batch[0] if isinstance(batch, list | tuple) else batch, probs)
            for batch in batches
        ]
    if not outs:
        raise ValueError("predict: data holds no examples")
    return step.concat(outs)


# ----------------------------------------------------------------------------- helpers


def _global(ranks: _Ranks, loss: float, n: int, hits, step: _Step):
    """A training batch's ``(loss, size, hits)`` over all ranks' shards: the global batch."""
    if not ranks.enabled:
        return loss, n, hits
    c, k = hits if hits is not None else (0, 0)
    total, n, c, k = ranks.sum([loss * n, n, c, k], step.device)
    return total / n, int(n), None if hits is None else (int(c), int(k))


def _eval_step(step: _Step, ranks: _Ranks) -> _Step:
    """What validation runs: distributed, the unwrapped model (no DDP collectives, which
    would hang on shards of different lengths); else the training step itself."""
    if not ranks.enabled:
        return step
    return TorchStep(step.model, step.device, step.loss_fn)


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
