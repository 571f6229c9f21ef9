"""Run every benchmark module (``benchmarks/bench_*.py``) or the ones named on the command line.

Usage: ``python -m benchmarks [name ...]`` where a name is ``detection`` for ``bench_detection``;
``python -m benchmarks NAME --option ...`` passes the options to that one benchmark (as
``python -m benchmarks.bench_NAME --option ...`` does).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; returns a non-zero status if one fails."""
    args = argv if argv is not None else sys.argv[1:]
    first_option = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    names, options = args[:first_option], args[first_option:]
    if options and len(names) != 1:
        print(
            "options go to one benchmark: python -m benchmarks NAME --option ...", file=sys.stderr
        )
        return 2
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
            importlib.import_module(f"benchmarks.{name}").main(options)
        except Exception as exc:  # report and go on with the others
            failed += 1
            print(f"{name} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
