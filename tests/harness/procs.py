"""Start real server binaries on free loopback ports; skip (or fail under CI) when missing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from pathlib import Path
from typing import Any

import pytest

from tests.harness.waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port P whose cluster bus port P + 10000 is free too (and below 65536)."""
    import random

    for _ in range(200):
        port = random.randrange(20000, 30000)  # below the ephemeral range, so P + 10000 fits
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    msg = "no free port pair for a cluster node"
    raise RuntimeError(msg)


def need_binary(name: str, package: str, *extra_dirs: str) -> str:
    """Path of *name*; skip with an install hint, or fail when CI is set."""
    found = shutil.which(name)
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if found is None and candidate.exists():
            found = str(candidate)
    if found is None:
        msg = f"{name} not found: install it with `apt-get install -y {package}` (or run ./dev test as root)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return found


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:

    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            msg = f"server exited with {proc.returncode} before listening on {port}"
            raise RuntimeError(msg)
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True

    try:
        eventually(listening, timeout=timeout, ignoring=(OSError,))
    except OSError:
        msg = f"nothing listening on 127.0.0.1:{port} after {timeout}s"
        raise RuntimeError(msg) from None


class RedisServer:
    """A real redis-server on a free loopback port; stop/start to simulate outages.

    *args* are extra command-line options (say ``--replicaof 127.0.0.1 6379``); *cwd* is
    where it runs (Cluster nodes write their config there).
    """

    def __init__(self, *args: str, port: int | None = None, cwd: str | None = None) -> None:
        self.binary = need_binary("redis-server", "redis-server")
        self.port = port or free_port()
        self.args = args
        self.cwd = cwd or tempfile.mkdtemp(prefix="commtel-redis-")  # a replica's sync writes an RDB here
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, *options, "--protected-mode", "no", *self.args],
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, proc=self.proc)
        return self

    def client(self) -> Any:
        """A plain redis-py client to this server (for the test's own checks)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def signal(self, signum: int) -> None:
        """Send *signum* (SIGSTOP freezes it, SIGCONT thaws it, SIGKILL kills it)."""
        assert self.proc is not None
        self.proc.send_signal(signum)
        if signum == signal.SIGKILL:
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        """Kill it (nothing to save; a primary would otherwise wait for its replicas)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def _poll(check: Any, what: str, timeout: float = 30.0) -> Any:
    """Ask *check()* every 20 ms until it returns something true; that value."""

    def asked() -> Any:
        try:
            return check()
        except Exception:  # noqa: BLE001 - a server still starting refuses or errs; ask again
            return None

    value = eventually(asked, timeout=timeout)
    if not value:
        msg = f"{what} did not happen within {timeout}s"
        raise RuntimeError(msg)
    return value


