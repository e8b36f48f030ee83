"""python-etcd3's ``etcd3.utils`` helpers, kept so code that imports them still works."""

from __future__ import annotations

from typing import Any, Union

from . import codec
from ._core.ops import lease_to_id

__all__ = ["to_bytes", "prefix_range_end", "increment_last_byte", "lease_to_id"]


def to_bytes(maybe_bytestring: Union[str, bytes]) -> bytes:
    """``str`` -> UTF-8 bytes; bytes unchanged. :raises TypeError: other types."""
    return codec.to_bytes(maybe_bytestring, "value")


def prefix_range_end(prefix: Union[str, bytes]) -> bytes:
    """The range end selecting every key that starts with ``prefix``."""
    return codec.prefix_range_end(codec.to_bytes(prefix, "prefix"))


def increment_last_byte(byte_string: Any) -> bytes:
    """The least byte string greater than every string starting with ``byte_string``
    (python-etcd3's name; correct for trailing 0xff bytes, unlike python-etcd3's)."""
    return prefix_range_end(byte_string)
