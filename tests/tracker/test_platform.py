"""PlatformContextManager and filter_by_platform on a real SQLAlchemy database."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from collections.abc import Iterator

import pytest

from sqlalchemy import Boolean, ForeignKey, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from commtel.context._platform import (
    PlatformContextError,
    PlatformContextManager,
    filter_by_platform,
    get_platform_context,
    platform_context,
)
from commtel.telemetry import JSONFormatter, get_logger, start_span


class Base(DeclarativeBase):
    pass


class PlatformConnection(Base):
    __tablename__ = "platform_connections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    platform_type: Mapped[str] = mapped_column(String(32))
    instance_url: Mapped[str | None] = mapped_column(String(200), default=None)
    username: Mapped[str | None] = mapped_column(String(100), default=None)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    platform_connection_id: Mapped[int] = mapped_column(ForeignKey("platform_connections.id"))
    text: Mapped[str] = mapped_column(String(100))


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all(
            [
                PlatformConnection(
                    id=1, user_id=7, platform_type="mastodon", instance_url="https://mastodon.social", username="alice"
                ),
                PlatformConnection(id=2, user_id=7, platform_type="pixelfed", is_default=True),
                PlatformConnection(id=3, user_id=8, platform_type="mastodon"),
                PlatformConnection(id=4, user_id=7, platform_type="twitter", is_active=False),
            ]
        )
        s.add_all([Post(user_id=7 if i % 4 else 8, platform_connection_id=i % 3 + 1, text=f"p{i}") for i in range(12)])
        s.commit()
        yield s
    engine.dispose()


def test_set_context_picks_the_users_default_connection(session: Session) -> None:
    """Without a connection id the user's default active connection is used; info comes from the row."""
    manager = PlatformContextManager(session, connection_model=PlatformConnection)
    ctx = manager.set_context(user_id=7)
    assert (ctx.platform, ctx.platform_connection_id, ctx.is_valid) == ("pixelfed", 2, True)
    assert manager.get_context() == ctx
    ctx = manager.set_context(7, 1)
    assert ctx.platform_info == {
        "platform_type": "mastodon",
        "instance_url": "https://mastodon.social",
        "username": "alice",
    }
    manager.clear_context()
    assert manager.get_context() is None


@pytest.mark.parametrize(
    ("user", "connection", "match"),
    [
        (7, 3, "another user|does not belong"),
        (7, 99, "does not exist"),
        (7, 4, "not active"),
        (9, None, "no active"),
        ("", None, "user id"),
    ],
)
def test_set_context_refuses_what_it_cannot_establish(session: Session, user, connection, match: str) -> None:
    """Another user's, a missing or an inactive connection, or no user at all: PlatformContextError."""
    manager = PlatformContextManager(session, connection_model=PlatformConnection)
    with pytest.raises(PlatformContextError, match=match):
        manager.set_context(user, connection)
    assert manager.get_context() is None


def test_filter_narrows_legacy_query_and_select_to_the_connection(session: Session) -> None:
    """filter_by_platform keeps only the current connection's rows (and user's), on a Query or a select."""
    manager = PlatformContextManager(session, connection_model=PlatformConnection)
    with manager.context(7, 1):
        legacy = filter_by_platform(session.query(Post)).all()
        modern = session.scalars(filter_by_platform(select(Post))).all()
        core = session.execute(filter_by_platform(select(Post.__table__))).all()
        mine = session.scalars(filter_by_platform(select(Post), user_id=7)).all()
    assert {p.platform_connection_id for p in legacy} == {1}
    assert [p.id for p in legacy] == [p.id for p in modern] == [row.id for row in core]
    assert {p.user_id for p in mine} == {7}
    assert len(mine) < len(legacy)
    assert manager.get_context() is None


def test_filter_without_context_or_column_fails_closed(session: Session) -> None:
    """No platform connection, or an entity without the column, raises instead of returning every row."""
    with pytest.raises(PlatformContextError, match="refusing"):
        filter_by_platform(select(Post))
    with (
        platform_context("email", user_id=7, platform_connection_id=1),
        pytest.raises(PlatformContextError, match="no platform_connection_id"),
    ):
        filter_by_platform(select(Note))


def test_context_is_isolated_per_thread_and_task() -> None:
    """A context set in one thread or asyncio task is invisible to the others."""
    manager = PlatformContextManager()
    manager.set_context(1, 10, platform="email")
    seen: dict[str, object] = {}

    def in_thread() -> None:
        seen["thread_before"] = get_platform_context()
        PlatformContextManager().set_context(2, 20, platform="discord")
        seen["thread_after"] = get_platform_context()

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()

    async def task(n: int) -> int | str | None:
        with platform_context("twitter", user_id=n, platform_connection_id=n):
            await asyncio.sleep(0)  # the other tasks run here
            ctx = get_platform_context()
            return None if ctx is None else ctx.user_id

    async def both() -> list[int | str | None]:
        return list(await asyncio.gather(task(3), task(4)))

    assert asyncio.run(both()) == [3, 4]
    assert seen["thread_before"] is None
    assert getattr(seen["thread_after"], "platform", None) == "discord"
    ctx = get_platform_context()
    assert ctx is not None
    assert ctx.user_id == 1
    manager.clear_context()
    assert get_platform_context() is None


def test_context_shows_on_spans_and_log_lines(spans, caplog) -> None:
    """The current platform and connection appear on spans and in JSON log lines."""
    manager = PlatformContextManager()
    with manager.context(7, 2) as ctx:
        assert ctx.platform is None
    with platform_context("mastodon", user_id=7, platform_connection_id=2, session_id="s-1"):
        with start_span("post"):
            pass
        log = get_logger("tests.platform")
        with caplog.at_level(logging.INFO, logger="tests.platform"):
            log.info("posted")
        line = json.loads(JSONFormatter().format(caplog.records[-1]))
    [span] = [s for s in spans.get_finished_spans() if s.name == "post"]
    assert span.attributes["commtel.platform"] == "mastodon"
    assert span.attributes["commtel.platform_connection_id"] == "2"
    assert line["platform"] == "mastodon"
