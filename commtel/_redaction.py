"""Redaction of secrets before anything leaves the process (logs, spans, exceptions).

Four rules, applied by :func:`redact_text` to any free text and by the span/log
paths to everything commtel emits:

* a value registered with :func:`register_secret` is replaced wherever it appears
  (also percent-encoded), at a cost per character that does not depend on how
  many values are registered (see :class:`_Matcher`);
* URLs lose their ``user:password@`` (``REDACTED:REDACTED@``) and the values of
  sensitive query parameters (``?token=REDACTED``), as OpenTelemetry's semantic
  conventions ask for ``url.full``: :func:`redact_url`;
* inline credentials (``Bearer …``, ``password=…``, ``"access_token": "…"``);
* values under sensitive keys (``authorization``, ``password``, ``*token*`` …) are
  replaced wholesale by :func:`redact_value` / :func:`redact_mapping`, which also
  bound depth and size so a cyclic or huge structure costs bounded time.

How long a registered value stays redacted depends on who registered it: for the
life of the process (default), while an *owner* object lives (a client's secret,
a password in a connection URL), or until a rotating token's expiry has passed
(at most :data:`MAX_ROTATING` such values; a refresh storm retires the least
recently seen first). Long-lived secrets are never evicted by churn.

Every regular expression here is linear in its input: a hostile 64 KB string
costs milliseconds, not seconds.
"""

from __future__ import annotations

import heapq
import math
import os
import re
import threading
import traceback
import weakref

from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

from . import _validation as check
from ._timing import wall


__all__ = [
    "MAX_ROTATING",
    "REDACTED",
    "RETIRE_AFTER_EXPIRY_S",
    "URL_REDACTED",
    "add_sensitive_query_params",
    "exception_attributes",
    "is_sensitive_key",
    "is_sensitive_query_param",
    "redact_mapping",
    "redact_text",
    "redact_url",
    "redact_value",
    "register_secret",
    "unregister_secret",
]

REDACTED = "[REDACTED]"
#: What replaces URL credentials and secret query values (OpenTelemetry's spelling, URL-safe).
URL_REDACTED = "REDACTED"
#: Rotating credentials (registered with ``expires_at``) kept at most; the least recently seen go first.
MAX_ROTATING = 4096
#: A rotating credential stays redacted this long after its expiry (requests sent just before it).
RETIRE_AFTER_EXPIRY_S = 300.0
_MIN_SECRET_LENGTH = 4

_SENSITIVE_KEY = re.compile(
    r"(authorization|auth[-_]?header|cookie|passw(or)?d|passwd|secret|token|api[-_]?key|"
    r"private[-_]?key|credential|code[-_]?verifier|client[-_]?assertion|session[-_]?key|^code$)",
    re.IGNORECASE,
)
# "Bearer <credential>" / "Basic <credential>" in free text.
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")

# -- query parameters -------------------------------------------------------------------

#: OpenTelemetry semantic conventions (``url.full``): query values redacted by default.
OTEL_QUERY_PARAMS = frozenset({"awsaccesskeyid", "signature", "sig", "x-goog-signature"})
#: Query parameters commtel treats as secret besides OpenTelemetry's and any name that
#: :func:`is_sensitive_key` matches (``*token*``, ``*secret*``, ``*password*`` …).
COMMTEL_QUERY_PARAMS = frozenset(
    {
        "key",
        "apikey",
        "api-key",
        "api_key",
        "jwt",
        "session",
        "sessionid",
        "session_id",
        "sid",
        "auth",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "code",
        "code_verifier",
        "client_assertion",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-credential",
    }
)
#: Set this environment variable to a comma-separated list of extra secret query parameters.
QUERY_PARAMS_ENV = "COMMTEL_SENSITIVE_QUERY_PARAMS"


def _env_query_params() -> frozenset[str]:
    raw = os.environ.get(QUERY_PARAMS_ENV, "")
    return frozenset(name.strip().lower() for name in raw.split(",") if name.strip())


_query_params = OTEL_QUERY_PARAMS | COMMTEL_QUERY_PARAMS | _env_query_params()


