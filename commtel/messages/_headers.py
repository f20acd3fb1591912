"""Universal message ids and conversation threading across platforms.

Every message, whatever platform it lives on, gets one id in RFC 5322
``Message-ID`` form (``<local@domain>``). Email keeps its own Message-ID; a
tweet, Discord message or Mastodon status maps to ``<native@platform.commtel>``
(:func:`universal_id`), and back again (:func:`split_universal_id`). Because the
ids share one form, ``In-Reply-To``/``References`` chains can mix platforms, and
a conversation is named by the root of its reply chain.

:meth:`MessageHeaders.parse_headers` reads raw email text or bytes with the
standard library's :mod:`email` package (folded lines, RFC 2047 encoded words,
multi-id ``References``). Malformed input gives a best-effort result with its
problems listed in :attr:`MessageHeaders.defects`; only ``strict=True`` turns
them into a :class:`MessageHeaderError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from .._exceptions import CommtelError


__all__ = [
    "MessageHeaderError",
    "MessageHeaders",
    "split_universal_id",
    "universal_id",
]

_UNIVERSAL_DOMAIN = "commtel"
_PLATFORM_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_MSG_ID_RE = re.compile(r"<([^<>\s]+)>")
_VALID_ID_RE = re.compile(r"<[^<>\s]+>")
_SAFE_NATIVE_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
_REPLY_PREFIX_RE = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_MAX_ID_LENGTH = 998  # RFC 5322 line limit; ids longer than a line are garbage


class MessageHeaderError(CommtelError, ValueError):
    """Headers are malformed (strict parsing) or a field has the wrong shape.

    .. versionadded:: 0.1.0
    """


def _check_platform(platform: str) -> str:
    name = platform.strip().lower() if isinstance(platform, str) else ""
    if not _PLATFORM_RE.fullmatch(name):
        msg = f"platform must be 1-32 characters of a-z, 0-9, '_' or '-', got {platform!r}"
        raise MessageHeaderError(msg)
    return name


def _normalize_id(value: str) -> str:
    """``<id>`` form of a message id given with or without angle brackets."""
    text = value.strip() if isinstance(value, str) else ""
    if not text.startswith("<"):
        text = f"<{text}>"
    if not _VALID_ID_RE.fullmatch(text) or len(text) > _MAX_ID_LENGTH:
        msg = f"message id must look like <local@domain> (no spaces or angle brackets inside), got {value!r:.80}"
        raise MessageHeaderError(msg)
    return text


def universal_id(platform: str, native_id: str | int) -> str:
    """The universal (RFC 5322 Message-ID form) id of a platform-native message id.

    Email ids are already universal and are only normalised to ``<...>`` form.
    Other ids become ``<native@platform.commtel>``; a native id with characters
    a Message-ID cannot hold is base32-encoded behind a leading ``=`` so the
    mapping stays reversible. For federated platforms pass an instance-qualified
    id (``"109876@mastodon.social"``) so ids from two instances never collide.

    Args:
        platform: Platform name (``"twitter"``, ``"discord"``, ``"mastodon"``, ``"email"`` …).
        native_id: The platform's own id of the message.

    Returns:
        The universal id, e.g. ``<1790000000000000000@twitter.commtel>``.

    Raises:
        MessageHeaderError: The platform name or the id is empty or malformed.

    .. versionadded:: 0.1.0
    """
    name = _check_platform(platform)
    native = str(native_id).strip()
    if name == "email":
        return _normalize_id(native)
    if not native:
        msg = f"native id for platform {name!r} must not be empty"
        raise MessageHeaderError(msg)
    if _SAFE_NATIVE_RE.fullmatch(native) is None:
        native = "=" + base64.b32encode(native.encode()).decode().rstrip("=").lower()
    return _normalize_id(f"{native}@{name}.{_UNIVERSAL_DOMAIN}")


def split_universal_id(message_id: str) -> tuple[str, str]:
    """Map a universal id back to ``(platform, native_id)``; the inverse of :func:`universal_id`.

    Ids not minted by :func:`universal_id` are email Message-IDs and come back as
    ``("email", "<id>")``.

    Raises:
        MessageHeaderError: *message_id* is empty or holds spaces or angle brackets.

    .. versionadded:: 0.1.0
    """
    normalized = _normalize_id(message_id)
    local, _, domain = normalized[1:-1].rpartition("@")
    platform, _, suffix = domain.partition(".")
    if suffix != _UNIVERSAL_DOMAIN or not _PLATFORM_RE.fullmatch(platform) or platform == "email":
        return "email", normalized
    if local.startswith("="):
        encoded = local[1:].upper()
        try:
            return platform, base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "email", normalized
    return platform, local


@dataclass(frozen=True, slots=True)
class MessageHeaders:
    """Headers of one message: universal id, subject, reply chain, platform.

    Build one with :meth:`create`, :meth:`reply` or :meth:`parse_headers`; store it
    with :meth:`to_dict` / :meth:`from_dict`.

    Args:
        message_id: Universal id in ``<local@domain>`` form.
        subject: Decoded subject (may be empty).
        in_reply_to: Universal id of the parent message, if any.
        references: Ids of the reply chain, root first (RFC 5322 ``References``).
        platform: Platform the message lives on.
        date: When the message was written (timezone-aware), if known.
        defects: Problems found while parsing (empty for well-formed input).

    .. versionadded:: 0.1.0
    """

    message_id: str
    subject: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    platform: str = "email"
    date: datetime | None = None
    defects: tuple[str, ...] = field(default=(), compare=False)

    @property
    def conversation_id(self) -> str:
        """The id of the conversation: the root of the reply chain (own id for a new thread)."""
        if self.references:
            return self.references[0]
        return self.in_reply_to or self.message_id

    @property
    def native_id(self) -> str:
        """The platform's own id of this message (the Message-ID for email)."""
        return split_universal_id(self.message_id)[1]

    @classmethod
    def create(
        cls,
        subject: str = "",
        in_reply_to: str | None = None,
        references: Iterable[str] | None = None,
        platform: str = "email",
        *,
        native_id: str | int | None = None,
        date: datetime | None = None,
    ) -> MessageHeaders:
        """Headers for a new message with a universal id.

        The reply chain follows RFC 5322 section 3.6.4: *in_reply_to* is appended
        to *references* unless it is already last.

        Args:
            subject: Subject line.
            in_reply_to: Universal id of the message this one answers.
            references: Earlier ids of the chain, root first.
            platform: Platform the message lives on.
            native_id: The platform's own id; a fresh random id is made when omitted.
            date: When it was written; now (UTC) when omitted.

        Returns:
            The new headers.

        Raises:
            MessageHeaderError: An id or the platform name is malformed.

        .. versionadded:: 0.1.0
        """
        name = _check_platform(platform)
        if native_id is None:
            message_id = f"<{uuid.uuid4().hex}@{name}.{_UNIVERSAL_DOMAIN}>"
        else:
            message_id = universal_id(name, native_id)
        chain = [_normalize_id(ref) for ref in references or ()]
        parent = None if in_reply_to is None else _normalize_id(in_reply_to)
        if parent is not None and (not chain or chain[-1] != parent):
            chain.append(parent)
        return cls(message_id, subject, parent, tuple(chain), name, date or datetime.now(timezone.utc))

    def reply(
        self, subject: str | None = None, *, platform: str | None = None, native_id: str | int | None = None
    ) -> MessageHeaders:
        """Headers for a reply to this message (possibly on another platform).

        Args:
            subject: Subject of the reply; ``"Re: "`` + this subject when omitted.
            platform: Platform of the reply; this message's platform when omitted.
            native_id: The reply's own platform id, if it already has one.

        Returns:
            Headers threaded under this message.

        .. versionadded:: 0.1.0
        """
        if subject is None:
            subject = self.subject if _REPLY_PREFIX_RE.match(self.subject) else f"Re: {self.subject}"
        return MessageHeaders.create(
            subject, self.message_id, self.references, platform or self.platform, native_id=native_id
        )

    def apply_to(self, message: EmailMessage) -> EmailMessage:
        """Write this message's id, subject, date and reply chain into an outgoing e-mail.

        Replaces those headers if *message* has them; a non-ASCII subject is RFC 2047
        encoded when the message is sent. Returns *message*.

        .. versionadded:: 0.1.0
        """
        values = {
            "Message-ID": self.message_id,
            "Subject": self.subject,
            "In-Reply-To": self.in_reply_to,
            "References": " ".join(self.references) or None,
            "Date": format_datetime(self.date) if self.date is not None else None,
        }
        for name, value in values.items():
            del message[name]
            if value:
                message[name] = value
        return message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO 8601 date, ``conversation_id`` included for convenience).

        .. versionadded:: 0.1.0
        """
        return {
            "message_id": self.message_id,
            "subject": self.subject,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "platform": self.platform,
            "date": None if self.date is None else self.date.isoformat(),
            "conversation_id": self.conversation_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MessageHeaders:
        """Rebuild headers from :meth:`to_dict` output (``conversation_id`` is derived, not read).

        Raises:
            MessageHeaderError: A field is missing or has the wrong type or form.

        .. versionadded:: 0.1.0
        """
        try:
            return cls(
                _normalize_id(data["message_id"]),
                _text_field(data.get("subject"), "subject"),
                None if data.get("in_reply_to") is None else _normalize_id(data["in_reply_to"]),
                tuple(_normalize_id(ref) for ref in _list_field(data.get("references"), "references")),
                _check_platform(data.get("platform", "email")),
                None if data.get("date") is None else datetime.fromisoformat(data["date"]),
            )
        except MessageHeaderError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"not a MessageHeaders dict: {type(exc).__name__}: {exc}"
            raise MessageHeaderError(msg) from exc

    @classmethod
    def parse_headers(cls, raw: str | bytes, *, platform: str = "email", strict: bool = False) -> MessageHeaders:
        """Parse the headers of a raw email (text or bytes); the body is ignored.

        Folded header lines are unfolded, RFC 2047 encoded words in the subject are
        decoded, and ``References`` may list many ids across folded lines. Malformed
        input never raises unless *strict*: unreadable parts are skipped and listed
        in :attr:`defects`, and a message without a usable Message-ID gets a stable
        id derived from its header text (the same input always gets the same id).

        Args:
            raw: The message, as received.
            platform: Platform recorded on the result.
            strict: Raise instead of returning a best-effort result with defects.

        Returns:
            The parsed headers.

        Raises:
            MessageHeaderError: Only with *strict* and malformed input, or a bad *platform*.

        .. versionadded:: 0.1.0
        """
        name = _check_platform(platform)
        defects: list[str] = []
        text = _decode_raw(raw, defects)
        fields = _header_fields(text, defects)
        message_ids = _ids_in(fields.get("message-id", ""), "Message-ID", defects)
        if message_ids:
            message_id = message_ids[0]
        else:
            defects.append("no usable Message-ID; derived one from the header text")
            digest = hashlib.sha256(text.split("\n\n", 1)[0].encode("utf-8", "surrogatepass")).hexdigest()
            message_id = f"<{digest[:32]}@{name}.{_UNIVERSAL_DOMAIN}>"
        references = tuple(dict.fromkeys(_ids_in(fields.get("references", ""), "References", defects)))
        parents = _ids_in(fields.get("in-reply-to", ""), "In-Reply-To", defects)
        in_reply_to = parents[0] if parents else (references[-1] if references else None)
        if in_reply_to is not None and in_reply_to not in references:
            references = (*references, in_reply_to)
        result = cls(
            message_id,
            _decode_subject(fields.get("subject", ""), defects),
            in_reply_to,
            tuple(ref for ref in references if ref != message_id),
            name,
            _parse_date(fields.get("date"), defects),
            tuple(defects),
        )
        if strict and defects:
            msg = "malformed headers: " + "; ".join(defects)
            raise MessageHeaderError(msg)
        return result


def _text_field(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        msg = f"{name} must be a string, got {type(value).__name__}"
        raise MessageHeaderError(msg)
    return value


def _list_field(value: object, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        msg = f"{name} must be a list of message ids"
        raise MessageHeaderError(msg)
    return list(value)


def _decode_raw(raw: str | bytes, defects: list[str]) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        defects.append("raw bytes are not UTF-8; decoded as Latin-1")
        return bytes(raw).decode("latin-1")


def _header_fields(text: str, defects: list[str]) -> dict[str, str]:
    """First value of each header, unfolded, keyed by lower-case name."""
    try:
        message = HeaderParser(policy=compat32).parsestr(text)
        items = message.items()
    except Exception as exc:  # the feed parser is lenient, but this is untrusted input
        defects.append(f"header block unreadable ({type(exc).__name__})")
        return {}
    defects.extend(type(defect).__name__ for defect in message.defects)
    fields: dict[str, str] = {}
    for name, value in items:
        fields.setdefault(name.lower(), _FOLD_RE.sub("", str(value)))
    return fields


def _ids_in(value: str, header: str, defects: list[str]) -> list[str]:
    if "=?" in value:
        # Python's own email package RFC 2047-encodes id headers longer than a line.
        value = _decode_words(value, header, defects)
    found = [f"<{m}>" for m in _MSG_ID_RE.findall(value) if len(m) < _MAX_ID_LENGTH]
    if not found and value.strip():
        # Best effort for ids sent without angle brackets (seen from old clients).
        found = [f"<{token}>" for token in re.split(r"[\s,]+", value) if "@" in token]
        defects.append(f"{header} ids without angle brackets" if found else f"{header} holds no message id")
    valid = [ident for ident in found if _VALID_ID_RE.fullmatch(ident)]
    if len(valid) != len(found):
        defects.append(f"{header} has malformed ids")
    return valid


def _decode_words(value: str, header: str, defects: list[str]) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception as exc:  # unknown charsets, bad base64 …: keep the raw text
        defects.append(f"{header} has undecodable encoded words ({type(exc).__name__})")
        return value


def _decode_subject(value: str, defects: list[str]) -> str:
    return (_decode_words(value, "Subject", defects) if "=?" in value else value).strip()


def _parse_date(value: str | None, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("Date is not an RFC 5322 date")
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=timezone.utc)
