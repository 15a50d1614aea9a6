"""NumPy optimizers: iterates equal torch.optim's step for step, the two momentum forms agree,
Nesterov's look-ahead and change-of-variables forms agree, Adam's bias correction, state, and
bad arguments."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import optimizer_hyperparameters

from d2lcnn.numpy.optim import SGD, Adagrad, Adam, AdamW, MomentumVelocity, RMSprop

STEPS = 20
TOL = dict(rtol=1e-10, atol=1e-12)  # float64; only the order of a few operations differs

OPTIMIZERS = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW}

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.2, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True, eps=1e-6)),
    ("RMSprop", dict(lr=0.005, alpha=0.95, centered=True, momentum=0.5, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.3, amsgrad=True)),
]


class LeastSquares:
    """``L(w, b) = 0.5 * mean_n ||x_n w + b - y_n||^2`` on random data: a quadratic with
    a non-trivial Hessian, so every optimizer takes a different path."""

    def __init__(self, seed=0, n=16, d_in=5, d_out=3):
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((n, d_in)) * np.array([3.0, 1.0, 0.3, 1.0, 0.1])
        self.y = rng.standard_normal((n, d_out))
        self.init = {"w": rng.standard_normal((d_in, d_out)), "b": rng.standard_normal(d_out)}

    def params(self):
        return {k: v.copy() for k, v in self.init.items()}

    def grads(self, params):
        r = self.x @ params["w"] + params["b"] - self.y  # (n, d_out)
        n = len(self.x)
        return {"w": self.x.T @ r / n, "b": r.sum(axis=0) / n}


def torch_trajectory(problem, name, kwargs, lrs=None):
    """Iterates of ``torch.optim.<name>`` fed with the same (NumPy) gradients."""
    params = {k: torch.tensor(v) for k, v in problem.init.items()}
    opt = getattr(torch.optim, name)(list(params.values()), **kwargs)
    out = []
    for t in range(STEPS):
        grads = problem.grads({k: v.numpy() for k, v in params.items()})
        for k, p in params.items():
            p.grad = torch.tensor(grads[k])
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[t]
        opt.step()
        out.append({k: v.numpy().copy() for k, v in params.items()})
    return out


def our_trajectory(problem, opt_class, kwargs, lrs=None):
    params = problem.params()
    opt = opt_class(params, **kwargs)
    out = []
    for t in range(STEPS):
        if lrs is not None:
            opt.lr = lrs[t]
        opt.step(problem.grads(params))
        out.append({k: v.copy() for k, v in params.items()})
    return out


def assert_same_trajectory(ours, theirs, **tol):
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], **(tol or TOL), err_msg=f"step {t + 1}, {k}")


# --------------------------------------------------------------------------- parity with torch


@pytest.mark.parametrize("name, kwargs", CASES)
def test_matches_torch_optim(name, kwargs):
    problem = LeastSquares()
    ours = our_trajectory(problem, OPTIMIZERS[name], kwargs)
    theirs = torch_trajectory(problem, name, kwargs)
    assert not np.allclose(ours[-1]["w"], problem.init["w"])  # it did move
    assert_same_trajectory(ours, theirs)


@settings(max_examples=40, deadline=None)
@given(case=optimizer_hyperparameters(), seed=st.integers(0, 50))
def test_matches_torch_optim_for_random_hyperparameters(case, seed):
    name, kwargs = case
    problem = LeastSquares(seed=seed)
    assert_same_trajectory(
        our_trajectory(problem, OPTIMIZERS[name], kwargs),
        torch_trajectory(problem, name, kwargs),
    )


@pytest.mark.parametrize("name, kwargs", [CASES[2], CASES[10], CASES[13], CASES[15]])
def test_matches_torch_optim_with_changing_lr(name, kwargs):
    """Hyperparameters are read at every step, so a schedule is ``opt.lr = ...``."""
    problem = LeastSquares(seed=1)
    lrs = [kwargs["lr"] * 0.9**t for t in range(STEPS)]
    assert_same_trajectory(
        our_trajectory(problem, OPTIMIZERS[name], kwargs, lrs),
        torch_trajectory(problem, name, kwargs, lrs),
    )


def test_torch_defaults_are_ours():
    problem = LeastSquares(seed=2)
    for name, cls in OPTIMIZERS.items():
        assert_same_trajectory(
            our_trajectory(problem, cls, {}), torch_trajectory(problem, name, {})
        )


# --------------------------------------------------------------------------- the two momentum forms


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.5, 0.9, 0.99])
def test_velocity_form_gives_the_same_iterates_as_torch_form(momentum, nesterov):
    """``v <- rho v - lr g; p <- p + v`` and ``v <- mu v + g; p <- p - lr v`` are the same
    method for a constant lr: the velocity is ``-lr`` times torch's buffer."""
    problem = LeastSquares(seed=3)
    kwargs = dict(lr=0.03, momentum=momentum, nesterov=nesterov)
    assert_same_trajectory(
        our_trajectory(problem, MomentumVelocity, kwargs), our_trajectory(problem, SGD, kwargs)
    )
    assert_same_trajectory(
        our_trajectory(problem, MomentumVelocity, kwargs), torch_trajectory(problem, "SGD", kwargs)
    )


