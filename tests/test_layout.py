"""Issue 16: parts, not monoliths — no Python module over 500 lines but the numba kernels."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = (
    "geo",
    "ingest",
    "hardware",
    "sim",
    "detection",
    "tracks",
    "alerts",
    "maps",
    "vigil",
    "tests",
    "benchmarks",
)
MAX_LINES = 500
#: numba kernel modules: plain loops over arrays, one module per stage (STYLE.md)
KERNEL_MODULE = "kernels.py"


def test_no_module_over_500_lines_but_kernels() -> None:
    over = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == KERNEL_MODULE:
                continue
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                over[str(path.relative_to(ROOT))] = n
    assert over == {}


def test_kernel_modules_are_numba_kernels() -> None:
    # the exemption is for numba kernel modules only, not any file that takes the name
    kernels = [p for f in FOLDERS for p in (ROOT / f).rglob(KERNEL_MODULE)]
    assert kernels
    for path in kernels:
        assert "numba" in path.read_text(encoding="utf-8"), path
