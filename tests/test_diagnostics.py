"""d2lcnn.diagnostics: the initial-loss check (ln K for an untrained LeNet-5 on the digits, far
from it with a scaled-up last layer, below it with a label leak), overfitting 20 digits (and
failing with a model that ignores its input), and the UpdateRatio / ActivationStats callbacks
in real 2-epoch fits: row counts, values recomputed by hand, hooks removed, checkpoint resume,
NumPy models, and the tables and plots built from the rows."""

import copy
import math
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from d2lcnn import numpy as nd  # noqa: E402
from d2lcnn.data import load_dataset, make_loader  # noqa: E402
from d2lcnn.diagnostics import (  # noqa: E402
    ActivationStats,
    UpdateRatio,
    activation_table,
    check_initial_loss,
    expected_initial_loss,
    initial_loss,
    overfit_tiny,
    plot_activation_histograms,
    plot_activation_stats,
    plot_update_ratios,
    recorded_steps,
    update_ratio_table,
)
from d2lcnn.torch.models import LeNet5  # noqa: E402
from d2lcnn.train import History, fit  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread_and_closed_figures")


@pytest.fixture(scope="module")
def digits32():
    data = load_dataset("digits", size=32)
    return torch.from_numpy(data.x_train[:600]), torch.from_numpy(data.y_train[:600])


@pytest.fixture(scope="module")
def digits8():
    data = load_dataset("digits")
    return torch.from_numpy(data.x_train[:64]), torch.from_numpy(data.y_train[:64])


