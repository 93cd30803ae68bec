"""Shared fixtures for nnspec's own tests."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture
def meta_default_device() -> Iterator[None]:
    """Torch's default device moved to "meta" for the test: a tensor made without ``device=`` has no
    data there, so a ``torch:cpu`` run fails at the first one, exactly where a ``torch:cuda`` run would
    meet a stray CPU tensor (CI has no GPU). A user's own ``set_default_device`` must not change what a
    run checks either. ``tests/test_default_device.py`` shows such a leak is caught this way."""
    previous = torch.get_default_device()
    torch.set_default_device("meta")
    try:
        yield
    finally:  # None, not "cpu": an explicit CPU default would leave a device mode on every call
        torch.set_default_device(None if previous.type == "cpu" else previous)
