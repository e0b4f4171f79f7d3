"""Utilities of the PyTorch-style face (``torch.utils``): ``funcnn_modules.utils.data``."""

from funcnn_modules.utils import data

__all__ = ["data"]
