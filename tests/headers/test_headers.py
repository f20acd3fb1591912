"""MessageHeaders: universal ids, threading, parsing real email (and garbage) safely."""

from __future__ import annotations

import smtplib

from email.message import EmailMessage

import pytest

from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st

from commtel.messages._headers import (
    MessageHeaderError,
    MessageHeaders,
    split_universal_id,
    universal_id,
)
from commtel.messages._tracker import ConversationTracker
from tests.harness.procs import free_port


# -- universal ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "native", "expected"),
    [
        ("twitter", "1790000000000000000", "<1790000000000000000@twitter.commtel>"),
        ("discord", 1234567890123, "<1234567890123@discord.commtel>"),
        ("email", "abc@mail.example.org", "<abc@mail.example.org>"),
        ("email", "<abc@mail.example.org>", "<abc@mail.example.org>"),
    ],
)
def test_native_ids_map_to_universal_ids(platform: str, native: str | int, expected: str) -> None:
    """Tweet, Discord and email ids map to RFC 5322 Message-ID form."""
    assert universal_id(platform, native) == expected


@given(st.sampled_from(["twitter", "discord", "mastodon", "slack"]), st.text(min_size=1).filter(str.strip))
def test_universal_ids_round_trip_for_any_native_id(platform: str, native: str) -> None:
    """Any native id (even with spaces, '@' or emoji) maps to a valid id and back unchanged."""
    uid = universal_id(platform, native)
    assert " " not in uid
    assert uid.startswith("<")
    assert uid.endswith(">")
    assert split_universal_id(uid) == (platform, native.strip())


def test_mastodon_status_ids_keep_their_instance() -> None:
    """Instance-qualified Mastodon ids stay distinct and reversible."""
    a = universal_id("mastodon", "109876@mastodon.social")
    b = universal_id("mastodon", "109876@fosstodon.org")
    assert a != b
    assert split_universal_id(a) == ("mastodon", "109876@mastodon.social")


def test_bad_platform_or_id_raise_clear_errors() -> None:
    """Malformed platform names and ids raise MessageHeaderError (a ValueError)."""
    with pytest.raises(MessageHeaderError, match="platform"):
        universal_id("Bad Platform!", "1")
    with pytest.raises(ValueError, match="message id"):
        universal_id("email", "has space@x")
    with pytest.raises(MessageHeaderError):
        MessageHeaders.create("x", in_reply_to="<a b>")


# -- create / reply / dict -------------------------------------------------------------------


def test_create_builds_the_reply_chain() -> None:
    """create appends in_reply_to to references; the conversation is the chain's root."""
    headers = MessageHeaders.create(
        subject="Re: Previous discussion", in_reply_to="<message-id-123>", references=["<root@x>"], platform="email"
    )
    assert headers.references == ("<root@x>", "<message-id-123>")
    assert headers.conversation_id == "<root@x>"
    assert headers.in_reply_to == "<message-id-123>"


def test_a_conversation_spans_platforms() -> None:
    """An email answered by a tweet answered on Discord stays one conversation."""
    email = MessageHeaders.parse_headers("Subject: Launch\nMessage-ID: <launch@corp.example>\n\nbody")
    tweet = email.reply(platform="twitter", native_id=1790000000000000001)
    discord = tweet.reply(platform="discord", native_id="1100000000000000000")
    assert discord.conversation_id == tweet.conversation_id == email.message_id
    assert discord.subject == "Re: Launch"
    assert split_universal_id(discord.in_reply_to or "") == ("twitter", "1790000000000000001")
    assert discord.native_id == "1100000000000000000"


def test_to_dict_from_dict_round_trip() -> None:
    """from_dict(to_dict()) restores equal headers; dates are ISO strings."""
    headers = MessageHeaders.create("Hello", in_reply_to="<p@x>", platform="discord", native_id=5)
    data = headers.to_dict()
    assert isinstance(data["date"], str)
    assert data["conversation_id"] == "<p@x>"
    assert MessageHeaders.from_dict(data) == headers


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"message_id": 5},
        {"message_id": "<a@b>", "references": "<c@d>"},
        {"message_id": "<a@b>", "date": "x"},
        {"message_id": "<a@b>", "subject": 3},
        {"message_id": "<a@b>", "platform": ""},
    ],
)
def test_from_dict_rejects_bad_shapes(data: dict) -> None:
    """Malformed dicts raise MessageHeaderError, not KeyError or TypeError."""
    with pytest.raises(MessageHeaderError):
        MessageHeaders.from_dict(data)


