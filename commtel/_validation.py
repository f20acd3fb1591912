"""Validation of constructor arguments, shared by every component: one wording, one set of rules.

Each checker returns the normalized value or raises :class:`~commtel.ConfigurationError`
whose message names the owner, the argument, what it must be (the fix) and what it
got: ``RetryConfig.max_attempts must be a whole number >= 1 (1 = no retries), got nan``.

Rules for quantities (counts, durations, rates, ratios): NaN and infinities are never
accepted (say ``None`` where "no limit" is meant), negatives never, booleans are not
numbers, strings are not numbers (a value read from TOML or the environment is
converted by its reader first, and a failed conversion is reported the same way).
"""

from __future__ import annotations

import inspect
import math

from collections.abc import Callable, Collection, Iterable
from datetime import timedelta
from typing import Any, TypeVar, overload

from ._exceptions import ConfigurationError


__all__ = [
    "callable_",
    "constructor_options",
    "duration",
    "exception_types",
    "fraction",
    "instance",
    "number",
    "one_of",
    "status_codes",
    "text",
    "whole",
]

_T = TypeVar("_T")


def _fail(owner: str, name: str, requirement: str, value: object) -> ConfigurationError:
    where = f"{owner}.{name}" if owner else name
    return ConfigurationError(f"{where} must be {requirement}, got {value!r}")


