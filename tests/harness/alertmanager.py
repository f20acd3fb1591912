"""A real Alertmanager (Debian's prometheus-alertmanager) delivering to a webhook receiver in the test."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .procs import free_port, need_binary, wait_port


@dataclass(frozen=True)
class Notification:
    """One alert in one webhook delivery: when it arrived, firing or resolved, its labels."""

    received_at: float
    status: str
    labels: dict[str, str]

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class WebhookReceiver:
    """A small HTTP server recording every alert Alertmanager posts to it."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.time()
                with receiver._lock:
                    receiver.notifications += [
                        Notification(now, alert["status"], dict(alert["labels"])) for alert in body["alerts"]
                    ]
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def first(self, alertname: str, status: str, *, after: float = 0.0, **labels: str) -> Notification | None:
        """The first notification of *alertname* with *status* (and these labels) received after *after*."""
        with self._lock:
            for note in self.notifications:
                if (
                    note.alertname == alertname
                    and note.status == status
                    and note.received_at > after
                    and labels.items() <= note.labels.items()
                ):
                    return note
        return None


class AlertmanagerServer:
    """prometheus-alertmanager on a free port, routing every alert on its own to a webhook at once."""

    def __init__(self, webhook_url: str) -> None:
        self.binary = need_binary("prometheus-alertmanager", "prometheus-alertmanager")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="commtel-am-"))
        self.webhook_url = webhook_url
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> AlertmanagerServer:
        config = self.dir / "am.yml"
        config.write_text(
            "route:\n"
            "  receiver: webhook\n"
            "  group_by: ['...']\n"  # every alert is its own group: one notification each
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 4h\n"
            "receivers:\n"
            "  - name: webhook\n"
            "    webhook_configs:\n"
            f"      - url: {json.dumps(self.webhook_url)}\n"
            "        send_resolved: true\n"
        )
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address={self.address}",
                "--cluster.listen-address=",  # no gossip: a single instance
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "log").open("wb"),
        )
        wait_port(self.port, 30, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
