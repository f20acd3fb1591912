"""Resilience policies per host or platform: from code, a TOML file or the environment.

A :class:`HostPolicy` says how calls to one host or platform are guarded: rate limiter,
retry, circuit breaker, per-attempt timeout, concurrency limit (a bulkhead or an
adaptive limiter). :class:`HostPolicies` maps hosts and
platforms to policies, with a default for everything else::

    base = "observe"                # or "recommended": commtel's resilience under every policy

    [default]                       # every host without an entry of its own
    timeout_s = 10
    retry = { max_attempts = 3, base_delay = 0.2 }
    breaker = { failure_threshold = 5, recovery_timeout = 30 }

    [platforms.twitter]
    rate_limit = { rate = 300, period = 900 }
    adaptive = { max_limit = 50 }   # a concurrency limit that follows latency

    [hosts."api.twitter.com"]       # exact host, or "*.example.com"
    platform = "twitter"            # inherits platforms.twitter, then default

A host's fields override its platform's, which override the default's, which override
the *base*; ``false`` switches a component off. The base ``"observe"`` (the default)
has no component at all: nothing is retried, limited, broken or timed out unless a
policy says so. Every value is validated when loaded and a bad one raises
:class:`~commtel.ConfigurationError` naming the field (``hosts."api.x.com".retry.max_attempts``).

Stateful parts are made per *scope* (a configured host, a platform, or each
unconfigured host): every call to ``api.twitter.com`` shares one breaker, one
limiter and one concurrency limit, and a broken host does not open the breaker of another. A limiter or
breaker *object* given in code is shared as is by every scope that uses it.

Label values come from configuration only: a host's ``platform`` label (and the name of
its breaker and limiter) is its configured platform, else its ``hosts`` key, and every
host without an entry shares :data:`OTHER_HOSTS`. The scopes of hosts without an exact
entry (unconfigured hosts, and hosts matched by a ``*.`` pattern) are kept for the
:data:`MAX_HOST_SCOPES` most recently used hosts: memory stays bounded whatever URLs a
program is handed, and a host seen again after eviction starts with a closed breaker.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import os
import sys
import threading

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from .. import _validation as check
from .._exceptions import ConfigurationError
from ..breaker._breaker import CircuitBreaker
from ..concurrency._adaptive import AdaptiveLimiter
from ..concurrency._bulkhead import Bulkhead
from ..ratelimit._limiter import RateLimiter
from ..retries._config import RetryConfig
from ..retries._core import RetryCore
from ._guard import Guard


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


__all__ = [
    "ENV_POLICIES",
    "ENV_POLICIES_FILE",
    "IDEMPOTENT_METHODS",
    "MAX_HOST_SCOPES",
    "OTHER_HOSTS",
    "RECOMMENDED",
    "HostPolicies",
    "HostPolicy",
    "configured_policies",
    "resolve_policy",
]

#: Environment variable naming a TOML policy file.
ENV_POLICIES_FILE = "COMMTEL_POLICIES_FILE"
#: Environment variable holding TOML policy text itself (applied over the file).
ENV_POLICIES = "COMMTEL_POLICIES"
#: HTTP methods retried by default: safe to send twice.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: The ``platform`` label (and breaker/limiter name) shared by every host without an entry of its own.
OTHER_HOSTS = "other"
#: Default bound of the per-host scopes kept for hosts without an exact entry (least recently used go first).
MAX_HOST_SCOPES = 1000

_UNSET: Any = object()
# The key of the one scope unconfigured hosts share when it holds no per-host state (not a host name).
_SHARED_OTHER = " other"
_Component = Literal["retry", "breaker", "rate_limit", "bulkhead", "adaptive"]
_STATEFUL: tuple[_Component, ...] = ("breaker", "rate_limit", "bulkhead", "adaptive")


@dataclass(frozen=True, slots=True, kw_only=True)
class HostPolicy:
    """How calls to one host or platform are guarded.

    Each of *retry*, *breaker*, *rate_limit*, *bulkhead* and *adaptive* takes a
    configuration (a mapping of the component's options, or a :class:`~commtel.RetryConfig`
    for retry) from which every scope makes its own instance, an instance shared as is,
    or ``None``/``False`` for none. Fields left unset inherit from the policy this one is layered on.

    Args:
        platform: The ``platform`` label of metrics and spans (default: the ``hosts`` key
            of a configured host, :data:`OTHER_HOSTS` for any other host, or the platform
            the policy was looked up by).
        retry: Retry configuration; default none (:data:`RECOMMENDED`: ``RetryConfig()``).
        breaker: Circuit breaker options or instance; default none (:data:`RECOMMENDED`:
            a breaker with default options).
        rate_limit: Rate limiter options or instance; default none.
        bulkhead: :class:`~commtel.concurrency.Bulkhead` options or instance: a fixed
            limit of calls in flight; default none.
        adaptive: :class:`~commtel.concurrency.AdaptiveLimiter` options (``{}`` for its
            defaults) or instance: a limit of calls in flight that follows latency;
            default none. A scope has one concurrency limit: set *bulkhead* or *adaptive*.
        timeout_s: Per-attempt timeout in seconds (HTTP: replaces the client's; async
            methods: ``asyncio.wait_for``); default none.
        retry_methods: HTTP methods that are retried (``"*"`` for all); default the
            idempotent ones, so a POST is never sent twice unless you say so.
        send_correlation: Send ``X-Correlation-ID`` and the correlation id in ``baggage``
            to this host (HTTP); default ``False``. ``traceparent`` and other baggage follow
            OpenTelemetry's propagator settings (``OTEL_PROPAGATORS``) whatever this says.

    .. versionadded:: 0.1.0
    """

    platform: str | None = _UNSET
    retry: Any = _UNSET
    breaker: Any = _UNSET
    rate_limit: Any = _UNSET
    bulkhead: Any = _UNSET
    adaptive: Any = _UNSET
    timeout_s: float | timedelta | None = _UNSET
    retry_methods: Iterable[str] = _UNSET
    send_correlation: bool = _UNSET

    def __post_init__(self) -> None:
        _validate(self, "policy")

    def over(self, base: HostPolicy) -> HostPolicy:
        """This policy's set fields layered over *base*'s.

        .. versionadded:: 0.1.0
        """
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not _UNSET}
        if not given:
            return base
        # Both are validated already: layering needs no second validation (a new host costs µs, not ms).
        layered = HostPolicy.__new__(HostPolicy)
        for f in fields(HostPolicy):
            object.__setattr__(layered, f.name, given.get(f.name, getattr(base, f.name)))
        return layered

    def guard(self, operation: str, platform: str | None = None) -> Guard:
        """A :class:`~commtel.Guard` for *operation* with this policy's components (new instances).

        .. versionadded:: 0.1.0
        """
        return _standalone_scope(self.over(_OBSERVE), platform or self.platform_name(operation)).guard(operation)

    def platform_name(self, fallback: str) -> str:
        """The platform label: the configured one, else *fallback*."""
        value = self.platform
        return fallback if value is _UNSET or value is None else value

    def __repr__(self) -> str:
        given = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if getattr(self, f.name) is not _UNSET
        )
        return f"HostPolicy({given})"


def _validate_flags(policy: HostPolicy, where: str) -> None:
    platform: object = policy.platform
    if platform is not _UNSET and platform is not None and not isinstance(platform, str):
        msg = f"{where}.platform must be a string, got {platform!r}"
        raise ConfigurationError(msg)
    send: object = policy.send_correlation
    if send is not _UNSET and not isinstance(send, bool):
        msg = f"{where}.send_correlation must be true or false, got {send!r}"
        raise ConfigurationError(msg)


def _validate(policy: HostPolicy, where: str) -> None:
    put = object.__setattr__
    _validate_flags(policy, where)
    timeout: object = policy.timeout_s
    if timeout is not _UNSET:
        put(policy, "timeout_s", check.duration(timeout, "timeout_s", owner=where, optional=True))
    if policy.retry_methods is not _UNSET:
        methods = [policy.retry_methods] if isinstance(policy.retry_methods, str) else policy.retry_methods
        if not all(isinstance(m, str) for m in methods):
            msg = f"{where}.retry_methods must be a list of HTTP method names or '*', got {policy.retry_methods!r}"
            raise ConfigurationError(msg)
        put(policy, "retry_methods", frozenset(m.upper() for m in methods))
    _validate_components(policy, where)


def _validate_components(policy: HostPolicy, where: str) -> None:
    put = object.__setattr__
    for name in ("retry", *_STATEFUL):
        value = getattr(policy, name)
        if value is not _UNSET and value is not False:
            types, what = _COMPONENT_TYPES[name]
            check.instance(value, f"{where}.{name}", types, owner="", optional=True, what=what)
        if value is False:
            put(policy, name, None)
        elif name == "retry" and isinstance(value, Mapping):
            put(policy, name, _prefixed(where, name, _retry_config, value))
        elif isinstance(value, Mapping):
            _prefixed(where, name, _check_component, name, value)  # fail now, not on the first call
            put(policy, name, dict(value))


#: What each component field accepts besides an options mapping, ``None`` and ``False``.
_COMPONENT_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "retry": ((RetryConfig, RetryCore, Mapping), "a RetryConfig, a mapping of its options, False"),
    "breaker": ((CircuitBreaker, Mapping), "a CircuitBreaker, a mapping of its options, False"),
    "rate_limit": ((RateLimiter, Mapping), "a RateLimiter, a mapping of its limits, False"),
    "bulkhead": ((Bulkhead, Mapping), "a Bulkhead, a mapping of its options, False"),
    "adaptive": ((AdaptiveLimiter, Mapping), "an AdaptiveLimiter, a mapping of its options, False"),
}


def _retry_config(options: Mapping[str, Any]) -> RetryConfig:
    return RetryConfig(**options)


def _prefixed(where: str, name: str, fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)``; configuration errors come back naming ``where.name``."""
    try:
        return fn(*args)
    except TypeError as exc:
        # dataclass/constructor signature errors: "unexpected keyword argument 'x'"
        detail = str(exc).split(")", 1)[-1].strip() or str(exc)
        msg = f"{where}.{name}: {detail}"
        raise ConfigurationError(msg) from None
    except (ConfigurationError, ValueError) as exc:
        msg = f"{where}.{name}: {exc}"
        raise ConfigurationError(msg) from None


