"""Lazy public names: a package lists where each name lives; the module loads on first access.

``import commtel`` then costs only the packages' ``__init__`` files; the OpenTelemetry
SDK, prometheus_client and every optional dependency load when a name that needs them
is first used.
"""

from __future__ import annotations

import importlib

from collections.abc import Callable, Iterable, Mapping
from typing import Any


__all__ = ["exports"]


def exports(
    package: str,
    namespace: dict[str, Any],
    modules: Mapping[str, Iterable[str]],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for *package*, whose public names live in *modules*.

    Args:
        package: The package's ``__name__``.
        namespace: The package's ``globals()``; a loaded name is cached there.
        modules: Module (relative to *package*, like ``"._limiter"``, or absolute) -> the
            public names it holds.
        submodules: Public submodules loaded on attribute access (``commtel.errors``).

    Returns:
        The module-level ``__getattr__`` and ``__dir__`` to assign in the package.
    """

    names = {name: module for module, held in modules.items() for name in held}
    packages = frozenset(submodules)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module protocol's name
        where = names.get(name)
        if where is not None:
            value = getattr(importlib.import_module(where, package), name)
        elif name in packages:
            value = importlib.import_module(f"{package}.{name}")
        else:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module protocol's name
        return sorted({*namespace, *names, *packages})

    return __getattr__, __dir__
