"""The redaction registry's lifetimes and cost, URL and free-text sanitizing, bounded structured values."""

from __future__ import annotations

import gc
import io
import json
import logging
import secrets
import subprocess
import sys
import time

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import SpanProcessor

from commtel import _redaction, configure_logging, get_logger, register_secret
from commtel._redaction import (
    MAX_ROTATING,
    RETIRE_AFTER_EXPIRY_S,
    _register_rotating,
    add_sensitive_query_params,
    exception_attributes,
    redact_mapping,
    redact_text,
    redact_url,
    unregister_secret,
)


_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def token(n: int = 40) -> str:
    return "".join(secrets.choice(_TOKEN_CHARS) for _ in range(n))


class Owner:
    """Something a secret belongs to (a client, a connection)."""


def test_permanent_secret_survives_a_storm_of_rotations() -> None:
    """A plain registration is never evicted, however many rotating tokens come after it."""
    client_secret = token()
    register_secret(client_secret)
    _register_rotating((token() for _ in range(MAX_ROTATING + 500)), time.time() + 3600)
    assert redact_text(f"secret={client_secret} and {client_secret}") == "secret=[REDACTED] and [REDACTED]"
    unregister_secret(client_secret)
    assert client_secret in redact_text(f"x {client_secret}")


def test_owned_secret_lives_exactly_as_long_as_its_owner() -> None:
    """register_secret(owner=...) redacts while the owner lives and forgets the value once it is collected."""
    owner = Owner()
    secret = token()
    register_secret(secret, owner=owner)
    _register_rotating((token() for _ in range(MAX_ROTATING + 10)), None)
    assert redact_text(secret) == "[REDACTED]"
    del owner
    gc.collect()
    assert redact_text(secret) == secret


def test_a_secret_held_by_two_owners_stays_until_both_are_gone() -> None:
    first, second = Owner(), Owner()
    secret = token()
    register_secret(secret, owner=first)
    register_secret(secret, owner=second)
    del first
    gc.collect()
    assert redact_text(secret) == "[REDACTED]"
    del second
    gc.collect()
    assert redact_text(secret) == secret


_OWNERS_DIE_DURING_REGISTRATIONS = """
import gc, threading
from commtel._redaction import redact_text, register_secret

class Owner:
    pass

def churn(n):
    for i in range(300):
        owner = Owner()
        owner.cycle = owner  # only the cyclic collector frees it, at whatever allocation comes next
        register_secret(f"owned-{n}-{i:04d}-secret", owner=owner)
        register_secret(f"plain-{n}-{i:04d}-secret")
        del owner

gc.set_threshold(1)  # collect at (almost) every allocation, inside the registry's critical sections too
workers = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
for worker in workers:
    worker.start()
churn(4)
for worker in workers:
    worker.join()
gc.collect()
register_secret("one-more-secret")  # applies unpins queued while the registry was busy
print(redact_text("owned-0-0001-secret plain-0-0001-secret"))
"""


