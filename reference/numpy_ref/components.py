"""The components of the NumPy float64 oracle: one short function per equation of the documents.

Every function here is meant to be read next to the document it comes from and checked line by
line, so each one is the equation and nothing else: no caching, no fused kernels, float64 all the
way. The conventions the documents leave open (mask polarity, causal alignment, variance, the
sin/cos layout, gate order) are pinned in ``reference/PARAMETERS.md``; this module follows them and
:mod:`nnspec.reference.torch_ref.components` mirrors it name for name.

Citations use the titles of ``shared/seeds/README.md``: "Neural Networks (notes on 3Blue1Brown)",
"Deep Learning (notes on 3Blue1Brown, chapters 1-6)", "Neural Networks and Transformers
(3Blue1Brown video wjZofJX0v4M)", "Transformer lecture notes (handwritten)" and "Deep learning
recap to the Transformer (video summaries)".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "activation",
    "additive_attention",
    "batch_norm",
    "causal_mask",
    "dense",
    "dot_attention",
    "embed",
    "feed_forward",
    "gelu",
    "gelu_prime",
    "layer_norm",
    "lstm",
    "lstm_cell",
    "multi_head_attention",
    "padding_mask",
    "positional_encoding",
    "relu",
    "relu_prime",
    "scaled_dot_product_attention",
    "sigmoid",
    "sigmoid_prime",
    "softmax",
    "squared_error_cost",
    "tanh",
    "tanh_prime",
    "unembed",
]

Array = np.ndarray
Params = Mapping[str, Any]

# Coefficients of the tanh approximation of GELU (Hendrycks and Gimpel 2016).
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _f64(x: Any) -> Array:
    """The oracle computes in float64 whatever it is given (ints, lists, float32 arrays)."""
    return np.asarray(x, dtype=np.float64)


def _bool_mask(mask: Any) -> Array:
    """Masks are boolean with True = may attend; a float (additive) mask is refused, not guessed."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(
            f"masks are boolean with True = may attend, got dtype {mask.dtype}; "
            "convert an additive mask with `mask == 0`"
        )
    return mask


# --------------------------------------------------------------------------------------------
# Activations ("squishification" functions) and their derivatives
# --------------------------------------------------------------------------------------------


def sigmoid(z: Any) -> Array:
    """Logistic sigmoid, the squashing function of the digit network.

    Neural Networks (notes on 3Blue1Brown), 1e "Squishification function"; Deep Learning (notes on
    3Blue1Brown, chapters 1-6), Chapter 1.

        sigma(z) = 1 / (1 + e^-z)

    Written with ``e^-|z|`` so that no branch overflows: for z < 0 it is the same fraction
    multiplied through by e^z.
    """
    z = _f64(z)
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z: Any) -> Array:
    """Derivative of the sigmoid, the sigma'(z) factor of the backpropagation chain rule.

    Neural Networks (notes on 3Blue1Brown), 4 "Calculus behind Backpropagation"; Deep Learning
    (notes on 3Blue1Brown, chapters 1-6), Chapter 4 (Rumelhart et al. 1986).

        sigma'(z) = sigma(z) (1 - sigma(z))
    """
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(z: Any) -> Array:
    """Rectified linear unit. Neural Networks (notes on 3Blue1Brown), 1e; Deep Learning, Chapter 1.

        ReLU(z) = max(0, z)
    """
    return np.maximum(_f64(z), 0.0)


def relu_prime(z: Any) -> Array:
    """Derivative of ReLU: 1 where z > 0, else 0 (the value 0 at z = 0, as torch's autograd).

        ReLU'(z) = [z > 0]
    """
    return (_f64(z) > 0).astype(np.float64)


def tanh(z: Any) -> Array:
    """Hyperbolic tangent. Deep Learning (notes on 3Blue1Brown, chapters 1-6), Chapter 1.

        tanh(z) = (e^z - e^-z) / (e^z + e^-z)
    """
    return np.tanh(_f64(z))


