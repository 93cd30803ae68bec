"""The components of the PyTorch reference: the NumPy oracle's equations, written in torch.

Same names, same signatures, same parameter layout as
:mod:`nnspec.reference.numpy_ref.components` (see ``reference/PARAMETERS.md``), but the tensors may
live on any device and have any floating dtype (float64, float32, float16, bfloat16). The math is
written out here rather than delegated to ``torch.nn.functional.softmax``/``layer_norm``/
``scaled_dot_product_attention`` or ``nn.MultiheadAttention``, so that those builtins remain an
independent third-party check of both references (``tests/test_torch_builtins.py``).

Low precision: reductions that can overflow or lose everything in float16/bfloat16 (the softmax
sum, the layer/batch-norm variance) are accumulated in float32 and cast back, as PyTorch's own
kernels do. Creation functions (``positional_encoding``, ``causal_mask``) take keyword-only
``device=None, dtype=None`` and default to torch's default device (the CPU unless
``torch.set_default_device`` moved it) and float64. Everything else follows its tensor arguments'
device; only a plain list or NumPy array, which has none, goes to the default device.

Each docstring gives the equation and the document section; the NumPy module has the longer
citations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

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

Tensor = torch.Tensor
Params = Mapping[str, Any]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _t(x: Any) -> Tensor:
    """Tensors pass through untouched (device and dtype kept); anything else becomes float64."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(x, dtype=torch.float64)


def _acc(x: Tensor) -> Tensor:
    """x in its accumulation dtype: float32 for float16/bfloat16, itself otherwise."""
    return x.float() if x.dtype in _LOW_PRECISION else x


def _bool_mask(mask: Any, like: Tensor) -> Tensor:
    """Masks are boolean with True = may attend; a float (additive) mask is refused, not guessed."""
    mask = torch.as_tensor(mask, device=like.device)
    if mask.dtype != torch.bool:
        raise TypeError(
            f"masks are boolean with True = may attend, got dtype {mask.dtype}; "
            "convert an additive mask with `mask == 0`"
        )
    return mask


# --------------------------------------------------------------------------------------------
# Activations and their derivatives
# --------------------------------------------------------------------------------------------


def sigmoid(z: Any) -> Tensor:
    """sigma(z) = 1 / (1 + e^-z). Neural Networks (notes on 3Blue1Brown), 1e."""
    return torch.sigmoid(_t(z))


def sigmoid_prime(z: Any) -> Tensor:
    """sigma'(z) = sigma(z) (1 - sigma(z)). Neural Networks (notes on 3Blue1Brown), 4."""
    s = torch.sigmoid(_t(z))
    return s * (1 - s)


def relu(z: Any) -> Tensor:
    """ReLU(z) = max(0, z). Neural Networks (notes on 3Blue1Brown), 1e."""
    return torch.relu(_t(z))


def relu_prime(z: Any) -> Tensor:
    """ReLU'(z) = [z > 0] (0 at z = 0, as autograd)."""
    z = _t(z)
    return (z > 0).to(z.dtype)


def tanh(z: Any) -> Tensor:
    """tanh(z). Deep Learning (notes on 3Blue1Brown, chapters 1-6), Chapter 1."""
    return torch.tanh(_t(z))


def tanh_prime(z: Any) -> Tensor:
    """tanh'(z) = 1 - tanh(z)^2."""
    t = torch.tanh(_t(z))
    return 1 - t * t


def _check_approximate(approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu(z: Any, approximate: str = "none") -> Tensor:
    """GELU, the activation of GPT's MLP blocks (Neural Networks (notes on 3Blue1Brown), 6f).

        approximate="none":  GELU(z) = z/2 (1 + erf(z / sqrt 2))
        approximate="tanh":  GELU(z) ~ z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
    """
    _check_approximate(approximate)
    z = _t(z)
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3)
        return 0.5 * z * (1 + torch.tanh(u))
    return 0.5 * z * (1 + torch.erf(z / math.sqrt(2.0)))


