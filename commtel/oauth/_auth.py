"""Bearer auth for httpx and requests that renews the token and replays a request once on 401.

Usage::

    oauth = OAuthClient("twitter", client_id, client_secret, store=FileTokenStore("~/.tokens"))
    with httpx.Client(auth=oauth.httpx_auth()) as http:          # or AsyncOAuthClient + httpx.AsyncClient
        http.get("https://api.x.com/2/users/me")
    requests.get(url, auth=oauth.requests_auth())

The decision (ask for a token, send, on 401 ask for a replacement of exactly the
refused token, send once more) is one sans-I/O generator, :func:`bearer_flow`;
httpx's sync and async auth flows and the requests response hook
(:mod:`._auth_requests`, which needs requests) only drive it.
Concurrent 401s share one refresh through :meth:`OAuthClient.get_token`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any, cast

import httpx

from ._client import AsyncOAuthClient, OAuthClient
from ._tokens import Token


__all__ = ["BearerFlow", "OAuthHTTPXAuth", "bearer_flow"]


@dataclass(frozen=True, slots=True)
class NeedToken:
    """The driver must answer with a usable token, replacing *rejected* if given."""

    rejected: Token | None


@dataclass(frozen=True, slots=True)
class Send:
    """The driver must send the request with *token* and answer with the response status."""

    token: Token


BearerFlow = Generator["NeedToken | Send", Any, None]


def bearer_flow() -> BearerFlow:
    """Attach a token; on 401 replace exactly that token and replay once."""
    token = cast("Token", (yield NeedToken(None)))
    status = cast("int", (yield Send(token)))
    if status == 401:
        token = cast("Token", (yield NeedToken(token)))
        yield Send(token)


def _resolve(flow: BearerFlow, step: NeedToken | Send, client: OAuthClient) -> Send:
    while isinstance(step, NeedToken):
        step = flow.send(client.get_token(rejected=step.rejected))
    return step


async def _aresolve(flow: BearerFlow, step: NeedToken | Send, client: AsyncOAuthClient) -> Send:
    while isinstance(step, NeedToken):
        step = flow.send(await client.get_token(rejected=step.rejected))
    return step


class OAuthHTTPXAuth(httpx.Auth):
    """``httpx.Auth`` sending an :class:`OAuthClient`'s bearer token, renewing it on 401.

    Pair an :class:`OAuthClient` with ``httpx.Client`` and an
    :class:`AsyncOAuthClient` with ``httpx.AsyncClient``. The request body is
    read first, so the single replay resends it intact.

    .. versionadded:: 0.1.0
    """

    requires_request_body = True

    def __init__(self, client: OAuthClient | AsyncOAuthClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"OAuthHTTPXAuth({self._client!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        client = self._client
        if not isinstance(client, OAuthClient):
            msg = "an AsyncOAuthClient's auth works with httpx.AsyncClient; use OAuthClient with httpx.Client"
            raise TypeError(msg)
        request.read()
        flow = bearer_flow()
        try:
            step = next(flow)
            while True:
                send = _resolve(flow, step, client)
                request.headers["Authorization"] = send.token.authorization
                response = yield request
                step = flow.send(response.status_code)
        except StopIteration:
            return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        client = self._client
        if not isinstance(client, AsyncOAuthClient):
            msg = "an OAuthClient's auth works with httpx.Client; use AsyncOAuthClient with httpx.AsyncClient"
            raise TypeError(msg)
        await request.aread()
        flow = bearer_flow()
        try:
            step = next(flow)
            while True:
                send = await _aresolve(flow, step, client)
                request.headers["Authorization"] = send.token.authorization
                response = yield request
                step = flow.send(response.status_code)
        except StopIteration:
            return
