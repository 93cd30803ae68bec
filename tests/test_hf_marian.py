"""A translation model nobody here wrote: Hugging Face's Marian through nnspec.verify.hf_marian.

It offers one capability, ``Transformer``, and is held to the fourteen clauses an encoder-decoder
alone can run (NET-ORACLE, PE-ADDED, ENC-LAYER and DEC-LAYER through its encoder and decoder,
NET-PADDING, DEC-CROSS-ALL, DEC-AUTOREGRESSIVE, GREEDY and SAMPLE-DIST through Hugging Face's own
``generate``, ...). Below float64 it conforms. At float64 it does not, and the clauses say why:
Marian computes its sinusoid table in float32 whatever the model's dtype; with the table recomputed
in float64 every clause passes. The clauses must also catch the mistakes an adapter for such a
model makes: the sinusoid layout left undeclared, the attention mask's polarity inverted, one
embedding shared by both sides, the unembedding bias left out, ``forced_eos_token_id`` or
``decoder_start_token_id`` left at Marian's defaults, a temperature without ``do_sample``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
from adapter_mistakes import assert_caught, plant  # noqa: E402
from nnspec.reference.config import PAD_ID  # noqa: E402
from nnspec.verify import from_object, load_implementation, patched, run_clause  # noqa: E402
from nnspec.verify.catalogue import installed  # noqa: E402
from nnspec.verify.hf_marian import HFMarian  # noqa: E402

TRANSFORMER_CLAUSES = {
    "PE-ADDED", "ENC-LAYER", "DEC-LAYER", "DEC-CAUSAL", "DEC-AUTOREGRESSIVE", "DEC-CROSS-ALL",
    "NET-PADDING", "NET-BATCH", "OUT-DISTRIBUTION", "NET-LOGITS", "GREEDY", "SAMPLE-DIST",
    "NET-ORACLE", "NET-LONG",
}


def _name(device: str, dtype: str) -> str:
    return f"nnspec.verify.hf_marian:{dtype}" if device == "cpu" else f"nnspec.verify.hf_marian:{device}_{dtype}"


def _failures(impl: Any) -> dict[str, str]:
    results = {cid: run_clause(cid, impl, profile="quick", seed=0) for cid in installed()}
    ran = {cid for cid, r in results.items() if r.status != "not_applicable"}
    assert ran == TRANSFORMER_CLAUSES
    return {cid: results[cid].message for cid in ran if results[cid].status != "passed"}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_marian_passes_every_clause_an_encoder_decoder_alone_can_run(device: str, dtype: str) -> None:
    impl = load_implementation(_name(device, dtype))
    assert impl.capabilities == {"Transformer"} and impl.device == device and impl.dtype == dtype
    assert impl.conventions.norm_placement == "post" and impl.conventions.sinusoid_layout == "concatenated"
    assert impl.conventions.layer_norm_eps == 1e-5
    assert impl.version == f"transformers {transformers.__version__}"
    assert not _failures(impl)


def _marian_table_in_float64(n_positions: int, d: int) -> torch.Tensor:
    """Marian's own sinusoid formula (MarianSinusoidalPositionalEmbedding.create_weight: the sines
    of every frequency 10000^(-2i/d), then the cosines), computed in float64 throughout."""
    angle = np.arange(n_positions)[:, None] / np.power(10000.0, 2 * (np.arange(d) // 2) / d)  # (P, d)
    return torch.from_numpy(np.concatenate([np.sin(angle[:, 0::2]), np.cos(angle[:, 1::2])], axis=1))


class _TableInFloat64:
    """Marian with its two position tables replaced by the same formula in float64."""

    def _state_dict(self, params: dict) -> dict:
        state = super()._state_dict(params)  # type: ignore[misc]
        for side in ("encoder", "decoder"):
            key = f"model.{side}.embed_positions.weight"
            state[key] = _marian_table_in_float64(*state[key].shape).to(self.device)
        return state


def test_at_float64_marians_positions_are_float32_accurate() -> None:
    """MarianSinusoidalPositionalEmbedding builds its table through torch.FloatTensor, float32 in
    any model: PE-ADDED sees it directly (encode with silent sub-layers) and names the rounding;
    with the table computed in float64, Marian passes every clause at float64 too."""
    base = load_implementation("nnspec.verify.hf_marian:float64")
    result = run_clause("PE-ADDED", base, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert "is the size of float32's rounding" in result.message
    fixed = patched(base, name="hf-marian-float64-table", Transformer=type(
        "Transformer", (_TableInFloat64, base._namespace["Transformer"]), {}))
    assert not _failures(fixed)


def _adapter(self: Any) -> Any:
    return type(self).__mro__[1]


def _mask_inverted(self: Any, src: torch.Tensor, src_mask: Any | None) -> torch.Tensor:
    """Marian's attention_mask built as "1 = padding" (torch.nn's key_padding_mask polarity)."""
    return 1 - _adapter(self)._attention_mask(self, src, src_mask)


def _one_embedding(self: Any, params: dict) -> dict:
    """Marian's default share_encoder_decoder_embeddings=True, as if: the source embedding loaded
    into both sides (vocabularies of one size, so nothing complains about the shape)."""
    state = _adapter(self)._state_dict(self, params)
    state["model.decoder.embed_tokens.weight"] = state["model.encoder.embed_tokens.weight"]
    return state


def _logits_bias_left_out(self: Any, params: dict) -> dict:
    """final_logits_bias left at Marian's zeros: nnspec's b_U never reaches the logits."""
    state = _adapter(self)._state_dict(self, params)
    state["final_logits_bias"] = torch.zeros_like(state["final_logits_bias"])
    return state


def _generation_defaults(name: str, value: int) -> Any:
    def generation_config(self: Any, max_len: int, temperature: float) -> Any:
        config = _adapter(self)._generation_config(self, max_len, temperature)
        setattr(config, name, value)
        return config

    generation_config.__doc__ = f"generate() with {name}={value}, a default Marian's config carries"
    return generation_config


def _without_do_sample(self: Any, max_len: int, temperature: float) -> Any:
    """generate(temperature=T) without do_sample=True: Hugging Face then searches greedily."""
    config = _adapter(self)._generation_config(self, max_len, temperature)
    config.do_sample = False
    return config


@pytest.mark.parametrize(
    ("planted", "clause_id", "what"),
    [
        (dict(_attention_mask=_mask_inverted), "NET-PADDING", "padded"),
        (dict(_state_dict=_one_embedding), "NET-ORACLE", "Transformer"),
        (dict(_state_dict=_logits_bias_left_out), "NET-ORACLE", "Transformer"),
        (dict(_generation_config=_generation_defaults("forced_eos_token_id", 3)), "GREEDY", "greedy"),
        (dict(_generation_config=_generation_defaults("decoder_start_token_id", PAD_ID)), "GREEDY", "greedy"),
        (dict(_generation_config=_without_do_sample), "SAMPLE-DIST", "frequencies"),
    ],
    ids=["attention-mask-inverted", "one-embedding-for-both", "logits-bias-left-out",
         "forced-eos-at-the-limit", "decoding-starts-at-pad", "sample-without-do-sample"],
)
def test_an_adapters_mistakes_are_caught(planted: dict, clause_id: str, what: str) -> None:
    """The float32 adapter with one of its methods replaced by a mistaken one."""
    impl = plant("nnspec.verify.hf_marian:float32", "Transformer", "hf-marian-planted", **planted)
    assert_caught(impl, clause_id, what)


def test_an_undeclared_sinusoid_layout_is_caught() -> None:
    """Marian's sines-then-cosines table declared as the documents' interleaved one (the adapter's
    nnspec_conventions without sinusoid_layout): PE-ADDED holds the first block's input to the
    interleaved table."""
    marian = HFMarian(dtype="float32")
    marian.nnspec_conventions = {k: v for k, v in marian.nnspec_conventions.items() if k != "sinusoid_layout"}
    impl = from_object(marian, name="hf-marian-interleaved")
    assert impl.conventions.sinusoid_layout == "interleaved"
    result = run_clause("PE-ADDED", impl, profile="quick", seed=0)
    assert result.status == "failed" and "silent sub-layers" in result.message, result.message


def test_encode_and_decode_take_the_source_mask() -> None:
    """decode(tgt, memory, src_mask) hides the masked memory rows from every target position, and
    encode(src, src_mask) the masked tokens, as the oracle does, broadcasting the mask's leading
    axes; without a mask decode hides nothing (PARAMETERS.md)."""
    from nnspec.reference.config import preset

    impl = load_implementation("nnspec.verify.hf_marian:float64")
    config = impl.conventions.apply(preset("transformer_tiny"))
    params = impl.oracle.init_params(config, seed=2)
    marian, oracle = impl.Transformer(config, params), impl.oracle.Transformer(config, params)
    memory = np.random.default_rng(0).normal(size=(2, 4, config.d_model))
    mask = np.array([[[True, True, False, False]], [[True, True, True, False]]])
    tgt = np.array([[2, 5, 6], [2, 7, 4]])
    for src_mask in (mask, None):
        np.testing.assert_allclose(marian.decode(tgt, memory, src_mask),
                                   oracle.decode(tgt, memory, src_mask), rtol=1e-6, atol=1e-6)
    # the mask's leading axes broadcast with the others' (one sequence's memory, two masks)
    np.testing.assert_allclose(marian.decode(tgt[0], memory[0], mask), oracle.decode(tgt[0], memory[0], mask),
                               rtol=1e-6, atol=1e-6)
    src = np.array([5, 6, 7, 8])
    np.testing.assert_allclose(marian.encode(src, mask), oracle.encode(src, mask), rtol=1e-6, atol=1e-6)
    hidden = marian.decode(tgt, memory, mask)
    moved = memory.copy()
    moved[0, 2:] += 1.0  # rows the first sequence's mask hides
    assert np.array_equal(marian.decode(tgt, moved, mask)[0], hidden[0])
