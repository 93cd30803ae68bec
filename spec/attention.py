"""Clauses on (scaled dot-product, masked, cross- and multi-head) attention.

Sources: Neural Networks (notes on 3Blue1Brown) §6 "Attention in Transformers"; Deep Learning (notes
on 3Blue1Brown) "Chapter 6: Attention in transformers"; the Transformer lecture notes (handwritten),
"Query, Key & Value Vectors", "What is d_k", "Geometric Intuition", "Finding the answer" (masking)
and "What is Cross Attention"; Deep learning recap to the Transformer, "Multi-headed attention" and
"Masked multihead attention". The paper behind them is Vaswani et al. 2017.

Every property states what the documents say, computed here from first principles (the softmax of
the scaled scores written out with ``np.exp``, the head slices of the parameter contract, closed
forms of the gradients, metamorphic partners); :data:`ATT-ORACLE` adds the differential check with
the oracle on top.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from . import precision
from .clause import (
    DEEP_LEARNING,
    LECTURE_NOTES,
    NEURAL_NETWORKS,
    RECAP,
    VASWANI_2017,
    Check,
    Source,
    clause,
    informative,
    must_be_boolean_mask,
)
from .softmax import LONG_ROWS

TOPIC = "attention"

SDPA = "scaled_dot_product_attention"
MHA = "multi_head_attention"
# Either will do: a kernel offers single-head attention alone, a layer multi-head alone.
SDPA_OR_MHA = f"{SDPA} | {MHA}"

# Sections cited below.
_SINGLE_HEAD = Source(
    NEURAL_NETWORKS, "6b. Single Head of Attention (Self Attention)", VASWANI_2017
)
_CH6 = Source(DEEP_LEARNING, "Chapter 6: Attention in transformers", VASWANI_2017)
_RECAP_MHA = Source(RECAP, "Multi-headed attention", VASWANI_2017)
_RECAP_MASKED = Source(RECAP, "Masked multihead attention", VASWANI_2017)
_QKV = Source(LECTURE_NOTES, "Query, Key & Value Vectors; What is d_k", VASWANI_2017)
_WORKED = Source(LECTURE_NOTES, "Geometric Intuition", VASWANI_2017)
_FINDING = Source(LECTURE_NOTES, "Finding the answer", VASWANI_2017)
_CROSS = Source(NEURAL_NETWORKS, "6c. Cross-Attention", VASWANI_2017)
_MULTI_HEAD = Source(
    NEURAL_NETWORKS, "6d. Multi-Head Attention and 1 Attention block", VASWANI_2017
)
_OUTPUT_MATRIX = Source(NEURAL_NETWORKS, "6e. Output Matrix", VASWANI_2017)
_INPUT_EMB = Source(RECAP, "Input embeddings", VASWANI_2017)

WORKED_EXAMPLE_ERRATA = (
    "Transformer lecture notes, Geometric Intuition: 10/sqrt(2) is 7.07, printed 7.09.",
    "Transformer lecture notes, Geometric Intuition: 32/sqrt(2) is 22.63, printed 22.69.",
    "Transformer lecture notes, Geometric Intuition: the printed softmax weights 0.2 and 0.8 do "
    "not follow from the scaled scores (they give about 1.8e-7 and 1 - 1.8e-7); the notes mark "
    "the values as hypothetical.",
)


# ---------------------------------------------------------------------------------------------
# Small strategies (moderate values: the softmax never saturates to exact 0/1 by accident)
# ---------------------------------------------------------------------------------------------

_ELEMENT = st.floats(
    min_value=-2.0, max_value=2.0, allow_nan=False, allow_infinity=False, allow_subnormal=False
)
# "Whatever their values": large enough to beat a finite additive mask such as -1e4.
_WIDE_BOUND = 1e6


def _wide(impl: Any, n_terms: int, *, gain: float = 1.0, partner: float | None = None) -> Any:
    """Values in [-1e6, 1e6] (:data:`_WIDE_BOUND`), cut to those whose dot products stay finite in
    the implementation's format. A score sums ``n_terms`` products of such a value, first multiplied
    by at most ``gain`` (a projection's largest absolute row sum), with a partner of magnitude at
    most ``partner`` (or, with ``partner=None``, with another value of the same range); the cut
    keeps that sum within ``largest / 4``.

    At float64/float32 the cut lies far beyond 1e6 and changes nothing. At float16 (largest 65504)
    1e6 is not representable, and values that are (36400) overflow q k^T to inf, scaled or not,
    which a correct float16 implementation cannot avoid: what it can be asked to ignore is what it
    can hold (where only the unscaled product overflows, :func:`_hot_row` asks for it). (So at
    float16 a finite additive mask of -1e4 is exposed only by scores near the format's limit, which
    the draws rarely reach; ATT-CAUSAL catches that bug at float32 and float64.)
    """
    room = precision.largest(impl) / (4 * n_terms)
    if partner is None:  # n_terms (gain w)^2 <= largest / 4
        bound = math.sqrt(room) / max(gain, 1.0)
    else:  # n_terms gain w partner <= largest / 4
        bound = room / (max(gain, 1.0) * partner)
    bound = min(_WIDE_BOUND, bound)
    return st.floats(
        min_value=-bound, max_value=bound, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )


def _array(ck: Check, shape: tuple[int, ...], label: str, elements: Any = _ELEMENT) -> np.ndarray:
    """An array drawn element by element (shrinks well), rounded to the implementation's dtype."""
    return ck.input(ck.draw(hnp.arrays(np.float64, shape, elements=elements), label))


def _batch(ck: Check) -> tuple[int, ...]:
    """Leading batch dimensions: none, one or two, each small."""
    return tuple(
        ck.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=2), "batch shape")
    )


def _qkv(
    ck: Check, *, min_d_k: int = 1, min_n_q: int = 1, min_n_k: int = 1, same_length: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v)."""
    batch = _batch(ck)
    n_q = ck.draw(st.integers(min_n_q, 5), "n_q")
    n_k = n_q if same_length else ck.draw(st.integers(min_n_k, 5), "n_k")
    d_k = ck.draw(st.integers(min_d_k, 6), "d_k")
    d_v = ck.draw(st.integers(1, 4), "d_v")
    q = _array(ck, (*batch, n_q, d_k), "q")
    k = _array(ck, (*batch, n_k, d_k), "k")
    v = _array(ck, (*batch, n_k, d_v), "v")
    return q, k, v


def _long_row(ck: Check, *, d: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One query over as many keys as a long context: q (1, d), k (n, d), v (n, d), drawn from a
    seed (too many numbers to draw one by one), n past 256 and 2048.

    The weights are near 1/n and the values positive (0.5 to 2), so sum_j w_j v_j is near 1, where
    a sum accumulated in the format itself stalls: a bfloat16 sum near 1 ignores an addend below
    2^-9, past 256 keys of weight 1/n (float16: past 2048).
    """
    n = ck.draw(st.sampled_from(LONG_ROWS), "n_k (long row)")
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**32 - 1), "long row's seed"))
    d = d if d is not None else ck.draw(st.integers(1, 4), "long row's d_k = d_v")
    q = ck.input(rng.uniform(-1.0, 1.0, (1, d)))
    k = ck.input(rng.uniform(-1.0, 1.0, (n, d)))
    v = ck.input(rng.uniform(0.5, 2.0, (n, d)))
    return q, k, v


# Head sizes of a hot row: sqrt(d_k) / 4 well above 1, so q . k can lie past the format's largest
# number while q . k / sqrt(d_k) stays within a quarter of it.
_HOT_D_K = (64, 128, 256)


