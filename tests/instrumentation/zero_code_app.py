"""A small app that knows nothing of commtel (run as a script by test_auto_instrumentation.py).

``python zero_code_app.py LIBRARY BASE TINY CLOSED FAILING``: LIBRARY is httpx, httpx-async,
requests or aiohttp. The app runs a few ordinary calls against the server at BASE (and the
one-request-per-minute server at TINY, and a port where nothing listens), printing one JSON
line per call: its status and body, or the class of the exception and whether the library's
own ``except`` clause catches it. Then it calls the failing URL FAILING four times inside the
app's usual ``except <library error>`` clause and prints the class names it caught. Then it
prints ``done`` and waits for a line on stdin (so that its metrics can be scraped).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from collections.abc import Awaitable, Callable
from typing import Any


LIBRARY, BASE, TINY, CLOSED, FAILING = sys.argv[1:6]


def _report(name: str, started: float, result: dict[str, Any]) -> None:
    print(json.dumps({"scenario": name, **result, "elapsed": time.monotonic() - started}), flush=True)


def _error(exc: BaseException, library_error: type[BaseException]) -> dict[str, Any]:
    kind = type(exc)
    return {"error": f"{kind.__module__}.{kind.__qualname__}", "caught": isinstance(exc, library_error)}


def _scenarios() -> list[tuple[str, str, str, Any, float]]:
    """(name, method, url, json body, timeout) of the ordinary calls."""
    return [
        ("ok", "GET", f"{BASE}/api/items?page=2", None, 5.0),
        ("server_error", "GET", f"{BASE}/status/503", None, 5.0),
        ("not_found", "GET", f"{BASE}/status/404", None, 5.0),
        ("post", "POST", f"{BASE}/api/orders", {"item": 7}, 5.0),
        ("quota_left", "GET", f"{TINY}/api/a", None, 5.0),
        ("throttled", "GET", f"{TINY}/api/b", None, 5.0),
        ("unreachable", "GET", f"{CLOSED}/api/items", None, 5.0),
        ("timeout", "GET", f"{BASE}/slow?delay=0.5", None, 0.1),
    ]


def run_sync(send: Callable[..., tuple[int, Any]], fetch_checked: Callable[[str], Any], error: type) -> None:
    for name, method, url, body, timeout in _scenarios():
        started = time.monotonic()
        try:
            status, payload = send(method, url, body, timeout)
            _report(name, started, {"status": status, "body": payload})
        except Exception as exc:
            _report(name, started, _error(exc, error))
    seen = []
    for _ in range(4):
        try:
            fetch_checked(FAILING)
        except error as exc:  # the app's own, ordinary error handling
            seen.append(type(exc).__name__)
    print(json.dumps({"breaker": seen}), flush=True)


async def run_async(
    send: Callable[..., Awaitable[tuple[int, Any]]], fetch_checked: Callable[[str], Awaitable[Any]], error: type
) -> None:
    for name, method, url, body, timeout in _scenarios():
        started = time.monotonic()
        try:
            status, payload = await send(method, url, body, timeout)
            _report(name, started, {"status": status, "body": payload})
        except Exception as exc:
            _report(name, started, _error(exc, error))
    seen = []
    for _ in range(4):
        try:
            await fetch_checked(FAILING)
        except error as exc:
            seen.append(type(exc).__name__)
    print(json.dumps({"breaker": seen}), flush=True)


def main() -> None:  # noqa: C901 - one small app per library, side by side
    if LIBRARY == "httpx":
        import httpx

        with httpx.Client() as client:

            def send(method: str, url: str, body: Any, timeout: float) -> tuple[int, Any]:
                response = client.request(method, url, json=body, timeout=timeout)
                return response.status_code, response.json()

            def fetch_checked(url: str) -> Any:
                return client.get(url).raise_for_status()

            run_sync(send, fetch_checked, httpx.HTTPError)
    elif LIBRARY == "httpx-async":
        import httpx

        async def main_async() -> None:
            async with httpx.AsyncClient() as client:

                async def send(method: str, url: str, body: Any, timeout: float) -> tuple[int, Any]:
                    response = await client.request(method, url, json=body, timeout=timeout)
                    return response.status_code, response.json()

                async def fetch_checked(url: str) -> Any:
                    return (await client.get(url)).raise_for_status()

                await run_async(send, fetch_checked, httpx.HTTPError)

        asyncio.run(main_async())
    elif LIBRARY == "requests":
        import requests

        def send(method: str, url: str, body: Any, timeout: float) -> tuple[int, Any]:
            response = requests.request(method, url, json=body, timeout=timeout)
            return response.status_code, response.json()

        def fetch_checked(url: str) -> Any:
            return requests.get(url, timeout=5).raise_for_status()

        run_sync(send, fetch_checked, requests.RequestException)
    elif LIBRARY == "aiohttp":
        import aiohttp

        async def main_async() -> None:
            async with aiohttp.ClientSession() as session:

                async def send(method: str, url: str, body: Any, timeout: float) -> tuple[int, Any]:
                    async with session.request(
                        method, url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)
                    ) as response:
                        return response.status, await response.json(content_type=None)

                async def fetch_checked(url: str) -> Any:
                    async with session.get(url, raise_for_status=True) as response:
                        return await response.read()

                await run_async(send, fetch_checked, aiohttp.ClientError)

        asyncio.run(main_async())
    print("done", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
