"""Parameter accounting: the documents' GPT-3 numbers, and the formula against counted arrays.

The formula in nnspec.reference.accounting is checked two ways: against the numbers 3Blue1Brown
quotes for GPT-3 (617,558,016 embedding weights, 175,181,291,520 in all, 27,938 matrices, a
2048 x 2048 attention pattern), and against the entries of actual parameter arrays of small random
configurations, laid out here from reference/PARAMETERS.md independently of the formula (and, once
it exists, drawn by numpy_ref.init_params).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from nnspec.reference import numpy_ref
from nnspec.reference.accounting import ParameterCount, count_parameter_arrays, parameter_count
from nnspec.reference.config import (
    GPTConfig,
    MLPConfig,
    TransformerConfig,
    preset,
)

# ------------------------------------------------------------------ the documents' numbers


def test_gpt3_embedding_weights_match_the_video() -> None:
    count = parameter_count(preset("gpt3"))
    assert count.embedding == 617_558_016
    assert count.unembedding == 617_558_016  # "another 617 million" for W_U


def test_gpt3_total_weights_match_the_video() -> None:
    count = parameter_count(preset("gpt3"))
    assert count.total == 175_181_291_520
    assert count.breakdown["query"] == count.breakdown["key"] == 14_495_514_624
    assert count.breakdown["up_projection"] == 57_982_058_496


def test_gpt3_matrix_tally_is_nearly_28000() -> None:
    count = parameter_count(preset("gpt3"))
    # per layer: one Q, K, V matrix per head, one output, one up, one down; plus W_E and W_U
    assert count.n_matrices == 96 * (3 * 96 + 3) + 2 == 27_938


def test_gpt3_attention_pattern_is_context_squared() -> None:
    assert parameter_count(preset("gpt3")).attention_pattern_entries == 2048**2 == 4_194_304


def test_gpt3_full_count_adds_biases_norms_and_positions() -> None:
    docs = parameter_count(preset("gpt3"))
    full = parameter_count(preset("gpt3"), biases_and_norms=True)
    d, L, d_ff, vocab, context = 12288, 96, 49152, 50257, 2048
    extra = (
        context * d  # learned positions W_P
        + L * (4 * d + d_ff + d)  # b_q, b_k, b_v, b_o, b_1, b_2
        + vocab  # b_U
        + (2 * L + 1) * 2 * d  # norm_1, norm_2 per block and the final norm: gamma, beta
    )
    assert full.total == docs.total + extra == 175_221_867_601
    # the parts GPT3-COUNTS pins, each worked out by hand in its comment
    assert full.positional == 25_165_824
    assert full.biases == 10_616_832 + 50_257
    assert full.norms == 4_743_168
    assert full.biases_and_norms and not docs.biases_and_norms
    # the weight categories are the same in both accountings
    assert (full.embedding, full.attention, full.mlp, full.unembedding) == (
        docs.embedding,
        docs.attention,
        docs.mlp,
        docs.unembedding,
    )


def test_tied_embeddings_are_counted_once() -> None:
    untied = parameter_count(preset("gpt3"))
    tied = parameter_count(preset("gpt3", tie_embeddings=True))
    assert untied.total - tied.total == 50257 * 12288
    assert tied.unembedding == 0
    assert untied.n_matrices - tied.n_matrices == 1


def test_mnist_network_counts() -> None:
    # 784*16 + 16*16 + 16*10 weights; one bias per neuron of the three non-input layers
    assert parameter_count(preset("mnist_3b1b")).total == 12_960
    full = parameter_count(preset("mnist_3b1b"), biases_and_norms=True)
    assert full.total == 13_002
    assert full.biases == 16 + 16 + 10
    assert full.n_matrices == 3
    assert full.attention_pattern_entries == 0


def test_seq2seq_is_refused() -> None:
    with pytest.raises(TypeError):
        parameter_count(preset("seq2seq_tiny"))


# ------------------------------------------------ the formula against counted parameter arrays


def _z(*shape: int) -> np.ndarray:
    return np.zeros(shape)


def _mha(d: int, bias: bool) -> dict[str, np.ndarray]:
    out = {name: _z(d, d) for name in ("W_q", "W_k", "W_v", "W_o")}
    if bias:
        out.update({name: _z(d) for name in ("b_q", "b_k", "b_v", "b_o")})
    return out


def _ffn(d: int, d_ff: int, bias: bool) -> dict[str, np.ndarray]:
    out = {"W_1": _z(d_ff, d), "W_2": _z(d, d_ff)}
    if bias:
        out.update({"b_1": _z(d_ff), "b_2": _z(d)})
    return out


def _ln(d: int) -> dict[str, np.ndarray]:
    return {"gamma": _z(d), "beta": _z(d)}


def _layout(config: Any) -> dict[str, Any]:
    """Zero arrays with exactly the shapes PARAMETERS.md lists for ``config``."""
    if isinstance(config, MLPConfig):
        sizes = config.layer_sizes
        return {
            "layers": [
                {"W": _z(n_out, n_in), "b": _z(n_out)}
                for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        }
    d, bias = config.d_model, config.bias
    pre = config.norm_placement == "pre"
    if isinstance(config, GPTConfig):
        params: dict[str, Any] = {
            "W_E": _z(d, config.n_vocab),
            "blocks": [
                {"attn": _mha(d, bias), "norm_1": _ln(d),
                 "ffn": _ffn(d, config.d_ff, bias), "norm_2": _ln(d)}
                for _ in range(config.n_layers)
            ],
        }
        if config.positional == "learned":
            params["W_P"] = _z(config.context, d)
        if pre:
            params["final_norm"] = _ln(d)
        n_out = config.n_vocab
    else:
        params = {
            "W_E_src": _z(d, config.n_src_vocab),
            "W_E_tgt": _z(d, config.n_tgt_vocab),
            "encoder": [
                {"self_attn": _mha(d, bias), "norm_1": _ln(d),
                 "ffn": _ffn(d, config.d_ff, bias), "norm_2": _ln(d)}
                for _ in range(config.n_encoder_layers)
            ],
            "decoder": [
                {"self_attn": _mha(d, bias), "norm_1": _ln(d),
                 "cross_attn": _mha(d, bias), "norm_2": _ln(d),
                 "ffn": _ffn(d, config.d_ff, bias), "norm_3": _ln(d)}
                for _ in range(config.n_decoder_layers)
            ],
        }
        if config.positional == "learned":
            params["W_P_src"] = _z(config.context, d)
            params["W_P_tgt"] = _z(config.context, d)
        if pre:
            params["encoder_norm"] = _ln(d)
            params["decoder_norm"] = _ln(d)
        n_out = config.n_tgt_vocab
    if not config.tie_embeddings:
        params["W_U"] = _z(n_out, d)
    if bias:
        params["b_U"] = _z(n_out)
    return params


def _weights_only(params: Any) -> list[np.ndarray]:
    """The documents' weight matrices: every 2-d array except the learned position tables."""
    if isinstance(params, dict):
        return [
            a
            for key, value in params.items()
            if not key.startswith("W_P")
            for a in _weights_only(value)
        ]
    if isinstance(params, list):
        return [a for value in params for a in _weights_only(value)]
    return [params] if params.ndim == 2 else []


