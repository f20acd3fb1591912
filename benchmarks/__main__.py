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
    parser.add_argument(
        "filter",
        nargs="?",
        default="",
        help="only the bench_ modules whose name contains this text, else only groups and experiments that do",
    )
    args = parser.parse_args()
    here = Path(__file__).parent
    wanted = args.filter.lower()
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    whole = [name for name in names if wanted and wanted in name.removeprefix("bench_")]
    cases: list[Case] = []
    experiments: list[tuple[str, Callable[[], str]]] = []
    for name in whole or names:
        module = importlib.import_module(f"benchmarks.{name}")
        cases.extend(module.cases())
        experiments.extend(getattr(module, "experiments", list)())
    if whole:
        wanted = ""  # every group and experiment of the chosen modules
    print(
        f"# commtel benchmarks: Python {platform.python_version()} on {platform.machine()}, "
        f"{platform.processor() or 'cpu'}; median ns/call"
    )
    print(f"| {'group':<48} | {'case':<34} | {'ns/call':>11} | {'ratio':>7} | target |")
    print(f"|{'-' * 50}|{'-' * 36}|{'-' * 13}:|{'-' * 8}:|--------|")
    groups: dict[str, list[Case]] = {}
    for case in cases:
        if wanted in case.group.lower():
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
        if wanted in title.lower():
            print()
            print(run(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