def _hot_row(ck: Check, impl: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One query whose unscaled scores q . k_j lie past the largest number of the implementation's
    format while the scaled ones stay within a quarter of it: q (1, d_k), k (n, d_k), v (n, d_v).

    Forming q k^T in the format and dividing by sqrt(d_k) afterwards overflows to inf there (float16:
    |q . k| > 65504 at entries of 32 and d_k = 64), and the softmax returns NaN; dividing q first,
    as PyTorch's kernels and torch_ref do, does not (Hugging Face's GPT-2 reorders its attention
    for this, ``reorder_and_upcast_attn``). For a float64 implementation the bound is float32's
    largest number: the float64 oracle forms q k^T itself, and a float64 implementation that
    computes in float32 overflows there.

    The keys lie along the query, k_j = c_j q with c_j in [-1, 0.9] and one c_j = 1, so the top
    scaled score leads the others by a tenth of itself (at least 512 at float16) and the weights
    are one-hot at the top key in every format: the output is that key's value row.
    """
    top, _ = _hot_bound(impl)
    d_k = ck.draw(st.sampled_from(_HOT_D_K), "hot row's d_k")
    n = ck.draw(st.integers(1, 4), "hot row's n_k")
    over = ck.draw(st.floats(1.25, 0.9 * math.sqrt(d_k) / 4), "hot row's max q . k / largest")
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**32 - 1), "hot row's seed"))
    a = math.sqrt(over * top / d_k)  # q . q = a^2 d_k = over x largest
    signs = rng.choice([-1.0, 1.0], size=d_k)
    c = rng.uniform(-1.0, 0.9, n)
    c[rng.integers(n)] = 1.0  # the top key
    q = ck.input(a * signs[None, :])  # (1, d_k)
    k = ck.input(c[:, None] * q)  # (n, d_k)
    v = ck.input(rng.uniform(-1.0, 1.0, (n, ck.draw(st.integers(1, 4), "hot row's d_v"))))
    return q, k, v


def _hot_bound(impl: Any) -> tuple[float, str]:
    """The number a hot row's unscaled scores lie past: the format's largest, float32's for float64."""
    dtype = "float32" if precision.dtype_of(impl) == "float64" else precision.dtype_of(impl)
    return min(precision.largest(impl), float(np.finfo(np.float32).max)), dtype


def _hot_label(impl: Any, q: np.ndarray, k: np.ndarray) -> str:
    """How far past the format's largest number a hot row's unscaled scores lie, for a message."""
    most = float(np.max(np.abs(q @ k.T)))
    top, dtype = _hot_bound(impl)
    return (f"{most:.4g} (past {top:.4g}, the largest {dtype}), "
            f"max |q . k| / sqrt(d_k) {most / math.sqrt(q.shape[-1]):.4g}")


def _hot_params(ck: Check, d_model: int) -> dict[str, np.ndarray]:
    """One head whose queries and keys are its inputs (W_q = W_k = I, no biases), so a hot row's
    scores reach multi-head attention unchanged; W_v and W_o ~ N(0, 1/d_model)."""
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**32 - 1), "hot row's parameter seed"))
    eye = np.eye(d_model)
    return {
        "W_q": ck.input(eye),
        "W_k": ck.input(eye),
        "W_v": ck.input(rng.standard_normal((d_model, d_model)) / math.sqrt(d_model)),
        "W_o": ck.input(rng.standard_normal((d_model, d_model)) / math.sqrt(d_model)),
    }


def _mask(ck: Check, shape: tuple[int, ...], label: str) -> np.ndarray:
    """A boolean mask (True = may attend) with at least one allowed key in every query row."""
    mask = ck.draw(hnp.arrays(np.bool_, shape), label)
    keep = ck.draw(
        hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)),
        f"{label}: always allowed key",
    )
    np.put_along_axis(mask, keep[..., None], True, axis=-1)
    return mask


def _as_passed(mask: np.ndarray) -> str:
    """The mask a clause passed, for its failure message, where the draw shown below it was
    changed first (True = may attend, as 1)."""
    if mask.size > 32:
        return f" (mask as passed: shape {mask.shape}, {int(mask.sum())} allowed)"
    return f" (mask as passed, 1 = may attend: {mask.astype(int).tolist()})"


def _mha_params(ck: Check, d_model: int, *, bias: bool = True) -> dict[str, np.ndarray]:
    """W_q, W_k, W_v, W_o (d_model, d_model) and their biases, entries ~ N(0, 1/d_model)."""
    seed = ck.draw(st.integers(0, 2**32 - 1), "parameter seed")
    rng = np.random.default_rng(seed)
    params = {}
    for name in ("q", "k", "v", "o"):
        params[f"W_{name}"] = ck.input(rng.standard_normal((d_model, d_model)) / math.sqrt(d_model))
        if bias:
            params[f"b_{name}"] = ck.input(0.1 * rng.standard_normal(d_model))
    return params


def _mha_dims(ck: Check, *, min_heads: int = 1, min_d_head: int = 1) -> tuple[int, int]:
    n_heads = ck.draw(st.integers(min_heads, 3), "n_heads")
    d_head = ck.draw(st.integers(min_d_head, 3), "d_head")
    return n_heads, d_head


# ---------------------------------------------------------------------------------------------
# The documents' equations, written out here (not taken from the oracle)
# ---------------------------------------------------------------------------------------------


