"""Clauses on the Transformer's blocks and on whole networks.

The lecture notes and the recap build the encoder from two sub-layers (multi-head self-attention and
a position-wise feed-forward network), each wrapped in a residual connection and a layer norm, and
the decoder from three (masked self-attention, cross-attention on the encoder's output,
feed-forward);
a final linear layer and a softmax turn each decoder position into a distribution over the next
token, produced one token at a time at inference and in parallel (masked) at training. The LSTM
encoder-decoder of Sutskever et al. reads the source reversed, ends sentences with an end token and,
without attention, passes the whole source through the encoder's final state.

Truths used here, none of them the oracle's say-so: formulas written out in NumPy (the FFN, layer
norm, sinusoidal positions), compositions of the implementation's own sub-layer functions (whose
clauses live in their topics), and metamorphic relations (permutations, changed future tokens,
changed source tokens, prefix-by-prefix decoding). NET-ORACLE and the oracle halves of ENC-LAYER and
DEC-LAYER are the differential checks that come on top.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from nnspec.reference.config import (
    END_ID,
    PAD_ID,
    START_ID,
    UNK_ID,
    GPTConfig,
    MLPConfig,
    Seq2SeqConfig,
    TransformerConfig,
)

from . import precision
from .activations import FORMULAS
from .clause import (
    BROWN_2020,
    LECTURE_NOTES,
    NEURAL_NETWORKS,
    RECAP,
    SUTSKEVER_2014,
    VASWANI_2017,
    VIDEO_NOTES,
    Check,
    Source,
    as_declared,
    clause,
    in_layout,
    informative,
    sinusoid_layout,
)
from .cost_learning import copy_params, draw_array, finite, rounded_params

TOPIC = "blocks"

# Sections of the documents cited below.
RECAP_FFN = "Feed-forward layer"
RECAP_MASKED = "Masked multihead attention"
RECAP_OUTPUT = "Predicting the final outputs"
RECAP_EMBED = "Input embeddings"
NOTES_ENCODER = "Encoder Architecture"
NOTES_QUESTIONS = "Some questions (why residual connections)"
NOTES_LAYER_NORM = "Layer Norm in Transformers"
NOTES_AUTOREGRESSIVE = "Transformer as an Autoregressive Model"
NOTES_PARALLEL = "The problem in parallelizing / Finding the answer"
NOTES_CROSS = "What is Cross Attention"
NOTES_POSITIONS = "Self-Attention / Proposing a simple solution"
NOTES_SUTSKEVER = "The Sutskever Architecture"
NOTES_WHY = "The Why (the encoder's single context vector)"
NOTES_TRAINING = "Transformer as an Autoregressive Model / Training"
VIDEO_GPT = "GPT data flow: predicting the next token"
VIDEO_SOFTMAX = "Prediction Mechanism, Softmax Function"
NN_OVERVIEW = "5. A Basic Idea of transformers, a. Overview"

# The first ids are reserved (PAD, UNK, START, END), the others ordinary words.
FIRST_WORD_ID = 4
VOCAB = 11
# The ids a drawn sentence is made of: every id but PAD. Networks mask PAD out of the source (and
# clauses that mean to test padding append it themselves); the other reserved ids are tokens like any
# word, and real inputs hold them (Sutskever et al.'s source ends with <end>; a GPT prompt may hold
# the end of a previous document). END comes first, where Hypothesis starts: a network that takes it
# for padding (Hugging Face's GPT-2 recipe pad_token = eos_token, then a mask ids != pad) hides it.
SENTENCE_IDS = (END_ID, *range(FIRST_WORD_ID, VOCAB), UNK_ID, START_ID)


# ---------------------------------------------------------------------------------------------
# Formulas written out here, so that the truth does not come from a reference.
# ---------------------------------------------------------------------------------------------


# The feed-forward network's activations (spec/activations.py's closed forms)
ACTIVATIONS = {name: FORMULAS[name] for name in ("relu", "gelu", "tanh", "sigmoid")}


def ffn_formula(params: dict, x: np.ndarray, activation: str) -> np.ndarray:
    """FFN(x) = W_2 act(W_1 x + b_1) + b_2, one token per row (recap, "Feed-forward layer")."""
    h = x @ params["W_1"].T + params.get("b_1", 0.0)  # (..., T, d_ff)
    return ACTIVATIONS[activation](h) @ params["W_2"].T + params.get(
        "b_2", 0.0
    )  # (..., T, d_model)


def layer_norm_formula(x: np.ndarray, norm: dict, eps: float) -> np.ndarray:
    """gamma (x - mean) / sqrt(var + eps) + beta over each token's features (biased variance)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return norm["gamma"] * (x - mean) / np.sqrt(var + eps) + norm["beta"]


def sinusoid_table(n_positions: int, d_model: int) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    pe = np.zeros((n_positions, d_model))
    for pos in range(n_positions):
        for col in range(d_model):
            angle = pos / 10000 ** ((col - col % 2) / d_model)
            pe[pos, col] = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    return pe


def input_embedding(
    ids: np.ndarray, W_E: np.ndarray, W_P: np.ndarray | None, config: Any, layout: str = "interleaved"
) -> np.ndarray:
    """Column ``t`` of W_E per token (x sqrt(d_model) if scaled) plus its position's encoding
    (sinusoids in the declared ``layout``)."""
    x = W_E[:, ids].T  # (T, d_model)
    if config.scale_embeddings:
        x = x * math.sqrt(config.d_model)
    if config.positional == "sinusoidal":
        x = x + in_layout(sinusoid_table(len(ids), config.d_model), layout)
    elif config.positional == "learned":
        x = x + W_P[: len(ids)]
    return x


def unembedding(h: np.ndarray, params: dict, W_E_name: str) -> np.ndarray:
    """logits = W_U h + b_U, W_U the transposed embedding ``W_E_name`` when tied (the parameters
    then hold no W_U, PARAMETERS.md), no b_U without biases."""
    W_U = params["W_U"] if "W_U" in params else params[W_E_name].T  # (n_vocab, d_model)
    return h @ W_U.T + (params["b_U"] if "b_U" in params else 0.0)


def with_logit_moved(params: dict, token: int, by: float) -> dict:
    """``params`` with ``token``'s logit moved by ``by`` at every position (a new dict; the drawn
    arrays are untouched): +1000 makes the token every step's argmax, -1000 takes it out of reach.
    Through ``b_U[token]``; a bias-free network has none, and moves it through its constant feature
    (:func:`with_constant_feature`): ``W_U[token, 0] += by``, times a feature that is exactly 1."""
    if "b_U" in params:
        b_U = params["b_U"].copy()
        b_U[token] += by
        return {**params, "b_U": b_U}
    moved, W_U = with_constant_feature(params)
    W_U[token, 0] += by
    return moved


def with_constant_feature(params: dict) -> tuple[dict, np.ndarray]:
    """A copy of a Transformer's or GPT's ``params`` whose last hidden state has feature 0 equal to
    exactly 1 at every position, and the copy's W_U (n_vocab, d_model), writable in place (the
    transposed W_E when tied). Column 0 of W_U is then a bias on the logits: what a bias-free network
    (a switched-off b_U) offers a clause that must place logits where it wants them.

    The hidden state W_U reads is the output of the last layer norm (pre-LN: the final norm; post-LN:
    the last block's last norm), ``gamma * n + beta``; with gamma_0 = 0 and beta_0 = 1 its feature 0
    is 0 * n_0 + 1 = 1, exact in every format (n_0 is a normalised, finite value)."""
    moved = copy_params(params)
    if "decoder_norm" in moved or "final_norm" in moved:  # pre-LN
        norm = moved["decoder_norm" if "decoder_norm" in moved else "final_norm"]
    else:  # post-LN: the last sub-layer's add & norm
        norm = moved["decoder"][-1]["norm_3"] if "decoder" in moved else moved["blocks"][-1]["norm_2"]
    norm["gamma"][0], norm["beta"][0] = 0.0, 1.0
    if "W_U" in moved:
        return moved, moved["W_U"]
    return moved, moved["W_E_tgt" if "W_E_tgt" in moved else "W_E"].T  # a view: writes reach W_E


def with_constant_logits(params: dict, logits: np.ndarray) -> dict:
    """``params`` whose logits are ``logits`` (n_vocab,) at every position, whatever the context:
    W_U = 0 and b_U = logits, or bias-free, W_U's column 0 = logits times the constant feature
    (:func:`with_constant_feature`). Exact in every format: every other product is 0 times a
    finite value."""
    if "b_U" in params:
        return {**params, "W_U": np.zeros_like(params["W_U"]), "b_U": logits}
    moved, W_U = with_constant_feature(params)
    W_U[...] = 0.0
    W_U[:, 0] = logits
    return moved


def logit_bias(params: dict) -> str:
    """What carries a logit's bias in ``params``, for failure messages."""
    return "b_U" if "b_U" in params else "W_U[:, 0] x the final norm's constant feature 0"


def lower_triangle(n: int) -> np.ndarray:
    """The decoder's mask: position t may attend to positions <= t (True = may attend)."""
    return np.tril(np.ones((n, n), dtype=bool))


# ---------------------------------------------------------------------------------------------
# Drawing small networks.
# ---------------------------------------------------------------------------------------------


def jitter(params: Any, rng: np.random.Generator, scale: float = 0.3) -> Any:
    """Add noise to every array, so that biases, gains and shifts are not at their 0/1 defaults."""
    if isinstance(params, dict):
        return {key: jitter(value, rng, scale) for key, value in params.items()}
    if isinstance(params, (list, tuple)):
        return [jitter(value, rng, scale) for value in params]
    array = np.asarray(params, dtype=np.float64)
    return array + rng.normal(0.0, scale, size=array.shape)


def network_params(ck: Check, config: Any) -> dict:
    """The oracle's layout for ``config`` with drawn values, rounded to the impl's dtype."""
    seed = ck.draw(st.integers(0, 2**16), "parameter seed")
    params = ck.oracle.init_params(config, seed=seed)
    return rounded_params(ck, jitter(params, np.random.default_rng(seed)))


def draw_tokens(
    ck: Check, n_min: int, n_max: int, label: str, *, unique: bool = False
) -> np.ndarray:
    """A sentence of ids from SENTENCE_IDS (UNK, START and END included, never PAD).

    Token t is drawn as a shift of SENTENCE_IDS[t], so that the simplest sentence, where Hypothesis
    starts and shrinks to, is SENTENCE_IDS[:n] (END, then distinct words) rather than one id n
    times: a sentence of one repeated token hides every bug of which tokens a position reads (with
    equal rows, attending to any subset averages the same vectors). Each token is still uniform over
    SENTENCE_IDS.
    """
    n = len(SENTENCE_IDS)
    if unique:
        # distinct ids; the simplest draw is again SENTENCE_IDS[:n]
        words = st.lists(st.sampled_from(SENTENCE_IDS), min_size=n_min, max_size=n_max, unique=True)
    else:
        words = st.lists(st.integers(0, n - 1), min_size=n_min, max_size=n_max).map(
            lambda shifts: [SENTENCE_IDS[(t + shift) % n] for t, shift in enumerate(shifts)]
        )
    return np.asarray(ck.draw(words, label), dtype=np.int64)


def _other_sentence(ids: np.ndarray, by: int) -> np.ndarray:
    """Each token of ``ids`` replaced by the id ``by`` places after it in SENTENCE_IDS (cyclically):
    still uniform over SENTENCE_IDS, and for 0 < by < len(SENTENCE_IDS) a sentence that differs
    from ``ids`` at every position, so that two rows of a batch never coincide, not even on
    Hypothesis' first, simplest draw."""
    n = len(SENTENCE_IDS)
    return np.asarray([SENTENCE_IDS[(SENTENCE_IDS.index(int(t)) + by) % n] for t in ids], dtype=np.int64)


NETWORKS = ("MLP", "Transformer", "GPT", "Seq2Seq")

# LayerNorm's eps, drawn in every network configuration. 1e-2 first, where Hypothesis starts: it
# moves the logits of the drawn networks by ~1e-2 from those at torch's default 1e-5, so a network
# that builds nn.LayerNorm(d_model) and never passes config.layer_norm_eps is caught on the first
# example; 1e-6 is the Annotated Transformer's and LLaMA's.
LAYER_NORM_EPS = (1e-2, 1e-5, 1e-6)


def _pins(fixed: dict[str, Any], overridable: tuple[str, ...]) -> dict[str, Any]:
    """The pinned fields a declaration may not override: all but ``overridable`` (a pin that is
    only a choice the clause drew itself)."""
    return {name: value for name, value in fixed.items() if name not in overridable}


def tiny_transformer(ck: Check, *, overridable: tuple[str, ...] = (), **fixed: Any) -> TransformerConfig:
    """A small encoder-decoder with every switch the configs offer drawn (``fixed`` pins some), as
    the implementation builds it (:func:`as_declared`)."""
    n_heads = ck.draw(st.sampled_from([1, 2]), "n_heads")
    d_head = ck.draw(st.sampled_from([3, 4]), "d_head")
    choices = {
        "norm_placement": st.sampled_from(["post", "pre"]),
        "activation": st.sampled_from(["relu", "gelu"]),
        "positional": st.sampled_from(["sinusoidal", "learned", "none"]),
        "bias": st.booleans(),
        "tie_embeddings": st.booleans(),
        "scale_embeddings": st.booleans(),
        "n_encoder_layers": st.integers(1, 2),
        "n_decoder_layers": st.integers(1, 2),
        "layer_norm_eps": st.sampled_from(LAYER_NORM_EPS),
    }
    drawn = {
        name: fixed[name] if name in fixed else ck.draw(strategy, name)
        for name, strategy in choices.items()
    }
    return as_declared(ck, TransformerConfig(
        n_src_vocab=VOCAB,
        n_tgt_vocab=VOCAB,
        d_model=n_heads * d_head,
        n_heads=n_heads,
        d_ff=4 * n_heads * d_head,
        context=16,
        **drawn,
    ), needed=_pins(fixed, overridable))


# A GPT's kinds of positions, 'none' first: see tiny_gpt.
GPT_POSITIONAL = ("none", "sinusoidal", "learned")


