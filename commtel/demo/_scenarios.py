"""Demo scenarios: each is one unit of work a worker repeats until the demo stops.

The clients are plain httpx, requests, aiohttp and smtplib: the world instrumented
them, so every call here goes through commtel's limiter, breaker and retry and shows
up in spans and metrics without a line of commtel in the call itself.
"""

from __future__ import annotations

import asyncio
import itertools
import smtplib
import threading
import time
import uuid

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import TYPE_CHECKING

from .._exceptions import CircuitOpenError, CommtelError, OAuthError, RateLimitExceeded
from .._optional import requires
from ..messages import MessageHeaders
from ..progress import ErrorTracker
from ..telemetry import start_span
from ._resilience import resilience_burst


with requires("httpx", "requests"):
    import httpx
    import requests


if TYPE_CHECKING:
    from ._world import DemoWorld

__all__ = ["SCENARIOS"]

Scenario = Callable[["DemoWorld"], None]
_local = threading.local()
_sequence = itertools.count(1)


# What a call through commtel may end in besides an answer: each is an expected outcome here.
_REJECTIONS: tuple[tuple[type[BaseException], str], ...] = (
    (CircuitOpenError, "rejected by the breaker"),
    (RateLimitExceeded, "throttled by the limiter"),
    (OAuthError, "no access token"),
    (CommtelError, "gave up"),
)


def _rejection(world: DemoWorld, platform: str, exc: BaseException) -> None:
    """Count a call commtel turned away (or gave up on) under *platform*."""
    world.stats.bump(f"{platform} {next(what for kind, what in _REJECTIONS if isinstance(exc, kind))}")


@contextmanager
def _timed(world: DemoWorld, platform: str) -> Iterator[list[bool]]:
    """Record one call's latency and outcome; the caller sets ``ok[0] = True`` once it succeeded.

    Rejections (open breaker, limiter, missing token, retries given up) and transport errors
    end the call as a failure; nothing escapes to the worker.
    """
    ok = [False]
    started = time.monotonic()
    try:
        yield ok
    except CommtelError as exc:
        ok[0] = False
        _rejection(world, platform, exc)
    except (httpx.HTTPError, requests.RequestException, OSError):
        ok[0] = False
    finally:
        world.stats.record_call(platform, time.monotonic() - started, ok=ok[0])


def _http(world: DemoWorld) -> httpx.Client:
    client: httpx.Client | None = getattr(_local, "http", None)
    if client is None:
        assert world.oauth is not None  # noqa: S101 - set by DemoWorld.start
        client = _local.http = httpx.Client(base_url=world.social.url, auth=world.oauth.httpx_auth(), timeout=10)
    return client


def _session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def social_post(world: DemoWorld) -> None:
    """Read the timeline and post a reply on the social API; track the reply for e-mail fan-out."""
    assert world.tracker is not None  # noqa: S101 - set by DemoWorld.start
    http = _http(world)
    with _timed(world, "social") as ok:
        timeline = http.get("/api/timeline", params={"count": 20})
        ok[0] = timeline.status_code < 400
    n = next(_sequence)
    root = MessageHeaders.create(subject=f"Thread {n % 7}", platform="twitter", native_id=str(1000 + n % 7))
    reply = root.reply(platform="twitter", native_id=str(10_000 + n))
    with _timed(world, "social") as ok:
        posted = http.post("/api/tweets", json={"text": f"reply {n}", "in_reply_to": root.native_id})
        ok[0] = posted.status_code < 400
    if ok[0]:
        world.tracker.track_headers(root, reply)
        world.stats.bump("tweets posted")
    world.stop_event.wait(0.05)


def chat_send(world: DemoWorld) -> None:
    """Post to the flaky chat API; during a burst its breaker opens and calls fail fast."""
    session = _session()
    with _timed(world, "chat") as ok:
        response = session.post(f"{world.chat.url}/api/messages", json={"text": "hello"}, timeout=5)
        ok[0] = response.status_code < 400
    world.stop_event.wait(0.02)