def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    """softmax over the last axis: exp(s_j) / sum_l exp(s_l) (max subtracted; -inf -> weight 0)."""
    top = np.max(scores, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(scores - top)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _attention_weights(q: np.ndarray, k: np.ndarray, scale: float) -> np.ndarray:
    """softmax(q k^T / scale)  (..., n_q, n_k)."""
    return _softmax_rows(q @ np.swapaxes(k, -1, -2) / scale)


def _split_heads(y: np.ndarray, n_heads: int) -> np.ndarray:
    """(..., T, d_model) -> (..., n_heads, T, d_head); head h: features h*d_head:(h+1)*d_head."""
    *lead, T, d_model = y.shape
    return np.swapaxes(y.reshape(*lead, T, n_heads, d_model // n_heads), -2, -3)


def _project(x: np.ndarray, params: dict[str, np.ndarray], name: str) -> np.ndarray:
    """x W^T + b with W (out, in) as in PARAMETERS.md; an absent bias is no bias."""
    y = x @ params[f"W_{name}"].T
    bias = params.get(f"b_{name}")
    return y if bias is None else y + bias


def _head_slice(h: int, d_head: int) -> slice:
    return slice(h * d_head, (h + 1) * d_head)


# ---------------------------------------------------------------------------------------------
# Single-head attention: weights, scaling, variance
# ---------------------------------------------------------------------------------------------


@clause(
    "ATT-ROWS-SUM",
    "The attention weights of each query MUST be non-negative and sum to one over the keys.",
    source=_SINGLE_HEAD,
    needs=(SDPA,),
    topic=TOPIC,
)
def att_rows_sum(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck)
    _, weights = impl.scaled_dot_product_attention(q, k, v)  # (..., n_q, n_k)
    # sum_j softmax(s_i)_j = 1 for every query i: each query's scores become a distribution
    _on_the_simplex(ck, weights)


@clause(
    "ATT-SCALE",
    "Attention weights MUST equal softmax(Q K^T / sqrt(d_k)) with d_k the query/key dimension of a "
    "head, not d_k, sqrt(d_model) or 1.",
    source=_QKV,
    needs=(SDPA_OR_MHA,),
    topic=TOPIC,
)
def att_scale(impl: Any, ck: Check) -> None:
    if ck.offers(SDPA):
        # A pinned case where the candidate scales give clearly different weights: d_k = 4, scores
        # 0, 4.  sqrt(d_k) = 2 -> softmax(0, 2) = (0.119, 0.881); d_k = 4 -> (0.269, 0.731);
        #   1 -> (0.018, 0.982). Checked before anything is drawn, so that a failure here shows no
        #   drawn input that played no part in it.
        q0 = ck.input(np.ones((1, 4)))  # (1, d_k)
        k0 = ck.input(np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))  # (2, d_k)
        _, w0 = impl.scaled_dot_product_attention(q0, k0, k0)
        ck.close(
            w0,
            _attention_weights(q0, k0, math.sqrt(4)),
            output="probability",
            what="weights for q = [1, 1, 1, 1], k = [[0, 0, 0, 0], [1, 1, 1, 1]] (scores 0, 4; d_k = 4)",
        )
    # Drawn single-head inputs (d_k >= 2 so that sqrt(d_k), d_k and 1 differ).
    q, k, v = _qkv(ck, min_d_k=2)
    if ck.offers(SDPA):
        d_k = q.shape[-1]
        _, weights = impl.scaled_dot_product_attention(q, k, v)
        # weights = softmax(q k^T / sqrt(d_k))
        ck.close(
            weights,
            _attention_weights(q, k, math.sqrt(d_k)),
            output="probability",
            what="softmax(q k^T / sqrt(d_k))",
        )

    # Multi-head: each head scales by sqrt(d_head), not sqrt(d_model) (>= 2 heads: they differ).
    n_heads, d_head = _mha_dims(ck, min_heads=2, min_d_head=2)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model)
    x = _array(ck, (*q.shape[:-2], q.shape[-2], d_model), "x")
    if not ck.offers(MHA):
        return
    _, mha_weights = impl.multi_head_attention(params, x, x, n_heads)  # (..., nh, T, T)
    q_h = _split_heads(_project(x, params, "q"), n_heads)  # (..., nh, T, dh)
    k_h = _split_heads(_project(x, params, "k"), n_heads)  # (..., nh, T, dh)
    ck.close(
        mha_weights,
        _attention_weights(q_h, k_h, math.sqrt(d_head)),
        output="probability",
        what="head weights softmax(Q_h K_h^T / sqrt(d_head))",
    )


def _nonfinite(arrays: dict[str, np.ndarray]) -> str:
    """Where the non-finite values are, for a failure message: count and first index per array."""
    found = []
    for name, a in arrays.items():
        bad = ~np.isfinite(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            found.append(f"{int(bad.sum())} non-finite in {name}, first {name}{list(first)} = {float(a[first])}")
    return "; ".join(found) or "all finite"


def _on_the_simplex(ck: Check, weights: np.ndarray, name: str = "weights") -> None:
    """Each row of ``weights`` is a probability distribution: non-negative, summing to one."""
    ck.that(bool(np.all(weights >= 0)), what=f"{name} >= 0", observed=float(np.min(weights)), expected=">= 0")
    ck.close(
        weights.sum(axis=-1), np.ones(weights.shape[:-1]), output="probability", what=f"{name}.sum(-1)"
    )


def _scores_from_weights(weights: np.ndarray) -> np.ndarray:
    """Recover the scaled scores s_j - s_0 = log w_j - log w_0 (softmax: exp(s) over one sum)."""
    return np.log(weights[..., 1:]) - np.log(weights[..., :1])


@clause(
    "ATT-VARIANCE",
    "For queries and keys with independent zero-mean unit-variance entries, q.k MUST have variance "
    "d_k and the scores the attention applies softmax to MUST have variance 1, since Var(cX) = c^2 "
    "Var(X) with c = 1/sqrt(d_k).",
    source=_QKV,
    needs=(SDPA,),
    topic=TOPIC,
    hypothesis=False,
    note="Statistical clause with fixed seeds and a 6-sigma bound on the sample variance.",
)
def att_variance(impl: Any, ck: Check) -> None:
    # Each batch item holds one query and two keys, the first key zero: its score is 0, so the
    # implementation's scaled score of the second key is recovered exactly as log(w_1 / w_0).
    #
    # Statistical bound. X = q.k with q, k ~ N(0, I_d): E X = 0, Var X = d, E X^4 = 3 d^2 + 6 d,
    # so for Y = X / sqrt(d): Var Y = 1 and the fourth moment mu_4 = 3 + 6/d. The sample variance
    # S^2 of n independent draws has Var(S^2) = (mu_4 - (n-3)/(n-1)) / n <= (2 + 6/d) / n. With
    # n = 4000 and d >= 4 the standard deviation of S^2 is at most sqrt(3.5 / 4000) = 0.0296; we
    # allow 6 standard deviations (two-sided Gaussian tail 2e-9). The seeds are fixed, so the
    # result never changes from run to run. Wrong scales land far outside: 1/d_k gives
    # Var = 1/d_k <= 0.25, no scale gives Var = d_k >= 4.
    n = 4000
    for d_k, seed in ((4, 4), (16, 16), (64, 64)):
        rng = np.random.default_rng(2017 + seed)
        q = ck.input(rng.standard_normal((n, 1, d_k)))  # (n, 1, d_k)
        k = np.zeros((n, 2, d_k))
        k[:, 1, :] = rng.standard_normal((n, d_k))
        k = ck.input(k)  # (n, 2, d_k): key 0 is the zero vector
        v = ck.input(np.zeros((n, 2, 1)))
        _, weights = impl.scaled_dot_product_attention(q, k, v)  # (n, 1, 2)
        score = _scores_from_weights(weights)[:, 0, 0]  # (n,) the implementation's scaled q.k
        raw = np.einsum("nd,nd->n", q[:, 0, :], k[:, 1, :])  # (n,) the unscaled q.k

        bound = 6 * math.sqrt((2 + 6 / d_k) / n)
        var_raw = float(np.var(raw, ddof=1))
        var_score = float(np.var(score, ddof=1))
        ck.note(f"Var(q.k), d_k={d_k}", var_raw)
        ck.note(f"Var(score), d_k={d_k}", var_score)
        # Var(q.k) = d_k: the drawn inputs are what the clause says they are.
        ck.that(
            abs(var_raw / d_k - 1) <= bound,
            what=f"Var(q.k) / d_k, d_k={d_k}",
            observed=var_raw / d_k,
            expected=f"1 +- {bound:.3g}",
        )
        # Var(q.k / sqrt(d_k)) = 1 on the implementation's own scores.
        ck.that(
            abs(var_score - 1) <= bound,
            what=f"Var(softmax input), d_k={d_k}",
            observed=var_score,
            expected=f"1 +- {bound:.3g} (scale 1/d_k gives {1 / d_k:.3g}, no scale {d_k})",
        )
        # Var(cX) = c^2 Var(X): the scores are c q.k for one constant c, fitted by least squares.
        c = float(score @ raw / (raw @ raw))
        ck.close(score, c * raw, output="attention", what=f"scores = c q.k, d_k={d_k}")
        ck.close(
            var_score,
            c**2 * var_raw,
            output="attention",
            what=f"Var(c q.k) = c^2 Var(q.k), d_k={d_k}",
        )
        ck.note(f"c * sqrt(d_k), d_k={d_k}", c * math.sqrt(d_k))


@clause(
    "ATT-WORKED-EXAMPLE",
    "For the lecture notes' 2-d example with raw scores 10 and 32, attention MUST use the scaled "
    "scores 10/sqrt(2) = 7.07 and 32/sqrt(2) = 22.63 and the softmax weights that follow from "
    "them.",
    source=_WORKED,
    needs=(SDPA,),
    topic=TOPIC,
    errata=WORKED_EXAMPLE_ERRATA,
    hypothesis=False,
)
def att_worked_example(impl: Any, ck: Check) -> None:
    # The notes give only the scores S_21 = 10, S_22 = 32 (their embeddings are "hypothetical");
    # q_2 = (1, 3), k_1 = (1, 3), k_2 = (5, 9) reproduce them: 1+9 = 10 and 5+27 = 32.
    q = ck.input(np.array([[1.0, 3.0]]))  # (1, d_k=2)
    k = ck.input(np.array([[1.0, 3.0], [5.0, 9.0]]))  # (2, 2)
    v = ck.input(np.array([[4.0, 1.0], [2.0, 1.0]]))  # (2, 2) any values
    out, weights = impl.scaled_dot_product_attention(q, k, v)
    # The scaled scores, to two decimals: 7.07 and 22.63 (the notes print 7.09 and 22.69).
    s_21, s_22 = 7.07, 22.63
    # log(w_22 / w_21) = s'_22 - s'_21 = 22 / sqrt(2) = 15.556; with the printed values 15.60.
    ck.close(
        _scores_from_weights(weights)[0, 0],
        22 / math.sqrt(2),
        output="attention",
        what="log(w_22 / w_21)",
    )
    # w_21 = 1 / (1 + e^(22/sqrt 2)) = 1.76e-7, w_22 = 1 - w_21 (not the printed 0.2 / 0.8).
    w_21 = 1.0 / (1.0 + math.exp(22 / math.sqrt(2)))
    # Two decimals of log(w_22 / w_21) are only determined by weights the format resolves well
    # enough: 15.5563 is 0.0013 from the rounding boundary 15.555, and rounding w_21 and w_22 moves
    # the log by up to half their relative spacings. float64/float32 resolve it (2^-24 relative);
    # bfloat16 (2^-8) and float16, where 1.76e-7 is subnormal (spacing 6e-8, a third of w_21), do
    # not: there the exact comparison would judge the format, and only the ck.close above applies.
    exact = 22 / math.sqrt(2)
    margin = min(abs(exact - (round(exact, 2) - 0.005)), abs(round(exact, 2) + 0.005 - exact))
    log_rounding = 0.5 * (precision.spacing(impl, w_21) / w_21 + precision.spacing(impl, 1.0 - w_21))
    if 4 * log_rounding < margin:  # a few roundings of each weight, still inside the margin
        ck.that(
            round(float(_scores_from_weights(weights)[0, 0]), 2) == round(s_22 - s_21, 2),
            what="s'_22 - s'_21 to two decimals",
            observed=float(_scores_from_weights(weights)[0, 0]),
            expected=f"{s_22 - s_21:.2f}",
        )
    ck.close(weights[0], np.array([w_21, 1.0 - w_21]), output="probability", what="(w_21, w_22)")
    ck.close(
        out[0], w_21 * v[0] + (1 - w_21) * v[1], output="attention", what="w_21 v_1 + w_22 v_2"
    )


# ---------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------


@clause(
    "ATT-MASK-ZERO",
    "Masked attention weights MUST be exactly zero and each query's remaining weights MUST still "
    "sum to one, in every head of multi-head attention under that head's own mask.",
    source=_SINGLE_HEAD,
    needs=(SDPA_OR_MHA,),
    topic=TOPIC,
)
def att_mask_zero(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck)
    mask = _mask(ck, q.shape[:-1] + (k.shape[-2],), "mask")  # (..., n_q, n_k)
    if ck.offers(SDPA):
        _, weights = impl.scaled_dot_product_attention(q, k, v, mask)
        ck.equal(np.shape(weights), mask.shape, what="scaled_dot_product_attention weights.shape")
        _assert_masked_rows(ck, weights, mask, "weights")
    if ck.offers(MHA):
        # A mask per head (..., n_heads, n_q, n_k), different in every head, or one shared by all
        # (..., 1, n_q, n_k). Checked against the mask itself, not against the oracle: a layer that
        # applies the first head's mask to every head is caught even where the oracle does so too.
        batch, n_q, n_k = q.shape[:-2], q.shape[-2], k.shape[-2]
        n_heads, d_head = _mha_dims(ck, min_heads=2)
        params = _mha_params(ck, n_heads * d_head, bias=ck.draw(st.booleans(), "biases"))
        x_q = _array(ck, (*batch, n_q, n_heads * d_head), "x_q")
        x_kv = _array(ck, (*batch, n_k, n_heads * d_head), "x_kv")
        if ck.draw(st.booleans(), "one mask per head"):
            head_mask = _mask(ck, (*batch, n_heads, n_q, n_k), "mask per head")
        else:
            head_mask = mask[..., None, :, :]
        _, weights = impl.multi_head_attention(params, x_q, x_kv, n_heads, mask=head_mask)
        # weights (..., n_heads, n_q, n_k), one set per head (not averaged over the heads, as
        # torch.nn.MultiheadAttention returns them by default); the mask broadcasts over the heads
        ck.equal(np.shape(weights), (*batch, n_heads, n_q, n_k), what="multi_head_attention weights.shape")
        _assert_masked_rows(ck, weights, np.broadcast_to(head_mask, weights.shape), "MHA weights")


def _assert_masked_rows(ck: Check, weights: np.ndarray, mask: np.ndarray, name: str) -> None:
    # softmax(-inf) = 0 exactly (lecture notes, "Finding the answer")
    ck.equal(weights[~mask], np.zeros(int((~mask).sum())), what=f"{name}[~mask]")
    _on_the_simplex(ck, weights, name)


def _pinned_causal_mask(n_queries: int, n_keys: int) -> np.ndarray:
    """Query i sits at position n_keys - n_queries + i and may see keys j <= that position."""
    i, j = np.indices((n_queries, n_keys))
    return j <= n_keys - n_queries + i


@clause(
    "ATT-CAUSAL",
    "With the causal mask, the attention output at position i MUST NOT change when the inputs at "
    "positions after i change, whatever their values; each position MUST attend to itself and every "
    "earlier position; and queries at the last positions MUST see the same keys as in the full pass.",
    source=_RECAP_MASKED,
    needs=(f"{SDPA} | causal_mask",),
    topic=TOPIC,
    note="An attention without a causal_mask of its own is given the pinned one (bottom-right "
    "aligned); a causal_mask without attention is held to its closed form alone. A causal_mask "
    "MUST return a boolean array (PARAMETERS.md): a float 0/1 triangle (jnp.tri) is the wrong dtype.",
)
def att_causal(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck, min_n_q=2, same_length=True)
    T = q.shape[-2]
    has_mask, has_attention = ck.offers("causal_mask"), ck.offers(SDPA)
    alignment = getattr(getattr(ck.oracle, "conventions", None), "causal_alignment", "bottom_right")
    # Without a causal_mask of its own the attention gets the pinned one (bottom-right aligned,
    # PARAMETERS.md), whatever alignment the implementation declares for a mask it does not have.
    causal_mask = impl.causal_mask if has_mask else _pinned_causal_mask
    if has_attention:
        mask = causal_mask(T, T)  # (T, T)
        out, weights = impl.scaled_dot_product_attention(q, k, v, mask)

        # Replace everything after position p by new values from a much wider range.
        p = ck.draw(st.integers(0, T - 2), "last unchanged position")
        later = slice(p + 1, None)
        q2, k2, v2 = q.copy(), k.copy(), v.copy()
        # Only rows <= p are compared: there a new key meets an unchanged query (|q| <= 2) in d_k
        # products, and a new value is multiplied by a zero weight. The new queries' own rows (new
        # q against new k) are not compared; at float16 they may overflow without affecting rows
        # <= p.
        d_k = q.shape[-1]
        q2[..., later, :] = _array(ck, q[..., later, :].shape, "new later q", _wide(impl, d_k))
        k2[..., later, :] = _array(
            ck, k[..., later, :].shape, "new later k", _wide(impl, d_k, partner=2.0)
        )
        v2[..., later, :] = _array(
            ck, v[..., later, :].shape, "new later v", _wide(impl, 1, partner=1.0)
        )
        out2, _ = impl.scaled_dot_product_attention(q2, k2, v2, mask)
        ck.close(
            out2[..., : p + 1, :],
            out[..., : p + 1, :],
            output="attention",
            what="out[..., :p+1] after changing inputs > p",
        )
        # No weight on future keys.
        future = np.triu(np.ones((T, T), dtype=bool), k=1)
        ck.equal(
            weights[..., future], np.zeros(weights[..., future].shape), what="weights[i, j > i]"
        )

    if has_mask:
        # The mask itself, by its closed form: query i sits at position n_k - n_q + i (bottom-right
        # alignment, PARAMETERS.md) and may attend to keys j <= that position, its own included. A
        # mask built with j < i (off by one) hides each token from itself yet passes every check
        # of the attention. More queries than keys too: the first n_q - n_k queries sit before
        # every key and see none (a mask that clamps the offset at 0 shows them the first key).
        # An implementation that declared top-left alignment (query i may see keys j <= i) is held to
        # that one, and has no cached step to check below.
        n_k = ck.draw(st.integers(1, 8), "n_keys of causal_mask")
        n_q = ck.draw(st.integers(1, n_k + 3), "n_queries of causal_mask")
        declared = (_pinned_causal_mask(n_q, n_k) if alignment == "bottom_right"
                    else np.asarray(ck.oracle.causal_mask(n_q, n_k)))
        returned = impl.causal_mask(n_q, n_k)
        ck.equal(
            np.asarray(returned, dtype=bool),
            declared,
            what=f"causal_mask({n_q}, {n_k}) (True = may attend, {alignment.replace('_', '-')} aligned)",
        )
        must_be_boolean_mask(ck, returned, what=f"causal_mask({n_q}, {n_k}).dtype", meaning="True = may attend")

    if has_attention and alignment == "bottom_right":
        # Cached decoding: the last m queries against all T keys (causal_mask(m, T), bottom-right
        # aligned) give the last m rows of the full parallel pass.
        m = ck.draw(st.integers(1, T), "n_queries of the cached step")
        out_last, _ = impl.scaled_dot_product_attention(
            q[..., T - m :, :], k, v, causal_mask(m, T)
        )
        ck.close(
            out_last,
            out[..., T - m :, :],
            output="attention",
            what="attention(q[-m:], k, v, causal_mask(m, T))",
        )


@clause(
    "ATT-MASK-RENORM",
    "Setting masked scores to -inf before the softmax MUST equal the unmasked softmax renormalised "
    "over the allowed keys, and MUST equal attention over the allowed keys alone.",
    source=_CH6,
    needs=(SDPA,),
    topic=TOPIC,
)
def att_mask_renorm(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck)
    mask = _mask(ck, q.shape[:-1] + (k.shape[-2],), "mask")  # (..., n_q, n_k)
    _, w_masked = impl.scaled_dot_product_attention(q, k, v, mask)
    _, w_full = impl.scaled_dot_product_attention(q, k, v)
    # w_masked_ij = w_ij [mask_ij] / sum_l w_il [mask_il]
    kept = np.where(mask, w_full, 0.0)
    ck.close(
        w_masked,
        kept / kept.sum(axis=-1, keepdims=True),
        output="probability",
        what="renormalised unmasked weights",
    )

    # A mask shared by every query is the same as dropping the masked keys.
    keep = _mask(ck, (k.shape[-2],), "keys kept")  # (n_k,)
    out_mask, w_mask = impl.scaled_dot_product_attention(q, k, v, keep[None, :])
    out_drop, w_drop = impl.scaled_dot_product_attention(q, k[..., keep, :], v[..., keep, :])
    ck.close(
        out_mask, out_drop, output="attention", what="attention with keys masked vs keys dropped"
    )
    ck.close(w_mask[..., keep], w_drop, output="probability", what="weights of kept keys")


@clause(
    "ATT-PADDING",
    "The attention outputs of real tokens MUST NOT depend on the contents of padded positions when "
    "the padding mask is applied.",
    source=_INPUT_EMB,
    needs=(SDPA_OR_MHA,),
    uses=("padding_mask",),
    topic=TOPIC,
    note="An attention without a padding_mask of its own is given the oracle's; an implementation's "
    "own padding_mask MUST return a boolean (..., 1, T) array (PARAMETERS.md).",
)
def att_padding(impl: Any, ck: Check) -> None:
    batch = ck.draw(st.integers(1, 3), "batch")
    T = ck.draw(st.integers(2, 5), "T")
    # A pad id other than 0 first (GPT-2's tokenizers pad with another id): a mask hard-wired to
    # ids != 0 masks real tokens and lets the pads through.
    pad_id = ck.draw(st.sampled_from([1, 0, 7]), "pad id")
    lengths = ck.draw(hnp.arrays(np.int64, (batch,), elements=st.integers(1, T)), "real lengths")
    ids = ck.draw(hnp.arrays(np.int64, (batch, T), elements=st.integers(0, 9)), "token ids")
    ids = np.where(ids >= pad_id, ids + 1, ids)  # real tokens: any id but pad_id
    real = np.arange(T)[None, :] < lengths[:, None]  # (B, T)
    ids = ck.show("token ids as passed (pads in)", np.where(real, ids, pad_id))
    padding_mask = impl.padding_mask if ck.offers("padding_mask") else ck.oracle.padding_mask
    mask = padding_mask(ids, pad_id)  # (B, 1, T)
    # the query axis PARAMETERS.md pins: a (B, T) mask (torch's key_padding_mask) broadcast against
    # (B, T, T) scores would line the batch up with the queries
    ck.equal(np.shape(mask), (batch, 1, T), what=f"padding_mask(ids of shape {ids.shape}, pad_id).shape")
    if ck.offers("padding_mask"):
        must_be_boolean_mask(ck, mask, what=f"padding_mask(ids of shape {ids.shape}, pad_id).dtype",
                             meaning="True = real token")

    n_heads, d_head = _mha_dims(ck)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model)
    x = _array(ck, (batch, T, d_model), "x")
    # padded rows go through the projections (gain: their largest absolute row sum) and then into
    # scores of d_model (SDPA on x) or d_head (MHA) products
    gain = max(float(np.abs(params[f"W_{name}"]).sum(axis=1).max()) for name in "qkvo")
    wide = _wide(impl, d_model, gain=gain)
    x2 = np.where(real[..., None], x, _array(ck, (batch, T, d_model), "new padded contents", wide))

    if ck.offers(SDPA):
        out, w = impl.scaled_dot_product_attention(x, x, x, mask)
        out2, _ = impl.scaled_dot_product_attention(x2, x2, x2, mask)
        ck.close(
            out2[real],
            out[real],
            output="attention",
            what="sdpa output of real tokens after changing pads",
        )
        padded_keys = np.broadcast_to(~real[:, None, :], w.shape)  # (B, T, T)
        ck.equal(w[padded_keys], np.zeros(int(padded_keys.sum())), what="weights on padded keys")

    if not ck.offers(MHA):
        return
    mha_mask = mask[:, None]  # (B, 1, 1, T): broadcasts over heads and queries
    mout, _ = impl.multi_head_attention(params, x, x, n_heads, mha_mask)
    mout2, _ = impl.multi_head_attention(params, x2, x2, n_heads, mha_mask)
    ck.close(
        mout2[real],
        mout[real],
        output="attention",
        what="MHA output of real tokens after changing pads",
    )


@clause(
    "ATT-FULLY-MASKED",
    "A query with no allowed key MUST get all-zero attention weights and a finite (zero) output, "
    "without disturbing the other queries.",
    source=_FINDING,
    needs=(SDPA,),
    topic=TOPIC,
)
def att_fully_masked(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck)
    mask = _mask(ck, q.shape[:-1] + (k.shape[-2],), "mask")
    blocked = ck.draw(hnp.arrays(np.bool_, q.shape[:-1]), "fully masked queries")  # (..., n_q)
    mask = mask & ~blocked[..., None]
    passed = _as_passed(mask)  # the drawn mask above is shown before its blocked rows were cleared
    out, weights = impl.scaled_dot_product_attention(q, k, v, mask)
    ck.that(
        bool(np.all(np.isfinite(out))),
        what=f"isfinite(output){passed}",
        observed=_nonfinite({"output": out}),
        expected="finite",
    )
    # softmax(-inf, ..., -inf) -> 0 weights, so the weighted sum of values is 0.
    ck.equal(
        weights[blocked], np.zeros(weights[blocked].shape), what=f"weights of a fully masked query{passed}"
    )
    ck.equal(out[blocked], np.zeros(out[blocked].shape), what=f"output of a fully masked query{passed}")
    ck.close(
        weights[~blocked].sum(axis=-1),
        np.ones(int((~blocked).sum())),
        output="probability",
        what="weights.sum(-1) of the other queries",
    )


# ---------------------------------------------------------------------------------------------
# What attention computes
# ---------------------------------------------------------------------------------------------


def _into_box(out: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each output row moved into the box of the value rows (per feature, between their least and
    greatest); a NaN goes to the box's low corner, so a NaN output is out of the box, not matched."""
    lo, hi = v.min(axis=-2, keepdims=True), v.max(axis=-2, keepdims=True)
    return np.clip(np.where(np.isnan(out), lo, out), lo, hi)


@clause(
    "ATT-CONVEX",
    "Each attention output row MUST be a convex combination of the value rows, so parameter-free "
    "self-attention softmax(X X^T) X stays in the convex hull of the inputs.",
    source=_RECAP_MHA,
    needs=(SDPA,),
    topic=TOPIC,
    note="Also one query over 300 to 8192 keys, and one whose q . k lies past the format's largest "
    "number (its weights one-hot at the top key, so the output is that value row).",
)
def att_convex(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck)
    out, weights = impl.scaled_dot_product_attention(q, k, v)
    # AttentionVector_i = sum_j w_ij V_j with w_i on the simplex
    ck.close(out, weights @ v, output="attention", what="output = weights @ v")
    _on_the_simplex(ck, weights)
    ck.close(
        out,
        _into_box(out, v),
        output="attention",
        what="output inside the box of the value rows",
    )

    # And over a long context's keys (a sum accumulated in the format stalls below the values)
    q_long, k_long, v_long = _long_row(ck)
    out_long, _ = impl.scaled_dot_product_attention(q_long, k_long, v_long)
    ck.close(
        out_long,
        _into_box(out_long, v_long),
        output="attention",
        what=f"output inside the box of the value rows, one query over {len(k_long)} keys",
    )

    # And one whose q . k lies past the format's largest number: the weights are one-hot at the top
    # key in every format (its scaled score leads by thousands), so the output is that value row.
    q_hot, k_hot, v_hot = _hot_row(ck, impl)
    out_hot, _ = impl.scaled_dot_product_attention(q_hot, k_hot, v_hot)
    ck.close(
        out_hot,
        _attention_weights(q_hot, k_hot, math.sqrt(q_hot.shape[-1])) @ v_hot,
        output="attention",
        what=f"softmax(q k^T / sqrt(d_k)) v, max |q . k| {_hot_label(impl, q_hot, k_hot)}",
    )

    # softmax(X X^T) X: passing q = k = X d^(1/4) makes the scaled scores exactly X X^T.
    x = q
    d = x.shape[-1]
    xs = ck.input(x * d**0.25)
    hull_out, hull_w = impl.scaled_dot_product_attention(xs, xs, x)
    ck.close(
        hull_w,
        _attention_weights(xs, xs, math.sqrt(d)),
        output="probability",
        what="softmax(X X^T)",
    )
    ck.close(hull_out, hull_w @ x, output="attention", what="softmax(X X^T) X = weights @ X")
    ck.close(
        hull_out,
        _into_box(hull_out, x),
        output="attention",
        what="softmax(X X^T) X inside the box of X",
    )


@clause(
    "ATT-PERMUTE",
    "Self-attention without positional information MUST be permutation-equivariant: permuting the "
    "tokens permutes the outputs and the attention pattern the same way.",
    source=_SINGLE_HEAD,
    needs=(SDPA_OR_MHA,),
    topic=TOPIC,
)
def att_permute(impl: Any, ck: Check) -> None:
    batch = _batch(ck)
    T = ck.draw(st.integers(2, 5), "T")
    perm = np.array(ck.draw(st.permutations(range(T)), "permutation"))
    n_heads, d_head = _mha_dims(ck)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model)
    x = _array(ck, (*batch, T, d_model), "x")
    if ck.offers(MHA):
        out, w = impl.multi_head_attention(params, x, x, n_heads)  # (..., T, d), (..., nh, T, T)
        out_p, w_p = impl.multi_head_attention(params, x[..., perm, :], x[..., perm, :], n_heads)
        # MHA(P X) = P MHA(X),  W(P X) = P W(X) P^T
        ck.close(out_p, out[..., perm, :], output="attention", what="MHA(x[perm]) vs MHA(x)[perm]")
        ck.close(
            w_p,
            w[..., perm, :][..., perm],
            output="probability",
            what="weights(x[perm]) vs P weights P^T",
        )
    if not ck.offers(SDPA):
        return
    s_out, _ = impl.scaled_dot_product_attention(x, x, x)
    s_out_p, _ = impl.scaled_dot_product_attention(
        x[..., perm, :], x[..., perm, :], x[..., perm, :]
    )
    ck.close(
        s_out_p, s_out[..., perm, :], output="attention", what="sdpa(x[perm]) vs sdpa(x)[perm]"
    )


@clause(
    "ATT-CROSS",
    "Cross-attention with queries from a sequence of length m and keys and values from another of "
    "length n MUST give m output rows, apply no causal mask, and let every output depend on every "
    "source position.",
    source=_CROSS,
    needs=(SDPA_OR_MHA,),
    topic=TOPIC,
)
def att_cross(impl: Any, ck: Check) -> None:
    batch = _batch(ck)
    m = ck.draw(st.integers(1, 5), "m (target length)")
    n = ck.draw(st.integers(1, 5), "n (source length)")
    n_heads, d_head = _mha_dims(ck)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model)
    x_tgt = _array(ck, (*batch, m, d_model), "target x")
    x_src = _array(ck, (*batch, n, d_model), "source x")
    if ck.offers(MHA):
        out, w = impl.multi_head_attention(params, x_tgt, x_src, n_heads)
        ck.equal(out.shape, (*batch, m, d_model), what="output shape")
        ck.equal(w.shape, (*batch, n_heads, m, n), what="weights shape")
        # No mask: every query gives every source position a positive weight (softmax of finite
        # scores), wherever the format can hold that weight: float16 has no number near a head's
        # exact 3e-10, so an honest float16 attention writes 0 there.
        exact = _attention_weights(
            _split_heads(_project(x_tgt, params, "q"), n_heads),
            _split_heads(_project(x_src, params, "k"), n_heads),
            math.sqrt(d_head),
        )  # (..., nh, m, n), float64
        _positive_where_representable(ck, impl, w, exact, "cross-attention weights")

    # Every output row depends on every source position: change the value of source position j by
    # delta and the output row i moves by exactly w_ij delta (sdpa is linear in v).
    j = ck.draw(st.integers(0, n - 1), "changed source position")
    d_v = ck.draw(st.integers(1, 3), "d_v")
    q = _array(ck, (*batch, m, d_model), "q")
    k = x_src
    v = _array(ck, (*batch, n, d_v), "v")
    delta = ck.input(np.ones(d_v))
    v2 = v.copy()
    v2[..., j, :] += delta
    v2 = ck.input(v2)
    if not ck.offers(SDPA):
        return
    out_v, w_v = impl.scaled_dot_product_attention(q, k, v)
    # the weights are read by position below: a wrong shape is the implementation's failure
    ck.equal(np.shape(w_v), (*batch, m, n), what="scaled_dot_product_attention(q, k, v) weights.shape")
    out_v2, _ = impl.scaled_dot_product_attention(q, k, v2)
    ck.close(
        out_v2 - out_v,
        w_v[..., :, j, None] * (v2[..., j, :] - v[..., j, :])[..., None, :],
        output="attention",
        what="change of every output row = w_ij * delta",
    )
    exact = _attention_weights(q, k, math.sqrt(q.shape[-1]))
    _positive_where_representable(ck, impl, w_v[..., :, j], exact[..., :, j], f"w_ij (j = {j}) for every target i")


