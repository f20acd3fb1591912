"""Telemetry handlers for ratelimit events (filled in by the ratelimit component)."""

from __future__ import annotations
