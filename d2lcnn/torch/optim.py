"""The optimizers of :mod:`d2lcnn.numpy.optim` as ``torch.optim.Optimizer`` subclasses.

Each ``step`` is written out over tensors (no call into ``torch.optim``'s own update
functions), with the same names, defaults and update rules as ``torch.optim``; the formulas
are in the NumPy module's docstrings. Being real ``Optimizer`` subclasses, they work with
``zero_grad``, ``state_dict``, parameter groups and ``torch.optim.lr_scheduler``.
"""

from __future__ import annotations

import abc
import math

import torch

from d2lcnn.checks import (
    check_adagrad,
    check_adam,
    check_momentum_velocity,
    check_rmsprop,
    check_sgd,
)

__all__ = ["SGD", "MomentumVelocity", "Adagrad", "RMSprop", "Adam", "AdamW"]


class _Optimizer(torch.optim.Optimizer, abc.ABC):
    """Shared ``step``: run the closure, then :meth:`_update` each parameter with a grad."""

    @torch.no_grad()
    def step(self, closure=None):
        """Update every parameter whose ``.grad`` is set; return the closure's loss, if any."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise TypeError(f"{type(self).__name__}: sparse gradients are not supported")
                self._update(p, p.grad, self.state[p], group)
        return loss

    @abc.abstractmethod
    def _update(self, p, g, state, group):
        """Update the parameter ``p`` in place from its gradient ``g``, ``state`` and the
        hyperparameters of its ``group``."""


class SGD(_Optimizer):
    """SGD with optional momentum, Nesterov and L2 weight decay, as ``torch.optim.SGD``.

    See :class:`d2lcnn.numpy.optim.SGD` for the update rule.

    Args:
        params: an iterable of tensors or of parameter-group dicts.
        lr: learning rate, >= 0. Default 1e-3.
        momentum: momentum factor, >= 0. Default 0.
        dampening: dampening for momentum, >= 0. Default 0.
        weight_decay: L2 penalty, >= 0. Default 0.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0). Default False.
    """

    def __init__(
        self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
    ):
        super().__init__(params, check_sgd(lr, momentum, dampening, weight_decay, nesterov, "SGD"))

    def _update(self, p, g, state, group):
        mu = group["momentum"]
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])
        if mu:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.clone()
            else:
                buf.mul_(mu).add_(g, alpha=1 - group["dampening"])
            g = g.add(buf, alpha=mu) if group["nesterov"] else buf
        p.add_(g, alpha=-group["lr"])


class MomentumVelocity(_Optimizer):
    """SGD+momentum in the velocity form ``v <- rho*v - lr*g; p <- p + v`` (and its
    Nesterov change of variables), as :class:`d2lcnn.numpy.optim.MomentumVelocity`.

    Args:
        params: an iterable of tensors or of parameter-group dicts.
        lr: learning rate, >= 0. Default 1e-3.
        momentum: the friction ``rho``, >= 0. Default 0.9.
        nesterov: use the Nesterov update. Default False.
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, nesterov=False):
        hyper = check_momentum_velocity(lr, momentum, nesterov, "MomentumVelocity")
        super().__init__(params, hyper)

    def _update(self, p, g, state, group):
        rho = group["momentum"]
        v_old = state.get("velocity", torch.zeros_like(p))
        v = state["velocity"] = rho * v_old - group["lr"] * g
        if group["nesterov"]:
            p.add_(-rho * v_old + (1 + rho) * v)
        else:
            p.add_(v)


class Adagrad(_Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``; see :class:`d2lcnn.numpy.optim.Adagrad`.

    Args:
        params: an iterable of tensors or of parameter-group dicts.
        lr: learning rate, >= 0. Default 1e-2.
        lr_decay: learning-rate decay, >= 0. Default 0.
        weight_decay: L2 penalty, >= 0. Default 0.
        initial_accumulator_value: starting sum of squares, >= 0. Default 0.
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

    def _update(self, p, g, state, group):
        if not state:
            state["step"] = 0
            state["sum"] = torch.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"].addcmul_(g, g)
        p.addcdiv_(g, state["sum"].sqrt().add_(group["eps"]), value=-clr)


class RMSprop(_Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``; see :class:`d2lcnn.numpy.optim.RMSprop`.

    Args:
        params: an iterable of tensors or of parameter-group dicts.
        lr: learning rate, >= 0. Default 1e-2.
        alpha: smoothing constant in [0, 1). Default 0.99.
        eps: added to the denominator, >= 0. Default 1e-8.
        weight_decay: L2 penalty, >= 0. Default 0.
        momentum: momentum factor, >= 0. Default 0.
        centered: normalize by the estimated variance. Default False.
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
    ):
        hyper = check_rmsprop(lr, alpha, eps, weight_decay, momentum, centered, "RMSprop")
        super().__init__(params, hyper)

    def _update(self, p, g, state, group):
        alpha = group["alpha"]
        if not state:
            state["step"] = 0
            state["square_avg"] = torch.zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(p)
        state["step"] += 1
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])
        square_avg = state["square_avg"].mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"].lerp_(g, 1 - alpha)
            denom = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            denom = square_avg.sqrt()
        denom.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"].mul_(group["momentum"]).addcdiv_(g, denom)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.addcdiv_(g, denom, value=-group["lr"])


class Adam(_Optimizer):
    """Adam, as ``torch.optim.Adam``; see :class:`d2lcnn.numpy.optim.Adam` (including the
    teaching-only ``bias_correction=False``).

    Args:
        params: an iterable of tensors or of parameter-group dicts.
        lr: learning rate, >= 0. Default 1e-3.
        betas: ``(beta1, beta2)``, each in [0, 1). Default (0.9, 0.999).
        eps: added to the denominator, >= 0. Default 1e-8.
        weight_decay: L2 penalty added to the gradient, >= 0. Default 0.
        amsgrad: use the running maximum of the second moment. Default False.
        bias_correction: apply the ``1 - beta^t`` corrections. Default True.
    """

    _decoupled = False

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

    def _update(self, p, g, state, group):
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        if wd:
            if self._decoupled:
                p.mul_(1 - lr * wd)
            else:
                g = g.add(p, alpha=wd)
        m = state["exp_avg"].lerp_(g, 1 - beta1)
        s = state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        if group["amsgrad"]:
            s = torch.maximum(state["max_exp_avg_sq"], s, out=state["max_exp_avg_sq"])
        if group["bias_correction"]:
            step_size = lr / (1 - beta1**t)
            denom = (s.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
        else:
            step_size = lr
            denom = s.sqrt().add_(group["eps"])
        p.addcdiv_(m, denom, value=-step_size)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay
    ``p <- p * (1 - lr * weight_decay)``; ``weight_decay`` defaults to 1e-2."""

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