def tanh_prime(z: Any) -> Array:
    """Derivative of tanh.

        tanh'(z) = 1 - tanh(z)^2
    """
    t = np.tanh(_f64(z))
    return 1.0 - t * t


def _check_approximate(approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu(z: Any, approximate: str = "none") -> Array:
    """Gaussian error linear unit, the activation of GPT's MLP blocks.

    Neural Networks (notes on 3Blue1Brown), 6f "Multilayer Perceptron" (Brown et al. 2020 use GELU;
    Hendrycks and Gimpel 2016 define it).

        approximate="none":  GELU(z) = z Phi(z) = z/2 (1 + erf(z / sqrt 2))
        approximate="tanh":  GELU(z) ~ z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
    """
    _check_approximate(approximate)
    z = _f64(z)
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3)
        return 0.5 * z * (1.0 + np.tanh(u))
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))


def gelu_prime(z: Any, approximate: str = "none") -> Array:
    """Derivative of :func:`gelu` (the same ``approximate`` variant).

        approximate="none":  GELU'(z) = Phi(z) + z phi(z),  phi(z) = e^(-z^2/2) / sqrt(2 pi)
        approximate="tanh":  with u = sqrt(2/pi)(z + 0.044715 z^3), t = tanh(u):
                             GELU'(z) = (1 + t)/2 + z/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 z^2)
    """
    _check_approximate(approximate)
    z = _f64(z)
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3)
        t = np.tanh(u)
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * z**2)
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _identity(z: Any) -> Array:
    return _f64(z)


def _gelu_tanh(z: Any) -> Array:
    return gelu(z, approximate="tanh")


_ACTIVATIONS: dict[str | None, Callable[[Any], Array]] = {
    None: _identity,
    "sigmoid": sigmoid,
    "relu": relu,
    "tanh": tanh,
    "gelu": gelu,
    "gelu_tanh": _gelu_tanh,
}


def activation(name: str | None) -> Callable[[Any], Array]:
    """The activation function a config names: "sigmoid", "relu", "tanh", "gelu", "gelu_tanh", or
    None for the identity (a linear layer). Unknown names raise, so a typo never becomes linear."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(repr(k) for k in _ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; known: {known}") from None


# `dense` and `feed_forward` take a parameter called `activation`, which shadows the function.
_activation_fn = activation


# --------------------------------------------------------------------------------------------
# Softmax, layers, cost
# --------------------------------------------------------------------------------------------


def softmax(x: Any, axis: int = -1, temperature: float = 1.0) -> Array:
    """Softmax with temperature: turns logits into a probability distribution.

    Deep Learning (notes on 3Blue1Brown, chapters 1-6), Chapter 5 "Softmax with Temperature";
    Neural Networks and Transformers (3Blue1Brown video wjZofJX0v4M), "Softmax Function".

        softmax(x / T)_j = e^(x_j / T) / sum_k e^(x_k / T),   T > 0

    Computed as e^(x_j/T - m) / sum_k e^(x_k/T - m) with m = max_k x_k/T, which is the same number
    and never overflows. A slice that is entirely -inf (a fully masked attention row) has no
    distribution; it returns all zeros rather than NaN (``reference/PARAMETERS.md``).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    z = _f64(x) / temperature
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # an all -inf slice: exp(-inf - 0) = 0 below
    e = np.exp(z - m)
    total = np.sum(e, axis=axis, keepdims=True)
    return e / np.where(total > 0, total, 1.0)  # total == 0 only when every e is 0


def dense(a: Any, W: Any, b: Any | None, activation: str | None = "sigmoid") -> Array:
    """One fully connected layer: the next layer's activations from this layer's.

    Neural Networks (notes on 3Blue1Brown), 1c-1e "Weights", "Bias"; Deep Learning (notes on
    3Blue1Brown, chapters 1-6), Chapter 1.

        a' = sigma(W a + b)     W (n_out, n_in); a batch of rows computes a @ W^T + b

    ``b=None`` means the layer has no bias.
    """
    z = _f64(a) @ _f64(W).T  # (..., n_out)
    if b is not None:
        z = z + _f64(b)
    return _activation_fn(activation)(z)