def tiny_cnn(seed=0, inplace=False):
    """conv 3x3 (4) -> ReLU -> 2x2 pool -> linear: (N, 1, 8, 8) -> (N, 10)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # (N, 4, 8, 8)
        nn.ReLU(inplace=inplace),
        nn.MaxPool2d(2),  # (N, 4, 4, 4)
        nn.Flatten(),
        nn.Linear(64, 10),
    )


# ----------------------------------------------------------------------------- initial loss


def test_expected_initial_loss_is_ln_k_and_refuses_fewer_than_two_classes():
    assert expected_initial_loss(10) == pytest.approx(2.302585, abs=1e-6)
    assert expected_initial_loss(2) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        expected_initial_loss(1)
    with pytest.raises(TypeError, match="num_classes"):
        expected_initial_loss(10.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_untrained_lenet5_scores_about_ln_10_and_a_scaled_last_layer_does_not(digits32, seed):
    torch.manual_seed(seed)
    model = LeNet5()
    model.train()
    check = check_initial_loss(model, digits32)
    assert check.ok and check.expected == pytest.approx(math.log(10))
    assert abs(check.loss - math.log(10)) < 0.1 and check.ratio == pytest.approx(
        check.loss / math.log(10))
    assert model.training and all(p.grad is None for p in model.parameters())
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.classifier[-1].weight.mul_(100)
        broken.classifier[-1].bias.mul_(100)
    bad = check_initial_loss(broken, digits32)
    assert not bad.ok and bad.ratio > 2 and "too high" in bad.message
    assert "last layer" in bad.message


def test_a_label_leak_gives_a_loss_below_ln_k():
    y = torch.arange(50) % 10
    x = 5.0 * nn.functional.one_hot(y, 10).float()  # the answer is in the input
    check = check_initial_loss(nn.Identity(), (x, y), num_classes=10)
    assert not check.ok and check.ratio < 0.5 and "too low" in check.message
    assert "label leak" in check.message and str(check) == check.message


def test_initial_loss_from_a_loader_a_pair_and_some_batches(digits32):
    x, y = digits32[0][:250], digits32[1][:250]
    torch.manual_seed(0)
    model = LeNet5()
    whole = nn.functional.cross_entropy(model.eval()(x), y).item()
    assert initial_loss(model, (x, y)) == pytest.approx(whole, rel=1e-5)
    loader = make_loader(x, y, batch_size=100, shuffle=False)
    assert initial_loss(model, loader) == pytest.approx(whole, rel=1e-5)
    first = nn.functional.cross_entropy(model(x[:100]), y[:100]).item()
    assert initial_loss(model, loader, batches=1) == pytest.approx(first, rel=1e-5)
    mse = initial_loss(model, (x, nn.functional.one_hot(y, 10).float()),
                       loss_fn=nn.functional.mse_loss)
    assert mse == pytest.approx(nn.functional.mse_loss(
        model(x), nn.functional.one_hot(y, 10).float()).item(), rel=1e-5)


def test_initial_loss_in_training_mode_restores_batchnorm_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    x, y = 3 + torch.randn(40, 4), torch.arange(40) % 3
    before = copy.deepcopy(model.state_dict())
    train_loss = initial_loss(model, (x, y), training=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    model.train()
    with torch.no_grad():
        expected = nn.functional.cross_entropy(copy.deepcopy(model)(x), y).item()
    assert train_loss == pytest.approx(expected, rel=1e-5)
    assert initial_loss(model, (x, y)) != pytest.approx(train_loss, rel=1e-3)  # eval differs
    model[2].eval()  # a frozen BatchNorm inside a training model keeps its own mode
    initial_loss(model, (x, y))
    overfit_tiny(model, (x, y), steps=2)
    assert model.training and model[1].training and not model[2].training


def test_initial_loss_of_a_numpy_model_equals_its_torch_twin(digits8):
    x, y = digits8
    seq = nd.nn.Sequential(nd.nn.Flatten(), nd.nn.Linear(64, 10, rng=np.random.default_rng(0)))
    twin = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in seq.state_dict().items()})
    assert initial_loss(seq, (x, y)) == pytest.approx(initial_loss(twin, (x, y)), rel=1e-5)
    assert check_initial_loss(seq, (x.numpy(), y.numpy())).ok
    with pytest.raises(ValueError, match="loss_fn must be None"):
        initial_loss(seq, (x, y), loss_fn=nn.functional.cross_entropy)
    with pytest.raises(ValueError, match="device must be None, 'auto' or 'cpu'"):
        initial_loss(seq, (x, y), device="cuda")


def test_initial_loss_refuses_bad_arguments(digits8):
    x, y = digits8
    model = tiny_cnn()
    with pytest.raises(ValueError, match="differ in length: 64 vs 10"):
        initial_loss(model, (x, y[:10]))
    with pytest.raises(ValueError, match="batches must be an int >= 1, got 0"):
        initial_loss(model, (x, y), batches=0)
    with pytest.raises(ValueError, match="rtol must be > 0"):
        check_initial_loss(model, (x, y), rtol=0)
    with pytest.raises(ValueError, match="num_classes=5 but the model outputs 10"):
        check_initial_loss(model, (x, y), num_classes=5)
    with pytest.raises(ValueError, match="no examples"):
        initial_loss(model, (x[:0], y[:0]))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        initial_loss("model", (x, y))


# ----------------------------------------------------------------------------- overfit


def test_lenet5_memorises_20_digits_in_under_2_seconds_of_cpu(digits32):
    torch.optim.Adam(nn.Linear(1, 1).parameters())  # the first optimizer imports torch._dynamo
    torch.manual_seed(0)
    model = LeNet5().eval()
    start = time.process_time()  # CPU time: what the work costs, however busy the machine
    result = overfit_tiny(model, digits32, n=20)
    cpu = time.process_time() - start
    assert result.ok and result.accuracy == 1.0 and cpu < 2.0  # measured ~0.1 s
    assert result.steps_to_fit is not None and len(result.losses) == result.steps_to_fit + 1
    assert result.losses[-1] < result.losses[0] and not model.training
    assert all(p.grad is None for p in model.parameters())
    x, y = digits32
    with torch.no_grad():  # the model was trained in place: it now fits the 20 (train mode)
        assert (model.train()(x[:20]).argmax(1) == y[:20]).all()


class InputBlind(nn.Module):
    """A bug on purpose: the output does not depend on the input."""

    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return self.logits.expand(x.shape[0], 10)


def test_a_model_that_ignores_its_input_cannot_overfit(digits32):
    result = overfit_tiny(InputBlind(), digits32, n=20, steps=50)
    x, y = digits32
    majority = torch.bincount(y[:20]).max().item() / 20
    assert not result.ok and result.steps_to_fit is None and len(result.losses) == 51
    assert result.accuracy <= majority + 1e-9


def test_overfit_with_sgd_a_custom_optimizer_a_loader_and_a_numpy_model(digits8):
    x, y = digits8
    loader = make_loader(x, y, batch_size=8, shuffle=False)  # 20 examples from 3 batches
    result = overfit_tiny(tiny_cnn(), loader, n=20, optimizer="sgd", lr=0.05, steps=400)
    assert result.ok
    custom = overfit_tiny(tiny_cnn(), (x, y), optimizer=lambda p: torch.optim.Adam(p, lr=0.03))
    assert custom.ok
    seq = nd.nn.Sequential(nd.nn.Flatten(), nd.nn.Linear(64, 10, rng=np.random.default_rng(0)))
    before = seq.state_dict()
    result = overfit_tiny(seq, (x, y), n=20)
    assert result.ok and result.losses[-1] < result.losses[0]
    assert not np.array_equal(seq.state_dict()["1.weight"], before["1.weight"])


def test_overfit_tiny_refuses_bad_arguments(digits8):
    x, y = digits8
    with pytest.raises(ValueError, match="holds 64 examples, fewer than n=100"):
        overfit_tiny(tiny_cnn(), (x, y), n=100)
    with pytest.raises(ValueError, match="optimizer must be 'adam', 'sgd'"):
        overfit_tiny(tiny_cnn(), (x, y), optimizer="rmsprop")
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        overfit_tiny(tiny_cnn(), (x, y), steps=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        overfit_tiny(tiny_cnn(), (x, y), lr=-1.0)


# ----------------------------------------------------------------------------- callbacks


def _fit(model, loader, callbacks, epochs=2, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return fit(model, loader, epochs=epochs, optimizer=opt, callbacks=callbacks, device="cpu",
               **kw)


def _no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_callbacks_record_the_right_rows_in_a_2_epoch_fit(digits8):
    x, y = digits8
    loader = make_loader(x, y, batch_size=16, shuffle=False)  # 4 steps an epoch, 8 in all
    model = tiny_cnn()
    start = copy.deepcopy(model)
    ratio, acts = UpdateRatio(), ActivationStats(every=3, bins=12)
    history = _fit(model, loader, [ratio, acts], val_loader=loader)
    rows = history.records["update_ratio"]
    assert len(rows) == 8 * 2 and recorded_steps(history) == list(range(1, 9))
    assert list(update_ratio_table(history)) == ["0", "4"]  # conv and linear weights
    # step 1 by hand: the same batch, the same SGD step
    opt = torch.optim.SGD(start.parameters(), lr=0.1)
    w0 = start[0].weight.detach().clone()
    nn.functional.cross_entropy(start(x[:16]), y[:16]).backward()
    opt.step()
    by_hand = ((start[0].weight - w0).norm() / w0.norm()).item()
    assert rows[0] == {"step": 1, "layer": "0", "ratio": pytest.approx(by_hand, rel=1e-5)}
    # ActivationStats: steps 1, 4, 7 (validation passes add nothing) x conv, ReLU, linear
    a = history.records["activations"]
    assert recorded_steps(history, "activations") == [1, 4, 7] and len(a) == 9
    assert [r["layer"] for r in a[:3]] == ["0", "1", "4"]
    conv_out = tiny_cnn()[0](x[:16]).detach()  # the untrained conv on the first batch
    first = a[0]
    assert first["mean"] == pytest.approx(conv_out.mean().item(), rel=1e-4, abs=1e-6)
    assert first["std"] == pytest.approx(conv_out.std(unbiased=False).item(), rel=1e-4)
    assert sum(first["counts"]) == conv_out.numel() and len(first["edges"]) == 13
    assert sum(first["grad_counts"]) == conv_out.numel() and first["grad_std"] > 0
    relu = a[1]
    assert relu["zero_fraction"] == pytest.approx((conv_out <= 0).float().mean().item())
    assert 0 <= relu["dead_fraction"] <= relu["zero_fraction"] <= 1
    assert _no_hooks(model)


def test_an_inplace_relu_does_not_change_what_the_conv_before_it_recorded(digits8):
    x, y = digits8
    loader = make_loader(x, y, batch_size=32, shuffle=False)
    history = _fit(tiny_cnn(inplace=True), loader, [ActivationStats(every=1)], epochs=1)
    conv, relu = activation_table(history, "zero_fraction")["0"], \
        activation_table(history, "zero_fraction")["1"]
    assert conv[0] == 0.0 and relu[0] > 0.2
    assert activation_table(history, "mean")["0"][0] < activation_table(history, "mean")["1"][0]


def test_callback_rows_survive_a_checkpoint_resume(digits8, tmp_path):
    x, y = digits8

    def run(epochs, path=None, resume=False):
        torch.manual_seed(1)
        model = tiny_cnn(seed=3)
        loader = make_loader(x, y, batch_size=16, shuffle=True, seed=5)
        return _fit(model, loader, [UpdateRatio(every=3), ActivationStats(every=2)],
                    epochs=epochs, checkpoint=path, resume=resume)

    whole = run(2)
    path = tmp_path / "ckpt.pt"
    run(1, path)
    resumed = run(2, path, resume=True)
    for key, column in (("update_ratio", "ratio"), ("activations", "std")):
        assert [(r["step"], r["layer"]) for r in resumed.records[key]] == [
            (r["step"], r["layer"]) for r in whole.records[key]]
        np.testing.assert_allclose([r[column] for r in resumed.records[key]],
                                   [r[column] for r in whole.records[key]], rtol=1e-5)
    assert recorded_steps(whole) == [1, 4, 7] and recorded_steps(whole, "activations") == [
        1, 3, 5, 7]


def test_callbacks_under_distributed_data_parallel(digits8):
    """A one-rank gloo group: fit wraps the model in DistributedDataParallel; the hooks on the
    model inside it record as in a single process, and nothing is left behind."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("needs torch.distributed with gloo")
    x, y = digits8
    loader = make_loader(x, y, batch_size=16, shuffle=False)
    single = _fit(tiny_cnn(), loader, [UpdateRatio(), ActivationStats(every=2)],
                  distributed=False)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = tiny_cnn()
        ddp = _fit(model, loader, [UpdateRatio(), ActivationStats(every=2)], distributed=True)
    finally:
        dist.destroy_process_group()
    assert _no_hooks(model)
    for key, column in (("update_ratio", "ratio"), ("activations", "grad_std")):
        assert len(ddp.records[key]) == len(single.records[key]) > 0
        np.testing.assert_allclose([r[column] for r in ddp.records[key]],
                                   [r[column] for r in single.records[key]], rtol=1e-4)


