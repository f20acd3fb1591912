"""Bulkhead, adaptive limiter, timeout, hedge, fallback and fault injector expose their series at 0 when built."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from commtel.chaos import FaultInjector
from commtel.concurrency import AdaptiveLimiter, Bulkhead
from commtel.fallback import Fallback
from commtel.hedging import Hedge
from commtel.telemetry._metrics import Metrics
from commtel.timeouts import Timeout


def _values(attr: str, label: str) -> tuple[str, ...]:
    spec = getattr(Metrics, attr)
    return tuple(spec.values[label])


def test_every_series_is_exposed_at_zero_right_after_construction(registry: CollectorRegistry) -> None:
    """Before any call, every label set these components can emit is exposed (0, or the limit for the limit gauge)."""
    Bulkhead("pool", max_concurrent=3)
    AdaptiveLimiter("api", initial_limit=7)
    Timeout(1.0, name="search", scope="attempt")
    Hedge("search", delay=0.1)
    Fallback(None, name="prices")
    FaultInjector("game-day")

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("commtel_concurrency_limit", limiter="pool", kind="bulkhead") == 3
    assert sample("commtel_concurrency_limit", limiter="api", kind="adaptive") == 7
    expected: list[tuple[str, dict[str, str]]] = []
    for limiter in ("pool", "api"):
        expected.append(("commtel_concurrency_in_flight", {"limiter": limiter}))
        expected.append(("commtel_concurrency_wait_seconds_count", {"limiter": limiter}))
        expected += [
            ("commtel_concurrency_decisions_total", {"limiter": limiter, "decision": d})
            for d in _values("concurrency_decisions", "decision")
        ]
    expected += [
        ("commtel_concurrency_latency_seconds", {"limiter": "api", "measure": m})
        for m in _values("concurrency_latency", "measure")
    ]
    expected.append(("commtel_timeouts_total", {"timeout": "search", "scope": "attempt"}))
    expected += [
        ("commtel_hedge_calls_total", {"hedge": "search", "result": r}) for r in _values("hedge_calls", "result")
    ]
    expected += [("commtel_hedges_total", {"hedge": "search", "decision": d}) for d in _values("hedges", "decision")]
    expected += [
        ("commtel_fallbacks_total", {"fallback": "prices", "reason": r}) for r in _values("fallbacks", "reason")
    ]
    expected += [
        ("commtel_faults_injected_total", {"injector": "game-day", "fault": f})
        for f in _values("faults_injected", "fault")
    ]
    assert {(name, tuple(labels.items())): sample(name, **labels) for name, labels in expected} == {
        (name, tuple(labels.items())): 0.0 for name, labels in expected
    }


def test_checking_options_announces_nothing(registry: CollectorRegistry) -> None:
    """check_options validates without creating series (configuration is checked when loaded)."""
    Bulkhead.check_options(max_concurrent=3)
    AdaptiveLimiter.check_options(initial_limit=4)
    Hedge.check_options(delay=0.1)
    FaultInjector.check_options(error_rate=0.5)
    label_values = {
        value for metric in registry.collect() for sample in metric.samples for value in sample.labels.values()
    }
    assert not label_values & {"name", "check"}
