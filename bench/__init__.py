"""Benchmarks of the hub against baselines measured in the same run; results go to BENCHMARKS.md.

Run `python -m bench [name…] [--quick]` (or `make bench`). Each benchmark starts its own
camera, hub and baselines as separate processes on 127.0.0.0/8, is bounded in time, and
writes its own section of BENCHMARKS.md. May import everything (see DESIGN.md).
"""