def _limits_from(options: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """TokenBucket/SlidingWindow objects from the mapping form, and the remaining limiter options."""
    from ..ratelimit._config import TIMEFRAMES, preset_limits
    from ..ratelimit._core import SlidingWindow, TokenBucket

    rest = dict(options)
    limits: list[Any] = []
    if "preset" in rest:
        limits.extend(preset_limits(str(rest.pop("preset"))))
    if "rate" in rest:
        rate = rest.pop("rate")
        limits.append(TokenBucket(rate, rest.pop("burst", max(1, int(rate)) if _finite(rate) else rate)))
    if "limit" in rest or "window_s" in rest:
        limits.append(SlidingWindow(rest.pop("limit", None), rest.pop("window_s", None)))
    for timeframe, length in TIMEFRAMES.items():
        per = rest.pop(f"per_{timeframe}", None)
        if per is not None:
            limits.append(SlidingWindow(per, length))
    limits.extend(SlidingWindow(**window) for window in rest.pop("windows", ()))
    if not limits:
        msg = (
            "needs limits: rate (+ burst), limit + window_s, per_second/per_minute/per_hour/per_day, "
            "windows = [{limit, window_s}], or preset"
        )
        raise ConfigurationError(msg)
    unknown = sorted(set(rest) - {"max_server_wait_s", "burst"})
    if unknown or "burst" in rest:
        msg = f"unknown option(s) {unknown or ['burst (only with rate)']}"
        raise ConfigurationError(msg)
    return limits, rest


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _concurrency_class(kind: _Component) -> type[Bulkhead | AdaptiveLimiter]:
    return AdaptiveLimiter if kind == "adaptive" else Bulkhead


def _check_component(kind: _Component, options: Mapping[str, Any]) -> None:
    """Validate *options* without building anything that would announce itself (metrics, events)."""
    if kind == "rate_limit":
        _limits_from(options)
        return
    if kind in {"bulkhead", "adaptive"}:
        _concurrency_class(kind).check_options(**options)
        return
    from ..breaker._breaker import CircuitBreaker

    CircuitBreaker.check_options(**options)


def _make_component(kind: _Component, name: str, options: Mapping[str, Any]) -> Any:
    """A breaker, limiter or concurrency limit named *name* from its *options* (the TOML/mapping form)."""
    if kind == "breaker":
        from ..breaker._breaker import CircuitBreaker

        return CircuitBreaker(name, **options)
    if kind in {"bulkhead", "adaptive"}:
        return _concurrency_class(kind)(name, **options)
    from ..ratelimit._limiter import RateLimiter

    limits, rest = _limits_from(options)
    return RateLimiter(*limits, name=name, platform=name, **rest)


# The base "observe", under every policy unless "recommended" is chosen: no component at all.
_OBSERVE = HostPolicy(
    platform=None,
    retry=None,
    breaker=None,
    rate_limit=None,
    bulkhead=None,
    adaptive=None,
    timeout_s=None,
    retry_methods=IDEMPOTENT_METHODS,
    send_correlation=False,
)
#: commtel's recommended resilience (the base ``"recommended"``): 3 attempts with jittered
#: exponential backoff for idempotent methods, and a breaker per scope that opens after 5
#: consecutive failures for 30 s.
RECOMMENDED = HostPolicy(retry=RetryConfig(), breaker={})
_BASES = {"observe": _OBSERVE, "recommended": RECOMMENDED.over(_OBSERVE)}


class _Scope:
    """The live state of one scope (a host, or a platform): its breaker, limiters and guards."""

    __slots__ = (
        "_guards",
        "_lock",
        "breaker",
        "concurrency",
        "limiter",
        "own_state",
        "platform",
        "policy",
        "retry_methods",
        "send_correlation",
    )

    def __init__(
        self, policy: HostPolicy, platform: str, components: Mapping[_Component, Any], *, own_state: bool = True
    ) -> None:
        bulkhead, adaptive = components["bulkhead"], components["adaptive"]
        if bulkhead is not None and adaptive is not None:
            msg = (
                f"{platform}: bulkhead and adaptive are both set; a scope has one concurrency limit "
                "(false switches one off)"
            )
            raise ConfigurationError(msg)
        self.policy = policy
        self.platform = platform
        self.breaker = components["breaker"]
        self.limiter = components["rate_limit"]
        self.concurrency = adaptive if adaptive is not None else bulkhead
        #: Whether the scope made a component of its own (else it may be shared by many hosts).
        self.own_state = own_state
        methods = policy.retry_methods
        self.retry_methods: frozenset[str] | None = None if "*" in methods else frozenset(methods)
        self.send_correlation: bool = policy.send_correlation
        self._guards: dict[tuple[str, bool], Guard] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"_Scope(platform={self.platform!r}, breaker={self.breaker!r}, limiter={self.limiter!r}, "
            f"concurrency={self.concurrency!r})"
        )

    def guard(self, operation: str, *, http_method: str | None = None) -> Guard:
        """The (cached) guard of *operation*.

        An HTTP guard (*http_method* given) leaves the timeout to the client library and
        raises :class:`~commtel.RetryExhausted` carrying the last response when retries
        run out, so the operation's span ends as an error; the instrumentor returns that
        response to the program.
        """
        retried = http_method is None or self.retry_methods is None or http_method in self.retry_methods
        key = (operation, retried)
        found = self._guards.get(key)
        if found is None:
            with self._lock:
                found = self._guards.get(key)
                if found is None:
                    policy = self.policy
                    found = self._guards[key] = Guard(
                        operation,
                        platform=self.platform,
                        retry=policy.retry if retried else None,
                        breaker=self.breaker,
                        limiter=self.limiter,
                        concurrency=self.concurrency,
                        timeout_s=None if http_method is not None else policy.timeout_s,  # type: ignore[arg-type]
                    )
        return found


