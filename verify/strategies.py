"""Hypothesis strategies for clauses, built on :mod:`hypothesis.extra.numpy`.

Small by default: a property that holds for every 3x5 attention holds for 512x512, and small inputs
shrink to readable counterexamples and keep a run fast. Every strategy returns float64 arrays (feed
them through ``ck.input`` to round them to the implementation's dtype), bool masks with True = may
attend, and int64 token ids. Draw them in a clause with a label: ``ck.draw(arrays((2, 3)), "x")``.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp
from nnspec.reference.config import END_ID, PAD_ID, GPTConfig, MLPConfig, Seq2SeqConfig, TransformerConfig

# ----------------------------------------------------------------------------------------------
# numbers and arrays
# ----------------------------------------------------------------------------------------------


def finite_floats(bound: float = 10.0) -> st.SearchStrategy[float]:
    """Finite float64 in [-bound, bound]: no NaN, no Inf, no subnormal surprises beyond bound."""
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape: Any, *, bound: float = 10.0, elements: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """Float64 arrays of ``shape`` (a tuple or a strategy of tuples) with bounded finite entries."""
    return hnp.arrays(np.float64, shape, elements=elements if elements is not None else finite_floats(bound))


def batch_shapes(max_dims: int = 2, max_side: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Leading batch dimensions, including none at all (``()``)."""
    return hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side)


def extreme_logits(shape: Any, *, magnitude: float = 1e4) -> st.SearchStrategy:
    """Logits that break a naive softmax: huge positive/negative values mixed with ordinary ones
    (``exp(1e4)`` overflows float64; a max-subtracting softmax must not)."""
    elements = st.one_of(
        st.sampled_from([magnitude, -magnitude, magnitude / 2, 0.0]),
        st.floats(-magnitude, magnitude, allow_nan=False, allow_infinity=False),
        finite_floats(10.0),
    )
    return hnp.arrays(np.float64, shape, elements=elements)


# ----------------------------------------------------------------------------------------------
# shapes of attention
# ----------------------------------------------------------------------------------------------


@st.composite
def attention_shapes(draw: Any, *, max_len: int = 5, max_d: int = 4, distinct: bool = False) -> dict[str, Any]:
    """``{"batch", "n_queries", "n_keys", "d_k", "d_v"}``; ``distinct=True`` forces
    ``n_queries != n_keys`` (cross-attention, cached decoding), d_k and d_v start at 1."""
    batch = draw(batch_shapes())
    n_queries = draw(st.integers(1, max_len))
    keys = st.integers(1, max_len)
    n_keys = draw(keys.filter(lambda n: n != n_queries) if distinct and max_len > 1 else keys)
    return {
        "batch": batch,
        "n_queries": n_queries,
        "n_keys": n_keys,
        "d_k": draw(st.integers(1, max_d)),
        "d_v": draw(st.integers(1, max_d)),
    }


@st.composite
def heads_and_d_model(draw: Any, *, max_heads: int = 4, max_d_head: int = 4) -> tuple[int, int]:
    """``(n_heads, d_model)`` with ``n_heads`` dividing ``d_model`` and ``d_head >= 1``."""
    n_heads = draw(st.integers(1, max_heads))
    d_head = draw(st.integers(1, max_d_head))
    return n_heads, n_heads * d_head


# ----------------------------------------------------------------------------------------------
# masks (True = may attend)
# ----------------------------------------------------------------------------------------------


def causal(n_queries: int, n_keys: int) -> np.ndarray:
    """Bottom-right aligned causal mask (PARAMETERS.md): query i sees keys j <= n_keys - n_queries + i."""
    i = np.arange(n_queries)[:, None]
    j = np.arange(n_keys)[None, :]
    return j <= i + (n_keys - n_queries)


@st.composite
def padding_masks(draw: Any, n_queries: int, n_keys: int) -> np.ndarray:
    """Every query sees the first ``n_real`` keys; the rest are padding (at least one key is real)."""
    n_real = draw(st.integers(1, n_keys))
    mask = np.zeros((n_queries, n_keys), dtype=bool)
    mask[:, :n_real] = True
    return mask


def random_masks(n_queries: int, n_keys: int) -> st.SearchStrategy[np.ndarray]:
    """Any boolean pattern, fully masked rows included."""
    return hnp.arrays(np.bool_, (n_queries, n_keys))


@st.composite
def masks_with_masked_rows(draw: Any, n_queries: int, n_keys: int) -> np.ndarray:
    """A random mask in which at least one query row is fully masked (must give zeros, never NaN)."""
    mask = draw(random_masks(n_queries, n_keys))
    rows = draw(st.lists(st.integers(0, n_queries - 1), min_size=1, max_size=n_queries, unique=True))
    mask[rows, :] = False
    return mask


