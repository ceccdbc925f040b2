"""Benchmarks and soak runs (`make bench`, `make soak`); results go to docs/benchmarks.md."""
