"""The Token model: expiry with a skew margin, proactive-refresh window, serialisation, no secrets in repr."""

from __future__ import annotations

import time
import uuid

import pytest

from hypothesis import given
from hypothesis import strategies as st

from commtel._redaction import REDACTED, RETIRE_AFTER_EXPIRY_S, redact_text
from commtel.errors import ConfigurationError
from commtel.oauth._tokens import Token


def test_from_response_counts_expiry_from_the_request_time():
    """expires_in is counted from the time the request was sent; token_type is normalised to Bearer."""
    token = Token.from_response(
        {"access_token": "resp-access-1", "token_type": "bearer", "expires_in": "3600"}, now=1000.0
    )
    assert (token.expires_at, token.token_type, token.issued_at) == (4600.0, "Bearer", 1000.0)
    assert token.bearer_header() == {"Authorization": "Bearer resp-access-1"}


def test_refresh_without_rotation_keeps_the_old_refresh_token():
    """A refresh response without refresh_token keeps the one that was used."""
    token = Token.from_response({"access_token": "resp-access-2"}, now=0.0, refresh_token="kept-refresh-1")
    assert token.refresh_token == "kept-refresh-1" and token.expires_at is None


def test_is_expired_honours_the_margin():
    """is_expired is true at expiry, and margin_s seconds before it when asked."""
    token = Token("exp-access-1", expires_at=100.0)
    assert not token.is_expired(now=50.0)
    assert token.is_expired(now=50.0, margin_s=60.0)
    assert token.is_expired(now=100.0)
    assert not Token("exp-access-2").is_expired(now=1e12)


def test_repr_and_round_trip_hide_nothing_and_leak_nothing():
    """repr shows no credential; to_dict/from_dict round-trips every field."""
    token = Token(
        "repr-access-1", expires_at=5.0, refresh_token="repr-refresh-1", scope="a", issued_at=1.0, id_token="repr-id-1"
    )
    assert "repr-access-1" not in repr(token) and "repr-refresh-1" not in repr(token) and "repr-id-1" not in repr(token)
    assert Token.from_dict(token.to_dict()) == token
    assert token.token == "repr-access-1"  # the short name of access_token


@given(
    issued=st.floats(0, 1e6),
    lifetime=st.floats(0, 1e5),
    margin=st.floats(0, 1e4),
    t1=st.floats(0, 2e6),
    t2=st.floats(0, 2e6),
)
def test_refresh_window_is_monotonic_and_bounded(issued, lifetime, margin, t1, t2):
    """needs_refresh never turns off as time passes, never fires before the margin or before half the lifetime."""
    token = Token("prop-access-1", expires_at=issued + lifetime, issued_at=issued)
    early, late = sorted((t1, t2))
    if token.needs_refresh(early, margin):
        assert token.needs_refresh(late, margin)
    if token.needs_refresh(early, margin):
        assert early >= token.expires_at - margin
        assert early >= issued + lifetime / 2 - 1e-6
    if early >= token.expires_at:
        assert token.needs_refresh(early, margin)


# -- exact values: every field, every bound from both sides, every fallback ------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, None),  # a JSON boolean is not a lifetime (float(True) would be 1.0)
        (False, None),
        (None, None),
        ("", None),
        ("soon", None),
        ([60], None),
        (10**400, None),  # beyond float range
        ("inf", None),
        ("nan", None),
        ("-1", None),
        (-0.5, None),
        (0, 0.0),  # a token that expires as it is issued is still a number
        ("0", 0.0),
        ("12.5", 12.5),
    ],
)
def test_expires_in_accepts_only_finite_non_negative_numbers(raw, expected):
    """expires_in (and a stored expires_at) is a finite number >= 0; anything else means 'unknown'."""
    token = Token.from_response({"access_token": "edge-access-1", "expires_in": raw}, now=1000.0)
    assert token.expires_at == (None if expected is None else 1000.0 + expected)
    stored = Token.from_dict({"access_token": "edge-access-1", "expires_at": raw, "issued_at": raw})
    assert (stored.expires_at, stored.issued_at) == (expected, expected)


def test_from_response_reads_every_field():
    """expires_in wins over expires_at, then expires_at; the response's refresh token wins; scope and id kept."""
    full = Token.from_response(
        {
            "access_token": 12345,
            "token_type": "MAC",
            "expires_in": 60,
            "expires_at": 9999.0,
            "refresh_token": "new-refresh-1",
            "scope": "read write",
            "id_token": "field-id-1",
        },
        now=1000.0,
        refresh_token="old-refresh-1",
    )
    assert full.to_dict() == {
        "access_token": "12345",
        "token_type": "MAC",
        "expires_at": 1060.0,
        "refresh_token": "new-refresh-1",
        "scope": "read write",
        "issued_at": 1000.0,
        "id_token": "field-id-1",
    }
    assert full.authorization == "MAC 12345"
    absolute = Token.from_response({"access_token": "field-access-2", "expires_at": 5000}, now=1000.0)
    assert absolute.expires_at == 5000.0
    invalid_lifetime = Token.from_response(
        {"access_token": "field-access-3", "expires_in": "never", "expires_at": 5000}, now=1000.0
    )
    assert invalid_lifetime.expires_at == 5000.0
    for token_type in ("BEARER", "", None):
        token = Token.from_response({"access_token": "field-access-4", "token_type": token_type}, now=0.0)
        assert token.token_type == "Bearer"
    empty_rotation = Token.from_response(
        {"access_token": "field-access-5", "refresh_token": ""}, now=0.0, refresh_token="kept-refresh-2"
    )
    assert empty_rotation.refresh_token == "kept-refresh-2"


