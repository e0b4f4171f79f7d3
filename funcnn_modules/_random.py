"""The global random generator of the PyTorch-style face.

``manual_seed(s)`` sets a global ``funcnn.random`` key; every draw (``randn``, ``rand``,
``randint``, dropout masks, initialisers) splits a fresh subkey off it. The numbers differ from
PyTorch's streams; seeding makes them reproducible.
"""

from __future__ import annotations

import time
from typing import Any

from funcnn import random as frandom

__all__ = [
    "Generator",
    "manual_seed",
    "seed",
    "initial_seed",
    "next_key",
    "key_from",
    "get_rng_state",
    "set_rng_state",
]

_STATE: dict[str, Any] = {"seed": int(time.time_ns() % (2**63)), "key": None}


def manual_seed(seed: int) -> Any:
    """Seed the global generator (like ``torch.manual_seed``); returns ``None``-like self handle."""
    seed = int(seed)
    _STATE["seed"] = seed
    _STATE["key"] = frandom.key(seed)
    return None


def seed() -> int:
    """Seed the global generator non-deterministically and return the seed."""
    s = int(time.time_ns() % (2**63))
    manual_seed(s)
    return s


def initial_seed() -> int:
    """The seed last set."""
    return _STATE["seed"]


def next_key() -> Any:
    """A fresh key split off the global generator."""
    key = _STATE["key"]
    if key is None:
        key = frandom.key(_STATE["seed"])
    key, sub = frandom.split(key)
    _STATE["key"] = key
    return sub


def get_rng_state() -> Any:
    """The generator's current key (a uint32 array of shape (2,))."""
    key = _STATE["key"]
    return frandom.key(_STATE["seed"]) if key is None else key


def set_rng_state(state: Any) -> None:
    """Restore a key returned by :func:`get_rng_state`."""
    _STATE["key"] = state


class Generator:
    """A random generator of its own (like ``torch.Generator``), for ``generator=`` arguments.

    ``torch.Generator().manual_seed(42)`` gives a generator whose draws depend only on 42, not
    on the global generator. Its numbers differ from PyTorch's.
    """

    def __init__(self, device: Any = "cpu") -> None:
        self.device = device
        self._seed = int(time.time_ns() % (2**63))
        self._key: Any = None

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._key = frandom.key(self._seed)
        return self

    def seed(self) -> int:
        self.manual_seed(int(time.time_ns() % (2**63)))
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def next_key(self) -> Any:
        """A fresh key split off this generator."""
        key = self._key if self._key is not None else frandom.key(self._seed)
        key, sub = frandom.split(key)
        self._key = key
        return sub

    def get_state(self) -> Any:
        return self._key if self._key is not None else frandom.key(self._seed)

    def set_state(self, state: Any) -> Generator:
        self._key = state
        return self


def key_from(generator: Any) -> Any:
    """A fresh key from ``generator`` (a :class:`Generator`), or from the global one when None."""
    if generator is None:
        return next_key()
    if not hasattr(generator, "next_key"):
        raise TypeError(
            f"generator must be a funcnn_modules.Generator or None, got {type(generator).__name__}"
        )
    return generator.next_key()
