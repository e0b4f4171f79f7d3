"""``funcnn_modules.backends``: the switches PyTorch scripts set for cuDNN, MPS and TF32.

funcnn does not call cuDNN or Metal: its convolutions are its own kernels over NumPy/CuPy,
and they are deterministic. So ``torch.backends.cudnn.deterministic = True`` (and
``benchmark``, ``enabled``, ``allow_tf32``) are accepted and recorded, and change nothing;
``is_available()`` answers truthfully that cuDNN and MPS are not used.
"""

from __future__ import annotations

import types

__all__ = ["cudnn", "mps", "cuda"]


class _Flags(types.SimpleNamespace):
    """Settable flags, plus ``is_available()`` (False: funcnn does not use this library)."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def is_built() -> bool:
        return False


cudnn = _Flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=True)
mps = _Flags()
cuda = types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False))
