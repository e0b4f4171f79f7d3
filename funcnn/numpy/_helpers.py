"""Helpers shared by the VJP rules."""

from __future__ import annotations

from typing import Any

from funcnn import numpy as fnp
from funcnn.autodiff._core import strip


def shape_of(x: Any) -> tuple:
    return tuple(getattr(x, "shape", ()))


def unbroadcast(g: Any, x: Any) -> Any:
    """Sum ``g`` down to the shape of ``x`` (undoing broadcasting) and cast it to ``x``'s dtype.

    The one place where broadcasting is undone: every binary rule calls it.
    """
    xs = x.shape
    gs = g.shape
    if gs == xs:
        gd, xd = g.dtype, x.dtype
        if gd is xd or gd == xd:
            return g
        return fnp.astype(g, xd)
    xs = tuple(xs)
    if gs != xs:
        lead = len(gs) - len(xs)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(xs) if s == 1 and gs[lead + i] != 1
        )
        if axes:
            g = fnp.sum(g, axis=axes)
        if g.shape != xs:
            g = fnp.reshape(g, xs)
    xd = getattr(x, "dtype", None)
    if xd is not None and g.dtype != xd:
        g = fnp.astype(g, xd)
    return g


def normalize_axis(axis: int, ndim: int, fn: str) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"{fn}: axis {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim if ndim else 0


def axes_tuple(axis: Any, ndim: int, fn: str) -> tuple:
    """A reduction's ``axis`` argument as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(normalize_axis(a, ndim, fn) for a in axis))


def raw_shape(x: Any) -> tuple:
    return tuple(strip(x).shape)
