"""Auto-instrumenting an existing httpx program: retries, spans and metrics without touching its code.

``existing_program`` is plain httpx with no error handling. Against a shop API (a
local ``SimulatedPlatform``) that answers a burst of ``503``s, it first fails. Then
``HTTPXInstrumentor().instrument(policies=...)`` patches httpx and the same, unchanged
function succeeds. What the example shows:

* The policy mapping (per host: platform label, retry, rate limit, whether to send the
  correlation id) that the TOML file behind ``COMMTEL_POLICIES_FILE`` would hold.
* The spans of one guarded request: an INTERNAL ``HTTP GET`` span carrying the retry
  events, one CLIENT ``GET`` span per attempt (``http.request.resend_count`` on the
  resends), all with the correlation id, which also reaches the server as
  ``X-Correlation-ID``. Spans are collected with an in-memory exporter given to
  ``commtel.configure``.
* The contract metrics, read with ``prometheus_client.generate_latest()``.
* ``uninstrument()`` gives the program back its plain httpx.

Run it::

    .venv/bin/python examples/instrument_httpx.py
"""

from __future__ import annotations

import time

from collections.abc import Sequence

import httpx

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

import commtel

from commtel.instrumentation.httpx import HTTPXInstrumentor
from commtel.simulator import SimulatedPlatform


POLICIES = {
    "default": {"retry": {"max_attempts": 3, "base_delay": 0.05}},
    # send_correlation: the shop is ours, so it may see our correlation id (no host does by default).
    "hosts": {"127.0.0.1": {"platform": "shop", "rate_limit": {"rate": 50, "burst": 10}, "send_correlation": True}},
}


def existing_program(base_url: str) -> list[int]:
    """The program as it was written: plain httpx, no retries, no telemetry."""
    with httpx.Client(base_url=base_url, timeout=5) as client:
        return [client.get(f"/api/orders/{n}").status_code for n in range(1, 6)]


def print_trace(spans: Sequence[ReadableSpan]) -> None:
    """The first guarded request as a tree: the operation span, its events, one child per attempt."""
    operation = next(s for s in spans if s.name == "HTTP GET")
    assert operation.context is not None  # finished SDK spans always have one
    print(
        f"  {operation.name} [{operation.kind.name}] correlation_id="
        f"{(operation.attributes or {}).get('commtel.correlation_id')}"
    )
    for event in operation.events:
        attrs = event.attributes or {}
        print(
            f"    event {event.name}: attempt={attrs.get('commtel.retry.attempt')} "
            f"reason={attrs.get('commtel.retry.reason')} delay={attrs.get('commtel.retry.delay_s', 0):.3f}s"
        )
    for child in spans:
        if child.parent is not None and child.parent.span_id == operation.context.span_id:
            attrs = child.attributes or {}
            print(
                f"    {child.name} [{child.kind.name}] status={attrs.get('http.response.status_code')} "
                f"resend_count={attrs.get('http.request.resend_count', 0)}"
            )


def contract_lines(*prefixes: str) -> list[str]:
    """Samples of the commtel metrics with these name prefixes (no buckets, no _created)."""
    text = generate_latest().decode()
    return [
        line
        for line in text.splitlines()
        if line.startswith(prefixes) and "_bucket" not in line and "_created" not in line
    ]


def main() -> int:
    commtel.configure_logging("WARNING", json=False)
    exporter = InMemorySpanExporter()
    telemetry = commtel.configure("orders-sync", exporter=exporter)
    with SimulatedPlatform("shop") as shop:
        shop.fail_next(2, 503)
        before = existing_program(shop.url)
        print(f"plain httpx during a 503 burst:      {before}")

        instrumentor = HTTPXInstrumentor()
        instrumentor.instrument(policies=POLICIES)
        shop.fail_next(2, 503)
        calls_before = shop.stats.requests
        started = time.monotonic()
        with commtel.correlation_context("orders-sync-42"):
            after = existing_program(shop.url)
        elapsed = time.monotonic() - started
        sent = shop.stats.requests - calls_before
        seen_ids = {r.headers.get("X-Correlation-ID") for r in list(shop.requests)[-sent:]}
        print(f"instrumented, same burst:            {after} ({sent} requests sent, {elapsed:.2f}s)")

        instrumentor.uninstrument()
        shop.fail_next(1, 503)
        plain_again = existing_program(shop.url)
        print(f"after uninstrument(), one 503:       {plain_again}")
    commtel.shutdown(timeout_s=2)  # flush the batched spans into the exporter
    spans = exporter.get_finished_spans()

    if telemetry.exporting == "custom":
        print("trace of the first request:")
        print_trace(spans)
    else:
        print(f"spans went to {telemetry.endpoint} (OTEL_EXPORTER_OTLP_* is set); not shown here")
    print("metrics:")
    for line in contract_lines(
        "commtel_retry_calls_total", "commtel_retry_attempts_total", "commtel_operation_duration_seconds_count"
    ):
        print(f"  {line}")

    if before != [503, 503, 200, 200, 200] or plain_again != [503, 200, 200, 200, 200]:
        msg = f"the uninstrumented program should see the 503s: {before}, {plain_again}"
        raise SystemExit(msg)
    if after != [200] * 5 or sent != 7:
        msg = f"expected 5 successes out of 7 requests, got {after} from {sent}"
        raise SystemExit(msg)
    if seen_ids != {"orders-sync-42"}:
        msg = f"the server saw correlation ids {seen_ids}"
        raise SystemExit(msg)
    if telemetry.exporting == "custom":
        attempts = [s for s in spans if s.name == "GET"]
        operations = [s for s in spans if s.name == "HTTP GET"]
        if (
            len(attempts) != 7
            or len(operations) != 5
            or {(s.attributes or {}).get("commtel.correlation_id") for s in operations} != {"orders-sync-42"}
        ):
            msg = f"unexpected spans: {[s.name for s in spans]}"
            raise SystemExit(msg)
    if not any(
        'result="success_after_retry"' in line and line.endswith(" 1.0")
        for line in contract_lines("commtel_retry_calls_total")
    ):
        msg = "commtel_retry_calls_total has no success_after_retry sample"
        raise SystemExit(msg)
    print("OK: the unchanged program rode out the 503 burst, with spans and metrics")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
