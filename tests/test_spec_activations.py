"""The neuron and activation clauses: bundled implementations pass, realistic bugs are rejected."""

from __future__ import annotations

import math

import mpmath
import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
from nnspec.reference import numpy_ref
from nnspec.spec import activations
from nnspec.spec.clause import REGISTRY
from nnspec.verify import patched, run_clause
from nnspec.verify.mutants import (
    activation_unknown_is_identity,
    gelu_always_tanh,
    relu_prime_as_relu,
    tanh_prime_one_minus_z_squared,
)

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic == "activations")


def test_the_topic_declares_the_issue_clauses() -> None:
    assert set(CLAUSES) >= {"NEURON-WSUM", "NEURON-THRESHOLD", "ACT-SIGMOID", "ACT-RELU",
                            "ACT-TANH", "ACT-GELU", "ACT-BY-NAME"}


def test_every_activation_capability_is_called_by_a_clause() -> None:
    """Each function of the reference's activation section is checked by some clause (an
    implementation that offers only a derivative is held to it, as for sigmoid_prime)."""
    called = {name for c in REGISTRY.values() for name in c.capabilities}
    assert {"sigmoid", "sigmoid_prime", "relu", "relu_prime", "tanh", "tanh_prime", "gelu",
            "gelu_prime", "activation"} <= called
    for clause_id, needs in (("ACT-RELU", "relu | relu_prime"), ("ACT-TANH", "tanh | tanh_prime"),
                             ("ACT-GELU", "gelu | gelu_prime")):
        assert REGISTRY[clause_id].needs == (needs,)


def test_gelu_cites_the_mlp_section_and_both_papers() -> None:
    source = REGISTRY["ACT-GELU"].source
    assert source.section == "6f. Multilayer Perceptron"
    assert "Hendrycks and Gimpel 2016" in source.paper and "Brown et al. 2020" in source.paper


def test_the_tanh_approximations_documented_gap_is_its_largest() -> None:
    """GELU_TANH_MAX_GAP recomputed: the gap is even, tends to 0 at both ends, and its largest value
    (40-digit mpmath, at the root of its derivative near z = 2.7) is the constant to 3 digits."""
    mpmath.mp.dps = 40
    c = mpmath.sqrt(2 / mpmath.pi)

    def gap(z):
        return z / 2 * (1 + mpmath.tanh(c * (z + mpmath.mpf("0.044715") * z**3))) - z / 2 * (
            1 + mpmath.erf(z / mpmath.sqrt(2)))

    grid = np.linspace(0.0, 12.0, 2401)
    coarse = [abs(float(gap(mpmath.mpf(float(z))))) for z in grid]
    start = grid[int(np.argmax(coarse))]
    peak = mpmath.findroot(lambda z: mpmath.diff(gap, z), start)
    largest = abs(gap(peak))
    assert float(peak) == pytest.approx(2.6989, abs=1e-4)
    assert float(largest) == pytest.approx(4.7324e-4, rel=1e-4)
    assert 0.998 * activations.GELU_TANH_MAX_GAP < largest < activations.GELU_TANH_MAX_GAP  # 3 digits, rounded up
    assert all(abs(gap(-mpmath.mpf(float(z))) - gap(mpmath.mpf(float(z)))) < 1e-30 for z in grid[::100])
    assert abs(gap(mpmath.mpf(activations.GELU_BOUND))) < 1e-30


