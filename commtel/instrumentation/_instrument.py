"""``commtel.instrument(obj, methods=...)``: guard chosen methods of any client object or class.

Each chosen method is wrapped (wrapt, signature-preserving) so that every call runs
through a :class:`~commtel.Guard` — retry( breaker( limiter( call ))) inside one
INTERNAL span with the policies' events on it. Sync or async is decided once per
method, when it is wrapped. :func:`uninstrument` puts back exactly what was there:
the original attribute object when the target defined it itself, nothing (so that
lookup falls back to the class) when it was inherited.
"""

from __future__ import annotations

import functools
import inspect

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import wrapt

from .._exceptions import ConfigurationError
from ..context._correlation import begin_operation, end_operation
from ._guard import Guard
from ._policies import HostPolicy, resolve_policy


__all__ = ["instrument", "is_instrumented", "uninstrument"]

_T = TypeVar("_T")
_MISSING = object()


# wrapt's wrappers (bound to a guard with functools.partial): a top-level call gets its own correlation id.
def _guarded_sync(guard: Guard, wrapped: Any, _instance: object, args: Any, kwargs: Any) -> Any:
    token = begin_operation()
    try:
        return guard.call(wrapped, *args, **kwargs)
    finally:
        end_operation(token)


async def _guarded_async(guard: Guard, wrapped: Any, _instance: object, args: Any, kwargs: Any) -> Any:
    token = begin_operation()
    try:
        return await guard.acall(wrapped, *args, **kwargs)
    finally:
        end_operation(token)


class _GuardedMethod(wrapt.FunctionWrapper[..., Any]):
    """A method wrapped by :func:`instrument`; remembers what it replaced."""

    def __init__(self, wrapped: Any, wrapper: Any, original: object) -> None:
        super().__init__(wrapped, wrapper)
        # What the target's own __dict__ held before (``_MISSING`` when inherited).
        self._self_commtel_original = original


def _own_attributes(target: object) -> dict[str, Any]:
    try:
        return vars(target)  # a class's mappingproxy or an instance's __dict__
    except TypeError:
        msg = (
            f"cannot instrument {type(target).__name__!r} instances: they have no __dict__ "
            "(__slots__); instrument the class instead"
        )
        raise ConfigurationError(msg) from None


def _operation_name(target: object, method: str, operation: str | Mapping[str, str] | None) -> str:
    if isinstance(operation, str):
        return operation
    if operation is not None and method in operation:
        return operation[method]
    owner = target if isinstance(target, type) else type(target)
    return f"{owner.__name__}.{method}"


def instrument(
    target: _T,
    *,
    methods: Iterable[str],
    operation: str | Mapping[str, str] | None = None,
    platform: str | None = None,
    policy: HostPolicy | Mapping[str, Any] | None = None,
) -> _T:
    """Guard *methods* of *target* (an object or a class) with retry, breaker, limiter and a span.

    Calls go through retry( breaker( limiter( call ))) per *policy*; every call is an
    INTERNAL span named after its operation that carries the policies' events
    (retries, throttling, breaker rejections), and feeds the contract metrics
    (``commtel_retry_*``, ``commtel_circuit_*``, ``commtel_ratelimit_*``,
    ``commtel_operation_duration_seconds``). Async methods are awaited, sync ones called;
    which one is decided here, once. The methods of one call share one breaker and
    one limiter (those of *platform*).

    Instrumenting a class affects all its instances; instrumenting an instance
    affects only it. Instrumenting an instrumented method again replaces its guard.

    Args:
        target: The client object or class.
        methods: Names of the methods to guard.
        operation: The ``operation`` label: one name for all *methods*, a mapping per
            method, or ``None`` for ``"ClassName.method"``.
        platform: The ``platform`` label, and which configured platform policy applies.
        policy: A :class:`~commtel.HostPolicy` (or its mapping form), layered over the
            configured policy of *platform* (``COMMTEL_POLICIES_FILE`` /
            ``COMMTEL_POLICIES``); with neither, the calls are only observed (span and
            metrics, no retry, breaker or limiter).

    Returns:
        *target*, for chaining.

    Raises:
        ConfigurationError: A method does not exist or is not callable, the target
            cannot hold instance attributes, or the policy is invalid.

    .. versionadded:: 0.1.0
    """
    names = [methods] if isinstance(methods, str) else list(methods)
    if not names:
        msg = "instrument() needs at least one method name in methods="
        raise ConfigurationError(msg)
    own = _own_attributes(target)
    resolved = resolve_policy(policy, platform)
    for name in names:
        attribute = getattr(target, name, _MISSING)
        if attribute is _MISSING or not callable(attribute):
            msg = f"methods: {type(target).__name__ if not isinstance(target, type) else target.__name__}.{name} is not a method"
            raise ConfigurationError(msg)
        current = own.get(name, _MISSING)
        if isinstance(current, _GuardedMethod):
            _restore(target, name, current)
            own = _own_attributes(target)
            attribute = getattr(target, name)
        original = own.get(name, _MISSING)
        if inspect.isgeneratorfunction(attribute) or inspect.isasyncgenfunction(attribute):
            msg = f"methods: {name} is a generator; guard the calls that consume it instead"
            raise ConfigurationError(msg)
        guard = resolved.guard(_operation_name(target, name, operation))
        driver = _guarded_async if inspect.iscoroutinefunction(attribute) else _guarded_sync
        # On a class, wrap the raw descriptor (staticmethod/classmethod/function) so wrapt binds it.
        wrapped = original if isinstance(target, type) and original is not _MISSING else attribute
        setattr(target, name, _GuardedMethod(wrapped, functools.partial(driver, guard), original))
    return target


def _restore(target: object, name: str, wrapper: _GuardedMethod) -> None:
    original = wrapper._self_commtel_original
    if original is _MISSING:
        delattr(target, name)
    else:
        setattr(target, name, original)


def uninstrument(target: object, methods: Iterable[str] | None = None) -> None:
    """Undo :func:`instrument` on *target*: the original attributes come back exactly.

    Args:
        target: What was passed to :func:`instrument`.
        methods: Only these methods (default: every instrumented one).

    .. versionadded:: 0.1.0
    """
    own = _own_attributes(target)
    names = [methods] if isinstance(methods, str) else list(methods) if methods is not None else list(own)
    for name in names:
        current = own.get(name)
        if isinstance(current, _GuardedMethod):
            _restore(target, name, current)


def is_instrumented(target: object, method: str) -> bool:
    """Whether *method* of *target* is currently guarded by :func:`instrument`.

    .. versionadded:: 0.1.0
    """
    try:
        return isinstance(vars(target).get(method), _GuardedMethod)
    except TypeError:
        return False