def squared_error_cost(a: Any, y: Any) -> Array:
    """The cost of one training example: squared differences summed over the output neurons.

    Neural Networks (notes on 3Blue1Brown), 2a "Cost Function". The data set's cost is the mean of
    this over examples (the factor that separates it from Deep Learning's "mean squared error" is
    recorded in ``reference/PARAMETERS.md``).

        C = sum_j (a_j - y_j)^2          shape a.shape[:-1]
    """
    d = _f64(a) - _f64(y)
    return np.sum(d * d, axis=-1)


def embed(token_ids: Any, W_E: Any) -> Array:
    """Token embedding: column t of the embedding matrix.

    Neural Networks and Transformers (3Blue1Brown video wjZofJX0v4M), "Tokenization and Vector
    Embeddings"; Neural Networks (notes on 3Blue1Brown), 5b.2 "Embedding Matrix".

        embed(t) = W_E onehot(t) = W_E[:, t]      W_E (d_model, n_vocab)
    """
    ids = np.asarray(token_ids)
    W_E = _f64(W_E)
    n_vocab = W_E.shape[1]
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= n_vocab):
        raise IndexError(f"token ids must lie in [0, {n_vocab}), got {ids.min()}..{ids.max()}")
    return W_E.T[ids]  # (..., d_model)


def unembed(h: Any, W_U: Any, b_U: Any | None = None) -> Array:
    """Unembedding: one logit per vocabulary token from the last hidden vector.

    Neural Networks and Transformers (3Blue1Brown video wjZofJX0v4M), "Unembedding Matrix"; Neural
    Networks (notes on 3Blue1Brown), 5b.4 "Output Side".

        logits = W_U h + b_U        W_U (n_vocab, d_model)
    """
    logits = _f64(h) @ _f64(W_U).T  # (..., n_vocab)
    if b_U is not None:
        logits = logits + _f64(b_U)
    return logits


def positional_encoding(n_positions: int, d_model: int) -> Array:
    """Sinusoidal positional encoding, sine and cosine interleaved.

    Transformer lecture notes (handwritten), "Positional Encoding" (Vaswani et al. 2017, §3.5).

        PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
        PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

    For odd d_model the last column (index d_model - 1, even) is a sine.
    """
    if n_positions < 0 or d_model < 1:
        raise ValueError(f"need n_positions >= 0 and d_model >= 1, got {n_positions}, {d_model}")
    pos = np.arange(n_positions, dtype=np.float64)[:, None]  # (n_positions, 1)
    col = np.arange(d_model)  # (d_model,)
    two_i = (col - col % 2).astype(np.float64)  # 2i for both column 2i and column 2i+1
    angle = pos / 10000.0 ** (two_i / d_model)  # (n_positions, d_model)
    return np.where(col % 2 == 0, np.sin(angle), np.cos(angle))


def _mean(x: Array, axis: int | tuple[int, ...]) -> Array:
    """The mean, refined by one correction pass: mu + mean(x - mu).

    A rounded mean of d equal values can miss them by an ulp; the normalisations then divide that
    residue by sqrt(eps) and a constant feature comes out as +-1e-12 instead of exactly 0. The
    correction recovers the exact value there and costs nothing elsewhere.
    """
    mu = np.mean(x, axis=axis, keepdims=True)
    return mu + np.mean(x - mu, axis=axis, keepdims=True)


