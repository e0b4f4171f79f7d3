"""Instance normalisation (PyTorch's InstanceNorm1d/2d/3d) and its initialiser.

Each sample's channel is normalised by its own mean and biased variance over the spatial axes:
the fused primitive :func:`funcnn.nn._norm._normalize` on ``x`` viewed as (N, C, L) with the
statistics over axis 2 and the affine parameters broadcast as (1, C, 1), one node with a
hand-derived VJP, as batch norm.

Running statistics follow ``torch.nn.functional.instance_norm``, which runs batch norm on the
input viewed as (1, N * C, L) with the running statistics repeated N times and then averages the
N updated copies: ``running = (1 - momentum) * running + momentum * stat``, where ``stat`` is the
mean over the batch of the per-instance means (of the per-instance *unbiased* variances).
"""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import strip
from funcnn.nn._norm import (
    _affine,
    _check_eps,
    _check_floating,
    _check_param,
    _normalize,
    _reshape_param,
    _shape,
    init_channel_norm,
)

__all__ = ["instance_norm", "init_instance_norm"]

ns = backend.namespace

_RUNNING = ("running_mean", "running_var")
_STATE_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def _check_state(fn: str, state: Any, c: int, x: Any) -> None:
    if not isinstance(state, dict):
        raise TypeError(
            f"{fn}: state must be a dict with keys 'running_mean' and 'running_var' (and "
            f"optionally 'num_batches_tracked'), or None for no running statistics; got "
            f"{type(state).__name__}"
        )
    missing = [k for k in _RUNNING if k not in state]
    extra = sorted(set(state) - set(_STATE_KEYS))
    if missing or extra:
        raise ValueError(
            f"{fn}: state is missing keys {missing} and has unexpected keys {extra}; expected "
            f"'running_mean', 'running_var' and optionally 'num_batches_tracked' (make one with "
            "init_instance_norm(..., track_running_stats=True))"
        )
    for k in _RUNNING:
        if _shape(state[k]) != (c,):
            raise ValueError(
                f"{fn}: state['{k}'] has shape {_shape(state[k])} but x of shape {_shape(x)} "
                f"has {c} channels (axis 1); expected ({c},)"
            )
        if not backend.is_floating(strip(state[k])):
            raise TypeError(
                f"{fn}: state['{k}'] must be a floating array, got dtype {strip(state[k]).dtype}"
            )


def _updated_state(state: dict, mean: Any, var: Any, length: int, momentum: float) -> dict:
    """PyTorch's instance-norm running-statistics update (no gradient flows into the state).

    ``mean`` and ``var`` (biased) are the per-instance statistics, of shape (N, C, 1).
    """
    rm, rv = strip(state["running_mean"]), strip(state["running_var"])
    xp = ns(rm, mean)
    c = rm.shape[0]
    batch_mean = xp.astype(xp.mean(xp.reshape(mean, (-1, c)), axis=0), rm.dtype)
    unbiased = xp.mean(xp.reshape(var, (-1, c)), axis=0) * (length / (length - 1))
    new = dict(state)
    new["running_mean"] = (1.0 - momentum) * rm + momentum * batch_mean
    new["running_var"] = (1.0 - momentum) * rv + momentum * xp.astype(unbiased, rv.dtype)
    return new


