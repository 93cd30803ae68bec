"""Clauses on the recurrent encoder-decoder's pieces: Bahdanau and Luong attention, the LSTM cell.

Sources: the Transformer lecture notes (handwritten), "Bahdanau Attention" (the alignment model
``e_ij = v^T tanh(W [s_{i-1}; h_j] + b)`` and ``c_i = sum_j alpha_ij h_j``), "Luong Attention" (the
dot-product score ``e_ij = s_i^T h_j``, the notes' [a b c d].[e f g h] = ae + bf + cg + dh), and
"Improvement 2 - Deep LSTMs" / "The Sutskever Architecture" for the LSTM (whose gate equations the
notes take from Hochreiter and Schmidhuber 1997; the stacking order i, f, g, o is pinned in
``reference/PARAMETERS.md``).

Each property computes the documents' equation here, with ``np.tanh`` and ``np.exp``, never via the
oracle.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnspec.reference.config import START_ID

from . import precision
from .attention import _array, _batch, _mask, _nonfinite, _on_the_simplex, _softmax_rows
from .blocks import FIRST_WORD_ID, draw_tokens, network_params, tiny_seq2seq
from .clause import (
    BAHDANAU_2015,
    HOCHREITER_1997,
    LECTURE_NOTES,
    LUONG_2015,
    SUTSKEVER_2014,
    Check,
    ClauseFailure,
    Source,
    clause,
    informative,
)
from .cost_learning import copy_params

TOPIC = "rnn_attention"

_BAHDANAU = Source(LECTURE_NOTES, "Bahdanau Attention", BAHDANAU_2015)
_LUONG = Source(LECTURE_NOTES, "Luong Attention", LUONG_2015)
_LSTM = Source(
    LECTURE_NOTES,
    "Improvement 2 - Deep LSTMs; The Sutskever Architecture",
    f"{HOCHREITER_1997}; {SUTSKEVER_2014}",
)


def _gaussian(ck: Check, shape: tuple[int, ...], scale: float, seed: int) -> np.ndarray:
    """Parameters drawn from a seeded N(0, scale^2), rounded to the implementation's dtype."""
    return ck.input(scale * np.random.default_rng(seed).standard_normal(shape))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^-z), written without overflow for either sign of z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _context_checks(
    ck: Check, context: np.ndarray, weights: np.ndarray, h: np.ndarray, mask: np.ndarray | None
) -> None:
    """c_i = sum_j alpha_ij h_j, alpha_i on the simplex: the context lies in the hull of the h_j."""
    _on_the_simplex(ck, weights, "alpha")
    h_b = np.broadcast_to(h, (*weights.shape, h.shape[-1]))  # (..., n, d_h)
    ck.close(
        context,
        np.einsum("...j,...jd->...d", weights, h_b),
        output="attention",
        what="sum_j alpha_j h_j",
    )
    if mask is not None:
        ck.equal(weights[~mask], np.zeros(int((~mask).sum())), what="alpha_j of masked h_j")
        h_b = np.where(mask[..., None], h_b, np.nan)
    lo, hi = np.nanmin(h_b, axis=-2), np.nanmax(h_b, axis=-2)  # (..., d_h) over allowed j
    ck.close(
        np.clip(context, lo, hi),
        context,
        output="attention",
        what="context inside the box of the h_j",
    )


def _fully_masked_steps(
    ck: Check,
    attend: Any,
    batch: tuple[int, ...],
    n: int,
    mask: np.ndarray | None,
    context: np.ndarray,
    weights: np.ndarray,
) -> None:
    """The same call with one or more steps' every encoder state masked (a source of padding
    only): the softmax over no allowed j is all zeros (PARAMETERS.md's fully masked row), so those
    steps get zero weights and a zero context, never NaN (a -1e9 fill gives them uniform weights,
    a naive softmax 0/0), and the other steps what ``mask`` alone gave them."""
    blocked = np.array(ck.draw(hnp.arrays(np.bool_, batch), "fully masked steps (more)"))  # (...)
    blocked.flat[ck.draw(st.integers(0, blocked.size - 1), "a fully masked step (flat index)")] = True
    allowed = np.ones((*batch, n), dtype=bool) if mask is None else mask
    context_m, weights_m = (np.asarray(a) for a in attend(allowed & ~blocked[..., None]))
    ck.equal(weights_m.shape, weights.shape, what="alpha.shape, some steps fully masked")
    ck.equal(context_m.shape, context.shape, what="context.shape, some steps fully masked")
    ck.that(
        bool(np.all(np.isfinite(weights_m)) and np.all(np.isfinite(context_m))),
        what="isfinite(alpha) and isfinite(context), some steps fully masked",
        observed=_nonfinite({"alpha": weights_m, "context": context_m}),
        expected="finite",
    )
    # softmax over j of e_j = -inf for every j: exp(-inf) = 0 over a sum with no term
    ck.equal(weights_m[blocked], np.zeros(weights_m[blocked].shape), what="alpha of a step with every h_j masked")
    ck.equal(context_m[blocked], np.zeros(context_m[blocked].shape), what="context of a step with every h_j masked")
    ck.close(weights_m[~blocked], weights[~blocked], output="probability",
             what="alpha of the other steps, beside fully masked ones")
    ck.close(context_m[~blocked], context[~blocked], output="attention",
             what="context of the other steps, beside fully masked ones")


