"""Which read-only Txns etcd may crash on, and how to recognise one on the wire.

etcd 3.5.0 to 3.5.4 panic ("unexpected error during txn") when a read-only Txn's
context ends (its deadline passes, or it is cancelled) while it is being applied
(etcd issue #14110, fixed in 3.5.5); a plain Range is safe. See
:mod:`etcd3._sync.transport` for what the client does about it.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional, Tuple


def txn_unsafe_version(version: Tuple[int, ...]) -> bool:
    """True for the etcd versions that panic when a read-only Txn's context ends while
    it is applied (3.5.0 to 3.5.4; etcd issue #14110)."""
    return (3, 5, 0) <= tuple(version[:3]) < (3, 5, 5)


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def is_read_only_txn(request: Any) -> bool:
    """True when the TxnRequest ``request`` (wire bytes or a protobuf message) has only
    range ops in success and failure: what etcd calls a read-only Txn (served without
    raft; the kind etcd 3.5.0-3.5.4 crash on when its context ends)."""
    data = request if type(request) is bytes else request.SerializeToString()
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _varint(data, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 2:
                length, pos = _varint(data, pos)
                # success / failure (2, 3): a RequestOp, one field set; 1: request_range
                if field in (2, 3) and (length == 0 or _varint(data, pos)[0] >> 3 != 1):
                    return False
                pos += length
            elif wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                return False
    except IndexError:  # truncated: the server will refuse it anyway
        return False
    return True


def parse_version(text: str) -> Optional[Tuple[int, ...]]:
    """(3, 5, 1) from "3.5.1" (suffixes such as "-rc.0" ignored); None if unreadable."""
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            return None
        parts.append(int(digits))
    return tuple(parts) if len(parts) == 3 else None
