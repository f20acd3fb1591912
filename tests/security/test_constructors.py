"""Every public constructor refuses NaN, infinities, negatives and wrong types with a ConfigurationError.

The classes are enumerated from the public packages' ``__all__``, so a new public class
is covered the day it is added (or this test asks for its baseline arguments). For each
parameter whose annotation is a quantity (``int``, ``float``, ``timedelta``) or one of
commtel's component types, hypothesis draws hostile values; each must be refused at
construction with :class:`~commtel.ConfigurationError` naming the parameter.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import math
import typing

from collections.abc import Iterator
from typing import Any

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commtel import ConfigurationError
from commtel.events import Event


PUBLIC_PACKAGES = (
    "commtel",
    "commtel.ratelimit",
    "commtel.retries",
    "commtel.breaker",
    "commtel.oauth",
    "commtel.messages",
    "commtel.progress",
    "commtel.context",
    "commtel.instrumentation",
    "commtel.telemetry",
    "commtel.simulator",
    "commtel.compat",
)

#: Classes commtel builds and hands out (decisions, records, handles), not configuration a user passes in.
RECORDS = {
    "commtel.ratelimit.RateLimitDecision": "a decision the limiter returns",
    "commtel.ratelimit.RateLimitSlot": "a handle RateLimiter.slot() returns",
    "commtel.ratelimit.ServerFeedback": "what parse_feedback returns",
    "commtel.retries.Attempt": "a handle the retrying block yields",
    "commtel.retries.RetryingBlock": "the retrying() context manager commtel builds",
    "commtel.retries.RetryStats": "counters commtel fills",
    "commtel.breaker.Admission": "a ticket the breaker returns",
    "commtel.oauth.AuthorizationRequest": "what authorization_url() returns",
    "commtel.messages.Claim": "what claim_next() returns",
    "commtel.messages.ThreadEntry": "what thread() returns",
    "commtel.messages.TrackedMessage": "a row the tracker returns",
    "commtel.messages.MessageHeaders": "parsed headers (identifiers and text, no quantity)",
    "commtel.progress.ProgressStatus": "a row the tracker returns",
    "commtel.progress.TrackedError": "an entry ErrorTracker records",
    "commtel.telemetry.Operation": "a handle OperationTracker.start_operation() returns",
    "commtel.telemetry.TelemetryConfig": "what configure() returns",
    "commtel.telemetry.MetricSpec": "a row of commtel's own metric contract, declared by commtel",
    "commtel.simulator.PlatformStats": "counters the simulator fills",
    "commtel.simulator.RecordedRequest": "a request the simulator records",
    "commtel.simulator.LoadRun": "what open_loop() measured",
    "commtel.compat.ProgressStatus": "a row the compat tracker returns",
    "commtel.compat.PlatformContext": "identifiers (ids may be any value)",
    "commtel.PlatformContext": "identifiers (ids may be any value)",
}


def _baseline(tmp_path_factory: Any) -> dict[str, dict[str, Any]]:
    """Valid values for the required parameters of each class (everything else takes its default)."""
    from commtel.oauth import OAuthProvider

    provider = OAuthProvider("p", "https://auth.example/authorize", "https://auth.example/token")
    return {
        "AsyncOAuthClient": {"provider": provider, "client_id": "id"},
        "OAuthClient": {"provider": provider, "client_id": "id"},
        "OAuthManager": {"provider": provider, "client_id": "id"},
        "ConversationTracker": {"store": "sqlite://"},
        "ProgressTracker": {"store": "sqlite://"},
        "AsyncConversationTracker": {"store": "sqlite://"},
        "AsyncProgressTracker": {"store": "sqlite://"},
        "FileLock": {"path": str(tmp_path_factory.mktemp("lock") / "x.lock")},
        "FileTokenStore": {"directory": str(tmp_path_factory.mktemp("tokens"))},
        "Guard": {"operation": "op"},
        "TokenBucket": {"rate": 1.0, "burst": 1},
        "SlidingWindow": {"limit": 1, "window_s": 1.0},
        "RedisBackend": {"url_or_client": "redis://127.0.0.1:1/0"},
        "Token": {"access_token": "t0ken-value"},
        "OAuthProvider": {"name": "p", "authorize_url": "https://a.example/a", "token_url": "https://a.example/t"},
        "JSONLinesSpanExporter": {"path": str(tmp_path_factory.mktemp("spans") / "s.jsonl")},
        "RedactingSpanExporter": {"exporter": _NullExporter()},
        "BoundLogger": {"logger": __import__("logging").getLogger("x")},
        "ContextLogger": {"logger": __import__("logging").getLogger("x")},
        "CorrelationMiddleware": {"app": lambda environ, start: []},
        "ASGICorrelationMiddleware": {"app": lambda scope, receive, send: None},
        "commtel.compat.RateLimiter": {"max_calls": 10, "time_window": 1.0},
        "register_secret": {"value": "s3cr3t-value"},
    }


class _NullExporter:
    def export(self, spans: Any) -> Any:
        return None

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _is_configuration_class(cls: type) -> bool:
    return not (
        issubclass(cls, (BaseException, Event, enum.Enum, tuple))
        or getattr(cls, "_is_protocol", False)
        or typing.is_typeddict(cls)
        or cls.__module__.startswith(("logging", "concurrent"))
    )


#: Public functions that take configuration (decorator factories, set-up calls) besides the classes.
FACTORIES = (
    "commtel.configure",
    "commtel.rate_limited",
    "commtel.register_secret",
    "commtel.retry",
    "commtel.retrying",
    "commtel.shutdown",
    "commtel.start_http_server",
    "commtel.compat.async_retry",
    "commtel.compat.rate_limited",
    "commtel.compat.retry",
)
#: Public functions with quantity parameters that are not configuration, and why they accept any value.
NOT_CONFIGURATION = {
    "commtel.ratelimit.parse_feedback": "reads a server's answer; bad values become ServerFeedback.problems",
    "commtel.compat.log_operation_metrics": "a log call: logging never raises into the application",
}


def public_classes() -> Iterator[tuple[str, Any]]:
    seen: set[int] = set()
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            qualified = f"{package}.{name}"
            if id(obj) in seen or qualified in RECORDS:
                continue
            if inspect.isclass(obj) and _is_configuration_class(obj):
                seen.add(id(obj))
                yield qualified, obj
    for qualified in FACTORIES:
        module, _, name = qualified.rpartition(".")
        yield qualified, getattr(importlib.import_module(module), name)


_QUANTITY = ("int", "float", "timedelta")
#: Parameters whose annotation says Any but which take a component, and positional limit lists.
EXTRA_CASES = [
    ("commtel.instrumentation.HostPolicy", "retry", "component"),
    ("commtel.instrumentation.HostPolicy", "breaker", "component"),
    ("commtel.instrumentation.HostPolicy", "rate_limit", "component"),
    ("commtel.RateLimiter", "*limits", "component"),
    ("commtel.GlobalRateLimiter", "*cap", "component"),
]
#: Parameters for which any whole number is valid.
ANY_INTEGER = {("commtel.simulator.SimulatedPlatform", "seed"), ("commtel.simulator.SimulatedDependency", "seed")}
_COMPONENTS = ("RetryConfig", "RetryCore", "CircuitBreaker", "RateLimiter", "RetryBudget", "TokenStore", "HostPolicy")


def _kind(annotation: str) -> str | None:
    """What hostile values a parameter gets, from its annotation (as written)."""
    words = set(annotation.replace("|", " ").replace("[", " ").replace("]", " ").replace(",", " ").split())
    if words & {"Callable"}:
        return "callable"
    if "str" in words or ("bool" in words and not words & set(_QUANTITY)):
        return None  # identifiers and flags
    if words & set(_COMPONENTS):
        return "component"
    if words & {"frozenset", "Iterable"} and "int" in words:
        return "status_codes"
    if words & set(_QUANTITY):
        return "quantity"
    return None


def cases() -> Iterator[tuple[str, str, str]]:
    for qualified, target in public_classes():
        for param in inspect.signature(target).parameters.values():
            if param.kind in {param.VAR_POSITIONAL, param.VAR_KEYWORD} or (qualified, param.name) in ANY_INTEGER:
                continue
            annotation = (
                param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
            )
            kind = _kind(annotation)
            if kind is not None:
                yield qualified, param.name, kind
    yield from EXTRA_CASES


CASES = sorted(set(cases()))

_HOSTILE_NUMBER = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1, -1.0, -1e-9, "3", "nan", b"1", [1], object()]),
    st.floats(max_value=-1e-12, allow_infinity=True),
    st.integers(max_value=-1),
)
_HOSTILE_COMPONENT = st.sampled_from(["x", 3, 2.5, object(), [1], math.nan])
_HOSTILE_CALLABLE = st.sampled_from(["x", 3, math.nan, [1]])
_HOSTILE_STATUS_CODES = st.sampled_from([[math.nan], ["500"], [-1], [42], [1000], math.nan, "500", 3, [[500]]])
_HOSTILE = {
    "quantity": _HOSTILE_NUMBER,
    "component": _HOSTILE_COMPONENT,
    "callable": _HOSTILE_CALLABLE,
    "status_codes": _HOSTILE_STATUS_CODES,
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: Any) -> dict[str, dict[str, Any]]:
    return _baseline(tmp_path_factory)


def test_every_public_class_is_enumerated() -> None:
    """The enumeration finds the constructors that matter (a guard against an empty or shrunken list)."""
    names = {qualified.rsplit(".", 1)[1] for qualified, _ in public_classes()}
    for expected in (
        "RetryConfig",
        "CircuitBreaker",
        "RateLimiter",
        "TokenBucket",
        "Guard",
        "OAuthClient",
        "FileTokenStore",
    ):
        assert expected in names
    assert len(CASES) >= 60


@pytest.mark.parametrize(("qualified", "param", "kind"), CASES, ids=[f"{q}.{p}" for q, p, _ in CASES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_argument_is_refused_at_construction(qualified: str, param: str, kind: str, baseline, data) -> None:
    module, _, name = qualified.rpartition(".")
    target = getattr(importlib.import_module(module), name)
    value = data.draw(_HOSTILE[kind], label=param)
    args: tuple[Any, ...] = ()
    kwargs = dict(baseline.get(qualified, baseline.get(name, {})))
    if param.startswith("*"):
        args = (value,)
    else:
        kwargs[param] = value
    with pytest.raises(ConfigurationError) as info:
        _close(target(*args, **kwargs))
    if not param.startswith("*"):
        assert param in str(info.value), f"the message should name {param!r}: {info.value}"


def _close(obj: object) -> None:
    for method in ("close", "shutdown", "stop"):
        fn = getattr(obj, method, None)
        if callable(fn):
            try:
                fn()
            except Exception:
                pass
            return
