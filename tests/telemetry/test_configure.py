"""configure(): OTLP over HTTP and gRPC, env selection, no clobbering, bounded shutdown.

Each case runs in a fresh interpreter: the global TracerProvider can be set only once
per process, and that first-time behaviour is what users get.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.harness.otlp import OTLPGrpcReceiver, OTLPHttpReceiver
from tests.harness.procs import free_port


APP = textwrap.dedent(
    """
    import sys, commtel
    from commtel.telemetry import start_span
    from commtel import correlation_context
    cfg = commtel.configure("svc-under-test")
    assert commtel.configure("other") is cfg, "configure must be idempotent"
    print(cfg.exporting, cfg.endpoint, flush=True)
    with correlation_context("corr-xyz"):
        with start_span("commtel.test", attributes={"commtel.platform": "twitter", "authorization": "Bearer abcdef123456"}):
            pass
    ok = commtel.shutdown(timeout_s=5)
    print("flushed", ok, flush=True)
    """
)


def run_app(env: dict[str, str], code: str = APP, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _check_span(receiver: OTLPHttpReceiver | OTLPGrpcReceiver) -> None:
    found = receiver.store.wait_for(lambda s: s.name == "commtel.test", timeout=10)
    assert found, "span did not arrive"
    span = found[-1]
    assert span.attributes["commtel.correlation_id"] == "corr-xyz"
    assert span.attributes["commtel.platform"] == "twitter"
    assert span.attributes["authorization"] == "[REDACTED]"
    assert span.resource["service.name"] == "svc-under-test"
    assert span.scope == "commtel"


def test_spans_arrive_over_otlp_http_from_env(otlp_http: OTLPHttpReceiver) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT alone selects OTLP/HTTP and spans arrive with commtel attributes."""
    otlp_http.store.clear()
    result = run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http.endpoint})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"otlp-http {otlp_http.endpoint}/v1/traces"), result.stdout
    assert "flushed True" in result.stdout
    _check_span(otlp_http)


def test_spans_arrive_over_otlp_grpc_from_env(otlp_grpc: OTLPGrpcReceiver) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc switches to the gRPC exporter (plaintext for http:// endpoints)."""
    otlp_grpc.store.clear()
    result = run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_grpc.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("otlp-grpc"), result.stdout
    _check_span(otlp_grpc)


def test_nothing_exported_without_configuration() -> None:
    """With no endpoint, exporter or file, configure() exports nothing."""
    result = run_app({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("None None"), result.stdout


def test_invalid_protocol_names_the_setting() -> None:
    """An unknown OTLP protocol raises ConfigurationError naming the variable to fix."""
    result = run_app(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}
    )
    assert result.returncode != 0
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in result.stderr
    assert "ConfigurationError" in result.stderr


def test_application_tracer_provider_is_kept() -> None:
    """A TracerProvider installed by the application is never replaced."""
    code = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        mine = TracerProvider()
        trace.set_tracer_provider(mine)
        import commtel
        cfg = commtel.configure("x", endpoint="http://127.0.0.1:1/v1/traces")
        assert trace.get_tracer_provider() is mine
        print(cfg.owns_provider)
        """
    )
    result = run_app({}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_down_collector_costs_no_error_and_bounded_time(protocol: str) -> None:
    """With the collector down, calls succeed and shutdown returns within its timeout."""
    port = free_port()  # nothing listens here
    code = textwrap.dedent(
        """
        import time, commtel
        from commtel.telemetry import start_span
        commtel.configure("down", export_timeout_s=1.0)
        t0 = time.perf_counter()
        for _ in range(200):
            with start_span("work"):
                pass
        t1 = time.perf_counter()
        commtel.shutdown(timeout_s=2.0)
        t2 = time.perf_counter()
        print(f"{(t1 - t0) * 1000:.1f} {(t2 - t1):.2f}")
        """
    )
    started = time.monotonic()
    result = run_app(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}, code
    )
    assert result.returncode == 0, result.stderr
    work_ms, shutdown_s = map(float, result.stdout.split())
    assert work_ms < 500, "spans must not block on a down collector"
    assert shutdown_s < 4.5, "shutdown must respect its timeout"
    assert time.monotonic() - started < 30


def test_explicit_exporter_wins_over_otlp_environment(otlp_http: OTLPHttpReceiver) -> None:
    """An exporter passed to configure() is used even when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    code = textwrap.dedent(
        """
        import commtel
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from commtel.telemetry import start_span
        mine = InMemorySpanExporter()
        cfg = commtel.configure("x", exporter=mine)
        with start_span("kept"):
            pass
        commtel.shutdown(timeout_s=5)
        print(cfg.exporting, [s.name for s in mine.get_finished_spans()])
        """
    )
    result = run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http.endpoint}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "custom ['kept']"


def test_traces_exporter_variable_is_honoured(otlp_http: OTLPHttpReceiver) -> None:
    """OTEL_TRACES_EXPORTER: "otlp,console" exports to both, "none" to nothing even with an endpoint set."""
    otlp_http.store.clear()
    both = run_app({"OTEL_TRACES_EXPORTER": "otlp, console", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http.endpoint})
    assert both.returncode == 0, both.stderr
    assert both.stdout.startswith(f"otlp-http,console {otlp_http.endpoint}/v1/traces"), both.stdout
    assert '"name": "commtel.test"' in both.stdout and '"authorization": "[REDACTED]"' in both.stdout
    _check_span(otlp_http)
    none = run_app({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http.endpoint})
    assert none.returncode == 0, none.stderr
    assert none.stdout.startswith("None None"), none.stdout


def test_unknown_traces_exporter_names_the_variable() -> None:
    """An exporter name commtel does not know is a ConfigurationError naming OTEL_TRACES_EXPORTER and the choices."""
    result = run_app({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr and "OTEL_TRACES_EXPORTER" in result.stderr
    assert "use otlp, console or none" in result.stderr


def test_signal_specific_otlp_variables_win(otlp_http: OTLPHttpReceiver) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/_PROTOCOL are used as given, over the generic variables."""
    otlp_http.store.clear()
    result = run_app(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp_http.endpoint}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"otlp-http {otlp_http.endpoint}/v1/traces"), result.stdout
    _check_span(otlp_http)