def _real(value: object) -> float | None:
    """*value* as a float if it is a real number (bool excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf


def _number_text(minimum: float, *, strict: bool, maximum: float | None) -> str:
    if strict and minimum == 0 and maximum is None:
        return "a positive finite number"
    low = f"> {minimum:g}" if strict else f">= {minimum:g}"
    return f"a finite number {low}" + (f" and <= {maximum:g}" if maximum is not None else "")


@overload
def number(
    value: object,
    name: str,
    *,
    owner: str,
    minimum: float = ...,
    strict: bool = ...,
    maximum: float | None = ...,
    hint: str = ...,
) -> float: ...
@overload
def number(
    value: object,
    name: str,
    *,
    owner: str,
    minimum: float = ...,
    strict: bool = ...,
    maximum: float | None = ...,
    optional: bool,
    hint: str = ...,
) -> float | None: ...
def number(
    value: object,
    name: str,
    *,
    owner: str,
    minimum: float = 0.0,
    strict: bool = False,
    maximum: float | None = None,
    optional: bool = False,
    hint: str = "",
) -> float | None:
    """A finite real number within bounds (``>= minimum``, or ``> minimum`` when *strict*).

    Args:
        value: What was passed.
        name: The argument's name, as the caller spelled it.
        owner: The class or function it was passed to.
        minimum: Lowest accepted value.
        strict: Exclude *minimum* itself.
        maximum: Highest accepted value, if any.
        optional: Accept ``None`` (returned as is).
        hint: What the bounds mean, added to the message.
    """
    if value is None and optional:
        return None
    out = _real(value)
    if (
        out is None
        or not math.isfinite(out)
        or out < minimum
        or (strict and out == minimum)
        or (maximum is not None and out > maximum)
    ):
        requirement = _number_text(minimum, strict=strict, maximum=maximum)
        raise _fail(owner, name, requirement + (f" ({hint})" if hint else ""), value)
    return out


@overload
def duration(value: object, name: str, *, owner: str, positive: bool = ...) -> float: ...
@overload
def duration(value: object, name: str, *, owner: str, positive: bool = ..., optional: bool) -> float | None: ...
def duration(value: object, name: str, *, owner: str, positive: bool = False, optional: bool = False) -> float | None:
    """Seconds as a finite float (``int``, ``float`` or ``timedelta``), ``>= 0`` or ``> 0`` when *positive*."""
    if value is None and optional:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else _real(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        requirement = "a finite duration in seconds (float or timedelta) " + ("> 0" if positive else ">= 0")
        if optional:
            requirement += ", or None for no limit"
        raise _fail(owner, name, requirement, value)
    return seconds


@overload
def whole(value: object, name: str, *, owner: str, minimum: int = ..., hint: str = ...) -> int: ...
@overload
def whole(
    value: object, name: str, *, owner: str, minimum: int = ..., hint: str = ..., optional: bool
) -> int | None: ...
def whole(
    value: object, name: str, *, owner: str, minimum: int = 1, hint: str = "", optional: bool = False
) -> int | None:
    """A whole number (``int``, or a float with no fraction such as TOML's ``3.0``) ``>= minimum``."""
    if value is None and optional:
        return None
    out = _real(value)
    if out is None or not math.isfinite(out) or out != int(out) or out < minimum:
        requirement = "a positive integer" if minimum == 1 else f"a whole number >= {minimum}"
        requirement += f" ({hint})" if hint else ""
        raise _fail(owner, name, requirement, value)
    return int(out)


def fraction(value: object, name: str, *, owner: str, strict: bool = False) -> float:
    """A ratio within ``[0, 1]`` (``(0, 1]`` when *strict*)."""
    out = _real(value)
    if out is None or not (0 <= out <= 1) or (strict and out == 0):
        raise _fail(owner, name, "a fraction " + ("in (0, 1]" if strict else "in [0, 1]"), value)
    return out


def one_of(value: _T, name: str, choices: Collection[Any], *, owner: str) -> _T:
    """*value* if it is one of *choices* (hashable values only)."""
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok:
        raise _fail(owner, name, f"one of {', '.join(map(repr, choices))}", value)
    return value


def instance(
    value: object,
    name: str,
    types: type | tuple[type, ...],
    *,
    owner: str,
    optional: bool = False,
    what: str = "",
) -> Any:
    """*value* if it is an instance of *types* (or ``None`` when *optional*)."""
    if (value is None and optional) or isinstance(value, types):
        return value
    if not what:
        names = types if isinstance(types, tuple) else (types,)
        what = "a " + " or ".join(t.__name__ for t in names)
    raise _fail(owner, name, what + (" or None" if optional else ""), value)


def text(value: object, name: str, *, owner: str, empty: bool = True, optional: bool = False) -> Any:
    """A string (non-empty unless *empty*), or ``None`` when *optional*."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not empty and not value):
        raise _fail(owner, name, "a string" if empty else "a non-empty string", value)
    return value


def callable_(value: object, name: str, *, owner: str, optional: bool = False) -> Any:
    """A callable, or ``None`` when *optional*."""
    if (value is None and optional) or callable(value):
        return value
    raise _fail(owner, name, "a callable" + (" or None" if optional else ""), value)


def status_codes(value: object, name: str, *, owner: str) -> frozenset[int]:
    """HTTP status codes: an iterable of whole numbers within 100-599."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _fail(owner, name, "a collection of HTTP status codes (whole numbers 100-599)", value)
    checked: set[int] = set()
    for code in value:
        number = _real(code)
        if number is None or not math.isfinite(number) or number != int(number) or not 100 <= number <= 599:
            raise _fail(owner, name, "a collection of HTTP status codes (whole numbers 100-599)", value)
        checked.add(int(number))
    return frozenset(checked)


def exception_types(value: object, name: str, *, owner: str) -> tuple[type[BaseException], ...] | Any:
    """Exception classes (one or a collection), or a predicate on an exception."""
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if isinstance(value, (tuple, list, set, frozenset)):
        if all(isinstance(t, type) and issubclass(t, BaseException) for t in value):
            return tuple(value)
    elif callable(value):
        return value
    raise _fail(owner, name, "an exception class, a tuple of them, or a predicate on an exception", value)


def constructor_options(cls: type, first: object, checker: Callable[..., object], options: dict[str, Any]) -> None:
    """Validate ``cls(first, **options)``'s keyword *options* with *checker*, building nothing.

    Raises:
        TypeError: An option the constructor does not take.
        ConfigurationError: An invalid value (from *checker*, given the options it names, defaults filled in).
    """
    bound = inspect.signature(cls).bind(first, **options)
    bound.apply_defaults()
    checker(**{name: bound.arguments[name] for name in inspect.signature(checker).parameters})
