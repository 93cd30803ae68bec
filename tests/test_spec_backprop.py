"""The backpropagation clauses: bundled implementations pass, and each rejects a realistic bug."""

from __future__ import annotations

import math
import typing

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
import sympy
from nnspec.reference import numpy_ref
from nnspec.reference.config import Activation, MLPConfig
from nnspec.spec import backprop
from nnspec.spec.clause import REGISTRY
from nnspec.verify import patched, run_clause
from nnspec.verify.mutants import GeluTanhDerivativeMLP as GeluTanhDerivative
from nnspec.verify.mutants import ReluPrimeAsReluMLP as ReluAsItsDerivative

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic == "backprop")


def test_the_topic_declares_the_issue_clauses() -> None:
    assert set(CLAUSES) >= {"BP-CHAIN-1", "BP-CHAIN-MULTI", "BP-FULL"}


def test_sympy_gradient_is_the_notes_chain_rule() -> None:
    """The symbolic truth itself: for the last layer of a 1-1 chain, sympy's derivative is the
    notes' a(L-1) sigma'(z(L)) 2(a(L) - y), sigma' = sigma (1 - sigma)."""
    gradient = backprop._symbolic_gradient((1, 1))
    w, b, a0, y = 0.7, -0.3, 0.4, 0.9
    z = w * a0 + b
    s = 1 / (1 + np.exp(-z))
    d_w, d_b = gradient(w, b, a0, y)
    assert d_w == pytest.approx(a0 * s * (1 - s) * 2 * (s - y), rel=1e-12)
    assert d_b == pytest.approx(s * (1 - s) * 2 * (s - y), rel=1e-12)
    # and sympy agrees that sigma' = sigma (1 - sigma)
    zz = sympy.Symbol("z")
    sig = 1 / (1 + sympy.exp(-zz))
    assert sympy.simplify(sympy.diff(sig, zz) - sig * (1 - sig)) == 0


def test_central_differences_of_a_known_function() -> None:
    """One sigmoid neuron: dC/dw = mean over examples of 2 (a - y) a (1 - a) x."""
    params = {"layers": [{"W": np.array([[0.5]]), "b": np.array([0.1])}]}
    x, y = np.array([[1.0], [-2.0]]), np.array([[0.2], [0.7]])
    fd = backprop.central_differences(params, "sigmoid", x, y)
    a = 1 / (1 + np.exp(-(x * 0.5 + 0.1)))
    delta = 2 * (a - y) * a * (1 - a)
    np.testing.assert_allclose(fd, [np.mean(delta * x), np.mean(delta)], rtol=1e-8)


def test_central_differences_of_a_gelu_neuron() -> None:
    """One exact-GELU neuron: dC/dw = mean of 2 (a - y) GELU'(z) x, GELU' = Phi + z phi."""
    params = {"layers": [{"W": np.array([[0.8]]), "b": np.array([-0.4])}]}
    x, y = np.array([[1.5], [-2.0]]), np.array([[0.3], [-0.1]])
    fd = backprop.central_differences(params, "gelu", x, y)
    z = x * 0.8 - 0.4
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    a, prime = z * cdf, cdf + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    delta = 2 * (a - y) * prime
    np.testing.assert_allclose(fd, [np.mean(delta * x), np.mean(delta)], rtol=1e-8)


def test_bp_full_draws_every_activation_an_mlp_config_names() -> None:
    assert set(backprop._ACTIVATIONS) == set(typing.get_args(Activation))


def test_the_smallest_shift_past_the_margin() -> None:
    assert backprop._smallest_shift(np.array([0.5, -0.7]), 0.25) == 0.0  # clear already
    assert backprop._smallest_shift(np.array([0.1, 2.0]), 0.25) == pytest.approx(0.15)
    assert backprop._smallest_shift(np.array([-0.1, 0.2]), 0.25) == pytest.approx(0.35)
    # every edge missed by rounding, |z_i + (-z_j +- m)| < m for each candidate: still found
    z, margin = np.array([1.188327862596402, -0.3485720650141568]), 0.8497836136184508
    assert not any(np.all(np.abs(z + s) >= margin) for s in [0.0, *(-z + margin), *(-z - margin)])
    shift = backprop._smallest_shift(z, margin)
    assert shift == pytest.approx(0.3485720650141568 + margin) and np.all(np.abs(z + shift) >= 0.999 * margin)


