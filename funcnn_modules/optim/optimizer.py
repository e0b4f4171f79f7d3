"""``Optimizer``: torch.optim's stateful base class, as a shell over ``funcnn.optim``.

An optimiser holds ``param_groups`` (a list of dicts: ``"params"`` and that group's
hyperparameters) and ``state`` (a dict per parameter, keyed by the parameter, holding
PyTorch's buffers under PyTorch's names). ``step()`` does no math of its own: for each group
it builds the same-named ``funcnn.optim`` transformation from the group's *current*
hyperparameters (so learning-rate schedulers work), packs the per-parameter buffers into that
transformation's state, calls ``update`` once on the raw arrays of all parameters that have a
gradient, and writes the new parameters and buffers back in place.

``state_dict()`` / ``load_state_dict()`` use PyTorch's layout::

    {"state": {0: {"step": tensor(3.), "exp_avg": ..., ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn import optim as fo
from funcnn.optim._base import GradientTransformation
from funcnn.optim._transforms import _scalar_dtype_name
from funcnn_modules._grad_mode import enable_grad
from funcnn_modules.tensor import Tensor, wrap

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking a hyperparameter that every param group must give."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

EMPTY_PARAMS = "optimizer got an empty parameter list"


def _typename(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def _find_state(state: Any, cls: type) -> Any:
    """The first state of type ``cls`` inside a (nested) chain state, or None."""
    if type(state) is cls:
        return state
    if type(state) is tuple:
        for s in state:
            found = _find_state(s, cls)
            if found is not None:
                return found
    return None


def _replace_state(state: Any, cls: type, new: Any) -> Any:
    """``state`` with its (first) ``cls`` entry replaced by ``new``."""
    if type(state) is cls:
        return new
    if type(state) is tuple:
        out = list(state)
        for i, s in enumerate(state):
            r = _replace_state(s, cls, new)
            if r is not s:
                out[i] = r
                return tuple(out)
    return state


class Optimizer:
    """Base class of the stateful optimisers (``torch.optim.Optimizer``).

    Subclasses say which ``funcnn.optim`` transformation a group's hyperparameters make
    (:meth:`_transformation`), which record type in its state holds the per-parameter buffers
    (``_core_state_type``), and how those buffers map to PyTorch's per-parameter ``state``
    entries (:meth:`_read_state`, :meth:`_write_state`).

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (param groups:
            ``{"params": [...], "lr": ...}``; missing hyperparameters take ``defaults``).
        defaults: the default hyperparameters.
    """

    _core_state_type: type | None = None
    # per-parameter scalar entries that keep their own dtype on load (not the parameter's)
    _scalar_state_keys: tuple[str, ...] = ("step",)

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {_typename(params)}"
            )
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(EMPTY_PARAMS)
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # -- groups ---------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones take ``defaults``).

        Args:
            param_group: ``{"params": tensors, **hyperparameters}``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
                names.append(p[0])
                tensors.append(p[1])
            else:
                tensors.append(p)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are missing"
                )
            param_group["param_names"] = names
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {_typename(p)}"
                )
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization parameter "
                    f"{name}"
                )
            param_group.setdefault(name, default)
        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # -- gradients ------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimised tensors.

        Args:
            set_to_none: set ``.grad`` to None (the default) instead of to zeros. A parameter
                whose ``.grad`` is None is skipped by ``step()``.
        """
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = fnp.zeros_like(g._value)

    # -- stepping -------------------------------------------------------------------------------

    def _transformation(self, group: dict[str, Any]) -> GradientTransformation:
        """The ``funcnn.optim`` transformation for ``group``'s current hyperparameters."""
        raise NotImplementedError

    def _bucket(self, group: dict[str, Any], state: dict[str, Any]) -> Any:
        """Parameters whose states give the same key share one ``update`` call (same step count)."""
        return self._count(state)

    def _read_state(self, group: dict[str, Any], states: list[dict], params: list) -> Any:
        """The core transformation state for parameters with per-parameter ``states``."""
        raise NotImplementedError

    def _write_state(self, group: dict[str, Any], states: list[dict], core: Any) -> None:
        """Store the core state back into the per-parameter ``states`` (in place)."""
        raise NotImplementedError

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Take one optimisation step on every parameter that has a gradient.

        Args:
            closure: optional; re-evaluates the model and returns the loss (called with
                gradients enabled, before the step).
        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            with_grad = [p for p in group["params"] if p.grad is not None]
            if not with_grad:
                continue
            opt = self._transformation(group)
            buckets: dict[Any, list[Tensor]] = {}
            for p in with_grad:
                buckets.setdefault(self._bucket(group, self.state.get(p, {})), []).append(p)
            for ps in buckets.values():
                self._step_params(group, opt, ps)
        return loss

    def _step_params(
        self, group: dict[str, Any], opt: GradientTransformation, ps: list[Tensor]
    ) -> None:
        params = [p._value for p in ps]
        grads = []
        for p, raw in zip(ps, params):
            g = p.grad._value
            if tuple(g.shape) != tuple(raw.shape):
                raise RuntimeError(
                    f"{type(self).__name__}.step: a parameter of shape {tuple(raw.shape)} has a "
                    f"gradient of shape {tuple(g.shape)}"
                )
            grads.append(g)
        state = opt.init([])  # the chain's structure, without allocating buffers
        core_type = self._core_state_type
        has_core = core_type is not None and _find_state(state, core_type) is not None
        if has_core:  # only stateful steps make per-parameter state entries (as in PyTorch)
            states = [self.state[p] for p in ps]
            state = _replace_state(state, core_type, self._read_state(group, states, params))
        updates, state = opt.update(grads, state, params)
        for p, new in zip(ps, fo.apply_updates(params, updates)):
            p._set_value(new)
        if has_core:
            self._write_state(group, states, _find_state(state, core_type))

    # -- helpers for subclasses -----------------------------------------------------------------

    @staticmethod
    def _put(state: dict[str, Any], key: str, value: Any) -> None:
        """``state[key] = value`` (a raw array), updating an existing tensor in place."""
        old = state.get(key)
        if isinstance(old, Tensor):
            old._set_value(value)
        else:
            state[key] = wrap(value)

    @staticmethod
    def _put_step(state: dict[str, Any], count: int) -> None:
        # torch's scalar dtype: float32, or float64 when that is the default dtype
        value = backend.asarray(float(count), dtype=_scalar_dtype_name())
        Optimizer._put(state, "step", value)

    @staticmethod
    def _get(state: dict[str, Any], key: str, like: Any, fill: float = 0.0) -> Any:
        """The raw array of ``state[key]``, or ``fill`` in the shape and dtype of ``like``."""
        t = state.get(key)
        if t is None:
            return fnp.full_like(like, fill)
        return t._value if isinstance(t, Tensor) else t

    @staticmethod
    def _count(state: dict[str, Any]) -> int:
        step = state.get("step")
        if step is None:
            return 0
        return int(step.item()) if isinstance(step, Tensor) else int(step)

    # -- state dicts ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state in PyTorch's layout.

        Returns:
            ``{"state": {index: {buffer name: Tensor or number}}, "param_groups": [{...,
            "params": [index, ...]}]}``; parameters are numbered in group order.
        """
        mapping: dict[int, int] = {}
        start = 0

        def pack(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        packed_state = {
            (mapping[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()
        }
        return {"state": packed_state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state written by :meth:`state_dict` (this class's or PyTorch's layout).

        Buffers are copied and cast to their parameter's dtype and device (``step`` stays as
        it is); the loaded hyperparameters replace the groups' ones.

        Raises:
            ValueError: if the number of groups or of parameters per group differs.
        """
        if "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(
                "load_state_dict: expected a dict with keys 'state' and 'param_groups' (what "
                f"Optimizer.state_dict() returns), got keys {sorted(map(str, state_dict))}"
            )
        groups = self.param_groups
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, s in zip(groups, saved_groups):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size of "
                    "optimizer's group"
                )
        id_map = {
            int(old): p
            for s, g in zip(saved_groups, groups)
            for old, p in zip(s["params"], g["params"])
        }
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k
            if key in id_map:
                param = id_map[key]
                state[param] = {
                    name: _cast(param, val, name, name in self._scalar_state_keys)
                    for name, val in v.items()
                }
            else:
                state[key] = v
        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            for name, value in list(s.items()):
                if isinstance(value, list) and isinstance(g.get(name), tuple):
                    s[name] = tuple(value)  # e.g. betas after a JSON round trip
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups

    # -- misc -----------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        out = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            out += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    out += f"    {key}: {group[key]}\n"
        return out + ")"


def _cast(param: Tensor, value: Any, key: str, scalar: bool = False) -> Any:
    """A copy of a loaded buffer, as a Tensor in ``param``'s dtype and on its device.

    A ``scalar`` entry (``step``, NAdam's ``mu_product``) keeps its own dtype; a Python number
    there becomes a 0-d tensor in torch's scalar dtype (float32 unless the default is float64).
    """
    if isinstance(value, Tensor):
        raw = value._value
    elif backend.is_array(value) and not isinstance(value, (int, float)):
        raw = value
    elif scalar and isinstance(value, (int, float)):
        return wrap(backend.asarray(float(value), dtype=_scalar_dtype_name()))
    elif isinstance(value, dict):
        return {k: _cast(param, v, k, k == "step") for k, v in value.items()}
    else:
        return copy.deepcopy(value)
    target = param._value
    if not scalar and backend.is_floating(target) and backend.is_floating(raw):
        raw = backend.asarray(raw, dtype=target.dtype, like=target)
    elif backend.backend_name(raw) != backend.backend_name(target):
        raw = backend.asarray(raw, like=target)
    return wrap(backend.namespace(raw).asarray(raw, copy=True))
