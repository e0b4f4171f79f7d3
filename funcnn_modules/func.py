"""The bridge from Modules to the functional core: ``functional_call`` and ``to_functional``.

    apply_fn, params = model.to_functional()          # params: {"fc1": {"weight": ..., ...}}
    grads = fn.grad(lambda p: fnp.mean(apply_fn(p, x) ** 2))(params)

so ``funcnn.grad``, ``funcnn.optim`` and ``funcnn.testing.check_grads`` work on any Module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from funcnn import backend, tree
from funcnn.autodiff._core import Box
from funcnn_modules._grad_mode import no_grad
from funcnn_modules.tensor import Tensor

__all__ = ["functional_call", "to_functional", "flatten_params", "unflatten_params"]


def _as_tensor(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, Box) or backend.is_array(x):
        return Tensor._wrap(x)
    return x


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def functional_call(module: Any, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``module(*args, **kwargs)`` with some parameters and buffers replaced, like
    ``torch.func.functional_call``.

    Args:
        module: any Module.
        params: ``{"fc1.weight": value, ...}`` by ``state_dict`` names; values are arrays
            (raw, or traced values of ``funcnn.grad``) or Tensors. Entries left out keep the
            module's own values; tied (shared) parameters all take the new value.
        *args, **kwargs: the module's inputs; arrays are wrapped as Tensors.

    Returns:
        The module's output. Arrays in, arrays out: unless every value in ``params`` is a
        Tensor, the output's tensors are replaced by their (possibly traced) arrays and the
        call records nothing for ``.backward()``. The module is left unchanged.

    Raises:
        KeyError: when a name is neither a parameter nor a buffer of the module.
    """
    tensors_in = bool(params) and all(isinstance(v, Tensor) for v in params.values())
    by_id: dict[int, Any] = {}
    for key, value in params.items():
        path, _, name = key.rpartition(".")
        try:
            owner = module.get_submodule(path)
        except AttributeError:
            owner = None
        store = None
        if owner is not None:
            store = (
                owner._parameters
                if name in owner._parameters
                else owner._buffers
                if name in owner._buffers
                else None
            )
        if store is None or store[name] is None:
            raise KeyError(
                f"functional_call: {key!r} is neither a parameter nor a buffer of "
                f"{module._get_name()}; expected one of {list(module.state_dict())}"
            )
        by_id[id(store[name])] = _as_tensor(value)
    swaps = []
    for _, mod in module.named_modules(remove_duplicate=False):
        for store in (mod._parameters, mod._buffers):
            for name, current in store.items():
                if current is not None and id(current) in by_id:
                    swaps.append((store, name, current))
    try:
        for store, name, current in swaps:
            store[name] = by_id[id(current)]
        args = tree.map(_as_tensor, args)
        kwargs = tree.map(_as_tensor, kwargs)
        if tensors_in:
            return module(*args, **kwargs)
        with no_grad():
            out = module(*args, **kwargs)
        return tree.map(_data, out)
    finally:
        for store, name, current in swaps:
            store[name] = current


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict:
    """A nested params dict as one flat dict with dotted keys (``state_dict`` names)."""
    flat: dict = {}
    for key, value in params.items():
        name = prefix + str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, name + "."))
        else:
            flat[name] = value
    return flat


def unflatten_params(flat: Mapping[str, Any]) -> dict:
    """Dotted keys as a nested dict: ``{"fc1.weight": w}`` -> ``{"fc1": {"weight": w}}``."""
    nested: dict = {}
    for key, value in flat.items():
        *path, name = key.split(".")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[name] = value
    return nested


def to_functional(module: Any) -> tuple[Callable, dict]:
    """``(apply_fn, params)`` for ``module``.

    ``params`` is a nested dict of the parameters' raw arrays (``{"fc1": {"weight": ...}}``);
    ``apply_fn(params, *args, **kwargs)`` runs the module with those values and returns raw
    arrays. Buffers (batch-norm statistics) stay in the module.
    """
    params = unflatten_params({name: p._value for name, p in module.named_parameters()})

    def apply_fn(params: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        flat = {
            k: (v._data if isinstance(v, Tensor) else v) for k, v in flatten_params(params).items()
        }
        return functional_call(module, flat, *args, **kwargs)

    apply_fn.__name__ = f"{module._get_name()}.apply"
    return apply_fn, params
