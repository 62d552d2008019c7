"""Helpers shared by the test packages, and by the benchmarks under bench/."""
