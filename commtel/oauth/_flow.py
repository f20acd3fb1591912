"""Sans-I/O OAuth exchanges as generators, and their two drivers (httpx sync and async).

Each flow (code exchange, refresh, client credentials, revocation) is a
generator that yields an :class:`EndpointRequest`, is sent the
:class:`EndpointResponse`, and returns its result (a :class:`Token`, or
``None`` for revocation) or raises a typed :class:`~commtel.OAuthError`. Requests
are built with authlib's protocol helpers (RFC 6749 token requests, RFC 7009
revocation, client authentication), so each algorithm exists once; the drivers
:func:`run_sync` and :func:`run_async` only move bytes and time each request,
as ``httpx._auth`` does with ``sync_auth_flow``/``async_auth_flow``.
"""

from __future__ import annotations

import json
import time

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from .. import _events
from .._exceptions import OAuthError
from .._timing import monotonic
from ._errors import OAuthNetworkError, provider_error
from ._events import TokenRequestFinished
from ._providers import OAuthProvider
from ._secrets import seen
from ._tokens import Token


if TYPE_CHECKING:
    import httpx


__all__ = [
    "ClientCredentials",
    "EndpointRequest",
    "EndpointResponse",
    "Flow",
    "authorization_code_flow",
    "client_credentials_flow",
    "refresh_token_flow",
    "revocation_flow",
    "run_async",
    "run_sync",
]

_T = TypeVar("_T")
#: A sans-I/O exchange: yields requests, is sent responses, returns the result.
Flow = Generator["EndpointRequest", "EndpointResponse", _T]
_SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
_SECRET_PARAMS = ("code", "code_verifier", "refresh_token")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The client's identity at one provider; the secret never shows in ``repr``."""

    provider: OAuthProvider
    client_id: str
    client_secret: str | None = field(default=None, repr=False)

    @property
    def auth_method(self) -> str:
        """Client authentication to use: the provider's, or ``none`` for a public client."""
        return "none" if self.client_secret is None else self.provider.client_auth


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    """A POST to a token or revocation endpoint, ready to send."""

    grant_type: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class EndpointResponse:
    """What the endpoint answered."""

    status_code: int
    content: bytes = field(repr=False)
    content_type: str = ""


def _endpoint_request(creds: ClientCredentials, grant_type: str, url: str, body: str) -> EndpointRequest:
    from authlib.oauth2.auth import ClientAuth

    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    auth = ClientAuth(creds.client_id, creds.client_secret, creds.auth_method)
    url, headers, body = auth.prepare("POST", url, headers, body)
    return EndpointRequest(grant_type, url, headers, body)


def _parse(response: EndpointResponse) -> dict[str, Any] | None:
    """The response body as a dict (JSON, or form-encoded as old GitHub answers), else None."""
    try:
        data: Any = json.loads(response.content)
    except ValueError:
        if "x-www-form-urlencoded" not in response.content_type:
            return None
        data = dict(parse_qsl(response.content.decode("utf-8", "replace")))
    if not isinstance(data, dict):
        return None
    seen(*(value for name in _SECRET_FIELDS if isinstance(value := data.get(name), str)))
    return data


def _token_flow(
    creds: ClientCredentials, grant_type: str, *, now: float, keep_refresh_token: str | None = None, **params: Any
) -> Flow[Token]:
    from authlib.oauth2.rfc6749.parameters import prepare_token_request

    sent = [params.get(name) for name in _SECRET_PARAMS]
    seen(*sent)
    body = prepare_token_request(grant_type, **params)
    response = yield _endpoint_request(creds, grant_type, creds.provider.token_url, body)
    data = _parse(response)
    if response.status_code == 200 and data and data.get("access_token") and not data.get("error"):
        return Token.from_response(data, now=now, refresh_token=keep_refresh_token)
    raise provider_error(
        data, provider=creds.provider.name, status_code=response.status_code, sent=[*sent, creds.client_secret]
    )


def authorization_code_flow(
    creds: ClientCredentials, *, code: str, code_verifier: str | None, redirect_uri: str | None, now: float
) -> Flow[Token]:
    """Exchange an authorization *code* (with its PKCE *code_verifier*) for a token."""
    return _token_flow(
        creds,
        "authorization_code",
        now=now,
        code=code,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
        client_id=creds.client_id if creds.auth_method == "none" else None,
    )


def refresh_token_flow(
    creds: ClientCredentials, *, refresh_token: str, scope: str | None = None, now: float
) -> Flow[Token]:
    """Refresh; a response without a new refresh token keeps *refresh_token* (no rotation)."""
    return _token_flow(
        creds, "refresh_token", now=now, keep_refresh_token=refresh_token, refresh_token=refresh_token, scope=scope
    )