def test_the_relu_network_is_moved_clear_of_the_kink() -> None:
    """x = 0 makes every first-layer z equal its bias: a zero bias sits on the kink, where a
    finite difference straddles it (and a low-precision sign decides relu'). The biases move the
    least that keeps every z of every layer past the margin, and stay in the format."""

    class Bfloat16Check:
        dtype = "bfloat16"

        @staticmethod
        def input(x):
            from nnspec.verify.implementations import round_to_dtype

            return np.asarray(round_to_dtype(x, "bfloat16"), dtype=np.float64)

    ck = impl = Bfloat16Check()
    params = {"layers": [
        {"W": np.array([[1.0, -1.0], [0.5, 0.25], [2.0, 0.0]]), "b": np.array([0.0, 0.001, -3.0])},
        {"W": np.array([[1.0, -1.0, 0.5]]), "b": np.array([0.0])},
    ]}
    x = np.array([[0.0, 0.0], [0.5, 0.5]])
    moved = backprop._clear_of_the_kink(impl, ck, params, x)
    a = x
    for before, after in zip(params["layers"], moved["layers"], strict=True):
        np.testing.assert_array_equal(after["W"], before["W"])
        np.testing.assert_array_equal(after["b"], ck.input(after["b"]))  # representable
        z = a @ after["W"].T + after["b"]
        assert np.all(np.abs(z) >= backprop.FD_MARGIN)
        a = np.maximum(z, 0.0)
    # neuron 0 of layer 1: z = b = 0 at x = 0, and its rounding bound at x = (0.5, 0.5) is
    # (n_in + 1) eps (|x| |W| + |b|) = 3 * 2^-7 * 1; it moves to twice KINK_ROUNDINGS times that
    eps = 2.0**-7
    assert moved["layers"][0]["b"][0] == 2 * backprop.KINK_ROUNDINGS * 3 * eps * 1.0
    assert moved["layers"][0]["b"][2] == -3.0  # far from the kink already: left alone
    assert params["layers"][0]["b"][0] == 0.0  # the caller's parameters are not written


def test_without_the_move_a_correct_relu_network_would_fail() -> None:
    """The reason for the move: at x = 0 a zero bias puts z on the kink, where central differences
    average relu' = 0 and 1 and the oracle's backpropagation, pinned at relu'(0) = 0, disagrees."""
    params = {"layers": [{"W": np.array([[1.0]]), "b": np.array([0.0])}]}
    x, y = np.zeros((1, 1)), np.array([[0.5]])
    fd = backprop.central_differences(params, "relu", x, y)
    dW, db = numpy_ref.MLP(MLPConfig(layer_sizes=(1, 1), activation="relu"), params).gradients(x, y)
    # d/db (relu(b) - 0.5)^2 at b = 0: the oracle's 2 (0 - 0.5) relu'(0) = 0, the differences
    # ((h - 0.5)^2 - 0.25) / 2h = (h - 1) / 2, the mean of the one-sided slopes -1 and 0
    assert db[0][0] == 0.0 and fd[1] == pytest.approx(-0.5, abs=1e-5)


# ------------------------------------------------------------------ planted bugs
class HalfGradient(numpy_ref.MLP):
    """Drops the factor 2 of d/da (a - y)^2."""

    def gradients(self, x, y):
        dW, db = super().gradients(x, y)
        return [g / 2 for g in dW], [g / 2 for g in db]


class SigmaInsteadOfPrime(numpy_ref.MLP):
    """Multiplies by sigma(z) where the chain rule needs sigma'(z)."""

    def __init__(self, config, params):
        super().__init__(config, params)
        self.sigma_prime = self.sigma


class TransposedWeightGradient(numpy_ref.MLP):
    """Backpropagates through W(l) instead of W(l)^T (reshaped to fit when the shapes differ)."""

    def gradients(self, x, y):
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        zs, activations = self.forward(x)
        layers = self.params["layers"]
        dW, db = [None] * len(layers), [None] * len(layers)
        delta = 2.0 * (activations[-1] - y) * self.sigma_prime(zs[-1])
        for l in range(len(layers) - 1, -1, -1):
            dW[l] = delta.T @ activations[l] / len(x)
            db[l] = delta.mean(axis=0)
            if l > 0:
                W = layers[l]["W"]
                wrong = W.T.reshape(W.shape) if W.shape[0] != W.shape[1] else W.T
                delta = (delta @ wrong) * self.sigma_prime(zs[l - 1])
        return dW, db


