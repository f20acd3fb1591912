"""Type-checked by mypy --strict, never run: the public API as users write it."""

from __future__ import annotations

import commtel
import commtel.ratelimit

from commtel.telemetry import TelemetryConfig, start_span


def telemetry() -> None:
    config: TelemetryConfig = commtel.configure("svc", protocol="grpc", export_timeout_s=1.0)
    _ = config.exporting
    log = commtel.get_logger("x", platform="twitter")
    log.info("sent", tweet_id=1)
    with commtel.correlation_context() as cid, start_span("s") as span:
        span.set_attribute("id", cid)
    tracker = commtel.OperationTracker()
    op = tracker.start_operation("a", "b")
    seconds: float = op.complete(success=True)
    _ = seconds
    stats: dict[str, object] = tracker.get_stats("b")
    _ = stats
    ok: bool = commtel.shutdown(timeout_s=1)
    _ = ok


def resilience() -> None:
    limiter = commtel.RateLimiter(
        commtel.ratelimit.TokenBucket(rate=5.0, burst=2), commtel.ratelimit.SlidingWindow(100, 3600.0)
    )
    decision: commtel.ratelimit.RateLimitDecision = limiter.try_acquire("k", cost=1)
    wait: float = decision.retry_after_s
    _ = wait
    limiter.feedback("k", 429, {"Retry-After": "3"})

    @commtel.retry(max_attempts=3, base_delay=0.1, operation="op", platform="p")
    def fetch(n: int) -> str:
        return str(n)

    text: str = fetch(1)
    _ = text

    @commtel.retry
    async def afetch() -> int:
        return 1

    breaker = commtel.CircuitBreaker("b", failure_threshold=3, recovery_timeout=1.0)
    value: int = breaker.call(lambda: 1)
    _ = value
    state: str = breaker.state
    _ = state
    guard = commtel.Guard(
        "g", platform="p", retry=commtel.RetryConfig(max_attempts=2), breaker=breaker, limiter=limiter
    )
    result: str = guard.call(fetch, 2)
    _ = result


def messaging(tmp: str) -> None:
    headers = commtel.MessageHeaders.create("hi", platform="email")
    reply: commtel.MessageHeaders = headers.reply(platform="twitter", native_id="1")
    with commtel.ConversationTracker(f"sqlite:///{tmp}/s.db") as tracker:
        tracker.track_headers(headers, reply)
        claim = tracker.claim_next("w")
        if claim is not None:
            tracker.complete(claim)
    with commtel.ProgressTracker("sqlite://") as progress:
        progress.create_progress_session("t", user_id=1)
        status: commtel.progress.ProgressStatus = progress.finish_task("t")
        _ = status


async def messaging_async(tmp: str) -> None:
    from commtel.messages import AsyncConversationTracker, TrackedMessage
    from commtel.progress import AsyncProgressTracker

    async with AsyncConversationTracker(f"sqlite:///{tmp}/a.db", retention_s=3600.0) as tracker:
        await tracker.track_message("c", "m")
        claims = await tracker.claim_batch("w", 10)
        for claim in claims:
            done: TrackedMessage = await tracker.complete(claim)
            _ = done
        purged: int = await tracker.purge(completed_before=0.0)
        _ = purged
    async with AsyncProgressTracker("sqlite://") as progress:
        await progress.create_progress_session("t", user_id=1)
        updated: bool = await progress.update_progress("t", "step", 50)
        _ = updated
