"""`commtel demo`: serves every contract metric, exports correlated spans, stops cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import urllib.request

import pytest

from prometheus_client.parser import text_string_to_metric_families

from commtel.telemetry import CONTRACT
from tests.harness.waiting import eventually


pytestmark = pytest.mark.slow


def _families(target: str) -> dict[str, list]:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name, []).extend(family.samples)
    return out


def _missing(target: str) -> list[str]:
    families = _families(target)
    missing = []
    for name, (kind, _labels) in CONTRACT.items():
        base = name.removesuffix("_total") if kind == "counter" else name
        if not families.get(base):
            missing.append(name)
    return missing


def test_demo_serves_every_contract_metric(running_demo) -> None:
    """Within a minute the demo's /metrics has samples of every metric of the telemetry contract."""
    assert eventually(lambda: not _missing(running_demo.target), timeout=75, interval=1)


def test_demo_exports_spans_with_correlation_ids(running_demo) -> None:
    """Spans of instrumented calls reach the OTLP receiver, each with commtel.correlation_id."""
    spans = running_demo.otlp.store.wait_for(
        lambda s: s.resource.get("service.name") == "commtel-demo-test", timeout=30
    )
    assert spans
    names = {s.name for s in spans}
    assert {"GET", "POST"} & names, names
    assert all(s.attributes.get("commtel.correlation_id") for s in spans)
    traced = {s.attributes["commtel.correlation_id"] for s in spans if s.name in {"GET", "POST"}}
    assert len(traced) > 1


# `python -m commtel` with Ctrl-C as in a terminal, however this suite was started: a shell starting
# it in the background (`nohup ... &`) passes SIGINT on ignored, and Python then never interrupts.
_AS_IN_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('commtel', run_name='__main__')"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_stops_cleanly_on_ctrl_c_and_sigterm(tmp_path, signum: int) -> None:
    """Ctrl-C, and SIGTERM alike, stop the workers, flush spans to the local file and print the summary; exit 0."""
    import os
    import subprocess
    import sys

    from tests.harness.procs import free_port, wait_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC"))}
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _AS_IN_A_TERMINAL,
            "demo",
            "--metrics-port",
            str(port),
            "--live",
            "off",
            "--workers",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_port(port, 60, proc)  # type: ignore[arg-type]

    def every_platform_served() -> bool:  # operations completed on each platform (not only created series)
        families = _families(f"127.0.0.1:{port}")
        done = {
            sample.labels.get("platform")
            for sample in families.get("commtel_operation_duration_seconds", [])
            if sample.name.endswith("_count") and sample.value > 0
        }
        return {"social", "chat", "email"} <= done

    assert eventually(every_platform_served, timeout=60, interval=0.5)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "summary per platform" in out
    for platform in ("social", "chat", "email"):
        assert platform in out
    spans_file = tmp_path / "commtel-demo-spans.jsonl"
    assert "spans flushed to commtel-demo-spans.jsonl" in out
    lines = spans_file.read_text().splitlines()
    assert lines and all('"commtel.correlation_id"' in line for line in lines)


def _lines_until(running_demo, pattern: str, timeout: float) -> list[tuple[float, str]]:
    """The demo's output lines once one matches *pattern* (all of them so far if none did in time)."""
    import re

    eventually(lambda: any(re.search(pattern, line) for _, line in running_demo.lines), timeout=timeout, interval=0.5)
    return list(running_demo.lines)


def test_chat_breaker_opens_probes_and_closes_within_a_minute(running_demo) -> None:
    """The chat outage drill: closed -> open -> half_open -> closed, each printed as it happens, within a minute."""
    lines = _lines_until(running_demo, r"breaker chat: half_open -> closed", timeout=90)
    sequence = ["breaker chat: closed -> open", "breaker chat: open -> half_open", "breaker chat: half_open -> closed"]
    times = []
    for step in sequence:
        after = times[-1] if times else 0.0
        times.append(next((t for t, line in lines if step in line and t >= after), None))
        assert times[-1] is not None, f"no '{step}' in:\n{running_demo.output[-3000:]}"
    assert times[-1] - times[0] <= 60


def test_every_scenario_handles_rejections(running_demo) -> None:
    """Breaker rejections and refused token requests happen, and no scenario lets one escape ('unexpected')."""
    _lines_until(running_demo, r"no access token", timeout=90)
    output = _lines_until(running_demo, r"rejected by the breaker", timeout=60)
    text = "\n".join(line for _, line in output)
    assert "rejected by the breaker" in text and "no access token" in text
    assert "unexpected" not in text


def test_plain_output_prints_changes_not_the_whole_table(running_demo) -> None:
    """Without a terminal the demo prints notes and, every 10 s, what changed: never the table while it runs."""
    _lines_until(running_demo, r"^\[\s*2\ds\]", timeout=60)
    started = running_demo.lines[0][0]
    progress = [(t, line) for t, line in running_demo.lines if line.startswith("[")]
    assert progress
    assert all("┏" not in line and "calls/" not in line for _, line in running_demo.lines)
    changes = [t for t, line in progress if " +" in line]
    assert len(changes) <= (running_demo.lines[-1][0] - started) / 10 + 2
