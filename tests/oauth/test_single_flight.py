"""Single-flight refresh: many callers who find the token expired at once share one refresh request."""

from __future__ import annotations

import threading

import anyio
import pytest

from commtel.oauth._client import AsyncOAuthClient, OAuthClient
from commtel.oauth._store import FileTokenStore, MemoryTokenStore, TokenStore
from commtel.oauth._tokens import Token
from tests.oauth.authserver import REDIRECT_URI, AuthServer, approve


CALLERS = 20


def _expired_token_in(store: TokenStore, provider, client_secret: str, authserver: AuthServer) -> Token:
    """Get a real token with a refresh token, then store it as already expired."""
    with OAuthClient(provider, "app", client_secret, redirect_uri=REDIRECT_URI, store=store) as client:
        token = client.handle_callback(approve(client.authorization_url().url))
    expired = Token(
        token.access_token,
        expires_at=token.issued_at - 1,
        refresh_token=token.refresh_token,
        issued_at=token.issued_at - 3600,
    )
    store.save("testauth", expired)
    authserver.counts.clear()
    # The server answers slowly, so every caller arrives while the refresh is in flight.
    authserver.token_delay_s = 0.2
    return expired


def test_twenty_threads_cause_exactly_one_refresh(provider, client_secret, authserver):
    """20 threads calling get_token on an expired token: the server sees one refresh, all get its token."""
    store = MemoryTokenStore()
    expired = _expired_token_in(store, provider, client_secret, authserver)
    client = OAuthClient(provider, "app", client_secret, store=store)
    barrier = threading.Barrier(CALLERS)
    results: list[Token] = []

    def call() -> None:
        barrier.wait()
        results.append(client.get_token())

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert authserver.counts["refresh_token"] == 1
    assert len(results) == CALLERS
    assert len({token.access_token for token in results}) == 1
    assert results[0].access_token != expired.access_token


@pytest.mark.anyio
async def test_twenty_tasks_cause_exactly_one_refresh(provider, client_secret, authserver):
    """20 asyncio tasks calling get_token on an expired token: one refresh, one shared result."""
    store = MemoryTokenStore()
    await anyio.to_thread.run_sync(_expired_token_in, store, provider, client_secret, authserver)
    results: list[Token] = []
    async with AsyncOAuthClient(provider, "app", client_secret, store=store) as client:

        async def call() -> None:
            results.append(await client.get_token())

        async with anyio.create_task_group() as tasks:
            for _ in range(CALLERS):
                tasks.start_soon(call)
    assert authserver.counts["refresh_token"] == 1
    assert len({token.access_token for token in results}) == 1
    assert len(results) == CALLERS


def test_clients_sharing_a_file_store_refresh_once(provider, client_secret, authserver, tmp_path):
    """Two clients (as two processes would) sharing a FileTokenStore: the store's lock keeps it to one refresh."""
    store = FileTokenStore(tmp_path / "tokens")
    _expired_token_in(store, provider, client_secret, authserver)
    clients = [OAuthClient(provider, "app", client_secret, store=FileTokenStore(tmp_path / "tokens")) for _ in range(2)]
    barrier = threading.Barrier(10)
    results: list[Token] = []

    def call(client: OAuthClient) -> None:
        barrier.wait()
        results.append(client.get_token())

    threads = [threading.Thread(target=call, args=(clients[i % 2],)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert authserver.counts["refresh_token"] == 1
    assert len({token.access_token for token in results}) == 1
