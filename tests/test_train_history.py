"""d2lcnn.train.history without training: History built from hand-made records, its
columns, its round trip, and the figure it draws (step positions, columns, titles)."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from d2lcnn.train.history import EpochRecord, History, StepRecord  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(stop_reason=None, accuracy=True):
    # Two epochs of 4 steps, then 2 steps of an interrupted third epoch.
    steps = [StepRecord(i + 1, i // 4 + 1, 2.0 - 0.1 * i, 0.1, float(i), 0.5 * i)
             for i in range(10)]
    epochs = [EpochRecord(1, 1.8, 0.5 if accuracy else None, 1.7, 0.55 if accuracy else None,
                          0.1, 2.0),
              EpochRecord(2, 1.4, 0.7 if accuracy else None, None, None, 0.05, 2.1)]
    return History(steps, epochs, stop_reason)


def test_as_dict_columns_and_round_trip():
    h = _history("early stopping: no improvement")
    d = h.as_dict()
    assert d["steps"]["step"] == list(range(1, 11))
    assert d["steps"]["epoch"] == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert d["steps"]["loss"] == pytest.approx([2.0 - 0.1 * i for i in range(10)])
    assert list(d["steps"]) == ["step", "epoch", "loss", "lr", "grad_norm", "time"]
    assert list(d["epochs"]) == ["epoch", "train_loss", "train_accuracy", "val_loss",
                                 "val_accuracy", "lr", "time"]
    assert d["epochs"]["val_loss"] == [1.7, None] and d["epochs"]["train_accuracy"] == [0.5, 0.7]
    assert d["stop_reason"] == "early stopping: no improvement"
    assert History.from_dict(d) == h
    with pytest.raises(ValueError):  # columns of different lengths
        History.from_dict(dict(d, steps=dict(d["steps"], loss=[1.0])))
    assert History().as_dict() == {
        "steps": {k: [] for k in d["steps"]}, "epochs": {k: [] for k in d["epochs"]},
        "stop_reason": None, "records": {}}


def test_records_round_trip_are_copied_and_old_dicts_load_without_them():
    h = _history()
    h.records["update_ratio"] = [{"step": 1, "layer": "fc", "ratio": 1e-3}]
    h.records["activations"] = [{"step": 1, "layer": "relu", "counts": [1, 2, 3]}]
    d = h.as_dict()
    assert d["records"] == h.records
    back = History.from_dict(d)
    assert back == h and back.records == h.records
    d["records"]["activations"][0]["counts"].append(4)  # a deep copy: h is untouched
    assert h.records["activations"][0]["counts"] == [1, 2, 3]
    assert back.records["activations"][0]["counts"] == [1, 2, 3]
    old = {k: v for k, v in h.as_dict().items() if k != "records"}  # a pre-records checkpoint
    loaded = History.from_dict(old)
    assert loaded.records == {} and loaded.steps == h.steps and loaded.epochs == h.epochs
    assert History().records == {} and History().records is not History().records


def test_plot_puts_step_j_of_n_at_epoch_minus_one_plus_j_over_n():
    fig = _history().plot()
    ax_loss, ax_acc = fig.axes
    step_line, train_line, val_line = ax_loss.lines
    assert step_line.get_label() == "train (step)"
    x = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5]  # 4 steps per epoch
    np.testing.assert_allclose(step_line.get_xdata(), x, rtol=0, atol=1e-15)
    np.testing.assert_allclose(step_line.get_ydata(), [2.0 - 0.1 * i for i in range(10)])
    assert list(train_line.get_xdata()) == [1, 2] and list(train_line.get_ydata()) == [1.8, 1.4]
    assert list(val_line.get_xdata()) == [1] and list(val_line.get_ydata()) == [1.7]
    assert [ln.get_label() for ln in ax_acc.lines] == ["train", "validation"]
    assert list(ax_acc.lines[0].get_ydata()) == [0.5, 0.7]
    assert list(ax_acc.lines[1].get_ydata()) == [0.55]
    assert len(ax_acc.texts) == 0 and fig._suptitle is None
    assert (ax_acc.get_xlabel(), ax_acc.get_ylabel(), ax_acc.get_title()) == (
        "epoch", "accuracy", "Accuracy")


def test_plot_titles_and_a_history_without_accuracy_or_steps():
    fig = _history("loss is nan at step 7", accuracy=False).plot()
    assert fig._suptitle.get_text() == "stopped: loss is nan at step 7"
    assert fig.axes[1].texts[0].get_text() == "no accuracy recorded"
    assert len(fig.axes[1].lines) == 0
    fig = _history("loss is nan", accuracy=False).plot(title="mine")
    assert fig._suptitle.get_text() == "mine"
    fig = History(epochs=_history().epochs).plot()  # no steps: epoch lines only
    assert [ln.get_label() for ln in fig.axes[0].lines] == ["train (epoch)", "validation"]
    one = History([StepRecord(1, 1, 1.0, 0.1, math.nan, 0.0)], [], None).plot()
    np.testing.assert_array_equal(one.axes[0].lines[0].get_xdata(), [1.0])
