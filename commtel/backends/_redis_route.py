"""Sans-I/O decisions of a Redis call: which node, what to do after an error, and when to stop trying.

:class:`SlotMap` routes a key to the Cluster node serving its hash slot. :class:`Attempts`
decides, after each failed try of one call, whether to try again (on which node, after
how long) or give up, never past the call's deadline. :class:`Health` short-circuits a
deployment that timed out: for a cool-down no call waits on it, then one call probes it.
The sync and asyncio drivers in :mod:`commtel.backends._redis_link` only do the I/O.
"""

from __future__ import annotations

import threading

from dataclasses import dataclass
from typing import Any

from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,  # noqa: A004 - redis-py's, not the builtin
    MovedError,
    ReadOnlyError,
    TryAgainError,
)

from ._redis_targets import Address


__all__ = ["SLOTS", "Attempts", "Health", "SlotMap", "Step", "slot_of"]

SLOTS = 16384
# MOVED/ASK redirections followed at once; past these (nodes disagreeing while a slot moves) each
# waits like TRYAGAIN. A call follows at most _MAX_REDIRECTS in all.
_FREE_REDIRECTS = 2
_MAX_REDIRECTS = 64
# TRYAGAIN (a multi-key call on a slot being migrated): first wait, doubling up to the cap.
_TRYAGAIN_FIRST_S = 0.0005
_TRYAGAIN_CAP_S = 0.008
# CLUSTERDOWN / MASTERDOWN: the cluster is electing a primary; ask again after this.
_DOWN_WAIT_S = 0.01


def slot_of(key: bytes) -> int:
    """The Cluster hash slot of *key* (its ``{hash tag}`` if it has one)."""
    return int(key_slot(key))


class SlotMap:
    """Which Cluster node serves each of the 16384 hash slots, from ``CLUSTER SLOTS``."""

    __slots__ = ("_owners", "nodes", "version")

    def __init__(self, seeds: tuple[Address, ...]) -> None:
        self._owners: list[Address | None] = [None] * SLOTS
        #: Every node known, seeds first: where a refresh asks.
        self.nodes: list[Address] = list(seeds)
        #: Bumped by every :meth:`load`: a caller that waited for a refresh needs none of its own.
        self.version = 0

    @property
    def loaded(self) -> bool:
        """Whether a ``CLUSTER SLOTS`` answer was read."""
        return self.version > 0

    def node(self, key: bytes) -> Address | None:
        """The node serving *key*'s slot, ``None`` when not known yet."""
        return self._owners[slot_of(key)]

    def moved(self, slot: int, address: Address) -> None:
        """A ``MOVED`` answer: *slot* is served by *address* now."""
        self._owners[slot] = address
        if address not in self.nodes:
            self.nodes.append(address)

    def load(self, reply: list[Any], asked: Address) -> None:
        """Read a ``CLUSTER SLOTS`` *reply* from node *asked* (whose empty host means itself)."""
        owners: list[Address | None] = [None] * SLOTS
        for entry in reply:
            start, end, primary = int(entry[0]), int(entry[1]), entry[2]
            host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
            address = (host or asked[0], int(primary[1]))
            owners[start : end + 1] = [address] * (end - start + 1)
            if address not in self.nodes:
                self.nodes.append(address)
        self._owners = owners
        self.version += 1

    def refresh_order(self) -> list[Address]:
        """The nodes to ask for the slot table, most recently useful first."""
        return list(self.nodes)


@dataclass
class Step:
    """What to do before the next try of a call."""

    #: Seconds to wait first.
    delay: float = 0.0
    #: Try this node (an ASK target) instead of routing by the slot map.
    node: Address | None = None
    #: Send ``ASKING`` before the command (the node imports the slot).
    asking: bool = False
    #: Re-read the Cluster's slot table first.
    refresh: bool = False
    #: Disconnect the idle connections of the node that failed (a failover: they lead to the old primary).
    drop_idle: bool = False


