"""The one module that defines commtel's Prometheus metrics (the telemetry contract).

The contract is one table: the :class:`MetricSpec` attributes of :class:`Metrics`, in
order (also :data:`SPECS`). Each spec holds the exposed name, type, labels, help text,
histogram buckets, multiprocess mode and the closed value sets of its enumerated labels.
The metric objects are built from it; tests, the docs' metric reference and the
dashboard and rule checks read it too. Dashboards and alert rules depend on the names.

A :class:`Metrics` object owns one instance of every metric on one registry; the process
default lives on ``prometheus_client.REGISTRY`` (or, with ``PROMETHEUS_MULTIPROC_DIR``
set, in multiprocess files). Tests and applications inject their own registry with
:func:`use_registry`.

Two guarantees hold for every metric:

- **Series exist from the start.** A component's ``_telemetry`` handler calls
  :meth:`Metrics.zero` when the component is created, so every label set it can emit is
  exposed at 0 before its first event and ``rate()``/``increase()`` count that event.
- **Series are bounded.** Each metric keeps at most ``max_label_sets`` label sets per
  process (default :data:`DEFAULT_MAX_LABEL_SETS`); past that, label values of new label
  sets are recorded as :data:`OVERFLOW` and one warning is logged per metric.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from opentelemetry import trace
from opentelemetry.trace import TraceFlags
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .. import _events
from .. import _validation as check
from .._version import version


__all__ = [
    "CONTRACT",
    "DEFAULT_MAX_LABEL_SETS",
    "OVERFLOW",
    "SPECS",
    "MetricSpec",
    "Metrics",
    "get_metrics",
    "use_registry",
]

_M = TypeVar("_M", Counter, Gauge, Histogram)
_log = logging.getLogger("commtel.telemetry")

#: Label value that stands for every label value past a metric's ``max_label_sets``.
OVERFLOW = "other"
#: Label sets one metric keeps per process before new values are recorded as :data:`OVERFLOW`.
DEFAULT_MAX_LABEL_SETS = 1000

# Latency buckets from 1 ms to 2 min: API calls, waits and backoffs.
_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TASK_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

CIRCUIT_STATES = ("closed", "open", "half_open")
#: The value of ``commtel_circuit_state`` for each state (ordered by severity, so ``max`` is the worst).
CIRCUIT_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
_TYPE_NAMES: dict[type[Any], str] = {Counter: "counter", Gauge: "gauge", Histogram: "histogram"}


@dataclass(frozen=True)
class MetricSpec(Generic[_M]):
    """One row of the contract: everything needed to build, document and check one metric.

    On :class:`Metrics` a spec is a descriptor: ``Metrics.retry_calls`` is the spec,
    ``metrics.retry_calls`` the prometheus_client metric built from it.

    Attributes:
        kind: ``Counter``, ``Gauge`` or ``Histogram``.
        name: The exposed name (counters with their ``_total``).
        help: The HELP text.
        labels: Label names, in the order handlers pass values.
        values: Closed value sets of enumerated labels; the others take run-time values
            (names from configuration) and are capped by ``max_label_sets``.
        buckets: Histogram bucket bounds.
        multiprocess_mode: How a gauge's per-process values combine under
            ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's ``multiprocess_mode``).
        unit: What a sample means, for the metric reference (e.g. "1 per process").

    .. versionadded:: 0.1.0
    """

    kind: type[_M]
    name: str
    help: str
    labels: tuple[str, ...]
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    buckets: tuple[float, ...] | None = None
    multiprocess_mode: str | None = None
    unit: str = ""
    attr: str = field(default="", compare=False)

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "attr", name)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> MetricSpec[_M]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _M: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> MetricSpec[_M] | _M:
        # Metrics stores each built metric in its instance __dict__, which wins over this
        # (non-data) descriptor: instance lookups never get here.
        if obj is None:
            return self
        msg = f"{self.attr} was not built on {obj!r}"
        raise AttributeError(msg)

    @property
    def type_name(self) -> str:
        """``counter``, ``gauge`` or ``histogram``."""
        return _TYPE_NAMES[self.kind]

    @property
    def free_labels(self) -> tuple[str, ...]:
        """Labels that take run-time values (capped), in label order."""
        return tuple(label for label in self.labels if label not in self.values)

    def build(self, registry: CollectorRegistry | None) -> _M:
        """The prometheus_client metric of this spec, registered on *registry*."""
        options: dict[str, Any] = {}
        if self.buckets is not None:
            options["buckets"] = self.buckets
        if self.multiprocess_mode is not None:
            options["multiprocess_mode"] = self.multiprocess_mode
        # prometheus_client appends _total to a counter's name itself.
        name = self.name.removesuffix("_total") if self.kind is Counter else self.name
        kind: Any = self.kind
        metric: _M = kind(name, self.help, self.labels, registry=registry, **options)
        return metric

    def overflowed(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        """*labels* with every value outside an enumerated set replaced by :data:`OVERFLOW`."""
        return tuple(
            value if value in self.values.get(label, ()) else OVERFLOW
            for label, value in zip(self.labels, labels, strict=True)
        )


class Metrics:
    """Every contract metric, registered once on *registry*; the class body is the contract table.

    Args:
        registry: Where to register (``None``: build unregistered metrics).
        max_label_sets: Label sets each metric keeps before new values become :data:`OVERFLOW`.

    .. versionadded:: 0.1.0
    """

    build_info = MetricSpec(
        Gauge,
        "commtel_build_info",
        "Always 1: this target exposes commtel metrics (liveness alerts and the dashboards' job list read it).",
        ("version",),
        multiprocess_mode="livemax",
        unit="1",
    )
    ratelimit_decisions = MetricSpec(
        Counter,
        "commtel_ratelimit_decisions_total",
        "Rate limiter decisions by outcome.",
        ("limiter", "platform", "decision"),
        values={"decision": ("allowed", "throttled")},
    )
    ratelimit_wait = MetricSpec(
        Histogram,
        "commtel_ratelimit_wait_seconds",
        "Time callers waited for a rate limiter.",
        ("limiter", "platform"),
        buckets=_SECONDS_BUCKETS,
    )
    ratelimit_backend_errors = MetricSpec(
        Counter,
        "commtel_ratelimit_backend_errors_total",
        "Rate limiter backend (e.g. Redis) failures, answered by the fail-open/closed policy.",
        ("limiter", "backend"),
    )
    retry_calls = MetricSpec(
        Counter,
        "commtel_retry_calls_total",
        "Calls through a retry policy by final result.",
        ("operation", "platform", "result"),
        values={"result": ("success_first_try", "success_after_retry", "exhausted", "not_retryable")},
    )
    retry_attempts = MetricSpec(
        Counter,
        "commtel_retry_attempts_total",
        "Retries scheduled, by the reason the previous attempt failed (exception class, HTTP status, rate_limited).",
        ("operation", "platform", "reason"),
    )
    retry_backoff = MetricSpec(
        Histogram,
        "commtel_retry_backoff_seconds",
        "Backoff delays slept before retries.",
        ("operation", "platform"),
        buckets=_SECONDS_BUCKETS,
    )
    retry_budget_backend_errors = MetricSpec(
        Counter,
        "commtel_retry_budget_backend_errors_total",
        "Shared retry budget (e.g. Redis) failures, answered by the budget's fail_open setting.",
        ("budget", "backend"),
    )
    circuit_state = MetricSpec(
        Gauge,
        "commtel_circuit_state",
        "The breaker's state: 0 closed, 1 half-open, 2 open (multiprocess: the latest change of any live worker).",
        ("breaker",),
        multiprocess_mode="livemostrecent",
        unit="0 closed, 1 half-open, 2 open",
    )
    circuit_transitions = MetricSpec(
        Counter,
        "commtel_circuit_transitions_total",
        "Circuit breaker state transitions.",
        ("breaker", "from_state", "to_state"),
        values={"from_state": CIRCUIT_STATES, "to_state": CIRCUIT_STATES},
    )
    circuit_calls = MetricSpec(
        Counter,
        "commtel_circuit_calls_total",
        "Calls through a circuit breaker by result.",
        ("breaker", "result"),
        values={"result": ("success", "failure", "slow", "rejected")},
    )
    circuit_backend_errors = MetricSpec(
        Counter,
        "commtel_circuit_backend_errors_total",
        "Shared breaker state (e.g. Redis) failures, answered by the on_backend_error policy.",
        ("breaker", "backend"),
    )
    oauth_token_requests = MetricSpec(
        Counter,
        "commtel_oauth_token_requests_total",
        "Requests to OAuth token endpoints.",
        ("provider", "grant_type", "result"),
        values={
            "grant_type": ("authorization_code", "refresh_token", "client_credentials", "revocation"),
            "result": ("success", "error"),
        },
    )
    oauth_token_expiry = MetricSpec(
        Gauge,
        "commtel_oauth_token_expiry_timestamp_seconds",
        "When the current access token expires (Unix time; +Inf: no expiry given, 0: no token held).",
        ("provider",),
        multiprocess_mode="livemostrecent",
        unit="Unix time",
    )
    operation_duration = MetricSpec(
        Histogram,
        "commtel_operation_duration_seconds",
        "Duration of tracked operations.",
        ("operation", "platform", "outcome"),
        values={"outcome": ("success", "error")},
        buckets=_SECONDS_BUCKETS,
    )
    messages = MetricSpec(
        Counter,
        "commtel_messages_total",
        "Message state changes in conversation trackers.",
        ("platform", "state"),
        values={"state": ("pending", "in_progress", "completed", "failed")},
    )
    tracker_rows_purged = MetricSpec(
        Counter,
        "commtel_tracker_rows_purged_total",
        "Finished rows deleted from tracker tables by purge() or retention.",
        ("table",),
        values={"table": ("messages", "progress")},
    )
    tasks_active = MetricSpec(
        Gauge,
        "commtel_tasks_active",
        "Progress-tracked tasks currently running (multiprocess: summed over live workers).",
        ("kind",),
        multiprocess_mode="livesum",
    )
    task_duration = MetricSpec(
        Histogram,
        "commtel_task_duration_seconds",
        "Duration of progress-tracked tasks.",
        ("kind", "outcome"),
        values={"outcome": ("completed", "failed", "cancelled")},
        buckets=_TASK_BUCKETS,
    )

    concurrency_limit = MetricSpec(
        Gauge,
        "commtel_concurrency_limit",
        "Limit of calls in flight of a bulkhead or adaptive limiter (multiprocess: summed over live workers).",
        ("limiter", "kind"),
        values={"kind": ("bulkhead", "adaptive")},
        multiprocess_mode="livesum",
        unit="calls",
    )
    concurrency_in_flight = MetricSpec(
        Gauge,
        "commtel_concurrency_in_flight",
        "Calls in flight through a bulkhead or adaptive limiter (multiprocess: summed over live workers).",
        ("limiter",),
        multiprocess_mode="livesum",
        unit="calls",
    )
    concurrency_decisions = MetricSpec(
        Counter,
        "commtel_concurrency_decisions_total",
        "Calls admitted or rejected by a bulkhead or adaptive limiter.",
        ("limiter", "decision"),
        values={"decision": ("admitted", "rejected")},
    )
    concurrency_wait = MetricSpec(
        Histogram,
        "commtel_concurrency_wait_seconds",
        "Time callers waited for a slot of a bulkhead or adaptive limiter.",
        ("limiter",),
        buckets=_SECONDS_BUCKETS,
    )
    concurrency_latency = MetricSpec(
        Gauge,
        "commtel_concurrency_latency_seconds",
        "Latency an adaptive limiter measured: the last window's mean, and the unloaded baseline (0: not yet).",
        ("limiter", "measure"),
        values={"measure": ("window", "baseline")},
        multiprocess_mode="livemax",
        unit="seconds",
    )
    timeouts = MetricSpec(
        Counter,
        "commtel_timeouts_total",
        "Calls or attempts cut off by a timeout.",
        ("timeout", "scope"),
        values={"scope": ("attempt", "total")},
    )
    hedge_calls = MetricSpec(
        Counter,
        "commtel_hedge_calls_total",
        "Calls through a hedge, by the attempt that answered.",
        ("hedge", "result"),
        values={"result": ("primary", "hedge", "failed")},
    )
    hedges = MetricSpec(
        Counter,
        "commtel_hedges_total",
        "Hedged attempts launched, or denied by the retry budget.",
        ("hedge", "decision"),
        values={"decision": ("launched", "denied")},
    )
    fallbacks = MetricSpec(
        Counter,
        "commtel_fallbacks_total",
        "Failed calls answered by a fallback, by why they failed.",
        ("fallback", "reason"),
        values={"reason": ("rejected", "timeout", "error", "result")},
    )
    faults_injected = MetricSpec(
        Counter,
        "commtel_faults_injected_total",
        "Faults injected by a fault injector.",
        ("injector", "fault"),
        values={"fault": ("latency", "error", "outcome")},
    )

    def __init__(
        self, registry: CollectorRegistry | None = DEFAULT_REGISTRY, *, max_label_sets: int = DEFAULT_MAX_LABEL_SETS
    ) -> None:
        self.registry = registry
        self.max_label_sets = check.whole(max_label_sets, "max_label_sets", owner="Metrics")
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._specs: dict[int, MetricSpec[Any]] = {}
        self._label_sets: dict[int, int] = {}
        self._overflowed: set[int] = set()
        self._lock = threading.Lock()
        for spec in SPECS:
            metric = spec.build(registry)
            self.__dict__[spec.attr] = metric
            self._specs[id(metric)] = spec
            self._label_sets[id(metric)] = 0
        self.child(self.build_info, version()).set(1)

    def spec(self, metric: Counter | Gauge | Histogram) -> MetricSpec[Any]:
        """The contract row *metric* was built from."""
        return self._specs[id(metric)]

    def child(self, metric: _M, *labels: str) -> _M:
        """Return the label child of *metric*, bound once and cached (saves ~0.8 µs a sample).

        A label set beyond the metric's ``max_label_sets`` goes to its :data:`OVERFLOW` child.
        """
        found = self._children.get((id(metric), labels))
        if found is None:
            found = self._new_child(metric, labels)
        return found

    def _new_child(self, metric: _M, labels: tuple[str, ...]) -> _M:
        key = (id(metric), labels)
        with self._lock:
            found: _M | None = self._children.get(key)
            if found is not None:
                return found
            if self._label_sets[id(metric)] < self.max_label_sets:
                self._label_sets[id(metric)] += 1
                found = self._children[key] = metric.labels(*labels)
                return found
            spec = self._specs[id(metric)]
            capped = spec.overflowed(labels)
            found = self._children.get((id(metric), capped))
            if found is None:
                # Overflow children are bounded by the enumerated value sets; raw keys are not cached.
                found = self._children[id(metric), capped] = metric.labels(*capped)
            if id(metric) not in self._overflowed:
                self._overflowed.add(id(metric))
                _log.warning(
                    "%s reached %d label sets: new label values are recorded as %r "
                    "(label values must come from configuration, not from input; first overflowing: %s)",
                    spec.name,
                    self.max_label_sets,
                    OVERFLOW,
                    dict(zip(spec.labels, labels, strict=True)),
                )
            return found

    def zero(self, metric: _M, *leading: str) -> None:
        """Expose every label set of *metric* that starts with *leading*, at 0, before its first event.

        The labels after *leading* must be enumerated: one child is made per combination of
        their values (``zero(metrics.circuit_calls, "api")`` makes ``result`` = each of
        success, failure, slow, rejected).
        """
        spec = self._specs[id(metric)]
        rest = spec.labels[len(leading) :]
        for values in itertools.product(*(spec.values[label] for label in rest)):
            self.child(metric, *leading, *values)

    def exemplar(self, span: trace.Span) -> dict[str, str] | None:
        """The OpenMetrics exemplar linking a sample to *span*'s trace (``None``: unsampled, or multiprocess)."""
        if self.multiprocess:
            return None
        ctx = span.get_span_context()
        # The flag test and %-formatting cost about half of ``.sampled`` and format() (~0.4 µs a sample).
        if not (ctx.is_valid and ctx.trace_flags & TraceFlags.SAMPLED):
            return None
        return {"trace_id": "%032x" % ctx.trace_id, "span_id": "%016x" % ctx.span_id}  # noqa: UP031

    def observe(self, histogram: Histogram, value: float, *labels: str) -> None:
        """Observe *value*, attaching the current trace as an OpenMetrics exemplar."""
        self.child(histogram, *labels).observe(value, self.exemplar(trace.get_current_span()))


