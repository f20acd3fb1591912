"""OAuth 2 clients: :class:`OAuthClient` (sync) and :class:`AsyncOAuthClient` over one model.

:class:`_BaseOAuthClient` holds everything that is not I/O: configuration, the
authorization URL with ``state`` and PKCE S256, the callback check, which grant
renews a token, when a token is still usable (clock-skew margin), and the
events. The twins add only I/O, line for line alike: sending the sans-I/O flows
of :mod:`._oauth_flow` over httpx, the store, and the single-flight lock that
makes twenty callers who find the token expired share one refresh.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, TypeVar
from urllib.parse import parse_qsl, urlsplit

from typing_extensions import Self

from .. import _events
from .. import _validation as check
from .._exceptions import ConfigurationError
from .._optional import ensure
from .._timing import monotonic, wall
from ._errors import NoTokenError, OAuthProviderError, OAuthStateError, provider_error
from ._events import CallbackRejected, OAuthClientCreated, TokenRejected, TokenUpdated
from ._flow import (
    ClientCredentials,
    Flow,
    authorization_code_flow,
    client_credentials_flow,
    refresh_token_flow,
    revocation_flow,
    run_async,
    run_sync,
)
from ._providers import OAuthProvider
from ._secrets import owned, seen
from ._store import MemoryTokenStore, TokenStore
from ._tokens import Token


if TYPE_CHECKING:
    import anyio
    import httpx
    import requests


__all__ = ["AsyncOAuthClient", "AuthorizationRequest", "GrantType", "OAuthClient"]

_T = TypeVar("_T")
#: How :meth:`OAuthClient.get_token` gets a token when none is usable.
GrantType = Literal["authorization_code", "client_credentials"]
_PENDING_MAX = 256
_PENDING_TTL_S = 600.0


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """An authorization request in progress: send the user to *url*, keep the rest for the callback.

    Attributes:
        url: The provider's authorization URL with ``state`` and the PKCE challenge.
        state: The anti-CSRF value the callback must echo.
        code_verifier: The PKCE verifier (secret; never in ``repr``).
        redirect_uri: Where the provider sends the user back.
        created_at: Monotonic time of creation (pending requests expire after 10 minutes).

    .. versionadded:: 0.1.0
    """

    url: str
    state: str
    code_verifier: str | None = field(repr=False)
    redirect_uri: str | None
    created_at: float


def _callback_params(callback: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(callback, str):
        query = urlsplit(callback).query if "?" in callback or "://" in callback else callback
        return dict(parse_qsl(query))
    return dict(callback)


class _BaseOAuthClient:
    """Configuration and every decision of the OAuth clients; no I/O."""

    __slots__ = (
        "__weakref__",
        "_owns_http",
        "_pending",
        "_pending_lock",
        "_token",
        "creds",
        "grant_type",
        "key",
        "redirect_uri",
        "refresh_margin_s",
        "scopes",
        "store",
        "timeout_s",
    )

    def __init__(
        self,
        provider: OAuthProvider | str,
        client_id: str,
        client_secret: str | None = None,
        *,
        redirect_uri: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
        store: TokenStore | None = None,
        key: str | None = None,
        grant_type: GrantType = "authorization_code",
        refresh_margin_s: float = 60.0,
        timeout_s: float = 10.0,
    ) -> None:
        ensure("authlib", "httpx")  # the flows run on them: say which extra installs them, now
        owner = type(self).__name__
        if isinstance(provider, str):
            provider = OAuthProvider.preset(provider)
        check.instance(provider, "provider", OAuthProvider, owner=owner, what="an OAuthProvider or a preset name")
        check.text(client_id, "client_id", owner=owner, empty=False)
        check.text(client_secret, "client_secret", owner=owner, optional=True)
        check.one_of(grant_type, "grant_type", ("authorization_code", "client_credentials"), owner=owner)
        if grant_type == "client_credentials" and client_secret is None:
            msg = f"{owner}: the client_credentials grant needs client_secret"
            raise ConfigurationError(msg)
        check.instance(store, "store", TokenStore, owner=owner, optional=True, what="a TokenStore")
        refresh_margin_s = check.duration(refresh_margin_s, "refresh_margin_s", owner=owner)
        timeout_s = check.duration(timeout_s, "timeout_s", owner=owner, positive=True)
        self.creds = ClientCredentials(provider, client_id, client_secret)
        # The client secret stays redacted for as long as this client lives, whatever rotates around it.
        owned(client_secret, self)
        self.redirect_uri = redirect_uri
        self.scopes = tuple(provider.scopes if scopes is None else scopes)
        self.store: TokenStore = MemoryTokenStore() if store is None else store
        self.key = key or provider.name
        self.grant_type = grant_type
        self.refresh_margin_s = refresh_margin_s
        self.timeout_s = timeout_s
        self._token: Token | None = None
        self._pending: OrderedDict[str, AuthorizationRequest] = OrderedDict()
        self._pending_lock = threading.Lock()
        grants = (grant_type, "refresh_token", *(("revocation",) if provider.revocation_url else ()))
        self._emit(OAuthClientCreated(provider.name, grants))

    @property
    def provider(self) -> OAuthProvider:
        """The provider this client talks to."""
        return self.creds.provider

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider.name!r}, client_id={self.creds.client_id!r}, "
            f"key={self.key!r}, grant_type={self.grant_type!r}, store={self.store!r})"
        )

    # -- authorization code + PKCE: pure ------------------------------------------------

    def authorization_url(
        self, *, scopes: tuple[str, ...] | list[str] | None = None, state: str | None = None, **params: str
    ) -> AuthorizationRequest:
        """Start an authorization: the URL to send the user to, with ``state`` and PKCE S256.

        The request is also remembered (up to 10 minutes) so that
        :meth:`OAuthClient.handle_callback` can find it by its state.

        Args:
            scopes: Scopes to ask for (default: the client's).
            state: Your own state value (default: 32 random bytes, URL-safe).
            params: Extra query parameters for the provider.

        Returns:
            The URL, state and PKCE verifier.

        .. versionadded:: 0.1.0
        """
        from authlib.common.security import generate_token
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        state = state or secrets.token_urlsafe(32)
        verifier = generate_token(64) if self.provider.pkce else None
        seen(verifier)
        pkce = (
            {}
            if verifier is None
            else {
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        url = prepare_grant_uri(
            self.provider.authorize_url,
            self.creds.client_id,
            "code",
            self.redirect_uri,
            list(self.scopes if scopes is None else scopes),
            state,
            **{**self.provider.authorize_params, **pkce, **params},
        )
        request = AuthorizationRequest(url, state, verifier, self.redirect_uri, monotonic())
        with self._pending_lock:
            self._prune_pending()
            self._pending[state] = request
        return request

    def _prune_pending(self) -> None:
        cutoff = monotonic() - _PENDING_TTL_S
        while self._pending and (
            len(self._pending) >= _PENDING_MAX or next(iter(self._pending.values())).created_at < cutoff
        ):
            self._pending.popitem(last=False)

    def _check_callback(
        self, callback: str | Mapping[str, str], request: AuthorizationRequest | None
    ) -> tuple[str, AuthorizationRequest]:
        """The code and its request from a callback, after the state check; raises before any I/O."""
        params = _callback_params(callback)
        code = params.get("code")
        seen(code)
        received = params.get("state") or ""
        with self._pending_lock:
            expected = request or self._pending.get(received)
            matches = expected is not None and hmac.compare_digest(expected.state.encode(), received.encode())
            if matches and expected is not None:
                self._pending.pop(expected.state, None)
        if not matches or expected is None:
            self._emit(CallbackRejected(self.provider.name, "state_mismatch"))
            msg = "callback state does not match an authorization request of this client; nothing was exchanged"
            raise OAuthStateError(msg, provider=self.provider.name)
        if "error" in params:
            self._emit(CallbackRejected(self.provider.name, params["error"]))
            raise provider_error(params, provider=self.provider.name, status_code=None, sent=(code,))
        if not code:
            msg = "callback has no code"
            raise OAuthProviderError("invalid_request", msg, provider=self.provider.name)  # noqa: EM101 - an error code
        return code, expected

    def _latest_pending(self, state: str | None) -> AuthorizationRequest | None:
        with self._pending_lock:
            if state is not None:
                return self._pending.pop(state, None)
            return self._pending.popitem()[1] if self._pending else None

    # -- token decisions: pure ----------------------------------------------------------

    def _usable(self, token: Token | None, rejected: Token | None, now: float) -> TypeGuard[Token]:
        return (
            token is not None
            and not token.same_credential(rejected)
            and not token.needs_refresh(now, self.refresh_margin_s)
        )

    def _renewal(self, token: Token | None, now: float) -> Flow[Token]:
        """The flow that replaces *token*: refresh if possible, else client credentials."""
        if token is not None and token.refresh_token:
            return refresh_token_flow(self.creds, refresh_token=token.refresh_token, now=now)
        if self.grant_type == "client_credentials":
            return self._client_credentials_flow(None, now)
        what = "expired" if token is not None else "stored"
        msg = f"no usable token {what} under key {self.key!r} and no refresh token; authorize again"
        raise NoTokenError(msg, provider=self.provider.name)

    def _client_credentials_flow(self, scopes: tuple[str, ...] | list[str] | None, now: float) -> Flow[Token]:
        chosen = self.scopes if scopes is None else scopes
        return client_credentials_flow(self.creds, scope=" ".join(chosen) or None, now=now)

    def _code_flow(self, code: str, code_verifier: str | None, redirect_uri: str | None) -> Flow[Token]:
        return authorization_code_flow(
            self.creds, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri, now=wall()
        )

    def _revocation(self, token: Token | None) -> Flow[None] | None:
        """The revocation flow for *token* (its refresh token if it has one), or None if nothing to do."""
        if token is None or self.provider.revocation_url is None:
            return None
        if token.refresh_token:
            return revocation_flow(self.creds, token=token.refresh_token, token_type_hint="refresh_token")  # noqa: S106 - a hint name
        return revocation_flow(self.creds, token=token.access_token, token_type_hint="access_token")  # noqa: S106 - a hint name

    def _remember(self, token: Token | None) -> None:
        self._token = token
        self._emit(TokenUpdated(self.provider.name, None if token is None else token.expires_at, token is None))

    @staticmethod
    def _emit(event: _events.Event) -> None:
        if listeners := _events.active_listeners():
            _events.emit(event, listeners)

    def _need_refresh_token(self, token: Token | None) -> str:
        if token is None or not token.refresh_token:
            msg = f"no refresh token stored under key {self.key!r}; authorize again"
            raise NoTokenError(msg, provider=self.provider.name)
        return token.refresh_token


class OAuthClient(_BaseOAuthClient):
    """A synchronous OAuth 2 client with a token store and single-flight refresh.

    Args:
        provider: An :class:`OAuthProvider` or a preset name (``"twitter"``, ``"discord"`` …).
        client_id: The client id.
        client_secret: The client secret; ``None`` for a public (PKCE-only) client.
        redirect_uri: The registered redirect URI.
        scopes: Scopes to request (default: the provider's).
        store: Where tokens live (default: a :class:`MemoryTokenStore`).
        key: Store key for this client's token (default: the provider name;
            use ``"twitter:alice"`` for one token per user).
        grant_type: ``"client_credentials"`` to have :meth:`get_token` fetch tokens
            without a user; ``"authorization_code"`` (default) needs the user flow first.
        refresh_margin_s: Refresh this long before expiry (clock skew, request time);
            capped at half the token's lifetime.
        timeout_s: Timeout of each request to the provider.
        http_client: An ``httpx.Client`` to use (default: a private one).

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_http", "_lock")

    def __init__(
        self,
        provider: OAuthProvider | str,
        client_id: str,
        client_secret: str | None = None,
        *,
        redirect_uri: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
        store: TokenStore | None = None,
        key: str | None = None,
        grant_type: GrantType = "authorization_code",
        refresh_margin_s: float = 60.0,
        timeout_s: float = 10.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        import httpx

        super().__init__(
            provider,
            client_id,
            client_secret,
            redirect_uri=redirect_uri,
            scopes=scopes,
            store=store,
            key=key,
            grant_type=grant_type,
            refresh_margin_s=refresh_margin_s,
            timeout_s=timeout_s,
        )
        self._owns_http = http_client is None
        self._http = httpx.Client(timeout=timeout_s) if http_client is None else http_client
        self._lock = threading.Lock()

    def _send(self, flow: Flow[_T]) -> _T:
        return run_sync(flow, self._http, self.provider)

    def _save(self, token: Token) -> Token:
        self.store.save(self.key, token)
        self._remember(token)
        return token

    def handle_callback(
        self, callback: str | Mapping[str, str], *, request: AuthorizationRequest | None = None
    ) -> Token:
        """Finish an authorization: check ``state``, exchange the code, store the token.

        Args:
            callback: The full redirect URL the provider sent the user to, or its query parameters.
            request: The :class:`AuthorizationRequest` (default: looked up by the callback's state).

        Raises:
            OAuthStateError: The state is missing or unknown; nothing was exchanged or stored.
            OAuthProviderError: The provider reported an error (``access_denied`` …).

        .. versionadded:: 0.1.0
        """
        code, started = self._check_callback(callback, request)
        return self._save(self._send(self._code_flow(code, started.code_verifier, started.redirect_uri)))

    def exchange_code(self, code: str, *, code_verifier: str | None = None, redirect_uri: str | None = None) -> Token:
        """Exchange an authorization *code* you checked yourself for a token, and store it.

        .. versionadded:: 0.1.0
        """
        return self._save(self._send(self._code_flow(code, code_verifier, redirect_uri or self.redirect_uri)))

    def client_credentials(self, *, scopes: tuple[str, ...] | list[str] | None = None) -> Token:
        """Get a token for the client itself (no user) and store it.

        .. versionadded:: 0.1.0
        """
        return self._save(self._send(self._client_credentials_flow(scopes, wall())))

    def refresh(self) -> Token:
        """Refresh now (even if the token is fresh); a rotated refresh token is stored.

        Raises:
            NoTokenError: No refresh token is stored.
            InvalidGrantError: The provider revoked or expired the refresh token.

        .. versionadded:: 0.1.0
        """
        with self._lock, self.store.lock(self.key):
            refresh_token = self._need_refresh_token(self.store.load(self.key))
            return self._save(self._send(refresh_token_flow(self.creds, refresh_token=refresh_token, now=wall())))

    def get_token(self, *, rejected: Token | None = None) -> Token:
        """A usable access token, refreshing it (once for all concurrent callers) when due.

        Args:
            rejected: A token an API just refused (401): it is replaced even if
                it looks fresh, unless another caller already replaced it.

        Raises:
            NoTokenError: Nothing stored and no grant works without the user.
            OAuthError: The renewal failed (typed: ``InvalidGrantError`` …).

        .. versionadded:: 0.1.0
        """
        if rejected is not None:
            self._emit(TokenRejected(self.provider.name))
        token = self._token
        if token is None:
            token = self.store.load(self.key)
            if token is not None:
                self._remember(token)
        if self._usable(token, rejected, wall()):
            return token
        with self._lock:
            # Another thread may have renewed while this one waited.
            if self._usable(self._token, rejected, wall()):
                return self._token
            with self.store.lock(self.key):
                # ... or another process, sharing the store.
                token = self.store.load(self.key)
                if self._usable(token, rejected, wall()):
                    self._remember(token)
                    return token
                return self._save(self._send(self._renewal(token, wall())))

    def revoke(self) -> bool:
        """Revoke the stored token at the provider (where supported) and delete it locally.

        Returns:
            True if the provider was told; False if it has no revocation endpoint or
            nothing was stored (the token is deleted locally either way).

        .. versionadded:: 0.1.0
        """
        with self._lock, self.store.lock(self.key):
            flow = self._revocation(self.store.load(self.key))
            if flow is not None:
                self._send(flow)
            self.store.delete(self.key)
            self._remember(None)
        return flow is not None

    def httpx_auth(self) -> httpx.Auth:
        """An ``httpx.Auth`` that sends this client's bearer token and renews it on 401.

        .. versionadded:: 0.1.0
        """
        from ._auth import OAuthHTTPXAuth

        return OAuthHTTPXAuth(self)

    def requests_auth(self) -> requests.auth.AuthBase:
        """A ``requests`` auth that sends this client's bearer token and renews it on 401.

        .. versionadded:: 0.1.0
        """
        from ._auth_requests import OAuthRequestsAuth

        return OAuthRequestsAuth(self)

    def close(self) -> None:
        """Close the HTTP client if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncOAuthClient(_BaseOAuthClient):
    """The asynchronous twin of :class:`OAuthClient` (asyncio or trio, via anyio).

    Same arguments, with an ``httpx.AsyncClient`` as *http_client*. Store calls run
    in worker threads so a slow disk or a lock held by another process never
    blocks the event loop.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_http", "_lock")

    def __init__(
        self,
        provider: OAuthProvider | str,
        client_id: str,
        client_secret: str | None = None,
        *,
        redirect_uri: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
        store: TokenStore | None = None,
        key: str | None = None,
        grant_type: GrantType = "authorization_code",
        refresh_margin_s: float = 60.0,
        timeout_s: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        import anyio
        import httpx

        super().__init__(
            provider,
            client_id,
            client_secret,
            redirect_uri=redirect_uri,
            scopes=scopes,
            store=store,
            key=key,
            grant_type=grant_type,
            refresh_margin_s=refresh_margin_s,
            timeout_s=timeout_s,
        )
        self._owns_http = http_client is None
        self._http = httpx.AsyncClient(timeout=timeout_s) if http_client is None else http_client
        self._lock: anyio.Lock = anyio.Lock()

    async def _send(self, flow: Flow[_T]) -> _T:
        return await run_async(flow, self._http, self.provider)

    async def _save(self, token: Token) -> Token:
        await _in_thread(self.store.save, self.key, token)
        self._remember(token)
        return token

    @contextlib.asynccontextmanager
    async def _store_lock(self) -> AsyncIterator[None]:
        import anyio

        lock = self.store.lock(self.key)
        # Shielded: a cancellation must not land between acquiring and the try below.
        with anyio.CancelScope(shield=True):
            await _in_thread(lock.__enter__)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await _in_thread(lock.__exit__, None, None, None)

    async def handle_callback(
        self, callback: str | Mapping[str, str], *, request: AuthorizationRequest | None = None
    ) -> Token:
        """Async :meth:`OAuthClient.handle_callback`.

        .. versionadded:: 0.1.0
        """
        code, started = self._check_callback(callback, request)
        return await self._save(await self._send(self._code_flow(code, started.code_verifier, started.redirect_uri)))

    async def exchange_code(
        self, code: str, *, code_verifier: str | None = None, redirect_uri: str | None = None
    ) -> Token:
        """Async :meth:`OAuthClient.exchange_code`.

        .. versionadded:: 0.1.0
        """
        return await self._save(
            await self._send(self._code_flow(code, code_verifier, redirect_uri or self.redirect_uri))
        )

    async def client_credentials(self, *, scopes: tuple[str, ...] | list[str] | None = None) -> Token:
        """Async :meth:`OAuthClient.client_credentials`.

        .. versionadded:: 0.1.0
        """
        return await self._save(await self._send(self._client_credentials_flow(scopes, wall())))

    async def refresh(self) -> Token:
        """Async :meth:`OAuthClient.refresh`.

        .. versionadded:: 0.1.0
        """
        async with self._lock, self._store_lock():
            refresh_token = self._need_refresh_token(await _in_thread(self.store.load, self.key))
            return await self._save(
                await self._send(refresh_token_flow(self.creds, refresh_token=refresh_token, now=wall()))
            )

    async def get_token(self, *, rejected: Token | None = None) -> Token:
        """Async :meth:`OAuthClient.get_token`: one refresh for all concurrent tasks.

        .. versionadded:: 0.1.0
        """
        if rejected is not None:
            self._emit(TokenRejected(self.provider.name))
        token = self._token
        if token is None:
            token = await _in_thread(self.store.load, self.key)
            if token is not None:
                self._remember(token)
        if self._usable(token, rejected, wall()):
            return token
        async with self._lock:
            # Another task may have renewed while this one waited.
            if self._usable(self._token, rejected, wall()):
                return self._token
            async with self._store_lock():
                # ... or another process, sharing the store.
                token = await _in_thread(self.store.load, self.key)
                if self._usable(token, rejected, wall()):
                    self._remember(token)
                    return token
                return await self._save(await self._send(self._renewal(token, wall())))

    async def revoke(self) -> bool:
        """Async :meth:`OAuthClient.revoke`.

        .. versionadded:: 0.1.0
        """
        async with self._lock, self._store_lock():
            flow = self._revocation(await _in_thread(self.store.load, self.key))
            if flow is not None:
                await self._send(flow)
            await _in_thread(self.store.delete, self.key)
            self._remember(None)
        return flow is not None

    def httpx_auth(self) -> httpx.Auth:
        """An ``httpx.Auth`` for ``httpx.AsyncClient`` that renews the token on 401.

        .. versionadded:: 0.1.0
        """
        from ._auth import OAuthHTTPXAuth

        return OAuthHTTPXAuth(self)

    async def aclose(self) -> None:
        """Close the HTTP client if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def _in_thread(func: Callable[..., _T], *args: Any) -> _T:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(func, *args)
