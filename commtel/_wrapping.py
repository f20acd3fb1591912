"""The surface of a component that wraps calls: ``call``, ``acall`` and use as a decorator.

A component names its two drivers in ``_drivers``, sync then async, each with wrapt's
wrapper signature after the component: ``driver(component, fn, instance, args, kwargs)``.
``call``/``acall`` pass no instance (*fn* is already bound); the decorator hands the driver
to wrapt bound to the component, so a decorated function reaches it with no frame between.
"""

from __future__ import annotations

import functools
import inspect

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, ParamSpec, TypeVar

import wrapt


__all__ = ["Driver", "WrapsCalls"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

#: ``driver(component, fn, instance, args, kwargs)``: one call of *fn* through the component.
Driver = Callable[[Any, Callable[..., Any], object, Any, Any], Any]


class WrapsCalls:
    """``call``, ``acall`` and ``@component`` over the component's ``_drivers``."""

    __slots__ = ()

    #: The sync and the async driver.
    _drivers: ClassVar[tuple[Driver, Driver]]

    def call(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Call ``fn(*args, **kwargs)`` through this component (the class says what it adds and raises).

        .. versionadded:: 0.1.0
        """
        return self._drivers[0](self, fn, None, args, kwargs)  # type: ignore[no-any-return]

    async def acall(self, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Await ``fn(*args, **kwargs)`` through this component (see :meth:`call`).

        .. versionadded:: 0.1.0
        """
        return await self._drivers[1](self, fn, None, args, kwargs)  # type: ignore[no-any-return]

    def __call__(self, fn: _F, /) -> _F:
        """Decorate a sync or async function or method (chosen once, here).

        .. versionadded:: 0.1.0
        """
        driver = self._drivers[1] if inspect.iscoroutinefunction(fn) else self._drivers[0]
        return wrapt.FunctionWrapper(fn, functools.partial(driver, self))  # type: ignore[return-value]
