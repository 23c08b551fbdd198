"""Benchmarks: standalone scripts (`python -m tests.bench.NAME`), not collected by pytest."""
