"""The one call path every RPC takes.

pick an endpoint -> attach the auth token -> call -> on failure decide (token refresh,
retry elsewhere, or raise a translated error). Streams get their channel and token
from here too and report failures back, so the pool's view of health is shared.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Tuple

import grpc

from . import _errors, exceptions
from ._token import TokenProvider
from .pool import ChannelPool, EndpointState
from .retry import Retry

log = logging.getLogger("etcd3")

_UNSET: Any = object()


@dataclass(frozen=True)
class Method:
    """An etcd RPC: its path, wire (de)serializers and whether it may be repeated."""

    path: str
    serializer: Callable[[Any], bytes]
    deserializer: Callable[[bytes], Any]
    repeatable: bool
    kind: str = "unary_unary"
    key: Tuple[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.path, id(self)))


class Transport:
    """Runs RPCs over a :class:`ChannelPool` under a :class:`Retry` policy."""

    def __init__(
        self,
        pool: ChannelPool,
        *,
        retry: Retry,
        timeout: Optional[float],
        token_provider: Optional[TokenProvider] = None,
        authenticate_method: Optional[Method] = None,
    ) -> None:
        self.pool = pool
        self.retry = retry
        self.timeout = timeout
        self.token_provider = token_provider
        self._authenticate_method = authenticate_method
        self._closed = threading.Event()

    # -- plumbing -------------------------------------------------------------------

    def _callable(self, state: EndpointState, method: Method) -> Any:
        index = state.pick_index()
        registry = state.callables[index]
        fn = registry.get(method.key)
        if fn is None:
            channel = state.channels[index]
            factory = getattr(channel, method.kind)
            fn = factory(method.path, request_serializer=method.serializer,
                         response_deserializer=method.deserializer)
            registry[method.key] = fn
        return fn

    def metadata_for(self, state: EndpointState) -> Optional[Tuple[Tuple[str, str], ...]]:
        """The auth metadata for a call to ``state`` (authenticating if needed)."""
        provider = self.token_provider
        if provider is None:
            return None
        token = provider.cached(state.name)
        if token is None:
            token = provider.get(state.name, lambda u, p: self._authenticate(state, u, p))
        return (("token", token),)

    def refresh_token(self, state: EndpointState,
                      rejected: Optional[Tuple[Tuple[str, str], ...]]) -> None:
        """Replace the token that ``state`` rejected with a new one."""
        provider = self.token_provider
        if provider is None:
            return
        old = rejected[0][1] if rejected else None
        log.info("etcd3: auth token rejected by %s, re-authenticating", state.name)
        provider.refresh(state.name, old, lambda u, p: self._authenticate(state, u, p))

    def _authenticate(self, state: EndpointState, user: str, password: str) -> str:
        method = self._authenticate_method
        if method is None:
            raise exceptions.AuthError("authentication is not available")
        from .etcdrpc import rpc_pb2

        req = rpc_pb2.AuthenticateRequest(name=user, password=password)
        deadline = self._deadline(_UNSET)
        last: Optional[BaseException] = None
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                fn = self._callable(state, method)
                response = fn(req, timeout=self._remaining(deadline))
                return str(response.token)
            except grpc.RpcError as error:
                last = error
                if not _errors.is_not_sent(error) or self._expired(deadline):
                    break
                time.sleep(self.retry.backoff(attempt + 1))
        assert last is not None
        raise _errors.translate(last, context=f"authenticating as {user!r}",
                                endpoint=state.name)

    def _deadline(self, timeout: Any) -> Optional[float]:
        if timeout is _UNSET:
            timeout = self.timeout
        if timeout is None:
            return None
        if timeout <= 0:
            raise ValueError("timeout must be > 0 or None")
        return time.monotonic() + timeout

    @staticmethod
    def _remaining(deadline: Optional[float]) -> Optional[float]:
        if deadline is None:
            return None
        return max(deadline - time.monotonic(), 0.0)

    @staticmethod
    def _expired(deadline: Optional[float]) -> bool:
        return deadline is not None and time.monotonic() >= deadline

    # -- unary calls ------------------------------------------------------------------

    def call(self, method: Method, request: Any, *, timeout: Any = _UNSET,
             context: str = "") -> Any:
        """Run a unary RPC and return its decoded response.

        :param timeout: seconds for the whole call, retries included (default: the
            client's timeout; None: no deadline).
        :param context: words added to an error message (e.g. the key).
        :raises Etcd3Exception: the translated failure (see :mod:`etcd3.exceptions`).
        """
        deadline = self._deadline(timeout)
        retry = self.retry
        repeatable = method.repeatable
        attempt = 0
        token_refreshed = False
        avoid: Optional[EndpointState] = None
        while True:
            attempt += 1
            state = self.pool.pick(avoid)
            attempt_timeout = self._remaining(deadline)
            capped = False
            if repeatable and retry.attempt_timeout is not None and (
                    attempt_timeout is None or retry.attempt_timeout < attempt_timeout):
                attempt_timeout = retry.attempt_timeout
                capped = True
            try:
                metadata = self.metadata_for(state)
                fn = self._callable(state, method)
                result = fn(request, timeout=attempt_timeout, metadata=metadata)
            except grpc.RpcError as error:
                if self._closed.is_set():
                    raise exceptions.ClientClosedError(
                        "this etcd3 client has been closed") from error
                if (self.token_provider is not None and not token_refreshed
                        and _errors.is_auth_token_error(error)):
                    token_refreshed = True
                    self.refresh_token(state, metadata)
                    attempt -= 1
                    continue
                code, _ = _errors.status_of(error)
                attempt_timed_out = (capped and code is grpc.StatusCode.DEADLINE_EXCEEDED
                                     and not self._expired(deadline))
                if code is grpc.StatusCode.UNAVAILABLE or attempt_timed_out:
                    self.pool.mark_failed(state)
                if (attempt < retry.max_attempts and not self._expired(deadline)
                        and retry.is_retryable(error, repeatable=repeatable,
                                               attempt_timed_out=attempt_timed_out)):
                    pause = retry.backoff(attempt)
                    remaining = self._remaining(deadline)
                    if remaining is not None:
                        pause = min(pause, remaining)
                    log.debug("etcd3: %s failed on %s (%s); retry %d in %.3fs",
                              method.path, state.name, code, attempt, pause)
                    if pause:
                        time.sleep(pause)
                    avoid = state
                    continue
                raise self._final_error(error, method, state, context,
                                        attempt) from error
            except exceptions.Etcd3Exception:
                raise
            if state.failures:
                self.pool.mark_ok(state)
            return result

    def _final_error(self, error: BaseException, method: Method, state: EndpointState,
                     context: str, attempts: int) -> exceptions.Etcd3Exception:
        translated = _errors.translate(error, context=context, endpoint=state.name)
        code, _ = _errors.status_of(error)
        if isinstance(translated, exceptions.ConnectionFailedError):
            detail = translated.message
            if not method.repeatable and not _errors.is_not_sent(error):
                detail += ("; the request may or may not have been applied "
                           "(writes are not retried once sent)")
            if attempts > 1:
                detail += f"; {attempts} attempts over endpoints {self.pool.describe()}"
            translated = type(translated)(detail)
            translated.__cause__ = error
        elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
            translated = exceptions.ConnectionTimeoutError(
                f"{method.path} did not complete within the deadline "
                f"(endpoint {state.name}; {attempts} attempt(s))")
            translated.__cause__ = error
        return translated

    # -- streams ----------------------------------------------------------------------

    def open_stream(self, method: Method, request: Any, *,
                    avoid: Optional[EndpointState] = None,
                    timeout: Optional[float] = None) -> Tuple[Any, EndpointState]:
        """Open a streaming RPC on a healthy endpoint.

        ``request`` is the request iterator (stream-stream) or message (unary-stream).
        Returns the gRPC call (iterate it for responses) and the endpoint it runs on;
        the caller reports failures with :meth:`report_failure`.
        """
        state = self.pool.pick(avoid)
        metadata = self.metadata_for(state)
        fn = self._callable(state, method)
        return fn(request, timeout=timeout, metadata=metadata), state

    def report_failure(self, state: EndpointState, error: BaseException) -> None:
        """Tell the pool a stream on ``state`` failed (ejects it when unavailable)."""
        if _errors.is_unavailable(error):
            self.pool.mark_failed(state)

    def report_success(self, state: EndpointState) -> None:
        """Tell the pool a stream on ``state`` works."""
        if state.failures:
            self.pool.mark_ok(state)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Close every channel; in-flight calls fail with ClientClosedError."""
        self._closed.set()
        self.pool.close()


def iterate_stream(call: Iterator[Any]) -> Iterator[Any]:
    """Iterate a gRPC response stream, translating its failure."""
    try:
        yield from call
    except grpc.RpcError as error:
        raise _errors.translate(error) from error