def test_velocity_form_differs_when_lr_changes():
    """The velocity form keeps old learning rates inside v; torch's form rescales it all."""
    problem = LeastSquares(seed=3)
    kwargs = dict(lr=0.03, momentum=0.9)
    lrs = [0.03] * 5 + [0.003] * (STEPS - 5)
    ours = our_trajectory(problem, MomentumVelocity, kwargs, lrs)
    sgd = our_trajectory(problem, SGD, kwargs, lrs)
    np.testing.assert_allclose(ours[4]["w"], sgd[4]["w"], **TOL)
    assert not np.allclose(ours[5]["w"], sgd[5]["w"], rtol=1e-6)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_nesterov_change_of_variables(rho):
    """Nesterov as first written evaluates the gradient at the look-ahead point:
    ``v <- rho v - lr grad f(x + rho v); x <- x + v``. Our update works on
    ``x~ = x + rho v`` instead, so its iterates must be exactly ``x_t + rho v_t``."""
    problem, lr = LeastSquares(seed=4), 0.05
    x = problem.params()
    v = {k: np.zeros_like(a) for k, a in x.items()}
    opt_params = problem.params()
    opt = MomentumVelocity(opt_params, lr=lr, momentum=rho, nesterov=True)
    for _ in range(STEPS):
        look_ahead = {k: x[k] + rho * v[k] for k in x}
        g = problem.grads(look_ahead)
        for k in x:
            v[k] = rho * v[k] - lr * g[k]
            x[k] = x[k] + v[k]
        opt.step(problem.grads(opt_params))
        for k in x:
            np.testing.assert_allclose(opt_params[k], x[k] + rho * v[k], **TOL)


# --------------------------------------------------------------------------- Adam bias correction


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.9, 0.99999), (0.99, 0.999)])
def test_adam_without_bias_correction_misjudges_the_first_step(betas):
    """At t = 1, m = (1-b1) g and s = (1-b2) g^2. Uncorrected, the step is
    lr (1-b1)/sqrt(1-b2) per coordinate (3.16 lr for the defaults, 31.6 lr with
    b2 = 0.99999, 0.32 lr with b1 = 0.99); corrected, it is lr * sign(g)."""
    beta1, beta2 = betas
    lr, g = 1e-3, np.array([2.0, -0.5, 1e-2, 30.0])  # |g| >> eps: eps is negligible
    steps = {}
    for corrected in (True, False):
        p = {"p": np.zeros(4)}
        Adam(p, lr=lr, betas=betas, eps=0.0, bias_correction=corrected).step({"p": g})
        steps[corrected] = -p["p"]
    np.testing.assert_allclose(steps[True], lr * np.sign(g), rtol=1e-12)
    factor = (1 - beta1) / np.sqrt(1 - beta2)
    np.testing.assert_allclose(steps[False], factor * lr * np.sign(g), rtol=1e-12)
    assert factor > 3 or factor < 0.5  # far from the intended lr either way


# --------------------------------------------------------------------------- state and errors


def test_state_dict_round_trip():
    problem = LeastSquares(seed=6)
    params = problem.params()
    opt = Adam(params, lr=0.01, amsgrad=True)
    for _ in range(5):
        opt.step(problem.grads(params))
    saved, saved_params = opt.state_dict(), {k: v.copy() for k, v in params.items()}
    assert saved["hyper"]["betas"] == (0.9, 0.999) and saved["state"]["w"]["step"] == 5
    for _ in range(5):
        opt.step(problem.grads(params))
    after = {k: v.copy() for k, v in params.items()}
    # restore and replay: the same five steps again
    for k in params:
        params[k][...] = saved_params[k]
    opt.load_state_dict(saved)
    for _ in range(5):
        opt.step(problem.grads(params))
    for k in params:
        np.testing.assert_array_equal(params[k], after[k])


