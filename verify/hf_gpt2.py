"""Hugging Face's GPT-2 (``transformers.GPT2LMHeadModel``) as an nnspec implementation.

The worked example of an adapter for a model someone else wrote, a whole ``torch.nn.Module`` with
its own parameter names, layout and cache, offering one capability: ``GPT``. nnspec's GPT clauses
then hold it to the documents: GPT-NEXT (logits at position t depend on tokens <= t),
DEC-AUTOREGRESSIVE (decoding through its KV cache, token by token and in pieces, gives the
parallel pass), NET-ORACLE (its logits are the oracle's for the same parameters), and, through
Hugging Face's own ``generate``, GPT-GENERATE (greedy generation is the argmax of the parallel
pass, step by step) and SAMPLE-DIST (a seed reproduces, and the sampled frequencies are
softmax(l / T)). The model is built from a ``GPT2Config``, never downloaded::

    nnspec verify nnspec.verify.hf_gpt2:float64 nnspec.verify.hf_gpt2:bfloat16
    nnspec verify nnspec.verify.hf_gpt2:cuda_float32            # DEVICE_DTYPE, device cpu by default

It needs ``transformers`` (``pip install transformers``; nnspec's test extra installs it). What the
adapter translates, as a user's adapter for their own model would:

- GPT-2's fixed choices are declared as conventions: pre-LN with a final layer norm (``ln_f``),
  learned positions (``wpe``). The oracle and the drawn configurations follow them; its activation
  (``relu``, exact ``gelu`` or ``gelu_new``, the tanh approximation), eps, tying and biases follow
  each drawn configuration.
- layout: GPT-2's ``Conv1D`` computes ``x @ W + b``, so each weight is nnspec's ``W`` transposed;
  ``c_attn`` holds W_q, W_k and W_v side by side; ``wte`` is nnspec's ``W_E`` transposed (one row
  per token).
- biases: GPT-2's layers always have them, so a configuration without biases gets zeros (the same
  function); its ``lm_head`` has none, so nnspec's ``b_U``, where there is one, is added to the
  logits by the adapter.
- the KV cache: ``forward_cached(ids, cache)`` runs the model with its own ``past_key_values`` and
  hands the cache across nnspec's boundary in nnspec's layout (``{"length": L, "layers": [{"k",
  "v"}]}``, arrays of shape (..., n_heads, L, d_head)), rebuilding GPT-2's cache from it on the way
  back in, so the cache nnspec holds between calls is GPT-2's own keys and values.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from nnspec.reference.torch_ref import to_numpy, to_torch  # nnspec's one NumPy <-> torch copy

from .hugging_face import DEVICES, HuggingFaceNetwork, generation_config, identify, on_device
from .implementations import DTYPES, by_device_and_dtype

__all__ = ["HFGPT2"]

# nnspec's activation names -> GPT-2's activation_function
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}


class _GPT2(HuggingFaceNetwork):
    """nnspec's ``GPT(config, params)`` on a ``GPT2LMHeadModel`` loaded with ``params``."""

    def __init__(self, config: Any, params: dict[str, Any]) -> None:
        from transformers import GPT2Config, GPT2LMHeadModel

        if config.norm_placement != "pre" or config.positional != "learned" or config.scale_embeddings:
            raise ValueError(
                "GPT-2 is pre-LN with learned positions and unscaled embeddings; got "
                f"norm_placement={config.norm_placement!r}, positional={config.positional!r}, "
                f"scale_embeddings={config.scale_embeddings!r}"
            )
        self.config = config
        hf_config = GPT2Config(
            vocab_size=config.n_vocab,
            n_positions=config.context,
            n_embd=config.d_model,
            n_layer=config.n_layers,
            n_head=config.n_heads,
            n_inner=config.d_ff,
            activation_function=_ACTIVATIONS[config.activation],
            layer_norm_epsilon=config.layer_norm_eps,
            tie_word_embeddings=config.tie_embeddings,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=None, eos_token_id=None,
        )
        self.model = GPT2LMHeadModel(hf_config).to(device=self.device, dtype=self.dtype).eval()
        # transformers 5.x renamed past_key_values to cache (the old name warns, then goes)
        forward = inspect.signature(self.model.forward).parameters
        self._cache_argument = "cache" if "cache" in forward else "past_key_values"
        self.model.load_state_dict(self._state_dict(params), strict=True)
        b_U = params.get("b_U")
        self.b_U = None if b_U is None else self._tensor(b_U)

    def _state_dict(self, p: dict[str, Any]) -> dict[str, torch.Tensor]:
        """nnspec's parameter layout (reference/PARAMETERS.md) as GPT-2's state dict."""
        t = self._tensor

        def bias(layer: dict[str, Any], name: str, size: int) -> torch.Tensor:
            return t(layer[name]) if name in layer else torch.zeros(size, device=self.device, dtype=self.dtype)

        d, d_ff = self.config.d_model, self.config.d_ff
        W_E = np.asarray(p["W_E"])  # (d_model, n_vocab): one column per token
        state = {"transformer.wte.weight": t(W_E.T), "transformer.wpe.weight": t(p["W_P"])}
        for i, block in enumerate(p["blocks"]):
            a, f, h = block["attn"], block["ffn"], f"transformer.h.{i}."
            # Conv1D: x @ W + b, W of shape (in, out); c_attn's out is [q | k | v]
            W_qkv = np.concatenate([np.asarray(a[n]) for n in ("W_q", "W_k", "W_v")], axis=0)  # (3d, d)
            state.update({
                h + "ln_1.weight": t(block["norm_1"]["gamma"]), h + "ln_1.bias": t(block["norm_1"]["beta"]),
                h + "attn.c_attn.weight": t(W_qkv.T),
                h + "attn.c_attn.bias": torch.cat([bias(a, n, d) for n in ("b_q", "b_k", "b_v")]),
                h + "attn.c_proj.weight": t(np.asarray(a["W_o"]).T), h + "attn.c_proj.bias": bias(a, "b_o", d),
                h + "ln_2.weight": t(block["norm_2"]["gamma"]), h + "ln_2.bias": t(block["norm_2"]["beta"]),
                h + "mlp.c_fc.weight": t(np.asarray(f["W_1"]).T), h + "mlp.c_fc.bias": bias(f, "b_1", d_ff),
                h + "mlp.c_proj.weight": t(np.asarray(f["W_2"]).T), h + "mlp.c_proj.bias": bias(f, "b_2", d),
            })
        state["transformer.ln_f.weight"] = t(p["final_norm"]["gamma"])
        state["transformer.ln_f.bias"] = t(p["final_norm"]["beta"])
        W_U = np.asarray(p["W_U"]) if "W_U" in p else W_E.T  # (n_vocab, d_model); tied: W_E^T
        state["lm_head.weight"] = t(W_U)
        return state

    def _run(self, ids: Any, cache: Any = None) -> tuple[np.ndarray, Any]:
        ids = to_torch(np.asarray(ids, dtype=np.int64), device=self.device)
        lead, T = ids.shape[:-1], ids.shape[-1]
        cache_argument = self._cache_argument
        with torch.no_grad():
            out = self.model(input_ids=ids.reshape(-1, T), use_cache=cache is not None, **{cache_argument: cache})
        logits = out.logits  # (B, T, n_vocab)
        if self.b_U is not None:  # GPT-2's lm_head has no bias; nnspec's unembedding may
            logits = logits + self.b_U
        return to_numpy(logits.reshape(*lead, T, -1)), getattr(out, cache_argument)

    def forward(self, ids: Any) -> np.ndarray:
        return self._run(ids)[0]

    def forward_cached(self, ids: Any, cache: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        from transformers import DynamicCache

        ids = np.asarray(ids, dtype=np.int64)
        lead = ids.shape[:-1]
        try:
            hf_cache = DynamicCache(config=self.model.config)
        except TypeError:  # releases whose DynamicCache takes no config
            hf_cache = DynamicCache()
        for i, layer in enumerate((cache or {}).get("layers", [])):
            k, v = (self._tensor(layer[n]) for n in ("k", "v"))  # (..., nh, L, dh)
            hf_cache.update(k.reshape(-1, *k.shape[-3:]), v.reshape(-1, *v.shape[-3:]), i)
        logits, hf_cache = self._run(ids, hf_cache)
        layers = [
            {"k": to_numpy(layer.keys.reshape(*lead, *layer.keys.shape[-3:])),
             "v": to_numpy(layer.values.reshape(*lead, *layer.values.shape[-3:]))}
            for layer in hf_cache.layers
        ]
        return logits, {"length": int(hf_cache.get_seq_length()), "layers": layers}


    def generate(
        self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0
    ) -> list[int]:
        """``ids`` (one prompt) and ``max_new_tokens`` tokens from Hugging Face's own ``generate``:
        its decoding loop, its KV cache, its temperature warper and sampler, not nnspec's.

        Its defaults are not the documents' plain softmax(l / T): ``top_k`` (50) and ``top_p``
        would truncate the distribution, so both are switched off; nnspec's ``b_U`` enters as a
        logits processor, which ``generate`` applies before the temperature ((l + b) / T). Sampling
        draws from torch's global generator, so the seed is set inside ``fork_rng``: the caller's
        random state is as it was afterwards.
        """
        if max_new_tokens == 0:  # Hugging Face refuses to generate nothing; nnspec's API returns the prompt
            return [int(t) for t in np.asarray(ids, dtype=np.int64).reshape(-1)]
        prompt = to_torch(np.asarray(ids, dtype=np.int64).reshape(1, -1), device=self.device)
        config = self._generation_config(max_new_tokens, temperature)
        with self._seeded(seed):
            out = self.model.generate(
                prompt, attention_mask=torch.ones_like(prompt), generation_config=config,
                logits_processor=self._logits_processors(),
            )
        return [int(t) for t in out[0].tolist()]

    def _generation_config(self, max_new_tokens: int, temperature: float) -> Any:
        """Exactly ``max_new_tokens`` (no end token stops it early)."""
        return generation_config(
            temperature, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
            eos_token_id=None, bos_token_id=None, pad_token_id=0,
        )

    def _logits_processors(self) -> Any:
        """nnspec's ``b_U``, which GPT-2's ``lm_head`` lacks, added to every step's logits."""
        from transformers import LogitsProcessorList

        return LogitsProcessorList([] if self.b_U is None else [_AddUnembeddingBias(self.b_U)])


class _AddUnembeddingBias:
    """nnspec's ``b_U`` as a ``generate`` logits processor (GPT-2's ``lm_head`` has no bias)."""

    def __init__(self, b_U: torch.Tensor) -> None:
        self.b_U = b_U

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores + self.b_U.to(scores.dtype)


class HFGPT2:
    """GPT-2 on one device and dtype, offering nnspec's ``GPT``."""

    nnspec_conventions = {"norm_placement": "pre", "positional": "learned", "scale_embeddings": False}

    def __init__(self, device: str = "cpu", dtype: str = "float64") -> None:
        identify(self, "hf-gpt2", device, dtype)
        self.GPT = on_device(_GPT2, "GPT", device, dtype)


# ``float32`` (on the CPU) or ``cuda_bfloat16``: import paths name a device and a dtype.
__getattr__, __dir__ = by_device_and_dtype(
    __name__, globals(), lambda device, dtype: HFGPT2(device=device, dtype=dtype), dtypes=DTYPES, devices=DEVICES
)