def tiny_gpt(
    ck: Check, *, positional_first: str = "none", overridable: tuple[str, ...] = (), **fixed: Any
) -> GPTConfig:
    """A small GPT with every switch the configs offer drawn (``fixed`` pins some, and may pin
    ``n_heads`` and ``d_head``).

    The first choices are where Hypothesis starts, and at the quick profile a network clause gets
    two examples, the first of them these choices and the second a random draw: so the first is
    the richest configuration, each switch on its side that has more to get wrong. Pre-LN (a final
    norm, and its eps), biases (b_U), tied embeddings (W_U = W_E^T, with b_U), exact GELU (GPT-2
    code computes gelu_new, the tanh approximation, whatever the config says), scaled embeddings
    (GPT-2 code never scales) and eps 1e-2. Positions start at ``positional_first``: 'none' (a
    'none' that still adds a position table) unless the clause is about positions, where the
    learned table (read from the wrong row, or from the cache's start) comes first. Returned as the
    implementation builds it (:func:`as_declared`).
    """
    fixed = dict(fixed)
    n_heads = fixed.pop("n_heads") if "n_heads" in fixed else ck.draw(st.sampled_from([1, 2]), "n_heads")
    d_head = fixed.pop("d_head") if "d_head" in fixed else ck.draw(st.sampled_from([3, 4]), "d_head")
    positional = (positional_first, *(kind for kind in GPT_POSITIONAL if kind != positional_first))
    choices = {
        "norm_placement": st.sampled_from(["pre", "post"]),
        "activation": st.sampled_from(["gelu", "relu"]),
        "positional": st.sampled_from(positional),
        "bias": st.sampled_from([True, False]),
        "tie_embeddings": st.sampled_from([True, False]),
        "scale_embeddings": st.sampled_from([True, False]),
        "n_layers": st.integers(1, 2),
        "layer_norm_eps": st.sampled_from(LAYER_NORM_EPS),
    }
    drawn = {
        name: fixed[name] if name in fixed else ck.draw(strategy, name)
        for name, strategy in choices.items()
    }
    return as_declared(ck, GPTConfig(
        n_vocab=VOCAB,
        context=16,
        d_model=n_heads * d_head,
        n_heads=n_heads,
        d_ff=4 * n_heads * d_head,
        **drawn,
    ), needed=_pins(fixed, overridable + ("n_heads", "d_head")))


def tiny_seq2seq(ck: Check, **fixed: Any) -> Seq2SeqConfig:
    choices = {
        "n_layers": st.integers(1, 2),
        "reverse_source": st.booleans(),
        "attention": st.sampled_from([None, "luong", "bahdanau"]),
    }
    drawn = {
        name: fixed[name] if name in fixed else ck.draw(strategy, name)
        for name, strategy in choices.items()
    }
    return Seq2SeqConfig(
        n_src_vocab=VOCAB, n_tgt_vocab=VOCAB, d_embed=4, d_hidden=5, d_attn=4, **drawn
    )


def largest_gap(logits: np.ndarray) -> float:
    """Distance between the two largest logits: how safely an argmax is decided."""
    top = np.sort(np.asarray(logits))[-2:]
    return float(top[1] - top[0])


# An argmax whose two best logits are closer than this may flip between two correct computations
# that round differently (float32 logits carry errors ~1e-6); such steps end the comparison. In a
# narrower format the bar is DECIDED_SPACINGS spacings of the largest logit: a decoder that reuses
# a KV cache (Hugging Face's generate) computes each step in another order than the parallel pass
# its tokens are checked against, and in bfloat16 the two differ by several spacings.
DECIDED = 1e-4
DECIDED_SPACINGS = 16


def decided(impl: Any, row: np.ndarray) -> bool:
    """Whether the argmax of ``row`` is beyond the rounding of the implementation's format."""
    scale = float(np.max(np.abs(row))) if np.size(row) else 0.0
    return largest_gap(row) >= max(DECIDED, DECIDED_SPACINGS * precision.spacing(impl, scale))


# ---------------------------------------------------------------------------------------------
# The position-wise feed-forward network.
# ---------------------------------------------------------------------------------------------


def _ffn_case(ck: Check) -> tuple[dict, np.ndarray, str]:
    d_model = ck.draw(st.integers(1, 5), "d_model")
    # The first linear map projects to a higher dimension (recap): d_ff > d_model.
    d_ff = d_model + ck.draw(st.integers(1, 6), "d_ff - d_model")
    bias = ck.draw(st.booleans(), "bias")
    params = {
        "W_1": draw_array(ck, (d_ff, d_model), "W_1"),
        "W_2": draw_array(ck, (d_model, d_ff), "W_2"),
    }
    if bias:
        params["b_1"] = draw_array(ck, (d_ff,), "b_1")
        params["b_2"] = draw_array(ck, (d_model,), "b_2")
    shape = ck.draw(st.sampled_from([(4,), (2, 3)]), "batch shape")
    x = draw_array(ck, (*shape, d_model), "x", -2.0, 2.0)
    activation = ck.draw(st.sampled_from(sorted(ACTIVATIONS)), "activation")
    return params, x, activation


@clause(
    "FFN-FORMULA",
    "The position-wise feed-forward network MUST compute W_2 act(W_1 x + b_1) + b_2, the first "
    "linear map projecting each token to a wider hidden layer (d_ff > d_model), act being ReLU "
    "when no activation is named.",
    source=Source(RECAP, RECAP_FFN, paper=VASWANI_2017),
    needs=("feed_forward",),
    topic=TOPIC,
)
def ffn_formula_clause(impl: Any, ck: Check) -> None:
    params, x, activation = _ffn_case(ck)
    out = np.asarray(impl.feed_forward(params, x, activation))
    ck.close(
        out, ffn_formula(params, x, activation), output="reduction",
        what=f"feed_forward(params, x, {activation!r})",
    )
    # with no activation named, the recap's ReLU (PARAMETERS.md's default)
    ck.close(np.asarray(impl.feed_forward(params, x)), ffn_formula(params, x, "relu"), output="reduction",
             what="feed_forward(params, x), by default activation='relu'")


@clause(
    "FFN-POSITIONWISE",
    "The feed-forward output at position i MUST depend on x_i only, so that the network commutes "
    "with any permutation of the positions.",
    source=Source(RECAP, RECAP_FFN, paper=VASWANI_2017),
    needs=("feed_forward",),
    topic=TOPIC,
)
def ffn_positionwise(impl: Any, ck: Check) -> None:
    params, x, activation = _ffn_case(ck)
    out = np.asarray(impl.feed_forward(params, x, activation))  # (..., T, d_model)
    T = x.shape[-2]
    for i in range(T):
        alone = np.asarray(impl.feed_forward(params, x[..., i : i + 1, :], activation))
        ck.close(
            alone,
            out[..., i : i + 1, :],
            output="reduction",
            what=f"FFN(x_{i} alone) vs FFN(x)_{i}",
        )
    perm = np.asarray(ck.draw(st.permutations(list(range(T))), "permutation"))
    ck.close(
        np.asarray(impl.feed_forward(params, x[..., perm, :], activation)),
        out[..., perm, :],
        output="reduction",
        what="FFN(x[perm]) vs FFN(x)[perm]",
    )


# ---------------------------------------------------------------------------------------------
# Residual connections, and the encoder and decoder layers as compositions of sub-layers.
# ---------------------------------------------------------------------------------------------


def _silence_attention(mha: dict) -> None:
    """W_o = 0 (and b_o = 0): the attention sub-layer then outputs exactly zero."""
    mha["W_o"] = np.zeros_like(mha["W_o"])
    if "b_o" in mha:
        mha["b_o"] = np.zeros_like(mha["b_o"])


@clause(
    "RESIDUAL",
    "Each sub-layer's output MUST be added to its input before the layer norm (post-LN: "
    "LN(x + f(x))), so that with a zero sub-layer the block reduces to LN(x).",
    source=Source(LECTURE_NOTES, NOTES_QUESTIONS, paper=VASWANI_2017),
    needs=("Transformer | encoder_layer",),
    topic=TOPIC,
    cost="network",
    note="Pre-LN configurations are checked too: x + f(LN(x)), the identity for a zero sub-layer. "
    "On the encoder of a Transformer, and on an encoder_layer on its own.",
)
def residual(impl: Any, ck: Check) -> None:
    config = tiny_transformer(ck, n_encoder_layers=1, positional="none")
    params = network_params(ck, config)
    layer = params["encoder"][0]
    # The attention sub-layer is silenced; the feed-forward one is either silenced too or kept.
    _silence_attention(layer["self_attn"])
    zero_ffn = ck.draw(st.booleans(), "zero feed-forward")
    if zero_ffn:
        layer["ffn"]["W_2"] = np.zeros_like(layer["ffn"]["W_2"])
        if "b_2" in layer["ffn"]:
            layer["ffn"]["b_2"] = np.zeros_like(layer["ffn"]["b_2"])
    src = draw_tokens(ck, 1, 5, "source")
    x = ck.input(input_embedding(src, params["W_E_src"], None, config, sinusoid_layout(ck.oracle)))  # (S, d_model)
    eps = config.layer_norm_eps
    if config.norm_placement == "post":
        # x = LN_1(x + 0);  x = LN_2(x + FFN(x))
        h = layer_norm_formula(x, layer["norm_1"], eps)
        h = layer_norm_formula(
            h + ffn_formula(layer["ffn"], h, config.activation), layer["norm_2"], eps
        )
    else:
        # x = x + 0;  x = x + FFN(LN_2(x))
        h = x + ffn_formula(
            layer["ffn"], layer_norm_formula(x, layer["norm_2"], eps), config.activation
        )
    what = f"with zero attention ({config.norm_placement}-LN)"
    if ck.offers("Transformer"):
        memory = np.asarray(impl.Transformer(config, copy_params(params)).encode(src))
        # pre-LN: the encoder's final LN after the layer
        encoded = h if config.norm_placement == "post" else layer_norm_formula(h, params["encoder_norm"], eps)
        # pre-LN: a final norm missing, doubled or swapped with the decoder's fails here too, so
        # the failure names it beside the layer
        then = "" if config.norm_placement == "post" else ", then encoder_norm (pre-LN's final norm)"
        ck.close(memory, encoded, output="network", what=f"encode(src): encoder layer {what}{then}")
    if ck.offers("encoder_layer"):
        out = np.asarray(impl.encoder_layer(copy_params(layer), x, config))
        ck.close(out, h, output="network", what=f"encoder_layer(x) {what}")


# The sub-layers ENC-LAYER and DEC-LAYER compose the encoder and decoder from: the
# implementation's own, so that the network is checked against its parts. A model that offers the
# network alone is held to the oracle's network (mixing its layers with the oracle's float64 ones
# would judge a low-precision network against a composition of two precisions).
SUB_LAYERS = ("multi_head_attention", "layer_norm", "feed_forward")


def _encoder_layer_composition(
    impl: Any, layer: dict, x: np.ndarray, config: TransformerConfig, mask: np.ndarray | None = None
) -> np.ndarray:
    """One encoder layer as the documents compose it, from the sub-layers of ``impl`` (the
    implementation, or torch_ref at its dtype for rule 4's baseline)."""
    eps, n_heads = config.layer_norm_eps, config.n_heads

    def norm(v: np.ndarray, p: dict) -> np.ndarray:
        return np.asarray(impl.layer_norm(v, p["gamma"], p["beta"], eps))

    def attend(p: dict, q: np.ndarray, kv: np.ndarray) -> np.ndarray:
        return np.asarray(impl.multi_head_attention(p, q, kv, n_heads, mask)[0])

    def ffn(p: dict, v: np.ndarray) -> np.ndarray:
        return np.asarray(impl.feed_forward(p, v, config.activation))

    if config.norm_placement == "post":
        # x = LN(x + MultiHead(x, x, x));  x = LN(x + FFN(x))
        x = norm(x + attend(layer["self_attn"], x, x), layer["norm_1"])
        return norm(x + ffn(layer["ffn"], x), layer["norm_2"])
    # x = x + MultiHead(LN(x));  x = x + FFN(LN(x))
    h = norm(x, layer["norm_1"])
    x = x + attend(layer["self_attn"], h, h)
    return x + ffn(layer["ffn"], norm(x, layer["norm_2"]))


def _stack_composition(
    impl: Any, params: dict, config: TransformerConfig, ids: np.ndarray, stack: str, layer: Any
) -> np.ndarray:
    """The ``"encoder"`` or ``"decoder"`` stack as the documents compose it: the input embedding,
    ``layer(layer_params, x)`` for each layer, and pre-LN's final norm (the implementation's)."""
    side = "src" if stack == "encoder" else "tgt"
    layout = sinusoid_layout(impl)
    x = input_embedding(ids, params[f"W_E_{side}"], params.get(f"W_P_{side}"), config, layout)  # (T, d_model)
    for layer_params in params[stack]:
        x = layer(layer_params, x)
    if config.norm_placement == "pre":
        final = params[f"{stack}_norm"]
        x = np.asarray(impl.layer_norm(x, final["gamma"], final["beta"], config.layer_norm_eps))
    return x


@clause(
    "ENC-LAYER",
    "An encoder layer MUST equal multi-head self-attention followed by the feed-forward network, "
    "each wrapped in a residual connection and a layer norm.",
    source=Source(LECTURE_NOTES, NOTES_ENCODER, paper=VASWANI_2017),
    needs=("Transformer | encoder_layer",),
    uses=SUB_LAYERS,
    topic=TOPIC,
    cost="network",
    note="On a Transformer's encoder and on an encoder_layer on its own (with or without a causal "
    "mask: a GPT block); against the composition of the implementation's own sub-layers where it "
    "offers all three, and against the oracle's always.",
)
def enc_layer(impl: Any, ck: Check) -> None:
    config = tiny_transformer(ck)
    params = network_params(ck, config)
    src = draw_tokens(ck, 1, 5, "source")
    composable = all(ck.offers(name) for name in SUB_LAYERS)
    if ck.offers("Transformer"):
        if composable:  # two routes through the implementation's arithmetic (tolerances, rule 4)
            ck.close_routes(
                lambda m: np.asarray(m.Transformer(config, copy_params(params)).encode(src)),
                lambda m: _stack_composition(
                    m, params, config, src, "encoder",
                    lambda p, x: _encoder_layer_composition(m, p, x, config),
                ),
                output="network",
                what="Transformer.encode vs composition of sub-layers",
            )
        ck.close_to_oracle(
            lambda m: m.Transformer(config, copy_params(params)).encode(src), output="network",
            what="Transformer.encode(src)",
        )
    if not ck.offers("encoder_layer"):
        return
    # One layer on its own, the block a model is built from; with a causal mask it is a GPT block.
    layer = params["encoder"][0]
    layout = sinusoid_layout(ck.oracle)
    x = ck.input(input_embedding(src, params["W_E_src"], params.get("W_P_src"), config, layout))  # (S, d)
    mask = lower_triangle(len(src)) if ck.draw(st.booleans(), "causal mask on the layer") else None
    out = np.asarray(ck.close_to_oracle("encoder_layer", layer, x, config, mask, output="network"))
    if composable:
        ck.close_routes(
            lambda m: out if m is impl else np.asarray(m.encoder_layer(layer, x, config, mask)),
            lambda m: _encoder_layer_composition(m, layer, x, config, mask),
            output="network",
            what="encoder_layer vs composition of its sub-layers",
        )


