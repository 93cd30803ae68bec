"""Clauses on embedding, unembedding, dot-product alignment and GPT-3's sizes.

Sources: "Neural Networks and Transformers (3Blue1Brown video wjZofJX0v4M)", sections
"Tokenization and Vector Embeddings" (one column of W_E per vocabulary token), "Unembedding
Matrix" (one row of W_U per token, giving the logits), "Softmax Function" (temperature),
"Dot Product and Alignment" (the dot product is positive when vectors point the same way, zero when
perpendicular, negative when opposed) and "Tunable Parameters (Weights)" (GPT-3's tally); and
"Neural Networks (notes on 3Blue1Brown)", section 5 ("2. Embedding Matrix", "4. Output Side"). The
GPT-3 figures are those of Brown et al. (2020) as tallied in the video.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp
from nnspec.reference.config import END_ID, GPTConfig, MLPConfig, TransformerConfig

from .clause import (
    BROWN_2020,
    NEURAL_NETWORKS,
    VIDEO_NOTES,
    Check,
    Source,
    as_declared,
    clause,
    ids_outside,
    informative,
    must_refuse,
)

# The first ordinary token id: 0-3 are <pad>, <unk>, <start>, <end> (reference/config.py).
FIRST_WORD = END_ID + 1


def _floats(bound: float) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=32)


@clause(
    "EMB-LOOKUP",
    "The embedding of token t MUST be column t of the embedding matrix, W_E onehot(t), for any "
    "batch shape of token ids, and an id outside [0, n_vocab), which names no column, MUST be "
    "refused.",
    source=Source(VIDEO_NOTES, "High-Level Data Flow in a Transformer, Tokenization and Vector "
                  "Embeddings", paper=None),
    needs=("embed",),
    topic="embeddings",
    note="Refused means an error: -1 must not wrap around to the last token's column (W_E[:, -1], "
         "a pad or ignore_index of -1 or -100 looked up as a word), nor n_vocab be clamped. Each "
         "of -1, n_vocab and a drawn id outside the range is put into an otherwise valid batch. "
         "Every example also looks up a square W_E (d_model = n_vocab = 3, entries 1 to 9), "
         "where W_E (d_model, n_vocab) and nn.Embedding's (n_vocab, d_model) have the same "
         "shape: code that reads row t, or guesses the layout from the shape, is caught there "
         "and only there (a drawn W_E is rarely square, and rarely has rows unlike its columns).",
)
def embedding_lookup(impl: Any, ck: Check) -> None:
    # A square W_E first, on every example: its rows and columns have the same length, so code
    # that reads row t, or guesses the layout from the shape, returns a vector of the right size
    # there and nowhere else. Entries 1..n^2 make row t and column t differ off the diagonal.
    n = 3
    square = ck.input(np.arange(1.0, n * n + 1).reshape(n, n))
    square_ids = np.array([[0, 1, 2], [2, 0, 1]])
    out = impl.embed(square_ids, square)
    ck.equal(np.shape(out), square_ids.shape + (n,), what=f"embed({square_ids.tolist()}, W_E).shape "
             f"for a square W_E ({n} x {n})")
    for index in np.ndindex(*square_ids.shape):
        t = int(square_ids[index])
        ck.equal(out[index], square[:, t],
                 what=f"embed(ids, W_E)[{index}] (token {t}) for the square W_E = "
                 f"{square.tolist()} (d_model = n_vocab = {n}): column {t}, not row {t}")

    d_model = ck.draw(st.integers(1, 8), "d_model")
    n_vocab = ck.draw(st.integers(1, 12), "n_vocab")
    W_E = ck.input(ck.draw(hnp.arrays(np.float64, (d_model, n_vocab), elements=_floats(4)), "W_E"))
    ids_shape = ck.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), "ids shape")
    ids = ck.draw(hnp.arrays(np.int64, ids_shape, elements=st.integers(0, n_vocab - 1)), "ids")
    out = impl.embed(ids, W_E)
    ck.equal(np.shape(out), ids.shape + (d_model,), what="embed(ids, W_E).shape")
    for index in np.ndindex(*ids.shape):
        t = int(ids[index])
        # a lookup copies column t: no arithmetic, so exact equality
        ck.equal(out[index], W_E[:, t], what=f"embed(ids, W_E)[{index}] (token {t})")
    one_hot = np.eye(n_vocab)[ids]  # (..., n_vocab)
    # W_E onehot(t), as a matrix-vector product
    ck.close(out, one_hot @ W_E.T, output="reduction", what="embed(ids, W_E) vs W_E onehot(ids)")

    # An id outside the vocabulary names no column: one in an otherwise valid batch must be refused,
    # not wrapped around (numpy's W_E.T[-1] is the last token's column) or clamped.
    position = tuple(ck.draw(st.integers(0, side - 1), f"bad id position {axis}")
                     for axis, side in enumerate(ids.shape))
    drawn = ck.draw(ids_outside(n_vocab), "id outside [0, n_vocab)")
    for bad in dict.fromkeys((-1, n_vocab, drawn)):
        wrong = ids.copy()
        wrong[position] = bad
        must_refuse(ck, lambda wrong=wrong: impl.embed(wrong, W_E),
                    what=f"embed(ids with {bad} at {position}, W_E) for n_vocab = {n_vocab}",
                    expected=f"an error (id {bad} is outside [0, {n_vocab}) and names no column of W_E)")


@clause(
    "DOT-ALIGN",
    "Each logit w_t . h MUST equal |w_t| |h| cos(angle): positive when the token's row points the "
    "same way as h, negative when it points away.",
    source=Source(VIDEO_NOTES, "Semantic Meaning in Embeddings, Dot Product and Alignment",
                  paper=None),
    needs=("unembed",),
    topic="embeddings",
)
def dot_product_alignment(impl: Any, ck: Check) -> None:
    d_model = ck.draw(st.integers(2, 8), "d_model")
    n_vocab = ck.draw(st.integers(1, 8), "n_vocab")
    # exact geometry: h along axis u, each row in the plane of u and v (u, v coordinate axes,
    # chosen by a random signed permutation) at a known angle theta_t
    perm = ck.draw(st.permutations(range(d_model)), "axes")
    u_axis, v_axis = perm[0], perm[1]
    h_norm = 2.0 ** ck.draw(st.integers(-2, 3), "log2 |h|")
    h = np.zeros(d_model)
    h[u_axis] = h_norm
    # angles away from pi/2, where the sign of the cosine would depend on rounding
    angle = st.one_of(st.floats(0.0, 1.5), st.floats(1.65, math.pi))
    thetas = np.array(ck.draw(st.lists(angle, min_size=n_vocab, max_size=n_vocab), "theta"))
    radii = np.array(ck.draw(st.lists(st.floats(0.25, 4.0), min_size=n_vocab, max_size=n_vocab),
                             "|w|"))
    W_U = np.zeros((n_vocab, d_model))
    W_U[:, u_axis] = radii * np.cos(thetas)
    W_U[:, v_axis] = radii * np.sin(thetas)
    W_U = ck.input(W_U)
    logits = impl.unembed(h, W_U)
    # cos of the angle between row t and h, from the rows as the implementation receives them
    cos_angle = W_U[:, u_axis] / np.linalg.norm(W_U, axis=1)
    ck.equal(np.sign(logits), np.sign(np.cos(thetas)), what="sign(W_U h)")
    # w . h = |w| |h| cos(angle)
    ck.close(logits, np.linalg.norm(W_U, axis=1) * h_norm * cos_angle, output="reduction",
             what="W_U h vs |w_t| |h| cos(angle_t)")


@clause(
    "UNEMB-SOFTMAX",
    "The logits MUST be W_U h (+ b_U), one per vocabulary token, and the next-token distribution "
    "softmax(logits / T).",
    source=Source(VIDEO_NOTES, "Prediction Mechanism, Unembedding Matrix", paper=None),
    needs=("unembed | softmax",),
    topic="embeddings",
)
def unembedding_softmax(impl: Any, ck: Check) -> None:
    d_model = ck.draw(st.integers(1, 8), "d_model")
    n_vocab = ck.draw(st.integers(2, 10), "n_vocab")
    n_tokens = ck.draw(st.integers(1, 4), "T")
    W_U = ck.input(ck.draw(hnp.arrays(np.float64, (n_vocab, d_model), elements=_floats(2)), "W_U"))
    b_U = ck.input(ck.draw(hnp.arrays(np.float64, (n_vocab,), elements=_floats(2)), "b_U"))
    h = ck.input(ck.draw(hnp.arrays(np.float64, (n_tokens, d_model), elements=_floats(2)), "h"))
    # logit_v = sum_j W_U[v, j] h_j + b_v, for every token position
    expected = np.array([[math.fsum(W_U[v, j] * h[t, j] for j in range(d_model)) + b_U[v]
                          for v in range(n_vocab)] for t in range(n_tokens)])
    if ck.offers("unembed"):
        logits = impl.unembed(h, W_U, b_U)
        ck.close(logits, expected, output="reduction", what="unembed(h, W_U, b_U)")
        ck.close(impl.unembed(h, W_U), expected - b_U, output="reduction", what="unembed(h, W_U)")
    temperature = 2.0 ** ck.draw(st.integers(-2, 2), "log2 T")
    if not ck.offers("softmax"):
        return
    given = ck.input(expected)
    probs = impl.softmax(given, temperature=temperature)
    # p_v = e^{l_v / T} / sum_w e^{l_w / T}
    e = np.exp(given / temperature - (given / temperature).max(axis=-1, keepdims=True))
    ck.close(probs, e / e.sum(axis=-1, keepdims=True), output="probability",
             what=f"softmax(W_U h + b_U, T={temperature:g})")


@clause(
    "GPT3-COUNTS",
    "Counted the documents' way, GPT-3 MUST have 617,558,016 embedding weights, 175,181,291,520 "
    "weights in all, 27,938 matrices, and an attention pattern of context^2 = 4,194,304 entries; "
    "counting its biases, layer norms and learned positions too, 175,221,867,601 parameters.",
    source=Source(VIDEO_NOTES, "Deep Learning Foundations of Transformers, Tunable Parameters "
                  "(Weights)", paper=BROWN_2020),
    needs=("parameter_count",),
    topic="embeddings",
    hypothesis=False,
    note="The video says 'about 617 million', '175 billion' and 'nearly 28,000 matrices'; the "
         "exact figures are its on-screen tally: per layer one Q, K and V matrix per head, one "
         "output matrix and two MLP matrices, plus W_E and W_U. The full count adds what the tally "
         "leaves out, in GPT-3's pre-LN layout with biases (PARAMETERS.md).",
)
def gpt3_counts(impl: Any, ck: Check) -> None:
    from nnspec.reference.config import preset

    gpt3 = preset("gpt3")
    count = impl.parameter_count(gpt3)
    ck.equal(int(count.embedding), 617_558_016, what="parameter_count(gpt3).embedding")
    # d_model x n_vocab = 12,288 x 50,257
    ck.equal(int(count.embedding), gpt3.d_model * gpt3.n_vocab, what="embedding = d_model n_vocab")
    ck.equal(int(count.unembedding), 617_558_016, what="parameter_count(gpt3).unembedding")
    ck.equal(int(count.total), 175_181_291_520, what="parameter_count(gpt3).total")
    ck.equal(int(count.n_matrices), 27_938, what="parameter_count(gpt3).n_matrices")
    ck.equal(int(count.attention_pattern_entries), 4_194_304,
             what="parameter_count(gpt3).attention_pattern_entries")
    ck.equal(int(count.attention_pattern_entries), gpt3.context**2, what="context^2")

    # What the tally leaves out, by hand (d_model 12,288, 96 layers, d_ff 49,152, n_vocab 50,257,
    # context 2,048; pre-LN, biases on, learned positions):
    #   W_P: context x d_model                      2,048 x 12,288 =     25,165,824
    #   biases per layer: b_q, b_k, b_v, b_o (4 x 12,288 = 49,152), b_1 (49,152), b_2 (12,288)
    #                                               96 x 110,592   =     10,616,832
    #   b_U: one per token                                         =         50,257
    #   layer norms: norm_1 and norm_2 per block and the final norm, gamma and beta each
    #                                               (2 x 96 + 1) x 2 x 12,288 = 193 x 24,576
    #                                                              =      4,743,168
    #   together                                                   =     40,576,081
    #   175,181,291,520 + 40,576,081                               = 175,221,867,601
    full = impl.parameter_count(gpt3, biases_and_norms=True)
    ck.equal(int(full.positional), 25_165_824, what="parameter_count(gpt3, full).positional")
    ck.equal(int(full.biases), 10_616_832 + 50_257, what="parameter_count(gpt3, full).biases")
    ck.equal(int(full.norms), 4_743_168, what="parameter_count(gpt3, full).norms (final norm too)")
    ck.equal(int(full.total), 175_221_867_601, what="parameter_count(gpt3, biases_and_norms=True).total")


# ---------------------------------------------------------------------------------------------
# Parameter accounting against the parameters a network runs on.
# ---------------------------------------------------------------------------------------------

# Each array of the canonical layout (reference/PARAMETERS.md) by the ParameterCount field that
# counts it; every other key is a dict or list of them.
_FIELD_OF = {
    "W_E": "embedding", "W_E_src": "embedding", "W_E_tgt": "embedding",
    "W_P": "positional", "W_P_src": "positional", "W_P_tgt": "positional",
    "W_q": "attention", "W_k": "attention", "W_v": "attention", "W_o": "attention",
    "W_1": "mlp", "W_2": "mlp", "W": "mlp",  # an MLP layer's W counts with the MLP weights
    "W_U": "unembedding",
    "b_q": "biases", "b_k": "biases", "b_v": "biases", "b_o": "biases",
    "b_1": "biases", "b_2": "biases", "b_U": "biases", "b": "biases",
    "gamma": "norms", "beta": "norms",
}
_FIELDS = ("embedding", "positional", "attention", "mlp", "unembedding", "biases", "norms")
# Not in the documents' tally (3Blue1Brown counts weight matrices only).
_LEFT_OUT = ("positional", "biases", "norms")


def _arrays(params: Any, path: str = "params") -> list[tuple[str, str, np.ndarray]]:
    """Every array of a parameter dict: (path, key, array)."""
    if isinstance(params, dict):
        return [leaf for key, value in params.items()
                for leaf in (_arrays(value, f"{path}[{key!r}]") if isinstance(value, dict | list)
                             else [(f"{path}[{key!r}]", key, np.asarray(value))])]
    return [leaf for i, value in enumerate(params) for leaf in _arrays(value, f"{path}[{i}]")]


def _poisoned(params: Any, target: str, path: str = "params") -> Any:
    """A copy of ``params`` with the array at ``target`` replaced by NaN."""
    if isinstance(params, dict):
        return {key: _poisoned(value, target, f"{path}[{key!r}]") for key, value in params.items()}
    if isinstance(params, list):
        return [_poisoned(value, target, f"{path}[{i}]") for i, value in enumerate(params)]
    return np.full(np.shape(params), np.nan) if path == target else params


def _counting_config(ck: Check) -> GPTConfig | TransformerConfig | MLPConfig:
    """A tiny network with every switch that changes its parameters drawn."""
    kind = ck.draw(st.sampled_from(["gpt", "transformer", "mlp"]), "network")
    if kind == "mlp":
        sizes = ck.draw(st.lists(st.integers(1, 5), min_size=2, max_size=4), "layer_sizes")
        return MLPConfig(layer_sizes=tuple(sizes))
    n_heads = ck.draw(st.integers(1, 3), "n_heads")
    common: dict[str, Any] = {
        "d_model": n_heads * ck.draw(st.integers(1, 3), "d_head"),
        "n_heads": n_heads,
        "d_ff": ck.draw(st.integers(1, 5), "d_ff"),
        "context": ck.draw(st.integers(1, 6), "context"),
        "norm_placement": ck.draw(st.sampled_from(["pre", "post"]), "norm_placement"),
        "positional": ck.draw(st.sampled_from(["learned", "sinusoidal", "none"]), "positional"),
        "bias": ck.draw(st.booleans(), "bias"),
        "tie_embeddings": ck.draw(st.booleans(), "tie_embeddings"),
    }
    if kind == "gpt":
        return as_declared(ck, GPTConfig(n_vocab=ck.draw(st.integers(5, 9), "n_vocab"),
                                         n_layers=ck.draw(st.integers(0, 2), "n_layers"), **common))
    return as_declared(ck, TransformerConfig(
        n_src_vocab=ck.draw(st.integers(5, 9), "n_src_vocab"),
        n_tgt_vocab=ck.draw(st.integers(5, 9), "n_tgt_vocab"),
        n_encoder_layers=ck.draw(st.integers(0, 2), "n_encoder_layers"),
        # at least one decoder layer: without cross-attention the encoder is never read
        n_decoder_layers=ck.draw(st.integers(1, 2), "n_decoder_layers"),
        **common,
    ))


def _one_input(config: Any) -> tuple[np.ndarray, ...]:
    """A short input of ordinary tokens (no <pad>: a padded source would leave the encoder
    unread), or a batch of ones for an MLP; a tuple, as the network's forward takes it."""
    if isinstance(config, MLPConfig):
        return (np.ones((2, config.layer_sizes[0])),)
    T = min(config.context, 3)
    if isinstance(config, GPTConfig):
        return (FIRST_WORD + np.arange(T) % (config.n_vocab - FIRST_WORD),)
    return (FIRST_WORD + np.arange(T) % (config.n_src_vocab - FIRST_WORD),
            FIRST_WORD + np.arange(T) % (config.n_tgt_vocab - FIRST_WORD))


