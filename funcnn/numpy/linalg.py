"""``funcnn.numpy.linalg``: differentiable norms."""

from funcnn.numpy._linalg import norm

__all__ = ["norm"]