def mail_worker(world: DemoWorld) -> None:
    """Claim the next tracked message and send its e-mail notification (SMTP retries 451s)."""
    assert world.tracker is not None  # noqa: S101 - set by DemoWorld.start
    worker = threading.current_thread().name
    claim = world.tracker.claim_next(worker)
    if claim is None:
        world.stop_event.wait(0.2)
        return
    msg = EmailMessage()
    msg["From"], msg["To"] = "bot@commtel.test", "followers@commtel.test"
    msg["Subject"] = f"New reply in {claim.conversation_id}"
    msg["Message-ID"] = claim.message_id if claim.message_id.startswith("<") else f"<{claim.message_id}>"
    msg.set_content("A new reply was posted.")
    with _timed(world, "email") as ok:
        try:
            with smtplib.SMTP(world.mail.host, world.mail.port, timeout=5) as smtp:
                smtp.send_message(msg)
        except (smtplib.SMTPException, CommtelError, OSError) as exc:
            # Failed or turned away by the e-mail breaker: the claim fails, to be retried later.
            world.tracker.fail(claim, exc)
            world.stats.bump("e-mails failed")
            if isinstance(exc, CommtelError):
                _rejection(world, "email", exc)
            return
        ok[0] = True
    world.tracker.complete(claim)
    world.stats.bump("e-mails sent")


def batch_job(world: DemoWorld) -> None:
    """A progress-tracked batch over the chat API that carries on past failed items."""
    with start_span("batch_job", attributes={"commtel.platform": "chat"}):
        _batch(world)


def _batch(world: DemoWorld) -> None:
    assert world.progress is not None  # noqa: S101 - set by DemoWorld.start
    task_id = f"batch-{uuid.uuid4().hex[:8]}"
    world.progress.create_progress_session(task_id, user_id="demo-operator")
    errors = ErrorTracker("batch_item")
    session = _session()
    items = range(8)
    for i in items:
        if world.stop_event.is_set():
            break
        with _timed(world, "chat") as ok, errors.track(item=i):
            response = session.get(f"{world.chat.url}/api/items/{i}", timeout=5)
            ok[0] = response.status_code < 400
            response.raise_for_status()
        world.progress.update_progress(
            task_id,
            f"item {i + 1}/{len(items)}",
            int(100 * (i + 1) / len(items)),
            {"failed": errors.summary()["failed"]},
        )
    final = world.progress.finish_task(
        task_id,
        "failed" if errors.has_errors else "completed",
        error=f"{errors.summary()['failed']} items failed" if errors.has_errors else None,
    )
    world.stats.bump(f"batches {final.state.value}")


def async_reader(world: DemoWorld) -> None:
    """aiohttp fan-out: four concurrent reads that share the caller's correlation id."""
    asyncio.run(_async_reads(world))
    world.stop_event.wait(0.05)


async def _async_reads(world: DemoWorld) -> None:
    import aiohttp

    assert world.oauth is not None  # noqa: S101 - set by DemoWorld.start
    try:
        token = world.oauth.get_token()
    except CommtelError as exc:  # no token (refused, or the social breaker is open): no reads this round
        _rejection(world, "social", exc)
        return
    headers = {"Authorization": f"Bearer {token.access_token}"}

    async def read(session: aiohttp.ClientSession, user: int) -> None:
        with _timed(world, "social") as ok:
            async with session.get(f"{world.social.url}/api/users/{user}", headers=headers) as response:
                ok[0] = response.status < 400
                await response.read()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(read(session, user) for user in range(4)), return_exceptions=True)


def shared_quota(world: DemoWorld) -> None:
    """Ask the Redis-shared tenant quota and breaker (fail open / decide locally, counted, while Redis is down)."""
    assert world.shared_limiter is not None  # noqa: S101 - set by DemoWorld.start
    assert world.shared_breaker is not None  # noqa: S101 - set by DemoWorld.start
    for _ in range(5):
        decision = world.shared_limiter.try_acquire("tenant-a")
        world.stats.bump("shared quota admitted" if decision.allowed else "shared quota throttled")
        # One breaker state for every worker process, kept in Redis (decides locally while it is down).
        try:
            world.shared_breaker.call(world.stats.bump, "shared breaker calls")
        except CircuitOpenError as exc:
            _rejection(world, "shared", exc)
    world.stop_event.wait(0.05)


SCENARIOS: list[Scenario] = [
    social_post,
    chat_send,
    mail_worker,
    batch_job,
    async_reader,
    shared_quota,
    chat_send,
    resilience_burst,
]