def test_from_dict_defaults():
    """A stored token without a scheme is a Bearer token; missing fields are None."""
    token = Token.from_dict({"access_token": 777, "token_type": ""})
    assert token.to_dict() == {
        "access_token": "777",
        "token_type": "Bearer",
        "expires_at": None,
        "refresh_token": None,
        "scope": None,
        "issued_at": None,
        "id_token": None,
    }


def test_expires_in_and_is_expired_exact():
    """Seconds left are exact; expired at expiry (not a moment before) unless a margin says so."""
    token = Token("exact-access-1", expires_at=100.0)
    assert token.expires_in(40.0) == 60.0
    assert token.expires_in(130.0) == -30.0
    assert Token("exact-access-2").expires_in(40.0) is None
    assert not token.is_expired(now=99.5)  # no default margin
    assert token.is_expired(now=90.0, margin_s=10.0)
    assert not token.is_expired(now=89.5, margin_s=10.0)


def test_expiry_without_now_reads_the_wall_clock():
    """expires_in() and is_expired() with no time use the wall clock."""
    before = time.time()
    left = Token("wall-access-1", expires_at=before + 1000.0).expires_in()
    after = time.time()
    assert left is not None and before + 1000.0 - after <= left <= 1000.0
    assert Token("wall-access-2", expires_at=before - 1.0).is_expired()
    assert not Token("wall-access-3", expires_at=before + 1000.0).is_expired()


def test_needs_refresh_exact_bounds():
    """The margin applies exactly, capped at half the lifetime; an inverted lifetime means no margin."""
    assert not Token("nr-access-1").needs_refresh(1e12, 60.0)
    # No issued_at: the whole margin applies.
    bare = Token("nr-access-2", expires_at=100.0)
    assert (bare.needs_refresh(39.5, 60.0), bare.needs_refresh(40.0, 60.0)) == (False, True)
    # Margin below half the lifetime: the margin itself.
    long_lived = Token("nr-access-3", expires_at=100.0, issued_at=0.0)
    assert (long_lived.needs_refresh(89.5, 10.0), long_lived.needs_refresh(90.0, 10.0)) == (False, True)
    # Margin above half the lifetime: capped at 50 s.
    assert (long_lived.needs_refresh(49.5, 60.0), long_lived.needs_refresh(50.0, 60.0)) == (False, True)
    # issued_at after expires_at (a clock jump): no margin at all, refreshed at expiry.
    inverted = Token("nr-access-4", expires_at=100.0, issued_at=200.0)
    assert (inverted.needs_refresh(99.9, 60.0), inverted.needs_refresh(100.0, 60.0)) == (False, True)


def test_same_credential():
    token = Token("same-access-1", expires_at=1.0)
    assert token.same_credential(Token("same-access-1", expires_at=2.0))
    assert not token.same_credential(Token("same-access-2"))
    assert not token.same_credential(None)


def test_invalid_fields_name_themselves():
    """A missing access token or a bad expiry is a ConfigurationError naming Token and the field."""
    with pytest.raises(ConfigurationError, match=r"^Token\.access_token must be a non-empty string, got ''$"):
        Token("")
    with pytest.raises(ConfigurationError, match=r"^Token\.expires_at must be"):
        Token("bad-access-1", expires_at="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^Token\.issued_at must be"):
        Token("bad-access-1", issued_at=-1.0)


def test_every_credential_is_redacted_and_expired_ones_retire():
    """Access, refresh and ID tokens are redacted once built; an access token retires after its expiry (+ grace).

    The credentials are new on every run: the redaction registry is process-wide (and mutmut forks its
    runs from a process that already ran this test).
    """
    run = uuid.uuid4().hex
    live = Token(
        f"redact-access-{run}",
        expires_at=time.time() + 3600.0,
        refresh_token=f"redact-refresh-{run}",
        id_token=f"redact-id-{run}",
    )
    text = f"{live.access_token} {live.refresh_token} {live.id_token}"
    assert redact_text(text) == f"{REDACTED} {REDACTED} {REDACTED}"
    gone = Token(f"redact-gone-{run}", expires_at=time.time() - RETIRE_AFTER_EXPIRY_S - 60.0, id_token=f"gone-id-{run}")
    Token(f"redact-next-{run}")  # any registration retires what has expired
    assert redact_text(f"{gone.access_token} {gone.id_token}") == f"{gone.access_token} {gone.id_token}"


def test_a_stored_scheme_is_kept():
    assert Token.from_dict({"access_token": "stored-access-1", "token_type": "MAC"}).token_type == "MAC"
