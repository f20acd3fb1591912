"""Hosts an app is handed (webhooks, link previews) never become label values, and per-host state is bounded.

The worst configuration for both: commtel's recommended policy (a breaker and a retry per
host) plus a limiter per host, with one request in ten failing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from prometheus_client import CollectorRegistry

from commtel.instrumentation.requests import RequestsInstrumentor
from commtel.simulator import SimulatedPlatform


POLICIES = {
    "base": "recommended",
    "default": {"retry": {"max_attempts": 2, "base_delay": 0.0}, "rate_limit": {"rate": 100_000, "burst": 1_000}},
}


def _series(registry: CollectorRegistry) -> int:
    return sum(len(metric.samples) for metric in registry.collect() if metric.name.startswith("commtel"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_thousand_hosts_add_at_most_100_series(registry) -> None:
    """2,000 distinct hosts through a real local server add no more than 100 commtel series (before: ~94,000)."""
    RequestsInstrumentor().instrument(policies=POLICIES)
    try:
        # The simulator answers proxy-form requests, so every host name reaches a real server on 127.0.0.1.
        with SimulatedPlatform("any-host", limit=1_000_000) as server, requests.Session() as session:
            session.proxies = {"http": server.url}

            def visit(first: int, count: int) -> None:
                for n in range(first, first + count):
                    path = "status/503" if n % 10 == 0 else "api/items"
                    session.get(f"http://host-{n}.example.test/{path}", timeout=10)

            visit(0, 20)  # every kind of series exists once
            before = _series(registry)
            visit(1_000, 2_000)
            after = _series(registry)
            assert server.stats.requests == 2_020 + 202  # the failing tenth was retried once
    finally:
        RequestsInstrumentor().uninstrument()
    assert after - before <= 100
    labels = {value for metric in registry.collect() for sample in metric.samples for value in sample.labels.values()}
    assert not [value for value in labels if "example.test" in value]


RSS_APP = textwrap.dedent(
    """
    import gc, json, os, sys
    import httpx
    from prometheus_client import REGISTRY
    from commtel.instrumentation.httpx import HTTPXInstrumentor

    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    class Answer(httpx.BaseTransport):  # the in-process server every host name reaches
        def handle_request(self, request):
            return httpx.Response(200, json={})

    HTTPXInstrumentor().instrument(policies=json.loads(sys.argv[1]))
    with httpx.Client(transport=Answer()) as client:
        def visit(first, count):
            for n in range(first, first + count):
                client.get(f"http://host-{n}.example.test/api/items")
        visit(0, 20)
        gc.collect()
        before = rss()
        visit(1_000, int(sys.argv[2]))
        gc.collect()
        after = rss()
    series = sum(len(m.samples) for m in REGISTRY.collect() if m.name.startswith("commtel"))
    print(json.dumps({"rss_mb": (after - before) / 2**20, "series": series}))
    """
)


@pytest.fixture(scope="module", autouse=True)
def twenty_thousand_hosts() -> Iterator[subprocess.Popen[str]]:
    """The 20,000-host app, started with the module so that it runs alongside the 2,000-host test."""
    proc = subprocess.Popen(
        [sys.executable, "-c", RSS_APP, json.dumps(POLICIES), "20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_twenty_thousand_hosts_add_at_most_50_mb(twenty_thousand_hosts) -> None:
    """20,000 distinct hosts add at most 50 MB RSS (before: +732 MB): per-host scopes are an LRU of 1,000.

    Runs in a fresh interpreter, so the RSS is the app's alone. The server is an httpx transport
    inside that process that answers 200, the one stand-in here: 20,000 socket round trips would
    take minutes on two cores, and the network is not what is measured — every commtel code path
    is. Every request succeeds: a host's scope (breaker, limiter, guard) is made on its first call
    either way, and the failure path's series are covered by the 2,000-host test.
    """
    out, err = twenty_thousand_hosts.communicate(timeout=600)
    assert twenty_thousand_hosts.returncode == 0, err[-2000:]
    measured: dict[str, Any] = json.loads(out.splitlines()[-1])
    assert measured["rss_mb"] <= 50, measured
    assert measured["series"] <= 200, measured
