"""What a cluster member is, for every driver: the data of a ``Member`` and the
checks of membership call arguments. The drivers' ``Member`` classes
(:mod:`etcd3.cluster`, :mod:`etcd3.aio.cluster`) add the calls."""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple, Union

Urls = Union[str, Sequence[str]]


class MemberInfo:
    """A member of the etcd cluster (python-etcd3-compatible).

    ``id`` (int), ``name`` (empty until a newly added member has started),
    ``peer_urls`` and ``client_urls`` (lists of str) and ``is_learner``. Members
    are equal when their ids are.
    """

    __slots__ = ("id", "name", "peer_urls", "client_urls", "is_learner")

    def __init__(self, id: int, name: str, peer_urls: Sequence[str],
                 client_urls: Sequence[str], is_learner: bool = False) -> None:
        self.id = id
        self.name = name
        self.peer_urls = list(peer_urls)
        self.client_urls = list(client_urls)
        self.is_learner = is_learner

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemberInfo):
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return (f"Member {self.id}: peer urls: {self.peer_urls}, "
                f"client urls: {self.client_urls}")

    def __repr__(self) -> str:
        learner = ", is_learner=True" if self.is_learner else ""
        return (f"Member(id={self.id}, name={self.name!r}, peer_urls={self.peer_urls}, "
                f"client_urls={self.client_urls}{learner})")


def member_fields(member: Any) -> Tuple[int, str, List[str], List[str], bool]:
    """``(id, name, peer_urls, client_urls, is_learner)`` of an
    ``etcdserverpb.Member`` message."""
    return (member.ID, member.name, list(member.peerURLs), list(member.clientURLs),
            bool(member.isLearner))


def url_list(urls: Urls) -> List[str]:
    """``urls`` (one URL or several) as a list.

    :raises ValueError: no URL, or one that is not a non-empty string.
    """
    if isinstance(urls, str):
        return [urls]
    result = list(urls)
    if not result or not all(isinstance(url, str) and url for url in result):
        raise ValueError(f"peer URLs must be non-empty strings, got {urls!r}")
    return result
