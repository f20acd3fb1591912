"""The hostile corpus (corpus.toml), every input its own test: a clear error or handled, never a crash or a hang.

Each input runs under a 20 s timeout (a hang fails the test) and is counted by outcome;
the session summary prints ``hostile corpus: N inputs tried, E clear errors, H handled,
0 hangs, 0 crashes``. A crash is any exception but the promised
:class:`~commtel.ConfigurationError`, or a ConfigurationError where the input must be handled.
"""

from __future__ import annotations

import gc
import importlib
import io
import json
import logging
import math
import sys
import time

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from commtel import ConfigurationError, configure_logging, get_logger
from commtel._redaction import redact_text, redact_url
from commtel.instrumentation import HostPolicies
from commtel.oauth import FileTokenStore, Token
from commtel.ratelimit import RateLimitConfig, parse_feedback
from commtel.retries._classify import retry_after_s
from tests.security.conftest import TALLY, measured


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


CORPUS = tomllib.loads((Path(__file__).parent / "corpus.toml").read_text(encoding="utf-8"))
#: Wait accepted from a server in these cases (longer ones are clamped to it).
MAX_WAIT_S = 3600.0
#: CPU time any one header may cost to parse.
HEADER_BUDGET_S = 0.010


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError

    __repr__ = __str__


def _payload(name: str) -> Any:
    """Values TOML cannot spell, built here by name."""
    if name == "cyclic-dict":
        cyclic: dict[str, Any] = {"a": 1}
        cyclic["self"] = cyclic
        return cyclic
    if name == "cyclic-list":
        loop: list[Any] = [1]
        loop.append(loop)
        return loop
    if name == "deep-list":
        deep: list[Any] = []
        node = deep
        for _ in range(10_000):
            node.append([])
            node = node[0]
        return deep
    builders: dict[str, Callable[[], Any]] = {
        "wide-dict": lambda: {f"k{n}": n for n in range(100_000)},
        "huge-string": lambda: "x" * 5_000_000,
        "unprintable": Unprintable,
        "bytes": lambda: b"\xff\xfe token=SECRET-1",
        "set": lambda: {1, 2, 3},
        "nan": lambda: math.nan,
        "secret-field": lambda: {"password": "SECRET-1", "api_key": "SECRET-2"},
        "none": lambda: None,
    }
    return builders[name]()