def test_parameter_without_gradient_is_skipped():
    params = {"a": np.ones(3), "b": np.ones(2)}
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step({"a": np.ones(3)})
    np.testing.assert_array_equal(params["b"], np.ones(2))
    assert opt.state["b"] == {}


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (SGD, dict(lr=-0.1), "lr must be >= 0"),
        (SGD, dict(lr=float("nan")), "lr must be >= 0"),
        (SGD, dict(momentum=-0.9), "momentum must be >= 0"),
        (SGD, dict(weight_decay=-1e-4), "weight_decay must be >= 0"),
        (SGD, dict(nesterov=True), "nesterov=True needs momentum > 0"),
        (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "dampening = 0"),
        (MomentumVelocity, dict(lr=-1.0), "lr must be >= 0"),
        (MomentumVelocity, dict(momentum=0.0, nesterov=True), "nesterov=True needs"),
        (Adagrad, dict(eps=-1e-10), "eps must be >= 0"),
        (Adagrad, dict(lr_decay=-1.0), "lr_decay must be >= 0"),
        (RMSprop, dict(alpha=1.0), r"alpha must be in \[0, 1\)"),
        (RMSprop, dict(momentum=-0.1), "momentum must be >= 0"),
        (Adam, dict(betas=(1.0, 0.999)), r"betas\[0\] must be in \[0, 1\)"),
        (Adam, dict(betas=(0.9, -0.1)), r"betas\[1\] must be in \[0, 1\), got -0.1"),
        (Adam, dict(betas=0.9), "betas must be a pair"),
        (Adam, dict(eps=-1e-8), "eps must be >= 0"),
        (AdamW, dict(lr=-1e-3), "AdamW: lr must be >= 0"),
        (AdamW, dict(weight_decay=-0.01), "weight_decay must be >= 0"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls({"w": np.zeros(3)}, **kwargs)


def test_bad_params_and_grads():
    with pytest.raises(TypeError, match="params must be a non-empty dict"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match=r"params\['w'\] must be a floating-point numpy array"):
        SGD({"w": np.zeros(3, dtype=int)}, lr=0.1)
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD({"w": np.zeros(3)}, lr="0.1")
    opt = SGD({"w": np.zeros(3)}, lr=0.1)
    with pytest.raises(KeyError, match="no parameter"):
        opt.step({"v": np.zeros(3)})
    with pytest.raises(ValueError, match=r"grads\['w'\] must have shape \(3,\), got \(4,\)"):
        opt.step({"w": np.zeros(4)})


def test_momentum_velocity_defaults_to_momentum_0_9():
    def run(**kwargs):
        params = {"w": np.array([1.0, -2.0])}
        opt = MomentumVelocity(params, lr=0.1, **kwargs)
        for g in ([0.5, 1.0], [1.0, -1.0], [0.0, 2.0]):
            opt.step({"w": np.array(g)})
        return params["w"]

    # by hand: v1 = -0.1 g1, v2 = 0.9 v1 - 0.1 g2, v3 = 0.9 v2 - 0.1 g3; p = p0 + v1 + v2 + v3
    v1 = -0.1 * np.array([0.5, 1.0])
    v2 = 0.9 * v1 - 0.1 * np.array([1.0, -1.0])
    v3 = 0.9 * v2 - 0.1 * np.array([0.0, 2.0])
    np.testing.assert_allclose(run(), np.array([1.0, -2.0]) + v1 + v2 + v3, rtol=1e-15)


def test_the_package_loads_optimizers_lazily(monkeypatch):
    """``nd.SGD`` and ``nd.optim.SGD`` are the optim module's classes (loaded on first use,
    so the cached names are removed first); ``dir(nd)`` lists them with the layers."""
    from d2lcnn import numpy as nd

    for name in ("SGD", "Adam"):
        monkeypatch.delitem(vars(nd), name, raising=False)
    assert nd.SGD is SGD and nd.Adam is Adam and nd.optim.AdamW is AdamW
    assert {"SGD", "RMSprop", "conv2d_forward", "optim"} <= set(dir(nd))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        nd.nope  # noqa: B018
