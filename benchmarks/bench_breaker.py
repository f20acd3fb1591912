"""Circuit breaker, closed: commtel vs pybreaker and circuitbreaker; 4 threads around a 1 ms call.

commtel is measured with the default listeners (``commtel_circuit_calls_total`` counted on
every call) and with ``set_listeners([])``. The threaded case reports wall time per call
of 4 threads x N calls of ``time.sleep(0.001)``: a breaker that holds its lock while the
call runs serialises the threads (pybreaker), one that does not matches the bare function.
"""

from __future__ import annotations

import threading
import time

from collections.abc import Callable

import circuitbreaker
import pybreaker

from prometheus_client import CollectorRegistry

import commtel

from benchmarks._harness import Case
from benchmarks.bench_retry import _listeners
from commtel.telemetry._metrics import use_registry


_THREADS = 4
_CALLS = 150


def _threaded(fn: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        barrier = threading.Barrier(_THREADS + 1)

        def worker() -> None:
            barrier.wait()
            for _ in range(_CALLS):
                fn()

        threads = [threading.Thread(target=worker) for _ in range(_THREADS)]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter_ns()
        for t in threads:
            t.join()
        return (time.perf_counter_ns() - started) / (_THREADS * _CALLS)

    def best_of_three() -> float:
        return min(run() for _ in range(3))

    return best_of_three


def cases() -> list[Case]:
    use_registry(CollectorRegistry())

    def bare() -> int:
        return 1

    ours = commtel.CircuitBreaker("bench")(bare)
    pyb = pybreaker.CircuitBreaker()(bare)
    cb = circuitbreaker.CircuitBreaker()(bare)

    def sleep_1ms() -> None:
        time.sleep(0.001)

    ours_sleep = commtel.CircuitBreaker("bench-threads")(sleep_1ms)
    pyb_sleep = pybreaker.CircuitBreaker()(sleep_1ms)

    closed, threads = "breaker, closed, success path", "breaker, 4 threads x 1 ms call (wall ns/call)"
    return [
        Case(closed, "pybreaker", pyb, baseline=True),
        Case(closed, "circuitbreaker", cb),
        _listeners(Case(closed, "commtel CircuitBreaker", ours, note="(metrics on)", target=1.0), on=True),
        _listeners(Case(closed, "commtel CircuitBreaker", ours, note="(listeners off)", target=1.0), on=False),
        Case(threads, "bare function", measure=_threaded(sleep_1ms), baseline=True),
        Case(threads, "commtel CircuitBreaker", measure=_threaded(ours_sleep), target=1.1),
        Case(threads, "pybreaker", measure=_threaded(pyb_sleep)),
    ]