def _decoder_layer_composition(
    impl: Any, layer: dict, y: np.ndarray, memory: np.ndarray, config: TransformerConfig
) -> np.ndarray:
    """One decoder layer as the documents compose it, from the implementation's own sub-layers."""
    eps, n_heads = config.layer_norm_eps, config.n_heads
    causal = lower_triangle(y.shape[-2])  # (T, T)

    def norm(v: np.ndarray, p: dict) -> np.ndarray:
        return np.asarray(impl.layer_norm(v, p["gamma"], p["beta"], eps))

    def attend(
        p: dict, q: np.ndarray, kv: np.ndarray, mask: np.ndarray | None = None
    ) -> np.ndarray:
        return np.asarray(impl.multi_head_attention(p, q, kv, n_heads, mask)[0])

    def ffn(p: dict, v: np.ndarray) -> np.ndarray:
        return np.asarray(impl.feed_forward(p, v, config.activation))

    if config.norm_placement == "post":
        # y = LN(y + MaskedMultiHead(y));  y = LN(y + MultiHead(y, memory));  y = LN(y + FFN(y))
        y = norm(y + attend(layer["self_attn"], y, y, causal), layer["norm_1"])
        y = norm(y + attend(layer["cross_attn"], y, memory), layer["norm_2"])
        return norm(y + ffn(layer["ffn"], y), layer["norm_3"])
    h = norm(y, layer["norm_1"])
    y = y + attend(layer["self_attn"], h, h, causal)
    y = y + attend(layer["cross_attn"], norm(y, layer["norm_2"]), memory)
    return y + ffn(layer["ffn"], norm(y, layer["norm_3"]))


@clause(
    "DEC-LAYER",
    "A decoder layer MUST equal masked self-attention, cross-attention on the encoder output and "
    "the feed-forward network, each wrapped in a residual connection and a layer norm, its "
    "attentions under the masks it is given.",
    source=Source(RECAP, RECAP_OUTPUT, paper=VASWANI_2017),
    needs=("Transformer | decoder_layer",),
    uses=SUB_LAYERS,
    topic=TOPIC,
    cost="network",
    note="On a Transformer's decoder and on a decoder_layer on its own; against the composition of "
    "the implementation's own sub-layers where it offers all three, and against the oracle's "
    "always. The layer on its own is also given its causal self_mask explicitly, and a memory with "
    "rows its cross_mask hides.",
)
def dec_layer(impl: Any, ck: Check) -> None:
    config = tiny_transformer(ck)
    params = network_params(ck, config)
    tgt = draw_tokens(ck, 1, 5, "target")
    S = ck.draw(st.integers(1, 5), "source length")
    memory = draw_array(ck, (S, config.d_model), "memory", -2.0, 2.0)
    composable = all(ck.offers(name) for name in SUB_LAYERS)
    if ck.offers("Transformer"):
        if composable:  # two routes through the implementation's arithmetic (tolerances, rule 4)
            ck.close_routes(
                lambda m: np.asarray(m.Transformer(config, copy_params(params)).decode(tgt, memory)),
                lambda m: _stack_composition(
                    m, params, config, tgt, "decoder",
                    lambda p, y: _decoder_layer_composition(m, p, y, memory, config),
                ),
                output="network",
                what="Transformer.decode vs composition of sub-layers",
            )
        ck.close_to_oracle(
            lambda m: m.Transformer(config, copy_params(params)).decode(tgt, memory),
            output="network", what="Transformer.decode(tgt, memory)",
        )
    if not ck.offers("decoder_layer"):
        return
    # One layer on its own (its self-attention causal by default, PARAMETERS.md).
    layer = params["decoder"][0]
    layout = sinusoid_layout(ck.oracle)
    y = ck.input(input_embedding(tgt, params["W_E_tgt"], params.get("W_P_tgt"), config, layout))  # (T, d)
    out = np.asarray(ck.close_to_oracle("decoder_layer", layer, y, memory, config, output="network"))
    if composable:
        ck.close_routes(
            lambda m: out if m is impl else np.asarray(m.decoder_layer(copy_params(layer), y, memory, config)),
            lambda m: _decoder_layer_composition(m, layer, y, memory, config),
            output="network",
            what="decoder_layer vs composition of its sub-layers",
        )
    # The masks it is given: the causal self_mask passed explicitly is the default one, and memory
    # rows that cross_mask marks as padding (True = may attend) are never read, whatever they hold
    # (a block that does not hand cross_mask to its cross-attention reads them).
    T = len(tgt)
    ck.close(
        np.asarray(impl.decoder_layer(copy_params(layer), y, memory, config, lower_triangle(T))),
        out,
        output="network",
        what="decoder_layer(y, memory, self_mask=causal) vs decoder_layer(y, memory)",
    )
    n_pads = ck.draw(st.integers(1, 3), "memory rows cross_mask hides")
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**16), "hidden rows seed"))
    junk = ck.input(rng.normal(0.0, 3.0, size=(n_pads, config.d_model)))  # (n_pads, d_model)
    real = (np.arange(S + n_pads) < S)[None, :]  # (1, S + n_pads)
    ck.close(
        np.asarray(impl.decoder_layer(copy_params(layer), y, np.concatenate([memory, junk]), config, None, real)),
        out,
        output="network",
        what=f"decoder_layer(y, memory + {n_pads} rows, cross_mask hiding them) vs decoder_layer(y, memory)",
    )


# ---------------------------------------------------------------------------------------------
# Order, masking and dependence.
# ---------------------------------------------------------------------------------------------


@clause(
    "ENC-PERMUTE",
    "An encoder without positional encoding MUST be permutation-equivariant (permuting the tokens "
    "permutes the outputs), and with positional encoding it MUST NOT be.",
    source=Source(LECTURE_NOTES, NOTES_POSITIONS, paper=VASWANI_2017),
    needs=("Transformer",),
    topic=TOPIC,
    cost="network",
)
def enc_permute(impl: Any, ck: Check) -> None:
    src = draw_tokens(ck, 2, 5, "source (distinct tokens)", unique=True)
    perm = np.asarray(ck.draw(st.permutations(list(range(len(src)))), "permutation"))
    if np.array_equal(perm, np.arange(len(src))):
        perm = np.roll(perm, 1)  # a permutation that moves something

    config = tiny_transformer(ck, positional="none")
    params = network_params(ck, config)
    net = impl.Transformer(config, params)
    ck.close(
        np.asarray(net.encode(src[perm])),
        np.asarray(net.encode(src))[perm],
        output="network",
        what="encode(src[perm]) vs encode(src)[perm], no positional encoding",
    )

    with_positions = as_declared(ck, replace(config, positional="sinusoidal"))
    if with_positions.positional != "sinusoidal":  # declared 'none': it has no positions to add
        return
    net = impl.Transformer(with_positions, params)
    moved = np.abs(np.asarray(net.encode(src[perm])) - np.asarray(net.encode(src))[perm]).max()
    ck.note("difference_with_positions", float(moved))
    # Distinct tokens moved to other positions receive other position vectors: the outputs differ
    # by O(1) after the layer norms, far above any rounding (1e-3 is ~10^4 float32 ulps).
    ck.that(
        moved > 1e-3,
        what="encode(src[perm]) vs encode(src)[perm] with sinusoidal positions",
        observed=f"max difference {moved:.3g}",
        expected="a difference: positions are encoded",
    )


@clause(
    "DEC-CAUSAL",
    "The decoder's output at position t MUST NOT depend on the target tokens after t (no looking "
    "at the future during parallel training).",
    source=Source(RECAP, RECAP_MASKED, paper=VASWANI_2017),
    needs=("Transformer",),
    topic=TOPIC,
    cost="network",
)
def dec_causal(impl: Any, ck: Check) -> None:
    config = tiny_transformer(ck)
    net = impl.Transformer(config, network_params(ck, config))
    src = draw_tokens(ck, 1, 5, "source")
    tgt = draw_tokens(ck, 2, 6, "target")
    t = ck.draw(st.integers(0, len(tgt) - 2), "t")
    future = draw_tokens(ck, len(tgt) - t - 1, len(tgt) - t - 1, "new tokens after t")
    changed = np.concatenate([tgt[: t + 1], future])
    ck.close(
        np.asarray(net.forward(src, changed))[: t + 1],
        np.asarray(net.forward(src, tgt))[: t + 1],
        output="network",
        what=f"logits[:{t + 1}] after changing target tokens > {t}",
    )


def _teacher_forced_argmax(
    impl: Any, ck: Check, tokens: list[int], logits: np.ndarray, what: str, start: int = 0
) -> None:
    """tokens[s + 1] must be the argmax of logits[s] for every decided step s >= start (see
    :func:`decided`): the tokens a decoder wrote are checked against one parallel pass over them."""
    for s in range(start, len(tokens) - 1):
        if not decided(impl, logits[s]):
            ck.note("stopped_at_undecided_step", s)
            return
        ck.equal(tokens[s + 1], int(np.argmax(logits[s])), what=f"{what}: token {s + 1}")


def _decoded_through_cache(gpt: Any, ids: np.ndarray, cuts: list[int]) -> np.ndarray:
    """``ids`` (..., T) fed to ``gpt.forward_cached`` in the pieces between ``cuts``, each with the
    cache the previous piece returned: the pieces' logits joined along the positions."""
    pieces, cache = [], None
    T = ids.shape[-1]
    for start, stop in zip([0, *cuts], [*cuts, T], strict=True):
        logits, cache = gpt.forward_cached(ids[..., start:stop], cache)
        pieces.append(np.asarray(logits))
    return np.concatenate(pieces, axis=-2)


def _gpt_autoregressive(impl: Any, ck: Check) -> None:
    """DEC-AUTOREGRESSIVE for a decoder-only model: the sequence fed in pieces through the cache,
    or prefix by prefix without one, gives the parallel pass's logits."""
    # learned positions first: a cache must continue them from its length
    gpt_config = tiny_gpt(ck, positional_first="learned")
    gpt = impl.GPT(gpt_config, network_params(ck, gpt_config))
    ids = draw_tokens(ck, 2, 7, "GPT tokens")
    parallel = np.asarray(gpt.forward(ids))
    # a wrong shape is the implementation's failure, said as such, not the stacking's below
    ck.equal(parallel.shape, (len(ids), gpt_config.n_vocab), what="GPT.forward(ids).shape")
    has = getattr(impl, "has", None)
    if has is not None and has("GPT.forward_cached"):
        # Token by token (inference as the notes describe it), then in drawn pieces of several
        # tokens (a prompt, then continuations). Both must reuse positions from the cache.
        drawn_cuts = ck.draw(st.lists(st.integers(1, len(ids) - 1), min_size=1, max_size=3), "cache cuts")
        # A batch (B, T) through one cache too, its first row ids and each other row a different
        # sentence (see _other_sentence): the cache then holds (B, n_heads, L, d_head), where code
        # written for one sequence concatenates on the wrong axis, or lets every row read the
        # first row's keys and values (a prompt cache computed once and expanded).
        B = ck.draw(st.integers(2, 3), "cached batch size")
        rows = [ids, *(_other_sentence(draw_tokens(ck, len(ids), len(ids), f"cached batch row {b}"), b)
                       for b in range(1, B))]
        batch = np.stack(rows)  # (B, T)
        alone = [parallel, *(np.asarray(gpt.forward(row)) for row in rows[1:])]
        for cuts, how in ((list(range(1, len(ids))), "token by token"), (sorted(set(drawn_cuts)), "pieces")):
            ck.close(
                _decoded_through_cache(gpt, ids, cuts),
                parallel,
                output="network",
                what=f"GPT: cached decoding ({how}, cuts {cuts}) vs parallel logits",
            )
            decoded = _decoded_through_cache(gpt, batch, cuts)
            ck.equal(decoded.shape, (B, len(ids), gpt_config.n_vocab),
                     what=f"GPT.forward_cached on a batch of {B} ({how}): the joined logits' shape")
            # position by position, so that a failure names (and previews) the first wrong one
            for b in range(B):
                for t in range(len(ids)):
                    ck.close(
                        decoded[b, t],
                        alone[b][t],
                        output="network",
                        what=f"GPT.forward_cached on a batch of {B} ({how}, cuts {cuts}): row {b} = "
                        f"{rows[b].tolist()}, position {t} vs GPT.forward(row {b})[{t}] alone",
                    )
    else:
        stepwise = np.stack([np.asarray(gpt.forward(ids[: t + 1]))[-1] for t in range(len(ids))])
        ck.close(
            stepwise, parallel, output="network", what="GPT: prefix-by-prefix vs parallel logits"
        )


@clause(
    "DEC-AUTOREGRESSIVE",
    "Decoding token by token (with a key-value cache where the implementation has one) MUST give "
    "the same per-position outputs as the parallel teacher-forced pass, for every sequence of a "
    "batch decoded together as for one sequence alone.",
    source=Source(LECTURE_NOTES, NOTES_AUTOREGRESSIVE, paper=VASWANI_2017),
    needs=("Transformer | GPT",),
    topic=TOPIC,
    cost="network",
    note="A GPT with GPT.forward_cached is fed one sequence and a batch (B, T) of different "
    "sequences through its cache, token by token and in drawn pieces; each row is held to "
    "GPT.forward of that row alone. Without a cache, and for the encoder-decoder, each prefix's "
    "last position is held to the parallel pass.",
)
def dec_autoregressive(impl: Any, ck: Check) -> None:
    if ck.offers("GPT"):
        _gpt_autoregressive(impl, ck)
    if not ck.offers("Transformer"):
        return
    # Encoder-decoder: the decoder run on each prefix gives, at its last position, that position's
    # row of the parallel pass.
    config = tiny_transformer(ck)
    net = impl.Transformer(config, network_params(ck, config))
    src = draw_tokens(ck, 1, 5, "source")
    tgt = np.concatenate([[START_ID], draw_tokens(ck, 1, 5, "target")])
    parallel = np.asarray(net.forward(src, tgt))  # (T, n_vocab)
    stepwise = np.stack([np.asarray(net.forward(src, tgt[: t + 1]))[-1] for t in range(len(tgt))])
    ck.close(
        stepwise,
        parallel,
        output="network",
        what="Transformer: prefix-by-prefix vs parallel logits",
    )


@clause(
    "DEC-CROSS-ALL",
    "Through cross-attention every target position MUST be able to depend on every source token: "
    "changing any one source token changes the output at every target position.",
    source=Source(LECTURE_NOTES, NOTES_CROSS, paper=VASWANI_2017),
    needs=("Transformer",),
    topic=TOPIC,
    cost="network",
)
def dec_cross_all(impl: Any, ck: Check) -> None:
    config = tiny_transformer(ck)
    params = network_params(ck, config)
    net, reference = impl.Transformer(config, params), ck.oracle.Transformer(config, params)
    # At least two target positions and two source rows: with one of either, a causal mask put on
    # the cross-attention by mistake hides nothing.
    tgt = draw_tokens(ck, 2, 4, "target")
    # Directly on the decoder: every target position reads every row of the encoder's output.
    # (Through the whole network the encoder's self-attention already mixes the source positions,
    # which would hide a decoder that reads only some of them.)
    S = ck.draw(st.integers(2, 5), "source length")
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**16), "memory seed"))
    memory = ck.input(rng.normal(size=(S, config.d_model)))
    for j in range(S):
        moved = memory.copy()
        moved[j] = ck.input(rng.normal(size=config.d_model))
        _every_position_changes(
            ck, impl, lambda m, x: m.decode(tgt, x), memory, moved, (net, reference),
            f"each target position's output when memory row {j} changes",
        )
    # And end to end: changing one source token changes the logits at every target position.
    src = draw_tokens(ck, 2, 5, "source")
    j = ck.draw(st.integers(0, len(src) - 1), "changed source position")
    other = src.copy()
    other[j] = FIRST_WORD_ID + (src[j] - FIRST_WORD_ID + 1) % (VOCAB - FIRST_WORD_ID)
    _every_position_changes(
        ck, impl, lambda m, x: m.forward(x, tgt), src, other, (net, reference),
        f"each target position's logits when source token {j} changes",
    )