def _positive_where_representable(ck: Check, impl: Any, w: np.ndarray, exact: np.ndarray, what: str) -> None:
    """Every weight > 0 where the exact (float64) weight is a normal number of the format.

    Below the format's smallest normal number a correct implementation may round a weight to 0
    (float16: 6.1e-5; its subnormals end at 6e-8, and exp(s - max) underflows on the way there).
    """
    w = np.asarray(w, dtype=np.float64)
    tiny = precision.smallest_normal(impl)
    held = exact >= tiny
    ck.that(
        bool(np.all(w[held] > 0)),
        what=f"{what} > 0" + ("" if held.all() else f" where the exact weight is at least {tiny:.3g}"),
        observed=f"{float(w[held].min())} (exact weight there {float(exact[held][np.argmin(w[held])]):.3g})"
        if held.any()
        else "nothing to compare",
        expected=f"> 0 (the format's smallest normal number is {tiny:.3g})",
    )


# ---------------------------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------------------------


@clause(
    "MHA-CONCAT",
    "Multi-head attention MUST equal concat(head_1, ..., head_h) W_O, which is the sum over heads "
    "of head_i times its own slice of the output matrix.",
    source=_OUTPUT_MATRIX,
    needs=(MHA,),
    topic=TOPIC,
)
def mha_concat(impl: Any, ck: Check) -> None:
    batch = _batch(ck)
    n_heads, d_head = _mha_dims(ck, min_heads=2)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model)
    n_q = ck.draw(st.integers(1, 4), "n_q")
    n_k = ck.draw(st.integers(1, 4), "n_k")
    x_q = _array(ck, (*batch, n_q, d_model), "x_q")
    x_kv = _array(ck, (*batch, n_k, d_model), "x_kv")
    out, weights = impl.multi_head_attention(
        params, x_q, x_kv, n_heads
    )  # weights (..., nh, n_q, n_k)
    # one row of weights per head (nn.MultiheadAttention averages them unless told not to)
    ck.equal(np.shape(weights), (*batch, n_heads, n_q, n_k), what="multi_head_attention(...) weights.shape")

    # head_i = w_i (x_kv W_v[i]^T + b_v[i]) with W_v[i] the rows of head i;
    # out = sum_i head_i W_o[:, i]^T + b_o with W_o[:, i] the columns of head i
    v_h = _split_heads(_project(x_kv, params, "v"), n_heads)  # (..., nh, n_k, dh)
    heads = weights @ v_h  # (..., nh, n_q, dh)
    expected = params["b_o"] + sum(
        heads[..., h, :, :] @ params["W_o"][:, _head_slice(h, d_head)].T for h in range(n_heads)
    )
    ck.close(out, expected, output="attention", what="sum_i head_i W_o[:, head i]^T + b_o")

    # The same sum, made by the implementation: keep only head i's slice of W_o, add the pieces up.
    pieces = []
    for h in range(n_heads):
        value_up = np.zeros_like(params["W_o"])
        value_up[:, _head_slice(h, d_head)] = params["W_o"][:, _head_slice(h, d_head)]
        piece, _ = impl.multi_head_attention(dict(params, W_o=value_up), x_q, x_kv, n_heads)
        pieces.append(piece - params["b_o"])
    ck.close(
        out,
        params["b_o"] + sum(pieces),
        output="attention",
        what="MHA = b_o + sum of one-head-slice MHAs",
    )