def test_update_ratio_on_a_numpy_model_and_activation_stats_refusing_one(digits8):
    x, y = digits8
    loader = make_loader(x, y, batch_size=16, shuffle=False)
    seq = nd.nn.Sequential(nd.nn.Flatten(), nd.nn.Linear(64, 10, rng=np.random.default_rng(0)))
    w0 = seq.parameters()["1.weight"].copy()
    opt = nd.optim.SGD(seq.parameters(), lr=0.1)
    history = fit(seq, loader, epochs=2, optimizer=opt, callbacks=[UpdateRatio(every=2)])
    assert recorded_steps(history) == [1, 3, 5, 7] and list(update_ratio_table(history)) == ["1"]
    # step 1 by hand: SGD moves the weights by lr * gradient of the first batch's loss
    twin = nd.nn.Sequential(nd.nn.Flatten(), nd.nn.Linear(64, 10, rng=np.random.default_rng(0)))
    loss, cache = nd.cross_entropy_forward(twin.forward(x[:16].numpy(), training=True),
                                           y[:16].numpy())
    twin.backward(nd.cross_entropy_backward(np.ones((), np.float32), cache))
    by_hand = 0.1 * np.linalg.norm(twin.gradients()["1.weight"]) / np.linalg.norm(w0)
    assert history.records["update_ratio"][0] == {
        "step": 1, "layer": "1", "ratio": pytest.approx(by_hand, rel=1e-4)}
    seq2 = nd.nn.Sequential(nd.nn.Flatten(), nd.nn.Linear(64, 10, rng=np.random.default_rng(0)))
    with pytest.raises(TypeError, match="ActivationStats: needs a torch.nn.Module"):
        fit(seq2, loader, epochs=1, optimizer=nd.optim.SGD(seq2.parameters(), lr=0.1),
            callbacks=[ActivationStats()])


