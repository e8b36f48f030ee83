"""Packaging: wheels carry the compiled codec; no compiler still installs (pure codec)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source_copy() -> Iterator[Path]:
    """A copy of the source tree without build products (so each build starts clean)."""
    tmp = Path(tempfile.mkdtemp(prefix="etcd3-build-"))
    ignore = shutil.ignore_patterns("*.so", "_codec.c", "build", "dist", "*.egg-info",
                                    ".venv", "venv", "__pycache__", ".git", "docs",
                                    ".hypothesis", ".pytest_cache")
    shutil.copytree(ROOT, tmp / "src", ignore=ignore)
    yield tmp / "src"
    shutil.rmtree(tmp, ignore_errors=True)


def _build_wheel(src: Path, env_extra: Dict[str, str]) -> Tuple[int, str, list]:
    out = Path(tempfile.mkdtemp(prefix="etcd3-wheel-"))
    for stale in ("build", "etcd3.egg-info"):
        shutil.rmtree(src / stale, ignore_errors=True)
    env = dict(os.environ)
    env.pop("ETCD3_NO_EXTENSIONS", None)
    env.update(env_extra)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(src)],
        capture_output=True, text=True, env=env, timeout=300)
    names = []
    for wheel in out.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
    shutil.rmtree(out, ignore_errors=True)
    return result.returncode, result.stdout + result.stderr, names


def test_wheel_contains_the_compiled_codec(source_copy: Path) -> None:
    code, output, names = _build_wheel(source_copy, {"ETCD3_REQUIRE_EXTENSIONS": "1"})
    assert code == 0, output
    assert any(n.startswith("etcd3/_speedups/_codec") and n.endswith((".so", ".pyd"))
               for n in names), names
    assert "etcd3/py.typed" in names


def test_no_compiler_falls_back_to_pure_python(source_copy: Path) -> None:
    code, output, names = _build_wheel(source_copy, {"CC": "/bin/false", "LDSHARED": "/bin/false"})
    assert code == 0, output
    assert not any(n.endswith((".so", ".pyd")) for n in names), names
    assert "etcd3/_core/codec_py.py" in names
    assert "pure-Python codec" in output


def test_required_extensions_make_a_missing_compiler_an_error(source_copy: Path) -> None:
    code, output, _ = _build_wheel(source_copy, {"CC": "/bin/false", "LDSHARED": "/bin/false",
                                                 "ETCD3_REQUIRE_EXTENSIONS": "1"})
    assert code != 0, output