class LastLayerOnly(numpy_ref.MLP):
    """Stops the chain rule after the last layer: earlier layers get no gradient."""

    def gradients(self, x, y):
        dW, db = super().gradients(x, y)
        return ([np.zeros_like(g) for g in dW[:-1]] + [dW[-1]],
                [np.zeros_like(g) for g in db[:-1]] + [db[-1]])


class GeluForwardOnTanhNetwork(numpy_ref.MLP):
    """A gelu_tanh network whose forward pass computes the exact GELU (backward the tanh one)."""

    def __init__(self, config, params):
        super().__init__(config, params)
        if config.activation == "gelu_tanh":
            self.sigma = numpy_ref.gelu


BUGS = [
    ("BP-CHAIN-1", "half-gradient", HalfGradient),
    ("BP-CHAIN-1", "sigma-not-prime", SigmaInsteadOfPrime),
    ("BP-CHAIN-1", "last-layer-only", LastLayerOnly),
    ("BP-CHAIN-MULTI", "transposed-weights", TransposedWeightGradient),
    ("BP-CHAIN-MULTI", "sigma-not-prime", SigmaInsteadOfPrime),
    ("BP-FULL", "half-gradient", HalfGradient),
    ("BP-FULL", "transposed-weights", TransposedWeightGradient),
    ("BP-FULL", "sigma-not-prime", SigmaInsteadOfPrime),
    ("BP-FULL", "relu-as-derivative", ReluAsItsDerivative),
    ("BP-FULL", "gelu-tanh-derivative", GeluTanhDerivative),
    ("BP-FULL", "gelu-tanh-forward-exact", GeluForwardOnTanhNetwork),
]


@pytest.mark.parametrize(("clause_id", "bug", "mlp"), BUGS, ids=[f"{c}-{b}" for c, b, _ in BUGS])
def test_clause_rejects_planted_bug(clause_id: str, bug: str, mlp: type) -> None:
    result = run_clause(clause_id, patched("numpy", name=bug, MLP=mlp))
    assert result.status == "failed", result.message


def test_every_clause_has_a_planted_bug() -> None:
    assert {c for c, _, _ in BUGS} == set(CLAUSES)


def _relu_squared_over_two(z):
    """relu(z)^2 / 2, whose derivative is relu(z)."""
    import torch

    return torch.relu(z) ** 2 / 2


def _gelu_tanh(z):
    import torch

    return torch.nn.functional.gelu(z, approximate="tanh")


@pytest.mark.parametrize(("bug", "activation", "backward_through", "dtype"), [
    ("relu-as-derivative", "relu", _relu_squared_over_two, "float32"),
    ("relu-as-derivative", "relu", _relu_squared_over_two, "bfloat16"),
    ("gelu-tanh-derivative", "gelu", _gelu_tanh, "float32"),
])
def test_bp_full_rejects_the_relu_and_gelu_faults_below_float64(
    bug: str, activation: str, backward_through, dtype: str
) -> None:
    """The same faults in a torch network at lower precision: a custom backward for the activation
    that differentiates the wrong function (forward value unchanged). The gap between the exact and
    the tanh GELU's derivatives (at most 8.7e-4, at z = 2.02) is below bfloat16's resolution, so that one is
    asked of float32 only."""
    from nnspec.reference.torch_ref import networks as torch_networks
    from nnspec.verify import torch_module

    class Faulty(torch_networks.MLP):
        def __init__(self, config, params):
            super().__init__(config, params)
            if config.activation == activation:
                right = self.sigma
                # the value of the right function, the gradient of the wrong one
                self.sigma = lambda z: right(z).detach() + backward_through(z) - backward_through(z).detach()

    impl = torch_module(type("faulty", (), {"MLP": Faulty}), name=f"{bug}:{dtype}", dtype=dtype)
    result = run_clause("BP-FULL", impl)
    assert result.status == "failed", result.message
    assert f"activation {activation!r}" in result.message
