"""The global random generator of the PyTorch-style face.

``manual_seed(s)`` sets a global ``funcnn.random`` key; every draw (``randn``, ``rand``,
``randint``, dropout masks, initialisers) splits a fresh subkey off it. The numbers differ from
PyTorch's streams; seeding makes them reproducible.
"""

from __future__ import annotations

import time
from typing import Any

from funcnn import random as frandom

__all__ = ["manual_seed", "seed", "initial_seed", "next_key", "get_rng_state", "set_rng_state"]

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
