"""The ``commtel`` command: ``version``, ``demo``, ``dashboards export``."""

from __future__ import annotations

import argparse
import sys

from collections.abc import Sequence


__all__ = ["main"]


def _version(_args: argparse.Namespace) -> int:
    from . import __version__

    print(f"commtel {__version__}")  # noqa: T201
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(
        duration_s=args.duration,
        metrics_port=args.metrics_port,
        metrics_addr=args.metrics_addr,
        workers=args.workers,
        spans_file=args.spans_file,
        live=args.live,
        log_file=args.log_file,
        alerts_s=args.alerts,
    )


def _dashboards_export(args: argparse.Namespace) -> int:
    from ._bundle import export_bundle

    try:
        written = export_bundle(args.directory, selector=args.selector, runbook_base=args.runbook_base)
    except ValueError as exc:
        print(f"commtel dashboards export: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    for path in written:
        print(path)  # noqa: T201
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``commtel`` command."""
    parser = argparse.ArgumentParser(
        prog="commtel",
        description="Resilience + observability for code that talks to rate-limited, flaky APIs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    version = sub.add_parser("version", help="print the installed version")
    version.set_defaults(run=_version)

    demo = sub.add_parser(
        "demo",
        help="run instrumented clients against local simulated platforms",
        description="Start simulated platforms locally and run workers that exercise every commtel "
        "component, serving Prometheus metrics and exporting traces (OTLP if OTEL_EXPORTER_OTLP_* is "
        "set, else a local JSON-lines file).",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--metrics-port",
        type=int,
        default=9464,
        metavar="PORT",
        help="serve /metrics on this port (default 9464; 0 picks a free one)",
    )
    demo.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        metavar="ADDR",
        help="address /metrics listens on (default 127.0.0.1; 0.0.0.0 inside a container)",
    )
    demo.add_argument("--workers", type=int, default=4, metavar="N", help="concurrent workers (default 4)")
    demo.add_argument(
        "--spans-file",
        default="commtel-demo-spans.jsonl",
        metavar="PATH",
        help="where spans go when no OTLP endpoint is configured",
    )
    demo.add_argument(
        "--log-file",
        default="commtel-demo.log",
        metavar="PATH",
        help="where the JSON log lines go (default commtel-demo.log)",
    )
    demo.add_argument(
        "--live", choices=("auto", "on", "off"), default="auto", help="live terminal view (auto: only on a TTY)"
    )
    demo.add_argument(
        "--alerts",
        type=float,
        nargs="?",
        const=420.0,
        default=None,
        metavar="SECONDS",
        help="after a 10 s warm-up, hold every alert's condition this long (default 420 s: all of them fire; "
        "150 s is enough for the retry storm, throttling and breaker-open alerts), then let them clear",
    )
    demo.set_defaults(run=_demo)

    dashboards = sub.add_parser("dashboards", help="Grafana dashboards, Prometheus rules, collector config")
    dash_sub = dashboards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    export = dash_sub.add_parser("export", help="write the ops bundle to a directory")
    export.add_argument("directory", help="target directory (created if missing)")
    export.add_argument(
        "--selector",
        metavar="MATCHERS",
        help="label matchers added to every commtel metric the rules and dashboards select, e.g. 'job=\"myapp\"' "
        "(the promtool unit tests, written for the shipped rules, are then left out)",
    )
    export.add_argument(
        "--runbook-base",
        metavar="URL",
        help="where your copy of docs/runbooks.md lives: runbook_url becomes URL#<alert name in lower case>",
    )
    export.set_defaults(run=_dashboards_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``commtel`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
