"""A tracker worker process for the multi-process tests.

Usage: python -m tests.tracker.worker URL WORKER_ID LEASE_S BATCH DRIVER [HOLD]

DRIVER is ``sync`` (ConversationTracker) or ``async`` (AsyncConversationTracker on
its own event loop, see tests/tracker/drivers.py).

Prints "ready", waits for a line on stdin, then claims and completes messages
until none are pending or in progress; prints each completed id as it commits
("done <id>") and finally "finished <n>". With HOLD set it prints "claimed <id>"
after its first claim and then sleeps, holding the lease (to be SIGKILLed).
"""

from __future__ import annotations

import sys
import time

import commtel
import commtel.events

from commtel.errors import StateTransitionError
from commtel.messages._tracker import MessageState
from tests.tracker.drivers import conversation_tracker


def main() -> None:
    url, worker_id, lease_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    batch, driver = int(sys.argv[4]), sys.argv[5]
    hold = len(sys.argv) > 6 and sys.argv[6] == "hold"
    commtel.events.set_listeners([])
    tracker = conversation_tracker(driver, url, lease_s=lease_s)
    print("ready", flush=True)
    sys.stdin.readline()
    done = 0
    while True:
        claims = tracker.claim_batch(worker_id, batch)
        if hold and claims:
            print(f"claimed {claims[0].message_id}", flush=True)
            time.sleep(3600)  # the behaviour under test: a worker that hangs holding its lease
        if not claims:
            counts = tracker.counts()
            if counts[MessageState.PENDING] == 0 and counts[MessageState.IN_PROGRESS] == 0:
                break
            time.sleep(0.02)  # the behaviour under test: leases of a dead worker expire in real time
            continue
        for claim in claims:
            try:
                tracker.complete(claim)
            except StateTransitionError:  # too slow: the lease expired and another worker took over
                print(f"lost {claim.message_id}", flush=True)
                continue
            print(f"done {claim.message_id}", flush=True)
            done += 1
    print(f"finished {done}", flush=True)


if __name__ == "__main__":
    main()
