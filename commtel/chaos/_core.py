"""Sans-I/O fault decisions: which faults one call gets, from the settings and random draws."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


__all__ = ["ChaosSettings", "FaultPlan", "plan"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosSettings:
    """What a fault injector injects, and how often (rates in [0, 1]).

    .. versionadded:: 0.1.0
    """

    enabled: bool = True
    latency_rate: float = 0.0
    latency_s: float = 0.0
    error_rate: float = 0.0
    outcome_rate: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any fault can be injected at all."""
        return self.enabled and (self.latency_rate > 0 < self.latency_s or self.error_rate > 0 or self.outcome_rate > 0)


class FaultPlan(NamedTuple):
    """The faults of one call: added latency, then an error or else a replaced outcome."""

    latency_s: float
    error: bool
    outcome: bool


def plan(settings: ChaosSettings, draw: Callable[[], float]) -> FaultPlan | None:
    """The faults for one call (``None``: none); each fault gets its own draw from *draw* (uniform [0, 1))."""
    if not settings.active:
        return None
    latency = settings.latency_s if settings.latency_rate > 0 and draw() < settings.latency_rate else 0.0
    error = settings.error_rate > 0 and draw() < settings.error_rate
    outcome = not error and settings.outcome_rate > 0 and draw() < settings.outcome_rate
    if not (latency or error or outcome):
        return None
    return FaultPlan(latency, error, outcome)
