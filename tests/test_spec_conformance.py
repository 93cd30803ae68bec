"""Zero false positives: every clause of the catalogue passes on the bundled implementations.

The NumPy oracle and torch_ref in float64, float32, float16 and bfloat16 (on every available device)
must pass every clause they can run: draws stay inside each format's range, and where a format
cannot resolve what a clause looks for (a change below its spacing, a descent smaller than the
cost's rounding) the clause asks only what the format can show. Training clauses are the slowest:
they run on the oracle and below float64. Each topic's own test module holds the planted bugs its
clauses must reject; this module holds the other half of "it can fail": that they do not fail a
correct implementation.

On the CPU, the float64 and bfloat16 runs (one of each code path: against the oracle, and against a
same-precision baseline) happen with torch's default device moved to "meta": a tensor that torch_ref
makes without ``device=`` fails them, as it would on a GPU (see tests/test_default_device.py).
"""

from __future__ import annotations

import pytest
from nnspec.spec import REGISTRY
from nnspec.verify import run_clause

CLAUSES = sorted(REGISTRY)
# The NumPy oracle has no autograd, hence no Transformer.train: TRAIN-TRANSLATE does not apply to it.
NOT_APPLICABLE_TO_NUMPY = {"TRAIN-TRANSLATE"}
DEFAULT_DEVICE_ELSEWHERE = {"float64", "bfloat16"}


def _assert_passes(clause_id: str, impl: str, *, profile: str = "quick") -> None:
    result = run_clause(clause_id, impl, profile=profile)
    assert result.status == "passed", result.message


@pytest.mark.parametrize("clause_id", CLAUSES)
def test_numpy_oracle_passes(clause_id: str) -> None:
    if clause_id in NOT_APPLICABLE_TO_NUMPY:
        assert run_clause(clause_id, "numpy").status == "not_applicable"
    else:
        _assert_passes(clause_id, "numpy")


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("clause_id", CLAUSES)
def test_torch_passes(clause_id: str, dtype: str, device: str, request: pytest.FixtureRequest) -> None:
    if REGISTRY[clause_id].cost == "training" and dtype == "float64":
        pytest.skip("training clauses run on the oracle and below float64 (the slowest clauses)")
    if device == "cpu" and dtype in DEFAULT_DEVICE_ELSEWHERE:
        request.getfixturevalue("meta_default_device")
    _assert_passes(clause_id, f"torch:{device}:{dtype}")
