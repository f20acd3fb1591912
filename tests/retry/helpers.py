"""Test helpers shared by the retry and breaker suites: the sync/async driver and a flaky callable."""

from __future__ import annotations

import asyncio

from collections.abc import Callable
from typing import Any


class Driver:
    """Runs the same behaviour through the sync or the async path of a policy."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return self.kind

    def fn(self, body: Callable[..., Any]) -> Callable[..., Any]:
        """A sync or async function (per this driver) that runs *body*."""
        if self.kind == "sync":

            def sync_fn(*args: Any, **kwargs: Any) -> Any:
                return body(*args, **kwargs)

            return sync_fn

        async def async_fn(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return body(*args, **kwargs)

        return async_fn

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a decorated function of this driver's kind to completion."""
        if self.kind == "sync":
            return fn(*args, **kwargs)
        return asyncio.run(fn(*args, **kwargs))

    def call(self, policy: Any, body: Callable[..., Any], *args: Any) -> Any:
        """``policy.call`` or ``policy.acall`` around *body*."""
        if self.kind == "sync":
            return policy.call(self.fn(body), *args)
        return asyncio.run(policy.acall(self.fn(body), *args))

    def block(self, policy: Any, body: Callable[[int], Any]) -> Any:
        """Run *body(attempt_number)* in the block form (``for`` / ``async for``)."""
        if self.kind == "sync":
            for attempt in policy.attempts():
                with attempt:
                    return body(attempt.number)
            return None

        async def main() -> Any:
            async for attempt in policy.attempts():
                with attempt:
                    return body(attempt.number)
            return None

        return asyncio.run(main())


class Flaky:
    """Raises the given errors (or returns the given values) in turn, then returns ``"ok"``."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return "ok"
