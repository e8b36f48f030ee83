"""Namespaces: a view of a client where every key lives under one prefix.

``client.namespace("app/")`` returns a :class:`NamespacedClient`: the client's key
API (reads, writes, transactions, bulk calls, watches, leases, locks, elections,
STM) where keys are given and returned without the prefix, exactly as etcd's Go
client does with ``namespace.NewKV``, ``NewWatcher`` and ``NewLease``::

    app = client.namespace("app/")
    app.put("config", "1")              # writes b"app/config"
    app.get("config")                   # reads it: (b"1", meta), meta.key == b"config"
    app.get_all()                       # every key under b"app/", prefix cut
    app.delete_prefix("")               # deletes those only

The view owns nothing: it calls its client, so every view of a client shares that
client's connections, retries, read and write batching, its one watch stream and
its one keepalive stream. The key rules are :mod:`etcd3._core.namespace`'s.
"""

from __future__ import annotations

import threading
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from . import codec
from ._core.deadline import UNSET, Timeout
from ._core.namespace import (
    PASSED_THROUGH,
    REFUSED,
    KeySpace,
    PassThrough,
    StripFailedKeys,
    ViewBase,
    moved_items,
    moved_keys,
    prefix_end,
    prev_kv_reporter,
    view_closed,
)
from ._core.namespace_cache import NamespacedCache
from ._holders import DEFAULT_TIMEOUT
from .election import Election
from .events import Event, WatchResponse
from .leases import Lease
from .locks import Lock
from .results import KVMetadata
from .stm import STM
from .stm import run as run_stm
from .transactions import Transactions, shape_txn_responses

if TYPE_CHECKING:
    from .client import Etcd3Client as Client

KeyType = Union[str, bytes]
ValueMeta = Tuple[bytes, KVMetadata]
CancelFn = Callable[[], None]
T = TypeVar("T")


