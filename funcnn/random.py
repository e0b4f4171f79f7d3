"""Explicit pseudo-random number keys, in the style of JAX.

There is no global random state. Every draw takes a *key*, the same key always gives the same
numbers, and new keys are made from old ones with :func:`split` or :func:`fold_in`:

    >>> key = random.key(0)
    >>> key, sub = random.split(key)            # use ``sub`` now, keep ``key`` for later
    >>> w = random.normal(sub, (3, 4))          # float32, on the default backend
    >>> step_key = random.fold_in(key, 17)      # a key for step 17

A key is a small **host NumPy array** of dtype uint32 and shape (2,) (64 bits), made read-only so
that it cannot be changed by accident. Keys stay on the host on every backend, like PyTorch's
CPU generator; the numbers drawn from them land on the default backend
(``backend.get_default()``) in one explicit copy. Draws are made by the counter-based Philox
generator keyed by the key's 64 bits, so the numbers are the same on NumPy, CuPy and the
array-api-strict stand-in backend.

``key(seed)`` holds the seed's 64 bits, as in JAX (``key(42)`` is ``[0, 42]``). New keys are
made by hashing: the key, xor-ed with a constant that is different for :func:`split` and
:func:`fold_in`, keys a Philox stream whose first words are the new keys. So a child key's
stream is independent of its parent's stream and of its siblings'.
As in JAX, reusing a key for two draws gives correlated numbers: split first.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

from funcnn import backend

__all__ = [
    "key",
    "split",
    "fold_in",
    "normal",
    "uniform",
    "bernoulli",
    "randint",
    "permutation",
]

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_INT64_MIN = -(2**63)
_INT64_END = 2**63  # one past the largest int64

# Domain separation: the key is xor-ed with one of these before it keys the hashing stream,
# so split() and fold_in() never read a draw's own Philox stream.
_TWEAK_SPLIT = (0x9E3779B9, 0x7F4A7C15)  # golden ratio
_TWEAK_FOLD = (0xB7E15162, 0x8AED2A6A)  # digits of e

_FLOAT_NAMES = ("float16", "float32", "float64")

_KEY_HELP = (
    "make one with funcnn.random.key(seed), and new ones with split(key) or fold_in(key, data)"
)


# ----------------------------------------------------------------------------- checks


def _check_key(fn: str, k: Any) -> tuple[int, int]:
    """The two 32-bit words of a key, or a clear error naming ``fn``."""
    if not backend.is_array(k):
        raise TypeError(
            f"funcnn.random.{fn}: key must be a uint32 array of shape (2,), "
            f"got {type(k).__name__} {k!r}; {_KEY_HELP}"
        )
    host = backend.to_numpy(k)
    shape = tuple(host.shape)
    if str(host.dtype) != "uint32" or shape != (2,):
        hint = _KEY_HELP
        if len(shape) == 2 and shape[-1] == 2:
            hint = (
                f"split() returns a batch of {shape[0]} keys of shape {shape}; "
                "pick one, e.g. `k1, k2 = split(key)` or `keys[0]`"
            )
        raise ValueError(
            f"funcnn.random.{fn}: key must be a uint32 array of shape (2,), got dtype "
            f"{host.dtype} and shape {shape}; {hint}"
        )
    return int(host[0]), int(host[1])


def _check_int(fn: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or (
        getattr(value, "dtype", None) is not None and _dtype_name(value.dtype) == "bool"
    ):
        raise TypeError(f"funcnn.random.{fn}: {name} must be an integer, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"funcnn.random.{fn}: {name} must be an integer, got {type(value).__name__} {value!r}"
        ) from None


def _check_shape(fn: str, shape: Any) -> tuple[int, ...]:
    if backend.is_array(shape) and not isinstance(shape, numbers.Integral):
        raise TypeError(
            f"funcnn.random.{fn}: shape must be an int or a tuple of ints, got an array"
        )
    dims = (shape,) if not isinstance(shape, Sequence) else tuple(shape)
    out = []
    for d in dims:
        try:
            n = _check_int(fn, "shape", d)
        except TypeError:
            raise TypeError(
                f"funcnn.random.{fn}: shape must be an int or a tuple of ints, got {shape!r}"
            ) from None
        if n < 0:
            raise ValueError(
                f"funcnn.random.{fn}: shape must not have negative sizes, got {shape!r}"
            )
        out.append(n)
    return tuple(out)


def _dtype_name(d: Any) -> str:
    """'float32' for np.float32, np.dtype('float32'), 'float32', array_api_strict.float32, ..."""
    if isinstance(d, str):
        return d
    name = getattr(d, "name", None)  # numpy.dtype
    if isinstance(name, str):
        return name
    name = getattr(d, "__name__", None)  # numpy scalar types, Python's float
    if isinstance(name, str):
        return "float64" if name == "float" else name
    return str(d).rsplit(".", 1)[-1]  # array_api_strict.float32


def _check_float_dtype(fn: str, dtype: Any) -> str:
    name = _dtype_name(backend.default_float_dtype() if dtype is None else dtype)
    if name not in _FLOAT_NAMES:
        raise TypeError(
            f"funcnn.random.{fn}: dtype must be a floating dtype "
            f"(float16, float32 or float64), got {dtype!r}"
        )
    return name


def _check_real(fn: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"funcnn.random.{fn}: {name} must be a real number, got {type(value).__name__}"
        )
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"funcnn.random.{fn}: {name} must be finite, got {value!r}")
    return out


# ----------------------------------------------------------------------------- keys


def _hash_key(words: tuple[int, int], tweak: tuple[int, int], num: int) -> Any:
    """``num`` new keys (a host uint32 array (num, 2)) hashed from two 32-bit words."""
    seeded = [words[0] ^ tweak[0], words[1] ^ tweak[1]]
    out = backend.random_bits(seeded, (num, 2))
    out.flags.writeable = False
    return out


def key(seed: int) -> Any:
    """A new key from an integer seed.

    Args:
        seed: any integer in [-2**63, 2**64); negative seeds wrap modulo 2**64, like a cast
            from int64 to uint64.

    Returns:
        A read-only host NumPy uint32 array of shape (2,): the high and low 32 bits of the
        seed, as JAX's ``jax.random.PRNGKey(seed)`` (``key(42)`` is ``[0, 42]``).

    Raises:
        TypeError: if ``seed`` is not an integer.
        ValueError: if ``seed`` is out of range.
    """
    s = _check_int("key", "seed", seed)
    if not _INT64_MIN <= s <= _MASK64:
        raise ValueError(f"funcnn.random.key: seed must be in [-2**63, 2**64), got {s}")
    out = backend.random_bits_key(s & _MASK64)
    out.flags.writeable = False
    return out


def split(key: Any, num: int = 2) -> Any:
    """Split a key into ``num`` new keys, independent of each other and of ``key``.

    Args:
        key: a key (uint32, shape (2,)).
        num: how many keys to make (>= 0).

    Returns:
        A read-only host NumPy uint32 array of shape (num, 2): one key per row, so
        ``k1, k2 = split(key)`` unpacks two keys.
    """
    words = _check_key("split", key)
    n = _check_int("split", "num", num)
    if n < 0:
        raise ValueError(f"funcnn.random.split: num must be >= 0, got {n}")
    return _hash_key(words, _TWEAK_SPLIT, n)


def fold_in(key: Any, data: int) -> Any:
    """A new key made from ``key`` and an integer, e.g. a step number or a layer index.

    ``fold_in(key, i)`` for different ``i`` gives independent keys, so a loop can derive its
    step keys from one key without carrying a key along.

    Args:
        key: a key (uint32, shape (2,)).
        data: an integer in [-2**63, 2**64); negative values wrap modulo 2**64.

    Returns:
        A read-only host NumPy uint32 array of shape (2,).
    """
    words = _check_key("fold_in", key)
    d = _check_int("fold_in", "data", data)
    if not _INT64_MIN <= d <= _MASK64:
        raise ValueError(f"funcnn.random.fold_in: data must be in [-2**63, 2**64), got {d}")
    d &= _MASK64
    h = _hash_key(words, _TWEAK_FOLD, 1)[0]
    return _hash_key((int(h[0]), int(h[1])), (d >> 32, d & _MASK32), 1)[0]


# ----------------------------------------------------------------------------- draws


def _draw(
    fn: str, k: Any, kind: str, shape: tuple[int, ...], dtype: str | None, where: str, **kw: Any
) -> Any:
    """One draw through the backend seam, after the key is checked."""
    _check_key(fn, k)
    return backend.random_draw(k, kind, shape, dtype=dtype, backend=where, **kw)


def normal(key: Any, shape: Sequence[int] | int = (), dtype: Any = None) -> Any:
    """Standard normal samples (mean 0, standard deviation 1).

    Args:
        key: a key (uint32, shape (2,)).
        shape: the output shape.
        dtype: a floating dtype; the default float dtype (float32) when None.

    Returns:
        An array of ``shape`` and ``dtype`` on the default backend.
    """
    shp = _check_shape("normal", shape)
    name = _check_float_dtype("normal", dtype)
    return _draw("normal", key, "normal", shp, name, backend.get_default())


def uniform(
    key: Any,
    shape: Sequence[int] | int = (),
    dtype: Any = None,
    minval: float = 0.0,
    maxval: float = 1.0,
) -> Any:
    """Samples uniform on [minval, maxval).

    The draw is made in float64 and rounded to ``dtype``; values that round up to ``maxval``
    are moved to the largest ``dtype`` value below it, so ``maxval`` is never returned.

    Args:
        key: a key (uint32, shape (2,)).
        shape: the output shape.
        dtype: a floating dtype; the default float dtype (float32) when None.
        minval: the lower bound (included), a finite real number.
        maxval: the upper bound (excluded), a finite real number > ``minval``.

    Returns:
        An array of ``shape`` and ``dtype`` on the default backend.
    """
    shp = _check_shape("uniform", shape)
    name = _check_float_dtype("uniform", dtype)
    lo = _check_real("uniform", "minval", minval)
    hi = _check_real("uniform", "maxval", maxval)
    if not lo < hi or not math.isfinite(hi - lo):
        raise ValueError(
            f"funcnn.random.uniform: need minval < maxval with a finite difference, "
            f"got minval={minval!r}, maxval={maxval!r}"
        )
    u = _draw("uniform", key, "uniform", shp, "float64", backend.get_default())
    xp = backend.namespace(u)
    out = xp.astype(u * (hi - lo) + lo, getattr(xp, name))
    lo_t = backend.full((), lo, dtype=name, like=u)
    hi_t = backend.full((), hi, dtype=name, like=u)
    if not bool(lo_t < hi_t):
        raise ValueError(
            f"funcnn.random.uniform: minval={minval!r} and maxval={maxval!r} are equal "
            f"in {name}; widen the interval or use a wider dtype"
        )
    return xp.minimum(out, xp.nextafter(hi_t, lo_t))


def _broadcasts_to(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    if len(src) > len(dst):
        return False
    return all(s in (1, d) for s, d in zip(src[::-1], dst[::-1], strict=False))


def bernoulli(key: Any, p: Any = 0.5, shape: Sequence[int] | int | None = None) -> Any:
    """Random booleans, True with probability ``p``.

    Args:
        key: a key (uint32, shape (2,)).
        p: the probability of True, in [0, 1]: a real number, or a floating array that
            broadcasts to ``shape`` (one probability per element).
        shape: the output shape; ``p``'s shape when None.

    Returns:
        A bool array of ``shape``, on the default backend (on ``p``'s backend when ``p`` is
        an array).
    """
    threshold = p
    if backend.is_array(p) and not isinstance(p, numbers.Real):  # NumPy scalars are numbers
        if not backend.is_floating(p):
            raise TypeError(
                f"funcnn.random.bernoulli: p must be a floating array, got dtype {p.dtype}"
            )
        p_shape = tuple(p.shape)
        shp = p_shape if shape is None else _check_shape("bernoulli", shape)
        if not _broadcasts_to(p_shape, shp):
            raise ValueError(
                f"funcnn.random.bernoulli: p has shape {p_shape}, which does not broadcast "
                f"to shape {shp}"
            )
        xp = backend.namespace(p)
        if not bool(xp.all((p >= 0) & (p <= 1))):
            raise ValueError("funcnn.random.bernoulli: every p must be in [0, 1] (and not NaN)")
        where = backend.backend_name(p)
    else:
        prob = _check_real("bernoulli", "p", p)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"funcnn.random.bernoulli: p must be in [0, 1], got {p!r}")
        shp = () if shape is None else _check_shape("bernoulli", shape)
        where = backend.get_default()
        threshold = prob
    u = _draw("bernoulli", key, "uniform", shp, "float64", where)
    return u < threshold


def randint(key: Any, shape: Sequence[int] | int, minval: int, maxval: int) -> Any:
    """Integers uniform on [minval, maxval), as int64.

    Args:
        key: a key (uint32, shape (2,)).
        shape: the output shape.
        minval: the lower bound (included), >= -2**63.
        maxval: the upper bound (excluded), > ``minval`` and <= 2**63.

    Returns:
        An int64 array of ``shape`` on the default backend.
    """
    shp = _check_shape("randint", shape)
    lo = _check_int("randint", "minval", minval)
    hi = _check_int("randint", "maxval", maxval)
    if not _INT64_MIN <= lo < hi <= _INT64_END:
        raise ValueError(
            f"funcnn.random.randint: need -2**63 <= minval < maxval <= 2**63, "
            f"got minval={lo}, maxval={hi}"
        )
    return _draw("randint", key, "integers", shp, None, backend.get_default(), low=lo, high=hi)


def permutation(key: Any, n: int) -> Any:
    """A random permutation of ``0, 1, ..., n - 1`` (like ``torch.randperm``).

    To shuffle an array along its first axis, index it: ``x[permutation(key, x.shape[0])]``.

    Args:
        key: a key (uint32, shape (2,)).
        n: the number of elements (>= 0).

    Returns:
        An int64 array of shape (n,) on the default backend.
    """
    if backend.is_array(n) and len(getattr(n, "shape", ())) > 0:
        raise TypeError(
            f"funcnn.random.permutation: n must be an integer, got an array of shape "
            f"{tuple(n.shape)}; to shuffle an array use x[permutation(key, x.shape[0])]"
        )
    size = _check_int("permutation", "n", n)
    if size < 0:
        raise ValueError(f"funcnn.random.permutation: n must be >= 0, got {size}")
    return _draw("permutation", key, "permutation", (size,), None, backend.get_default(), n=size)
