"""Reading a deployment from a URL or a client object: kinds, addresses, credentials, bounds; no connection made."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio
import redis.sentinel

from commtel.backends._redis_connect import Connector
from commtel.backends._redis_targets import DEFAULT_MAX_CONNECTIONS, describe, topology_of
from commtel.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "kind", "addresses", "settings"),
    [
        ("redis://localhost", "single", (("localhost", 6379),), {}),
        ("redis://u:p@10.0.0.5:7000/3", "single", (("10.0.0.5", 7000),), {"db": 3, "username": "u", "password": "p"}),
        ("rediss://h:6380/0", "single", (("h", 6380),), {"db": 0}),
        ("unix:///run/redis.sock?db=2", "single", (), {"db": 2, "path": "/run/redis.sock"}),
        (
            "redis+sentinel://:pw@s1:26379,s2:26380/cache/4?sentinel_password=sp",
            "sentinel",
            (("s1", 26379), ("s2", 26380)),
            {"db": 4, "password": "pw", "sentinel_password": "sp"},
        ),
        ("redis+cluster://n1:7000,n2:7001", "cluster", (("n1", 7000), ("n2", 7001)), {}),
        ("redis+cluster://:pw@[::1]:7000/", "cluster", (("::1", 7000),), {"password": "pw"}),
    ],
)
def test_urls_name_the_kind_servers_and_credentials(url: str, kind: str, addresses: tuple, settings: dict) -> None:  # type: ignore[type-arg]
    """Every URL form reads into its deployment kind, its servers and its portable settings."""
    topology = topology_of(url)
    assert (topology.kind, topology.addresses, topology.settings) == (kind, addresses, settings)
    assert topology.max_connections == DEFAULT_MAX_CONNECTIONS
    assert topology.scheme == ("tls" if url.startswith("rediss") else "unix" if url.startswith("unix") else "tcp")


def test_max_connections_and_the_service_name() -> None:
    """``max_connections`` bounds the connections; a Sentinel URL names its service."""
    assert topology_of("redis://h/0?max_connections=7").max_connections == 7
    assert topology_of("redis+sentinel://h:1/svc").service == "svc"
    with pytest.raises(ConfigurationError, match="max_connections"):
        topology_of("redis://h/0?max_connections=0")
    with pytest.raises(ConfigurationError, match="host:port"):
        topology_of("redis+cluster://h")


def test_a_password_never_reaches_a_log_line() -> None:
    """``describe`` (used in logs and errors) masks the password of a URL."""
    assert describe("redis://user:s3cret@h:1/0") == "redis://user:***@h:1/0"
    assert "s3cret" not in describe("redis+sentinel://:s3cret@h:1,h:2/m")
    assert describe(redis.Redis()) == "Redis"


def test_client_objects_are_read_not_used() -> None:
    """A client's deployment, credentials and pool bound are read; its own pool is never touched."""
    client = redis.Redis(host="10.1.1.1", port=7001, db=5, password="pw", max_connections=12)
    topology = topology_of(client)
    assert (topology.kind, topology.addresses, topology.max_connections) == ("single", (("10.1.1.1", 7001),), 12)
    assert topology.settings == {"db": 5, "password": "pw"}
    aio = topology_of(redis.asyncio.Redis(host="h", port=1))
    assert (aio.kind, aio.addresses) == ("single", (("h", 1),))
    sentinel = redis.sentinel.Sentinel([("s1", 26379)], sentinel_kwargs={"password": "sp"})
    master = topology_of(sentinel.master_for("svc", password="mp"))
    assert (master.kind, master.addresses, master.service) == ("sentinel", (("s1", 26379),), "svc")
    assert master.settings["password"] == "mp" and master.settings["sentinel_password"] == "sp"
    assert client.connection_pool._created_connections == 0  # noqa: SLF001


def test_connectors_carry_credentials_and_commtel_timeouts() -> None:
    """Connections (made, not connected) get the settings, commtel's timeout, RESP2 and no retries."""
    topology = topology_of("redis+sentinel://:pw@s1:26379/svc?sentinel_password=sp")
    for asyncio_side in (False, True):
        connector = Connector(topology, 0.3, asyncio=asyncio_side)
        conn = connector.make(None)
        assert (conn.password, conn.socket_timeout, conn.protocol) == ("pw", 0.3, 2)
        assert conn.retry.get_retries() == 0
        sentinels = connector._keep.sentinel_manager.sentinels  # noqa: SLF001
        assert sentinels[0].connection_pool.connection_kwargs["password"] == "sp"
    cluster = Connector(topology_of("redis+cluster://n1:7000"), 0.2)
    node = cluster.make(("n2", 7001))
    assert (node.host, node.port, node.socket_timeout) == ("n2", 7001, 0.2)