@clause(
    "ADD-ATT",
    "Additive (Bahdanau) attention weights MUST be the softmax over j of "
    "e_j = v^T tanh(W [s_{i-1}; h_j] + b), computed from the previous decoder state and each "
    "encoder state, and the context MUST be the weighted sum of the h_j; a step with every "
    "encoder state masked MUST get zero weights and a zero context, never NaN.",
    source=_BAHDANAU,
    needs=("additive_attention",),
    topic=TOPIC,
)
def add_att(impl: Any, ck: Check) -> None:
    batch = _batch(ck)
    n = ck.draw(st.integers(1, 5), "n encoder states")
    d_s = ck.draw(st.integers(1, 4), "d_s")
    d_h = ck.draw(st.integers(1, 4), "d_h")
    d_attn = ck.draw(st.integers(1, 4), "d_attn")
    seed = ck.draw(st.integers(0, 2**32 - 1), "parameter seed")
    params = {
        "W": _gaussian(ck, (d_attn, d_s + d_h), 1 / math.sqrt(d_s + d_h), seed),
        "b": _gaussian(ck, (d_attn,), 0.5, seed + 1),
        "v": _gaussian(ck, (d_attn,), 2.0, seed + 2),
    }
    s_prev = _array(ck, (*batch, d_s), "s_{i-1}")
    h = _array(ck, (*batch, n, d_h), "h")
    use_mask = ck.draw(st.booleans(), "with a mask")
    mask = _mask(ck, (*batch, n), "mask") if use_mask else None
    context, weights = impl.additive_attention(params, s_prev, h, mask)

    # e_j = v . tanh(W [s_{i-1}; h_j] + b): W's first d_s columns read s_{i-1}, the rest read h_j
    s_part = s_prev @ params["W"][:, :d_s].T  # (..., d_attn), shared by every j
    h_part = h @ params["W"][:, d_s:].T  # (..., n, d_attn)
    e = np.tanh(s_part[..., None, :] + h_part + params["b"]) @ params["v"]  # (..., n)
    if mask is not None:
        e = np.where(mask, e, -np.inf)
    # alpha_j = exp(e_j) / sum_k exp(e_k)
    ck.close(
        weights,
        _softmax_rows(e),
        output="probability",
        what="alpha = softmax(v . tanh(W[s;h] + b))",
    )
    _context_checks(ck, context, weights, h, mask)
    _fully_masked_steps(
        ck, lambda m: impl.additive_attention(params, s_prev, h, m), batch, n, mask, context, weights
    )


