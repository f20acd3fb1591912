"""Platform context tied to a database: set it from a user's platform connection, filter queries by it.

:class:`PlatformContext` says who and where the current work is for. It lives in
contextvars (isolated per thread and asyncio task), :func:`platform_context` sets
it for a block, and the telemetry layer shows it on every span and log line.
:class:`PlatformContextManager` establishes it from a
SQLAlchemy session (checking that the connection belongs to the user), and
:func:`filter_by_platform` narrows an ORM ``Query`` or a 2.0 ``select()``
to the current platform connection and refuses to run unfiltered when no
context is set.
"""

from __future__ import annotations

import contextvars

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import CommtelError


if TYPE_CHECKING:
    from contextvars import Token

    from sqlalchemy.orm import Session


__all__ = [
    "PlatformContext",
    "PlatformContextError",
    "PlatformContextManager",
    "current_platform",
    "filter_by_platform",
    "get_platform_context",
    "platform_context",
]

_Q = TypeVar("_Q")
_INFO_ATTRS = ("instance_url", "username", "name")


@dataclass(frozen=True, slots=True)
class PlatformContext:
    """Who and where the current work is for: shown on spans and log lines.

    Args:
        platform: Platform name (``"twitter"``, ``"email"`` …); a low-cardinality label.
        user_id: The user the work is done for (never a metric label).
        platform_connection_id: The user's connection/account on that platform.
        session_id: The session the work belongs to.
        info: Extra platform information (instance URL, username …).

    .. versionadded:: 0.1.0
    """

    platform: str | None = None
    user_id: int | str | None = None
    platform_connection_id: int | str | None = None
    session_id: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        """True when both a user and a platform connection are known."""
        return self.user_id is not None and self.platform_connection_id is not None

    @property
    def platform_info(self) -> dict[str, Any]:
        """Platform information as a plain dict (platform type first)."""
        return {"platform_type": self.platform, **self.info}


_platform: contextvars.ContextVar[PlatformContext | None] = contextvars.ContextVar(
    "commtel_platform_context", default=None
)


def get_platform_context() -> PlatformContext | None:
    """The current :class:`PlatformContext`, or ``None``.

    .. versionadded:: 0.1.0
    """
    return _platform.get()


def current_platform() -> str | None:
    """The current platform name, or ``None``."""
    ctx = _platform.get()
    return None if ctx is None else ctx.platform


@contextmanager
def platform_context(
    platform: str | None = None,
    *,
    user_id: int | str | None = None,
    platform_connection_id: int | str | None = None,
    session_id: str | None = None,
    info: Mapping[str, Any] | None = None,
) -> Iterator[PlatformContext]:
    """Run the block under a :class:`PlatformContext` (thread- and task-isolated).

    .. versionadded:: 0.1.0
    """
    ctx = PlatformContext(platform, user_id, platform_connection_id, session_id, info or {})
    token = _platform.set(ctx)
    try:
        yield ctx
    finally:
        _platform.reset(token)


class PlatformContextError(CommtelError):
    """A platform context cannot be established, or is needed and missing.

    .. versionadded:: 0.1.0
    """


def _column(entity: Any, name: str) -> Any:
    columns = getattr(entity, "c", None)  # a Table or an aliased selectable
    if columns is not None:
        return getattr(columns, name, None)
    return getattr(entity, name, None)


def filter_by_platform(
    query: _Q, entity: Any = None, *, context: PlatformContext | None = None, user_id: int | str | None = None
) -> _Q:
    """Narrow *query* to rows of the current platform connection.

    Works with a legacy ``session.query(Model)`` and a 2.0 ``select(Model)`` (or a
    Core ``select(table)``). The rows' ``platform_connection_id`` must equal the
    context's; with *user_id*, their ``user_id`` must match too.

    Args:
        query: The query or select to narrow.
        entity: Mapped class or table holding the columns; the query's first entity when omitted.
        context: The context to filter by; the current one when omitted.
        user_id: Also require this owner (when the entity has a ``user_id`` column).

    Returns:
        The filtered query, of the same type.

    Raises:
        PlatformContextError: No platform connection is set (an unfiltered query would
            leak every connection's rows), or the entity has no ``platform_connection_id``.

    .. versionadded:: 0.1.0
    """
    ctx = context if context is not None else get_platform_context()
    if ctx is None or ctx.platform_connection_id is None:
        msg = "no platform connection in the current context; refusing to query every connection's rows"
        raise PlatformContextError(msg)
    if entity is None:
        descriptions = getattr(query, "column_descriptions", None) or [{}]
        entity = descriptions[0].get("entity")
        if entity is None:
            entity = getattr(descriptions[0].get("expr"), "table", None)
    column = _column(entity, "platform_connection_id")
    if column is None:
        msg = f"{getattr(entity, '__name__', entity)!r} has no platform_connection_id column to filter by"
        raise PlatformContextError(msg)
    conditions = [column == ctx.platform_connection_id]
    if user_id is not None:
        owner = _column(entity, "user_id")
        if owner is None:
            msg = f"{getattr(entity, '__name__', entity)!r} has no user_id column to filter by"
            raise PlatformContextError(msg)
        conditions.append(owner == user_id)
    narrowed: _Q = query.filter(*conditions)  # type: ignore[attr-defined]
    return narrowed


