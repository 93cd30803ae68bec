"""Network configurations shared by both references, with the named presets.

A configuration pins every choice the documents leave open (norm placement, activation,
positional-encoding style, biases, LayerNorm eps, tied embeddings) so that two implementations
configured alike must agree number for number.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

NormPlacement = Literal["post", "pre"]
Positional = Literal["sinusoidal", "learned", "none"]
Activation = Literal["sigmoid", "relu", "tanh", "gelu", "gelu_tanh"]

# Special token ids, fixed for every network and for `Vocabulary`.
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3


@dataclass(frozen=True)
class MLPConfig:
    """A fully connected network: ``a(l+1) = act(W(l) a(l) + b(l))``."""

    layer_sizes: tuple[int, ...] = (784, 16, 16, 10)
    activation: Activation | None = "sigmoid"  # None: every layer linear (a linear neuron)


@dataclass(frozen=True)
class TransformerConfig:
    """The encoder-decoder Transformer of Vaswani et al. (2017), with real models' switches."""

    n_src_vocab: int
    n_tgt_vocab: int
    d_model: int = 512
    n_heads: int = 8
    n_encoder_layers: int = 6
    n_decoder_layers: int = 6
    d_ff: int = 2048
    context: int = 512
    norm_placement: NormPlacement = "post"
    activation: Activation = "relu"
    positional: Positional = "sinusoidal"
    bias: bool = True
    layer_norm_eps: float = 1e-5
    tie_embeddings: bool = False
    scale_embeddings: bool = True

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


@dataclass(frozen=True)
class GPTConfig:
    """A decoder-only causal language model (GPT-2/GPT-3 style)."""

    n_vocab: int
    context: int = 1024
    d_model: int = 768
    n_heads: int = 12
    n_layers: int = 12
    d_ff: int = 3072
    norm_placement: NormPlacement = "pre"
    activation: Activation = "gelu"
    positional: Positional = "learned"
    bias: bool = True
    layer_norm_eps: float = 1e-5
    tie_embeddings: bool = False
    scale_embeddings: bool = False

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


@dataclass(frozen=True)
class Seq2SeqConfig:
    """The LSTM encoder-decoder of Sutskever et al. (2014), with optional Bahdanau/Luong attention."""

    n_src_vocab: int
    n_tgt_vocab: int
    d_embed: int = 16
    d_hidden: int = 32
    n_layers: int = 1
    reverse_source: bool = True
    attention: Literal["bahdanau", "luong"] | None = None
    d_attn: int = 32


NetworkConfig = MLPConfig | TransformerConfig | GPTConfig | Seq2SeqConfig

PRESETS: dict[str, NetworkConfig] = {
    # The 3Blue1Brown digit network: 784 pixels, two hidden layers of 16, 10 digits.
    "mnist_3b1b": MLPConfig(layer_sizes=(784, 16, 16, 10), activation="sigmoid"),
    # Vaswani et al. (2017), base model (the vocabulary size is the paper's shared BPE vocabulary).
    "vaswani_base": TransformerConfig(n_src_vocab=37000, n_tgt_vocab=37000),
    "transformer_tiny": TransformerConfig(
        n_src_vocab=24, n_tgt_vocab=24, d_model=16, n_heads=2, n_encoder_layers=2,
        n_decoder_layers=2, d_ff=32, context=32,
    ),
    # GPT-3 175B as tallied in the documents (3Blue1Brown's chapter on transformers).
    "gpt3": GPTConfig(
        n_vocab=50257, context=2048, d_model=12288, n_heads=96, n_layers=96, d_ff=49152,
    ),
    "gpt_tiny": GPTConfig(n_vocab=24, context=32, d_model=16, n_heads=2, n_layers=2, d_ff=64),
    "seq2seq_tiny": Seq2SeqConfig(n_src_vocab=24, n_tgt_vocab=24, d_embed=8, d_hidden=16),
}


def preset(name: str, **overrides: object) -> NetworkConfig:
    """Return the named preset, optionally with some fields replaced."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; choose one of {sorted(PRESETS)}"
        ) from None
    return replace(base, **overrides) if overrides else base
