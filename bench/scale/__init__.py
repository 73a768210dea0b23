"""Scale benchmarks: bulk import rates, large datasets, deep pages, counts, stats and plans.

Run ``python -m bench.scale --help``; see the "Scale" section of ``bench/RESULTS.md``.
"""
