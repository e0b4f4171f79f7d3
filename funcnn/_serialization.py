"""Safe checkpoints: the safetensors file format, written and read by funcnn's own code.

A file is::

    8 bytes         N, the header length, a little-endian unsigned 64-bit integer
    N bytes         a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes:
                    {"__metadata__": {str: str},
                     "fc.weight": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]}, ...}
    the rest        the tensors' raw little-endian C-order bytes; the offsets count from here

This is the layout of the ``safetensors`` package, so files written here load with
``safetensors.numpy.load_file`` or ``safetensors.torch.load_file``, and files it writes load
here. Nothing is ever unpickled: a reader only parses JSON and copies bytes into arrays.

- :func:`save_file` / :func:`load_file`: a flat ``{name: array}`` dict and a JSON metadata dict.
- :func:`save_tree` / :func:`load_tree`: a nested pytree of dict/list/tuple/None with array and
  Python-scalar leaves; arrays are named by their dotted path (``"fc1.weight"``), like a
  PyTorch ``state_dict``, and the structure is stored as JSON in the metadata.

Writes are atomic: the bytes go to a temporary file in the same folder, which is flushed,
fsync-ed and then renamed over the target with ``os.replace``; on any error the temporary file
is removed and an existing file is left as it was. Reads are strict: a malformed or hostile
file raises :class:`CheckpointError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
import struct
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

from funcnn import backend as _backend

__all__ = [
    "CheckpointError",
    "save_file",
    "load_file",
    "save_tree",
    "load_tree",
    "MAX_HEADER_BYTES",
]

MAX_HEADER_BYTES = 100_000_000
"""The largest JSON header a reader accepts (100 MB)."""

_MAX_NDIM = 64  # NumPy's limit
_MAX_DEPTH = 100  # nesting levels of a saved pytree
_METADATA_KEY = "funcnn"  # the caller's metadata, JSON-encoded
_TREE_KEY = "funcnn.tree"  # the pytree structure written by save_tree, JSON-encoded
_TREE_VERSION = 1
_RESERVED_NAME = "__metadata__"

# safetensors dtype code -> little-endian NumPy dtype
_NUMPY_BY_CODE = {
    "BOOL": "|b1",
    "U8": "|u1",
    "I8": "|i1",
    "U16": "<u2",
    "I16": "<i2",
    "F16": "<f2",
    "U32": "<u4",
    "I32": "<i4",
    "F32": "<f4",
    "U64": "<u8",
    "I64": "<i8",
    "F64": "<f8",
}
_ITEMSIZE_BY_CODE = {**{c: np.dtype(d).itemsize for c, d in _NUMPY_BY_CODE.items()}, "BF16": 2}
# NumPy's dtype.str without the byte-order character -> safetensors code
_CODE_BY_KIND = {d[1:]: c for c, d in _NUMPY_BY_CODE.items()}
_SUPPORTED = "BOOL, U8, I8, U16, I16, F16, BF16 (read as float32), U32, I32, F32, U64, I64, F64"

_PICKLE_MESSAGE = (
    "{fn}: {path!r} looks like a pickle/torch.save file; funcnn never unpickles, because "
    "unpickling can run arbitrary code. Re-save it as safetensors where it was made, e.g. in "
    "PyTorch: safetensors.torch.save_file(model.state_dict(), 'model.safetensors')"
)


class CheckpointError(ValueError):
    """A file that is not a valid funcnn/safetensors checkpoint (malformed, truncated, hostile)."""


# ----------------------------------------------------------------------------- writing


def _host_array(fn: str, name: str, x: Any) -> tuple[str, np.ndarray]:
    """The safetensors dtype code and a little-endian C-contiguous host copy of ``x``."""
    if not _backend.is_array(x):
        raise TypeError(
            f"{fn}: tensor {name!r} is a {type(x).__name__}, not an array; "
            "convert it first, e.g. with numpy.asarray"
        )
    host = np.asarray(_backend.to_numpy(x))
    code = _CODE_BY_KIND.get(host.dtype.str[1:])
    if code is None:
        raise TypeError(
            f"{fn}: tensor {name!r} has dtype {host.dtype}, which safetensors cannot hold; "
            f"supported dtypes: {_SUPPORTED.replace(', BF16 (read as float32)', '')}"
        )
    return code, host.astype(np.dtype(_NUMPY_BY_CODE[code]), order="C", copy=False)


def _write_array(f: BinaryIO, arr: np.ndarray) -> None:
    if arr.size:
        f.write(memoryview(arr.reshape(-1).view(np.uint8)))


def _encode_header(header: dict) -> bytes:
    raw = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def _unique_temp(folder: str, base: str) -> tuple[int, str]:
    """Create and open a new temporary file next to the target (mode 0o666 less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue


def _fsync_folder(folder: str) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    if os.name != "posix":  # pragma: no cover - Windows
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write(
    fn: str, path: str | os.PathLike, named: list[tuple[str, Any]], meta: dict[str, str]
) -> None:
    """Write ``named`` arrays and string metadata to ``path`` atomically."""
    seen: set[str] = set()
    entries = []
    for name, x in named:
        if not isinstance(name, str):
            raise TypeError(f"{fn}: tensor names must be str, got {type(name).__name__} {name!r}")
        if name == _RESERVED_NAME:
            raise ValueError(
                f"{fn}: {_RESERVED_NAME!r} is reserved by the file format; rename the tensor"
            )
        if name in seen:
            raise ValueError(f"{fn}: two tensors are named {name!r}")
        seen.add(name)
        code, host = _host_array(fn, name, x)
        entries.append((name, code, host))

    # The data section holds the widest dtypes first, so every tensor starts aligned to its
    # itemsize (safetensors does the same); the header keeps the caller's order.
    order = sorted(range(len(entries)), key=lambda i: -entries[i][2].itemsize)
    offsets: dict[int, tuple[int, int]] = {}
    pos = 0
    for i in order:
        offsets[i] = (pos, pos + entries[i][2].nbytes)
        pos += entries[i][2].nbytes
    header: dict[str, Any] = {}
    if meta:
        header[_RESERVED_NAME] = meta
    for i, (name, code, host) in enumerate(entries):
        header[name] = {"dtype": code, "shape": list(host.shape), "data_offsets": list(offsets[i])}
    header_bytes = _encode_header(header)
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ValueError(
            f"{fn}: the header would be {len(header_bytes)} bytes, more than the "
            f"{MAX_HEADER_BYTES} bytes a reader accepts; "
            "save fewer tensors or less metadata per file"
        )

    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = _unique_temp(folder, os.path.basename(target))
    try:
        with open(fd, "wb") as f:
            f.write(struct.pack("<Q", len(header_bytes)))
            f.write(header_bytes)
            for i in order:
                _write_array(f, entries[i][2])
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))  # keep an old file's mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _encode_metadata(fn: str, metadata: Any) -> str:
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"{fn}: metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        return json.dumps(metadata, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{fn}: metadata must be JSON-serialisable (dict, list, str, int, float, bool, "
            f"None): {e}"
        ) from None


