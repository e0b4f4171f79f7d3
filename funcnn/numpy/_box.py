"""Python operators and array methods on traced values (boxes), each a funcnn op."""

from __future__ import annotations

from typing import Any

from funcnn import numpy as fnp
from funcnn.autodiff._core import Box


def _method(f: Any) -> Any:
    return lambda self, *args, **kwargs: f(self, *args, **kwargs)


def _shape_args(args: tuple) -> Any:
    return args[0] if len(args) == 1 and not isinstance(args[0], int) else args


def _binary(op: Any) -> tuple[Any, Any]:
    """``op(self, other)`` and ``op(other, self)``: the op is bound once (operators are hot)."""
    return (lambda s, o: op(s, o)), (lambda s, o: op(o, s))


def _install() -> None:
    B = Box
    B.__add__, B.__radd__ = _binary(fnp.add)
    B.__sub__, B.__rsub__ = _binary(fnp.subtract)
    B.__mul__, B.__rmul__ = _binary(fnp.multiply)
    B.__truediv__, B.__rtruediv__ = _binary(fnp.divide)
    B.__pow__, B.__rpow__ = _binary(fnp.power)
    B.__matmul__, B.__rmatmul__ = _binary(fnp.checked_matmul)
    B.__floordiv__ = lambda s, o: fnp.floor_divide(s, o)
    B.__mod__ = lambda s, o: fnp.remainder(s, o)
    B.__neg__ = lambda s: fnp.negative(s)
    B.__pos__ = lambda s: s
    B.__abs__ = lambda s: fnp.abs(s)
    B.__eq__ = lambda s, o: fnp.equal(s, o)
    B.__ne__ = lambda s, o: fnp.not_equal(s, o)
    B.__lt__ = lambda s, o: fnp.less(s, o)
    B.__le__ = lambda s, o: fnp.less_equal(s, o)
    B.__gt__ = lambda s, o: fnp.greater(s, o)
    B.__ge__ = lambda s, o: fnp.greater_equal(s, o)
    B.__getitem__ = lambda s, idx: fnp.getitem(s, idx)
    B.T = property(lambda s: fnp.transpose(s))
    B.mT = property(lambda s: fnp.swapaxes(s, -1, -2))
    B.reshape = lambda s, *shape: fnp.reshape(s, _shape_args(shape))
    B.transpose = lambda s, *axes: fnp.transpose(s, _shape_args(axes) if axes else None)
    B.swapaxes = _method(fnp.swapaxes)
    B.squeeze = _method(fnp.squeeze)
    B.flatten = lambda s: fnp.ravel(s)
    B.ravel = lambda s: fnp.ravel(s)
    B.sum = _method(fnp.sum)
    B.mean = _method(fnp.mean)
    B.max = _method(fnp.max)
    B.min = _method(fnp.min)
    B.prod = _method(fnp.prod)
    B.var = _method(fnp.var)
    B.std = _method(fnp.std)
    B.cumsum = _method(fnp.cumsum)
    B.argmax = _method(fnp.argmax)
    B.argmin = _method(fnp.argmin)
    B.astype = _method(fnp.astype)
    B.clip = _method(fnp.clip)
    B.dot = _method(fnp.dot)
    B.copy = lambda s: s


_install()
