"""Fault injection for your own tests and game days: latency, errors and outcomes at a rate."""

from __future__ import annotations

from ._core import ChaosSettings
from ._events import FaultInjected, FaultInjectorCreated
from ._injector import FaultInjector, InjectedFault


__all__ = ["ChaosSettings", "FaultInjected", "FaultInjector", "FaultInjectorCreated", "InjectedFault"]