def layer_norm(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Array:
    """Layer normalisation over the features (last axis) of each position.

    Transformer lecture notes (handwritten), "Layer Norm in Transformers" (Ba et al. 2016).

        mu = mean_j x_j,  var = mean_j (x_j - mu)^2   (biased)
        LN(x) = gamma * (x - mu) / sqrt(var + eps) + beta
    """
    x = _f64(x)
    mu = _mean(x, axis=-1)  # (..., 1)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)  # (..., 1)
    return _f64(gamma) * (x - mu) / np.sqrt(var + eps) + _f64(beta)


def batch_norm(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Array:
    """Batch normalisation (training statistics): each feature over every other axis.

    Transformer lecture notes (handwritten), "What is Normalization" (Ioffe and Szegedy 2015).

        mu_f = mean over the batch of x[..., f],  var_f = mean (x[..., f] - mu_f)^2   (biased)
        BN(x)[..., f] = gamma_f (x[..., f] - mu_f) / sqrt(var_f + eps) + beta_f
    """
    x = _f64(x)
    axes = tuple(range(x.ndim - 1))
    mu = _mean(x, axis=axes)  # (1, ..., 1, n_features)
    var = np.mean((x - mu) ** 2, axis=axes, keepdims=True)
    return _f64(gamma) * (x - mu) / np.sqrt(var + eps) + _f64(beta)


# --------------------------------------------------------------------------------------------
# Masks and attention
# --------------------------------------------------------------------------------------------


def causal_mask(n_queries: int, n_keys: int) -> Array:
    """Causal (look-ahead) mask, True = may attend, aligned bottom-right.

    Transformer lecture notes (handwritten), "Transformer as an Autoregressive Model" and masked
    decoder self-attention; Deep learning recap to the Transformer (video summaries), "Masked
    multihead attention" (Vaswani et al. 2017, §3.2.3).

        query i sits at position n_keys - n_queries + i and may attend to keys j <= that position
    """
    i = np.arange(n_queries)[:, None]  # (n_q, 1)
    j = np.arange(n_keys)[None, :]  # (1, n_k)
    return j <= (n_keys - n_queries) + i  # (n_q, n_k) bool


def padding_mask(token_ids: Any, pad_id: int) -> Array:
    """Key padding mask: True for real tokens, False for padding, shaped to broadcast over queries.

    Deep learning recap to the Transformer (video summaries), "Input embeddings" (padding).

        mask[..., 0, j] = (token_ids[..., j] != pad_id)        (..., 1, T)
    """
    return (np.asarray(token_ids) != pad_id)[..., None, :]


def scaled_dot_product_attention(
    q: Any, k: Any, v: Any, mask: Any | None = None
) -> tuple[Array, Array]:
    """Scaled dot-product attention.

    Transformer lecture notes (handwritten), "What is d_k" (the Var(cX) = c^2 Var(X) argument for
    the sqrt(d_k) scaling); Neural Networks (notes on 3Blue1Brown), 6b "Single Head of Attention"
    (masking before the softmax); Vaswani et al. 2017, §3.2.1.

        weights = softmax(q k^T / sqrt(d_k))   with masked scores set to -inf first
        output  = weights v

    q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v), mask broadcastable to (..., n_q, n_k).
    A fully masked query row gets zero weights and a zero output.
    """
    q, k, v = _f64(q), _f64(k), _f64(v)
    d_k = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(d_k)  # (..., n_q, n_k)
    if mask is not None:
        scores = np.where(_bool_mask(mask), scores, -np.inf)
    weights = softmax(scores, axis=-1)  # (..., n_q, n_k)
    return weights @ v, weights  # (..., n_q, d_v), (..., n_q, n_k)


def _linear(x: Array, W: Any, b: Any | None) -> Array:
    """x W^T + b for a batch of rows; b None = no bias."""
    y = x @ _f64(W).T
    return y if b is None else y + _f64(b)


def _split_heads(x: Array, n_heads: int) -> Array:
    """(..., T, d_model) -> (..., n_heads, T, d_head); head h: features h*d_head:(h+1)*d_head."""
    *lead, T, d_model = x.shape
    x = x.reshape(*lead, T, n_heads, d_model // n_heads)  # (..., T, nh, d_head)
    return np.swapaxes(x, -2, -3)  # (..., nh, T, d_head)


def multi_head_attention(
    params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None
) -> tuple[Array, Array]:
    """Multi-head attention: n_heads scaled dot-product attentions side by side, then W_o.

    Neural Networks (notes on 3Blue1Brown), 6d "Multi-Head Attention" and 6e "Output Matrix"; Deep
    learning recap to the Transformer (video summaries), "Multi-headed attention" (Vaswani et al.
    2017, §3.2.2).

        head_h = Attention(x_q W_q[h]^T + b_q[h], x_kv W_k[h]^T + b_k[h], x_kv W_v[h]^T + b_v[h])
        MHA    = Concat(head_1, ..., head_H) W_o^T + b_o
        W_q[h] = rows h*d_head:(h+1)*d_head of W_q (same for W_k, W_v); d_head = d_model / n_heads

    x_q (..., n_q, d_model), x_kv (..., n_k, d_model); self-attention passes x_kv = x_q. Biases are
    optional (absent keys). Returns output (..., n_q, d_model) and weights (..., n_heads, n_q, n_k).
    """
    x_q, x_kv = _f64(x_q), _f64(x_kv)
    d_model = x_q.shape[-1]
    if n_heads < 1 or d_model % n_heads:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
    q = _split_heads(_linear(x_q, params["W_q"], params.get("b_q")), n_heads)  # (..., nh, n_q, dh)
    k = _split_heads(_linear(x_kv, params["W_k"], params.get("b_k")), n_heads)  # (..., nh, n_k, dh)
    v = _split_heads(_linear(x_kv, params["W_v"], params.get("b_v")), n_heads)  # (..., nh, n_k, dh)
    heads, weights = scaled_dot_product_attention(q, k, v, mask)  # (..., nh, n_q, dh)
    concat = np.swapaxes(heads, -2, -3)  # (..., n_q, nh, dh)
    concat = concat.reshape(*concat.shape[:-2], d_model)  # (..., n_q, d_model)
    return _linear(concat, params["W_o"], params.get("b_o")), weights


def feed_forward(params: Params, x: Any, activation: str | None = "relu") -> Array:
    """Position-wise feed-forward network: two linear maps with a nonlinearity between them.

    Deep learning recap to the Transformer (video summaries), "Feed-forward layer"; Neural Networks
    (notes on 3Blue1Brown), 6f "Multilayer Perceptron" (Vaswani et al. 2017, §3.3).

        FFN(x) = W_2 act(W_1 x + b_1) + b_2      W_1 (d_ff, d_model), W_2 (d_model, d_ff)
    """
    hidden = _activation_fn(activation)(_linear(_f64(x), params["W_1"], params.get("b_1")))
    return _linear(hidden, params["W_2"], params.get("b_2"))  # (..., d_model)


def _attend(scores: Array, h: Array, mask: Any | None) -> tuple[Array, Array]:
    """weights = softmax over the n encoder states (masked -> -inf), context = sum_j w_j h_j."""
    if mask is not None:
        scores = np.where(_bool_mask(mask), scores, -np.inf)
    weights = softmax(scores, axis=-1)  # (..., n)
    context = (weights[..., None, :] @ h)[..., 0, :]  # (..., d_h)
    return context, weights


def additive_attention(
    params: Params, s_prev: Any, h: Any, mask: Any | None = None
) -> tuple[Array, Array]:
    """Bahdanau (additive) attention: a small feed-forward net scores each encoder state.

    Transformer lecture notes (handwritten), "Bahdanau Attention" and "Luong Attention" (Bahdanau et
    al. 2015, §3.1).

        e_j     = v . tanh(W [s_prev; h_j] + b)        W (d_attn, d_s + d_h)
        alpha   = softmax(e)
        context = sum_j alpha_j h_j

    s_prev (..., d_s) is the previous decoder state, h (..., n, d_h) the encoder states, mask
    (..., n) with True = may attend. Returns context (..., d_h) and weights (..., n).
    """
    s_prev, h = _f64(s_prev), _f64(h)
    lead = np.broadcast_shapes(s_prev.shape[:-1], h.shape[:-2])
    n = h.shape[-2]
    s_rep = np.broadcast_to(s_prev[..., None, :], (*lead, n, s_prev.shape[-1]))  # (..., n, d_s)
    h_b = np.broadcast_to(h, (*lead, *h.shape[-2:]))  # (..., n, d_h)
    concat = np.concatenate([s_rep, h_b], axis=-1)  # (..., n, d_s + d_h)
    hidden = np.tanh(_linear(concat, params["W"], params.get("b")))  # (..., n, d_attn)
    scores = hidden @ _f64(params["v"])  # (..., n)
    return _attend(scores, h_b, mask)


def dot_attention(s: Any, h: Any, mask: Any | None = None) -> tuple[Array, Array]:
    """Luong (dot-product) attention: the score is the dot product of the decoder state and h_j.

    Transformer lecture notes (handwritten), "Luong Attention" (Luong et al. 2015, §3.1, "dot").

        e_j = s . h_j,   alpha = softmax(e),   context = sum_j alpha_j h_j

    s (..., d), h (..., n, d), mask (..., n). Returns context (..., d) and weights (..., n).
    """
    s, h = _f64(s), _f64(h)
    scores = (h @ s[..., :, None])[..., 0]  # (..., n)
    lead = scores.shape[:-1]
    return _attend(scores, np.broadcast_to(h, (*lead, *h.shape[-2:])), mask)


# --------------------------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------------------------


def lstm_cell(params: Params, x: Any, h: Any, c: Any) -> tuple[Array, Array]:
    """One LSTM step, gates stacked i, f, g, o as in torch.nn.LSTM.

    Transformer lecture notes (handwritten), "Improvement 2 - Deep LSTMs" and "The Sutskever
    Architecture" (Hochreiter and Schmidhuber 1997; Sutskever et al. 2014).

        [i; f; g; o] = W_ih x + b_ih + W_hh h + b_hh        (4H rows)
        c' = sigma(f) * c + sigma(i) * tanh(g)
        h' = sigma(o) * tanh(c')

    x (..., D), h and c (..., H). Biases are optional (absent keys).
    """
    x, h, c = _f64(x), _f64(h), _f64(c)
    gates = _linear(x, params["W_ih"], params.get("b_ih")) + _linear(
        h, params["W_hh"], params.get("b_hh")
    )  # (..., 4H)
    i, f, g, o = np.split(gates, 4, axis=-1)  # each (..., H)
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h_new = sigmoid(o) * np.tanh(c_new)
    return h_new, c_new


def lstm(
    params: Params, xs: Any, h0: Any | None = None, c0: Any | None = None
) -> tuple[Array, tuple[Array, Array]]:
    """One LSTM layer run over a sequence: :func:`lstm_cell` applied step by step.

    Transformer lecture notes (handwritten), "The Sutskever Architecture" (Sutskever et al. 2014).

        (h_t, c_t) = lstm_cell(x_t, h_{t-1}, c_{t-1}),   h_0 = c_0 = 0 unless given

    xs (..., T, D) -> outputs (..., T, H) (every h_t), and the final (h_T, c_T), each (..., H).
    """
    xs = _f64(xs)
    H = _f64(params["W_hh"]).shape[1]
    lead = xs.shape[:-2]
    h = np.zeros((*lead, H)) if h0 is None else _f64(h0)
    c = np.zeros((*lead, H)) if c0 is None else _f64(c0)
    outputs = []
    for t in range(xs.shape[-2]):
        h, c = lstm_cell(params, xs[..., t, :], h, c)
        outputs.append(h)
    out = np.stack(outputs, axis=-2) if outputs else np.zeros((*lead, 0, H))  # (..., T, H)
    return out, (h, c)
