"""What the bulk and paged calls send and how their answers read, for every driver:
argument checks, each item's encoded op, the callbacks' views of a committed
transaction, get_many's requests and results, and the rules of paged range reads.

Each write op is encoded as a one-op TxnRequest: concatenated, they are the chunk's
TxnRequest (protobuf appends repeated fields), and each one's size is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from .. import codec
from ..results import KVMetadata
from . import ops
from .bulk_plan import Chunk

ValueMeta = Tuple[bytes, KVMetadata]
PrevKvCallback = Callable[[bytes, Optional[bytes], Optional[KVMetadata]], None]
Entry = Tuple[bytes, bytes]

#: etcd's --max-request-bytes default is 1.5 MiB; leave room for the raft envelope.
DEFAULT_MAX_TXN_BYTES = 1_400_000
#: etcd's --max-txn-ops default.
DEFAULT_OPS_PER_TXN = 128

#: Revision bounds applied to each page (etcd ignores a limit when they are set).
FILTERS = ("min_mod_revision", "max_mod_revision", "min_create_revision",
           "max_create_revision")


def check_count(value: Any, name: str) -> int:
    """``value`` (an int >= 1).

    :raises TypeError: not an int. :raises ValueError: below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1")
    return value


def check_settings(ops_per_txn: int, max_txn_bytes: int, window: int) -> None:
    """:raises TypeError, ValueError: a setting is not an int >= 1."""
    check_count(ops_per_txn, "ops_per_txn")
    check_count(max_txn_bytes, "max_txn_bytes")
    check_count(window, "window")


def check_prev_kv(prev_kv: Any) -> None:
    """:raises TypeError: ``prev_kv=True`` (it takes a callable)."""
    if isinstance(prev_kv, bool) and prev_kv:
        raise TypeError("prev_kv takes a callable(key, value, metadata) that receives "
                        "each previous value")


def opt_revision(revision: Optional[int]) -> int:
    """A revision argument (None: 0, the latest)."""
    return ops.optional_count(revision, "revision")


# -- each item's encoded op ---------------------------------------------------------

def put_entry(item: Any, lease_id: int, prev_kv: bool) -> Entry:
    """``(key, encoded one-op TxnRequest)`` of a ``(key, value)`` item.

    :raises TypeError, ValueError: a bad item.
    """
    key, value = item
    fields = ops.put_fields(key, value, lease_id, prev_kv)
    return fields[0], codec.encode_txn_request((), [(codec.OP_PUT, fields)])


def delete_entry(key: Any) -> Entry:
    """``(key, encoded one-op TxnRequest)`` deleting ``key``."""
    fields = ops.delete_fields(key)
    return fields[0], codec.encode_txn_request((), [(codec.OP_DELETE_RANGE, fields)])


def key_entry(key: Any) -> Entry:
    """``(key, placeholder)`` of a key to read: Range ops are encoded when sent (they
    carry the revision known by then); the placeholder is as long as the op, for
    chunking."""
    data = ops.key_bytes(key)
    return data, data + b"\0" * 32


def put_entries(items: Any, lease_id: int, prev_kv: bool) -> Iterator[Entry]:
    """:func:`put_entry` of each item, read lazily."""
    encode, op = codec.encode_txn_request, codec.OP_PUT
    for key, value in items:
        fields = ops.put_fields(key, value, lease_id, prev_kv)
        yield fields[0], encode((), [(op, fields)])


def delete_entries(keys: Any) -> Iterator[Entry]:
    """:func:`delete_entry` of each key, read lazily."""
    for key in keys:
        yield delete_entry(key)


def key_entries(keys: Any) -> Iterator[Entry]:
    """:func:`key_entry` of each key, read lazily."""
    for key in keys:
        yield key_entry(key)


def join(chunk: Chunk) -> bytes:
    """The TxnRequest of a chunk of write entries."""
    return b"".join(chunk.parts)


# -- committed transactions, as the callbacks see them ------------------------------

