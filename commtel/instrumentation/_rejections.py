"""commtel's rejections, raised inside a client library, as errors of that library too.

When a breaker or a limiter refuses a request an instrumented client was asked to
send, the program gets an exception it already handles: an instance of the commtel
error (:class:`~commtel.CircuitOpenError`, :class:`~commtel.RateLimitExceeded`,
:class:`~commtel.BackendError`) *and* of the library's own class for "the request could
not be sent" (``httpx.TransportError``, ``requests.ConnectionError``,
``aiohttp.ClientConnectionError``). ``except httpx.HTTPError`` and
``except commtel.CircuitOpenError`` both catch it, with the commtel error's attributes
(``breaker``, ``retry_after_s`` …) and the library's (``request`` …).
"""

from __future__ import annotations

import threading

from typing import Any

from .._exceptions import CommtelError, ConfigurationError, RetryBudgetExhausted, RetryExhausted


__all__ = ["ClientErrors", "is_rejection"]


def is_rejection(error: BaseException) -> bool:
    """Whether *error* is commtel refusing a request (not a stop of retrying, nor a configuration error)."""
    return isinstance(error, CommtelError) and not isinstance(
        error, ConfigurationError | RetryExhausted | RetryBudgetExhausted
    )


class ClientErrors:
    """Makes, once per commtel error class, its subclass that is also a *base* of one client library.

    Args:
        base: The library's exception class the rejections also derive from.
        module: The module the classes say they belong to (the instrumentor's).
    """

    __slots__ = ("_base", "_classes", "_lock", "_module")

    def __init__(self, base: type[Exception], module: str) -> None:
        self._base = base
        self._module = module
        self._classes: dict[type[CommtelError], type[Exception]] = {}
        self._lock = threading.Lock()

    def _class_for(self, kind: type[CommtelError]) -> type[Exception]:
        found = self._classes.get(kind)
        if found is None:
            with self._lock:
                found = self._classes.get(kind)
                if found is None:
                    found = type(
                        kind.__name__,
                        (kind, self._base),
                        {
                            "__module__": self._module,
                            "__doc__": f"{kind.__doc__ or kind.__name__}\n\nAlso a ``{self._base.__module__}."
                            f"{self._base.__qualname__}``, raised inside that library's calls.",
                        },
                    )
                    self._classes[kind] = found
        return found

    def convert(self, error: CommtelError, **context: Any) -> Exception:
        """*error* as an instance of the library's class too; *context* goes to the library's ``__init__``.

        The library side is initialized by its own ``__init__`` (message and *context*,
        e.g. httpx's ``request=``); the commtel side gets *error*'s attributes.
        """
        cls = self._class_for(type(error))
        converted = cls.__new__(cls)
        self._base.__init__(converted, str(error), **context)
        vars(converted).update(vars(error))
        converted.__cause__ = error.__cause__
        converted.__traceback__ = error.__traceback__
        return converted
