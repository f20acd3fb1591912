"""A real Prometheus server (Debian package) scraping targets we name, queried over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

from pathlib import Path
from typing import Any

from .procs import free_port, need_binary, wait_port
from .waiting import eventually


class PrometheusServer:
    """Scrapes every 2 s and evaluates rules every 2 s; alerts go to *alertmanagers* ("host:port")."""

    def __init__(self, rule_files: list[str] | None = None, *, interval_s: int = 2) -> None:
        self.binary = need_binary("prometheus", "prometheus")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="commtel-prom-"))
        self.config = self.dir / "prometheus.yml"
        self.rule_files = rule_files or []
        self.targets: list[str] = []
        self.alertmanagers: list[str] = []
        self.interval_s = interval_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        rules = "".join(f"\n  - {json.dumps(r)}" for r in self.rule_files)
        every = f"{self.interval_s}s"
        alerting = (
            f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: {json.dumps(self.alertmanagers)}\n"
            if self.alertmanagers
            else ""
        )
        self.config.write_text(
            f"global:\n  scrape_interval: {every}\n  evaluation_interval: {every}\n"
            f"rule_files:{rules or ' []'}\n"
            f"{alerting}"
            f"scrape_configs:\n  - job_name: commtel\n    scrape_interval: {every}\n"
            f"    static_configs:\n      - targets: {json.dumps(self.targets)}\n"
        )

    def start(self) -> PrometheusServer:
        self._write_config()
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1h",
                "--enable-feature=exemplar-storage",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "log").open("wb"),
        )
        wait_port(self.port, 30, self.proc)
        return self

    def set_targets(
        self, targets: list[str], rule_files: list[str] | None = None, alertmanagers: list[str] | None = None
    ) -> None:
        """Scrape *targets* ("127.0.0.1:PORT") from now on (config reload over HTTP)."""
        self.targets = targets
        if rule_files is not None:
            self.rule_files = rule_files
        if alertmanagers is not None:
            self.alertmanagers = alertmanagers
        self._write_config()
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        return eventually(lambda: self.query(expr), timeout=timeout, interval=0.5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
