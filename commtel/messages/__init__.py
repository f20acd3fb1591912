"""Messages: cross-platform headers and threading, the conversation tracker, file locks."""

from __future__ import annotations

from ._headers import MessageHeaderError, MessageHeaders, split_universal_id, universal_id
from ._locks import FileLock, LockTimeoutError
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
    "Claim",
    "ConversationTracker",
    "FileLock",
    "LockTimeoutError",
    "MessageHeaderError",
    "MessageHeaders",
    "MessageState",
    "MessageStateChanged",
    "ThreadEntry",
    "TrackedMessage",
    "UnknownMessageError",
    "split_universal_id",
    "universal_id",
]
