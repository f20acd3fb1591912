"""commtel.compat holds the older spellings; the main API has one name per concept."""

from __future__ import annotations

import subprocess
import sys

import pytest

import commtel
import commtel.compat
import commtel.oauth
import commtel.progress
import commtel.retries
import commtel.telemetry


def test_every_compat_name_resolves() -> None:
    """Each name in commtel.compat.__all__ loads, and dir() lists it."""
    for name in commtel.compat.__all__:
        assert getattr(commtel.compat, name) is not None, name
    assert set(commtel.compat.__all__) <= set(dir(commtel.compat))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = commtel.compat.Nope  # type: ignore[attr-defined]


_MOVED = [
    ("RateLimiter", "can_proceed"),
    ("RateLimiter", "is_allowed"),
    ("RateLimiter", "wait_time"),
    ("RateLimiter", "reset_limits"),
    ("GlobalRateLimiter", "can_proceed"),
    ("ErrorTracker", "get_summary"),
    ("PlatformContextManager", "filter_posts_by_platform"),
]
_MODULE_NAMES = [
    (commtel.retries, "async_retry"),
    (commtel.retries, "retry_with_backoff"),
    (commtel.retries, "retry_with_rate_limit"),
    (commtel.telemetry, "MetricsCollector"),
    (commtel.oauth, "TokenManager"),
    (commtel.oauth, "OAuthManager"),
    (commtel.oauth, "TokenInfo"),
]


@pytest.mark.parametrize(("cls", "method"), _MOVED)
def test_older_methods_live_only_on_the_compat_classes(cls: str, method: str) -> None:
    """The main class has no older method name; its commtel.compat counterpart has it."""
    main = getattr(commtel, cls, None) or getattr(commtel.context, cls)
    assert not hasattr(main, method)
    assert callable(getattr(getattr(commtel.compat, cls), method))


@pytest.mark.parametrize(("module", "name"), _MODULE_NAMES, ids=[name for _, name in _MODULE_NAMES])
def test_older_names_live_only_in_compat(module: object, name: str) -> None:
    """The main packages export no older name; commtel.compat does."""
    assert not hasattr(module, name)
    assert name in commtel.compat.__all__


def test_main_retry_config_takes_only_its_own_names() -> None:
    """initial_delay / exponential_base / retry_exceptions are compat spellings only."""
    for option in ("initial_delay", "exponential_base", "retry_exceptions"):
        with pytest.raises(TypeError, match=option):
            commtel.RetryConfig(**{option: 1.0})  # type: ignore[arg-type]


def test_importing_compat_loads_no_optional_dependency() -> None:
    """``import commtel.compat`` is lazy: no HTTP client, authlib, SQLAlchemy, redis or rich until a name is used."""
    code = (
        "import sys, commtel.compat\n"
        "heavy = ('httpx', 'requests', 'authlib', 'sqlalchemy', 'redis', 'rich', 'aiohttp')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
