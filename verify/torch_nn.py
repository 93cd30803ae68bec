"""PyTorch's own layers (``torch.nn``, ``torch.nn.functional``) as an nnspec implementation.

This is the worked example of an adapter for third-party ``torch.nn`` code, and a check of
PyTorch itself: none of the math below is nnspec's. Each capability converts the NumPy arguments
to tensors, calls the PyTorch built-in that does the job (``F.softmax``, ``F.layer_norm``,
``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``, ``nn.LSTM``,
``nn.TransformerEncoderLayer``, ...) and converts the result back. Derivatives come from autograd.
What PyTorch has no built-in for (the sinusoidal table, causal and padding masks, Bahdanau and
Luong attention, whole networks) is left out, so the clauses that need it are *not applicable*
rather than checked against code written here. Run it with::

    nnspec verify nnspec.verify.torch_nn:float64 nnspec.verify.torch_nn:float32
    nnspec verify nnspec.verify.torch_nn:cuda_bfloat16        # DEVICE_DTYPE, device cpu by default

The translations an adapter has to make are the ones a user's adapter makes too:

- mask polarity: ``F.scaled_dot_product_attention``'s boolean mask means "may attend", like
  nnspec's; ``nn.MultiheadAttention`` and the Transformer layers mean "may NOT attend", so those
  adapters pass ``~mask``;
- layout: nnspec's ``W_E`` is (d_model, n_vocab), ``F.embedding`` wants (n_vocab, d_model);
  ``nn.MultiheadAttention`` stacks W_q, W_k, W_v row-wise in ``in_proj_weight``;
- masks per head: nnspec broadcasts one mask over the heads, ``nn.MultiheadAttention`` wants a
  (batch * heads, n_q, n_k) mask, so the mask is repeated per head.

What the catalogue finds (tests/test_torch_nn.py pins it, at float64 and float32):
``nn.MultiheadAttention`` and the Transformer layers return NaN for a query that may attend to
no key (a fully masked row), where the documents' masking (every score -inf, so every weight
exp(-inf) = 0) gives zero weights. ``F.scaled_dot_product_attention`` gives zeros there.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TorchNN", "decoder_layer_module", "encoder_layer_module"]

_DEVICES = ("cpu", "cuda", "mps")
_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def _identity(z: Tensor) -> Tensor:
    return z


# The activations nnspec names, as PyTorch's built-ins.
ACTIVATIONS: dict[str | None, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "relu": F.relu,
    "tanh": torch.tanh,
    "gelu": F.gelu,  # exact erf GELU: approximate="none"
    "gelu_tanh": partial(F.gelu, approximate="tanh"),
    None: _identity,
}


def _activation(name: str | None) -> Callable[[Tensor], Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {list(ACTIVATIONS)}") from None


def _copy(parameter: Tensor | None, value: Tensor | None) -> None:
    """Load one nnspec array into a module parameter (absent biases stay absent)."""
    if parameter is not None and value is not None:
        parameter.copy_(value)


def _load_attention(module: nn.MultiheadAttention, p: dict[str, Tensor]) -> None:
    # torch stacks W_q, W_k, W_v row-wise in in_proj_weight; its heads split rows in nnspec's order.
    _copy(module.in_proj_weight, torch.cat([p["W_q"], p["W_k"], p["W_v"]]))
    _copy(module.out_proj.weight, p["W_o"])
    if module.in_proj_bias is not None:
        zeros = torch.zeros_like(p["W_q"][:, 0])
        _copy(module.in_proj_bias, torch.cat([p.get(f"b_{n}", zeros) for n in "qkv"]))
        _copy(module.out_proj.bias, p.get("b_o", zeros))


def _load_norm(module: nn.LayerNorm, p: dict[str, Tensor]) -> None:
    _copy(module.weight, p["gamma"])
    _copy(module.bias, p.get("beta"))


def _load_feed_forward(layer: nn.Module, p: dict[str, Tensor]) -> None:
    _copy(layer.linear1.weight, p["W_1"])
    _copy(layer.linear2.weight, p["W_2"])
    _copy(layer.linear1.bias, p.get("b_1"))
    _copy(layer.linear2.bias, p.get("b_2"))


def _layer_options(config: Any, device: Any, dtype: torch.dtype) -> dict[str, Any]:
    """nn.TransformerEncoderLayer/DecoderLayer arguments for an nnspec TransformerConfig."""
    return dict(
        d_model=config.d_model,
        nhead=config.n_heads,
        dim_feedforward=config.d_ff,
        dropout=0.0,
        activation=_activation(config.activation),
        layer_norm_eps=config.layer_norm_eps,
        batch_first=True,
        norm_first=config.norm_placement == "pre",
        bias=config.bias,
        device=device,
        dtype=dtype,
    )


def encoder_layer_module(
    config: Any, params: dict[str, Any], *, device: Any = "cpu", dtype: torch.dtype = torch.float64
) -> nn.TransformerEncoderLayer:
    """``nn.TransformerEncoderLayer`` (eval mode, no dropout) holding an nnspec encoder layer's weights."""
    p = _tensors(params, device, dtype)
    layer = nn.TransformerEncoderLayer(**_layer_options(config, device, dtype)).eval()
    with torch.no_grad():
        _load_attention(layer.self_attn, p["self_attn"])
        _load_norm(layer.norm1, p["norm_1"])
        _load_feed_forward(layer, p["ffn"])
        _load_norm(layer.norm2, p["norm_2"])
    return layer


