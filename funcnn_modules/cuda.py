"""``funcnn_modules.cuda``: whether a CUDA GPU (through CuPy) is there to use."""

from __future__ import annotations

from typing import Any

from funcnn_modules import _random

__all__ = [
    "is_available",
    "device_count",
    "current_device",
    "manual_seed",
    "manual_seed_all",
    "synchronize",
    "empty_cache",
]


def _cupy() -> Any:
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def device_count() -> int:
    """The number of CUDA GPUs CuPy can see (0 without CuPy)."""
    cupy = _cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - no driver, no device: CuPy raises its own error types
        return 0


def is_available() -> bool:
    """True when CuPy is installed and sees a GPU."""
    return device_count() > 0


def current_device() -> int:
    cupy = _cupy()
    return int(cupy.cuda.runtime.getDevice()) if cupy is not None and is_available() else 0


def manual_seed(seed: int) -> None:
    """Seed the (shared) global generator."""
    _random.manual_seed(seed)


manual_seed_all = manual_seed


def synchronize(device: Any = None) -> None:
    """Wait for the GPU to finish its queued work."""
    cupy = _cupy()
    if cupy is not None and is_available():
        cupy.cuda.Device().synchronize()


def empty_cache() -> None:
    """Free CuPy's cached GPU memory blocks."""
    cupy = _cupy()
    if cupy is not None and is_available():
        cupy.get_default_memory_pool().free_all_blocks()
