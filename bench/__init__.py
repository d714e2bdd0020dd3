"""Benchmarks of channel-relay against ceilings measured on the same machine in the same run.

Run with `python -m bench` (see docs/BENCHMARKS.md). Load generators live in `bench.load` and run
in their own processes; the ceiling servers in `bench.ceilings` and `bench.sqlite_ceiling`; one
module per scenario in `bench.scenarios`.
"""
