"""Test helpers of the breaker suite: threads racing a half-open breaker."""

from __future__ import annotations

import threading
import time

from commtel import CircuitBreaker, CircuitOpenError


def race_probes(breaker: CircuitBreaker, threads: int = 8) -> tuple[list[int], list[int]]:
    """Start *threads* calls at once through a half-open *breaker*; return who ran and who was rejected.

    The calls that run block until all have been admitted or rejected, so no probe
    finishes (and closes the breaker) before the others asked.
    """
    ran: list[int] = []
    rejected: list[int] = []
    gate = threading.Barrier(threads)
    release = threading.Event()

    def probe(i: int) -> None:
        gate.wait()
        try:
            breaker.call(lambda: (ran.append(i), release.wait(2)))
        except CircuitOpenError:
            rejected.append(i)

    workers = [threading.Thread(target=probe, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 2
    while len(ran) + len(rejected) < threads and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in workers:
        t.join()
    return ran, rejected