def decoder_layer_module(
    config: Any, params: dict[str, Any], *, device: Any = "cpu", dtype: torch.dtype = torch.float64
) -> nn.TransformerDecoderLayer:
    """``nn.TransformerDecoderLayer`` (eval mode, no dropout) holding an nnspec decoder layer's weights."""
    p = _tensors(params, device, dtype)
    layer = nn.TransformerDecoderLayer(**_layer_options(config, device, dtype)).eval()
    with torch.no_grad():
        _load_attention(layer.self_attn, p["self_attn"])
        _load_attention(layer.multihead_attn, p["cross_attn"])
        _load_norm(layer.norm1, p["norm_1"])
        _load_norm(layer.norm2, p["norm_2"])
        _load_norm(layer.norm3, p["norm_3"])
        _load_feed_forward(layer, p["ffn"])
    return layer


def _tensors(value: Any, device: Any, dtype: torch.dtype) -> Any:
    """A parameter tree (dicts of arrays) as tensors on ``device`` in ``dtype``."""
    if isinstance(value, dict):
        return {k: _tensors(v, device, dtype) for k, v in value.items()}
    if isinstance(value, (np.ndarray, Tensor)):
        return torch.as_tensor(np.asarray(value, dtype=np.float64)).to(device=device, dtype=dtype)
    return value


def _attn_mask(allowed: Tensor | None, shape: tuple[int, ...]) -> Tensor | None:
    """nnspec's mask (True = may attend), aligned with ``shape`` = (..., n_heads, n_q, n_k), as
    torch's attn_mask: True = may NOT attend, one (n_q, n_k) slice per batch element and head."""
    if allowed is None:
        return None
    return ~allowed.expand(shape).reshape(-1, *shape[-2:])  # (N * n_heads, n_q, n_k)


def _batch_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(torch.broadcast_shapes(*shapes))


