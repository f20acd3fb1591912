"""The simulated dependency (latency grows past a knee), served for real, and the open-loop load runner."""

from __future__ import annotations

import asyncio
import math
import threading

import httpx
import pytest

from commtel.simulator import LatencyModel, LoadRun, SimulatedDependency, open_loop


def test_latency_is_flat_to_the_knee_then_grows() -> None:
    """base x max(1, n/knee)^exponent x exp(jitter x normal), x tail_factor when the uniform draw is under tail_rate."""
    model = LatencyModel(base_latency_s=0.05, knee=20, exponent=1.5, jitter=0.1, tail_rate=0.1, tail_factor=10)
    assert model.latency(1, 0.0, 0.5) == pytest.approx(0.05)
    assert model.latency(20, 0.0, 0.5) == pytest.approx(0.05)
    assert model.latency(40, 0.0, 0.5) == pytest.approx(0.05 * 2**1.5)
    assert model.latency(1, 1.0, 0.5) == pytest.approx(0.05 * math.exp(0.1))
    assert model.latency(1, 0.0, 0.05) == pytest.approx(0.5)
    assert model.capacity() == pytest.approx(400)
    with pytest.raises(ValueError, match="knee must be a positive finite number"):
        LatencyModel(knee=0)
    with pytest.raises(ValueError, match="tail_rate"):
        LatencyModel(tail_rate=2)


def test_calls_count_in_flight_and_slow_down_past_the_knee() -> None:
    """Concurrent calls see each other: the third of three over a knee of 2 takes longer; in-flight returns to 0."""
    dependency = SimulatedDependency(LatencyModel(base_latency_s=0.01, knee=2, jitter=0.0), seed=1)

    async def main() -> list[float]:
        return list(await asyncio.gather(*(dependency.acall() for _ in range(3))))

    latencies = asyncio.run(main())
    assert latencies[:2] == [pytest.approx(0.01), pytest.approx(0.01)]
    assert latencies[2] == pytest.approx(0.015)
    assert dependency.in_flight == 0 and dependency.calls == 3
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=lambda: (barrier.wait(), dependency.call())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dependency.calls == 5 and dependency.in_flight == 0


def test_served_over_http_and_the_knee_moves_while_running() -> None:
    """GET / answers after the modelled latency; changing model.knee changes later answers."""
    with SimulatedDependency(LatencyModel(base_latency_s=0.005, knee=1, jitter=0.0), seed=1) as dependency:
        first = httpx.get(dependency.url).json()["latency_s"]
        dependency.model.base_latency_s = 0.02
        second = httpx.get(dependency.url).json()["latency_s"]
    assert first == pytest.approx(0.005)
    assert second == pytest.approx(0.02)
    with pytest.raises(RuntimeError, match="not serving"):
        _ = dependency.url


def test_load_run_answers_goodput_p99_and_convergence() -> None:
    """Goodput and p99 over a stretch; convergence is when every later stretch (2 s, or as given) meets both bounds."""
    run = LoadRun(completions=[(t / 10, 0.5 if t < 20 else 0.01) for t in range(60)])
    assert run.goodput(0, 6) == pytest.approx(10)
    assert run.p99(0, 2) == 0.5 and run.p99(2, 6) == 0.01
    assert run.p99(7, 8) == math.inf
    assert run.converged_after(0, 6, min_goodput=9, max_p99=0.1, stretch_s=1.0) == 2.0
    assert run.converged_after(0, 6, min_goodput=9, max_p99=0.1) == 2.0
    assert run.converged_after(0, 6, min_goodput=11, max_p99=1) == math.inf


def test_open_loop_sends_at_the_rate_and_sorts_outcomes() -> None:
    """Arrivals at ~rate per second; refusals and errors are kept apart from completions; watched values traced."""
    count = 0

    async def call() -> None:
        nonlocal count
        count += 1
        if count % 5 == 0:
            raise KeyError("refused")
        if count % 7 == 0:
            raise ValueError("error")

    run = asyncio.run(open_loop(call, rate=200, duration=0.5, refused=KeyError, watch=lambda: count))
    total = len(run.completions) + len(run.refused) + len(run.errors)
    assert 50 <= total <= 160
    assert len(run.refused) == total // 5
    assert run.errors and run.trace