def _every_position_changes(
    ck: Check, impl: Any, run: Any, before: Any, after: Any, networks: tuple[Any, Any], what: str
) -> None:
    """Every row (target position) of ``run(net, after)`` differs from that of ``run(net, before)``.

    In float16 and bfloat16 a target position that gives the changed row a small attention weight
    moves by less than the format resolves, and rounds to the same output. There only the rows
    where the oracle (float64, same parameters) moves by at least 16 spacings of the format must
    change; the others are noted.
    """
    net, reference = networks  # the implementation's, and the oracle's with the same parameters
    change = np.abs(np.asarray(run(net, after)) - np.asarray(run(net, before))).max(axis=-1)  # (T,)
    must_change = np.ones(change.shape, dtype=bool)
    if precision.low_precision(impl):
        exact_before = np.asarray(run(reference, before))
        exact_change = np.abs(np.asarray(run(reference, after)) - exact_before).max(axis=-1)
        spacings = np.array([precision.spacing(impl, v) for v in np.abs(exact_before).max(axis=-1)])
        must_change = exact_change > 16 * spacings
        ck.note(f"unresolved rows: {what}", int((~must_change).sum()))
    ck.that(
        bool(np.all(change[must_change] > 0.0)),
        what=f"change of {what}",
        observed=change.tolist(),
        expected="every entry > 0" if must_change.all() else f"entries {np.flatnonzero(must_change).tolist()} > 0",
    )


def _right_padded(sentences: list[np.ndarray], length: int) -> np.ndarray:
    """(N, length) ids: each sentence followed by PAD_ID up to ``length``."""
    batch = np.full((len(sentences), length), PAD_ID, dtype=np.int64)
    for i, sentence in enumerate(sentences):
        batch[i, : len(sentence)] = sentence
    return batch


@clause(
    "NET-PADDING",
    "Padding tokens appended to a source MUST NOT change any logit of the encoder-decoder, nor the "
    "tokens greedy decoding writes, so that each sentence of a right-padded batch of sources of "
    "different lengths gets the logits it gets alone: the encoder's self-attention and the "
    "decoder's cross-attention MUST ignore the pads, and the positions a given source mask marks "
    "as padding.",
    source=Source(RECAP, RECAP_EMBED, paper=VASWANI_2017),
    needs=("Transformer",),
    uses=("Transformer.greedy_decode",),
    topic=TOPIC,
    cost="network",
    note="The pads bring sentences to one length (recap, \"Input embeddings\"); the encoder they "
    "are fed to is the lecture notes' \"Encoder Architecture\". Checked piece by piece: the "
    "encoder's rows for the real tokens (after pads, and after ordinary tokens a given src_mask "
    "hides), the decoder given memory rows marked as padding, the "
    "logits end to end and in a batch, and the padded batch against the oracle. Rows of the "
    "memory at pad positions are never compared (nn.TransformerEncoderLayer's fast path may return "
    "zeros there).",
)
def net_padding(impl: Any, ck: Check) -> None:
    config = tiny_transformer(ck)
    params = network_params(ck, config)
    net = impl.Transformer(config, copy_params(params))
    src = draw_tokens(ck, 1, 5, "source")
    S = len(src)
    n_pads = ck.draw(st.integers(1, 4), "pads appended")
    padded = _right_padded([src], S + n_pads)[0]  # (S + n_pads,)
    tgt = draw_tokens(ck, 1, 5, "target")

    # Encoder: padding_mask(src) keeps the pads out of every key set, so the real tokens' rows of
    # the memory are those of the unpadded source (the pads' own rows are free).
    memory = np.asarray(net.encode(src))  # (S, d_model)
    ck.close(
        np.asarray(net.encode(padded))[:S],
        memory,
        output="network",
        what=f"encode(source + {n_pads} pads)[:{S}] vs encode(source)",
    )
    # A src_mask the caller gives (True = a real token) hides the positions it marks as padding
    # whatever ids they hold: here tokens that are no PAD, so an encoder that rebuilds the mask from
    # the ids (and drops the one it is given) reads them.
    real = (np.arange(S + n_pads) < S)[None, :]  # (1, S + n_pads)
    hidden = np.concatenate([src, draw_tokens(ck, n_pads, n_pads, "tokens src_mask hides")])
    ck.close(
        np.asarray(net.encode(hidden, real))[:S],
        memory,
        output="network",
        what=f"encode(source + {n_pads} tokens, src_mask hiding them)[:{S}] vs encode(source)",
    )
    # Decoder: memory rows that src_mask marks as padding are never read, whatever they hold.
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**16), "padding rows seed"))
    junk = ck.input(rng.normal(0.0, 3.0, size=(n_pads, config.d_model)))  # (n_pads, d_model)
    ck.close(
        np.asarray(net.decode(tgt, np.concatenate([memory, junk]), real)),
        np.asarray(net.decode(tgt, memory)),
        output="network",
        what=f"decode(target, memory + {n_pads} rows masked as padding) vs decode(target, memory)",
    )
    # End to end: forward builds the padding mask from PAD_ID itself.
    alone = np.asarray(net.forward(src, tgt))  # (T, n_vocab)
    ck.close(
        np.asarray(net.forward(padded, tgt)),
        alone,
        output="network",
        what=f"forward(source + {n_pads} pads, target) vs forward(source, target)",
    )
    # A batch of two sources of different lengths, right-padded to the longer one.
    other = draw_tokens(ck, 1, 5, "second source")
    other_tgt = draw_tokens(ck, len(tgt), len(tgt), "second target")
    batch = _right_padded([src, other], max(S, len(other)))  # (2, S_max)
    targets = np.stack([tgt, other_tgt])  # (2, T)
    _rows_alone(ck, np.asarray(net.forward(batch, targets)),  # (2, T, n_vocab)
                [alone, np.asarray(net.forward(other, other_tgt))], "Transformer.forward",
                [f"sentence {i} ({len(s)} tokens padded to {batch.shape[1]})"
                 for i, s in enumerate((src, other))])
    ck.close_to_oracle(
        lambda m: m.Transformer(config, copy_params(params)).forward(batch, targets),
        output="network",
        # a fault anywhere in the network shows here too, and the failure says so
        what="Transformer.forward(padded batch, targets) [the whole pass: its padding, or any fault "
        "NET-ORACLE sees]",
    )
    # Inference too: greedy decoding of the padded source writes what it writes for the source
    # (a decoding loop that builds its own source mask, or none, is not the forward pass above).
    # The padded run computes in other shapes, so tokens are compared up to the first step whose
    # argmax is within the format's rounding (see decided).
    if ck.offers("Transformer.greedy_decode"):
        max_len = ck.draw(st.integers(1, 6), "max_len")
        plain = [int(t) for t in net.greedy_decode(src, max_len=max_len)]
        with_pads = [int(t) for t in net.greedy_decode(padded, max_len=max_len)]
        steps = np.asarray(net.forward(src, np.asarray(plain)))  # row s chose token s + 1
        undecided = next((s for s in range(len(plain) - 1) if not decided(impl, steps[s])), None)
        agreed = with_pads if undecided is None else with_pads[: undecided + 1]
        ck.equal(
            agreed,
            plain if undecided is None else plain[: undecided + 1],
            what=f"greedy_decode(source + {n_pads} pads) vs greedy_decode(source)"
            + ("" if undecided is None else f", up to step {undecided}, the first undecided one"),
        )


@clause(
    "NET-BATCH",
    "A batch of sequences MUST give each sequence the logits it gets alone: the sequences of a "
    "batch MUST NOT affect one another, and each token's position MUST be counted along its own "
    "sequence.",
    source=Source(RECAP, RECAP_EMBED, paper=VASWANI_2017),
    needs=("Transformer | GPT | Seq2Seq",),
    topic=TOPIC,
    cost="network",
    note="Every offered sequence network, on a batch (B, T) of two or three sequences of one "
    "length, different at every position, without padding (NET-PADDING batches sources of "
    "different lengths). Positions taken from the batch axis (len(ids) on a (B, T) batch) or a "
    "source reversed along the batch axis fail here whatever the oracle does.",
)
def net_batch(impl: Any, ck: Check) -> None:
    B = ck.draw(st.integers(2, 3), "batch size")

    def batch(n: int, label: str) -> np.ndarray:
        # B sentences of n tokens, row b moved b places along SENTENCE_IDS: rows that differ at
        # every position even on the first, simplest draw (equal rows hide a batch whose rows are
        # swapped, mixed or reversed)
        return np.stack([_other_sentence(draw_tokens(ck, n, n, f"{label} {b}"), b) for b in range(B)])

    if ck.offers("GPT"):
        config = tiny_gpt(ck, positional_first="learned")  # positions counted along each sequence
        gpt = impl.GPT(config, network_params(ck, config))
        T = ck.draw(st.integers(1, 6), "GPT length")
        ids = batch(T, "GPT sequence")  # (B, T)
        _rows_alone(ck, np.asarray(gpt.forward(ids)), [np.asarray(gpt.forward(row)) for row in ids],
                    "GPT.forward", [f"sequence {b} = {row.tolist()}" for b, row in enumerate(ids)])
    for name, make in (("Transformer", tiny_transformer), ("Seq2Seq", tiny_seq2seq)):
        if not ck.offers(name):
            continue
        # Sutskever et al.'s reversed source first: a reversal along the wrong axis shows on a batch
        fixed = {"reverse_source": ck.draw(st.sampled_from([True, False]), "Seq2Seq reverse_source")} \
            if name == "Seq2Seq" else {}
        config = make(ck, **fixed)
        net = getattr(impl, name)(config, network_params(ck, config))
        S = ck.draw(st.integers(1, 5), f"{name} source length")
        T = ck.draw(st.integers(1, 5), f"{name} target length")
        src, tgt = batch(S, f"{name} source"), batch(T, f"{name} target")  # (B, S), (B, T)
        _rows_alone(ck, np.asarray(net.forward(src, tgt)),
                    [np.asarray(net.forward(s, t)) for s, t in zip(src, tgt, strict=True)],
                    f"{name}.forward",
                    [f"source {s.tolist()}, target {t.tolist()}" for s, t in zip(src, tgt, strict=True)])


def _rows_alone(
    ck: Check, batched: np.ndarray, alone: list[np.ndarray], call: str, labels: list[str] | None = None
) -> None:
    """Row b of a batch's output is sequence b's output alone (``labels`` name the sequences)."""
    ck.equal(batched.shape, (len(alone), *alone[0].shape), what=f"{call}(batch).shape")
    for b, single in enumerate(alone):
        label = labels[b] if labels else f"sequence {b}"
        ck.close(batched[b], single, output="network", what=f"{call}(batch)[{b}] vs {call} of {label} alone")


@clause(
    "OUT-DISTRIBUTION",
    "The final linear layer and softmax MUST turn every target position into a probability "
    "distribution over the vocabulary: softmax(logits / T), non-negative, summing to one.",
    source=Source(RECAP, RECAP_OUTPUT, paper=VASWANI_2017),
    needs=("Transformer.probabilities | GPT.probabilities",),
    topic=TOPIC,
    cost="network",
    note="Checked on the encoder-decoder and on the decoder-only model, each where offered, on one "
    "sequence and on a batch (B, T) of them.",
)
def out_distribution(impl: Any, ck: Check) -> None:
    temperature = ck.draw(finite(0.25, 4.0), "temperature")
    # One sequence, then a batch (B, T) of them: the vocabulary is the last axis in both, and a
    # softmax over a fixed axis (dim=1, right for (T, V) logits) normalises the positions of a batch.
    B = ck.draw(st.integers(2, 3), "batch size")
    if ck.offers("Transformer.probabilities"):
        config = tiny_transformer(ck)
        net = impl.Transformer(config, network_params(ck, config))
        src = draw_tokens(ck, 1, 5, "source")
        tgt = draw_tokens(ck, 1, 5, "target")
        _is_softmax_of_logits(
            ck, np.asarray(net.probabilities(src, tgt, temperature=temperature)),
            np.asarray(net.forward(src, tgt)), temperature, "Transformer.probabilities(src, tgt)",
        )
        sources = np.stack([draw_tokens(ck, len(src), len(src), f"source {b}") for b in range(B)])  # (B, S)
        targets = np.stack([draw_tokens(ck, len(tgt), len(tgt), f"target {b}") for b in range(B)])  # (B, T)
        _is_softmax_of_logits(
            ck, np.asarray(net.probabilities(sources, targets, temperature=temperature)),
            np.asarray(net.forward(sources, targets)), temperature,
            f"Transformer.probabilities on a batch of {B}",
        )
    if ck.offers("GPT.probabilities"):
        gpt_config = tiny_gpt(ck)
        gpt = impl.GPT(gpt_config, network_params(ck, gpt_config))
        ids = draw_tokens(ck, 1, 7, "GPT tokens")
        _is_softmax_of_logits(
            ck, np.asarray(gpt.probabilities(ids, temperature=temperature)),
            np.asarray(gpt.forward(ids)), temperature, "GPT.probabilities(ids)",
        )
        batch = np.stack([draw_tokens(ck, len(ids), len(ids), f"GPT sequence {b}") for b in range(B)])  # (B, T)
        _is_softmax_of_logits(
            ck, np.asarray(gpt.probabilities(batch, temperature=temperature)),
            np.asarray(gpt.forward(batch)), temperature, f"GPT.probabilities on a batch of {B}",
        )


def _is_softmax_of_logits(ck: Check, p: np.ndarray, logits: np.ndarray, temperature: float, what: str) -> None:
    """p is a distribution per position, and it is softmax(logits / T)."""
    ck.equal(p.shape, logits.shape, what=f"{what}.shape")
    ck.that(bool(np.all(p >= 0.0)), what=f"{what} >= 0", observed=p.min(), expected=">= 0")
    ck.close(p.sum(axis=-1), np.ones(p.shape[:-1]), output="probability", what=f"{what}.sum(-1)")
    # softmax(l / T)_i = e^{(l_i - max l) / T} / sum_j e^{(l_j - max l) / T}
    scaled = logits / temperature
    e = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    ck.close(p, e / e.sum(axis=-1, keepdims=True), output="probability", what=f"{what} vs softmax(forward / T)")


