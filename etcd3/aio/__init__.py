"""``etcd3.aio``: the asyncio client.

>>> import etcd3.aio
>>> async with etcd3.aio.client() as etcd:
...     await etcd.put("/key", "value")
...     value, meta = await etcd.get("/key")

Everything :class:`etcd3.Etcd3Client` does, awaited: see :mod:`etcd3.aio.client`.
"""

from .client import Etcd3Client, client

__all__ = ["Etcd3Client", "client"]