def _run_network(oracle: Any, config: Any, params: dict, inputs: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """The oracle's network on ``inputs`` (default: :func:`_one_input`): the last layer's
    activations of an MLP, the logits of a GPT or Transformer."""
    inputs = _one_input(config) if inputs is None else inputs
    if isinstance(config, MLPConfig):
        return oracle.MLP(config, params).forward(inputs[0])[1][-1]
    if isinstance(config, GPTConfig):
        return oracle.GPT(config, params).forward(inputs[0])
    return oracle.Transformer(config, params).forward(*inputs)


def _documented_layout(config: Any) -> dict[str, tuple[int, ...]] | None:
    """Every array init_params(config) must create and its shape, written from the config and
    PARAMETERS.md's layout and orientation table, not from any init_params: a weight is
    (n_out, n_in), W_E (d_model, n_vocab) with one column per token, W_U (n_vocab, d_model) and
    absent when tied, a bias (n_out,) and absent when switched off, a position table
    (context, d_model) for learned positions only, a final norm per stack for pre-LN only.
    ``None`` for a kind of network the clause does not draw."""
    if isinstance(config, MLPConfig):
        sizes = config.layer_sizes
        return {key: shape for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
                for key, shape in ((f"params['layers'][{l}]['W']", (n_out, n_in)),
                                   (f"params['layers'][{l}]['b']", (n_out,)))}
    if not isinstance(config, GPTConfig | TransformerConfig):
        return None
    d, d_ff, bias = config.d_model, config.d_ff, config.bias

    def mha(at: str) -> dict[str, tuple[int, ...]]:
        out = {}
        for x in "qkvo":
            out[f"{at}['W_{x}']"] = (d, d)
            if bias:
                out[f"{at}['b_{x}']"] = (d,)
        return out

    def ffn(at: str) -> dict[str, tuple[int, ...]]:
        out = {f"{at}['W_1']": (d_ff, d), f"{at}['W_2']": (d, d_ff)}
        return out | ({f"{at}['b_1']": (d_ff,), f"{at}['b_2']": (d,)} if bias else {})

    def norm(at: str) -> dict[str, tuple[int, ...]]:
        return {f"{at}['gamma']": (d,), f"{at}['beta']": (d,)}

    layout: dict[str, tuple[int, ...]] = {}
    pre = config.norm_placement == "pre"
    learned = config.positional == "learned"
    if isinstance(config, GPTConfig):
        n_out = config.n_vocab
        layout["params['W_E']"] = (d, config.n_vocab)
        if learned:
            layout["params['W_P']"] = (config.context, d)
        for i in range(config.n_layers):
            at = f"params['blocks'][{i}]"
            layout |= mha(f"{at}['attn']") | norm(f"{at}['norm_1']") | ffn(f"{at}['ffn']")
            layout |= norm(f"{at}['norm_2']")
        if pre:
            layout |= norm("params['final_norm']")
    else:
        n_out = config.n_tgt_vocab
        layout["params['W_E_src']"] = (d, config.n_src_vocab)
        layout["params['W_E_tgt']"] = (d, config.n_tgt_vocab)
        if learned:
            layout["params['W_P_src']"] = layout["params['W_P_tgt']"] = (config.context, d)
        for i in range(config.n_encoder_layers):
            at = f"params['encoder'][{i}]"
            layout |= mha(f"{at}['self_attn']") | norm(f"{at}['norm_1']") | ffn(f"{at}['ffn']")
            layout |= norm(f"{at}['norm_2']")
        for i in range(config.n_decoder_layers):
            at = f"params['decoder'][{i}]"
            layout |= mha(f"{at}['self_attn']") | norm(f"{at}['norm_1']")
            layout |= mha(f"{at}['cross_attn']") | norm(f"{at}['norm_2']") | ffn(f"{at}['ffn']")
            layout |= norm(f"{at}['norm_3']")
        if pre:
            layout |= norm("params['encoder_norm']") | norm("params['decoder_norm']")
    if not config.tie_embeddings:
        layout["params['W_U']"] = (n_out, d)
    if bias:
        layout["params['b_U']"] = (n_out,)
    return layout


def _three_inputs(config: Any) -> tuple[np.ndarray, ...]:
    """Three different inputs, batched: rows of ids that differ at every position (no <pad>, which
    a source mask would hide; the vocabularies have at least 5 tokens), or three input vectors."""
    if isinstance(config, MLPConfig):
        n_in = config.layer_sizes[0]
        return (np.array([[math.sin(1.0 + 3 * r + 7 * j) for j in range(n_in)] for r in range(3)]),)
    T = min(config.context, 3)

    def rows(n_vocab: int) -> np.ndarray:  # (3, T), ids in [1, n_vocab)
        return np.array([[1 + (t + r) % (n_vocab - 1) for t in range(T)] for r in range(3)])

    if isinstance(config, GPTConfig):
        return (rows(config.n_vocab),)
    return rows(config.n_src_vocab), rows(config.n_tgt_vocab)


def _constant(array: np.ndarray) -> bool:
    """Every entry the same (a single number counts as constant: nothing to compare it with)."""
    return array.size < 2 or bool(np.all(array == array.flat[0]))


@clause(
    "PARAM-COUNT",
    "A network's parameter count MUST equal the number of numbers in the parameters it runs on: "
    "tied embedding and unembedding counted once, and with biases and norms counted, every bias, "
    "every layer norm (a pre-LN stack's final norm included) and the learned position table; "
    "and init_params MUST create exactly the arrays counted, each in the shape the layout gives "
    "it for the config (W_E one column per token, a weight n_out by n_in), with no W_U of its "
    "own when the embedding is tied, every layer with arrays of its own, and random starting "
    "weights, so that the network built on them already answers different inputs differently.",
    source=Source(VIDEO_NOTES, "Deep Learning Foundations of Transformers, Tunable Parameters "
                  "(Weights)", paper=BROWN_2020),
    needs=("parameter_count | init_params",),
    topic="embeddings",
    note="The parameters are the oracle's init_params layout (PARAMETERS.md); the clause first "
         "runs the oracle's network on exactly them, and again with each array in turn set to "
         "NaN, which must reach the output: every array counted is read, none is missing. An "
         "implementation's own init_params is held to the same tally, field by field, and first, "
         "without the oracle's init_params, to the layout written from the config and "
         "PARAMETERS.md's orientation table (every array present, none extra, each of its "
         "shape), to layers that do not share one set of arrays (the tally counts each layer's), "
         "and to a random start: the documents start the weights at random values ('Deep "
         "Learning (notes on 3Blue1Brown)', chapter 2; the embedding matrix in 'Neural Networks "
         "(notes on 3Blue1Brown)', 2. Embedding Matrix), so each embedding matrix must not be "
         "constant, and the oracle's network on the implementation's parameters must give three "
         "different inputs outputs that are not all the same (with d_model at least 4: a layer "
         "norm of one or two features has one or two outputs whatever its input). Other values "
         "are the implementation's own: a layer-norm gain is not pinned (the reference's is 1), "
         "nor a bias (0), so a zero gain is caught only by its effect, an output that ignores the "
         "input; a constant array is never taken for a shared layer (a zero-initialised "
         "projection is not flagged). An init_params that refuses a kind of network (TypeError, "
         "NotImplementedError: torch.nn's example builds MLPs only) is not checked on that kind "
         "of network, and the example notes the refusal.",
)
def parameter_count_of_layout(impl: Any, ck: Check) -> None:
    config = _counting_config(ck)
    own = None
    if ck.offers("init_params"):
        # first without the oracle's init_params (the implementation's may share its fault)
        seed = ck.draw(st.integers(0, 2**16), "own parameter seed")
        own = _own_init_params(impl, ck, config, seed)
        if own is not None:
            _check_own_layout(ck, config, own)
            _check_random_start(impl, ck, config, own, seed)
    params = ck.oracle.init_params(config, seed=ck.draw(st.integers(0, 2**16), "parameter seed"))
    leaves = _arrays(params)
    # The network runs on exactly these arrays: no key missing (it would raise), and none extra:
    # poisoning any one of them with NaN poisons the output. (A bias b_k, which the softmax cancels,
    # still carries a NaN through.)
    ck.that(bool(np.all(np.isfinite(_run_network(ck.oracle, config, params)))),
            what="the oracle's network on init_params(config)", observed="non-finite output",
            expected="finite logits")
    with np.errstate(invalid="ignore", over="ignore"):
        unread = [path for path, _, _ in leaves
                  if np.all(np.isfinite(_run_network(ck.oracle, config, _poisoned(params, path))))]
    ck.that(not unread, what="every array of init_params(config) reaches the network's output",
            observed=f"output finite with NaN in {unread}", expected="NaN in the output")

    # The truth, tallied from the arrays: numbers per field, and 3Blue1Brown's matrix tally (one
    # query, key and value matrix per head; the position table is not a weight matrix there).
    numbers = dict.fromkeys(_FIELDS, 0)
    matrices = 0
    n_heads = getattr(config, "n_heads", 1)
    for _, key, array in leaves:
        numbers[_FIELD_OF[key]] += int(array.size)
        if array.ndim == 2 and _FIELD_OF[key] != "positional":
            matrices += n_heads if key in ("W_q", "W_k", "W_v") else 1
    pattern = 0 if isinstance(config, MLPConfig) else config.context**2
    ck.note("numbers in the parameters", sum(numbers.values()))

    if own is not None:
        _check_own_tally(ck, config, own, numbers)
    if not ck.offers("parameter_count"):
        return
    full = impl.parameter_count(config, biases_and_norms=True)
    ck.equal(int(full.total), sum(numbers.values()),
             what=f"parameter_count({config}, biases_and_norms=True).total vs the numbers in "
                  "init_params(config)")
    for name in _FIELDS:
        ck.equal(int(getattr(full, name)), numbers[name],
                 what=f"parameter_count(config, biases_and_norms=True).{name}")
    docs = impl.parameter_count(config)
    weights = sum(v for k, v in numbers.items() if k not in _LEFT_OUT)
    ck.equal(int(docs.total), weights,
             what=f"parameter_count({config}).total vs the weight matrices of init_params(config)")
    for name in _FIELDS:
        ck.equal(int(getattr(docs, name)), 0 if name in _LEFT_OUT else numbers[name],
                 what=f"parameter_count(config).{name}")
    for count, label in ((docs, "parameter_count(config)"), (full, "parameter_count(config, full)")):
        ck.equal(int(count.n_matrices), matrices, what=f"{label}.n_matrices")
        ck.equal(int(count.attention_pattern_entries), pattern,
                 what=f"{label}.attention_pattern_entries (context^2)")


def _own_init_params(impl: Any, ck: Check, config: Any, seed: int) -> dict | None:
    """The implementation's init_params(config), or None where it builds none for this kind of
    network (noted)."""
    try:
        return impl.init_params(config, seed=seed)
    except (TypeError, NotImplementedError) as exc:  # a kind of network it builds no parameters for
        ck.note(f"init_params refused {type(config).__name__}", str(exc).splitlines()[0][:160])
        return None


def _check_own_layout(ck: Check, config: Any, own: dict) -> None:
    """The implementation's init_params(config) against the layout written from the config."""
    leaves = _arrays(own)
    if getattr(config, "tie_embeddings", False):
        # tied: W_U is W_E^T, the parameters hold no W_U (PARAMETERS.md); a separate one would
        # make the network run untied
        untied = [path for path, key, _ in leaves if key == "W_U"]
        ck.that(not untied, what=f"init_params({config}) with tie_embeddings=True",
                observed=f"a separate unembedding {untied} (the network would run untied)",
                expected="no 'W_U': the unembedding is W_E^T, counted once")
    unknown = [path for path, key, _ in leaves if key not in _FIELD_OF]
    ck.that(not unknown, what=f"init_params({config}) keys", observed=unknown,
            expected="only the arrays of PARAMETERS.md's layout")
    layout = _documented_layout(config)
    if layout is None:
        return
    shapes = {path: tuple(np.shape(array)) for path, _, array in leaves}
    missing = [path for path in layout if path not in shapes]
    extra = [path for path in shapes if path not in layout]
    ck.that(not missing and not extra, what=f"the arrays of init_params({config})",
            observed=f"missing {missing}, extra {extra}",
            expected="the arrays of PARAMETERS.md's layout for this config")
    # The orientation is the documents': one column of W_E per token, a weight (n_out, n_in). A
    # square matrix cannot show a transposition; every other one can.
    wrong = [f"{path} {shapes[path]} (expected {shape})" for path, shape in layout.items()
             if shapes[path] != shape]
    ck.that(not wrong, what=f"shapes of init_params({config})", observed="; ".join(wrong),
            expected="the shapes PARAMETERS.md's layout gives for this config: W_E (d_model, "
                     "n_vocab), W_E_src and W_E_tgt with n_src_vocab and n_tgt_vocab columns, "
                     "W_U (n_vocab, d_model), W_1 (d_ff, d_model), W_2 (d_model, d_ff), a "
                     "weight (n_out, n_in)")


def _check_random_start(impl: Any, ck: Check, config: Any, own: dict, seed: int) -> None:
    """Random starting weights: embedding matrices that are not constant, a network that answers
    different inputs differently, and no two layers of a stack with one set of arrays."""
    leaves = _arrays(own)
    flat = [(path, key, array) for path, key, array in leaves if key.startswith("W_E")
            and _constant(array)]
    ck.that(not flat, what=f"the embedding matrices of init_params({config})",
            observed="; ".join(f"{path} with every entry {array.flat[0]:g}" for path, _, array in flat),
            expected="random starting values, a different column for each token")

    # The network on the fresh parameters: random weights make its output depend on its input.
    # Where d_model < 4 the same network is drawn again with d_model at least 4.
    n_heads = getattr(config, "n_heads", 1)
    wide, params = config, own
    if not isinstance(config, MLPConfig) and config.d_model < 4:
        wide = replace(config, d_model=n_heads * -(-4 // n_heads))
        params = impl.init_params(wide, seed=seed)
        _check_own_layout(ck, wide, params)
    inputs = _three_inputs(wide)
    out = np.asarray(_run_network(ck.oracle, wide, params, inputs), dtype=np.float64)
    spread = float(np.max(np.abs(out - out[:1]))) if out.size else 0.0
    ck.note("output spread over three inputs on init_params", spread)
    # The oracle computes in float64, so a network that reads its input gives different numbers
    # (in a chain of one-neuron sigmoid layers the difference can be as small as 1e-5 of the
    # output); a zero gain or zero weights give exactly the same ones.
    ck.that(any(not np.array_equal(row, out[0]) for row in out[1:]),
            what=f"the oracle's network on the implementation's init_params({wide}), inputs "
                 f"{[x.tolist() for x in inputs]}",
            observed=f"the same output for all three (largest difference {spread:.3g}; a zero "
                     "layer-norm gain or zero weights make the output ignore the input)",
            expected="outputs that depend on the input (random starting weights)")

    # Every layer has arrays of its own: a stack built as [layer] * n (one layer's arrays n times)
    # holds the numbers of one layer where the tally counts n. Constant arrays (a zero-initialised
    # projection, unit gains) are equal in any two layers and say nothing.
    for stack in ("layers", "blocks", "encoder", "decoder"):
        layers = own.get(stack)
        if not isinstance(layers, list):
            continue
        arrays = [_arrays(layer, f"params[{stack!r}][{i}]") for i, layer in enumerate(layers)]
        for j in range(len(layers)):
            for i in range(j):
                same = len(arrays[i]) == len(arrays[j]) and all(
                    ka == kb and np.shape(a) == np.shape(b) and np.array_equal(a, b)
                    for (_, ka, a), (_, kb, b) in zip(arrays[i], arrays[j], strict=True))
                drawn = [key for _, key, a in arrays[j] if not _constant(a)]
                ck.that(not (same and drawn),
                        what=f"init_params({config})[{stack!r}][{j}] vs [{stack!r}][{i}]",
                        observed=f"the same values in every array ({', '.join(drawn)} included): "
                                 "one layer's parameters used twice",
                        expected="each layer its own randomly drawn weights")


def _check_own_tally(ck: Check, config: Any, own: dict, numbers: dict[str, int]) -> None:
    """The implementation's init_params(config) against the tally of the oracle's layout."""
    own_numbers = dict.fromkeys(_FIELDS, 0)
    for _, key, array in _arrays(own):
        own_numbers[_FIELD_OF[key]] += int(array.size)
    ck.equal(sum(own_numbers.values()), sum(numbers.values()),
             what=f"numbers in the implementation's init_params({config}) vs the count of its "
                  "layout (biases and norms counted)")
    for name in _FIELDS:
        ck.equal(own_numbers[name], numbers[name],
                 what=f"numbers in the implementation's init_params(config) counted as {name}")


informative(
    "EMB-ANALOGY",
    "In trained embeddings, directions carry meaning: king - man + woman lands near queen, and "
    "the plural direction cats - cat has a positive dot product with plural nouns.",
    source=Source(NEURAL_NETWORKS, "5. A Basic Idea of transformers, b.2 Embedding Matrix",
                  paper=None),
    topic="embeddings",
    reason="A property of trained word embeddings (GPT-3's), not of the embedding operation; "
           "nnspec ships no trained embedding matrix to test it on.",
)
