"""The OpenTelemetry HTTP-client settings users set for contrib, honoured by commtel's instrumentors.

Read once per ``instrument()``, with contrib's names and meanings:

* ``OTEL_PYTHON_{HTTPX,REQUESTS,AIOHTTP_CLIENT}_EXCLUDED_URLS``, else
  ``OTEL_PYTHON_EXCLUDED_URLS``: comma-separated regular expressions, *searched* in the
  full URL; a matching request is left alone entirely (no span, no propagation headers,
  no policy), as contrib leaves it untraced.
* ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` / ``…_CLIENT_RESPONSE``:
  comma-separated header names or regular expressions (case-insensitive, whole name);
  matching headers become ``http.request.header.<name>`` / ``http.response.header.<name>``
  span attributes (lower-case name, a list of values).
* ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS``: header-name expressions
  whose captured values are replaced by ``[REDACTED]`` — and so is every header whose
  name commtel knows to hold a credential (``Authorization``, ``Cookie``, ``X-Api-Key`` …),
  listed or not; registered secrets are redacted inside any other value.
* ``OTEL_SEMCONV_STABILITY_OPT_IN``: commtel always emits the stable HTTP conventions;
  ``http/dup`` adds the old attribute names (``http.method``, ``http.url``,
  ``net.peer.name``, ``net.peer.port``, ``http.status_code``) for dashboards that still
  read them.
"""

from __future__ import annotations

import os
import re

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .._exceptions import ConfigurationError
from .._redaction import REDACTED, is_sensitive_key, redact_text


__all__ = [
    "ENV_CAPTURE_REQUEST_HEADERS",
    "ENV_CAPTURE_RESPONSE_HEADERS",
    "ENV_EXCLUDED_URLS",
    "ENV_SANITIZE_FIELDS",
    "ENV_SEMCONV_OPT_IN",
    "HttpSettings",
]

#: Generic excluded-URL variable; ``OTEL_PYTHON_<LIBRARY>_EXCLUDED_URLS`` wins over it.
ENV_EXCLUDED_URLS = "OTEL_PYTHON_EXCLUDED_URLS"
ENV_CAPTURE_REQUEST_HEADERS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"
ENV_CAPTURE_RESPONSE_HEADERS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE"
ENV_SANITIZE_FIELDS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
ENV_SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


def _pattern(value: str | None, where: str, flags: int = 0) -> re.Pattern[str] | None:
    """One alternation of the comma-separated expressions in *value* (``None`` when empty)."""
    parts = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not parts:
        return None
    try:
        return re.compile("|".join(f"(?:{part})" for part in parts), flags)
    except re.error as exc:
        msg = f"{where}={value!r} is not a comma-separated list of regular expressions: {exc}"
        raise ConfigurationError(msg) from None


def _header_items(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    multi = getattr(headers, "multi_items", None)  # httpx.Headers keeps repeated headers apart there
    if multi is not None:
        return multi()  # type: ignore[no-any-return]
    return headers.items() if isinstance(headers, Mapping) else headers


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What one instrumentor leaves out, captures and names (see the module documentation)."""

    excluded: re.Pattern[str] | None = None
    request_headers: re.Pattern[str] | None = None
    response_headers: re.Pattern[str] | None = None
    sanitized: re.Pattern[str] | None = None
    old_semconv: bool = False

    @classmethod
    def from_env(
        cls, library: str, *, excluded_urls: str | None = None, environ: Mapping[str, str] | None = None
    ) -> HttpSettings:
        """The settings of the instrumentor of *library* (contrib's name: ``HTTPX``, ``REQUESTS``, ``AIOHTTP_CLIENT``).

        Args:
            library: The infix of ``OTEL_PYTHON_<LIBRARY>_EXCLUDED_URLS``.
            excluded_urls: Excluded URLs given in code (``instrument(excluded_urls=...)``), over the environment.
            environ: The environment (default ``os.environ``).

        Raises:
            ConfigurationError: A variable holds an invalid regular expression (named).
        """
        env = os.environ if environ is None else environ
        own = f"OTEL_PYTHON_{library}_EXCLUDED_URLS"
        if excluded_urls is not None:
            excluded, where = excluded_urls, "excluded_urls"
        elif env.get(own) is not None:
            excluded, where = env[own], own
        else:
            excluded, where = env.get(ENV_EXCLUDED_URLS, ""), ENV_EXCLUDED_URLS
        opt_in = {part.strip() for part in env.get(ENV_SEMCONV_OPT_IN, "").split(",")}
        return cls(
            excluded=_pattern(excluded, where),
            request_headers=_pattern(env.get(ENV_CAPTURE_REQUEST_HEADERS), ENV_CAPTURE_REQUEST_HEADERS, re.IGNORECASE),
            response_headers=_pattern(
                env.get(ENV_CAPTURE_RESPONSE_HEADERS), ENV_CAPTURE_RESPONSE_HEADERS, re.IGNORECASE
            ),
            sanitized=_pattern(env.get(ENV_SANITIZE_FIELDS), ENV_SANITIZE_FIELDS, re.IGNORECASE),
            old_semconv="http/dup" in opt_in,
        )

    def excludes(self, url: str) -> bool:
        """Whether requests to *url* are left alone."""
        return self.excluded is not None and self.excluded.search(url) is not None

    def _captured(
        self, pattern: re.Pattern[str], prefix: str, headers: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> dict[str, list[str]]:
        captured: dict[str, list[str]] = {}
        sanitized = self.sanitized
        for name, value in _header_items(headers):
            if pattern.fullmatch(name) is None:
                continue
            if is_sensitive_key(name) or (sanitized is not None and sanitized.search(name) is not None):
                value = REDACTED  # noqa: PLW2901 - the captured value, replaced
            else:
                value = redact_text(str(value))  # noqa: PLW2901
            captured.setdefault(f"{prefix}{name.lower()}", []).append(value)
        return captured

    def request_attributes(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, list[str]]:
        """``http.request.header.*`` attributes of the captured request headers."""
        if self.request_headers is None:
            return {}
        return self._captured(self.request_headers, "http.request.header.", headers)

    def response_attributes(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, list[str]]:
        """``http.response.header.*`` attributes of the captured response headers."""
        if self.response_headers is None:
            return {}
        return self._captured(self.response_headers, "http.response.header.", headers)
