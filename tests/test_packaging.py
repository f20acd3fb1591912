"""Package surface: version, console script, typed marker, lazy imports, the wheel (layering: test_architecture).

The wheel test builds commtel, installs it without extras in a fresh virtualenv and runs
the README quick start there; the import-time test compares ``import commtel`` with
OpenTelemetry contrib's httpx instrumentation, each in fresh interpreters.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import venv
import zipfile

from importlib.metadata import version
from pathlib import Path

import pytest

import commtel
import commtel.errors
import commtel.events

from commtel._optional import EXTRAS, ensure, missing, requires


ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("ratelimit", "retries", "breaker", "oauth", "messages", "progress", "context")
#: Modules that must not load on ``import commtel`` or when a name is first used (until configure()).
HEAVY = ("opentelemetry.sdk", "rich", "redis", "sqlalchemy", "authlib", "grpc", "httpx", "requests", "aiohttp")


def _run(code: str, *, python: str = sys.executable, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_version_comes_from_package_metadata() -> None:
    """commtel.__version__ is the installed distribution's version."""
    assert commtel.__version__ == version("commtel")


def test_console_script_lists_subcommands() -> None:
    """`commtel --help` names every subcommand."""
    out = subprocess.run([sys.executable, "-m", "commtel", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("version", "demo", "dashboards"):
        assert command in out


def test_package_is_typed() -> None:
    """The py.typed marker ships with the package."""
    assert (ROOT / "commtel" / "py.typed").exists()


def test_public_names_exist() -> None:
    """Every name in commtel.__all__ (and the events and errors modules) exists; at most 45 at the top."""
    assert len(commtel.__all__) <= 45
    for module in (commtel, commtel.events, commtel.errors):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_lazy_package_resolves_all_its_names() -> None:
    """Each package's __all__ loads through its lazy __getattr__ in a fresh interpreter, and dir() lists it."""
    packages = ["commtel", *(f"commtel.{name}" for name in (*COMPONENTS, "instrumentation", "telemetry", "compat"))]
    code = (
        "import importlib\n"
        f"for name in {packages!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    for attr in module.__all__:\n"
        "        assert getattr(module, attr) is not None, (name, attr)\n"
        "        assert attr in dir(module), (name, attr)\n"
        "print('ok')\n"
    )
    assert _run(code).strip() == "ok"


def test_import_and_first_use_load_no_optional_dependency_or_sdk() -> None:
    """``import commtel`` and using the core components load no SDK and no optional package; configure() loads the SDK."""
    code = f"""
import sys
import commtel

heavy = {HEAVY!r}
loaded = lambda: sorted(m for m in heavy if m in sys.modules)
at_import = loaded()
limiter = commtel.RateLimiter(commtel.ratelimit.TokenBucket(1.0, 1))
limiter.try_acquire("k")

@commtel.retry
def ok() -> int:
    return 1

ok()
commtel.CircuitBreaker("b").call(ok)
commtel.get_logger("app").info("line")
with commtel.OperationTracker().start_operation("op"):
    pass
commtel.FileLock, commtel.ErrorTracker, commtel.Guard, commtel.OAuthClient, commtel.ConversationTracker
after_use = loaded()
commtel.configure("svc")
print(at_import, after_use, "opentelemetry.sdk" in sys.modules)
"""
    assert _run(code).split("\n")[0] == "[] [] True"


def _median_import_ms(module: str, runs: int) -> float:
    """Median wall time of ``import module`` in *runs* fresh interpreters (interpreter start excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    return statistics.median(float(_run(code)) for _ in range(runs))


def test_import_commtel_costs_no_more_than_contrib_httpx_instrumentation() -> None:
    """``import commtel`` is no slower than ``import opentelemetry.instrumentation.httpx`` (median of 7, same run)."""
    pytest.importorskip("opentelemetry.instrumentation.httpx")
    ours, theirs = [], []
    for _ in range(7):  # interleaved, so load on the machine affects both alike
        ours.append(_median_import_ms("commtel", 1))
        theirs.append(_median_import_ms("opentelemetry.instrumentation.httpx", 1))
    assert statistics.median(ours) <= statistics.median(theirs), (ours, theirs)


def test_missing_optional_package_names_the_extra() -> None:
    """A missing optional package is a ModuleNotFoundError whose message is the pip command to fix it."""
    error = missing("redis.asyncio")
    assert isinstance(error, ModuleNotFoundError) and error.name == "redis.asyncio"
    assert str(error) == "'redis' is not installed; it comes with commtel's 'redis' extra: pip install 'commtel[redis]'"
    assert "pip install 'commtel[httpx]'" in str(missing("opentelemetry.instrumentation.utils"))
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'commtel\[sql\]'") as raised:
        with requires("sqlalchemy"):
            raise ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy")
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ModuleNotFoundError, match="No module named 'somethingelse'"):  # not ours: unchanged
        with requires("sqlalchemy"):
            raise ModuleNotFoundError("No module named 'somethingelse'", name="somethingelse")
    with pytest.raises(ModuleNotFoundError, match=r"commtel\[rich\]"):
        ensure("sqlalchemy", "rich.definitely_not_a_module")
    ensure("sqlalchemy", "redis")  # installed: nothing happens
    declared = _extras()
    assert all(extra in declared for extras in EXTRAS.values() for extra in extras)


def _extras() -> set[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


@pytest.mark.slow
@pytest.mark.timeout(900)  # builds a wheel and installs its dependencies from the index
def test_wheel_without_extras_runs_the_readme_quick_start(tmp_path: Path) -> None:
    """The wheel holds commtel and the ops bundle (no tests); installed alone it imports and runs the quick start."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("commtel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "commtel/__init__.py" in names and "commtel/_bundle/otel-collector.yaml" in names
    assert any(name.startswith("commtel/_bundle/dashboards/") for name in names)
    assert any(name.endswith("licenses/LICENSE") for name in names)
    assert not [name for name in names if name.startswith("tests/")]
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run(
        [python, str(ROOT / "tests" / "readme_quickstart.py"), str(ROOT / "README.md")],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert str(env_dir) in out.stdout  # the installed wheel ran, not the checkout
    missing_extra = _run(
        "import commtel\ntry:\n    commtel.ConversationTracker('sqlite://')\nexcept ModuleNotFoundError as e:\n    print(e)\n",
        python=python,
        cwd=work,
    )
    assert "pip install 'commtel[sql]'" in missing_extra