class RedisClusterServers:
    """A real Redis Cluster of *masters* primaries (no replicas), each node in its own directory.

    Made as an operator would: ``redis-server --cluster-enabled yes`` per node, then
    ``redis-cli --cluster create``; ready once every node reports ``cluster_state:ok``.
    """

    def __init__(self, masters: int = 3) -> None:
        self.cli = need_binary("redis-cli", "redis-tools")
        self.dir = Path(tempfile.mkdtemp(prefix="commtel-cluster-"))
        self.nodes: list[RedisServer] = []
        for _ in range(masters):
            port = free_cluster_port()
            (self.dir / str(port)).mkdir()
            self.nodes.append(
                RedisServer(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "5000",
                    port=port,
                    cwd=str(self.dir / str(port)),
                )
            )

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming every node."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def start(self) -> RedisClusterServers:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [self.cli, "--cluster", "create", *(node.address for node in self.nodes), "--cluster-replicas", "0"]
            + ["--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        clients = [node.client() for node in self.nodes]
        for client in clients:
            _poll(lambda c=client: b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO"), "cluster_state:ok")
        for client in clients:  # every node agrees on every slot's owner
            _poll(lambda c=client: len(c.execute_command("CLUSTER", "SLOTS")) == len(self.nodes), "slot agreement")
            client.close()
        return self

    def flush(self) -> None:
        for node in self.nodes:
            client = node.client()
            client.flushall()
            client.script_flush()
            client.close()

    def reset_stats(self) -> None:
        """Zero every node's command statistics."""
        for node in self.nodes:
            client = node.client()
            client.config_resetstat()
            client.close()

    def command_calls(self, command: str) -> int:
        """Calls of *command* on all nodes since :meth:`reset_stats`."""
        total = 0
        for node in self.nodes:
            client = node.client()
            total += int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))
            client.close()
        return total

    def owner(self, slot: int) -> RedisServer:
        """The node serving *slot*, in its own view (another node's may lag behind a move)."""
        for node in self.nodes:
            client = node.client()
            try:
                nodes = client.execute_command("CLUSTER", "NODES")
            finally:
                client.close()
            text = nodes.decode() if isinstance(nodes, bytes) else str(nodes)
            mine = next(line.split() for line in text.splitlines() if "myself" in line)
            for claim in mine[8:]:
                if claim.startswith("["):
                    continue  # a slot being imported or migrated: not yet (or no longer) served here
                start, _, end = claim.partition("-")
                if int(start) <= slot <= int(end or start):
                    return node
        msg = f"no node serves slot {slot}"
        raise LookupError(msg)

    def migrate_slot(self, slot: int, target: RedisServer, *, pause_s: float = 0.0) -> None:
        """Move *slot* to *target* the way ``redis-cli --cluster reshard`` does.

        IMPORTING on the target, MIGRATING on the source, the keys moved in batches with
        MIGRATE, then every node told the new owner. *pause_s* stretches the time the
        slot spends half-moved (before and after its keys move).
        """
        source = self.owner(slot)
        src, dst = source.client(), target.client()
        try:
            src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            time.sleep(pause_s)  # the behaviour under test: a slot half-moved for a while
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            time.sleep(pause_s)  # (and after its keys moved)
            for node in [target, source, *(n for n in self.nodes if n not in (target, source))]:
                client = node.client()  # the new owner first, then the old one, then the rest
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
                client.close()
        finally:
            src.close()
            dst.close()

    def migrate_elsewhere(self, slots: list[int], rounds: int) -> None:
        """Move each of *slots* to another node and back, *rounds* times, from a separate process.

        A separate process, as an operator's tool would be: the test's own threads then
        measure the decisions, not this process's GIL busy with the migration.
        """
        ports = [node.port for node in self.nodes]
        code = (
            "import sys\n"
            "from tests.harness.procs import RedisClusterServers, RedisServer\n"
            "cluster = RedisClusterServers.__new__(RedisClusterServers)\n"
            f"cluster.nodes = [RedisServer(port=p) for p in {ports!r}]\n"
            f"for _ in range({rounds}):\n"
            f"    for slot in {slots!r}:\n"
            "        home = cluster.owner(slot)\n"
            "        cluster.migrate_slot(slot, next(n for n in cluster.nodes if n is not home))\n"
            "        cluster.migrate_slot(slot, home)\n"
        )
        root = Path(__file__).resolve().parents[2]
        subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisSentinelGroup:
    """A primary, one replica and one Sentinel watching them (service ``m``): Redis HA in miniature.

    ``down-after-milliseconds`` 1000 and ``failover-timeout`` 3000, quorum 1: SIGKILL the
    primary and Sentinel promotes the replica about two seconds later.
    """

    service = "m"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="commtel-sentinel-"))
        self.primary = RedisServer()
        self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.primary.port))
        self.sentinel_port = free_port()
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 3000\n"
        )
        self.sentinel = RedisServer(str(conf), "--sentinel", port=self.sentinel_port)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.service}"

    def start(self) -> RedisSentinelGroup:
        self.primary.start()
        self.replica.start()
        replica = self.replica.client()
        _poll(lambda: replica.info("replication").get("master_link_status") == "up", "replica sync")
        replica.close()
        self.sentinel.proc = subprocess.Popen(
            [self.sentinel.binary, str(self.dir / "sentinel.conf"), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.sentinel_port, proc=self.sentinel.proc)
        sentinel = self.sentinel.client()
        _poll(
            lambda: any(
                r["port"] == self.replica.port and r["master-link-status"] == "ok" and not r["is_sdown"]
                for r in sentinel.sentinel_slaves(self.service)
            ),
            "Sentinel knowing the replica",
        )
        sentinel.close()
        return self

    def primary_port(self) -> int:
        """The port of the primary Sentinel names now."""
        sentinel = self.sentinel.client()
        try:
            return int(sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)[1])
        finally:
            sentinel.close()

    def wait_promotion(self, old_port: int, timeout: float = 30.0) -> float:
        """Wait until Sentinel names another primary than *old_port*; the monotonic time it was seen."""
        _poll(lambda: self.primary_port() != old_port, "promotion", timeout)
        return time.monotonic()

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.primary):
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A real PostgreSQL cluster in a temp dir, run as the postgres user when we are root."""

    def __init__(self) -> None:
        bindir = "/usr/lib/postgresql/15/bin"
        for version in ("17", "16", "15", "14"):
            if Path(f"/usr/lib/postgresql/{version}/bin/initdb").exists():
                bindir = f"/usr/lib/postgresql/{version}/bin"
                break
        self.initdb = need_binary("initdb", "postgresql", bindir)
        self.pg_ctl = str(Path(self.initdb).with_name("pg_ctl"))
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="commtel-pg-"))
        self.data = self.dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.dir / "log"),
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=100",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
