"""redis-py connection objects for a :class:`~commtel.backends._redis_targets.Topology`, made unconnected.

Every connection gets commtel's timeout and no redis-py retry (a call's retries are
decided by :class:`~commtel.backends._redis_route.Attempts`, within the call's deadline).
A Sentinel-managed connection asks the Sentinels where the primary is each time it
connects, so dropping connections after a failover is enough to follow it.
"""

from __future__ import annotations

from typing import Any

from redis.backoff import NoBackoff

from ._redis_targets import Address, Topology


__all__ = ["Connector"]


def _sentinel_kwargs(topology: Topology, timeout_s: float, retry: Any) -> dict[str, Any]:
    auth = {k.removeprefix("sentinel_"): v for k, v in topology.settings.items() if k.startswith("sentinel_")}
    return {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, "retry": retry, **auth}


class Connector:
    """Makes the connections of one deployment: to its server, its primary, or a Cluster node.

    With *asyncio*, redis-py's asyncio connections (make one connector per event loop:
    a connection binds to the loop it first connects in).
    """

    __slots__ = ("_class", "_keep", "_kwargs", "topology")

    def __init__(self, topology: Topology, timeout_s: float, *, asyncio: bool = False) -> None:
        if asyncio:
            import redis.asyncio.connection as connections
            import redis.asyncio.sentinel as sentinels

            from redis.asyncio.retry import Retry
        else:
            import redis.connection as connections  # type: ignore[no-redef]
            import redis.sentinel as sentinels  # type: ignore[no-redef]

            from redis.retry import Retry  # type: ignore[assignment]
        self.topology = topology
        retry = Retry(NoBackoff(), 0)
        self._keep: Any = None
        if topology.kind == "sentinel":
            manager: Any = sentinels.Sentinel(  # type: ignore[no-untyped-call]
                list(topology.addresses), sentinel_kwargs=_sentinel_kwargs(topology, timeout_s, retry)
            )
            kwargs = topology.connection_kwargs(sentinels.SentinelManagedConnection, timeout_s)
            client = manager.master_for(topology.service, ssl=topology.scheme == "tls", retry=retry, **kwargs)
            self._keep = client.connection_pool  # an asyncio connection holds only a weak proxy to it
            self._class: type = self._keep.connection_class
            self._kwargs: dict[str, Any] = dict(self._keep.connection_kwargs)
            return
        classes = {
            "tcp": connections.Connection,
            "tls": connections.SSLConnection,
            "unix": connections.UnixDomainSocketConnection,
        }
        self._class = classes[topology.scheme]
        self._kwargs = {**topology.connection_kwargs(self._class, timeout_s), "retry": retry}

    def make(self, node: Address | None) -> Any:
        """An unconnected connection to *node* (a Cluster node), or to the deployment's server."""
        if node is None:
            if self.topology.kind != "single" or not self.topology.addresses:
                return self._class(**self._kwargs)  # the primary Sentinel names, or a unix socket
            node = self.topology.addresses[0]
        return self._class(host=node[0], port=node[1], **self._kwargs)
