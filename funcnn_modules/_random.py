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
    "default_generator",
    "manual_seed",
    "seed",
    "initial_seed",
    "next_key",
    "key_from",
    "get_rng_state",
    "set_rng_state",
]


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
        key, sub = frandom.split(self.get_state())
        self._key = key
        return sub

    def get_state(self) -> Any:
        """The current key (a uint32 array of shape (2,))."""
        return self._key if self._key is not None else frandom.key(self._seed)

    def set_state(self, state: Any) -> Generator:
        self._key = state
        return self


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (like ``torch.manual_seed``); returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator non-deterministically and return the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed last set."""
    return default_generator.initial_seed()


def next_key() -> Any:
    """A fresh key split off the global generator."""
    return default_generator.next_key()


def get_rng_state() -> Any:
    """The global generator's current key (a uint32 array of shape (2,))."""
    return default_generator.get_state()


def set_rng_state(state: Any) -> None:
    """Restore a key returned by :func:`get_rng_state`."""
    default_generator.set_state(state)


def key_from(generator: Any) -> Any:
    """A fresh key from ``generator`` (a :class:`Generator`), or from the global one when None."""
    if generator is None:
        return next_key()
    if not hasattr(generator, "next_key"):
        raise TypeError(
            f"generator must be a funcnn_modules.Generator or None, got {type(generator).__name__}"
        )
    return generator.next_key()
