"""Namespaces of the asyncio client: :mod:`etcd3.namespace`'s view, awaited.

``client.namespace("app/")`` returns a :class:`NamespacedClient` with the asyncio
client's key API where every key lives under the prefix, by the same rules
(:mod:`etcd3._core.namespace`, Go's ``client/v3/namespace``)::

    app = client.namespace("app/")
    await app.put("config", "1")            # writes b"app/config"
    value, meta = await app.get("config")   # meta.key == b"config"
    async for value, meta in app.get_all(): # the keys under b"app/" only
        ...

The view calls its client, so every view of a client shares its connections, its
one watch stream and its one keepalive stream.
"""

from __future__ import annotations

import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .._core.deadline import UNSET, Timeout
from .._core.namespace import (
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
from .._core.namespace_cache import AioNamespacedCache
from .._holders import DEFAULT_TIMEOUT
from ..events import Event, WatchResponse
from ..results import KVMetadata
from ..transactions import Transactions, shape_txn_responses
from .election import Election
from .leases import Lease
from .locks import Lock
from .stm import STM
from .stm import run as run_stm

if TYPE_CHECKING:
    from .client import Etcd3Client as AioClient

KeyType = Union[str, bytes]
ValueMeta = Tuple[bytes, KVMetadata]
CancelFn = Callable[[], Awaitable[None]]

__all__ = ["NamespacedClient", "WatchResponses", "WatchEvents"]


class WatchResponses:
    """``async for response in ...``: a watch's responses through a view (keys
    without the prefix); ``await aclose()`` cancels the watch."""

    def __init__(self, responses: Any, keys: KeySpace) -> None:
        self._responses = responses
        self._keys = keys

    def __aiter__(self) -> WatchResponses:
        return self

    async def __anext__(self) -> WatchResponse:
        return self._keys.watch_response(await self._responses.__anext__())

    async def aclose(self) -> None:
        """Cancel the watch and end this iterator (idempotent)."""
        await self._responses.aclose()


class WatchEvents:
    """``async for event in ...``: a watch's events through a view, one by one;
    ``await aclose()`` cancels the watch."""

    def __init__(self, responses: WatchResponses) -> None:
        self._responses = responses
        self._pending: List[Event] = []

    def __aiter__(self) -> WatchEvents:
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            self._pending = list(reversed((await self._responses.__anext__()).events))
        return self._pending.pop()

    async def aclose(self) -> None:
        """Cancel the watch and end this iterator (idempotent)."""
        self._pending = []
        await self._responses.aclose()


class NamespacedClient(ViewBase["AioClient"]):
    """An asyncio client whose keys all live under ``prefix``; the asyncio twin of
    :class:`etcd3.namespace.NamespacedClient` (same rules, same names, awaited).

    Made by :meth:`etcd3.aio.Etcd3Client.namespace`. ``await view.close()`` (or
    ``async with``) ends the watches started through it and stops keeping its
    leases alive; the client stays open. Once the client is closed, every call
    raises :class:`~etcd3.exceptions.ClientClosedError`.

    :raises TypeError: ``prefix`` is not str or bytes. :raises ValueError: empty.
    """

    #: The transaction builders; keys are moved into the namespace when it runs.
    transactions = Transactions()
    _watches: Dict[Any, CancelFn]

    def __init__(self, etcd_client: AioClient, prefix: KeyType) -> None:
        super().__init__(etcd_client, prefix)
        self._caches: weakref.WeakSet[AioNamespacedCache] = weakref.WeakSet()

    # -- lifetime -------------------------------------------------------------------------

    async def close(self) -> None:
        """End the watches started through this view, close its caches and stop
        keeping its leases alive (they expire after their TTL); the client stays
        open. Idempotent."""
        if self._closed:
            return
        self._closed = True
        cancels, self._watches = list(self._watches.values()), {}
        leases, self._leases = list(self._leases), set()
        caches = list(self._caches)
        if self._client.closed:
            return
        for cancel in cancels:
            await cancel()
        for lease_id in leases:
            self._client.lease_keepalive_stop(lease_id)
        for cache in caches:
            await cache.close()

    async def __aenter__(self) -> NamespacedClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    # -- reads ----------------------------------------------------------------------------

    async def get_response(self, key: KeyType, *, timeout: Timeout = UNSET,
                           **options: Any) -> Any:
        """The Range response for ``key`` (keys in it without the prefix)."""
        response = await self._live().get_response(self._keys.key(key), timeout=timeout,
                                                   **options)
        return self._keys.strip_range(response)

    async def get(self, key: KeyType, **options: Any
                  ) -> Union[Tuple[bytes, KVMetadata], Tuple[None, None]]:
        """The value of ``key`` and its metadata, or ``(None, None)``."""
        response = await self.get_response(key, **options)
        if not response.kvs:
            return None, None
        kv = response.kvs[0]
        return kv.value, kv

    async def get_range_response(self, range_start: KeyType, range_end: KeyType, *,
                                 timeout: Timeout = UNSET, **options: Any) -> Any:
        """The Range response for ``[range_start, range_end)`` of the namespace."""
        start, end = self._keys.range(range_start, range_end)
        response = await self._live().get_range_response(start, end, timeout=timeout,
                                                         **options)
        return self._keys.strip_range(response)

    def get_range(self, range_start: KeyType, range_end: KeyType,
                  **options: Any) -> AsyncIterator[ValueMeta]:
        """``async for value, meta in ...``: keys in ``[range_start, range_end)``."""
        start, end = self._keys.range(range_start, range_end)
        return self._stripped_pairs(self._live().get_range(start, end, **options))

    async def get_prefix_response(self, key_prefix: KeyType, *, timeout: Timeout = UNSET,
                                  **options: Any) -> Any:
        """The Range response for every key starting with ``key_prefix``."""
        _no_key_options(options)
        start, end = self._keys.prefix_range(key_prefix)
        response = await self._live().get_range_response(start, end, timeout=timeout,
                                                         **options)
        return self._keys.strip_range(response)

    def get_prefix(self, key_prefix: KeyType, page_size: Optional[int] = None,
                   **options: Any) -> AsyncIterator[ValueMeta]:
        """``async for value, meta in ...``: every key starting with ``key_prefix``
        (paged with ``page_size``, see :meth:`iter_prefix`)."""
        if page_size is not None:
            return self.iter_prefix(key_prefix, page_size=page_size, **options)
        _no_key_options(options)
        start, end = self._keys.prefix_range(key_prefix)
        return self._stripped_pairs(self._live().get_range(start, end, **options))

    async def get_all_response(self, *, timeout: Timeout = UNSET, **options: Any) -> Any:
        """The Range response for every key of the namespace."""
        start, end = self._keys.everything()
        response = await self._live().get_range_response(start, end, timeout=timeout,
                                                         **options)
        return self._keys.strip_range(response)

    def get_all(self, **options: Any) -> AsyncIterator[ValueMeta]:
        """``async for value, meta in ...``: every key of the namespace."""
        start, end = self._keys.everything()
        return self._stripped_pairs(self._live().get_range(start, end, **options))

    async def _stripped_pairs(self, pairs: AsyncIterator[ValueMeta]
                              ) -> AsyncIterator[ValueMeta]:
        cut = len(self.prefix)
        async for value, meta in pairs:
            meta.key = meta.key[cut:]
            yield value, meta

    # -- writes ---------------------------------------------------------------------------

    async def put(self, key: KeyType, value: KeyType, lease: Any = None,
                  prev_kv: bool = False, *, timeout: Timeout = UNSET) -> Any:
        """Set ``key`` to ``value``; returns the PutResponse."""
        response = await self._live().put(self._keys.key(key), value, lease, prev_kv,
                                          timeout=timeout)
        return self._keys.strip_put(response) if prev_kv else response

    async def put_if_not_exists(self, key: KeyType, value: KeyType,
                                lease: Any = None) -> bool:
        """Create ``key`` only if it does not exist; True if it was created."""
        succeeded, _ = await self.transaction(
            compare=[self.transactions.create(key) == 0],
            success=[self.transactions.put(key, value, lease=lease)],
            failure=[])
        return bool(succeeded)

    async def replace(self, key: KeyType, initial_value: KeyType,
                      new_value: KeyType) -> bool:
        """Set ``key`` to ``new_value`` only if it is ``initial_value``."""
        succeeded, _ = await self.transaction(
            compare=[self.transactions.value(key) == initial_value],
            success=[self.transactions.put(key, new_value)],
            failure=[])
        return bool(succeeded)

    async def delete(self, key: KeyType, prev_kv: bool = False,
                     return_response: bool = False, *, timeout: Timeout = UNSET) -> Any:
        """Delete ``key``; True if it existed (or the DeleteRangeResponse)."""
        response = await self._live().delete(self._keys.key(key), prev_kv,
                                             return_response=True, timeout=timeout)
        if return_response:
            return self._keys.strip_delete(response)
        return response.deleted >= 1

    async def delete_prefix(self, prefix: KeyType, prev_kv: bool = False, *,
                            timeout: Timeout = UNSET) -> Any:
        """Delete every key of the namespace starting with ``prefix`` (``""``: every
        key of the namespace, and no other)."""
        start, end = self._keys.prefix_range(prefix, "prefix")
        response = await self._live().delete_range(start, end, prev_kv, timeout=timeout)
        return self._keys.strip_delete(response)

    async def delete_range(self, range_start: KeyType, range_end: KeyType,
                           prev_kv: bool = False, *, timeout: Timeout = UNSET) -> Any:
        """Delete keys in ``[range_start, range_end)``."""
        start, end = self._keys.range(range_start, range_end)
        response = await self._live().delete_range(start, end, prev_kv, timeout=timeout)
        return self._keys.strip_delete(response)

    # -- transactions ---------------------------------------------------------------------

    async def transaction(self, compare: List[Any], success: Optional[List[Any]] = None,
                          failure: Optional[List[Any]] = None, *,
                          timeout: Timeout = UNSET) -> Tuple[bool, List[Any]]:
        """Run ops atomically, on the namespace's keys."""
        response = await self.transaction_response(compare, success, failure,
                                                   timeout=timeout)
        return response.succeeded, shape_txn_responses(response)

    async def transaction_response(self, compare: Sequence[Any],
                                   success: Optional[Sequence[Any]] = None,
                                   failure: Optional[Sequence[Any]] = None, *,
                                   timeout: Timeout = UNSET) -> Any:
        """The raw TxnResponse of a transaction (keys without the prefix)."""
        moved = self._keys.txn(compare, success, failure)
        response = await self._live().transaction_response(*moved, timeout=timeout)
        return self._keys.strip_txn(response)

    # -- bulk -----------------------------------------------------------------------------

    async def put_many(self, items: Any, *, prev_kv: Optional[Callable[..., Any]] = None,
                       **options: Any) -> int:
        """:meth:`etcd3.aio.Etcd3Client.put_many` in the namespace."""
        keys = self._keys
        moved = moved_items(items, keys)
        with StripFailedKeys(keys):
            return int(await self._live().put_many(
                moved, prev_kv=prev_kv_reporter(prev_kv, keys), **options))

    async def delete_many(self, keys: Any, **options: Any) -> int:
        """:meth:`etcd3.aio.Etcd3Client.delete_many` in the namespace."""
        with StripFailedKeys(self._keys):
            return int(await self._live().delete_many(moved_keys(keys, self._keys),
                                                      **options))

    async def get_many(self, keys: Any, **options: Any
                       ) -> List[Union[ValueMeta, Tuple[None, None]]]:
        """:meth:`etcd3.aio.Etcd3Client.get_many` in the namespace."""
        results = await self._live().get_many(moved_keys(keys, self._keys), **options)
        self._keys.strip_pairs(results)
        return results

    def iter_prefix(self, key_prefix: KeyType, page_size: int = 1000,
                    **options: Any) -> AsyncIterator[ValueMeta]:
        """:meth:`etcd3.aio.Etcd3Client.iter_prefix` in the namespace."""
        start, end = self._keys.prefix_range(key_prefix)
        return self._stripped_pairs(
            self._live().iter_range(start, end, page_size=page_size, **options))

    def iter_range(self, range_start: KeyType, range_end: KeyType, page_size: int = 1000,
                   **options: Any) -> AsyncIterator[ValueMeta]:
        """:meth:`etcd3.aio.Etcd3Client.iter_range` in the namespace."""
        start, end = self._keys.range(range_start, range_end)
        return self._stripped_pairs(
            self._live().iter_range(start, end, page_size=page_size, **options))

    # -- watches --------------------------------------------------------------------------

    def _track(self, token: Any, cancel: CancelFn) -> None:
        self._watches[token] = cancel

    async def add_watch_callback(self, key: KeyType, callback: Callable[[Any], Any],
                                 range_end: Optional[KeyType] = None,
                                 start_revision: Optional[int] = None,
                                 progress_notify: bool = False, filters: Any = None,
                                 prev_kv: bool = False, fragment: bool = False,
                                 max_queue: Optional[int] = None,
                                 unreachable_timeout: Any = UNSET) -> int:
        """Call ``callback`` (a function or a coroutine function) with every
        response of a watch on ``key`` (or the range), keys without the prefix.
        Returns the watch id."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        client = self._live()
        start, end = self._keys.watched(key, range_end)
        watch_item = self._keys.watch_item

        def deliver(item: Any) -> Any:
            return callback(watch_item(item))  # awaited by the client if awaitable

        extra = {} if unreachable_timeout is UNSET else {
            "unreachable_timeout": unreachable_timeout}
        watch_id = await client.add_watch_callback(
            start, deliver, range_end=end, start_revision=start_revision,
            progress_notify=progress_notify, filters=filters, prev_kv=prev_kv,
            fragment=fragment, max_queue=max_queue, **extra)

        async def cancel() -> None:
            await client.cancel_watch(watch_id)

        self._track(watch_id, cancel)
        return watch_id

    async def add_watch_prefix_callback(self, key_prefix: KeyType,
                                        callback: Callable[[Any], Any],
                                        **kwargs: Any) -> int:
        """:meth:`add_watch_callback` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.add_watch_callback(key_prefix, callback, **kwargs)

    async def cancel_watch(self, watch_id: int) -> None:
        """Stop the watch ``watch_id`` (no-op when it already ended)."""
        self._watches.pop(watch_id, None)
        if not self._client.closed:
            await self._client.cancel_watch(watch_id)

    async def watch_response(self, key: KeyType, **kwargs: Any
                             ) -> Tuple[WatchResponses, CancelFn]:
        """Watch ``key``; returns ``(responses, cancel)``, keys without the prefix
        (see :meth:`etcd3.aio.Etcd3Client.watch_response`)."""
        client = self._live()
        start, kwargs["range_end"] = self._keys.watched(key, kwargs.get("range_end"))
        responses, cancel_watch = await client.watch_response(start, **kwargs)
        token = ("iterator", next(self._tokens))
        self._track(token, cancel_watch)

        async def cancel() -> None:
            self._watches.pop(token, None)
            await cancel_watch()

        stripped = WatchResponses(responses, self._keys)
        # Dropped unread, the iterator's watch needs no cancel from close() any more
        # (the client cancels a dropped iterator's watch itself).
        weakref.finalize(stripped, self._watches.pop, token, None)
        return stripped, cancel

    async def watch_prefix_response(self, key_prefix: KeyType, **kwargs: Any
                                    ) -> Tuple[WatchResponses, CancelFn]:
        """:meth:`watch_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.watch_response(key_prefix, **kwargs)

    async def watch(self, key: KeyType, **kwargs: Any) -> Tuple[WatchEvents, CancelFn]:
        """Watch ``key``; returns ``(events, cancel)``, event keys without the
        prefix."""
        responses, cancel = await self.watch_response(key, **kwargs)
        return WatchEvents(responses), cancel

    async def watch_prefix(self, key_prefix: KeyType, **kwargs: Any
                           ) -> Tuple[WatchEvents, CancelFn]:
        """:meth:`watch` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.watch(key_prefix, **kwargs)

    async def watch_once(self, key: KeyType, timeout: Optional[float] = None,
                         **kwargs: Any) -> Event:
        """Wait for the next change of ``key`` and return its event."""
        start, kwargs["range_end"] = self._keys.watched(key, kwargs.get("range_end"))
        event = await self._live().watch_once(start, timeout=timeout, **kwargs)
        return self._keys.event(event)

    async def watch_prefix_once(self, key_prefix: KeyType, timeout: Optional[float] = None,
                                **kwargs: Any) -> Event:
        """:meth:`watch_once` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.watch_once(key_prefix, timeout=timeout, **kwargs)

    async def watch_once_response(self, key: KeyType, timeout: Optional[float] = None,
                                  **kwargs: Any) -> WatchResponse:
        """The first response of a watch on ``key``."""
        start, kwargs["range_end"] = self._keys.watched(key, kwargs.get("range_end"))
        response = await self._live().watch_once_response(start, timeout=timeout, **kwargs)
        return self._keys.watch_response(response)

    async def watch_prefix_once_response(self, key_prefix: KeyType,
                                         timeout: Optional[float] = None,
                                         **kwargs: Any) -> WatchResponse:
        """:meth:`watch_once_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.watch_once_response(key_prefix, timeout=timeout, **kwargs)

    # -- leases ---------------------------------------------------------------------------

    async def lease(self, ttl: int, lease_id: Optional[int] = None, *,
                    keep_alive: bool = False,
                    on_expired: Optional[Callable[[Lease], Any]] = None,
                    timeout: Timeout = UNSET) -> Lease:
        """Grant a lease; ``await lease.keys`` lists the namespace's keys attached to
        it, without the prefix."""
        lease = await self._live().lease(ttl, lease_id, timeout=timeout)
        lease.etcd_client = self  # type: ignore[assignment]
        if keep_alive:
            lease.keep_alive(on_expired)
        return lease

    async def leases(self, *, timeout: Timeout = UNSET) -> List[Lease]:
        """Every lease of the cluster, each seeing its keys through this view."""
        leases = await self._live().leases(timeout=timeout)
        for lease in leases:
            lease.etcd_client = self  # type: ignore[assignment]
        return leases

    async def get_lease_info(self, lease_id: Any, keys: bool = True, *,
                             timeout: Timeout = UNSET) -> Any:
        """The LeaseTimeToLiveResponse; ``keys`` lists only the namespace's keys,
        without the prefix."""
        response = await self._live().get_lease_info(lease_id, keys, timeout=timeout)
        if keys and len(response.keys):
            inside = self._keys.lease_keys(list(response.keys))
            del response.keys[:]
            response.keys.extend(inside)
        return response

    def lease_keepalive_start(self, lease: Any,
                              on_expired: Optional[Callable[..., Any]] = None) -> None:
        """Have the client's keepalive stream renew ``lease``.

        :meta private:
        """
        client = self._live()
        self._leases.add(int(lease.id))
        client.lease_keepalive_start(lease, on_expired)

    def lease_keepalive_stop(self, lease_id: int) -> bool:
        """Stop renewing the lease ``lease_id``.

        :meta private:
        """
        self._leases.discard(int(lease_id))
        return bool(self._client.lease_keepalive_stop(lease_id))

    # -- caches ---------------------------------------------------------------------------

    async def cache_prefix(self, prefix: KeyType, **options: Any) -> AioNamespacedCache:
        """A local cache of every key of the namespace starting with ``prefix``
        (``""``: the whole namespace); see :meth:`etcd3.aio.Etcd3Client.cache_prefix`
        (same options). Its keys are without the prefix; :meth:`close` closes it."""
        start, end = self._keys.prefix_range(prefix, "prefix")
        return await self._cache(await self._live().cache_range(start, end, **options))

    async def cache_range(self, range_start: KeyType, range_end: KeyType,
                          **options: Any) -> AioNamespacedCache:
        """:meth:`cache_prefix` for the keys in ``[range_start, range_end)`` of the
        namespace (``range_end`` ``"\0"``: to its end)."""
        start, end = self._keys.range(range_start, range_end)
        return await self._cache(await self._live().cache_range(start, end, **options))

    async def _cache(self, cache: Any) -> AioNamespacedCache:
        if self._closed:
            await cache.close()
            raise view_closed(self.prefix)
        wrapped = AioNamespacedCache(cache, self._keys)
        self._caches.add(wrapped)
        return wrapped

    # -- locks, elections, STM ------------------------------------------------------------

    def lock(self, name: KeyType, ttl: Optional[int] = 60,
             prefix: Optional[KeyType] = None, *, timeout: Optional[float] = DEFAULT_TIMEOUT,
             on_lost: Optional[Callable[[Lock], Any]] = None) -> Lock:
        """An :class:`etcd3.aio.Lock` whose keys are in the namespace."""
        return Lock(name, ttl=ttl, etcd_client=self, prefix=prefix, timeout=timeout,
                    on_lost=on_lost)

    def election(self, name: KeyType, ttl: int = 60, *,
                 on_lost: Optional[Callable[[Election], Any]] = None) -> Election:
        """An :class:`etcd3.aio.Election` whose keys are in the namespace."""
        return Election(name, ttl=ttl, etcd_client=self, on_lost=on_lost)

    async def stm(self, apply: Callable[[STM], Any], isolation: str = "serializable_snapshot",
                  prefetch: Iterable[KeyType] = ()) -> Any:
        """Run ``apply(stm)`` as a software transaction on the namespace's keys."""
        return await run_stm(self, apply, isolation=isolation, prefetch=prefetch)

    # -- what concerns the whole cluster, not keys (see AIO_PASSED_THROUGH) ----------

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
    snapshot_stream = PassThrough()
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


def _no_key_options(options: Dict[str, Any]) -> None:
    if "range_end" in options or "key" in options:
        raise TypeError("Don't use key or range_end with prefix")

