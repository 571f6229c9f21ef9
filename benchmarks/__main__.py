"""Run every benchmark module (``benchmarks/bench_*.py``) or the ones named on the command line.

Usage: ``python -m benchmarks [name ...]`` where a name is ``detection`` for ``bench_detection``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; returns a non-zero status if one fails."""
    names = argv if argv is not None else sys.argv[1:]
    found = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    chosen = [f"bench_{n}" if not n.startswith("bench_") else n for n in names] or found
    failed = 0
    for name in chosen:
        if name not in found:
            print(f"no benchmark named {name!r}; have {', '.join(found)}", file=sys.stderr)
            return 2
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main([])
        except Exception as exc:  # report and go on with the others
            failed += 1
            print(f"{name} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
