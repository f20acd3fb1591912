"""The ops bundle shipped with commtel, and ``commtel dashboards export DIR``.

The bundle is ``dashboards/`` (Grafana dashboards and provisioning, Prometheus recording
and alert rules with their promtool tests, ``prometheus.yml``) and ``otel-collector.yaml``.
A wheel carries them inside the package at ``commtel/_bundle/`` (pyproject's
``force-include``); an editable install reads them from the repository checkout.
"""

from __future__ import annotations

import os
import shutil

from pathlib import Path


__all__ = ["BUNDLE_PARTS", "bundle_root", "export_bundle"]

#: What the bundle holds, relative to its root: one directory and one file.
BUNDLE_PARTS = ("dashboards", "otel-collector.yaml")


def _complete(root: Path) -> bool:
    return (root / BUNDLE_PARTS[0]).is_dir() and (root / BUNDLE_PARTS[1]).is_file()


def bundle_root() -> Path:
    """The directory holding the bundle: the installed copy, else the repository checkout.

    Returns:
        A directory containing ``dashboards/`` and ``otel-collector.yaml``.

    Raises:
        FileNotFoundError: Neither the installed copy nor a checkout is there.

    .. versionadded:: 0.1.0
    """
    package = Path(__file__).resolve().parent
    for root in (package / "_bundle", package.parent):
        if _complete(root):
            return root
    msg = f"the commtel ops bundle is missing: neither {package / '_bundle'} nor a source checkout has it"
    raise FileNotFoundError(msg)


def _files(root: Path) -> list[Path]:
    """Every bundle file, relative to *root*, in a stable order."""
    found: list[Path] = []
    for part in BUNDLE_PARTS:
        path = root / part
        if path.is_file():
            found.append(Path(part))
            continue
        found.extend(p.relative_to(root) for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(found)


def export_bundle(target_dir: str | os.PathLike[str]) -> list[Path]:
    """Copy the ops bundle into *target_dir* (created if missing) and list the files written.

    Bundle files already in *target_dir* are overwritten; other files there are left alone.
    The result keeps the bundle's layout, so ``promtool check config dashboards/prometheus.yml``
    and the Grafana provisioning paths work from *target_dir* as they do in the repository.

    Args:
        target_dir: Where to write the bundle.

    Returns:
        The paths written, sorted, each under *target_dir*.

    Raises:
        FileNotFoundError: The bundle is not installed (see :func:`bundle_root`).
        NotADirectoryError: *target_dir* exists and is not a directory.

    .. versionadded:: 0.1.0
    """
    target = Path(target_dir)
    if target.exists() and not target.is_dir():
        msg = f"{target} exists and is not a directory"
        raise NotADirectoryError(msg)
    root = bundle_root()
    written: list[Path] = []
    for relative in _files(root):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / relative, destination)
        written.append(destination)
    return written
