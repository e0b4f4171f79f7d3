"""Differentiable array ops with NumPy's names and semantics (import as ``fnp``).

Every function here takes raw arrays (NumPy, CuPy or the strict stand-in) or traced values and
records itself when differentiated. Python operators on traced values call these same ops.
"""

from funcnn.backend import bool_, float16, float32, float64, int32, int64
from funcnn.numpy import linalg
from funcnn.numpy._creation import *  # noqa: F403
from funcnn.numpy._creation import __all__ as _creation_all
from funcnn.numpy._elementwise import *  # noqa: F403
from funcnn.numpy._elementwise import __all__ as _elementwise_all
from funcnn.numpy._indexing import *  # noqa: F403
from funcnn.numpy._indexing import __all__ as _indexing_all
from funcnn.numpy._linalg import *  # noqa: F403
from funcnn.numpy._linalg import __all__ as _linalg_all
from funcnn.numpy._reductions import *  # noqa: F403
from funcnn.numpy._reductions import __all__ as _reductions_all
from funcnn.numpy._shape import *  # noqa: F403
from funcnn.numpy._shape import __all__ as _shape_all

newaxis = None
pi = 3.141592653589793
e = 2.718281828459045
inf = float("inf")
nan = float("nan")

__all__ = [
    *_creation_all,
    *_elementwise_all,
    *_indexing_all,
    *_linalg_all,
    *_reductions_all,
    *_shape_all,
    "linalg",
    "float16",
    "float32",
    "float64",
    "int32",
    "int64",
    "bool_",
    "newaxis",
    "pi",
    "e",
    "inf",
    "nan",
]

# Last: it installs the ops above as the operators and methods of traced values.
from funcnn.numpy import _box  # noqa: E402, F401
