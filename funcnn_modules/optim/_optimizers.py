"""SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam, Adamax and Adadelta: torch.optim's classes
as shells over funcnn.optim.

Each class keeps torch.optim's constructor, defaults, validation messages, ``param_groups``
keys and per-parameter state names; its ``step()`` calls the same-named ``funcnn.optim``
function built from the group's current hyperparameters (see :class:`Optimizer`).
"""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn import optim as fo
from funcnn.optim._base import GradientTransformation
from funcnn.optim._transforms import _scalar_dtype_name
from funcnn_modules.optim.optimizer import Optimizer
from funcnn_modules.tensor import wrap

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "NAdam",
    "RAdam",
    "Adamax",
    "Adadelta",
]

_NOT_DIFFERENTIABLE = (
    "{cls}: differentiable=True is not supported; to differentiate through optimiser steps "
    "use the pure functions of funcnn.optim (e.g. funcnn.optim.{fn}) inside funcnn.grad"
)


def _check_lr(lr: Any) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_nonnegative(**values: Any) -> None:
    """torch.optim's "Invalid <name> value: <v>" for the first value below 0 (or NaN)."""
    for name, v in values.items():
        if not 0.0 <= v:
            raise ValueError(f"Invalid {name} value: {v}")


def _check_differentiable(cls: str, fn: str, differentiable: bool) -> None:
    if differentiable:
        raise NotImplementedError(_NOT_DIFFERENTIABLE.format(cls=cls, fn=fn))


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (``torch.optim.SGD``).

    See ``funcnn.optim.sgd`` for the arithmetic. State per parameter: ``momentum_buffer``
    (only with momentum).

    Args:
        params: tensors or param groups to optimise.
        lr: learning rate (default 1e-3, PyTorch's).
        momentum: momentum factor.
        dampening: dampening for momentum.
        weight_decay: L2 penalty.
        nesterov: Nesterov momentum.
        maximize: maximise the objective.
        foreach, fused: accepted for compatibility; they do not change the arithmetic.
        differentiable: must be False (use ``funcnn.optim`` to differentiate through steps).
    """

    _core_state_type = fo.TraceState

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_differentiable("SGD", "sgd", differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        return fo.sgd(
            float(group["lr"]),
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )

    def _bucket(self, group: dict[str, Any], state: dict[str, Any]) -> Any:
        return "momentum_buffer" in state

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        if "momentum_buffer" not in states[0]:
            return fo.TraceState(0, None)  # torch: the buffer starts as the first gradient
        return fo.TraceState(
            1, [self._get(st, "momentum_buffer", p) for st, p in zip(states, params)]
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for st, buf in zip(states, core.trace):
            self._put(st, "momentum_buffer", buf)


def _check_adam_args(lr: Any, betas: Any, eps: Any, weight_decay: Any) -> tuple[float, float]:
    _check_lr(lr)
    _check_nonnegative(epsilon=eps)
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    _check_nonnegative(weight_decay=weight_decay)
    return float(betas[0]), float(betas[1])


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``); weight decay is L2 added to the gradient unless
    ``decoupled_weight_decay=True`` (then it is AdamW).

    See ``funcnn.optim.adam``. State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and
    with AMSGrad ``max_exp_avg_sq``.

    Args:
        params: tensors or param groups to optimise.
        lr: learning rate.
        betas: decay rates of the first and second moments, each in [0, 1).
        eps: added to the denominator after the square root.
        weight_decay: weight decay.
        amsgrad: use the running maximum of the second moments.
        maximize: maximise the objective.
        decoupled_weight_decay: apply weight decay to the parameters, as AdamW.
        foreach, capturable, fused: accepted for compatibility; no effect on the arithmetic.
        differentiable: must be False.
    """

    _core_state_type = fo.ScaleByAdamState

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        betas = _check_adam_args(lr, betas, eps, weight_decay)
        _check_differentiable(type(self).__name__, "adam", differentiable)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        make = fo.adamw if group.get("decoupled_weight_decay", False) else fo.adam
        b1, b2 = group["betas"]
        return make(
            float(group["lr"]),
            b1=float(b1),
            b2=float(b2),
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
        )

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        amsgrad = group["amsgrad"]
        return fo.ScaleByAdamState(
            self._count(states[0]),
            [self._get(st, "exp_avg", p) for st, p in zip(states, params)],
            [self._get(st, "exp_avg_sq", p) for st, p in zip(states, params)],
            [self._get(st, "max_exp_avg_sq", p) for st, p in zip(states, params)]
            if amsgrad
            else None,
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for i, st in enumerate(states):
            self._put_step(st, core.count)
            self._put(st, "exp_avg", core.mu[i])
            self._put(st, "exp_avg_sq", core.nu[i])
            if core.nu_max is not None:
                self._put(st, "max_exp_avg_sq", core.nu_max[i])


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay, ``p *= 1 - lr * wd``.

    Same arguments as :class:`Adam` with ``weight_decay=1e-2`` by default; see
    ``funcnn.optim.adamw``.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``); see ``funcnn.optim.rmsprop``.

    State per parameter: ``step``, ``square_avg``, with momentum ``momentum_buffer`` and when
    centered ``grad_avg``.

    Args:
        params: tensors or param groups to optimise.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant.
        eps: added to the denominator after the square root.
        weight_decay: L2 penalty.
        momentum: momentum factor.
        centered: normalise by an estimate of the gradient's variance.
        maximize: maximise the objective.
        capturable, foreach: accepted for compatibility.
        differentiable: must be False.
    """

    _core_state_type = fo.ScaleByRmsState

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        _check_nonnegative(epsilon=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        _check_differentiable("RMSprop", "rmsprop", differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        return fo.rmsprop(
            float(group["lr"]),
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            maximize=group["maximize"],
        )

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        pairs = list(zip(states, params))
        return fo.ScaleByRmsState(
            self._count(states[0]),
            [self._get(st, "square_avg", p) for st, p in pairs],
            [self._get(st, "grad_avg", p) for st, p in pairs] if group["centered"] else None,
            [self._get(st, "momentum_buffer", p) for st, p in pairs]
            if group["momentum"] > 0
            else None,
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for i, st in enumerate(states):
            self._put_step(st, core.count)
            self._put(st, "square_avg", core.square_avg[i])
            if core.momentum_buffer is not None:
                self._put(st, "momentum_buffer", core.momentum_buffer[i])
            if core.grad_avg is not None:
                self._put(st, "grad_avg", core.grad_avg[i])


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``); see ``funcnn.optim.adagrad``.

    State per parameter (made at construction, like PyTorch): ``step`` and ``sum``.

    Args:
        params: tensors or param groups to optimise.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay.
        weight_decay: L2 penalty.
        initial_accumulator_value: starting value of ``sum``.
        eps: added to the denominator.
        maximize: maximise the objective.
        foreach, fused: accepted for compatibility.
        differentiable: must be False.
    """

    _core_state_type = fo.ScaleByAdagradState

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        _check_nonnegative(
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            epsilon=eps,
        )
        _check_differentiable("Adagrad", "adagrad", differentiable)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                self._put_step(state, 0)
                init = float(group["initial_accumulator_value"])
                state["sum"] = wrap(fnp.full_like(p._value, init))

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        return fo.adagrad(
            float(group["lr"]),
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            initial_accumulator_value=group["initial_accumulator_value"],
            eps=group["eps"],
            maximize=group["maximize"],
        )

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        init = float(group["initial_accumulator_value"])
        return fo.ScaleByAdagradState(
            self._count(states[0]),
            [self._get(st, "sum", p, fill=init) for st, p in zip(states, params)],
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for st, total in zip(states, core.sum):
            self._put_step(st, core.count)
            self._put(st, "sum", total)


def _read_moments(opt: Optimizer, states: list[dict], params: list) -> tuple[list, list]:
    pairs = list(zip(states, params))
    return (
        [opt._get(st, "exp_avg", p) for st, p in pairs],
        [opt._get(st, "exp_avg_sq", p) for st, p in pairs],
    )


def _copy(x: Any) -> Any:
    return backend.namespace(x).asarray(x, copy=True)


class NAdam(Optimizer):
    """NAdam (``torch.optim.NAdam``): Adam with Nesterov momentum; with
    ``decoupled_weight_decay=True`` the weight decay is AdamW's (NAdamW).

    See ``funcnn.optim.nadam``. State per parameter: ``step``, ``mu_product`` (a 0-d tensor in
    float32, or float64 when that is the default dtype), ``exp_avg`` and ``exp_avg_sq``.
    Loading a state dict keeps ``mu_product``'s dtype, as it keeps ``step``'s (PyTorch casts
    ``mu_product`` to the parameter's dtype, so its own resumed runs drift in the last bits).

    Args:
        params: tensors or param groups to optimise.
        lr: learning rate (default 2e-3).
        betas: decay rates of the first and second moments, each in [0, 1).
        eps: added to the denominator after the square root.
        weight_decay: weight decay.
        momentum_decay: the momentum schedule's decay (default 4e-3).
        decoupled_weight_decay: apply weight decay to the parameters, as AdamW.
        maximize: maximise the objective.
        foreach, capturable: accepted for compatibility; no effect on the arithmetic.
        differentiable: must be False.
    """

    _core_state_type = fo.ScaleByNadamState
    _scalar_state_keys = ("step", "mu_product")

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        betas = _check_adam_args(lr, betas, eps, weight_decay)
        _check_nonnegative(momentum_decay=momentum_decay)
        _check_differentiable("NAdam", "nadam", differentiable)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        b1, b2 = group["betas"]
        return fo.nadam(
            float(group["lr"]),
            b1=float(b1),
            b2=float(b2),
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )

    def _bucket(self, group: dict[str, Any], state: dict[str, Any]) -> Any:
        # one update call shares one mu_product: group by it as well as by the step count
        mu_product = state.get("mu_product")
        if mu_product is None:
            return self._count(state), 1.0, _scalar_dtype_name()
        return self._count(state), float(mu_product.item()), str(mu_product.dtype)

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        first = states[0].get("mu_product")
        if first is None:
            mu_product = backend.asarray(1.0, dtype=_scalar_dtype_name())
        else:
            mu_product = first._value
        return fo.ScaleByNadamState(
            self._count(states[0]), mu_product, *_read_moments(self, states, params)
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for i, st in enumerate(states):
            self._put_step(st, core.count)
            self._put(st, "mu_product", _copy(core.mu_product))
            self._put(st, "exp_avg", core.mu[i])
            self._put(st, "exp_avg_sq", core.nu[i])


class RAdam(Optimizer):
    """RAdam (``torch.optim.RAdam``): Adam with a rectified adaptive learning rate; with
    ``decoupled_weight_decay=True`` the weight decay is AdamW's.

    See ``funcnn.optim.radam``. State per parameter: ``step``, ``exp_avg`` and ``exp_avg_sq``.

    Args:
        params: tensors or param groups to optimise.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moments, each in [0, 1).
        eps: added to the denominator after the square root.
        weight_decay: weight decay.
        decoupled_weight_decay: apply weight decay to the parameters, as AdamW.
        maximize: maximise the objective.
        foreach, capturable: accepted for compatibility; no effect on the arithmetic.
        differentiable: must be False.
    """

    _core_state_type = fo.ScaleByAdamState

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        betas = _check_adam_args(lr, betas, eps, weight_decay)
        _check_differentiable("RAdam", "radam", differentiable)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        b1, b2 = group["betas"]
        return fo.radam(
            float(group["lr"]),
            b1=float(b1),
            b2=float(b2),
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        return fo.ScaleByAdamState(
            self._count(states[0]), *_read_moments(self, states, params), None
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for i, st in enumerate(states):
            self._put_step(st, core.count)
            self._put(st, "exp_avg", core.mu[i])
            self._put(st, "exp_avg_sq", core.nu[i])


class Adamax(Optimizer):
    """Adamax (``torch.optim.Adamax``): Adam with the infinity norm; see ``funcnn.optim.adamax``.

    State per parameter: ``step``, ``exp_avg`` and ``exp_inf``.

    Args:
        params: tensors or param groups to optimise.
        lr: learning rate (default 2e-3).
        betas: decay rates of the first moment and of the infinity norm, each in [0, 1).
        eps: added to ``|grad|`` before the maximum.
        weight_decay: L2 penalty.
        maximize: maximise the objective.
        foreach, capturable: accepted for compatibility; no effect on the arithmetic.
        differentiable: must be False.
    """

    _core_state_type = fo.ScaleByAdamaxState

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        betas = _check_adam_args(lr, betas, eps, weight_decay)
        _check_differentiable("Adamax", "adamax", differentiable)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        b1, b2 = group["betas"]
        return fo.adamax(
            float(group["lr"]),
            b1=float(b1),
            b2=float(b2),
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        pairs = list(zip(states, params))
        return fo.ScaleByAdamaxState(
            self._count(states[0]),
            [self._get(st, "exp_avg", p) for st, p in pairs],
            [self._get(st, "exp_inf", p) for st, p in pairs],
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for i, st in enumerate(states):
            self._put_step(st, core.count)
            self._put(st, "exp_avg", core.mu[i])
            self._put(st, "exp_inf", core.inf_norm[i])


class Adadelta(Optimizer):
    """Adadelta (``torch.optim.Adadelta``); see ``funcnn.optim.adadelta``.

    State per parameter: ``step``, ``square_avg`` and ``acc_delta``.

    Args:
        params: tensors or param groups to optimise.
        lr: coefficient that scales delta before it is applied (default 1.0).
        rho: decay of the running means, in [0, 1].
        eps: added inside the square roots (default 1e-6).
        weight_decay: L2 penalty.
        maximize: maximise the objective.
        foreach, capturable: accepted for compatibility; no effect on the arithmetic.
        differentiable: must be False.
    """

    _core_state_type = fo.ScaleByAdadeltaState

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_nonnegative(epsilon=eps, weight_decay=weight_decay)
        _check_differentiable("Adadelta", "adadelta", differentiable)
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        return fo.adadelta(
            float(group["lr"]),
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        pairs = list(zip(states, params))
        return fo.ScaleByAdadeltaState(
            self._count(states[0]),
            [self._get(st, "square_avg", p) for st, p in pairs],
            [self._get(st, "acc_delta", p) for st, p in pairs],
        )

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        for i, st in enumerate(states):
            self._put_step(st, core.count)
            self._put(st, "square_avg", core.square_avg[i])
            self._put(st, "acc_delta", core.acc_delta[i])
