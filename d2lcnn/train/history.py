"""What :func:`~d2lcnn.train.fit` records: a :class:`StepRecord` per optimizer step, an
:class:`EpochRecord` per completed epoch, both in a :class:`History` that also plots them.

Nothing here imports torch or matplotlib: :meth:`History.plot` imports pyplot when called.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["StepRecord", "EpochRecord", "History"]


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

    ``records`` is where callbacks write what they measure: ``records[key]`` is a list of
    rows, each a dict of plain Python values (numbers, strings, lists of numbers, ``None``),
    appended as the run goes. Each callback documents its key and its rows, e.g.
    :class:`d2lcnn.diagnostics.UpdateRatio` appends ``{"step": 12, "layer": "features.0",
    "ratio": 1.3e-3}`` to ``records["update_ratio"]``. Being plain values, the rows travel with
    the History into checkpoints (so a resumed run keeps the rows of the epochs before it)
    and through :meth:`as_dict`. Empty unless a callback writes to it.
    """

    steps: list[StepRecord] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    stop_reason: str | None = None
    records: dict[str, list] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Columns of plain Python values: ``{"steps": {"loss": [...], ...}, "epochs": {...},
        "stop_reason": ..., "records": {key: [row, ...]}}``, ready for ``json.dump`` (except
        nan) or ``torch.save``. The records are a deep copy."""
        return {
            "steps": {f.name: [getattr(r, f.name) for r in self.steps] for f in fields(StepRecord)},
            "epochs": {
                f.name: [getattr(r, f.name) for r in self.epochs] for f in fields(EpochRecord)
            },
            "stop_reason": self.stop_reason,
            "records": copy.deepcopy(self.records),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """The inverse of :meth:`as_dict`. A dict without ``"records"`` (written before
        History had them) gives empty records."""

        def rows(columns, record):
            names = [f.name for f in fields(record)]
            return [record(*values) for values in zip(*(columns[n] for n in names), strict=True)]

        return cls(
            rows(data["steps"], StepRecord),
            rows(data["epochs"], EpochRecord),
            data["stop_reason"],
            copy.deepcopy(dict(data.get("records") or {})),
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
