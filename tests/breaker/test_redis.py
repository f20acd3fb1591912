"""Breaker state shared on a real Redis: other processes and threads see one state."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from commtel import CircuitBreaker, CircuitOpenError
from tests.breaker.helpers import race_probes


def _in_other_process(redis_url: str, code: str) -> str:
    """Run *code* in a fresh Python process with `breaker` bound to the shared breaker; return stdout."""
    script = textwrap.dedent(f"""
        import commtel
        breaker = commtel.CircuitBreaker("shared", failure_threshold=2, recovery_timeout=3, redis={redis_url!r})
        def fail():
            raise ConnectionError("down")
    """) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _fail() -> None:
    raise ConnectionError("down")


def test_two_processes_share_one_state(redis_url: str) -> None:
    """A breaker tripped in another process rejects here; closing it here is seen there."""
    out = _in_other_process(
        redis_url,
        """
        for _ in range(2):
            try:
                breaker.call(fail)
            except ConnectionError:
                pass
        print(breaker.state)
    """,
    )
    assert out == "open"
    # 3 s: enough for this process to see the state open however slowly the other one exited.
    breaker = CircuitBreaker("shared", failure_threshold=2, recovery_timeout=3, redis=redis_url)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: "never")
    assert 0 < info.value.retry_after_s <= 3
    time.sleep(info.value.retry_after_s + 0.05)  # the server's clock decides; this is its own wait
    assert breaker.call(lambda: "probe") == "probe"
    assert breaker.state == "closed"
    assert _in_other_process(redis_url, "print(breaker.state, breaker.call(lambda: 'ok'))") == "closed ok"


def test_shared_breaker_admits_exactly_n_probes_under_8_threads(redis_url: str) -> None:
    """Half-open on Redis, 8 racing threads get exactly half_open_max_calls probes."""
    breaker = CircuitBreaker(
        "probes", failure_threshold=1, recovery_timeout=0.05, half_open_max_calls=2, redis=redis_url
    )
    with pytest.raises(ConnectionError):
        breaker.call(_fail)
    time.sleep(0.06)  # recovery_timeout passes on the Redis server's clock, which no test can fake
    ran, rejected = race_probes(breaker)
    assert (len(ran), len(rejected)) == (2, 6)
    assert breaker.state == "closed"


def test_shared_health_check_and_force(redis_url: str) -> None:
    """On Redis too, a failing health check reopens; force_open and reset act on the shared state."""
    verdicts = [False, True]
    breaker = CircuitBreaker(
        "hc", failure_threshold=1, recovery_timeout=0.05, redis=redis_url, health_check=lambda: verdicts.pop(0)
    )
    other = CircuitBreaker("hc", failure_threshold=1, recovery_timeout=0.05, redis=redis_url)
    with pytest.raises(ConnectionError):
        breaker.call(_fail)
    time.sleep(0.06)  # recovery_timeout passes on the Redis server's clock, which no test can fake
    breaker.call(lambda: 1)
    assert other.state == "open"
    time.sleep(0.06)  # recovery_timeout passes on the Redis server's clock, which no test can fake
    breaker.call(lambda: 1)
    assert other.state == "closed"
    other.force_open()
    ran = 0
    with pytest.raises(CircuitOpenError):  # this process learns it with its next reply: at most one call runs
        for _ in range(2):
            breaker.call(lambda: 1)
            ran += 1
    assert ran <= 1
    other.reset()
    assert breaker.call(lambda: 2) == 2


def test_shared_failure_rate_window_and_async(redis_url: str) -> None:
    """The async path on Redis counts into the shared failure-rate window."""
    breaker = CircuitBreaker(
        "rate", failure_threshold=None, failure_rate_threshold=0.5, window_size=4, minimum_calls=4, redis=redis_url
    )

    async def ok() -> str:
        return "ok"

    async def fail() -> None:
        raise ConnectionError("down")

    async def main() -> None:
        for fn in (ok, ok, fail):
            try:
                await breaker.acall(fn)
            except ConnectionError:
                pass
        assert breaker.state == "closed"
        with pytest.raises(ConnectionError):
            await breaker.acall(fail)

    asyncio.run(main())
    assert breaker.state == "open"


@pytest.mark.parametrize("mode", ["local", "reject"])
def test_redis_down_falls_back_as_configured_and_is_counted(redis_server, redis_url: str, registry, mode: str) -> None:
    """With Redis stopped, calls decide locally (or fail closed), within the timeout, and each failure is counted."""
    import time

    from commtel import CircuitBreaker, CircuitOpenError

    breaker = CircuitBreaker(f"down-{mode}", failure_threshold=2, redis=redis_url, on_backend_error=mode)
    assert breaker.call(lambda: 1) == 1
    redis_server.stop()
    try:
        started = time.monotonic()
        if mode == "local":
            assert breaker.call(lambda: 2) == 2
        else:
            ran = 0
            with pytest.raises(CircuitOpenError):  # a call admitted on the last fresh answer may run first
                for _ in range(2):
                    breaker.call(lambda: 2)
                    ran += 1
            assert ran <= 1
        assert time.monotonic() - started < 2.0
        errors = registry.get_sample_value(
            "commtel_circuit_backend_errors_total", {"breaker": f"down-{mode}", "backend": "redis"}
        )
        assert errors is not None and errors >= 1
    finally:
        redis_server.start()