def test_owners_collected_in_the_middle_of_a_registration_do_not_deadlock() -> None:
    """An owner freed by the garbage collector while its thread registers a secret neither hangs nor leaks.

    The collector runs an owner's finalizer on whichever thread allocates, possibly one that holds
    the registry's lock; that used to wait for the lock forever. Run in a child process so that a
    regression fails here instead of hanging the suite.
    """
    result = subprocess.run(
        [sys.executable, "-c", _OWNERS_DIE_DURING_REGISTRATIONS], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "owned-0-0001-secret [REDACTED]"


def test_owner_must_accept_weak_references() -> None:
    from commtel import ConfigurationError

    with pytest.raises(ConfigurationError, match="weak references"):
        register_secret(token(), owner=42)


def test_rotating_token_retires_after_its_expiry() -> None:
    """A token registered with expires_at stays redacted until RETIRE_AFTER_EXPIRY_S past its expiry."""
    expired = token()
    live = token()
    register_secret(expired, expires_at=time.time() - RETIRE_AFTER_EXPIRY_S - 1)
    register_secret(live, expires_at=time.time() + 60)
    assert redact_text(live) == "[REDACTED]"
    assert redact_text(expired) == expired


def test_rotating_tokens_are_bounded() -> None:
    """A refresh storm keeps at most MAX_ROTATING rotating values; the least recently seen go first."""
    first = token()
    _register_rotating([first], None)
    newest = [token() for _ in range(MAX_ROTATING)]
    _register_rotating(newest, None)
    assert len(_redaction._registry.rotating) == MAX_ROTATING
    assert redact_text(first) == first
    assert redact_text(newest[-1]) == "[REDACTED]"
    assert redact_text(newest[0]) == "[REDACTED]"


def test_a_known_expiry_replaces_an_unknown_one() -> None:
    """The token response registers the token without expiry, the Token built from it with one."""
    value = token()
    _register_rotating([value], None)
    _register_rotating([value], time.time() - RETIRE_AFTER_EXPIRY_S - 1)
    register_secret(token(), expires_at=time.time() + 60)  # any registration retires what expired
    assert redact_text(value) == value


def test_percent_encoded_spelling_is_redacted_too() -> None:
    secret = "s3cr/t+value=" + token(20)
    register_secret(secret)
    from urllib.parse import quote

    assert secret not in redact_text(f"a {secret} b")
    assert quote(secret, safe="") not in redact_text(f"?x={quote(secret, safe='')}")


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.text(_TOKEN_CHARS, min_size=4, max_size=60), min_size=1, max_size=8, unique=True),
    filler=st.lists(st.text(" =&:/?abcxyz0123", max_size=30), min_size=1, max_size=9),
)
def test_every_occurrence_of_every_registered_value_is_redacted(values: list[str], filler: list[str]) -> None:
    """Whatever the lengths and neighbours, no registered value survives in the text."""
    for value in values:
        register_secret(value)
    try:
        text = "".join(f"{gap}{values[i % len(values)]}" for i, gap in enumerate(filler))
        out = redact_text(text)
        for value in values:
            assert value not in out.replace("[REDACTED]", "\0")
    finally:
        for value in values:
            unregister_secret(value)


