"""The package's layering rules, read from the source (see docs/architecture.rst).

- ``etcd3._core`` is sans-I/O: no gRPC, threads, queues, sockets or event loops, and
  nothing from the drivers (``_sync``, ``_grpc``) or the public service modules. Only
  ``deadline.py`` reads the clock; every other core is handed the time.
- ``etcd3._grpc`` is shared by every gRPC driver: it never imports a driver.
- Nothing inside the package imports ``etcd3.client`` (the facade sits on top).
- ``etcd3.aio`` (the asyncio driver) starts no thread and uses none of the threaded
  driver's engines: it drives the same cores with tasks.
- No import cycles between modules, counting imports inside functions too (a lazy
  import only hides a cycle); imports under ``TYPE_CHECKING`` never run and are not
  counted.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "etcd3"

#: Modules a sans-I/O core may not import (prefix match on the dotted name).
CORE_FORBIDDEN = ("grpc", "threading", "_thread", "queue", "concurrent", "asyncio",
                  "socket", "selectors", "subprocess", "multiprocessing",
                  "etcd3._sync", "etcd3._grpc", "etcd3.client", "etcd3.pool",
                  "etcd3.testing")
#: Public modules a core may use: data types and the codec, never a service module.
CORE_ALLOWED_PUBLIC = ("etcd3.codec", "etcd3.events", "etcd3.exceptions",
                       "etcd3.results", "etcd3.etcdrpc", "etcd3._speedups", "etcd3._core")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def source_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
            if "etcdrpc" not in p.parts}


@functools.cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, runtime_only: bool) -> Iterator[ast.stmt]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif runtime_only and isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(ast.Module(body=node.orelse, type_ignores=[]), runtime_only)
        else:
            yield from _imports(node, runtime_only)


def imported_names(name: str, path: Path, runtime_only: bool,
                   known: Set[str]) -> Set[str]:
    """Dotted names ``name`` imports; ``from pkg import mod`` counts as ``pkg.mod``."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in _imports(_parse(path), runtime_only):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        assert isinstance(node, ast.ImportFrom)
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:
            candidate = f"{origin}.{alias.name}"
            found.add(candidate if candidate in known else origin)
    return found


def module_graph() -> Dict[str, Set[str]]:
    """Every module's runtime imports of other modules of the package."""
    modules = source_modules()
    known = set(modules)
    return {name: {m for m in imported_names(name, path, True, known)
                   if m in known and m != name}
            for name, path in modules.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules() -> None:
    # Package __init__ files re-export their children, which every submodule import
    # runs first; that is Python's package protocol, not a cycle between concerns.
    modules = source_modules()
    graph = {m: {d for d in deps if modules[d].name != "__init__.py"}
             for m, deps in module_graph().items() if modules[m].name != "__init__.py"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _layer_violations(prefix: str, forbidden: Tuple[str, ...],
                      allowed_public: Tuple[str, ...] = ()) -> List[str]:
    modules = source_modules()
    known = set(modules)
    bad = []
    for name, path in modules.items():
        if not (name == prefix or name.startswith(prefix + ".")):
            continue
        for imported in sorted(imported_names(name, path, False, known)):
            hit = any(imported == f or imported.startswith(f + ".") for f in forbidden)
            public_service = (allowed_public and imported.startswith("etcd3.")
                              and not imported.startswith(allowed_public))
            if hit or public_service:
                bad.append(f"{name} imports {imported}")
    return bad


def test_core_does_no_io_and_knows_no_driver() -> None:
    assert _layer_violations("etcd3._core", CORE_FORBIDDEN, CORE_ALLOWED_PUBLIC) == []


def test_only_the_deadline_reads_the_clock_in_core() -> None:
    clock = [v for v in _layer_violations("etcd3._core", ("time",))
             if not v.startswith("etcd3._core.deadline ")]
    assert clock == []


def test_grpc_layer_imports_no_driver() -> None:
    assert _layer_violations("etcd3._grpc", ("etcd3._sync", "etcd3.client")) == []


#: What the asyncio driver may not use: threads, and the threaded driver's engines
#: (it drives the same cores with tasks instead).
AIO_FORBIDDEN = ("threading", "_thread", "queue", "concurrent", "etcd3.client",
                 "etcd3._sync.transport", "etcd3._sync.watch_engine",
                 "etcd3._sync.keepalive", "etcd3._sync.read_batch", "etcd3._sync.pipeline",
                 "etcd3._sync.concurrency", "etcd3._sync.lifecycle", "etcd3._sync.base")


def test_the_asyncio_driver_runs_no_thread_and_no_threaded_engine() -> None:
    assert _layer_violations("etcd3.aio", AIO_FORBIDDEN) == []


@pytest.mark.parametrize("layer", ["etcd3._core", "etcd3._grpc", "etcd3._sync",
                                   "etcd3.aio"])
def test_nothing_below_the_facade_imports_the_client(layer: str) -> None:
    assert _layer_violations(layer, ("etcd3.client",)) == []


def test_the_rules_see_imports() -> None:
    graph = module_graph()
    assert "etcd3._sync.transport" in graph["etcd3.client"]
    assert "etcd3.exceptions" in graph["etcd3._grpc.errors"]
