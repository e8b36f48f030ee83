"""python-etcd3's ``etcd3.members`` module name; :class:`Member` lives in :mod:`etcd3.cluster`."""

from .cluster import Member

__all__ = ["Member"]
