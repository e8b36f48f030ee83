"""``etcd3.aio``: the asyncio client.

>>> import etcd3.aio
>>> async with etcd3.aio.client() as etcd:
...     await etcd.put("/key", "value")
...     value, meta = await etcd.get("/key")

Everything :class:`etcd3.Etcd3Client` does, awaited: see :mod:`etcd3.aio.client`.
The handles it returns (leases, locks, elections, STM, users, roles, members) are
the asyncio ones below; results, events, exceptions, :class:`~etcd3.Endpoint`,
:class:`~etcd3.Retry` and the transaction builders are those of :mod:`etcd3`.
"""

from ..pool import Endpoint
from ..retry import Retry
from .auth import AioRole as Role
from .auth import AioUser as User
from .client import Etcd3Client, client
from .cluster import AioMember as Member
from .election import Election, Observer
from .leases import Lease
from .locks import Lock
from .stm import STM

__all__ = ["Etcd3Client", "client", "Endpoint", "Retry", "Lease", "Lock", "Election",
           "Observer", "STM", "User", "Role", "Member"]