class PlatformContextManager:
    """Establish the platform context of a user from the database.

    With a *connection_model* (a mapped class with ``id``, ``user_id`` and a
    platform column, optionally ``is_active``, ``is_default``, ``instance_url``,
    ``username``), :meth:`set_context` loads the connection, checks that it
    belongs to the user, and picks the user's default connection when none is
    named. Without one it records the ids it is given. The context lives in
    contextvars: isolated per thread and per asyncio task, on every span and
    log line.

    Args:
        session: SQLAlchemy ORM session used to look connections up.
        connection_model: The mapped class of platform connections.
        platform_attr: Attribute of the connection naming its platform.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_token", "connection_model", "platform_attr", "session")

    def __init__(
        self,
        session: Session | None = None,
        *,
        connection_model: type[Any] | None = None,
        platform_attr: str = "platform_type",
    ) -> None:
        if connection_model is not None and session is None:
            msg = "a connection_model needs a session to look connections up"
            raise PlatformContextError(msg)
        self.session = session
        self.connection_model = connection_model
        self.platform_attr = platform_attr
        self._token: Token[PlatformContext | None] | None = None

    def __repr__(self) -> str:
        model = getattr(self.connection_model, "__name__", None)
        return f"PlatformContextManager(connection_model={model!r})"

    def set_context(
        self,
        user_id: int | str,
        platform_connection_id: int | str | None = None,
        *,
        platform: str | None = None,
        session_id: str | None = None,
    ) -> PlatformContext:
        """Make *user_id* on *platform_connection_id* the current platform context.

        Args:
            user_id: The user.
            platform_connection_id: The user's connection; their default one when omitted.
            platform: Platform name, when there is no connection model to read it from.
            session_id: The session the work belongs to.

        Returns:
            The established context.

        Raises:
            PlatformContextError: No user, no such (active) connection, or it belongs to another user.

        .. versionadded:: 0.1.0
        """
        if user_id is None or user_id == "":
            msg = "a platform context needs a user id"
            raise PlatformContextError(msg)
        info: Mapping[str, Any] = {}
        if self.connection_model is not None and self.session is not None:
            connection = _load_connection(self.session, self.connection_model, user_id, platform_connection_id)
            platform_connection_id = connection.id
            platform = getattr(connection, self.platform_attr, None) or platform
            info = {a: getattr(connection, a) for a in _INFO_ATTRS if getattr(connection, a, None) is not None}
        ctx = PlatformContext(platform, user_id, platform_connection_id, session_id, info)
        token = _platform.set(ctx)
        if self._token is None:
            self._token = token
        return ctx

    def get_context(self) -> PlatformContext | None:
        """The current platform context, or ``None``.

        .. versionadded:: 0.1.0
        """
        return get_platform_context()

    def clear_context(self) -> None:
        """Undo :meth:`set_context`: restore what was current before it (usually nothing).

        .. versionadded:: 0.1.0
        """
        token, self._token = self._token, None
        if token is None:
            return
        try:
            _platform.reset(token)
        except ValueError:  # set in another thread or task: clear this one's instead
            _platform.set(None)

    @contextmanager
    def context(
        self, user_id: int | str, platform_connection_id: int | str | None = None, *, session_id: str | None = None
    ) -> Iterator[PlatformContext]:
        """:meth:`set_context` for the ``with`` block, cleared afterwards.

        .. versionadded:: 0.1.0
        """
        ctx = self.set_context(user_id, platform_connection_id, session_id=session_id)
        token = self._token
        try:
            yield ctx
        finally:
            self._token = token
            self.clear_context()


def _load_connection(session: Session, model: type[Any], user_id: int | str, connection_id: int | str | None) -> Any:
    """The user's connection *connection_id* (or default one), checked for owner and activity."""
    from sqlalchemy import select

    if connection_id is not None:
        connection = session.get(model, connection_id)
        if connection is None:
            msg = f"platform connection {connection_id!r} does not exist"
            raise PlatformContextError(msg)
        if connection.user_id != user_id:
            msg = f"platform connection {connection_id!r} does not belong to this user"
            raise PlatformContextError(msg)
    else:
        stmt = select(model).where(model.user_id == user_id)
        if hasattr(model, "is_default"):
            stmt = stmt.order_by(model.is_default.desc(), model.id)
        else:
            stmt = stmt.order_by(model.id)
        if hasattr(model, "is_active"):
            stmt = stmt.where(model.is_active.is_(True))
        connection = session.scalars(stmt.limit(1)).first()
        if connection is None:
            msg = "the user has no active platform connection"
            raise PlatformContextError(msg)
    if getattr(connection, "is_active", True) is False:
        msg = f"platform connection {connection.id!r} is not active"
        raise PlatformContextError(msg)
    return connection