def instance_norm(
    params: dict | None,
    state: dict | None,
    x: Any,
    *,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Any, dict | None]:
    """Instance normalisation of (N, C, *spatial) inputs (PyTorch's InstanceNorm1d/2d/3d).

    With ``use_input_stats`` (the default) each sample's channel is normalised by its own mean
    and biased variance over the spatial axes, then scaled and shifted per channel; a given
    state is updated like PyTorch's running statistics (see the module docstring). With
    ``use_input_stats=False`` the running statistics of ``state`` are used instead (PyTorch's
    evaluation mode with ``track_running_stats=True``), and the state is returned unchanged.

    Args:
        params: ``{"weight": (C,), "bias": (C,)}`` (either may be absent), or None / ``{}``.
        state: ``{"running_mean": (C,), "running_var": (C,)}`` plus, optionally,
            ``"num_batches_tracked"`` (carried through unchanged, as PyTorch does), or None.
        x: (N, C, *spatial), floating.
        use_input_stats: normalise with the instance statistics (True) or the running ones.
        momentum: the running-average factor, a number in [0, 1].
        eps: added to the variance before the square root.
    Returns:
        ``(y, new_state)``: y has the shape and dtype of ``x``; ``new_state`` is a new dict
        (the input state is not modified), the same dict with ``use_input_stats=False``, or
        None when ``state`` is None.

    See also: ``init_instance_norm``; ``funcnn_modules.nn.InstanceNorm2d``.
    """
    fn = "instance_norm"
    shape = _shape(x)
    if len(shape) < 2:
        raise ValueError(
            f"{fn}: x must have shape (N, C, *spatial), got shape {shape} "
            "(a single sample needs a batch axis: x[None])"
        )
    _check_floating(fn, x)
    eps = _check_eps(fn, eps)
    if isinstance(momentum, bool) or not (
        isinstance(momentum, (int, float)) and 0 <= momentum <= 1
    ):
        raise ValueError(
            f"{fn}: momentum must be a number in [0, 1], got {momentum!r} (PyTorch's "
            "InstanceNorm turns momentum=None into 0.0: no update)"
        )
    weight, bias = _affine(params, fn)
    n, c = shape[0], shape[1]
    _check_param(fn, "weight", weight, (c,), x)
    _check_param(fn, "bias", bias, (c,), x)
    if state is not None:
        _check_state(fn, state, c, x)
    elif not use_input_stats:
        raise ValueError(
            f"{fn}: use_input_stats=False needs running statistics, but state is None "
            "(pass the state from init_instance_norm(..., track_running_stats=True))"
        )
    length = backend.prod(shape[2:])
    x3 = fnp.reshape(x, (n, c, length))
    if use_input_stats:
        if length <= 1:
            raise ValueError(
                f"{fn}: expected more than 1 spatial element when using the input statistics, "
                f"got x of shape {shape}"
            )
        y3, mean, var = _normalize(
            x3,
            _reshape_param(weight, (1, c, 1)),
            _reshape_param(bias, (1, c, 1)),
            axes=(2,),
            eps=eps,
        )
        if state is not None:
            state = _updated_state(state, strip(mean), strip(var), length, float(momentum))
    else:
        dtype = strip(x).dtype
        rm, rv = state["running_mean"], state["running_var"]
        rm = rm if strip(rm).dtype == dtype else fnp.astype(rm, dtype)
        rv = rv if strip(rv).dtype == dtype else fnp.astype(rv, dtype)
        scale = 1.0 / fnp.sqrt(rv + eps)
        if weight is not None:
            scale = scale * weight
        shift = -(rm * scale)
        if bias is not None:
            shift = shift + bias
        y3 = x3 * fnp.reshape(scale, (1, c, 1)) + fnp.reshape(shift, (1, c, 1))
    return fnp.reshape(y3, shape), state


def init_instance_norm(
    num_features: int, affine: bool = False, track_running_stats: bool = False, dtype: Any = None
) -> tuple[dict, dict | None]:
    """Parameters and state of an instance-norm layer, initialised like PyTorch.

    Args:
        num_features: C, the number of channels.
        affine: whether there are a weight (ones) and a bias (zeros); False by default.
        track_running_stats: whether there is a state (running mean 0, running variance 1,
            ``num_batches_tracked`` 0 as int64, the buffers of PyTorch's InstanceNorm);
            False by default.
        dtype: the floating dtype (the default float dtype when None).
    Returns:
        ``(params, state)``: params ``{"weight": (C,), "bias": (C,)}`` or ``{}``; state as
        described for :func:`instance_norm`, or None.
    """
    return init_channel_norm("init_instance_norm", num_features, affine, track_running_stats, dtype)
