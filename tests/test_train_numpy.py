"""Tests for d2lcnn.train with NumPy models: fit trains a d2lcnn.numpy Sequential on digits,
records the same History as for torch, matches the same torch network step for step from
identical weights and batches, and refuses the options a NumPy model cannot honour."""

import functools
import time

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn as tnn
from torch.utils.data import DataLoader, TensorDataset

from d2lcnn.numpy import nn
from d2lcnn.numpy.optim import SGD
from d2lcnn.schedules import step_lr
from d2lcnn.train import History, evaluate, fit, predict


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits as (N, 1, 8, 8) float64 in [0, 1]: 1437 train, 360 test."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float64).reshape(-1, 1, 8, 8)
    y = torch.tensor(y, dtype=torch.long)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=360, random_state=0)
    return (x[idx_train], y[idx_train]), (x[idx_test], y[idx_test])


def numpy_cnn(rng, dtype=np.float32) -> nn.Sequential:
    """conv 3x3 (16) -> ReLU -> 2x2 max-pool -> linear: (N, 1, 8, 8) -> (N, 10)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng, dtype=dtype),  # (N, 16, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 16, 4, 4)
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10, rng=rng, dtype=dtype),
    )


def torch_cnn() -> tnn.Sequential:
    return tnn.Sequential(
        tnn.Conv2d(1, 16, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(16 * 4 * 4, 10),
    )


def loaders(digits, *, shuffle=True, batch_size=64, n_train=None):
    (x_tr, y_tr), (x_te, y_te) = digits
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(x_tr, y_tr), batch_size, shuffle=shuffle, generator=g)
    return train, DataLoader(TensorDataset(x_te, y_te), 256)


# ----------------------------------------------------------------------------- learning


def test_numpy_cnn_reaches_90_percent_on_digits_in_seconds(digits):
    model = numpy_cnn(np.random.default_rng(0))
    train, test = loaders(digits)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    start = time.perf_counter()
    h = fit(model, train, test, epochs=4, optimizer=opt)
    elapsed = time.perf_counter() - start
    assert h.stop_reason is None
    assert len(h.epochs) == 4 and len(h.steps) == 4 * len(train)
    assert h.epochs[-1].val_accuracy >= 0.90
    assert h.epochs[-1].train_loss < h.epochs[0].train_loss
    loss, acc = evaluate(model, test)
    assert (loss, acc) == pytest.approx((h.epochs[-1].val_loss, h.epochs[-1].val_accuracy))
    assert elapsed < 30  # measured ~2 s on a shared 2-core machine


def test_history_has_the_same_fields_and_lengths_as_for_torch(digits):
    train, test = loaders(digits, n_train=256)
    torch.manual_seed(0)
    tmodel = torch_cnn().double()
    h_torch = fit(
        tmodel, train, test, epochs=2, optimizer=torch.optim.SGD(tmodel.parameters(), lr=0.1)
    )
    model = numpy_cnn(np.random.default_rng(0), np.float64)
    h_numpy = fit(model, train, test, epochs=2, optimizer=SGD(model.parameters(), lr=0.1))
    d_torch, d_numpy = h_torch.as_dict(), h_numpy.as_dict()
    for part in ("steps", "epochs"):
        assert d_numpy[part].keys() == d_torch[part].keys()
        for name, column in d_numpy[part].items():
            assert len(column) == len(d_torch[part][name])
            assert [type(v) for v in column] == [type(v) for v in d_torch[part][name]], name
    assert d_numpy["steps"]["step"] == d_torch["steps"]["step"]
    assert d_numpy["steps"]["epoch"] == d_torch["steps"]["epoch"]
    assert History.from_dict(d_numpy) == h_numpy


# ----------------------------------------------------------------------------- parity with torch


# Losses and gradient norms are compared relatively. Weights near 0 are compared with an
# absolute tolerance too: after 10 float32 steps a weight of 1e-5 carries the roundoff
# (~1e-8) of the larger updates that moved it there.
@pytest.mark.parametrize(
    "dtype, tol, weight_atol",
    [(torch.float64, dict(rtol=1e-10, atol=1e-12), 1e-12), (torch.float32, dict(rtol=1e-5), 1e-7)],
)
@pytest.mark.parametrize("clip", [None, 0.5])
def test_same_losses_as_torch_from_identical_weights_and_batches(
    digits, dtype, tol, weight_atol, clip
):
    torch.manual_seed(0)
    tmodel = torch_cnn().to(dtype)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    model = numpy_cnn(np.random.default_rng(1), np_dtype)
    model.load_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})
    (x_tr, y_tr), test = digits
    data = ((x_tr[:320].to(dtype), y_tr[:320]), test)
    train, _ = loaders(data, shuffle=False)
    kw = dict(epochs=2, clip_grad_norm=clip)
    h_torch = fit(
        tmodel,
        train,
        optimizer=torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9),
        **kw,
    )
    h_numpy = fit(model, train, optimizer=SGD(model.parameters(), lr=0.1, momentum=0.9), **kw)
    assert len(h_numpy.steps) == len(h_torch.steps) == 10
    for name in ("loss", "grad_norm"):
        np.testing.assert_allclose(
            [getattr(r, name) for r in h_numpy.steps],
            [getattr(r, name) for r in h_torch.steps],
            **tol,
            err_msg=name,
        )
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(
            model.state_dict()[k], v.numpy(), rtol=tol["rtol"], atol=weight_atol, err_msg=k
        )


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_scheduler_function_sets_and_records_the_lr(digits, unit):
    model = numpy_cnn(np.random.default_rng(0))
    train, _ = loaders(digits, n_train=128, batch_size=32)  # 4 steps per epoch
    opt = SGD(model.parameters(), lr=1.0)
    schedule = functools.partial(step_lr, lr=0.1, step_size=1, gamma=0.5)
    h = fit(model, train, epochs=3, optimizer=opt, scheduler=schedule, scheduler_step=unit)
    if unit == "epoch":
        assert [r.lr for r in h.epochs] == pytest.approx([0.1, 0.05, 0.025])
        assert [r.lr for r in h.steps] == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 4)
    else:
        assert [r.lr for r in h.steps] == pytest.approx([0.1 * 0.5**t for t in range(12)])
        assert [r.lr for r in h.epochs] == pytest.approx([0.1, 0.1 * 0.5**4, 0.1 * 0.5**8])


# ----------------------------------------------------------------------------- evaluate, predict


def test_evaluate_and_predict_on_a_numpy_model(digits):
    model = numpy_cnn(np.random.default_rng(0), np.float64)
    train, test = loaders(digits, n_train=256)
    fit(model, train, epochs=1, optimizer=SGD(model.parameters(), lr=0.1))
    loss, acc = evaluate(model, test)
    x_te, y_te = digits[1]
    logits = predict(model, x_te, batch_size=100)
    assert isinstance(logits, np.ndarray) and logits.shape == (360, 10)
    assert logits.dtype == np.float64
    np.testing.assert_allclose(logits, predict(model, test), rtol=1e-12, atol=1e-14)  # pairs
    assert acc == pytest.approx(float((logits.argmax(1) == y_te.numpy()).mean()))
    probs = predict(model, x_te.numpy(), probs=True)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    log_p = np.log(probs[np.arange(360), y_te.numpy()])
    assert loss == pytest.approx(-log_p.mean(), rel=1e-10)


def test_huge_learning_rate_stops_a_numpy_model_with_a_reason(digits):
    model = numpy_cnn(np.random.default_rng(0))
    train, _ = loaders(digits)
    with pytest.warns(RuntimeWarning, match="fit stopped"):
        h = fit(model, train, epochs=3, optimizer=SGD(model.parameters(), lr=1e4))
    assert h.stop_reason is not None and not h.epochs


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"amp": True}, ValueError, "amp=True is for torch models only"),
        ({"compile": True}, ValueError, "compile=True is for torch models only"),
        ({"device": "cuda"}, ValueError, "device must be 'auto' or 'cpu', got 'cuda'"),
        ({"loss_fn": torch.nn.functional.mse_loss}, ValueError, "loss_fn must be the default"),
        ({"checkpoint": "ck.pt"}, ValueError, "checkpoint is not supported for NumPy models"),
        ({"scheduler": 0.1}, TypeError, "scheduler must be a function t -> lr"),
        ({"optimizer": "sgd"}, TypeError, "NumPy model needs a d2lcnn.numpy.optim optimizer"),
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1, got 0"),
    ],
)
def test_fit_refuses_what_a_numpy_model_cannot_do(kwargs, error, match):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, rng=np.random.default_rng(0)))
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.arange(8) % 2), 4)
    args = {"epochs": 1, "optimizer": SGD(model.parameters(), lr=0.1), **kwargs}
    with pytest.raises(error, match=match):
        fit(model, loader, **args)


def test_torch_optimizer_with_numpy_model_and_evaluate_errors():
    model = nn.Sequential(nn.Linear(4, 2, rng=np.random.default_rng(0)))
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.arange(8) % 2), 4)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match="needs a d2lcnn.numpy.optim optimizer, got SGD"):
        fit(model, loader, epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match="evaluate: a NumPy model runs on the CPU"):
        evaluate(model, loader, device="cuda")
    with pytest.raises(ValueError, match="evaluate: the loader yielded no batches"):
        evaluate(model, [])
    with pytest.raises(ValueError, match="predict: data holds no examples"):
        predict(model, [])
