"""Test helpers of the breaker suite: threads racing a half-open breaker."""

from __future__ import annotations

import threading

from commtel import CircuitBreaker, CircuitOpenError


def race_probes(breaker: CircuitBreaker, threads: int = 8) -> tuple[list[int], list[int]]:
    """Start *threads* calls at once through a half-open *breaker*; return who ran and who was rejected.

    The calls that run block until all have been admitted or rejected, so no probe
    finishes (and closes the breaker) before the others asked.
    """
    ran: list[int] = []
    rejected: list[int] = []
    gate = threading.Barrier(threads)
    decided = threading.Semaphore(0)
    release = threading.Event()

    def admitted(i: int) -> None:
        ran.append(i)
        decided.release()
        release.wait(5)

    def probe(i: int) -> None:
        gate.wait()
        try:
            breaker.call(admitted, i)
        except CircuitOpenError:
            rejected.append(i)
            decided.release()

    workers = [threading.Thread(target=probe, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for _ in range(threads):
        assert decided.acquire(timeout=5), "a probe was neither admitted nor rejected within 5 s"
    release.set()
    for t in workers:
        t.join()
    return ran, rejected
