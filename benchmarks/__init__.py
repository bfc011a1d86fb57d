"""nbflow's benchmarks: workloads, baselines and the runner (``python -m benchmarks.run``).

Run on demand, never as timed tests; ``README.md`` here has the figures.
"""
