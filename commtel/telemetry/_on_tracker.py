"""Telemetry handlers for tracker events (filled in by the tracker component)."""

from __future__ import annotations
