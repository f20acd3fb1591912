"""The Token model: expiry with a skew margin, proactive-refresh window, serialisation, no secrets in repr."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
