"""etcd3: a Python client for etcd v3 with python-etcd3's API.

    import etcd3
    etcd = etcd3.client()
    etcd.put('foo', 'bar')
    value, meta = etcd.get('foo')
"""

from __future__ import annotations

from . import codec, events, exceptions, members, transactions, utils
from .auth import AuthStatus, Perm, Perms, Role, User
from .client import Etcd3Client, MultiEndpointEtcd3Client, client
from .cluster import Member
from .election import Election
from .events import DeleteEvent, Event, PutEvent, WatchResponse
from .exceptions import Etcd3Exception
from .leases import Lease
from .locks import Lock
from .maintenance import Alarm, AlarmType, Status
from .pool import Endpoint
from .results import KVMetadata, ResponseHeader
from .retry import Retry
from .stm import STM
from .transactions import Transactions

__version__ = "0.1.0"

__all__ = [
    "Etcd3Client", "MultiEndpointEtcd3Client", "client", "Endpoint", "Etcd3Exception",
    "KVMetadata", "ResponseHeader", "Lease", "Lock", "Election", "STM", "Member",
    "Status", "Alarm", "AlarmType", "Perms", "Perm", "User", "Role", "AuthStatus",
    "Retry", "Transactions", "Event", "PutEvent", "DeleteEvent", "WatchResponse",
    "codec", "events", "exceptions", "members", "transactions", "utils", "__version__",
]
