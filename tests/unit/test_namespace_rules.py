"""The namespace key rules (etcd3._core.namespace): what goes on the wire for each key,
range and transaction, and what comes back, with both codecs, against etcd's own
protobuf messages; plus the view's coverage of the client's API."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcd3 import codec, events
from etcd3._core import ops
from etcd3._core.namespace import (
    AIO_PASSED_THROUGH,
    PASSED_THROUGH,
    REFUSED,
    KeySpace,
    namespace_prefix,
)
from etcd3.aio.client import Etcd3Client as AioClient
from etcd3.aio.namespace import NamespacedClient as AioView
from etcd3.client import Etcd3Client
from etcd3.etcdrpc import kv_pb2, rpc_pb2
from etcd3.namespace import NamespacedClient

IMPLS = {"pure": "etcd3._core.codec_py", "compiled": "etcd3._speedups._codec"}
SPACE = KeySpace("app/")
END = b"app0"  # the first key after every b"app/..."


@pytest.fixture(params=sorted(IMPLS), scope="module")
def impl(request: Any) -> Any:
    """Each codec module, loaded directly."""
    return importlib.import_module(IMPLS[request.param])


# -- the prefix ----------------------------------------------------------------------------

def test_the_prefix_is_str_or_bytes_and_not_empty() -> None:
    assert namespace_prefix("app/") == namespace_prefix(b"app/") == b"app/"
    assert KeySpace("é/").prefix == "é/".encode()
    with pytest.raises(ValueError, match="a namespace prefix must not be empty"):
        KeySpace("")
    with pytest.raises(TypeError, match="namespace prefix must be str or bytes, not int"):
        KeySpace(5)


@pytest.mark.parametrize("prefix,end", [(b"app/", b"app0"), (b"a\xff", b"b"),
                                        (b"\xff\xff", b"\0"), (b"\x00", b"\x01")])
def test_the_end_of_a_namespace_is_its_prefix_end(prefix: bytes, end: bytes) -> None:
    assert KeySpace(prefix).end == end


# -- keys and ranges -----------------------------------------------------------------------

def test_a_key_gets_the_prefix_and_must_not_be_empty() -> None:
    assert SPACE.key("k") == SPACE.key(b"k") == b"app/k"
    with pytest.raises(ValueError, match="key must not be empty"):
        SPACE.key("")
    with pytest.raises(TypeError, match="range_start must be str or bytes"):
        SPACE.range(None, "b")


def test_range_ends_follow_gos_prefix_interval() -> None:
    assert SPACE.range_end(None) is None        # a single key
    assert SPACE.range_end(b"") == b""          # a single key too
    assert SPACE.range_end(b"\0") == END        # "to the end": the namespace's end
    assert SPACE.range_end(b"z") == b"app/z"
    assert SPACE.range("a", "c") == (b"app/a", b"app/c")
    assert SPACE.range("a", "\0") == (b"app/a", END)
    assert KeySpace(b"\xff").range("a", "\0") == (b"\xffa", b"\0")


def test_prefixes_and_everything_stay_inside_the_namespace() -> None:
    assert SPACE.prefix_range("conf/") == (b"app/conf/", b"app/conf0")
    assert SPACE.prefix_range("") == SPACE.everything() == (b"app/\0", END)
    # A user prefix with no end ("\xff"): to the end of the namespace, not further.
    assert SPACE.prefix_range(b"\xff") == (b"app/\xff", END)
    with pytest.raises(TypeError, match="key_prefix must be str or bytes, not int"):
        SPACE.prefix_range(3)


def _inside(key: bytes, start: bytes, end: Optional[bytes]) -> bool:
    """Whether etcd's range ``[start, end)`` holds ``key`` (etcd's own rules)."""
    if not end:
        return key == start
    if end == b"\0":
        return key >= start
    return start <= key < end


def small(min_size: int, max_size: int) -> Any:
    """Byte strings over the bytes where range edges are (0x00, 0xff, ...)."""
    return st.lists(st.sampled_from([0, 1, 0x61, 0x62, 0xFE, 0xFF]), min_size=min_size,
                    max_size=max_size).map(bytes)


ends = st.one_of(st.none(), st.just(b""), st.just(b"\0"), small(1, 4))


@settings(max_examples=300, deadline=None)
@given(prefix=small(1, 3), start=small(1, 4), end=ends, key=small(1, 6))
def test_a_stored_range_holds_exactly_the_namespaces_keys_of_the_range(
        prefix: bytes, start: bytes, end: Optional[bytes], key: bytes) -> None:
    space = KeySpace(prefix)
    stored_start, stored_end = space.interval(start, end)
    # A key of the namespace is in the stored range iff it is in the user's range.
    assert _inside(prefix + key, stored_start, stored_end) == _inside(key, start, end)
    # No key outside the namespace is ever in a stored range.
    if not key.startswith(prefix):
        assert not _inside(key, stored_start, stored_end)


@settings(max_examples=200, deadline=None)
@given(prefix=small(1, 3), user_prefix=small(0, 3), key=small(1, 6))
def test_a_stored_prefix_range_holds_exactly_the_keys_with_that_prefix(
        prefix: bytes, user_prefix: bytes, key: bytes) -> None:
    space = KeySpace(prefix)
    start, end = space.prefix_range(user_prefix)
    assert _inside(prefix + key, start, end) == key.startswith(user_prefix)
    if not key.startswith(prefix):
        assert not _inside(key, start, end)
    assert not _inside(prefix, start, end)  # the prefix itself is not in it


# -- transactions --------------------------------------------------------------------------

def _txn_message(compare: Any, success: Any, failure: Any) -> Any:
    return rpc_pb2.TxnRequest.FromString(codec.encode_txn_request(
        *ops.txn_fields(compare, success, failure)))


def test_compares_and_ops_are_rewritten_and_the_originals_kept() -> None:
    t = ops
    compare = [t.Value("k") == "v", t.Mod("r", "\0") > 3, t.Version("s", "t") < 2]
    inner = t.Txn([t.Create("n") == 0], [t.Put("n", "1")], [t.Delete("n", "\0")])
    success = [t.Put("k", "v2", lease=7, prev_kv=True), t.Get("a", "c", limit=2), inner]
    failure = [t.Delete("d", prev_kv=True), t.Get("p", "\0", keys_only=True)]
    message = _txn_message(*SPACE.txn(compare, success, failure))

    assert [(c.key, c.range_end, c.result, c.target) for c in message.compare] == [
        (b"app/k", b"", rpc_pb2.Compare.EQUAL, rpc_pb2.Compare.VALUE),
        (b"app/r", END, rpc_pb2.Compare.GREATER, rpc_pb2.Compare.MOD),
        (b"app/s", b"app/t", rpc_pb2.Compare.LESS, rpc_pb2.Compare.VERSION)]
    put, get, nested = message.success
    assert (put.request_put.key, put.request_put.value, put.request_put.lease,
            put.request_put.prev_kv) == (b"app/k", b"v2", 7, True)
    assert (get.request_range.key, get.request_range.range_end,
            get.request_range.limit) == (b"app/a", b"app/c", 2)
    txn = nested.request_txn
    assert txn.compare[0].key == b"app/n"
    assert txn.success[0].request_put.key == b"app/n"
    assert (txn.failure[0].request_delete_range.key,
            txn.failure[0].request_delete_range.range_end) == (b"app/n", END)
    delete, scan = message.failure
    assert (delete.request_delete_range.key, delete.request_delete_range.range_end,
            delete.request_delete_range.prev_kv) == (b"app/d", b"", True)
    assert (scan.request_range.key, scan.request_range.range_end,
            scan.request_range.keys_only) == (b"app/p", END, True)

    # The caller's objects are untouched (they may be reused, or sent elsewhere).
    assert _txn_message(compare, success, failure) == _txn_message(
        [t.Value("k") == "v", t.Mod("r", "\0") > 3, t.Version("s", "t") < 2],
        [t.Put("k", "v2", lease=7, prev_kv=True), t.Get("a", "c", limit=2),
         t.Txn([t.Create("n") == 0], [t.Put("n", "1")], [t.Delete("n", "\0")])],
        [t.Delete("d", prev_kv=True), t.Get("p", "\0", keys_only=True)])


@pytest.mark.parametrize("compare,success,message", [
    ([("k", "==", "v")], [], "compare items must be built with client.transactions "
                             "(value/version/create/mod/lease), not tuple"),
    ([], [ops.Value("k") == "v"], "transaction ops must be client.transactions.put/get/"
                                  "delete/txn, not Value"),
    ([], [ops.Txn([], ["get k"])], "transaction ops must be client.transactions.put/get/"
                                   "delete/txn, not str"),
])
def test_foreign_compares_and_ops_are_refused_as_the_client_refuses_them(
        compare: Any, success: Any, message: str) -> None:
    with pytest.raises(TypeError) as raised:
        SPACE.txn(compare, success)
    assert str(raised.value) == message


# -- responses -----------------------------------------------------------------------------

def _kv(key: bytes, value: bytes = b"v") -> Any:
    return kv_pb2.KeyValue(key=key, value=value, create_revision=2, mod_revision=3,
                           version=1, lease=9)


def test_range_put_and_delete_responses_lose_the_prefix(impl: Any) -> None:
    wire = rpc_pb2.RangeResponse(kvs=[_kv(b"app/a"), _kv(b"app/b/c")], count=2)
    response = SPACE.strip_range(impl.decode_range_response(wire.SerializeToString()))
    assert [(kv.key, kv.value, kv.lease) for kv in response.kvs] == [
        (b"a", b"v", 9), (b"b/c", b"v", 9)]
    put = SPACE.strip_put(impl.decode_put_response(
        rpc_pb2.PutResponse(prev_kv=_kv(b"app/k", b"old")).SerializeToString()))
    assert (put.prev_kv.key, put.prev_kv.value) == (b"k", b"old")
    assert not SPACE.strip_put(impl.decode_put_response(b"")).HasField("prev_kv")
    deleted = SPACE.strip_delete(impl.decode_delete_range_response(
        rpc_pb2.DeleteRangeResponse(deleted=2, prev_kvs=[_kv(b"app/x"), _kv(b"app/y")]
                                    ).SerializeToString()))
    assert [kv.key for kv in deleted.prev_kvs] == [b"x", b"y"]


def test_txn_responses_lose_the_prefix_at_every_depth(impl: Any) -> None:
    inner = rpc_pb2.TxnResponse(responses=[
        rpc_pb2.ResponseOp(response_range=rpc_pb2.RangeResponse(kvs=[_kv(b"app/deep")]))])
    wire = rpc_pb2.TxnResponse(succeeded=True, responses=[
        rpc_pb2.ResponseOp(response_range=rpc_pb2.RangeResponse(kvs=[_kv(b"app/r")])),
        rpc_pb2.ResponseOp(response_put=rpc_pb2.PutResponse(prev_kv=_kv(b"app/p"))),
        rpc_pb2.ResponseOp(response_delete_range=rpc_pb2.DeleteRangeResponse(
            prev_kvs=[_kv(b"app/d")])),
        rpc_pb2.ResponseOp(response_txn=inner)])
    response = SPACE.strip_txn(impl.decode_txn_response(wire.SerializeToString()))
    rng, put, delete, txn = response.responses
    assert rng.response_range.kvs[0].key == b"r"
    assert put.response_put.prev_kv.key == b"p"
    assert delete.response_delete_range.prev_kvs[0].key == b"d"
    assert txn.response_txn.responses[0].response_range.kvs[0].key == b"deep"


def test_pairs_lose_the_prefix_and_missing_keys_stay_none() -> None:
    kv = codec.KeyValue(b"app/k", 1, 2, 3, b"v", 0)
    pairs = [(b"v", kv), (None, None)]
    SPACE.strip_pairs(pairs)
    assert pairs == [(b"v", kv), (None, None)] and kv.key == b"k"


def test_watch_events_are_copied_without_the_prefix(impl: Any) -> None:
    wire = rpc_pb2.WatchResponse(watch_id=1, events=[
        kv_pb2.Event(type=kv_pb2.Event.PUT, kv=_kv(b"app/a", b"new"),
                     prev_kv=_kv(b"app/a", b"old")),
        kv_pb2.Event(type=kv_pb2.Event.DELETE, kv=_kv(b"app/b"))])
    decoded = impl.decode_watch_response(
        wire.SerializeToString(), impl.event_layout(events.PutEvent, events.DeleteEvent))
    shared = events.WatchResponse(decoded.header, decoded.events)
    seen = SPACE.watch_item(shared)
    put, delete = seen.events
    assert type(put) is events.PutEvent and type(delete) is events.DeleteEvent
    assert (put.key, put.value, put.prev_value, put.prev_kv.key, put.lease) == (
        b"a", b"new", b"old", b"a", 9)
    assert (delete.key, delete.prev_kv) == (b"b", None)
    assert seen.header is shared.header
    # Other watchers of the same keys share the decoded events: they keep theirs.
    assert [e.key for e in shared.events] == [b"app/a", b"app/b"]
    assert shared.events[0].prev_kv.key == b"app/a"


def test_progress_notifications_and_errors_pass_as_they_are() -> None:
    progress = events.WatchResponse(codec.ResponseHeader(revision=5), [])
    assert SPACE.watch_item(progress) is progress
    error = RuntimeError("ended")
    assert SPACE.watch_item(error) is error


def test_lease_keys_keep_only_the_namespaces() -> None:
    assert SPACE.lease_keys([b"app/a", b"other", b"ap", b"app/", b"app/b/c"]) == [
        b"a", b"b/c"]


# -- the view covers the client's whole API ------------------------------------------------

def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


DRIVERS = {"threaded": (Etcd3Client, NamespacedClient, PASSED_THROUGH),
           "aio": (AioClient, AioView, AIO_PASSED_THROUGH)}


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_every_public_client_name_is_namespaced_passed_or_refused(driver: str) -> None:
    """A new client method must be given a namespace meaning (or be refused) here."""
    client, view, passed = DRIVERS[driver]
    client_names = _public(client) - {"namespace", "close", "closed"}
    view_names = _public(view)
    refused = set(REFUSED)
    unclassified = client_names - view_names - refused
    assert not unclassified, f"not namespaced, passed through or refused: {unclassified}"
    assert passed <= view_names and not (refused & view_names)
    for name in client_names - passed - refused:  # the view's own, not passed through
        assert name in view.__dict__ or name == "transactions", name
        assert inspect.iscoroutinefunction(getattr(view, name)) == \
            inspect.iscoroutinefunction(getattr(client, name)), name


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_namespaced_methods_take_the_clients_arguments(driver: str) -> None:
    client, view, passed = DRIVERS[driver]
    for name in _public(client) - passed - set(REFUSED) - {
            "transactions", "namespace", "closed"}:
        if isinstance(inspect.getattr_static(client, name), property):
            continue
        ours = inspect.signature(getattr(view, name))
        theirs = inspect.signature(getattr(client, name))
        plain = [p for p in theirs.parameters.values()
                 if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        has_kwargs = any(p.kind is p.VAR_KEYWORD for p in ours.parameters.values())
        for parameter in plain:
            assert parameter.name in ours.parameters or (
                has_kwargs and parameter.kind is parameter.KEYWORD_ONLY), (name, parameter)


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_refused_names_say_why(driver: str) -> None:
    view_class = DRIVERS[driver][1]
    view = view_class.__new__(view_class)
    with pytest.raises(AttributeError, match="raw gRPC stubs and channels bypass"):
        view.kvstub  # noqa: B018
    with pytest.raises(AttributeError, match="permissions are granted on absolute keys"):
        view.grant_permission_role  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        view.nope  # noqa: B018
