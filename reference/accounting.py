"""Parameter accounting: how many weights a configured network has, counted the documents' way.

3Blue1Brown's chapter on transformers tallies GPT-3 category by category ("Neural Networks and
Transformers (3Blue1Brown video wjZofJX0v4M)", sections "Tokenization and Vector Embeddings",
"Unembedding Matrix", "Tunable Parameters (Weights)"; "Neural Networks (notes on 3Blue1Brown)",
sections "5. A Basic Idea of transformers" to "f. Multilayer Perceptron"; the model is Brown et al.
2020): an embedding matrix of n_vocab x d_model = 617,558,016 weights, per layer a query, key,
value and output map of d_model x d_model each and an up and a down projection of d_model x d_ff
each, and an unembedding matrix as large as the embedding: 175,181,291,520 weights in all,
organised into 27,938 matrices ("nearly 28,000"). The tally leaves out biases, layer norms and
the learned position table; :func:`parameter_count` reproduces it from any configuration and,
with ``biases_and_norms=True``, also counts those, so the total equals the number of entries of
``init_params(config)`` (the layout of reference/PARAMETERS.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .config import GPTConfig, MLPConfig, NetworkConfig, TransformerConfig


@dataclass(frozen=True)
class ParameterCount:
    """Learned numbers of a network, by category.

    Every field counts entries that are included in :attr:`total`, so
    ``total == embedding + positional + attention + mlp + unembedding + biases + norms``
    and ``total == sum(breakdown.values())``. ``positional``, ``biases`` and ``norms`` are 0 in the
    documents' accounting (``biases_and_norms=False``).
    """

    embedding: int  # W_E (W_E_src + W_E_tgt for an encoder-decoder)
    positional: int  # learned position tables W_P
    attention: int  # W_q, W_k, W_v, W_o of every attention layer (self and cross)
    mlp: int  # W_1 (up) and W_2 (down) of every block; every layer's W for an MLPConfig
    unembedding: int  # W_U; 0 when tied to W_E (the same numbers are counted once)
    biases: int  # b_q, b_k, b_v, b_o, b_1, b_2, b_U (and an MLP's b)
    norms: int  # gamma and beta of every layer norm
    total: int
    n_matrices: int  # 3Blue1Brown's tally: one Q, K, V matrix per head, one W_o, W_1, W_2 per layer
    attention_pattern_entries: int  # context^2 scores per head per attention layer (0 for an MLP)
    breakdown: Mapping[str, int] = field(default_factory=dict)
    biases_and_norms: bool = False


def count_parameter_arrays(params: Any) -> int:
    """The number of entries in a nested parameter dict/list of NumPy arrays or torch tensors."""
    if isinstance(params, Mapping):
        return sum(count_parameter_arrays(v) for v in params.values())
    if isinstance(params, (list, tuple)):
        return sum(count_parameter_arrays(v) for v in params)
    numel = getattr(params, "numel", None)  # torch.Tensor.numel(); numpy arrays have .size
    return int(numel()) if callable(numel) else int(params.size)


def _finish(
    categories: dict[str, int],
    *,
    groups: dict[str, tuple[str, ...]],
    n_matrices: int,
    attention_pattern_entries: int,
    biases_and_norms: bool,
) -> ParameterCount:
    """Sum the categories into the fields; zero-sized categories are dropped from the breakdown."""
    breakdown = {k: v for k, v in categories.items() if v}
    group_sums = {g: sum(categories.get(k, 0) for k in keys) for g, keys in groups.items()}
    return ParameterCount(
        **group_sums,
        total=sum(breakdown.values()),
        n_matrices=n_matrices,
        attention_pattern_entries=attention_pattern_entries,
        breakdown=MappingProxyType(breakdown),
        biases_and_norms=biases_and_norms,
    )


_GROUPS: dict[str, tuple[str, ...]] = {
    "embedding": ("embedding",),
    "positional": ("positional",),
    "attention": ("query", "key", "value", "output"),
    "mlp": ("up_projection", "down_projection", "weights"),
    "unembedding": ("unembedding",),
    "biases": ("attention_biases", "mlp_biases", "unembedding_bias", "biases"),
    "norms": ("layer_norms",),
}


def _gpt(config: GPTConfig, full: bool) -> ParameterCount:
    d, L, h = config.d_model, config.n_layers, config.n_heads
    cat: dict[str, int] = {
        "embedding": config.n_vocab * d,  # W_E (d_model, n_vocab)
        # per layer: W_q, W_k, W_v, W_o, each (d_model, d_model): n_heads blocks (d_head, d_model)
        "query": L * d * d,
        "key": L * d * d,
        "value": L * d * d,
        "output": L * d * d,
        "up_projection": L * config.d_ff * d,  # W_1 (d_ff, d_model)
        "down_projection": L * d * config.d_ff,  # W_2 (d_model, d_ff)
        "unembedding": 0 if config.tie_embeddings else config.n_vocab * d,  # W_U (n_vocab, d_model)
    }
    if full:
        cat["positional"] = config.context * d if config.positional == "learned" else 0
        cat["attention_biases"] = L * 4 * d if config.bias else 0  # b_q, b_k, b_v, b_o
        cat["mlp_biases"] = L * (config.d_ff + d) if config.bias else 0  # b_1, b_2
        cat["unembedding_bias"] = config.n_vocab if config.bias else 0  # b_U
        # norm_1, norm_2 per block (+ final_norm for pre-LN), each gamma and beta of size d_model
        n_norms = 2 * L + (1 if config.norm_placement == "pre" else 0)
        cat["layer_norms"] = n_norms * 2 * d
    # per layer: a Q, K and V matrix for every head, one output, one up and one down projection
    n_matrices = L * (3 * h + 3) + 1 + (0 if config.tie_embeddings else 1)
    return _finish(
        cat,
        groups=_GROUPS,
        n_matrices=n_matrices,
        attention_pattern_entries=config.context**2,
        biases_and_norms=full,
    )


def _transformer(config: TransformerConfig, full: bool) -> ParameterCount:
    d, h = config.d_model, config.n_heads
    n_enc, n_dec = config.n_encoder_layers, config.n_decoder_layers
    n_attn = n_enc + 2 * n_dec  # encoder self, decoder self, decoder cross
    n_ffn = n_enc + n_dec
    cat: dict[str, int] = {
        "embedding": (config.n_src_vocab + config.n_tgt_vocab) * d,  # W_E_src, W_E_tgt
        "query": n_attn * d * d,
        "key": n_attn * d * d,
        "value": n_attn * d * d,
        "output": n_attn * d * d,
        "up_projection": n_ffn * config.d_ff * d,
        "down_projection": n_ffn * d * config.d_ff,
        "unembedding": 0 if config.tie_embeddings else config.n_tgt_vocab * d,
    }
    if full:
        cat["positional"] = 2 * config.context * d if config.positional == "learned" else 0
        cat["attention_biases"] = n_attn * 4 * d if config.bias else 0
        cat["mlp_biases"] = n_ffn * (config.d_ff + d) if config.bias else 0
        cat["unembedding_bias"] = config.n_tgt_vocab if config.bias else 0
        # 2 norms per encoder layer, 3 per decoder layer (+ encoder_norm, decoder_norm for pre-LN)
        n_norms = 2 * n_enc + 3 * n_dec + (2 if config.norm_placement == "pre" else 0)
        cat["layer_norms"] = n_norms * 2 * d
    n_matrices = (
        n_attn * (3 * h + 1)  # per-head Q, K, V and one output per attention layer
        + n_ffn * 2  # up and down projections
        + 2  # source and target embeddings
        + (0 if config.tie_embeddings else 1)
    )
    return _finish(
        cat,
        groups=_GROUPS,
        n_matrices=n_matrices,
        attention_pattern_entries=config.context**2,
        biases_and_norms=full,
    )


def _mlp(config: MLPConfig, full: bool) -> ParameterCount:
    sizes = config.layer_sizes
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    # layer l: W (n_out, n_in), b (n_out,)
    cat = {"weights": sum(n_in * n_out for n_in, n_out in pairs)}
    if full:
        cat["biases"] = sum(n_out for _, n_out in pairs)
    return _finish(
        cat,
        groups=_GROUPS,
        n_matrices=len(pairs),
        attention_pattern_entries=0,
        biases_and_norms=full,
    )


def parameter_count(config: NetworkConfig, *, biases_and_norms: bool = False) -> ParameterCount:
    """Count a network's learned numbers from its configuration.

    ``biases_and_norms=False`` is the documents' accounting: weight matrices only (embedding;
    query, key, value, output; up and down projections; unembedding, counted once when tied).
    ``biases_and_norms=True`` counts every array of the PARAMETERS.md layout: in addition the
    attention biases b_q, b_k, b_v, b_o and feed-forward biases b_1, b_2 (when ``config.bias``),
    the unembedding bias b_U (when ``config.bias``), gamma and beta of every layer norm (two per
    GPT block or encoder layer, three per decoder layer, one final norm per stack for pre-LN),
    and the learned position tables W_P (``positional="learned"``), also left out by the documents.
    For an :class:`MLPConfig` it adds the biases (784-16-16-10: 12,960 weights, 13,002 in all).
    """
    if isinstance(config, GPTConfig):
        return _gpt(config, biases_and_norms)
    if isinstance(config, TransformerConfig):
        return _transformer(config, biases_and_norms)
    if isinstance(config, MLPConfig):
        return _mlp(config, biases_and_norms)
    raise TypeError(
        "parameter_count covers GPTConfig, TransformerConfig and MLPConfig, "
        f"not {type(config).__name__}"
    )
