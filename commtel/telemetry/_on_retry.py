"""Telemetry handlers for retry events (filled in by the retry component)."""

from __future__ import annotations
