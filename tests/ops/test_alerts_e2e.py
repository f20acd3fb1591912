"""The alerts end to end: demo drills -> real Prometheus with the exported rules -> real Alertmanager -> webhook.

The session's demo runs with ``--alerts``: 10 s after it starts (Prometheus has seen every
series at 0 by then) it holds a CRM outage, an export rush, a payments outage, a Redis
outage and a rotated OAuth client secret for ALERT_DRILL_S seconds, then ends them. The
rest of the suite runs meanwhile; this test waits for what is left.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.harness.alertmanager import Notification, WebhookReceiver
from tests.harness.demo import ALERT_DRILL_S, RunningDemo
from tests.harness.waiting import eventually


pytestmark = [pytest.mark.slow, pytest.mark.after_the_drill]

FIRE_WITHIN_S = 180.0  # a sustained retry storm, throttling or open breaker fires within 3 minutes
RESOLVE_WITHIN_S = 180.0  # and clears within minutes of the drill's end


def _required(demo: RunningDemo) -> dict[str, dict[str, str]]:
    """The alerts that must fire and resolve, with the labels that identify the drilled series."""
    service = {"job": "commtel", "instance": demo.target}
    return {
        "CommtelRetryStorm": {**service, "operation": "sync_contacts", "platform": "crm"},
        "CommtelSustainedThrottling": {**service, "limiter": "bulk-export", "platform": "crm"},
        "CommtelCircuitOpen": {**service, "breaker": "payments"},
    }


def _wait(
    webhook: WebhookReceiver, wanted: dict[str, dict[str, str]], status: str, after: float, until: float
) -> dict[str, Notification]:
    found: dict[str, Notification] = {}

    def all_found() -> bool:
        for alert, labels in wanted.items():
            if alert not in found and (note := webhook.first(alert, status, after=after, **labels)):
                found[alert] = note
        return len(found) == len(wanted)

    eventually(all_found, timeout=until - time.time(), interval=1.0)
    return found


@pytest.mark.timeout(10 + ALERT_DRILL_S + RESOLVE_WITHIN_S + 120)
def test_drilled_alerts_reach_the_webhook_within_3_minutes_and_resolve_after_the_drill(running_demo) -> None:
    """Retry storm, sustained throttling and open breaker: fired ≤ 3 min after the drill began, resolved ≤ 3 min after it ended."""
    alerting = running_demo.alerting
    if alerting is None or alerting.alertmanager is None:
        msg = "needs prometheus and prometheus-alertmanager (apt-get install -y prometheus prometheus-alertmanager)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    webhook = alerting.webhook
    wanted = _required(running_demo)
    started = running_demo.drill_time("started", timeout=60)
    assert started is not None, running_demo.output[-3000:]

    fired = _wait(webhook, wanted, "firing", started, started + FIRE_WITHIN_S)
    stopped = running_demo.drill_time("stopped", timeout=max(0.0, started + ALERT_DRILL_S + 30 - time.time()))
    assert stopped is not None, running_demo.output[-3000:]
    resolved = _wait(webhook, wanted, "resolved", stopped, stopped + RESOLVE_WITHIN_S)

    fire_s = {alert: round(note.received_at - started, 1) for alert, note in fired.items()}
    resolve_s = {alert: round(note.received_at - stopped, 1) for alert, note in resolved.items()}
    others = sorted(
        {(n.alertname, n.status) for n in webhook.notifications}
        - {(a, s) for a in wanted for s in ("firing", "resolved")}
    )
    print(f"fired after the drill began (s): {fire_s}; resolved after it ended (s): {resolve_s}; also: {others}")  # noqa: T201
    assert set(fire_s) == set(wanted), f"not fired within {FIRE_WITHIN_S:.0f} s: {set(wanted) - set(fire_s)}"
    assert all(0 < s <= FIRE_WITHIN_S for s in fire_s.values()), fire_s
    assert set(resolve_s) == set(wanted), (
        f"not resolved within {RESOLVE_WITHIN_S:.0f} s: {set(wanted) - set(resolve_s)}"
    )
    assert all(0 < s <= RESOLVE_WITHIN_S for s in resolve_s.values()), resolve_s
