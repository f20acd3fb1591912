"""The four ways a plain program sends a request (httpx sync and async, requests, aiohttp), side by side."""

from __future__ import annotations

import asyncio
import importlib

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from commtel.instrumentation.aiohttp import AioHttpInstrumentor
from commtel.instrumentation.httpx import HTTPXInstrumentor
from commtel.instrumentation.requests import RequestsInstrumentor


def _httpx_sync(method: str, url: str, headers: dict[str, str] | None) -> tuple[int, Any]:
    import httpx

    with httpx.Client() as client:
        response = client.request(method, url, headers=headers)
        return response.status_code, response.json()


def _httpx_async(method: str, url: str, headers: dict[str, str] | None) -> tuple[int, Any]:
    import httpx

    async def run() -> tuple[int, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.request(method, url, headers=headers)
            return response.status_code, response.json()

    return asyncio.run(run())


def _requests(method: str, url: str, headers: dict[str, str] | None) -> tuple[int, Any]:
    import requests

    response = requests.request(method, url, headers=headers, timeout=10)
    return response.status_code, response.json()


def _aiohttp(method: str, url: str, headers: dict[str, str] | None) -> tuple[int, Any]:
    import aiohttp

    async def run() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers) as response:
            return response.status, await response.json()

    return asyncio.run(run())


@dataclass
class Client:
    name: str
    send: Callable[[str, str, dict[str, str] | None], tuple[int, Any]]
    instrumentor: type
    contrib: str
    #: The library's own base error class (module:name) that its users catch.
    base_error: str

    def error(self) -> type[Exception]:
        module, _, name = self.base_error.rpartition(":")
        return getattr(importlib.import_module(module), name)

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.send("GET", url, headers)

    def instrument(self, **kwargs: Any) -> Any:
        instrumentor = self.instrumentor()
        instrumentor.instrument(**kwargs)
        return instrumentor

    def contrib_instrumentor(self) -> Any:
        module, _, name = self.contrib.rpartition(":")
        return getattr(importlib.import_module(module), name)()


CLIENTS = [
    Client(
        "httpx",
        _httpx_sync,
        HTTPXInstrumentor,
        "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor",
        "httpx:HTTPError",
    ),
    Client(
        "httpx-async",
        _httpx_async,
        HTTPXInstrumentor,
        "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor",
        "httpx:HTTPError",
    ),
    Client(
        "requests",
        _requests,
        RequestsInstrumentor,
        "opentelemetry.instrumentation.requests:RequestsInstrumentor",
        "requests:RequestException",
    ),
    Client(
        "aiohttp",
        _aiohttp,
        AioHttpInstrumentor,
        "opentelemetry.instrumentation.aiohttp_client:AioHttpClientInstrumentor",
        "aiohttp:ClientError",
    ),
]
