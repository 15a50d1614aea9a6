"""First-order optimizers in NumPy with ``torch.optim``'s update rules and hyperparameter names.

An optimizer holds a dict of parameter arrays and, per parameter, a small dict of state
(momentum buffers, running averages). ``opt.step(grads)`` takes a dict of gradients with the
same keys and shapes and updates the parameters **in place**, exactly as the corresponding
``torch.optim`` class would; ``tests/numpy/test_optim.py`` checks the iterates against
``torch.optim`` step for step.

The family, in the order a course introduces it (``g`` is the gradient, ``t`` counts steps
from 1, all operations elementwise)::

    SGD           p <- p - lr * g
    + momentum    v <- mu * v + g             p <- p - lr * v          (torch's form)
    + Nesterov    v <- mu * v + g             p <- p - lr * (g + mu * v)
    Adagrad       s <- s + g^2                p <- p - lr * g / (sqrt(s) + eps)
    RMSprop       s <- alpha*s + (1-alpha)*g^2   p <- p - lr * g / (sqrt(s) + eps)
    Adam          m <- b1*m + (1-b1)*g        s <- b2*s + (1-b2)*g^2
                  p <- p - lr/(1-b1^t) * m / (sqrt(s/(1-b2^t)) + eps)

Momentum is often written the other way round, with the learning rate inside the velocity:
``v <- rho * v - lr * g; p <- p + v``. :class:`MomentumVelocity` implements that form; with a
constant learning rate its velocity is ``-lr`` times torch's buffer and the iterates are
identical (with a changing learning rate they are not: torch's form applies the *new* lr to
the whole accumulated buffer).
"""

from __future__ import annotations

import abc
import math

import numpy as np

from d2lcnn.checks import (
    check_adagrad,
    check_adam,
    check_momentum_velocity,
    check_rmsprop,
    check_sgd,
)
from d2lcnn.numpy._checks import check_array_dict

__all__ = [
    "Optimizer",
    "SGD",
    "MomentumVelocity",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
]


# --------------------------------------------------------------------------- base class


