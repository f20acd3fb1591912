"""Run every bench_*.py module's cases in one process and print one table."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys

from collections.abc import Callable
from pathlib import Path

from benchmarks._harness import Case, measure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("filter", nargs="?", default="", help="only groups containing this text")
    args = parser.parse_args()
    here = Path(__file__).parent
    cases: list[Case] = []
    experiments: list[tuple[str, Callable[[], str]]] = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"benchmarks.{info.name}")
            cases.extend(module.cases())
            experiments.extend(getattr(module, "experiments", list)())
    print(
        f"# commtel benchmarks: Python {platform.python_version()} on {platform.machine()}, "
        f"{platform.processor() or 'cpu'}; median ns/call"
    )
    print(f"| {'group':<48} | {'case':<34} | {'ns/call':>11} | {'ratio':>7} | target |")
    print(f"|{'-' * 50}|{'-' * 36}|{'-' * 13}:|{'-' * 8}:|--------|")
    groups: dict[str, list[Case]] = {}
    for case in cases:
        if args.filter.lower() in case.group.lower():
            groups.setdefault(case.group, []).append(case)
    failed = False
    for group, members in groups.items():
        results = [(case, measure(case)) for case in members]
        base = next((ns for case, ns in results if case.baseline), None)
        for case, ns in results:
            ratio = f"{ns / base:.2f}x" if base else ""
            target = ""
            if case.target is not None and base:
                ok = ns / base <= case.target
                failed |= not ok
                target = f"<={case.target:g} {'ok' if ok else 'MISS'}"
            print(
                f"| {group:<48} | {case.name + (' ' + case.note if case.note else ''):<34} | "
                f"{ns:>11,.0f} | {ratio:>7} | {target} |"
            )
        sys.stdout.flush()
    # Experiments measure behaviour (goodput, tail latency) in real time, not ns per call.
    for title, run in experiments:
        if args.filter.lower() in title.lower():
            print()
            print(run(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