def _tally_matrices(params: Any, n_heads: int) -> int:
    """3Blue1Brown's matrix tally on a parameter dict: W_q, W_k, W_v split into one per head."""
    if isinstance(params, dict):
        return sum(
            n_heads if key in ("W_q", "W_k", "W_v") else _tally_matrices(value, n_heads)
            for key, value in params.items()
            if not key.startswith("W_P")
        )
    if isinstance(params, list):
        return sum(_tally_matrices(value, n_heads) for value in params)
    return 1 if params.ndim == 2 else 0


@st.composite
def small_configs(draw: st.DrawFn) -> GPTConfig | TransformerConfig | MLPConfig:
    kind = draw(st.sampled_from(["gpt", "transformer", "mlp"]), label="kind")
    if kind == "mlp":
        sizes = draw(st.lists(st.integers(1, 12), min_size=2, max_size=5), label="layer_sizes")
        return MLPConfig(layer_sizes=tuple(sizes))
    n_heads = draw(st.integers(1, 4), label="n_heads")
    common = dict(
        d_model=n_heads * draw(st.integers(1, 4), label="d_head"),
        n_heads=n_heads,
        d_ff=draw(st.integers(1, 16), label="d_ff"),
        context=draw(st.integers(1, 16), label="context"),
        norm_placement=draw(st.sampled_from(["post", "pre"]), label="norm_placement"),
        positional=draw(st.sampled_from(["sinusoidal", "learned", "none"]), label="positional"),
        bias=draw(st.booleans(), label="bias"),
        tie_embeddings=draw(st.booleans(), label="tie_embeddings"),
    )
    if kind == "gpt":
        return GPTConfig(
            n_vocab=draw(st.integers(4, 20), label="n_vocab"),
            n_layers=draw(st.integers(0, 3), label="n_layers"),
            **common,
        )
    vocab = draw(st.integers(4, 20), label="n_vocab")
    return TransformerConfig(
        n_src_vocab=draw(st.integers(4, 20), label="n_src_vocab"),
        # tied embeddings share W_E_tgt with W_U, so both sides use one target vocabulary
        n_tgt_vocab=vocab,
        n_encoder_layers=draw(st.integers(0, 3), label="n_encoder_layers"),
        n_decoder_layers=draw(st.integers(0, 3), label="n_decoder_layers"),
        **common,
    )


