"""Is it training? Checks to run before a long training run, and callbacks that watch one.

Before training (the babysitting habits of the lecture notes, as functions)::

    check_initial_loss(model, (x, y))       # an untrained classifier should score ln K
    overfit_tiny(model, (x, y), n=20)       # it must be able to memorise 20 examples

While training, two callbacks for :func:`d2lcnn.train.fit` write rows into
``history.records`` (see :class:`~d2lcnn.train.History`)::

    history = fit(model, loader, epochs=2, optimizer=opt,
                  callbacks=[UpdateRatio(), ActivationStats(every=10)])
    update_ratio_table(history)             # {layer: [||dW|| / ||W|| per step]}
    plot_update_ratios(history); plot_activation_histograms(history)

Backends: :func:`initial_loss`, :func:`check_initial_loss`, :func:`overfit_tiny` and
:class:`UpdateRatio` take torch models and NumPy models (:class:`d2lcnn.numpy.nn.Module`);
:class:`ActivationStats` needs torch's forward hooks and takes torch models only.

The package, one concern a module: :mod:`~d2lcnn.diagnostics.sanity` (the checks before
training) and :mod:`~d2lcnn.diagnostics.monitor` (the callbacks, and the tables and plots
of what they record).
"""

from d2lcnn.diagnostics.monitor import (
    RULE_OF_THUMB,
    ActivationStats,
    UpdateRatio,
    activation_table,
    plot_activation_histograms,
    plot_activation_stats,
    plot_update_ratios,
    recorded_steps,
    update_ratio_table,
)
from d2lcnn.diagnostics.sanity import (
    InitialLossCheck,
    OverfitResult,
    check_initial_loss,
    expected_initial_loss,
    initial_loss,
    overfit_tiny,
)

__all__ = [
    "expected_initial_loss",
    "initial_loss",
    "check_initial_loss",
    "InitialLossCheck",
    "overfit_tiny",
    "OverfitResult",
    "UpdateRatio",
    "ActivationStats",
    "update_ratio_table",
    "activation_table",
    "recorded_steps",
    "plot_update_ratios",
    "plot_activation_histograms",
    "plot_activation_stats",
    "RULE_OF_THUMB",
]
