"""Tests for d2lcnn.train: fit on real data, History bookkeeping, clipping, the explosion
rule, exact resumes, atomic checkpoints, evaluate/predict, plots, errors and a run inside a
notebook executed by nbclient. Everything runs on the CPU with tiny models."""

import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from d2lcnn.train import (  # noqa: E402
    EarlyStopping,
    History,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
    seed_everything,
)

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits as (N, 1, 8, 8) float32 in [0, 1]: 1437 train, 360 test."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y, dtype=torch.long)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=360, random_state=0)
    return (x[idx_train], y[idx_train]), (x[idx_test], y[idx_test])


def small_cnn(dropout: float = 0.0) -> nn.Module:
    """conv 3x3 (16) -> ReLU -> 2x2 max-pool -> dropout -> linear: (N, 1, 8, 8) -> (N, 10)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),  # (N, 16, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 16, 4, 4)
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(16 * 4 * 4, 10),
    )


def loaders(digits, *, seed=0, batch_size=64, n_train=None):
    (x_tr, y_tr), (x_te, y_te) = digits
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    g = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x_tr, y_tr), batch_size, shuffle=True, generator=g)
    test = DataLoader(TensorDataset(x_te, y_te), 256)
    return train, test


# ----------------------------------------------------------------------------- learning


def test_small_cnn_reaches_95_percent_on_digits_and_history_is_consistent(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, test = loaders(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    epochs = 6
    h = fit(model, train, test, epochs=epochs, optimizer=opt, device="cpu")

    loss, acc = evaluate(model, test)
    assert acc >= 0.95, f"test accuracy {acc:.3f}"
    assert h.stop_reason is None
    assert [r.epoch for r in h.epochs] == list(range(1, epochs + 1))
    assert [r.step for r in h.steps] == list(range(1, epochs * len(train) + 1))
    assert [r.epoch for r in h.steps] == [e for e in range(1, epochs + 1) for _ in train]
    times = [r.time for r in h.steps]
    assert times == sorted(times) and all(r.time > 0 for r in h.epochs)
    assert h.epochs[-1].val_loss == pytest.approx(loss) and h.epochs[-1].val_accuracy == acc
    assert h.epochs[-1].train_loss < h.epochs[0].train_loss
    assert all(0 <= r.train_accuracy <= 1 for r in h.epochs)
    assert all(r.lr == 0.1 for r in h.steps) and all(math.isfinite(r.grad_norm) for r in h.steps)
    d = h.as_dict()
    assert len(d["steps"]["loss"]) == len(h.steps) and len(d["epochs"]["val_loss"]) == epochs
    assert History.from_dict(d) == h


def test_epoch_scheduler_lr_is_recorded(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, _ = loaders(digits, n_train=256)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = fit(model, train, epochs=3, optimizer=opt, scheduler=sched)
    assert [r.lr for r in h.epochs] == pytest.approx([0.1, 0.05, 0.025])
    for r in h.steps:  # constant within an epoch
        assert r.lr == pytest.approx(0.1 * 0.5 ** (r.epoch - 1))
    assert all(r.val_loss is None and r.val_accuracy is None for r in h.epochs)


def test_step_scheduler_lr_is_recorded_per_step(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, _ = loaders(digits, n_train=256)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / (1 + k))
    h = fit(model, train, epochs=2, optimizer=opt, scheduler=sched, scheduler_step="step")
    # step k (1-based) ran with the schedule's value after k - 1 scheduler steps
    assert [r.lr for r in h.steps] == pytest.approx([0.1 / r.step for r in h.steps])
    assert h.epochs[1].lr == pytest.approx(0.1 / (len(train) + 1))


def test_reduce_on_plateau_gets_the_validation_loss(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, test = loaders(digits, n_train=128)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, patience=0, threshold=10.0, threshold_mode="abs"
    )
    h = fit(model, train, test, epochs=3, optimizer=opt, scheduler=sched)
    # epoch 1 sets the best value; with threshold 10 nothing after it counts as better
    assert sched.best == h.epochs[0].val_loss
    assert [r.lr for r in h.epochs] == pytest.approx([0.1, 0.1, 0.01])


# ----------------------------------------------------------------------------- clipping


class PostClipNorm:
    """Callback: the global gradient norm as the optimizer saw it (after any clipping)."""

    def __init__(self):
        self.norms = []

    def on_step_end(self, history, model):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.cat([g.ravel() for g in grads])).item())


def test_clipping_bounds_the_applied_gradient_and_records_the_norm_before_it(digits):
    train, _ = loaders(digits, n_train=256)
    max_norm = 0.5
    runs = {}
    for clip in (None, max_norm):
        torch.manual_seed(0)
        model = small_cnn()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        probe = PostClipNorm()
        h = fit(model, train, epochs=1, optimizer=opt, clip_grad_norm=clip, callbacks=[probe])
        runs[clip] = (h, probe.norms)
    h, applied = runs[None]
    assert [r.grad_norm for r in h.steps] == pytest.approx(applied, rel=1e-5)
    h, applied = runs[max_norm]
    recorded = [r.grad_norm for r in h.steps]
    assert max(applied) <= max_norm * (1 + 1e-5)
    assert sum(n > max_norm for n in recorded) >= 1, "the test must exercise clipping"
    for pre, post in zip(recorded, applied, strict=True):
        assert post == pytest.approx(min(pre, max_norm), rel=1e-4)


# ----------------------------------------------------------------------------- stopping


def test_huge_learning_rate_triggers_the_explosion_rule(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, _ = loaders(digits, n_train=512)
    opt = torch.optim.SGD(model.parameters(), lr=50.0)
    with pytest.warns(RuntimeWarning, match="loss exploded"):
        h = fit(model, train, epochs=5, optimizer=opt)
    assert h.stop_reason.startswith("loss exploded")
    initial, last = h.steps[0].loss, h.steps[-1].loss
    assert last > 3.0 * initial
    assert all(r.loss <= 3.0 * initial for r in h.steps[:-1])
    assert len(h.epochs) < 5 and math.isnan(h.steps[-1].grad_norm)


def test_explode_factor_none_disables_the_rule(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, _ = loaders(digits, n_train=128)
    opt = torch.optim.SGD(model.parameters(), lr=50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # it may still stop on a nan loss
        h = fit(model, train, epochs=2, optimizer=opt, explode_factor=None)
    assert h.stop_reason is None or h.stop_reason.startswith(("loss is", "gradient norm"))


def test_nan_loss_stops_with_a_reason(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, _ = loaders(digits, n_train=256)
    calls = []

    def loss_fn(out, y):
        calls.append(1)
        loss = F.cross_entropy(out, y)
        return loss * float("nan") if len(calls) == 3 else loss

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(RuntimeWarning, match="loss is nan"):
        h = fit(model, train, epochs=2, optimizer=opt, loss_fn=loss_fn)
    assert h.stop_reason == "loss is nan at step 3 (epoch 1)"
    assert len(h.steps) == 3 and h.epochs == []
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stopping_on_validation_loss(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, test = loaders(digits, n_train=256)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    stopper = EarlyStopping(patience=1, min_delta=100.0)  # nothing counts as improvement
    h = fit(model, train, test, epochs=5, optimizer=opt, callbacks=[stopper])
    assert len(h.epochs) == 2
    assert h.stop_reason.startswith("early stopping: val_loss has not improved for 1 epochs")
    assert stopper.best_epoch == 1


# ----------------------------------------------------------------------------- checkpoints


def _train(digits, epochs, checkpoint=None, resume=False):
    """Build everything afresh (as a new process would) and train on the CPU."""
    torch.manual_seed(123 if resume else 0)  # a resumed run must not depend on its own init
    model = small_cnn(dropout=0.3)  # dropout: the global RNG must be restored too
    train, test = loaders(digits, n_train=320)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    h = fit(
        model,
        train,
        test,
        epochs=epochs,
        optimizer=opt,
        scheduler=sched,
        device="cpu",
        checkpoint=checkpoint,
        resume=resume,
        callbacks=[EarlyStopping(5)],
    )
    return model, h


def test_resume_reproduces_the_uninterrupted_run_exactly(digits, tmp_path):
    full_model, full_h = _train(digits, 4)
    ckpt = tmp_path / "run.pt"
    _train(digits, 2, checkpoint=ckpt)  # "interrupted" after 2 epochs
    assert load_checkpoint(ckpt, small_cnn(0.3))["epoch"] == 2
    model, h = _train(digits, 4, checkpoint=ckpt, resume=True)
    for (name, a), b in zip(
        full_model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert [r.loss for r in h.steps] == [r.loss for r in full_h.steps]
    assert [r.step for r in h.steps] == list(range(1, len(full_h.steps) + 1))
    assert [r.val_loss for r in h.epochs] == [r.val_loss for r in full_h.epochs]
    assert [r.lr for r in h.epochs] == [r.lr for r in full_h.epochs]
    # resuming a finished run trains nothing more
    _, again = _train(digits, 4, checkpoint=ckpt, resume=True)
    assert again == History.from_dict(load_checkpoint(ckpt, small_cnn(0.3))["history"].as_dict())
    with pytest.raises(ValueError, match="holds 4 epochs, more than epochs=3"):
        _train(digits, 3, checkpoint=ckpt, resume=True)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    h = History()
    path = save_checkpoint(tmp_path / "c.pt", model, opt, epoch=7, history=h, extra={"a": 1})
    other, other_opt = small_cnn(), torch.optim.Adam(small_cnn().parameters(), lr=1.0)
    other_opt = torch.optim.Adam(other.parameters(), lr=1.0)
    state = load_checkpoint(path, other, other_opt)
    assert state["epoch"] == 7 and state["history"] == h and state["extra"] == {"a": 1}
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
    assert other_opt.param_groups[0]["lr"] == 1e-3
    assert torch.equal(
        other_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )
    with pytest.raises(ValueError, match="holds no scheduler state"):
        load_checkpoint(path, other, scheduler=torch.optim.lr_scheduler.StepLR(other_opt, 1))
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a d2lcnn.train/1 checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", other)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", other)


def test_crash_while_saving_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = small_cnn()
    path = save_checkpoint(tmp_path / "c.pt", model, epoch=1)
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp file left behind
    assert load_checkpoint(path, small_cnn())["epoch"] == 1


# ----------------------------------------------------------------------------- evaluate, predict


def test_evaluate_and_predict_agree_and_have_the_right_shapes(digits):
    torch.manual_seed(0)
    model = small_cnn()
    (x_te, y_te) = digits[1]
    _, test = loaders(digits)
    model.train()
    logits = predict(model, x_te, batch_size=100)
    assert logits.shape == (360, 10) and logits.device == CPU
    assert model.training, "predict restores the model's mode"
    assert torch.allclose(predict(model, test), logits)
    probs = predict(model, test, probs=True)
    assert torch.allclose(probs.sum(dim=1), torch.ones(360))
    loss, acc = evaluate(model, test)
    assert loss == pytest.approx(F.cross_entropy(logits, y_te).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y_te).sum().item() / 360, abs=1e-12)
    loss, acc = evaluate(model, test, loss_fn=lambda out, y: out.square().mean())
    assert acc is not None


def test_regression_targets_give_no_accuracy():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1)
    loader = DataLoader(TensorDataset(x, y), 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = fit(model, loader, loader, epochs=3, optimizer=opt, loss_fn=F.mse_loss)
    assert all(r.train_accuracy is None and r.val_accuracy is None for r in h.epochs)
    assert h.epochs[-1].val_loss < h.epochs[0].val_loss
    fig = h.plot()
    assert fig.axes[1].texts[0].get_text() == "no accuracy recorded"


# ----------------------------------------------------------------------------- plot, seeding


def test_plot_returns_a_figure_with_labelled_axes(digits):
    torch.manual_seed(0)
    model = small_cnn()
    train, test = loaders(digits, n_train=128)
    h = fit(model, train, test, epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    fig = h.plot(title="digits")
    assert isinstance(fig, matplotlib.figure.Figure)
    ax_loss, ax_acc = fig.axes
    assert (ax_loss.get_xlabel(), ax_loss.get_ylabel(), ax_loss.get_title()) == (
        "epoch",
        "loss",
        "Loss",
    )
    assert (ax_acc.get_xlabel(), ax_acc.get_ylabel(), ax_acc.get_title()) == (
        "epoch",
        "accuracy",
        "Accuracy",
    )
    assert len(ax_loss.lines) == 3 and len(ax_acc.lines) == 2
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(), [r.val_accuracy for r in h.epochs])
    assert fig._suptitle.get_text() == "digits"


def test_seed_everything_seeds_globals_and_returns_generators():
    gens = seed_everything(3)
    a = (torch.rand(2), np.random.rand(), gens.torch.seed is not None)
    t, n = torch.rand(2, generator=gens.torch), gens.numpy.random()
    gens = seed_everything(3)
    assert torch.equal(a[0], torch.rand(2)) and a[1] == np.random.rand()
    assert torch.equal(t, torch.rand(2, generator=gens.torch)) and n == gens.numpy.random()
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        seed_everything(-1)
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        seed_everything(1.5)


def test_amp_and_compile_are_ignored_with_a_warning_on_cpu():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.arange(8) % 2), 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        h = fit(model, loader, epochs=1, optimizer=opt, amp=True, compile=True, device="cpu")
    messages = sorted(str(w.message).split(":")[1].strip() for w in record)
    assert messages == ["amp=True ignored on cpu", "compile=True ignored on cpu"]
    assert all(w.category is UserWarning and w.filename == __file__ for w in record)
    assert len(h.epochs) == 1


# ----------------------------------------------------------------------------- errors


def _tiny():
    model = nn.Linear(4, 2)
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.arange(8) % 2), 4)
    return model, loader, torch.optim.SGD(model.parameters(), lr=0.1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1, got 0"),
        ({"epochs": 2.0}, ValueError, "epochs must be an int >= 1, got 2.0"),
        ({"scheduler_step": "batch"}, ValueError, "scheduler_step must be 'epoch' or 'step'"),
        ({"clip_grad_norm": 0}, ValueError, "clip_grad_norm must be None or > 0, got 0"),
        ({"explode_factor": 1.0}, ValueError, "explode_factor must be None or > 1, got 1.0"),
        ({"progress": "yes"}, ValueError, "progress must be 'auto', True or False"),
        ({"live_plot": None}, ValueError, "live_plot must be 'auto', True or False"),
        ({"callbacks": [print]}, TypeError, r"callbacks\[0\] \(builtin_function_or_method\)"),
        ({"optimizer": "sgd"}, TypeError, "optimizer must be a torch.optim.Optimizer, got str"),
        ({"scheduler": 0.1}, TypeError, "scheduler must have a step"),
        ({"device": 0}, TypeError, "device must be None, 'auto'"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    model, loader, opt = _tiny()
    args = {"epochs": 1, "optimizer": opt, **kwargs}
    with pytest.raises(error, match=match):
        fit(model, loader, **args)


def test_fit_rejects_empty_loaders_bad_batches_and_non_scalar_losses():
    model, loader, opt = _tiny()
    empty = DataLoader(TensorDataset(torch.randn(0, 4), torch.zeros(0, dtype=torch.long)), 4)
    with pytest.raises(ValueError, match="train_loader is empty"):
        fit(model, empty, epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match="val_loader is empty"):
        fit(model, loader, empty, epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match="train_loader yielded no batches"):
        fit(model, iter(()), epochs=1, optimizer=opt)
    with pytest.raises(TypeError, match=r"batch must be a pair \(inputs, targets\), got a Tensor"):
        fit(model, [torch.randn(4, 4)], epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match=r"must return a scalar .* shape \(4,\)"):
        fit(
            model,
            loader,
            epochs=1,
            optimizer=opt,
            loss_fn=lambda out, y: F.cross_entropy(out, y, reduction="none"),
        )
    with pytest.raises(TypeError, match="must return a tensor, got float"):
        fit(model, loader, epochs=1, optimizer=opt, loss_fn=lambda out, y: 1.0)
    with pytest.raises(ValueError, match="predict: batch_size must be an int >= 1, got 0"):
        predict(model, torch.randn(3, 4), batch_size=0)
    with pytest.raises(ValueError, match="evaluate: the loader yielded no batches"):
        evaluate(model, [])
    with pytest.raises(ValueError, match="patience must be an int >= 1, got 0"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="monitor must be one of"):
        EarlyStopping(monitor="val_acc")


# ----------------------------------------------------------------------------- notebooks


NOTEBOOK_CELLS = [
    """\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from d2lcnn.train import fit
