"""The contract table: every metric built from it, series at 0 from a component's creation, bounded label sets."""

from __future__ import annotations

import logging

from pathlib import Path

import pytest

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from commtel import CircuitBreaker, RateLimiter, RetryBudget, RetryPolicy
from commtel.oauth import OAuthClient, OAuthProvider
from commtel.progress import ProgressTracker
from commtel.ratelimit import RedisBackend, TokenBucket
from commtel.telemetry import _metrics
from commtel.telemetry._metrics import DEFAULT_MAX_LABEL_SETS, OVERFLOW, SPECS, Metrics


def _exposed(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the registry's text exposition: (name, labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _series(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def _values(attr: str, label: str) -> tuple[str, ...]:
    return getattr(Metrics, attr).values[label]


def test_the_metrics_are_built_from_the_table(registry: CollectorRegistry) -> None:
    """Each row of the table is one registered metric with its name, type, labels, help and buckets."""
    metrics = _metrics.get_metrics()
    assert len({spec.name for spec in SPECS}) == len(SPECS) == len({spec.attr for spec in SPECS})
    for spec in SPECS:
        metric = getattr(metrics, spec.attr)
        assert metrics.spec(metric) is spec
        assert isinstance(metric, spec.kind)
        assert tuple(metric._labelnames) == spec.labels
        assert metric._documentation == spec.help
        assert set(spec.values) <= set(spec.labels), spec.name
        if spec.buckets is not None:
            assert tuple(metric._upper_bounds[:-1]) == spec.buckets
        if spec.multiprocess_mode is not None:
            assert metric._multiprocess_mode == spec.multiprocess_mode
        [family] = metric.describe()
        assert family.name == spec.name.removesuffix("_total")
        assert family.type == spec.type_name
    assert _exposed(registry)[_series("commtel_build_info", version=_version())] == 1


def _version() -> str:
    import commtel

    return str(commtel.__version__)


def test_components_expose_every_series_they_can_emit_at_zero_right_after_construction(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    """Breaker, limiter, retry policy, OAuth client and progress tracker: every label set at 0 before any call."""
    CircuitBreaker("api", failure_threshold=3)
    RateLimiter(TokenBucket(10.0, 5), name="quota", platform="social")
    RetryPolicy(operation="send", platform="chat", max_attempts=3)
    provider = OAuthProvider(
        name="crm",
        authorize_url="https://crm.test/a",
        token_url="https://crm.test/t",
        revocation_url="https://crm.test/r",
    )
    OAuthClient(provider, "id", "secret", grant_type="client_credentials")
    ProgressTracker(f"sqlite:///{tmp_path / 'progress.db'}", kind="import")
    exposed = _exposed(registry)

    expected = [
        _series("commtel_circuit_calls_total", breaker="api", result=r) for r in _values("circuit_calls", "result")
    ]
    expected += [
        _series("commtel_circuit_transitions_total", breaker="api", from_state=a, to_state=b)
        for a in _metrics.CIRCUIT_STATES
        for b in _metrics.CIRCUIT_STATES
        if a != b
    ]
    expected += [
        _series("commtel_ratelimit_decisions_total", limiter="quota", platform="social", decision=d)
        for d in _values("ratelimit_decisions", "decision")
    ]
    expected += [_series("commtel_ratelimit_wait_seconds_count", limiter="quota", platform="social")]
    expected += [
        _series("commtel_retry_calls_total", operation="send", platform="chat", result=r)
        for r in _values("retry_calls", "result")
    ]
    expected += [_series("commtel_retry_backoff_seconds_count", operation="send", platform="chat")]
    expected += [
        _series("commtel_oauth_token_requests_total", provider="crm", grant_type=g, result=r)
        for g in ("client_credentials", "refresh_token", "revocation")
        for r in _values("oauth_token_requests", "result")
    ]
    expected += [_series("commtel_tasks_active", kind="import")]
    expected += [
        _series("commtel_task_duration_seconds_count", kind="import", outcome=o)
        for o in _values("task_duration", "outcome")
    ]
    assert {series: exposed.get(series) for series in expected} == dict.fromkeys(expected, 0.0)
    # The state gauge says closed from the start too.
    assert exposed[_series("commtel_circuit_state", breaker="api")] == _metrics.CIRCUIT_STATE_VALUES["closed"]


def test_shared_components_expose_their_backend_errors_at_zero(registry: CollectorRegistry, redis_url: str) -> None:
    """A Redis-backed limiter, breaker or retry budget can count backend errors, so those series start at 0 too."""
    RateLimiter(TokenBucket(10.0, 5), name="shared", backend=RedisBackend(redis_url))
    CircuitBreaker("shared", failure_threshold=3, redis=redis_url)
    RetryBudget("shared", redis=redis_url)
    RetryBudget("local")
    exposed = _exposed(registry)
    assert exposed[_series("commtel_ratelimit_backend_errors_total", limiter="shared", backend="redis")] == 0
    assert exposed[_series("commtel_circuit_backend_errors_total", breaker="shared", backend="redis")] == 0
    assert exposed[_series("commtel_retry_budget_backend_errors_total", budget="shared", backend="redis")] == 0
    assert _label_sets(registry, "commtel_retry_budget_backend_errors_total") == [
        {"budget": "shared", "backend": "redis"}
    ]  # an in-memory budget has no backend to fail


def test_a_new_platform_label_of_a_limiter_starts_its_throttled_series_at_zero(registry: CollectorRegistry) -> None:
    """A platform given per call gets its throttled series with its first admitted decision."""
    limiter = RateLimiter(TokenBucket(10.0, 5), name="per-call")
    limiter.try_acquire("k", platform="mastodon")
    exposed = _exposed(registry)
    decisions = "commtel_ratelimit_decisions_total"
    assert exposed[_series(decisions, limiter="per-call", platform="mastodon", decision="throttled")] == 0
    assert exposed[_series(decisions, limiter="per-call", platform="mastodon", decision="allowed")] == 1


def _label_sets(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in _exposed(registry) if sample_name == name]


def test_ten_thousand_run_time_label_values_stay_bounded_with_one_warning(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """10k distinct platform values: at most the limit's label sets, the rest under `other`, one warning."""
    limiter = RateLimiter(TokenBucket(1e9, 1_000_000), name="hostile")
    with caplog.at_level(logging.WARNING, logger="commtel.telemetry"):
        for i in range(10_000):
            limiter.try_acquire("k", platform=f"user-{i}")
            limiter.try_acquire("k", platform=f"user-{i}")
    sets = _label_sets(registry, "commtel_ratelimit_decisions_total")
    # The limit counts label sets (allowed and throttled of one platform are two), plus the overflow ones.
    assert (
        DEFAULT_MAX_LABEL_SETS <= len(sets) <= DEFAULT_MAX_LABEL_SETS + len(_values("ratelimit_decisions", "decision"))
    )
    overflow = [s for s in sets if s["platform"] == OVERFLOW]
    assert {s["decision"] for s in overflow} == set(_values("ratelimit_decisions", "decision"))
    assert all(s["limiter"] == OVERFLOW for s in overflow)
    exposed = _exposed(registry)
    counted = sum(v for (name, _), v in exposed.items() if name == "commtel_ratelimit_decisions_total")
    assert counted == 20_000  # nothing is lost, only folded
    warnings = [r for r in caplog.records if "commtel_ratelimit_decisions_total" in r.getMessage()]
    assert len(warnings) == 1
    assert "label values must come from configuration" in warnings[0].getMessage()


def test_the_limit_is_per_metric_and_configurable(registry: CollectorRegistry) -> None:
    """use_registry(max_label_sets=N): N label sets per metric, other metrics unaffected."""
    fresh = CollectorRegistry()
    metrics = _metrics.use_registry(fresh, max_label_sets=5)
    for i in range(20):
        RetryPolicy(operation=f"op-{i}", platform="p")
    retry_calls = _label_sets(fresh, "commtel_retry_calls_total")
    assert len([s for s in retry_calls if s["operation"] != OVERFLOW]) == 5
    assert {s["result"] for s in retry_calls if s["operation"] == OVERFLOW} == set(_values("retry_calls", "result"))
    assert len(_label_sets(fresh, "commtel_retry_backoff_seconds_count")) == 6  # 5 + the overflow one
    assert metrics.max_label_sets == 5
    with pytest.raises(ValueError, match="max_label_sets"):
        Metrics(None, max_label_sets=0)


def test_the_docs_metric_reference_is_rendered_from_the_table() -> None:
    """docs/ops.md lists exactly the contract table's metrics, types, labels, values and help."""
    from tests.ops.bundle import OPS_DOC, REFERENCE_END, REFERENCE_START, metric_reference

    text = OPS_DOC.read_text()
    block = text.split(REFERENCE_START, 1)[1].split(REFERENCE_END, 1)[0].strip()
    assert block == metric_reference(), "regenerate the table with tests.ops.bundle.metric_reference()"