def test_activation_rows_with_infinite_outputs_histogram_the_finite_ones():
    cb = ActivationStats(every=1, bins=4)
    acts = [(torch.tensor([0.0, 1.0, float("inf"), 2.0, 3.0]), None)]
    row = cb._row(1, "x", acts, [torch.tensor([float("nan")])])
    assert sum(row["counts"]) == 4 and row["edges"] == [0.0, 0.75, 1.5, 2.25, 3.0]
    assert math.isinf(row["mean"]) and sum(row["grad_counts"]) == 0
    assert math.isnan(row["grad_std"]) and math.isnan(row["dead_fraction"])


def test_callbacks_refuse_unknown_layers_and_bad_arguments(digits8):
    x, y = digits8
    loader = make_loader(x, y, batch_size=32, shuffle=False)
    with pytest.raises(ValueError, match=r"no layer named \['conv9'\]; available: \['0', '4'\]"):
        _fit(tiny_cnn(), loader, [UpdateRatio(layers=["conv9"])], epochs=1)
    with pytest.raises(ValueError, match="no layer named"):
        _fit(tiny_cnn(), loader, [ActivationStats(layers="nope")], epochs=1)
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        UpdateRatio(every=0)
    with pytest.raises(ValueError, match="bins must be an int >= 1"):
        ActivationStats(bins=0)
    model = tiny_cnn()  # chosen layers only, and a hook left by a failed fit is removable
    cb = ActivationStats(every=1, layers=["1"])
    h = _fit(model, loader, [cb, UpdateRatio(layers="4")], epochs=1)
    assert {r["layer"] for r in h.records["activations"]} == {"1"}
    assert set(update_ratio_table(h)) == {"4"}
    cb.on_fit_start(History(), model)
    assert not _no_hooks(model)
    cb.remove()
    assert _no_hooks(model)