def _best_of(fn, repeat: int = 30) -> float:
    """The least CPU time (of this thread) *fn* took: immune to other processes on a loaded machine."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        fn()
        best = min(best, time.thread_time() - started)
    return best


def test_redaction_cost_does_not_grow_with_the_registry() -> None:
    """A 1 KB line costs about the same with 1 or 10,000 registered secrets (it cost 0.9 ms at 512 before)."""
    line = ("GET https://api.example.com/v1/items?page=2 took 12ms user=alice " * 20)[:1024]
    probe = token()
    register_secret(probe)
    few = _best_of(lambda: redact_text(line))
    owners = [Owner() for _ in range(10_000)]
    for owner in owners:
        register_secret(token(), owner=owner)
    many = _best_of(lambda: redact_text(line))
    assert redact_text(f"{line}{probe}").endswith("[REDACTED]")
    del owners
    gc.collect()
    unregister_secret(probe)
    assert many < 2.5 * few + 20e-6, (few, many)
    assert many < 1e-3


# -- URLs and free text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        # OpenTelemetry semantic conventions, url.full
        "AWSAccessKeyId",
        "Signature",
        "sig",
        "X-Goog-Signature",
        # commtel's list
        "key",
        "jwt",
        "session",
        "auth",
        "token",
        "access_token",
        "api_key",
        "password",
        "secret",
        "code",
        "client_secret",
        "refresh_token",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        # anything that looks like a credential
        "my_private_token",
    ],
)
def test_secret_query_values_are_redacted_in_urls_and_text(name: str) -> None:
    value = "v4lue-" + token(12)
    url = f"https://api.example.com/v1/x?page=2&{name}={value}&q=ok"
    assert redact_url(url) == f"https://api.example.com/v1/x?page=2&{name}=REDACTED&q=ok"
    assert redact_text(f'HTTP Request: GET {url} "HTTP/1.1 200 OK"') == (
        f'HTTP Request: GET https://api.example.com/v1/x?page=2&{name}=REDACTED&q=ok "HTTP/1.1 200 OK"'
    )
    assert value not in redact_text(f'"GET /v1/x?{name}={value} HTTP/1.1" 200 17')


def test_user_configured_query_params_are_redacted() -> None:
    assert "tenant_hash=abc" in redact_url("https://x.test/?tenant_hash=abc")
    add_sensitive_query_params("Tenant_Hash")
    assert redact_url("https://x.test/?tenant_hash=abc") == "https://x.test/?tenant_hash=REDACTED"


def test_query_params_from_the_environment() -> None:
    """COMMTEL_SENSITIVE_QUERY_PARAMS adds names at import."""
    code = "from commtel._redaction import redact_url; print(redact_url('https://x.test/?shop_hmac=1&page=2'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"COMMTEL_SENSITIVE_QUERY_PARAMS": "shop_hmac, other", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "https://x.test/?shop_hmac=REDACTED&page=2"


def test_userinfo_is_redacted_in_urls_and_text() -> None:
    assert redact_url("https://bob:hunter2@db.example.com:5432/x") == "https://REDACTED:REDACTED@db.example.com:5432/x"
    text = "Starting new HTTPS connection (1): https://bob:hunter2@db.example.com:443/x and ssh://git@host/repo"
    out = redact_text(text)
    assert "hunter2" not in out
    assert "https://REDACTED:REDACTED@db.example.com:443/x" in out
    assert "mail me at bob@example.com" == redact_text("mail me at bob@example.com")


def test_unparsable_url_is_redacted_as_text() -> None:
    assert redact_url("http://[::1/x?token=abc") == "http://[::1/x?token=REDACTED"


def test_registered_secret_in_a_url_path_is_redacted() -> None:
    bot = "123456:" + token(35)
    register_secret(bot)
    assert redact_url(f"https://api.telegram.org/bot{bot}/sendMessage") == (
        "https://api.telegram.org/bot[REDACTED]/sendMessage"
    )


def test_ordinary_text_is_left_alone() -> None:
    text = "retrying GET https://api.example.com/v1/items?page=2&q=cats in 0.5s (author=bob)"
    assert redact_text(text) == text


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=2000))
def test_redact_text_never_raises(text: str) -> None:
    assert isinstance(redact_text(text), str)
    assert isinstance(redact_url(text), str)


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 65536,
        "://" * 21845,
        "?" + "a" * 65535,
        "&" * 65536,
        "?a" * 32768,
        "://" + "a" * 65533,
        "Bearer " * 9362,
        "password" * 8192,
        "https://" + "u:" * 32764,
    ],
)
def test_hostile_text_costs_milliseconds(hostile: str) -> None:
    """Every regex is linear: 64 KB of the worst characters for each of them is redacted quickly."""
    assert _best_of(lambda: (redact_text(hostile), redact_url(hostile)), repeat=3) < 0.05


# -- structured values and exceptions ----------------------------------------------------------


def test_cyclic_and_deep_values_are_bounded() -> None:
    cyclic: dict[str, object] = {"name": "x"}
    cyclic["self"] = cyclic
    deep: list[object] = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]  # type: ignore[assignment]
    out = redact_mapping({"c": cyclic, "d": deep, "big": list(range(1000)), "s": "x" * 100_000})
    assert out["c"] == {"name": "x", "self": "<dict cycle>"}
    assert json.dumps(out["d"]).count("[") == _redaction.MAX_DEPTH - 1  # the outer mapping is level 1
    assert len(out["big"]) == _redaction.MAX_ITEMS + 1
    assert len(out["s"]) < _redaction.MAX_STRING + 100


def test_logging_a_cyclic_or_unprintable_value_never_raises() -> None:
    """log.info(d=<cyclic dict>) raised RecursionError into the application; now it logs a bounded line."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError

        __repr__ = __str__

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        cyclic: dict[str, object] = {}
        cyclic["d"] = cyclic
        log = get_logger("app.cyclic")
        log.info("cyclic", d=cyclic, u=Unprintable())
        configure_logging("INFO", stream=stream, json=False)
        log.info("cyclic text", d=cyclic)
    finally:
        configure_logging("WARNING")
    first, second = stream.getvalue().splitlines()[:2]
    entry = json.loads(first)
    assert entry["d"] == {"d": "<dict cycle>"}
    assert entry["u"] == "<unprintable Unprintable>"
    assert "<dict cycle>" in second


