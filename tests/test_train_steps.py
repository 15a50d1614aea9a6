"""Tests for the layout of d2lcnn.train: the torch and NumPy step objects answer the same
calls, the GradScaler branch of the torch step trains as the plain one, a non-finite gradient
norm stops fit before any update, every warning fit gives names the caller of fit, and the
teaching loop of d2lcnn.numpy.nn (torch-free) agrees with one epoch of fit."""

import inspect
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from d2lcnn.numpy import nn as npnn
from d2lcnn.numpy.optim import SGD
from d2lcnn.train import evaluate, fit, save_checkpoint
from d2lcnn.train.steps import NumpyStep, TorchStep

STEP_METHODS = [
    "start_epoch",
    "start_step",
    "forward",
    "update",
    "hits",
    "end_epoch",
    "evaluating",
    "predict_batch",
    "concat",
]


def _toy_data(n=64, d=4, seed=0):
    """``n`` points in ``d`` dimensions labelled by the sign of the first coordinate."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] > 0).long()


def _loader(shuffle=True, batch_size=16):
    x, y = _toy_data()
    g = torch.Generator().manual_seed(0) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size, shuffle=shuffle, generator=g)


# ----------------------------------------------------------------------------- the protocol


@pytest.mark.parametrize("name", STEP_METHODS)
def test_torch_and_numpy_steps_answer_the_same_calls(name):
    torch_fn, numpy_fn = getattr(TorchStep, name), getattr(NumpyStep, name)
    assert callable(torch_fn) and callable(numpy_fn)
    params = [list(inspect.signature(f).parameters) for f in (torch_fn, numpy_fn)]
    assert params[0] == params[1], name
    for step in (TorchStep, NumpyStep):
        assert isinstance(step.array_types, tuple)


def test_one_forward_and_update_match_between_the_steps():
    """Same weights, same batch: the same loss, gradient norm and updated weights."""
    torch.manual_seed(0)
    tmodel = nn.Sequential(nn.Linear(4, 3)).double()
    model = npnn.Sequential(npnn.Linear(4, 3, rng=np.random.default_rng(0), dtype=np.float64))
    model.load_state_dict({k: v.numpy().copy() for k, v in tmodel.state_dict().items()})
    x, y = _toy_data(8)
    batch = (x.double(), y)
    t_step = TorchStep(
        tmodel, torch.device("cpu"), optimizer=torch.optim.SGD(tmodel.parameters(), lr=0.5)
    )
    n_step = NumpyStep(model, SGD(model.parameters(), lr=0.5))
    assert t_step.start_epoch(1, 0) == n_step.start_epoch(1, 0) == 0.5
    (t_loss, t_n), (n_loss, n_n) = (
        s.forward(batch, "test", training=True) for s in (t_step, n_step)
    )
    assert t_n == n_n == 8 and t_loss == pytest.approx(n_loss, rel=1e-12)
    assert t_step.hits() == n_step.hits()
    (t_norm, t_applied), (n_norm, n_applied) = t_step.update(), n_step.update()
    assert t_applied and n_applied and t_norm == pytest.approx(n_norm, rel=1e-12)
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=1e-12, err_msg=k)


# ----------------------------------------------------------------------------- the torch step


def _weights_after_steps(scaler):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    step = TorchStep(model, torch.device("cpu"), optimizer=opt, clip_grad_norm=0.5)
    step.scaler = scaler
    norms = []
    for batch in _loader(shuffle=False):
        step.forward(batch, "test", training=True)
        norm, applied = step.update()
        assert applied
        norms.append(norm)
    return model.state_dict(), norms


def test_the_grad_scaler_branch_trains_as_the_plain_one():
    """A disabled GradScaler (what AMP runs off CUDA) takes the scaler branch of update():
    scale, unscale, clip, scaler.step, scaler.update; the result must equal the plain branch."""
    plain, plain_norms = _weights_after_steps(None)
    scaled, scaled_norms = _weights_after_steps(torch.amp.GradScaler("cuda", enabled=False))
    assert scaled_norms == plain_norms
    for k in plain:
        assert torch.equal(plain[k], scaled[k]), k


class RecordingScaler:
    """A GradScaler stand-in that really scales (by a power of two, so unscaling is exact)
    and records the order of its calls in ``log``; a disabled torch GradScaler (all a CPU
    offers) makes unscale_ a no-op, so it could not tell clipping before unscaling apart."""

    def __init__(self, log, factor=2.0**10):
        self.log, self.factor = log, factor

    def scale(self, loss):
        self.log.append("scale")
        return loss * self.factor

    def unscale_(self, optimizer):
        self.log.append("unscale_")
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.div_(self.factor)

    def step(self, optimizer):
        self.log.append("step")
        optimizer.step()

    def update(self):
        self.log.append("update")


def _record_clipping(monkeypatch, log):
    clip = torch.nn.utils.clip_grads_with_norm_

    def recording_clip(*args, **kwargs):
        log.append("clip")
        return clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grads_with_norm_", recording_clip)


def test_with_a_grad_scaler_clipping_comes_after_unscaling(monkeypatch):
    """The AMP order: scale the loss, backward, unscale_, norm and clip the TRUE gradients,
    scaler.step, scaler.update. Clipping scaled gradients (a norm 1024 times too large)
    would leave them unclipped after unscaling, and record the scaled norm."""
    log = []
    _record_clipping(monkeypatch, log)
    plain, plain_norms = _weights_after_steps(None)
    assert log == ["clip"] * len(plain_norms)
    assert max(plain_norms) > 0.5  # clipping at 0.5 acts, so its order matters
    log.clear()
    scaled, scaled_norms = _weights_after_steps(RecordingScaler(log))
    assert log == ["scale", "unscale_", "clip", "step", "update"] * len(plain_norms)
    assert scaled_norms == pytest.approx(plain_norms, rel=1e-6)  # float32 backward, x1024
    for k in plain:
        torch.testing.assert_close(scaled[k], plain[k], rtol=1e-6, atol=1e-7)


def test_amp_step_runs_the_forward_in_float16_autocast_on_cpu(monkeypatch):
    """What fit builds on CUDA with amp=True, run on the CPU (where PyTorch allows float16
    autocast): the outputs are float16, the loss and the weights stay float32, and the
    update goes through the scaler in the AMP order."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    with warnings.catch_warnings():  # GradScaler("cuda") off CUDA: disabled, with a warning
        warnings.simplefilter("ignore", UserWarning)
        step = TorchStep(model, torch.device("cpu"), optimizer=opt, clip_grad_norm=0.5,
                         amp=True)
    assert step.scaler is not None
    log = []
    step.scaler = RecordingScaler(log)
    _record_clipping(monkeypatch, log)
    before = model.weight.detach().clone()
    loss, n = step.forward(next(iter(_loader(shuffle=False))), "test", training=True)
    assert step._out.dtype == torch.float16 and step._loss.dtype == torch.float32
    norm, applied = step.update()
    assert applied and math.isfinite(norm) and n == 16
    assert log == ["scale", "unscale_", "clip", "step", "update"]
    assert model.weight.dtype == torch.float32 and not torch.equal(model.weight, before)
    plain = TorchStep(nn.Linear(4, 2), torch.device("cpu"), amp=False)
    plain.forward(next(iter(_loader(shuffle=False))), "test", training=False)
    assert plain._out.dtype == torch.float32  # amp=False: no autocast