class TorchNN:
    """PyTorch's built-ins behind nnspec's NumPy boundary, on one device and dtype.

    Inputs arrive as NumPy arrays (already rounded by the engine to ``nnspec_dtype``); outputs go
    back as float64 NumPy arrays.
    """

    nnspec_conventions: dict[str, Any] = {}  # nnspec's defaults: masks True = may attend, etc.

    def __init__(self, device: str = "cpu", dtype: str = "float64") -> None:
        if device not in _DEVICES:
            raise ValueError(f"TorchNN(device={device!r}): choose one of {_DEVICES}")
        if dtype not in _DTYPES:
            raise ValueError(f"TorchNN(dtype={dtype!r}): choose one of {tuple(_DTYPES)}")
        self.device = torch.device(device)
        self.dtype = _DTYPES[dtype]
        self.nnspec_name = f"torch.nn:{device}:{dtype}"
        self.nnspec_device = device
        self.nnspec_dtype = dtype
        self.__version__ = f"torch {torch.__version__}"
        available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
        self.nnspec_unavailable = "" if available[device] else f"no {device.upper()} device is available"

    # -- the NumPy boundary ------------------------------------------------------------------------

    def _in(self, x: Any) -> Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float64)).to(device=self.device, dtype=self.dtype)

    def _mask(self, mask: Any) -> Tensor | None:
        return None if mask is None else torch.as_tensor(np.asarray(mask, dtype=bool), device=self.device)

    @staticmethod
    def _out(t: Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    def _derivative(self, f: Callable[[Tensor], Tensor], z: Any) -> np.ndarray:
        """f'(z) elementwise, by autograd (f acts elementwise, so the gradient of sum f is f')."""
        z = self._in(z).requires_grad_(True)
        (grad,) = torch.autograd.grad(f(z).sum(), z)
        return self._out(grad)

    # -- activations -------------------------------------------------------------------------------

    def sigmoid(self, z: Any) -> np.ndarray:
        return self._out(torch.sigmoid(self._in(z)))

    def sigmoid_prime(self, z: Any) -> np.ndarray:
        return self._derivative(torch.sigmoid, z)

    def relu(self, z: Any) -> np.ndarray:
        return self._out(F.relu(self._in(z)))

    def relu_prime(self, z: Any) -> np.ndarray:
        return self._derivative(F.relu, z)

    def tanh(self, z: Any) -> np.ndarray:
        return self._out(torch.tanh(self._in(z)))

    def tanh_prime(self, z: Any) -> np.ndarray:
        return self._derivative(torch.tanh, z)

    def gelu(self, z: Any, approximate: str = "none") -> np.ndarray:
        return self._out(F.gelu(self._in(z), approximate=approximate))

    def gelu_prime(self, z: Any, approximate: str = "none") -> np.ndarray:
        return self._derivative(partial(F.gelu, approximate=approximate), z)

    def activation(self, name: str | None) -> Callable[[Any], np.ndarray]:
        fn = _activation(name)
        return lambda z: self._out(fn(self._in(z)))

    # -- layers ------------------------------------------------------------------------------------

    def dense(self, a: Any, W: Any, b: Any | None, activation: str | None = "sigmoid") -> np.ndarray:
        bias = None if b is None else self._in(b)
        return self._out(_activation(activation)(F.linear(self._in(a), self._in(W), bias)))

    def softmax(self, x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
        # F.softmax has no temperature. Dividing float16 logits by a small T overflows to inf
        # (inf - inf = NaN, which SM-TEMP catches), so the division runs in float32 for half types.
        x = self._in(x)
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return self._out(F.softmax(wide / temperature, dim=axis).to(x.dtype))

    def squared_error_cost(self, a: Any, y: Any) -> np.ndarray:
        return self._out(F.mse_loss(self._in(a), self._in(y), reduction="none").sum(-1))

    def embed(self, token_ids: Any, W_E: Any) -> np.ndarray:
        ids = torch.as_tensor(np.asarray(token_ids), device=self.device)
        return self._out(F.embedding(ids, self._in(W_E).T))  # F.embedding rows are tokens

    def unembed(self, h: Any, W_U: Any, b_U: Any | None = None) -> np.ndarray:
        bias = None if b_U is None else self._in(b_U)
        return self._out(F.linear(self._in(h), self._in(W_U), bias))

    def layer_norm(self, x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
        x = self._in(x)
        return self._out(F.layer_norm(x, x.shape[-1:], self._in(gamma), self._in(beta), eps))

    def batch_norm(self, x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> np.ndarray:
        x = self._in(x)
        flat = x.reshape(-1, x.shape[-1])  # (every other axis, n_features): torch's (N, C)
        out = F.batch_norm(flat, None, None, self._in(gamma), self._in(beta), training=True, eps=eps)
        return self._out(out.reshape(x.shape))

    # -- attention ---------------------------------------------------------------------------------

    def scaled_dot_product_attention(
        self, q: Any, k: Any, v: Any, mask: Any | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q, k, v, allowed = self._in(q), self._in(k), self._in(v), self._mask(mask)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (..., n_q, d_v)
        # The weights, from the same built-in: attending over the identity returns them.
        n_k = k.shape[-2]
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        eye = torch.eye(n_k, device=self.device, dtype=self.dtype).expand(*lead, n_k, n_k)
        weights = F.scaled_dot_product_attention(q.expand(*lead, *q.shape[-2:]), k.expand(*lead, *k.shape[-2:]),
                                                 eye, attn_mask=allowed)  # (..., n_q, n_k)
        return self._out(out), self._out(weights)

    def multi_head_attention(
        self, params: dict, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        p = _tensors(params, self.device, self.dtype)
        x_q, x_kv, allowed = self._in(x_q), self._in(x_kv), self._mask(mask)
        d_model, n_q, n_k = x_q.shape[-1], x_q.shape[-2], x_kv.shape[-2]
        # nnspec's mask broadcasts against the heads' scores (..., n_heads, n_q, n_k)
        scores = _batch_shape((*x_q.shape[:-2], n_heads, n_q, n_k), (*x_kv.shape[:-2], n_heads, n_q, n_k),
                              () if allowed is None else allowed.shape)
        lead = scores[:-3]
        module = nn.MultiheadAttention(
            d_model, n_heads, bias="b_q" in p, batch_first=True, device=self.device, dtype=self.dtype
        ).eval()
        with torch.no_grad():
            _load_attention(module, p)
            q = x_q.expand(*lead, n_q, d_model).reshape(-1, n_q, d_model)  # (N, n_q, d_model)
            kv = x_kv.expand(*lead, n_k, d_model).reshape(-1, n_k, d_model)
            out, weights = module(
                q, kv, kv, attn_mask=_attn_mask(allowed, scores), need_weights=True, average_attn_weights=False
            )  # (N, n_q, d_model), (N, n_heads, n_q, n_k)
        return self._out(out.reshape(*lead, n_q, d_model)), self._out(weights.reshape(scores))

    def feed_forward(self, params: dict, x: Any, activation: str | None = "relu") -> np.ndarray:
        p = _tensors(params, self.device, self.dtype)
        hidden = _activation(activation)(F.linear(self._in(x), p["W_1"], p.get("b_1")))
        return self._out(F.linear(hidden, p["W_2"], p.get("b_2")))

    # -- the recurrent encoder-decoder's LSTM ------------------------------------------------------

    def _lstm_module(self, cls: type, p: dict[str, Tensor]) -> nn.Module:
        four_h, d_in = p["W_ih"].shape
        has_bias = "b_ih" in p or "b_hh" in p
        module = cls(d_in, four_h // 4, bias=has_bias, device=self.device, dtype=self.dtype)
        suffix = "_l0" if cls is nn.LSTM else ""
        with torch.no_grad():
            getattr(module, f"weight_ih{suffix}").copy_(p["W_ih"])
            getattr(module, f"weight_hh{suffix}").copy_(p["W_hh"])
            if has_bias:
                zeros = torch.zeros(four_h, device=self.device, dtype=self.dtype)
                getattr(module, f"bias_ih{suffix}").copy_(p.get("b_ih", zeros))
                getattr(module, f"bias_hh{suffix}").copy_(p.get("b_hh", zeros))
        return module

    def lstm_cell(self, params: dict, x: Any, h: Any, c: Any) -> tuple[np.ndarray, np.ndarray]:
        cell = self._lstm_module(nn.LSTMCell, _tensors(params, self.device, self.dtype))
        x, h, c = self._in(x), self._in(h), self._in(c)
        lead = torch.broadcast_shapes(x.shape[:-1], h.shape[:-1], c.shape[:-1])
        with torch.no_grad():
            h_new, c_new = cell(
                x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1]),
                (h.expand(*lead, h.shape[-1]).reshape(-1, h.shape[-1]),
                 c.expand(*lead, c.shape[-1]).reshape(-1, c.shape[-1])),
            )  # (N, H) each
        H = h_new.shape[-1]
        return self._out(h_new.reshape(*lead, H)), self._out(c_new.reshape(*lead, H))

    def lstm(
        self, params: dict, xs: Any, h0: Any | None = None, c0: Any | None = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        p = _tensors(params, self.device, self.dtype)
        layer = self._lstm_module(nn.LSTM, p)
        layer.batch_first = True
        xs = self._in(xs)
        lead, (T, D), H = xs.shape[:-2], xs.shape[-2:], p["W_hh"].shape[1]
        flat = xs.reshape(-1, T, D)  # (N, T, D)
        zeros = torch.zeros(1, flat.shape[0], H, device=self.device, dtype=self.dtype)
        h = zeros if h0 is None else self._in(h0).expand(*lead, H).reshape(1, -1, H)
        c = zeros if c0 is None else self._in(c0).expand(*lead, H).reshape(1, -1, H)
        with torch.no_grad():
            out, (h_T, c_T) = layer(flat, (h, c))  # (N, T, H), (1, N, H) each
        return self._out(out.reshape(*lead, T, H)), (self._out(h_T.reshape(*lead, H)), self._out(c_T.reshape(*lead, H)))

    # -- Transformer layers --------------------------------------------------------------------------

    def encoder_layer(self, params: dict, x: Any, config: Any, mask: Any | None = None) -> np.ndarray:
        layer = encoder_layer_module(config, params, device=self.device, dtype=self.dtype)
        x, allowed = self._in(x), self._mask(mask)
        S, d = x.shape[-2:]
        if allowed is not None:
            allowed = allowed.unsqueeze(-3)  # one mask for every head
        scores = _batch_shape((*x.shape[:-2], config.n_heads, S, S), () if allowed is None else allowed.shape)
        with torch.no_grad():
            out = layer(x.expand(*scores[:-3], S, d).reshape(-1, S, d), src_mask=_attn_mask(allowed, scores))
        return self._out(out.reshape(*scores[:-3], S, d))

    def decoder_layer(
        self, params: dict, y: Any, memory: Any, config: Any,
        self_mask: Any | None = None, cross_mask: Any | None = None,
    ) -> np.ndarray:
        layer = decoder_layer_module(config, params, device=self.device, dtype=self.dtype)
        y, memory = self._in(y), self._in(memory)
        T, S, d, nh = y.shape[-2], memory.shape[-2], y.shape[-1], config.n_heads
        masks = [m if m is None else m.unsqueeze(-3) for m in (self._mask(self_mask), self._mask(cross_mask))]
        lead = _batch_shape(y.shape[:-2], memory.shape[:-2], *(m.shape[:-3] for m in masks if m is not None))
        if self_mask is None:  # nnspec's default, the decoder's causal self-attention: torch's own
            tgt_mask = nn.Transformer.generate_square_subsequent_mask(T, device=self.device, dtype=self.dtype)
        else:
            tgt_mask = _attn_mask(masks[0], (*lead, nh, T, T))
        with torch.no_grad():
            out = layer(
                y.expand(*lead, T, d).reshape(-1, T, d),
                memory.expand(*lead, S, d).reshape(-1, S, d),
                tgt_mask=tgt_mask,
                tgt_is_causal=self_mask is None,
                memory_mask=_attn_mask(masks[1], (*lead, nh, T, S)),
            )
        return self._out(out.reshape(*lead, T, d))


def __getattr__(name: str) -> TorchNN:
    """``float32`` (on the CPU) or ``cuda_bfloat16``: import paths name a device and a dtype."""
    device, _, dtype = name.rpartition("_")
    if dtype in _DTYPES and device in ("", *_DEVICES):
        return TorchNN(device=device or "cpu", dtype=dtype)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; use DTYPE or DEVICE_DTYPE")
