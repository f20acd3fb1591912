"""The simulated platform answers like a real rate-limited, flaky API."""

from __future__ import annotations

import httpx
import pytest

from commtel.simulator import SimulatedPlatform


def test_quota_answers_429_with_retry_after_and_ratelimit_headers() -> None:
    """Past its quota a client gets 429 with Retry-After, X-RateLimit-* and IETF RateLimit headers."""
    with SimulatedPlatform("q", limit=2, window_s=30) as p, httpx.Client(base_url=p.url) as client:
        first = client.get("/api/a", headers={"X-Client-ID": "c1"})
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert first.headers["RateLimit-Policy"] == '"default";q=2;w=30'
        client.get("/api/a", headers={"X-Client-ID": "c1"})
        third = client.get("/api/a", headers={"X-Client-ID": "c1"})
        assert third.status_code == 429
        assert 1 <= int(third.headers["Retry-After"]) <= 30
        assert client.get("/api/a", headers={"X-Client-ID": "c2"}).status_code == 200
        assert p.stats.throttled == 1


def test_fail_next_injects_a_burst_then_recovers(platform: SimulatedPlatform) -> None:
    """fail_next(n) makes exactly the next n API calls fail."""
    platform.fail_next(2, status=502)
    with httpx.Client(base_url=platform.url) as client:
        codes = [client.get("/api/x").status_code for _ in range(3)]
    assert codes == [502, 502, 200]


def test_token_endpoint_and_auth_required() -> None:
    """With require_auth, calls need a token from /oauth/token; expired tokens get 401."""
    with SimulatedPlatform("auth", require_auth=True) as p, httpx.Client(base_url=p.url) as client:
        assert client.get("/api/me").status_code == 401
        bad = client.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
        )
        assert bad.json()["error"] == "invalid_client"
        token = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": p.client_id, "client_secret": p.client_secret},
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.get("/api/me", headers=headers).status_code == 200
        p.expire_tokens()
        assert client.get("/api/me", headers=headers).status_code == 401
        refreshed = client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": token["refresh_token"],
                "client_id": p.client_id,
                "client_secret": p.client_secret,
            },
        )
        assert refreshed.status_code == 200
        assert p.stats.token_requests == 3


def test_slow_calls_and_invalid_config() -> None:
    """/slow delays the answer; a zero limit is refused at construction."""
    with SimulatedPlatform("s") as p:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{p.url}/slow?delay=0.5", timeout=0.1)
    with pytest.raises(ValueError, match="limit"):
        SimulatedPlatform("bad", limit=0)


def test_mail_server_accepts_and_injects_transient_failures() -> None:
    """The mail relay keeps accepted messages and answers fail_next with the given SMTP reply."""
    import smtplib

    from email.message import EmailMessage

    from commtel.simulator import SimulatedMailServer

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "=?utf-8?q?Caf=C3=A9?="
    msg.set_content("hi")
    with SimulatedMailServer() as relay, smtplib.SMTP(relay.host, relay.port) as smtp:
        relay.fail_next(1)
        with pytest.raises(smtplib.SMTPDataError) as info:
            smtp.send_message(msg)
        assert info.value.smtp_code == 451
        smtp.send_message(msg)
    assert [m["Subject"] for m in relay.messages] == ["Café"]


def test_token_endpoint_failures_can_be_injected() -> None:
    """fail_next_token makes the next token requests fail with the OAuth error of that status."""
    with SimulatedPlatform("auth", require_auth=True) as p, httpx.Client(base_url=p.url) as client:
        p.fail_next_token(1, status=400)
        form = {"grant_type": "client_credentials", "client_id": p.client_id, "client_secret": p.client_secret}
        failed = client.post("/oauth/token", data=form)
        assert (failed.status_code, failed.json()["error"]) == (400, "invalid_grant")
        assert client.post("/oauth/token", data=form).status_code == 200
