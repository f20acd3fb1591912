"""Messages: cross-platform headers and threading, the conversation tracker, file locks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._async_tracker import AsyncConversationTracker
    from ._headers import MessageHeaderError, MessageHeaders, split_universal_id, universal_id
    from ._locks import FileLock, LockTimeoutError
    from ._retention import RowsPurged
    from ._tracker import (
        Claim,
        ConversationTracker,
        MessageState,
        MessageStateChanged,
        ThreadEntry,
        TrackedMessage,
        UnknownMessageError,
    )


__all__ = [
    "AsyncConversationTracker",
    "Claim",
    "ConversationTracker",
    "FileLock",
    "LockTimeoutError",
    "MessageHeaderError",
    "MessageHeaders",
    "MessageState",
    "MessageStateChanged",
    "RowsPurged",
    "ThreadEntry",
    "TrackedMessage",
    "UnknownMessageError",
    "split_universal_id",
    "universal_id",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._async_tracker": ("AsyncConversationTracker",),
            "._retention": ("RowsPurged",),
            "._headers": ("MessageHeaderError", "MessageHeaders", "split_universal_id", "universal_id"),
            "._locks": ("FileLock", "LockTimeoutError"),
            "._tracker": (
                "Claim",
                "ConversationTracker",
                "MessageState",
                "MessageStateChanged",
                "ThreadEntry",
                "TrackedMessage",
                "UnknownMessageError",
            ),
        },
    )
