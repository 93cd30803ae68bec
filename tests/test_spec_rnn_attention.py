"""The RNN-attention clauses (Bahdanau, Luong, LSTM cell) pass on the bundled implementations and
reject realistic wrong ones, each planted into the NumPy reference with ``patched``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nnspec.reference import numpy_ref
from nnspec.spec import REGISTRY
from nnspec.verify import patched, run_clause

RNN_CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic == "rnn_attention")


# ---------------------------------------------------------------------------------------------
# Wrong implementations
# ---------------------------------------------------------------------------------------------


def _attend(scores, h, mask):
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = numpy_ref.softmax(scores, axis=-1)
    return (weights[..., None, :] @ h)[..., 0, :], weights


def additive_attention_variant(*, swap_concat=False, no_tanh=False):
    """Bahdanau attention with [h_j; s] instead of [s; h_j], or without the tanh."""

    def additive_attention(params, s_prev, h, mask=None):
        lead = np.broadcast_shapes(s_prev.shape[:-1], h.shape[:-2])
        n = h.shape[-2]
        s_rep = np.broadcast_to(s_prev[..., None, :], (*lead, n, s_prev.shape[-1]))
        h_b = np.broadcast_to(h, (*lead, *h.shape[-2:]))
        parts = [h_b, s_rep] if swap_concat else [s_rep, h_b]
        W = params["W"]
        hidden = np.concatenate(parts, axis=-1) @ W.T + params["b"]
        if not no_tanh:
            hidden = np.tanh(hidden)
        return _attend(hidden @ params["v"], h_b, mask)

    return additive_attention


def dot_attention_scaled(s, h, mask=None):
    """Luong's dot score divided by sqrt(d), a Transformer habit carried over."""
    scores = (h @ s[..., :, None])[..., 0] / math.sqrt(s.shape[-1])
    return _attend(scores, np.broadcast_to(h, (*scores.shape[:-1], *h.shape[-2:])), mask)


def dot_attention_unnormalised(s, h, mask=None):
    """Context as sum_j exp(e_j) h_j: the softmax's denominator forgotten."""
    scores = (h @ s[..., :, None])[..., 0]
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores)
    h_b = np.broadcast_to(h, (*scores.shape[:-1], *h.shape[-2:]))
    return (weights[..., None, :] @ h_b)[..., 0, :], weights


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_cell_variant(*, gate_order="ifgo", no_tanh_on_cell=False):
    """An LSTM cell reading the stacked gates in another order, or with h' = o * c'."""

    def lstm_cell(params, x, h, c):
        z = x @ params["W_ih"].T + params["b_ih"] + h @ params["W_hh"].T + params["b_hh"]
        blocks = dict(zip(gate_order, np.split(z, 4, axis=-1), strict=True))
        i, f, g, o = (
            _sigmoid(blocks["i"]),
            _sigmoid(blocks["f"]),
            np.tanh(blocks["g"]),
            _sigmoid(blocks["o"]),
        )
        c_new = f * c + i * g
        h_new = o * (c_new if no_tanh_on_cell else np.tanh(c_new))
        return h_new, c_new

    return lstm_cell


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_torch_on_device_passes(device: str) -> None:
    for clause_id in RNN_CLAUSES:
        result = run_clause(clause_id, f"torch:{device}:float32")
        assert result.status == "passed", result.message


MUTANTS = [
    (
        "ADD-ATT",
        "concat-h-then-s",
        {"additive_attention": additive_attention_variant(swap_concat=True)},
    ),
    ("ADD-ATT", "no-tanh", {"additive_attention": additive_attention_variant(no_tanh=True)}),
    ("DOT-ATT", "scaled-by-sqrt-d", {"dot_attention": dot_attention_scaled}),
    ("DOT-ATT", "unnormalised", {"dot_attention": dot_attention_unnormalised}),
    (
        "LSTM-CELL",
        "tensorflow-gate-order-igfo",
        {"lstm_cell": lstm_cell_variant(gate_order="igfo")},
    ),
    ("LSTM-CELL", "h-without-tanh", {"lstm_cell": lstm_cell_variant(no_tanh_on_cell=True)}),
]


@pytest.mark.parametrize(
    ("clause_id", "name", "overrides"), MUTANTS, ids=[f"{c}:{n}" for c, n, _ in MUTANTS]
)
def test_clause_rejects_wrong_implementation(
    clause_id: str, name: str, overrides: dict
) -> None:
    bad = patched("numpy", name=name, **overrides)
    result = run_clause(clause_id, bad, shrink=False)
    assert result.status == "failed", f"{clause_id} vs {name}: {result.status}: {result.message}"


def test_every_rnn_clause_has_a_mutant() -> None:
    assert set(RNN_CLAUSES) <= {clause_id for clause_id, _, _ in MUTANTS}
