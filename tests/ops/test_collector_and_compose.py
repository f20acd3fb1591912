"""otel-collector.yaml, docker-compose.yaml and prometheus.yml agree with each other and with their images."""

from __future__ import annotations

import re
import shlex

from typing import Any
from urllib.parse import urlsplit

import pytest

from commtel.cli import build_parser
from tests.ops.bundle import COLLECTOR, COMPOSE, DASHBOARDS, PROMETHEUS_YML, ROOT, load_yaml


CONFIG = load_yaml(COLLECTOR)
STACK = load_yaml(COMPOSE)
SERVICES: dict[str, Any] = STACK["services"]
KINDS = ("receivers", "processors", "exporters", "connectors")
# Component types renamed in collector 0.144.0; the old names only load with a warning there.
RENAMED_IN_0_144 = {
    "exporters": {"otlp": "otlp_grpc", "otlphttp": "otlp_http", "logging": "debug"},
    "connectors": {"spanmetrics": "span_metrics"},
}


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _image_version(service: str) -> tuple[str, str]:
    name, _, tag = SERVICES[service]["image"].rpartition(":")
    return name, tag


def _mounts(service: str) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    out = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
    return out


def test_every_pipeline_component_is_defined() -> None:
    """Each receiver, processor and exporter a pipeline names is configured."""
    for name, pipeline in CONFIG["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (CONFIG.get(kind) or {}), f"pipeline {name}: {kind[:-1]} {component} undefined"
    for extension in CONFIG["service"].get("extensions", []):
        assert extension in CONFIG["extensions"], extension


def test_every_defined_component_is_used() -> None:
    """Nothing is configured without being wired into a pipeline (or the service's extensions)."""
    pipelines = CONFIG["service"]["pipelines"].values()
    for kind in KINDS:
        used = {c for p in pipelines for c in p.get(kind, [])}
        if kind == "connectors":  # a connector is an exporter of one pipeline and a receiver of another
            used = {c for p in pipelines for c in (*p.get("exporters", []), *p.get("receivers", []))}
        assert set(CONFIG.get(kind) or {}) <= used, kind
    assert set(CONFIG.get("extensions") or {}) == set(CONFIG["service"].get("extensions", []))


def test_pipelines_limit_memory_first_and_batch() -> None:
    """Every pipeline starts with memory_limiter and batches after it."""
    for name, pipeline in CONFIG["service"]["pipelines"].items():
        processors = [_type(p) for p in pipeline["processors"]]
        assert processors[0] == "memory_limiter", name
        assert "batch" in processors[1:], name


def test_listen_addresses_are_explicit() -> None:
    """OTLP listens on 0.0.0.0:4317 (gRPC) and :4318 (HTTP); every other listener names its host too."""
    otlp = CONFIG["receivers"]["otlp"]["protocols"]
    assert otlp["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert otlp["http"]["endpoint"] == "0.0.0.0:4318"
    listeners = [("extensions", k, v) for k, v in (CONFIG.get("extensions") or {}).items()]
    listeners += [("exporters", k, v) for k, v in CONFIG["exporters"].items() if _type(k) == "prometheus"]
    for kind, component, settings in listeners:
        host, port = _host_port(settings["endpoint"])
        assert host and port, f"{kind} {component} must name its listen address"


def test_traces_go_to_jaeger_over_otlp() -> None:
    """The traces pipeline exports over OTLP to the compose stack's Jaeger v2 service."""
    exporters = CONFIG["service"]["pipelines"]["traces"]["exporters"]
    to_jaeger = [e for e in exporters if _type(e) in {"otlp_grpc", "otlp_http"}]
    assert to_jaeger
    for exporter in to_jaeger:
        endpoint = CONFIG["exporters"][exporter]["endpoint"]
        host = urlsplit(endpoint).hostname if "://" in endpoint else _host_port(endpoint)[0]
        assert host == "jaeger" and host in SERVICES
        assert CONFIG["exporters"][exporter].get("tls", {}).get("insecure") is True  # Jaeger speaks plain gRPC here


def test_component_names_are_valid_for_the_pinned_collector() -> None:
    """The pinned collector release takes the component names used (no renamed aliases)."""
    name, tag = _image_version("otel-collector")
    assert name == "otel/opentelemetry-collector-contrib"
    version = tuple(int(part) for part in tag.split("."))
    assert version >= (0, 144, 0), "older releases call the OTLP exporters otlp/otlphttp"
    for kind, renamed in RENAMED_IN_0_144.items():
        for component in CONFIG.get(kind) or {}:
            assert _type(component) not in renamed, f"{component}: use {renamed[_type(component)]}"


def test_images_are_pinned() -> None:
    """Every image names an exact version (no latest); Jaeger is v2."""
    for service, spec in SERVICES.items():
        name, tag = _image_version(service)
        assert name and tag and tag != "latest", service
    for service in ("otel-collector", "jaeger", "prometheus", "grafana"):
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", _image_version(service)[1]), service
    name, tag = _image_version("jaeger")
    assert name == "jaegertracing/jaeger" and tag.startswith("2."), "Jaeger v1 (all-in-one) is end-of-life"


def test_compose_mounts_exist_and_match_commands() -> None:
    """Bind-mounted files exist in the repo, and each service reads its config where it is mounted."""
    for service in SERVICES:
        for source in _mounts(service).values():
            assert (ROOT / source).exists(), f"{service}: {source} missing"
    collector = _mounts("otel-collector")
    config = next(a.split("=", 1)[1] for a in SERVICES["otel-collector"]["command"] if a.startswith("--config="))
    assert collector[config] == "./otel-collector.yaml"
    prom_args = SERVICES["prometheus"]["command"]
    assert "--enable-feature=exemplar-storage" in prom_args
    config_file = next(a.split("=", 1)[1] for a in prom_args if a.startswith("--config.file="))
    mount, source = next((t, s) for t, s in _mounts("prometheus").items() if config_file.startswith(t + "/"))
    assert (ROOT / source / config_file.removeprefix(mount + "/")).resolve() == PROMETHEUS_YML.resolve()


def test_prometheus_scrapes_the_demo_and_the_collector() -> None:
    """prometheus.yml scrapes the demo's /metrics and the collector's exporter by compose service name."""
    scrape = load_yaml(PROMETHEUS_YML)["scrape_configs"]
    targets = {t for job in scrape for sc in job["static_configs"] for t in sc["targets"]}
    port = _host_port(CONFIG["exporters"]["prometheus"]["endpoint"])[1]
    assert f"otel-collector:{port}" in targets
    assert "demo:9464" in targets
    for target in targets:
        host = _host_port(target)[0]
        assert host in SERVICES or host == "host.docker.internal", target
    assert "host.docker.internal:host-gateway" in SERVICES["prometheus"]["extra_hosts"]


def test_grafana_datasources_reach_compose_services() -> None:
    """The provisioned datasource URLs name services of the stack."""
    for path in (DASHBOARDS / "provisioning" / "datasources").glob("*.yaml"):
        for source in load_yaml(path)["datasources"]:
            assert urlsplit(source["url"]).hostname in SERVICES, source["name"]


def test_demo_service_sends_traces_to_the_collector() -> None:
    """The demo exports OTLP/HTTP to the collector's 4318 listener and serves metrics on 9464 for Prometheus."""
    env = SERVICES["demo"]["environment"]
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.hostname, endpoint.port) == ("otel-collector", 4318)
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    command = SERVICES["demo"]["command"][-1]
    demo_args = shlex.split(command.split("python -m commtel", 1)[1])
    assert demo_args[0] == "demo"
    try:
        args = build_parser().parse_args(demo_args)
    except SystemExit:
        pytest.fail(
            f"`commtel {' '.join(demo_args)}` is not a valid command line: the compose demo must "
            "serve /metrics on 0.0.0.0 (`commtel demo --metrics-addr`) for Prometheus to scrape it"
        )
    assert args.metrics_port == 9464
