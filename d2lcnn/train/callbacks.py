"""Callbacks for :func:`~d2lcnn.train.fit`: objects with any of the hooks in ``_HOOKS``,
each called as ``hook(history, model)``; a non-empty string returned stops training."""

from __future__ import annotations

from dataclasses import fields

from d2lcnn.train.history import EpochRecord, History

__all__ = ["EarlyStopping"]

_HOOKS = ("on_fit_start", "on_step_end", "on_epoch_end", "on_fit_end")


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