class Optimizer(abc.ABC):
    """Base class: a dict of parameter arrays, per-parameter state, and ``step(grads)``.

    Hyperparameters are plain attributes (``opt.lr``), so a learning-rate schedule is
    ``opt.lr = schedule(t)`` before each step. Subclasses implement :meth:`_update` for one
    parameter.

    Args:
        params: ``{name: array}`` of floating-point arrays, updated in place by :meth:`step`.
        hyper: the hyperparameters, stored as attributes and returned by :meth:`state_dict`.
    """

    def __init__(self, params: dict[str, np.ndarray], hyper: dict):
        self.params = check_array_dict(params, "params", type(self).__name__, nonempty=True)
        self._hyper_names = tuple(hyper)
        for key, value in hyper.items():
            setattr(self, key, value)
        self.state: dict[str, dict] = {name: {} for name in params}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """Update every parameter that has a gradient in ``grads``, in place.

        As in torch, a parameter without a gradient (absent from ``grads``) is skipped and
        its state does not advance.

        Raises:
            KeyError: if ``grads`` has a name that is not a parameter.
            ValueError: if a gradient's shape differs from its parameter's.
        """
        cls = type(self).__name__
        for name, g in grads.items():
            if name not in self.params:
                raise KeyError(f"{cls}.step: grads[{name!r}] has no parameter of that name")
            p = self.params[name]
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(
                    f"{cls}.step: grads[{name!r}] must have shape {p.shape}, got {g.shape}"
                )
            self._update(p, g, self.state[name])

    @abc.abstractmethod
    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        """Update the parameter ``p`` in place from its gradient ``g`` and its ``state``."""

    def state_dict(self) -> dict:
        """``{"hyper": {name: value}, "state": {param: {key: copy}}}``, safe to keep."""
        return {
            "hyper": {key: getattr(self, key) for key in self._hyper_names},
            "state": {
                name: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                for name, s in self.state.items()
            },
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned (copies, so the two stay independent)."""
        for key, value in state_dict["hyper"].items():
            setattr(self, key, value)
        self.state = {
            name: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for name, s in state_dict["state"].items()
        }


# --------------------------------------------------------------------------- SGD family


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay,
    as ``torch.optim.SGD``.

    Update for one parameter ``p`` with gradient ``g``::

        g <- g + weight_decay * p                     (L2 penalty, if weight_decay > 0)
        v <- g                        on the first step
        v <- mu * v + (1 - dampening) * g   afterwards        (if momentum mu > 0)
        d <- g + mu * v  if nesterov  else  v         (d = g without momentum)
        p <- p - lr * d

    Args:
        params: ``{name: array}``, updated in place.
        lr: learning rate, >= 0. Default 1e-3 (torch's).
        momentum: momentum factor ``mu``, >= 0. Default 0.
        dampening: scales the new gradient in the buffer by ``1 - dampening``. Default 0.
        weight_decay: L2 penalty coefficient, >= 0. Default 0.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).

    Raises:
        ValueError: for a negative ``lr``/``momentum``/``dampening``/``weight_decay``, or
            ``nesterov`` without momentum.
    """

    def __init__(
        self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
    ):
        super().__init__(params, check_sgd(lr, momentum, dampening, weight_decay, nesterov, "SGD"))

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class MomentumVelocity(Optimizer):
    """SGD+momentum in the "velocity" form, with the learning rate inside the velocity.

    ::

        v <- rho * v - lr * g
        p <- p + v                                   (plain momentum)
        p <- p - rho * v_old + (1 + rho) * v         (nesterov=True)

    The Nesterov line comes from the look-ahead form ``v <- rho*v - lr*grad f(x + rho*v);
    x <- x + v`` by the change of variables ``p = x + rho * v``: then the gradient is taken
    at the stored point ``p`` itself, and ``p`` moves by ``v + rho * (v - v_old)``.

    For a constant ``lr`` this is the same sequence of iterates as :class:`SGD` with the same
    ``momentum`` (and ``nesterov``), because here ``v = -lr * buf``. They differ when ``lr``
    changes: this form keeps the old learning rate in the accumulated velocity.

    Args:
        params: ``{name: array}``, updated in place.
        lr: learning rate, >= 0. Default 1e-3.
        momentum: the friction ``rho``, >= 0. Default 0.9.
        nesterov: use the change-of-variables Nesterov update. Default False.
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, nesterov=False):
        hyper = check_momentum_velocity(lr, momentum, nesterov, "MomentumVelocity")
        super().__init__(params, hyper)

    def _update(self, p, g, state):
        v_old = state.get("velocity", np.zeros_like(p))
        v = state["velocity"] = self.momentum * v_old - self.lr * g
        if self.nesterov:
            p += -self.momentum * v_old + (1 + self.momentum) * v
        else:
            p += v


# --------------------------------------------------------------------------- adaptive methods


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``: per-coordinate steps scaled by the root of the
    sum of all squared gradients so far.

    ::

        g <- g + weight_decay * p
        s <- s + g^2                               (s starts at initial_accumulator_value)
        p <- p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    Steep coordinates (large past gradients) take small steps and flat ones large steps;
    since ``s`` only grows, every step size decays towards zero.

    Args:
        params: ``{name: array}``, updated in place.
        lr: learning rate, >= 0. Default 1e-2.
        lr_decay: the ``lr_decay`` above, >= 0. Default 0.
        weight_decay: L2 penalty, >= 0. Default 0.
        initial_accumulator_value: starting value of ``s``, >= 0. Default 0.
        eps: added to the denominator, >= 0. Default 1e-10.
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
    ):
        hyper = check_adagrad(lr, lr_decay, weight_decay, initial_accumulator_value, eps, "Adagrad")
        super().__init__(params, hyper)

    def _update(self, p, g, state):
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p, self.initial_accumulator_value)
        state["step"] += 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        clr = self.lr / (1 + (state["step"] - 1) * self.lr_decay)
        state["sum"] += g * g
        p -= clr * (g / (np.sqrt(state["sum"]) + self.eps))


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``: Adagrad with a leaky (exponential) average of the
    squared gradients, so old gradients are forgotten and the step does not decay to zero.

    ::

        g <- g + weight_decay * p
        s <- alpha * s + (1 - alpha) * g^2
        a <- alpha * a + (1 - alpha) * g           (centered only: the mean gradient)
        d <- sqrt(s - a^2) + eps  if centered  else  sqrt(s) + eps
        b <- momentum * b + g / d;  p <- p - lr * b      (momentum > 0)
        p <- p - lr * g / d                               (momentum = 0)

    Args:
        params: ``{name: array}``, updated in place.
        lr: learning rate, >= 0. Default 1e-2.
        alpha: smoothing constant in [0, 1). Default 0.99.
        eps: added to the denominator, >= 0. Default 1e-8.
        weight_decay: L2 penalty, >= 0. Default 0.
        momentum: momentum factor, >= 0. Default 0.
        centered: divide by an estimate of the gradient's variance instead of its second
            moment. Default False.
    """

    def __init__(
        self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
    ):
        hyper = check_rmsprop(lr, alpha, eps, weight_decay, momentum, centered, "RMSprop")
        super().__init__(params, hyper)

    def _update(self, p, g, state):
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * (g * g)
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - self.alpha) * (g - grad_avg)
            denom = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denom = np.sqrt(square_avg) + self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += g / denom
            p -= self.lr * buf
        else:
            p -= self.lr * (g / denom)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``: momentum on the gradient (first moment ``m``) divided
    by the root of a leaky average of its square (second moment ``s``), both bias-corrected.

    ::

        g <- g + weight_decay * p                     (L2 penalty; AdamW decouples it)
        m <- beta1 * m + (1 - beta1) * g
        s <- beta2 * s + (1 - beta2) * g^2
        s_max <- max(s_max, s)                        (amsgrad: use s_max instead of s)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(s) / sqrt(1 - beta2^t) + eps)

    Why the bias correction: ``m`` and ``s`` start at zero, so after the first step
    ``m = (1 - beta1) g`` and ``s = (1 - beta2) g^2``, and without correction the first step
    is ``lr * (1 - beta1) / sqrt(1 - beta2)`` per coordinate: about ``3.2 * lr`` with the
    default betas (and larger still as ``beta2 -> 1``) instead of ``lr``. Dividing by
    ``1 - beta^t`` turns both into unbiased averages. ``bias_correction=False`` gives the
    uncorrected "Adam (almost)" for teaching; torch has no such switch.

    Args:
        params: ``{name: array}``, updated in place.
        lr: learning rate, >= 0. Default 1e-3.
        betas: ``(beta1, beta2)``, each in [0, 1). Default (0.9, 0.999).
        eps: added to the denominator, >= 0. Default 1e-8.
        weight_decay: L2 penalty added to the gradient, >= 0. Default 0.
        amsgrad: divide by the running maximum of ``s``. Default False.
        bias_correction: apply the ``1 - beta^t`` corrections. Default True.
    """

    _decoupled = False  # AdamW: weight decay shrinks p directly instead of entering g

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        bias_correction=True,
    ):
        hyper = check_adam(
            lr, betas, eps, weight_decay, amsgrad, bias_correction, type(self).__name__
        )
        super().__init__(params, hyper)

    def _update(self, p, g, state):
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self._decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, s = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)  # = beta1 * m + (1 - beta1) * g
        s *= beta2
        s += (1 - beta2) * (g * g)
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], s, out=state["max_exp_avg_sq"])
            s = state["max_exp_avg_sq"]
        if self.bias_correction:
            step_size = self.lr / (1 - beta1**t)
            denom = np.sqrt(s) / math.sqrt(1 - beta2**t) + self.eps
        else:
            step_size = self.lr
            denom = np.sqrt(s) + self.eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam with *decoupled* weight decay.

    Instead of adding ``weight_decay * p`` to the gradient (where Adam's per-coordinate
    scaling would shrink the decay of coordinates with large gradients), the parameter is
    shrunk directly before the Adam step: ``p <- p * (1 - lr * weight_decay)``.

    Args: as :class:`Adam`, but ``weight_decay`` defaults to 1e-2 (torch's).
    """

    _decoupled = True

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        bias_correction=True,
    ):
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, bias_correction=bias_correction
        )