def masks(
    n_queries: int, n_keys: int, *, allow_masked_rows: bool = True
) -> st.SearchStrategy[np.ndarray]:
    """One of: causal, padding, random, or with fully masked rows. With
    ``allow_masked_rows=False`` every query row may attend somewhere (note that a bottom-right causal
    mask with more queries than keys has empty first rows, so it is then left out)."""
    options = [st.just(causal(n_queries, n_keys)), padding_masks(n_queries, n_keys), random_masks(n_queries, n_keys)]
    if allow_masked_rows:
        return st.one_of([*options, masks_with_masked_rows(n_queries, n_keys)])
    return st.one_of(options).filter(lambda m: bool(m.any(axis=-1).all()))


# ----------------------------------------------------------------------------------------------
# tokens
# ----------------------------------------------------------------------------------------------


def token_sequences(
    n_vocab: int, *, min_len: int = 1, max_len: int = 8, batch: tuple[int, ...] = (), low: int = 0
) -> st.SearchStrategy[np.ndarray]:
    """int64 token ids in ``[low, n_vocab)`` of shape ``batch + (T,)`` with ``min_len <= T <= max_len``."""
    return st.integers(min_len, max_len).flatmap(
        lambda t: hnp.arrays(np.int64, batch + (t,), elements=st.integers(low, n_vocab - 1))
    )


@st.composite
def padded_sequences(draw: Any, n_vocab: int, *, max_len: int = 8) -> np.ndarray:
    """A sentence of real tokens (ids 4.. beyond the specials), an END and then PAD to ``max_len``."""
    n_real = draw(st.integers(1, max_len - 1))
    real = draw(hnp.arrays(np.int64, (n_real,), elements=st.integers(END_ID + 1, n_vocab - 1)))
    return np.concatenate([real, [END_ID], np.full(max_len - n_real - 1, PAD_ID)]).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# configs and parameters
# ----------------------------------------------------------------------------------------------


@st.composite
def mlp_configs(draw: Any, *, max_layers: int = 3, max_width: int = 6) -> MLPConfig:
    sizes = draw(st.lists(st.integers(1, max_width), min_size=2, max_size=max_layers + 1))
    activation = draw(st.sampled_from(["sigmoid", "relu", "tanh"]))
    return MLPConfig(layer_sizes=tuple(sizes), activation=activation)


def _switches(draw: Any) -> dict[str, Any]:
    return {
        "norm_placement": draw(st.sampled_from(["post", "pre"])),
        "activation": draw(st.sampled_from(["relu", "gelu", "gelu_tanh"])),
        "positional": draw(st.sampled_from(["sinusoidal", "learned", "none"])),
        "bias": draw(st.booleans()),
        "tie_embeddings": draw(st.booleans()),
    }


@st.composite
def gpt_configs(draw: Any, *, max_layers: int = 2) -> GPTConfig:
    n_heads, d_model = draw(heads_and_d_model(max_heads=2, max_d_head=4))
    return GPTConfig(
        n_vocab=draw(st.integers(5, 12)),
        context=8,
        d_model=d_model,
        n_heads=n_heads,
        n_layers=draw(st.integers(1, max_layers)),
        d_ff=draw(st.integers(1, 8)),
        **_switches(draw),
    )


@st.composite
def transformer_configs(draw: Any, *, max_layers: int = 2) -> TransformerConfig:
    n_heads, d_model = draw(heads_and_d_model(max_heads=2, max_d_head=4))
    switches = _switches(draw)
    return TransformerConfig(
        n_src_vocab=draw(st.integers(5, 12)),
        n_tgt_vocab=draw(st.integers(5, 12)),
        d_model=d_model,
        n_heads=n_heads,
        n_encoder_layers=draw(st.integers(1, max_layers)),
        n_decoder_layers=draw(st.integers(1, max_layers)),
        d_ff=draw(st.integers(1, 8)),
        context=8,
        **switches,
    )


@st.composite
def seq2seq_configs(draw: Any) -> Seq2SeqConfig:
    return Seq2SeqConfig(
        n_src_vocab=draw(st.integers(5, 12)),
        n_tgt_vocab=draw(st.integers(5, 12)),
        d_embed=draw(st.integers(1, 4)),
        d_hidden=draw(st.integers(1, 4)),
        n_layers=draw(st.integers(1, 2)),
        reverse_source=draw(st.booleans()),
        attention=draw(st.sampled_from([None, "bahdanau", "luong"])),
        d_attn=draw(st.integers(1, 4)),
    )


def parameter_sets(config: Any) -> st.SearchStrategy[dict]:
    """``numpy_ref.init_params(config, seed)`` for a drawn seed: a float64 parameter dict in the
    layout of PARAMETERS.md (shrinks towards seed 0)."""
    from nnspec.reference import numpy_ref

    return st.integers(0, 2**16).map(lambda seed: numpy_ref.init_params(config, seed=seed))
