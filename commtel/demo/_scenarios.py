"""Demo scenarios: each is one unit of work a worker repeats until the demo stops."""

from __future__ import annotations

import time

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from ..telemetry import OperationTracker, inject_headers


if TYPE_CHECKING:
    from ._world import DemoWorld

Scenario = Callable[["DemoWorld"], None]
TRACKER = OperationTracker()


def chat_send(world: DemoWorld) -> None:
    """Post a chat message to the flaky chat API."""
    started = time.monotonic()
    ok = False
    with TRACKER.start_operation("chat.send", "chat") as op:
        response = httpx.post(f"{world.chat.url}/api/messages", headers=inject_headers({}), timeout=5)
        ok = response.status_code < 400
        if not ok:
            op.complete(success=False, error=f"HTTP {response.status_code}")
    world.stats.record_call("chat", time.monotonic() - started, ok=ok)
    world.stop_event.wait(0.02)


SCENARIOS: list[Scenario] = [chat_send]
