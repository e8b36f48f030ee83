"""What the client's helper objects may use of the client: narrow, typed Protocols.

:class:`~etcd3.leases.Lease`, :class:`~etcd3.locks.Lock`,
:class:`~etcd3.election.Election`, :class:`~etcd3.stm.STM`,
:class:`~etcd3.auth.User`, :class:`~etcd3.auth.Role` and
:class:`~etcd3.cluster.Member` talk to
:class:`~etcd3.client.Etcd3Client` only through these public (or documented
internal) methods, never its private attributes, so each can be driven by any
object that has them (a test double, or another driver).
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterator,
    List,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
    Union,
)

from .._core.deadline import Timeout

if TYPE_CHECKING:
    from ..auth import Perms
    from ..events import WatchResponse
    from ..leases import Lease
    from ..results import RangeResponse, TxnResponse

KeyType = Any  # str or bytes, checked by the client
C = TypeVar("C")


def required(client: Optional[C], owner: object) -> C:
    """``client``, the ``etcd_client`` of ``owner``.

    :raises AttributeError: ``owner`` was made without one.
    """
    if client is None:
        raise AttributeError(f"this {type(owner).__name__} has no etcd_client")
    return client


class KVClient(Protocol):
    """Reads and transactions (what STM uses)."""

    def get_response(self, key: KeyType, *, timeout: Timeout = ...,
                     **options: Any) -> RangeResponse:
        """The Range response for one key."""

    def get_range_response(self, range_start: KeyType, range_end: KeyType, *,
                           timeout: Timeout = ..., **options: Any) -> RangeResponse:
        """The Range response for ``[range_start, range_end)``."""

    def transaction_response(self, compare: Any, success: Any = None,
                             failure: Any = None, *, timeout: Timeout = ...) -> TxnResponse:
        """The TxnResponse of a transaction."""


class LeaseClient(Protocol):
    """Lease calls and the keepalive stream (what a Lease uses)."""

    def get_lease_info(self, lease_id: Any, keys: bool = True, *,
                       timeout: Timeout = ...) -> Any:
        """The LeaseTimeToLiveResponse."""

    def revoke_lease(self, lease_id: Any, *, timeout: Timeout = ...) -> None:
        """Revoke a lease."""

    def refresh_lease(self, lease_id: Any, *, timeout: Timeout = ...) -> List[Any]:
        """Send one keepalive."""

    def lease_keepalive_start(self, lease: Lease,
                              on_expired: Optional[Callable[[Lease], None]]) -> None:
        """Have the keepalive stream renew ``lease``."""

    def lease_keepalive_stop(self, lease_id: int) -> bool:
        """Stop renewing a lease; True if it was renewed."""

    def lease_keepalive_active(self, lease_id: int) -> bool:
        """True while the keepalive stream renews the lease."""

    def lease_alive_until(self, lease_id: int) -> Optional[float]:
        """The monotonic time up to which the lease is known to live, or None."""


class ConcurrencyClient(KVClient, Protocol):
    """What locks and elections use: reads, transactions, leases kept alive, and
    watches."""

    @property
    def timeout(self) -> Optional[float]:
        """The client's default timeout (None: no deadline)."""

    def lease(self, ttl: int, lease_id: Optional[int] = None, *, keep_alive: bool = False,
              on_expired: Optional[Callable[..., Any]] = None,
              timeout: Timeout = ...) -> Lease:
        """Grant a lease (``on_expired`` may be a :class:`weakref.WeakMethod`)."""

    def lease_alive_until(self, lease_id: int) -> Optional[float]:
        """As :meth:`LeaseClient.lease_alive_until`."""

    def add_watch_callback(self, key: KeyType, callback: Callable[[Any], None],
                           range_end: Optional[KeyType] = None,
                           start_revision: Optional[int] = None,
                           progress_notify: bool = False, filters: Any = None,
                           prev_kv: bool = False, fragment: bool = False,
                           max_queue: Optional[int] = None,
                           unreachable_timeout: Timeout = ...) -> int:
        """Watch with a callback; returns the watch id."""

    def cancel_watch(self, watch_id: int) -> None:
        """Stop a watch."""

    def watch_response(self, key: KeyType, **kwargs: Any
                       ) -> Tuple[Iterator[WatchResponse], Callable[[], None]]:
        """Watch with an iterator; returns ``(responses, cancel)``."""


class AuthClient(Protocol):
    """User and role calls (what a User and a Role use)."""

    def grant_role(self, user: str, role: str, *, timeout: Timeout = ...) -> None:
        """Grant ``role`` to ``user``."""

    def revoke_role(self, user: str, role: str, *, timeout: Timeout = ...) -> bool:
        """Revoke ``role`` from ``user``."""

    def delete_user(self, name: str, *, timeout: Timeout = ...) -> None:
        """Delete a user."""

    def grant_permission_role(self, role: str, perm: Union[Perms, int], key: KeyType,
                              end: Optional[KeyType] = None, prefix: bool = False, *,
                              timeout: Timeout = ...) -> None:
        """Grant a permission to ``role``."""

    def revoke_permission_role(self, role: str, key: KeyType,
                               end: Optional[KeyType] = None, prefix: bool = False, *,
                               timeout: Timeout = ...) -> bool:
        """Revoke a permission from ``role``."""

    def delete_role(self, name: str, *, timeout: Timeout = ...) -> None:
        """Delete a role."""


class ClusterClient(Protocol):
    """Membership and alarm calls (what a Member uses)."""

    def remove_member(self, member_id: int, *, timeout: Timeout = ...) -> None:
        """Remove a member."""

    def update_member(self, member_id: int, peer_urls: Any, *, timeout: Timeout = ...) -> None:
        """Change a member's peer URLs."""

    def promote_member(self, member_id: int, *, timeout: Timeout = ...) -> None:
        """Promote a learner."""

    def list_alarms(self, member_id: int = 0, alarm_type: Any = "none", *,
                    timeout: Timeout = ...) -> List[Any]:
        """The active alarms."""