# -- parsing ---------------------------------------------------------------------------------


def test_parse_folded_encoded_multi_reference_headers() -> None:
    """Folded lines, RFC 2047 words (Q and B, two charsets) and many References parse correctly."""
    raw = (
        b"From: =?utf-8?q?Ren=C3=A9e?= <renee@example.org>\r\n"
        b"Subject: =?iso-8859-1?q?R=E9ponse_au_sujet?=\r\n"
        b" =?utf-8?b?8J+agCBsYW5jZW1lbnQ=?=\r\n"
        b"Message-ID: <m3@example.org>\r\n"
        b"In-Reply-To: <m2@example.org>\r\n"
        b"References: <m1@example.org>\r\n"
        b"  <m1b@example.org>\r\n"
        b"\t<m2@example.org>\r\n"
        b"Date: Tue, 04 Nov 2025 10:00:00 +0100\r\n"
        b"\r\n"
        b"Body with References: <not-a-header@x>\r\n"
    )
    headers = MessageHeaders.parse_headers(raw)
    assert headers.subject == "Réponse au sujet🚀 lancement"
    assert headers.references == ("<m1@example.org>", "<m1b@example.org>", "<m2@example.org>")
    assert headers.in_reply_to == "<m2@example.org>"
    assert headers.conversation_id == "<m1@example.org>"
    assert headers.date is not None
    assert headers.date.utcoffset() is not None
    assert headers.defects == ()


def test_seed_example_parses() -> None:
    """The classic example text parses to its Message-ID and subject."""
    parsed = MessageHeaders.parse_headers("Subject: Test\nMessage-ID: <123>\n\nBody...")
    assert parsed.message_id == "<123>"
    assert parsed.subject == "Test"


def test_missing_message_id_gets_a_stable_derived_id_and_a_defect() -> None:
    """Without a Message-ID the same input always gets the same id, and the defect is listed."""
    raw = "Subject: no id\nFrom: a@b\n\nbody"
    first, second = MessageHeaders.parse_headers(raw), MessageHeaders.parse_headers(raw)
    assert first.message_id == second.message_id
    assert any("Message-ID" in d for d in first.defects)
    with pytest.raises(MessageHeaderError, match="Message-ID"):
        MessageHeaders.parse_headers(raw, strict=True)


def test_bad_encoded_words_keep_the_raw_subject() -> None:
    """An unknown charset or broken base64 leaves the raw subject text, with a defect."""
    parsed = MessageHeaders.parse_headers("Subject: =?x-unknown?b?!!!?=\nMessage-ID: <a@b>\n\n")
    assert "x-unknown" in parsed.subject
    assert parsed.defects


def test_ids_without_angle_brackets_are_recovered() -> None:
    """Old clients' bare ids in References are recovered best-effort, with a defect."""
    parsed = MessageHeaders.parse_headers("Message-ID: <c@x>\nReferences: a@x b@x\n\n")
    assert parsed.references == ("<a@x>", "<b@x>")
    assert parsed.defects


