"""Shared test settings: hypothesis profiles, a thread count sized for a 2-core CI machine, the cuda marker."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# The tests run thousands of tiny convolutions: one thread is faster for those than a pool.
torch.set_num_threads(1)

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

NO_CUDA = "needs CUDA: torch.cuda.is_available() is False here (benchmarks/gpu_check.sh runs these on a GPU)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` are skipped, with one reason, where no CUDA device is available."""
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(pytest.mark.skip(reason=NO_CUDA))