@clause(
    "MHA-ONE-HEAD",
    "Multi-head attention with one head MUST be single-head scaled dot-product attention of the "
    "projected queries, keys and values, followed by the output matrix.",
    source=_MULTI_HEAD,
    needs=(MHA,),
    uses=(SDPA,),
    topic=TOPIC,
)
def mha_one_head(impl: Any, ck: Check) -> None:
    batch = _batch(ck)
    d_model = ck.draw(st.integers(1, 6), "d_model")
    params = _mha_params(ck, d_model, bias=ck.draw(st.booleans(), "biases"))
    n_q = ck.draw(st.integers(1, 4), "n_q")
    n_k = ck.draw(st.integers(1, 4), "n_k")
    x_q = _array(ck, (*batch, n_q, d_model), "x_q")
    x_kv = _array(ck, (*batch, n_k, d_model), "x_kv")
    out, weights = impl.multi_head_attention(params, x_q, x_kv, 1)
    ck.equal(np.shape(weights), (*batch, 1, n_q, n_k), what="multi_head_attention(..., n_heads=1) weights.shape")
    q, k, v = (ck.input(_project(x, params, n)) for x, n in ((x_q, "q"), (x_kv, "k"), (x_kv, "v")))
    if ck.offers(SDPA):
        # against the implementation's own single-head attention
        head, head_w = impl.scaled_dot_product_attention(q, k, v)
        ck.close(
            weights[..., 0, :, :],
            head_w,
            output="probability",
            what="MHA weights (h=1) vs sdpa weights",
        )
        ck.close(
            out,
            _project(head, params, "o"),
            output="attention",
            what="MHA(h=1) vs sdpa(...) W_o^T + b_o",
        )
    # And independently of sdpa: softmax(q k^T / sqrt(d_model)) v W_o^T + b_o
    ck.close(
        out,
        _project(_attention_weights(q, k, math.sqrt(d_model)) @ v, params, "o"),
        output="attention",
        what="softmax(q k^T / sqrt(d_model)) v W_o^T + b_o",
    )


