"""The sans-I/O gate: limit, FIFO hand-off to waiters, abandoned waiters, a moving limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from commtel.concurrency._gate import ENTERED, FULL, QUEUED, GateCore, Waiter


def _waiter(log: list[str], name: str) -> Waiter:
    return Waiter(lambda: log.append(name))


def test_admits_up_to_the_limit_then_refuses() -> None:
    """Calls enter until the limit; the next is refused; leaving frees a slot."""
    gate = GateCore(2)
    assert gate.enter() and gate.enter()
    assert not gate.enter()
    assert gate.in_flight == 2
    assert gate.leave() is None
    assert gate.enter()


def test_a_freed_slot_goes_to_the_oldest_waiter_not_a_newcomer() -> None:
    """FIFO: leave() hands the slot to the first waiter (in-flight unchanged); newcomers queue behind."""
    gate = GateCore(1)
    woken: list[str] = []
    assert gate.enter()
    first, second = _waiter(woken, "first"), _waiter(woken, "second")
    assert gate.enter_or_queue(first) == QUEUED
    assert gate.enter_or_queue(second) == QUEUED
    handed = gate.leave()
    assert handed is first and first.granted and not second.granted
    assert gate.in_flight == 1
    assert not gate.enter()  # a newcomer does not overtake the remaining waiter
    assert gate.leave() is second


def test_queue_bound_refuses_more_waiters() -> None:
    """max_waiting callers may wait; the next one is FULL."""
    gate = GateCore(1, max_waiting=1)
    gate.enter()
    assert gate.enter_or_queue(Waiter(lambda: None)) == QUEUED
    assert gate.enter_or_queue(Waiter(lambda: None)) == FULL
    assert GateCore(1, max_waiting=0).enter_or_queue(Waiter(lambda: None)) == ENTERED


def test_abandon_removes_a_queued_waiter_but_not_a_granted_one() -> None:
    """A waiter that gives up leaves the queue; one already granted owns its slot."""
    gate = GateCore(1)
    gate.enter()
    waiter = Waiter(lambda: None)
    gate.queue(waiter)
    assert gate.abandon(waiter)
    assert not gate.waiters
    granted = Waiter(lambda: None)
    gate.queue(granted)
    gate.leave()
    assert not gate.abandon(granted)
    assert gate.in_flight == 1


def test_raising_the_limit_admits_waiters_lowering_it_drains_first() -> None:
    """set_limit up grants queued waiters at once; set_limit down admits no one until in-flight dropped."""
    gate = GateCore(1)
    gate.enter()
    waiters = [Waiter(lambda: None) for _ in range(3)]
    for waiter in waiters:
        gate.queue(waiter)
    assert gate.set_limit(3) == waiters[:2]
    assert gate.in_flight == 3
    gate.set_limit(1)
    assert gate.leave() is None and gate.leave() is None  # 3 -> 1 in flight, limit 1: nobody admitted
    assert gate.leave() is waiters[2]


@given(st.lists(st.sampled_from(["enter", "leave", "wait", "abandon", "limit"]), max_size=60), st.integers(1, 5))
def test_invariants_hold_for_any_sequence(ops: list[str], limit: int) -> None:
    """Whatever happens: in-flight never exceeds the limit by entering, waiters only queue when needed, counts match."""
    gate = GateCore(limit)
    holders = 0  # callers holding a slot (entered or granted)
    queued: list[Waiter] = []
    step = 0
    for op in ops:
        step += 1
        if op == "enter" and gate.enter():
            holders += 1
            assert gate.in_flight <= gate.limit
        elif op == "leave" and holders:
            holders -= 1
            if gate.leave() is not None:
                holders += 1
                queued = [w for w in queued if not w.granted]
        elif op == "wait":
            waiter = Waiter(lambda: None)
            state = gate.enter_or_queue(waiter)
            if state == ENTERED:
                holders += 1
            else:
                queued.append(waiter)
        elif op == "abandon" and queued:
            assert gate.abandon(queued.pop(0))
        elif op == "limit":
            granted = gate.set_limit(1 + step % 4)
            holders += len(granted)
            queued = [w for w in queued if not w.granted]
        assert gate.in_flight == holders
        assert len(gate.waiters) == len(queued)
        if gate.waiters:
            assert gate.in_flight >= gate.limit  # nobody waits while a slot is free
