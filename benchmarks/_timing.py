"""Timing shared by the training-step benchmarks: interleaved, best-of rounds."""

from __future__ import annotations

from collections.abc import Callable


def best_of(
    steps_by_name: dict[str, Callable[[], None]],
    syncs: dict[str, Callable[[], None]],
    rounds: int,
    steps: int,
    clock: Callable[[], float],
) -> dict[str, float]:
    """Seconds per step for each named step: the best over ``rounds`` of the mean over ``steps``
    steps, the names' rounds interleaved in a rotating order (a noisy neighbour slows both)."""
    for name, step in steps_by_name.items():  # warm up: imports, caches, allocator, kernels
        for _ in range(2):
            step()
        syncs[name]()
    best = {name: float("inf") for name in steps_by_name}
    names = list(steps_by_name)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            step, sync = steps_by_name[name], syncs[name]
            sync()
            t = clock()
            for _ in range(steps):
                step()
            sync()
            best[name] = min(best[name], (clock() - t) / steps)
    return best