_HEADER_NAMES = st.sampled_from(["Subject", "Message-ID", "References", "In-Reply-To", "Date", "From", "X-Junk"])
_ENCODED = st.builds(
    lambda cs, enc, text: f"=?{cs}?{enc}?{text}?=",
    st.sampled_from(["utf-8", "iso-8859-1", "x-bogus", "", "utf-7"]),
    st.sampled_from(["q", "b", "Q", "B", "x"]),
    st.text(alphabet="abcXYZ=_+/0129?", max_size=12),
)
_VALUE = st.lists(
    st.one_of(st.text(max_size=20), _ENCODED, st.just("<a@b>"), st.just("<"), st.just("\r\n "), st.just("\n\t")),
    max_size=6,
).map("".join)
_HEADERISH = st.lists(st.tuples(_HEADER_NAMES, _VALUE), max_size=8).map(
    lambda items: "".join(f"{name}: {value}\r\n" for name, value in items) + "\r\nbody"
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400), _HEADERISH, _HEADERISH.map(str.encode)))
def test_parse_headers_never_raises_on_arbitrary_input(raw: str | bytes) -> None:
    """Any bytes or text parse to a well-formed best-effort result; strict mode only raises MessageHeaderError."""
    headers = MessageHeaders.parse_headers(raw)
    assert headers.message_id.startswith("<")
    assert headers.message_id not in headers.references
    assert isinstance(headers.subject, str)
    assert MessageHeaders.from_dict(headers.to_dict()) == headers
    assert MessageHeaders.parse_headers(raw) == headers
    try:
        strict = MessageHeaders.parse_headers(raw, strict=True)
    except MessageHeaderError:
        assert headers.defects
    else:
        assert strict.defects == ()


# -- a real email thread over SMTP -----------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append(envelope.original_content or envelope.content)
        return "250 OK"


def _mail(
    subject: str, message_id: str, *, in_reply_to: str | None = None, references: list[str] | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Zoë Example <zoe@example.org>"
    msg["To"] = "team@example.org"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    msg.set_content("hello\n")
    return msg


def test_real_email_thread_over_smtp_threads_correctly() -> None:
    """Five mails with encoded subjects, sent over real SMTP out of order, form one correctly nested thread."""
    long = "x" * 60
    root = f"<root.{long}@example.org>"
    r1 = f"<r1.{long}@example.org>"
    r2 = f"<r2.{long}@example.org>"
    r3 = "<r3@example.org>"
    r4 = "<r4@example.org>"
    mails = [
        _mail("Re: Café — réunion 🚀", r2, in_reply_to=r1, references=[root, r1]),
        _mail("Café — réunion 🚀", root),
        _mail("Re: Café — réunion 🚀", r1, in_reply_to=root, references=[root]),
        _mail("Re: Café — réunion 🚀", r3, in_reply_to=root),  # no References, like some clients
        _mail(
            "Re: Re: Café — réunion 🚀 et un très long sujet qui sera replié sur plusieurs lignes",
            r4,
            in_reply_to=r2,
            references=[root, r1, r2],
        ),
    ]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=5) as smtp:
            for mail in mails:
                smtp.send_message(mail)
    finally:
        controller.stop()
    assert len(inbox.received) == 5
    assert b"=?utf-8?" in inbox.received[1]  # the subject really travelled RFC 2047-encoded
    assert b"\r\n " in inbox.received[4].split(b"\r\n\r\n", 1)[0]  # and long headers were folded
    assert b"References: =?utf-8?" in inbox.received[0]  # Python's mailer even encodes long References

    parsed = [MessageHeaders.parse_headers(raw) for raw in inbox.received]
    assert all(p.defects == () for p in parsed)
    assert parsed[1].subject == "Café — réunion 🚀"
    assert parsed[4].subject.endswith("replié sur plusieurs lignes")
    assert {p.conversation_id for p in parsed} == {root}

    tracker = ConversationTracker("sqlite://")
    tracker.track_headers(*parsed)
    thread = [(e.depth, e.message.message_id) for e in tracker.get_thread(root)]
    assert thread == [(0, root), (1, r1), (2, r2), (3, r4), (1, r3)]


def test_apply_to_writes_id_subject_and_chain_into_an_email() -> None:
    """apply_to puts Message-ID, Subject, In-Reply-To and References on an EmailMessage, replacing old ones."""
    from email import message_from_bytes
    from email.message import EmailMessage
    from email.policy import default

    root = MessageHeaders.create("Café launch", platform="email")
    reply = root.reply()
    msg = EmailMessage()
    msg["Subject"] = "old"
    reply.apply_to(msg)
    msg.set_content("hi")
    parsed = MessageHeaders.parse_headers(msg.as_bytes())
    assert parsed.message_id == reply.message_id
    assert parsed.in_reply_to == root.message_id
    assert parsed.references == (root.message_id,)
    assert parsed.subject == "Re: Café launch"
    assert len(message_from_bytes(msg.as_bytes(), policy=default).get_all("Subject")) == 1
