"""The RNN-attention clauses (Bahdanau, Luong, LSTM cell) pass on the bundled implementations and
reject realistic wrong ones, each planted into the NumPy reference with ``patched``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from nnspec.reference import numpy_ref
from nnspec.spec import REGISTRY
from nnspec.verify import mutants, patched, run_clause

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


def lstm_state_not_carried(params, xs, h0=None, c0=None):
    """Each step from the initial state: the loop assigns the cell's result to new names and
    never feeds them back, so the recurrence is lost (h_t depends on x_t alone)."""
    xs = np.asarray(xs, dtype=np.float64)
    H = np.asarray(params["W_hh"]).shape[1]
    h = np.zeros((*xs.shape[:-2], H)) if h0 is None else np.asarray(h0, dtype=np.float64)
    c = np.zeros((*xs.shape[:-2], H)) if c0 is None else np.asarray(c0, dtype=np.float64)
    outputs = []
    for t in range(xs.shape[-2]):
        h_t, c_t = numpy_ref.lstm_cell(params, xs[..., t, :], h, c)
        outputs.append(h_t)
    return np.stack(outputs, axis=-2), (h_t, c_t)


def lstm_returns_first_state(params, xs, h0=None, c0=None):
    """Returns (h_1, c_1) as the final state: out[:, 0] on a batch-first output read as time-first."""
    outputs, _ = numpy_ref.lstm(params, xs, h0, c0)
    _, first = numpy_ref.lstm(params, np.asarray(xs)[..., :1, :], h0, c0)
    return outputs, first


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
    ("LSTM-SEQ", "ignores-initial-state", {"lstm": mutants.lstm_ignores_initial_state}),
    ("LSTM-SEQ", "state-not-carried", {"lstm": lstm_state_not_carried}),
    ("LSTM-SEQ", "returns-first-state", {"lstm": lstm_returns_first_state}),
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
    # S2S-COMPOSE's faults are whole networks (WIRING_FAULTS, below)
    assert set(RNN_CLAUSES) <= {clause_id for clause_id, _, _ in MUTANTS} | {"S2S-COMPOSE"}


@pytest.mark.parametrize("without", ["lstm_cell", None])
def test_lstm_seq_catches_a_lost_initial_state_with_or_without_a_cell(without: str | None) -> None:
    """The closed form catches it whether or not the implementation has a cell to compare with."""
    overrides = {"lstm": mutants.lstm_ignores_initial_state} | ({without: None} if without else {})
    result = run_clause("LSTM-SEQ", patched("numpy", name="ignores-h0", **overrides), shrink=False)
    assert result.status == "failed", result.message


# ---------------------------------------------------------------------------------------------
# S2S-COMPOSE: the encoder-decoder's wiring, from its own parts
# ---------------------------------------------------------------------------------------------


# The wiring faults of the planted-fault catalogue (verify/mutants.py), one switch each on a
# written-out copy of numpy_ref's decoder step.
WIRING_FAULTS = {
    "bahdanau-current-state": mutants.BahdanauCurrentState,
    "luong-previous-state": mutants.LuongPreviousState,
    "attention-concat-swapped": mutants.AttentionConcatSwapped,
    "decoder-init-from-top": mutants.DecoderInitFromTop,
    "attend-bottom-encoder-layer": mutants.AttendBottomLayer,
    "bahdanau-s0-zero": mutants.BahdanauS0Zero,
}
S2S_PARTS = ["lstm", "dot_attention", "additive_attention"]


def _wiring_fault(name: str, *, shared: bool, without: list[str] | None = None) -> Any:
    impl = patched("numpy", name=name, Seq2Seq=WIRING_FAULTS[name], without=without or [])
    return mutants.plant_in_oracle(impl) if shared else impl


def test_the_wiring_faults_are_wrong_and_the_written_out_decoder_is_right() -> None:
    """The base class is numpy_ref's Seq2Seq; each switch changes its logits."""
    from dataclasses import replace

    from nnspec.reference.config import preset

    for attention in ("luong", "bahdanau"):
        config = replace(preset("seq2seq_tiny"), attention=attention, n_layers=2)
        params = numpy_ref.init_params(config, seed=1)
        src, tgt = np.array([4, 5, 6]), np.array([2, 7, 8])
        want = numpy_ref.Seq2Seq(config, params).forward(src, tgt)
        np.testing.assert_array_equal(mutants._Seq2SeqWiring(config, params).forward(src, tgt), want)


