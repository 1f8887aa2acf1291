"""Benchmarks that print markdown tables; `python -m bench` runs them all (bench/run_all.py)."""
