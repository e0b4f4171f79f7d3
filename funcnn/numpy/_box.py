"""Python operators and array methods on traced values (boxes), each a funcnn op."""

from __future__ import annotations

from typing import Any

from funcnn import numpy as fnp
from funcnn.autodiff._core import Box


def _method(f: Any) -> Any:
    return lambda self, *args, **kwargs: f(self, *args, **kwargs)


def _shape_args(args: tuple) -> Any:
    return args[0] if len(args) == 1 and not isinstance(args[0], int) else args


def _install() -> None:
    B = Box
    B.__add__ = lambda s, o: fnp.add(s, o)
    B.__radd__ = lambda s, o: fnp.add(o, s)
    B.__sub__ = lambda s, o: fnp.subtract(s, o)
    B.__rsub__ = lambda s, o: fnp.subtract(o, s)
    B.__mul__ = lambda s, o: fnp.multiply(s, o)
    B.__rmul__ = lambda s, o: fnp.multiply(o, s)
    B.__truediv__ = lambda s, o: fnp.divide(s, o)
    B.__rtruediv__ = lambda s, o: fnp.divide(o, s)
    B.__pow__ = lambda s, o: fnp.power(s, o)
    B.__rpow__ = lambda s, o: fnp.power(o, s)
    B.__matmul__ = lambda s, o: fnp.checked_matmul(s, o)
    B.__rmatmul__ = lambda s, o: fnp.checked_matmul(o, s)
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