def add_sensitive_query_params(*names: str) -> frozenset[str]:
    """Treat query parameters named *names* (any case) as secret, besides the built-in list.

    The built-in list is OpenTelemetry's (``AWSAccessKeyId``, ``Signature``, ``sig``,
    ``X-Goog-Signature``) plus commtel's (``key``, ``jwt``, ``session``, ``auth``,
    ``token``, ``access_token``, ``api_key``, ``password``, ``secret``, ``code``,
    ``client_secret`` …) plus any name that looks like a credential. The environment
    variable ``COMMTEL_SENSITIVE_QUERY_PARAMS`` (comma-separated) adds names at import.

    Returns:
        Every name now treated as secret (lower case).

    .. versionadded:: 0.2.0
    """
    global _query_params  # noqa: PLW0603
    _query_params = _query_params | {name.strip().lower() for name in names if name.strip()}
    return _query_params


def is_sensitive_key(key: str) -> bool:
    """Whether a field, header or attribute named *key* holds a credential."""
    return _SENSITIVE_KEY.search(key) is not None


def is_sensitive_query_param(name: str) -> bool:
    """Whether the query parameter *name* (raw or percent-encoded) carries a secret value."""
    decoded = unquote_plus(name).strip().lower()
    return decoded in _query_params or is_sensitive_key(decoded)


def _redact_query(query: str) -> str:
    pieces = re.split(r"([&;])", query)
    changed = False
    for i in range(0, len(pieces), 2):
        key, sep, _ = pieces[i].partition("=")
        if sep and is_sensitive_query_param(key):
            pieces[i] = f"{key}={URL_REDACTED}"
            changed = True
    return "".join(pieces) if changed else query


def redact_url(url: str) -> str:
    """*url* with its credentials replaced: fit for ``url.full``, a log line or an error message.

    ``user:password@`` becomes ``REDACTED:REDACTED@`` and the value of every secret
    query parameter becomes ``REDACTED`` (the names stay), as OpenTelemetry's semantic
    conventions specify for ``url.full``; registered secrets anywhere else in the URL
    (a bot token in the path) become ``[REDACTED]``, and so do secret ``name=value``
    pairs outside the query (``;token=…``). Everything else is kept byte for byte. A
    string that does not parse as a URL is redacted as free text.

    .. versionadded:: 0.1.0
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        netloc = f"{URL_REDACTED}:{URL_REDACTED}@{netloc.rpartition('@')[2]}"
    if query:
        query = _redact_query(query)
    if netloc is not parts.netloc or query is not parts.query:
        url = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    url = _registry.matcher.redact(url)  # registered secrets anywhere (a bot token in the path)
    if "=" in parts.path:  # name=value pairs outside the query (";token=…" path parameters)
        url = _PAIR.sub(_pair, url)
    return url


# In free text: "scheme://userinfo@", and name=value / "name": "value" pairs. Both are linear:
# an attempt starts only after "://" or at the start of a name (the look-behind), and stops at
# the first delimiter. A value stops at "=" and "?" too, so a pair inside another pair's value
# ("next=https://x/?token=abc") is examined on its own.
_USERINFO = re.compile(r"(?<=://)[^/?#\s@\[\]\"'<>]+@")
_PAIR = re.compile(r"(?a)(?<![\w.%-])([\w%][\w.%-]{0,127})([\"']?\s*(?:=|:(?![/\d]))\s*[\"']?)([^\s&;#?=\"'<>,]+)")
# "status code: 500" is not an authorization code; as a query parameter (code=…) it is.
_NOT_SECRET_BEFORE_COLON = frozenset({"code"})


def _pair(match: re.Match[str]) -> str:
    name, separator, value = match.groups()
    if value in {REDACTED, URL_REDACTED}:
        return match.group(0)
    if "=" in separator:
        if not is_sensitive_query_param(name):
            return match.group(0)
        return f"{name}{separator}{URL_REDACTED}"
    if not is_sensitive_key(name) or name.lower() in _NOT_SECRET_BEFORE_COLON:
        return match.group(0)
    return f"{name}{separator}{REDACTED}"


def _scheme_credential(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


def redact_text(text: str) -> str:
    """*text* with registered secrets, URL credentials, secret query values and inline credentials replaced.

    Use it on anything that may carry outside input before it leaves the process:
    exception messages, stack traces, status descriptions, third-party log lines.

    .. versionadded:: 0.2.0
    """
    text = _registry.matcher.redact(text)
    if "://" in text:
        text = _USERINFO.sub(f"{URL_REDACTED}:{URL_REDACTED}@", text)
    lower = text.lower()
    if "bearer" in lower or "basic" in lower:
        text = _SCHEME_CREDENTIAL.sub(_scheme_credential, text)
    if "=" in text or ":" in text:
        text = _PAIR.sub(_pair, text)
    return text


# -- structured values ------------------------------------------------------------------

#: Nesting deeper than this is cut (cyclic structures end here too).
MAX_DEPTH = 8
#: Items kept per mapping or sequence.
MAX_ITEMS = 100
#: Characters kept per string value (redacted first, then cut).
MAX_STRING = 16_384


def _cut(text: str) -> str:
    if len(text) <= MAX_STRING:
        return text
    return f"{text[:MAX_STRING]}…[{len(text) - MAX_STRING} more characters]"


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _redact(key: str, value: Any, depth: int, seen: frozenset[int]) -> Any:
    if is_sensitive_key(key):
        return REDACTED
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if not isinstance(value, (Mapping, list, tuple)):
        return _cut(redact_text(value if isinstance(value, str) else _safe_str(value)))
    if depth >= MAX_DEPTH or id(value) in seen:
        return f"<{type(value).__name__} {'cycle' if id(value) in seen else 'too deep'}>"
    inner = seen | {id(value)}
    if isinstance(value, Mapping):
        return _redact_items(value, depth + 1, inner)
    items = [_redact("", item, depth + 1, inner) for item in value[:MAX_ITEMS]]
    if len(value) > MAX_ITEMS:
        items.append(f"… {len(value) - MAX_ITEMS} more items")
    return type(value)(items) if type(value) in {list, tuple} else items


def _redact_items(value: Mapping[Any, Any], depth: int, seen: frozenset[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, (k, v) in enumerate(value.items()):
        if n == MAX_ITEMS:
            out["…"] = f"{len(value) - MAX_ITEMS} more items"
            break
        name = _safe_str(k)
        out[name] = _redact(name, v, depth, seen)
    return out


def redact_value(key: str, value: Any) -> Any:
    """Redact one keyed value: wholesale under a sensitive key, else inside text.

    Mappings and sequences are redacted item by item, at most 8 levels deep and 100
    items wide (cycles end as ``"<dict cycle>"``); strings are cut at 16 KB; other
    objects become their redacted ``str()``. Never raises.
    """
    try:
        return _redact(key, value, 0, frozenset())
    except Exception:  # a mapping mutated while we read it, a hostile __len__ …
        return f"<unrepresentable {type(value).__name__}>"


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of *values* with every sensitive entry redacted (bounded as :func:`redact_value`)."""
    result = redact_value("", values)
    return result if isinstance(result, dict) else {"value": result}


