"""Is the watch stream's member answering, and for how long has none answered (no I/O).

gRPC keepalive alone does not always notice a frozen (SIGSTOPped) member: it keeps
its TCP socket. :class:`SilenceProbe` says when a silent stream should be asked for a
progress notification, and when the lack of any answer means the member is gone.
:class:`Outage` tracks a time with no answering member at all: since when, which
endpoints were tried, the last failure, and when to warn about it. Time is passed in.
"""

from __future__ import annotations

from typing import List, Optional

#: What :meth:`SilenceProbe.tick` asks for.
PROBE = "probe"
RECONNECT = "reconnect"


class SilenceProbe:
    """When to probe a silent stream and when to give up on its member.

    :param silence: seconds without any response before a probe is sent.
    :param timeout: seconds an unanswered probe waits before the member counts as gone.
    """

    def __init__(self, silence: float, timeout: float) -> None:
        self.silence = silence
        self.timeout = timeout
        #: When the stream last delivered anything (the driver writes it per response).
        self.last_seen = 0.0
        self.attached_at = 0.0
        self.probe_sent = 0.0

    def attached(self, now: float) -> None:
        """A new stream opened at ``now``."""
        self.attached_at = now
        self.probe_sent = 0.0

    def silent_for(self, now: float) -> float:
        """Seconds since the stream last delivered anything (or opened)."""
        return now - max(self.last_seen, self.attached_at)

    def tick(self, now: float, streaming: bool) -> Optional[str]:
        """:data:`PROBE` (send a progress request now), :data:`RECONNECT` (the member
        did not answer the probe: reopen the stream elsewhere) or None.
        ``streaming``: a stream is open."""
        if not streaming:
            self.probe_sent = 0.0
            return None
        if self.probe_sent > self.last_seen and now - self.probe_sent > self.timeout:
            self.probe_sent = 0.0
            return RECONNECT
        if self.silent_for(now) > self.silence and self.probe_sent <= self.last_seen:
            self.probe_sent = now
            return PROBE
        return None


class Outage:
    """A time without any member answering the stream (``since`` None: there is one)."""

    def __init__(self) -> None:
        self.since: Optional[float] = None
        #: Endpoints tried since the outage began, in order.
        self.tried: List[str] = []
        #: gRPC's words for the last failure.
        self.error = ""
        self.warned = 0.0

    def begin(self, now: float) -> None:
        """No stream is up (an attempt to open one starts): count from ``now`` unless
        an outage is already counting."""
        if self.since is None:
            self.since = now
            self.tried, self.error, self.warned = [], "", 0.0

    def tried_endpoint(self, endpoint: str) -> None:
        if endpoint not in self.tried:
            self.tried.append(endpoint)

    def end(self) -> Optional[float]:
        """A member answered (or nothing is watched): the outage is over. Returns
        when it began if a warning was logged about it (else None)."""
        since, warned = self.since, self.warned
        self.since, self.warned = None, 0.0
        return since if since is not None and warned else None

    def should_warn(self, now: float, after: float, every: float) -> bool:
        """True (and the warning counted) when the outage has lasted ``after``
        seconds and no warning was logged in the last ``every`` seconds."""
        if self.since is None or now - self.since < after:
            return False
        if self.warned and now - self.warned < every:
            return False
        self.warned = now
        return True
