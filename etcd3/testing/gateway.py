"""One JSON request to etcd's HTTP gateway (health, maintenance status)."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any, Optional


def http_json(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    timeout: float = 2.0,
) -> Any:
    """One HTTP(S) request without proxies; returns the decoded JSON body."""
    conn: http.client.HTTPConnection
    if ssl_context is not None:
        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl_context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data.decode("utf-8"))
    finally:
        conn.close()
