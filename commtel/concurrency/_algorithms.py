"""Limit algorithms: from one window of measurements to the next concurrency limit (pure functions).

Each algorithm is a frozen set of parameters with one method, :meth:`next_limit`, handed the
current limit (a float estimate), the window's measurements and the unloaded latency
(*baseline_s*). The core clamps the answer to ``[min_limit, max_limit]``, refuses to grow
a limit the traffic does not use, and decides when a window closes and what the baseline is.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from .._exceptions import ConfigurationError


__all__ = ["AIMD", "Gradient2", "LimitAlgorithm", "Vegas", "Window", "algorithm_from"]


class Window(NamedTuple):
    """What one sampling window measured.

    Attributes:
        rtt_s: Mean latency of the calls that finished in it (0 when only drops finished).
        samples: Calls that finished in it (drops included).
        drops: Calls that signalled overload (a timeout, HTTP 429 or 503).
        max_in_flight: The most calls in flight seen while it was open.

    .. versionadded:: 0.1.0
    """

    rtt_s: float
    samples: int
    drops: int
    max_in_flight: int


class LimitAlgorithm(Protocol):
    """Anything with a ``name`` and ``next_limit(limit, window, baseline_s) -> float``.

    .. versionadded:: 0.1.0
    """

    @property
    def name(self) -> str:
        """Shown in ``repr`` and logs."""
        ...

    def next_limit(self, limit: float, window: Window, baseline_s: float) -> float:
        """The limit after *window*, given the unloaded latency *baseline_s*."""
        ...


def _check(condition: bool, message: str) -> None:  # noqa: FBT001 - a guard, read as an assertion
    if not condition:
        raise ConfigurationError(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gradient2:
    """Latency gradient (after Netflix's Gradient2): shrink as latency rises above the baseline.

    ``gradient = clamp(tolerance x baseline / rtt, 0.5, 1)`` and
    ``target = limit x gradient + headroom``. The limit rises to the target at once and
    shrinks towards it by *smoothing* of the way each window (one slow window does not
    halve it). At rest it settles where ``limit - headroom`` calls saturate the dependency:
    a little queueing, enough to notice when more is possible. The default headroom, half
    the square root of the limit, keeps that queue small (latency about ``1 + 0.5 /
    sqrt(limit)`` times the baseline) while a freed dependency is found again within a
    few dozen windows.

    Args:
        tolerance: Latency inflation accepted before shrinking (1.0: none).
        smoothing: Share of a shrinking step taken each window, in (0, 1].
        headroom: Calls added each window; ``None``: half the square root of the limit.

    .. versionadded:: 0.1.0
    """

    tolerance: float = 1.0
    smoothing: float = 0.2
    headroom: float | None = None

    def __post_init__(self) -> None:
        _check(self.tolerance >= 1.0, f"Gradient2 tolerance must be >= 1.0, got {self.tolerance}")
        _check(0 < self.smoothing <= 1, f"Gradient2 smoothing must be within (0, 1], got {self.smoothing}")
        _check(self.headroom is None or self.headroom >= 0, f"Gradient2 headroom must be >= 0, got {self.headroom}")

    @property
    def name(self) -> str:
        return "gradient2"

    def next_limit(self, limit: float, window: Window, baseline_s: float) -> float:
        gradient = 1.0 if window.rtt_s <= 0 else max(0.5, min(1.0, self.tolerance * baseline_s / window.rtt_s))
        headroom = 0.5 * math.sqrt(limit) if self.headroom is None else self.headroom
        target = limit * gradient + headroom
        return target if target >= limit else limit + (target - limit) * self.smoothing


@dataclass(frozen=True, slots=True, kw_only=True)
class AIMD:
    """Additive increase, multiplicative decrease on overload (loss-based, like TCP Reno).

    A window with a drop (a timeout, HTTP 429 or 503), or whose mean latency exceeds
    *latency_threshold_s*, multiplies the limit by *backoff_ratio*; any other window adds
    *increase*. Use it when the dependency says it is overloaded; without a latency
    threshold it cannot see a slowdown.

    Args:
        backoff_ratio: Factor applied on overload, in [0.5, 1).
        increase: Calls added after a window without overload.
        latency_threshold_s: Mean latency that counts as overload (``None``: drops only).

    .. versionadded:: 0.1.0
    """

    backoff_ratio: float = 0.9
    increase: float = 1.0
    latency_threshold_s: float | None = None

    def __post_init__(self) -> None:
        _check(0.5 <= self.backoff_ratio < 1, f"AIMD backoff_ratio must be within [0.5, 1), got {self.backoff_ratio}")
        _check(self.increase > 0, f"AIMD increase must be > 0, got {self.increase}")
        _check(
            self.latency_threshold_s is None or self.latency_threshold_s > 0,
            f"AIMD latency_threshold_s must be > 0 or None, got {self.latency_threshold_s}",
        )

    @property
    def name(self) -> str:
        return "aimd"

    def next_limit(self, limit: float, window: Window, baseline_s: float) -> float:  # noqa: ARG002 - loss-based
        threshold = self.latency_threshold_s
        if window.drops or (threshold is not None and window.rtt_s > threshold):
            return limit * self.backoff_ratio
        return limit + self.increase


@dataclass(frozen=True, slots=True, kw_only=True)
class Vegas:
    """Queue estimate (after TCP Vegas): keep between *alpha* and *beta* calls queued.

    ``queued = limit x (1 - baseline / rtt)``; both bounds scale with ``log10(limit)``.
    Below *alpha* the limit grows (fast when nothing queues), above *beta* it shrinks,
    and a drop shrinks it.

    Args:
        alpha: Lower bound of the queue, times ``log10(limit)``.
        beta: Upper bound of the queue, times ``log10(limit)``.

    .. versionadded:: 0.1.0
    """

    alpha: float = 3.0
    beta: float = 6.0

    def __post_init__(self) -> None:
        _check(0 < self.alpha < self.beta, f"Vegas needs 0 < alpha < beta, got alpha={self.alpha}, beta={self.beta}")

    @property
    def name(self) -> str:
        return "vegas"

    def next_limit(self, limit: float, window: Window, baseline_s: float) -> float:
        step = max(1.0, math.log10(limit))
        if window.drops:
            return limit - step
        queued = 0.0 if window.rtt_s <= 0 else limit * (1 - baseline_s / window.rtt_s)
        if queued <= step:
            return limit + self.beta * step
        if queued < self.alpha * step:
            return limit + step
        if queued > self.beta * step:
            return limit - step
        return limit


_BY_NAME: dict[str, type[Gradient2 | AIMD | Vegas]] = {"gradient2": Gradient2, "aimd": AIMD, "vegas": Vegas}


def algorithm_from(value: str | LimitAlgorithm, options: dict[str, Any] | None = None) -> LimitAlgorithm:
    """An algorithm from its name (``"gradient2"``, ``"aimd"``, ``"vegas"``) and options, or as given."""
    if not isinstance(value, str):
        _check(not options, "algorithm options need the algorithm by name, not an instance")
        _check(
            callable(getattr(value, "next_limit", None)),
            f"algorithm must name one of {sorted(_BY_NAME)} or have next_limit(), got {value!r}",
        )
        return value
    kind = _BY_NAME.get(value)
    _check(kind is not None, f"algorithm must be one of {sorted(_BY_NAME)}, got {value!r}")
    assert kind is not None  # noqa: S101 - checked above
    try:
        return kind(**(options or {}))
    except TypeError as exc:
        msg = f"{value} options: {str(exc).split(')', 1)[-1].strip() or exc}"
        raise ConfigurationError(msg) from None
