"""Clauses on neurons and their activation ("squishification") functions.

Sources: "Neural Networks (notes on 3Blue1Brown)" section 1 (weights, bias, squishification
function, the matrix form of a layer's activations) and "Deep Learning (notes on 3Blue1Brown,
chapters 1-6)" chapter 1 (Neuron; sigmoid, ReLU and tanh). A neuron's activation is a squashing
function of the weighted sum of the previous layer's activations plus a bias; a whole layer is
``a' = sigma(W a + b)``. The bias says how large the weighted sum must be before the neuron becomes
meaningfully active (the notes' example: only active when the sum exceeds 10).

GELU, the activation of GPT's multilayer perceptrons, is not named by the documents: the Neural
Networks notes (6f, Multilayer Perceptron) describe the block it sits in, Hendrycks and Gimpel
(2016) define it and Brown et al. (2020) use it. Derivatives (what backpropagation multiplies by)
are checked against sympy's derivative of each function's definition, evaluated in float64 at the
drawn points, never against a reference implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp

if TYPE_CHECKING:
    import sympy

from . import precision
from .clause import (
    BROWN_2020,
    DEEP_LEARNING,
    HENDRYCKS_2016,
    NEURAL_NETWORKS,
    Check,
    Source,
    clause,
    must_refuse,
)

NEURON_SECTION = Source(NEURAL_NETWORKS, "1. Terminology, Structural Aspects and Basic Working, "
                        "c. Weights, d. Bias", paper=None)
SQUISH_SECTION = Source(NEURAL_NETWORKS, "1. Terminology, Structural Aspects and Basic Working, "
                        "e. Squishification function", paper=None)
CHAPTER_1 = Source(DEEP_LEARNING, "Chapter 1: what is a neural network?, Activation functions",
                   paper=None)
MLP_SECTION = Source(NEURAL_NETWORKS, "6f. Multilayer Perceptron",
                     paper=f"{HENDRYCKS_2016}; {BROWN_2020}")

# The tanh approximation of GELU (Hendrycks and Gimpel 2016):
#     GELU(z) ~ z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
GELU_CUBIC = 0.044715
# The largest gap between that approximation and the exact z Phi(z) over the whole real line:
# 4.7324e-4, at |z| = 2.6989 (the gap is even in z and tends to 0 at both ends, since both functions
# tend to z and to 0). Computed with 40-digit mpmath; tests/test_spec_activations.py recomputes it.
GELU_TANH_MAX_GAP = 4.74e-4
# GELU's draws stay within |z| <= 30: the cubic of the approximation is then finite in every format
# (30^3 = 27000 < 65504, float16's largest value), and beyond |z| ~ 10 GELU is max(0, z) to float64's
# rounding, so wider draws would check nothing new.
GELU_BOUND = 30.0


# ------------------------------------------------------------------------------ strategies
def _floats(bound: float) -> st.SearchStrategy[float]:
    """float32 values within ``bound``, subnormals excluded: XLA on the CPU, CUDA's -ftz and
    ``torch.set_flush_denormal(True)`` read a subnormal input as 0, a mode of the platform (the
    header reports the session's) and no fault of an activation. relu(1e-40) = 0 there, and the
    exact checks below would fail a correct ReLU for it."""
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)


def _z(bound: float = 1e3, max_side: int = 6) -> st.SearchStrategy[np.ndarray]:
    """Pre-activations; float32-representable so every implementation sees the same values."""
    shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=max_side)
    return hnp.arrays(np.float64, shapes, elements=_floats(bound))


def _gelu_z() -> st.SearchStrategy[np.ndarray]:
    """Pre-activations for GELU: |z| <= 5, where it curves, as often as up to :data:`GELU_BOUND`."""
    shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6)
    return hnp.arrays(np.float64, shapes, elements=st.one_of(_floats(5.0), _floats(GELU_BOUND)))


def _sigma(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^{-z}), evaluated without overflow (e^{-|z|} <= 1)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _elementwise(f: Callable[[float], float], z: np.ndarray) -> np.ndarray:
    """``f`` (a function of one Python float) at every element of ``z``, in float64."""
    return np.vectorize(f, otypes=[np.float64])(np.asarray(z, dtype=np.float64))


def gelu_exact(z: np.ndarray) -> np.ndarray:
    """GELU(z) = z Phi(z), Phi(z) = (1 + erf(z / sqrt 2)) / 2 the standard normal CDF, element by
    element with the C library's erf (math.erf), not with any implementation's."""
    return _elementwise(lambda v: v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))), z)


def gelu_tanh(z: np.ndarray) -> np.ndarray:
    """z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), in float64."""
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + GELU_CUBIC * z**3)))


def _symbolic(name: str, z: sympy.Symbol) -> sympy.Expr:
    """Each activation's definition as a sympy expression of ``z``.

    ReLU is written piecewise, z where z > 0 and 0 elsewhere, so its derivative is piecewise too
    and takes the value 0 at the kink z = 0: the choice the reference documents (and PyTorch's
    autograd makes) for a function with no derivative there.
    """
    import sympy  # here, not at the top: a pytest run that never differentiates skips its 0.3 s import
    half = sympy.Rational(1, 2)
    definitions = {
        "relu": lambda: sympy.Piecewise((z, z > 0), (0, True)),
        "tanh": lambda: sympy.tanh(z),
        "gelu": lambda: z * half * (1 + sympy.erf(z / sympy.sqrt(2))),
        "gelu_tanh": lambda: z * half * (1 + sympy.tanh(
            sympy.sqrt(2 / sympy.pi) * (z + sympy.Rational(44715, 10**6) * z**3))),
    }
    return definitions[name]()


@cache
def _derivative(name: str) -> Callable[[float], float]:
    """d/dz of activation ``name``, differentiated by sympy from :func:`_symbolic`, as a function
    of one float evaluated with Python's math module (float64)."""
    import sympy  # here, not at the top: a pytest run that never differentiates skips its 0.3 s import
    z = sympy.Symbol("z", real=True)
    return sympy.lambdify(z, sympy.diff(_symbolic(name, z), z), modules="math")


