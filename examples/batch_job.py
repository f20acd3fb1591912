"""Batch job with ErrorTracker and ProgressTracker: failed items are recorded, the batch goes on.

A job captions twelve images through a vision API (a local ``SimulatedPlatform``).
One file is not an image, and the API has two outages: a short one that retries
ride out and a longer one that outlasts them. What the example shows:

* ``ErrorTracker.track(item, ...)`` records a failing item with its context and lets
  the loop continue; ``summary()`` accounts for every failure by type.
* ``ProgressTracker`` (SQLite in a temporary directory, readable by other processes)
  stores the step, percent, details and ETA of the task for its user; ``finish_task``
  closes it.
* On a terminal, ``progress_bar`` draws a rich bar that follows the task; otherwise a
  registered callback prints one plain line per update.
* ``@commtel.retry`` on the API call: 503s are retried, a local ``ValueError`` is not.

Run it::

    .venv/bin/python examples/batch_job.py
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time

from pathlib import Path

import httpx

import commtel
import commtel.retries

from commtel import ErrorTracker, ProgressTracker
from commtel.progress import ProgressState, ProgressStatus, progress_bar
from commtel.simulator import SimulatedPlatform


ITEMS = [f"img-{n:02d}.jpg" for n in range(1, 12)]
ITEMS.insert(4, "notes.txt")
OUTAGES = {0: 2, 7: 3}  # before item i, the API answers the next n calls with 503
TASK = "caption-batch-1"


def caption(client: httpx.Client, retrying: commtel.RetryPolicy, name: str) -> str:
    """Caption one image; raises for items that cannot be processed."""
    if not name.endswith(".jpg"):
        msg = f"not an image: {name}"
        raise ValueError(msg)

    def call() -> str:
        response = client.post(f"/api/images/{name}/caption")
        response.raise_for_status()
        return str(response.json()["path"])

    return retrying.call(call)


def print_line(status: ProgressStatus) -> None:
    """Plain progress lines when stdout is not a terminal (CI logs, pipes)."""
    if status.state is not ProgressState.RUNNING:
        print(f"  task {status.task_id} {status.state.value}")
        return
    eta = "?" if status.eta_s is None else f"{status.eta_s:.1f}s"
    print(
        f"  [{status.progress_percent:5.1f}%] {status.current_step} (failed so far: "
        f"{status.details.get('failed', 0)}, eta {eta})"
    )


def main() -> int:
    commtel.configure_logging("ERROR", json=False)
    errors = ErrorTracker("caption_batch")
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as state_dir,
        SimulatedPlatform("vision") as api,
        httpx.Client(base_url=api.url, timeout=5) as client,
    ):
        progress = ProgressTracker(Path(state_dir), kind="caption_batch")
        progress.create_progress_session(TASK, user_id="operator-7")
        on_tty = sys.stdout.isatty()
        if not on_tty:
            progress.register_callback(TASK, print_line)
        # The API call is retried on 5xx and connection errors, three attempts in all.
        retrying = commtel.RetryPolicy(operation="caption_image", platform="vision", max_attempts=3, base_delay=0.02)
        with progress_bar(progress, TASK) if on_tty else contextlib.nullcontext():
            for index, name in enumerate(ITEMS):
                if index in OUTAGES:
                    api.fail_next(OUTAGES[index], 503)
                with errors.track(name, step="caption"):
                    caption(client, retrying, name)
                progress.update_progress(
                    TASK,
                    f"captioned {index + 1}/{len(ITEMS)}",
                    100 * (index + 1) / len(ITEMS),
                    {"failed": errors.failed},
                )
        final = progress.finish_task(TASK)
        stored = progress.get_progress(TASK, user_id="operator-7")  # what another process would read
        progress.close()
    elapsed = time.monotonic() - started
    summary = errors.summary()
    retries = commtel.retries.get_retry_stats_detailed()["operations"]["caption_image"]

    print(
        f"batch {TASK}: {final.state.value} in {elapsed:.2f}s, "
        f"{summary['successful']}/{summary['total']} items ok ({summary['success_rate']:.0f}%)"
    )
    print(f"errors by type: {summary['errors_by_type']}")
    for error in summary["errors"]:
        print(f"  {error['item']}: {error['type']}: {error['message'].splitlines()[0]}")
    print(
        f"retries: {retries['retries']} ({retries['success_after_retry']} item saved by retrying, "
        f"{retries['exhausted']} outlasted the retries)"
    )

    if summary["successful"] != 10 or summary["errors_by_type"] != {"ValueError": 1, "HTTPStatusError": 1}:
        msg = f"unexpected batch summary: {summary}"
        raise SystemExit(msg)
    if stored is None or stored.state.value != "completed" or stored.progress_percent != 100:
        msg = f"the stored task is not completed: {stored}"
        raise SystemExit(msg)
    if retries["success_after_retry"] != 1 or retries["exhausted"] != 1:
        msg = f"unexpected retry outcome: {retries}"
        raise SystemExit(msg)
    print("OK: 2 items failed and were recorded, the other 10 went through, progress stored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
