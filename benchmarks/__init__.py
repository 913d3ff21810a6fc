"""autoshape's benchmarks: paired ratios against plain torch, build cost, throughput, compatibility.

Run them all with ``python benchmarks/run.py`` (``--quick`` for the CI smoke run); the
results land in ``benchmarks/RESULTS.md``.
"""