# ----------------------------------------------------------------------------- tables, plots


def test_tables_and_plots_from_the_records(digits8):
    x, y = digits8
    loader = make_loader(x, y, batch_size=16, shuffle=False)
    h = _fit(tiny_cnn(), loader, [UpdateRatio(), ActivationStats(every=4)])
    fig = plot_update_ratios(h)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and len(ax.lines) == 3  # 2 layers + the 1e-3 line
    assert ax.get_xlabel() == "step" and ax.get_title()
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), range(1, 9))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), update_ratio_table(h)["0"])
    fig = plot_activation_histograms(h, step=5)
    assert len(fig.axes) == 2 * 3 and "step 5" in fig._suptitle.get_text()
    assert fig.axes[0].get_title().startswith("0\n") and fig.axes[0].get_xlabel() == "activation"
    assert fig.axes[3].get_yscale() == "log" and fig.axes[3].get_xlabel() == "gradient"
    fig = plot_activation_histograms(h, layers=["4", "1"])
    assert len(fig.axes) == 4 and fig.axes[0].get_title().startswith("4\n")
    with pytest.raises(ValueError, match=r"no layer named \['9'\]; available: \['0', '1', '4'\]"):
        plot_activation_histograms(h, layers=["9"])
    fig = plot_activation_stats(h, "dead_fraction")
    assert len(fig.axes[0].lines) == 3 and fig.axes[0].get_ylabel() == "dead fraction"
    _, ax = plt.subplots()
    assert plot_update_ratios(h, ax=ax) is ax.figure
    with pytest.raises(ValueError, match=r"step 2 was not recorded; recorded steps: \[1, 5\]"):
        plot_activation_histograms(h, step=2)
    with pytest.raises(ValueError, match="stat must be one of"):
        activation_table(h, "median")
    with pytest.raises(ValueError, match="no 'update_ratio' rows"):
        update_ratio_table(History())
    with pytest.raises(TypeError, match="history must be a d2lcnn.train.History"):
        plot_update_ratios({"records": {}})
