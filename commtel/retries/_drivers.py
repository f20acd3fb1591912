"""The retry loops: one sync, one async (parallel line for line), and the block form.

Each loop runs the attempts, hands every outcome to the sans-I/O :class:`RetryCall`
and sleeps what it says. They are the only retry loops: a composite guard passes
*around*, which runs one attempt its own way (breaker, limiter, timeout), and gets
everything else - classification, backoff, budget, deadline, events - from here.
The block form (:class:`RetryingBlock`) drives the same core through ``for``/``async
for``. The first attempt's success path allocates nothing: no call state is built
until something fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeAlias, TypeVar

from typing_extensions import Self

from .. import _timing
from ._core import RetryCall, RetryCore


__all__ = ["Around", "AsyncAround", "Attempt", "RetryingBlock", "call_async", "call_sync"]

_T = TypeVar("_T")

#: Runs one attempt: ``around(fn, args, kwargs)`` calls ``fn(*args, **kwargs)`` with
#: whatever wraps each attempt (a breaker admission, a limiter unit, a timeout).
Around: TypeAlias = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]
#: The async :data:`Around`: returns an awaitable of the attempt's result.
AsyncAround: TypeAlias = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Awaitable[Any]]


def call_sync(  # noqa: PLR0917 - positional: keyword arguments cost ~0.1 µs a call here
    core: RetryCore,
    fn: Callable[..., _T],
    instance: object,  # noqa: ARG001 - wrapt's signature
    args: Any,
    kwargs: Any,
    around: Around | None = None,
    return_exhausted: bool = False,  # noqa: FBT001, FBT002 - positional, see call_sync
) -> _T:
    """Call ``fn(*args, **kwargs)`` with retries, sleeping between attempts.

    The first four arguments after *core* are wrapt's (*instance* unused: *fn* is
    already bound), so a decorated function calls the loop without an extra frame.

    Args:
        core: The retry decisions.
        fn: The function to call.
        instance: Unused (wrapt's).
        args: Positional arguments of *fn*.
        kwargs: Keyword arguments of *fn*.
        around: Runs each attempt instead of a plain call (see :data:`Around`).
        return_exhausted: When retries run out on a rejected result, return it instead
            of raising :class:`~commtel.RetryExhausted`.
    """
    started = _timing.monotonic() if core.timed else 0.0
    call: RetryCall | None = None
    while True:
        try:
            result = fn(*args, **kwargs) if around is None else around(fn, args, kwargs)
        except Exception as exc:
            call = call or core.begin(started)
            delay = call.on_error(exc, _timing.monotonic())
            if delay is None:
                raise
        else:
            reason = core.classifier.result(result) if core.checks_results else None
            if reason is None:
                if call is None:
                    core.first_try()
                else:
                    call.succeeded()
                return result
            call = call or core.begin(started)
            delay = call.on_result(result, reason, _timing.monotonic(), return_exhausted=return_exhausted)
            if delay is None:
                return result
        _timing.sleep(delay)


async def call_async(  # noqa: PLR0917 - positional, see call_sync
    core: RetryCore,
    fn: Callable[..., Awaitable[_T]],
    instance: object,  # noqa: ARG001 - wrapt's signature
    args: Any,
    kwargs: Any,
    around: AsyncAround | None = None,
    return_exhausted: bool = False,  # noqa: FBT001, FBT002 - positional, see call_sync
) -> _T:
    """Await ``fn(*args, **kwargs)`` with retries, sleeping between attempts (see :func:`call_sync`)."""
    started = _timing.monotonic() if core.timed else 0.0
    call: RetryCall | None = None
    while True:
        try:
            result = await (fn(*args, **kwargs) if around is None else around(fn, args, kwargs))
        except Exception as exc:
            call = call or core.begin(started)
            delay = call.on_error(exc, _timing.monotonic())
            if delay is None:
                raise
        else:
            reason = core.classifier.result(result) if core.checks_results else None
            if reason is None:
                if call is None:
                    core.first_try()
                else:
                    call.succeeded()
                return result
            call = call or core.begin(started)
            delay = call.on_result(result, reason, _timing.monotonic(), return_exhausted=return_exhausted)
            if delay is None:
                return result
        await _timing.asleep(delay)


class Attempt:
    """One attempt of a retried block: ``with attempt:`` runs it and records its outcome.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_block", "number")

    def __init__(self, block: RetryingBlock, number: int) -> None:
        self._block = block
        #: 1 for the first attempt.
        self.number = number

    def __repr__(self) -> str:
        return f"Attempt(number={self.number})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self._block._outcome(exc)


class RetryingBlock:
    """Iterate to retry a block of code: ``for attempt in block: with attempt: ...``.

    Also ``async for``, where the waits are awaited. Only exceptions are judged (a block
    has no return value); the last original exception propagates when retries run out.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_call", "_core", "_delay", "_done", "_number", "_started")

    def __init__(self, core: RetryCore) -> None:
        self._core = core
        self._call: RetryCall | None = None
        self._delay: float | None = None
        self._done = False
        self._number = 0
        self._started = 0.0

    def __repr__(self) -> str:
        return f"RetryingBlock({self._core.operation!r}, attempt={self._number})"

    def _outcome(self, exc: BaseException | None) -> bool:
        if exc is None:
            self._done = True
            if self._call is None:
                self._core.first_try()
            else:
                self._call.succeeded()
            return False
        if not isinstance(exc, Exception):
            return False
        self._call = self._call or self._core.begin(self._started)
        self._delay = self._call.on_error(exc, _timing.monotonic())
        return self._delay is not None

    def _next_attempt(self) -> Attempt:
        if self._done or (self._number and self._delay is None):
            raise StopIteration
        if self._number == 0:
            self._started = _timing.monotonic() if self._core.timed else 0.0
        self._number += 1
        self._delay = None
        return Attempt(self, self._number)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Attempt:
        if self._delay:
            _timing.sleep(self._delay)
        return self._next_attempt()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Attempt:
        if self._delay:
            await _timing.asleep(self._delay)
        try:
            return self._next_attempt()
        except StopIteration:
            raise StopAsyncIteration from None