def client_credentials_flow(creds: ClientCredentials, *, scope: str | None = None, now: float) -> Flow[Token]:
    """Get a token for the client itself (no user)."""
    return _token_flow(creds, "client_credentials", now=now, scope=scope)


def revocation_flow(creds: ClientCredentials, *, token: str, token_type_hint: str | None) -> Flow[None]:
    """Revoke *token* at the provider's RFC 7009 endpoint (200 means revoked or unknown)."""
    from authlib.oauth2.rfc7009 import prepare_revoke_token_request

    url = creds.provider.revocation_url
    if url is None:  # callers check; this guards direct use
        msg = f"provider {creds.provider.name!r} has no revocation endpoint"
        raise OAuthError("unsupported_operation", msg, provider=creds.provider.name)  # noqa: EM101 - an error code
    seen(token)
    body, _ = prepare_revoke_token_request(token, token_type_hint)
    response = yield _endpoint_request(creds, "revocation", url, body)
    if response.status_code != 200:
        raise provider_error(
            _parse(response),
            provider=creds.provider.name,
            status_code=response.status_code,
            sent=(token, creds.client_secret),
        )


class _Exchange(Generic[_T]):
    """A flow's requests in turn: hands the flow each response, times each request as a :class:`TokenRequestFinished`."""

    __slots__ = ("_flow", "_provider", "_started", "_started_ns", "request", "result")

    def __init__(self, flow: Flow[_T], provider: OAuthProvider) -> None:
        self._flow = flow
        self._provider = provider
        #: The request to send next.
        self.request = next(flow)
        #: What the flow returned (set when :meth:`received` returns True).
        self.result: _T
        self._start()

    def _start(self) -> None:
        self._started_ns = time.time_ns()
        self._started = monotonic()

    def received(self, raw: httpx.Response) -> bool:
        """Hand *raw* to the flow; True when it finished (its value in :attr:`result`), else :attr:`request` is next."""
        try:
            request = self._flow.send(_response(raw))
        except StopIteration as stop:
            self._finish(status_code=raw.status_code, result=stop.value)
            self.result = stop.value
            return True
        except OAuthError as exc:
            self._finish(status_code=raw.status_code, error=exc.error)
            raise
        self._finish(status_code=raw.status_code)
        self.request = request
        self._start()
        return False

    def _finish(self, *, status_code: int | None, error: str | None = None, result: object = None) -> None:
        if listeners := _events.active_listeners():
            url = urlsplit(self.request.url)
            _events.emit(
                TokenRequestFinished(
                    provider=self._provider.name,
                    grant_type=self.request.grant_type,
                    success=error is None,
                    error=error,
                    status_code=status_code,
                    server_address=url.hostname or "",
                    server_port=url.port,
                    started_at_ns=self._started_ns,
                    duration_s=monotonic() - self._started,
                    expires_at=result.expires_at if isinstance(result, Token) else None,
                ),
                listeners,
            )

    def network_error(self, exc: Exception) -> OAuthNetworkError:
        """Report the request as failed on the network; the error to raise."""
        self._finish(status_code=None, error="network_error")
        host = urlsplit(self.request.url).hostname
        return OAuthNetworkError(f"{type(exc).__name__} talking to {host}: {exc}", provider=self._provider.name)


def _response(raw: httpx.Response) -> EndpointResponse:
    return EndpointResponse(raw.status_code, raw.content, raw.headers.get("content-type", ""))


def run_sync(flow: Flow[_T], http: httpx.Client, provider: OAuthProvider) -> _T:
    """Drive *flow* over a synchronous httpx client."""
    import httpx

    exchange = _Exchange(flow, provider)
    while True:
        request = exchange.request
        try:
            raw = http.post(request.url, content=request.body, headers=request.headers)
        except httpx.HTTPError as exc:
            raise exchange.network_error(exc) from exc
        if exchange.received(raw):
            return exchange.result


async def run_async(flow: Flow[_T], http: httpx.AsyncClient, provider: OAuthProvider) -> _T:
    """Drive *flow* over an asynchronous httpx client."""
    import httpx

    exchange = _Exchange(flow, provider)
    while True:
        request = exchange.request
        try:
            raw = await http.post(request.url, content=request.body, headers=request.headers)
        except httpx.HTTPError as exc:
            raise exchange.network_error(exc) from exc
        if exchange.received(raw):
            return exchange.result
