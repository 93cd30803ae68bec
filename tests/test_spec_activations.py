"""The neuron and activation clauses: bundled implementations pass, realistic bugs are rejected."""

from __future__ import annotations

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
from nnspec.spec.clause import REGISTRY
from nnspec.verify import patched, run_clause

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic == "activations")


def test_the_topic_declares_the_issue_clauses() -> None:
    assert set(CLAUSES) >= {"NEURON-WSUM", "NEURON-THRESHOLD", "ACT-SIGMOID", "ACT-RELU",
                            "ACT-TANH"}


def test_threshold_clause_records_the_bias_sign_erratum() -> None:
    assert any("subtract" in e for e in REGISTRY["NEURON-THRESHOLD"].errata)


# ------------------------------------------------------------------ planted bugs
def _sigma(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def dense_without_bias(a, W, b, activation="sigmoid"):
    """Forgets the bias: sigma(W a)."""
    return _sigma(np.asarray(a) @ np.asarray(W).T)


def dense_subtracting_bias(a, W, b, activation="sigmoid"):
    """Reads the notes' "subtract the bias" literally on top of b = -10: sigma(W a - b)."""
    return _sigma(np.asarray(a) @ np.asarray(W).T - np.asarray(b))


def dense_transposed(a, W, b, activation="sigmoid"):
    """W taken as (in, out): a @ W (fails with a shape error, or wrong values when square)."""
    return _sigma(np.asarray(a) @ np.asarray(W) + np.asarray(b))


def sigmoid_sign_slip(z):
    """1 / (1 + e^{z}): decreasing instead of increasing."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(np.asarray(z, dtype=np.float64)))


def sigmoid_prime_without_one_minus(z):
    """sigma'(z) written as sigma(z) (the (1 - sigma) factor forgotten)."""
    with np.errstate(over="ignore"):
        return _sigma(z)


def leaky_relu(z):
    """max(0.01 z, z): not max(0, z)."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z > 0, z, 0.01 * z)


def tanh_as_shifted_sigmoid(z):
    """2 sigma(z) - 1, i.e. tanh(z / 2): the factor 2 inside sigma forgotten."""
    with np.errstate(over="ignore"):
        return 2.0 * _sigma(z) - 1.0


@pytest.mark.parametrize(
    ("clause_id", "overrides"),
    [
        ("NEURON-WSUM", {"dense": dense_without_bias}),
        ("NEURON-WSUM", {"dense": dense_transposed}),
        ("NEURON-THRESHOLD", {"dense": dense_subtracting_bias}),
        ("ACT-SIGMOID", {"sigmoid": sigmoid_sign_slip}),
        ("ACT-SIGMOID", {"sigmoid_prime": sigmoid_prime_without_one_minus}),
        ("ACT-RELU", {"relu": leaky_relu}),
        ("ACT-TANH", {"tanh": tanh_as_shifted_sigmoid}),
    ],
    ids=lambda v: v if isinstance(v, str) else next(iter(v.values())).__name__,
)
def test_clause_rejects_planted_bug(clause_id: str, overrides: dict) -> None:
    name = next(iter(overrides.values())).__name__
    result = run_clause(clause_id, patched("numpy", name=name, **overrides))
    assert result.status == "failed", result.message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_relu_clause_still_rejects_leaky_relu_at_low_precision(dtype: str) -> None:
    """ACT-RELU's scale c is cut to the format's range at float16; the clause stays as sharp."""
    result = run_clause("ACT-RELU", patched(f"torch:cpu:{dtype}", name="leaky", relu=leaky_relu))
    assert result.status == "failed", result.message


def test_precision_constants_describe_the_formats() -> None:
    """The clause-side format table agrees with the formats themselves (torch's finfo)."""
    import torch
    from nnspec.spec import precision

    class Impl:
        def __init__(self, dtype: str) -> None:
            self.dtype = dtype

    for dtype in ("float64", "float32", "float16", "bfloat16"):
        info = torch.finfo(getattr(torch, dtype))
        assert precision.eps(Impl(dtype)) == info.eps
        assert precision.largest(Impl(dtype)) == info.max
        # the spacing at 1.0 is eps, and subnormals share the smallest normal's spacing
        assert precision.spacing(Impl(dtype), 1.0) == info.eps
        assert precision.spacing(Impl(dtype), 0.0) == info.eps * info.tiny
    assert precision.spacing(Impl("float16"), 1.76e-7) == 2.0**-24  # a subnormal in float16
    assert precision.dtype_of(object()) == "float64"
    assert precision.low_precision(Impl("bfloat16")) and not precision.low_precision(Impl("float32"))
