"""Tests for funcnn._serialization: the safetensors format, atomic writes, strict reads, pytrees."""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import struct
import tempfile

import attrs
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funcnn import _serialization as ser
from funcnn import backend, tree
from funcnn._serialization import CheckpointError, load_file, load_tree, save_file, save_tree

DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
]


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    """Equal dtype, shape and bytes (so NaN payloads and -0.0 count)."""
    assert isinstance(b, np.ndarray)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _raw_file(header: dict | bytes | str, data: bytes = b"", length: int | None = None) -> bytes:
    """A safetensors file from a header (dict, or raw JSON text) and a data section."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode("utf-8")
    header += b" " * (-len(header) % 8)
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


def _load_bytes(data: bytes, fn=load_file):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        return fn(path)


def _entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_is_bit_exact(tmp_path, dtype):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        finfo = np.finfo(dtype)
        special = [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
            finfo.tiny,
            finfo.smallest_subnormal,
            finfo.max,
        ]
        a = np.concatenate([np.array(special, dtype=dtype), rng.normal(size=20).astype(dtype)])
        a = np.concatenate([a, -np.array([np.nan], dtype=dtype)])  # a NaN with the sign bit set
    elif dtype is np.bool_:
        a = rng.random(30) < 0.5
    else:
        info = np.iinfo(dtype)
        a = np.concatenate(
            [np.array([info.min, info.max, 0], dtype=dtype), rng.integers(0, 100, 20).astype(dtype)]
        )
    tensors = {
        "a": a,
        "m": a[: 6 * (len(a) // 6)].reshape(2, 3, -1),
        "s": a[3].reshape(()),
        "e": a[:0].reshape(0, 4),
    }
    save_file(tmp_path / "x.safetensors", tensors)
    out, meta = load_file(tmp_path / "x.safetensors")
    assert list(out) == list(tensors)  # the caller's order is kept
    for name, x in tensors.items():
        _same_bits(x, out[name])
    assert meta == {}


@given(
    arrays=st.lists(
        hnp.arrays(
            dtype=st.sampled_from(DTYPES),
            shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        ),
        min_size=0,
        max_size=5,
    )
)
@settings(max_examples=60, deadline=None)
def test_round_trip_property(arrays):
    tensors = {f"t{i}": a for i, a in enumerate(arrays)}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.safetensors")
        save_file(path, tensors)
        out, _ = load_file(path)
        theirs = safetensors.numpy.load_file(path)
    assert list(out) == list(tensors)
    for name, x in tensors.items():
        _same_bits(x, out[name])
        _same_bits(x, theirs[name])


def test_non_contiguous_big_endian_and_scalar_inputs(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    tensors = {
        "t": a.T,
        "strided": a[:, ::2],
        "be": a.astype(">f4"),
        "be_int": np.arange(5, dtype=">i8"),
        "np_scalar": np.float64(2.5),
    }
    save_file(tmp_path / "x.safetensors", tensors)
    out, _ = load_file(tmp_path / "x.safetensors")
    np.testing.assert_array_equal(out["t"], a.T)
    np.testing.assert_array_equal(out["strided"], a[:, ::2])
    assert out["be"].dtype == np.float32 and out["be"].dtype.isnative
    np.testing.assert_array_equal(out["be"], a)
    assert out["be_int"].dtype == np.int64
    np.testing.assert_array_equal(out["be_int"], np.arange(5))
    assert out["np_scalar"].shape == () and out["np_scalar"] == 2.5


def test_a_large_array_round_trips(tmp_path):
    a = np.random.default_rng(1).normal(size=(1000, 1000)).astype(np.float32)
    save_file(tmp_path / "big.safetensors", {"w": a})
    _same_bits(a, load_file(tmp_path / "big.safetensors")[0]["w"])


def test_arrays_of_other_backends_are_saved_from_the_host(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_file(tmp_path / "x.safetensors", {"a": backend.device_put(a, "strict")})
    _same_bits(a, load_file(tmp_path / "x.safetensors")[0]["a"])


def test_empty_dict_round_trips(tmp_path):
    save_file(tmp_path / "x.safetensors", {})
    assert load_file(tmp_path / "x.safetensors") == ({}, {})
    assert safetensors.numpy.load_file(tmp_path / "x.safetensors") == {}


def test_file_layout(tmp_path):
    tensors = {
        "b": np.array([True, False, True]),
        "h": np.ones(3, np.float16),
        "d": np.ones(3, np.float64),
        "i": np.ones(1, np.int32),
    }
    save_file(tmp_path / "x.safetensors", tensors, {"k": "v"})
    raw = (tmp_path / "x.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header_text = raw[8 : 8 + n].decode("utf-8")
    assert header_text.startswith("{") and header_text.rstrip(" ").endswith("}")
    header = json.loads(header_text)
    assert header["__metadata__"] == {"funcnn": '{"k":"v"}'}
    data_len = len(raw) - 8 - n
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and spans[-1][1] == data_len
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    for name, x in tensors.items():
        entry = header[name]
        assert entry["shape"] == list(x.shape)
        assert entry["data_offsets"][0] % x.itemsize == 0  # every tensor is aligned
    assert [header[k]["dtype"] for k in "bhdi"] == ["BOOL", "F16", "F64", "I32"]


# ----------------------------------------------------------------------------- metadata


def test_metadata_round_trip(tmp_path):
    meta = {
        "epoch": 3,
        "lr": 1e-3,
        "nested": {"betas": [0.9, 0.999], "name": "adam", "flag": True, "none": None},
        "loss": math.inf,
        "unicode": "näive ☃",
    }
    save_file(tmp_path / "x.safetensors", {"a": np.zeros(2)}, meta)
    _, out = load_file(tmp_path / "x.safetensors")
    assert out == meta


def test_metadata_comes_back_as_json_gives_it(tmp_path):
    save_file(tmp_path / "x.safetensors", {}, {"t": (1, 2), "d": {1: "a"}})
    assert load_file(tmp_path / "x.safetensors")[1] == {"t": [1, 2], "d": {"1": "a"}}


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ([1, 2], r"save_file: metadata must be a dict or None, got list"),
        ("x", r"save_file: metadata must be a dict or None, got str"),
        ({"a": np.zeros(2)}, r"save_file: metadata must be JSON-serialisable"),
        ({"a": {1, 2}}, r"save_file: metadata must be JSON-serialisable"),
    ],
)
def test_bad_metadata_is_a_type_error_and_writes_nothing(tmp_path, metadata, match):
    with pytest.raises(TypeError, match=match):
        save_file(tmp_path / "x.safetensors", {"a": np.zeros(2)}, metadata)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------ the safetensors package


def test_the_safetensors_package_reads_our_files(tmp_path):
    tensors = {
        "w": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32),
        "h": np.arange(5, dtype=np.float16),
        "d": np.linspace(0, 1, 7),
        "i": np.arange(-3, 3, dtype=np.int64),
        "u": np.arange(4, dtype=np.uint8),
        "b": np.array([True, False]),
        "s": np.array(3.5, dtype=np.float32),
        "e": np.zeros((0, 2), dtype=np.float32),
    }
    path = tmp_path / "x.safetensors"
    save_file(path, tensors, {"epoch": 2})
    theirs = safetensors.numpy.load_file(path)
    assert set(theirs) == set(tensors)
    for name, x in tensors.items():
        _same_bits(x, theirs[name])
    with safetensors.safe_open(path, framework="np") as f:
        assert json.loads(f.metadata()["funcnn"]) == {"epoch": 2}
    from_torch = safetensors.torch.load_file(path)
    np.testing.assert_array_equal(from_torch["w"].numpy(), tensors["w"])


def test_we_read_files_the_safetensors_package_writes(tmp_path):
    tensors = {
        "w": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32),
        "h": np.arange(5, dtype=np.float16),
        "b": np.array([True, False]),
        "i": np.arange(3, dtype=np.int64),
        "s": np.array(1.5),
        "e": np.zeros((2, 0), dtype=np.int32),
    }
    path = tmp_path / "x.safetensors"
    safetensors.numpy.save_file(tensors, path, metadata={"format": "np", "note": "hi"})
    out, meta = load_file(path)
    for name, x in tensors.items():
        _same_bits(x, out[name])
    assert meta == {"format": "np", "note": "hi"}  # foreign string metadata, as it is
    assert load_tree(path).keys() == tensors.keys()  # no structure: the flat dict


def test_we_read_pytorch_safetensors_including_bfloat16(tmp_path):
    w = torch.randn(4, 3, dtype=torch.float32)
    tensors = {
        "weight": w,
        "bias": torch.arange(3, dtype=torch.int64),
        "half": w.to(torch.bfloat16),
    }
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})
    out, meta = load_file(path)
    assert meta == {"format": "pt"}
    np.testing.assert_array_equal(out["weight"], w.numpy())
    np.testing.assert_array_equal(out["bias"], np.arange(3))
    assert out["half"].dtype == np.float32  # bfloat16 is widened exactly
    np.testing.assert_array_equal(out["half"], w.to(torch.bfloat16).float().numpy())


# ----------------------------------------------------------------------------- save_file errors


@pytest.mark.parametrize(
    ("tensors", "error", "match"),
    [
        ({"a": [1.0, 2.0]}, TypeError, r"save_file: tensor 'a' is a list, not an array"),
        ({"a": 1.5}, TypeError, r"save_file: tensor 'a' is a float, not an array"),
        (
            {"a": np.zeros(2, np.complex64)},
            TypeError,
            r"tensor 'a' has dtype complex64, which safetensors cannot hold",
        ),
        ({"a": np.array(["x"])}, TypeError, r"tensor 'a' has dtype <U1"),
        ({"a": np.array([None])}, TypeError, r"tensor 'a' has dtype object"),
        ({"a": np.zeros(2, "datetime64[s]")}, TypeError, r"tensor 'a' has dtype datetime64"),
        ({1: np.zeros(2)}, TypeError, r"save_file: tensor names must be str, got int"),
        ({"__metadata__": np.zeros(2)}, ValueError, r"'__metadata__' is reserved"),
        ([np.zeros(2)], TypeError, r"save_file: tensors must be a dict of arrays, got list"),
    ],
)
def test_save_file_rejects_bad_tensors_before_writing(tmp_path, tensors, error, match):
    path = tmp_path / "x.safetensors"
    save_file(path, {"old": np.ones(3)})
    with pytest.raises(error, match=match):
        save_file(path, tensors)
    assert os.listdir(tmp_path) == ["x.safetensors"]
    np.testing.assert_array_equal(load_file(path)[0]["old"], np.ones(3))


# ----------------------------------------------------------------------------- hostile files

_F32x2 = b"\x00" * 8  # the bytes of two float32 zeros

HOSTILE = {
    "empty file": (b"", r"too short for the 8-byte header length"),
    "three bytes": (b"abc", r"too short for the 8-byte header length"),
    "huge header length": (
        struct.pack("<Q", 2**40) + b"{}",
        r"header length is 1099511627776 bytes, more than the limit",
    ),
    "header just over 100 MB": (
        struct.pack("<Q", 100_000_001) + b"{}",
        r"more than the limit of 100000000",
    ),
    "header longer than the file": (
        _raw_file({}, length=1000),
        r"header length is 1000 bytes but only 8 bytes follow",
    ),
    "zero header length": (_raw_file(b"", length=0), r"does not start with '\{'"),
    "header is a JSON list": (_raw_file(b"[1, 2]"), r"does not start with '\{'"),
    "header is not JSON": (_raw_file(b"{abc"), r"the header is not valid JSON"),
    "header is not UTF-8": (_raw_file(b'{"\xff": 1}'), r"the header is not valid UTF-8"),
    "NaN in the header": (_raw_file(b'{"a": NaN}'), r"NaN is not valid JSON"),
    "deeply nested header": (
        _raw_file(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        r"nested too deeply",
    ),
    "duplicate tensor names": (
        _raw_file(
            '{"a": ENTRY, "a": ENTRY}'.replace("ENTRY", json.dumps(_entry("F32", [2], 0, 8))),
            _F32x2,
        ),
        r"the header has the key 'a' twice",
    ),
    "duplicate keys inside an entry": (
        _raw_file(
            '{"a": {"dtype": "F32", "dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}', _F32x2
        ),
        r"has the key 'dtype' twice",
    ),
    "unknown dtype": (
        _raw_file({"a": _entry("C64", [1], 0, 8)}, _F32x2),
        r"tensor 'a' has the unknown dtype 'C64'",
    ),
    "fp8 dtype": (
        _raw_file({"a": _entry("F8_E4M3", [8], 0, 8)}, _F32x2),
        r"unknown dtype 'F8_E4M3'",
    ),
    "dtype not a string": (_raw_file({"a": _entry(3, [2], 0, 8)}, _F32x2), r"unknown dtype 3"),
    "shape and offsets disagree": (
        _raw_file({"a": _entry("F32", [3], 0, 8)}, _F32x2),
        r"tensor 'a' of dtype F32 and shape \[3\] needs 12 bytes, "
        r"but its data_offsets \[0, 8\] span 8",
    ),
    "negative shape": (
        _raw_file({"a": _entry("F32", [-2], 0, 8)}, _F32x2),
        r"has the shape \[-2\]; expected a list of integers >= 0",
    ),
    "float shape": (
        _raw_file({"a": _entry("F32", [2.0], 0, 8)}, _F32x2),
        r"expected a list of integers >= 0",
    ),
    "bool shape": (
        _raw_file({"a": _entry("F32", [True, 2], 0, 8)}, _F32x2),
        r"expected a list of integers >= 0",
    ),
    "shape not a list": (
        _raw_file({"a": _entry("F32", 2, 0, 8)}, _F32x2),
        r"expected a list of integers >= 0",
    ),
    "too many dimensions": (
        _raw_file({"a": _entry("F32", [1] * 65, 0, 4)}, b"\x00" * 4),
        r"has 65 dimensions",
    ),
    "shape NumPy cannot make": (
        _raw_file({"a": _entry("F32", [0, 2**70], 0, 0)}),
        r"which NumPy cannot make",
    ),
    "negative offsets": (
        _raw_file({"a": _entry("F32", [2], -8, 0)}, _F32x2),
        r"data_offsets \[-8, 0\]",
    ),
    "offsets backwards": (_raw_file({"a": _entry("F32", [0], 8, 0)}, _F32x2), r"0 <= begin <= end"),
    "three offsets": (
        _raw_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}}, _F32x2),
        r"expected \[begin, end\]",
    ),
    "entry not an object": (_raw_file({"a": 3}), r"the entry of tensor 'a' is not an object"),
    "entry missing a key": (
        _raw_file({"a": {"dtype": "F32", "shape": [2]}}, _F32x2),
        r"expected exactly 'dtype', 'shape' and 'data_offsets'",
    ),
    "entry with an extra key": (
        _raw_file({"a": {**_entry("F32", [2], 0, 8), "code": "import os"}}, _F32x2),
        r"expected exactly",
    ),
    "overlapping offsets": (
        _raw_file({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 4, 12)}, b"\x00" * 12),
        r"tensor 'b' \(bytes 4..12\) overlaps tensor 'a' \(ending at 8\)",
    ),
    "two tensors on the same bytes": (
        _raw_file({"a": _entry("F32", [2], 0, 8), "b": _entry("I32", [2], 0, 8)}, _F32x2),
        r"overlaps",
    ),
    "a gap between tensors": (
        _raw_file({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 12, 20)}, b"\x00" * 20),
        r"bytes 8..12 of the data section belong to no tensor \(a gap\)",
    ),
    "a gap before the first tensor": (
        _raw_file({"a": _entry("F32", [1], 4, 8)}, _F32x2),
        r"bytes 0..4 of the data section",
    ),
    "trailing bytes": (
        _raw_file({"a": _entry("F32", [2], 0, 8)}, b"\x00" * 12),
        r"the last 4 bytes of the data section belong to no tensor",
    ),
    "data truncated": (
        _raw_file({"a": _entry("F32", [2], 0, 8), "b": _entry("F64", [2], 8, 24)}, b"\x00" * 20),
        r"tensor 'b' ends at byte 24 of the data section, "
        r"which holds only 20 bytes \(truncated\?\)",
    ),
    "no data at all": (_raw_file({"a": _entry("F32", [2], 0, 8)}), r"holds only 0 bytes"),
    "metadata values not strings": (
        _raw_file({"__metadata__": {"a": 1}}),
        r"__metadata__ must be an object whose values are all strings",
    ),
    "metadata not an object": (_raw_file({"__metadata__": [1]}), r"__metadata__ must be an object"),
    "our metadata not JSON": (
        _raw_file({"__metadata__": {"funcnn": "{nope"}}),
        r"has malformed metadata: the 'funcnn' metadata is not valid JSON",
    ),
    "our metadata not an object": (
        _raw_file({"__metadata__": {"funcnn": "[1]"}}),
        r"the 'funcnn' metadata is a JSON list, not an object",
    ),
    "pickle protocol 2": (
        pickle.dumps({"a": 1}, protocol=2),
        r"looks like a pickle/torch.save file; funcnn never unpickles",
    ),
    "pickle protocol 4": (pickle.dumps({"a": [1.0] * 100}, protocol=4), r"funcnn never unpickles"),
    "pickle protocol 5": (pickle.dumps(list(range(1000)), protocol=5), r"funcnn never unpickles"),
}


def _torch_save(**kw) -> bytes:
    buf = io.BytesIO()
    torch.save({"weight": torch.ones(2, 2)}, buf, **kw)
    return buf.getvalue()


HOSTILE["torch.save zip"] = (
    _torch_save(),
    r"looks like a pickle/torch.save file; funcnn never unpickles",
)
HOSTILE["torch.save legacy"] = (
    _torch_save(_use_new_zipfile_serialization=False),
    r"funcnn never unpickles",
)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_rejected_with_our_error(tmp_path, name):
    data, match = HOSTILE[name]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    for fn in (load_file, load_tree):
        with pytest.raises(CheckpointError, match=match) as info:
            fn(path)
        assert isinstance(info.value, ValueError)
        assert str(path) in str(info.value)  # the message names the file
        assert str(info.value).startswith(fn.__name__ + ": ")


def test_pickle_files_are_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("the reader unpickled the file",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Boom(), protocol=4))
    with pytest.raises(CheckpointError, match=r"funcnn never unpickles"):
        load_file(path)


def test_a_header_length_that_starts_like_a_pickle_is_still_read(tmp_path):
    # 640 = 0x0280: the file starts with the bytes b"\x80\x02", like pickle protocol 2
    header = {"__metadata__": {"pad": ""}, "a": _entry("F32", [2], 0, 8)}
    text = json.dumps(header)
    header["__metadata__"]["pad"] = "x" * (640 - len(text))
    data = _raw_file(header, np.array([1.5, 2.5], dtype=np.float32).tobytes())
    assert data[:2] == b"\x80\x02"
    out, meta = _load_bytes(data)
    np.testing.assert_array_equal(out["a"], [1.5, 2.5])
    assert meta == {"pad": header["__metadata__"]["pad"]}


def test_zero_sized_tensors_may_share_an_offset():
    header = {
        "a": _entry("F32", [0], 0, 0),
        "b": _entry("F32", [2], 0, 8),
        "c": _entry("I8", [0, 3], 8, 8),
    }
    out, _ = _load_bytes(_raw_file(header, _F32x2))
    assert out["a"].shape == (0,) and out["c"].shape == (0, 3) and out["c"].dtype == np.int8


# ----------------------------------------------------------------------------- fuzzing the reader


def _only_our_error(data: bytes) -> None:
    for fn in (load_file, load_tree):
        try:
            _load_bytes(data, fn)
        except CheckpointError:
            pass


def _valid_file() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "v.safetensors")
        save_tree(
            path,
            {
                "fc": {
                    "weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                    "bias": np.zeros(2, np.float16),
                },
                "steps": [1, 2.5, None, (True, "x")],
                "mask": np.array([True, False]),
            },
            metadata={"epoch": 1},
        )
        with open(path, "rb") as f:
            return f.read()


VALID = _valid_file()


@given(data=st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_fuzz_random_bytes(data):
    _only_our_error(data)


@given(data=st.binary(min_size=8, max_size=200))
@settings(max_examples=100, deadline=None)
def test_fuzz_random_bytes_after_a_plausible_length(data):
    _only_our_error(struct.pack("<Q", len(data) // 2) + data)


@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    cut=st.one_of(st.none(), st.integers(0, len(VALID))),
    insert=st.one_of(
        st.none(), st.tuples(st.integers(0, len(VALID)), st.binary(min_size=1, max_size=8))
    ),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutated_valid_files(edits, cut, insert):
    data = bytearray(VALID)
    for pos, byte in edits:
        data[pos] = byte
    if insert is not None:
        data[insert[0] : insert[0]] = insert[1]
    if cut is not None:
        data = data[:cut]
    _only_our_error(bytes(data))


_JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_ENTRY = (
    st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "BOOL", "U8", "X9"]) | _JSONISH,
            "shape": st.lists(st.integers(-2, 4), max_size=3) | _JSONISH,
            "data_offsets": st.lists(st.integers(-4, 40), min_size=2, max_size=2) | _JSONISH,
        }
    )
    | _JSONISH
)


@given(
    header=st.dictionaries(st.sampled_from(["a", "b", "c", "__metadata__"]), _ENTRY, max_size=3),
    data=st.binary(max_size=40),
)
@settings(max_examples=400, deadline=None)
def test_fuzz_structured_headers(header, data):
    raw = _raw_file(json.dumps(header), data)
    try:
        out, _ = _load_bytes(raw)
    except CheckpointError:
        return
    for name, arr in out.items():  # whatever loads is consistent with its entry
        entry = header[name]
        assert list(arr.shape) == entry["shape"]


_STRUCTURE = st.recursive(
    _JSONISH
    | st.sampled_from([["array", "a"], ["array", "b"], ["int", 1], ["float", "x"], ["bool", 1]]),
    lambda inner: (
        st.tuples(
            st.sampled_from(["dict", "list", "tuple", "array", "int", "str"]),
            st.lists(inner, max_size=3),
        ).map(lambda t: [t[0], *t[1]])
        | st.tuples(
            st.just("dict"),
            st.lists(st.text(max_size=2) | st.integers(0, 3), max_size=3),
            st.lists(inner, max_size=3),
        ).map(list)
    ),
    max_leaves=8,
)


@given(spec=_STRUCTURE, version=st.sampled_from([1, 2, "1"]))
@settings(max_examples=300, deadline=None)
def test_fuzz_tree_structures(spec, version):
    meta = {"funcnn": "{}", "funcnn.tree": json.dumps({"version": version, "tree": spec})}
    header = {"__metadata__": meta, "a": _entry("F32", [1], 0, 4), "b": _entry("I8", [2], 4, 6)}
    raw = _raw_file(header, b"\x00" * 6)
    try:
        _load_bytes(raw, load_tree)
    except CheckpointError:
        pass


# ----------------------------------------------------------------------------- atomic writes


def _boom(*args, **kwargs):
    raise OSError("disk on fire")


@pytest.mark.parametrize("where", ["os.replace", "os.fsync"])
def test_a_failed_save_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, where):
    path = tmp_path / "ckpt.safetensors"
    save_file(path, {"w": np.ones(3)}, {"v": 1})
    monkeypatch.setattr(os, where.split(".")[1], _boom)
    with pytest.raises(OSError, match="disk on fire"):
        save_file(path, {"w": np.zeros(1000)}, {"v": 2})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    out, meta = load_file(path)
    np.testing.assert_array_equal(out["w"], np.ones(3))
    assert meta == {"v": 1}


def test_an_interrupt_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save_tree(path, {"w": np.ones(3)})
    real = ser._write_array

    def half_then_interrupt(f, arr):
        real(f, arr[: arr.size // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(ser, "_write_array", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_tree(path, {"w": np.zeros(1000)})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    np.testing.assert_array_equal(load_tree(path)["w"], np.ones(3))


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", _boom)
    with pytest.raises(OSError, match="disk on fire"):
        save_file(tmp_path / "new.safetensors", {"w": np.ones(3)})
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_file_modes(tmp_path):
    old_umask = os.umask(0o022)
    try:
        save_file(tmp_path / "new.safetensors", {"w": np.ones(3)})
    finally:
        os.umask(old_umask)
    assert os.stat(tmp_path / "new.safetensors").st_mode & 0o777 == 0o644  # like open(..., "w")
    path = tmp_path / "old.safetensors"
    save_file(path, {"w": np.ones(3)})
    os.chmod(path, 0o600)
    save_file(path, {"w": np.zeros(3)})
    assert os.stat(path).st_mode & 0o777 == 0o600  # an existing file keeps its mode


def test_save_replaces_the_old_contents(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file(path, {"a": np.ones(3)})
    save_file(str(path), {"b": np.zeros(2)})
    assert list(load_file(str(path))[0]) == ["b"]


# ----------------------------------------------------------------------------- pytrees


def _assert_same_tree(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_tree(x, y)
    elif isinstance(a, np.ndarray):
        _same_bits(a, b)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


TREE = {
    "fc1": {"weight": np.ones((3, 2), np.float32), "bias": np.zeros(3, np.float32)},
    "layers": [
        {"weight": np.arange(4, dtype=np.float64).reshape(2, 2), "bias": None},
        (np.array([1, 2], dtype=np.int64), np.array(True), np.zeros((0, 2), np.float16)),
    ],
    "empty": {"d": {}, "l": [], "t": ()},
    "hparams": {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "nan": math.nan,
        "inf": -math.inf,
        "steps": 10**30,
        "nesterov": False,
        "name": "sgd",
    },
    "none": None,
}


def test_save_tree_round_trip(tmp_path):
    save_tree(tmp_path / "t.safetensors", TREE, metadata={"epoch": 4})
    _assert_same_tree(TREE, load_tree(tmp_path / "t.safetensors"))
    assert load_file(tmp_path / "t.safetensors")[1] == {"epoch": 4}


def test_save_tree_names_tensors_by_their_pytree_paths(tmp_path):
    save_tree(tmp_path / "t.safetensors", TREE)
    expected = {p for p, leaf in tree.leaves_with_path(TREE) if isinstance(leaf, np.ndarray)}
    theirs = safetensors.numpy.load_file(tmp_path / "t.safetensors")
    assert set(theirs) == expected
    assert "fc1.weight" in expected and "layers.1.0" in expected
    for p, leaf in tree.leaves_with_path(TREE):
        if isinstance(leaf, np.ndarray):
            _same_bits(leaf, theirs[p])


def test_save_tree_keeps_int_keys_and_dict_order(tmp_path):
    optimizer_state = {
        "state": {1: {"step": np.array(3.0)}, 0: {"step": np.array(5.0)}},
        "param_groups": [{"lr": 0.1, "params": [0, 1]}],
        "z": 1,
        "a": 2,
    }
    save_tree(tmp_path / "o.safetensors", optimizer_state)
    out = load_tree(tmp_path / "o.safetensors")
    _assert_same_tree(optimizer_state, out)
    assert list(out["state"]) == [1, 0] and list(out) == ["state", "param_groups", "z", "a"]


@pytest.mark.parametrize("root", [np.arange(3), None, 3, 2.5, "x", True, [], {}, ()], ids=repr)
def test_save_tree_roots(tmp_path, root):
    save_tree(tmp_path / "r.safetensors", root)
    _assert_same_tree(root, load_tree(tmp_path / "r.safetensors"))


def test_load_tree_onto_a_backend(tmp_path):
    save_tree(tmp_path / "t.safetensors", {"w": np.ones(2, np.float32), "n": [1, None]})
    out = load_tree(tmp_path / "t.safetensors", backend="strict")
    assert backend.backend_name(out["w"]) == "strict"
    assert out["n"] == [1, None]
    np.testing.assert_array_equal(backend.to_numpy(out["w"]), np.ones(2))
    flat_path = tmp_path / "flat.safetensors"
    save_file(flat_path, {"a": np.ones(2)})
    assert backend.backend_name(load_tree(flat_path, backend="strict")["a"]) == "strict"
    assert isinstance(load_tree(flat_path, backend="numpy")["a"], np.ndarray)
    with pytest.raises(ValueError, match=r"load_tree: unknown backend 'tpu'"):
        load_tree(flat_path, backend="tpu")


def test_save_tree_saves_arrays_of_any_backend(tmp_path):
    t = {"w": backend.device_put(np.arange(3.0), "strict")}
    save_tree(tmp_path / "t.safetensors", t)
    np.testing.assert_array_equal(load_tree(tmp_path / "t.safetensors")["w"], np.arange(3.0))


Point = collections.namedtuple("Point", ["x", "y"])


@attrs.define
class Params:
    w: np.ndarray


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (
            {"p": Point(1, 2)},
            TypeError,
            r"save_tree: cannot save a Point at 'p'; .*convert a namedtuple with \._asdict\(\)",
        ),
        ({"p": [Params(np.ones(2))]}, TypeError, r"cannot save a Params at 'p\.0'.*attrs\.asdict"),
        ({"s": {1, 2}}, TypeError, r"cannot save a set at 's'"),
        (
            collections.OrderedDict(a=np.ones(2)),
            TypeError,
            r"cannot save a OrderedDict at 'the root'.*dict\(\.\.\.\)",
        ),
        ({"c": 1j}, TypeError, r"cannot save a complex at 'c'"),
        ({"b": b"x"}, TypeError, r"cannot save a bytes at 'b'"),
        ({"o": object()}, TypeError, r"cannot save a object at 'o'"),
        (
            {(1, 2): np.ones(2)},
            TypeError,
            r"the dict at 'the root' has the key \(1, 2\) of type tuple; keys must be str or int",
        ),
        ({"a": {True: 1}}, TypeError, r"the dict at 'a' has the key True of type bool"),
        ({"a": {1.5: 1}}, TypeError, r"has the key 1.5 of type float"),
        (
            {"a.b": np.ones(2), "a": {"b": np.zeros(2)}},
            ValueError,
            r"two leaves have the path 'a\.b'",
        ),
        ({1: np.ones(2), "1": np.zeros(2)}, ValueError, r"two leaves have the path '1'"),
        ({"__metadata__": np.ones(2)}, ValueError, r"'__metadata__' is reserved"),
        (
            {"a": np.zeros(2, np.complex128)},
            TypeError,
            r"save_tree: tensor 'a' has dtype complex128",
        ),
    ],
    ids=lambda v: type(v).__name__,
)
def test_save_tree_rejects_what_it_cannot_save(tmp_path, bad, error, match):
    with pytest.raises(error, match=match):
        save_tree(tmp_path / "t.safetensors", bad)
    assert os.listdir(tmp_path) == []


def test_save_tree_depth_limit(tmp_path):
    deep = np.ones(1)
    for _ in range(100):
        deep = [deep]
    save_tree(tmp_path / "ok.safetensors", deep)  # 100 levels are fine
    _assert_same_tree(deep, load_tree(tmp_path / "ok.safetensors"))
    with pytest.raises(ValueError, match=r"nested more than 100 levels deep"):
        save_tree(tmp_path / "deep.safetensors", [deep])


def test_save_tree_bad_metadata(tmp_path):
    with pytest.raises(TypeError, match=r"save_tree: metadata must be a dict or None"):
        save_tree(tmp_path / "t.safetensors", {}, metadata=[1])


def _tree_file(spec, tensors=None) -> bytes:
    tensors = {"a": np.ones(2, np.float32)} if tensors is None else tensors
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.safetensors")
        save_file(path, tensors)
        with open(path, "rb") as f:
            raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"]["funcnn.tree"] = spec if isinstance(spec, str) else json.dumps(spec)
    return _raw_file(header, raw[8 + n :])


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("{nope", r"the structure is not valid JSON"),
        ([1], r"expected \{'version': 1, 'tree': \.\.\.\}"),
        ({"version": 2, "tree": None}, r"expected \{'version': 1"),
        ({"version": 1, "tree": None, "x": 1}, r"expected \{'version': 1"),
        (
            {"version": 1, "tree": ["array", "missing"]},
            r"it names the tensor 'missing', which the file does not hold",
        ),
        (
            {"version": 1, "tree": ["list", [["array", "a"], ["array", "a"]]]},
            r"it names the tensor 'a' twice",
        ),
        ({"version": 1, "tree": ["int", 3]}, r"the tensors \['a'\] are not in the structure"),
        ({"version": 1, "tree": ["set", [["array", "a"]]]}, r"unknown tag or bad value"),
        ({"version": 1, "tree": {"a": 1}}, r"not a tagged list"),
        (
            {"version": 1, "tree": ["dict", ["x"], []]},
            r"a dict node needs as many str or int keys as children",
        ),
        ({"version": 1, "tree": ["dict", [True], [["array", "a"]]]}, r"str or int keys"),
        (
            {"version": 1, "tree": ["dict", ["x", "x"], [["array", "a"], None]]},
            r"a dict node repeats a key",
        ),
        (
            {"version": 1, "tree": ["dict", {"x": 1}]},
            r"a dict node must be \['dict', \[keys\.\.\.\], \[children\.\.\.\]\]",
        ),
        (
            {"version": 1, "tree": ["list", ["array", "a"], 3]},
            r"a list node must be \['list', \[children\.\.\.\]\]",
        ),
        ({"version": 1, "tree": ["float", "one"]}, r"'one' is not a float"),
        ({"version": 1, "tree": ["int", 1.5]}, r"unknown tag or bad value"),
        ({"version": 1, "tree": ["array"]}, r"a 'array' node has 0 values, expected 1"),
        (
            {"version": 1, "tree": json.loads("[" * 150 + '"array", "a"' + "]" * 150)},
            r"not a tagged list|nested more than 100",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_load_tree_rejects_malformed_structures(tmp_path, spec, match):
    path = tmp_path / "t.safetensors"
    path.write_bytes(_tree_file(spec))
    with pytest.raises(
        CheckpointError,
        match=r"load_tree: .* holds a malformed tree structure: .*(?:" + match + ")",
    ):
        load_tree(path)
    load_file(path)  # the tensors themselves are fine


def test_load_tree_structure_nesting_limit(tmp_path):
    spec = ["array", "a"]
    for _ in range(101):
        spec = ["list", [spec]]
    path = tmp_path / "t.safetensors"
    path.write_bytes(_tree_file({"version": 1, "tree": spec}))
    with pytest.raises(CheckpointError, match=r"nested more than 100 levels deep"):
        load_tree(path)
    path.write_bytes(_tree_file('{"version": 1, "tree": ' + "[" * 100_000 + "]" * 100_000 + "}"))
    with pytest.raises(CheckpointError, match=r"the structure is nested too deeply"):
        load_tree(path)
