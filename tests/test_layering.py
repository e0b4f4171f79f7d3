"""The architecture's two rules, checked on the source: one array seam, one engine."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Inside funcnn only the backend seam touches numpy/cupy; the checkpoint reader and writer
# also use NumPy, for host-side bytes only (files are read into host arrays, then moved).
ARRAY_SEAM = {"funcnn/backend.py", "funcnn/_serialization.py"}


def _sources(package: str) -> list[pathlib.Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _sources("funcnn"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_backend_seam_imports_numpy_or_cupy(path):
    rel = str(path.relative_to(ROOT))
    if rel in ARRAY_SEAM:
        return
    direct = _imported_modules(path) & {"numpy", "cupy", "cupyx"}
    assert not direct, f"{rel} imports {sorted(direct)}; array math goes through funcnn.backend"


@pytest.mark.parametrize("path", _sources("funcnn_modules"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_modules_face_defines_no_derivatives(path):
    """funcnn_modules calls funcnn; it never registers a VJP rule or a primitive of its own."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            assert name not in {"defvjp", "defvjp_joint", "primitive", "Primitive", "custom_vjp"}, (
                f"{path.relative_to(ROOT)}:{node.lineno} calls {name}: gradients belong in funcnn"
            )