#: The contract table, in order.
SPECS: tuple[MetricSpec[Any], ...] = tuple(v for v in vars(Metrics).values() if isinstance(v, MetricSpec))

#: metric name (as exposed) -> (type, labels): a view of :data:`SPECS`.
CONTRACT: dict[str, tuple[str, tuple[str, ...]]] = {spec.name: (spec.type_name, spec.labels) for spec in SPECS}

_lock = threading.Lock()
_current: Metrics | None = None


def get_metrics() -> Metrics:
    """Return the active :class:`Metrics`, creating it on the default registry on first use.

    .. versionadded:: 0.1.0
    """
    global _current  # noqa: PLW0603
    metrics = _current
    if metrics is None:
        with _lock:
            if _current is None:
                _current = Metrics(DEFAULT_REGISTRY)
            metrics = _current
    return metrics


def use_registry(registry: CollectorRegistry | None, *, max_label_sets: int = DEFAULT_MAX_LABEL_SETS) -> Metrics:
    """Register a fresh set of contract metrics on *registry* and make it the active one.

    Listeners drop their cached label children when the active set changes.

    Args:
        registry: The registry (``None``: metrics nobody exposes).
        max_label_sets: Label sets each metric keeps before new values become :data:`OVERFLOW`.

    .. versionadded:: 0.1.0
    """
    global _current  # noqa: PLW0603
    with _lock:
        if _current is not None and _current.registry is registry and _current.max_label_sets == max_label_sets:
            return _current
        _current = Metrics(registry, max_label_sets=max_label_sets)
        _events.invalidate_bindings()
        return _current
