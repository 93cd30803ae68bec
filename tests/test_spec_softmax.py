"""The softmax clauses: bundled implementations pass, and each clause rejects a realistic bug."""

from __future__ import annotations

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
from nnspec.spec.clause import REGISTRY
from nnspec.verify import patched, run_clause

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic == "softmax")


def test_the_topic_declares_the_issue_clauses() -> None:
    assert set(CLAUSES) >= {"SM-SUM", "SM-RANGE", "SM-SHIFT", "SM-ORDER", "SM-FORMULA", "SM-TEMP",
                            "GRAD-SOFTMAX"}


# ------------------------------------------------------------------ planted bugs, one per clause
def naive_softmax(x, axis=-1, temperature=1.0):
    """e^x / sum e^x without subtracting the max: overflows to inf / inf = NaN for large logits."""
    e = np.exp(np.asarray(x) / temperature)
    return e / e.sum(axis=axis, keepdims=True)


def last_axis_softmax(x, axis=-1, temperature=1.0):
    """Ignores ``axis`` and always normalises the last one."""
    z = np.asarray(x) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmin(x, axis=-1, temperature=1.0):
    """A sign slip: e^{-x}, which reverses the order of the logits."""
    z = -np.asarray(x) / temperature
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def base_two_softmax(x, axis=-1, temperature=1.0):
    """2^x instead of e^x: normalised, ordered, shift invariant, but not the documents' formula."""
    z = np.asarray(x) / temperature
    e = np.exp2(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def temperature_multiplied(x, axis=-1, temperature=1.0):
    """x * T instead of x / T: T -> 0 flattens instead of sharpening."""
    z = np.asarray(x) * temperature
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_plus_one(x, axis=-1, temperature=1.0):
    """An extra 1 in the denominator (an implicit zero logit): e^x / (1 + sum e^x)."""
    e = np.exp(np.asarray(x) / temperature)
    return e / (1.0 + e.sum(axis=axis, keepdims=True))


@pytest.mark.parametrize(
    ("clause_id", "bug"),
    [
        ("SM-SUM", last_axis_softmax),
        ("SM-RANGE", naive_softmax),
        ("SM-SHIFT", naive_softmax),
        ("SM-ORDER", softmin),
        ("SM-FORMULA", base_two_softmax),
        ("SM-TEMP", temperature_multiplied),
        ("GRAD-SOFTMAX", softmax_plus_one),
    ],
)
def test_clause_rejects_planted_bug(clause_id: str, bug) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        result = run_clause(clause_id, patched("numpy", name=bug.__name__, softmax=bug))
    assert result.status == "failed", result.message


def test_base_two_softmax_passes_the_invariants_it_keeps() -> None:
    """The formula clause is needed: sum, range, shift and order cannot tell 2^x from e^x."""
    bad = patched("numpy", name="base-two", softmax=base_two_softmax)
    for clause_id in ("SM-SUM", "SM-RANGE", "SM-SHIFT", "SM-ORDER"):
        assert run_clause(clause_id, bad).status == "passed", clause_id


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize(("clause_id", "bug"), [("GRAD-SOFTMAX", softmax_plus_one),
                                                ("SM-SHIFT", naive_softmax)])
def test_resized_clauses_still_reject_planted_bugs_at_low_precision(clause_id: str, bug, dtype: str) -> None:
    """GRAD-SOFTMAX's step and SM-SHIFT's shift are sized to the format; both still catch bugs."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = run_clause(clause_id, patched(f"torch:cpu:{dtype}", name=bug.__name__, softmax=bug))
    assert result.status == "failed", result.message
