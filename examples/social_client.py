"""Social client: OAuth client credentials, a rate limiter the server teaches, and retry.

A Twitter-like API (a local ``SimulatedPlatform``) wants a bearer token and allows
5 calls per app in each 2-second window. Another instance of the app has just spent
the current window's quota, which this process cannot know. What the example shows:

* ``OAuthClient(..., grant_type="client_credentials")`` gets a token; its
  ``httpx_auth()`` sends it and, when the server forgets every token halfway through
  (``expire_tokens()``), renews it on the 401 and replays the request once.
* The first call is answered 429. ``limiter.feedback(...)`` hands that answer (and the
  ``X-RateLimit-*`` / ``RateLimit`` headers of every later one) to the ``RateLimiter``,
  which from then on waits for the server's reset *before* the quota runs out:
  zero 429s after the first.
* ``@commtel.retry`` retries the 429 after the server's ``Retry-After``.

Run it::

    .venv/bin/python examples/social_client.py
"""

from __future__ import annotations

import time

from collections.abc import Callable
from typing import Any

import httpx

import commtel
import commtel.oauth
import commtel.ratelimit
import commtel.retries

from commtel.simulator import SimulatedPlatform


APP = "social-app"  # the server's quota belongs to the app, shared by all its instances
PAGES = 7


def provider_for(api: SimulatedPlatform) -> commtel.oauth.OAuthProvider:
    """The simulated platform's OAuth endpoints."""
    return commtel.oauth.OAuthProvider(
        name="social", authorize_url=f"{api.url}/authorize", token_url=f"{api.url}/oauth/token"
    )


def other_instance_spends_quota(api: SimulatedPlatform) -> None:
    """Another instance of the app, elsewhere, uses up the current window's quota."""
    headers = {"X-Client-ID": APP, "Authorization": f"Bearer {api.issue_token()}"}
    with httpx.Client(base_url=api.url, headers=headers) as other:
        for _ in range(api.limit):
            other.get("/api/timeline")


def make_fetch(http: httpx.Client, limiter: commtel.RateLimiter) -> Callable[[int], dict[str, Any]]:
    """The client's one API call: wait for the limiter, call, tell the limiter what the server said."""

    @commtel.retry(max_attempts=4, base_delay=0.1, operation="fetch_timeline", platform="social")
    def fetch_page(page: int) -> dict[str, Any]:
        limiter.acquire(APP, timeout=5.0)
        response = http.get("/api/timeline", params={"page": page})
        limiter.feedback(APP, response.status_code, response.headers)
        response.raise_for_status()  # a 429 raises; retry waits what Retry-After says
        result: dict[str, Any] = response.json()
        return result

    return fetch_page


def main() -> int:
    commtel.configure_logging("WARNING", json=False)
    # Locally we would allow 20/s: only the server knows its quota is smaller and shared.
    limiter = commtel.RateLimiter(commtel.ratelimit.TokenBucket(rate=20.0, burst=10), name="social", platform="social")
    started = time.monotonic()
    with SimulatedPlatform("social", limit=5, window_s=2.0, require_auth=True) as api:
        other_instance_spends_quota(api)
        seen_before = len(api.requests)  # count only this process's calls from here on
        with (
            commtel.OAuthClient(
                provider_for(api), api.client_id, api.client_secret, grant_type="client_credentials"
            ) as oauth,
            httpx.Client(base_url=api.url, auth=oauth.httpx_auth(), headers={"X-Client-ID": APP}) as http,
        ):
            fetch_page = make_fetch(http, limiter)
            for page in range(1, PAGES + 1):
                if page == PAGES // 2:
                    api.expire_tokens()  # the server forgets every token: the next call gets 401
                fetch_page(page)
            statuses = [r.status for r in list(api.requests)[seen_before:] if r.path.startswith("/api/")]
        stats = api.stats
    elapsed = time.monotonic() - started

    first_429 = statuses.index(429) if 429 in statuses else -1
    print(f"fetched {PAGES} timeline pages in {elapsed:.1f}s")
    print(f"server answers in order: {' '.join(map(str, statuses))}")
    print(f"429s: {stats.throttled} (the first call; none after the limiter heard the server)")
    print(f"401s: {stats.unauthorized}, token requests: {stats.token_requests} (first token + one renewal)")
    summary = commtel.retries.get_retry_stats_detailed()["operations"]["fetch_timeline"]
    print(f"retries: {summary['retries']} (waited {summary['total_backoff_s']:.1f}s as Retry-After asked)")

    if stats.throttled != 1 or first_429 != 0:
        msg = f"expected exactly one 429, on the first call; got {statuses}"
        raise SystemExit(msg)
    if 429 in statuses[first_429 + 1 :]:
        msg = "a 429 came after the limiter had the server's feedback"
        raise SystemExit(msg)
    if stats.unauthorized != 1 or stats.token_requests != 2:
        msg = f"expected one 401 and one token renewal, got {stats.as_dict()}"
        raise SystemExit(msg)
    if statuses.count(200) != PAGES:
        msg = f"expected {PAGES} successful pages, got {statuses}"
        raise SystemExit(msg)
    print("OK: one 429, then zero; token renewed on 401")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
