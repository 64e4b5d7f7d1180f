"""Benchmarks: each bench_<name>.py prints BENCH lines; `python -m bench.run` runs them all."""
