"""Where a Redis deployment is: a URL or a redis-py client object, read into one :class:`Topology`.

commtel never sends its commands through the caller's client: it reads the deployment
(one server, a Sentinel-managed primary, or a Cluster), the credentials and TLS settings
from it, and makes its own connections (sync, and asyncio per event loop) with its own
timeouts and no redis-py retries. So every component behaves the same whatever the
caller's client was configured with, and a client may be sync or asyncio.

URLs:

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS), ``unix:///path``
- ``redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db]``
- ``redis+cluster://[[user]:password@]host:port[,host:port…]`` (any node or nodes)

A ``max_connections`` query parameter bounds the connections per process (per node).
"""

from __future__ import annotations

import inspect

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from .._exceptions import ConfigurationError


__all__ = ["DEFAULT_MAX_CONNECTIONS", "Address", "Topology", "describe", "topology_of"]

#: Connections one process keeps per node unless the URL or client says otherwise (redis-py's default).
DEFAULT_MAX_CONNECTIONS = 100

#: ``(host, port)`` of one server.
Address = tuple[str, int]

# Connection settings carried over from a URL or a client: credentials, database, TLS (``ssl_*``)
# and the Sentinels' own credentials (``sentinel_username``, ``sentinel_password``).
_PORTABLE = ("db", "username", "password", "credential_provider", "client_name", "path")
_PORTABLE_PREFIXES = ("ssl_", "sentinel_")


def _portable(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if (k in _PORTABLE or k.startswith(_PORTABLE_PREFIXES)) and v is not None}


Kind = Literal["single", "sentinel", "cluster"]


@dataclass(frozen=True)
class Topology:
    """One Redis deployment: its kind, where its servers are and how to authenticate.

    Attributes:
        kind: ``"single"`` (one server), ``"sentinel"`` (the primary Sentinel names) or ``"cluster"``.
        addresses: The server (single), the Sentinels, or the cluster nodes to start from.
        service: The Sentinel service name (sentinel only).
        scheme: ``"tcp"``, ``"tls"`` or ``"unix"``.
        settings: Portable connection settings (credentials, db, TLS options, unix path).
        max_connections: Connections per process per node.
    """

    kind: Kind
    addresses: tuple[Address, ...]
    service: str = ""
    scheme: Literal["tcp", "tls", "unix"] = "tcp"
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def connection_kwargs(self, cls: type, timeout_s: float) -> dict[str, Any]:
        """Keyword arguments for a redis-py connection class *cls*: our timeouts, RESP2, bytes (the caller adds no-retry)."""
        accepted = _parameters(cls)
        kwargs = {name: value for name, value in self.settings.items() if name in accepted}
        kwargs.update(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=0)
        kwargs["decode_responses"] = False
        if "protocol" in accepted:
            kwargs["protocol"] = 2  # the same replies from every redis-py version (8 defaults to RESP3)
        return kwargs


def _parameters(cls: type) -> set[str]:
    """Every keyword an ``__init__`` in *cls*'s MRO names (redis-py passes ``**kwargs`` up)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names


def describe(target: str | Any) -> str:
    """*target* for logs and errors: a URL without its password, or the client's class."""
    if not isinstance(target, str):
        return type(target).__name__
    parts = urlsplit(target)
    if parts.password is None:
        return target
    return target.replace(f":{parts.password}@", ":***@", 1)


def topology_of(target: str | Any) -> Topology:
    """The :class:`Topology` of a URL or a redis-py client (sync or asyncio).

    Raises:
        ConfigurationError: Not a URL commtel understands, or not a redis-py client.
    """
    if isinstance(target, str):
        return _from_url(target)
    return _from_client(target)


# -- URLs -----------------------------------------------------------------------------------


def _from_url(url: str) -> Topology:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    parse = _URL_SCHEMES.get(scheme)
    if parse is None:
        msg = (
            f"redis URL must start with redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://, "
            f"got {describe(url)!r}"
        )
        raise ConfigurationError(msg)
    try:
        return parse(url)
    except ValueError as exc:
        msg = f"invalid redis URL {describe(url)!r}: {exc}"
        raise ConfigurationError(msg) from exc


def _settings(url: str) -> tuple[dict[str, Any], int]:
    """Portable settings and ``max_connections`` of a ``redis://``-style URL (query options included)."""
    from redis.connection import parse_url

    parsed: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    max_connections = int(parsed.pop("max_connections", DEFAULT_MAX_CONNECTIONS))
    if max_connections < 1:
        msg = f"max_connections must be at least 1, got {max_connections}"
        raise ValueError(msg)
    return _portable(parsed), max_connections


