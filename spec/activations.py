"""Clauses on neurons and their activation ("squishification") functions.

Sources: "Neural Networks (notes on 3Blue1Brown)" section 1 (weights, bias, squishification
function, the matrix form of a layer's activations) and "Deep Learning (notes on 3Blue1Brown,
chapters 1-6)" chapter 1 (Neuron; sigmoid, ReLU and tanh). A neuron's activation is a squashing
function of the weighted sum of the previous layer's activations plus a bias; a whole layer is
``a' = sigma(W a + b)``. The bias says how large the weighted sum must be before the neuron becomes
meaningfully active (the notes' example: only active when the sum exceeds 10).
"""

from __future__ import annotations

import math
from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp

from . import precision
from .clause import DEEP_LEARNING, NEURAL_NETWORKS, Check, Source, clause

NEURON_SECTION = Source(NEURAL_NETWORKS, "1. Terminology, Sturctural Aspects and Basic Working, "
                        "c. Weights, d. Bias", paper=None)
SQUISH_SECTION = Source(NEURAL_NETWORKS, "1. Terminology, Sturctural Aspects and Basic Working, "
                        "e. Squishification function", paper=None)
CHAPTER_1 = Source(DEEP_LEARNING, "Chapter 1: what is a neural network?, Activation functions",
                   paper=None)


# ------------------------------------------------------------------------------ strategies
def _floats(bound: float) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=32)


def _z(bound: float = 1e3, max_side: int = 6) -> st.SearchStrategy[np.ndarray]:
    """Pre-activations; float32-representable so every implementation sees the same values."""
    shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=max_side)
    return hnp.arrays(np.float64, shapes, elements=_floats(bound))


def _sigma(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^{-z}), evaluated without overflow (e^{-|z|} <= 1)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ------------------------------------------------------------------------------ clauses
@clause(
    "NEURON-WSUM",
    "A layer's activations a' = sigma(W a + b) MUST equal, neuron by neuron, sigma of the "
    "weighted sum of the previous activations plus that neuron's bias.",
    source=NEURON_SECTION,
    needs=("dense",),
    topic="activations",
)
def neuron_weighted_sum(impl: Any, ck: Check) -> None:
    n_in = ck.draw(st.integers(1, 6), "n_in")
    n_out = ck.draw(st.integers(1, 6), "n_out")
    batch = ck.draw(st.integers(1, 3), "batch")
    W = ck.input(ck.draw(hnp.arrays(np.float64, (n_out, n_in), elements=_floats(3)), "W"))
    b = ck.input(ck.draw(hnp.arrays(np.float64, (n_out,), elements=_floats(3)), "b"))
    a = ck.input(ck.draw(hnp.arrays(np.float64, (batch, n_in), elements=_floats(1)), "a"))
    # a'_j = sigma( sum_k w_jk a_k + b_j ), one neuron at a time, W is (out, in)
    expected = np.empty((batch, n_out))
    for r in range(batch):
        for j in range(n_out):
            z_j = math.fsum(W[j, k] * a[r, k] for k in range(n_in)) + b[j]
            expected[r, j] = 1.0 / (1.0 + math.exp(-z_j))
    ck.close(impl.dense(a, W, b, activation="sigmoid"), expected, output="reduction",
             what="dense(a, W, b)[r, j]")
    # a single vector is a batch of one
    ck.close(impl.dense(a[0], W, b, activation="sigmoid"), expected[0], output="reduction",
             what="dense(a[0], W, b)")
    ck.close_to_oracle("dense", a, W, b, activation="sigmoid", output="reduction")


@clause(
    "NEURON-THRESHOLD",
    "With a bias of -10 a sigmoid neuron MUST be more than half active exactly when its "
    "weighted sum exceeds 10.",
    source=NEURON_SECTION,
    needs=("dense",),
    topic="activations",
    errata=(
        "Neural Networks (notes on 3Blue1Brown) says the bias is subtracted from the weighted "
        "sum (a threshold of 10); the Deep Learning notes and the video add it. Both describe "
        "sigma(W a + b) with b = -10, which is what this clause checks.",
    ),
)
def neuron_threshold(impl: Any, ck: Check) -> None:
    n_in = ck.draw(st.integers(1, 6), "n_in")
    # integer weights and activations: the weighted sum is exact, and hits 10 itself often
    W = ck.draw(hnp.arrays(np.int64, (1, n_in), elements=st.integers(-2, 5)), "W").astype(float)
    a = ck.draw(hnp.arrays(np.int64, (n_in,), elements=st.integers(0, 4)), "a").astype(float)
    weighted_sum = float(W[0] @ a)
    out = impl.dense(a, W, np.array([-10.0]), activation="sigmoid")
    # sigma(s - 10) > 1/2  <=>  s - 10 > 0  (sigma is increasing and sigma(0) = 1/2)
    ck.equal(bool(out[0] > 0.5), weighted_sum > 10,
             what=f"dense(a, W, -10) > 1/2 with weighted sum {weighted_sum:g}")