def _prime(name: str, z: np.ndarray) -> np.ndarray:
    """sympy's derivative of activation ``name`` at every element of ``z``."""
    return _elementwise(_derivative(name), z)


# ------------------------------------------------------------------------------ clauses
@clause(
    "NEURON-WSUM",
    "A layer's activations a' = sigma(W a + b) MUST equal, neuron by neuron, sigma of the "
    "weighted sum of the previous activations plus that neuron's bias, sigma being the activation "
    "the layer names (none: the weighted sum itself).",
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
    # sigma is the documents' squishing function, but a layer applies the one its config names
    # (None: a linear layer); a dense() that hard-codes sigmoid is right only for sigmoid
    name = ck.draw(st.sampled_from([None, "relu", "sigmoid", "tanh", "gelu", "gelu_tanh"]), "activation")
    sigma = FORMULAS[name] if name is not None else (lambda z: z)
    # a'_j = sigma( sum_k w_jk a_k + b_j ), one neuron at a time, W is (out, in)
    z = np.empty((batch, n_out))
    for r in range(batch):
        for j in range(n_out):
            z[r, j] = math.fsum(W[j, k] * a[r, k] for k in range(n_in)) + b[j]
    expected = sigma(z)
    ck.close(impl.dense(a, W, b, activation=name), expected, output="reduction",
             what=f"dense(a, W, b, activation={name!r})[r, j]")
    # a single vector is a batch of one
    ck.close(impl.dense(a[0], W, b, activation=name), expected[0], output="reduction",
             what=f"dense(a[0], W, b, activation={name!r})")
    ck.close_to_oracle("dense", a, W, b, activation=name, output="reduction")


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
    "homogeneous (relu(c z) = c relu(z) for c > 0), and its derivative MUST be 1 where z > 0 and 0 "
    "where z <= 0.",
    source=CHAPTER_1,
    needs=("relu | relu_prime",),
    topic="activations",
    note="The derivative is sympy's derivative of the piecewise definition: 0 at the kink z = 0, "
    "as the reference documents and PyTorch's autograd gives.",
)
def relu_properties(impl: Any, ck: Check) -> None:
    z = ck.input(ck.draw(_z(), "z"))
    if ck.offers("relu"):
        _relu_values(impl, ck, z)
    if ck.offers("relu_prime"):
        # d/dz [z if z > 0 else 0] = [1 if z > 0 else 0]: exactly 0 or 1, no arithmetic involved
        # (Hypothesis draws z = 0 itself often, where the pinned value 0 is checked)
        ck.equal(impl.relu_prime(z), _prime("relu", z), what="relu_prime(z)")