@clause(
    "MHA-FULLY-MASKED",
    "In multi-head attention a query with no allowed key MUST get all-zero weights in every head "
    "and a finite output, the output matrix applied to a zero concatenation (its bias alone), "
    "without disturbing the other queries.",
    source=_MULTI_HEAD,  # each head masks as in 6b (-inf before the softmax), then concat and W_O
    needs=(MHA,),
    topic=TOPIC,
)
def mha_fully_masked(impl: Any, ck: Check) -> None:
    # ATT-FULLY-MASKED for one head carries over: every head's weights are zero, so the concat is
    # zero and W_O maps it to b_O. (torch.nn.MultiheadAttention gives NaN here: see verify/torch_nn.)
    batch = _batch(ck)
    n_heads, d_head = _mha_dims(ck)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model, bias=ck.draw(st.booleans(), "biases"))
    n_q = ck.draw(st.integers(2, 4), "n_q")
    n_k = ck.draw(st.integers(1, 4), "n_k")
    x_q = _array(ck, (*batch, n_q, d_model), "x_q")
    x_kv = _array(ck, (*batch, n_k, d_model), "x_kv")
    mask = _mask(ck, (*batch, 1, n_q, n_k), "mask")  # shared by the heads
    blocked_query = ck.draw(st.integers(0, n_q - 1), "fully masked query")
    mask[..., blocked_query, :] = False
    passed = _as_passed(mask)  # the drawn mask is shown before query blocked_query was cleared
    out, weights = impl.multi_head_attention(params, x_q, x_kv, n_heads, mask)
    ck.that(
        bool(np.all(np.isfinite(out))) and bool(np.all(np.isfinite(weights))),
        what=f"isfinite(output) and isfinite(weights){passed}",
        observed=_nonfinite({"output": out, "weights": weights}) + f" (query {blocked_query} has no allowed key)",
        expected="finite everywhere",
    )
    blocked_weights = weights[..., blocked_query, :]  # (..., nh, n_k)
    ck.equal(blocked_weights, np.zeros(blocked_weights.shape),
             what=f"every head's weights of query {blocked_query}{passed}")
    b_o = params.get("b_o", np.zeros(d_model))
    ck.close(
        out[..., blocked_query, :],
        np.broadcast_to(b_o, out[..., blocked_query, :].shape),
        output="attention",
        what=f"output of query {blocked_query}: 0 W_o^T + b_o",
    )
    others = np.arange(n_q) != blocked_query
    ck.close(
        weights[..., others, :].sum(axis=-1),
        np.ones(weights[..., others, :].shape[:-1]),
        output="probability",
        what="weights.sum(-1) of the other queries in every head",
    )


