"""Every package directory ships in the wheel (pyproject lists packages by hand)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed_in_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(etcd3(?:\.[A-Za-z_]+)*)"',
                            text.split("packages = [", 1)[1].split("]", 1)[0]))
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "etcd3").rglob("__init__.py")}
    assert found - listed == set()
    assert "etcd3.aio" in listed


def test_test_modules_have_distinct_names() -> None:
    """pytest imports test modules by basename (the test directories are not
    packages): two files of one name stop the whole collection."""
    tests = Path(__file__).resolve().parents[1]
    names = [p.name for p in tests.glob("*/test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