def _check_consistent(count: ParameterCount) -> None:
    parts = (
        count.embedding + count.positional + count.attention + count.mlp
        + count.unembedding + count.biases + count.norms
    )
    assert count.total == parts == sum(count.breakdown.values())


@given(config=small_configs())
def test_full_count_equals_the_entries_of_the_layout(config: Any) -> None:
    params = _layout(config)
    full = parameter_count(config, biases_and_norms=True)
    assert full.total == count_parameter_arrays(params)
    _check_consistent(full)


@given(config=small_configs())
def test_documents_count_equals_the_weight_matrices_of_the_layout(config: Any) -> None:
    params = _layout(config)
    docs = parameter_count(config)
    assert docs.total == sum(a.size for a in _weights_only(params))
    assert docs.positional == docs.biases == docs.norms == 0
    assert docs.n_matrices == _tally_matrices(params, getattr(config, "n_heads", 1))
    _check_consistent(docs)
    if not isinstance(config, MLPConfig):
        assert docs.attention_pattern_entries == config.context**2


def test_count_parameter_arrays_reads_torch_tensors() -> None:
    params = {"a": torch.zeros(3, 4), "b": [torch.zeros(5), {"c": torch.zeros(2, 2, 2)}]}
    assert count_parameter_arrays(params) == 12 + 5 + 8


def _init_params() -> Any:
    init_params = getattr(numpy_ref, "init_params", None)
    if init_params is None:
        pytest.skip("numpy_ref.init_params is not written yet")
    return init_params


@pytest.mark.parametrize("name", ["mnist_3b1b", "gpt_tiny", "transformer_tiny"])
def test_full_count_equals_numpy_ref_init_params(name: str) -> None:
    config = preset(name)
    assert parameter_count(config, biases_and_norms=True).total == count_parameter_arrays(
        _init_params()(config, seed=0)
    )


@given(config=small_configs())
def test_full_count_equals_init_params_of_random_configs(config: Any) -> None:
    init_params = _init_params()
    assert parameter_count(config, biases_and_norms=True).total == count_parameter_arrays(
        init_params(config, seed=0)
    )


@pytest.mark.parametrize("name", ["gpt_tiny", "transformer_tiny"])
@pytest.mark.parametrize("tie", [False, True])
def test_pre_ln_final_norms_and_tied_embeddings_are_counted_as_laid_out(name: str, tie: bool) -> None:
    """The two slips PARAM-COUNT was written for, on the presets: a pre-LN stack's final norm
    (one for a GPT, one per stack for an encoder-decoder) is counted, a tied W_U is not."""
    config = preset(name, norm_placement="pre", tie_embeddings=tie)
    params = _init_params()(config, seed=0)
    final = [key for key in ("final_norm", "encoder_norm", "decoder_norm") if key in params]
    assert len(final) == (1 if name == "gpt_tiny" else 2)
    assert ("W_U" in params) is not tie
    full = parameter_count(config, biases_and_norms=True)
    assert full.total == count_parameter_arrays(params)
    assert full.unembedding == (0 if tie else count_parameter_arrays(params["W_U"]))
    post = parameter_count(replace(config, norm_placement="post"), biases_and_norms=True)
    assert full.norms - post.norms == len(final) * 2 * config.d_model