def exception_attributes(error: BaseException, *, escaped: bool = False) -> dict[str, str | bool]:
    """OpenTelemetry's ``exception`` span-event attributes for *error*, message and stack trace redacted.

    .. versionadded:: 0.2.0
    """
    kind = type(error)
    try:
        stacktrace = "".join(traceback.format_exception(kind, error, error.__traceback__))
    except Exception:
        stacktrace = ""
    return {
        "exception.type": kind.__name__,
        "exception.message": _cut(redact_text(_safe_str(error))),
        "exception.stacktrace": _cut(redact_text(stacktrace)),
        "exception.escaped": escaped,
    }


# -- registered secrets -----------------------------------------------------------------

_GRAM = 8
_STRIDE = 9
#: Values at least this long are found through the gram index; shorter ones by one regex.
_LONG = _GRAM + _STRIDE - 1


class _Matcher:
    """Finds registered strings in text at a cost that does not grow with how many there are.

    A string of length ``L >= 16`` is indexed under its last nine 8-character grams
    (offsets ``L-16 … L-8``). Any occurrence of it in a text then covers exactly one
    text position that is a multiple of 9 at one of those offsets, so sampling the
    text every 9 characters and looking the 8 characters there up in a dict finds
    every occurrence: about ``len(text) / 9`` dict lookups whatever the number of
    strings. Suffix grams, not prefix ones, because tokens of one provider share
    their prefixes (``ghp_``, ``ya29.``, a JWT header) but not their random ends.
    The few shorter strings (passwords) go into one regex alternation.

    Mutations happen under the registry lock; :meth:`redact` reads without locking
    (dict lookups and tuple values are safe to read while another thread replaces them).
    """

    __slots__ = ("_counts", "_grams", "_short", "_short_pattern")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._grams: dict[str, tuple[tuple[str, int], ...]] = {}
        self._short: set[str] = set()
        self._short_pattern: re.Pattern[str] | None = None

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, value: str) -> None:
        count = self._counts.get(value, 0)
        self._counts[value] = count + 1
        if count:
            return
        if len(value) < _LONG:
            self._short.add(value)
            self._compile_short()
            return
        grams = self._grams
        for offset in range(len(value) - _LONG, len(value) - _GRAM + 1):
            gram = value[offset : offset + _GRAM]
            grams[gram] = (*grams.get(gram, ()), (value, offset))

    def remove(self, value: str) -> None:
        count = self._counts.get(value, 0)
        if count > 1:
            self._counts[value] = count - 1
            return
        if not count:
            return
        del self._counts[value]
        if len(value) < _LONG:
            self._short.discard(value)
            self._compile_short()
            return
        grams = self._grams
        for offset in range(len(value) - _LONG, len(value) - _GRAM + 1):
            gram = value[offset : offset + _GRAM]
            kept = tuple(entry for entry in grams.get(gram, ()) if entry != (value, offset))
            if kept:
                grams[gram] = kept
            else:
                grams.pop(gram, None)

    def _compile_short(self) -> None:
        alternatives = sorted(self._short, key=len, reverse=True)
        self._short_pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def redact(self, text: str) -> str:
        if not self._counts:
            return text
        found = self._find_long(text)
        pattern = self._short_pattern
        if pattern is not None:
            found.extend(match.span() for match in pattern.finditer(text))
        return _replace_spans(text, found) if found else text

    def _find_long(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        grams = self._grams
        if not grams or len(text) < _LONG:
            return found
        get = grams.get
        for j in range(0, len(text) - _GRAM + 1, _STRIDE):
            for value, offset in get(text[j : j + _GRAM], ()):
                start = j - offset
                if start >= 0 and text.startswith(value, start):
                    found.append((start, start + len(value)))
        return found


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """*text* with each of the (possibly overlapping) *spans* replaced by one ``[REDACTED]``."""
    spans.sort()
    pieces: list[str] = []
    done = 0
    for start, end in spans:
        if end <= done:
            continue
        if start >= done:
            pieces.extend((text[done:start], REDACTED))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _variants(value: str) -> tuple[str, ...]:
    """*value* and its percent-encoded spellings (as it appears in a URL or a form body)."""
    return tuple(dict.fromkeys((value, quote(value, safe=""), quote_plus(value, safe=""))))


class _Registry:
    """Which values are secret, and for how long; the :class:`_Matcher` finds them in text."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.matcher = _Matcher()
        self.permanent: set[str] = set()
        self.pins: dict[str, int] = {}
        self.rotating: OrderedDict[str, float] = OrderedDict()
        self.retirements: list[tuple[float, str]] = []
        # Owners that died, waiting to be unpinned under the lock (see release()).
        self.released: deque[str] = deque()

    def active(self, value: str) -> bool:
        return value in self.permanent or value in self.pins or value in self.rotating

    def enter(self, value: str) -> None:
        """Call before making *value* active (lock held)."""
        if not self.active(value):
            for variant in _variants(value):
                self.matcher.add(variant)

    def leave(self, value: str) -> None:
        """Call after *value* may have stopped being active (lock held)."""
        if not self.active(value):
            for variant in _variants(value):
                self.matcher.remove(variant)

    def retire_expired(self, now: float) -> None:
        heap = self.retirements
        while heap and heap[0][0] <= now:
            retire_at, value = heapq.heappop(heap)
            if self.rotating.get(value) == retire_at:
                del self.rotating[value]
                self.leave(value)

    def add_rotating(self, value: str, expires_at: float) -> None:
        retire_at = expires_at + RETIRE_AFTER_EXPIRY_S if math.isfinite(expires_at) else math.inf
        previous = self.rotating.get(value)
        self.enter(value)
        # A known expiry replaces an unknown one (the token response, then the Token built from it);
        # an unknown one never shortens a known one.
        if previous is None or previous == math.inf or (math.isfinite(retire_at) and retire_at > previous):
            self.rotating[value] = retire_at
            if math.isfinite(retire_at):
                heapq.heappush(self.retirements, (retire_at, value))
        self.rotating.move_to_end(value)
        while len(self.rotating) > MAX_ROTATING:
            oldest, _ = self.rotating.popitem(last=False)
            self.leave(oldest)
        if len(self.retirements) > 4 * MAX_ROTATING:
            # Entries of values re-registered or evicted pile up; rebuild from the live ones.
            self.retirements = [(t, v) for v, t in self.rotating.items() if math.isfinite(t)]
            heapq.heapify(self.retirements)

    def release(self, value: str) -> None:
        """An owner of *value* died: unpin it now if the lock is free, else at the next change.

        This runs from the garbage collector, on whichever thread allocated last, possibly
        one that holds the lock right now (in the middle of a registration): waiting for
        the lock there would wait forever, so the unpin is queued and the queue drained by
        the next holder. A queued value stays redacted a little longer, never shorter.
        """
        self.released.append(value)
        if self.lock.acquire(blocking=False):
            try:
                self.drain_released()
            finally:
                self.lock.release()

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the lock for a change, first unpinning the values of owners that died meanwhile."""
        with self.lock:
            self.drain_released()
            yield

    def drain_released(self) -> None:
        """Unpin the values of owners that died (lock held)."""
        released = self.released
        while released:
            value = released.popleft()
            count = self.pins.get(value, 0)
            if count > 1:
                self.pins[value] = count - 1
            else:
                self.pins.pop(value, None)
                self.leave(value)


_registry = _Registry()


def register_secret(value: str | None, *, owner: object | None = None, expires_at: float | None = None) -> None:
    """Redact *value* wherever it appears in logs, span attributes, span events and exception text.

    Args:
        value: The secret. Values shorter than 4 characters are ignored (they would
            redact ordinary text).
        owner: Keep *value* redacted exactly while this object lives (it must accept
            weak references): a client's secret, a password from a connection URL.
        expires_at: A rotating credential's expiry (epoch seconds): it stays redacted
            until 5 minutes after (``RETIRE_AFTER_EXPIRY_S``). At most 4,096 rotating
            values are kept (``MAX_ROTATING``); a refresh storm retires the least
            recently registered ones first, never an owned or permanent one.

    Without *owner* or *expires_at* the value stays redacted for the life of the
    process (or until :func:`unregister_secret`). Registered values are also found
    percent-encoded, and finding them costs the same whether 1 or 10,000 are registered.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *owner* and *expires_at*; a plain registration is never evicted.
    """
    if expires_at is not None:
        expires_at = check.number(expires_at, "expires_at", owner="register_secret")
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    if owner is not None:
        try:
            weakref.finalize(owner, _registry.release, value)
        except TypeError:
            from ._exceptions import ConfigurationError

            msg = f"register_secret(owner=...) needs an object that accepts weak references, got {type(owner).__name__}"
            raise ConfigurationError(msg) from None
    registry = _registry
    with registry.changing():
        registry.retire_expired(wall())
        if owner is not None:
            registry.enter(value)
            registry.pins[value] = registry.pins.get(value, 0) + 1
        elif expires_at is not None:
            registry.add_rotating(value, float(expires_at))
        else:
            registry.enter(value)
            registry.permanent.add(value)


def _register_rotating(values: Iterable[str | None], expires_at: float | None) -> None:
    """Register credentials that rotate (tokens, codes); ``None`` expiry: kept until evicted by newer ones."""
    registry = _registry
    with registry.changing():
        registry.retire_expired(wall())
        for value in values:
            if value and len(value) >= _MIN_SECRET_LENGTH:
                registry.add_rotating(value, math.inf if expires_at is None else float(expires_at))


def unregister_secret(value: str) -> None:
    """Stop redacting *value* registered without an owner (it stays redacted while an owner holds it).

    .. versionadded:: 0.2.0
    """
    with _registry.changing():
        _registry.permanent.discard(value)
        _registry.rotating.pop(value, None)
        _registry.leave(value)


def registered_count() -> int:
    """How many distinct strings (values and their encoded spellings) are being looked for."""
    return len(_registry.matcher)
