"""Hugging Face's Marian (``transformers.MarianMTModel``) as an nnspec implementation.

The encoder-decoder counterpart of :mod:`nnspec.verify.hf_gpt2`: a whole translation model someone
else wrote, Vaswani et al.'s architecture as Marian NMT and Hugging Face ship it, offering one
capability, ``Transformer``. nnspec's encoder-decoder clauses hold it to the documents: NET-ORACLE
(its logits are the oracle's for the same parameters), NET-LOGITS (``forward`` is the unembedded
``decode(encode(src))``), NET-PADDING (a padded source changes nothing but the pads), DEC-CROSS-ALL,
DEC-AUTOREGRESSIVE, NET-BATCH, NET-LONG, OUT-DISTRIBUTION, and, through Hugging Face's own
``generate`` (its cached decoding loop, not nnspec's), GREEDY and SAMPLE-DIST. The model is built
from a ``MarianConfig``, never downloaded::

    nnspec verify nnspec.verify.hf_marian:float32 nnspec.verify.hf_marian:bfloat16
    nnspec verify nnspec.verify.hf_marian:cuda_float32          # DEVICE_DTYPE, device cpu by default

It needs ``transformers`` (nnspec's test extra installs it). What the adapter translates, as a
user's adapter for their own model would:

- Marian's fixed choices are declared as conventions: post-LN (Vaswani et al.'s placement), sinusoidal
  positions laid out *concatenated* (``MarianSinusoidalPositionalEmbedding``: the sines of every
  frequency, then the cosines, where the documents interleave them) and layer norms with eps 1e-5
  (``nn.LayerNorm``'s default, which Marian does not expose). The oracle and the drawn
  configurations follow them; the activation (``relu`` or exact ``gelu``), embedding scaling,
  tying and biases follow each drawn configuration.
- vocabularies: nnspec's Transformer has a source and a target embedding, so Marian is built with
  ``share_encoder_decoder_embeddings=False`` (a source vocabulary and a ``decoder_vocab_size``);
  tying is ``tie_word_embeddings``, which ties ``lm_head`` to the decoder's embedding.
- layout: ``embed_tokens`` holds one row per token (nnspec's ``W_E`` transposed); the projections
  are ``nn.Linear``, (out, in) like nnspec's; nnspec's ``b_U`` is Marian's ``final_logits_bias``.
- biases: Marian's layers always have them, so a configuration without biases gets zeros.
- special tokens: nnspec's ``<pad>``, ``<start>`` and ``<end>`` are Marian's ``pad_token_id``,
  ``decoder_start_token_id`` and ``eos_token_id``; ``forced_eos_token_id`` (Marian's default forces
  ``</s>`` at the length limit) is switched off, since the documents' decoding stops only when the
  model emits ``<end>``.
- the sinusoid table is Marian's own, never nnspec's: ``embed_positions`` keeps the values Marian
  computed. (Marian computes them in float32, ``torch.FloatTensor``, whatever the model's dtype, so
  a float64 Marian is float32-accurate in its positions: NET-ORACLE says so at float64.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from nnspec.reference.config import END_ID, PAD_ID, START_ID  # nnspec's special token ids
from nnspec.reference.torch_ref import to_numpy, to_torch  # nnspec's one NumPy <-> torch copy

from .hugging_face import DEVICES, HuggingFaceNetwork, generation_config, identify, on_device
from .implementations import DTYPES, by_device_and_dtype

__all__ = ["HFMarian"]

# nnspec's activation names -> Marian's activation_function (Marian's own default is "swish")
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu"}
MARIAN_LAYER_NORM_EPS = 1e-5  # nn.LayerNorm(embed_dim): Marian passes no eps


class _Marian(HuggingFaceNetwork):
    """nnspec's ``Transformer(config, params)`` on a ``MarianMTModel`` loaded with ``params``."""

    def __init__(self, config: Any, params: dict[str, Any]) -> None:
        from transformers import MarianConfig, MarianMTModel

        fixed = {"norm_placement": "post", "positional": "sinusoidal", "layer_norm_eps": MARIAN_LAYER_NORM_EPS}
        wrong = {name: getattr(config, name) for name, value in fixed.items() if getattr(config, name) != value}
        if wrong or config.activation not in _ACTIVATIONS:
            raise ValueError(
                f"Marian is post-LN with sinusoidal positions, layer norms of eps 1e-5 and an activation "
                f"in {sorted(_ACTIVATIONS)}; got {wrong or {'activation': config.activation}}"
            )
        self.config = config
        hf_config = MarianConfig(
            vocab_size=config.n_src_vocab,
            decoder_vocab_size=config.n_tgt_vocab,
            share_encoder_decoder_embeddings=False,
            tie_word_embeddings=config.tie_embeddings,
            max_position_embeddings=config.context,
            d_model=config.d_model,
            encoder_layers=config.n_encoder_layers, decoder_layers=config.n_decoder_layers,
            encoder_attention_heads=config.n_heads, decoder_attention_heads=config.n_heads,
            encoder_ffn_dim=config.d_ff, decoder_ffn_dim=config.d_ff,
            activation_function=_ACTIVATIONS[config.activation],
            scale_embedding=config.scale_embeddings,
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
            pad_token_id=PAD_ID, decoder_start_token_id=START_ID, eos_token_id=END_ID,
            forced_eos_token_id=None, bos_token_id=None,
        )
        self.model = MarianMTModel(hf_config).to(device=self.device, dtype=self.dtype).eval()
        self.model.load_state_dict(self._state_dict(params), strict=True)

    def _state_dict(self, p: dict[str, Any]) -> dict[str, torch.Tensor]:
        """nnspec's parameter layout (reference/PARAMETERS.md) as Marian's state dict; the two
        sinusoid tables are Marian's own."""
        t, d, d_ff = self._tensor, self.config.d_model, self.config.d_ff

        def linear(prefix: str, W: Any, b: Any, size: int) -> dict[str, torch.Tensor]:
            bias = t(b) if b is not None else torch.zeros(size, device=self.device, dtype=self.dtype)
            return {prefix + ".weight": t(W), prefix + ".bias": bias}

        def attention(prefix: str, a: dict[str, Any]) -> dict[str, torch.Tensor]:
            state: dict[str, torch.Tensor] = {}
            for hf, ours in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("out_proj", "o")):
                state.update(linear(f"{prefix}.{hf}", a[f"W_{ours}"], a.get(f"b_{ours}"), d))
            return state

        def norm(prefix: str, n: dict[str, Any]) -> dict[str, torch.Tensor]:
            return {prefix + ".weight": t(n["gamma"]), prefix + ".bias": t(n["beta"])}

        def ffn(prefix: str, f: dict[str, Any]) -> dict[str, torch.Tensor]:
            return {**linear(prefix + "fc1", f["W_1"], f.get("b_1"), d_ff),
                    **linear(prefix + "fc2", f["W_2"], f.get("b_2"), d)}

        own = self.model.state_dict()
        W_E_tgt = np.asarray(p["W_E_tgt"])  # (d_model, n_tgt_vocab): one column per token
        state = {
            "model.encoder.embed_tokens.weight": t(np.asarray(p["W_E_src"]).T),
            "model.decoder.embed_tokens.weight": t(W_E_tgt.T),
            "model.encoder.embed_positions.weight": own["model.encoder.embed_positions.weight"],
            "model.decoder.embed_positions.weight": own["model.decoder.embed_positions.weight"],
            "lm_head.weight": t(np.asarray(p["W_U"]) if "W_U" in p else W_E_tgt.T),  # tied: W_E_tgt^T
            "final_logits_bias": (t(p["b_U"]) if "b_U" in p else torch.zeros(
                self.config.n_tgt_vocab, device=self.device, dtype=self.dtype))[None],
        }
        for i, layer in enumerate(p["encoder"]):
            h = f"model.encoder.layers.{i}."
            state.update({**attention(h + "self_attn", layer["self_attn"]),
                          **norm(h + "self_attn_layer_norm", layer["norm_1"]),
                          **ffn(h, layer["ffn"]), **norm(h + "final_layer_norm", layer["norm_2"])})
        for i, layer in enumerate(p["decoder"]):
            h = f"model.decoder.layers.{i}."
            state.update({**attention(h + "self_attn", layer["self_attn"]),
                          **norm(h + "self_attn_layer_norm", layer["norm_1"]),
                          **attention(h + "encoder_attn", layer["cross_attn"]),
                          **norm(h + "encoder_attn_layer_norm", layer["norm_2"]),
                          **ffn(h, layer["ffn"]), **norm(h + "final_layer_norm", layer["norm_3"])})
        return state

    def _ids(self, ids: Any) -> torch.Tensor:
        return to_torch(np.asarray(ids, dtype=np.int64), device=self.device)

    def _source_mask(self, src_mask: Any | None) -> torch.Tensor | None:
        """nnspec's ``(..., 1, S)`` source mask, True = may attend (Marian's polarity too)."""
        return None if src_mask is None else to_torch(np.asarray(src_mask, dtype=bool), device=self.device)

    def _attention_mask(self, src: torch.Tensor, src_mask: torch.Tensor | None) -> torch.Tensor:
        """Marian's ``attention_mask`` (N, S), 1 = a real token, for ``src`` (..., S) whose leading
        axes are already broadcast: the given mask's row, or without one the non-pad tokens."""
        S = src.shape[-1]
        if src_mask is None:
            return (src != PAD_ID).reshape(-1, S).long()
        return torch.broadcast_to(src_mask, (*src.shape[:-1], 1, S)).reshape(-1, S).long()

    @torch.no_grad()
    def encode(self, src_ids: Any, src_mask: Any | None = None) -> np.ndarray:
        src, mask = self._ids(src_ids), self._source_mask(src_mask)
        S = src.shape[-1]
        lead = src.shape[:-1] if mask is None else torch.broadcast_shapes(src.shape[:-1], mask.shape[:-2])
        src = torch.broadcast_to(src, (*lead, S))
        out = self.model.model.encoder(
            input_ids=src.reshape(-1, S), attention_mask=self._attention_mask(src, mask)
        ).last_hidden_state  # (N, S, d_model)
        return to_numpy(out.reshape(*lead, S, -1))

    @torch.no_grad()
    def decode(self, tgt_ids: Any, memory: Any, src_mask: Any | None = None) -> np.ndarray:
        tgt, memory, mask = self._ids(tgt_ids), self._tensor(memory), self._source_mask(src_mask)
        (T,), (S, d) = tgt.shape[-1:], memory.shape[-2:]
        leads = [tgt.shape[:-1], memory.shape[:-2], *([] if mask is None else [mask.shape[:-2]])]
        lead = torch.broadcast_shapes(*leads)
        if mask is not None:  # decode(tgt, memory) alone masks nothing in the cross-attention
            mask = self._attention_mask(torch.zeros((*lead, S), dtype=torch.long, device=self.device), mask)
        out = self.model.model.decoder(
            input_ids=torch.broadcast_to(tgt, (*lead, T)).reshape(-1, T),
            encoder_hidden_states=torch.broadcast_to(memory, (*lead, S, d)).reshape(-1, S, d),
            encoder_attention_mask=mask, use_cache=False,
        ).last_hidden_state  # (N, T, d_model)
        return to_numpy(out.reshape(*lead, T, d))

    @torch.no_grad()
    def _logits(self, src_ids: Any, tgt_ids: Any) -> torch.Tensor:
        src, tgt = self._ids(src_ids), self._ids(tgt_ids)
        (S,), (T,) = src.shape[-1:], tgt.shape[-1:]
        lead = torch.broadcast_shapes(src.shape[:-1], tgt.shape[:-1])
        src = torch.broadcast_to(src, (*lead, S))
        logits = self.model(
            input_ids=src.reshape(-1, S), attention_mask=self._attention_mask(src, None),
            decoder_input_ids=torch.broadcast_to(tgt, (*lead, T)).reshape(-1, T), use_cache=False,
        ).logits  # (N, T, n_tgt_vocab), final_logits_bias included
        return logits.reshape(*lead, T, -1)

    def forward(self, src_ids: Any, tgt_ids: Any) -> np.ndarray:
        return to_numpy(self._logits(src_ids, tgt_ids))

    def probabilities(self, src_ids: Any, tgt_ids: Any, temperature: float = 1.0) -> np.ndarray:
        return to_numpy(torch.softmax(self._logits(src_ids, tgt_ids) / temperature, dim=-1))

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        return self._generate(src_ids, max_len, 0.0, 0)

    def sample(self, src_ids: Any, *, max_len: int, temperature: float, seed: int) -> list[int]:
        return self._generate(src_ids, max_len, temperature, seed)

    def _generate(self, src_ids: Any, max_len: int, temperature: float, seed: int) -> list[int]:
        """``[<start>, ...]`` from Hugging Face's own ``generate``: its decoding loop over its
        encoder-decoder KV cache, its temperature warper and sampler. Sampling draws from torch's
        global generator, so the seed is set inside ``fork_rng`` (the caller's random state is as
        it was afterwards)."""
        if max_len == 0:  # Hugging Face refuses to generate nothing; nnspec's API returns <start>
            return [START_ID]
        src = self._ids(np.asarray(src_ids).reshape(1, -1))
        with self._seeded(seed):
            out = self.model.generate(
                src, attention_mask=self._attention_mask(src, None),
                generation_config=self._generation_config(max_len, temperature),
            )
        return [int(token) for token in out[0].tolist()]

    def _generation_config(self, max_len: int, temperature: float) -> Any:
        """At most ``max_len`` tokens after ``<start>``, stopping at ``<end>``; one beam."""
        return generation_config(
            temperature, max_new_tokens=max_len, num_beams=1, decoder_start_token_id=START_ID,
            eos_token_id=END_ID, pad_token_id=PAD_ID, forced_eos_token_id=None, bos_token_id=None,
        )


class HFMarian:
    """Marian on one device and dtype, offering nnspec's ``Transformer``."""

    nnspec_conventions = {
        "norm_placement": "post", "positional": "sinusoidal", "sinusoid_layout": "concatenated",
        "layer_norm_eps": MARIAN_LAYER_NORM_EPS,
    }

    def __init__(self, device: str = "cpu", dtype: str = "float64") -> None:
        identify(self, "hf-marian", device, dtype)
        self.Transformer = on_device(_Marian, "Transformer", device, dtype)


# ``float32`` (on the CPU) or ``cuda_bfloat16``: import paths name a device and a dtype.
__getattr__, __dir__ = by_device_and_dtype(
    __name__, globals(), lambda device, dtype: HFMarian(device=device, dtype=dtype), dtypes=DTYPES, devices=DEVICES
)
