"""Clauses on sinusoidal positional encoding.

Sources: "Transformer lecture notes (handwritten)", sections "The sine function as a solution",
"Positional Encoding" (the formula and the worked d_model = 6 table) and "Interesting
Observations", summarising Vaswani et al. (2017), section 3.5; and "Deep learning recap to the
Transformer (video summaries)", section "Input embeddings" (the positional encoding is added to
the token embeddings before the first block). The notes motivate the design: a bounded, periodic
code, one vector per position, from which relative positions can be read.

Convention (PARAMETERS.md): ``PE[pos, 2i] = sin(pos / 10000^(2i/d_model))``,
``PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))``, interleaved; for odd ``d_model`` the last column
is a sine.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import hypothesis.strategies as st
import numpy as np

from . import precision
from .clause import (
    LECTURE_NOTES,
    RECAP,
    VASWANI_2017,
    Check,
    Source,
    as_declared,
    clause,
    in_layout,
    sinusoid_layout,
)

PE_SECTION = Source(LECTURE_NOTES, "Positional Encoding", paper=VASWANI_2017)


def _sizes(
    ck: Check, *, max_positions: int = 64, max_d: int = 32, min_d: int = 1
) -> tuple[int, int]:
    n = ck.draw(st.integers(1, max_positions), "n_positions")
    d = ck.draw(st.integers(min_d, max_d), "d_model")
    return n, d


def _angle_rates(d_model: int) -> np.ndarray:
    """omega_i = 1 / 10000^(2i/d_model), one per sin/cos pair (and the lone last sine)."""
    return np.array([10000.0 ** (-(2 * i) / d_model) for i in range((d_model + 1) // 2)])


def _formula(n_positions: int, d_model: int, *, first: int = 0) -> np.ndarray:
    """The notes' formula evaluated entry by entry with math.sin / math.cos, for positions
    ``first`` .. ``n_positions - 1``."""
    pe = np.empty((n_positions - first, d_model))  # (n_positions - first, d_model)
    for row, pos in enumerate(range(first, n_positions)):
        for col in range(d_model):
            i = col // 2
            angle = pos / 10000.0 ** (2 * i / d_model)
            # PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
            pe[row, col] = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    return pe


def _angles(positions: np.ndarray, d_model: int) -> np.ndarray:
    """pos * omega_i for each position and column (both columns of a pair share omega_i)."""
    rates = np.repeat(_angle_rates(d_model), 2)[:d_model]  # (d_model,)
    return np.asarray(positions, dtype=np.float64)[:, None] * rates  # (n, d_model)


# How far a correct table may be from the formula. The angle pos * omega_i, formed in floating
# point, is off by up to angle * eps relative to it, and sin and cos move by as much: the
# computation's condition number is the angle itself. The PyTorch tutorial's float32 table (angles
# in float32, then sin and cos) is correct code, so an angle may carry float32's rounding, or the
# implementation's own where that is finer. Not a narrower format's: bfloat16 holds no integer
# above 256 exactly and float16 none above 2048, so positions collide (Hugging Face transformers
# #25681 and #29285, rotary positions cast to bfloat16, cached and full decoding diverging).
_ANGLE_EPS = 2.0**-23  # float32


def _angle_condition(impl: Any, angles: np.ndarray) -> np.ndarray:
    """Each entry's condition number in units of the implementation's eps (at least 1)."""
    eps = precision.eps(impl)
    return np.maximum(1.0, np.abs(angles) * min(eps, _ANGLE_EPS) / eps)


# Table lengths just past the last integer each format holds exactly (2^8 + 2 for bfloat16,
# 2^11 + 2 for float16) and beyond, to a context of 8192: few enough that quick reaches each.
FAR_POSITIONS = (258, 2050, 8192, 300, 4097, 2500)
# ... of which the last rows are compared (the largest angles; math.sin entry by entry is slow)
FAR_ROWS = 64


@clause(
    "PE-FORMULA",
    "The positional encoding MUST be PE(pos, 2i) = sin(pos / 10000^(2i/d_model)) and "
    "PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)), sines and cosines interleaved.",
    source=PE_SECTION,
    needs=("positional_encoding",),
    topic="positional",
)
def pe_formula(impl: Any, ck: Check) -> None:
    n, d = _sizes(ck)
    far = ck.draw(st.sampled_from(FAR_POSITIONS), "n_positions (far)")
    # No comparison with the oracle: it evaluates this same formula, and its same-precision
    # baseline (torch_ref, angles in float64, one rounding) would reject float32 angles.
    for n_positions in (n, far):
        pe = np.asarray(impl.positional_encoding(n_positions, d))
        ck.equal(np.shape(pe), (n_positions, d), what=f"positional_encoding({n_positions}, d).shape")
        first = max(0, n_positions - FAR_ROWS)
        positions = np.arange(first, n_positions)
        ck.close(pe[first:], _formula(n_positions, d, first=first), output="default",
                 what=f"positional_encoding({n_positions}, d)[{first}:, col]",
                 condition=_angle_condition(impl, _angles(positions, d)))


# The notes' worked table, d_model = 6, positions 0 and 1, as printed (two decimals).
PRINTED_TABLE = {
    0: (0.0, 1.0, 0.0, 1.0, 0.0, 1.0),
    1: (0.84, 0.54, 0.04, 0.99, 0.00, 0.99),
}


@clause(
    "PE-TABLE",
    "For d_model = 6 the encodings of positions 0 and 1 MUST reproduce the notes' worked table: "
    "0, 1, 0, 1, 0, 1 and, truncated to two decimals, 0.84, 0.54, 0.04, 0.99, 0.00, 0.99.",
    source=PE_SECTION,
    needs=("positional_encoding",),
    topic="positional",
    hypothesis=False,
    errata=(
        "Transformer lecture notes (handwritten), Positional Encoding: the PE(1, 3) line prints "
        "the denominator 100000^(1/3); the formula (and the neighbouring PE(1, 2) line) gives "
        "10000^(1/3).",
        "The printed two-decimal values are truncations, not roundings: PE(1, 2) = 0.0464 prints "
        "as 0.04 and PE(1, 3) = 0.9989 prints as 0.99; the clause compares truncated values.",
    ),
)
def pe_table(impl: Any, ck: Check) -> None:
    pe = impl.positional_encoding(2, 6)
    ck.close(pe[0], np.array(PRINTED_TABLE[0]), output="default",
             what="positional_encoding(2, 6)[0]")
    # printed v means v <= PE < v + 0.01, i.e. floor(100 PE) = 100 v
    printed = np.array(PRINTED_TABLE[1])
    if not precision.low_precision(impl):
        hundredths = np.floor(np.asarray(pe[1]) * 100).astype(int)
        ck.equal(hundredths, np.round(printed * 100).astype(int),
                 what="floor(100 * positional_encoding(2, 6)[1])")
    else:
        # float16/bfloat16 store these values with a spacing of 2^-11 .. 2^-8 below 1: PE(1, 5) =
        # 0.9999977 is 1.0 in both, and bfloat16 rounds sin 1 = 0.8415 to 0.8398. Truncation is
        # then decided by the format, not the implementation; what stays meaningful is that each
        # value lies in the printed hundredth [v, v + 0.01), widened by one spacing of the format.
        slack = np.array([precision.spacing(impl, v + 0.01) for v in printed])
        lower, upper = printed - slack, printed + 0.01 + slack
        row = np.asarray(pe[1])
        ck.that(bool(np.all((lower <= row) & (row < upper))),
                what="positional_encoding(2, 6)[1] in the printed hundredths, +- one spacing",
                observed=row, expected=f"values in [{lower.round(4).tolist()}, {upper.round(4).tolist()})")
    ck.note("PE[1]", np.asarray(pe[1]).round(4).tolist())


@clause(
    "PE-BOUNDED",
    "Every positional-encoding value MUST lie in [-1, 1], and position 0 MUST be encoded as "
    "0, 1, 0, 1, ... (sin 0 and cos 0).",
    source=Source(LECTURE_NOTES, "The sine function as a solution", paper=VASWANI_2017),
    needs=("positional_encoding",),
    topic="positional",
)
def pe_bounded(impl: Any, ck: Check) -> None:
    n, d = _sizes(ck, max_positions=512)
    pe = impl.positional_encoding(n, d)
    ck.that(bool(np.all(np.abs(pe) <= 1)), what="|positional_encoding(n, d)| <= 1",
            observed=f"max |PE| = {np.max(np.abs(pe))}", expected="at most 1")
    row0 = np.array([0.0 if col % 2 == 0 else 1.0 for col in range(d)])
    ck.equal(np.asarray(pe[0]), row0, what="positional_encoding(n, d)[0]")


@clause(
    "PE-PAIR",
    "Each sine column 2i and its cosine column 2i+1 MUST share one frequency, so that "
    "PE(pos, 2i)^2 + PE(pos, 2i+1)^2 = 1 at every position.",
    source=PE_SECTION,
    needs=("positional_encoding",),
    topic="positional",
)
def pe_pair(impl: Any, ck: Check) -> None:
    n, d = _sizes(ck, min_d=2)
    pe = impl.positional_encoding(n, d)
    pairs = d // 2
    sin_part = pe[:, 0 : 2 * pairs : 2]  # (n, pairs)
    cos_part = pe[:, 1 : 2 * pairs : 2]  # (n, pairs)
    # sin^2(pos w_i) + cos^2(pos w_i) = 1
    ck.close(sin_part**2 + cos_part**2, np.ones((n, pairs)), output="default",
             what="PE[pos, 2i]^2 + PE[pos, 2i+1]^2")


def _rotation_from_row(row: np.ndarray, pairs: int) -> np.ndarray:
    """R_k, block diagonal, built from PE(k): blocks [[cos kw, sin kw], [-sin kw, cos kw]].

    With (s, c) = (sin pos w, cos pos w) and (S, C) = (sin k w, cos k w):
    sin((pos + k) w) = s C + c S and cos((pos + k) w) = c C - s S.
    """
    rot = np.zeros((2 * pairs, 2 * pairs))
    for i in range(pairs):
        s_k, c_k = row[2 * i], row[2 * i + 1]
        rot[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c_k, s_k], [-s_k, c_k]]
    return rot


@clause(
    "PE-RELATIVE",
    "For every offset k there MUST be one block rotation R_k, independent of the position, with "
    "PE(pos + k) = R_k PE(pos), so relative positions are linear functions of the encoding.",
    source=Source(LECTURE_NOTES, "The sine function as a solution (relative positioning)",
                  paper=VASWANI_2017),
    needs=("positional_encoding",),
    topic="positional",
)
def pe_relative(impl: Any, ck: Check) -> None:
    n, d = _sizes(ck, min_d=2)
    n = max(n, 2)
    k = ck.draw(st.integers(1, n - 1), "k")
    pe = impl.positional_encoding(n, d)
    pairs = d // 2
    paired = pe[:, : 2 * pairs]  # (n, 2 pairs); a lone last sine (odd d) has no partner
    # R_k from the implementation's own row k (PE(0) = (0, 1, ...) so R_k PE(0) = PE(k) trivially)
    rot = _rotation_from_row(paired[k], pairs)
    # PE(pos + k) = R_k PE(pos) for every pos, with the same R_k
    # (both sides carry their angles' rounding: PE(pos + k)'s, and PE(pos)'s and PE(k)'s)
    angles = _angles(np.arange(k, n), 2 * pairs)
    # (observed: the implementation's PE(pos + k); expected: R_k applied to its PE(pos))
    ck.close(paired[k:], paired[:-k] @ rot.T, output="default",
             what=f"PE(pos + {k}) vs R_{k} PE(pos)", condition=2 * _angle_condition(impl, angles))
    # and R_k is the rotation by k w_i of the documents' frequencies w_i = 10000^(-2i/d)
    w = _angle_rates(d)[:pairs]
    ck.close(paired[k], np.ravel(np.column_stack([np.sin(k * w), np.cos(k * w)])),
             output="default", what=f"PE({k}) = (sin {k} w_i, cos {k} w_i)",
             condition=_angle_condition(impl, _angles(np.array([k]), 2 * pairs))[0])


@clause(
    "PE-UNIQUE",
    "Distinct positions within the context MUST receive distinct encodings.",
    source=Source(LECTURE_NOTES, "Interesting Observations", paper=VASWANI_2017),
    needs=("positional_encoding",),
    topic="positional",
)
def pe_unique(impl: Any, ck: Check) -> None:
    n = ck.draw(st.integers(2, 256), "n_positions")
    d = ck.draw(st.integers(2, 32), "d_model")
    pe = np.asarray(impl.positional_encoding(n, d))
    # squared distances between every pair of rows
    sq = np.sum((pe[:, None, :] - pe[None, :, :]) ** 2, axis=-1)  # (n, n)
    np.fill_diagonal(sq, np.inf)
    first, second = np.unravel_index(int(np.argmin(sq)), sq.shape)
    ck.that(bool(sq[first, second] > 0), what="min_{p != q} |PE(p) - PE(q)|",
            observed=f"PE({first}) == PE({second})", expected="every pair of positions distinct")
    ck.note("min distance", float(np.sqrt(sq[first, second])))


@clause(
    "PE-WAVELENGTH",
    "The wavelength of pair i MUST be 2 pi 10000^(2i/d_model): a geometric progression from "
    "2 pi towards 10000 * 2 pi.",
    source=PE_SECTION,
    needs=("positional_encoding",),
    topic="positional",
)
def pe_wavelength(impl: Any, ck: Check) -> None:
    d = ck.draw(st.integers(2, 64), "d_model")
    pe = np.asarray(impl.positional_encoding(2, d))
    pairs = d // 2
    # angle of position 1 in pair i is w_i = atan2(sin w_i, cos w_i) (w_i <= 1 < pi); lambda = 2pi/w
    w = np.arctan2(pe[1, 0 : 2 * pairs : 2], pe[1, 1 : 2 * pairs : 2])
    wavelength = 2 * np.pi / w
    ratio = 10000.0 ** (2.0 / d)
    expected = 2 * np.pi * ratio ** np.arange(pairs)
    ck.close(wavelength, expected, output="default", what="2 pi / angle(PE(1)[2i], PE(1)[2i+1])")
    ck.note("wavelength ratio", ratio)


def _silence(layer: dict, attentions: tuple[str, ...], norms: tuple[str, ...], d_model: int) -> None:
    """Zero a block's attention output projections and second feed-forward layer, and make its
    norms plain (gain 1, shift 0): each post-LN sub-layer then adds 0 and normalises."""
    for sublayer in attentions:
        for name in ("W_o", "b_o"):
            if name in layer[sublayer]:  # no b_o in a bias-free network
                layer[sublayer][name] = np.zeros_like(layer[sublayer][name])
    for name in ("W_2", "b_2"):
        if name in layer["ffn"]:
            layer["ffn"][name] = np.zeros_like(layer["ffn"][name])
    for norm in norms:
        layer[norm]["gamma"] = np.ones(d_model)
        layer[norm]["beta"] = np.zeros(d_model)


def _draw_ids(ck: Check, n_vocab: int, length_label: str, label: str) -> np.ndarray:
    """1 to 12 ordinary word ids (no special token)."""
    length = ck.draw(st.integers(1, 12), length_label)
    return np.asarray(ck.draw(st.lists(st.integers(4, n_vocab - 1), min_size=length, max_size=length), label),
                      dtype=np.int64)


@clause(
    "PE-ADDED",
    "The first encoder block, and the first decoder block, MUST receive the token embedding "
    "(scaled by sqrt(d_model)) plus the positional encoding of its position.",
    source=Source(RECAP, "Input embeddings", paper=VASWANI_2017),
    needs=("Transformer",),
    topic="positional",
    cost="network",
)
def pe_added(impl: Any, ck: Check) -> None:
    from nnspec.reference.config import preset

    needed = {"norm_placement": "post", "positional": "sinusoidal", "scale_embeddings": True}
    config = as_declared(ck, replace(preset("transformer_tiny"), n_encoder_layers=1, n_decoder_layers=1, **needed),
                         needed=needed)
    seed = ck.draw(st.integers(0, 2**16), "seed")
    params = ck.oracle.init_params(config, seed=seed)
    # silence the encoder layer's sub-layers: zero output projections and zero second FFN layer,
    # so the post-LN layer computes LN2(LN1(x + 0) + 0) of exactly what it receives.
    _silence(params["encoder"][0], ("self_attn",), ("norm_1", "norm_2"), config.d_model)
    src = _draw_ids(ck, config.n_src_vocab, "S", "src")
    W_E = ck.input(params["W_E_src"])
    params["W_E_src"] = W_E
    memory = impl.Transformer(config, params).encode(src[None, :])[0]  # (S, d_model)

    # x = W_E onehot(t) sqrt(d_model) + PE(pos)   (the block's input)
    d = config.d_model
    x = W_E[:, src].T * math.sqrt(d) + in_layout(_formula(len(src), d), sinusoid_layout(ck.oracle))  # (S, d_model)

    def ln(v: np.ndarray) -> np.ndarray:
        mean = v.mean(axis=-1, keepdims=True)
        var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
        return (v - mean) / np.sqrt(var + config.layer_norm_eps)

    ck.close(memory, ln(ln(x)), output="network", what="encode(src) with silent sub-layers")
    ck.close_to_oracle(lambda m: m.Transformer(config, params).encode(src[None, :]),
                       output="network", what="Transformer.encode(src)")

    # The decoder's input the same way (Vaswani et al. add the encodings at the bottom of both
    # stacks): its three sub-layers silenced, the post-LN layer computes LN3(LN2(LN1(y))).
    _silence(params["decoder"][0], ("self_attn", "cross_attn"), ("norm_1", "norm_2", "norm_3"), config.d_model)
    tgt = _draw_ids(ck, config.n_tgt_vocab, "T", "tgt")
    W_E_tgt = ck.input(params["W_E_tgt"])
    params["W_E_tgt"] = W_E_tgt
    decoded = impl.Transformer(config, params).decode(tgt[None, :], np.asarray(memory)[None])[0]  # (T, d_model)
    y = W_E_tgt[:, tgt].T * math.sqrt(d) + in_layout(_formula(len(tgt), d), sinusoid_layout(ck.oracle))  # (T, d_model)
    ck.close(decoded, ln(ln(ln(y))), output="network", what="decode(tgt, memory) with silent sub-layers")
