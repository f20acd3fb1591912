"""Telemetry handlers for progress events (filled in by the progress component)."""

from __future__ import annotations