def _value(raw: Any) -> Any:
    if isinstance(raw, dict) and "repeat" in raw:
        piece, length = raw["repeat"], raw["length"]
        return (piece * (length // len(piece) + 1))[:length]
    if isinstance(raw, dict) and "payload" in raw:
        return _payload(raw["payload"])
    return raw


def _cases(section: str, key: str = "values") -> list[tuple[str, dict[str, Any], Any]]:
    out = []
    for n, entry in enumerate(CORPUS[section]):
        for m, raw in enumerate(entry[key]):
            out.append((f"{section}{n}.{m}", entry, raw))
    return out


def _id(case: tuple[str, dict[str, Any], Any]) -> str:
    name, entry, raw = case
    label = entry.get("target", "") + ("." + entry["param"] if "param" in entry else "")
    shown = repr(raw)
    return f"{name}-{label}={shown[:40]}" if label else f"{name}={shown[:40]}"


def _outcome(expect: str, run: Callable[[], object]) -> None:
    """Run one input: a promised ConfigurationError or a clean return; anything else fails (a crash)."""
    if expect == "error":
        with pytest.raises(ConfigurationError):
            run()
        TALLY["clear error"] += 1
    else:
        run()
        TALLY["handled"] += 1


# -- constructors ----------------------------------------------------------------------------

CONSTRUCTORS = _cases("constructor")


def _target(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("case", CONSTRUCTORS, ids=[_id(c) for c in CONSTRUCTORS])
def test_constructor_input(case: tuple[str, dict[str, Any], Any]) -> None:
    _, entry, raw = case
    target = _target(entry["target"])
    kwargs = {**entry.get("base", {}), entry["param"]: _value(raw)}
    _outcome(entry["expect"], lambda: target(**kwargs))


# -- configuration text ----------------------------------------------------------------------

POLICY_TEXTS = _cases("policy_toml", "texts")


@pytest.mark.parametrize("case", POLICY_TEXTS, ids=[_id(c) for c in POLICY_TEXTS])
def test_policy_file_input(case: tuple[str, dict[str, Any], Any], tmp_path: Path) -> None:
    _, entry, text = case
    path = tmp_path / "policies.toml"
    path.write_text(text, encoding="utf-8")
    _outcome(entry["expect"], lambda: HostPolicies.from_toml(path))


ENVIRONMENTS = _cases("env")
_ENV_READERS: dict[str, Callable[[dict[str, str]], object]] = {
    "RateLimitConfig.from_env": lambda env: RateLimitConfig.from_env(environ=env),
    "HostPolicies.from_env": lambda env: HostPolicies.from_env(environ=env),
}


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=[_id(c) for c in ENVIRONMENTS])
def test_environment_input(case: tuple[str, dict[str, Any], Any]) -> None:
    _, entry, env = case
    _outcome(entry["expect"], lambda: _ENV_READERS[entry["target"]](env))


# -- what servers send -----------------------------------------------------------------------

HEADERS = [(f"header{n}", entry, entry["headers"]) for n, entry in enumerate(CORPUS["header"])]


@pytest.mark.parametrize("case", HEADERS, ids=[_id(c) for c in HEADERS])
def test_server_header_input(case: tuple[str, dict[str, Any], Any]) -> None:
    """Every header is parsed in under 10 ms of CPU, and decides the wait it must."""
    _, entry, raw_headers = case
    headers = {name: _value(value) for name, value in raw_headers.items()}
    started = time.thread_time()
    feedback = parse_feedback(entry["status"], headers, now_wall=1_750_000_000.0, max_wait_s=MAX_WAIT_S)
    spent = time.thread_time() - started
    if max(len(value) for value in headers.values()) >= 65_536:
        measured("64 KB header parse, worst CPU ms", spent * 1000)
    assert spent < HEADER_BUDGET_S, f"{spent * 1000:.1f} ms"
    if "expect_delay" in entry:
        expected = None if entry["expect_delay"] < 0 else entry["expect_delay"]
        assert feedback.delay_s == expected, feedback
    assert feedback.delay_s is None or 0 <= feedback.delay_s <= MAX_WAIT_S
    TALLY["handled"] += 1


RETRY_AFTERS = _cases("retry_after")


@pytest.mark.parametrize("case", RETRY_AFTERS, ids=[_id(c) for c in RETRY_AFTERS])
def test_retry_after_input(case: tuple[str, dict[str, Any], Any]) -> None:
    """A Retry-After that is not a usable delay is ignored (backoff applies), never obeyed as 0."""
    import httpx

    _, _, value = case
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": value})) is None
    TALLY["handled"] += 1


# -- secrets in URLs and text ----------------------------------------------------------------

URLS = _cases("url")
TEXTS = _cases("text")


@pytest.mark.parametrize("case", URLS, ids=[_id(c) for c in URLS])
def test_url_input(case: tuple[str, dict[str, Any], Any]) -> None:
    _, entry, raw = case
    url = _value(raw)
    for redacted in (redact_url(url), redact_text(url)):
        for secret in entry["secrets"]:
            assert secret not in redacted, redacted
    TALLY["handled"] += 1


@pytest.mark.parametrize("case", TEXTS, ids=[_id(c) for c in TEXTS])
def test_text_input(case: tuple[str, dict[str, Any], Any]) -> None:
    _, entry, raw = case
    text = _value(raw)
    started = time.thread_time()
    redacted = redact_text(text)
    assert time.thread_time() - started < 0.05
    for secret in entry["secrets"]:
        assert secret not in redacted, redacted
    TALLY["handled"] += 1


# -- log payloads ----------------------------------------------------------------------------

LOGS = _cases("log")


@pytest.mark.parametrize("case", LOGS, ids=[_id(c) for c in LOGS])
def test_log_input(case: tuple[str, dict[str, Any], Any]) -> None:
    """Logging any value as a field writes one bounded JSON line and never raises."""
    _, entry, raw = case
    value = _value(raw)
    stream = io.StringIO()
    root = logging.getLogger()
    # Only commtel's handler: pytest's capture handler formats records with the standard
    # library's formatter, which is not what is under test (and raises on purpose).
    others = list(root.handlers)
    for handler in others:
        root.removeHandler(handler)
    configure_logging("INFO", stream=stream)
    try:
        get_logger("hostile.corpus").info("payload", field=value)
        logging.getLogger("thirdparty").info("payload %s", value)
    finally:
        configure_logging("WARNING")
        for handler in others:
            root.addHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        json.loads(line)
        assert len(line) < 200_000
        for secret in entry["secrets"]:
            assert secret not in line
    del value
    gc.collect()
    TALLY["handled"] += 1


# -- token store keys ------------------------------------------------------------------------

KEYS = _cases("token_key")


@pytest.mark.parametrize("case", KEYS, ids=[_id(c) for c in KEYS])
def test_token_key_input(case: tuple[str, dict[str, Any], Any], tmp_path: Path) -> None:
    _, entry, raw = case
    key = _value(raw)
    store = FileTokenStore(tmp_path / "tokens")

    def round_trip() -> None:
        token = Token("token-for-this-key")
        store.save(key, token)
        path = store.path(key)
        assert path.parent == tmp_path / "tokens"
        assert len(path.name) <= 86
        assert store.load(key) == token
        assert store.load(key + "x") is None

    _outcome(entry["expect"], round_trip)