def test_a_compiled_net_trains_as_the_model_itself():
    """fit compiles on CUDA only; the step's ``net`` path runs here with torch.compile's
    eager backend (no C++ toolchain, a few seconds): the same losses, norms and weights."""
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        net = torch.compile(model, backend="eager") if compiled else None
        opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
        step = TorchStep(model, torch.device("cpu"), optimizer=opt, clip_grad_norm=0.5, net=net)
        assert step.net is (model if net is None else net)
        trace = [(step.forward(b, "test", training=True)[0], step.update()[0])
                 for b in _loader(shuffle=False)]
        results.append((trace, model.state_dict()))
    (plain_trace, plain), (compiled_trace, compiled) = results
    assert compiled_trace == plain_trace  # the eager backend runs the same kernels
    for k in plain:
        assert torch.equal(compiled[k], plain[k]), k


def test_amp_and_compile_are_enabled_on_cuda_without_a_warning():
    """The device check itself (fit's CUDA branch cannot run here)."""
    from d2lcnn.train.steps import _enabled_on

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for feature in ("amp", "compile"):
            assert _enabled_on(feature, True, torch.device("cuda"))
            assert not _enabled_on(feature, False, torch.device("cuda"))
            assert not _enabled_on(feature, False, torch.device("cpu"))
    with pytest.warns(UserWarning, match="amp=True ignored on cpu"):
        assert not _enabled_on("amp", True, torch.device("cpu"))


