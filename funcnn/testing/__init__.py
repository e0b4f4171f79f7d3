"""Tools to test gradients: check_grads and hypothesis strategies (public: test your own code)."""

import importlib

from funcnn.testing._check_grads import check_grads

__all__ = ["check_grads", "strategies"]


def __getattr__(name: str):  # strategies need hypothesis, a test-only dependency: import on use
    if name == "strategies":
        return importlib.import_module("funcnn.testing.strategies")
    raise AttributeError(name)