@clause(
    "NET-LOGITS",
    "An encoder-decoder's logits MUST be the final linear layer applied to what its decoder makes "
    "of the target and its encoder's memory of the source: forward(src, tgt) = W_U decode(tgt, "
    "encode(src)) + b_U, W_U the transposed target embedding matrix when the embeddings are tied.",
    source=Source(RECAP, RECAP_OUTPUT, paper=VASWANI_2017),
    needs=("Transformer",),
    topic=TOPIC,
    cost="network",
    note="The implementation's own encode and decode, joined here: a forward pass that decodes "
    "against another memory than encode's (an intermediate layer's, or one without the final "
    "norm) or unembeds with the source embedding is caught without the oracle.",
)
def net_logits(impl: Any, ck: Check) -> None:
    # Tied and pre-LN first, where Hypothesis starts: which matrix a tied output layer reads, and
    # whether forward's memory has pre-LN's final encoder norm, are the questions.
    config = tiny_transformer(
        ck,
        tie_embeddings=ck.draw(st.sampled_from([True, False]), "tie_embeddings"),
        norm_placement=ck.draw(st.sampled_from(["pre", "post"]), "norm_placement"),
        overridable=("norm_placement",),
    )
    params = network_params(ck, config)
    net = impl.Transformer(config, copy_params(params))
    src = draw_tokens(ck, 1, 5, "source")
    tgt = draw_tokens(ck, 1, 5, "target")
    h = np.asarray(net.decode(tgt, np.asarray(net.encode(src))))  # (T, d_model)
    ck.close(np.asarray(net.forward(src, tgt)), unembedding(h, params, "W_E_tgt"), output="network",
             what="Transformer.forward(src, tgt) vs W_U decode(tgt, encode(src)) + b_U")


@clause(
    "GREEDY",
    "Greedy decoding MUST pick the most probable token at each step and stop at the end token or "
    "after max_len tokens, and sampling at a temperature tending to 0, or at temperature 0, MUST "
    "give the greedy output.",
    source=Source(RECAP, RECAP_OUTPUT, paper=VASWANI_2017),
    needs=("Transformer.greedy_decode",),
    uses=("Transformer.sample",),
    topic=TOPIC,
    cost="network",
    note="Also with the end token, each special id and the last id in turn lifted 1000 above the "
    "other logits (through b_U, or in a bias-free network through the last layer norm's shift): a "
    "decoder that ignores <end>, bans <pad> or <start>, or takes its argmax over logits[:-1] is "
    "caught on every example.",
)
def greedy(impl: Any, ck: Check) -> None:
    # b_U moves the end token's logit; a declared bias-free network moves it through its final
    # norm's shift (with_logit_moved)
    config = tiny_transformer(ck, bias=True, overridable=("bias",))
    params = network_params(ck, config)
    # Lift the end token's logit by a drawn amount so that some drawn models stop early.
    end_boost = ck.draw(st.sampled_from([0.0, 1.0, 3.0, 50.0]), "end-token bias")
    params = with_logit_moved(params, END_ID, end_boost)
    net = impl.Transformer(config, params)
    src = draw_tokens(ck, 1, 5, "source")
    # Several steps: with one, a decoder that feeds each step only the last token written (no
    # history) writes the same first token, and with two its second often agrees by chance.
    max_len = ck.draw(st.integers(4, 6), "max_len")
    out = [int(t) for t in net.greedy_decode(src, max_len=max_len)]
    ck.equal(out[0], START_ID, what="first token of greedy_decode")
    ends = [i for i, t in enumerate(out) if t == END_ID]
    if ends:
        ck.equal(ends, [len(out) - 1], what="positions of the end token (only at the end)")
    else:
        ck.equal(len(out), max_len + 1, what="length without an end token (START + max_len)")
    # Each token is the argmax of the distribution computed from the tokens before it.
    logits = np.asarray(net.forward(src, np.asarray(out)))
    _teacher_forced_argmax(impl, ck, out, logits, "greedy_decode")
    # A model whose end token beats every other logit by a wide margin must stop at once, whatever
    # was drawn above (so a decoder that ignores the end token is caught on every example).
    stopping = impl.Transformer(config, with_logit_moved(params, END_ID, 1e3))
    ck.equal(
        [int(t) for t in stopping.greedy_decode(src, max_len=max(max_len, 2))],
        [START_ID, END_ID],
        what="greedy_decode when the end token's logit exceeds the others by 1000",
    )
    # And one whose end token lies 1000 below the others never stops early: all max_len steps are
    # written, each from every token before it (a decoding loop that feeds the decoder only the
    # last token it wrote is caught on more steps than a model that stops early gives).
    endless = impl.Transformer(config, with_logit_moved(params, END_ID, -1e3))
    written = [int(t) for t in endless.greedy_decode(src, max_len=max_len)]
    ck.equal(len(written), max_len + 1, what="len(greedy_decode) when the end token lies 1000 below the others")
    _teacher_forced_argmax(impl, ck, written, np.asarray(endless.forward(src, np.asarray(written))),
                           "greedy_decode (end token 1000 below)")
    # At most max_len tokens after START: with max_len = 0, START alone (a do-while loop that picks
    # before it tests the count writes one token more).
    ck.equal([int(t) for t in net.greedy_decode(src, max_len=0)], [START_ID],
             what="greedy_decode(src, max_len=0)")
    # Any token the model may write, lifted 1000 above the rest, is written at every step: the
    # specials too (a decoder that bans <pad> and <start>, as bad_words_ids or suppress_tokens do,
    # is caught on every example, not only where a drawn model happens to prefer one), and the
    # vocabulary's last id (an argmax over logits[:-1]).
    for token in (PAD_ID, UNK_ID, START_ID, config.n_tgt_vocab - 1):
        favoured = impl.Transformer(config, with_logit_moved(params, token, 1e3))
        ck.equal([int(t) for t in favoured.greedy_decode(src, max_len=max_len)], [START_ID, *[token] * max_len],
                 what=f"greedy_decode when {logit_bias(params)} lifts token {token} 1000 above the others")

    # softmax(l / T) -> one-hot argmax as T -> 0: at T = 1e-3 every decided step (gap > 0.05)
    # leaves the other tokens probability < V e^{-50} ~ 1e-21.
    gaps = [largest_gap(row) for row in logits[: len(out) - 1]]
    if not ck.offers("Transformer.sample"):
        return
    seed = ck.draw(st.integers(0, 99), "seed")
    ck.equal([int(t) for t in net.sample(src, max_len=0, temperature=1.0, seed=seed)], [START_ID],
             what="sample(src, max_len=0, T=1)")
    if min(gaps, default=1.0) > 0.05:
        sampled = [int(t) for t in net.sample(src, max_len=max_len, temperature=1e-3, seed=seed)]
        ck.equal(sampled, out, what="sample(T=1e-3) vs greedy_decode")
    # T = 0 is the limit itself: the argmax, as greedy_decode takes it (PARAMETERS.md), not a
    # division by zero.
    ck.equal([int(t) for t in net.sample(src, max_len=max_len, temperature=0.0, seed=seed)], out,
             what="sample(T=0) vs greedy_decode")


@clause(
    "GPT-NEXT",
    "A decoder-only model's logits at position t MUST depend on the tokens at positions <= t only.",
    source=Source(VIDEO_NOTES, VIDEO_GPT, paper=VASWANI_2017),
    needs=("GPT",),
    topic=TOPIC,
    cost="network",
)
def gpt_next(impl: Any, ck: Check) -> None:
    config = tiny_gpt(ck)
    net = impl.GPT(config, network_params(ck, config))
    ids = draw_tokens(ck, 2, 7, "tokens")
    t = ck.draw(st.integers(0, len(ids) - 2), "t")
    future = draw_tokens(ck, len(ids) - t - 1, len(ids) - t - 1, "new tokens after t")
    changed = np.concatenate([ids[: t + 1], future])
    ck.close(
        np.asarray(net.forward(changed))[: t + 1],
        np.asarray(net.forward(ids))[: t + 1],
        output="network",
        what=f"GPT logits[:{t + 1}] after changing tokens > {t}",
    )


def _gpt_composition(
    m: Any, params: dict, config: TransformerConfig, ids: np.ndarray, causal: np.ndarray
) -> np.ndarray:
    """A GPT's final state as the documents draw it, from the sub-layers of ``m``."""
    # x_t = W_E[:, id_t] (x sqrt(d_model) if scaled) + position t
    x = input_embedding(ids, params["W_E"], params.get("W_P"), config, sinusoid_layout(m))  # (T, d_model)
    for block in params["blocks"]:
        # a GPT block is an encoder block under the causal mask (its attention is masked)
        layer = {"self_attn": block["attn"], "norm_1": block["norm_1"], "ffn": block["ffn"],
                 "norm_2": block["norm_2"]}
        x = _encoder_layer_composition(m, layer, x, config, causal)
    if config.norm_placement == "pre":
        final = params["final_norm"]
        x = np.asarray(m.layer_norm(x, final["gamma"], final["beta"], config.layer_norm_eps))
    return x


@clause(
    "GPT-COMPOSE",
    "A decoder-only model's logits MUST be its parts wired as the documents draw them: each "
    "token's column of the embedding matrix plus its position, then each block's masked "
    "self-attention and feed-forward network with their residuals and layer norms, the final layer "
    "norm when the blocks are pre-LN, and the unembedding matrix (the transposed embedding matrix "
    "when tied); the final hidden state, where offered, MUST be the vectors the unembedding reads.",
    source=Source(VIDEO_NOTES, VIDEO_GPT, paper=VASWANI_2017),
    needs=("GPT", *SUB_LAYERS),
    topic=TOPIC,
    cost="network",
    note="Composed from the implementation's own multi-head attention, layer norm and feed-forward "
    "network, never the oracle's: a GPT and its reference that share a wiring mistake (a block "
    "without its feed-forward residual, no final norm, blocks that reuse the first one's "
    "parameters) agree with each other, not with this. The parameter layout is PARAMETERS.md's.",
)
def gpt_compose(impl: Any, ck: Check) -> None:
    config = tiny_gpt(ck)
    params = network_params(ck, config)
    # Two tokens at least: one token attends to itself whatever mask the blocks put on it (a GPT
    # that masks the end token as padding reads the same one-token sequence right).
    ids = draw_tokens(ck, 2, 7, "tokens")
    causal = lower_triangle(len(ids))  # (T, T)

    # Once per namespace (the implementation, torch_ref's baseline): the logits and GPT.hidden are
    # both held to it (each entry keeps its namespace alive, so no other object takes its id).
    finals: dict[int, tuple[Any, np.ndarray]] = {}

    def composed(m: Any) -> np.ndarray:
        if id(m) not in finals:
            finals[id(m)] = (m, _gpt_composition(m, params, config, ids, causal))
        return finals[id(m)][1]

    # logits = W_U h + b_U, W_U = W_E^T when tied. Both sides round in the implementation's format
    # at different points: below float64 they are held to what the same two routes through
    # torch_ref part by on this input (tolerances, rule 4).
    ck.close_routes(
        lambda m: np.asarray(m.GPT(config, copy_params(params)).forward(ids)),  # (T, n_vocab)
        lambda m: unembedding(composed(m), params, "W_E"),
        output="network",
        what="GPT.forward(ids) vs embedding -> own blocks -> final norm -> unembedding",
    )
    has = getattr(impl, "has", None)
    if has is not None and has("GPT.hidden"):  # an optional method, as GPT.forward_cached
        # the state the unembedding reads: after the final norm when pre-LN (a hidden that hands
        # back the residual stream before ln_f gives every caller of it unnormalised features)
        ck.close_routes(
            lambda m: np.asarray(m.GPT(config, copy_params(params)).hidden(ids)),
            composed,
            output="network",
            what="GPT.hidden(ids) vs embedding -> own blocks -> final norm",
        )


@clause(
    "GPT-GENERATE",
    "A decoder-only model MUST generate by keeping the prompt and appending exactly max_new_tokens "
    "tokens, at temperature 0 each the most probable next token given every token before it, and "
    "sampling at a temperature tending to 0 MUST give the same tokens.",
    source=Source(NEURAL_NETWORKS, NN_OVERVIEW, paper=BROWN_2020),
    needs=("GPT.generate",),
    topic=TOPIC,
    cost="network",
    note="Each generated token is checked against one parallel forward pass over the whole output "
    "(GPT-NEXT makes its row s the prediction from tokens <= s), as GREEDY does for the "
    "encoder-decoder; generate does not stop at the end token (PARAMETERS.md). Also with a drawn "
    "token, each special id and the last id in turn lifted 1000 above the other logits, which "
    "generate(T=0) must then write at every step.",
)
def gpt_generate(impl: Any, ck: Check) -> None:
    config = tiny_gpt(ck)
    net = impl.GPT(config, network_params(ck, config))
    # At least two tokens of prompt and two new ones: with one of either, a generator that reads
    # the wrong position's logits can still pick the right tokens.
    prompt = draw_tokens(ck, 2, 6, "prompt")
    P = len(prompt)
    n_new = ck.draw(st.integers(2, 6), "max_new_tokens")
    out = [int(t) for t in net.generate(prompt, max_new_tokens=n_new, temperature=0.0)]
    ck.equal(len(out), P + n_new, what="len(generate(prompt, max_new_tokens)) = len(prompt) + max_new_tokens")
    ck.equal(out[:P], prompt.tolist(), what="the prompt at the head of generate's output")
    ck.equal([int(t) for t in net.generate(prompt, max_new_tokens=0, temperature=0.0)], prompt.tolist(),
             what="generate(prompt, max_new_tokens=0) = the prompt")
    # One new token is the first of many (greedy decoding does not look ahead).
    ck.equal(
        [int(t) for t in net.generate(prompt, max_new_tokens=1, temperature=0.0)],
        out[: P + 1],
        what="generate(prompt, max_new_tokens=1) vs the head of generate(prompt, max_new_tokens)",
    )
    # The unembedding's bias is part of the logits generate picks from: a model whose b_U lifts one
    # token 1000 above every other must generate only that token (as GREEDY's end token). A
    # generator that computes its own logits without b_U (an adapter around a bias-less lm_head)
    # is caught on every example, not only where the drawn b_U happens to move an argmax; checked
    # before the parallel pass below, so that its failure names the bias.
    # (declared bias-free, the lift goes through the final norm's shift, with_logit_moved)
    # The specials and the last id are lifted as well as the drawn token (a generator that bans
    # <pad> or <start>, or takes its argmax over logits[:-1], is caught on every example).
    biased = as_declared(ck, replace(config, bias=True))
    drawn = network_params(ck, biased)
    favoured = ck.draw(st.integers(0, biased.n_vocab - 1), "token lifted by b_U")
    for token in dict.fromkeys((favoured, PAD_ID, UNK_ID, START_ID, END_ID, biased.n_vocab - 1)):
        lifted = with_logit_moved(drawn, token, 1e3)
        ck.equal(
            [int(t) for t in impl.GPT(biased, lifted).generate(prompt, max_new_tokens=n_new, temperature=0.0)],
            [*prompt.tolist(), *[token] * n_new],
            what=f"generate(T=0) when {logit_bias(lifted)} lifts token {token} 1000 above every other logit",
        )
    # Row s of the parallel pass is the distribution of token s + 1 given tokens <= s: the new
    # token s + 1 (s >= P - 1) must be its argmax.
    logits = np.asarray(net.forward(np.asarray(out)))  # (P + n_new, n_vocab)
    _teacher_forced_argmax(impl, ck, out, logits, "GPT.generate(T=0)", start=P - 1)
    # softmax(l / T) -> one-hot argmax as T -> 0 (as in GREEDY): at T = 1e-3 every step decided by
    # a gap > 0.05 leaves the other tokens probability < V e^{-50} ~ 1e-21.
    if min(largest_gap(row) for row in logits[P - 1 : -1]) > 0.05:
        seed = ck.draw(st.integers(0, 99), "seed")
        sampled = [int(t) for t in net.generate(prompt, max_new_tokens=n_new, temperature=1e-3, seed=seed)]
        ck.equal(sampled, out, what="generate(T=1e-3) vs generate(T=0)")


