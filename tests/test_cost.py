"""Bounded cost: the extreme requests of benchmarks/worst_case.py answer within generous bounds.

The benchmark measures the real bound (50 ms and 20 MB of Python allocation per request, with
sizes up to 10⁶; see benchmarks/RESULTS.md). A loaded 2-core CI machine must not fail a correct
build, so here every seventh request of the grid may take twenty times that CPU time;
the tracemalloc peak does not depend on the load and keeps its bound.
"""

from __future__ import annotations

import pytest

from benchmarks.memory import python_peak
from benchmarks.timing import median_seconds
from benchmarks.worst_case import BYTES, SECONDS, Request, cold, requests

SLACK = 20


@pytest.mark.parametrize("extreme", requests(every=7), ids=lambda request: request.call.strip("`"))
def test_an_extreme_request_answers_within_generous_bounds(extreme: Request) -> None:
    run = cold(extreme.run)
    peak = python_peak(run)
    seconds, _ = median_seconds(run, repeats=1)
    assert peak <= BYTES, f"{extreme.call}: tracemalloc peak {peak / 2**20:.1f} MiB"
    assert seconds <= SLACK * SECONDS, f"{extreme.call}: {seconds * 1e3:.0f} ms of CPU time"
