"""Run the README's quick start (its first ```python block) with whatever commtel is importable.

Usage: ``python tests/readme_quickstart.py README.md``. Used to check an installed wheel
and a minimum-versions install, where pytest may not be available.
"""

from __future__ import annotations

import re
import sys

from pathlib import Path


def quickstart(readme: Path) -> str:
    """The code of the first ```python block of *readme*."""
    match = re.search(r"^```python[ \t]*\n(.*?)^```", readme.read_text(), re.MULTILINE | re.DOTALL)
    if match is None:
        msg = f"{readme} has no ```python block"
        raise SystemExit(msg)
    return match.group(1)


if __name__ == "__main__":
    code = quickstart(Path(sys.argv[1]))
    exec(compile(code, "README quick start", "exec"), {"__name__": "__main__"})  # noqa: S102 - our own README
    import commtel

    print(f"README quick start ran with commtel from {commtel.__file__}")  # noqa: T201