# ---------------------------------------------------------------------------------------------
# Sampling, checked by counting.
#
# A sampler is judged on the tokens it draws under many seeds. Weissman, Ordentlich, Seroussi,
# Verdu and Weinberger (2003, "Inequalities for the L1 deviation of the empirical distribution")
# bound the L1 distance between p and the empirical distribution p_hat of N independent draws
# from p over V outcomes:
#     P(||p_hat - p||_1 >= eps) <= (2^V - 2) exp(-N eps^2 / 2).
# Solved for eps at a false-alarm probability FALSE_ALARM, it gives a threshold that a correct
# sampler crosses once in 10^9 checks, never in practice; distinct seeds are taken as independent
# draws, which is what a seeded generator promises.
# ---------------------------------------------------------------------------------------------

SAMPLING_SEEDS = 200
FALSE_ALARM = 1e-9
# Sampled temperatures: at 1 the documents' plain softmax; away from 1 a temperature multiplied
# instead of divided, or ignored, draws from another distribution. The first, where Hypothesis
# starts and shrinks to, spreads p enough for the frequencies to be counted on the drawn models
# (counting needs max p < 0.73; at T = 2 the largest max p of 55 models drawn by a thorough run was
# 0.43). At T = 0.5 about a third are too concentrated, and only their reproducibility is checked.
TEMPERATURES = (2.0, 0.5, 1.0, 4.0)


def l1_deviation_bound(n_samples: int, n_outcomes: int, false_alarm: float) -> float:
    """The eps at which (2^V - 2) exp(-N eps^2 / 2) = false_alarm (Weissman et al. 2003)."""
    return math.sqrt(2.0 * (math.log(2.0**n_outcomes - 2.0) + math.log(1.0 / false_alarm)) / n_samples)


def _sampled_frequencies(
    impl: Any, ck: Check, draw: Any, logits: np.ndarray, temperature: float, what: str, base: int
) -> None:
    """``draw(seed)`` (one sampled token) under SAMPLING_SEEDS distinct seeds: its frequencies must
    lie within the Weissman threshold of p = softmax(logits / T), the implementation's own logits;
    ``base`` seeds the seeds.

    The threshold is eps + rounding: ``rounding`` is what a correct sampler computing in the
    implementation's format may add to ||q - p||_1 (its scaled logits l / T rounded, which moves p
    by at most 2 max|d(l / T)| in L1, and each probability rounded, at most 2 eps(format) in all).
    A sampler that ignores its seed draws one token k every time, at distance 2 (1 - p_k) from p;
    the check runs only when the distribution is spread enough that this exceeds the threshold for
    every k (max p < 1 - threshold / 2), so that such a sampler is always caught. Any sampler whose
    distribution r has ||r - p||_1 > 2 eps + rounding is caught with probability >= 1 - 1e-9.
    """
    z = np.asarray(logits, dtype=np.float64) / temperature  # (V,)
    p = np.exp(z - z.max())
    p = p / p.sum()
    V = len(p)
    eps = l1_deviation_bound(SAMPLING_SEEDS, V, FALSE_ALARM)
    rounding = 2.0 * precision.spacing(impl, float(np.abs(z).max())) + 2.0 * precision.eps(impl)
    threshold = eps + rounding
    if 2.0 * (1.0 - p.max()) <= threshold:
        ck.note(f"{what}: too concentrated to count (max p)", round(float(p.max()), 4))
        return
    seeds = np.random.default_rng(base).choice(2**31 - 1, size=SAMPLING_SEEDS, replace=False)
    tokens = np.array([draw(int(seed)) for seed in seeds])
    ck.that(
        bool(np.all((tokens >= 0) & (tokens < V))),
        what=f"{what}: sampled token ids",
        observed=sorted(set(tokens.tolist())),
        expected=f"ids in [0, {V})",
    )
    frequencies = np.bincount(tokens, minlength=V) / SAMPLING_SEEDS  # (V,)
    distance = float(np.abs(frequencies - p).sum())
    ck.note(f"{what}: ||p_hat - p||_1", round(distance, 4))
    ck.that(
        distance < threshold,
        what=f"{what}: frequencies of the sampled token over {SAMPLING_SEEDS} seeds at T = {temperature}",
        observed=f"||p_hat - p||_1 = {distance:.3f}, p_hat = {np.round(frequencies, 3).tolist()}",
        expected=f"< {threshold:.3f} (a correct sampler exceeds it with probability <= {FALSE_ALARM:g}), "
        f"p = softmax(logits / T) = {np.round(p, 3).tolist()}",
    )


def _gpt_sampler(impl: Any, ck: Check, temperature: float) -> Any:
    """Draws a GPT and a prompt; returns ``build()``, which makes the network and gives ``run(seed,
    n)`` (GPT.generate's output), the logits of the first token it samples, and where that token is
    in the output."""
    config = tiny_gpt(ck, n_layers=1)  # one block: the frequencies cost SAMPLING_SEEDS runs
    params = network_params(ck, config)
    prompt = draw_tokens(ck, 1, 5, "prompt")

    def build() -> tuple[Any, np.ndarray, int]:
        net = impl.GPT(config, params)

        def run(seed: int, n: int) -> list[int]:
            return [int(t) for t in net.generate(prompt, max_new_tokens=n, temperature=temperature, seed=seed)]

        return run, np.asarray(net.forward(prompt))[-1], len(prompt)  # logits (V,) of token P

    return build


def _transformer_sampler(impl: Any, ck: Check, temperature: float) -> Any:
    """As :func:`_gpt_sampler`, for Transformer.sample: the first sampled token follows START."""
    config = tiny_transformer(ck, n_encoder_layers=1, n_decoder_layers=1)
    params = network_params(ck, config)
    src = draw_tokens(ck, 1, 5, "source")

    def build() -> tuple[Any, np.ndarray, int]:
        net = impl.Transformer(config, params)

        def run(seed: int, n: int) -> list[int]:
            return [int(t) for t in net.sample(src, max_len=n, temperature=temperature, seed=seed)]

        return run, np.asarray(net.forward(src, np.array([START_ID])))[0], 1

    return build


SAMPLERS = {"GPT.generate": _gpt_sampler, "Transformer.sample": _transformer_sampler}

# Successive draws: a model whose unembedding gives LIFTED tokens one logit, far above the rest,
# samples each next token uniformly from them whatever came before; a sampler that reseeds its
# generator at every step (torch.manual_seed inside the loop) draws the same u each time and writes
# one token over and over.
LIFTED = 3


def _new_tokens(net: Any, kind: str, context: Any, n: int, temperature: float, seed: int) -> list[int]:
    """The tokens a sampler writes after its context: GPT.generate's past the prompt,
    Transformer.sample's past START."""
    if kind == "GPT":
        out = net.generate(context, max_new_tokens=n, temperature=temperature, seed=seed)
        return [int(t) for t in out[len(context):]]
    return [int(t) for t in net.sample(context, max_len=n, temperature=temperature, seed=seed)[1:]]


def _uniform_successors(impl: Any, ck: Check, name: str, temperature: float) -> Any:
    """Pairs of successive sampled tokens over SAMPLING_SEEDS seeds: uniform over LIFTED^2 pairs.
    Draws the model and its inputs, and returns the check.

    The lifted tokens' rows of W_U are zero and their biases one value, so their logits are that
    value exactly, in any format and any summation order, and equal probabilities follow. The other
    tokens lie 1000 below (probability < e^-250 at the largest temperature).
    """
    kind = name.partition(".")[0]
    make = tiny_gpt if kind == "GPT" else tiny_transformer
    layers = {"n_layers": 1} if kind == "GPT" else {"n_encoder_layers": 1, "n_decoder_layers": 1}
    config = make(ck, bias=True, overridable=("bias",), tie_embeddings=False, **layers)
    params = network_params(ck, config)
    lifted = ck.draw(st.lists(st.integers(FIRST_WORD_ID, VOCAB - 1), min_size=LIFTED, max_size=LIFTED,
                              unique=True), f"{name}: tokens lifted by b_U")
    if "b_U" in params:
        params["W_U"] = params["W_U"].copy()
        params["W_U"][lifted] = 0.0
        params["b_U"] = params["b_U"].copy()
        params["b_U"][lifted] = params["b_U"].max() + 1e3
    else:  # bias-free: column 0 of W_U times the constant feature is the bias
        params, W_U = with_constant_feature(params)
        top = W_U[:, 0].max() + 1e3
        W_U[lifted] = 0.0
        W_U[lifted, 0] = top
    context = draw_tokens(ck, 1, 5, f"{name}: {'prompt' if kind == 'GPT' else 'source'}")
    base = ck.draw(st.integers(0, 2**16), f"{name}: seed of the pair seeds")

    def check() -> None:
        net = getattr(impl, kind)(config, params)
        seeds = np.random.default_rng(base).choice(2**31 - 1, size=SAMPLING_SEEDS, replace=False)
        pairs = [tuple(_new_tokens(net, kind, context, 2, temperature, int(seed))) for seed in seeds]
        index = {token: i for i, token in enumerate(lifted)}
        stray = sorted({t for p in pairs for t in p if t not in index} | {len(p) for p in pairs if len(p) != 2})
        ck.that(not stray, what=f"{name}: two tokens, each one of the lifted {lifted}",
                observed=f"{stray} in {pairs[:5]}...", expected=f"pairs of tokens in {lifted}")
        counts = np.zeros((LIFTED, LIFTED))
        for first, second in pairs:
            counts[index[first], index[second]] += 1
        frequencies = counts / SAMPLING_SEEDS  # (LIFTED, LIFTED): row the first token, column the second
        distance = float(np.abs(frequencies - 1.0 / LIFTED**2).sum())
        # probabilities 1/LIFTED each, up to their rounding in the format
        threshold = l1_deviation_bound(SAMPLING_SEEDS, LIFTED**2, FALSE_ALARM) + 2.0 * precision.eps(impl)
        ck.note(f"{name}: successive pairs ||p_hat - p||_1", round(distance, 4))
        ck.that(
            distance < threshold,
            what=f"{name}: pairs of successive tokens over {SAMPLING_SEEDS} seeds, each drawn uniformly "
            f"from the {LIFTED} lifted tokens",
            observed=f"||p_hat - p||_1 = {distance:.3f}, pair frequencies {np.round(frequencies, 3).tolist()}, "
            f"first == second in {int(np.trace(counts))} of {SAMPLING_SEEDS}",
            expected=f"< {threshold:.3f} from {1 / LIFTED**2:.3f} per pair (independent draws; a correct "
            f"sampler exceeds it with probability <= {FALSE_ALARM:g})",
        )

    return check


# The tail. A sampler that truncates softmax(logits / T) before drawing (Hugging Face's default
# top_k = 50, a nucleus top_p = 0.9 left in from a chat front-end) never draws the least probable
# tokens. Over the 11 tokens above it goes unseen: top-k = 50 keeps them all, and a 0.9 nucleus
# drops under 0.1 of the mass, which moves p by less than the L1 threshold. So a model of
# TAIL_VOCAB tokens: its unembedding gives the ordinary tokens 4..63 the logits k/128 (k = 0..59,
# exact in every format, and exact again once divided by the sampled temperatures, powers of two)
# and the reserved ids -1000, through a zero W_U, so that the logits are b_U whatever the context
# and every token a correct sampler writes is an independent draw from the same p. TAIL_RUNS runs
# of TAIL_TOKENS tokens give TAIL_DRAWS draws, and two tails are counted: the tokens beyond the
# TOP_K most probable, and the least probable tokens of total mass below 1 - TOP_P (outside any
# nucleus of mass TOP_P). A correct sampler draws from a tail of mass q as a binomial count
# Bin(TAIL_DRAWS, q); the check fails on a count so low that a correct sampler gives it with
# probability < FALSE_ALARM (one-sided), for each tail. A truncating sampler draws none.
TAIL_VOCAB = 64
TAIL_RUNS = 25
TAIL_TOKENS = 12  # a prompt of <= 4 tokens and 12 new ones fill the drawn networks' context of 16
TAIL_DRAWS = TAIL_RUNS * TAIL_TOKENS
TOP_K, TOP_P = 50, 0.9


def binomial_cdf(k: int, n: int, q: float) -> float:
    """P(X <= k) for X ~ Binomial(n, q)."""
    return math.fsum(math.comb(n, i) * q**i * (1.0 - q) ** (n - i) for i in range(k + 1))


def fewest_draws(n: int, q: float, false_alarm: float) -> int:
    """The largest count c with P(X <= c) < false_alarm, X ~ Binomial(n, q): a sampler that draws
    c or fewer from a set of probability q is wrong but with probability below false_alarm (-1:
    no count is that unlikely)."""
    c = -1
    while c < n and binomial_cdf(c + 1, n, q) < false_alarm:
        c += 1
    return c


