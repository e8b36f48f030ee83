"""Picks the codec implementation: compiled (``etcd3._speedups``) or pure Python.

Set ``ETCD3_NO_EXTENSIONS=1`` before import to force the pure one.
:data:`IMPLEMENTATION` is ``"compiled"`` or ``"pure"``. Other modules use the codec
only through this module.
"""

from __future__ import annotations

import os

from . import _codec_py

IMPLEMENTATION: str

if os.environ.get("ETCD3_NO_EXTENSIONS", "").strip() not in ("", "0"):
    _impl = _codec_py
    IMPLEMENTATION = "pure"
else:
    try:
        from ._speedups import _codec as _impl  # type: ignore[no-redef]
        IMPLEMENTATION = "compiled"
    except ImportError:  # not compiled (no C compiler at install time)
        _impl = _codec_py
        IMPLEMENTATION = "pure"

to_bytes = _impl.to_bytes
prefix_range_end = _impl.prefix_range_end

__all__ = ["IMPLEMENTATION", "to_bytes", "prefix_range_end"]
