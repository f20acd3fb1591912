"""E-mail sender with threading and tracking: reply chains, a retried 451, leased claims.

A customer's e-mail arrives (raw bytes with an RFC 2047 encoded subject and a
``References`` chain). The bot answers it twice and opens a new thread, sending
through a local SMTP relay (``SimulatedMailServer``) that answers the first message
with a transient ``451``. What the example shows:

* ``MessageHeaders.parse_headers`` decodes the subject and the chain;
  ``reply()`` builds ``In-Reply-To``/``References`` (``"Re: "`` added once).
* ``commtel.instrument(smtplib.SMTP, methods=["send_message"], policy=...)`` guards
  plain ``smtplib``: 4xx replies are retried, 5xx are not, each send is a span.
* ``ConversationTracker`` (SQLite in a temporary directory) tracks the outbox;
  a worker claims each message (a lease), sends it and completes the claim.
* The thread view shows the conversation the relay received, in reply order.

Run it::

    .venv/bin/python examples/email_sender.py
"""

from __future__ import annotations

import smtplib
import tempfile
import time

from email.message import EmailMessage
from pathlib import Path

import commtel
import commtel.retries

from commtel import MessageHeaders, MessageState, RetryConfig
from commtel.instrumentation import HostPolicy
from commtel.simulator import SimulatedMailServer


INBOUND = (
    b"From: Ana <ana@customer.example>\r\n"
    b"To: support@shop.example\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_order_=E2=98=95_not_delivered?=\r\n"
    b"Message-ID: <order-issue@customer.example>\r\n"
    b"In-Reply-To: <order-confirmation@shop.example>\r\n"
    b"References: <order-confirmation@shop.example>\r\n"
    b"\r\n"
    b"My order has not arrived.\r\n"
)
SUPPORT = "support@shop.example"


def is_transient(exc: BaseException) -> bool:
    """SMTP 4xx replies (greylisting, a full queue) are worth another try; 5xx are final."""
    return isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500


def to_email(headers: MessageHeaders, to: str, body: str) -> EmailMessage:
    """An e-mail carrying *headers*' id, subject and reply chain."""
    message = EmailMessage()
    message["From"], message["To"] = SUPPORT, to
    headers.apply_to(message)  # id, subject (RFC 2047-encoded when sent) and reply chain
    message.set_content(body)
    return message


def send_outbox(
    tracker: commtel.ConversationTracker, relay: SimulatedMailServer, outbox: dict[str, EmailMessage]
) -> int:
    """Claim pending messages one by one, send each, complete (or fail) its claim; returns how many were sent."""
    sent = 0
    with smtplib.SMTP(relay.host, relay.port, timeout=5) as smtp:
        while (claim := tracker.claim_next("mailer-1")) is not None:
            try:
                smtp.send_message(outbox[claim.message_id])  # instrumented: a 451 is retried
            except smtplib.SMTPException as exc:
                tracker.fail(claim, exc)
                continue
            tracker.complete(claim)
            sent += 1
    return sent


def main() -> int:
    commtel.configure_logging("WARNING", json=False)
    commtel.instrument(
        smtplib.SMTP,
        methods=["send_message"],
        operation="send_mail",
        platform="email",
        policy=HostPolicy(retry=RetryConfig(max_attempts=3, base_delay=0.05, on=is_transient)),
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as state_dir, SimulatedMailServer() as relay:
        tracker = commtel.ConversationTracker(Path(state_dir))  # keeps commtel-tracker.db there
        try:
            inbound = MessageHeaders.parse_headers(INBOUND)
            answer = inbound.reply()
            follow_up = answer.reply()
            announcement = MessageHeaders.create("Résumé: delivery delays this week")
            outbox = {
                answer.message_id: to_email(answer, "ana@customer.example", "We are on it."),
                follow_up.message_id: to_email(follow_up, "ana@customer.example", "It ships today."),
                announcement.message_id: to_email(announcement, "customers@shop.example", "Sorry for the wait."),
            }
            # The inbound message is tracked as handled; the outbox waits as pending.
            tracker.track_headers(inbound)
            tracker.set_message_state(inbound.conversation_id, inbound.message_id, MessageState.IN_PROGRESS)
            tracker.set_message_state(inbound.conversation_id, inbound.message_id, MessageState.COMPLETED)
            tracker.track_headers(answer, follow_up, announcement)

            wire = outbox[answer.message_id].as_bytes()
            relay.fail_next(1, "451 4.3.0 mailbox busy, try again later")
            sent = send_outbox(tracker, relay, outbox)
            thread = tracker.get_thread(inbound.conversation_id)
            counts = tracker.counts()
        finally:
            tracker.close()
            commtel.uninstrument(smtplib.SMTP)
        delivered = [MessageHeaders.parse_headers(m.as_bytes()) for m in relay.messages]
    elapsed = time.monotonic() - started
    retries = commtel.retries.get_retry_stats_detailed()["operations"]["send_mail"]["retries"]

    subject_line = next(line for line in wire.splitlines() if line.startswith(b"Subject:"))
    print(f"inbound subject decoded: {inbound.subject!r}")
    print(f"reply subject on the wire: {subject_line.decode()}")
    print(f"sent {sent} messages in {elapsed:.2f}s; SMTP retries after the 451: {retries}")
    print(f"thread {inbound.conversation_id}:")
    for entry in thread:
        print(f"  {'  ' * entry.depth}{entry.message.state.value:<9} {entry.message.subject}")
    print("tracker:", {state.value: n for state, n in counts.items()})

    if sent != 3 or len(delivered) != 3:
        msg = f"expected 3 delivered messages, sent={sent}, relay has {len(delivered)}"
        raise SystemExit(msg)
    if retries != 1:
        msg = f"expected exactly one retry of the 451, got {retries}"
        raise SystemExit(msg)
    got = {h.message_id: h for h in delivered}
    if got[follow_up.message_id].references != (*inbound.references, inbound.message_id, answer.message_id):
        msg = f"reply chain lost in transit: {got[follow_up.message_id]}"
        raise SystemExit(msg)
    if (
        b"=?utf-8?" not in subject_line
        or got[answer.message_id].subject != "Re: Café order ☕ not delivered"
        or got[follow_up.message_id].subject != got[answer.message_id].subject
    ):
        msg = f"subject did not survive encoding: {got[answer.message_id].subject!r}"
        raise SystemExit(msg)
    if [e.depth for e in thread] != [0, 1, 2] or counts[MessageState.COMPLETED] != 4:
        msg = f"unexpected thread view or counts: {thread}, {counts}"
        raise SystemExit(msg)
    print("OK: 3 sent, one 451 retried, reply chain and encoded subject intact")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