torch.manual_seed(0)
x = torch.randn(64, 4)
loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), 16,
                    shuffle=True, generator=torch.Generator().manual_seed(0))
model = nn.Linear(4, 2)""",
    """\
history = fit(model, loader, loader, epochs=3,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.5))
print(len(history.epochs))""",
    """\
history = fit(model, loader, epochs=2, live_plot=True,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.5))""",
]


def test_fit_in_an_executed_notebook_draws_one_static_figure_and_no_progress(tmp_path: Path):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    setup, train, live = nb.cells
    assert setup.outputs == []
    kinds = [(o.output_type, o.get("name")) for o in train.outputs]
    assert ("stream", "stderr") not in kinds, train.outputs  # no tqdm, no warnings
    figures = [o for o in train.outputs if o.output_type == "display_data"]
    assert len(figures) == 1, "drawn once, at the end"
    assert figures[0].data["text/plain"] == "<Figure: training curves>"
    assert figures[0].data["image/png"]
    assert [o.text for o in train.outputs if o.output_type == "stream"] == ["3\n"]
    # live_plot=True redraws after every epoch into ONE output, updated in place
    assert [o.output_type for o in live.outputs] == ["display_data"]


def test_frontend_tells_a_person_from_a_batch_executor(monkeypatch):
    import sys
    import types

    from d2lcnn.train import _frontend

    kernel = types.SimpleNamespace(_allow_stdin=True)
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: types.SimpleNamespace(kernel=kernel)
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert _frontend() == "notebook"
    kernel._allow_stdin = False  # what nbclient, nbconvert and papermill send
    assert _frontend() == "executed"
    fake.get_ipython = lambda: None
    assert _frontend() == "headless"  # pytest captures stderr: not a TTY


def test_progress_true_writes_only_to_stderr(capsys):
    model, loader, opt = _tiny()
    fit(model, loader, epochs=2, optimizer=opt, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "epoch 2/2" in err


def test_pixel_accuracy_of_dense_targets_counts_every_pixel():
    """Segmentation: (N, C, H, W) outputs against (N, H, W) labels. Accuracy is the fraction
    of PIXELS right over the whole epoch (batches of 4, 4 and 2 images weigh by their
    pixels), checked against a loop over every pixel. lr=0 keeps the weights fixed, so the
    running train accuracy, the validation accuracy and evaluate() must all equal it."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 2, 4, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (10, 4, 5), generator=g)
    y[:2] = torch.where(x[:2, 0] > 0, 0, y[:2])  # some batches better than others
    model = nn.Conv2d(2, 3, 1).double()  # per-pixel class scores (N, 3, H, W)
    w, b = model.weight.detach()[:, :, 0, 0].tolist(), model.bias.detach().tolist()
    correct = 0
    for n in range(10):
        for i in range(4):
            for j in range(5):
                scores = [b[c] + sum(w[c][k] * x[n, k, i, j].item() for k in range(2))
                          for c in range(3)]
                correct += scores.index(max(scores)) == y[n, i, j].item()
    expected = correct / (10 * 4 * 5)
    assert 0 < expected < 1 and expected != pytest.approx(1 / 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    h = fit(model, loader, val_loader=loader, epochs=1, optimizer=opt)
    (record,) = h.epochs
    assert record.train_accuracy == pytest.approx(expected, abs=1e-12)
    assert record.val_accuracy == pytest.approx(expected, abs=1e-12)
    _, acc = evaluate(model, loader)
    assert acc == pytest.approx(expected, abs=1e-12)
