"""Shared test settings: hypothesis profiles and a thread count sized for a 2-core CI machine."""

import os

import torch
from hypothesis import HealthCheck, settings

# The tests run thousands of tiny convolutions: one thread is faster for those than a pool.
torch.set_num_threads(1)

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