def test_sympys_derivatives_are_the_known_closed_forms() -> None:
    """The derivatives the clauses compare against, against their textbook forms."""
    z = np.array([-4.0, -1.5, -1e-300, 0.0, 1e-300, 0.3, 2.0, 7.5])
    np.testing.assert_array_equal(activations._prime("relu", z), [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(activations._prime("tanh", z), 1 - np.tanh(z) ** 2, rtol=1e-15, atol=1e-16)
    phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z])
    np.testing.assert_allclose(activations._prime("gelu", z), cdf + z * phi, rtol=1e-14, atol=1e-14)
    u = math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)
    du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * z**2)
    expected = 0.5 * (1 + np.tanh(u)) + 0.5 * z * (1 - np.tanh(u) ** 2) * du
    np.testing.assert_allclose(activations._prime("gelu_tanh", z), expected, rtol=1e-14, atol=1e-14)
    # and the values: z Phi(z) through math.erf, and the approximation's formula
    np.testing.assert_allclose(activations.gelu_exact(z), z * cdf, rtol=1e-15, atol=0)
    np.testing.assert_allclose(activations.gelu_tanh(z), numpy_ref.gelu(z, approximate="tanh"), rtol=1e-15)


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


def relu_prime_one_at_zero(z):
    """[z >= 0]: 1 at the kink, where the reference (and autograd) pins 0."""
    return (np.asarray(z, dtype=np.float64) >= 0).astype(np.float64)


def gelu_without_cubic(z, approximate="none"):
    """The tanh approximation without its 0.044715 z^3 term: z/2 (1 + tanh(sqrt(2/pi) z))."""
    z = np.asarray(z, dtype=np.float64)
    if approximate == "tanh":
        return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * z))
    return numpy_ref.gelu(z)


def gelu_as_z_sigmoid_1702(z, approximate="none"):
    """The sigmoid approximation z sigma(1.702 z) served for both variants."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore"):
        return z / (1.0 + np.exp(-1.702 * z))


def gelu_prime_always_tanh(z, approximate="none"):
    """The tanh approximation's derivative for the exact GELU too."""
    return numpy_ref.gelu_prime(z, approximate="tanh")


def gelu_prime_without_pdf_term(z, approximate="none"):
    """GELU'(z) = Phi(z): the product rule's z phi(z) term forgotten."""
    z = np.asarray(z, dtype=np.float64)
    return np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z.ravel()]).reshape(z.shape)


def activation_gelu_is_tanh(name):
    """'gelu' mapped to the tanh approximation (as if gelu meant gelu_new)."""
    return numpy_ref.activation("gelu_tanh" if name == "gelu" else name)


def activation_relu_for_none(name):
    """None (a linear layer) given ReLU, the usual default of an activation argument."""
    return numpy_ref.activation("relu" if name is None else name)


@pytest.mark.parametrize(
    ("clause_id", "overrides"),
    [
        ("NEURON-WSUM", {"dense": dense_without_bias}),
        ("NEURON-WSUM", {"dense": dense_transposed}),
        ("NEURON-THRESHOLD", {"dense": dense_subtracting_bias}),
        ("ACT-SIGMOID", {"sigmoid": sigmoid_sign_slip}),
        ("ACT-SIGMOID", {"sigmoid_prime": sigmoid_prime_without_one_minus}),
        ("ACT-RELU", {"relu": leaky_relu}),
        ("ACT-RELU", {"relu_prime": relu_prime_as_relu}),
        ("ACT-RELU", {"relu_prime": relu_prime_one_at_zero}),
        ("ACT-TANH", {"tanh": tanh_as_shifted_sigmoid}),
        ("ACT-TANH", {"tanh_prime": tanh_prime_one_minus_z_squared}),
        ("ACT-GELU", {"gelu": gelu_always_tanh}),
        ("ACT-GELU", {"gelu": gelu_without_cubic}),
        ("ACT-GELU", {"gelu": gelu_as_z_sigmoid_1702}),
        ("ACT-GELU", {"gelu_prime": gelu_prime_always_tanh}),
        ("ACT-GELU", {"gelu_prime": gelu_prime_without_pdf_term}),
        ("ACT-BY-NAME", {"activation": activation_unknown_is_identity}),
        ("ACT-BY-NAME", {"activation": activation_gelu_is_tanh}),
        ("ACT-BY-NAME", {"activation": activation_relu_for_none}),
    ],
    ids=lambda v: v if isinstance(v, str) else next(iter(v.values())).__name__,
)
def test_clause_rejects_planted_bug(clause_id: str, overrides: dict) -> None:
    name = next(iter(overrides.values())).__name__
    result = run_clause(clause_id, patched("numpy", name=name, **overrides))
    assert result.status == "failed", result.message


