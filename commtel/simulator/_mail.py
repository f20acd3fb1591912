"""A simulated mail relay: a real SMTP server (aiosmtpd) on 127.0.0.1 with failure injection."""

from __future__ import annotations

import email
import email.policy
import socket
import threading

from email.message import EmailMessage
from types import TracebackType
from typing import Any

from typing_extensions import Self

from .. import _validation as check
from .._optional import requires


__all__ = ["SimulatedMailServer"]


class _Handler:
    def __init__(self, server: SimulatedMailServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        return self.server._deliver(envelope.content)


class SimulatedMailServer:
    """An SMTP relay that keeps every accepted message; ``fail_next`` answers 4xx/5xx instead.

    Example::

        with SimulatedMailServer() as relay, smtplib.SMTP(relay.host, relay.port) as smtp:
            smtp.send_message(msg)
        relay.messages[0]["Subject"]

    .. versionadded:: 0.1.0
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        with requires("aiosmtpd"):
            from aiosmtpd.controller import Controller
        port = check.whole(port, "port", owner="SimulatedMailServer", minimum=0)
        if port == 0:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
        self.host = host
        self.port = port
        self.messages: list[EmailMessage] = []
        self._fail: list[str] = []
        self._lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname=host, port=port)
        self._running = False

    def __repr__(self) -> str:
        return f"SimulatedMailServer({self.host}:{self.port}, messages={len(self.messages)})"

    def start(self) -> Self:
        """Serve in a background thread."""
        if not self._running:
            self._controller.start()
            self._running = True
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail_next(self, count: int = 1, reply: str = "451 4.3.0 try again later") -> None:
        """Answer the next *count* messages with *reply* (4xx: transient, 5xx: permanent)."""
        with self._lock:
            self._fail.extend([reply] * count)

    def _deliver(self, content: bytes) -> str:
        with self._lock:
            if self._fail:
                return self._fail.pop(0)
            message = email.message_from_bytes(content, policy=email.policy.default)
            self.messages.append(message)
        return "250 OK"