@pytest.mark.parametrize("shared", [False, True], ids=["own-oracle", "shared-oracle"])
@pytest.mark.parametrize("name", sorted(WIRING_FAULTS))
def test_s2s_compose_rejects_a_wiring_fault(name: str, shared: bool) -> None:
    """Caught from the implementation's own parts, also when the oracle's Seq2Seq has the fault
    (NET-ORACLE then passes by construction)."""
    impl = _wiring_fault(name, shared=shared)
    result = run_clause("S2S-COMPOSE", impl, profile="ci", seed=0, shrink=False)
    assert result.status == "failed", f"{name}: {result.status}: {result.message}"
    if shared:
        assert run_clause("NET-ORACLE", impl, profile="ci", seed=0, shrink=False).status == "passed"


@pytest.mark.parametrize("name", sorted(WIRING_FAULTS))
def test_s2s_compose_rejects_a_wiring_fault_in_a_model_alone(name: str) -> None:
    """A Seq2Seq without its own LSTM or attention functions, its oracle sharing the fault: the
    composition from the oracle's parts still catches it."""
    impl = _wiring_fault(name, shared=True, without=S2S_PARTS)
    result = run_clause("S2S-COMPOSE", impl, profile="ci", seed=0, shrink=False)
    assert result.status == "failed", f"{name}: {result.status}: {result.message}"
    assert result.notes["not offered"] == S2S_PARTS


@pytest.mark.parametrize("name", ["bahdanau-current-state", "luong-previous-state", "attention-concat-swapped"])
def test_which_state_scores_is_seen_without_the_composition(name: str) -> None:
    """In float16 a model without its parts is not composed (no float64 parts in float16 code):
    the metamorphic check (W_c's s-columns zeroed, a target token changed) still sees which state
    scores. Here a float64 model posing as float16 (its inputs rounded to float16): the Bahdanau
    side; at float64 the Luong side too."""
    impl = _wiring_fault(name, shared=True, without=S2S_PARTS)
    if name != "luong-previous-state":
        impl.dtype = "float16"
    result = run_clause("S2S-COMPOSE", impl, profile="ci", seed=0, shrink=False)
    assert result.status == "failed", f"{name}: {result.status}: {result.message}"
    assert "W_c's s-columns zeroed" in result.message


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_the_logit_allowance_is_the_tolerance_tables_network_row(dtype: str) -> None:
    # Clause modules do not import the engine, so S2S-COMPOSE restates the closed-form allowance of
    # output kind "network": it must stay the table's (verify/tolerances.py).
    from types import SimpleNamespace

    from nnspec.spec.rnn_attention import _logit_allowance
    from nnspec.verify import tolerances

    logits = np.array([0.0, 1e-3, 0.5, 3.0, -40.0])
    allowance = _logit_allowance(SimpleNamespace(dtype=dtype), logits)
    assert tolerances.closed_form(logits + 0.99 * allowance, logits, "network", dtype).passed
    assert not tolerances.closed_form(logits + 1.01 * allowance, logits, "network", dtype).passed


# ---------------------------------------------------------------------------------------------
# ADD-ATT, DOT-ATT: a source with every position masked
# ---------------------------------------------------------------------------------------------

# The catalogue's faults (verify/mutants.py) and the check each fails.
FULLY_MASKED_FAULTS = {
    "rnn-attention-mask-minus-1e9": "alpha of a step with every h_j masked",
    "rnn-attention-fully-masked-nan": "isfinite(alpha) and isfinite(context), some steps fully masked",
}


