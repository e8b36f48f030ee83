"""Placeholder: filled in by its issue."""

from __future__ import annotations

from ._base import ServiceBase


class LockMixin(ServiceBase):
    """Methods of :class:`~etcd3.client.Etcd3Client` (to be written)."""