@clause(
    "ACT-SIGMOID",
    "The sigmoid MUST map every real number into [0, 1], be non-decreasing, give sigma(0) = 1/2, "
    "satisfy sigma(-z) = 1 - sigma(z) and have derivative sigma(z)(1 - sigma(z)).",
    source=SQUISH_SECTION,
    needs=("sigmoid | sigmoid_prime",),
    topic="activations",
)
def sigmoid_properties(impl: Any, ck: Check) -> None:
    z = ck.input(ck.draw(_z(), "z"))
    if ck.offers("sigmoid"):
        _sigmoid_values(impl, ck, z)
    if ck.offers("sigmoid_prime"):
        # d/dz (1 + e^{-z})^{-1} = e^{-z} / (1 + e^{-z})^2 = sigma(z) (1 - sigma(z))
        sig = _sigma(z)
        ck.close(impl.sigmoid_prime(z), sig * (1.0 - sig), output="elementwise",
                 what="sigmoid_prime(z)")


def _sigmoid_values(impl: Any, ck: Check, z: np.ndarray) -> None:
    """ACT-SIGMOID's part on the function itself: range, order, symmetry and closed form."""
    s = impl.sigmoid(z)
    ck.that(bool(np.all((s >= 0) & (s <= 1))), what="0 <= sigmoid(z) <= 1",
            observed=s, expected="values in [0, 1]")
    flat = z.ravel()
    order = np.argsort(flat, kind="stable")
    # non-decreasing up to rounding: every step sigma(z_(k+1)) - sigma(z_(k)) >= 0, so the
    # negative parts of the steps must vanish within the elementwise tolerance
    steps = np.diff(s.ravel()[order])
    ck.close(np.minimum(steps, 0.0), np.zeros_like(steps), output="elementwise",
             what="min(sigmoid(z_(k+1)) - sigmoid(z_(k)), 0) over sorted z")
    ck.equal(float(impl.sigmoid(np.zeros(1))[0]), 0.5, what="sigmoid(0)")
    # sigma(-z) = 1 / (1 + e^{z}) = e^{-z} / (1 + e^{-z}) = 1 - sigma(z)
    ck.close(impl.sigmoid(-z), 1.0 - s, output="elementwise", what="sigmoid(-z)")
    # sigma(z) = 1 / (1 + e^{-z})
    ck.close(s, _sigma(z), output="elementwise", what="sigmoid(z)")


@clause(
    "ACT-RELU",
    "ReLU MUST equal max(0, z), be idempotent (relu(relu(z)) = relu(z)) and positively "
    "homogeneous (relu(c z) = c relu(z) for c > 0).",
    source=CHAPTER_1,
    needs=("relu",),
    topic="activations",
)
def relu_properties(impl: Any, ck: Check) -> None:
    z = ck.input(ck.draw(_z(), "z"))
    r = impl.relu(z)
    # relu(z) = max(0, z): exact, no arithmetic involved
    ck.equal(r, np.maximum(z, 0.0), what="relu(z)")
    ck.equal(impl.relu(r), r, what="relu(relu(z))")
    # relu(c z) = c relu(z) for c > 0; c a power of two keeps c z exact, as long as c z stays
    # inside the format's range (float16 ends at 65504, so c * 1e3 must stay below it there)
    top = max(float(np.max(np.abs(z), initial=0.0)), 1.0)
    highest = min(8, math.floor(math.log2(precision.largest(impl) / top)))
    c = 2.0 ** ck.draw(st.integers(-8, highest), "log2 c")
    ck.close(impl.relu(ck.input(c * z)), c * r, output="elementwise", what="relu(c z)")


@clause(
    "ACT-TANH",
    "tanh MUST satisfy tanh(z) = 2 sigma(2z) - 1, be odd and map every real number into [-1, 1].",
    source=CHAPTER_1,
    needs=("tanh",),
    topic="activations",
)
def tanh_properties(impl: Any, ck: Check) -> None:
    z = ck.input(ck.draw(_z(bound=50.0), "z"))
    t = impl.tanh(z)
    ck.that(bool(np.all((t >= -1) & (t <= 1))), what="-1 <= tanh(z) <= 1",
            observed=t, expected="values in [-1, 1]")
    # tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z}) = 2 / (1 + e^{-2z}) - 1 = 2 sigma(2z) - 1
    ck.close(t, 2.0 * _sigma(2.0 * z) - 1.0, output="elementwise", what="tanh(z)")
    ck.close(impl.tanh(-z), -t, output="elementwise", what="tanh(-z)")
