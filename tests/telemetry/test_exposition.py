"""Serving the contract metrics: HTTP server, WSGI app, multiprocess mode, a real Prometheus."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.request

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from commtel import OperationTracker, correlation_context
from commtel.telemetry import CONTRACT, make_wsgi_app, start_http_server
from commtel.telemetry._metrics import Metrics
from tests.harness.procs import free_port
from tests.harness.prometheus import PrometheusServer


def _scrape(port: int, openmetrics: bool) -> str:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read().decode()


def test_every_contract_metric_is_defined_with_its_labels(registry: CollectorRegistry) -> None:
    """Metrics registers exactly the contract's names, types and label names."""
    found = {}
    for collector in list(registry._collector_to_names):
        for family in collector.describe():
            found[family.name] = family
    for name, (kind, labels) in CONTRACT.items():
        base = name.removesuffix("_total") if kind == "counter" else name
        assert base in found, name
        assert found[base].type == kind
        metric = next(c for c in registry._collector_to_names if base in registry._collector_to_names[c])
        assert tuple(metric._labelnames) == labels, name


def test_http_server_serves_operation_metrics_with_exemplars() -> None:
    """start_http_server answers OpenMetrics with trace exemplars and classic text without them."""
    port = free_port()
    server, _thread = start_http_server(port)
    try:
        with correlation_context("c"):
            OperationTracker().start_operation("post", "mastodon").complete(True)
        om = _scrape(port, openmetrics=True)
        families = {f.name: f for f in parse_openmetrics(om)}
        samples = families["commtel_operation_duration_seconds"].samples
        assert any(s.exemplar is not None and len(s.exemplar.labels["trace_id"]) == 32 for s in samples)
        text_families = {f.name: f for f in parse_text(_scrape(port, openmetrics=False))}
        count = [s for s in text_families["commtel_operation_duration_seconds"].samples if s.name.endswith("_count")]
        assert count[0].labels == {"operation": "post", "platform": "mastodon", "outcome": "success"}
    finally:
        server.shutdown()


def test_wsgi_app_serves_the_active_registry() -> None:
    """make_wsgi_app exposes the registry in use."""
    OperationTracker().start_operation("x", "y").complete(False, "Timeout: slow")
    app = make_wsgi_app()
    chunks: list[bytes] = []
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "QUERY_STRING": "",
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "t",
        "SERVER_PORT": "80",
    }
    chunks.extend(app(environ, lambda s, h: status.append(s)))
    body = b"".join(chunks).decode()
    assert status[0].startswith("200")
    assert 'commtel_operation_duration_seconds_count{operation="x",outcome="error",platform="y"} 1.0' in body


def test_existing_registry_can_be_injected() -> None:
    """Metrics can be registered on a registry the application already owns."""
    mine = CollectorRegistry()
    metrics = Metrics(mine)
    metrics.child(metrics.messages, "email", "completed").inc()
    assert mine.get_sample_value("commtel_messages_total", {"platform": "email", "state": "completed"}) == 1.0


def test_multiprocess_mode_aggregates_worker_processes(tmp_path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set, samples from several processes add up in one exposition."""
    worker = textwrap.dedent(
        """
        import commtel
        t = commtel.OperationTracker()
        for _ in range(3):
            t.start_operation("sync", "github").complete(True)
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    reader = textwrap.dedent(
        """
        from prometheus_client import generate_latest
        from commtel.telemetry import metrics_registry
        print(generate_latest(metrics_registry()).decode())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert 'commtel_operation_duration_seconds_count{operation="sync",outcome="success",platform="github"} 6.0' in out


def test_real_prometheus_scrapes_metrics_and_exemplars(prometheus: PrometheusServer) -> None:
    """A real Prometheus scrapes the endpoint and stores the operation histogram with its exemplar."""
    port = free_port()
    server, _thread = start_http_server(port)
    try:
        with correlation_context("prom"):
            for _ in range(5):
                OperationTracker().start_operation("scrape_me", "slack").complete(True)
        prometheus.set_targets([f"127.0.0.1:{port}"])
        found = prometheus.wait_for('commtel_operation_duration_seconds_count{operation="scrape_me"}', timeout=40)
        assert found and float(found[0]["value"][1]) == 5.0
        exemplars = prometheus.api(
            "query_exemplars",
            query='commtel_operation_duration_seconds_bucket{operation="scrape_me"}',
            start="0",
            end="9999999999",
        )
        assert any(len(e["labels"]["trace_id"]) == 32 for series in exemplars for e in series["exemplars"])
    finally:
        prometheus.set_targets([])
        server.shutdown()