@clause(
    "DOT-ATT",
    "Dot-product (Luong) attention MUST score each encoder state by e_j = s^T h_j, with no scaling "
    "and no parameters, take the softmax over j and return the weighted sum of the h_j; a step "
    "with every encoder state masked MUST get zero weights and a zero context, never NaN.",
    source=_LUONG,
    needs=("dot_attention",),
    topic=TOPIC,
)
def dot_att(impl: Any, ck: Check) -> None:
    # The notes' example: s = [a b c d], h = [e f g h] -> ae + bf + cg + dh. With s = (1, 2, 0, 1),
    # h_1 = 0 and h_2 = (1, 1, 1, 1): e = (0, 1 + 2 + 0 + 1 = 4), alpha = (1, e^4) / (1 + e^4).
    s0 = ck.input(np.array([1.0, 2.0, 0.0, 1.0]))
    h0 = ck.input(np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    c0, w0 = impl.dot_attention(s0, h0)
    alpha = np.array([1.0, math.exp(4.0)]) / (1.0 + math.exp(4.0))
    ck.close(w0, alpha, output="probability", what="alpha for e = (0, ae+bf+cg+dh = 4)")
    ck.close(c0, alpha[1] * h0[1], output="attention", what="context for e = (0, 4)")

    batch = _batch(ck)
    n = ck.draw(st.integers(1, 5), "n encoder states")
    d = ck.draw(st.integers(1, 5), "d")
    s = _array(ck, (*batch, d), "s_i")
    h = _array(ck, (*batch, n, d), "h")
    use_mask = ck.draw(st.booleans(), "with a mask")
    mask = _mask(ck, (*batch, n), "mask") if use_mask else None
    context, weights = impl.dot_attention(s, h, mask)
    e = np.einsum("...d,...jd->...j", s, h)  # e_j = s^T h_j  (..., n)
    if mask is not None:
        e = np.where(mask, e, -np.inf)
    ck.close(weights, _softmax_rows(e), output="probability", what="alpha = softmax(s^T h_j)")
    _context_checks(ck, context, weights, h, mask)
    _fully_masked_steps(ck, lambda m: impl.dot_attention(s, h, m), batch, n, mask, context, weights)


def _lstm_params(ck: Check, D: int, H: int) -> dict[str, np.ndarray]:
    """One LSTM layer's parameters (PARAMETERS.md), gates stacked i, f, g, o, from a drawn seed."""
    seed = ck.draw(st.integers(0, 2**32 - 1), "parameter seed")
    return {
        "W_ih": _gaussian(ck, (4 * H, D), 1.0, seed),
        "W_hh": _gaussian(ck, (4 * H, H), 1.0, seed + 1),
        "b_ih": _gaussian(ck, (4 * H,), 0.5, seed + 2),
        "b_hh": _gaussian(ck, (4 * H,), 0.5, seed + 3),
    }


def _gate_equations(
    params: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, *, slip: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One step of the documents' LSTM: (h', c') from x (..., D), h and c (..., H); or, with
    ``slip`` (a key of :data:`CELL_SLIPS`), of a cell that makes that one mistake."""
    H = params["W_hh"].shape[1]
    b_hh = 0.0 if slip == "no b_hh" else params["b_hh"]
    # z = W_ih x + b_ih + W_hh h + b_hh, rows stacked as [i; f; g; o], H rows each
    z = x @ params["W_ih"].T + params["b_ih"] + h @ params["W_hh"].T + b_hh  # (..., 4H)
    z_i, z_f, z_g, z_o = (z[..., n * H : (n + 1) * H] for n in range(4))
    i, f, o = _sigmoid(z_i), _sigmoid(z_f), _sigmoid(z_o)
    g = _sigmoid(z_g) if slip == "g sigma" else np.tanh(z_g)
    # c' = f * c + i * g   (forget part of the old cell, write the gated candidate)
    c_new = {
        "no input gate": f * c + g,
        "no forget gate": c + i * g,
        "coupled gates": f * c + (1.0 - f) * g,
    }.get(slip or "", f * c + i * g)
    # h' = o * tanh(c')
    h_new = {"no tanh": o * c_new, "old cell": o * np.tanh(c)}.get(slip or "", o * np.tanh(c_new))
    return h_new, c_new


# One change each to the gate equations, as hand-written cells make them; a failing cell whose
# output is, to a few roundings, the equations with exactly one of these is told which.
CELL_SLIPS: dict[str, str] = {
    "g sigma": "g = sigma(.) where the candidate is tanh(.)",
    "no input gate": "c' = f*c + g, the input gate left out",
    "no forget gate": "c' = c + i*g, the forget gate left out",
    "coupled gates": "c' = f*c + (1 - f)*g, the input gate coupled to the forget gate",
    "no tanh": "h' = o*c', tanh(c') left out",
    "old cell": "h' = o*tanh(c), the old cell where c' belongs",
    "no b_hh": "b_hh left out (one bias, b_ih)",
}


def _misreading(
    impl: Any, params: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray,
    h_new: np.ndarray, c_new: np.ndarray, expected: tuple[np.ndarray, np.ndarray],
) -> str | None:
    """What a failing cell did, where its output is not the gate equations' and is, to a few
    roundings, theirs with exactly one known change: the gate blocks read in another order (torch's
    i, f, g, o as Keras's i, f, c, o or cuDNN's) or one of :data:`CELL_SLIPS`. The failure can then
    name it, rather than a c' off by some number."""
    H = params["W_hh"].shape[1]
    observed = np.concatenate([np.ravel(h_new), np.ravel(c_new)]).astype(np.float64)
    bound = 64 * precision.eps(impl) * (1.0 + float(np.max(np.abs(observed), initial=0.0)))

    def off(want: tuple[np.ndarray, np.ndarray]) -> float:
        return float(np.max(np.abs(observed - np.concatenate([np.ravel(v) for v in want])), initial=0.0))

    if observed.shape != (2 * np.size(c),) or not np.all(np.isfinite(observed)) or off(expected) <= bound:
        return None
    matching = []
    for order in itertools.permutations("ifgo"):
        if order == tuple("ifgo"):
            continue
        # read as `order`: gate G's rows are the block at order.index(G)
        blocks = [order.index(gate) for gate in "ifgo"]
        reordered = {name: np.concatenate([value[b * H : (b + 1) * H] for b in blocks])
                     for name, value in params.items()}
        if off(_gate_equations(reordered, x, h, c)) <= bound:
            matching.append(f"the gate blocks read in the order {', '.join(order)} from the rows of W_ih, "
                            "W_hh, b_ih and b_hh")
    for slip, slipped in CELL_SLIPS.items():
        if off(_gate_equations(params, x, h, c, slip=slip)) <= bound:
            matching.append(slipped)
    return matching[0] if len(matching) == 1 else None


@clause(
    "LSTM-CELL",
    "An LSTM cell MUST follow the gate equations: i, f, o = sigma(.), g = tanh(.) of "
    "W_ih x + b_ih + W_hh h + b_hh (stacked i, f, g, o), c' = f * c + i * g and h' = o * tanh(c').",
    source=_LSTM,
    needs=("lstm_cell",),
    topic=TOPIC,
)
def lstm_cell(impl: Any, ck: Check) -> None:
    batch = _batch(ck)
    D = ck.draw(st.integers(1, 4), "input size D")
    H = ck.draw(st.integers(1, 4), "hidden size H")
    params = _lstm_params(ck, D, H)
    x = _array(ck, (*batch, D), "x")
    h = _array(ck, (*batch, H), "h")
    c = _array(ck, (*batch, H), "c")
    h_new, c_new = impl.lstm_cell(params, x, h, c)
    expected_h, expected_c = _gate_equations(params, x, h, c)
    misread = _misreading(impl, params, x, h, c, np.asarray(h_new), np.asarray(c_new), (expected_h, expected_c))
    ck.that(
        misread is None,
        what="what lstm_cell computes",
        observed=f"{misread} (its h' and c' are the gate equations' with that one change)",
        expected="the gate equations as stated, blocks i, f, g, o of H rows each (PARAMETERS.md, as "
        "torch.nn.LSTM)",
    )
    ck.close(c_new, expected_c, output="default", what="c' = f*c + i*g")
    ck.close(h_new, expected_h, output="default", what="h' = o*tanh(c')")
    # |h'| < 1: a gate in (0, 1) times a tanh in (-1, 1)
    ck.that(
        bool(np.all(np.abs(h_new) <= 1)),
        what="|h'| <= 1",
        observed=float(np.max(np.abs(h_new))) if h_new.size else 0.0,
        expected="<= 1",
    )

    # Metamorphic: a saturated forget gate (b_f large, f -> 1) and a closed input gate
    # (b_i very negative, i -> 0) carry the cell over unchanged: c' = c.
    keep = {name: value.copy() for name, value in params.items()}
    keep["b_ih"][:H] = -1e4  # input gate closed
    keep["b_ih"][H : 2 * H] = 1e4  # forget gate open
    keep = {name: ck.input(value) for name, value in keep.items()}
    _, c_kept = impl.lstm_cell(keep, x, h, c)
    ck.close(c_kept, c, output="default", what="c' with f = 1, i = 0")


@clause(
    "LSTM-SEQ",
    "An LSTM layer run over a sequence MUST apply the cell once per step, each step from the "
    "previous step's (h, c) and the first from zeros or from the given (h_0, c_0), and MUST "
    "return every h_t in order and the last step's (h, c).",
    source=_LSTM,
    needs=("lstm",),
    uses=("lstm_cell",),
    topic=TOPIC,
)
def lstm_sequence(impl: Any, ck: Check) -> None:
    batch = _batch(ck)
    T = ck.draw(st.integers(1, 5), "T")
    D = ck.draw(st.integers(1, 4), "input size D")
    H = ck.draw(st.integers(1, 4), "hidden size H")
    params = _lstm_params(ck, D, H)
    xs = _array(ck, (*batch, T, D), "xs")
    given = ck.draw(st.booleans(), "(h_0, c_0) given")
    h0 = _array(ck, (*batch, H), "h_0") if given else np.zeros((*batch, H))
    c0 = _array(ck, (*batch, H), "c_0") if given else np.zeros((*batch, H))
    outputs, (h_T, c_T) = impl.lstm(params, xs, h0, c0) if given else impl.lstm(params, xs)
    ck.equal(np.shape(outputs), (*batch, T, H), what="lstm(params, xs)[0].shape")

    # (h_t, c_t) = cell(x_t, h_{t-1}, c_{t-1}) for t = 1..T, from (h_0, c_0) (zeros if not given)
    h, c, expected = h0, c0, []
    for t in range(T):
        h, c = _gate_equations(params, xs[..., t, :], h, c)
        expected.append(h)
    start = "(h_0, c_0)" if given else "zeros"
    ck.close(outputs, np.stack(expected, axis=-2), output="reduction",
             what=f"outputs h_1..h_{T}, the cell iterated from {start}")
    ck.close(h_T, h, output="reduction", what=f"final h = h_{T}")
    ck.close(c_T, c, output="reduction", what=f"final c = c_{T}")
    # the final h is the last output itself
    ck.equal(h_T, np.asarray(outputs)[..., -1, :], what="final h vs outputs[..., -1, :]")

    if ck.offers("lstm_cell"):
        # the implementation's own cell, iterated: the layer is that cell, step by step
        h, c, own = h0, c0, []
        for t in range(T):
            h, c = impl.lstm_cell(params, xs[..., t, :], h, c)
            own.append(h)
        ck.close(outputs, np.stack(own, axis=-2), output="reduction",
                 what=f"lstm(...) outputs vs its own lstm_cell iterated from {start}")
        ck.close(c_T, c, output="reduction", what="final c vs its own lstm_cell iterated")

    # The state carries across a split: the second half, started from the first half's final
    # (h, c), continues the whole sequence.
    if T > 1:
        k = ck.draw(st.integers(1, T - 1), "split at")
        first, (h_k, c_k) = impl.lstm(params, xs[..., :k, :], h0, c0)
        second, (h_end, c_end) = impl.lstm(params, xs[..., k:, :], h_k, c_k)
        ck.close(np.concatenate([first, second], axis=-2), outputs, output="reduction",
                 what=f"lstm(xs[:{k}]) then lstm(xs[{k}:], its final (h, c)) vs lstm(xs)")
        ck.close(c_end, c_T, output="reduction", what="final c of the two halves vs the whole")


informative(
    "DOT-ATT-FASTER",
    "Luong's dot-product score SHOULD be faster to compute than Bahdanau's additive score, which "
    "runs a small feed-forward network for every pair (s, h_j).",
    source=_LUONG,
    topic=TOPIC,
    reason="Speed depends on the hardware and the sizes; the checkable part (the dot score has no "
    "parameters and no scaling) is DOT-ATT.",
)

informative(
    "ADD-ATT-ALIGNMENT",
    "After training, the attention weights SHOULD align each target word with the source words it "
    "translates (the notes' 'turn off the lights' example).",
    source=_BAHDANAU,
    topic=TOPIC,
    reason="A property of a trained translation model; nnspec ships none for this language pair.",
)


# ---------------------------------------------------------------------------------------------
# The whole encoder-decoder, composed from its own LSTM layers and attention.
# ---------------------------------------------------------------------------------------------

_SEQ2SEQ = Source(
    LECTURE_NOTES,
    "The Sutskever Architecture; Improvement 2 - Deep LSTMs; Bahdanau Attention; Luong Attention",
    f"{SUTSKEVER_2014}; {BAHDANAU_2015}; {LUONG_2015}",
)
_S2S_PARTS = ("lstm", "dot_attention", "additive_attention")
# The "must change" half of the metamorphic check runs only where the float64 prediction of the
# change is at least this many times the summed allowance of the two logits it subtracts, and then
# asks for the predicted change within half of it: a conforming implementation fails it only with
# logits more than _DECIDED_BY / 2 allowances away from exact arithmetic.
_DECIDED_BY = 4.0


def _logit_allowance(impl: Any, logits: np.ndarray) -> np.ndarray:
    """How far a conforming implementation's logits may be from exact arithmetic: the closed-form
    ``network`` allowance of the tolerance policy (4096 ulps, or 32 ulps in float16/bfloat16
    whose kernels accumulate in float32; never below float64's 1e-9 + 1e-8 |x|)."""
    ulps = (32 if precision.low_precision(impl) else 4096) * precision.eps(impl)
    return max(1e-9, ulps) + max(1e-8, ulps) * np.abs(logits)


# Wiring slips real encoder-decoders make, each a switch of the composition below: a failing
# S2S-COMPOSE names the one whose logits the implementation's match far better than the notes'.
_SLIPS = {
    "init_from_top": "every decoder layer starting from the top encoder layer's final state",
    "attend_bottom": "attention reading the bottom encoder layer's outputs",
    "bahdanau_current": "Bahdanau scoring with s_t instead of s_{t-1}",
    "s0_zero": "Bahdanau's s_0 = 0 instead of the encoder's final hidden state",
    "luong_previous": "Luong scoring with s_{t-1} instead of s_t",
    "concat_swapped": "out_t = tanh(W_c [ctx_t; s_t] + b_c), the halves swapped",
}


def _seq2seq_composition(
    parts: dict[str, Any], params: dict, config: Any, src: np.ndarray, tgt: np.ndarray, *, slip: str = ""
) -> np.ndarray:
    """Teacher-forced logits (T, n_tgt_vocab) as the notes wire the encoder-decoder, from the LSTM
    layer and attention functions in ``parts`` (PARAMETERS.md's Seq2Seq layout); ``slip`` (a key
    of ``_SLIPS``) wires it wrong in that one way instead."""
    lstm = parts["lstm"]
    # the encoder reads the source (reversed: Sutskever et al.), one LSTM layer on the outputs of
    # the one below; each layer's final (h, c) is kept
    x = params["W_E_src"][:, src[::-1] if config.reverse_source else src].T  # (S, d_embed)
    states, outputs = [], []
    for layer in params["encoder"]:
        x, (h_n, c_n) = lstm(layer, x)
        x, h_n, c_n = np.asarray(x), np.asarray(h_n), np.asarray(c_n)  # (S, H), (H,), (H,)
        states.append((h_n, c_n))
        outputs.append(x[::-1] if config.reverse_source else x)  # h_1..h_S in source order
    enc = outputs[0 if slip == "attend_bottom" else -1]  # the top layer's
    # decoder layer l starts from encoder layer l's final (h, c) and reads the layer below
    y = params["W_E_tgt"][:, tgt].T  # (T, d_embed)
    for layer, (h_n, c_n) in zip(params["decoder"], states, strict=True):
        y, _ = lstm(layer, y, *(states[-1] if slip == "init_from_top" else (h_n, c_n)))
        y = np.asarray(y)
    s = y  # s_1..s_T, the top decoder layer
    if config.attention is None:
        out = s
    else:
        h = np.broadcast_to(enc, (len(tgt), *enc.shape))  # (T, S, H): each step over all h_j
        # s_{t-1}, with s_0 = the top encoder layer's final hidden state
        s_0 = np.zeros_like(states[-1][0]) if slip == "s0_zero" else states[-1][0]
        s_prev = np.concatenate([s_0[None, :], s[:-1]], axis=0)  # (T, H)
        if config.attention == "luong":
            # alpha_tj = softmax_j(s_t . h_j): the current state
            context = parts["dot_attention"](s_prev if slip == "luong_previous" else s, h)[0]
        else:
            # e_tj = v . tanh(W [s_{t-1}; h_j] + b): the previous state
            query = s if slip == "bahdanau_current" else s_prev
            context = parts["additive_attention"](params["attention"], query, h)[0]
        # out_t = tanh(W_c [s_t; ctx_t] + b_c)
        halves = [np.asarray(context), s] if slip == "concat_swapped" else [s, np.asarray(context)]
        out = np.tanh(np.concatenate(halves, axis=-1) @ params["W_c"].T + params["b_c"])  # (T, H)
    # logits_t = W_U out_t + b_U
    return out @ params["W_U"].T + params["b_U"]


def _wiring_slip(parts: dict[str, Any], params: dict, config: Any, src: np.ndarray, tgt: np.ndarray,
                 logits: np.ndarray) -> str:
    """The slip of ``_SLIPS`` whose composition ``logits`` match ten times better than the notes'
    wiring and twice as well as any other slip's ("" where none does): a hint for a failure."""
    def off(slip: str) -> float:
        return float(np.max(np.abs(logits - _seq2seq_composition(parts, params, config, src, tgt, slip=slip))))

    relevant = ["init_from_top", "attend_bottom"] if config.n_layers > 1 else []
    relevant += {"bahdanau": ["bahdanau_current", "s0_zero"], "luong": ["luong_previous"]}.get(
        str(config.attention), [])
    relevant += ["concat_swapped"] if config.attention is not None else []
    if not relevant:
        return ""
    drawn = off("")
    gaps = sorted((off(slip), slip) for slip in relevant)
    best, slip = gaps[0]
    runner_up = gaps[1][0] if len(gaps) > 1 else np.inf
    return _SLIPS[slip] if best * 10 <= drawn and best * 2 <= runner_up else ""


@clause(
    "S2S-COMPOSE",
    "The LSTM encoder-decoder's logits MUST be its own LSTM layers and attention wired as the "
    "notes draw them: decoder layer l starts from encoder layer l's final state, attention reads "
    "the top encoder layer, Bahdanau scores use the previous decoder state s_{t-1} (s_0 the "
    "encoder's final hidden state), Luong's the current one, and out_t = tanh(W_c [s_t; ctx_t] + "
    "b_c).",
    source=_SEQ2SEQ,
    needs=("Seq2Seq",),
    uses=_S2S_PARTS,
    topic=TOPIC,
    cost="network",
    note="Seq2Seq.forward against the composition of the implementation's own lstm, "
    "dot_attention and additive_attention (PARAMETERS.md pins out_t, Luong's attentional hidden "
    "state, for both kinds), for Bahdanau, Luong and no attention on every example, each over two "
    "or three layers, and again for both kinds with W_c's s-columns zeroed and the attention "
    "sharpened (the logits then set by the attention alone: Bahdanau's s_0 shows in float32 too); "
    "below float64 the two routes are judged by tolerance rule 4. A part it lacks is the oracle's "
    "in float64 and float32; in float16 and bfloat16 the composition is skipped instead (a float64 "
    "part inside low-precision code is not like for like). On every example, for both kinds, "
    "oracle-free: with W_c's s-columns zeroed, changing the "
    "target token at t leaves Bahdanau's logits at steps <= t unchanged (a few roundings) and "
    "moves Luong's at t by the float64 prediction within half of it, checked only where that "
    "prediction is 4 closed-form network allowances or more (a conforming implementation fails "
    "it only with logits off by over twice that allowance).",
)
def s2s_compose(impl: Any, ck: Check) -> None:
    # Every kind of attention on every example (Bahdanau first: its wiring, s_{t-1} and s_0, is the
    # most often wrong), each over a stack of two or three layers (the notes' deep LSTMs): which
    # encoder state starts which decoder layer, and which layer attention reads, do not exist in
    # the one-layer stack where Hypothesis starts, and a network clause gets two examples at quick.
    n_layers = ck.draw(st.integers(2, 3), "n_layers")
    reverse_source = ck.draw(st.booleans(), "reverse_source")
    # two distinct source tokens at least: over one, attention weighs 1 whatever the scores
    src = draw_tokens(ck, 2, 5, "source", unique=True)
    tgt = np.concatenate([[START_ID], draw_tokens(ck, 0, 4, "target")]).astype(np.int64)
    # Which state scores, first, for both kinds: where that is what is wrong, the failure says so
    # (not only that the logits differ from the composition)
    for kind in ("bahdanau", "luong"):
        config = tiny_seq2seq(ck, attention=kind, n_layers=n_layers, reverse_source=reverse_source)
        _which_state_scores(impl, ck, config, network_params(ck, config))
    for attention in ("bahdanau", "luong", None):
        config = tiny_seq2seq(ck, attention=attention, n_layers=n_layers, reverse_source=reverse_source)
        _composed(impl, ck, config, network_params(ck, config), src, tgt)


def _parts_needed(config: Any) -> list[str]:
    """The functions the composition of ``config``'s encoder-decoder calls."""
    return ["lstm"] + {"luong": ["dot_attention"], "bahdanau": ["additive_attention"]}.get(str(config.attention), [])


def _composed(
    impl: Any, ck: Check, config: Any, params: dict, src: np.ndarray, tgt: np.ndarray, *, sharpened: bool = False,
    logits: np.ndarray | None = None,
) -> None:
    """S2S-COMPOSE for one configuration: Seq2Seq.forward against its own parts wired by hand
    (``logits``: its forward pass at (src, tgt), where the caller has it already)."""
    needed = _parts_needed(config)
    lacking = [name for name in needed if not ck.offers(name)]
    if logits is None:
        logits = np.asarray(impl.Seq2Seq(config, copy_params(params)).forward(src, tgt))
    ck.equal(logits.shape, (len(tgt), config.n_tgt_vocab), what="Seq2Seq.forward(src, tgt).shape")
    if lacking and precision.low_precision(impl):
        ck.note(f"composition ({config.attention or 'no'} attention)",
                f"skipped: {', '.join(lacking)} not offered at {precision.dtype_of(impl)}")
        return
    if lacking:
        ck.note(f"composition ({config.attention or 'no'} attention)", f"the oracle's {', '.join(lacking)}")
    own = "own " if not lacking else ""

    def forward(m: Any) -> np.ndarray:
        return logits if m is impl else np.asarray(m.Seq2Seq(config, copy_params(params)).forward(src, tgt))

    def composition(m: Any) -> np.ndarray:
        parts = {name: getattr(ck.oracle if name in lacking else m, name) for name in needed}
        return _seq2seq_composition(parts, params, config, src, tgt)

    # Two routes through the implementation's arithmetic: below float64, also what they part by
    # through torch_ref on this input (rule 4; the sharpened network amplifies rounding)
    _naming_a_slip(
        lambda: ck.close_routes(
            forward,
            composition,
            output="network",
            what=f"Seq2Seq.forward vs its {own}lstm{'' if config.attention is None else ' and attention'} "
            f"wired as the notes draw them ({config.attention or 'no'} attention, "
            f"{config.n_layers} layer(s), reverse_source={config.reverse_source}"
            f"{'; W_c s-columns zeroed, attention sharpened' if sharpened else ''})",
        ),
        impl, ck, config, params, src, tgt, logits, composed=True,
    )


def _naming_a_slip(
    check: Callable[[], Any], impl: Any, ck: Check, config: Any, params: dict, src: np.ndarray,
    tgt: np.ndarray, logits: np.ndarray, *, composed: bool = False,
) -> None:
    """Run ``check``; where it fails and one wiring slip of ``_SLIPS`` explains the logits the
    implementation gave for (src, tgt), the failure names it (which of the notes' wirings differs).
    A failing composition (``composed``) of the implementation's own parts that no slip explains
    points at those parts' own clauses."""
    try:
        check()
    except ClauseFailure as failure:
        parts = {name: getattr(impl if ck.offers(name) else ck.oracle, name) for name in _parts_needed(config)}
        slip = _wiring_slip(parts, params, config, src, tgt, logits)
        own = [name for name in parts if ck.offers(name)]
        if slip:
            hint = f"the logits are those of the same parts wired with {slip}"
        elif own and composed:
            # the composition is built from the implementation's own parts: a part that is wrong
            # on its own (an lstm ignoring its initial state) fails here as well as in its clause
            hint = (f"no single wiring slip explains the logits; the composition uses this implementation's "
                    f"own {' and '.join(own)}: if LSTM-SEQ, ADD-ATT or DOT-ATT fail too, start there")
        else:
            raise
        raise failure.with_detail(hint) from None


def _which_state_scores(impl: Any, ck: Check, config: Any, params: dict) -> None:
    """With W_c's s-columns zeroed, out_t = tanh(W_c' ctx_t + b_c) sees the decoder only through
    the state that scored: s_{t-1} (Bahdanau) does not read y_t, s_t (Luong) does. Runs on every
    example, with a source of distinct tokens and a target of two or more, where the check can
    see something; then the same sharpened network against its own parts composed."""
    check = f"{config.attention} state check"
    src = draw_tokens(ck, 2, 5, f"source ({check})", unique=True)
    tgt = np.concatenate([[START_ID], draw_tokens(ck, 1, 4, f"target ({check})")]).astype(np.int64)
    H = config.d_hidden
    blind = copy_params(params)
    blind["W_c"][:, :H] = 0.0
    # Sharpen what the state changes, so that a change is visible above the rounding of a narrow
    # format: more distinct encoder outputs (x3 source embeddings), steeper Bahdanau scores (x4 W
    # and v) and a stronger context (x3 W_c). Untouched, the logits move by ~1e-4 at the median.
    blind["W_E_src"] = ck.input(3.0 * blind["W_E_src"])
    blind["W_c"] = ck.input(3.0 * blind["W_c"])
    if "attention" in blind:
        blind["attention"]["W"] = ck.input(4.0 * blind["attention"]["W"])
        blind["attention"]["v"] = ck.input(4.0 * blind["attention"]["v"])
    t = ck.draw(st.integers(1, len(tgt) - 1), f"changed target position t ({check})")
    other = tgt.copy()
    choices = [w for w in range(FIRST_WORD_ID, config.n_tgt_vocab) if w != tgt[t]]
    other[t] = ck.draw(st.sampled_from(choices), f"other token at t ({check})")
    net = impl.Seq2Seq(config, copy_params(blind))
    first = np.asarray(net.forward(src, tgt))
    second = np.asarray(net.forward(src, other))
    bahdanau = config.attention == "bahdanau"
    unchanged = t + 1 if bahdanau else t
    # The same operations on the same values: a few roundings at most (in practice bit for bit).
    _naming_a_slip(
        lambda: ck.close(
            second[:unchanged],
            first[:unchanged],
            output="elementwise",
            what=f"logits at steps 0..{unchanged - 1} when target token {t} changes, W_c's s-columns "
            f"zeroed ({config.attention}: "
            + ("step t scores with s_{t-1}, which has not read it)" if bahdanau else "the past)"),
        ),
        impl, ck, config, blind, src, tgt, first,
    )
    if not bahdanau:
        _luong_reads_the_current_state(impl, ck, config, blind, src, tgt, other, t, first, second)
    # The same network, its logits now set by the attention alone and steeply: against its own
    # parts wired by hand, a score read from the wrong state (s_0 = 0 in place of the encoder's
    # final state moves Bahdanau's first step by ~6e-5 unsharpened, under float32's allowance)
    _composed(impl, ck, config, blind, src, tgt, sharpened=True, logits=first)


def _luong_reads_the_current_state(
    impl: Any, ck: Check, config: Any, blind: dict, src: np.ndarray, tgt: np.ndarray, other: np.ndarray,
    t: int, first: np.ndarray, second: np.ndarray,
) -> None:
    """Luong scores with s_t, which has read y_t: with W_c's s-columns zeroed, the logits at t move
    by about the float64 prediction when target token t changes."""
    parts = {"lstm": ck.oracle.lstm, "dot_attention": ck.oracle.dot_attention}
    predicted = (
        _seq2seq_composition(parts, blind, config, src, other)[t]
        - _seq2seq_composition(parts, blind, config, src, tgt)[t]
    )
    observed = second[t] - first[t]
    allowance = _logit_allowance(impl, first[t]) + _logit_allowance(impl, second[t])
    k = int(np.argmax(np.abs(predicted) / allowance))  # the most decided logit
    margin = abs(predicted[k]) / allowance[k]
    ck.note("luong change / allowance", round(float(margin), 3))
    if margin < _DECIDED_BY:
        return  # the attention barely reads s_t here (one source token, a saturated softmax)
    ck.that(
        abs(observed[k] - predicted[k]) <= abs(predicted[k]) / 2,
        what=f"change of logit {k} at step {t} when target token {t} changes, W_c's s-columns "
        "zeroed (Luong scores with s_t, which has read it)",
        observed=f"{observed[k]:.4g}",
        expected=f"{predicted[k]:.4g} within half of it",
    )
