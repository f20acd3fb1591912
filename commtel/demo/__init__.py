"""``commtel demo``: instrumented clients against local simulated platforms.

Starts the simulated platforms, serves /metrics, exports traces (OTLP when the
standard variables are set, else a JSON-lines file), runs concurrent workers that
exercise every component, shows a live view, and ends with a summary per platform.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

from collections.abc import Iterator
from types import FrameType

from .. import _events
from .._optional import requires
from ..telemetry import configure, configure_logging, shutdown
from ._report import DemoStats
from ._world import DemoWorld


with requires("rich"):
    from rich.console import Console
    from rich.live import Live


__all__ = ["run_demo"]


def run_demo(
    *,
    duration_s: float | None = None,
    metrics_port: int = 9464,
    metrics_addr: str = "127.0.0.1",
    workers: int = 4,
    spans_file: str = "commtel-demo-spans.jsonl",
    live: str = "auto",
    log_file: str = "commtel-demo.log",
    alerts_s: float | None = None,
) -> int:
    """Run the demo for *duration_s* seconds (until Ctrl-C when ``None``); returns an exit code.

    SIGTERM (``kill``, ``docker stop``) stops it as Ctrl-C does: workers stopped, telemetry
    flushed, summary printed, exit code 0. With *alerts_s*, the alert drills hold every
    alert's condition that long (see ``_alerts``).
    """
    if workers < 1:
        msg = f"--workers must be at least 1, got {workers}"
        raise SystemExit(msg)
    console = Console(stderr=False)
    configure_logging("INFO", json=True, log_file=log_file, console=False)
    otlp = any(k in os.environ for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    config = configure(os.environ.get("OTEL_SERVICE_NAME", "commtel-demo"), spans_file=None if otlp else spans_file)
    stats = DemoStats()
    _events.set_listeners((*_events.active_listeners(), stats))
    world = DemoWorld(stats, metrics_port=metrics_port, metrics_addr=metrics_addr, workers=workers, alerts_s=alerts_s)
    world.start()
    where = f"{config.exporting} -> {config.endpoint}" if config.exporting else "not exported (an app provider is set)"
    console.print(
        f"[bold]commtel demo[/bold]: metrics on http://{metrics_addr}:{world.metrics_port}/metrics; spans {where}"
    )
    for name, url in world.urls().items():
        console.print(f"  {name}: {url}")
    use_live = live == "on" or (live == "auto" and sys.stdout.isatty())
    deadline = None if duration_s is None else time.monotonic() + duration_s
    stopped = threading.Event()
    try:
        with _terminate_as_interrupt():
            if use_live:
                with Live(stats.table(), console=console, refresh_per_second=4) as view:
                    while not _wait(stopped, deadline, 0.25):
                        view.update(stats.table())
            else:
                _plain(console, stats, stopped, deadline)
    except KeyboardInterrupt:
        console.print("interrupted: stopping workers and flushing telemetry …")
    finally:
        world.stop()
        flushed = shutdown(timeout_s=5.0)
        stats.print_summary(console)
        console.print(f"JSON logs in {log_file}")
        if config.exporting:
            console.print(f"spans {'flushed' if flushed else 'NOT fully flushed'} to {config.endpoint}")
        _events.set_listeners(None)
    return 0


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 - the handler signature
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _plain(console: Console, stats: DemoStats, stopped: threading.Event, deadline: float | None) -> None:
    """Non-TTY output: each note as it happens, and what changed every 10 seconds (never the whole table)."""
    started = time.monotonic()
    last = started
    while not _wait(stopped, deadline, 1.0):
        now = time.monotonic()
        for note in stats.notes():
            console.print(f"[{now - started:5.0f}s] {note}", highlight=False, markup=False, soft_wrap=True)
        if now - last >= 10.0:
            last = now
            if changed := stats.changes():
                console.print(f"[{now - started:5.0f}s] {changed}", highlight=False, markup=False, soft_wrap=True)
    for note in stats.notes():
        console.print(note, highlight=False, markup=False, soft_wrap=True)


def _wait(stopped: threading.Event, deadline: float | None, step: float) -> bool:
    """Sleep up to *step*; True once the deadline passed."""
    if deadline is None:
        stopped.wait(step)
        return False
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return True
    stopped.wait(min(step, remaining))
    return deadline - time.monotonic() <= 0
