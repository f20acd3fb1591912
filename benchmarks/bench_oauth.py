"""OAuth bearer auth per request: commtel vs authlib's httpx OAuth2Client vs a static header.

Every case sends one GET through httpx to a ``MockTransport`` (no network), so the
numbers are the cost of attaching a token that is still fresh: commtel's
``OAuthHTTPXAuth`` (``get_token`` fast path + the sans-I/O bearer flow), authlib's
``OAuth2Client`` (``ensure_active_token`` + ``OAuth2Auth``), and the floor: a client
with a fixed ``Authorization`` header.
"""

from __future__ import annotations

import time
import warnings

import httpx

from prometheus_client import CollectorRegistry

from benchmarks._harness import Case
from commtel import OAuthClient, Token
from commtel.oauth import OAuthProvider
from commtel.telemetry._metrics import use_registry


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # authlib's httpx integration warns about its own httpx2 rename
    from authlib.integrations.httpx_client import OAuth2Client

_URL = "http://api.bench/me"


def _ok(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def cases() -> list[Case]:
    use_registry(CollectorRegistry())
    transport = httpx.MockTransport(_ok)
    expires_at = time.time() + 86400
    provider = OAuthProvider(name="bench", authorize_url="http://auth.bench/a", token_url="http://auth.bench/t")

    oauth = OAuthClient(provider, "bench-id", "bench-secret")
    oauth.store.save(oauth.key, Token("bench-access-token", expires_at=expires_at, refresh_token="bench-refresh"))
    ours = httpx.Client(auth=oauth.httpx_auth(), transport=transport)

    theirs = OAuth2Client(
        "bench-id",
        "bench-secret",
        token_endpoint="http://auth.bench/t",
        transport=transport,
        token={
            "access_token": "bench-access-token",
            "token_type": "Bearer",
            "expires_at": int(expires_at),
            "refresh_token": "bench-refresh",
        },
    )
    static = httpx.Client(headers={"Authorization": "Bearer bench-access-token"}, transport=transport)

    group = "oauth bearer per request (httpx, mock transport)"
    return [
        Case(group, "static header", lambda: static.get(_URL), baseline=True),
        Case(group, "authlib OAuth2Client", lambda: theirs.get(_URL)),
        Case(group, "commtel OAuthHTTPXAuth", lambda: ours.get(_URL), target=1.15),
        Case("oauth get_token, fresh token", "commtel OAuthClient.get_token", oauth.get_token),
    ]