def _single(url: str) -> Topology:
    settings, max_connections = _settings(url)
    if url.startswith("unix://"):
        return Topology("single", (), scheme="unix", settings=settings, max_connections=max_connections)
    parts = urlsplit(url)
    address = (parts.hostname or "localhost", parts.port or 6379)
    scheme: Literal["tcp", "tls"] = "tls" if url.startswith("rediss://") else "tcp"
    return Topology("single", (address,), scheme=scheme, settings=settings, max_connections=max_connections)


def _hosts(netloc: str, what: str) -> tuple[str, tuple[Address, ...]]:
    """``(credentials@ or '', addresses)`` of a comma-separated ``host:port`` list."""
    auth, _, hosts = netloc.rpartition("@")
    addresses: list[Address] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            msg = f"{what} addresses are host:port[,host:port...], got {item!r}"
            raise ValueError(msg)
        addresses.append((host.strip("[]"), int(port)))
    return (auth + "@" if auth else ""), tuple(addresses)


def _sentinel(url: str) -> Topology:
    rest = url.split("://", 1)[1]
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    auth, addresses = _hosts(netloc, "Sentinel")
    service, _, db = path.partition("/")
    if not service:
        msg = "redis+sentinel:// URLs name the service: redis+sentinel://host:port[,host:port]/service[/db]"
        raise ValueError(msg)
    settings, max_connections = _settings(f"redis://{auth}localhost/{db or 0}{'?' + query if query else ''}")
    return Topology("sentinel", addresses, service=service, settings=settings, max_connections=max_connections)


def _cluster(url: str) -> Topology:
    rest = url.split("://", 1)[1]
    netloc, _, tail = rest.partition("/")
    _, _, query = tail.partition("?")
    auth, addresses = _hosts(netloc, "Cluster")
    settings, max_connections = _settings(f"redis://{auth}localhost{'/?' + query if query else ''}")
    settings.pop("db", None)  # a cluster has database 0 only
    return Topology("cluster", addresses, settings=settings, max_connections=max_connections)


_URL_SCHEMES: dict[str, Callable[[str], Topology]] = {
    "redis": _single,
    "rediss": _single,
    "unix": _single,
    "redis+sentinel": _sentinel,
    "redis+cluster": _cluster,
}


# -- client objects ------------------------------------------------------------------------


def _scheme(connection_class: type) -> Literal["tcp", "tls", "unix"]:
    names = {klass.__name__ for klass in connection_class.__mro__}
    if "UnixDomainSocketConnection" in names:
        return "unix"
    return "tls" if "SSLConnection" in names else "tcp"


def _from_client(client: Any) -> Topology:
    import redis
    import redis.asyncio

    if isinstance(client, redis.RedisCluster | redis.asyncio.RedisCluster):
        return _from_cluster_client(client)
    if not isinstance(client, redis.Redis | redis.asyncio.Redis):
        msg = (
            "redis= takes a URL or a redis-py client (Redis, RedisCluster, Sentinel.master_for(), "
            f"or their redis.asyncio variants), got {type(client).__name__}"
        )
        raise ConfigurationError(msg)
    pool: Any = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    max_connections = min(getattr(pool, "max_connections", DEFAULT_MAX_CONNECTIONS), 2**16)
    manager = getattr(pool, "sentinel_manager", None)
    if manager is not None:
        first = manager.sentinels[0].connection_pool.connection_kwargs
        sentinel_auth = {f"sentinel_{k}": first.get(k) for k in ("username", "password")}
        return Topology(
            "sentinel",
            tuple(
                (s.connection_pool.connection_kwargs["host"], int(s.connection_pool.connection_kwargs["port"]))
                for s in manager.sentinels
            ),
            service=pool.service_name,
            scheme=_scheme(pool.connection_class),
            settings=_portable({**kwargs, **sentinel_auth}),
            max_connections=max_connections,
        )
    scheme = _scheme(pool.connection_class)
    addresses = () if scheme == "unix" else ((kwargs.get("host", "localhost"), int(kwargs.get("port", 6379))),)
    return Topology("single", addresses, scheme=scheme, settings=_portable(kwargs), max_connections=max_connections)


def _from_cluster_client(client: Any) -> Topology:
    manager = client.nodes_manager
    nodes = list(manager.nodes_cache.values()) or list(manager.startup_nodes.values())
    addresses = tuple((node.host, int(node.port)) for node in nodes)
    kwargs = dict(getattr(manager, "connection_kwargs", {}) or client.get_connection_kwargs())
    connection_class = kwargs.get("connection_class")
    tls = kwargs.get("ssl") or (connection_class is not None and _scheme(connection_class) == "tls")
    scheme: Literal["tcp", "tls"] = "tls" if tls else "tcp"
    max_connections = int(kwargs.get("max_connections") or DEFAULT_MAX_CONNECTIONS)
    return Topology(
        "cluster",
        addresses,
        scheme=scheme,
        settings=_portable(kwargs),
        max_connections=min(max_connections, DEFAULT_MAX_CONNECTIONS),
    )
