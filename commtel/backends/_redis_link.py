"""One Redis deployment as this process uses it, shared by every component that names it.

:func:`shared_link` returns one :class:`RedisLink` per URL (or client object) per process:
the rate limiter, the circuit breaker and the retry budget on one URL use the same
connections, the same Cluster slot table and the same :class:`~._redis_route.Health`.
A component calls through a :class:`RedisCaller` carrying its own timeout and cool-down.

One call: unless the deployment is cooling down, borrow a connection to the right node
(waiting, never failing, while all are lent), write the command as one packed buffer,
read the reply; after an error, :class:`~._redis_route.Attempts` says whether to try
again (a redirection, ``TRYAGAIN``, a failover) — all within the call's deadline. A
read that times out starts the cool-down. Sync callers use :class:`~._redis_pool.SyncSlots`;
asyncio callers the :class:`~._redis_pool.AsyncSlots` of their event loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import weakref

from collections.abc import Sequence
from time import monotonic  # real time: these are I/O deadlines, never a test's fake clock
from typing import Any

import redis

from redis.exceptions import AskError, NoScriptError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._exceptions import BackendError
from ._redis_connect import Connector
from ._redis_pool import AsyncSlots, DeadlinePassed, PoolTimeout, SyncSlots
from ._redis_route import Attempts, Health, SlotMap, Step
from ._redis_targets import Address, Topology, describe, topology_of


__all__ = ["BackendCoolingDown", "RedisCaller", "RedisLink", "shared_link"]

if sys.version_info >= (3, 11):
    _deadline_scope = asyncio.timeout
else:  # pragma: no cover - Python 3.10
    from async_timeout import timeout as _deadline_scope

_ASKING = b"*1\r\n$6\r\nASKING\r\n"
_CLUSTER_SLOTS = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n"
# A read passes its own timeout only when the call has clearly less time left than the
# connection's socket timeout (setting a socket timeout costs two syscalls).
_OWN_TIMEOUT_BELOW = 0.9
# Less time left than this and a try is not even sent.
_MIN_WINDOW_S = 0.001


class BackendCoolingDown(BackendError):
    """The deployment timed out recently: calls fail at once until its cool-down ends."""


def _resp(item: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(item), item)


class _Payload:
    """One command, pre-packed: a script (``EVALSHA``, ``EVAL`` on ``NOSCRIPT``) or a plain command."""

    __slots__ = ("_fallback", "_packed")

    def __init__(self, packed: bytes, fallback: bytes | None = None) -> None:
        self._packed = packed
        self._fallback = fallback

    @classmethod
    def script(cls, script: Any, keys: Sequence[bytes], args: Sequence[bytes]) -> _Payload:
        head = b"*%d\r\n" % (len(keys) + len(args) + 3)
        tail = b"".join([_resp(b"%d" % len(keys)), *map(_resp, keys), *map(_resp, args)])
        return cls(head + script.evalsha_head + tail, head + script.eval_head + tail)

    @classmethod
    def command(cls, args: Sequence[bytes]) -> _Payload:
        return cls(b"*%d\r\n" % len(args) + b"".join(map(_resp, args)))

    def send(self, conn: Any, asking: bool, timeout: float | None) -> Any:  # noqa: FBT001 - hot path
        """Write, read the reply (re-sending as ``EVAL`` on ``NOSCRIPT``)."""
        try:
            return self._exchange(conn, self._packed, asking, timeout)
        except NoScriptError:
            if self._fallback is None:
                raise
            return self._exchange(conn, self._fallback, asking, timeout)

    @staticmethod
    def _exchange(conn: Any, packed: bytes, asking: bool, timeout: float | None) -> Any:  # noqa: FBT001
        if conn._sock is None:
            timeout = _connect(conn, timeout)
        conn.send_packed_command([_ASKING + packed] if asking else [packed], check_health=False)
        if timeout is None:
            if asking:
                conn.read_response()
            return conn.read_response()
        sock = conn._sock  # a shorter deadline than the socket's: for this reply only
        sock.settimeout(timeout)
        try:
            if asking:
                conn.read_response()
            return conn.read_response()
        finally:
            if conn._sock is sock:  # (a failed read disconnected it)
                sock.settimeout(conn.socket_timeout)

    async def asend(self, conn: Any, asking: bool, timeout: float | None) -> Any:  # noqa: FBT001
        """:meth:`send` on an asyncio connection."""
        try:
            return await self._aexchange(conn, self._packed, asking, timeout)
        except NoScriptError:
            if self._fallback is None:
                raise
            return await self._aexchange(conn, self._fallback, asking, timeout)

    @staticmethod
    async def _aexchange(conn: Any, packed: bytes, asking: bool, timeout: float | None) -> Any:  # noqa: FBT001
        data = _ASKING + packed if asking else packed
        if timeout is None:
            return await _round_trip(conn, data, asking)
        try:
            async with _deadline_scope(timeout):  # the connect too; cancelling a read disconnects
                return await _round_trip(conn, data, asking)
        except asyncio.TimeoutError as exc:
            if conn.is_connected:  # cut short in its handshake: its replies would be read as ours
                await conn.disconnect(nowait=True)
            msg = f"redis did not answer within {timeout:.3f}s"
            raise RedisTimeoutError(msg) from exc


def _connect(conn: Any, timeout: float | None) -> float | None:
    """Connect *conn* within *timeout* (``None``: its own timeouts); the part of *timeout* left.

    The connection's own timeouts are the slowest caller's on the link, so a faster caller
    lends it its own for the connect and the handshake (``HELLO``, ``AUTH``, ``SELECT``).
    ``connect()`` asks Sentinel for the primary, which a send would not.
    """
    if timeout is None:
        conn.connect()
        return None
    until = monotonic() + timeout
    kept = conn.socket_connect_timeout, conn.socket_timeout
    conn.socket_connect_timeout = conn.socket_timeout = timeout
    try:
        conn.connect()
    finally:
        conn.socket_connect_timeout, conn.socket_timeout = kept
    # The socket keeps *timeout* for now: the exchange reads with what is left of it, then restores its own.
    return max(until - monotonic(), _MIN_WINDOW_S)


async def _round_trip(conn: Any, data: bytes, asking: bool) -> Any:  # noqa: FBT001
    """Connect if needed (``connect()`` asks Sentinel for the primary), write *data*, read the reply."""
    if not conn.is_connected:
        await conn.connect()
    await _awrite(conn, data)
    if asking:
        await conn.read_response()
    return await conn.read_response()


async def _awrite(conn: Any, data: bytes) -> None:
    """Write *data* on an asyncio connection.

    Not redis-py's ``send_packed_command``: it runs every write in a task of its own to time
    it out, and a command this small never waits for the socket (the reply is timed).
    """
    writer = conn._writer
    try:
        writer.write(data)
        await writer.drain()
    except OSError as exc:
        await conn.disconnect(nowait=True)
        msg = f"error writing to redis: {exc}"
        raise RedisConnectionError(msg) from exc


class _Lane:
    """The asyncio side of a link for one event loop: its connector and connections per node."""

    __slots__ = ("connector", "nodes", "refreshing")

    def __init__(self, topology: Topology, timeout_s: float) -> None:
        self.connector = Connector(topology, timeout_s, asyncio=True)
        self.nodes: dict[Address | None, AsyncSlots] = {}
        self.refreshing = asyncio.Lock()


_links: weakref.WeakSet[RedisLink] = weakref.WeakSet()


class RedisLink:
    """A Redis deployment's connections, routing and health in this process (see :func:`shared_link`)."""

    def __init__(self, target: str | Any, topology: Topology, timeout_s: float) -> None:
        self.target = target  # a client object stays alive as long as its link
        self.topology = topology
        self.label = describe(target)
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError, BackendError)
        self._timeout_s = timeout_s
        self._slot_map = SlotMap(topology.addresses) if topology.kind == "cluster" else None
        self._fresh()
        _links.add(self)

    def _fresh(self) -> None:
        """Connection state from scratch (at construction, and in a forked child)."""
        self.health = Health()
        self._connector: Connector | None = None
        self._nodes: dict[Address | None, SyncSlots] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = weakref.WeakKeyDictionary()
        self._lane: tuple[asyncio.AbstractEventLoop | None, _Lane | None] = (None, None)

    def __repr__(self) -> str:
        return f"RedisLink({self.label!r}, {self.topology.kind})"

    def caller(self, *, timeout_s: float, cooldown_s: float) -> RedisCaller:
        """A component's handle: its calls wait at most *timeout_s*, a timeout cools it down *cooldown_s*."""
        with self._lock:
            if timeout_s > self._timeout_s:  # sockets time out no earlier than the slowest caller allows
                self._timeout_s = timeout_s
                self._connector = None
                self._nodes = {}
                self._lanes = weakref.WeakKeyDictionary()
                self._lane = (None, None)
        return RedisCaller(self, timeout_s, cooldown_s)

    def disconnect_idle(self) -> None:
        """Close the idle sync connections (the link reconnects on its next call)."""
        for slots in list(self._nodes.values()):
            slots.drop_idle()

    # -- sync ---------------------------------------------------------------------------------

    def _slots(self, node: Address | None) -> SyncSlots:
        slots = self._nodes.get(node)
        if slots is None:
            with self._lock:
                slots = self._nodes.get(node)
                if slots is None:
                    if self._connector is None:
                        self._connector = Connector(self.topology, self._timeout_s)
                    make = self._connector.make
                    slots = self._nodes[node] = SyncSlots(self.topology.max_connections, lambda: make(node))
        return slots

    def _cooling(self, now: float, cooldown_s: float) -> BackendCoolingDown | None:
        if self.health.admits(now, cooldown_s):
            return None
        return BackendCoolingDown(f"redis {self.label} timed out recently; cooling down for {cooldown_s:g}s")

    def _window(self, deadline: float) -> float | None:
        """The read timeout of a try starting now: ``None`` (the socket's own) or a shorter one.

        Raises:
            DeadlinePassed: Too little of the call's time is left to try at all.
        """
        remaining = deadline - monotonic()
        if remaining < _MIN_WINDOW_S:
            msg = "the call's deadline passed before it could be sent"
            raise DeadlinePassed(msg)
        return remaining if remaining < self._timeout_s * _OWN_TIMEOUT_BELOW else None

    def _failed(
        self, error: BaseException, attempts: Attempts | None, deadline: float, waited_s: float, timeout_s: float
    ) -> tuple[Attempts, Step]:
        """The next step after *error*, or raise it.

        A read or connect timeout after waiting at least half the call's timeout on the
        server (*waited_s*) starts the cool-down; one cut short by the deadline does not.
        """
        now = monotonic()
        if isinstance(error, RedisTimeoutError):
            if not isinstance(error, DeadlinePassed) and waited_s >= timeout_s / 2:
                self.health.timed_out(now)
            raise error
        if isinstance(error, AskError) and self._slot_map is None:
            # A redis:// URL (or client) to one node of a Cluster: route by slot from now on.
            self._slot_map = SlotMap(self.topology.addresses or (error.node_addr,))
        attempts = attempts or Attempts(deadline)
        try:
            return attempts, attempts.after(error, now, self._slot_map)
        except BaseException:
            if self.health.down_at is not None:
                self.health.answered()
            raise

    def call(self, payload: _Payload, key: bytes | None, timeout_s: float, cooldown_s: float) -> Any:
        """Run *payload* on the node serving *key*; see the module docstring."""
        now = monotonic()
        if self.health.down_at is not None and (cooling := self._cooling(now, cooldown_s)) is not None:
            raise cooling
        deadline = now + timeout_s
        node = self._route(key, deadline) if self._slot_map is not None else None
        asking = False
        attempts: Attempts | None = None
        while True:
            slots = self._slots(node)
            conn = slots.take(deadline)
            sent_at = monotonic()
            try:
                reply = payload.send(conn, asking, self._window(deadline))
            except self.errors as error:
                slots.give(conn)
                attempts, step = self._failed(error, attempts, deadline, monotonic() - sent_at, timeout_s)
            else:
                slots.give(conn)
                if self.health.down_at is not None:
                    self.health.answered()
                return reply
            node, asking = self._take_step(step, slots, key, deadline)

    def _take_step(
        self, step: Step, slots: SyncSlots, key: bytes | None, deadline: float
    ) -> tuple[Address | None, bool]:
        """Do what *step* says before the next try; the node to try and whether to send ``ASKING``."""
        if step.drop_idle:
            slots.drop_idle()
        if step.delay:
            time.sleep(step.delay)
        if step.refresh:
            self._refresh(deadline)
        node = step.node
        if node is None and self._slot_map is not None:
            node = self._route(key, deadline)
        return node, step.asking

    def _route(self, key: bytes | None, deadline: float) -> Address | None:
        slot_map = self._slot_map
        assert slot_map is not None  # noqa: S101 - only called for clusters
        node = slot_map.node(key) if key is not None else None
        if node is None:
            if not slot_map.loaded:
                self._refresh(deadline)
            node = (slot_map.node(key) if key is not None else None) or slot_map.nodes[0]
        return node

    def _refresh(self, deadline: float) -> None:
        """Re-read the Cluster slot table from the first node that answers (once for all who wait)."""
        slot_map = self._slot_map
        if slot_map is None:
            return
        version = slot_map.version
        if not self._refreshing.acquire(timeout=max(0.0, deadline - monotonic())):
            msg = "the cluster slot table was being refreshed until the deadline"
            raise PoolTimeout(msg)
        try:
            if slot_map.version == version:
                self._load_slots(slot_map, deadline)
        finally:
            self._refreshing.release()

    def _load_slots(self, slot_map: SlotMap, deadline: float) -> None:
        last: BaseException | None = None
        for node in slot_map.refresh_order():
            slots = self._slots(node)
            conn = slots.take(deadline)
            try:
                reply = _Payload(_CLUSTER_SLOTS).send(conn, False, self._window(deadline))  # noqa: FBT003
            except self.errors as error:
                last = error
                continue
            finally:
                slots.give(conn)
            slot_map.load(reply, node)
            return
        if last is not None:
            raise last

    # -- asyncio ------------------------------------------------------------------------------

    def _current_lane(self) -> _Lane:
        loop = asyncio.get_running_loop()
        cached_loop, lane = self._lane
        if cached_loop is loop and lane is not None:
            return lane
        lane = self._lanes.get(loop)
        if lane is None:
            lane = self._lanes[loop] = _Lane(self.topology, self._timeout_s)
        self._lane = (loop, lane)
        return lane

    @staticmethod
    def _aslots(lane: _Lane, node: Address | None, limit: int) -> AsyncSlots:
        slots = lane.nodes.get(node)
        if slots is None:
            make = lane.connector.make
            slots = lane.nodes[node] = AsyncSlots(limit, lambda: make(node))
        return slots

    async def acall(self, payload: _Payload, key: bytes | None, timeout_s: float, cooldown_s: float) -> Any:
        """:meth:`call` for asyncio callers (the connections of the running event loop)."""
        now = monotonic()
        if self.health.down_at is not None and (cooling := self._cooling(now, cooldown_s)) is not None:
            raise cooling
        deadline = now + timeout_s
        lane = self._current_lane()
        node = await self._aroute(lane, key, deadline) if self._slot_map is not None else None
        asking = False
        attempts: Attempts | None = None
        limit = self.topology.max_connections
        while True:
            slots = self._aslots(lane, node, limit)
            conn = await slots.take(deadline)
            sent_at = monotonic()
            try:
                reply = await payload.asend(conn, asking, self._window(deadline))
            except self.errors as error:
                slots.give(conn)
                attempts, step = self._failed(error, attempts, deadline, monotonic() - sent_at, timeout_s)
            except BaseException:
                slots.give(conn)  # cancelled: redis-py disconnected it mid-read
                raise
            else:
                slots.give(conn)
                if self.health.down_at is not None:
                    self.health.answered()
                return reply
            node, asking = await self._atake_step(step, slots, lane, key, deadline)

    async def _atake_step(
        self, step: Step, slots: AsyncSlots, lane: _Lane, key: bytes | None, deadline: float
    ) -> tuple[Address | None, bool]:
        """:meth:`_take_step` for asyncio callers."""
        if step.drop_idle:
            await slots.drop_idle()
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.refresh:
            await self._arefresh(lane, deadline)
        node = step.node
        if node is None and self._slot_map is not None:
            node = await self._aroute(lane, key, deadline)
        return node, step.asking

    async def _aroute(self, lane: _Lane, key: bytes | None, deadline: float) -> Address | None:
        slot_map = self._slot_map
        assert slot_map is not None  # noqa: S101 - only called for clusters
        node = slot_map.node(key) if key is not None else None
        if node is None:
            if not slot_map.loaded:
                await self._arefresh(lane, deadline)
            node = (slot_map.node(key) if key is not None else None) or slot_map.nodes[0]
        return node

    async def _arefresh(self, lane: _Lane, deadline: float) -> None:
        slot_map = self._slot_map
        if slot_map is None:
            return
        version = slot_map.version
        async with lane.refreshing:
            if slot_map.version != version:
                return
            last: BaseException | None = None
            for node in slot_map.refresh_order():
                slots = self._aslots(lane, node, self.topology.max_connections)
                conn = await slots.take(deadline)
                try:
                    reply = await _Payload(_CLUSTER_SLOTS).asend(conn, False, self._window(deadline))  # noqa: FBT003
                except self.errors as error:
                    last = error
                    continue
                finally:
                    slots.give(conn)
                slot_map.load(reply, node)
                return
            if last is not None:
                raise last