def _relu_values(impl: Any, ck: Check, z: np.ndarray) -> None:
    """ACT-RELU's part on the function itself: closed form, idempotence and homogeneity."""
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
    "tanh MUST satisfy tanh(z) = 2 sigma(2z) - 1, be odd and map every real number into [-1, 1], "
    "and its derivative MUST be 1 - tanh(z)^2.",
    source=CHAPTER_1,
    needs=("tanh | tanh_prime",),
    topic="activations",
)
def tanh_properties(impl: Any, ck: Check) -> None:
    z = ck.input(ck.draw(_z(bound=50.0), "z"))
    if ck.offers("tanh"):
        _tanh_values(impl, ck, z)
    if ck.offers("tanh_prime"):
        # sympy: d/dz tanh(z) = 1 - tanh(z)^2, at the drawn z
        ck.close(impl.tanh_prime(z), _prime("tanh", z), output="elementwise", what="tanh_prime(z)")


def _tanh_values(impl: Any, ck: Check, z: np.ndarray) -> None:
    """ACT-TANH's part on the function itself: range, closed form and oddness."""
    t = impl.tanh(z)
    ck.that(bool(np.all((t >= -1) & (t <= 1))), what="-1 <= tanh(z) <= 1",
            observed=t, expected="values in [-1, 1]")
    # tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z}) = 2 / (1 + e^{-2z}) - 1 = 2 sigma(2z) - 1
    ck.close(t, 2.0 * _sigma(2.0 * z) - 1.0, output="elementwise", what="tanh(z)")
    ck.close(impl.tanh(-z), -t, output="elementwise", what="tanh(-z)")
    # The identity is not a recipe: near 0, where tanh(z) ~ z, 2 sigma(2z) - 1 cancels, and in
    # float16 tanh(2^-10) computed that way loses half its value, yet stays within a tolerance on
    # the scale of 1. A value carries its format's precision, so tanh is judged relative to its
    # own size as well, on magnitudes from 2^-12 to 8 (a library tanh is within 2 ulps of it).
    exponents = ck.draw(st.lists(st.integers(-96, 24), min_size=1, max_size=8), "log2|z| * 8")
    signs = ck.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=len(exponents),
                             max_size=len(exponents)), "signs")
    small = ck.input(np.array(signs) * 2.0 ** (np.array(exponents) / 8.0))
    ck.close(np.asarray(impl.tanh(small)) / np.tanh(small), np.ones(len(small)), output="elementwise",
             what="tanh(z) / exact tanh(z), 2^-12 <= |z| <= 8")


