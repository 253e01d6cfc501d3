"""Throughput benchmarks (see the bench issue)."""
