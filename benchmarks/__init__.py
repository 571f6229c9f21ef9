"""Benchmarks: `make bench` runs every `bench_*.py` module here; each prints ratios to its anchor."""
