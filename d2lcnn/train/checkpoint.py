"""Checkpoints: :func:`save_checkpoint` (atomic) and :func:`load_checkpoint`, and what
:func:`~d2lcnn.train.fit` adds to them so that a resumed run equals an uninterrupted one
(torch's RNG, the train loader's generators, the callbacks' state, the GradScaler).

``fit`` reaches the model, optimizer, scheduler and scaler through its torch step
(:class:`d2lcnn.train.steps.TorchStep`); NumPy models are not checkpointed yet.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from d2lcnn.train.history import History

__all__ = ["save_checkpoint", "load_checkpoint"]

_CHECKPOINT_FORMAT = "d2lcnn.train/1"


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


# ----------------------------------------------------------------------------- fit's resumes


def _resume(path, step, train_loader, callbacks: list, epochs: int) -> tuple[History, int]:
    """Load ``fit``'s checkpoint into the step's model, optimizer, scheduler and scaler.

    Returns:
        ``(history, first epoch to run)``.
    """
    state = load_checkpoint(path, step.model, step.optimizer, step.scheduler)
    if state["epoch"] > epochs:
        raise ValueError(
            f"fit: checkpoint {path} holds {state['epoch']} epochs, more than epochs={epochs}"
        )
    _restore_state(state, train_loader, callbacks, step.scaler)
    return state["history"] or History(), state["epoch"] + 1


def _save_progress(
    path, step, *, epoch: int, history: History, train_loader, callbacks: list
) -> None:
    """Write ``fit``'s checkpoint after a completed epoch, with what a resume needs."""
    extra = {
        "generators": [g.get_state() for g in _loader_generators(train_loader)],
        "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks],
        "scaler": None if step.scaler is None else step.scaler.state_dict(),
    }
    save_checkpoint(
        path, step.model, step.optimizer, step.scheduler, epoch=epoch, history=history, extra=extra
    )


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
            stacklevel=4,  # fit -> _resume -> here
        )
    for cb, s in zip(callbacks, extra.get("callbacks", []), strict=False):
        if s is not None and hasattr(cb, "load_state_dict"):
            cb.load_state_dict(s)
    if scaler is not None and extra.get("scaler") is not None:
        scaler.load_state_dict(extra["scaler"])


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
