"""Type stub for the compiled codec (``_codec.pyx``).

It has the same public API as :mod:`etcd3._codec_py`, whose docstrings are the
reference; only the result classes are distinct (compiled) types.
"""

from typing import Any, ClassVar, Iterable, List, Optional, Sequence, Tuple, Union, final

MAX_DEPTH: int
OP_RANGE: int
OP_PUT: int
OP_DELETE_RANGE: int
OP_TXN: int

class ResponseHeader:
    cluster_id: int
    member_id: int
    revision: int
    raft_term: int
    def __init__(self, cluster_id: int = ..., member_id: int = ..., revision: int = ...,
                 raft_term: int = ...) -> None: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

class KVMetadata:
    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease_id: int
    response_header: Any
    def __init__(self, key: bytes, create_revision: int, mod_revision: int, version: int,
                 lease_id: int, response_header: Any) -> None: ...
    @classmethod
    def from_pb(cls, kv: Any, header: Any) -> KVMetadata: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class KeyValue(KVMetadata):
    value: bytes
    def __init__(self, key: bytes = ..., create_revision: int = ..., mod_revision: int = ...,
                 version: int = ..., value: bytes = ..., lease: int = ...) -> None: ...
    @property
    def lease(self) -> int: ...
    @lease.setter
    def lease(self, lease: int) -> None: ...

class RangeResponse:
    header: ResponseHeader
    kvs: List[KeyValue]
    more: bool
    count: int
    def __init__(self, header: Optional[ResponseHeader] = ...,
                 kvs: Optional[List[KeyValue]] = ..., more: bool = ...,
                 count: int = ...) -> None: ...

class PutResponse:
    header: ResponseHeader
    def __init__(self, header: Optional[ResponseHeader] = ...,
                 prev_kv: Optional[KeyValue] = ...) -> None: ...
    @property
    def prev_kv(self) -> KeyValue: ...
    def HasField(self, name: str) -> bool: ...  # noqa: N802

class DeleteRangeResponse:
    header: ResponseHeader
    deleted: int
    prev_kvs: List[KeyValue]
    def __init__(self, header: Optional[ResponseHeader] = ..., deleted: int = ...,
                 prev_kvs: Optional[List[KeyValue]] = ...) -> None: ...

class TxnResponse:
    header: ResponseHeader
    succeeded: bool
    responses: List[ResponseOp]
    def __init__(self, header: Optional[ResponseHeader] = ..., succeeded: bool = ...,
                 responses: Optional[List[ResponseOp]] = ...) -> None: ...

class ResponseOp:
    kind: int
    response: Any
    def __init__(self, kind: int = ..., response: Any = ...) -> None: ...
    @property
    def response_range(self) -> RangeResponse: ...
    @property
    def response_put(self) -> PutResponse: ...
    @property
    def response_delete_range(self) -> DeleteRangeResponse: ...
    @property
    def response_txn(self) -> TxnResponse: ...
    def WhichOneof(self, group: str) -> Optional[str]: ...  # noqa: N802

class WireEvent:
    PUT: ClassVar[int]
    DELETE: ClassVar[int]
    type: int
    kv: KeyValue
    def __init__(self, type: int = ..., kv: Optional[KeyValue] = ...,
                 prev_kv: Optional[KeyValue] = ...) -> None: ...
    @property
    def prev_kv(self) -> KeyValue: ...
    def HasField(self, name: str) -> bool: ...  # noqa: N802

class WireWatchResponse:
    header: ResponseHeader
    watch_id: int
    created: bool
    canceled: bool
    compact_revision: int
    cancel_reason: str
    fragment: bool
    events: List[Any]
    def __init__(self, header: Optional[ResponseHeader] = ..., watch_id: int = ...,
                 created: bool = ..., canceled: bool = ..., compact_revision: int = ...,
                 cancel_reason: str = ..., fragment: bool = ...,
                 events: Optional[List[Any]] = ...) -> None: ...

def to_bytes(value: Union[str, bytes], what: str = ...) -> bytes: ...
def prefix_range_end(prefix: bytes) -> bytes: ...
def range_pairs(kvs: Sequence[KeyValue]) -> List[Tuple[bytes, KVMetadata]]: ...
def encode_range_request(key: bytes, range_end: Optional[bytes] = ..., limit: int = ...,
                         revision: int = ..., sort_order: int = ..., sort_target: int = ...,
                         serializable: bool = ..., keys_only: bool = ...,
                         count_only: bool = ..., min_mod_revision: int = ...,
                         max_mod_revision: int = ..., min_create_revision: int = ...,
                         max_create_revision: int = ...) -> bytes: ...
def encode_put_request(key: bytes, value: bytes, lease: int = ..., prev_kv: bool = ...,
                       ignore_value: bool = ..., ignore_lease: bool = ...) -> bytes: ...
def encode_delete_range_request(key: bytes, range_end: Optional[bytes] = ...,
                                prev_kv: bool = ...) -> bytes: ...
def encode_txn_request(compares: Iterable[Any], success: Iterable[Any] = ...,
                       failure: Iterable[Any] = ...) -> bytes: ...
def encode_watch_create_request(key: bytes, range_end: Optional[bytes] = ...,
                                start_revision: int = ..., progress_notify: bool = ...,
                                filters: Iterable[int] = ..., prev_kv: bool = ...,
                                watch_id: int = ..., fragment: bool = ...) -> bytes: ...
def encode_watch_cancel_request(watch_id: int) -> bytes: ...
def encode_watch_progress_request() -> bytes: ...
def decode_range_response(data: bytes) -> RangeResponse: ...
def decode_put_response(data: bytes) -> PutResponse: ...
def decode_delete_range_response(data: bytes) -> DeleteRangeResponse: ...
def decode_txn_response(data: bytes) -> TxnResponse: ...
class EventLayout:
    put_type: type
    delete_type: type
    def __init__(self, put_type: type, delete_type: type) -> None: ...
    def __getitem__(self, index: int) -> type: ...
    def __len__(self) -> int: ...

def event_layout(put_type: type, delete_type: type) -> EventLayout: ...
def decode_watch_response(data: bytes, event_types: Optional[Sequence[Any]] = ...
                          ) -> WireWatchResponse: ...
