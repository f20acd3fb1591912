"""Telemetry handlers for oauth events (filled in by the oauth component)."""

from __future__ import annotations
