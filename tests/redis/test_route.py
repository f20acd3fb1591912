"""The sans-I/O decisions of a Redis call: redirections, TRYAGAIN waits, failovers, deadlines, the cool-down."""

from __future__ import annotations

import pytest

from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,  # noqa: A004 - redis-py's
    MovedError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from commtel.backends._redis_route import Attempts, Health, SlotMap, Step, slot_of


def test_moved_updates_the_slot_map_and_ask_asks_once() -> None:
    """MOVED reroutes the slot for every later call; ASK sends this one call to the importing node with ASKING."""
    slots = SlotMap((("a", 1),))
    attempts = Attempts(deadline=10.0)
    assert attempts.after(MovedError("3999 b:2"), 0.0, slots) == Step(node=("b", 2))
    assert slots.node(b"x") is None  # only slot 3999 is known
    key = next(k for k in (f"k{i}".encode() for i in range(100_000)) if slot_of(k) == 3999)
    assert slots.node(key) == ("b", 2)
    assert ("b", 2) in slots.nodes
    assert attempts.after(AskError("3999 c:3"), 0.0, slots) == Step(node=("c", 3), asking=True)


def test_redirections_past_the_second_wait_and_stop_at_the_limit() -> None:
    """Nodes disagreeing about a moving slot: redirections are followed at once twice, then with growing waits."""
    attempts = Attempts(deadline=100.0)
    delays = [attempts.after(MovedError("1 b:2"), 0.0, None).delay for _ in range(10)]
    assert delays[:2] == [0.0, 0.0]
    assert delays[2:7] == [0.0005, 0.001, 0.002, 0.004, 0.008]
    assert delays[7:] == [0.008] * 3
    for _ in range(54):
        attempts.after(MovedError("1 b:2"), 0.0, None)
    with pytest.raises(MovedError):
        attempts.after(MovedError("1 b:2"), 0.0, None)


def test_tryagain_waits_double_up_to_8_ms_within_the_deadline() -> None:
    """TRYAGAIN is asked again after 0.5, 1, 2, 4, 8, 8 ms, and never past the deadline."""
    attempts = Attempts(deadline=0.0155)
    assert [attempts.after(TryAgainError(), 0.0, None).delay for _ in range(5)] == [0.0005, 0.001, 0.002, 0.004, 0.008]
    with pytest.raises(TryAgainError):
        attempts.after(TryAgainError(), 0.008, None)  # 8 ms more would pass the deadline


@pytest.mark.parametrize("error", [ConnectionError("lost"), ReadOnlyError("READONLY")])
def test_a_lost_connection_or_a_demoted_primary_is_tried_once_more(error: Exception) -> None:
    """The idle connections are dropped (and a cluster's slots re-read) for one more try; a second failure is final."""
    attempts = Attempts(deadline=10.0)
    assert attempts.after(error, 0.0, None) == Step(drop_idle=True)
    with pytest.raises(type(error)):
        attempts.after(error, 0.0, None)
    assert Attempts(deadline=10.0).after(error, 0.0, SlotMap(())) == Step(refresh=True, drop_idle=True)


def test_clusterdown_waits_and_rereads_the_slots_and_other_errors_are_final() -> None:
    """CLUSTERDOWN (a failover inside the cluster) waits 10 ms for a fresh slot table; a script error or a timeout is final."""
    assert Attempts(deadline=1.0).after(ClusterDownError("down"), 0.0, SlotMap(())) == Step(delay=0.01, refresh=True)
    for final in (ResponseError("ERR bad script"), RedisTimeoutError("slow")):
        with pytest.raises(type(final)):
            Attempts(deadline=10.0).after(final, 0.0, None)


def test_slot_map_reads_cluster_slots() -> None:
    """A CLUSTER SLOTS answer maps every slot; an empty host means the node that answered."""
    slots = SlotMap((("seed", 1),))
    assert not slots.loaded
    slots.load([[0, 8191, [b"", 7000, b"id1"]], [8192, 16383, [b"10.0.0.2", 7001, b"id2"]]], ("seed", 1))
    assert slots.loaded and slots.version == 1
    low = next(k for k in (f"k{i}".encode() for i in range(1000)) if slot_of(k) <= 8191)
    high = next(k for k in (f"k{i}".encode() for i in range(1000)) if slot_of(k) > 8191)
    assert (slots.node(low), slots.node(high)) == (("seed", 7000), ("10.0.0.2", 7001))
    assert slot_of(b"commtel:rl:{a:b}") == slot_of(b"{a:b}")  # hash tags keep a decision's key on one slot


def test_health_cools_down_after_a_timeout_and_lets_one_probe_through() -> None:
    """After a timeout no call goes out for the cool-down; then exactly one probes; an answer ends it."""
    health = Health()
    assert health.admits(0.0, 2.0)
    health.timed_out(10.0)
    assert not health.admits(11.0, 2.0)
    assert health.admits(12.0, 2.0)  # the probe
    assert not health.admits(12.5, 2.0)  # one at a time
    assert health.admits(14.1, 2.0)  # a probe lost (cancelled) expires with a cool-down
    health.timed_out(14.2)  # the probe timed out too: cooling down again
    assert not health.admits(15.0, 2.0)
    health.answered()
    assert health.admits(15.0, 2.0) and health.down_at is None
