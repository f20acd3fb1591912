"""Mutation testing of commtel's decision cores: ``./dev mutate [COMPONENT ...]``.

Each component's core modules are mutated by mutmut and judged by that component's own
tests only, in a scratch copy of the tree (the checkout is never touched). Results go to
``docs/mutation.json``; ``docs/mutation.md`` is rendered from it, listing every surviving
mutant with the reason recorded in ``scripts/mutation_equivalents.toml`` — a survivor
without a reason is a missing test, and makes the run fail, as does a score under 90%.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

from dataclasses import dataclass
from pathlib import Path


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "mutation.json"
REPORT = ROOT / "docs" / "mutation.md"
REASONS = ROOT / "scripts" / "mutation_equivalents.toml"
SCRATCH = Path(os.environ.get("COMMTEL_MUTATE_DIR", "/tmp/commtel-mutate"))
TARGET_SCORE = 0.90


@dataclass(frozen=True)
class Component:
    """What to mutate and which tests judge it."""

    sources: tuple[str, ...]
    tests: tuple[str, ...]
    about: str
    #: A pytest ``-k`` expression leaving out tests that time real work (flaky under mutmut's load).
    keep: str = ""


COMPONENTS = {
    "ratelimit-properties": Component(
        ("commtel/ratelimit/_core.py",),
        ("tests/ratelimit/test_core_properties.py", "tests/ratelimit/test_core_model.py"),
        (
            "token bucket and sliding-window decisions, judged by the property and model tests alone"
            " (no Redis; the limiter's other tests could only add kills)"
        ),
    ),
    "breaker": Component(
        ("commtel/breaker/_core.py",),
        (
            "tests/breaker/test_core.py",
            "tests/breaker/test_core_model.py",
            "tests/breaker/test_breaker.py",
            "tests/breaker/test_admission.py",
        ),
        "breaker state machine and failure windows",
    ),
    "retries": Component(
        (
            "commtel/retries/_core.py",
            "commtel/retries/_config.py",
            "commtel/retries/_classify.py",
            "commtel/retries/_budget.py",
        ),
        ("tests/retry/",),
        "backoff arithmetic, retry decisions, classification, retry budget",
    ),
    "oauth": Component(
        ("commtel/oauth/_tokens.py",),
        ("tests/oauth/test_tokens.py", "tests/oauth/test_single_flight.py", "tests/oauth/test_flows.py"),
        "token expiry and refresh timing",
    ),
    "tracker": Component(
        ("commtel/messages/_tracker.py",),
        ("tests/tracker/test_tracker.py", "tests/tracker/test_retention.py", "tests/tracker/test_tracker_exact.py"),
        "message state transitions and leases",
    ),
    "feedback": Component(
        ("commtel/ratelimit/_feedback.py", "commtel/ratelimit/_sfv.py"),
        ("tests/ratelimit/test_feedback.py", "tests/ratelimit/test_structured_fields.py"),
        "server feedback parsing (Retry-After, X-RateLimit-*, RateLimit headers, structured fields)",
        keep="not under_10ms and not simulated_platform",
    ),
}


def _scratch_copy(name: str, component: Component) -> Path:
    """A copy of the tracked (and new, unignored) files, with mutmut configured for *component*."""
    work = SCRATCH / name
    shutil.rmtree(work, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    for rel in listed:
        if rel.startswith(("commtel/", "tests/")) or rel == "pyproject.toml":
            src = ROOT / rel
            if src.is_file():
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, work / rel)
    pyproject = (work / "pyproject.toml").read_text()
    pyproject = pyproject.split("\n[tool.mutmut]")[0]
    keep = ["-k", component.keep] if component.keep else []
    pyproject += (
        "\n[tool.mutmut]\n"
        f"source_paths = {json.dumps(list(component.sources))}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(component.tests))}\n"
        f"pytest_add_cli_args = {json.dumps(['--hypothesis-profile=mutation', '-p', 'no:cacheprovider', *keep])}\n"
        'also_copy = ["commtel", "tests"]\n'
    )
    (work / "pyproject.toml").write_text(pyproject)
    return work


def _mutmut(work: Path, *args: str) -> str:
    exe = Path(sys.executable).with_name("mutmut")
    result = subprocess.run([str(exe), *args], cwd=work, capture_output=True, text=True, check=False)
    return result.stdout


def run(name: str, children: int, *, collect_only: bool = False) -> dict[str, object]:
    """Mutate one component (or, *collect_only*, read its last run); return counts and survivors."""
    component = COMPONENTS[name]
    work = SCRATCH / name
    if not collect_only:
        work = _scratch_copy(name, component)
        with (work / "mutmut.log").open("w") as log:
            exe = Path(sys.executable).with_name("mutmut")
            subprocess.run(
                [str(exe), "run", "--max-children", str(children)], cwd=work, stdout=log, stderr=log, check=False
            )
    _mutmut(work, "export-cicd-stats")
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    if not stats_file.exists():
        tail = (work / "mutmut.log").read_text()[-3000:]
        sys.exit(f"mutate: mutmut did not finish for {name} (clean test run failing?):\n{tail}")
    stats = json.loads(stats_file.read_text())
    survivors: dict[str, str] = {}
    for line in _mutmut(work, "results").splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if status in {"survived", "no tests"}:
            shown = _mutmut(work, "show", mutant)
            diff = [ln for ln in shown.splitlines() if ln[:1] in "-+" and not ln.startswith(("---", "+++"))]
            survivors[mutant] = "\n".join(diff)
    return {
        "about": component.about,
        "sources": list(component.sources),
        "tests": list(component.tests),
        "stats": stats,
        "survivors": survivors,
    }


def score(result: dict[str, object]) -> float:
    """Killed (tests failed or hung) over all mutants."""
    stats = result["stats"]
    assert isinstance(stats, dict)
    total = stats["total"] - stats.get("skipped", 0)
    return (stats["killed"] + stats["timeout"]) / total if total else 1.0


def reason_key(mutant: str, diff: str) -> str:
    """The key of a survivor's reason: the mutated function, its line before and after the mutation.

    mutmut numbers mutants in order, so a name like ``…decide__mutmut_22`` names another mutant
    once the function changes; the function and the changed line do not.
    """
    module, _, function = mutant.rpartition(".")
    function = re.sub(r"__mutmut_\d+$", "", function)
    if function.startswith("xǁ"):  # mutmut's xǁClassǁmethod
        function = function[2:].replace("ǁ", ".")
    elif function.startswith("x_"):  # and x_function
        function = function[2:]
    before = " / ".join(line[1:].strip() for line in diff.splitlines() if line.startswith("-"))
    after = " / ".join(line[1:].strip() for line in diff.splitlines() if line.startswith("+"))
    return f"{module}.{function} | {before} -> {after}"


def reason(mutant: str, diff: str, reasons: dict[str, str]) -> str:
    """Why *mutant* cannot change behaviour, or **unexplained**."""
    return reasons.get(reason_key(mutant, diff), "**unexplained**")


def render(results: dict[str, dict[str, object]], reasons: dict[str, str]) -> str:
    """docs/mutation.md from every component's last result."""
    lines = [
        "# Mutation testing",
        "",
        "Generated by `./dev mutate` (mutmut) from `docs/mutation.json`; do not edit by hand.",
        "Each decision core is mutated one small change at a time and judged by its own tests only.",
        "A mutant is *killed* when a test fails or hangs (timeout). Every survivor is listed below with",
        "the reason it cannot change behaviour; a survivor without one is a missing test.",
        "",
        "| component | what | mutants | killed | timeout | survived | no tests | score |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        s = result["stats"]
        assert isinstance(s, dict)
        lines.append(
            f"| {name} | {result['about']} | {s['total']} | {s['killed']} | {s['timeout']} | {s['survived']} "
            f"| {s['no_tests']} | {score(result):.1%} |"
        )
    for name, result in results.items():
        survivors = result["survivors"]
        assert isinstance(survivors, dict)
        if not survivors:
            continue
        lines += ["", f"## {name}: surviving mutants", ""]
        for mutant, diff in sorted(survivors.items()):
            lines.append(f"- `{mutant.split('.')[-1]}` ({mutant.rsplit('.', 1)[0]}): {reason(mutant, diff, reasons)}")
            lines += ["  ```diff", *(f"  {ln}" for ln in str(diff).splitlines()), "  ```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "components", nargs="*", metavar="COMPONENT", help=f"any of {', '.join(COMPONENTS)} (default: all)"
    )
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--collect", action="store_true", help="only re-read the last run's results")
    args = parser.parse_args()
    unknown = sorted(set(args.components) - set(COMPONENTS))
    if unknown:
        parser.error(f"unknown component(s) {', '.join(unknown)}; choose from {', '.join(COMPONENTS)}")
    results: dict[str, dict[str, object]] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    reasons = tomllib.loads(REASONS.read_text()) if REASONS.exists() else {}
    for name in args.components or list(COMPONENTS):
        print(f"mutate: {name} …", flush=True)
        results[name] = run(name, args.children, collect_only=args.collect)
        print(f"mutate: {name}: {score(results[name]):.1%}", flush=True)
        results = {name: results[name] for name in COMPONENTS if name in results}
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        REPORT.write_text(render(results, reasons))
    failed = [n for n, r in results.items() if score(r) < TARGET_SCORE]
    unexplained = [
        mutant
        for result in results.values()
        for mutant, diff in result["survivors"].items()  # type: ignore[attr-defined]
        if reason_key(mutant, diff) not in reasons
    ]
    for name in failed:
        print(f"mutate: {name} scores {score(results[name]):.1%} < {TARGET_SCORE:.0%}")
    for mutant in unexplained:
        print(f"mutate: unexplained survivor {mutant}")
    return 1 if failed or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