@clause(
    "MHA-LOWRANK",
    "Each head's value map MUST be the product of a value-up (d_model x d_head) and a value-down "
    "(d_head x d_model) matrix, so its contribution has rank at most d_head and lies in the span "
    "of its value-up matrix, with as many parameters (2 d_head d_model) as its query and key maps "
    "together.",
    source=_SINGLE_HEAD,
    needs=(MHA,),
    topic=TOPIC,
)
def mha_lowrank(impl: Any, ck: Check) -> None:
    n_heads, d_head = _mha_dims(ck, min_heads=2)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model, bias=False)
    h = ck.draw(st.integers(0, n_heads - 1), "head")
    rows = _head_slice(h, d_head)
    # Keep only head h's value-down rows: the other heads then contribute nothing.
    value_down = np.zeros_like(params["W_v"])
    value_down[rows] = params["W_v"][rows]  # (d_head rows kept of (d_model, d_model))
    only_h = dict(params, W_v=value_down)
    T = ck.draw(st.integers(d_model + 1, d_model + 3), "T (more tokens than d_model)")
    x = _array(ck, (T, d_model), "x")
    out, _ = impl.multi_head_attention(only_h, x, x, n_heads)  # (T, d_model)

    value_up = params["W_o"][:, rows]  # (d_model, d_head)
    # The contribution lies in the column space of value-up: projecting onto it changes nothing.
    basis, _ = np.linalg.qr(value_up)  # (d_model, d_head) orthonormal
    ck.close(
        out,
        out @ basis @ basis.T,
        output="attention",
        what="head output vs its projection on span(value-up)",
    )
    # rank <= d_head  (recorded; implied by the projection check above)
    # (in float64: LAPACK has no float16, and an implementation may return NumPy float16)
    singular = np.linalg.svd(np.asarray(out, dtype=np.float64), compute_uv=False)
    ck.note("singular values", singular.round(6).tolist())
    # Parameter count (recorded, it is arithmetic on the layout): value-down (d_head x d_model) plus
    # value-up (d_model x d_head) = 2 d_head d_model = query rows + key rows of the head.
    ck.note("value map parameters", params["W_v"][rows].size + value_up.size)
    ck.note("query + key parameters", params["W_q"][rows].size + params["W_k"][rows].size)


# ---------------------------------------------------------------------------------------------
# Gradients and the differential check
# ---------------------------------------------------------------------------------------------


def _input_epsilon(ck: Check) -> float:
    """Machine epsilon of the implementation's dtype, read off how ck.input rounds 1 + 2^-p."""
    powers = np.arange(1, 64)
    rounded = ck.input(1.0 + 2.0**-powers)
    lost = powers[rounded == 1.0]
    return float(2.0 ** -(lost[0] - 1)) if lost.size else float(np.finfo(np.float64).eps)


