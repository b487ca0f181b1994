"""Benchmarks of ginlight against raw PyTorch and Lightning (see docs/performance.md)."""
