"""Events a retry policy emits (frozen, slotted, past tense); telemetry turns them into metrics.

``RetryCallFinished`` carries only labels, so a policy builds the instance for its
success path once and emits that same object on every first-try success.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = [
    "RetryBudgetBackendFailed",
    "RetryBudgetCreated",
    "RetryCallFinished",
    "RetryDenied",
    "RetryGaveUp",
    "RetryPolicyCreated",
    "RetryScheduled",
]


@dataclass(frozen=True, slots=True)
class RetryPolicyCreated(Event):
    """A retry policy was built for *operation*; telemetry exposes its call results at 0 from now on.

    .. versionadded:: 0.1.0
    """

    operation: str
    platform: str


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """An attempt failed and a retry is scheduled after *delay_s*.

    Attributes:
        operation: The retried operation (function qualname unless named).
        platform: Platform label ("" when none was given).
        attempt: The retry number: 1 for the first retry (OTel's resend count).
        delay_s: Seconds waited before that retry.
        reason: Why: exception class name, HTTP status, ``"rate_limited"`` or ``"result"``.

    .. versionadded:: 0.1.0
    """

    operation: str
    platform: str
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class RetryGaveUp(Event):
    """A call stopped retrying while still failing (attempts, deadline or budget ran out).

    Attributes:
        stopped_by: ``"attempts"``, ``"deadline"``, ``"budget"`` or ``"retry_after"``.

    .. versionadded:: 0.1.0
    """

    operation: str
    platform: str
    attempts: int
    reason: str
    stopped_by: str


@dataclass(frozen=True, slots=True)
class RetryCallFinished(Event):
    """A call through a retry policy ended.

    Attributes:
        result: ``"success_first_try"``, ``"success_after_retry"``, ``"exhausted"`` or
            ``"not_retryable"`` (the ``result`` label of ``commtel_retry_calls_total``).

    .. versionadded:: 0.1.0
    """

    operation: str
    platform: str
    result: str


@dataclass(frozen=True, slots=True)
class RetryDenied(Event):
    """The retry budget refused a retry; the call fails with :class:`~commtel.errors.RetryBudgetExhausted`.

    .. versionadded:: 0.1.0
    """

    operation: str
    platform: str
    budget: str
    reason: str


@dataclass(frozen=True, slots=True)
class RetryBudgetCreated(Event):
    """A retry budget was built; telemetry exposes its backend error series at 0 when it is shared.

    Attributes:
        budget: The budget's name.
        backend: Where its counts live: ``"memory"`` or ``"redis"``.

    .. versionadded:: 0.1.0
    """

    budget: str
    backend: str


@dataclass(frozen=True, slots=True)
class RetryBudgetBackendFailed(Event):
    """The shared store (e.g. Redis) failed; the budget answered a retry by its *fail_open* setting.

    A failed flush of calls answers nothing: the calls are kept and sent with the next round trip.

    Attributes:
        budget: The budget's name.
        backend: The store that failed (``"redis"``).
        error: Class name of the underlying error (``"TimeoutError"``, ``"ConnectionError"``,
            ``"BackendCoolingDown"`` while a timed-out store is skipped …).
        fail_open: ``True``: retries are allowed while the store fails; ``False``: denied.

    .. versionadded:: 0.1.0
    """

    budget: str
    backend: str
    error: str
    fail_open: bool