def _instance(kind: _Component, name: str, value: Any) -> Any:
    if value is None or value is _UNSET:
        return None
    if isinstance(value, Mapping):
        return _make_component(kind, name, value)
    return value


def _standalone_scope(policy: HostPolicy, name: str) -> _Scope:
    """A scope of its own for *policy*, with fresh component instances named *name*."""
    components = {kind: _instance(kind, name, getattr(policy, kind)) for kind in _STATEFUL}
    return _Scope(policy, policy.platform_name(name), components)


@dataclass(frozen=True, slots=True)
class HostPolicies:
    """Policies by host and by platform, with a default; resolves a host to its live scope.

    A breaker, limiter or concurrency limit lives where it is configured: one defined for
    a platform is shared by every host of that platform, one defined for a host entry by
    the hosts it matches, and one from the default policy (or the base) is made per host.

    Args:
        default: The policy of every host and platform without one of its own,
            layered over the *base*.
        hosts: A policy per host name; ``"*.example.com"`` patterns match subdomains.
        platforms: A policy per platform name; a host policy names its platform.
        base: What every policy is layered over: ``"observe"`` (no retry, breaker, limiter
            or timeout: calls behave exactly as without commtel) or ``"recommended"``
            (:data:`RECOMMENDED`).
        max_host_scopes: How many hosts without an exact entry keep their own scope
            (breaker, limiter); the least recently used beyond it are forgotten.

    .. versionadded:: 0.1.0
    """

    default: HostPolicy = field(default_factory=HostPolicy)
    hosts: Mapping[str, HostPolicy] = field(default_factory=dict)
    platforms: Mapping[str, HostPolicy] = field(default_factory=dict)
    base: Literal["observe", "recommended"] = "observe"
    max_host_scopes: int = MAX_HOST_SCOPES
    # Scopes of exact host entries and platforms: bounded by the configuration.
    _pinned: dict[str, _Scope] = field(default_factory=dict, init=False, repr=False, compare=False)
    # Scopes of every other host, least recently used first.
    _recent: OrderedDict[str, _Scope] = field(default_factory=OrderedDict, init=False, repr=False, compare=False)
    _instances: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.base not in _BASES:
            msg = f"base must be one of {sorted(_BASES)}, got {self.base!r}"
            raise ConfigurationError(msg)
        bound: object = self.max_host_scopes
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
            msg = f"max_host_scopes must be a whole number >= 1, got {bound!r}"
            raise ConfigurationError(msg)
        check.instance(self.default, "default", HostPolicy, owner="HostPolicies")
        for name in ("hosts", "platforms"):
            table = check.instance(getattr(self, name), name, Mapping, owner="HostPolicies", what="a dict")
            for key, policy in table.items():
                check.instance(policy, f"{name}[{key!r}]", HostPolicy, owner="HostPolicies")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "policies") -> HostPolicies:
        """Build from the TOML-shaped mapping (``base``, ``max_host_scopes``, ``default``, ``hosts``, ``platforms``).

        Raises:
            ConfigurationError: Unknown keys or invalid values, naming the field.

        .. versionadded:: 0.1.0
        """
        unknown = set(data) - {"base", "max_host_scopes", "default", "hosts", "platforms"}
        if unknown:
            msg = (
                f"{source}: unknown key(s) {sorted(unknown)}; expected base, max_host_scopes, default, hosts, platforms"
            )
            raise ConfigurationError(msg)
        default = _policy_from(data.get("default", {}), f"{source}: default")
        tables: dict[str, dict[str, HostPolicy]] = {}
        for section in ("hosts", "platforms"):
            entries = data.get(section, {})
            if not isinstance(entries, Mapping):
                msg = f"{source}: {section} must be a table of policies, got {entries!r}"
                raise ConfigurationError(msg)
            tables[section] = {
                str(key).lower() if section == "hosts" else str(key): _policy_from(
                    value, f'{source}: {section}."{key}"'
                )
                for key, value in entries.items()
            }
        try:
            return cls(
                default=default,
                hosts=tables["hosts"],
                platforms=tables["platforms"],
                base=data.get("base", "observe"),
                max_host_scopes=data.get("max_host_scopes", MAX_HOST_SCOPES),
            )
        except ConfigurationError as exc:
            msg = f"{source}: {exc}"
            raise ConfigurationError(msg) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> HostPolicies:
        """Load a TOML policy file (see the module documentation for its shape).

        Raises:
            ConfigurationError: The file is not valid TOML, or a value is invalid.

        .. versionadded:: 0.1.0
        """
        text = _read_policies(path)
        return cls.from_mapping(_parse_toml(text, str(path)), source=str(path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HostPolicies:
        """Load ``$COMMTEL_POLICIES_FILE``, then ``$COMMTEL_POLICIES`` (TOML text) over it.

        With neither set, the base ``"observe"`` applies: nothing is guarded.

        .. versionadded:: 0.1.0
        """
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        path = env.get(ENV_POLICIES_FILE)
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                msg = f"${ENV_POLICIES_FILE}={path!r} cannot be read: {getattr(exc, 'strerror', None) or exc}"
                raise ConfigurationError(msg) from None
            data = _parse_toml(text, path)
        inline = env.get(ENV_POLICIES)
        if inline:
            data = _merge(data, _parse_toml(inline, f"${ENV_POLICIES}"))
        return cls.from_mapping(data, source=path or f"${ENV_POLICIES}")

    def _host_entry(self, host: str) -> tuple[str, HostPolicy] | None:
        found = self.hosts.get(host)
        if found is not None:
            return host, found
        for pattern, policy in self.hosts.items():
            if "*" in pattern and fnmatch.fnmatchcase(host, pattern):
                return pattern, policy
        return None

    def _build(
        self, name: str, own: tuple[str, HostPolicy] | None, platform: str | None, extra: HostPolicy | None
    ) -> _Scope:
        # Layers from general to specific; a component's instance is keyed by the layer that set it.
        platform = own[1].platform_name(platform or "") if own is not None else platform
        layers: list[tuple[str, HostPolicy | None]] = [
            ("", self.default),
            (f"platforms.{platform}", self.platforms.get(platform) if platform else None),
            (f"hosts.{own[0]}" if own else "", own[1] if own else None),
            ("", extra),
        ]
        policy = _BASES[self.base]
        origins = dict.fromkeys(_STATEFUL, "")
        for origin, layer in layers:
            if layer is None:
                continue
            policy = layer.over(policy)
            for kind in origins:
                if getattr(layer, kind) is not _UNSET:
                    origins[kind] = origin
        label = policy.platform_name(platform or name)
        components = {}
        own_state = False
        for kind in _STATEFUL:
            origin = origins[kind]
            value = getattr(policy, kind)
            if not origin:
                own_state = own_state or isinstance(value, Mapping)
                components[kind] = _instance(kind, label, value)
                continue
            key = (kind, origin)
            if key not in self._instances:
                self._instances[key] = _instance(kind, label, value)
            components[kind] = self._instances[key]
        return _Scope(policy, label, components, own_state=own_state)

    def for_host(self, host: str) -> _Scope:
        """The live scope of calls to *host* (its breaker, limiter and guards).

        A host with an exact ``hosts`` entry keeps its scope; any other host's scope is
        one of the ``max_host_scopes`` most recently used, labelled by its pattern entry's
        key or :data:`OTHER_HOSTS` — or, for unconfigured hosts whose policy makes no
        breaker or limiter of their own, the one scope they all share.

        .. versionadded:: 0.1.0
        """
        scope = self._pinned.get(host)
        if scope is not None:
            return scope
        recent = self._recent
        scope = recent.get(host)
        if scope is not None:
            with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                recent.move_to_end(host)
            return scope
        key = host.lower()
        shared = self._pinned.get(_SHARED_OTHER)
        if shared is not None and self._host_entry(key) is None:
            return shared
        with self._lock:
            scope = self._pinned.get(host) or recent.get(host)
            if scope is None:
                entry = self._host_entry(key)
                scope = self._build(OTHER_HOSTS if entry is None else entry[0], entry, None, None)
                if entry is None and not scope.own_state:
                    # Nothing per host to keep (no breaker or limiter of its own): every such host shares it.
                    self._pinned[_SHARED_OTHER] = scope
                elif entry is not None and entry[0] == key:
                    self._pinned[host] = scope
                else:
                    recent[host] = scope
                    while len(recent) > self.max_host_scopes:
                        recent.popitem(last=False)
        return scope

    def for_platform(self, platform: str | None, policy: HostPolicy | None = None) -> _Scope:
        """The live scope of a platform; with *policy*, a new scope with that layered on top.

        .. versionadded:: 0.1.0
        """
        name = platform or ""
        if policy is not None:
            with self._lock:
                return self._build(name, None, name, policy)
        key = f"platform:{name}"
        scope = self._pinned.get(key)
        if scope is None:
            with self._lock:
                scope = self._pinned.get(key)
                if scope is None:
                    scope = self._pinned[key] = self._build(name, None, name, None)
        return scope


def _policy_from(value: Any, where: str) -> HostPolicy:
    if isinstance(value, HostPolicy):
        return value
    if not isinstance(value, Mapping):
        msg = f"{where} must be a table of policy fields, got {value!r}"
        raise ConfigurationError(msg)
    known = {f.name for f in fields(HostPolicy)}
    unknown = sorted(set(value) - known)
    if unknown:
        msg = f"{where}: unknown field(s) {unknown}; expected {sorted(known)}"
        raise ConfigurationError(msg)
    policy = HostPolicy.__new__(HostPolicy)
    for name in known:
        object.__setattr__(policy, name, value.get(name, _UNSET))
    _validate(policy, where)
    return policy


def _read_policies(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the policies file {str(path)!r}: {exc.strerror if isinstance(exc, OSError) else exc}"
        raise ConfigurationError(msg) from None


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigurationError(msg) from None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
        )
    return out


_lock = threading.Lock()
_configured: HostPolicies | None = None


def configured_policies() -> HostPolicies:
    """The process-wide policies: from the environment, loaded on first use."""
    global _configured  # noqa: PLW0603
    if _configured is None:
        with _lock:
            if _configured is None:
                _configured = HostPolicies.from_env()
    return _configured


def resolve_policy(policy: HostPolicy | Mapping[str, Any] | None, platform: str | None) -> _Scope:
    """The scope :func:`~commtel.instrument` guards with: *policy* layered over the configured one."""
    policies = configured_policies()
    return policies.for_platform(platform, None if policy is None else _policy_from(policy, "policy"))
