"""``sqlite://`` (the in-memory URL the docs use) under threads: exactly-once claims, no crash.

The tests live with the trackers; they are collected here too so the security suite holds
every case of docs/security.md. Three runs (``run`` 0-2) of 8 threads that claim and
complete 120 messages, each exactly once; the progress store takes 8 writer threads.
"""

from __future__ import annotations

from tests.progress.test_progress import test_eight_threads_share_an_in_memory_progress_store
from tests.tracker.test_tracker import test_eight_threads_on_in_memory_sqlite_claim_each_message_exactly_once


__all__ = [
    "test_eight_threads_on_in_memory_sqlite_claim_each_message_exactly_once",
    "test_eight_threads_share_an_in_memory_progress_store",
]