class RedisCaller:
    """A component's calls on a :class:`RedisLink`, each bounded by its *timeout_s* (and *cooldown_s*).

    Raises (from every method) one of ``link.errors``: redis-py errors, ``OSError``, or
    :class:`BackendCoolingDown`.
    """

    __slots__ = ("cooldown_s", "link", "timeout_s")

    def __init__(self, link: RedisLink, timeout_s: float, cooldown_s: float) -> None:
        self.link = link
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s

    @staticmethod
    def prepare(script: Any, keys: Sequence[bytes], args: Sequence[bytes]) -> _Payload:
        """*script* with *keys* and *args*, packed once for :meth:`run` (a call made often with the same arguments)."""
        return _Payload.script(script, keys, args)

    def run(self, payload: _Payload, key: bytes) -> Any:
        """Run a :meth:`prepare`-d payload on the node of *key*."""
        return self.link.call(payload, key, self.timeout_s, self.cooldown_s)

    async def arun(self, payload: _Payload, key: bytes) -> Any:
        """:meth:`run` for asyncio callers."""
        return await self.link.acall(payload, key, self.timeout_s, self.cooldown_s)

    def script(self, script: Any, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        """Run a :class:`~commtel.backends._redis.LuaScript` on the node of ``keys[0]``."""
        return self.link.call(
            _Payload.script(script, keys, args), keys[0] if keys else None, self.timeout_s, self.cooldown_s
        )

    async def ascript(self, script: Any, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        """:meth:`script` for asyncio callers."""
        return await self.link.acall(
            _Payload.script(script, keys, args), keys[0] if keys else None, self.timeout_s, self.cooldown_s
        )

    def command(self, *args: bytes, key: bytes | None = None) -> Any:
        """Run one command (e.g. ``DEL``) on the node of *key*."""
        return self.link.call(_Payload.command(args), key, self.timeout_s, self.cooldown_s)

    async def acommand(self, *args: bytes, key: bytes | None = None) -> Any:
        """:meth:`command` for asyncio callers."""
        return await self.link.acall(_Payload.command(args), key, self.timeout_s, self.cooldown_s)


_registry: weakref.WeakValueDictionary[Any, RedisLink] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def shared_link(target: str | Any, *, timeout_s: float) -> RedisLink:
    """This process's :class:`RedisLink` for *target* (a URL, or a redis-py client object).

    Components naming the same URL (or passing the same client object) share one link.
    Building it reads the URL or the client only: nothing connects until the first call.

    Raises:
        ConfigurationError: *target* is neither a URL commtel understands nor a redis-py client.
    """
    key = target if isinstance(target, str) else id(target)
    with _registry_lock:
        link = _registry.get(key)
        if link is None or (link.target is not target and not isinstance(target, str)):
            link = _registry[key] = RedisLink(target, topology_of(target), timeout_s)
    return link


def _after_fork_in_child() -> None:
    """A forked child must not touch its parent's sockets: every link starts over."""
    global _registry_lock  # noqa: PLW0603
    _registry_lock = threading.Lock()
    for link in list(_links):
        link._fresh()


os.register_at_fork(after_in_child=_after_fork_in_child)
