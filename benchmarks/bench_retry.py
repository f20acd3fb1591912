"""Retry on the success path: commtel vs tenacity, stamina and backoff (sync and async).

commtel is measured twice: with the default listeners (the telemetry listener counts
``commtel_retry_calls_total{result="success_first_try"}`` on every call) and with
``set_listeners([])``.
"""

from __future__ import annotations

import backoff
import stamina
import tenacity

from prometheus_client import CollectorRegistry

import commtel
import commtel.events

from benchmarks._harness import Case, measure
from commtel.telemetry._metrics import use_registry


def _listeners(case: Case, *, on: bool) -> Case:
    """Wrap *case* so it is measured with default listeners (on) or none (off)."""
    inner = Case(case.group, case.name, fn=case.fn, afn=case.afn)

    def run() -> float:
        commtel.events.set_listeners(None if on else [])
        try:
            return measure(inner)
        finally:
            commtel.events.set_listeners(None)

    return Case(case.group, case.name, measure=run, note=case.note, target=case.target)


def cases() -> list[Case]:
    use_registry(CollectorRegistry())

    def bare() -> int:
        return 1

    async def abare() -> int:
        return 1

    ours = commtel.retry(operation="bench", platform="bench")(bare)
    aours = commtel.retry(operation="abench", platform="bench")(abare)
    ten = tenacity.retry(stop=tenacity.stop_after_attempt(3))(bare)
    aten = tenacity.retry(stop=tenacity.stop_after_attempt(3))(abare)
    sta = stamina.retry(on=Exception, attempts=3)(bare)
    asta = stamina.retry(on=Exception, attempts=3)(abare)
    bac = backoff.on_exception(backoff.expo, Exception, max_tries=3)(bare)
    abac = backoff.on_exception(backoff.expo, Exception, max_tries=3)(abare)

    sync, asyn = "retry, success path (sync)", "retry, success path (async)"
    return [
        Case(sync, "tenacity @retry", ten, baseline=True),
        Case(sync, "stamina @retry", sta),
        Case(sync, "backoff.on_exception", bac),
        _listeners(Case(sync, "commtel @retry", ours, note="(metrics on)", target=0.15), on=True),
        _listeners(Case(sync, "commtel @retry", ours, note="(listeners off)", target=0.15), on=False),
        Case(asyn, "tenacity @retry", afn=aten, baseline=True),
        Case(asyn, "stamina @retry", afn=asta),
        Case(asyn, "backoff.on_exception", afn=abac),
        _listeners(Case(asyn, "commtel @retry", afn=aours, note="(metrics on)", target=0.15), on=True),
        _listeners(Case(asyn, "commtel @retry", afn=aours, note="(listeners off)", target=0.15), on=False),
    ]