class Attempts:
    """The tries of one call: each failure becomes a :class:`Step`, or is raised.

    Redirections (``MOVED``/``ASK``) are followed at once (after the second, while nodes
    disagree about a moving slot, with the waits of ``TRYAGAIN``); ``TRYAGAIN`` (a multi-key
    call while its slot migrates) is asked again after 0.5, 1, 2 … 8 ms; a lost
    connection or ``READONLY`` (a primary demoted by a failover) drops the idle
    connections and is tried once more on a new one (which asks Sentinel, or the
    Cluster, where the primary is now). Nothing is tried past *deadline*.
    """

    __slots__ = ("_deadline", "_reconnects", "_redirects", "_waits")

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._redirects = 0
        self._reconnects = 0
        self._waits = 0

    def after(self, error: BaseException, now: float, slots: SlotMap | None) -> Step:
        """The step after *error* at *now*; re-raises *error* when the call should give up.

        Raises:
            BaseException: *error*, when it is final or the deadline leaves no room.
        """
        step = self._step(error, slots)
        if step is None or now + step.delay >= self._deadline:
            raise error
        return step

    def _step(self, error: BaseException, slots: SlotMap | None) -> Step | None:
        if isinstance(error, AskError):  # MovedError is an AskError too
            return self._redirect(error, slots)
        step: Step | None = None
        if isinstance(error, TryAgainError):
            step = Step(delay=self._backoff())
        elif isinstance(error, ClusterDownError):
            step = Step(delay=_DOWN_WAIT_S, refresh=slots is not None)
        elif isinstance(error, ConnectionError | ReadOnlyError):
            self._reconnects += 1
            if self._reconnects == 1:
                step = Step(refresh=slots is not None, drop_idle=True)
        return step

    def _backoff(self) -> float:
        delay = min(_TRYAGAIN_FIRST_S * float(2**self._waits), _TRYAGAIN_CAP_S)
        self._waits += 1
        return delay

    def _redirect(self, error: AskError, slots: SlotMap | None) -> Step | None:
        self._redirects += 1
        if self._redirects > _MAX_REDIRECTS:
            return None
        delay = self._backoff() if self._redirects > _FREE_REDIRECTS else 0.0
        if not isinstance(error, MovedError):
            return Step(delay=delay, node=error.node_addr, asking=True)
        if slots is not None:
            slots.moved(error.slot_id, error.node_addr)
        return Step(delay=delay, node=error.node_addr)


class Health:
    """Short-circuits a deployment that timed out, for a cool-down; then lets one call probe it.

    A frozen server costs each process one timeout per cool-down instead of one per
    call: after a timeout every call fails at once (the components answer by their
    fail-open/closed policy and count it) until *cooldown_s* passed; then one call at
    a time probes, and its answer ends (or restarts) the cool-down.
    """

    __slots__ = ("_lock", "_probe_at", "down_at")

    def __init__(self) -> None:
        #: Monotonic time of the last timeout, ``None`` while healthy.
        self.down_at: float | None = None
        self._probe_at = -1.0
        self._lock = threading.Lock()

    def admits(self, now: float, cooldown_s: float) -> bool:
        """Whether a call may go to the server at *now* (always, unless cooling down)."""
        down_at = self.down_at
        if down_at is None:
            return True
        if now - down_at < cooldown_s:
            return False
        with self._lock:  # one probe per cool-down; a probe lost to cancellation expires with it
            if now - self._probe_at < cooldown_s:
                return False
            self._probe_at = now
            return True

    def timed_out(self, now: float) -> None:
        """A call timed out at *now*: (re)start the cool-down."""
        self.down_at = now
        self._probe_at = -1.0

    def answered(self) -> None:
        """The server answered (or refused at once): no cool-down."""
        self.down_at = None

    def after_fork(self) -> None:
        """A child process starts healthy, with its own lock."""
        self.__init__()  # type: ignore[misc]
