"""What :func:`~d2lcnn.train.fit` shows while it trains, chosen by where it runs.

:func:`_displays` picks a tqdm progress bar (or none) and a :class:`_LivePlot` (redrawn
every epoch, drawn once at the end, or never) from the frontend :func:`_frontend` detects;
see the table in :mod:`d2lcnn.train`. Nothing is printed to stdout.
"""

from __future__ import annotations

import base64
import io
import sys
import warnings

from d2lcnn.train.history import History

__all__: list[str] = []  # internal: fit's displays


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


def _displays(progress, live_plot, stacklevel: int, shown: bool = True) -> tuple[bool, _LivePlot]:
    """Whether to show a progress bar, and the live plot, for where ``fit`` runs
    (``stacklevel`` points a warning at the caller of ``fit``; ``shown`` False, on every
    rank but 0 of a distributed run: neither)."""
    if not shown:
        return False, _LivePlot(None)
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
