"""The backpropagation clauses: bundled implementations pass, and each rejects a realistic bug."""

from __future__ import annotations

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
import sympy
from nnspec.reference import numpy_ref
from nnspec.spec import backprop
from nnspec.spec.clause import REGISTRY
from nnspec.verify import patched, run_clause

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


BUGS = [
    ("BP-CHAIN-1", "half-gradient", HalfGradient),
    ("BP-CHAIN-1", "sigma-not-prime", SigmaInsteadOfPrime),
    ("BP-CHAIN-1", "last-layer-only", LastLayerOnly),
    ("BP-CHAIN-MULTI", "transposed-weights", TransposedWeightGradient),
    ("BP-CHAIN-MULTI", "sigma-not-prime", SigmaInsteadOfPrime),
    ("BP-FULL", "half-gradient", HalfGradient),
    ("BP-FULL", "transposed-weights", TransposedWeightGradient),
]


@pytest.mark.parametrize(("clause_id", "bug", "mlp"), BUGS, ids=[f"{c}-{b}" for c, b, _ in BUGS])
def test_clause_rejects_planted_bug(clause_id: str, bug: str, mlp: type) -> None:
    result = run_clause(clause_id, patched("numpy", name=bug, MLP=mlp))
    assert result.status == "failed", result.message


def test_every_clause_has_a_planted_bug() -> None:
    assert {c for c, _, _ in BUGS} == set(CLAUSES)