def _tail_frequencies(impl: Any, ck: Check, name: str, temperature: float) -> Any:
    """TAIL_DRAWS tokens from the tail model (see above): each tail drawn as often as p says. Draws
    the model and its inputs, and returns the check."""
    kind = name.partition(".")[0]
    if kind == "GPT":
        config = replace(tiny_gpt(ck, n_layers=1, bias=True, overridable=("bias",), tie_embeddings=False),
                         n_vocab=TAIL_VOCAB)
    else:
        config = replace(tiny_transformer(ck, n_encoder_layers=1, n_decoder_layers=1, bias=True,
                                          overridable=("bias",), tie_embeddings=False), n_tgt_vocab=TAIL_VOCAB)
    b_U = np.full(TAIL_VOCAB, -1e3)
    b_U[FIRST_WORD_ID:] = np.arange(TAIL_VOCAB - FIRST_WORD_ID) / 128
    b_U = ck.input(b_U)
    params = with_constant_logits(network_params(ck, config), b_U)  # the logits are b_U
    if kind == "GPT":
        context = draw_tokens(ck, 1, 4, f"{name}: prompt (tail)")
    else:
        context = draw_tokens(ck, 1, 5, f"{name}: source (tail)")
    base = ck.draw(st.integers(0, 2**16), f"{name}: seed of the tail seeds")

    def check() -> None:
        net = getattr(impl, kind)(config, params)
        tokens = []
        for seed in np.random.default_rng(base).choice(2**31 - 1, size=TAIL_RUNS, replace=False):
            out = _new_tokens(net, kind, context, TAIL_TOKENS, temperature, int(seed))
            ck.equal(len(out), TAIL_TOKENS,
                     what=f"{name}: number of new tokens for {TAIL_TOKENS}, the end token out of reach")
            tokens += out
        drawn = np.asarray(tokens)
        stray = sorted(set(drawn[(drawn < FIRST_WORD_ID) | (drawn >= TAIL_VOCAB)].tolist()))
        ck.that(not stray, what=f"{name}: sampled ids of the tail model",
                observed=stray, expected=f"ids in [{FIRST_WORD_ID}, {TAIL_VOCAB}) (the others lie 1000 below)")
        # p = softmax(b_U / T), as exact as the format keeps it: each probability the format computes
        # is off by a few roundings (its exponential, its normalisation), so a tail of mass q has at
        # least q (1 - 4 eps) in a correct sampler.
        z = b_U / temperature
        p = np.exp(z - z.max())
        p = p / p.sum()
        order = np.argsort(-p, kind="stable")  # most probable first
        cumulative = np.cumsum(p[order[::-1]])  # from the least probable up
        tails = {
            f"the tokens beyond the {TOP_K} most probable": order[TOP_K:],
            f"the least probable tokens of total mass < {1 - TOP_P:.1f} (outside a {TOP_P} nucleus)":
                order[::-1][: int(np.searchsorted(cumulative, 1 - TOP_P))],
        }
        for label, tail in tails.items():
            q = float(p[tail].sum()) * (1.0 - 4.0 * precision.eps(impl))
            fewest = fewest_draws(TAIL_DRAWS, q, FALSE_ALARM)
            count = int(np.isin(drawn, tail).sum())
            ck.note(f"{name}: draws among {label}", f"{count} of {TAIL_DRAWS} (p = {q:.3f})")
            if fewest < 0:
                ck.note(f"{name}: {label} too light to count", round(q, 4))
                continue
            ck.that(
                count > fewest,
                what=f"{name}: draws among {label} ({len(tail)} ids) over {TAIL_RUNS} seeds x {TAIL_TOKENS} "
                f"tokens at T = {temperature}",
                observed=f"{count} of {TAIL_DRAWS}",
                expected=f"more than {fewest}: they hold p = {q:.3f} of softmax(logits / T), about "
                f"{q * TAIL_DRAWS:.0f} draws, and a correct sampler draws {fewest} or fewer with "
                f"probability < {FALSE_ALARM:g}",
            )

    return check


# The unembedding's bias, and the last id. A model whose W_U is zero has the logits b_U whatever
# the context: here 0 for the ordinary words, BIAS_LIFT for the last id V - 1 and -32 BIAS_LIFT for
# the reserved ids (out of reach: e^-32 at T = BIAS_LIFT, so that Transformer.sample never stops
# early). Sampled at T = BIAS_LIFT, the last id has p = e / (e + n - 1) over the n ordinary words
# (0.31 for 7), and BIAS_RUNS runs of two new tokens draw it as a binomial count. A correct sampler
# draws it never, or every time, with probability < FALSE_ALARM each; a sampler off by one at the
# end of the vocabulary (multinomial(p[:-1]), integers(0, V - 1)) never draws it, and one that
# divides only W_U h by T (the temperature folded into the hidden state) keeps b_U's lift of
# BIAS_LIFT and draws it every time. Powers of two: b_U and b_U / T are exact in every format.
BIAS_LIFT = 1024.0
BIAS_RUNS = 30


def _bias_and_last_id(impl: Any, ck: Check, name: str) -> Any:
    """BIAS_RUNS x 2 tokens of the bias model (see above): the last id as often as p says. Draws the
    model and its inputs, and returns the check."""
    kind = name.partition(".")[0]
    if kind == "GPT":
        config = tiny_gpt(ck, n_layers=1, bias=True, overridable=("bias",), tie_embeddings=False)
    else:
        config = tiny_transformer(ck, n_encoder_layers=1, n_decoder_layers=1, bias=True, overridable=("bias",),
                                  tie_embeddings=False)
    last = VOCAB - 1
    b_U = np.full(VOCAB, -32 * BIAS_LIFT)
    b_U[FIRST_WORD_ID:] = 0.0
    b_U[last] = BIAS_LIFT
    params = with_constant_logits(network_params(ck, config), ck.input(b_U))  # the logits are b_U
    context = draw_tokens(ck, 1, 5, f"{name}: {'prompt' if kind == 'GPT' else 'source'} (bias)")
    base = ck.draw(st.integers(0, 2**16), f"{name}: seed of the bias seeds")

    def check() -> None:
        net = getattr(impl, kind)(config, params)
        tokens = []
        for seed in np.random.default_rng(base).choice(2**31 - 1, size=BIAS_RUNS, replace=False):
            out = _new_tokens(net, kind, context, 2, BIAS_LIFT, int(seed))
            ck.equal(len(out), 2, what=f"{name}: number of new tokens for 2, the end token out of reach")
            tokens += out
        drawn = np.asarray(tokens)
        stray = sorted(set(drawn[(drawn < FIRST_WORD_ID) | (drawn >= VOCAB)].tolist()))
        ck.that(not stray, what=f"{name}: sampled ids of the bias model",
                observed=stray, expected=f"ids in [{FIRST_WORD_ID}, {VOCAB}) (the others lie 32 T below)")
        n = len(drawn)
        p_last = math.e / (math.e + VOCAB - FIRST_WORD_ID - 1)
        count = int((drawn == last).sum())
        ck.note(f"{name}: draws of the last id at T = {BIAS_LIFT:g}", f"{count} of {n} (p = {p_last:.3f})")
        # as in the tail: each probability a format computes is off by a few roundings
        for label, q, k, undone in (
            (f"the last id {last}", p_last, count, "a sampler that never draws the last id"),
            (f"the ids other than {last}", 1.0 - p_last, n - count,
             f"a sampler that leaves b_U undivided by T (its lift of {BIAS_LIFT:g} then wins every draw)"),
        ):
            fewest = fewest_draws(n, q * (1.0 - 4.0 * precision.eps(impl)), FALSE_ALARM)
            ck.that(
                k > fewest,
                what=f"{name}: draws of {label} over {BIAS_RUNS} seeds x 2 tokens at T = {BIAS_LIFT:g}, from "
                f"logits {logit_bias(params)} = {BIAS_LIFT:g} for {last}, 0 for the other words",
                observed=f"{k} of {n}",
                expected=f"more than {fewest}: softmax(logits / T) gives them p = {q:.3f}, and a correct sampler "
                f"draws {fewest} or fewer with probability < {FALSE_ALARM:g}; {undone} draws none of them",
            )

    return check


@clause(
    "SAMPLE-DIST",
    "Sampling at temperature T MUST draw each next token from softmax(logits / T), afresh at every "
    "step: the same seed MUST give the same tokens, and over many seeds the frequencies of a sampled "
    "token MUST match softmax(logits / T), the unembedding's bias divided by T with the rest, from "
    "the vocabulary's last id down to its least probable tokens, and those of two successive tokens "
    "the product of their distributions.",
    source=Source(VIDEO_NOTES, VIDEO_SOFTMAX),
    needs=("Transformer.sample | GPT.generate",),
    topic=TOPIC,
    cost="network",
    note=f"The first sampled token under {SAMPLING_SEEDS} distinct seeds, against softmax of the "
    "implementation's own logits by the L1 bound of Weissman et al. 2003 (a false alarm has "
    f"probability <= {FALSE_ALARM:g}), where p is spread enough that a sampler ignoring its seed is "
    "always caught (max p < 1 - threshold / 2; noted otherwise); and two successive tokens of a "
    f"model that lifts {LIFTED} tokens to one logit, where each draw is uniform over them whatever "
    f"came before; and {TAIL_DRAWS} tokens of a {TAIL_VOCAB}-token model, of which the tokens beyond "
    f"the {TOP_K} most probable and those outside the {TOP_P} nucleus must be drawn as often as a "
    "one-sided binomial test allows (no top-k or top-p truncation; a false alarm has probability "
    f"<= {FALSE_ALARM:g} per tail); and {2 * BIAS_RUNS} tokens at T = {BIAS_LIFT:g} of a model whose "
    f"logits are b_U alone, {BIAS_LIFT:g} for the last id and 0 for the other words, which must draw "
    "the last id some of the time and not all of the time (a binomial test each way: no sampler off "
    "by one at the end of the vocabulary, no b_U left undivided by T). Every sampler the implementation offers, in "
    "each example.",
)
def sample_dist(impl: Any, ck: Check) -> None:
    # Every input is drawn before any sampler runs: a shrink run that runs out of draws then stops
    # at once, instead of after thousands of sampling calls (each part draws its model and inputs,
    # and returns its check).
    temperature = ck.draw(st.sampled_from(TEMPERATURES), "temperature")
    n_new = ck.draw(st.integers(2, 4), "tokens per reproducibility run")
    checks = []
    for name, sampler in SAMPLERS.items():
        if not ck.offers(name):
            continue
        build = sampler(impl, ck, temperature)
        base = ck.draw(st.integers(0, 2**16), "seed of the sampling seeds")
        checks.append(partial(_first_token, impl, ck, name, build, temperature, n_new, base))
        checks.append(_uniform_successors(impl, ck, name, temperature))
        checks.append(_tail_frequencies(impl, ck, name, temperature))
        checks.append(_bias_and_last_id(impl, ck, name))
    for check in checks:
        check()


def _first_token(
    impl: Any, ck: Check, name: str, build: Any, temperature: float, n_new: int, base: int
) -> None:
    """The sampler's reproducibility, and the frequencies of its first token (the base seed drawn)."""
    run, logits, first = build()
    ck.equal(logits.shape, (VOCAB,), what=f"{name}: the forward pass's logits of the first sampled token, shape")
    # The same seed, the same tokens (a sampler reading an unseeded generator differs).
    for seed in range(3):
        ck.equal(run(seed, n_new), run(seed, n_new), what=f"{name}(seed={seed}) run twice")

    def first_token(seed: int) -> int:
        out = run(seed, 1)
        # a short output is the sampler's failure, said as such (not an IndexError here)
        ck.equal(len(out), first + 1, what=f"{name}: length of the output for one new token")
        return out[first]

    _sampled_frequencies(impl, ck, first_token, logits, temperature, name, base)


# ---------------------------------------------------------------------------------------------
# Whole networks against the oracle.
# ---------------------------------------------------------------------------------------------


@clause(
    "NET-ORACLE",
    "The forward passes of the MLP, Transformer, GPT and Seq2Seq networks, and a GPT's final hidden "
    "state where offered, MUST equal the oracle's for the same parameters and conventions.",
    source=Source(LECTURE_NOTES, NOTES_ENCODER, paper=VASWANI_2017),
    needs=(" | ".join(NETWORKS),),
    topic=TOPIC,
    cost="network",
    note="Differential: float64 within the network tolerance, lower precision by the policy. Each "
    "example checks every network the implementation offers, each with its own drawn configuration "
    "(drawing one network per example left each a quarter of the examples, and a GELU GPT went "
    "unchecked in a thorough run).",
)
def net_oracle(impl: Any, ck: Check) -> None:
    for kind in NETWORKS:
        if ck.offers(kind):
            _NETWORK_AGAINST_ORACLE[kind](impl, ck)


def _mlp_against_oracle(impl: Any, ck: Check) -> None:
    sizes = tuple(ck.draw(st.lists(st.integers(1, 6), min_size=2, max_size=4), "MLP layer sizes"))
    activation = ck.draw(st.sampled_from(["sigmoid", "relu", "tanh", "gelu"]), "MLP activation")
    mlp = MLPConfig(layer_sizes=sizes, activation=activation)
    params = network_params(ck, mlp)
    x = draw_array(ck, (3, sizes[0]), "MLP x")
    ck.close_to_oracle(lambda m: m.MLP(mlp, copy_params(params)).forward(x)[1][-1], output="network",
                       what="MLP.forward(x), the output layer's activations")


def _transformer_against_oracle(impl: Any, ck: Check) -> None:
    transformer = tiny_transformer(ck)
    params = network_params(ck, transformer)
    src, tgt = draw_tokens(ck, 1, 5, "Transformer source"), draw_tokens(ck, 1, 5, "Transformer target")
    ck.close_to_oracle(
        lambda m: m.Transformer(transformer, copy_params(params)).forward(src, tgt), output="network",
        what="Transformer.forward(src, tgt)",
    )


def _gpt_against_oracle(impl: Any, ck: Check) -> None:
    # learned positions first (GPT-COMPOSE starts at 'none'): a table read from row 1 (fairseq's
    # positions start there) is caught on the first example
    gpt = tiny_gpt(ck, positional_first="learned")
    params = network_params(ck, gpt)
    ids = draw_tokens(ck, 1, 7, "GPT tokens")
    ck.close_to_oracle(lambda m: m.GPT(gpt, copy_params(params)).forward(ids), output="network",
                       what="GPT.forward(ids)")
    has = getattr(impl, "has", None)
    if has is not None and has("GPT.hidden"):  # an optional method, as GPT.forward_cached
        ck.close_to_oracle(lambda m: m.GPT(gpt, copy_params(params)).hidden(ids), output="network",
                           what="GPT.hidden(ids)")


def _seq2seq_against_oracle(impl: Any, ck: Check) -> None:
    seq2seq = tiny_seq2seq(ck)
    params = network_params(ck, seq2seq)
    src, tgt = draw_tokens(ck, 1, 5, "Seq2Seq source"), draw_tokens(ck, 1, 5, "Seq2Seq target")
    ck.close_to_oracle(
        lambda m: m.Seq2Seq(seq2seq, copy_params(params)).forward(src, tgt), output="network",
        what="Seq2Seq.forward(src, tgt)",
    )


_NETWORK_AGAINST_ORACLE = {
    "MLP": _mlp_against_oracle, "Transformer": _transformer_against_oracle,
    "GPT": _gpt_against_oracle, "Seq2Seq": _seq2seq_against_oracle,
}


# A context past the integers float16 counts exactly (2048; bfloat16: 256), and then one past
# bfloat16's only; a vocabulary with ids past 2048 too (GPT-3: 2,048 positions, 50,257 tokens).
LONG_CONTEXTS = (2050, 300)
LONG_VOCAB = 2304