class NamespacedClient(ViewBase["Client"]):
    """A client whose keys all live under ``prefix`` (etcd's Go ``namespace``).

    Made by :meth:`etcd3.Etcd3Client.namespace`. It has the client's key API with
    the same arguments and results; keys go in without the prefix and come back
    without it (key-values, ``prev_kv``, watch events, a lease's ``keys``), and
    ranges stay inside the namespace: ``get_all()`` and ``delete_prefix("")`` touch
    only its keys. What is written is exactly what Go's ``namespace.NewKV`` writes, so
    Go programs, ``etcdctl`` (with the full key) and ``etcd grpc-proxy --namespace``
    see the same keys.

    Locks, elections and STM made through the view keep their keys in it
    (``/locks/<name>`` becomes ``<prefix>/locks/<name>``); leases granted through it
    are those of the cluster (leases have no namespace), and their ``keys`` lists
    only the namespace's keys. Cluster, maintenance, user and role calls are passed
    to the client unchanged (:data:`etcd3._core.namespace.PASSED_THROUGH`); raw stubs
    and key permissions are not offered (:data:`etcd3._core.namespace.REFUSED`): use
    the client for those.

    :meth:`close` ends the watches started through the view and stops keeping its
    leases alive; the client stays open. Once the client is closed, every call
    raises :class:`~etcd3.exceptions.ClientClosedError`.

    :raises TypeError: ``prefix`` is not str or bytes. :raises ValueError: empty.
    """

    #: The transaction builders (``view.transactions.value(key) == ...``): keys are
    #: moved into the namespace when the transaction runs.
    transactions = Transactions()
    _watches: Dict[Any, CancelFn]

    def __init__(self, etcd_client: Client, prefix: KeyType) -> None:
        super().__init__(etcd_client, prefix)
        self._mutex = threading.Lock()
        self._caches: weakref.WeakSet[NamespacedCache] = weakref.WeakSet()

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """End the watches started through this view, close its caches and stop
        keeping its leases alive (they expire after their TTL); the client stays
        open. Idempotent; later calls through the view raise
        :class:`~etcd3.exceptions.ClientClosedError`."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            cancels, self._watches = list(self._watches.values()), {}
            leases, self._leases = list(self._leases), set()
            caches = list(self._caches)
        client = self._client
        if client.closed:
            return
        for cancel in cancels:
            cancel()
        for lease_id in leases:
            client.lease_keepalive_stop(lease_id)
        for cache in caches:
            cache.close()

    def __enter__(self) -> NamespacedClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------

    def get_response(self, key: KeyType, *, timeout: Timeout = UNSET,
                     **options: Any) -> Any:
        """The Range response for ``key`` (keys in it without the prefix); see
        :meth:`etcd3.Etcd3Client.get_response`."""
        response = self._live().get_response(self._keys.key(key), timeout=timeout,
                                             **options)
        return self._keys.strip_range(response)

    def get(self, key: KeyType, **options: Any
            ) -> Union[Tuple[bytes, KVMetadata], Tuple[None, None]]:
        """The value of ``key`` and its metadata, or ``(None, None)``."""
        response = self.get_response(key, **options)
        if not response.kvs:
            return None, None
        kv = response.kvs[0]
        return kv.value, kv

    def get_range_response(self, range_start: KeyType, range_end: KeyType, *,
                           timeout: Timeout = UNSET, **options: Any) -> Any:
        """The Range response for ``[range_start, range_end)`` of the namespace
        (``range_end`` ``"\\0"``: to the end of the namespace)."""
        start, end = self._keys.range(range_start, range_end)
        response = self._live().get_range_response(start, end, timeout=timeout, **options)
        return self._keys.strip_range(response)

    def get_range(self, range_start: KeyType, range_end: KeyType,
                  **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for keys in ``[range_start, range_end)``."""
        return iter(codec.range_pairs(
            self.get_range_response(range_start, range_end, **options).kvs))

    def get_prefix_response(self, key_prefix: KeyType, *, timeout: Timeout = UNSET,
                            **options: Any) -> Any:
        """The Range response for every key of the namespace starting with
        ``key_prefix``."""
        if "range_end" in options or "key" in options:
            raise TypeError("Don't use key or range_end with prefix")
        start, end = self._keys.prefix_range(key_prefix)
        response = self._live().get_range_response(start, end, timeout=timeout, **options)
        return self._keys.strip_range(response)

    def get_prefix(self, key_prefix: KeyType, page_size: Optional[int] = None,
                   **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for every key starting with ``key_prefix`` (paged
        with ``page_size``, see :meth:`iter_prefix`)."""
        if page_size is not None:
            return self.iter_prefix(key_prefix, page_size=page_size, **options)
        return iter(codec.range_pairs(self.get_prefix_response(key_prefix, **options).kvs))

    def get_all_response(self, *, timeout: Timeout = UNSET, **options: Any) -> Any:
        """The Range response for every key of the namespace."""
        start, end = self._keys.everything()
        response = self._live().get_range_response(start, end, timeout=timeout, **options)
        return self._keys.strip_range(response)

    def get_all(self, **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for every key of the namespace."""
        return iter(codec.range_pairs(self.get_all_response(**options).kvs))

    # -- writes ---------------------------------------------------------------------------

    def put(self, key: KeyType, value: KeyType, lease: Any = None, prev_kv: bool = False,
            *, timeout: Timeout = UNSET) -> Any:
        """Set ``key`` to ``value``; returns the PutResponse (its ``prev_kv`` key
        without the prefix). See :meth:`etcd3.Etcd3Client.put`."""
        response = self._live().put(self._keys.key(key), value, lease, prev_kv,
                                    timeout=timeout)
        return self._keys.strip_put(response) if prev_kv else response

    def put_if_not_exists(self, key: KeyType, value: KeyType, lease: Any = None) -> bool:
        """Create ``key`` only if it does not exist; True if it was created."""
        succeeded, _ = self.transaction(
            compare=[self.transactions.create(key) == 0],
            success=[self.transactions.put(key, value, lease=lease)],
            failure=[])
        return bool(succeeded)

    def replace(self, key: KeyType, initial_value: KeyType, new_value: KeyType) -> bool:
        """Set ``key`` to ``new_value`` only if it is ``initial_value``; True if it was."""
        succeeded, _ = self.transaction(
            compare=[self.transactions.value(key) == initial_value],
            success=[self.transactions.put(key, new_value)],
            failure=[])
        return bool(succeeded)

    def delete(self, key: KeyType, prev_kv: bool = False, return_response: bool = False,
               *, timeout: Timeout = UNSET) -> Any:
        """Delete ``key``; True if it existed (or the DeleteRangeResponse when
        ``return_response``)."""
        response = self._live().delete(self._keys.key(key), prev_kv, return_response=True,
                                       timeout=timeout)
        if return_response:
            return self._keys.strip_delete(response)
        return response.deleted >= 1

    def delete_prefix(self, prefix: KeyType, prev_kv: bool = False, *,
                      timeout: Timeout = UNSET) -> Any:
        """Delete every key of the namespace starting with ``prefix`` (``""``: every
        key of the namespace, and no other); returns the DeleteRangeResponse."""
        start, end = self._keys.prefix_range(prefix, "prefix")
        response = self._live().delete_range(start, end, prev_kv, timeout=timeout)
        return self._keys.strip_delete(response)

    def delete_range(self, range_start: KeyType, range_end: KeyType, prev_kv: bool = False,
                     *, timeout: Timeout = UNSET) -> Any:
        """Delete keys in ``[range_start, range_end)``; returns the
        DeleteRangeResponse."""
        start, end = self._keys.range(range_start, range_end)
        response = self._live().delete_range(start, end, prev_kv, timeout=timeout)
        return self._keys.strip_delete(response)

    # -- transactions ---------------------------------------------------------------------

    def transaction(self, compare: List[Any], success: Optional[List[Any]] = None,
                    failure: Optional[List[Any]] = None, *,
                    timeout: Timeout = UNSET) -> Tuple[bool, List[Any]]:
        """Run ops atomically, as :meth:`etcd3.Etcd3Client.transaction`: compares
        and ops built with ``view.transactions`` on the namespace's keys."""
        response = self.transaction_response(compare, success, failure, timeout=timeout)
        return response.succeeded, shape_txn_responses(response)

    def transaction_response(self, compare: Sequence[Any],
                             success: Optional[Sequence[Any]] = None,
                             failure: Optional[Sequence[Any]] = None, *,
                             timeout: Timeout = UNSET) -> Any:
        """The raw TxnResponse of a transaction (keys without the prefix).

        :raises TypeError: a compare or op not built with ``transactions``.
        """
        moved = self._keys.txn(compare, success, failure)
        response = self._live().transaction_response(*moved, timeout=timeout)
        return self._keys.strip_txn(response)

    # -- bulk -----------------------------------------------------------------------------

    def put_many(self, items: Union[Iterable[Tuple[KeyType, KeyType]],
                                    Mapping[KeyType, KeyType]],
                 *, prev_kv: Optional[Callable[..., Any]] = None, **options: Any) -> int:
        """:meth:`etcd3.Etcd3Client.put_many` in the namespace (the ``prev_kv``
        callback and a :class:`~etcd3.exceptions.BulkWriteError`'s ``failed_keys``
        get keys without the prefix)."""
        keys = self._keys
        moved = moved_items(items, keys)
        with StripFailedKeys(keys):
            return int(self._live().put_many(moved, prev_kv=prev_kv_reporter(prev_kv, keys),
                                             **options))

    def delete_many(self, keys: Iterable[KeyType], **options: Any) -> int:
        """:meth:`etcd3.Etcd3Client.delete_many` in the namespace."""
        with StripFailedKeys(self._keys):
            return int(self._live().delete_many(moved_keys(keys, self._keys), **options))

    def get_many(self, keys: Iterable[KeyType], **options: Any
                 ) -> List[Union[ValueMeta, Tuple[None, None]]]:
        """:meth:`etcd3.Etcd3Client.get_many` in the namespace."""
        results = self._live().get_many(moved_keys(keys, self._keys), **options)
        self._keys.strip_pairs(results)
        return results

    def iter_prefix(self, key_prefix: KeyType, page_size: int = 1000,
                    **options: Any) -> Iterator[ValueMeta]:
        """:meth:`etcd3.Etcd3Client.iter_prefix` in the namespace."""
        start, end = self._keys.prefix_range(key_prefix)
        return self._stripped_pairs(
            self._live().iter_range(start, end, page_size=page_size, **options))

    def iter_range(self, range_start: KeyType, range_end: KeyType, page_size: int = 1000,
                   **options: Any) -> Iterator[ValueMeta]:
        """:meth:`etcd3.Etcd3Client.iter_range` in the namespace."""
        start, end = self._keys.range(range_start, range_end)
        return self._stripped_pairs(
            self._live().iter_range(start, end, page_size=page_size, **options))

    def _stripped_pairs(self, pairs: Iterator[ValueMeta]) -> Iterator[ValueMeta]:
        cut = len(self.prefix)
        for value, meta in pairs:
            meta.key = meta.key[cut:]
            yield value, meta

    # -- watches --------------------------------------------------------------------------

    def _track(self, token: Any, cancel: CancelFn) -> None:
        with self._mutex:
            if not self._closed:
                self._watches[token] = cancel
                return
        cancel()  # closed meanwhile
        raise view_closed(self.prefix)

    def _untrack(self, token: Any) -> Optional[CancelFn]:
        with self._mutex:
            return self._watches.pop(token, None)

    def add_watch_callback(self, key: KeyType, callback: Callable[[Any], None],
                           range_end: Optional[KeyType] = None,
                           start_revision: Optional[int] = None,
                           progress_notify: bool = False, filters: Any = None,
                           prev_kv: bool = False, fragment: bool = False,
                           max_queue: Optional[int] = None,
                           unreachable_timeout: Any = UNSET) -> int:
        """Call ``callback`` with every response of a watch on ``key`` (or the range)
        of the namespace, keys without the prefix; see
        :meth:`etcd3.Etcd3Client.add_watch_callback`. Returns the watch id."""
        client = self._live()
        start, end = self._keys.watched(key, range_end)
        watch_item = self._keys.watch_item

        def deliver(item: Any) -> None:
            callback(watch_item(item))

        extra = {} if unreachable_timeout is UNSET else {
            "unreachable_timeout": unreachable_timeout}
        watch_id = client.add_watch_callback(
            start, deliver, range_end=end, start_revision=start_revision,
            progress_notify=progress_notify, filters=filters, prev_kv=prev_kv,
            fragment=fragment, max_queue=max_queue, **extra)
        self._track(watch_id, lambda: client.cancel_watch(watch_id))
        return watch_id

    def add_watch_prefix_callback(self, key_prefix: KeyType, callback: Callable[[Any], None],
                                  **kwargs: Any) -> int:
        """:meth:`add_watch_callback` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.add_watch_callback(key_prefix, callback, **kwargs)

    def cancel_watch(self, watch_id: int) -> None:
        """Stop the watch ``watch_id`` (no-op when it already ended)."""
        self._untrack(watch_id)
        if not self._client.closed:
            self._client.cancel_watch(watch_id)

    def watch_response(self, key: KeyType, **kwargs: Any
                       ) -> Tuple[Iterator[WatchResponse], CancelFn]:
        """Watch ``key``; returns ``(responses, cancel)``, keys without the prefix
        (see :meth:`etcd3.Etcd3Client.watch_response`)."""
        client = self._live()
        start, kwargs["range_end"] = self._keys.watched(key, kwargs.get("range_end"))
        responses, cancel_watch = client.watch_response(start, **kwargs)
        token = ("iterator", next(self._tokens))
        self._track(token, cancel_watch)

        def cancel() -> None:
            self._untrack(token)
            cancel_watch()

        stripped = _stripped_responses(responses, self._keys)
        # Dropped unread, the iterator's watch needs no cancel from close() any more.
        weakref.finalize(stripped, self._watches.pop, token, None)
        return stripped, cancel

    def watch_prefix_response(self, key_prefix: KeyType, **kwargs: Any
                              ) -> Tuple[Iterator[WatchResponse], CancelFn]:
        """:meth:`watch_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.watch_response(key_prefix, **kwargs)

    def watch(self, key: KeyType, **kwargs: Any) -> Tuple[Iterator[Event], CancelFn]:
        """Watch ``key``; returns ``(events, cancel)`` as python-etcd3 does, event
        keys without the prefix."""
        responses, cancel = self.watch_response(key, **kwargs)
        return _events_of(responses), cancel

    def watch_prefix(self, key_prefix: KeyType, **kwargs: Any
                     ) -> Tuple[Iterator[Event], CancelFn]:
        """:meth:`watch` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.watch(key_prefix, **kwargs)

    def watch_once(self, key: KeyType, timeout: Optional[float] = None,
                   **kwargs: Any) -> Event:
        """Wait for the next change of ``key`` and return its event (see
        :meth:`etcd3.Etcd3Client.watch_once`)."""
        start, kwargs["range_end"] = self._keys.watched(key, kwargs.get("range_end"))
        return self._keys.event(self._live().watch_once(start, timeout=timeout, **kwargs))

    def watch_prefix_once(self, key_prefix: KeyType, timeout: Optional[float] = None,
                          **kwargs: Any) -> Event:
        """:meth:`watch_once` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.watch_once(key_prefix, timeout=timeout, **kwargs)

    def watch_once_response(self, key: KeyType, timeout: Optional[float] = None,
                            **kwargs: Any) -> WatchResponse:
        """The first response of a watch on ``key`` (see
        :meth:`etcd3.Etcd3Client.watch_once_response`)."""
        start, kwargs["range_end"] = self._keys.watched(key, kwargs.get("range_end"))
        return self._keys.watch_response(
            self._live().watch_once_response(start, timeout=timeout, **kwargs))

    def watch_prefix_once_response(self, key_prefix: KeyType,
                                   timeout: Optional[float] = None,
                                   **kwargs: Any) -> WatchResponse:
        """:meth:`watch_once_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.watch_once_response(key_prefix, timeout=timeout, **kwargs)

    # -- leases ---------------------------------------------------------------------------

    def lease(self, ttl: int, lease_id: Optional[int] = None, *, keep_alive: bool = False,
              on_expired: Optional[Callable[..., Any]] = None,
              timeout: Timeout = UNSET) -> Lease:
        """Grant a lease (see :meth:`etcd3.Etcd3Client.lease`); its ``keys`` are the
        namespace's keys attached to it, without the prefix."""
        lease = self._live().lease(ttl, lease_id, timeout=timeout)
        lease.etcd_client = self
        if keep_alive:
            lease.keep_alive(on_expired)
        return lease

    def leases(self, *, timeout: Timeout = UNSET) -> List[Lease]:
        """Every lease of the cluster (leases have no namespace), each seeing its
        keys through this view."""
        leases = self._live().leases(timeout=timeout)
        for lease in leases:
            lease.etcd_client = self
        return leases

    def get_lease_info(self, lease_id: Any, keys: bool = True, *,
                       timeout: Timeout = UNSET) -> Any:
        """The LeaseTimeToLiveResponse; ``keys`` lists only the namespace's keys,
        without the prefix."""
        response = self._live().get_lease_info(lease_id, keys, timeout=timeout)
        if keys and len(response.keys):
            inside = self._keys.lease_keys(list(response.keys))
            del response.keys[:]
            response.keys.extend(inside)
        return response

    def lease_keepalive_start(self, lease: Lease,
                              on_expired: Optional[Callable[[Lease], None]] = None) -> None:
        """Have the client's keepalive stream renew ``lease`` (until this view or the
        client is closed).

        :meta private:
        """
        client = self._live()
        with self._mutex:
            self._leases.add(int(lease.id))
        client.lease_keepalive_start(lease, on_expired)

    def lease_keepalive_stop(self, lease_id: int) -> bool:
        """Stop renewing the lease ``lease_id``.

        :meta private:
        """
        with self._mutex:
            self._leases.discard(int(lease_id))
        return bool(self._client.lease_keepalive_stop(lease_id))

    # -- caches ---------------------------------------------------------------------------

    def cache_prefix(self, prefix: KeyType, **options: Any) -> NamespacedCache:
        """A local cache of every key of the namespace starting with ``prefix``
        (``""``: the whole namespace); see :meth:`etcd3.Etcd3Client.cache_prefix`
        (same options). Its keys are without the prefix; :meth:`close` closes it."""
        start, end = self._keys.prefix_range(prefix, "prefix")
        return self._cache(self._live().cache_range(start, end, **options))

    def cache_range(self, range_start: KeyType, range_end: KeyType,
                    **options: Any) -> NamespacedCache:
        """:meth:`cache_prefix` for the keys in ``[range_start, range_end)`` of the
        namespace (``range_end`` ``"\0"``: to its end)."""
        start, end = self._keys.range(range_start, range_end)
        return self._cache(self._live().cache_range(start, end, **options))

    def _cache(self, cache: Any) -> NamespacedCache:
        wrapped = NamespacedCache(cache, self._keys)
        with self._mutex:
            closed = self._closed
            if not closed:
                self._caches.add(wrapped)
        if closed:
            cache.close()
            raise view_closed(self.prefix)
        return wrapped

    @property
    def caches(self) -> List[NamespacedCache]:
        """The open caches made through this view."""
        with self._mutex:
            return [cache for cache in self._caches if not cache.closed]

    # -- locks, elections, STM ------------------------------------------------------------

    def lock(self, name: KeyType, ttl: Optional[int] = 60,
             prefix: Optional[KeyType] = None, *, timeout: Optional[float] = DEFAULT_TIMEOUT,
             on_lost: Optional[Callable[[Lock], None]] = None) -> Lock:
        """A :class:`~etcd3.locks.Lock` whose keys are in the namespace
        (``<namespace><lock_prefix>/<name>/...``)."""
        return Lock(name, ttl=ttl, etcd_client=self, prefix=prefix, timeout=timeout,
                    on_lost=on_lost)

    def election(self, name: KeyType, ttl: int = 60, *,
                 on_lost: Optional[Callable[[Election], None]] = None) -> Election:
        """An :class:`~etcd3.election.Election` whose keys are in the namespace."""
        return Election(name, ttl=ttl, etcd_client=self, on_lost=on_lost)

    def stm(self, apply: Callable[[STM], T], isolation: str = "serializable_snapshot",
            prefetch: Iterable[KeyType] = ()) -> T:
        """Run ``apply(stm)`` as a software transaction on the namespace's keys; see
        :func:`etcd3.stm.run`."""
        return run_stm(self, apply, isolation=isolation, prefetch=prefetch)

    # -- what concerns the whole cluster, not keys ---------------------------------------

    members = PassThrough()
    add_member = PassThrough()
    remove_member = PassThrough()
    update_member = PassThrough()
    promote_member = PassThrough()
    status = PassThrough()
    statuses = PassThrough()
    create_alarm = PassThrough()
    list_alarms = PassThrough()
    disarm_alarm = PassThrough()
    defragment = PassThrough()
    hash = PassThrough()
    hash_kv = PassThrough()
    snapshot = PassThrough()
    move_leader = PassThrough()
    compact = PassThrough()
    add_user = PassThrough()
    get_user = PassThrough()
    delete_user = PassThrough()
    change_password = PassThrough()
    users = PassThrough()
    grant_role = PassThrough()
    revoke_role = PassThrough()
    add_role = PassThrough()
    get_role = PassThrough()
    delete_role = PassThrough()
    roles = PassThrough()
    enable_auth = PassThrough()
    disable_auth = PassThrough()
    auth_status = PassThrough()
    stats = PassThrough()
    endpoints = PassThrough()
    sync_endpoints = PassThrough()
    endpoint_in_use = PassThrough()
    uses_secure_channel = PassThrough()
    timeout = PassThrough()
    retry = PassThrough()
    lock_prefix = PassThrough()
    request_progress = PassThrough()
    revoke_lease = PassThrough()
    refresh_lease = PassThrough()
    lease_keepalive_active = PassThrough()
    lease_alive_until = PassThrough()


def _stripped_responses(responses: Iterator[WatchResponse], keys: KeySpace
                        ) -> Iterator[WatchResponse]:
    for response in responses:
        yield keys.watch_response(response)


def _events_of(responses: Iterator[WatchResponse]) -> Iterator[Event]:
    for response in responses:
        yield from response.events


__all__ = ["NamespacedClient", "PASSED_THROUGH", "REFUSED"]