@pytest.mark.parametrize("mutant_id", sorted(FULLY_MASKED_FAULTS))
def test_the_fully_masked_faults_are_right_wherever_a_position_is_allowed(mutant_id: str) -> None:
    """With one allowed encoder state a -1e9 fill or a naive softmax gives the reference's weights:
    only a step with every state masked shows the fault (uniform weights, or 0/0)."""
    impl = mutants.CATALOGUE[mutant_id].implementation()
    rng = np.random.default_rng(0)
    s, h = rng.standard_normal((3, 4)), rng.standard_normal((3, 5, 4))
    params = {"W": rng.standard_normal((2, 8)), "b": rng.standard_normal(2), "v": rng.standard_normal(2)}
    mask = np.array([[True, False, True, False, False], [False] * 4 + [True], [False] * 5])
    for name, args in (("dot_attention", (s, h)), ("additive_attention", (params, s, h))):
        got, want = getattr(impl, name)(*args, mask), getattr(numpy_ref, name)(*args, mask)
        for observed, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(observed[:2], expected[:2], rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(expected[2], 0.0)  # the reference: zeros, never NaN
            assert not np.array_equal(observed[2], expected[2])


@pytest.mark.parametrize("clause_id", ["ADD-ATT", "DOT-ATT"])
@pytest.mark.parametrize("mutant_id", sorted(FULLY_MASKED_FAULTS))
def test_add_and_dot_att_reject_a_fully_masked_fault(mutant_id: str, clause_id: str) -> None:
    result = run_clause(clause_id, mutants.CATALOGUE[mutant_id].implementation(), shrink=False)
    assert result.status == "failed", result.message
    assert FULLY_MASKED_FAULTS[mutant_id] in result.message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("clause_id", ["ADD-ATT", "DOT-ATT"])
def test_fully_masked_steps_pass_at_low_precision(clause_id: str, dtype: str) -> None:
    """The reference's zeros hold in every format, and the other steps match the call without them."""
    result = run_clause(clause_id, f"torch:cpu:{dtype}", profile="ci", seed=0)
    assert result.status == "passed", result.message


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", ["bahdanau-s0-zero", "bahdanau-current-state"])
def test_a_float32_model_with_a_bahdanau_wiring_fault_fails_at_quick(name: str, seed: int) -> None:
    """An audit's float32 Seq2Seq with s_0 = 0 passed S2S-COMPOSE on 4 seeds of 6 at ``default``: its
    first step moved the logits by ~6e-5 against float32's closed-form 5e-4. Now the composition
    runs also on the sharpened network of the state check, where the attention alone sets the
    logits, and the state check runs for both kinds on every example. A float64 model posing as
    float32 (inputs rounded to float32, judged by float32's rules)."""
    impl = _wiring_fault(name, shared=False)
    impl.dtype = "float32"
    result = run_clause("S2S-COMPOSE", impl, profile="quick", seed=seed, shrink=False)
    assert result.status == "failed", f"{name}: {result.status}: {result.message}"


def test_a_cell_reading_its_gates_in_another_order_is_told_which() -> None:
    """A layout slip (char-rnn's order i, f, o, g read from weights stacked i, f, g, o) fails LSTM-CELL
    naming the order the cell read, not only with a c' off by some number; a cell wrong in another
    way names no order."""
    ifog = next(m for m in mutants.MUTANTS if m.id == "lstm-gate-order-ifog").build("numpy")
    result = run_clause("LSTM-CELL", ifog, profile="quick", seed=0)
    assert result.status == "failed"
    assert "observed the gate blocks read in the order i, f, o, g from the rows of W_ih" in result.message

    def doubled(params: Any, x: Any, h: Any, c: Any) -> Any:
        h_new, c_new = numpy_ref.lstm_cell(params, x, h, c)
        return h_new, 2 * c_new

    other = run_clause("LSTM-CELL", patched("numpy", name="doubled-cell", lstm_cell=doubled), profile="quick", seed=0)
    assert other.status == "failed" and "c' = f*c + i*g" in other.message
    assert "observed i, f" not in other.message


def _slipped_cell(slip: str) -> Any:
    """A NumPy LSTM cell with one mistake of a hand-written one (written out here, apart from the
    clause's own list of them)."""

    def lstm_cell(params: Any, x: Any, h: Any, c: Any) -> Any:
        b_hh = 0.0 if slip == "no b_hh" else params["b_hh"]
        z_i, z_f, z_g, z_o = np.split(x @ params["W_ih"].T + params["b_ih"] + h @ params["W_hh"].T + b_hh, 4, axis=-1)
        sigma = numpy_ref.sigmoid  # stable at the clause's gate biases of +-1e4
        i, f, o = sigma(z_i), sigma(z_f), sigma(z_o)
        g = sigma(z_g) if slip == "g sigma" else np.tanh(z_g)
        written = {"no input gate": g, "coupled gates": (1 - f) * g}.get(slip, i * g)
        c_new = (c if slip == "no forget gate" else f * c) + written
        h_new = {"old cell": o * np.tanh(c), "no tanh": o * c_new}.get(slip, o * np.tanh(c_new))
        return h_new, c_new

    return lstm_cell


@pytest.mark.parametrize("slip", ["g sigma", "no input gate", "no forget gate", "coupled gates", "no tanh", "old cell",
                                  "no b_hh"])
def test_a_cell_with_one_known_slip_is_told_which(slip: str) -> None:
    """Beyond gate orders: a candidate squashed by sigma, a gate left out or coupled, h' from the old
    cell, one bias dropped. The failure names the change, as it names an order."""
    from nnspec.spec.rnn_attention import CELL_SLIPS

    slipped = patched("numpy", name=slip, lstm_cell=_slipped_cell(slip))
    result = run_clause("LSTM-CELL", slipped, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert f"observed {CELL_SLIPS[slip]} (its h' and c' are the gate equations' with that one change)" in result.message


@pytest.mark.parametrize(("name", "slip"), [
    ("bahdanau-current-state", "Bahdanau scoring with s_t instead of s_{t-1}"),
    ("bahdanau-s0-zero", "Bahdanau's s_0 = 0 instead of the encoder's final hidden state"),
    ("attention-concat-swapped", "out_t = tanh(W_c [ctx_t; s_t] + b_c), the halves swapped"),
    ("decoder-init-from-top", "every decoder layer starting from the top encoder layer's final state"),
    ("attend-bottom-encoder-layer", "attention reading the bottom encoder layer's outputs"),
])
def test_a_wiring_fault_is_named_by_the_failure(name: str, slip: str) -> None:
    """An audit's complaint: S2S-COMPOSE said the logits differ from the parts wired as the notes
    draw them, not which wiring. A failure now names the slip whose composition the logits match;
    Luong scoring with s_{t-1} fails a check that names it already."""
    result = run_clause("S2S-COMPOSE", _wiring_fault(name, shared=False), profile="quick", seed=0)
    assert result.status == "failed"
    assert f"the logits are those of the same parts wired with {slip}" in result.message, result.message
    correct = run_clause("S2S-COMPOSE", "numpy", profile="quick", seed=0)
    assert correct.status == "passed"


def test_a_composition_failing_on_a_wrong_part_points_at_the_parts_clauses() -> None:
    """An lstm that ignores its initial state fails S2S-COMPOSE too (the composition is built from
    it); no wiring slip explains that, and the failure says where to look."""
    wrong_part = patched("numpy", name="ignores-h0", lstm=mutants.lstm_ignores_initial_state)
    result = run_clause("S2S-COMPOSE", wrong_part, profile="quick", seed=0)
    assert result.status == "failed"
    assert "no single wiring slip explains the logits; the composition uses this implementation's own lstm" \
        in result.message, result.message
