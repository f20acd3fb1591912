"""Hedged requests for idempotent async calls: a second attempt after a delay, first good answer wins."""

from __future__ import annotations

from ._core import LatencyQuantile
from ._events import HedgeCallFinished, HedgeCreated, HedgeDenied, HedgeLaunched
from ._hedge import Hedge


__all__ = ["Hedge", "HedgeCallFinished", "HedgeCreated", "HedgeDenied", "HedgeLaunched", "LatencyQuantile"]