def report_prev_kvs(chunk: Chunk, response: Any, prev_kv: PrevKvCallback) -> None:
    """Call ``prev_kv(key, previous value or None, previous KVMetadata or None)`` for
    each put of a committed chunk, in input order."""
    for key, op in zip(chunk.keys, response.responses):
        put = op.response_put
        if put.HasField("prev_kv"):
            kv = put.prev_kv
            prev_kv(key, kv.value, kv)  # a KeyValue is its own KVMetadata
        else:
            prev_kv(key, None, None)


def deleted_count(response: Any) -> int:
    """How many keys a committed delete chunk removed."""
    return sum(op.response_delete_range.deleted for op in response.responses)


# -- get_many -------------------------------------------------------------------------

def get_many_request(chunk: Chunk, revision: int, serializable: bool) -> bytes:
    """The TxnRequest reading a chunk's keys at ``revision`` (0: the latest)."""
    return codec.encode_txn_request((), [
        (codec.OP_RANGE, ops.range_fields(key, None, revision=revision,
                                          serializable=serializable))
        for key in chunk.keys])


def get_many_results(response: Any) -> List[Union[ValueMeta, Tuple[None, None]]]:
    """``(value, KVMetadata)`` or ``(None, None)`` per key of a get_many TxnResponse."""
    results: List[Union[ValueMeta, Tuple[None, None]]] = []
    for op in response.responses:
        kvs = op.response_range.kvs
        results.append((kvs[0].value, kvs[0]) if kvs else (None, None))
    return results


# -- paged reads ----------------------------------------------------------------------

@dataclass
class PagePlan:
    """A checked paged read: ``[start, end)``, ``page_size`` keys per request, at
    ``revision`` (0: the first page's), the revision ``bounds`` (min/max mod, min/max
    create; 0: none) applied to each page, and the other Range ``options``.
    :meth:`advance` moves ``start`` (and pins ``revision``) page by page."""

    start: bytes
    end: bytes
    page_size: int
    revision: int
    bounds: List[int]
    timeout: Any
    options: Dict[str, Any]

    def advance(self, response: Any) -> bool:
        """Take a page's RangeResponse: pin the revision to the first page's and move
        ``start`` past the page; True when another page follows."""
        self.revision = self.revision or response.header.revision
        kvs = response.kvs
        if not kvs or not response.more:
            return False
        self.start = kvs[-1].key + b"\0"
        return True

    def filter(self, kvs: Any) -> Any:
        """The key-values of a page within the revision bounds."""
        if not any(self.bounds):
            return kvs
        min_mod, max_mod, min_create, max_create = self.bounds
        return [kv for kv in kvs
                if (not min_mod or kv.mod_revision >= min_mod)
                and (not max_mod or kv.mod_revision <= max_mod)
                and (not min_create or kv.create_revision >= min_create)
                and (not max_create or kv.create_revision <= max_create)]


def page_plan(start: bytes, end: bytes, page_size: int, options: Dict[str, Any],
              unset_timeout: Any) -> PagePlan:
    """Check a paged read's arguments (``options`` is consumed).

    :raises ValueError: ``page_size`` < 1, a sort other than ascending by key,
        ``limit``/``count_only``, or a bad Range option.
    :raises TypeError: a bad option type.
    """
    check_count(page_size, "page_size")
    for name in ("limit", "count_only"):
        if options.pop(name, None):
            raise ValueError(f"{name} can't be used with paged reads")
    # etcd sorts a whole range (ignoring the limit) for any other order: paging
    # would cost O(n^2) on the server.
    if options.pop("sort_order", None) not in (None, "none", "ascend"):
        raise ValueError("paged reads are in ascending key order only")
    if options.pop("sort_target", None) not in (None, "key"):
        raise ValueError("paged reads are in key order; sort_target must be 'key'")
    bounds = [opt_revision(options.pop(name, None)) for name in FILTERS]
    timeout = options.pop("timeout", unset_timeout)
    revision = opt_revision(options.pop("revision", None))
    ops.range_fields(start, end, **options)  # reject bad options before iterating
    return PagePlan(start, end, page_size, revision, bounds, timeout, options)
