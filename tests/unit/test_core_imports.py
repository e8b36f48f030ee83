"""The sans-I/O cores import no I/O, thread or gRPC machinery (a driver brings it)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Set

import pytest

CORE = Path(__file__).resolve().parents[2] / "etcd3" / "_core"
FORBIDDEN = {"grpc", "threading", "queue", "concurrent", "asyncio", "socket", "time",
             "selectors", "etcd3._sync", "etcd3._grpc", "etcd3.exceptions"}
ENGINE_CORES = ["watch_state.py", "watch_actions.py", "watch_core.py",
                "keepalive_schedule.py", "read_batch_policy.py"]


def imported(path: Path) -> Set[str]:
    """Absolute names of every module ``path`` imports (relative ones resolved)."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["etcd3", "_core"][:3 - node.level]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("name", ENGINE_CORES)
def test_engine_core_is_sans_io(name: str) -> None:
    bad = {module for module in imported(CORE / name)
           if any(module == f or module.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{name} imports {sorted(bad)}"