@pytest.mark.parametrize(("overrides", "lacking"), [
    ({"relu_prime": relu_prime_as_relu}, "relu"),
    ({"tanh_prime": tanh_prime_one_minus_z_squared}, "tanh"),
    ({"gelu_prime": gelu_prime_always_tanh}, "gelu"),
], ids=["relu_prime", "tanh_prime", "gelu_prime"])
def test_a_derivative_offered_alone_is_still_held_to_sympy(overrides: dict, lacking: str) -> None:
    """An implementation with a derivative and not the function (a backward kernel) is checked."""
    clause_id = {"relu": "ACT-RELU", "tanh": "ACT-TANH", "gelu": "ACT-GELU"}[lacking]
    bug = patched("numpy", name="backward-only", without=[lacking], **overrides)
    result = run_clause(clause_id, bug)
    assert result.status == "failed", result.message
    assert result.notes["not offered"] == [lacking]
    assert f"does not offer {lacking}, so the parts that need it did not run" in result.message


def _gelu_pair(default: str, declared: str):
    """An implementation offering gelu and gelu_prime whose default variant is ``default`` and
    whose declared convention (nnspec_conventions' gelu_approximate) is ``declared``."""
    from nnspec.verify.implementations import from_object

    class Gelus:
        nnspec_conventions = {"gelu_approximate": declared}

        @staticmethod
        def gelu(z, approximate=default):
            return numpy_ref.gelu(z, approximate=approximate)

        @staticmethod
        def gelu_prime(z, approximate=default):
            return numpy_ref.gelu_prime(z, approximate=approximate)

    return from_object(Gelus, name=f"gelu-default-{default}-declared-{declared}")


def test_a_declared_tanh_default_is_honoured_and_an_undeclared_one_is_not() -> None:
    """GPT-2's gelu_new as the default variant is a convention an implementation may declare; the
    same default undeclared (or declared and not kept) is caught."""
    assert run_clause("ACT-GELU", _gelu_pair("tanh", "tanh")).status == "passed"
    for default, declared in (("tanh", "none"), ("none", "tanh")):
        result = run_clause("ACT-GELU", _gelu_pair(default, declared))
        assert result.status == "failed", result.message
        assert f"by default the declared approximate={declared!r}" in result.message


def test_gelu_clause_rejects_the_tanh_approximation_at_float32() -> None:
    """The approximation is 4.7e-4 off the exact GELU: float32 resolves that, so a float32
    implementation that serves it for the exact one fails too."""
    result = run_clause("ACT-GELU", patched("torch:cpu:float32", name="always-tanh", gelu=gelu_always_tanh))
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


def _reads_subnormals_as_zero(f):
    """``f`` on a processor in denormals-are-zero mode (XLA on the CPU, CUDA's -ftz): a float32
    subnormal input reads as 0."""
    tiny = float(np.finfo(np.float32).tiny)
    return lambda z, *args, **kwargs: f(np.where(np.abs(z) < tiny, 0.0, z), *args, **kwargs)


@pytest.mark.parametrize("seed", range(6))
def test_a_platform_that_flushes_subnormals_is_no_activation_fault(seed: int) -> None:
    """A correct ReLU and activation table on such a processor: relu(1e-40) = 0 there. The draws
    are normal numbers, so the exact checks hold (JAX on the CPU failed them at 6 of 12 seeds)."""
    flushing = patched(
        "torch:cpu:float32", name="flushing", relu=_reads_subnormals_as_zero(numpy_ref.relu),
        activation=lambda name: _reads_subnormals_as_zero(numpy_ref.activation(name)),
    )
    for clause_id in ("ACT-RELU", "ACT-BY-NAME"):
        result = run_clause(clause_id, flushing, profile="quick", seed=seed)
        assert result.status == "passed", result.message
