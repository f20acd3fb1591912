"""Optional dependencies: which extra installs each, and the ImportError that says so.

Every import of an optional package goes through :func:`requires` (or is checked up
front by :func:`ensure`), so a missing one fails with the ``pip install`` command
that fixes it instead of a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib.util

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType


__all__ = ["EXTRAS", "ensure", "missing", "requires"]

#: Optional module -> the extras of ``commtel`` that install it (the first is suggested).
EXTRAS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "redis": ("redis",),
        "sqlalchemy": ("sql", "postgres"),
        "greenlet": ("sql", "postgres"),
        "aiosqlite": ("sql",),
        "psycopg": ("postgres",),
        "authlib": ("oauth",),
        "httpx": ("httpx", "oauth"),
        "requests": ("requests",),
        "aiohttp": ("aiohttp",),
        "opentelemetry.instrumentation": ("httpx", "requests", "aiohttp"),
        "opentelemetry.exporter.otlp.proto.grpc": ("grpc",),
        "grpc": ("grpc",),
        "rich": ("rich",),
        "aiosmtpd": ("simulator",),
    }
)


def _extras_of(module: str) -> tuple[str, ...]:
    """The extras providing *module* (or the package it belongs to); empty if it is not optional."""
    for name, extras in EXTRAS.items():
        if module == name or module.startswith(name + "."):
            return extras
    return ()


def missing(module: str) -> ModuleNotFoundError:
    """The error for an optional *module* that is not installed, naming the extra to install.

    Raises:
        KeyError: *module* is not an optional dependency of commtel.
    """
    extras = _extras_of(module)
    if not extras:
        raise KeyError(module)
    package = module if module in EXTRAS else module.split(".", 1)[0]
    which = " or ".join(repr(extra) for extra in extras)
    msg = f"{package!r} is not installed; it comes with commtel's {which} extra: pip install 'commtel[{extras[0]}]'"
    return ModuleNotFoundError(msg, name=module)


@contextmanager
def requires(*modules: str) -> Iterator[None]:
    """Turn a ``ModuleNotFoundError`` of one of *modules* raised in the block into :func:`missing`'s.

    Example::

        with requires("redis"):
            import redis
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        for module in modules:
            if name == module or name.startswith(module + ".") or module.startswith(name + "."):
                raise missing(module) from exc
        raise


def ensure(*modules: str) -> None:
    """Raise :func:`missing`'s error now if one of *modules* is not installed (nothing is imported)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            raise missing(module)
