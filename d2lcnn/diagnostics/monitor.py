"""Callbacks that watch a run of :func:`d2lcnn.train.fit` and record into
``history.records`` (:class:`UpdateRatio`, :class:`ActivationStats`), and the tables and plots
of those records."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from d2lcnn.checks import check_int
from d2lcnn.diagnostics.sanity import _torch_model
from d2lcnn.numpy.nn import Module as NumpyModule
from d2lcnn.train.history import History

__all__ = [
    "RULE_OF_THUMB",
    "ActivationStats",
    "UpdateRatio",
    "activation_table",
    "plot_activation_histograms",
    "plot_activation_stats",
    "plot_update_ratios",
    "recorded_steps",
    "update_ratio_table",
]

RULE_OF_THUMB = 1e-3  # a healthy ||update|| / ||weight|| per step (CS231n's heuristic)

# ----------------------------------------------------------------------------- callbacks


class UpdateRatio:
    """Callback: ``||W_after - W_before|| / ||W_before||`` of every layer's weights, per step.

    The size of one update relative to the weights it changes. A rule of thumb (CS231n)
    wants it near 1e-3: much lower (1e-5) and the learning rate is too small, much higher
    (1e-1) and it is too large. Only weights are measured (``weight`` parameters; biases
    are left out), by the name of the module that owns them.

    Rows appended to ``history.records["update_ratio"]``: one per measured layer and
    recorded step, ``{"step": s, "layer": name, "ratio": r}``, for steps ``s`` with
    ``(s - 1) % every == 0`` (1, 1 + every, ...). See :func:`update_ratio_table`.

    Torch models: the weights before an update are copied by a forward pre-hook on the model
    (only in the training forward of a recorded step), so the rows survive a checkpoint resume
    unchanged; the hook is removed at ``on_fit_end``. NumPy models: copied after each step.

    Args:
        every: record one step in ``every``. Default 1.
        layers: module names (as in ``named_modules()``, e.g. ``"features.0"``; for a NumPy
            ``Sequential``, ``"0"``); ``None`` (default) means every module whose ``weight``
            has 2 or more dimensions (convolutions and linear layers, not norm layers).
    """

    key = "update_ratio"

    def __init__(self, every: int = 1, layers: Iterable[str] | None = None):
        self.every = check_int(every, "every", "UpdateRatio", minimum=1)
        self.layers = None if layers is None else _check_names(layers, "UpdateRatio")
        self._handle, self._weights, self._before, self._armed = None, {}, None, True

    def on_fit_start(self, history: History, model) -> None:
        self.remove()
        self._before, self._armed = None, True
        if isinstance(model, NumpyModule):
            owners = {
                k.removesuffix("weight").removesuffix("."): w
                for k, w in model.parameters().items()
                if k.split(".")[-1] == "weight"
            }
            if self.layers is None:
                owners = {k: w for k, w in owners.items() if w.ndim >= 2}
            self._weights = _select(owners, self.layers, "UpdateRatio")
            self._before = {k: w.copy() for k, w in self._weights.items()}
            return
        model = _torch_model(model, "UpdateRatio")
        owners = {
            name: m.weight
            for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.nn.Parameter)
        }
        if self.layers is None:
            owners = {k: w for k, w in owners.items() if w.ndim >= 2}
        self._weights = _select(owners, self.layers, "UpdateRatio")
        self._handle = model.register_forward_pre_hook(self._copy_weights)

    def _copy_weights(self, module, args) -> None:
        if self._armed and self._before is None and module.training and torch.is_grad_enabled():
            self._before = {k: w.detach().clone() for k, w in self._weights.items()}

    def on_step_end(self, history: History, model) -> None:
        s = history.steps[-1].step
        before, self._before = self._before, None
        if before is not None and (s - 1) % self.every == 0:
            rows = history.records.setdefault(self.key, [])
            for name, w in self._weights.items():
                old = before[name]
                if isinstance(w, torch.Tensor):
                    change, size = (w.detach() - old).norm().item(), old.norm().item()
                else:
                    change, size = (
                        float(np.linalg.norm(w - old)),
                        float(np.linalg.norm(old)),
                    )
                rows.append(
                    {
                        "step": s,
                        "layer": name,
                        "ratio": change / size if size > 0 else math.nan,
                    }
                )
        self._armed = s % self.every == 0  # the next step, s + 1, is recorded
        if self._armed and self._handle is None:  # NumPy: the weights before step s + 1
            self._before = {k: w.copy() for k, w in self._weights.items()}

    def on_fit_end(self, history: History, model) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove the hook (``on_fit_end`` does; call it if ``fit`` raised)."""
        if self._handle is not None:
            self._handle.remove()
        self._handle = None


