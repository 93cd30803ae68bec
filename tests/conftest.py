"""Shared fixtures for nnspec's own tests."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, settings

# nnspec's own tests run on a loaded 2-core CI machine: no deadlines, derandomized.
settings.register_profile(
    "nnspec-selftest",
    deadline=None,
    derandomize=True,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("nnspec-selftest")

# One intra-op thread per process: `pytest -n 2` already gives each core a worker, and small
# matrices run 10-20x slower when two workers' thread pools fight over two cores.
torch.set_num_threads(1)

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """Every torch_ref test runs on the CPU and, where one is present, on a CUDA device."""
    return request.param
