"""Gradient recording switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

One global flag (not thread-local, a documented simplification). While it is off, tensor ops
strip the eager trace from their inputs, so nothing is recorded for ``.backward()``; traces
of ``fn.grad`` called around module code still record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode"]

_ENABLED = [True]


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()`` (or ``set_grad_enabled(False)``)."""
    return _ENABLED[0]


class _GradMode:
    """A context manager that is also a decorator (with or without parentheses)."""

    _mode = True

    def __init__(self, func: Callable | None = None) -> None:
        self._prev: list[bool] = []
        self._func = func
        if func is not None:
            functools.update_wrapper(self, func)

    def __enter__(self) -> _GradMode:
        self._prev.append(_ENABLED[0])
        _ENABLED[0] = self._mode
        return self

    def __exit__(self, *exc: Any) -> None:
        _ENABLED[0] = self._prev.pop()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._func is not None:  # used as @no_grad without parentheses
            with type(self)():
                return self._func(*args, **kwargs)
        if len(args) == 1 and callable(args[0]) and not kwargs:
            func = args[0]
            mode = type(self)

            @functools.wraps(func)
            def wrapper(*a: Any, **k: Any) -> Any:
                with mode():
                    return func(*a, **k)

            return wrapper
        raise TypeError(f"{type(self).__name__}() used as a decorator takes one function")


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Switch off gradient recording: ``with no_grad(): ...`` or ``@no_grad()``."""

    _mode = False


class enable_grad(_GradMode):  # noqa: N801
    """Switch gradient recording back on inside a ``no_grad`` block."""

    _mode = True


inference_mode = no_grad


class set_grad_enabled:  # noqa: N801
    """``set_grad_enabled(False)`` switches recording off now; as a context manager, for a block."""

    def __init__(self, mode: bool) -> None:
        self._prev = _ENABLED[0]
        _ENABLED[0] = bool(mode)

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(self, *exc: Any) -> None:
        _ENABLED[0] = self._prev