def save_file(
    path: str | os.PathLike, tensors: Mapping[str, Any], metadata: dict[str, Any] | None = None
) -> None:
    """Save a flat dict of arrays to a safetensors file, atomically.

    Args:
        path: the file to write; an existing file is replaced only once the new one is complete.
        tensors: ``{name: array}``; arrays of any backend (moved to the host), any shape
            including 0-d and empty, of dtype bool, (u)int8/16/32/64 or float16/32/64.
        metadata: a JSON-serialisable dict, stored JSON-encoded in the header's
            ``__metadata__`` under the key ``"funcnn"``; :func:`load_file` returns it decoded
            (so tuples come back as lists and int keys as str, as JSON does; NaN and
            infinities are kept).

    Raises:
        TypeError: for a non-array value, an unsupported dtype or unserialisable metadata.
        ValueError: for the reserved name ``"__metadata__"``.
        OSError: if the file cannot be written (the old file, if any, is untouched).
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"save_file: tensors must be a dict of arrays, got {type(tensors).__name__}"
        )
    meta = {_METADATA_KEY: _encode_metadata("save_file", metadata)}
    _write("save_file", path, list(tensors.items()), meta)


# ----------------------------------------------------------------------------- reading


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k)
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(
    text: str | bytes, bad: Callable[[str], CheckpointError], what: str, allow_nan: bool = False
) -> Any:
    """Strict JSON: duplicate keys and (unless ``allow_nan``) NaN/Infinity are errors."""
    kw: dict[str, Any] = {} if allow_nan else {"parse_constant": _reject_constant}
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, **kw)
    except UnicodeDecodeError:
        raise bad(f"the {what} is not valid UTF-8") from None
    except _DuplicateKeyError as e:
        raise bad(f"the {what} has the key {e.args[0]!r} twice") from None
    except RecursionError:
        raise bad(f"the {what} is nested too deeply") from None
    except ValueError as e:
        raise bad(f"the {what} is not valid JSON ({e})") from None


def _looks_like_pickle(prefix: bytes) -> bool:
    """Pickle protocol 2-5 (``torch.save`` before 1.6), or a zip archive (``torch.save`` since)."""
    return (len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5) or prefix[:2] == b"PK"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _read_header(f: BinaryIO, size: int, bad: Callable[[str], CheckpointError]) -> tuple[Any, int]:
    prefix = f.read(8)
    if len(prefix) < 8:
        raise bad(f"the file is {size} bytes, too short for the 8-byte header length (truncated?)")
    (n,) = struct.unpack("<Q", prefix)
    if n > MAX_HEADER_BYTES:
        raise bad(f"the header length is {n} bytes, more than the limit of {MAX_HEADER_BYTES}")
    if n > size - 8:
        raise bad(f"the header length is {n} bytes but only {size - 8} bytes follow (truncated?)")
    raw = f.read(n)
    if len(raw) != n:
        raise bad(f"the header is {n} bytes but only {len(raw)} could be read (truncated?)")
    if not raw.startswith(b"{"):
        raise bad("the header does not start with '{'")
    return _parse_json(raw, bad, "header"), 8 + n


def _check_entries(
    header: Any, data_len: int, bad: Callable[[str], CheckpointError]
) -> tuple[dict[str, tuple[str, tuple[int, ...], int, int]], dict[str, str]]:
    """``{name: (code, shape, begin, end)}`` and the string metadata, after every check."""
    if not isinstance(header, dict):
        raise bad(f"the header is a JSON {type(header).__name__}, not an object")
    meta = header.get(_RESERVED_NAME)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("__metadata__ must be an object whose values are all strings")
    entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
    for name, info in header.items():
        if name == _RESERVED_NAME:
            continue
        if not isinstance(info, dict):
            raise bad(f"the entry of tensor {name!r} is not an object")
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(
                f"the entry of tensor {name!r} has the keys {sorted(info)}; "
                "expected exactly 'dtype', 'shape' and 'data_offsets'"
            )
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str) or code not in _ITEMSIZE_BY_CODE:
            raise bad(f"tensor {name!r} has the unknown dtype {code!r}; supported: {_SUPPORTED}")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has the shape {shape!r}; expected a list of integers >= 0")
        if len(shape) > _MAX_NDIM:
            raise bad(f"tensor {name!r} has {len(shape)} dimensions, more than {_MAX_NDIM}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise bad(
                f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end] with "
                "integers 0 <= begin <= end"
            )
        begin, end = offsets
        nbytes = math.prod(shape) * _ITEMSIZE_BY_CODE[code]
        if nbytes != end - begin:
            raise bad(
                f"tensor {name!r} of dtype {code} and shape {shape} needs {nbytes} bytes, but "
                f"its data_offsets {offsets} span {end - begin}"
            )
        entries[name] = (code, tuple(shape), begin, end)

    pos, prev = 0, None
    for begin, end, name in sorted((e[2], e[3], n) for n, e in entries.items()):
        if begin < pos:
            raise bad(
                f"tensor {name!r} (bytes {begin}..{end}) overlaps tensor {prev!r} (ending at {pos})"
            )
        if begin > pos:
            raise bad(f"bytes {pos}..{begin} of the data section belong to no tensor (a gap)")
        pos, prev = end, name
    if pos > data_len:
        raise bad(
            f"tensor {prev!r} ends at byte {pos} of the data section, which holds only "
            f"{data_len} bytes (truncated?)"
        )
    if pos < data_len:
        raise bad(f"the last {data_len - pos} bytes of the data section belong to no tensor")
    return entries, meta


def _read_array(
    f: BinaryIO,
    name: str,
    code: str,
    shape: tuple[int, ...],
    nbytes: int,
    bad: Callable[[str], CheckpointError],
) -> np.ndarray:
    flat = np.empty(
        nbytes // _ITEMSIZE_BY_CODE[code], dtype="<u2" if code == "BF16" else _NUMPY_BY_CODE[code]
    )
    view = memoryview(flat.view(np.uint8))
    got = 0
    while got < nbytes:
        n = f.readinto(view[got:])
        if not n:
            raise bad(f"the data of tensor {name!r} ends early (truncated?)")
        got += n
    if code == "BF16":  # bfloat16 is the top half of a float32
        flat = (flat.astype("<u4") << 16).view("<f4")
    if not flat.dtype.isnative:  # pragma: no cover - big-endian machines
        flat = flat.astype(flat.dtype.newbyteorder("="))
    try:
        return flat.reshape(shape)
    except (ValueError, OverflowError):
        raise bad(f"tensor {name!r} has the shape {list(shape)}, which NumPy cannot make") from None


def _read(fn: str, path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays and the raw string metadata of a file, after every check."""
    where = os.fspath(path)

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{fn}: {where!r} is not a valid safetensors file: {problem}")

    with open(where, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            header, data_start = _read_header(f, size, bad)
        except CheckpointError:
            f.seek(0)
            if _looks_like_pickle(f.read(8)):
                raise CheckpointError(_PICKLE_MESSAGE.format(fn=fn, path=where)) from None
            raise
        entries, meta = _check_entries(header, size - data_start, bad)
        tensors: dict[str, np.ndarray] = {}
        for name, (code, shape, begin, end) in entries.items():
            f.seek(data_start + begin)
            tensors[name] = _read_array(f, name, code, shape, end - begin, bad)
    return tensors, meta


def _decode_metadata(fn: str, path: str | os.PathLike, meta: dict[str, str]) -> dict[str, Any]:
    if _METADATA_KEY not in meta:
        return dict(meta)  # a file from elsewhere: its string metadata as it is

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{fn}: {os.fspath(path)!r} has malformed metadata: {problem}")

    out = _parse_json(meta[_METADATA_KEY], bad, f"{_METADATA_KEY!r} metadata", allow_nan=True)
    if not isinstance(out, dict):
        raise bad(f"the {_METADATA_KEY!r} metadata is a JSON {type(out).__name__}, not an object")
    return out


def load_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load a safetensors file written by :func:`save_file`, the ``safetensors`` package or PyTorch.

    Args:
        path: the file.

    Returns:
        ``(tensors, metadata)``: ``{name: numpy.ndarray}`` in the header's order (BF16 tensors
        are widened to float32), and the metadata dict given to :func:`save_file` (``{}`` when
        none), or for a file written elsewhere its ``__metadata__`` strings as they are.

    Raises:
        CheckpointError: (a ValueError) for a malformed, truncated or hostile file, or a
            pickle/``torch.save`` file, which is never unpickled.
        OSError: if the file cannot be read.
    """
    tensors, meta = _read("load_file", path)
    return tensors, _decode_metadata("load_file", path, meta)


# ----------------------------------------------------------------------------- pytrees

_TREE_HELP = (
    "save_tree supports dict (str or int keys), list, tuple and None containers with array, "
    "int, float, bool and str leaves"
)


def _encode_node(node: Any, path: tuple[str, ...], named: list, depth: int) -> Any:
    """A JSON description of ``node``; its arrays are appended to ``named`` by dotted path."""
    where = ".".join(path) or "the root"
    if depth > _MAX_DEPTH:
        raise ValueError(
            f"save_tree: the tree is nested more than {_MAX_DEPTH} levels deep (at {where!r})"
        )
    t = type(node)
    if node is None:
        return None
    if t is dict:
        keys, children = [], []
        for k, v in node.items():
            if type(k) not in (str, int):
                raise TypeError(
                    f"save_tree: the dict at {where!r} has the key {k!r} of type "
                    f"{type(k).__name__}; keys must be str or int"
                )
            keys.append(k)
            children.append(_encode_node(v, (*path, str(k)), named, depth + 1))
        return ["dict", keys, children]
    if t is list or t is tuple:
        items = [_encode_node(v, (*path, str(i)), named, depth + 1) for i, v in enumerate(node)]
        return [t.__name__, items]
    if t is bool:
        return ["bool", node]
    if t is int:
        return ["int", node]
    if t is float:
        return ["float", repr(node)]  # exact, and NaN/inf stay valid JSON
    if t is str:
        return ["str", node]
    if _backend.is_array(node):
        name = ".".join(path)
        named.append((name, node))
        return ["array", name]
    hint = ""
    if isinstance(node, tuple) and hasattr(t, "_fields"):
        hint = "; convert a namedtuple with ._asdict()"
    elif isinstance(node, dict):
        hint = "; convert it with dict(...)"
    elif hasattr(t, "__attrs_attrs__"):
        hint = "; convert an attrs class with attrs.asdict(..., recurse=False)"
    raise TypeError(f"save_tree: cannot save a {t.__name__} at {where!r}; {_TREE_HELP}{hint}")


def save_tree(path: str | os.PathLike, tree: Any, metadata: dict[str, Any] | None = None) -> None:
    """Save a pytree of arrays to a safetensors file, atomically.

    Each array is a tensor named by its dotted path (``"fc1.weight"``, ``"layers.0.bias"``: the
    path :func:`funcnn.tree.leaves_with_path` gives), so the file reads like a PyTorch
    ``state_dict`` in any safetensors reader. The structure, and the Python scalars, are stored
    as JSON in the metadata, and :func:`load_tree` rebuilds the same tree.

    Args:
        path: the file to write; an existing file is replaced only once the new one is complete.
        tree: nested dict (str or int keys, order kept), list, tuple and None, with leaves that
            are arrays of any backend or Python int, float, bool and str.
        metadata: a JSON-serialisable dict, returned by ``load_file(path)[1]``.

    Raises:
        TypeError: for another container or leaf type (namedtuple, attrs class, set, ...), or
            unserialisable metadata.
        ValueError: if two leaves map to the same tensor name, or the tree is nested more than
            100 levels deep.
    """
    named: list[tuple[str, Any]] = []
    spec = _encode_node(tree, (), named, 0)
    names: dict[str, int] = {}
    for name, _ in named:
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            raise ValueError(
                f"save_tree: two leaves have the path {name!r} (paths join keys with '.'); "
                "rename one of the keys"
            )
    meta = {
        _METADATA_KEY: _encode_metadata("save_tree", metadata),
        _TREE_KEY: json.dumps({"version": _TREE_VERSION, "tree": spec}, separators=(",", ":")),
    }
    _write("save_tree", path, named, meta)


def _decode_node(
    node: Any,
    tensors: dict[str, np.ndarray],
    used: set[str],
    convert: Callable[[np.ndarray], Any],
    depth: int,
    bad: Callable[[str], CheckpointError],
) -> Any:
    if depth > _MAX_DEPTH:
        raise bad(f"it is nested more than {_MAX_DEPTH} levels deep")
    if node is None:
        return None
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise bad(f"a node is {str(node)[:60]!r}, not a tagged list")
    tag, args = node[0], node[1:]

    def rec(child: Any) -> Any:
        return _decode_node(child, tensors, used, convert, depth + 1, bad)

    if tag == "dict":
        if len(args) != 2 or not isinstance(args[0], list) or not isinstance(args[1], list):
            raise bad("a dict node must be ['dict', [keys...], [children...]]")
        keys, children = args
        if len(keys) != len(children) or not all(isinstance(k, str) or _is_int(k) for k in keys):
            raise bad("a dict node needs as many str or int keys as children")
        if len(set(keys)) != len(keys):
            raise bad("a dict node repeats a key")
        return {k: rec(c) for k, c in zip(keys, children, strict=True)}
    if tag in ("list", "tuple"):
        if len(args) != 1 or not isinstance(args[0], list):
            raise bad(f"a {tag} node must be [{tag!r}, [children...]]")
        items = [rec(c) for c in args[0]]
        return items if tag == "list" else tuple(items)
    if len(args) != 1:
        raise bad(f"a {tag!r} node has {len(args)} values, expected 1")
    value = args[0]
    if tag == "array" and isinstance(value, str):
        if value not in tensors:
            raise bad(f"it names the tensor {value!r}, which the file does not hold")
        if value in used:
            raise bad(f"it names the tensor {value!r} twice")
        used.add(value)
        return convert(tensors[value])
    if tag == "int" and _is_int(value):
        return value
    if tag == "bool" and isinstance(value, bool):
        return value
    if tag == "str" and isinstance(value, str):
        return value
    if tag == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise bad(f"{value[:30]!r} is not a float") from None
    raise bad(f"a node is {str(node)[:60]!r}: unknown tag or bad value")


_BACKENDS = ("numpy", "cupy", "strict")


def load_tree(path: str | os.PathLike, backend: str | None = None) -> Any:
    """Load a pytree saved by :func:`save_tree`.

    Args:
        path: the file.
        backend: ``None`` for host NumPy arrays, or ``"numpy"``, ``"cupy"`` or ``"strict"`` to
            move every array onto that backend.

    Returns:
        The tree, with the same containers, keys, order and Python scalars as was saved. A
        safetensors file not written by :func:`save_tree` (``save_file``, PyTorch) gives its
        flat ``{name: array}`` dict.

    Raises:
        CheckpointError: (a ValueError) for a malformed, truncated or hostile file, a
            malformed structure, or a pickle/``torch.save`` file, which is never unpickled.
        ValueError: for an unknown ``backend``.
    """
    return _load_tree("load_tree", path, backend)[0]


def _load_tree(
    fn: str, path: str | os.PathLike, backend: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The tree and the decoded metadata of one read of ``path``; errors start with ``fn``.

    ``funcnn_modules.load`` needs both; reading the file once means it sees one version of it
    even when another process replaces the file meanwhile.
    """
    if backend is not None and backend not in _BACKENDS:
        raise ValueError(f"{fn}: unknown backend {backend!r}; expected one of {_BACKENDS} or None")
    tensors, meta = _read(fn, path)
    metadata = _decode_metadata(fn, path, meta)  # checked, so every reader accepts the same files

    def convert(x: np.ndarray) -> Any:
        return x if backend is None else _backend.from_numpy(x, backend=backend)

    if _TREE_KEY not in meta:
        return {name: convert(x) for name, x in tensors.items()}, metadata

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(
            f"{fn}: {os.fspath(path)!r} holds a malformed tree structure: {problem}"
        )

    spec = _parse_json(meta[_TREE_KEY], bad, "structure")
    if (
        not isinstance(spec, dict)
        or spec.get("version") != _TREE_VERSION
        or set(spec) != {"version", "tree"}
    ):
        raise bad(f"expected {{'version': {_TREE_VERSION}, 'tree': ...}}")
    used: set[str] = set()
    out = _decode_node(spec["tree"], tensors, used, convert, 0, bad)
    unused = sorted(set(tensors) - used)
    if unused:
        raise bad(f"the tensors {unused[:5]} are not in the structure")
    return out, metadata
