"""The full guard (limiter + breaker + retry + Prometheus metrics) vs tenacity alone; with a span vs a bare span."""

from __future__ import annotations

import tenacity

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from benchmarks._harness import Case
from commtel import CircuitBreaker, RetryConfig
from commtel.instrumentation import Guard
from commtel.ratelimit._core import TokenBucket
from commtel.ratelimit._limiter import RateLimiter
from commtel.telemetry._metrics import use_registry


class _Drop(SpanExporter):
    """Exports nowhere: keeping every span would make later cases pay for a growing heap."""

    def export(self, spans: object) -> SpanExportResult:  # noqa: ARG002 - the exporter interface
        return SpanExportResult.SUCCESS


def _guard(name: str, *, span: bool) -> Guard:
    return Guard(
        name,
        platform="bench",
        retry=RetryConfig(max_attempts=3, base_delay=0.01),
        breaker=CircuitBreaker(f"bench-{name}", failure_threshold=5),
        limiter=RateLimiter(TokenBucket(rate=1e9, burst=1_000_000_000), name=f"bench-{name}"),
        span=span,
    )


def cases() -> list[Case]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=1 << 16))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("bench")
    use_registry(CollectorRegistry())

    def work() -> int:
        return 1

    async def awork() -> int:
        return 1

    retrying = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_exponential(min=0.01))(work)
    aretrying = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_exponential(min=0.01))(awork)
    quiet = _guard("quiet", span=False)
    traced = _guard("traced", span=True)

    def guarded() -> int:
        return quiet.call(work)

    async def aguarded() -> int:
        return await quiet.acall(awork)

    def bare_span() -> int:
        with tracer.start_as_current_span("op"):
            return work()

    # What the SDK alone charges for the three attributes every guard span must carry.
    contract = {"commtel.correlation_id": "0" * 32, "commtel.operation": "op", "commtel.platform": "bench"}

    def attributed_span() -> int:
        with tracer.start_as_current_span("op", attributes=contract):
            return work()

    def guarded_span() -> int:
        return traced.call(work)

    lean = Guard("lean", platform="bench", retry=RetryConfig(max_attempts=3, base_delay=0.01))

    def lean_span() -> int:
        return lean.call(work)

    return [
        Case("guard, success path (sync)", "tenacity @retry alone", retrying, baseline=True),
        Case(
            "guard, success path (sync)",
            "commtel Guard.call",
            guarded,
            target=0.5,
            note="(limiter+breaker+retry+metrics)",
        ),
        Case("guard, success path (async)", "tenacity @retry alone", afn=aretrying, baseline=True),
        Case(
            "guard, success path (async)",
            "commtel Guard.acall",
            afn=aguarded,
            target=0.5,
            note="(limiter+breaker+retry+metrics)",
        ),
        Case("guard with a recording span (sync)", "OTel SDK span around the call", bare_span, baseline=True),
        Case(
            "guard with a recording span (sync)",
            "OTel SDK span, + the 3 contract attributes",
            attributed_span,
            note="(reference)",
        ),
        Case(
            "guard with a recording span (sync)",
            "commtel Guard.call, span on",
            guarded_span,
            target=1.25,
            note="(+ limiter+breaker+retry+metrics)",
        ),
        Case(
            "guard with a recording span (sync)",
            "commtel Guard.call, span on",
            lean_span,
            note="(retry + duration metric w/ exemplar)",
        ),
    ]