def test_a_non_finite_gradient_norm_stops_fit_before_any_update():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def loss_fn(out, y):  # finite loss; d sqrt(|t|)/dt at t = 0 is inf, times 0 is nan
        return F.cross_entropy(out, y) + 0.0 * (out - out.detach()).abs().sqrt().sum()

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(RuntimeWarning, match="fit stopped: gradient norm is nan"):
        h = fit(model, _loader(), epochs=2, optimizer=opt, loss_fn=loss_fn)
    assert h.stop_reason == "gradient norm is nan at step 1 (epoch 1)"
    assert len(h.steps) == 1 and h.epochs == []
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


# ----------------------------------------------------------------------------- warnings


def _warnings_of(call):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    return record


def test_every_warning_of_fit_names_the_caller_of_fit(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = tmp_path / "run.pt"
    save_checkpoint(ckpt, model, opt, epoch=1, history=None, extra={"generators": []})
    numpy_model = npnn.Sequential(npnn.Linear(4, 2, rng=np.random.default_rng(0)))
    calls = {
        "live_plot": lambda: fit(model, _loader(), epochs=1, optimizer=opt, live_plot=True),
        "amp": lambda: fit(model, _loader(), epochs=1, optimizer=opt, amp=True, device="cpu"),
        "resume": lambda: fit(
            model, _loader(), epochs=2, optimizer=opt, checkpoint=ckpt, resume=True
        ),
        "torch stop": lambda: fit(
            model, _loader(), epochs=1, optimizer=opt, loss_fn=lambda o, t: o.sum() * np.nan
        ),
        "numpy stop": lambda: fit(
            numpy_model, _loader(), epochs=1, optimizer=SGD(numpy_model.parameters(), lr=1e12)
        ),
    }
    expected = {
        "live_plot": "live_plot=True needs a Jupyter kernel",
        "amp": "amp=True ignored on cpu",
        "resume": "the checkpoint saved 0 loader generator(s) but train_loader has 1",
        "torch stop": "fit stopped: loss is nan",
        "numpy stop": "fit stopped: loss",
    }
    for name, call in calls.items():
        record = _warnings_of(call)
        assert [expected[name] in str(w.message) for w in record] == [True], (name, record)
        assert record[0].filename == __file__, (name, record[0].filename)


# ----------------------------------------------------------------------------- the teaching loop


def test_numpy_nn_stays_free_of_torch_and_of_d2lcnn_train():
    code = (
        "import sys, d2lcnn.numpy.nn\n"
        "assert 'torch' not in sys.modules, 'd2lcnn.numpy imported torch'\n"
        "assert 'd2lcnn.train' not in sys.modules, 'd2lcnn.numpy imported d2lcnn.train'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_teaching_loop_equals_one_epoch_of_fit():
    """nn.train_epoch and fit, given the same batches in the same order, take the same
    steps: the same mean loss and the same weights, to the last bit."""
    x, y = (a.numpy() for a in _toy_data(50))
    models = [
        npnn.Sequential(
            npnn.Linear(4, 3, rng=np.random.default_rng(0)),
            npnn.ReLU(),
            npnn.Linear(3, 2, rng=np.random.default_rng(1)),
        )
        for _ in range(2)
    ]
    opts = [SGD(m.parameters(), lr=0.2, momentum=0.9) for m in models]
    loss = npnn.train_epoch(models[0], opts[0], x, y, batch_size=16, rng=np.random.default_rng(7))
    order = np.random.default_rng(7).permutation(len(x))
    batches = [
        (torch.from_numpy(x[idx]), torch.from_numpy(y[idx]))
        for idx in (order[i : i + 16] for i in range(0, len(x), 16))
    ]
    h = fit(models[1], batches, epochs=1, optimizer=opts[1], explode_factor=None)
    assert h.epochs[0].train_loss == loss
    for k, v in models[0].state_dict().items():
        assert np.array_equal(v, models[1].state_dict()[k]), k
    loader = DataLoader(TensorDataset(*(torch.from_numpy(a) for a in (x, y))), 16)
    assert npnn.evaluate(models[0], x, y) == evaluate(models[1], loader)[1]