def gelu_prime(z: Any, approximate: str = "none") -> Tensor:
    """Derivative of :func:`gelu`.

        approximate="none":  GELU'(z) = Phi(z) + z phi(z)
        approximate="tanh":  (1 + t)/2 + z/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 z^2),
                             t = tanh(sqrt(2/pi)(z + 0.044715 z^3))
    """
    _check_approximate(approximate)
    z = _t(z)
    if approximate == "tanh":
        t = torch.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3))
        du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * z**2)
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _identity(z: Any) -> Tensor:
    return _t(z)


def _gelu_tanh(z: Any) -> Tensor:
    return gelu(z, approximate="tanh")


_ACTIVATIONS: dict[str | None, Callable[[Any], Tensor]] = {
    None: _identity,
    "sigmoid": sigmoid,
    "relu": relu,
    "tanh": tanh,
    "gelu": gelu,
    "gelu_tanh": _gelu_tanh,
}


def activation(name: str | None) -> Callable[[Any], Tensor]:
    """The activation a config names ("sigmoid", "relu", "tanh", "gelu", "gelu_tanh", None)."""
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


def softmax(x: Any, axis: int = -1, temperature: float = 1.0) -> Tensor:
    """Softmax with temperature. Deep Learning (notes on 3Blue1Brown, chapters 1-6), Chapter 5.

        softmax(x / T)_j = e^(x_j/T - m) / sum_k e^(x_k/T - m),  m = max_k x_k/T,  T > 0

    An all -inf slice (a fully masked row) gives zeros, not NaN, in every dtype.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    x = _t(x)
    z = _acc(x) / temperature
    m = torch.amax(z, dim=axis, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # all -inf: exp(-inf - 0) = 0
    e = torch.exp(z - m)
    total = torch.sum(e, dim=axis, keepdim=True)
    out = e / torch.where(total > 0, total, torch.ones_like(total))
    return out.to(x.dtype)


def _linear(x: Tensor, W: Any, b: Any | None) -> Tensor:
    """x W^T + b for a batch of rows; b None = no bias."""
    y = x @ _t(W).T
    return y if b is None else y + _t(b)


def dense(a: Any, W: Any, b: Any | None, activation: str | None = "sigmoid") -> Tensor:
    """a' = sigma(W a + b); rows: a @ W^T + b. Neural Networks (notes on 3Blue1Brown), 1c-1e."""
    return _activation_fn(activation)(_linear(_t(a), W, b))


def squared_error_cost(a: Any, y: Any) -> Tensor:
    """C = sum_j (a_j - y_j)^2 over the last axis. Neural Networks (notes on 3Blue1Brown), 2a."""
    d = _t(a) - _t(y)
    return torch.sum(d * d, dim=-1)


def embed(token_ids: Any, W_E: Any) -> Tensor:
    """embed(t) = W_E[:, t], W_E (d_model, n_vocab). 3Blue1Brown video, "Tokenization and Vector
    Embeddings"."""
    W_E = _t(W_E)
    ids = torch.as_tensor(token_ids, device=W_E.device)
    n_vocab = W_E.shape[1]
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"token ids must be integers, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n_vocab):
        raise IndexError(
            f"token ids must lie in [0, {n_vocab}), got {int(ids.min())}..{int(ids.max())}"
        )
    return W_E.T[ids.long()]  # (..., d_model)


def unembed(h: Any, W_U: Any, b_U: Any | None = None) -> Tensor:
    """logits = W_U h + b_U, W_U (n_vocab, d_model). 3Blue1Brown video, "Unembedding Matrix"."""
    return _linear(_t(h), W_U, b_U)  # (..., n_vocab)


