"""`commtel demo --alerts` in a subprocess, and the real Prometheus + Alertmanager + webhook watching it.

One demo serves the whole session: the demo and ops tests read its metrics and spans, and
its alert drills (started 10 s in, held ALERT_DRILL_S) drive the alert end-to-end test
while the rest of the suite runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from dataclasses import dataclass
from pathlib import Path

import pytest

from .alertmanager import AlertmanagerServer, WebhookReceiver
from .otlp import OTLPHttpReceiver
from .procs import free_port
from .prometheus import PrometheusServer
from .waiting import eventually


ALERT_DRILL_S = 150.0
_DRILL = re.compile(r"alert drills (started|stopped) at (\d+\.\d+)")


@dataclass
class Alerting:
    """The session's Prometheus scraping the demo with the exported rules; Alertmanager when installed."""

    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer | None
    webhook: WebhookReceiver


class RunningDemo:
    """`commtel demo --alerts` in a subprocess: metrics on a free port, spans over OTLP/HTTP to a receiver."""

    def __init__(self, otlp: OTLPHttpReceiver, workdir: str) -> None:
        self.port = free_port()
        self.otlp = otlp
        self.workdir = workdir
        self.alerting: Alerting | None = None
        self.lines: list[tuple[float, str]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC"))}
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, OTEL_SERVICE_NAME="commtel-demo-test", PYTHONUNBUFFERED="1"
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "commtel",
                "demo",
                "--duration",
                "1200",
                "--metrics-port",
                str(self.port),
                "--live",
                "off",
                "--workers",
                "4",
                "--alerts",
                str(ALERT_DRILL_S),
            ],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="demo-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def drill_time(self, event: str, timeout: float) -> float | None:
        """When the alert drills *event* ("started" or "stopped"), as the demo printed it."""

        def found() -> list[float] | bool:
            times = [float(m.group(2)) for _, line in self.lines if (m := _DRILL.search(line)) and m.group(1) == event]
            return times or self.proc.poll() is not None

        times = eventually(found, timeout=timeout, interval=0.5)
        return times[0] if isinstance(times, list) and times else None

    def stop(self) -> tuple[int, str]:
        """Stop the demo as ``docker stop`` does (SIGTERM); its exit code and everything it printed.

        Not SIGINT: a suite started in the background (``nohup ... &``) passes SIGINT on ignored.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return self.proc.returncode, self.output


def watch(demo: RunningDemo, request: pytest.FixtureRequest, workdir: Path) -> Alerting | None:
    """Point the session's Prometheus at *demo* with the bundle's rules and Alertmanager (None: no Prometheus).

    The rules are the ones ``commtel dashboards export --selector 'job="commtel"'`` writes (the
    test job's name), so the selected export itself is what evaluates.
    """
    from commtel._bundle import export_bundle

    try:
        prometheus: PrometheusServer = request.getfixturevalue("prometheus")
    except pytest.skip.Exception:
        return None
    written = export_bundle(workdir, selector='job="commtel"')
    rules = [str(path) for path in written if path.name.endswith(".rules.yml")]
    webhook = WebhookReceiver().start()
    request.addfinalizer(webhook.stop)
    alertmanager: AlertmanagerServer | None
    try:
        alertmanager = AlertmanagerServer(webhook.url).start()
        request.addfinalizer(alertmanager.stop)
    except pytest.skip.Exception:
        alertmanager = None
    prometheus.set_targets(
        [demo.target], rule_files=rules, alertmanagers=[alertmanager.address] if alertmanager else []
    )
    return Alerting(prometheus, alertmanager, webhook)
