"""Start real server binaries on free loopback ports; skip (or fail under CI) when missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            msg = f"server exited with {proc.returncode} before listening on {port}"
            raise RuntimeError(msg)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    msg = f"nothing listening on 127.0.0.1:{port} after {timeout}s"
    raise RuntimeError(msg)


class RedisServer:
    """A real redis-server on a free loopback port; stop/start to simulate outages."""

    def __init__(self) -> None:
        self.binary = need_binary("redis-server", "redis-server")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


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
