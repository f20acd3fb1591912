"""A simulated rate-limited, flaky platform API: a real HTTP server on 127.0.0.1.

Used by the tests, the examples and ``commtel demo``. Each client (bearer token,
``X-Client-ID`` header, or address) has a fixed-window quota; over it the server
answers 429 with ``Retry-After``, ``X-RateLimit-*`` and IETF ``RateLimit`` headers.
5xx bursts, slow calls and hangs are switched on per request, per platform
(``fail_next``) or at random (``error_rate``), and a small OAuth token endpoint
issues expiring bearer tokens when ``require_auth`` is on.

Routes::

    GET|POST /api/<anything>       the API; JSON echo of path, client and correlation id
    GET      /slow?delay=S         answers after S seconds
    GET      /status/<code>        answers with that status
    POST     /oauth/token          client_credentials / refresh_token grants (form body)
    GET      /admin/stats          counters as JSON
    POST     /admin/fail?count=N&status=503   the next N API calls fail
"""

from __future__ import annotations

import json
import math
import random
import secrets
import threading
import time

from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from typing_extensions import Self

from .. import _validation as check


__all__ = ["PlatformStats", "RecordedRequest", "SimulatedPlatform"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    status: int


@dataclass(slots=True)
class PlatformStats:
    """What the server has answered so far."""

    requests: int = 0
    throttled: int = 0
    errors: int = 0
    unauthorized: int = 0
    token_requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "errors": self.errors,
            "unauthorized": self.unauthorized,
            "token_requests": self.token_requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    platform: SimulatedPlatform

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are normal here; say nothing."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, a keep-alive client's delayed
    # ACK stalls every response ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr access log."""

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.server.platform._record(self, status)  # before answering: a client that has its answer finds it recorded
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self.server.platform._handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815


class SimulatedPlatform:
    """A local platform API with quotas, errors and OAuth; start it, point a client at ``url``.

    Args:
        name: Platform name (shown in responses).
        limit: Requests each client may make per *window_s*.
        window_s: Length of the fixed quota window.
        error_rate: Probability that an API call fails with *error_status*.
        error_status: Status used for random failures.
        latency_s: Added to every API call.
        require_auth: API calls need a bearer token from ``/oauth/token``.
        token_ttl_s: Lifetime of issued access tokens.
        client_id / client_secret: Credentials the token endpoint accepts.
        seed: Seed of the random failures (reproducible runs).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        name: str = "platform",
        *,
        limit: int = 100,
        window_s: float = 60.0,
        error_rate: float = 0.0,
        error_status: int = 503,
        latency_s: float = 0.0,
        require_auth: bool = False,
        token_ttl_s: float = 3600.0,
        client_id: str = "commtel-client",
        client_secret: str = "commtel-secret",  # noqa: S107 - a test credential of a local simulator
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        owner = "SimulatedPlatform"
        self.name = name
        self.limit = check.whole(limit, "limit", owner=owner)
        self.window_s = check.duration(window_s, "window_s", owner=owner, positive=True)
        self.error_rate = check.fraction(error_rate, "error_rate", owner=owner)
        self.error_status = check.whole(error_status, "error_status", owner=owner, minimum=100)
        self.latency_s = check.duration(latency_s, "latency_s", owner=owner)
        self.require_auth = require_auth
        self.token_ttl_s = check.duration(token_ttl_s, "token_ttl_s", owner=owner, positive=True)
        check.whole(port, "port", owner=owner, minimum=0)
        self.client_id = client_id
        self.client_secret = client_secret
        self.stats = PlatformStats()
        self.requests: deque[RecordedRequest] = deque(maxlen=1000)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}
        self._fail: deque[int] = deque()
        self._fail_token: deque[int] = deque()
        self._tokens: dict[str, float] = {}
        self._refresh_tokens: set[str] = set()
        self._server = _Server((host, port), _Handler)
        self._server.platform = self
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SimulatedPlatform({self.name!r}, url={self.url!r}, limit={self.limit}/{self.window_s}s)"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name=f"sim-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail_next(self, count: int, status: int = 503) -> None:
        """Make the next *count* API calls fail with *status* (a 5xx burst)."""
        with self._lock:
            self._fail.extend([status] * count)

    def fail_next_token(self, count: int, status: int = 503) -> None:
        """Make the next *count* token requests fail (503: ``temporarily_unavailable``, 400: ``invalid_grant``)."""
        with self._lock:
            self._fail_token.extend([status] * count)

    def issue_token(self, ttl_s: float | None = None) -> str:
        """Mint an access token directly (tests); it expires after *ttl_s*."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + (self.token_ttl_s if ttl_s is None else ttl_s)
        return token

    def expire_tokens(self) -> None:
        """Make every issued access token invalid (the next call gets 401)."""
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        """Forget quotas, injected failures and counters (tokens stay valid)."""
        with self._lock:
            self._windows.clear()
            self._fail.clear()
            self._fail_token.clear()
            self.stats = PlatformStats()
            self.requests.clear()

    # -- request handling -------------------------------------------------------------

    def _record(self, handler: _Handler, status: int) -> None:
        with self._lock:
            self.stats.by_status[status] += 1
            self.requests.append(RecordedRequest(handler.command, handler.path, dict(handler.headers.items()), status))

    def _client(self, handler: _Handler) -> str:
        auth = handler.headers.get("Authorization", "")
        return handler.headers.get("X-Client-ID") or auth or handler.client_address[0]

    def _quota(self, client: str) -> tuple[bool, dict[str, str]]:
        now = time.time()
        with self._lock:
            start, used = self._windows.get(client, (now, 0))
            if now - start >= self.window_s:
                start, used = now, 0
            allowed = used < self.limit
            if allowed:
                used += 1
            self._windows[client] = (start, used)
        reset_in = max(0.0, start + self.window_s - now)
        remaining = self.limit - used
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(math.ceil(start + self.window_s)),
            "RateLimit-Policy": f'"default";q={self.limit};w={math.ceil(self.window_s)}',
            "RateLimit": f'"default";r={remaining};t={math.ceil(reset_in)}',
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, math.ceil(reset_in)))
        return allowed, headers

    def _authorized(self, handler: _Handler) -> bool:
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        with self._lock:
            expiry = self._tokens.get(auth[7:])
        return expiry is not None and expiry > time.time()

    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        body = handler._body()
        if path == "/oauth/token":
            self._token_endpoint(handler, body)
            return
        if path == "/admin/stats":
            handler._send(200, self.stats.as_dict())
            return
        if path == "/admin/fail":
            self.fail_next(int(query.get("count", "1")), int(query.get("status", "503")))
            handler._send(200, {"ok": True})
            return
        with self._lock:
            self.stats.requests += 1
        if self.require_auth and not self._authorized(handler):
            with self._lock:
                self.stats.unauthorized += 1
            handler._send(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        allowed, headers = self._quota(self._client(handler))
        if not allowed:
            with self._lock:
                self.stats.throttled += 1
            handler._send(429, {"error": "rate_limited", "platform": self.name}, headers)
            return
        with self._lock:
            injected = self._fail.popleft() if self._fail else None
        if injected is None and self.error_rate and self._random.random() < self.error_rate:
            injected = self.error_status
        if injected is None and path.startswith("/status/"):
            injected = int(path.removeprefix("/status/") or "200")
        delay = self.latency_s + (float(query.get("delay", "0")) if path == "/slow" else 0.0)
        if delay > 0:
            time.sleep(delay)
        if injected is not None and injected >= 400:
            with self._lock:
                self.stats.errors += 1
            handler._send(injected, {"error": "injected", "status": injected}, headers)
            return
        handler._send(
            injected or 200,
            {
                "ok": True,
                "platform": self.name,
                "method": handler.command,
                "path": path,
                "correlation_id": handler.headers.get("X-Correlation-ID"),
                "bytes": len(body),
            },
            headers,
        )

    def _token_endpoint(self, handler: _Handler, body: bytes) -> None:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        with self._lock:
            self.stats.token_requests += 1
            failing = self._fail_token.popleft() if self._fail_token else None
        if failing is not None:
            error = "invalid_grant" if failing == 400 else "temporarily_unavailable"
            handler._send(failing, {"error": error, "error_description": "injected failure"})
            return
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            import base64

            decoded = base64.b64decode(auth[6:]).decode("utf-8", "replace")
            client_id, _, client_secret = decoded.partition(":")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            handler._send(401, {"error": "invalid_client", "error_description": "unknown client"})
            return
        grant = form.get("grant_type")
        if grant == "refresh_token":
            with self._lock:
                known = form.get("refresh_token") in self._refresh_tokens
                if known:
                    self._refresh_tokens.discard(form.get("refresh_token", ""))
            if not known:
                handler._send(400, {"error": "invalid_grant", "error_description": "refresh token unknown"})
                return
        elif grant != "client_credentials":
            handler._send(400, {"error": "unsupported_grant_type"})
            return
        refresh = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens.add(refresh)
        handler._send(
            200,
            {
                "access_token": self.issue_token(),
                "token_type": "Bearer",
                "expires_in": int(self.token_ttl_s),
                "refresh_token": refresh,
            },
            {"Cache-Control": "no-store"},
        )