def test_a_record_that_cannot_be_formatted_becomes_a_fallback_line() -> None:
    """Whatever breaks while formatting, the formatter returns a line instead of raising."""
    from commtel.telemetry import JSONFormatter, TextFormatter

    record = logging.LogRecord("app", logging.INFO, __file__, 1, "bad format %d token=abc", ("x",), None)
    for formatter in (JSONFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert "could not format this record: TypeError" in line
        assert "token=REDACTED" in line


def test_exception_attributes_are_redacted() -> None:
    secret = token()
    register_secret(secret)
    try:
        raise ValueError(f"GET https://u:pw@x.test/?token=abc failed with {secret}")  # noqa: EM102
    except ValueError as error:
        attributes = exception_attributes(error, escaped=True)
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.escaped"] is True
    for key in ("exception.message", "exception.stacktrace"):
        text = str(attributes[key])
        assert secret not in text
        assert "pw@" not in text
        assert "token=abc" not in text
    assert "token=REDACTED" in str(attributes["exception.stacktrace"])


def test_third_party_log_lines_are_redacted() -> None:
    """httpx and urllib3 log full URLs; configure_logging's formatter redacts them."""
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s %d %s"',
            "GET",
            "https://bob:pa55word@api.x.test/v1?token=t0ken123",
            "HTTP/1.1",
            200,
            "OK",
        )
        logging.getLogger("urllib3.connectionpool").debug(
            '%s://%s:%s "%s %s %s" %s %s', "https", "api.x.test", 443, "GET", "/v1?api_key=k3y999", "HTTP/1.1", 200, 2
        )
    finally:
        configure_logging("WARNING")
    text = stream.getvalue()
    for leaked in ("pa55word", "t0ken123", "k3y999"):
        assert leaked not in text


# -- commtel's own spans are clean before any exporter sees them -------------------------------


class _RawSpans(SpanProcessor):
    """A span processor that keeps spans as made: what an application's own TracerProvider exports."""

    def __init__(self) -> None:
        self.spans: list = []

    def on_end(self, span) -> None:
        self.spans.append(span)


@pytest.fixture
def raw_spans():
    from opentelemetry import trace

    raw = _RawSpans()
    provider = trace.get_tracer_provider()
    provider.add_span_processor(raw)  # type: ignore[attr-defined]
    yield raw
    processors = provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    provider._active_span_processor._span_processors = tuple(p for p in processors if p is not raw)  # type: ignore[attr-defined]


def test_commtel_spans_carry_no_secret_without_the_redacting_exporter(raw_spans) -> None:
    """Guard, start_span and OperationTracker record exceptions and statuses already redacted."""
    from commtel import Guard, OperationTracker
    from commtel.telemetry import start_span

    secret = token()
    register_secret(secret)
    message = f"GET https://bob:pa55word@api.x.test/v1?token=t0ken123&sig=s1gnature failed with {secret}"

    def fail() -> None:
        raise RuntimeError(message)

    with pytest.raises(RuntimeError):
        Guard("op").call(fail)
    with pytest.raises(RuntimeError), start_span("manual"):
        fail()
    with pytest.raises(RuntimeError), OperationTracker().start_operation("tracked", "p"):
        fail()
    assert len(raw_spans.spans) == 3
    text = "\n".join(span.to_json() for span in raw_spans.spans)
    for leaked in (secret, "pa55word", "t0ken123", "s1gnature"):
        assert leaked not in text
    assert text.count('"exception.stacktrace"') == 3
    assert "token=REDACTED" in text
