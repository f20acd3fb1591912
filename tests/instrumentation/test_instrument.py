"""commtel.instrument(obj): guard chosen methods of any object or class; uninstrument restores them exactly."""

from __future__ import annotations

import asyncio
import smtplib

from email.message import EmailMessage
from typing import Any

import pytest

from opentelemetry.trace import SpanKind

import commtel

from commtel import ConfigurationError, RetryConfig
from commtel.instrumentation import HostPolicy, is_instrumented


FAST = RetryConfig(max_attempts=3, base_delay=0.0, jitter=False)


class ChatClient:
    """A stand-in chat SDK with sync, async, static and class methods."""

    def __init__(self) -> None:
        self.failures = 0
        self.sent: list[str] = []

    def send(self, text: str) -> str:
        return self._deliver(text)

    def _deliver(self, text: str) -> str:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("reset")
        self.sent.append(text)
        return f"sent:{text}"

    async def asend(self, text: str) -> str:
        await asyncio.sleep(0)
        return self._deliver(text)

    @staticmethod
    def version() -> str:
        return "1.0"

    @classmethod
    def make(cls) -> ChatClient:
        return cls()


def test_instance_methods_are_guarded_sync_and_async(spans, registry) -> None:
    """Sync and async methods of one object retry, span and count under their operation names."""
    chat = ChatClient()
    commtel.instrument(chat, methods=["send", "asend"], platform="chat", policy=HostPolicy(retry=FAST))
    chat.failures = 1
    assert chat.send("hi") == "sent:hi"
    chat.failures = 1
    assert asyncio.run(chat.asend("yo")) == "sent:yo"
    names = [s.name for s in spans.get_finished_spans() if s.kind is SpanKind.INTERNAL]
    assert names == ["ChatClient.send", "ChatClient.asend"]
    assert (
        registry.get_sample_value(
            "commtel_retry_calls_total",
            {"operation": "ChatClient.asend", "platform": "chat", "result": "success_after_retry"},
        )
        == 1
    )


def test_uninstrument_restores_the_exact_originals() -> None:
    """Instance wrappers are removed (the class's function shows through again); class attributes come back identical."""
    chat = ChatClient()
    originals = {name: ChatClient.__dict__[name] for name in ("send", "asend", "version", "make")}
    commtel.instrument(chat, methods=["send"])
    assert is_instrumented(chat, "send") and "send" in vars(chat)
    commtel.uninstrument(chat)
    assert "send" not in vars(chat)
    commtel.instrument(ChatClient, methods=["send", "asend", "version", "make"], operation="chat")
    assert ChatClient.version() == "1.0" and isinstance(ChatClient.make(), ChatClient)
    assert ChatClient().send("x") == "sent:x"
    commtel.uninstrument(ChatClient)
    assert {name: ChatClient.__dict__[name] for name in originals} == originals


def test_instrumenting_a_class_guards_every_instance(spans) -> None:
    """Guarding a class method applies to instances created before and after."""
    before = ChatClient()
    commtel.instrument(ChatClient, methods="send", operation="chat.send", policy={"retry": {"max_attempts": 2}})
    try:
        before.send("a")
        ChatClient().send("b")
    finally:
        commtel.uninstrument(ChatClient)
    assert [s.name for s in spans.get_finished_spans()] == ["chat.send", "chat.send"]


def test_instrumenting_twice_replaces_the_guard() -> None:
    """A second instrument() call rewraps instead of stacking guards."""
    chat = ChatClient()
    commtel.instrument(chat, methods=["send"], operation="one")
    commtel.instrument(chat, methods=["send"], operation="two")
    commtel.uninstrument(chat)
    assert "send" not in vars(chat)


def test_bad_targets_are_configuration_errors() -> None:
    """Unknown methods, generators and empty method lists are rejected with the method named."""
    chat = ChatClient()
    with pytest.raises(ConfigurationError, match="nope"):
        commtel.instrument(chat, methods=["nope"])
    with pytest.raises(ConfigurationError):
        commtel.instrument(chat, methods=[])

    class Gen:
        def items(self) -> Any:
            yield 1

    with pytest.raises(ConfigurationError, match="generator"):
        commtel.instrument(Gen(), methods=["items"])


def _message(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "app@example.com"
    msg["To"] = to
    msg["Subject"] = "hello"
    msg.set_content("body")
    return msg


def _transient_smtp(exc: BaseException) -> bool:
    return isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500


def test_smtp_mail_is_retried_on_a_transient_error(smtp_server, spans, registry) -> None:
    """smtplib.SMTP.send_message through a guard: a 451 is retried, the mail arrives, spans and metrics say so."""
    commtel.instrument(
        smtplib.SMTP,
        methods=["send_message"],
        operation="send_mail",
        platform="email",
        policy=HostPolicy(retry=RetryConfig(max_attempts=3, base_delay=0.0, on=_transient_smtp)),
    )
    try:
        smtp_server.fail_next(1)
        with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
            smtp.send_message(_message("user@example.com"))
    finally:
        commtel.uninstrument(smtplib.SMTP)
    assert len(smtp_server.messages) == 1
    [span] = [s for s in spans.get_finished_spans() if s.name == "send_mail"]
    assert span.attributes["commtel.platform"] == "email"
    assert [e.attributes["commtel.retry.reason"] for e in span.events if e.name == "commtel.retry"] == ["SMTPDataError"]
    labels = {"operation": "send_mail", "platform": "email"}
    assert registry.get_sample_value("commtel_retry_calls_total", {**labels, "result": "success_after_retry"}) == 1
    assert registry.get_sample_value("commtel_operation_duration_seconds_count", {**labels, "outcome": "success"}) == 1
    assert "send_message" not in vars(smtplib.SMTP) or not is_instrumented(smtplib.SMTP, "send_message")


def test_each_top_level_call_gets_its_own_correlation_id(spans) -> None:
    """Outside any context, two guarded calls carry two correlation ids, each shared by the spans inside it."""
    from commtel.telemetry import start_span

    class Client:
        def call(self) -> None:
            with start_span("inside"):
                pass

    client = Client()
    commtel.instrument(client, methods=["call"], platform="chat")
    client.call()
    client.call()
    finished = spans.get_finished_spans()
    ids = [s.attributes["commtel.correlation_id"] for s in finished]
    assert [s.name for s in finished] == ["inside", "Client.call", "inside", "Client.call"]
    assert ids[0] == ids[1] != ids[2] == ids[3]
