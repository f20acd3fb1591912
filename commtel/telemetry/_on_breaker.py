"""Telemetry handlers for breaker events (filled in by the breaker component)."""

from __future__ import annotations