@clause(
    "ACT-GELU",
    "GELU MUST equal z Phi(z), Phi the standard normal distribution function; its tanh "
    "approximation MUST equal z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), within 4.74e-4 of "
    "the exact GELU everywhere; and both derivatives MUST equal those of these formulas.",
    source=MLP_SECTION,
    needs=("gelu | gelu_prime",),
    topic="activations",
    note="Phi through math.erf element by element; the derivatives are sympy's, evaluated in float64 "
    "at the drawn points. Output kind 'default', not 'elementwise': GELU composes erf (or tanh), a "
    "product and a sum, and 1 + erf(z / sqrt 2) cancels as z goes negative (PyTorch's float32 "
    "F.gelu is 8.5 ulps off at z = -3.5).",
)
def gelu_properties(impl: Any, ck: Check) -> None:
    z = ck.input(ck.draw(_gelu_z(), "z"))
    # Each variant is asked for by name; approximate left out means the variant the implementation
    # declares (nnspec_conventions' gelu_approximate: exact unless it says tanh, as GPT-2's gelu_new)
    declared = getattr(getattr(ck.oracle, "conventions", None), "gelu_approximate", "none")
    if ck.offers("gelu"):
        # GELU(z) = z Phi(z) = z/2 (1 + erf(z / sqrt 2))
        exact = gelu_exact(z)
        ck.close(impl.gelu(z, approximate="none"), exact, output="default",
                 what="gelu(z, approximate='none')")
        approx = impl.gelu(z, approximate="tanh")
        ck.close(approx, gelu_tanh(z), output="default", what="gelu(z, approximate='tanh')")
        # |GELU_tanh(z) - z Phi(z)| <= 4.74e-4 everywhere: held against the nearest edge of that
        # band around the exact values (so inside it the expected value is the observed one)
        band = exact + np.clip(approx - exact, -GELU_TANH_MAX_GAP, GELU_TANH_MAX_GAP)
        ck.close(approx, band, output="default",
                 what=f"gelu(z, approximate='tanh') within {GELU_TANH_MAX_GAP:g} of z Phi(z)")
        ck.close(impl.gelu(z), exact if declared == "none" else gelu_tanh(z), output="default",
                 what=f"gelu(z), by default the declared approximate={declared!r}")
    if ck.offers("gelu_prime"):
        # sympy: d/dz z Phi(z) = Phi(z) + z phi(z), phi(z) = e^{-z^2/2} / sqrt(2 pi)
        exact_prime = _prime("gelu", z)
        ck.close(impl.gelu_prime(z, approximate="none"), exact_prime, output="default",
                 what="gelu_prime(z, approximate='none')")
        # sympy: d/dz of the tanh approximation (the chain rule through tanh and the cubic)
        approx_prime = _prime("gelu_tanh", z)
        ck.close(impl.gelu_prime(z, approximate="tanh"), approx_prime, output="default",
                 what="gelu_prime(z, approximate='tanh')")
        ck.close(impl.gelu_prime(z), exact_prime if declared == "none" else approx_prime,
                 output="default", what=f"gelu_prime(z), by default the declared approximate={declared!r}")


# What activation(name) must return, as closed forms written here, and the output kind each is
# judged by (as in ACT-SIGMOID, ACT-RELU, ACT-TANH and ACT-GELU).
_BY_NAME: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "sigmoid": (_sigma, "elementwise"),
    "relu": (lambda z: np.maximum(z, 0.0), "exact"),
    "tanh": (lambda z: 2.0 * _sigma(2.0 * z) - 1.0, "elementwise"),
    "gelu": (gelu_exact, "default"),
    "gelu_tanh": (gelu_tanh, "default"),
}
# The same formulas by name, for the clauses that need an activation's closed form (backprop's
# networks, the feed-forward network).
FORMULAS: dict[str, Callable[[np.ndarray], np.ndarray]] = {name: f for name, (f, _) in _BY_NAME.items()}
# Names no implementation should know: typos of the names above, which must not silently become
# some activation or a linear layer.
_UNKNOWN_NAMES = ("sigmiod", "rleu", "tahn", "gleu", "gelu_tnah", "no such activation")


@clause(
    "ACT-BY-NAME",
    "activation(name) MUST return the function the name denotes (sigmoid, relu, tanh, gelu, "
    "gelu_tanh; None the identity, a linear layer) and MUST refuse a name it does not know.",
    source=CHAPTER_1,
    needs=("activation",),
    topic="activations",
)
def activation_by_name(impl: Any, ck: Check) -> None:
    z = ck.input(ck.draw(_gelu_z(), "z"))
    for name, (closed_form, output) in _BY_NAME.items():
        ck.close(impl.activation(name)(z), closed_form(z), output=output,
                 what=f"activation({name!r})(z)")
    ck.equal(impl.activation(None)(z), z, what="activation(None)(z)")
    unknown = ck.draw(st.sampled_from(_UNKNOWN_NAMES), "unknown name")
    # refusing when the function is looked up, or when it is first called, both count
    must_refuse(ck, lambda: impl.activation(unknown)(z), what=f"activation({unknown!r})",
                expected="an error (an unknown name must not become some activation, or a linear layer)")
