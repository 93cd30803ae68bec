"""Planted faults: a catalogue of realistic bugs, and the kill matrix that shows which clause finds each.

A verification suite is worth the bugs it catches. Each :class:`Mutant` is the reference
implementation with one small, realistic mistake planted through :func:`~nnspec.verify.patched`,
exactly the way a user plugs in their own code. Every mistake here has shipped in real attention and
transformer code (frameworks, model hubs, tutorials), usually unnoticed because training still
"worked". ``expected`` names the clauses that must reject the mutant; a catch by an unrelated
crash does not count (see :func:`is_crash`).

Run the catalogue::

    python -m nnspec.verify.mutants --profile quick            # the kill matrix as a table
    python -m nnspec.verify.mutants --mutant sdpa-no-scaling --json km.json

or from Python: ``kill_matrix(mutants=["sdpa-no-scaling"])`` returns the JSON dict
(schema ``nnspec-kill-matrix/1``) that :func:`nnspec.report.write_kill_matrix` renders.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from nnspec.reference import numpy_ref
from nnspec.reference.numpy_ref import networks as nets

from .conventions import ConfiguredOracle
from .implementations import Implementation, patched, round_to_dtype

SCHEMA = "nnspec-kill-matrix/1"
START_ID, END_ID = 2, 3  # the vocabulary's <start> and <end> (reference/vocabulary.py)

Params = dict[str, Any]


@dataclass(frozen=True)
class Mutant:
    """One planted fault.

    ``models`` says in one line which real mistake it reproduces; ``target`` the capabilities it
    replaces; ``expected`` the clauses that must reject it. ``build(base)`` returns the faulty
    :class:`Implementation` on top of ``base`` (mutants that need a base-specific feature, such as
    torch's KV cache, pin their own ``base``). ``crash`` marks a mutant whose fault *is* a crash or
    a non-finite result, so a catch through one counts. ``survives`` explains a mutant no clause can
    catch yet (then ``expected`` is empty).
    """

    id: str
    models: str
    target: tuple[str, ...]
    expected: tuple[str, ...]
    build: Callable[[str], Implementation]
    base: str = "numpy"
    crash: bool = False
    survives: str = ""
    # A fault that shows on some inputs only (a tiny decoder whose argmax rarely needs the history)
    # names a profile with more examples; a kill matrix runs it at that profile at least.
    profile: str = "quick"

    def profile_at_least(self, profile: str) -> str:
        """``profile``, or this mutant's own where that gives more examples."""
        from .profiles import PROFILES

        mine, asked = PROFILES[self.profile], PROFILES[profile]
        return self.profile if mine.max_examples > asked.max_examples else profile

    def implementation(self, base: str | None = None, *, shared_oracle: bool = False) -> Implementation:
        """The faulty implementation on ``base`` (default: the mutant's own base).

        ``shared_oracle=True`` plants the same fault in the oracle the clauses compare against:
        the bug is then shared by the implementation and its reference, as when a framework's
        kernel and its own NumPy reference were written from one wrong derivation. Only clauses
        that check the documents' numbers and invariants can still catch it.
        """
        impl = self.build(base or self.base)
        return plant_in_oracle(impl) if shared_oracle else impl


def plant_in_oracle(impl: Implementation) -> Implementation:
    """``impl`` (a :func:`patched` one) with its replaced capabilities planted in its oracle too:
    the fault shared by an implementation and its reference, which only the clauses that check the
    documents' own numbers and invariants can catch."""
    faulty = {name: impl._namespace[name] for name in impl.overridden}
    impl.oracle = ConfiguredOracle(impl.conventions, module=_ReferenceWithFault(faulty))
    return impl


class _ReferenceWithFault:
    """:mod:`numpy_ref` with some of its names replaced by a mutant's (a fault it shares)."""

    def __init__(self, replaced: dict[str, Any]) -> None:
        self._replaced = replaced

    def __getattr__(self, name: str) -> Any:
        if name in self._replaced:
            return self._replaced[name]
        return getattr(numpy_ref, name)


# The clauses that judge by agreement with the oracle alone. With the fault planted in the oracle
# too they pass by construction, so a shared-oracle matrix does not expect them to kill anything.
ORACLE_COMPARISONS = frozenset({"ATT-ORACLE", "NET-ORACLE"})


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _linear(x: np.ndarray, W: Any, b: Any | None) -> np.ndarray:
    y = x @ _f64(W).T
    return y if b is None else y + _f64(b)


# ------------------------------------------------------------------------------------------------
# Softmax
# ------------------------------------------------------------------------------------------------


def softmax_first_axis(x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """Normalises over axis 0 (the batch) whatever ``axis`` asks: a hard-coded ``dim=0``."""
    z = _f64(x) / temperature
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softmax_no_max_shift(x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """The textbook formula without subtracting the max: e^x overflows for logits above ~709."""
    with np.errstate(over="ignore", invalid="ignore"):
        # softmax(x)_j = e^(x_j/T) / sum_k e^(x_k/T)
        e = np.exp(_f64(x) / temperature)
        return e / e.sum(axis=axis, keepdims=True)


def softmax_temperature_multiplied(x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """``logits * T`` instead of ``logits / T``: high temperature sharpens instead of flattening."""
    return numpy_ref.softmax(_f64(x) * temperature, axis=axis)


# ------------------------------------------------------------------------------------------------
# Scaled dot-product attention and masks
# ------------------------------------------------------------------------------------------------


def _attention(
    q: Any, k: Any, v: Any, mask: Any | None, *, scale: Callable[[int], float], after: bool = False,
    invert: bool = False, nan_rows: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Attention with one knob per planted fault (the reference sets masked scores to -inf)."""
    q, k, v = _f64(q), _f64(k), _f64(v)
    scores = q @ np.swapaxes(k, -1, -2) * scale(q.shape[-1])  # (..., n_q, n_k)
    keep = None if mask is None else np.asarray(mask, dtype=bool)
    if keep is not None and invert:
        keep = ~keep
    if keep is not None and not after:
        scores = np.where(keep, scores, -np.inf)
    with np.errstate(invalid="ignore"):
        m = scores.max(axis=-1, keepdims=True)
        if not nan_rows:
            m = np.where(np.isfinite(m), m, 0.0)
        e = np.exp(scores - m)  # an all -inf row with m = -inf: exp(nan) = nan
        weights = e / e.sum(axis=-1, keepdims=True)
        if not nan_rows:
            weights = np.nan_to_num(weights, nan=0.0)
    if keep is not None and after:
        weights = np.where(keep, weights, 0.0)  # zeroed after the softmax, rows no longer sum to 1
    return weights @ v, weights


def _standard_scale(d_k: int) -> float:
    return 1.0 / math.sqrt(d_k)


def sdpa_no_scaling(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q k^T) v: the 1/sqrt(d_k) factor forgotten."""
    return _attention(q, k, v, mask, scale=lambda d_k: 1.0)


def sdpa_scale_by_d_k(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q k^T / d_k) v: divided by d_k instead of its square root."""
    return _attention(q, k, v, mask, scale=lambda d_k: 1.0 / d_k)


def sdpa_mask_inverted(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reads True as "masked" (nn.MultiheadAttention's attn_mask) instead of "may attend"."""
    return _attention(q, k, v, mask, scale=_standard_scale, invert=True)


def sdpa_mask_after_softmax(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multiplies the weights by the mask after the softmax: zeroed but not renormalised."""
    return _attention(q, k, v, mask, scale=_standard_scale, after=True)


def sdpa_fully_masked_nan(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The naive -inf softmax: a query row with every key masked becomes 0/0 = NaN."""
    return _attention(q, k, v, mask, scale=_standard_scale, nan_rows=True)


def sdpa_softmax_over_queries(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """softmax(scores, dim=-2): each key's weights normalised over the queries, not each query's
    over the keys."""
    q, k, v = _f64(q), _f64(k), _f64(v)
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])  # (..., n_q, n_k)
    if mask is not None:
        scores = np.where(np.asarray(mask, dtype=bool), scores, -np.inf)
    weights = numpy_ref.softmax(scores, axis=-2)  # should be axis=-1
    return weights @ v, weights


def causal_mask_inverted(n_queries: int, n_keys: int, **_: Any) -> np.ndarray:
    """``triu(ones, k=1)``: the True = masked causal mask (nn.Transformer's
    generate_square_subsequent_mask as a bool) returned where True must mean may attend."""
    offset = n_keys - n_queries
    return np.triu(np.ones((n_queries, n_keys), dtype=bool), k=offset + 1)


def causal_mask_strict(n_queries: int, n_keys: int, **_: Any) -> np.ndarray:
    """``j < i`` instead of ``j <= i`` (``triu(k=0)`` where ``k=1`` was meant): hides the diagonal."""
    offset = n_keys - n_queries
    i = np.arange(n_queries)[:, None]
    j = np.arange(n_keys)[None, :]
    return j < i + offset


def causal_mask_top_left(n_queries: int, n_keys: int, **_: Any) -> np.ndarray:
    """``tril(ones(n_q, n_k))``: aligned top-left, wrong for cached decoding (queries are the last)."""
    return np.tril(np.ones((n_queries, n_keys), dtype=bool))


def padding_mask_inverted(token_ids: Any, pad_id: int) -> np.ndarray:
    """True on the padding (``ids == pad``, HF's "is padding" convention) instead of on real tokens."""
    return (np.asarray(token_ids) == pad_id)[..., None, :]


# ------------------------------------------------------------------------------------------------
# Multi-head attention
# ------------------------------------------------------------------------------------------------


def _mha(
    params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None, *, split_ok: bool = True,
    merge_ok: bool = True,
    attention: Callable[..., tuple[np.ndarray, np.ndarray]] = numpy_ref.scaled_dot_product_attention,
) -> tuple[np.ndarray, np.ndarray]:
    x_q, x_kv = _f64(x_q), _f64(x_kv)
    d_model = x_q.shape[-1]
    d_head = d_model // n_heads

    def split(x: np.ndarray) -> np.ndarray:
        *lead, T, _ = x.shape
        if split_ok:
            return np.swapaxes(x.reshape(*lead, T, n_heads, d_head), -2, -3)  # (..., nh, T, dh)
        return x.reshape(*lead, n_heads, T, d_head)  # no transpose: heads mix positions

    q = split(_linear(x_q, params["W_q"], params.get("b_q")))
    k = split(_linear(x_kv, params["W_k"], params.get("b_k")))
    v = split(_linear(x_kv, params["W_v"], params.get("b_v")))
    heads, weights = attention(q, k, v, mask)  # (..., nh, n_q, dh)
    if merge_ok:
        concat = np.swapaxes(heads, -2, -3).reshape(*heads.shape[:-3], heads.shape[-2], d_model)
    else:
        concat = heads.reshape(*heads.shape[:-3], heads.shape[-2], d_model)  # no transpose
    return _linear(concat, params["W_o"], params.get("b_o")), weights


def mha_split_without_transpose(params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None):
    """Splits heads with ``view(B, nh, T, hs)`` instead of ``view(B, T, nh, hs).transpose(1, 2)``."""
    return _mha(params, x_q, x_kv, n_heads, mask, split_ok=False, merge_ok=True)


def mha_merge_without_transpose(params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None):
    """Merges heads with ``view(B, T, C)`` straight from (B, nh, T, hs), skipping the transpose."""
    return _mha(params, x_q, x_kv, n_heads, mask, split_ok=True, merge_ok=False)


def mha_fully_masked_nan(params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None):
    """Heads through the naive -inf softmax (torch.nn.MultiheadAttention's behaviour): a query with
    no allowed key gets NaN weights in every head, and NaN output."""
    return _mha(params, x_q, x_kv, n_heads, mask, attention=sdpa_fully_masked_nan)


def dot_attention_scaled(s: Any, h: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Luong's dot score with the Transformer's 1/sqrt(d) carried over: e_j = s.h_j / sqrt(d)."""
    s = _f64(s)
    return numpy_ref.dot_attention(s / math.sqrt(s.shape[-1]), h, mask)


# ------------------------------------------------------------------------------------------------
# Positional encoding
# ------------------------------------------------------------------------------------------------


def pe_concatenated(n_positions: int, d_model: int, **_: Any) -> np.ndarray:
    """[sin | cos] in two halves (tensor2tensor's layout) instead of interleaved sin, cos columns."""
    n_sin = (d_model + 1) // 2
    i = np.arange(n_sin)
    pos = np.arange(n_positions)[:, None]
    angles = pos / 10000.0 ** (2 * i / d_model)  # (n_positions, n_sin)
    return np.concatenate([np.sin(angles), np.cos(angles[:, : d_model - n_sin])], axis=-1)


def pe_exponent_i_over_d(n_positions: int, d_model: int, **_: Any) -> np.ndarray:
    """pos / 10000^(i/d_model) with i the column index, instead of 2i/d_model with i the pair index."""
    column = np.arange(d_model)
    pos = np.arange(n_positions)[:, None]
    pair = column // 2
    angles = pos / 10000.0 ** (pair / d_model)  # should be 2 * pair / d_model
    return np.where(column % 2 == 0, np.sin(angles), np.cos(angles))


# ------------------------------------------------------------------------------------------------
# Normalisation and the feed-forward
# ------------------------------------------------------------------------------------------------


def layer_norm_unbiased(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """``x.var(ddof=1)`` (torch.var's default) where layer norm uses the biased variance."""
    x = _f64(x)
    var = x.var(axis=-1, ddof=1, keepdims=True) if x.shape[-1] > 1 else np.zeros_like(x)
    return _f64(gamma) * (x - x.mean(-1, keepdims=True)) / np.sqrt(var + eps) + _f64(beta)


def layer_norm_one_pass_variance(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """The variance in one pass, E[x^2] - E[x]^2 (clipped at 0), as fused kernels that read x once
    compute it: right for a token near 0, catastrophic cancellation for one far from it."""
    x = _f64(x)
    mean = x.mean(-1, keepdims=True)
    var = np.maximum((x * x).mean(-1, keepdims=True) - mean * mean, 0.0)
    return _f64(gamma) * (x - mean) / np.sqrt(var + eps) + _f64(beta)


def batch_norm_one_pass_variance(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """Batch norm's variance in one pass, E[x^2] - E[x]^2 over every axis but the features (clipped
    at 0), as a course library writes it: right for features near 0, catastrophic cancellation for
    a feature far from it (ninth hunt, in float32)."""
    x = _f64(x)
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes, keepdims=True)
    var = np.maximum((x * x).mean(axis=axes, keepdims=True) - mean * mean, 0.0)
    return _f64(gamma) * (x - mean) / np.sqrt(var + eps) + _f64(beta)


def layer_norm_wrong_axis(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """Statistics over axis 0 (the batch, as batch norm) instead of over each vector's features."""
    x = _f64(x)
    mean = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    return _f64(gamma) * (x - mean) / np.sqrt(var + eps) + _f64(beta)


def layer_norm_no_affine(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """Normalises and forgets the learned gain gamma and bias beta (elementwise_affine lost)."""
    x = _f64(x)
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


def batch_norm_per_example(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """Batch norm with the layer norm's axis: statistics over each example's features."""
    return numpy_ref.layer_norm(x, gamma, beta, eps)


def ffn_without_activation(params: Params, x: Any, activation: str | None = "relu") -> np.ndarray:
    """W_2 (W_1 x + b_1) + b_2: the nonlinearity between the two linear maps dropped."""
    hidden = _linear(_f64(x), params["W_1"], params.get("b_1"))
    return _linear(hidden, params["W_2"], params.get("b_2"))


# ------------------------------------------------------------------------------------------------
# Activations, the cost and backpropagation
# ------------------------------------------------------------------------------------------------


def sigmoid_prime_as_sigma(z: Any) -> np.ndarray:
    """sigma'(z) written as sigma(z) instead of sigma(z) (1 - sigma(z))."""
    return numpy_ref.sigmoid(z)


def squared_error_mean(a: Any, y: Any) -> np.ndarray:
    """Mean over the output neurons (mse_loss's default) where the pinned cost sums them."""
    return np.mean((_f64(a) - _f64(y)) ** 2, axis=-1)


class SigmaAsDerivativeMLP(numpy_ref.MLP):
    """Backpropagation that multiplies by sigma(z) where sigma'(z) = sigma(z)(1 - sigma(z)) belongs."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(config, params)
        if config.activation == "sigmoid":
            self.sigma_prime = numpy_ref.sigmoid


class _BackpropMLP(numpy_ref.MLP):
    """Backpropagation as in the reference, with the batch reduction of the gradients overridable."""

    def reduce_dW(self, dW_sum: np.ndarray, n: int) -> np.ndarray:
        return dW_sum / n

    def reduce_db(self, delta: np.ndarray) -> np.ndarray:
        return delta.mean(axis=0)

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        x = np.atleast_2d(_f64(x))  # (N, n_0)
        y = np.atleast_2d(_f64(y))  # (N, n_L)
        n = x.shape[0]
        zs, activations = self.forward(x)
        layers = self.params["layers"]
        dW: list[np.ndarray] = [np.empty(0)] * len(layers)
        db: list[np.ndarray] = [np.empty(0)] * len(layers)
        # delta(L) = 2 (a(L) - y) * sigma'(z(L))
        delta = 2.0 * (activations[-1] - y) * self.sigma_prime(zs[-1])  # (N, n_L)
        for l in range(len(layers) - 1, -1, -1):
            dW[l] = self.reduce_dW(delta.T @ activations[l], n)  # (n_l, n_{l-1})
            db[l] = self.reduce_db(delta)  # (n_l,)
            if l > 0:
                # delta(l-1) = W(l)^T delta(l) * sigma'(z(l-1))
                delta = (delta @ layers[l]["W"]) * self.sigma_prime(zs[l - 1])
        return dW, db


class BiasGradientLastExampleMLP(_BackpropMLP):
    """dC/db taken from the last example's delta (a loop variable left over) instead of the batch."""

    def reduce_db(self, delta: np.ndarray) -> np.ndarray:
        return delta[-1]


class SummedGradientMLP(_BackpropMLP):
    """The minibatch gradient summed over the examples instead of averaged (eta silently x N)."""

    def reduce_dW(self, dW_sum: np.ndarray, n: int) -> np.ndarray:
        return dW_sum

    def reduce_db(self, delta: np.ndarray) -> np.ndarray:
        return delta.sum(axis=0)


def lstm_cell_ifog(params: Params, x: Any, h: Any, c: Any) -> tuple[np.ndarray, np.ndarray]:
    """Gates unpacked as i, f, o, g (char-rnn's hand-written order: three sigmoid gates, then the tanh
    input) from weights stacked i, f, g, o (torch's order, and Keras' i, f, c, o)."""
    x, h, c = _f64(x), _f64(h), _f64(c)
    gates = _linear(x, params["W_ih"], params.get("b_ih")) + _linear(h, params["W_hh"], params.get("b_hh"))
    i, f, o, g = np.split(gates, 4, axis=-1)  # should be i, f, g, o
    c_new = numpy_ref.sigmoid(f) * c + numpy_ref.sigmoid(i) * np.tanh(g)
    h_new = numpy_ref.sigmoid(o) * np.tanh(c_new)
    return h_new, c_new


# ------------------------------------------------------------------------------------------------
# Transformer blocks
# ------------------------------------------------------------------------------------------------


def _norm(x: np.ndarray, p: Params, eps: float) -> np.ndarray:
    return numpy_ref.layer_norm(x, p["gamma"], p["beta"], eps)


def _heads(mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else np.asarray(mask, dtype=bool)[..., None, :, :]


class _MutableTransformer(numpy_ref.Transformer):
    """The reference Transformer with each sub-layer's wrapping spelled out, so that one mutant
    changes one thing: ``residual`` (x + Sublayer), ``placement`` (None = as the config declares),
    ``cross_causal`` (a causal mask on cross-attention) or ``dropout`` (active at evaluation)."""

    residual = True
    placement: str | None = None
    cross_causal = False
    dropout = 0.0

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(config, params)
        self._rng = np.random.default_rng(0)

    def _drop(self, x: np.ndarray) -> np.ndarray:
        if not self.dropout:
            return x
        keep = self._rng.random(x.shape) >= self.dropout
        return x * keep / (1.0 - self.dropout)

    def _sublayer(self, x: np.ndarray, norm: Params, sublayer: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        eps = self.config.layer_norm_eps
        placement = self.placement or self.config.norm_placement
        skip = x if self.residual else 0.0
        if placement == "post":
            # x = LN(x + Dropout(Sublayer(x)))
            return _norm(skip + self._drop(sublayer(x)), norm, eps)
        # x = x + Dropout(Sublayer(LN(x)))
        return skip + self._drop(sublayer(_norm(x, norm, eps)))

    def encode(self, src_ids: Any, src_mask: np.ndarray | None = None) -> np.ndarray:
        src = nets._ids(src_ids)
        if src_mask is None:
            src_mask = numpy_ref.padding_mask(src, nets.PAD_ID)  # (..., 1, S)
        p, c = self.params, self.config
        x = nets._embed_with_positions(src, p["W_E_src"], p.get("W_P_src"), c)  # (..., S, d_model)
        mask = _heads(src_mask)
        for layer in p["encoder"]:
            x = self._sublayer(x, layer["norm_1"], lambda h, a=layer["self_attn"]:
                               numpy_ref.multi_head_attention(a, h, h, c.n_heads, mask)[0])
            x = self._sublayer(x, layer["norm_2"], lambda h, f=layer["ffn"]:
                               numpy_ref.feed_forward(f, h, c.activation))
        if c.norm_placement == "pre":
            x = _norm(x, p["encoder_norm"], c.layer_norm_eps)
        return x

    def decode(self, tgt_ids: Any, memory: np.ndarray, src_mask: np.ndarray | None = None) -> np.ndarray:
        tgt = nets._ids(tgt_ids)
        memory = _f64(memory)
        p, c = self.params, self.config
        y = nets._embed_with_positions(tgt, p["W_E_tgt"], p.get("W_P_tgt"), c)  # (..., T, d_model)
        T, S = tgt.shape[-1], memory.shape[-2]
        self_mask = _heads(numpy_ref.causal_mask(T, T))
        # the bug: the decoder's causal_mask (bottom-right aligned) built for the memory too
        cross_mask = numpy_ref.causal_mask(T, S) if self.cross_causal else src_mask
        cross_mask = _heads(cross_mask)
        for layer in p["decoder"]:
            y = self._sublayer(y, layer["norm_1"], lambda h, a=layer["self_attn"]:
                               numpy_ref.multi_head_attention(a, h, h, c.n_heads, self_mask)[0])
            y = self._sublayer(y, layer["norm_2"], lambda h, a=layer["cross_attn"]:
                               numpy_ref.multi_head_attention(a, h, memory, c.n_heads, cross_mask)[0])
            y = self._sublayer(y, layer["norm_3"], lambda h, f=layer["ffn"]:
                               numpy_ref.feed_forward(f, h, c.activation))
        if c.norm_placement == "pre":
            y = _norm(y, p["decoder_norm"], c.layer_norm_eps)
        return y


class NoResidualTransformer(_MutableTransformer):
    """Sub-layers without the ``x +`` skip connection: LN(Sublayer(x))."""

    residual = False


class PreLNTransformer(_MutableTransformer):
    """Always pre-LN (GPT-2 code reused) even where the config declares post-LN (Vaswani et al.)."""

    placement = "pre"


class CausalCrossAttentionTransformer(_MutableTransformer):
    """The decoder's causal mask applied to cross-attention too: target t reads only the sources
    at or before its own (bottom-right aligned) position."""

    cross_causal = True


class DropoutInEvalTransformer(_MutableTransformer):
    """Dropout (p = 0.1) left active at evaluation: the model.eval() call forgotten."""

    dropout = 0.1


def encoder_layer_no_residual(params: Params, x: Any, config: Any, mask: Any = None) -> np.ndarray:
    """One encoder block without its ``x +`` skip connections: LN(Sublayer(x)) (post-LN) or
    Sublayer(LN(x)) (pre-LN), the block a model is built from written without its residuals."""
    block, heads = NoResidualTransformer(config, params), _heads(mask)
    x = block._sublayer(_f64(x), params["norm_1"], lambda h: numpy_ref.multi_head_attention(
        params["self_attn"], h, h, config.n_heads, heads)[0])
    return block._sublayer(x, params["norm_2"], lambda h: numpy_ref.feed_forward(
        params["ffn"], h, config.activation))


def decoder_layer_unmasked(
    params: Params, y: Any, memory: Any, config: Any, self_mask: Any = None, cross_mask: Any = None
) -> np.ndarray:
    """A decoder block that reads ``self_mask=None`` as "no mask" where PARAMETERS.md pins the
    causal mask: in training every target position reads the later ones."""
    T = np.shape(y)[-2]
    no_mask = np.ones((T, T), dtype=bool) if self_mask is None else self_mask
    return numpy_ref.decoder_layer(params, y, memory, config, no_mask, cross_mask)


class UnscaledEmbeddingTransformer(numpy_ref.Transformer):
    """Ignores ``scale_embeddings``: the x sqrt(d_model) on the embeddings forgotten."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(replace(config, scale_embeddings=False), params)


class DecoderWithoutPositionsTransformer(numpy_ref.Transformer):
    """The positional encoding added at the bottom of the encoder stack only: the decoder reads
    its target embeddings without positions (a model wiring positions into ``encode`` alone)."""

    def decode(self, tgt_ids: Any, memory: np.ndarray, src_mask: np.ndarray | None = None) -> np.ndarray:
        unplaced = numpy_ref.Transformer(replace(self.config, positional="none"), self.params)
        return unplaced.decode(tgt_ids, memory, src_mask)


class NoStopTransformer(numpy_ref.Transformer):
    """Greedy decoding that keeps writing after the end token, up to ``max_len``."""

    def _generate(self, src_ids: Any, max_len: int, pick: Callable[[np.ndarray], int]) -> list[int]:
        src = nets._ids(src_ids)
        src_mask = numpy_ref.padding_mask(src, nets.PAD_ID)
        memory = self.encode(src, src_mask)
        W_U, b_U = nets._unembedding(self.params, "W_E_tgt")
        out = [START_ID]
        for _ in range(max_len):
            out.append(pick(numpy_ref.unembed(self.decode(np.array(out), memory, src_mask)[-1], W_U, b_U)))
        return out


class UnmaskedGPT(numpy_ref.GPT):
    """A decoder-only model whose self-attention has no causal mask: it reads the future."""

    def hidden(self, ids: Any) -> np.ndarray:
        ids = nets._ids(ids)
        p, c = self.params, self.config
        x = nets._embed_with_positions(ids, p["W_E"], p.get("W_P"), c)  # (..., T, d_model)
        for b in p["blocks"]:
            x = nets._block(x, b["attn"], b["norm_1"], b["ffn"], b["norm_2"], c, None)
        if c.norm_placement == "pre":
            x = _norm(x, p["final_norm"], c.layer_norm_eps)
        return x


class NeverReversingSeq2Seq(numpy_ref.Seq2Seq):
    """Ignores ``reverse_source`` (Sutskever et al.'s reversed input): reads the source in order."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(replace(config, reverse_source=False), params)


def _faulty_cache_gpt(
    device: str, dtype: str, *, attention: Callable | None = None, restart_positions: bool = False
) -> Callable:
    """torch_ref's GPT with one fault in ``forward_cached``: each block's self-attention through
    ``attention`` (torch_ref's ``_cached_attention`` with a fault), or, with ``restart_positions``,
    every new piece placed at positions 0, 1, ... instead of continuing from the cache length (the
    position offset forgotten)."""
    from nnspec.reference import torch_ref
    from nnspec.reference.torch_ref import networks as tnets

    from .implementations import _torch_network_class

    attend = attention or tnets._cached_attention

    class FaultyCacheGPT(torch_ref.GPT):
        def forward_cached(self, ids: Any, cache: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
            ids = tnets._ids(ids, self.device)
            p, c = self.params, self.config
            start = 0 if cache is None else int(cache["length"])
            x = tnets._embed_with_positions(ids, p["W_E"], p.get("W_P"), c, start=0 if restart_positions else start)
            eps = c.layer_norm_eps
            new_layers = []
            for i, block in enumerate(p["blocks"]):
                layer_cache = None if cache is None else cache["layers"][i]
                n1, n2 = block["norm_1"], block["norm_2"]
                if c.norm_placement == "post":
                    a, kv = attend(block["attn"], x, c.n_heads, layer_cache)
                    x = tnets.layer_norm(x + a, n1["gamma"], n1["beta"], eps)
                    x = tnets.layer_norm(x + tnets.feed_forward(block["ffn"], x, c.activation),
                                         n2["gamma"], n2["beta"], eps)
                else:
                    h = tnets.layer_norm(x, n1["gamma"], n1["beta"], eps)
                    a, kv = attend(block["attn"], h, c.n_heads, layer_cache)
                    x = x + a
                    h = tnets.layer_norm(x, n2["gamma"], n2["beta"], eps)
                    x = x + tnets.feed_forward(block["ffn"], h, c.activation)
                new_layers.append(kv)
            if c.norm_placement == "pre":
                x = tnets.layer_norm(x, p["final_norm"]["gamma"], p["final_norm"]["beta"], eps)
            W_U, b_U = tnets._unembedding(p, "W_E")
            return tnets.unembed(x, W_U, b_U), {"length": start + ids.shape[-1], "layers": new_layers}

    return _torch_network_class(FaultyCacheGPT, device, dtype)


def _build_kv_cache(base: str) -> Implementation:
    """Only torch_ref has a KV cache: on a torch base keep its device and dtype, else use
    torch:cpu:float64 (the oracle's precision)."""
    from .implementations import load_implementation

    impl = load_implementation(base if base.startswith("torch") else "torch:cpu:float64")
    return patched(impl, name="kv-cache-restarts-positions",
                   GPT=_faulty_cache_gpt(impl.device, impl.dtype, restart_positions=True))


class ClipsGradientNormMLP(numpy_ref.MLP):
    """SGD whose loop clips each minibatch's gradient to a global norm of 1 before the step
    (nanoGPT's ``grad_clip = 1.0``, ``torch.nn.utils.clip_grad_norm_``; Keras' ``clipnorm``): a
    step of ``eta * min(1, 1 / |grad|) * grad``, shorter than SGD's wherever the gradient is large.
    numpy_ref's loop and step, with the clip folded into ``eta``; only inside ``train``, as
    clipping lives in a training loop (``sgd_step`` called alone is plain SGD)."""

    _training = False

    def train(self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int) -> None:
        self._training = True
        try:
            super().train(X, Y, epochs=epochs, batch_size=batch_size, eta=eta, seed=seed)
        finally:
            self._training = False

    def sgd_step(self, x: Any, y: Any, eta: float) -> None:
        if self._training:
            dW, db = self.gradients(x, y)
            norm = math.sqrt(sum(float(np.sum(g * g)) for g in (*dW, *db)))
            eta *= min(1.0, 1.0 / (norm + 1e-6))
        super().sgd_step(x, y, eta)


class DropsLastBatchMLP(numpy_ref.MLP):
    """SGD whose epoch loop runs ``range(0, len(X) - batch_size + 1, batch_size)`` (what
    DataLoader(drop_last=True) does): the smaller last minibatch is never stepped on."""

    def train(self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int) -> None:
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for start in range(0, len(X) - batch_size + 1, batch_size):
                batch = order[start : start + batch_size]
                self.sgd_step(X[batch], Y[batch], eta)


def parameter_count_tied_twice(config: Any, *, biases_and_norms: bool = False) -> Any:
    """A parameter count that adds W_U whether or not it is tied to W_E (one matrix counted twice)."""
    from nnspec.reference.accounting import parameter_count

    count = parameter_count(config, biases_and_norms=biases_and_norms)
    if not getattr(config, "tie_embeddings", False):
        return count
    extra = getattr(config, "n_vocab", getattr(config, "n_tgt_vocab", 0)) * config.d_model
    return replace(count, unembedding=extra, total=count.total + extra)


def parameter_count_forgets_final_norm(config: Any, *, biases_and_norms: bool = False) -> Any:
    """A full count with two layer norms per block (three per decoder layer) and none for the final
    norm a pre-LN stack ends with (GPT-2's ln_f; the encoder's and decoder's final norms)."""
    from nnspec.reference.accounting import parameter_count

    count = parameter_count(config, biases_and_norms=biases_and_norms)
    if not biases_and_norms or getattr(config, "norm_placement", "post") != "pre":
        return count
    final = (1 if hasattr(config, "n_vocab") else 2) * 2 * config.d_model
    return replace(count, norms=count.norms - final, total=count.total - final)


def _vocabulary_end_is_start() -> type:
    from nnspec.reference.vocabulary import Vocabulary

    class VocabularyEndIsStart(Vocabulary):
        """``encode(..., add_end=True)`` appends START_ID (2) where END_ID (3) belongs."""

        def encode(self, sentence: str, *, add_start: bool = False, add_end: bool = False) -> list[int]:
            ids = super().encode(sentence, add_start=add_start)
            return ids + [START_ID] if add_end else ids

    return VocabularyEndIsStart


def tokenize_word_regex(sentence: str) -> list[str]:
    """``re.findall(r"\\w+|[^\\w\\s]", text.lower())``: Python's \\w does not match the Devanagari
    vowel signs (Unicode Mc/Mn), so a Hindi word falls apart into letters and loose signs."""
    import re
    import unicodedata

    return re.findall(r"\w+|[^\w\s]", unicodedata.normalize("NFC", sentence).lower())


def lstm_ignores_initial_state(params: Params, xs: Any, h0: Any = None, c0: Any = None) -> tuple:
    """An LSTM layer run without the (h0, c0) it is given (nn.LSTM(x) where nn.LSTM(x, (h0, c0))
    belongs): every sequence starts from zeros, and a decoder never sees the encoder's state."""
    return numpy_ref.lstm(params, xs)


class PaddingBlindEncoderTransformer(numpy_ref.Transformer):
    """An encoder that never builds the source's padding mask: every attention over the source
    reads the pad tokens as words (the src_key_padding_mask left out of the encoder call)."""

    def encode(self, src_ids: Any, src_mask: np.ndarray | None = None) -> np.ndarray:
        src = nets._ids(src_ids)
        return super().encode(src, np.ones((*src.shape[:-1], 1, src.shape[-1]), dtype=bool))


class PaddingBlindCrossAttentionTransformer(numpy_ref.Transformer):
    """A decoder whose cross-attention gets no source mask (memory_key_padding_mask forgotten):
    every target position reads the encoder's outputs at the pad positions."""

    def decode(self, tgt_ids: Any, memory: np.ndarray, src_mask: np.ndarray | None = None) -> np.ndarray:
        return super().decode(tgt_ids, memory, None)


def _generate(gpt: numpy_ref.GPT, ids: Any, max_new_tokens: int, temperature: float, rng: Any, *,
              position: int = -1, multiply: bool = False) -> list[int]:
    """numpy_ref.GPT.generate as the mutants below get it wrong: the logits read at ``position``,
    the temperature multiplied (``multiply``), or ``rng`` not the one the caller's seed makes."""
    out = [int(t) for t in nets._ids(ids)]
    for _ in range(max_new_tokens):
        logits = gpt.forward(np.array(out))[position]
        if temperature == 0:
            out.append(int(np.argmax(logits)))
        elif multiply:
            out.append(nets._draw_token(numpy_ref.softmax(logits * temperature, axis=-1), rng))
        else:
            out.append(nets._draw_token(numpy_ref.softmax(logits, axis=-1, temperature=temperature), rng))
    return out


class FirstPositionGenerateGPT(numpy_ref.GPT):
    """generate reads the logits at position 0 (logits[:, 0] for logits[:, -1]): every new token
    is predicted from the first token alone."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        return _generate(self, ids, max_new_tokens, temperature, np.random.default_rng(seed), position=0)


class TemperatureMultipliedGenerateGPT(numpy_ref.GPT):
    """generate samples from softmax(logits * T): a high temperature sharpens the distribution
    instead of flattening it, and T -> 0 gives the uniform distribution instead of the argmax."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        return _generate(self, ids, max_new_tokens, temperature, np.random.default_rng(seed), multiply=True)


class UnseededGenerateGPT(numpy_ref.GPT):
    """generate ignores its seed and draws from a fresh, unseeded generator (np.random.default_rng()
    or torch.multinomial without its generator): the right distribution, never reproducible."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        return _generate(self, ids, max_new_tokens, temperature, np.random.default_rng())  # not (seed)


class FixedSeedSampleTransformer(numpy_ref.Transformer):
    """sample ignores its seed argument (a default seed of 0 hard-wired inside): every call draws
    the same tokens, so sampling is as deterministic as greedy decoding."""

    def sample(self, src_ids: Any, *, max_len: int, temperature: float, seed: int) -> list[int]:
        return super().sample(src_ids, max_len=max_len, temperature=temperature, seed=0)


def gelu_always_tanh(z: Any, approximate: str = "none") -> np.ndarray:
    """GELU that ignores ``approximate`` and always uses the tanh approximation (GPT-2's
    ``gelu_new`` served where the exact erf GELU is asked for)."""
    z = _f64(z)
    return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))


def relu_prime_as_relu(z: Any) -> np.ndarray:
    """ReLU's derivative returned as relu(z) itself: max(0, z) where [z > 0] belongs."""
    return numpy_ref.relu(z)


def tanh_prime_one_minus_z_squared(z: Any) -> np.ndarray:
    """tanh'(z) written 1 - z^2, the identity d tanh = 1 - tanh^2 applied to the input instead of
    the output (the form that is right when the argument is the activation a = tanh(z))."""
    z = _f64(z)
    return 1.0 - z * z


def activation_unknown_is_identity(name: str | None) -> Any:
    """activation(name) as ACTIVATIONS.get(name, identity): a misspelt name silently becomes a linear
    layer."""
    try:
        return numpy_ref.activation(name)
    except ValueError:
        return numpy_ref.activation(None)


class ReluPrimeAsReluMLP(numpy_ref.MLP):
    """Backpropagation through a ReLU network that multiplies by relu(z) where relu'(z) = [z > 0]
    belongs (self.sigma_prime = relu)."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(config, params)
        if config.activation == "relu":
            self.sigma_prime = numpy_ref.relu


class GeluTanhDerivativeMLP(numpy_ref.MLP):
    """An exact-GELU network whose backward pass uses the tanh approximation's derivative (a fused
    backward kernel written for gelu_new reused for gelu): forward and backward disagree."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(config, params)
        if config.activation == "gelu":
            self.sigma_prime = lambda z: numpy_ref.gelu_prime(z, approximate="tanh")


def mha_first_head_mask(params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any = None) -> tuple:
    """Multi-head attention that takes a mask per head (..., n_heads, n_q, n_k) as one shared mask
    and applies the first head's to every head."""
    if mask is not None and np.ndim(mask) >= 3 and np.shape(mask)[-3] == n_heads:
        mask = np.asarray(mask, dtype=bool)[..., :1, :, :]
    return numpy_ref.multi_head_attention(params, x_q, x_kv, n_heads, mask)


class TemperatureIgnoringProbabilitiesGPT(numpy_ref.GPT):
    """GPT.probabilities as softmax(logits), the temperature argument accepted and dropped."""

    def probabilities(self, ids: Any, temperature: float = 1.0) -> np.ndarray:
        return numpy_ref.softmax(self.forward(ids), axis=-1)


class InferenceWithoutSourceMaskTransformer(numpy_ref.Transformer):
    """Greedy decoding and sampling whose loop decodes without the source's padding mask, while
    forward (teacher forcing) keeps it: at inference the decoder reads the pads' memory rows."""

    def _generate(self, src_ids: Any, max_len: int, pick: Any) -> list[int]:
        memory = self.encode(nets._ids(src_ids))
        W_U, b_U = nets._unembedding(self.params, "W_E_tgt")
        out = [START_ID]
        for _ in range(max_len):
            token = pick(nets.unembed(self.decode(np.array(out), memory)[-1], W_U, b_U))
            out.append(token)
            if token == END_ID:
                break
        return out


# --- faults that only the documents' numbers can catch when the oracle shares them -------------


class _GPTWiring(numpy_ref.GPT):
    """``GPT.hidden`` with one wiring switch flipped (each subclass flips one)."""

    drop_ffn_residual = False
    skip_final_norm = False
    none_adds_sinusoid = False
    positions_from_len = False
    learned_positions_from_one = False

    def hidden(self, ids: Any) -> np.ndarray:
        ids = nets._ids(ids)
        p, c = self.params, self.config
        # positions 0..n-1 with n = len(ids): the batch size when ids is a batch (B, T)
        n = len(ids) if self.positions_from_len else ids.shape[-1]
        x = numpy_ref.embed(ids, p["W_E"])  # (..., T, d_model)
        if c.scale_embeddings:
            x = x * math.sqrt(c.d_model)
        if c.positional == "learned":
            first = 1 if self.learned_positions_from_one else 0
            x = x + p["W_P"][first:first + n]
        elif c.positional == "sinusoidal" or self.none_adds_sinusoid:  # 'none' in the else branch
            x = x + numpy_ref.positional_encoding(n, c.d_model)
        mask = numpy_ref.causal_mask(ids.shape[-1], ids.shape[-1])  # (T, T)
        for b in p["blocks"]:
            x = self._block(x, b, mask)
        if c.norm_placement == "pre" and not self.skip_final_norm:
            x = _norm(x, p["final_norm"], c.layer_norm_eps)
        return x

    def _block(self, x: np.ndarray, b: Params, mask: np.ndarray) -> np.ndarray:
        c = self.config
        if not self.drop_ffn_residual:
            return nets._block(x, b["attn"], b["norm_1"], b["ffn"], b["norm_2"], c, mask)
        heads = nets._with_head_axis(mask)  # one mask for every head
        attend = lambda v: numpy_ref.multi_head_attention(b["attn"], v, v, c.n_heads, heads)[0]  # noqa: E731
        if c.norm_placement == "pre":  # x = x + MHA(LN(x)); x = FFN(LN(x)), no "x +"
            x = x + attend(_norm(x, b["norm_1"], c.layer_norm_eps))
            return numpy_ref.feed_forward(b["ffn"], _norm(x, b["norm_2"], c.layer_norm_eps), c.activation)
        x = _norm(x + attend(x), b["norm_1"], c.layer_norm_eps)
        return _norm(numpy_ref.feed_forward(b["ffn"], x, c.activation), b["norm_2"], c.layer_norm_eps)


def _norm(x: np.ndarray, p: Params, eps: float) -> np.ndarray:
    return numpy_ref.layer_norm(x, p["gamma"], p["beta"], eps)


class GPTDropsFFNResidual(_GPTWiring):
    """The feed-forward sub-layer without its skip connection."""

    drop_ffn_residual = True


class GPTNoFinalNorm(_GPTWiring):
    """A pre-LN GPT without its final layer norm (ln_f) before the unembedding."""

    skip_final_norm = True


class GPTNoneAddsSinusoid(_GPTWiring):
    """``if positional == 'learned': ... else: sinusoids``: 'none' still adds the table."""

    none_adds_sinusoid = True


class GPTPositionsFromLen(_GPTWiring):
    """Positions ``arange(len(ids))``: on a batch (B, T) the batch size, not the length."""

    positions_from_len = True


class GPTIgnoresScaleEmbeddings(numpy_ref.GPT):
    """GPT-2 code that never multiplies the embeddings by sqrt(d_model), whatever the config says."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(replace(config, scale_embeddings=False), params)


class TiedToSourceTransformer(numpy_ref.Transformer):
    """Tied output layer read from the source embedding W_E_src^T instead of the target's."""

    def forward(self, src_ids: Any, tgt_ids: Any) -> np.ndarray:
        if "W_U" in self.params:
            return super().forward(src_ids, tgt_ids)
        src = nets._ids(src_ids)
        src_mask = numpy_ref.padding_mask(src, nets.PAD_ID)
        h = self.decode(tgt_ids, self.encode(src, src_mask), src_mask)
        return numpy_ref.unembed(h, self.params["W_E_src"].T, self.params.get("b_U"))


class ForwardWithoutEncoderNormTransformer(numpy_ref.Transformer):
    """forward (the training path) runs its own encoder loop and forgets pre-LN's final encoder
    norm; encode, which generation uses, has it."""

    def forward(self, src_ids: Any, tgt_ids: Any) -> np.ndarray:
        src = nets._ids(src_ids)
        src_mask = numpy_ref.padding_mask(src, nets.PAD_ID)
        p, c = self.params, self.config
        x = nets._embed_with_positions(src, p["W_E_src"], p.get("W_P_src"), c)  # (..., S, d_model)
        for layer in p["encoder"]:
            x = numpy_ref.encoder_layer(layer, x, c, src_mask)
        W_U, b_U = nets._unembedding(p, "W_E_tgt")
        return numpy_ref.unembed(self.decode(tgt_ids, x, src_mask), W_U, b_U)


class GreedyWithoutHistoryTransformer(numpy_ref.Transformer):
    """Each decoding step fed only the last token written (a cached step without its cache)."""

    def _generate(self, src_ids: Any, max_len: int, pick: Any) -> list[int]:
        src = nets._ids(src_ids)
        src_mask = numpy_ref.padding_mask(src, nets.PAD_ID)
        memory = self.encode(src, src_mask)
        W_U, b_U = nets._unembedding(self.params, "W_E_tgt")
        out = [START_ID]
        for _ in range(max_len):
            h = self.decode(np.array(out[-1:]), memory, src_mask)[-1]
            out.append(pick(nets.unembed(h, W_U, b_U)))
            if out[-1] == END_ID:
                break
        return out


class ReseedingGPT(numpy_ref.GPT):
    """``default_rng(seed)`` created inside the token loop: every step draws the same u."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        out = [int(t) for t in nets._ids(ids)]
        for _ in range(max_new_tokens):
            logits = self.forward(np.array(out))[-1]
            if temperature == 0:
                out.append(int(np.argmax(logits)))
            else:
                p = numpy_ref.softmax(logits, axis=-1, temperature=temperature)
                out.append(nets._draw_token(p, np.random.default_rng(seed)))
        return out


class ReseedingTransformer(numpy_ref.Transformer):
    """``Transformer.sample`` seeding a new generator at every step."""

    def sample(self, src_ids: Any, *, max_len: int, temperature: float, seed: int) -> list[int]:
        def pick(logits: np.ndarray) -> int:
            if temperature == 0:
                return int(np.argmax(logits))
            p = numpy_ref.softmax(logits, axis=-1, temperature=temperature)
            return nets._draw_token(p, np.random.default_rng(seed))

        return self._generate(src_ids, max_len, pick)


class ZeroTemperatureRaisesTransformer(numpy_ref.Transformer):
    """``sample`` always divides by T: temperature 0 raises instead of decoding greedily."""

    def sample(self, src_ids: Any, *, max_len: int, temperature: float, seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        return self._generate(src_ids, max_len, lambda logits: nets._draw_token(
            numpy_ref.softmax(logits, axis=-1, temperature=temperature), rng))


class AtLeastOneTokenGPT(numpy_ref.GPT):
    """A do-while decoding loop: ``max_new_tokens=0`` still appends a token."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        return super().generate(ids, max_new_tokens=max(1, max_new_tokens), temperature=temperature,
                                seed=seed)


class _Seq2SeqWiring(numpy_ref.Seq2Seq):
    """``Seq2Seq.decoder_outputs`` with one wiring switch flipped (each subclass flips one)."""

    bahdanau_current = luong_previous = concat_swapped = False
    init_from_top = attend_bottom = s0_zero = reverse_batch_axis = False

    def decoder_outputs(self, src_ids: Any, tgt_ids: Any) -> np.ndarray:
        p, config = self.params, self.config
        src = nets._ids(src_ids)
        # torch.flip(src, [0]) with batch_first: on a batch (B, S) it reverses the batch
        flip = (lambda a: a[::-1]) if self.reverse_batch_axis else (lambda a: a[..., ::-1])
        x = numpy_ref.embed(flip(src) if config.reverse_source else src, p["W_E_src"])
        outs, states = [], []
        for layer in p["encoder"]:
            x, state = numpy_ref.lstm(layer, x)  # (..., S, H)
            back = x[::-1] if self.reverse_batch_axis else x[..., ::-1, :]
            outs.append(back if config.reverse_source else x)
            states.append(state)
        enc = outs[0] if self.attend_bottom else outs[-1]
        s = numpy_ref.embed(nets._ids(tgt_ids), p["W_E_tgt"])
        for i, layer in enumerate(p["decoder"]):
            s, _ = numpy_ref.lstm(layer, s, *(states[-1] if self.init_from_top else states[i]))
        if config.attention is None:
            return s
        T, S = s.shape[-2], enc.shape[-2]
        h = np.broadcast_to(enc[..., None, :, :], (*s.shape[:-1], S, enc.shape[-1]))
        s_0 = states[-1][0][..., None, :]
        s_prev = np.concatenate([0 * s_0 if self.s0_zero else s_0, s[..., : T - 1, :]], axis=-2)
        if config.attention == "luong":
            context, _ = numpy_ref.dot_attention(s_prev if self.luong_previous else s, h)
        else:
            context, _ = numpy_ref.additive_attention(p["attention"], s if self.bahdanau_current else s_prev, h)
        parts = [context, s] if self.concat_swapped else [s, context]
        return np.tanh(np.concatenate(parts, axis=-1) @ p["W_c"].T + p["b_c"])


class BahdanauCurrentState(_Seq2SeqWiring):
    bahdanau_current = True


class LuongPreviousState(_Seq2SeqWiring):
    luong_previous = True


class AttentionConcatSwapped(_Seq2SeqWiring):
    concat_swapped = True


class DecoderInitFromTop(_Seq2SeqWiring):
    init_from_top = True


class AttendBottomLayer(_Seq2SeqWiring):
    attend_bottom = True


class BahdanauS0Zero(_Seq2SeqWiring):
    s0_zero = True


class ReverseBatchAxisSeq2Seq(_Seq2SeqWiring):
    reverse_batch_axis = True


class TrainsWithoutShuffling(numpy_ref.MLP):
    """DataLoader(shuffle=False): every epoch walks the data in the order given."""

    def train(self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int) -> None:
        X, Y = _f64(X), _f64(Y)
        for _ in range(epochs):
            for start in range(0, len(X), batch_size):
                self.sgd_step(X[start : start + batch_size], Y[start : start + batch_size], eta)


class SameOrderEachEpoch(numpy_ref.MLP):
    """One permutation drawn for all epochs (as does re-creating ``default_rng(seed)`` inside the
    epoch loop): every epoch visits the same minibatches."""

    def train(self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int) -> None:
        X, Y = _f64(X), _f64(Y)
        order = np.random.default_rng(seed).permutation(len(X))
        for _ in range(epochs):
            for start in range(0, len(X), batch_size):
                batch = order[start : start + batch_size]
                self.sgd_step(X[batch], Y[batch], eta)


class ReversesTwiceSeq2Seq(numpy_ref.Seq2Seq):
    """greedy_decode reverses the source itself, then calls forward, which reverses it again: the
    decoding loop reads the source in order where teacher forcing reads it reversed."""

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        src = nets._ids(src_ids)
        if self.config.reverse_source:
            src = src[::-1].copy()
        out = [START_ID]
        for _ in range(max_len):
            out.append(int(np.argmax(self.forward(src, np.array(out))[-1])))
            if out[-1] == END_ID:
                break
        return out


def causal_mask_offset_clamped(n_queries: int, n_keys: int) -> np.ndarray:
    """Bottom-right alignment with its offset clamped at 0: with more queries than keys, the first
    queries see the first key instead of none."""
    i, j = np.indices((n_queries, n_keys))
    return j <= max(n_keys - n_queries, 0) + i


def padding_mask_pad_id_zero(token_ids: Any, pad_id: int) -> np.ndarray:
    """``ids != 0`` whatever ``pad_id`` says: a tokenizer padding with another id has its pads
    attended and its token 0 masked."""
    return (np.asarray(token_ids) != 0)[..., None, :]


def embed_negative_wraps(token_ids: Any, W_E: Any) -> np.ndarray:
    """``W_E.T[ids]`` with no range check: -1 returns the last token's column."""
    return np.asarray(W_E, dtype=np.float64).T[np.asarray(token_ids)]


def _vocabulary_fault(kind: str) -> type:
    from collections import Counter

    from nnspec.reference.vocabulary import SPECIAL_TOKENS, Vocabulary, tokenize

    class Faulty(Vocabulary):
        def __init__(self, tokens: Any) -> None:
            if kind == "sorts-words":  # Vocabulary(sorted(set(words))): ids by spelling
                tokens = list(tokens)
                words = sorted(t for t in tokens if t not in SPECIAL_TOKENS)
                tokens = [t for t in tokens if t in SPECIAL_TOKENS] + words
            super().__init__(tokens)

        def decode(self, ids: Any) -> list[str]:
            if kind != "decode-negative-wraps":
                return super().decode(ids)
            out = []
            for i in ids:
                if int(i) >= len(self.tokens):  # an upper bound only
                    raise ValueError(f"id {i} is outside the vocabulary")
                out.append(self.tokens[int(i)])
            return out

        def pad(self, ids_list: Any, length: int | None = None) -> tuple:
            ids, mask = super().pad(ids_list, length)
            return (ids, ids != nets.PAD_ID) if kind == "mask-from-ids" else (ids, mask)

        @classmethod
        def from_sentences(cls, sentences: Any, *, min_count: int = 1) -> Any:
            if kind != "min-count-exclusive":
                return super().from_sentences(sentences, min_count=min_count)
            counts = Counter(t for s in sentences for t in tokenize(s))
            kept = [w for w, c in counts.items() if c > min_count and w not in SPECIAL_TOKENS]
            return cls(sorted(kept, key=lambda w: (-counts[w], w)))

        def to_text(self, ids: Any) -> str:
            if kind != "to-text-past-end":
                return super().to_text(ids)
            return " ".join(t for t in self.decode(ids) if t == "<unk>" or t not in SPECIAL_TOKENS)

    Faulty.__name__ = f"Vocabulary[{kind}]"
    return Faulty


def init_params_embedding_rows(config: Any, seed: int = 0) -> dict:
    """W_E created as (n_vocab, d_model), nn.Embedding's layout, where the documents have one
    column per token: the count of numbers is right, the orientation is not."""
    params = numpy_ref.init_params(config, seed=seed)
    for key in ("W_E", "W_E_src", "W_E_tgt"):
        if key in params:
            params[key] = np.ascontiguousarray(params[key].T)
    return params


def init_params_blocks_aliased(config: Any, seed: int = 0) -> dict:
    """nn.ModuleList([layer] * n): every block the same arrays, an n-layer network with one
    layer's parameters (what the Annotated Transformer's clones() deep-copies to avoid)."""
    params = numpy_ref.init_params(config, seed=seed)
    for stack in ("blocks", "encoder", "decoder"):
        if params.get(stack):
            params[stack] = [params[stack][0]] * len(params[stack])
    return params


def init_params_tied_keeps_w_u(config: Any, seed: int = 0) -> dict:
    """A tied GPT or Transformer given its own W_U (a copy of W_E^T): the network runs untied."""
    params = numpy_ref.init_params(config, seed=seed)
    if getattr(config, "tie_embeddings", False):
        params["W_U"] = params["W_E" if "W_E" in params else "W_E_tgt"].T.copy()
    return params



# ------------------------------------------------------------------------------------------------
# A fourth hunt: layers that ignore what they are asked
# ------------------------------------------------------------------------------------------------


def softmax_temperature_last_axis(x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """The temperature path borrowed from a sampler: softmax(x / T) over the last axis whatever
    ``axis`` asks (the T = 1 path honours it)."""
    if temperature == 1.0:
        return numpy_ref.softmax(x, axis=axis)
    return numpy_ref.softmax(_f64(x) / temperature, axis=-1)


def dense_ignores_activation(a: Any, W: Any, b: Any | None, activation: str | None = "sigmoid") -> np.ndarray:
    """A dense layer with sigmoid hard-wired (the documents' sigma), whatever activation it names."""
    return numpy_ref.dense(a, W, b, activation="sigmoid")


def padding_mask_without_query_axis(token_ids: Any, pad_id: int) -> np.ndarray:
    """torch's key_padding_mask, (B, T), where the pinned mask is (B, 1, T): broadcast against
    (B, T, T) scores it lines the batch up with the queries."""
    return np.asarray(token_ids) != pad_id


def mha_weights_averaged_over_heads(params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None):
    """nn.MultiheadAttention's default average_attn_weights=True: the weights averaged over the
    heads, (..., n_q, n_k), where each head's are due."""
    out, weights = numpy_ref.multi_head_attention(params, x_q, x_kv, n_heads, mask)
    return out, weights.mean(axis=-3)


# ------------------------------------------------------------------------------------------------
# A fourth hunt: networks that drop what the caller or the config gave them
# ------------------------------------------------------------------------------------------------


class GPTLayerNormEpsFixed(numpy_ref.GPT):
    """Layer norms built as nn.LayerNorm(d_model), torch's eps 1e-5, whatever the config's
    layer_norm_eps (a port that never passes config.layer_norm_epsilon: BERT's is 1e-12)."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(replace(config, layer_norm_eps=1e-5), params)


class GPTMasksEndToken(numpy_ref.GPT):
    """attention_mask = ids != pad_token_id with GPT-2's pad_token = eos_token: every <end> in the
    input is hidden as padding (each position still reads itself)."""

    def hidden(self, ids: Any) -> np.ndarray:
        ids = nets._ids(ids)
        p, c = self.params, self.config
        x = nets._embed_with_positions(ids, p["W_E"], p.get("W_P"), c)
        T = ids.shape[-1]
        mask = numpy_ref.causal_mask(T, T) & ((ids != END_ID)[..., None, :] | np.eye(T, dtype=bool))
        for b in p["blocks"]:
            x = nets._block(x, b["attn"], b["norm_1"], b["ffn"], b["norm_2"], c, mask)
        if c.norm_placement == "pre":
            x = numpy_ref.layer_norm(x, p["final_norm"]["gamma"], p["final_norm"]["beta"], c.layer_norm_eps)
        return x


class GPTProbabilitiesDim1(numpy_ref.GPT):
    """F.softmax(logits / T, dim=1): the vocabulary axis of unbatched (T, V) logits, the positions
    of a batch (B, T, V)."""

    def probabilities(self, ids: Any, temperature: float = 1.0) -> np.ndarray:
        return numpy_ref.softmax(self.forward(ids), axis=1, temperature=temperature)


class GPTTopK50(numpy_ref.GPT):
    """Sampling with Hugging Face's default top_k = 50 left on: the tokens outside the 50 most
    probable are never drawn."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        rng = np.random.default_rng(seed)
        out = [int(t) for t in nets._ids(ids)]
        for _ in range(max_new_tokens):
            logits = self.forward(np.array(out))[-1]
            if temperature == 0:
                out.append(int(np.argmax(logits)))
                continue
            p = numpy_ref.softmax(logits, axis=-1, temperature=temperature)
            if p.size > 50:
                p = np.where(p >= np.sort(p)[-50], p, 0.0)
            out.append(nets._draw_token(p / p.sum(), rng))
        return out


class TransformerEncodeIgnoresSrcMask(numpy_ref.Transformer):
    """encode(src_ids, src_mask) rebuilding the padding mask from the ids, the caller's mask
    dropped (a fast path that ignores attention_mask)."""

    def encode(self, src_ids: Any, src_mask: Any = None) -> np.ndarray:
        return super().encode(src_ids, None)


def decoder_layer_ignores_cross_mask(params: Any, y: Any, memory: Any, config: Any,
                                     self_mask: Any = None, cross_mask: Any = None) -> np.ndarray:
    """A decoder block that never hands cross_mask to its cross-attention
    (memory_key_padding_mask dropped inside the layer): padded memory rows are read."""
    return numpy_ref.decoder_layer(params, y, memory, config, self_mask, None)


class TransformerGreedyDoWhile(numpy_ref.Transformer):
    """A do-while decoding loop: greedy_decode(max_len=0) still writes a token."""

    def _generate(self, src_ids: Any, max_len: int, pick: Any) -> list[int]:
        return super()._generate(src_ids, max(1, max_len), pick)


class TransformerGreedyBansSpecials(numpy_ref.Transformer):
    """greedy_decode that never writes <pad> or <start> (bad_words_ids or suppress_tokens left on
    from a generation config): their logits set to -inf before the argmax. Sampling is untouched."""

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        def pick(logits: np.ndarray) -> int:
            banned = np.array(logits, dtype=np.float64)
            banned[[nets.PAD_ID, START_ID]] = -np.inf
            return int(np.argmax(banned))

        return self._generate(src_ids, max_len, pick)


class Seq2SeqGreedyDropsEnd(numpy_ref.Seq2Seq):
    """`if token == eos: break` placed before `out.append(token)`: decoding stops at <end> but
    never writes it."""

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        out = [START_ID]
        for _ in range(max_len):
            token = int(np.argmax(self.forward(src_ids, np.array(out))[-1]))
            if token == END_ID:
                break
            out.append(token)
        return out


# ------------------------------------------------------------------------------------------------
# Precision: faults of a narrower format
# ------------------------------------------------------------------------------------------------
# Each is planted in torch_ref at the precision where it shipped (a float16 accumulator is no fault
# in float64), so its base pins the dtype; a torch base's device is kept. The code is what the
# faulty kernel does, written with torch at the NumPy boundary.


def _sinusoids(angle: np.ndarray, d_model: int) -> np.ndarray:
    """sin at the even columns, cos at the odd ones (the pinned interleaving)."""
    col = np.arange(d_model)
    return np.where(col % 2 == 0, np.sin(angle), np.cos(angle))


def pe_positions_in_bfloat16(n_positions: int, d_model: int, **_: Any) -> np.ndarray:
    """Positions made by torch.arange(n, dtype=model dtype): bfloat16 holds no integer above 256
    exactly, so 257 is 256 and later positions collide (transformers #25681, #29285: rotary
    positions in bfloat16). Angles and sin/cos are exact: only the positions' rounding is wrong."""
    pos = round_to_dtype(np.arange(n_positions, dtype=np.float64), "bfloat16")[:, None]  # (n, 1)
    col = np.arange(d_model)
    angle = pos / 10000.0 ** ((col - col % 2) / d_model)  # (n, d_model)
    return round_to_dtype(_sinusoids(angle, d_model), "bfloat16")


def pe_frequencies_in_float16(n_positions: int, d_model: int, **_: Any) -> np.ndarray:
    """The frequencies 10000^(-2i/d) kept in a buffer that model.half() converted (transformers
    #29496, Mistral's inv_freq): each angle pos * w_i carries w_i's float16 rounding, 2^-11
    relative, which at position 8000 is four radians of phase."""
    col = np.arange(d_model)
    w = round_to_dtype(10000.0 ** (-(col - col % 2) / d_model), "float16")  # (d_model,)
    angle = np.arange(n_positions)[:, None] * w  # exact positions, rounded frequencies
    return round_to_dtype(_sinusoids(angle, d_model), "float16")


def _half_cache_gpt(device: str, dtype: str) -> Callable:
    """torch_ref's GPT whose KV cache is stored in float16 whatever the model's dtype (llama.cpp's
    f16 cache by default; a preallocated half buffer): each cached step reads rounded keys and
    values, so cached decoding drifts from the parallel forward pass."""
    import torch
    from nnspec.reference import torch_ref

    from .implementations import _torch_network_class

    class HalfCacheGPT(torch_ref.GPT):
        def forward_cached(self, ids: Any, cache: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
            logits, cache = super().forward_cached(ids, cache)
            stored = [{name: t.to(torch.float16).to(t.dtype) for name, t in layer.items()}
                      for layer in cache["layers"]]
            return logits, {"length": cache["length"], "layers": stored}

    return _torch_network_class(HalfCacheGPT, device, dtype)


def _gradients_through_half_mlp(device: str) -> Callable:
    """torch_ref's float32 MLP whose gradients pass through a float16 buffer on the way out (a
    preallocated half gradient store, or ``.half()`` on the way to an optimiser): each gradient
    carries float16's relative rounding, 4.9e-4, which the closed-form gradient tolerance at
    float32 (4096 ulps) allows (ninth hunt)."""
    import torch
    from nnspec.reference import torch_ref

    from .implementations import _torch_network_class

    class HalfGradientsMLP(torch_ref.MLP):
        def gradients(self, x: Any, y: Any) -> tuple[list[Any], list[Any]]:
            dW, db = super().gradients(x, y)
            return ([g.to(torch.float16).to(g.dtype) for g in dW], [g.to(torch.float16).to(g.dtype) for g in db])

    return _torch_network_class(HalfGradientsMLP, device, "float32")


def _half_summed_mlp(device: str, dtype: str = "float16") -> Callable:
    """torch_ref's float16 (or ``dtype``) MLP whose batch gradient is the sum of the per-example
    gradients kept in the format, example by example (a hand-written backpropagation loop,
    ``grad += delta_i a_i^T``), then divided by n: each example's gradient is right, but once the
    running sum is 2048 times an addend (bfloat16: 256) the addend is lost, so the average of
    thousands of examples comes out half or less."""
    import torch
    from nnspec.reference import torch_ref
    from nnspec.reference.torch_ref import networks as tnets

    from .implementations import _torch_network_class

    class HalfSummedMLP(torch_ref.MLP):
        def gradients(self, x: Any, y: Any) -> tuple[list[Any], list[Any]]:
            W0 = self.params["layers"][0]["W"]
            x, y = tnets._as(x, W0), tnets._as(y, W0)
            layers = [(W.detach().requires_grad_(True), b.detach().requires_grad_(True)) for W, b in self._layers()]
            with torch.enable_grad():
                zs, activations = self._forward(x, layers)
                # delta_i(l) = dC_i/dz_i(l): each example's own cost, summed so one pass gives them all
                deltas = torch.autograd.grad(tnets.squared_error_cost(activations[-1], y).sum(), zs)
            dW = [torch.zeros_like(W) for W, _ in layers]
            db = [torch.zeros_like(b) for _, b in layers]
            for i in range(len(x)):  # the running sums are tensors of the model's format
                for l, (delta, a) in enumerate(zip(deltas, activations[:-1], strict=True)):
                    dW[l] = dW[l] + torch.outer(delta[i], a[i].detach())
                    db[l] = db[l] + delta[i]
            return [g / len(x) for g in dW], [g / len(x) for g in db]

    return _torch_network_class(HalfSummedMLP, device, dtype)


def _sinusoids_as_learned(
    config: Any, params: dict[str, Any], table: np.ndarray, names: tuple[str, ...]
) -> tuple[Any, dict[str, Any]]:
    """A torch_ref network's config and params adding ``table`` (context, d_model), a faulty
    sinusoid table, as its learned positions ``names``: the fault planted, the network's code as
    it is. The table takes the dtype and device of the network's other weights."""
    import torch

    weight = next(v for v in params.values() if isinstance(v, torch.Tensor))
    learned = torch.as_tensor(table, dtype=weight.dtype, device=weight.device)
    return replace(config, positional="learned"), {**params, **dict.fromkeys(names, learned)}


def _gpt_positions_in_bfloat16(device: str) -> Callable:
    """torch_ref's bfloat16 GPT whose position indices come from torch.arange(T, dtype=bfloat16), as
    code that builds positions beside the activations does: bfloat16 holds no integer above 256
    exactly, so a learned table's rows and a sinusoid's angles are read at rounded positions, and
    tokens 257 to 2050 share a few dozen of them. Only a context past 256 shows it. Planted as the
    table the GPT adds: the learned rows at the rounded positions, or the sinusoids at them
    (:func:`pe_positions_in_bfloat16`), added as a learned table."""
    import torch
    from nnspec.reference import torch_ref

    from .implementations import _torch_network_class

    class PositionsInBfloat16GPT(torch_ref.GPT):
        def __init__(self, config: Any, params: dict[str, Any]) -> None:
            W_E = params["W_E"]
            if config.positional == "learned":
                rounded = round_to_dtype(np.arange(config.context, dtype=np.float64), "bfloat16")
                rounded = np.minimum(rounded, config.context - 1)  # 399 rounds to 400: the last row
                params = {**params, "W_P": params["W_P"][torch.as_tensor(rounded, device=W_E.device).long()]}
            elif config.positional == "sinusoidal":
                table = pe_positions_in_bfloat16(config.context, config.d_model)  # (context, d_model)
                config, params = _sinusoids_as_learned(config, params, table, ("W_P",))
            super().__init__(config, params)

    return _torch_network_class(PositionsInBfloat16GPT, device, "bfloat16")


def _transformer_sinusoids_in_float32(device: str) -> Callable:
    """torch_ref's float64 Transformer whose sinusoid tables hold float32 values, as Hugging Face's
    Marian builds them (``MarianSinusoidalPositionalEmbedding.create_weight`` fills its table
    through ``torch.FloatTensor``, whatever the model's dtype): a float64 model whose positions are
    float32-accurate. Planted as the table both stacks add, as a learned one."""
    from nnspec.reference import torch_ref

    from .implementations import _torch_network_class

    class SinusoidsInFloat32Transformer(torch_ref.Transformer):
        def __init__(self, config: Any, params: dict[str, Any]) -> None:
            if config.positional == "sinusoidal":
                table = round_to_dtype(numpy_ref.positional_encoding(config.context, config.d_model), "float32")
                config, params = _sinusoids_as_learned(config, params, table, ("W_P_src", "W_P_tgt"))
            super().__init__(config, params)

    return _torch_network_class(SinusoidsInFloat32Transformer, device, "float64")


def attention_values_summed_in_bfloat16(
    q: Any, k: Any, v: Any, mask: Any | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Attention whose output sum_j w_j v_j is accumulated key by key in bfloat16 (a kernel whose
    accumulator has the data's type): once the sum nears 1, an addend below 2^-9 is lost, so past
    a few hundred keys of weight 1/n the output stalls."""
    out, weights = numpy_ref.scaled_dot_product_attention(q, k, v, mask)
    w = round_to_dtype(weights, "bfloat16")  # (..., n_q, n_k)
    v = round_to_dtype(np.asarray(v, dtype=np.float64), "bfloat16")  # (..., n_k, d_v)
    total = np.zeros(np.shape(out))
    for j in range(w.shape[-1]):
        total = round_to_dtype(total + round_to_dtype(w[..., :, j, None] * v[..., None, j, :], "bfloat16"),
                               "bfloat16")
    return total, w


def attention_scaled_after_the_product_in_float16(
    q: Any, k: Any, v: Any, mask: Any | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores formed as q k^T in float16 and divided by sqrt(d_k) afterwards (the equation's order,
    torch_ref's own before the eighth hunt, Hugging Face GPT-2's without ``reorder_and_upcast_attn``):
    past |q . k| = 65504 the product is inf, though the scaled score fits, and a row holding inf
    softmaxes to NaN."""
    import torch
    from nnspec.reference import torch_ref

    q, k, v, mask = torch_ref.to_torch((q, k, v, mask), dtype=torch.float16)  # the mask stays boolean
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (..., n_q, n_k): inf before the division
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch_ref.softmax(scores, axis=-1)
    return torch_ref.to_numpy((weights @ v, weights))


def layer_norm_variance_in_float16(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """(x - mean).pow(2).mean(-1) with the squares in float16 (T5's layer norm before
    transformers #10956): a feature 256 from its token's mean squares past 65504 to inf."""
    import torch
    from nnspec.reference.torch_ref import to_numpy, to_torch

    h = to_torch(np.asarray(x, dtype=np.float64), dtype=torch.float16)  # inf past 65504
    centred = h - h.mean(-1, keepdim=True)
    var = centred.pow(2).mean(-1, keepdim=True)  # float16 squares: inf past 256
    y = centred.float() / torch.sqrt(var.float() + eps)
    gamma, beta = to_torch((np.asarray(gamma), np.asarray(beta)), dtype=torch.float32)
    return to_numpy((gamma * y + beta).half())


def _running_sum_float16(x: np.ndarray) -> np.ndarray:
    """A sum over the last axis accumulated element by element in float16, as a kernel whose
    accumulator has the data's type: past 2048 adding 1 changes nothing."""
    return np.cumsum(x.astype(np.float16), axis=-1, dtype=np.float16)[..., -1:].astype(np.float64)


def layer_norm_half_accumulator(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
    """Mean and variance accumulated in float16 (onnxruntime #29034, TensorRT #2564): a wide
    token's sums stop growing, so its mean and variance come out too small."""
    x = np.asarray(x, dtype=np.float16).astype(np.float64)
    d = x.shape[-1]
    mean = _running_sum_float16(x) / d
    var = _running_sum_float16((x - mean) ** 2) / d
    y = np.asarray(gamma) * (x - mean) / np.sqrt(var + eps) + np.asarray(beta)
    return y.astype(np.float16).astype(np.float64)


def softmax_half_running_sum(x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """e^(x - max) rounded to float16 and its denominator accumulated in float16 (sonos/tract
    #2586): over 4096 equal logits the sum stalls at 2048, and each output is 1/2048."""
    z = np.moveaxis(np.asarray(x, dtype=np.float64) / temperature, axis, -1)
    e = np.exp(z - z.max(axis=-1, keepdims=True)).astype(np.float16).astype(np.float64)
    p = (e / _running_sum_float16(e)).astype(np.float16).astype(np.float64)
    return np.moveaxis(p, -1, axis)


def softmax_temperature_in_float16(x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """logits / T divided in float16 before the (otherwise float32) softmax (vLLM #890): a small
    temperature overflows the quotient to inf, and the softmax returns NaN."""
    import torch
    from nnspec.reference.torch_ref import to_numpy, to_torch

    scaled = to_torch(np.asarray(x, dtype=np.float64), dtype=torch.float16) / temperature  # inf past 65504
    return to_numpy(torch.softmax(scaled.float(), dim=axis).half())


def tanh_via_sigmoid_in_float16(z: Any) -> np.ndarray:
    """tanh(z) = 2 sigma(2z) - 1 evaluated in float16: near 0 the subtraction cancels, and
    tanh(2^-10) loses half its value (the identity ACT-TANH states, used as the recipe)."""
    import torch
    from nnspec.reference.torch_ref import to_numpy, to_torch

    s = torch.sigmoid(to_torch(np.asarray(z, dtype=np.float64), dtype=torch.float16) * 2)  # one rounding
    return to_numpy(2 * s - 1)


def attention_in_bfloat16(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A float32 model's attention run inside a torch.autocast(bfloat16) region left open:
    8 significand bits for scores, weights and output."""
    import torch
    from nnspec.reference import torch_ref

    q, k, v, mask = torch_ref.to_torch((q, k, v, mask), dtype=torch.bfloat16)  # the mask stays boolean
    return torch_ref.to_numpy(torch_ref.scaled_dot_product_attention(q, k, v, mask))


def _round_to_tf32(x: Any) -> np.ndarray:
    """float32 with its significand cut to TF32's 10 bits (round to nearest even)."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & ~np.uint64(0x1FFF)
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def attention_scores_in_tf32(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """q k^T through TF32 tensor cores (torch.backends.cuda.matmul.allow_tf32, on by default in
    PyTorch 1.7 to 1.11): a float32 model's scores from 10-bit significands."""
    return numpy_ref.scaled_dot_product_attention(_round_to_tf32(q), _round_to_tf32(k), v, mask)


def _attention_with_mask_value(fill: float | None, how: str, dtype_name: str) -> Callable:
    def attention(q: Any, k: Any, v: Any, mask: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
        import torch
        from nnspec.reference.torch_ref import to_numpy, to_torch

        dtype = getattr(torch, dtype_name)
        q, k, v, allowed = to_torch((q, k, v, mask), dtype=dtype)  # the mask stays boolean
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (..., n_q, n_k)
        if mask is not None:
            value = torch.finfo(dtype).min if fill is None else fill
            if how == "add":  # BERT: scores + (1 - mask) * -10000.0
                scores = scores + (~allowed).to(dtype) * value
            else:  # Hugging Face: scores.masked_fill(~mask, finfo.min)
                scores = scores.masked_fill(~allowed, value)
        weights = torch.softmax(scores.float(), dim=-1).to(dtype)
        return to_numpy((weights @ v, weights))

    return attention


# A finite large negative for the masked scores instead of -inf: BERT's additive -10000 (float32)
# and Hugging Face's finfo.min (float16). A masked score is then e^-10000 = 0, but a row whose keys
# are all masked has all scores equal, and its weights come out uniform, not zero.
attention_mask_minus_1e4 = _attention_with_mask_value(-10000.0, "add", "float32")
attention_mask_fill_finfo_min = _attention_with_mask_value(None, "fill", "float16")


# ------------------------------------------------------------------------------------------------
# The catalogue
# ------------------------------------------------------------------------------------------------


def _m(
    id: str, models: str, expected: tuple[str, ...], *, crash: bool = False, survives: str = "",
    profile: str = "quick", **overrides: Any,
) -> Mutant:
    def build(base: str) -> Implementation:
        return patched(base, name=id, **overrides)

    return Mutant(id, models, tuple(overrides), expected, build, crash=crash, survives=survives,
                  profile=profile)


def _device_of(base: str) -> str:
    """A torch base's device (``torch:cuda:float32`` -> cuda); cpu for any other base."""
    parts = base.split(":")
    return parts[1] if parts[0] == "torch" and len(parts) > 1 else "cpu"


def _at_precision(
    id: str, models: str, expected: tuple[str, ...], dtype: str, **overrides: Any
) -> Mutant:
    """A fault of one format, planted in torch_ref at that dtype (on a torch base's device)."""

    def build(base: str) -> Implementation:
        return patched(f"torch:{_device_of(base)}:{dtype}", name=id, **overrides)

    return Mutant(id, models, tuple(overrides), expected, build, base=f"torch:cpu:{dtype}")


def _network_at_precision(
    id: str, models: str, network: str, expected: tuple[str, ...], dtype: str,
    network_class: Callable[[str], Callable], **kwargs: Any,
) -> Mutant:
    """A fault of one format in a network, planted in torch_ref at that dtype (on a torch base's
    device): ``network_class(device)`` is the faulty class, as :func:`_torch_network_class` wraps it."""

    def build(base: str) -> Implementation:
        return patched(f"torch:{_device_of(base)}:{dtype}", name=id, **{network: network_class(_device_of(base))})

    return Mutant(id, models, (network,), expected, build, base=f"torch:cpu:{dtype}", **kwargs)


MUTANTS: tuple[Mutant, ...] = (
    # softmax
    _m("softmax-wrong-axis", "softmax over a hard-coded axis 0 (dim=0) instead of the requested axis",
       ("SM-SUM", "SM-FORMULA"), softmax=softmax_first_axis),
    _m("softmax-no-max-shift", "softmax as exp(x)/sum exp(x) without subtracting the max: overflows "
       "to inf/NaN at large logits", ("SM-SHIFT",), crash=True, softmax=softmax_no_max_shift),
    _m("softmax-temperature-multiplied", "temperature applied as logits * T instead of logits / T",
       ("SM-TEMP",), softmax=softmax_temperature_multiplied),
    # attention
    _m("sdpa-no-scaling", "attention scores q k^T without the 1/sqrt(d_k) factor",
       ("ATT-SCALE", "ATT-WORKED-EXAMPLE"), scaled_dot_product_attention=sdpa_no_scaling),
    _m("sdpa-scale-by-d-k", "attention scores divided by d_k instead of sqrt(d_k)",
       ("ATT-SCALE", "ATT-WORKED-EXAMPLE"), scaled_dot_product_attention=sdpa_scale_by_d_k),
    _m("mask-polarity-inverted", "a boolean mask read as True = masked (nn.MultiheadAttention's "
       "attn_mask) where True = may attend", ("ATT-MASK-ZERO", "ATT-CAUSAL"),
       scaled_dot_product_attention=sdpa_mask_inverted),
    _m("mask-after-softmax", "mask multiplied into the weights after the softmax: masked entries "
       "zeroed but rows not renormalised", ("ATT-MASK-RENORM",),
       scaled_dot_product_attention=sdpa_mask_after_softmax),
    _m("fully-masked-row-nan", "a query row with every key masked goes through softmax(-inf...) = "
       "0/0 and returns NaN", ("ATT-FULLY-MASKED",), crash=True,
       scaled_dot_product_attention=sdpa_fully_masked_nan),
    _m("attention-softmax-over-queries", "attention weights softmaxed over the query axis "
       "(dim=-2) instead of the key axis", ("ATT-ROWS-SUM", "ATT-ORACLE"),
       scaled_dot_product_attention=sdpa_softmax_over_queries),
    _m("causal-mask-inverted", "causal mask built as triu(k=1), the True = masked convention, "
       "where True must mean may attend", ("ATT-CAUSAL",), causal_mask=causal_mask_inverted),
    _m("causal-mask-hides-diagonal", "causal mask built with j < i (triu offset off by one): a "
       "position cannot attend to itself", ("ATT-CAUSAL",), causal_mask=causal_mask_strict),
    _m("causal-mask-top-left", "causal mask tril(ones(n_q, n_k)) aligned top-left: wrong when "
       "queries are the last positions of a longer key sequence (cached decoding)", ("ATT-CAUSAL",),
       causal_mask=causal_mask_top_left),
    _m("padding-mask-inverted", "padding mask True on the pad tokens (an 'is padding' mask) where "
       "True must mean a real token", ("ATT-PADDING",), padding_mask=padding_mask_inverted),
    _m("heads-split-without-transpose", "heads split with view(B, nh, T, hs) instead of "
       "view(B, T, nh, hs).transpose(1, 2)", ("MHA-CONCAT", "ATT-ORACLE"),
       multi_head_attention=mha_split_without_transpose),
    _m("mha-first-head-mask", "a mask per head (..., n_heads, n_q, n_k) taken as one shared "
       "mask: the first head's applied to every head", ("ATT-MASK-ZERO", "ATT-ORACLE"),
       multi_head_attention=mha_first_head_mask),
    _m("heads-merged-without-transpose", "heads merged with view(B, T, C) straight from "
       "(B, nh, T, hs), the transpose back forgotten", ("MHA-CONCAT", "ATT-ORACLE"),
       multi_head_attention=mha_merge_without_transpose),
    _m("mha-fully-masked-nan", "multi-head attention whose heads use the naive -inf softmax, so "
       "a query with no allowed key returns NaN (torch.nn.MultiheadAttention does)",
       ("MHA-FULLY-MASKED",), crash=True, multi_head_attention=mha_fully_masked_nan),
    _m("luong-dot-scaled", "Luong's dot score divided by sqrt(d), the Transformer's scaling carried "
       "into dot attention", ("DOT-ATT",), dot_attention=dot_attention_scaled),
    # positions
    _m("pe-concatenated-halves", "sinusoidal encoding laid out as [sin | cos] halves "
       "(tensor2tensor) instead of interleaved sin/cos columns", ("PE-FORMULA", "PE-TABLE"),
       positional_encoding=pe_concatenated),
    _m("pe-exponent-i-over-d", "frequency exponent i/d_model instead of 2i/d_model",
       ("PE-FORMULA", "PE-TABLE"), positional_encoding=pe_exponent_i_over_d),
    # normalisation and feed-forward
    _m("layer-norm-unbiased-variance", "layer norm with the unbiased variance (torch.var's ddof=1 "
       "default) instead of the biased one", ("LN-STATS",), layer_norm=layer_norm_unbiased),
    _m("layer-norm-one-pass-variance", "layer norm whose variance is E[x^2] - E[x]^2 in one pass: "
       "a token far from 0 loses its spread to cancellation", ("LN-INVARIANT",),
       layer_norm=layer_norm_one_pass_variance),
    _m("batch-norm-one-pass-variance", "batch norm whose variance is E[x^2] - E[x]^2 in one pass: "
       "a feature far from 0 loses its spread to cancellation", ("BN-STATS",),
       batch_norm=batch_norm_one_pass_variance),
    _m("layer-norm-wrong-axis", "layer norm statistics over the batch axis instead of each "
       "vector's features", ("LN-STATS", "LN-INDEPENDENT"), layer_norm=layer_norm_wrong_axis),
    _m("layer-norm-no-affine", "layer norm without its learned gain gamma and bias beta",
       ("LN-AFFINE",), layer_norm=layer_norm_no_affine),
    _m("batch-norm-per-example", "batch norm that normalises each example over its own features "
       "(layer norm's axis)", ("BN-STATS", "BN-DEPENDENT"), batch_norm=batch_norm_per_example),
    _m("ffn-without-activation", "position-wise feed-forward with the nonlinearity between W_1 and "
       "W_2 dropped", ("FFN-FORMULA",), feed_forward=ffn_without_activation),
    # blocks and networks
    _m("missing-residual", "sub-layers without the residual connection: LN(Sublayer(x))",
       ("RESIDUAL", "ENC-LAYER"), Transformer=NoResidualTransformer),
    _m("encoder-layer-missing-residual", "an encoder block (the unit a model stacks) written "
       "without its skip connections: LN(Sublayer(x))", ("RESIDUAL", "ENC-LAYER"),
       encoder_layer=encoder_layer_no_residual),
    _m("decoder-layer-default-unmasked", "a decoder block that takes self_mask=None as no mask, "
       "where the default is the causal mask: each target position reads later ones",
       ("DEC-LAYER",), decoder_layer=decoder_layer_unmasked),
    _m("pre-ln-where-post-ln-declared", "pre-LN blocks (GPT-2 code) where the config declares "
       "post-LN (Vaswani et al.)", ("ENC-LAYER", "DEC-LAYER"), Transformer=PreLNTransformer),
    _m("cross-attention-causal-mask", "the decoder's causal mask also passed to cross-attention",
       ("DEC-CROSS-ALL",), Transformer=CausalCrossAttentionTransformer),
    _m("dropout-in-eval", "dropout (p = 0.1) still active at evaluation: model.eval() forgotten",
       ("ENC-LAYER", "DEC-LAYER"), Transformer=DropoutInEvalTransformer),
    _m("embeddings-not-scaled", "token embeddings not multiplied by sqrt(d_model) although the "
       "config asks for it", ("PE-ADDED", "DEC-LAYER"), Transformer=UnscaledEmbeddingTransformer),
    _m("decoder-without-positions", "the positional encoding added to the source embeddings only: "
       "the decoder reads its target without positions", ("PE-ADDED", "DEC-LAYER"),
       Transformer=DecoderWithoutPositionsTransformer),
    _m("greedy-ignores-end-token", "greedy decoding that keeps generating after the end token",
       ("GREEDY",), Transformer=NoStopTransformer),
    _m("gpt-without-causal-mask", "decoder-only self-attention without its causal mask: "
       "position t reads tokens after t", ("GPT-NEXT", "DEC-AUTOREGRESSIVE"), GPT=UnmaskedGPT),
    Mutant("kv-cache-restarts-positions", "KV-cache decoding that restarts the positions of each "
           "new piece at 0 instead of continuing from the cache length", ("GPT",),
           ("DEC-AUTOREGRESSIVE",), _build_kv_cache, base="torch:cpu:float64"),
    _m("seq2seq-source-not-reversed", "reverse_source ignored: the source read in order",
       ("S2S-REVERSE",), Seq2Seq=NeverReversingSeq2Seq),
    _m("lstm-gate-order-ifog", "LSTM gates unpacked i, f, o, g (char-rnn's order) from weights "
       "stacked i, f, g, o (torch's and Keras' order)", ("LSTM-CELL",), lstm_cell=lstm_cell_ifog),
    # activations, cost, backpropagation
    _m("sigmoid-prime-as-sigma", "sigmoid derivative written as sigma(z) instead of "
       "sigma(z)(1 - sigma(z))", ("ACT-SIGMOID",), sigmoid_prime=sigmoid_prime_as_sigma),
    _m("backprop-sigma-as-derivative", "backpropagation multiplying by sigma(z) where sigma'(z) "
       "belongs", ("BP-CHAIN-1", "BP-FULL"), MLP=SigmaAsDerivativeMLP),
    _m("gelu-always-tanh", "GELU that ignores approximate='none' and always computes the tanh "
       "approximation (gelu_new where the exact erf GELU is asked for)", ("ACT-GELU",),
       gelu=gelu_always_tanh),
    _m("relu-prime-as-relu", "ReLU's derivative returned as relu(z) instead of [z > 0]",
       ("ACT-RELU",), relu_prime=relu_prime_as_relu),
    _m("tanh-prime-as-one-minus-z-squared", "tanh'(z) written 1 - z^2 instead of 1 - tanh(z)^2",
       ("ACT-TANH",), tanh_prime=tanh_prime_one_minus_z_squared),
    _m("activation-unknown-is-identity", "activation(name) looked up with a default of the identity: "
       "a misspelt name becomes a linear layer", ("ACT-BY-NAME",),
       activation=activation_unknown_is_identity),
    _m("backprop-relu-as-derivative", "backpropagation through ReLU multiplying by relu(z) where "
       "relu'(z) = [z > 0] belongs", ("BP-FULL",), MLP=ReluPrimeAsReluMLP),
    _m("backprop-gelu-tanh-derivative", "exact-GELU network backpropagated with the tanh "
       "approximation's derivative", ("BP-FULL",), MLP=GeluTanhDerivativeMLP),
    _m("bias-gradient-not-summed", "dC/db taken from one example's delta (a loop variable left "
       "over) instead of reduced over the batch", ("GD-AVERAGE",), MLP=BiasGradientLastExampleMLP),
    _m("minibatch-gradient-summed", "the minibatch gradient summed over the examples instead of "
       "averaged", ("GD-AVERAGE",), MLP=SummedGradientMLP),
    _m("cost-mean-over-outputs", "squared-error cost averaged over output neurons (mse_loss) "
       "where the documents sum them", ("COST-SQ",), squared_error_cost=squared_error_mean),
    # padding in the encoder-decoder, generation and sampling
    _m("inference-without-source-mask", "greedy decoding whose loop decodes without the source's "
       "padding mask (forward keeps it): a padded source changes the tokens written",
       ("NET-PADDING",), Transformer=InferenceWithoutSourceMaskTransformer),
    _m("gpt-probabilities-ignore-temperature", "GPT.probabilities accepting a temperature and "
       "dropping it: softmax(logits) whatever T", ("OUT-DISTRIBUTION",),
       GPT=TemperatureIgnoringProbabilitiesGPT),
    _m("encoder-ignores-padding", "the encoder attends to the source's pad tokens: its padding "
       "mask never built (src_key_padding_mask left out)", ("NET-PADDING",),
       Transformer=PaddingBlindEncoderTransformer),
    _m("cross-attention-ignores-padding", "the decoder's cross-attention reads the memory at pad "
       "positions: no source mask passed (memory_key_padding_mask forgotten)", ("NET-PADDING",),
       Transformer=PaddingBlindCrossAttentionTransformer),
    _m("gpt-generate-first-position", "generation reads the logits at position 0 instead of the "
       "last one (logits[:, 0] for logits[:, -1])", ("GPT-GENERATE",), GPT=FirstPositionGenerateGPT),
    _m("gpt-generate-temperature-multiplied", "generation samples from softmax(logits * T) instead "
       "of softmax(logits / T)", ("GPT-GENERATE", "SAMPLE-DIST"), GPT=TemperatureMultipliedGenerateGPT),
    _m("gpt-generate-ignores-seed", "generation draws from an unseeded generator: the seed argument "
       "ignored, no run reproducible", ("SAMPLE-DIST",), GPT=UnseededGenerateGPT),
    _m("transformer-sample-ignores-seed", "sampling with a hard-wired seed: the seed argument "
       "ignored, every call draws the same tokens", ("SAMPLE-DIST",), Transformer=FixedSeedSampleTransformer),
    # training, parameter accounting, tokens, recurrence
    _m("mlp-train-drops-last-batch", "SGD whose epoch skips the smaller last minibatch "
       "(range(0, N - B + 1, B), DataLoader(drop_last=True)) when B does not divide N",
       ("SGD-PARTITION",), MLP=DropsLastBatchMLP),
    _m("mlp-train-clips-gradient-norm", "SGD whose loop clips each minibatch's gradient to a global "
       "norm of 1 (nanoGPT's grad_clip, clip_grad_norm_, Keras' clipnorm)", ("SGD-PARTITION",),
       MLP=ClipsGradientNormMLP),
    _m("parameter-count-tied-twice", "a parameter count that adds W_U although it is tied to W_E "
       "(the shared matrix counted twice)", ("PARAM-COUNT",),
       parameter_count=parameter_count_tied_twice),
    _m("parameter-count-forgets-final-norm", "a full parameter count without the final layer norm "
       "of a pre-LN stack (GPT-2's ln_f)", ("PARAM-COUNT", "GPT3-COUNTS"),
       parameter_count=parameter_count_forgets_final_norm),
    _m("vocab-end-token-is-start", "encode(..., add_end=True) appends the <start> id where <end> "
       "belongs", ("TOK-START-END",), Vocabulary=_vocabulary_end_is_start()),
    _m("tokenize-word-regex", "tokenising with re.findall(r'\\w+|[^\\w\\s]'), which splits "
       "Devanagari words at their vowel signs", ("TOK-SPLIT",), tokenize=tokenize_word_regex),
    _m("lstm-ignores-initial-state", "an LSTM layer that drops the (h0, c0) it is given and starts "
       "from zeros", ("LSTM-SEQ",), lstm=lstm_ignores_initial_state),
    # wiring only the documents' data flow catches when the oracle shares it
    _m("gpt-drops-ffn-residual", "a GPT block whose feed-forward sub-layer lost its skip connection "
       "(x = FFN(LN(x)))", ("GPT-COMPOSE",), GPT=GPTDropsFFNResidual),
    _m("gpt-no-final-norm", "a pre-LN GPT without its final layer norm (ln_f) before the "
       "unembedding", ("GPT-COMPOSE",), GPT=GPTNoFinalNorm),
    _m("gpt-positional-none-adds-sinusoid", "positional='none' falling into the sinusoidal else "
       "branch: a position table added where none is asked for", ("GPT-COMPOSE",), GPT=GPTNoneAddsSinusoid),
    _m("gpt-ignores-scale-embeddings", "GPT-2 code that never scales the embeddings by "
       "sqrt(d_model), whatever scale_embeddings says", ("GPT-COMPOSE",), GPT=GPTIgnoresScaleEmbeddings),
    _m("gpt-positions-from-batch-length", "positions arange(len(ids)): on a batch (B, T) the batch "
       "size, not the sequence length", ("NET-BATCH",), crash=True, GPT=GPTPositionsFromLen),
    _m("tied-to-source-embedding", "an encoder-decoder's tied output layer read from the source "
       "embedding W_E_src^T instead of the target's", ("NET-LOGITS",), Transformer=TiedToSourceTransformer),
    _m("forward-without-encoder-norm", "forward runs its own encoder loop and forgets pre-LN's final "
       "encoder norm, which encode (used by generation) has", ("NET-LOGITS",),
       Transformer=ForwardWithoutEncoderNormTransformer),
    _m("greedy-without-history", "each decoding step fed only the last token written (a cached step "
       "without its cache)", ("GREEDY",), profile="ci", Transformer=GreedyWithoutHistoryTransformer),
    _m("sample-zero-temperature-raises", "sample always divides by T: temperature 0 raises instead "
       "of decoding greedily", ("GREEDY",), crash=True, Transformer=ZeroTemperatureRaisesTransformer),
    _m("gpt-generate-reseeds-each-step", "default_rng(seed) (torch.manual_seed) inside the token "
       "loop: every step draws the same u", ("SAMPLE-DIST",), GPT=ReseedingGPT),
    _m("transformer-sample-reseeds-each-step", "Transformer.sample seeding a new generator at every "
       "step: successive tokens are not independent draws", ("SAMPLE-DIST",), Transformer=ReseedingTransformer),
    _m("gpt-generate-at-least-one-token", "a do-while decoding loop: max_new_tokens=0 still appends "
       "a token", ("GPT-GENERATE",), GPT=AtLeastOneTokenGPT),
    _m("bahdanau-current-state", "Bahdanau scores with s_t, the state just computed, instead of "
       "s_{t-1}", ("S2S-COMPOSE",), Seq2Seq=BahdanauCurrentState),
    _m("luong-previous-state", "Luong scores with s_{t-1} instead of the current state s_t",
       ("S2S-COMPOSE",), Seq2Seq=LuongPreviousState),
    _m("attention-concat-swapped", "attentional state tanh(W_c [ctx_t; s_t]) (Luong's paper writes "
       "[c_t; h_t]) where the layout is [s_t; ctx_t]", ("S2S-COMPOSE",), Seq2Seq=AttentionConcatSwapped),
    _m("decoder-init-from-top", "every decoder layer starts from the top encoder layer's final "
       "(h, c) (h_n[-1] broadcast)", ("S2S-COMPOSE",), Seq2Seq=DecoderInitFromTop),
    _m("attend-bottom-encoder-layer", "attention reads the first encoder layer's outputs instead of "
       "the top layer's", ("S2S-COMPOSE",), Seq2Seq=AttendBottomLayer),
    _m("bahdanau-s0-zero", "Bahdanau's first score uses s_0 = 0 instead of the encoder's final "
       "hidden state", ("S2S-COMPOSE",), Seq2Seq=BahdanauS0Zero),
    _m("seq2seq-reverse-batch-axis", "the source reversed with torch.flip(src, [0]) under "
       "batch_first: a batch's order reversed, not each sentence", ("NET-BATCH",),
       Seq2Seq=ReverseBatchAxisSeq2Seq),
    _m("causal-mask-offset-clamped", "a bottom-right causal mask whose offset n_k - n_q is "
       "clamped at 0: with more queries than keys the first ones see a key", ("ATT-CAUSAL",),
       causal_mask=causal_mask_offset_clamped),
    _m("padding-mask-pad-id-zero", "a padding mask hard-wired to ids != 0 whatever the pad id "
       "(GPT-2's tokenizers pad with another)", ("ATT-PADDING",), padding_mask=padding_mask_pad_id_zero),
    _m("seq2seq-greedy-reverses-twice", "a decoding loop that reverses the source before calling "
       "a forward pass that reverses it again", ("S2S-EOS",), Seq2Seq=ReversesTwiceSeq2Seq),
    _m("mlp-train-no-shuffle", "MLP.train never shuffles: every epoch steps through the "
       "minibatches in the data's given order (DataLoader(shuffle=False))", ("SGD-PARTITION",),
       MLP=TrainsWithoutShuffling),
    _m("mlp-train-same-order-each-epoch", "one permutation for all epochs (or default_rng(seed) "
       "re-created inside the epoch loop): every epoch visits the same minibatches",
       ("SGD-PARTITION",), MLP=SameOrderEachEpoch),
    # ids, vocabularies and initial parameters
    _m("embed-negative-wraps", "an embedding lookup W_E.T[ids] with no range check: id -1 (a pad or "
       "ignore_index) silently returns the last token's vector", ("EMB-LOOKUP",), embed=embed_negative_wraps),
    _m("vocab-decode-negative-wraps", "decode as tokens[i] behind an upper bound check only: id -1 "
       "decodes as the last word", ("TOK-ROUNDTRIP",), Vocabulary=_vocabulary_fault("decode-negative-wraps")),
    _m("vocab-mask-from-ids", "a padding mask computed as ids != PAD_ID after padding: a <pad> "
       "written in the text (or a pad id shared with eos) is masked", ("TOK-PAD",),
       Vocabulary=_vocabulary_fault("mask-from-ids")),
    _m("vocab-min-count-exclusive", "from_sentences keeping words seen more than min_count times "
       "(c > min_count): words seen once become <unk>", ("TOK-BUILD",),
       Vocabulary=_vocabulary_fault("min-count-exclusive")),
    _m("vocab-to-text-past-end", "to_text dropping <end> like the other specials instead of "
       "stopping there: tokens after <end> are read as the sentence", ("TOK-START-END",),
       Vocabulary=_vocabulary_fault("to-text-past-end")),
    _m("init-params-tied-keeps-W_U", "init_params giving a tied GPT or Transformer its own W_U: the "
       "network runs untied", ("PARAM-COUNT",), init_params=init_params_tied_keeps_w_u),
    _m("init-params-embedding-rows", "init_params giving W_E nn.Embedding's (n_vocab, d_model) "
       "layout where the documents have a column per token", ("PARAM-COUNT",),
       init_params=init_params_embedding_rows),
    _m("init-params-blocks-aliased", "init_params building the stack as [block] * n "
       "(nn.ModuleList([layer] * N)): one layer's arrays n times", ("PARAM-COUNT",),
       init_params=init_params_blocks_aliased),
    _m("vocab-sorts-words", "Vocabulary(sorted(set(words))): the given list re-ordered, ids by "
       "spelling (a pretrained embedding's rows read for the wrong words)", ("TOK-UNK",),
       Vocabulary=_vocabulary_fault("sorts-words")),
    _m("gpt-layer-norm-eps-fixed", "a GPT whose layer norms are nn.LayerNorm(d_model), eps 1e-5, "
       "whatever the config's layer_norm_eps", ("GPT-COMPOSE", "NET-ORACLE"), GPT=GPTLayerNormEpsFixed),
    _m("gpt-masks-end-token", "attention_mask = ids != pad_token_id with pad_token = eos_token "
       "(GPT-2's recipe): every <end> in the input hidden as padding", ("GPT-COMPOSE",),
       GPT=GPTMasksEndToken),
    _m("gpt-probabilities-dim-1", "probabilities as softmax(logits / T, dim=1): right for one "
       "sequence, over the positions of a batch", ("OUT-DISTRIBUTION",), GPT=GPTProbabilitiesDim1),
    _m("gpt-generate-top-k-50", "sampling with Hugging Face's default top_k = 50 left on: the tail "
       "beyond the 50 most probable tokens never drawn", ("SAMPLE-DIST",), GPT=GPTTopK50),
    _m("encode-ignores-src-mask", "encode rebuilding the padding mask from the ids, the caller's "
       "src_mask dropped", ("NET-PADDING",), Transformer=TransformerEncodeIgnoresSrcMask),
    _m("decoder-layer-ignores-cross-mask", "a decoder block that never hands cross_mask to its "
       "cross-attention: padded memory rows are read", ("DEC-LAYER",),
       decoder_layer=decoder_layer_ignores_cross_mask),
    _m("greedy-do-while", "a do-while decoding loop: greedy_decode(max_len=0) still writes a token",
       ("GREEDY",), Transformer=TransformerGreedyDoWhile),
    _m("greedy-bans-specials", "greedy decoding that never writes <pad> or <start> (bad_words_ids, "
       "suppress_tokens): a model that prefers one writes its runner-up", ("GREEDY",),
       Transformer=TransformerGreedyBansSpecials),
    _m("seq2seq-greedy-drops-end", "if token == eos: break before out.append(token): decoding stops "
       "at <end> without writing it", ("S2S-EOS",), Seq2Seq=Seq2SeqGreedyDropsEnd),
    _m("softmax-temperature-last-axis", "a softmax whose temperature path (borrowed from a sampler) "
       "normalises over the last axis whatever axis is asked", ("SM-TEMP",),
       softmax=softmax_temperature_last_axis),
    _m("dense-ignores-activation", "a dense layer with sigmoid hard-wired: relu, gelu or a linear "
       "layer asked for, sigmoid computed", ("NEURON-WSUM",), dense=dense_ignores_activation),
    _m("padding-mask-without-query-axis", "a padding mask shaped (B, T) like torch's "
       "key_padding_mask where (B, 1, T) is pinned", ("ATT-PADDING",),
       padding_mask=padding_mask_without_query_axis),
    _m("mha-weights-averaged-over-heads", "multi-head attention returning the weights averaged over "
       "the heads (nn.MultiheadAttention's average_attn_weights=True)", ("ATT-MASK-ZERO", "MHA-ONE-HEAD"),
       multi_head_attention=mha_weights_averaged_over_heads),
    # precision: each in torch_ref at the format where it shipped
    _at_precision("pe-positions-in-bfloat16", "positions from torch.arange(n, dtype=bfloat16): "
                  "above 256 they collide (rotary positions cast to bfloat16)", ("PE-FORMULA",),
                  "bfloat16", positional_encoding=pe_positions_in_bfloat16),
    _at_precision("pe-frequencies-in-float16", "the frequency buffer 10000^(-2i/d) converted by "
                  "model.half(): far positions carry its rounding as radians of phase",
                  ("PE-FORMULA",), "float16", positional_encoding=pe_frequencies_in_float16),
    _network_at_precision("kv-cache-in-float16", "a float32 GPT whose KV cache is a float16 buffer: "
                          "cached decoding reads rounded keys and values", "GPT", ("DEC-AUTOREGRESSIVE",),
                          "float32", lambda device: _half_cache_gpt(device, "float32"), profile="ci"),
    _at_precision("layer-norm-squares-in-float16", "layer norm squaring (x - mean) in float16 (T5's "
                  "before the fix): past 256 the square overflows", ("LN-STATS",), "float16",
                  layer_norm=layer_norm_variance_in_float16),
    _at_precision("layer-norm-half-accumulator", "layer norm's mean and variance accumulated in "
                  "float16: a wide token's sums stop growing", ("LN-STATS",), "float16",
                  layer_norm=layer_norm_half_accumulator),
    _at_precision("softmax-half-running-sum", "softmax whose denominator is accumulated in float16: "
                  "past 2048 terms the sum stalls", ("SM-SUM",), "float16",
                  softmax=softmax_half_running_sum),
    _at_precision("softmax-temperature-in-float16", "logits / T divided in float16: a small "
                  "temperature overflows to inf and the softmax returns NaN", ("SM-TEMP",), "float16",
                  softmax=softmax_temperature_in_float16),
    _at_precision("tanh-via-sigmoid-in-float16", "tanh computed as 2 sigma(2z) - 1 in float16: near 0 "
                  "it cancels to a fraction of its value", ("ACT-TANH",), "float16",
                  tanh=tanh_via_sigmoid_in_float16),
    _at_precision("attention-in-bfloat16-autocast", "a float32 model's attention inside an "
                  "autocast(bfloat16) region left open", ("ATT-ORACLE", "ATT-SCALE", "ATT-ROWS-SUM"),
                  "float32", scaled_dot_product_attention=attention_in_bfloat16),
    _at_precision("attention-scores-in-tf32", "q k^T on TF32 tensor cores (PyTorch 1.7 to 1.11's "
                  "default): a float32 model's scores from 10-bit significands",
                  ("ATT-ORACLE", "ATT-SCALE"), "float32",
                  scaled_dot_product_attention=attention_scores_in_tf32),
    _at_precision("mask-additive-minus-1e4", "masked scores + (1 - mask) * -10000.0 (BERT) instead "
                  "of -inf: a row with no allowed key gets uniform weights", ("ATT-FULLY-MASKED",),
                  "float32", scaled_dot_product_attention=attention_mask_minus_1e4),
    _network_at_precision("gpt-positions-in-bfloat16", "a bfloat16 GPT whose positions come from "
                          "torch.arange(T, dtype=bfloat16): past 256 tokens they collide", "GPT", ("NET-LONG",),
                          "bfloat16", _gpt_positions_in_bfloat16),
    _network_at_precision("transformer-sinusoids-in-float32", "a float64 encoder-decoder whose sinusoid "
                          "tables hold float32 values (Hugging Face's Marian: torch.FloatTensor in "
                          "create_weight)", "Transformer", ("PE-ADDED",), "float64",
                          _transformer_sinusoids_in_float32),
    _at_precision("attention-values-summed-in-bfloat16", "attention's sum of weighted values "
                  "accumulated in bfloat16: past a few hundred keys it stalls", ("ATT-ORACLE", "ATT-CONVEX"),
                  "bfloat16", scaled_dot_product_attention=attention_values_summed_in_bfloat16),
    _at_precision("mask-fill-finfo-min", "scores.masked_fill(~mask, finfo(float16).min) (Hugging "
                  "Face): a row with no allowed key gets uniform weights", ("ATT-FULLY-MASKED",),
                  "float16", scaled_dot_product_attention=attention_mask_fill_finfo_min),
    _at_precision("attention-scores-scaled-after-the-product", "q k^T formed in float16 before the "
                  "division by sqrt(d_k): past |q . k| = 65504 the scores are inf and the weights NaN",
                  ("ATT-ORACLE", "ATT-CONVEX"), "float16",
                  scaled_dot_product_attention=attention_scaled_after_the_product_in_float16),
    _network_at_precision("mlp-gradients-summed-in-float16", "a float16 MLP summing its per-example "
                          "gradients in float16 (grad += delta_i a_i^T): past 2048 examples the sum stalls",
                          "MLP", ("GD-AVERAGE",), "float16", _half_summed_mlp),
    _network_at_precision("mlp-gradients-through-float16", "a float32 MLP whose gradients pass through "
                          "a float16 buffer: each carries float16's rounding, within the closed form's 4096 "
                          "float32 ulps", "MLP", ("BP-FULL",), "float32", _gradients_through_half_mlp),
)

# The fifth hunt: faults a user's own GPT (PyTorch) and NumPy library let through, each part kept
# beside the others until the clauses that catch them settle.
# >>> fifth hunt: GPT networks (spec/blocks.py)
def _cached_attention_cat_dim1(attn: Params, x: Any, n_heads: int, layer_cache: Any) -> tuple[Any, Any]:
    """torch_ref's ``_cached_attention`` that appends the new keys and values with ``torch.cat(...,
    dim=1)``: the positions' axis of one sequence's (n_heads, L, d_head), the heads' axis of a
    batch's (B, n_heads, L, d_head)."""
    import torch
    from nnspec.reference.torch_ref import networks as tnets

    q = tnets._split_heads(tnets._project(x, attn["W_q"], attn.get("b_q")), n_heads)
    k = tnets._split_heads(tnets._project(x, attn["W_k"], attn.get("b_k")), n_heads)
    v = tnets._split_heads(tnets._project(x, attn["W_v"], attn.get("b_v")), n_heads)
    if layer_cache is not None:
        k = torch.cat([layer_cache["k"], k], dim=1)  # should be dim=-2
        v = torch.cat([layer_cache["v"], v], dim=1)
    mask = tnets.causal_mask(q.shape[-2], k.shape[-2], device=x.device)
    heads, _ = tnets.scaled_dot_product_attention(q, k, v, mask)
    return tnets._project(tnets._merge_heads(heads), attn["W_o"], attn.get("b_o")), {"k": k, "v": v}


def _cached_attention_first_row(attn: Params, x: Any, n_heads: int, layer_cache: Any) -> tuple[Any, Any]:
    """torch_ref's ``_cached_attention`` that, for a batch, reads row 0's cached keys and values in
    every row (a prompt cache computed once and expanded over the batch)."""
    from nnspec.reference.torch_ref import networks as tnets

    if layer_cache is not None and layer_cache["k"].dim() == 4:
        layer_cache = {name: t[:1].expand_as(t) for name, t in layer_cache.items()}
    return tnets._cached_attention(attn, x, n_heads, layer_cache)


def _cache_mutant(id: str, models: str, attention: Callable, *, crash: bool = False) -> Mutant:
    """A fault of torch_ref's KV cache (only torch_ref has one): on a torch base its device and
    dtype, else torch:cpu:float64, like kv-cache-restarts-positions."""

    def build(base: str) -> Implementation:
        from .implementations import load_implementation

        impl = load_implementation(base if base.startswith("torch") else "torch:cpu:float64")
        return patched(impl, name=id, GPT=_faulty_cache_gpt(impl.device, impl.dtype, attention=attention))

    return Mutant(id, models, ("GPT",), ("DEC-AUTOREGRESSIVE",), build, base="torch:cpu:float64", crash=crash)


class GPTHiddenBeforeFinalNorm(numpy_ref.GPT):
    """``hidden`` hands back the residual stream before the final norm (``forward`` is right)."""

    def hidden(self, ids: Any) -> np.ndarray:
        return GPTNoFinalNorm(self.config, self.params).hidden(ids)

    def forward(self, ids: Any) -> np.ndarray:
        return numpy_ref.GPT(self.config, self.params).forward(ids)


def feed_forward_default_gelu(params: Params, x: Any, activation: str | None = "gelu") -> np.ndarray:
    """``feed_forward(params, x, activation="gelu")``: GPT's activation as the default, where the
    recap's network (and PARAMETERS.md's signature) has ReLU."""
    return numpy_ref.feed_forward(params, x, activation)


class GPTLearnedPositionsFromOne(_GPTWiring):
    """Learned positions read from W_P[1 : T + 1] (fairseq's positions start after the padding
    index); sinusoids and 'none' unchanged."""

    learned_positions_from_one = True


class GPTTiedDropsBias(numpy_ref.GPT):
    """A tied model's logits W_E^T h without b_U (GPT-2's lm_head, tied to wte, has no bias)."""

    def forward(self, ids: Any) -> np.ndarray:
        if "W_U" in self.params:
            return super().forward(ids)
        return numpy_ref.unembed(self.hidden(ids), self.params["W_E"].T, None)


class GPTTiedLogitsScaled(numpy_ref.GPT):
    """A tied model that rescales the hidden state by d_model^-0.5 before the unembedding (T5's
    tied lm_head)."""

    def forward(self, ids: Any) -> np.ndarray:
        if "W_U" in self.params:
            return super().forward(ids)
        h = self.hidden(ids) * self.config.d_model**-0.5
        return numpy_ref.unembed(h, self.params["W_E"].T, self.params.get("b_U"))


class GPTFinalNormDefaultEps(numpy_ref.GPT):
    """The final norm built as nn.LayerNorm(d_model), eps 1e-5, while the blocks' norms take
    config.layer_norm_eps."""

    def hidden(self, ids: Any) -> np.ndarray:
        x = GPTNoFinalNorm(self.config, self.params).hidden(ids)
        if self.config.norm_placement != "pre":
            return x
        final = self.params["final_norm"]
        return numpy_ref.layer_norm(x, final["gamma"], final["beta"])  # eps left at its default


class GPTTemperatureNotOnBias(numpy_ref.GPT):
    """generate folds the temperature into the hidden state, softmax(W_U (h / T) + b_U): b_U is
    not divided by T."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        if temperature == 0:
            return super().generate(ids, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
        rng = np.random.default_rng(seed)
        W_U, b_U = nets._unembedding(self.params, "W_E")
        out = [int(t) for t in nets._ids(ids)]
        for _ in range(max_new_tokens):
            h = self.hidden(np.array(out))[-1] / temperature
            out.append(nets._draw_token(numpy_ref.softmax(numpy_ref.unembed(h, W_U, b_U), axis=-1), rng))
        return out


class GPTNeverSamplesLastId(numpy_ref.GPT):
    """generate draws from the probabilities without the last id (multinomial(p[:-1])): the
    vocabulary's last token is never sampled."""

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        if temperature == 0:
            return super().generate(ids, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
        rng = np.random.default_rng(seed)
        out = [int(t) for t in nets._ids(ids)]
        for _ in range(max_new_tokens):
            p = numpy_ref.softmax(self.forward(np.array(out))[-1], axis=-1, temperature=temperature)[:-1]
            out.append(nets._draw_token(p / p.sum(), rng))
        return out


FIFTH_HUNT_GPT: tuple[Mutant, ...] = (
    _cache_mutant("kv-cache-cat-dim-1", "KV cache appended with torch.cat(..., dim=1), the positions "
                  "of one sequence's (n_heads, L, d_head) but the heads of a batch's: a batched "
                  "cached step raises", _cached_attention_cat_dim1, crash=True),
    _cache_mutant("kv-cache-batch-reads-first-row", "a batch decoded through the KV cache whose rows "
                  "all read row 0's cached keys and values (a prompt cache computed once, expanded)",
                  _cached_attention_first_row),
    _m("gpt-hidden-before-final-norm", "GPT.hidden returns the residual stream before the final "
       "norm (ln_f) of a pre-LN model, while forward applies it", ("GPT-COMPOSE", "NET-ORACLE"),
       GPT=GPTHiddenBeforeFinalNorm),
    _m("ffn-default-gelu", "feed_forward(params, x, activation='gelu'): a default activation other "
       "than the documented ReLU", ("FFN-FORMULA",), feed_forward=feed_forward_default_gelu),
    _m("gpt-learned-positions-from-one", "learned positions read from W_P[1 : T + 1] (fairseq's "
       "offset past the padding index)", ("NET-ORACLE", "GPT-COMPOSE"), profile="default",
       GPT=GPTLearnedPositionsFromOne),
    _m("gpt-tied-drops-b_U", "a tied model's logits W_E^T h without b_U (GPT-2's bias-less lm_head)",
       ("GPT-COMPOSE", "NET-ORACLE"), GPT=GPTTiedDropsBias),
    _m("gpt-tied-logits-scaled", "a tied model's hidden state scaled by d_model^-0.5 before the "
       "unembedding (T5's tied lm_head)", ("GPT-COMPOSE", "NET-ORACLE"), GPT=GPTTiedLogitsScaled),
    _m("gpt-final-norm-default-eps", "the final norm built as nn.LayerNorm(d_model): eps 1e-5 "
       "whatever config.layer_norm_eps", ("GPT-COMPOSE", "NET-ORACLE"), GPT=GPTFinalNormDefaultEps),
    _m("gpt-generate-temperature-not-on-bias", "the temperature folded into the hidden state, "
       "softmax(W_U (h / T) + b_U): b_U not divided by T", ("SAMPLE-DIST",), GPT=GPTTemperatureNotOnBias),
    _m("gpt-generate-never-samples-last-id", "sampling from p[:-1] (multinomial(probs[:-1])): the "
       "last id of the vocabulary is never drawn", ("SAMPLE-DIST",), GPT=GPTNeverSamplesLastId),
)
# <<< fifth hunt: GPT networks
# >>> fifth hunt: MLP (spec/cost_learning.py, spec/backprop.py)
class TrainIgnoresSeedMLP(numpy_ref.MLP):
    """SGD that shuffles with the global ``np.random.permutation`` (Nielsen's network.py uses
    ``random.shuffle``) and never reads its ``seed``: the same seed twice trains differently."""

    def train(self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int) -> None:
        X, Y = _f64(X), _f64(Y)
        for _ in range(epochs):
            order = np.random.permutation(len(X))  # should be default_rng(seed), drawn once
            for start in range(0, len(X), batch_size):
                batch = order[start : start + batch_size]
                self.sgd_step(X[batch], Y[batch], eta)


class AscendingSgdStepMLP(numpy_ref.MLP):
    """A public ``sgd_step`` that adds eta * gradient (a sign slip), while ``train`` updates
    through a private step of its own that is right: training works, the API's step climbs."""

    def sgd_step(self, x: Any, y: Any, eta: float) -> None:
        super().sgd_step(x, y, -eta)  # theta + eta grad

    def train(self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int) -> None:
        X, Y = _f64(X), _f64(Y)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for start in range(0, len(X), batch_size):
                batch = order[start : start + batch_size]
                numpy_ref.MLP.sgd_step(self, X[batch], Y[batch], eta)  # the private, right step


class _ForwardReportMLP(numpy_ref.MLP):
    """An MLP whose predictions, cost, gradients and training run a private, right forward pass
    (a second network on the same parameter dict, so it follows every step), while the public
    ``forward`` hands its lists out through ``report``."""

    def __init__(self, config: Any, params: Params) -> None:
        super().__init__(config, params)
        self._pass = numpy_ref.MLP(config, params)

    def report(self, zs: list[np.ndarray], activations: list[np.ndarray]) -> tuple[list, list]:
        return zs, activations

    def forward(self, x: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return self.report(*self._pass.forward(x))

    def predict(self, x: Any) -> np.ndarray:
        return self._pass.predict(x)

    def cost(self, x: Any, y: Any) -> float:
        return self._pass.cost(x, y)

    def gradients(self, x: Any, y: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return self._pass.gradients(x, y)


class ForwardOmitsInputMLP(_ForwardReportMLP):
    """``forward`` returns the layers' outputs only, ``activations[1:]``: a(0) = x left out."""

    def report(self, zs: list[np.ndarray], activations: list[np.ndarray]) -> tuple[list, list]:
        return zs, activations[1:]


class ForwardZsWithoutBiasMLP(_ForwardReportMLP):
    """``forward`` reports each z(l) as the weighted sum W(l) a(l-1) before the bias is added."""

    def report(self, zs: list[np.ndarray], activations: list[np.ndarray]) -> tuple[list, list]:
        layers = self.params["layers"]
        return [a @ layer["W"].T for a, layer in zip(activations[:-1], layers, strict=True)], activations


FIFTH_HUNT_MLP: tuple[Mutant, ...] = (
    _m("mlp-train-ignores-seed", "MLP.train shuffles with the global np.random.permutation "
       "(network.py style) and ignores its seed: one seed trains two ways", ("SGD-PARTITION",),
       MLP=TrainIgnoresSeedMLP),
    _m("mlp-sgd-step-ascends", "the public MLP.sgd_step adds eta * gradient while train() steps "
       "through a private, right update", ("GD-STEP",), MLP=AscendingSgdStepMLP),
    _m("mlp-forward-omits-input", "MLP.forward returns activations[1:], the layers' outputs "
       "without a(0) = x", ("MLP-FORWARD",), MLP=ForwardOmitsInputMLP),
    _m("mlp-forward-zs-without-bias", "MLP.forward reports z(l) as W(l) a(l-1), the weighted sum "
       "before the bias is added", ("MLP-FORWARD",), MLP=ForwardZsWithoutBiasMLP),
)
# <<< fifth hunt: MLP
# >>> fifth hunt: RNN attention and normalisation (spec/rnn_attention.py, spec/normalisation.py)
def _bahdanau_scores(params: Params, s_prev: Any, h: Any) -> tuple[np.ndarray, np.ndarray]:
    """e_j = v . tanh(W [s_prev; h_j] + b), as the reference computes it, and h broadcast to (..., n, d_h)."""
    s_prev, h = _f64(s_prev), _f64(h)
    lead = np.broadcast_shapes(s_prev.shape[:-1], h.shape[:-2])
    n = h.shape[-2]
    s_rep = np.broadcast_to(s_prev[..., None, :], (*lead, n, s_prev.shape[-1]))
    h_b = np.broadcast_to(h, (*lead, *h.shape[-2:]))
    hidden = np.tanh(_linear(np.concatenate([s_rep, h_b], axis=-1), params["W"], params.get("b")))
    return hidden @ _f64(params["v"]), h_b


def _rnn_attention(attend: Callable[..., tuple[np.ndarray, np.ndarray]]) -> tuple[Callable, Callable]:
    """Bahdanau's and Luong's attention sharing one masked softmax ``attend(scores, h, mask)``,
    as a library's ``_masked_softmax`` helper is shared."""

    def additive_attention(params: Params, s_prev: Any, h: Any, mask: Any | None = None):
        return attend(*_bahdanau_scores(params, s_prev, h), mask)

    def dot_attention(s: Any, h: Any, mask: Any | None = None):
        s, h = _f64(s), _f64(h)
        scores = (h @ s[..., :, None])[..., 0]  # (..., n)
        return attend(scores, np.broadcast_to(h, (*scores.shape[:-1], *h.shape[-2:])), mask)

    return additive_attention, dot_attention


def _attend_minus_1e9(scores: np.ndarray, h: np.ndarray, mask: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """``np.where(mask, e, -1e9)``: a step with every encoder state masked gets uniform weights."""
    if mask is not None:
        scores = np.where(np.asarray(mask, dtype=bool), scores, -1e9)
    weights = numpy_ref.softmax(scores, axis=-1)
    return (weights[..., None, :] @ h)[..., 0, :], weights


def _attend_naive_softmax(scores: np.ndarray, h: np.ndarray, mask: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """-inf for the masked scores, then exp(e - max) / sum: an all -inf row is 0/0 = NaN."""
    if mask is not None:
        scores = np.where(np.asarray(mask, dtype=bool), scores, -np.inf)
    with np.errstate(invalid="ignore"):
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = e / e.sum(axis=-1, keepdims=True)
    return (weights[..., None, :] @ h)[..., 0, :], weights


_ADD_ATT_MINUS_1E9, _DOT_ATT_MINUS_1E9 = _rnn_attention(_attend_minus_1e9)
_ADD_ATT_NAIVE, _DOT_ATT_NAIVE = _rnn_attention(_attend_naive_softmax)


def layer_norm_default_eps_1e6(x: Any, gamma: Any, beta: Any, eps: float = 1e-6) -> np.ndarray:
    """Right for any eps it is given, but eps defaults to 1e-6 (Hugging Face's usual
    layer_norm_eps) where 1e-5 is pinned."""
    return numpy_ref.layer_norm(x, gamma, beta, eps)


def batch_norm_default_eps_1e3(x: Any, gamma: Any, beta: Any, eps: float = 1e-3) -> np.ndarray:
    """Right for any eps it is given, but eps defaults to 1e-3 (Keras' BatchNormalization) where
    1e-5 is pinned."""
    return numpy_ref.batch_norm(x, gamma, beta, eps)


FIFTH_HUNT_RNN_NORM: tuple[Mutant, ...] = (
    _m("rnn-attention-mask-minus-1e9", "Bahdanau and Luong attention masking with np.where(mask, e, "
       "-1e9): a source with every position masked gets uniform weights and a non-zero context",
       ("ADD-ATT", "DOT-ATT"), additive_attention=_ADD_ATT_MINUS_1E9, dot_attention=_DOT_ATT_MINUS_1E9),
    _m("rnn-attention-fully-masked-nan", "Bahdanau and Luong attention through a naive -inf softmax: "
       "a source with every position masked gives 0/0 = NaN weights and context",
       ("ADD-ATT", "DOT-ATT"), crash=True, additive_attention=_ADD_ATT_NAIVE, dot_attention=_DOT_ATT_NAIVE),
    _m("layer-norm-default-eps-1e-6", "layer_norm(x, gamma, beta, eps=1e-6): Hugging Face's usual "
       "default where 1e-5 is pinned, so a call that leaves eps out normalises a quiet token too far",
       ("LN-STATS",), layer_norm=layer_norm_default_eps_1e6),
    _m("batch-norm-default-eps-1e-3", "batch_norm(x, gamma, beta, eps=1e-3): Keras' "
       "BatchNormalization default where 1e-5 is pinned", ("BN-STATS",),
       batch_norm=batch_norm_default_eps_1e3),
)
# <<< fifth hunt: RNN attention and normalisation
# >>> fifth hunt: tokens and embeddings (spec/tokens.py, spec/embeddings.py)
def embed_guesses_layout_from_shape(token_ids: Any, W_E: Any) -> np.ndarray:
    """An adapter that 'accepts both layouts' and guesses from the shape: W_E.T[ids] when W_E is
    (d_model, n_vocab) with d_model != n_vocab, W_E[ids] (nn.Embedding's rows) when it is square,
    where the guess can only be wrong. The range check is right."""
    ids, W = np.asarray(token_ids), np.asarray(W_E, dtype=np.float64)
    if ids.size and (ids.min() < 0 or ids.max() >= W.shape[1]):
        raise IndexError(f"token id outside [0, {W.shape[1]})")
    return (W if W.shape[0] == W.shape[1] else W.T)[ids]


def _fifth_hunt_vocabulary(kind: str) -> type:
    from nnspec.reference.vocabulary import Vocabulary

    class Faulty(Vocabulary):
        def pad(self, ids_list: Any, length: int | None = None) -> tuple:
            if kind == "mask-int":  # np.zeros((B, L), dtype=np.int64) for the mask: 0/1, not bool
                ids, mask = super().pad(ids_list, length)
                return ids, mask.astype(np.int64)
            # "mutates-caller-lists": each sequence truncated and padded in place, then copied in
            if length is None:
                length = max((len(s) for s in ids_list), default=0)
            ids = np.full((len(ids_list), length), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(ids_list), length), dtype=bool)
            for b, seq in enumerate(ids_list):
                n_real = min(len(seq), length)
                del seq[length:]
                seq.extend([self.pad_id] * (length - len(seq)))
                ids[b] = seq
                mask[b, :n_real] = True
            return ids, mask

    Faulty.__name__ = f"Vocabulary[{kind}]"
    return Faulty


FIFTH_HUNT_TOKENS: tuple[Mutant, ...] = (
    _m("vocab-pad-mask-int", "Vocabulary.pad building its mask with np.zeros(..., dtype=np.int64): "
       "a 0/1 array that equals the boolean mask element by element but indexes positions",
       ("TOK-PAD", "TOK-START-END"), Vocabulary=_fifth_hunt_vocabulary("mask-int")),
    _m("vocab-pad-mutates-caller-lists", "Vocabulary.pad truncating and padding the caller's "
       "lists in place (del seq[length:]; seq.extend(pads)) before copying them into the batch",
       ("TOK-PAD", "TOK-START-END"), Vocabulary=_fifth_hunt_vocabulary("mutates-caller-lists")),
    _m("embed-guesses-layout-from-shape", "an embedding adapter that accepts both layouts and takes "
       "a square W_E for nn.Embedding's (n_vocab, d_model): rows read where columns belong",
       ("EMB-LOOKUP",), embed=embed_guesses_layout_from_shape),
)
# <<< fifth hunt: tokens and embeddings
MUTANTS = MUTANTS + FIFTH_HUNT_GPT + FIFTH_HUNT_MLP + FIFTH_HUNT_RNN_NORM + FIFTH_HUNT_TOKENS

CATALOGUE: dict[str, Mutant] = {m.id: m for m in MUTANTS}


# ------------------------------------------------------------------------------------------------
# Running it
# ------------------------------------------------------------------------------------------------

CRASH_MARKERS = ("but should be a result (the clause only passes valid inputs)", "timed out after")


def is_crash(message: str) -> bool:
    """True when a failure message reports that the implementation raised or hung, rather than
    that a clause's property did not hold: such a catch says nothing about the planted fault."""
    return any(marker in message for marker in CRASH_MARKERS)


def get_mutant(mutant_id: str) -> Mutant:
    try:
        return CATALOGUE[mutant_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(mutant_id, list(CATALOGUE), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `nnspec mutants --list` shows them"
        raise KeyError(f"unknown mutant {mutant_id!r}{hint}") from None


def relevant_clauses(mutant: Mutant, clause_ids: Iterable[str]) -> list[str]:
    """The clauses that may call one of the mutant's replaced capabilities (a need
    ``GPT.forward_cached`` counts for ``GPT``; alternatives and ``uses`` count), plus the expected
    ones."""
    from .runner import get_clause

    out = []
    for cid in clause_ids:
        needs = {n.partition(".")[0] for n in get_clause(cid).capabilities}
        if needs & set(mutant.target) or cid in mutant.expected:
            out.append(cid)
    return out


def kill_matrix(
    *,
    mutants: Iterable[str | Mutant] | None = None,
    clauses: Iterable[str] | None = None,
    profile: str = "quick",
    seed: int = 0,
    base: str = "numpy",
    shrink: bool = False,
    all_clauses: bool = False,
    shared_oracle: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run each mutant against the clauses that use its replaced capabilities (every clause in
    ``clauses`` when ``all_clauses``) and return the ``nnspec-kill-matrix/1`` dict.

    ``shared_oracle`` plants each fault in the oracle too (:meth:`Mutant.implementation`); a row's
    ``expected`` then leaves out :data:`ORACLE_COMPARISONS`, which cannot see a shared fault.

    ``clauses`` defaults to the installed catalogue. A cell of a clause not run on a mutant (it does
    not touch the replaced capabilities) is ``not_applicable``. ``kill_rate`` is the fraction of
    mutants rejected by at least one clause; examples-to-kill of a mutant is the fewest examples
    any clause needed.
    """
    from .catalogue import installed
    from .runner import run_clause

    chosen = [m if isinstance(m, Mutant) else get_mutant(m) for m in (MUTANTS if mutants is None else mutants)]
    clause_ids = list(clauses) if clauses is not None else list(installed())
    rows = []
    for mutant in chosen:
        impl = mutant.implementation(base, shared_oracle=shared_oracle)
        run = set(clause_ids if all_clauses else relevant_clauses(mutant, clause_ids))
        cells: dict[str, dict[str, Any]] = {}
        for cid in clause_ids:
            if cid not in run:
                cells[cid] = {"status": "not_applicable", "examples_to_failure": None}
                continue
            result = run_clause(cid, impl, profile=mutant.profile_at_least(profile), seed=seed,
                                shrink=shrink)
            to_failure = result.examples_to_failure
            if result.status == "failed" and to_failure is None:  # a time-out outside any example
                to_failure = result.examples or None
            cells[cid] = {"status": result.status, "examples_to_failure": to_failure}
            if progress is not None:
                progress(f"{mutant.id} x {cid}: {result.status}")
        row = {
            "id": mutant.id,
            "models": mutant.models,
            "target": ", ".join(mutant.target),
            "expected": [c for c in mutant.expected
                         if not (shared_oracle and c in ORACLE_COMPARISONS)],
            "cells": cells,
        }
        if mutant.profile_at_least(profile) != profile:  # its examples were counted at another
            row["profile"] = mutant.profile_at_least(profile)
        planted_in = getattr(impl, "patched_from", base)
        if planted_in != base:  # a fault of one format, or of torch_ref's KV cache
            row["implementation"] = planted_in
        rows.append(row)
    return {
        "schema": SCHEMA,
        "profile": profile,
        "seed": seed,
        "shared_oracle": shared_oracle,
        "clauses": clause_ids,
        "mutants": rows,
        "summary": summarise(rows),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The matrix's ``summary``: a mutant is killed when any clause rejects it, after the fewest
    examples any clause needed; the slowest is the killed mutant that needed the most."""
    kills = []
    for row in rows:
        to_kill = [c["examples_to_failure"] for c in row["cells"].values()
                   if c["status"] == "failed" and c["examples_to_failure"] is not None]
        kills.append((row["id"], min(to_kill) if to_kill else None))
    killed = [(mid, n) for mid, n in kills if n is not None]
    slowest = max(killed, key=lambda k: k[1], default=None)
    return {
        "kill_rate": len(killed) / len(kills) if kills else 0.0,
        "median_examples_to_kill": float(statistics.median(n for _, n in killed)) if killed else None,
        "slowest": {"mutant": slowest[0], "examples": slowest[1]} if slowest else None,
    }


def expected_kills_hold(data: dict[str, Any]) -> list[str]:
    """The problems with a kill matrix: a mutant one of its expected clauses did not reject."""
    problems = []
    for row in data["mutants"]:
        for cid in row["expected"]:
            cell = row["cells"].get(cid)
            if cell is None or cell["status"] != "failed":
                status = "not run" if cell is None else cell["status"]
                problems.append(f"{row['id']}: expected {cid} to fail, it {status}")
        documented = CATALOGUE[row["id"]].survives if row["id"] in CATALOGUE else ""
        if not row["expected"] and not documented and not any(
            c["status"] == "failed" for c in row["cells"].values()
        ):
            problems.append(f"{row['id']}: survives every clause")
    return problems


def format_table(data: dict[str, Any]) -> str:
    """Mutant x clause: examples to the first failure, '.' passed, '-' not run, 'E' clause error;
    '*' marks an expected clause; ``kill`` is the fewest examples any clause needed (LIVE: none
    caught it). Only clauses run on some mutant are shown, numbered, with a legend below."""
    shown = [c for c in data["clauses"]
             if any(r["cells"][c]["status"] != "not_applicable" for r in data["mutants"])]
    width = max([len(r["id"]) for r in data["mutants"]] + [6])
    lines = [" " * width + "  kill  " + " ".join(f"{i:>3}" for i in range(len(shown)))]
    for row in data["mutants"]:
        cells = []
        for cid in shown:
            cell = row["cells"][cid]
            status = cell["status"]
            text = {"failed": str(cell["examples_to_failure"] or "x"), "passed": ".",
                    "not_applicable": "-", "error": "E"}[status]
            if cid in row["expected"]:
                text += "*"
            cells.append(f"{text:>3}")
        to_kill = [c["examples_to_failure"] for c in row["cells"].values()
                   if c["status"] == "failed" and c["examples_to_failure"] is not None]
        kill = str(min(to_kill)) if to_kill else "LIVE"
        lines.append(f"{row['id']:<{width}}  {kill:>4}  " + " ".join(cells))
    lines.append("")
    lines.append("cells: N killed after N examples, '.' passed, '-' not applicable, 'E' the clause "
                 "errored, '*' a clause expected to kill it; kill: the fewest examples any clause "
                 "needed (LIVE: none caught it)")
    lines += [f"{i:>3} {cid}" for i, cid in enumerate(shown)]
    s = data["summary"]
    slowest = s["slowest"]
    lines.append("")
    lines.append(
        f"kill rate {s['kill_rate']:.0%} of {len(data['mutants'])} mutants; median examples to kill "
        f"{s['median_examples_to_kill']}; slowest "
        + (f"{slowest['mutant']} ({slowest['examples']} examples)" if slowest else "none")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``nnspec mutants``: run the catalogue, print the kill matrix; exit 1 if an expected clause
    let its mutant through."""
    parser = argparse.ArgumentParser(
        prog="nnspec mutants",
        description="Run the planted-fault catalogue against the clauses and print the kill matrix.",
    )
    parser.add_argument("--profile", default="quick", help="Hypothesis profile (default: quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mutant", action="append", default=[], metavar="ID",
                        help="run only this mutant (repeatable); --list shows the ids")
    parser.add_argument("--all-clauses", action="store_true",
                        help="run every clause on every mutant, not only those using its capabilities")
    parser.add_argument("--shared-oracle", action="store_true",
                        help="plant each fault in the oracle too: what the clauses catch without "
                             "the oracle's help (a bug shared by an implementation and its reference)")
    parser.add_argument("--json", metavar="PATH", help="write the kill matrix as JSON")
    parser.add_argument("--report", metavar="DIR", help="render the kill matrix into DIR (nnspec.report)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)

    if args.list:
        for m in MUTANTS:
            print(f"{m.id:<34} {m.models}")
        return 0
    from nnspec.report.writers import (
        KILL_MATRIX_SCHEMA,
        ReportDirError,
        check_output_dir,
        write_kill_matrix,
    )

    from .profiles import PROFILES

    if args.profile not in PROFILES:
        print(f"nnspec mutants: unknown profile {args.profile!r}; use one of {', '.join(PROFILES)}",
              file=sys.stderr)
        return 2
    try:
        chosen = [get_mutant(mid) for mid in args.mutant] or None
        if args.report:
            check_output_dir(args.report, kind=KILL_MATRIX_SCHEMA)  # before the run, not after it
    except KeyError as exc:
        print(f"nnspec mutants: {exc.args[0]}", file=sys.stderr)
        return 2
    except ReportDirError as exc:
        print(f"nnspec mutants: --report {args.report}: {exc}", file=sys.stderr)
        return 2
    # Hypothesis keeps a cache of the constants it reads from source files under its home
    # directory (./.hypothesis): a command run anywhere must not leave that in the caller's folder.
    from hypothesis.configuration import set_hypothesis_home_dir, storage_directory

    previous_home = storage_directory(intent_to_write=False).home_directory
    with tempfile.TemporaryDirectory(prefix="nnspec-mutants-") as home:
        set_hypothesis_home_dir(home)
        try:
            data = kill_matrix(mutants=chosen, profile=args.profile, seed=args.seed,
                               all_clauses=args.all_clauses, shared_oracle=args.shared_oracle)
        finally:
            set_hypothesis_home_dir(previous_home)
    print(format_table(data))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
    if args.report:
        write_kill_matrix(data, args.report)
    problems = expected_kills_hold(data)
    for problem in problems:
        print(f"MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