@clause(
    "GRAD-ATTN",
    "The gradients of a scalar loss of the attention output with respect to Q, K and V, derived by "
    "the chain rule, MUST equal central finite differences of the implementation's forward pass.",
    source=Source(NEURAL_NETWORKS, "4. Calculus behind Backpropagation", VASWANI_2017),
    needs=(SDPA,),
    topic=TOPIC,
)
def grad_attn(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck)
    d_k = q.shape[-1]
    g = _array(ck, q.shape[:-1] + (v.shape[-1],), "dL/dO")  # L = sum(G * O)
    out, _ = impl.scaled_dot_product_attention(q, k, v)

    def backprop(m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """dL/dQ, dL/dK, dL/dV by hand, from the attention weights of ``m`` at (Q, K, V).

        S = Q K^T / sqrt(d_k), W = softmax(S), O = W V, L = sum(G O):
          dL/dV = W^T G
          dL/dW = G V^T
          dL/dS_ij = W_ij (dL/dW_ij - sum_l W_il dL/dW_il)      (softmax Jacobian diag(w) - w w^T)
          dL/dQ = dL/dS K / sqrt(d_k),   dL/dK = dL/dS^T Q / sqrt(d_k)
        """
        w = np.asarray(m.scaled_dot_product_attention(q, k, v)[1])
        dV = np.swapaxes(w, -1, -2) @ g
        dW = g @ np.swapaxes(v, -1, -2)
        dS = w * (dW - np.sum(w * dW, axis=-1, keepdims=True))
        return dS @ k / math.sqrt(d_k), np.swapaxes(dS, -1, -2) @ q / math.sqrt(d_k), dV

    # once per namespace (the implementation, torch_ref's baseline), for Q, K and V alike; each
    # entry keeps its namespace alive, so no other object takes its id
    hand: dict[int, tuple[Any, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def gradients(m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if id(m) not in hand:
            hand[id(m)] = (m, backprop(m))
        return hand[id(m)][1]

    def loss(m: Any, q_: np.ndarray, k_: np.ndarray, v_: np.ndarray) -> float:
        return float(np.sum(g * m.scaled_dot_product_attention(q_, k_, v_)[0]))

    # Directional derivatives along drawn directions D: (L(X + eps D) - L(X - eps D)) / (2 eps)
    # = <dL/dX, D> + O(eps^2). eps follows the implementation's precision: the cube root of its
    # machine epsilon balances rounding (eps_mach / eps) against truncation (eps^2).
    step = _input_epsilon(ck) ** (1 / 3)
    for idx, name in enumerate(("Q", "K", "V")):
        direction = ck.draw(
            hnp.arrays(np.float64, (q, k, v)[idx].shape, elements=st.sampled_from([-1.0, 1.0])),
            f"direction for {name}",
        )
        plus, minus = [q, k, v], [q, k, v]
        plus[idx] = ck.input(plus[idx] + step * direction)
        minus[idx] = ck.input(minus[idx] - step * direction)
        if precision.low_precision(impl):
            # At float16/bfloat16 the loss sums up to 20 products G O, each O carrying about one
            # rounding of the format (2^-11 .. 2^-8 relative): (L+ - L-) / (2 eps) is then off by
            # up to sum |G O| * eps_mach / eps ~ 0.2, beyond the "gradient" kind's 32 ulps, for a
            # correct implementation. So the finite difference is judged as the format allows it:
            # against the same difference of the float64 oracle (its truncation O(eps^2) cancels)
            # within k times what torch_ref's forward pass at the same precision gets wrong.
            def directional_difference(m: Any, plus: list = plus, minus: list = minus) -> float:
                def loss_of(q_: np.ndarray, k_: np.ndarray, v_: np.ndarray) -> float:
                    return float(np.sum(g * m.scaled_dot_product_attention(q_, k_, v_)[0]))

                return (loss_of(*plus) - loss_of(*minus)) / (2 * step)

            ck.close_to_oracle(directional_difference, output="gradient")
            continue
        # The rounded points are what the implementation saw: divide by their actual distance.
        # Below float64 the difference quotient carries the outputs' rounding, sum |G O| eps, over
        # 2 eps^(1/3): where G and O are large and the gradient small, more than any fixed number of
        # ulps of the gradient (float32: all-equal values, O = 2 everywhere, a true gradient of 0
        # and a quotient of 5.8e-4). It is judged by what the same two routes through torch_ref part
        # by on this input (tolerances, rule 4).
        ck.close_routes(
            lambda m, plus=plus, minus=minus: (loss(m, *plus) - loss(m, *minus)) / (2 * step),
            lambda m, plus=plus, minus=minus, idx=idx: float(
                np.sum(gradients(m)[idx] * (plus[idx] - minus[idx]))
            ) / (2 * step),
            output="gradient",
            what=f"<dL/d{name}, D> vs central finite difference",
        )
    ck.note("max |output|", float(np.max(np.abs(out))) if out.size else 0.0)


@clause(
    "ATT-ORACLE",
    "Scaled dot-product and multi-head attention MUST agree with the float64 oracle on the same "
    "inputs, parameters and mask.",
    source=_RECAP_MHA,
    needs=(SDPA_OR_MHA,),
    topic=TOPIC,
    note="Besides the small drawn inputs: one query over 300 to 8192 keys (a sum kept in the format "
    "stalls) and one whose q . k lies past the format's largest number while q . k / sqrt(d_k) "
    "does not (forming q k^T before dividing overflows).",
)
def att_oracle(impl: Any, ck: Check) -> None:
    q, k, v = _qkv(ck)
    mask = _mask(ck, q.shape[:-1] + (k.shape[-2],), "mask")
    if ck.offers(SDPA):
        ck.close_to_oracle(SDPA, q, k, v, mask, output="attention")
    batch = q.shape[:-2]
    n_heads, d_head = _mha_dims(ck)
    d_model = n_heads * d_head
    params = _mha_params(ck, d_model, bias=ck.draw(st.booleans(), "biases"))
    x_q = _array(ck, (*batch, q.shape[-2], d_model), "x_q")
    x_kv = _array(ck, (*batch, k.shape[-2], d_model), "x_kv")
    # One mask broadcast over the heads, or one per head (..., n_heads, n_q, n_k): an
    # implementation that takes the first head's mask for all passes every shared mask.
    if ck.draw(st.booleans(), "one mask per head"):
        head_mask = _mask(ck, (*batch, n_heads, q.shape[-2], k.shape[-2]), "mask per head")
    else:
        head_mask = mask[..., None, :, :]
    if ck.offers(MHA):
        ck.close_to_oracle(MHA, params, x_q, x_kv, n_heads, mask=head_mask, output="attention")
    # And one query over a long context's keys, drawn last (after the small inputs, which stay as
    # Hypothesis drew them before).
    if ck.offers(SDPA):
        q_long, k_long, v_long = _long_row(ck)
        ck.close_to_oracle(SDPA, q_long, k_long, v_long, output="attention",
                           what=f"{SDPA}(q, k, v), one query over {len(k_long)} keys")
    if ck.offers(MHA):
        _, _, x_long = _long_row(ck, d=d_model)  # (n, d_model), positive
        ck.close_to_oracle(MHA, params, x_long[:1], x_long, n_heads, output="attention",
                           what=f"{MHA}(params, x_q, x_kv, n_heads), one query over {len(x_long)} keys")
    # And a mask that differs from head to head, on every example: two heads, each allowed its own
    # key, so a layer that gives every head one head's mask gets the other head's output wrong.
    if ck.offers(MHA):
        d_two = 2 * d_head
        rng = np.random.default_rng(ck.draw(st.integers(0, 2**32 - 1), "two heads' seed"))
        x_two = ck.input(rng.uniform(-1.0, 1.0, (2, d_two)))  # 2 positions, queries and keys
        own_key = np.zeros((2, 2, 2), dtype=bool)  # (n_heads, n_q, n_k)
        own_key[0, :, 0] = own_key[1, :, 1] = True
        ck.close_to_oracle(MHA, _mha_params(ck, d_two), x_two, x_two, 2, mask=own_key, output="attention",
                           what=f"{MHA}(params, x, x, 2) with head 0 allowed key 0 only, head 1 key 1 only")
    # And one query whose q . k lies past the format's largest number (the scaled score does not)
    if ck.offers(SDPA):
        q_hot, k_hot, v_hot = _hot_row(ck, impl)
        ck.close_to_oracle(SDPA, q_hot, k_hot, v_hot, output="attention",
                           what=f"{SDPA}(q, k, v), max |q . k| {_hot_label(impl, q_hot, k_hot)}")
    if ck.offers(MHA):
        q_hot, k_hot, _ = _hot_row(ck, impl)
        hot_params = _hot_params(ck, q_hot.shape[-1])
        ck.close_to_oracle(MHA, hot_params, q_hot, k_hot, 1, output="attention",
                           what=f"{MHA}(params, x_q, x_kv, 1) with W_q = W_k = I, "
                                f"max |q . k| {_hot_label(impl, q_hot, k_hot)}")


# ---------------------------------------------------------------------------------------------
# Claims of the documents that cannot be checked on an attention function alone
# ---------------------------------------------------------------------------------------------

informative(
    "ATT-CONTEXT-MEANING",
    "Attention SHOULD move a token's embedding toward its meaning in context: in 'a fluffy blue "
    "creature', the keys of 'fluffy' and 'blue' align with the query of 'creature' and their "
    "values are added to its embedding.",
    source=_SINGLE_HEAD,
    topic=TOPIC,
    reason="A property of trained query, key and value matrices (GPT-3's); attention with any "
    "weights computes the same function, and nnspec ships no trained model to inspect.",
)

informative(
    "MHA-DIVERSE-HEADS",
    "Different heads SHOULD learn different relationships between tokens (GPT-3: 96 heads in each "
    "of 96 attention blocks).",
    source=_RECAP_MHA,
    topic=TOPIC,
    reason="What heads learn depends on training; the head count itself is a configuration "
    "(preset 'gpt3') checked by the GPT-3 size clauses.",
)

informative(
    "ATT-SCALE-STABILITY",
    "Dividing the scores by sqrt(d_k) SHOULD make training numerically more stable, since "
    "unscaled scores push the softmax toward one-hot outputs with vanishing gradients.",
    source=_SINGLE_HEAD,
    topic=TOPIC,
    reason="A statement about training dynamics; the checkable parts (the scale itself and the "
    "unit variance of the scaled scores) are ATT-SCALE and ATT-VARIANCE.",
)
