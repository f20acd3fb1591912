"""The older platform context: ``PlatformContext(user_id, user, platform_connection_id, ...)`` and its manager.

:class:`PlatformContextManager` establishes commtel's platform context (the one every
span and log line shows) through :class:`commtel.context.PlatformContextManager`, and
hands back the older dataclass with the loaded ``user`` and ``platform_connection``.
"""

from __future__ import annotations

import contextvars

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..context import PlatformContext as _PlatformContext
from ..context import PlatformContextManager as _PlatformContextManager
from ..context import filter_by_platform, get_platform_context


if TYPE_CHECKING:
    from sqlalchemy.orm import Session


__all__ = ["PlatformContext", "PlatformContextManager"]

_Q = TypeVar("_Q")
_INFO_ATTRS = ("instance_url", "username", "name")


@dataclass
class PlatformContext:
    """Who the current work is for, in the older field order.

    Args:
        user_id: The user (required).
        user: The user object, when loaded.
        platform_connection_id: The user's platform connection.
        platform_connection: The connection object, when loaded.
        session_id: The session the work belongs to.

    .. versionadded:: 0.1.0
    """

    user_id: int
    user: Any | None = None
    platform_connection_id: int | None = None
    platform_connection: Any | None = None
    session_id: str | None = None

    @property
    def is_valid(self) -> bool:
        """A user and a connection are known; a loaded connection belongs to the user and is active."""
        if self.user_id is None or self.platform_connection_id is None:
            return False
        connection = self.platform_connection
        if connection is None:
            return True
        owner = getattr(connection, "user_id", self.user_id)
        return owner == self.user_id and getattr(connection, "is_active", True) is not False

    @property
    def platform_info(self) -> dict[str, Any]:
        """``platform_type``, ``instance_url``, ``username`` and ``name`` of the connection (``None`` when unknown)."""
        connection = self.platform_connection
        platform = getattr(connection, "platform_type", None) or getattr(connection, "platform", None)
        return {"platform_type": platform, **{attr: getattr(connection, attr, None) for attr in _INFO_ATTRS}}


# The context this module handed out, beside the commtel context it mirrors.
_current: contextvars.ContextVar[tuple[_PlatformContext, PlatformContext] | None] = contextvars.ContextVar(
    "commtel_compat_platform_context", default=None
)


class PlatformContextManager:
    """Set, read and clear the current user's platform context from a SQLAlchemy session.

    Args:
        session: The ORM session connections (and users) are read with.
        connection_model: Mapped class of platform connections (``id``, ``user_id``, a
            ``platform_type`` column, optionally ``is_active``, ``is_default``,
            ``instance_url``, ``username``). Without it the ids are recorded unchecked.
        user_model: Mapped class of users; else ``connection.user`` when the model has it.
        platform_attr: Attribute of a connection naming its platform.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_manager", "session", "user_model")

    def __init__(
        self,
        session: Session,
        *,
        connection_model: type[Any] | None = None,
        user_model: type[Any] | None = None,
        platform_attr: str = "platform_type",
    ) -> None:
        self.session = session
        self.user_model = user_model
        self._manager = _PlatformContextManager(session, connection_model=connection_model, platform_attr=platform_attr)

    def set_context(self, user_id: int, platform_connection_id: int | None = None) -> PlatformContext:
        """Make *user_id* on *platform_connection_id* (their default connection when ``None``) current.

        Returns:
            The established context.

        Raises:
            PlatformContextError: No user, no such active connection, or it belongs to another user.

        .. versionadded:: 0.1.0
        """
        ctx = self._manager.set_context(user_id, platform_connection_id)
        model = self._manager.connection_model
        connection = None
        if model is not None and ctx.platform_connection_id is not None:
            connection = self.session.get(model, ctx.platform_connection_id)
        if self.user_model is not None:
            user = self.session.get(self.user_model, user_id)
        else:
            user = getattr(connection, "user", None)
        older = PlatformContext(user_id, user, ctx.platform_connection_id, connection, ctx.session_id)  # type: ignore[arg-type]
        _current.set((ctx, older))
        return older

    def get_context(self) -> PlatformContext | None:
        """The current context, or ``None``.

        .. versionadded:: 0.1.0
        """
        ctx = get_platform_context()
        if ctx is None:
            return None
        pair = _current.get()
        if pair is not None and pair[0] is ctx:
            return pair[1]
        return PlatformContext(ctx.user_id, None, ctx.platform_connection_id, None, ctx.session_id)  # type: ignore[arg-type]

    def clear_context(self) -> None:
        """Clear the context :meth:`set_context` established.

        .. versionadded:: 0.1.0
        """
        self._manager.clear_context()
        _current.set(None)

    def filter_posts_by_platform(self, query: _Q, user_id: int | None = None) -> _Q:
        """Narrow *query* to the current platform connection's rows (and *user_id*'s, when given).

        Raises:
            PlatformContextError: No platform connection is set.

        .. versionadded:: 0.1.0
        """
        return filter_by_platform(query, user_id=user_id)
