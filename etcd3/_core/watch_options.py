"""A watch's user-facing options checked and turned into a :class:`WatchSpec` (no I/O).

Shared by the threaded (:mod:`etcd3.watch`) and asyncio (:mod:`etcd3.aio.watch`)
clients, so both accept and refuse exactly the same arguments.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

from .. import codec
from ..etcdrpc import rpc_pb2 as pb
from .watch_state import WatchSpec

KeyType = Union[str, bytes]

_FILTER_NAMES = {"noput": pb.WatchCreateRequest.NOPUT,
                 "nodelete": pb.WatchCreateRequest.NODELETE}


def watch_filters(filters: Any) -> Tuple[int, ...]:
    """``filters`` (``'noput'``/``'nodelete'``, the ``WatchCreateRequest`` values, one
    or a list) as the sorted filter values of a create request.

    :raises ValueError: an unknown filter.
    """
    if filters is None:
        return ()
    if isinstance(filters, (str, int)):
        filters = [filters]
    result: set[int] = set()
    for item in filters:
        if isinstance(item, str):
            try:
                result.add(_FILTER_NAMES[item.lower().replace("_", "")])
            except KeyError:
                raise ValueError(f"unknown watch filter {item!r}; use 'noput' or "
                                 "'nodelete'") from None
        elif item in _FILTER_NAMES.values():
            result.add(int(item))
        else:
            raise ValueError(f"unknown watch filter {item!r}")
    return tuple(sorted(result))


def watch_spec(key: KeyType, range_end: Optional[KeyType] = None, filters: Any = None,
               prev_kv: bool = False, progress_notify: bool = False,
               fragment: bool = False) -> WatchSpec:
    """What a watch selects (equal specs may share one server watch).

    :raises TypeError: ``key``/``range_end`` not str or bytes.
    :raises ValueError: an unknown filter.
    """
    key_b = codec.to_bytes(key)
    return WatchSpec(key=key_b,
                     range_end=codec.to_bytes(range_end, "range_end") if range_end else b"",
                     filters=watch_filters(filters), prev_kv=bool(prev_kv),
                     progress_notify=bool(progress_notify), fragment=bool(fragment))


def start_revision_of(start_revision: Optional[int]) -> Optional[int]:
    """``start_revision`` checked (None or 0: from now).

    :raises TypeError: not an int. :raises ValueError: negative.
    """
    if start_revision is None:
        return None
    if isinstance(start_revision, bool) or not isinstance(start_revision, int):
        raise TypeError("start_revision must be an int")
    if start_revision < 0:
        raise ValueError("start_revision must be >= 0")
    return start_revision or None


def prefix_end(key_prefix: KeyType) -> bytes:
    """The ``range_end`` that makes a watch cover every key starting with ``key_prefix``."""
    return codec.prefix_range_end(codec.to_bytes(key_prefix, "prefix"))


def checked_unreachable_timeout(value: Any) -> Optional[float]:
    """``value`` as an ``unreachable_timeout`` (seconds > 0, or None).

    :raises ValueError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("unreachable_timeout must be a number of seconds > 0, or None")
    return float(value)


def checked_max_queue(max_queue: Any) -> Optional[int]:
    """``max_queue`` checked: a positive int or None.

    :raises ValueError: anything else.
    """
    if max_queue is not None and (isinstance(max_queue, bool)
                                  or not isinstance(max_queue, int) or max_queue < 1):
        raise ValueError("max_queue must be a positive int or None")
    return max_queue


def confirm_timeout(client_timeout: Optional[float],
                    confirm_within: Optional[float]) -> Optional[float]:
    """How long etcd has to confirm a new watch: the client timeout, or
    ``confirm_within`` when shorter (a one-shot wait never outlasts its own timeout)."""
    if confirm_within is not None and (client_timeout is None
                                       or confirm_within < client_timeout):
        return confirm_within
    return client_timeout
