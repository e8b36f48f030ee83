"""Pure-Python codec: the reference behaviour the compiled twin must match.

Every public function here exists, with the same results and exceptions, in
``etcd3/_speedups/_codec.pyx``. Import through :mod:`etcd3.codec`, never directly.
"""

from __future__ import annotations

from typing import Union


def to_bytes(value: Union[str, bytes], what: str = "key") -> bytes:
    """``str`` -> its UTF-8 bytes; ``bytes`` (or bytearray/memoryview) -> bytes.

    :raises TypeError: any other type (the message names the type and ``what``).
    """
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def prefix_range_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix``.

    Trailing 0xff bytes are dropped and the last remaining byte incremented; an empty
    or all-0xff prefix gives ``b"\\0"`` (every key from ``prefix`` on), as etcd's
    ``clientv3.GetPrefixRangeEnd`` does.
    """
    if type(prefix) is not bytes:
        prefix = to_bytes(prefix, "prefix")
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"
