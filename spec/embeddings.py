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
from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp

from .clause import BROWN_2020, NEURAL_NETWORKS, VIDEO_NOTES, Check, Source, clause, informative


def _floats(bound: float) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=32)


@clause(
    "EMB-LOOKUP",
    "The embedding of token t MUST be column t of the embedding matrix, W_E onehot(t), for any "
    "batch shape of token ids.",
    source=Source(VIDEO_NOTES, "High-Level Data Flow in a Transformer, Tokenization and Vector "
                  "Embeddings", paper=None),
    needs=("embed",),
    topic="embeddings",
)
def embedding_lookup(impl: Any, ck: Check) -> None:
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
    "weights in all, 27,938 matrices, and an attention pattern of context^2 = 4,194,304 entries.",
    source=Source(VIDEO_NOTES, "Deep Learning Foundations of Transformers, Tunable Parameters "
                  "(Weights)", paper=BROWN_2020),
    needs=("parameter_count",),
    topic="embeddings",
    hypothesis=False,
    note="The video says 'about 617 million', '175 billion' and 'nearly 28,000 matrices'; the "
         "exact figures are its on-screen tally: per layer one Q, K and V matrix per head, one "
         "output matrix and two MLP matrices, plus W_E and W_U.",
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