def positional_encoding(
    n_positions: int,
    d_model: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Sinusoidal positions, interleaved. Transformer lecture notes (handwritten), "Positional
    Encoding" (Vaswani et al. 2017, §3.5).

        PE[pos, 2i] = sin(pos / 10000^(2i/d_model)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))

    In float64 for float64. For float32 and narrower, the angles are formed in float32, as the
    PyTorch tutorial's table and a model's float32 buffer form them (then rounded once to
    ``dtype``): the tolerance policy allows an angle float32's rounding (README, *Tolerances*), and
    torch_ref is the same-precision baseline, so its table carries that rounding too. Where the
    angle is large (position 1500: about 1e-4 rad) a table rounded once from float64 made honest
    float32 code look seven times worse than the baseline (NET-LONG, ninth hunt). Positions and
    2i are exact in float32 (below 2^24); a narrower format would collide above 256 or 2048.
    """
    if n_positions < 0 or d_model < 1:
        raise ValueError(f"need n_positions >= 0 and d_model >= 1, got {n_positions}, {d_model}")
    f64 = torch.float64
    work = f64 if dtype in (None, f64) else torch.float32
    pos = torch.arange(n_positions, device=device, dtype=work)[:, None]  # (n_positions, 1)
    col = torch.arange(d_model, device=device)  # (d_model,)
    two_i = (col - col % 2).to(work)  # 2i for columns 2i and 2i+1
    angle = pos / 10000.0 ** (two_i / d_model)  # (n_positions, d_model)
    pe = torch.where(col % 2 == 0, torch.sin(angle), torch.cos(angle))
    return pe.to(dtype or f64)


def _mean(x: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """The mean refined by one correction pass, mu + mean(x - mu), so that equal values give their
    exact value (see the NumPy oracle's ``_mean``)."""
    mu = torch.mean(x, dim=dim, keepdim=True)
    return mu + torch.mean(x - mu, dim=dim, keepdim=True)


def layer_norm(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Tensor:
    """LN(x) = gamma (x - mu) / sqrt(var + eps) + beta over the last axis, biased var.
    Transformer lecture notes (handwritten), "Layer Norm in Transformers" (Ba et al. 2016)."""
    x = _t(x)
    xa = _acc(x)
    mu = _mean(xa, dim=-1)  # (..., 1)
    var = torch.mean((xa - mu) ** 2, dim=-1, keepdim=True)  # (..., 1)
    normed = ((xa - mu) / torch.sqrt(var + eps)).to(x.dtype)
    return _t(gamma) * normed + _t(beta)


def batch_norm(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Tensor:
    """BN(x)[..., f] = gamma_f (x - mu_f) / sqrt(var_f + eps) + beta_f, statistics over every axis
    but the last, biased var. Transformer lecture notes, "What is Normalization" (Ioffe and
    Szegedy 2015)."""
    x = _t(x)
    xa = _acc(x)
    axes = tuple(range(x.ndim - 1))
    mu = _mean(xa, dim=axes)  # (1, ..., 1, n_features)
    var = torch.mean((xa - mu) ** 2, dim=axes, keepdim=True)
    normed = ((xa - mu) / torch.sqrt(var + eps)).to(x.dtype)
    return _t(gamma) * normed + _t(beta)


# --------------------------------------------------------------------------------------------
# Masks and attention
# --------------------------------------------------------------------------------------------


def causal_mask(
    n_queries: int,
    n_keys: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Causal mask, True = may attend, bottom-right aligned (Transformer lecture notes, masked
    decoder self-attention; Vaswani et al. 2017, §3.2.3).

        query i sits at position n_keys - n_queries + i and may attend to keys j <= that position

    A mask is always boolean: ``dtype`` is accepted for the creation-function signature and must be
    None or ``torch.bool``.
    """
    if dtype not in (None, torch.bool):
        raise ValueError(f"a causal mask is boolean; dtype must be None or torch.bool, got {dtype}")
    i = torch.arange(n_queries, device=device)[:, None]  # (n_q, 1)
    j = torch.arange(n_keys, device=device)[None, :]  # (1, n_k)
    return j <= (n_keys - n_queries) + i  # (n_q, n_k) bool


def padding_mask(token_ids: Any, pad_id: int) -> Tensor:
    """mask[..., 0, j] = token_ids[..., j] != pad_id, shape (..., 1, T). Deep learning recap to
    the Transformer (video summaries), "Input embeddings"."""
    ids = token_ids if isinstance(token_ids, torch.Tensor) else torch.as_tensor(token_ids)
    return (ids != pad_id)[..., None, :]  # on the ids' device


def scaled_dot_product_attention(
    q: Any, k: Any, v: Any, mask: Any | None = None
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention (Transformer lecture notes, "What is d_k"; Vaswani et al. 2017,
    §3.2.1).

        weights = softmax(q k^T / sqrt(d_k)) with masked scores -inf;  output = weights v

    q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v); a fully masked row gives zeros.
    The scores are formed as (q / sqrt(d_k)) k^T, PyTorch's own order: q k^T itself can overflow
    a narrow format where the scaled scores fit (float16 past |q . k| = 65504).
    """
    q, k, v = _t(q), _t(k), _t(v)
    d_k = q.shape[-1]
    scores = (q / math.sqrt(d_k)) @ k.transpose(-1, -2)  # (..., n_q, n_k)
    if mask is not None:
        neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
        scores = torch.where(_bool_mask(mask, scores), scores, neg_inf)
    weights = softmax(scores, axis=-1)  # (..., n_q, n_k)
    return weights @ v, weights  # (..., n_q, d_v), (..., n_q, n_k)


def _split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(..., T, d_model) -> (..., n_heads, T, d_head); head h: features h*d_head:(h+1)*d_head."""
    *lead, T, d_model = x.shape
    x = x.reshape(*lead, T, n_heads, d_model // n_heads)  # (..., T, nh, d_head)
    return x.transpose(-2, -3)  # (..., nh, T, d_head)


def multi_head_attention(
    params: Params, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None
) -> tuple[Tensor, Tensor]:
    """Multi-head attention (Neural Networks (notes on 3Blue1Brown), 6d-6e; Vaswani et al. 2017,
    §3.2.2).

        head_h = Attention(x_q W_q[h]^T + b_q[h], x_kv W_k[h]^T + b_k[h], x_kv W_v[h]^T + b_v[h])
        MHA    = Concat(head_1, ..., head_H) W_o^T + b_o,   W_q[h] = rows h*d_head:(h+1)*d_head

    Returns output (..., n_q, d_model) and weights (..., n_heads, n_q, n_k).
    """
    x_q, x_kv = _t(x_q), _t(x_kv)
    d_model = x_q.shape[-1]
    if n_heads < 1 or d_model % n_heads:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
    q = _split_heads(_linear(x_q, params["W_q"], params.get("b_q")), n_heads)  # (..., nh, n_q, dh)
    k = _split_heads(_linear(x_kv, params["W_k"], params.get("b_k")), n_heads)  # (..., nh, n_k, dh)
    v = _split_heads(_linear(x_kv, params["W_v"], params.get("b_v")), n_heads)  # (..., nh, n_k, dh)
    heads, weights = scaled_dot_product_attention(q, k, v, mask)  # (..., nh, n_q, dh)
    concat = heads.transpose(-2, -3)  # (..., n_q, nh, dh)
    concat = concat.reshape(*concat.shape[:-2], d_model)  # (..., n_q, d_model)
    return _linear(concat, params["W_o"], params.get("b_o")), weights


def feed_forward(params: Params, x: Any, activation: str | None = "relu") -> Tensor:
    """FFN(x) = W_2 act(W_1 x + b_1) + b_2. Deep learning recap to the Transformer (video
    summaries), "Feed-forward layer" (Vaswani et al. 2017, §3.3)."""
    hidden = _activation_fn(activation)(_linear(_t(x), params["W_1"], params.get("b_1")))
    return _linear(hidden, params["W_2"], params.get("b_2"))  # (..., d_model)


def _attend(scores: Tensor, h: Tensor, mask: Any | None) -> tuple[Tensor, Tensor]:
    """weights = softmax over the n encoder states (masked -> -inf), context = sum_j w_j h_j."""
    if mask is not None:
        neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
        scores = torch.where(_bool_mask(mask, scores), scores, neg_inf)
    weights = softmax(scores, axis=-1)  # (..., n)
    context = (weights[..., None, :] @ h)[..., 0, :]  # (..., d_h)
    return context, weights


def additive_attention(
    params: Params, s_prev: Any, h: Any, mask: Any | None = None
) -> tuple[Tensor, Tensor]:
    """Bahdanau attention (Transformer lecture notes (handwritten), "Bahdanau Attention";
    Bahdanau et al. 2015, §3.1).

        e_j = v . tanh(W [s_prev; h_j] + b),  alpha = softmax(e),  context = sum_j alpha_j h_j

    s_prev (..., d_s), h (..., n, d_h), mask (..., n). Returns context (..., d_h), weights (..., n).
    """
    s_prev, h = _t(s_prev), _t(h)
    lead = torch.broadcast_shapes(s_prev.shape[:-1], h.shape[:-2])
    n = h.shape[-2]
    s_rep = s_prev[..., None, :].expand(*lead, n, s_prev.shape[-1])  # (..., n, d_s)
    h_b = h.expand(*lead, *h.shape[-2:])  # (..., n, d_h)
    concat = torch.cat([s_rep, h_b], dim=-1)  # (..., n, d_s + d_h)
    hidden = torch.tanh(_linear(concat, params["W"], params.get("b")))  # (..., n, d_attn)
    scores = hidden @ _t(params["v"])  # (..., n)
    return _attend(scores, h_b, mask)


def dot_attention(s: Any, h: Any, mask: Any | None = None) -> tuple[Tensor, Tensor]:
    """Luong dot attention (Transformer lecture notes (handwritten), "Luong Attention").

        e_j = s . h_j,  alpha = softmax(e),  context = sum_j alpha_j h_j
    """
    s, h = _t(s), _t(h)
    scores = (h @ s[..., :, None])[..., 0]  # (..., n)
    lead = scores.shape[:-1]
    return _attend(scores, h.expand(*lead, *h.shape[-2:]), mask)


# --------------------------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------------------------


def lstm_cell(params: Params, x: Any, h: Any, c: Any) -> tuple[Tensor, Tensor]:
    """One LSTM step, gates i, f, g, o (Transformer lecture notes, "Deep LSTMs"; Hochreiter and
    Schmidhuber 1997).

        [i; f; g; o] = W_ih x + b_ih + W_hh h + b_hh
        c' = sigma(f) c + sigma(i) tanh(g),   h' = sigma(o) tanh(c')
    """
    x, h, c = _t(x), _t(h), _t(c)
    gates = _linear(x, params["W_ih"], params.get("b_ih")) + _linear(
        h, params["W_hh"], params.get("b_hh")
    )  # (..., 4H)
    i, f, g, o = torch.chunk(gates, 4, dim=-1)  # each (..., H)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new


def lstm(
    params: Params, xs: Any, h0: Any | None = None, c0: Any | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One LSTM layer over a sequence: (h_t, c_t) = lstm_cell(x_t, h_{t-1}, c_{t-1}), zeros first.

    xs (..., T, D) -> outputs (..., T, H), and (h_T, c_T) each (..., H).
    """
    xs = _t(xs)
    W_hh = _t(params["W_hh"])
    H = W_hh.shape[1]
    lead = xs.shape[:-2]
    zeros = xs.new_zeros((*lead, H))
    h = zeros if h0 is None else _t(h0)
    c = zeros if c0 is None else _t(c0)
    outputs = []
    for t in range(xs.shape[-2]):
        h, c = lstm_cell(params, xs[..., t, :], h, c)
        outputs.append(h)
    out = torch.stack(outputs, dim=-2) if outputs else xs.new_zeros((*lead, 0, H))  # (..., T, H)
    return out, (h, c)
