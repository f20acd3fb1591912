"""Chat bot behind a circuit breaker: a burst of 503s trips it, calls fail fast, a probe recovers it.

The bot posts ten messages to a chat API (a local ``SimulatedPlatform``) that answers
the next four calls with ``503``. What the example shows:

* Three failures in a row open the ``CircuitBreaker``; while it is open every call
  is rejected with ``CircuitOpenError`` in microseconds, without touching the server,
  and the bot keeps the message for later.
* After ``recovery_timeout`` the breaker lets one probe through (half-open). The first
  probe still gets a 503, so it opens again; the next probe succeeds, the
  ``health_check`` confirms, and the breaker closes.
* A state listener prints every transition; ``CircuitOpenError.retry_after_s`` tells
  the bot how long to wait before trying again.

Run it::

    .venv/bin/python examples/chat_bot.py
"""

from __future__ import annotations

import statistics
import time

import httpx

import commtel

from commtel import CircuitBreaker, CircuitOpenError
from commtel.simulator import SimulatedPlatform


MESSAGES = [f"message {n}" for n in range(1, 11)]


def deliver(
    breaker: CircuitBreaker, chat: httpx.Client, outbox: list[str], rejections: list[float]
) -> tuple[list[str], float]:
    """One round over the outbox; returns what is still undelivered and how long to wait before the next round."""

    @breaker
    def post(text: str) -> None:
        chat.post("/api/messages", json={"text": text}).raise_for_status()

    left, wait_s = [], 0.1
    for text in outbox:
        started = time.perf_counter()
        try:
            post(text)
        except CircuitOpenError as exc:
            rejections.append(time.perf_counter() - started)
            wait_s = exc.retry_after_s  # when the breaker will let a probe through
            left.append(text)
        except httpx.HTTPStatusError as exc:
            print(f"  {text}: server answered {exc.response.status_code}")
            left.append(text)
    return left, wait_s


def main() -> int:
    commtel.configure_logging("ERROR", json=False)
    transitions: list[tuple[str, str]] = []

    def on_transition(breaker: CircuitBreaker, old: str, new: str) -> None:
        transitions.append((old, new))
        print(f"  breaker {breaker.name}: {old} -> {new}")

    with SimulatedPlatform("chat") as api, httpx.Client(base_url=api.url, timeout=5) as chat:
        breaker = CircuitBreaker(
            "chat-api",
            failure_threshold=3,
            recovery_timeout=0.3,
            half_open_max_calls=1,
            health_check=lambda: chat.get("/api/health").status_code == 200,
            listeners=[on_transition],
        )
        api.fail_next(4, 503)  # the chat API is down for its next four calls
        outbox, rounds = list(MESSAGES), 0
        rejections: list[float] = []
        started = time.monotonic()
        while outbox and rounds < 10:
            rounds += 1
            print(f"round {rounds}: {len(outbox)} to send (breaker {breaker.state})")
            outbox, wait_s = deliver(breaker, chat, outbox, rejections)
            if outbox:
                time.sleep(wait_s)
        elapsed = time.monotonic() - started
        posted = [r for r in api.requests if r.path == "/api/messages"]

    delivered = sum(1 for r in posted if r.status == 200)
    print(f"delivered {delivered}/{len(MESSAGES)} messages in {rounds} rounds, {elapsed:.2f}s")
    print(
        f"server saw {len(posted)} posts ({len(posted) - delivered} failed); "
        f"{len(rejections)} calls rejected by the open breaker, "
        f"median {statistics.median(rejections) * 1e6:.0f} µs each"
    )

    expected = [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    if transitions != expected:
        msg = f"unexpected breaker transitions: {transitions}"
        raise SystemExit(msg)
    if delivered != len(MESSAGES) or outbox or breaker.state != "closed":
        msg = f"not everything delivered: {delivered}, left {outbox}, breaker {breaker.state}"
        raise SystemExit(msg)
    if len(posted) != len(MESSAGES) + 4:
        msg = f"the open breaker let calls through: server saw {len(posted)} posts"
        raise SystemExit(msg)
    if len(rejections) != 7 + 9 or statistics.median(rejections) > 0.005:
        msg = f"rejections not as expected (count {len(rejections)}, median {statistics.median(rejections):.4f}s)"
        raise SystemExit(msg)
    print("OK: tripped by the 503 burst, failed fast while open, recovered through a probe")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