@clause(
    "NET-LONG",
    "A GPT and an encoder-decoder MUST give the oracle's logits for a sequence as long as a real "
    "context, of token ids from a vocabulary of thousands (GPT-3: 2,048 positions, 50,257 tokens): "
    "every position and every id read as itself, past the 256 integers bfloat16 holds exactly and "
    "the 2,048 of float16.",
    source=Source(VIDEO_NOTES, "Context Size", paper=BROWN_2020),
    needs=("Transformer | GPT",),
    uses=SUB_LAYERS,
    topic=TOPIC,
    cost="network",
    note="Every other network clause draws a context of 16 and a vocabulary of 11, where positions "
    "and ids held in a narrow format (torch.arange(T, dtype=bfloat16), ids cast to the model's "
    "dtype, a sinusoid's angles formed in float16) are still exact. Here one layer of each network "
    "reads 2050 or 300 tokens drawn from a seed over 2304 ids, against the oracle by the "
    "same-precision rule, and a GPT against its own sub-layers composed (GPT-COMPOSE's route), "
    "which a fault the oracle shares cannot pass.",
)
def net_long(impl: Any, ck: Check) -> None:
    T = ck.draw(st.sampled_from(LONG_CONTEXTS), "sequence length T")
    positional = ck.draw(st.sampled_from(["learned", "sinusoidal"]), "positional")
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**32 - 1), "tokens' seed"))

    def sentence() -> np.ndarray:  # (T,) words only: no <pad> for an encoder to mask
        return rng.integers(FIRST_WORD_ID, LONG_VOCAB, size=T)

    if ck.offers("GPT"):
        # two heads of 4: a layer norm over 3 features is ill-conditioned enough that two correct
        # bfloat16 routes part, at one of 300 positions, by more than rule 4 allows (PyTorch's own
        # encoder layer against its functions composed)
        gpt = replace(tiny_gpt(ck, positional=positional, n_layers=1, n_heads=2, d_head=4, overridable=("positional",)),
                      n_vocab=LONG_VOCAB, context=T)
        params = network_params(ck, gpt)
        ids = sentence()
        logits = np.asarray(ck.close_to_oracle(
            lambda m: m.GPT(gpt, copy_params(params)).forward(ids), output="network",
            what=f"GPT.forward(ids), {T} tokens of a vocabulary of {LONG_VOCAB}",
        ))  # (T, n_vocab)
        if all(ck.offers(part) for part in SUB_LAYERS):
            # And without the oracle: the same network composed from the implementation's own
            # sub-layers, every position and id read exactly here (GPT-COMPOSE's route); the
            # implementation's forward pass above is not run again
            causal = lower_triangle(T)  # (T, T)
            ck.close_routes(
                lambda m: logits if m is impl else np.asarray(m.GPT(gpt, copy_params(params)).forward(ids)),
                lambda m: unembedding(_gpt_composition(m, params, gpt, ids, causal), params, "W_E"),
                output="network",
                what=f"GPT.forward(ids) vs its own parts composed, {T} tokens of a vocabulary of {LONG_VOCAB}",
            )
    if ck.offers("Transformer"):
        transformer = replace(
            tiny_transformer(ck, positional=positional, n_encoder_layers=1, n_decoder_layers=1,
                             overridable=("positional",)),
            n_src_vocab=LONG_VOCAB, n_tgt_vocab=LONG_VOCAB, context=T,
        )
        params = network_params(ck, transformer)
        src, tgt = sentence(), sentence()
        ck.close_to_oracle(
            lambda m: m.Transformer(transformer, copy_params(params)).forward(src, tgt), output="network",
            what=f"Transformer.forward(src, tgt), {T} tokens each of vocabularies of {LONG_VOCAB}",
        )


# ---------------------------------------------------------------------------------------------
# The LSTM encoder-decoder (Sutskever et al. 2014).
# ---------------------------------------------------------------------------------------------


@clause(
    "S2S-REVERSE",
    "Reading the source reversed MUST be the same as feeding the reversed source to an encoder "
    "that reads it in order.",
    source=Source(LECTURE_NOTES, NOTES_SUTSKEVER, paper=SUTSKEVER_2014),
    needs=("Seq2Seq",),
    topic=TOPIC,
    cost="network",
    note="With attention too: attention sums over source positions, so their order is moot.",
)
def s2s_reverse(impl: Any, ck: Check) -> None:
    reversing = tiny_seq2seq(ck, reverse_source=True)
    in_order = replace(reversing, reverse_source=False)
    params = network_params(ck, reversing)
    # two distinct tokens at least: one token, or a palindrome, reads the same either way round
    src = draw_tokens(ck, 2, 5, "source", unique=True)
    tgt = np.concatenate([[START_ID], draw_tokens(ck, 0, 4, "target")])
    ck.close(
        np.asarray(impl.Seq2Seq(reversing, params).forward(src, tgt)),
        np.asarray(impl.Seq2Seq(in_order, params).forward(src[::-1].copy(), tgt)),
        output="network",
        what="reverse_source=True on src vs reverse_source=False on src[::-1]",
    )


@clause(
    "S2S-EOS",
    "Greedy decoding of the encoder-decoder MUST emit the most probable token at each step and "
    "stop as soon as it emits the end-of-sentence token, or after max_len tokens.",
    source=Source(LECTURE_NOTES, NOTES_SUTSKEVER, paper=SUTSKEVER_2014),
    needs=("Seq2Seq.greedy_decode",),
    topic=TOPIC,
    cost="network",
)
def s2s_eos(impl: Any, ck: Check) -> None:
    # A reversed source first (Sutskever et al.'s choice, where Hypothesis starts): a decoding loop
    # that reverses it once more than forward does is caught at the first example
    config = tiny_seq2seq(ck, reverse_source=ck.draw(st.sampled_from([True, False]), "reverse_source"))
    params = with_logit_moved(network_params(ck, config), END_ID,
                              ck.draw(st.sampled_from([0.0, 1.0, 3.0, 50.0]), "end-token bias"))
    net = impl.Seq2Seq(config, params)
    # Two distinct source tokens at least: a decoding loop that reads the source in another order
    # than forward does (reversed twice) decodes a one-token or palindromic source right.
    src = draw_tokens(ck, 2, 5, "source", unique=True)
    # Several steps: with one, a decoder that feeds each step only the last token written (no
    # history) writes the same first token, and with two its second often agrees by chance.
    max_len = ck.draw(st.integers(4, 6), "max_len")
    out = [int(t) for t in net.greedy_decode(src, max_len=max_len)]
    ck.equal(out[0], START_ID, what="first token of greedy_decode")
    ends = [i for i, t in enumerate(out) if t == END_ID]
    if ends:
        ck.equal(ends, [len(out) - 1], what="positions of the end token (decoding stops there)")
    else:
        ck.equal(len(out), max_len + 1, what="length without an end token (START + max_len)")
    _teacher_forced_argmax(
        impl, ck, out, np.asarray(net.forward(src, np.asarray(out))), "Seq2Seq.greedy_decode"
    )
    # A model whose end token beats every other logit by 1000 writes it first and stops there,
    # whatever was drawn above (as in GREEDY): a loop without the end test, or one that tests before
    # it writes, is caught on every example.
    stopping = impl.Seq2Seq(config, with_logit_moved(params, END_ID, 1e3))
    ck.equal([int(t) for t in stopping.greedy_decode(src, max_len=max_len)], [START_ID, END_ID],
             what=f"Seq2Seq.greedy_decode when the end token's logit (<end>, id {END_ID}) exceeds the "
             f"others by 1000: <start>, <end>, and stop")
    ck.equal([int(t) for t in net.greedy_decode(src, max_len=0)], [START_ID],
             what="Seq2Seq.greedy_decode(src, max_len=0)")
    # A model whose end token lies 1000 below the others writes all max_len steps, each checked.
    endless_params = with_logit_moved(params, END_ID, -1e3)
    endless = impl.Seq2Seq(config, endless_params)
    written = [int(t) for t in endless.greedy_decode(src, max_len=max_len)]
    ck.equal(len(written), max_len + 1, what="len(greedy_decode) when the end token lies 1000 below the others")
    _teacher_forced_argmax(impl, ck, written, np.asarray(endless.forward(src, np.asarray(written))),
                           "Seq2Seq.greedy_decode (end token 1000 below)")
    # An encoder whose final state is the token it reads last alone (src[0] when reversing): where
    # the decoding loop reads the source in another order than forward does, the two start from
    # the states of two different tokens, and the first step's argmax tells them apart.
    forgetful = impl.Seq2Seq(config, _forgetful_encoder(endless_params, config.d_hidden))
    written = [int(t) for t in forgetful.greedy_decode(src, max_len=max_len)]
    _teacher_forced_argmax(impl, ck, written, np.asarray(forgetful.forward(src, np.asarray(written))),
                           "Seq2Seq.greedy_decode (an encoder that keeps only the token it reads last)")


def _forgetful_encoder(params: dict, H: int) -> dict:
    """``params`` with every encoder layer made to forget: W_hh = 0 and a forget gate f = sigma(-100)
    ~ 4e-44 (gates stacked i, f, g, o). Its final (h, c) then depends on the token it reads last
    and nothing before it."""
    params = copy_params(params)
    for layer in params["encoder"]:
        layer["W_hh"] = np.zeros_like(layer["W_hh"])
        layer["W_ih"][H : 2 * H] = 0.0
        layer["b_ih"][H : 2 * H] = -100.0
        layer["b_hh"][H : 2 * H] = 0.0
    return params


@clause(
    "S2S-BOTTLENECK",
    "Without attention the decoder MUST see the source only through the encoder's final state: two "
    "sources with equal final states give equal outputs, which attention need not.",
    source=Source(LECTURE_NOTES, NOTES_WHY, paper=SUTSKEVER_2014),
    needs=("Seq2Seq",),
    topic=TOPIC,
    cost="network",
)
def s2s_bottleneck(impl: Any, ck: Check) -> None:
    config = tiny_seq2seq(ck, attention=None)
    params = _forgetful_encoder(network_params(ck, config), config.d_hidden)
    H = config.d_hidden
    first = draw_tokens(ck, 2, 5, "source 1")
    second = draw_tokens(ck, len(first), len(first), "source 2")
    # The token read last: the first one when the source is reversed.
    last = 0 if config.reverse_source else -1
    second[last] = first[last]
    # Attention reads the encoder outputs as a set (a weighted sum over positions), and this
    # forgetful encoder's output at j depends on token j alone; give the second source a token the
    # first lacks, so that the two sets of encoder outputs differ.
    fresh = min(set(range(FIRST_WORD_ID, VOCAB)) - set(first.tolist()))
    second[1 if last == 0 else 0] = fresh
    tgt = np.concatenate([[START_ID], draw_tokens(ck, 0, 4, "target")])
    # the sources as they ran (source 2 is the draw with its last and first tokens set above)
    sources = f"sources {first.tolist()} and {second.tolist()}"
    ck.close(
        np.asarray(impl.Seq2Seq(config, params).forward(second, tgt)),
        np.asarray(impl.Seq2Seq(config, params).forward(first, tgt)),
        output="network",
        what=f"logits for {sources}, whose final encoder states are equal, no attention",
    )
    attending = replace(config, attention="luong")
    # Luong's output layer h~ = tanh(W_c [s; ctx] + b_c), with generic (seeded normal) values.
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**16), "W_c seed"))
    params = {
        **params,
        "W_c": ck.input(rng.normal(size=(H, 2 * H))),
        "b_c": ck.input(rng.normal(size=H)),
    }
    net = impl.Seq2Seq(attending, params)
    moved = np.abs(np.asarray(net.forward(second, tgt)) - np.asarray(net.forward(first, tgt))).max()
    ck.that(
        moved > 0.0,
        what=f"logits for the same {sources} with Luong attention",
        observed=f"max difference {moved:.3g}",
        expected="a difference: attention reads every encoder output, and the outputs for the two "
        "sources differ where their tokens do (unless the encoder's gates are not stacked i, f, g, o "
        "as PARAMETERS.md has them: the forget gate set to 0 above is then another gate; LSTM-CELL "
        "checks the order)",
    )


# ---------------------------------------------------------------------------------------------
# Training on the notes' own sentences.
# ---------------------------------------------------------------------------------------------


@clause(
    "TRAIN-TRANSLATE",
    "A tiny encoder-decoder trained on the lecture notes' own sentence pairs MUST reproduce every "
    "target sentence by greedy decoding.",
    source=Source(LECTURE_NOTES, NOTES_TRAINING, paper=VASWANI_2017),
    needs=("Transformer.train",),
    topic=TOPIC,
    cost="training",
    hypothesis=False,
    note=(
        "Needs a training method Transformer.train(src_ids, tgt_ids, *, epochs, eta, seed) taking "
        "padded (N, S) and (N, T) id arrays (targets <start> ... <end>); neither bundled reference "
        "has one yet, so the clause is not applicable to them."
    ),
)
def train_translate(impl: Any, ck: Check) -> None:
    from nnspec.reference.data import translation_corpus

    corpus = translation_corpus()
    S = max(len(s) for s in corpus.src_ids)
    T = max(len(t) for t in corpus.tgt_ids)
    src, _ = corpus.src_vocab.pad(corpus.src_ids, S)  # (N, S), PAD-filled
    tgt, _ = corpus.tgt_vocab.pad(corpus.tgt_ids, T)  # (N, T), <start> ... <end> then PAD
    config = as_declared(ck, TransformerConfig(
        n_src_vocab=len(corpus.src_vocab),
        n_tgt_vocab=len(corpus.tgt_vocab),
        d_model=16,
        n_heads=2,
        n_encoder_layers=1,
        n_decoder_layers=1,
        d_ff=32,
        context=max(S, T) + 2,
    ))
    net = impl.Transformer(config, rounded_params(ck, ck.oracle.init_params(config, seed=0)))
    net.train(np.asarray(src), np.asarray(tgt), epochs=300, eta=0.01, seed=0)
    for source, target in zip(corpus.src_ids, corpus.tgt_ids, strict=True):
        decoded = [int(t) for t in net.greedy_decode(np.asarray(source), max_len=len(target) + 2)]
        ck.equal(decoded, list(target), what=f"greedy_decode({corpus.src_vocab.to_text(source)!r})")


# ---------------------------------------------------------------------------------------------
# Claims that cannot be checked as stated.
# ---------------------------------------------------------------------------------------------

informative(
    "S2S-REVERSE-GAIN",
    "Reversing the source sentence SHOULD make the encoder-decoder learn markedly better, "
    "especially on long sentences.",
    source=Source(LECTURE_NOTES, NOTES_SUTSKEVER, paper=SUTSKEVER_2014),
    topic=TOPIC,
    reason="A training-dynamics result on 12M sentence pairs; what the reversal computes is "
    "S2S-REVERSE.",
)

informative(
    "RESIDUAL-DEPTH",
    "Residual connections SHOULD keep deep stacks of blocks trainable by letting gradients flow "
    "around each sub-layer.",
    source=Source(LECTURE_NOTES, NOTES_QUESTIONS, paper=VASWANI_2017),
    topic=TOPIC,
    reason="A claim about training deep networks with no measure given; the residual wiring "
    "itself is RESIDUAL.",
)

informative(
    "ENC-PARALLEL",
    "A Transformer SHOULD process all input words at once, unlike a recurrent network that reads "
    "them one after another.",
    source=Source(RECAP, "The transformer architecture", paper=VASWANI_2017),
    topic=TOPIC,
    reason="A statement about how the computation is scheduled, not about its result; the "
    "equivalence of the parallel and token-by-token decoder is DEC-AUTOREGRESSIVE.",
)
