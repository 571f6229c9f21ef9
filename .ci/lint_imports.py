"""Run the import contract (import-linter) over the installed layout of the `vigil` package.

The stage folders sit at the top of the repository and setuptools maps them into `vigil`
(`[tool.setuptools.package-dir]` in pyproject.toml). import-linter's graph builder (grimp)
walks the package's own folder only, so from the checkout it would see `vigil/` and none of
the mapped stages. This script lays the installed layout out as links under
`build/contract/vigil` (grimp follows links) and runs `lint-imports` there, so the contract
covers every stage. Exit status: lint-imports'.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_view(root: Path = ROOT, out: Path | None = None) -> Path:
    """Lay out ``vigil`` as installed, with links into ``root``; return the folder holding it."""
    out = out or root / "build" / "contract"
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    if out.exists():
        shutil.rmtree(out)
    top = out / "vigil"
    top.mkdir(parents=True)
    for entry in (root / mapping["vigil"]).iterdir():
        os.symlink(entry, top / entry.name)
    for package, folder in mapping.items():
        if package == "vigil":
            continue
        parent, _, name = package.rpartition(".")
        if parent != "vigil":
            raise SystemExit(f"package-dir maps {package!r}: only direct children of vigil")
        os.symlink(root / folder, top / name)
    return out


def main() -> int:
    view = build_view()
    linter = Path(sys.executable).with_name("lint-imports")
    cmd = [str(linter), "--config", str(ROOT / "pyproject.toml"), *sys.argv[1:]]
    return subprocess.call(cmd, cwd=view)


if __name__ == "__main__":
    sys.exit(main())
