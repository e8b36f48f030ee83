"""What :class:`~etcd3._core.watch_core.WatchCore` asks its driver to do.

Every step of the core returns a list of these, to be carried out in order (and before
the next step, so that the core's view of each inbox stays true).
"""

from __future__ import annotations

from typing import Any, List, Tuple, Union

from .watch_state import Item, ServerWatch, Subscriber


class Send:
    """Write ``request`` (a ``WatchRequest``) on the open stream."""

    __slots__ = ("request",)

    def __init__(self, request: Any) -> None:
        self.request = request


class Dispatch:
    """Call each subscriber's callback with ``item``, in order, off the network path."""

    __slots__ = ("subscribers", "item")

    def __init__(self, subscribers: Tuple[Subscriber, ...], item: Item) -> None:
        self.subscribers = subscribers
        self.item = item


class Enqueue:
    """Put ``item`` in the inbox of each iterator subscriber in ``subscribers``."""

    __slots__ = ("subscribers", "item")

    def __init__(self, subscribers: Tuple[Subscriber, ...], item: Item) -> None:
        self.subscribers = subscribers
        self.item = item


class End:
    """End the iterator of ``subscriber`` (it was cancelled or the client closed)."""

    __slots__ = ("subscriber",)

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber


class Settle:
    """Wake whoever waits for ``watch``: it was confirmed, refused or ended."""

    __slots__ = ("watch",)

    def __init__(self, watch: ServerWatch) -> None:
        self.watch = watch


class Reconnect:
    """etcd refused a create for a token that may be stale: end the stream, get a new
    token, open a new stream (every watch is re-created on it)."""

    __slots__ = ()


Action = Union[Send, Dispatch, Enqueue, End, Settle, Reconnect]
Actions = List[Action]
