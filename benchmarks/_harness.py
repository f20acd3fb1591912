"""Tiny benchmark harness: each bench_*.py module returns Cases; __main__ prints one table.

A Case measures ns per call of ``fn`` (median of several timed batches, batch size
scaled to ~20 ms). Within a group the ratio column divides by the group's baseline
case (a peer library), so ratios travel between machines better than ns.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import commtel.events


@dataclass
class Case:
    group: str  # what is compared, e.g. "retry, success path (sync)"
    name: str  # who: "commtel", "tenacity" ...
    fn: Callable[[], object] | None = None  # one call (sync)
    afn: Callable[[], Awaitable[object]] | None = None  # one call (async)
    baseline: bool = False  # the denominator of this group's ratios
    measure: Callable[[], float] | None = None  # custom: returns ns per call
    note: str = ""
    target: float | None = None  # ratio target vs baseline (<=), shown in the table


def _time_sync(fn: Callable[[], object], loops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(loops):
        fn()
    return (time.perf_counter_ns() - start) / loops


async def _time_async(afn: Callable[[], Awaitable[object]], loops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(loops):
        await afn()
    return (time.perf_counter_ns() - start) / loops


def measure(case: Case, repeats: int = 7, batch_ms: float = 20.0) -> float:
    """Median ns per call."""
    if case.measure is not None:
        return case.measure()
    gc.collect()
    if case.fn is not None:
        fn = case.fn
        one = max(_time_sync(fn, 10), 1.0)
        loops = max(10, int(batch_ms * 1e6 / one))
        return statistics.median(_time_sync(fn, loops) for _ in range(repeats))
    assert case.afn is not None
    afn = case.afn

    async def run() -> float:
        one = max(await _time_async(afn, 10), 1.0)
        loops = max(10, int(batch_ms * 1e6 / one))
        return statistics.median([await _time_async(afn, loops) for _ in range(repeats)])

    return asyncio.run(run())


class Interleaved:
    """Time several calls in alternating short batches so each sees the same machine.

    A loopback round trip's latency drifts with scheduling (here by 2x within seconds), so
    timing one case after the other skews their ratios; alternating batches of a few
    milliseconds and taking each case's median batch keeps the ratios fair.
    """

    def __init__(self, fns: dict[str, Callable[[], object]], rounds: int = 120, batch: int = 40) -> None:
        self._fns = fns
        self._rounds = rounds
        self._batch = batch
        self._results: dict[str, float] = {}

    def _run(self) -> None:
        samples: dict[str, list[float]] = {name: [] for name in self._fns}
        commtel.events.set_listeners([])  # events off for the commtel cases (the others emit none)
        try:
            for fn in self._fns.values():
                for _ in range(self._batch):
                    fn()
            gc.collect()
            for _ in range(self._rounds):
                for name, fn in self._fns.items():
                    start = time.perf_counter_ns()
                    for _ in range(self._batch):
                        fn()
                    samples[name].append((time.perf_counter_ns() - start) / self._batch)
        finally:
            commtel.events.set_listeners(None)
        self._results = {name: statistics.median(values) for name, values in samples.items()}

    def measure(self, name: str) -> Callable[[], float]:
        def measure() -> float:
            if not self._results:
                self._run()
            return self._results[name]

        return measure