# Elementwise nonlinearities only: not the softmax family, not attention.
_NOT_ELEMENTWISE = (
    torch.nn.Softmax,
    torch.nn.Softmin,
    torch.nn.LogSoftmax,
    torch.nn.Softmax2d,
    torch.nn.MultiheadAttention,
    torch.nn.GLU,
    torch.nn.Threshold,
)


def _watched(m: torch.nn.Module) -> bool:
    """Convolutions, linear layers and activation modules: ActivationStats' default."""
    activation = type(m).__module__ == "torch.nn.modules.activation"
    return isinstance(m, torch.nn.modules.conv._ConvNd | torch.nn.Linear) or (
        activation and not isinstance(m, _NOT_ELEMENTWISE)
    )


class ActivationStats:
    """Callback: statistics and histograms of chosen layers' outputs and their gradients.

    Forward hooks on the layers (and a gradient hook on each output) measure one training
    step in ``every`` (steps 1, 1 + every, ...; validation passes are skipped) and append
    one row per layer and recorded step to ``history.records["activations"]``::

        {"step": s, "layer": name,
         "mean": ..., "std": ...,            # of the layer's outputs over the batch
         "zero_fraction": ...,               # outputs exactly 0 (after a ReLU: inactive)
         "dead_fraction": ...,               # channels/units (dim 1) 0 for the whole batch
         "grad_std": ...,                    # std of d loss / d output (nan without one)
         "counts": [...], "edges": [...],    # histogram of the outputs (bins, bins + 1)
         "grad_counts": [...], "grad_edges": [...]}  # of the gradients ([] without one)

    A module called several times in a step contributes all its calls. The hooks are
    installed at ``on_fit_start`` and removed at ``on_fit_end`` (or by :meth:`remove`);
    they keep no state between steps, so checkpoints and resumes are unaffected, and they
    work under ``DistributedDataParallel`` (each rank records its own shard). With AMP the
    gradients are those of the scaled loss. Torch models only.

    Args:
        every: record one step in ``every``. Default 10.
        layers: module names; ``None`` (default) means every convolution, linear layer and
            activation module (ReLU, Tanh, ...), in the order of ``named_modules()``.
        bins: histogram bins. Default 30.
    """

    key = "activations"

    def __init__(self, every: int = 10, layers: Iterable[str] | None = None, bins: int = 30):
        self.every = check_int(every, "every", "ActivationStats", minimum=1)
        self.layers = None if layers is None else _check_names(layers, "ActivationStats")
        self.bins = check_int(bins, "bins", "ActivationStats", minimum=1)
        self._handles, self._armed, self._acts, self._grads = [], True, {}, {}

    def on_fit_start(self, history: History, model) -> None:
        if isinstance(model, NumpyModule):
            raise TypeError(
                "ActivationStats: needs a torch.nn.Module (forward hooks); "
                "NumPy models are not supported"
            )
        model = _torch_model(model, "ActivationStats")
        self.remove()
        modules = dict(model.named_modules())
        if self.layers is None:
            chosen = {k: m for k, m in modules.items() if k and _watched(m)}
        else:
            chosen = _select(
                {k: m for k, m in modules.items() if k}, self.layers, "ActivationStats"
            )
        self._names = list(chosen)
        self._armed, self._acts, self._grads = True, {}, {}
        for name, module in chosen.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if not (
                self._armed
                and module.training
                and torch.is_grad_enabled()
                and isinstance(output, torch.Tensor)
            ):
                return
            out = output.detach()
            dead = None
            if out.ndim >= 2:  # channels that no example of the batch activates
                dead = (out.transpose(0, 1).reshape(out.shape[1], -1) == 0).all(1).cpu()
            self._acts.setdefault(name, []).append((_copy(out), dead))
            if output.requires_grad:
                output.register_hook(lambda g: self._grads.setdefault(name, []).append(_copy(g)))

        return hook

    def on_step_end(self, history: History, model) -> None:
        s = history.steps[-1].step
        acts, grads, self._acts, self._grads = self._acts, self._grads, {}, {}
        if acts and (s - 1) % self.every == 0:
            rows = history.records.setdefault(self.key, [])
            for name in self._names:
                if name in acts:
                    rows.append(self._row(s, name, acts[name], grads.get(name, [])))
        self._armed = s % self.every == 0

    def _row(self, step: int, name: str, acts: list, grads: list) -> dict:
        with np.errstate(invalid="ignore", over="ignore"):  # inf/nan outputs: nan statistics
            return self._stats(step, name, acts, grads)

    def _stats(self, step: int, name: str, acts: list, grads: list) -> dict:
        a = torch.cat([v for v, _ in acts]).numpy()
        masks = [d for _, d in acts]
        dead = math.nan
        if all(d is not None for d in masks) and len({len(d) for d in masks}) == 1:
            dead = float(torch.stack(masks).all(0).float().mean())
        counts, edges = _histogram(a, self.bins)
        row = {
            "step": step,
            "layer": name,
            "mean": float(a.mean()),
            "std": float(a.std()),
            "zero_fraction": float((a == 0).mean()),
            "dead_fraction": dead,
            "grad_std": math.nan,
            "counts": counts.tolist(),
            "edges": edges.tolist(),
            "grad_counts": [],
            "grad_edges": [],
        }
        if grads:
            g = torch.cat(grads).numpy()
            g_counts, g_edges = _histogram(g, self.bins)
            row.update(
                grad_std=float(g.std()),
                grad_counts=g_counts.tolist(),
                grad_edges=g_edges.tolist(),
            )
        return row

    def on_fit_end(self, history: History, model) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove the hooks (``on_fit_end`` does; call it if ``fit`` raised)."""
        for h in self._handles:
            h.remove()
        self._handles, self._acts, self._grads = [], {}, {}


# ----------------------------------------------------------------------------- tables and plots


def recorded_steps(history: History, key: str = "update_ratio") -> list[int]:
    """The distinct steps that have rows in ``history.records[key]``, in order."""
    rows = _rows(history, key, "recorded_steps")
    return sorted({r["step"] for r in rows})


def update_ratio_table(history: History) -> dict[str, list[float]]:
    """``{layer: [ratio at each recorded step]}`` from :class:`UpdateRatio`'s rows (the steps
    are :func:`recorded_steps`)."""
    return _table(history, UpdateRatio.key, "ratio", "update_ratio_table")


def activation_table(history: History, stat: str = "std") -> dict[str, list[float]]:
    """``{layer: [stat at each recorded step]}`` from :class:`ActivationStats`' rows;
    ``stat`` is ``"mean"``, ``"std"``, ``"zero_fraction"``, ``"dead_fraction"`` or
    ``"grad_std"``."""
    stats = ("mean", "std", "zero_fraction", "dead_fraction", "grad_std")
    if stat not in stats:
        raise ValueError(f"activation_table: stat must be one of {stats}, got {stat!r}")
    return _table(history, ActivationStats.key, stat, "activation_table")


def plot_update_ratios(history: History, ax=None):
    """Update/weight ratio per layer against the step, on a log scale, with the 1e-3 line.

    Returns:
        The ``matplotlib.figure.Figure`` (``ax``'s, or a new one made with pyplot).
    """
    rows = _rows(history, UpdateRatio.key, "plot_update_ratios")
    ax = _axes(ax, (6, 3.6))
    for layer in dict.fromkeys(r["layer"] for r in rows):
        pts = [(r["step"], r["ratio"]) for r in rows if r["layer"] == layer]
        ax.plot(*zip(*pts, strict=True), lw=1, label=layer)
    ax.axhline(RULE_OF_THUMB, color="k", ls="--", lw=1, label="1e-3 (rule of thumb)")
    ax.set(
        yscale="log",
        xlabel="step",
        ylabel="||ΔW|| / ||W||",
        title="Update size relative to weight size",
    )
    ax.legend(fontsize="small")
    return ax.figure


def plot_activation_stats(history: History, stat: str = "std", ax=None):
    """One :func:`activation_table` statistic per layer against the step.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    activation_table(history, stat)  # checks the history and the statistic
    rows = history.records[ActivationStats.key]
    ax = _axes(ax, (6, 3.6))
    for layer in dict.fromkeys(r["layer"] for r in rows):
        pts = [(r["step"], r[stat]) for r in rows if r["layer"] == layer]
        ax.plot(*zip(*pts, strict=True), marker=".", lw=1, label=layer)
    ax.set(
        xlabel="step",
        ylabel=stat.replace("_", " "),
        title=f"Activation {stat} per layer",
    )
    ax.legend(fontsize="small")
    return ax.figure


def plot_activation_histograms(
    history: History, step: int | None = None, *, layers: Iterable[str] | None = None
):
    """Histograms of recorded layers' outputs (top row) and of the gradients with respect to
    them (bottom row, counts on a log scale: most gradients sit near 0) at one step.

    Args:
        history: a History with :class:`ActivationStats` rows.
        step: a recorded step; ``None`` (default) is the last one.
        layers: the layers to show, in this order; ``None`` (default) shows all.

    Returns:
        The ``matplotlib.figure.Figure`` (made with pyplot), one column per layer.
    """
    import matplotlib.pyplot as plt  # lazy: keep the import of this module light

    fn = "plot_activation_histograms"
    rows = _rows(history, ActivationStats.key, fn)
    steps = sorted({r["step"] for r in rows})
    step = steps[-1] if step is None else step
    if step not in steps:
        raise ValueError(f"{fn}: step {step!r} was not recorded; recorded steps: {steps}")
    rows = {r["layer"]: r for r in rows if r["step"] == step}
    if layers is not None:
        chosen = _select(rows, _check_names(layers, fn), fn)
    rows = list(rows.values() if layers is None else chosen.values())
    fig, axes = plt.subplots(
        2,
        len(rows),
        figsize=(2.4 * len(rows) + 1, 4.4),
        layout="constrained",
        squeeze=False,
    )
    for j, r in enumerate(rows):
        top, bottom = axes[0, j], axes[1, j]
        top.stairs(r["counts"], r["edges"], fill=True, color="C0")
        top.set(
            title=f"{r['layer']}\nstd {r['std']:.2g}, zero {r['zero_fraction']:.0%}",
            xlabel="activation",
        )
        if r["grad_counts"]:
            bottom.stairs(r["grad_counts"], r["grad_edges"], fill=True, color="C1")
            bottom.set_yscale("log")
            bottom.set(title=f"grad std {r['grad_std']:.2g}", xlabel="gradient")
        else:
            bottom.text(
                0.5,
                0.5,
                "no gradient",
                ha="center",
                va="center",
                transform=bottom.transAxes,
            )
        top.tick_params(labelsize="x-small")
        bottom.tick_params(labelsize="x-small")
    axes[0, 0].set_ylabel("count")
    axes[1, 0].set_ylabel("count")
    fig.suptitle(f"Activations and their gradients at step {step}", fontsize="medium")
    return fig


# ----------------------------------------------------------------------------- helpers


def _rows(history, key: str, fn: str) -> list[dict]:
    if not isinstance(history, History):
        raise TypeError(
            f"{fn}: history must be a d2lcnn.train.History, got {type(history).__name__}"
        )
    rows = history.records.get(key)
    if not rows:
        raise ValueError(
            f"{fn}: history.records has no {key!r} rows; train with the "
            f"callback that records them (records: {sorted(history.records)})"
        )
    return rows


def _table(history, key: str, column: str, fn: str) -> dict[str, list[float]]:
    table: dict[str, list[float]] = {}
    for r in _rows(history, key, fn):
        table.setdefault(r["layer"], []).append(r[column])
    return table


def _axes(ax, size):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=size, layout="constrained").subplots()


def _check_names(layers, who: str) -> list[str]:
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers or not all(isinstance(n, str) for n in layers):
        raise ValueError(
            f"{who}: layers must be None or a non-empty list of module names, got {layers!r}"
        )
    return layers


def _select(available: dict, wanted: list[str] | None, who: str) -> dict:
    if wanted is None:
        if not available:
            raise ValueError(f"{who}: the model has no layer to watch")
        return available
    missing = [n for n in wanted if n not in available]
    if missing:
        raise ValueError(f"{who}: no layer named {missing}; available: {list(available)}")
    return {n: available[n] for n in wanted}


def _histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram`` of the finite values (a diverging run must not crash the callback)."""
    finite = values[np.isfinite(values)]
    return np.histogram(finite, bins=bins) if finite.size else np.histogram([], bins=bins)


def _copy(t: torch.Tensor) -> torch.Tensor:
    """A flat float32 copy on the CPU: later in-place ops (``ReLU(inplace=True)``) leave it be."""
    return t.detach().flatten().to("cpu", torch.float32, copy=True)
