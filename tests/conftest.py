"""Shared fixtures for nnspec's own tests."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
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

SHARED_PYCACHE = "NNSPEC_SELFTEST_PYCACHE"


def pytest_configure(config: pytest.Config) -> None:
    """One bytecode cache for the ~100 Python processes the suite starts (pytester runs, the CLI,
    their xdist workers) where ``PYTHONDONTWRITEBYTECODE`` is set: without it each of them compiled
    nnspec again and had pytest rewrite the asserts of every pytest11 plugin package (Hypothesis's
    77 modules among them), about 1.5 s per process. The cache lives in a temporary directory
    (``PYTHONPYCACHEPREFIX``), so nothing is written beside the sources, as the variable asks, and
    it is removed at the end. Only the processes that run tests hand it to their children: xdist's
    workers start as before."""
    if not sys.flags.dont_write_bytecode or os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # bytecode is cached already (beside the sources, or where the user said)
    cache = os.environ.get(SHARED_PYCACHE) if hasattr(config, "workerinput") else None
    if cache is None:  # the controller, or the only process
        cache = tempfile.mkdtemp(prefix="nnspec-selftest-pycache-")
        os.environ[SHARED_PYCACHE] = cache
        config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    if hasattr(config, "workerinput") or config.getoption("dist", "no") == "no":  # this process runs tests
        os.environ["PYTHONPYCACHEPREFIX"] = cache
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


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
