"""PyTorch's own layers (``torch.nn``, ``torch.nn.functional``) as an nnspec implementation.

This is the worked example of an adapter for third-party ``torch.nn`` code, and a check of
PyTorch itself: none of the math below is nnspec's. Each capability converts the NumPy arguments
to tensors, calls the PyTorch built-in that does the job (``F.softmax``, ``F.layer_norm``,
``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``, ``nn.LSTM``,
``nn.TransformerEncoderLayer``, ...) and converts the result back. Derivatives come from autograd.
The networks are assembled from PyTorch modules the way users assemble them: the MLP from
``nn.Linear`` trained with ``torch.optim.SGD``, the encoder-decoder from
``nn.TransformerEncoderLayer``/``nn.TransformerDecoderLayer``, GPT from encoder layers run with
``nn.Transformer.generate_square_subsequent_mask`` (their sinusoidal table is the one of PyTorch's
own Transformer tutorial), the LSTM encoder-decoder from two multi-layer ``nn.LSTM`` (its Luong or
Bahdanau attention written with tensor ops, as a user's model has it). What PyTorch has no
built-in for as a function (the sinusoidal table, the padding mask, Bahdanau and Luong attention,
the vocabulary, parameter accounting) is left out, so the clauses that need it are
*not applicable* rather than checked against code written here. Run it with::

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

What the catalogue finds (tests/test_torch_nn.py pins it, at float64, float32 and bfloat16):
``nn.MultiheadAttention`` and the Transformer layers return NaN for a query that may attend to
no key (a fully masked row), where the documents' masking (every score -inf, so every weight
exp(-inf) = 0) gives zero weights. ``F.scaled_dot_product_attention`` gives zeros there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from nnspec.reference.config import END_ID, PAD_ID, START_ID  # nnspec's special token ids
from nnspec.reference.torch_ref import to_numpy, to_torch  # nnspec's one NumPy <-> torch copy
from nnspec.verify.implementations import by_device_and_dtype  # import paths name device and dtype
from torch import Tensor, nn

__all__ = ["TorchNN", "decoder_layer_module", "encoder_layer_module", "lstm_module"]

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
    # nnspec's bias=False leaves the biases out; torch's layers then hold zeros in their place
    _copy(layer.linear1.bias, p.get("b_1", torch.zeros_like(p["W_1"][:, 0])))
    _copy(layer.linear2.bias, p.get("b_2", torch.zeros_like(p["W_2"][:, 0])))


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
        # always: nnspec's layer norms keep their shift beta when bias=False turns off the linear
        # biases (reference/PARAMETERS.md); torch's bias=False would drop both
        bias=True,
        device=device,
        dtype=dtype,
    )


def encoder_layer_module(
    config: Any, params: dict[str, Any], *, device: Any = "cpu", dtype: torch.dtype = torch.float64
) -> nn.TransformerEncoderLayer:
    """``nn.TransformerEncoderLayer`` (eval mode, no dropout) holding an nnspec encoder layer's weights
    (NumPy arrays or tensors)."""
    p = to_torch(params, device=device, dtype=dtype)
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
    p = to_torch(params, device=device, dtype=dtype)
    layer = nn.TransformerDecoderLayer(**_layer_options(config, device, dtype)).eval()
    with torch.no_grad():
        _load_attention(layer.self_attn, p["self_attn"])
        _load_attention(layer.multihead_attn, p["cross_attn"])
        _load_norm(layer.norm1, p["norm_1"])
        _load_norm(layer.norm2, p["norm_2"])
        _load_norm(layer.norm3, p["norm_3"])
        _load_feed_forward(layer, p["ffn"])
    return layer


def lstm_module(layers: list[dict[str, Tensor]], *, cell: bool = False) -> nn.Module:
    """``nn.LSTM`` (batch_first, one layer per nnspec layer dict) or, with ``cell``, ``nn.LSTMCell``
    holding nnspec's LSTM weights. The gate order is the same (i, f, g, o); a bias nnspec leaves
    out is a zero bias. ``layers`` hold tensors on the device and dtype the module is made in."""
    W_ih = layers[0]["W_ih"]
    four_h, d_in = W_ih.shape
    kw = dict(bias=True, device=W_ih.device, dtype=W_ih.dtype)
    module = nn.LSTMCell(d_in, four_h // 4, **kw) if cell else nn.LSTM(
        d_in, four_h // 4, num_layers=len(layers), batch_first=True, **kw)
    zeros = torch.zeros(four_h, device=W_ih.device, dtype=W_ih.dtype)
    with torch.no_grad():
        for k, p in enumerate(layers):
            suffix = "" if cell else f"_l{k}"
            getattr(module, f"weight_ih{suffix}").copy_(p["W_ih"])
            getattr(module, f"weight_hh{suffix}").copy_(p["W_hh"])
            getattr(module, f"bias_ih{suffix}").copy_(p.get("b_ih", zeros))
            getattr(module, f"bias_hh{suffix}").copy_(p.get("b_hh", zeros))
    return module


def _attn_mask(allowed: Tensor | None, shape: tuple[int, ...]) -> Tensor | None:
    """nnspec's mask (True = may attend), aligned with ``shape`` = (..., n_heads, n_q, n_k), as
    torch's attn_mask: True = may NOT attend, one (n_q, n_k) slice per batch element and head."""
    if allowed is None:
        return None
    return ~allowed.expand(shape).reshape(-1, *shape[-2:])  # (N * n_heads, n_q, n_k)


def _batch_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(torch.broadcast_shapes(*shapes))


# ------------------------------------------------------------------------------------------------
# Whole networks from torch.nn's Transformer stacks
# ------------------------------------------------------------------------------------------------


def _sinusoids(n_positions: int, d_model: int) -> Tensor:
    """The sinusoidal table as PyTorch's own Transformer tutorial builds it (PyTorch has no
    built-in): sin in the even columns, cos in the odd ones, wavelengths up to 10000 * 2 pi."""
    cpu = dict(dtype=torch.float64, device="cpu")  # the caller moves it to the working device
    position = torch.arange(n_positions, **cpu)[:, None]  # (n, 1)
    div = torch.exp(torch.arange(0, d_model, 2, **cpu) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model, **cpu)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: d_model // 2])
    return table


class _OnDevice:
    """The NumPy boundary, through nnspec's one conversion (``torch_ref.to_torch``): floats in the
    working dtype, token ids as int64, masks as bool, all on the working device."""

    device: torch.device
    dtype: torch.dtype

    def _in(self, x: Any) -> Tensor:
        return to_torch(np.asarray(x, dtype=np.float64), device=self.device, dtype=self.dtype)

    def _ids(self, ids: Any) -> Tensor:
        return to_torch(np.asarray(ids, dtype=np.int64), device=self.device)

    def _mask(self, mask: Any) -> Tensor | None:
        return None if mask is None else to_torch(np.asarray(mask, dtype=bool), device=self.device)


class _Network(_OnDevice):
    """What the networks share: parameters as tensors, token embedding with positions, the output
    layer. ``device`` and ``dtype`` are set on the subclasses TorchNN makes per instance."""

    def __init__(self, config: Any, params: dict[str, Any]) -> None:
        self.config = config
        self.params = params
        self._p = to_torch(params, device=self.device, dtype=self.dtype)  # converted once

    def _final_norm(self, name: str) -> nn.LayerNorm | None:
        if self.config.norm_placement != "pre":
            return None
        norm = nn.LayerNorm(self.config.d_model, eps=self.config.layer_norm_eps, device=self.device, dtype=self.dtype)
        with torch.no_grad():
            _load_norm(norm, self._p[name])
        return norm

    def _embed(self, ids: Tensor, W_E: str, W_P: str) -> Tensor:
        """F.embedding (x sqrt(d_model) if configured) plus the positions: (..., T, d_model)."""
        c = self.config
        x = F.embedding(ids, self._p[W_E].T)  # nnspec's W_E is (d_model, n_vocab)
        if c.scale_embeddings:
            x = x * math.sqrt(c.d_model)
        T = ids.shape[-1]
        if c.positional == "sinusoidal":
            x = x + _sinusoids(T, c.d_model).to(self.device, self.dtype)
        elif c.positional == "learned":
            x = x + self._p[W_P][:T]
        return x

    def _logits(self, h: Tensor, W_E: str) -> Tensor:
        W_U = self._p["W_U"] if "W_U" in self._p else self._p[W_E].T  # tied: W_E^T
        return F.linear(h, W_U, self._p.get("b_U"))

    def _causal(self, T: int) -> Tensor:
        return nn.Transformer.generate_square_subsequent_mask(T, device=self.device, dtype=self.dtype)

    def _pick(self, logits: Tensor, temperature: float, generator: torch.Generator | None) -> int:
        if temperature == 0 or generator is None:
            return int(torch.argmax(logits))
        probabilities = F.softmax(logits.double() / temperature, dim=-1)
        return int(torch.multinomial(probabilities.cpu(), 1, generator=generator))


class _Transformer(_Network):
    """nn.TransformerEncoder and nn.TransformerDecoder around nnspec's weights. Not nn.Transformer:
    that one always ends each stack with a LayerNorm, which Vaswani et al.'s post-LN layers do not
    have (it is only right for pre-LN, where nnspec's layout has encoder_norm and decoder_norm)."""

    def __init__(self, config: Any, params: dict[str, Any]) -> None:
        super().__init__(config, params)
        kw = dict(device=self.device, dtype=self.dtype)
        self.encoder = nn.ModuleList(encoder_layer_module(config, p, **kw) for p in self._p["encoder"])
        self.decoder = nn.ModuleList(decoder_layer_module(config, p, **kw) for p in self._p["decoder"])
        self.encoder_norm = self._final_norm("encoder_norm")
        self.decoder_norm = self._final_norm("decoder_norm")

    @torch.no_grad()
    def _encode(self, src: Tensor, src_mask: Any | None) -> tuple[Tensor, Tensor | None]:
        """Memory (N, S, d) and the key-padding mask (N, S), True = padding (torch's polarity)."""
        S = src.shape[-1]
        x = self._embed(src, "W_E_src", "W_P_src").reshape(-1, S, self.config.d_model)
        if src_mask is None:
            pads = (src == PAD_ID).reshape(-1, S)
        else:  # nnspec's (..., 1, S), True = a real token
            pads = ~self._mask(src_mask).reshape(-1, S)
        for layer in self.encoder:
            x = layer(x, src_key_padding_mask=pads)
        return (x if self.encoder_norm is None else self.encoder_norm(x)), pads

    @torch.no_grad()
    def _decode(self, tgt: Tensor, memory: Tensor, pads: Tensor | None) -> Tensor:
        T = tgt.shape[-1]
        y = self._embed(tgt, "W_E_tgt", "W_P_tgt").reshape(-1, T, self.config.d_model)
        N = max(y.shape[0], memory.shape[0])
        y, memory = y.expand(N, -1, -1), memory.expand(N, -1, -1)
        causal = self._causal(T)
        for layer in self.decoder:
            y = layer(y, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=pads)
        return y if self.decoder_norm is None else self.decoder_norm(y)

    def encode(self, src_ids: Any, src_mask: Any | None = None) -> np.ndarray:
        src = self._ids(src_ids)
        memory, _ = self._encode(src, src_mask)
        return to_numpy(memory.reshape(*src.shape, self.config.d_model))

    def decode(self, tgt_ids: Any, memory: Any, src_mask: Any | None = None) -> np.ndarray:
        tgt = self._ids(tgt_ids)
        memory = self._in(memory)
        S, d = memory.shape[-2:]
        pads = None if src_mask is None else ~self._mask(src_mask).reshape(-1, S)
        lead = torch.broadcast_shapes(tgt.shape[:-1], memory.shape[:-2])
        out = self._decode(tgt, memory.reshape(-1, S, d), pads)
        return to_numpy(out.reshape(*lead, tgt.shape[-1], d))

    @torch.no_grad()
    def _forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        memory, pads = self._encode(src, None)
        h = self._decode(tgt, memory, pads)
        lead = torch.broadcast_shapes(src.shape[:-1], tgt.shape[:-1])
        return self._logits(h, "W_E_tgt").reshape(*lead, tgt.shape[-1], -1)

    def forward(self, src_ids: Any, tgt_ids: Any) -> np.ndarray:
        return to_numpy(self._forward(self._ids(src_ids), self._ids(tgt_ids)))

    def probabilities(self, src_ids: Any, tgt_ids: Any, temperature: float = 1.0) -> np.ndarray:
        logits = self._forward(self._ids(src_ids), self._ids(tgt_ids))
        return to_numpy(F.softmax(logits / temperature, dim=-1))

    def _generate(self, src_ids: Any, max_len: int, temperature: float, seed: int | None) -> list[int]:
        src = self._ids(src_ids)
        memory, pads = self._encode(src, None)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        out = [START_ID]
        for _ in range(max_len):
            h = self._decode(self._ids(out), memory, pads)[0, -1]  # (d_model,)
            out.append(self._pick(self._logits(h, "W_E_tgt"), temperature, generator))
            if out[-1] == END_ID:
                break
        return out

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        return self._generate(src_ids, max_len, 0.0, None)

    def sample(self, src_ids: Any, *, max_len: int, temperature: float, seed: int) -> list[int]:
        return self._generate(src_ids, max_len, temperature, seed)


class _GPT(_Network):
    """A decoder-only model: nnspec's blocks are nn.TransformerEncoderLayer run with a causal mask."""

    def __init__(self, config: Any, params: dict[str, Any]) -> None:
        super().__init__(config, params)
        self.blocks = nn.ModuleList(
            encoder_layer_module(config, {"self_attn": b["attn"], **b}, device=self.device, dtype=self.dtype)
            for b in self._p["blocks"]
        )
        self.final_norm = self._final_norm("final_norm")

    @torch.no_grad()
    def _hidden(self, ids: Tensor) -> Tensor:
        T = ids.shape[-1]
        x = self._embed(ids, "W_E", "W_P").reshape(-1, T, self.config.d_model)
        causal = self._causal(T)
        for block in self.blocks:
            x = block(x, src_mask=causal, is_causal=True)
        x = x if self.final_norm is None else self.final_norm(x)
        return x.reshape(*ids.shape, self.config.d_model)

    def hidden(self, ids: Any) -> np.ndarray:
        return to_numpy(self._hidden(self._ids(ids)))

    def forward(self, ids: Any) -> np.ndarray:
        return to_numpy(self._logits(self._hidden(self._ids(ids)), "W_E"))

    def probabilities(self, ids: Any, temperature: float = 1.0) -> np.ndarray:
        return to_numpy(F.softmax(self._logits(self._hidden(self._ids(ids)), "W_E") / temperature, dim=-1))

    def generate(self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        out = [int(t) for t in np.asarray(ids, dtype=np.int64)]
        for _ in range(max_new_tokens):
            logits = self._logits(self._hidden(self._ids(out))[-1], "W_E")
            out.append(self._pick(logits, temperature, generator))
        return out


class _Seq2Seq(_Network):
    """Sutskever et al.'s encoder-decoder as two multi-layer ``nn.LSTM``s: the encoder's final
    (h, c) of every layer start the decoder. Luong's and Bahdanau's attention have no PyTorch
    built-in: they are written out here with tensor ops, as a user's model would have them."""

    def __init__(self, config: Any, params: dict[str, Any]) -> None:
        super().__init__(config, params)
        self.encoder = lstm_module(self._p["encoder"])
        self.decoder = lstm_module(self._p["decoder"])

    @torch.no_grad()
    def _outputs(self, src: Tensor, tgt: Tensor) -> Tensor:
        """out_t for every target position: (N, T, d_hidden)."""
        src, tgt = src.reshape(-1, src.shape[-1]), tgt.reshape(-1, tgt.shape[-1])
        if self.config.reverse_source:
            src = torch.flip(src, dims=[-1])
        enc, (h_n, c_n) = self.encoder(F.embedding(src, self._p["W_E_src"].T))  # (N, S, H), (L, N, H)
        if self.config.reverse_source:
            enc = torch.flip(enc, dims=[-2])
        N = max(enc.shape[0], tgt.shape[0])
        enc, h_n, c_n = enc.expand(N, -1, -1), h_n.expand(-1, N, -1), c_n.expand(-1, N, -1)
        s, _ = self.decoder(F.embedding(tgt, self._p["W_E_tgt"].T).expand(N, -1, -1),
                            (h_n.contiguous(), c_n.contiguous()))  # (N, T, H)
        if self.config.attention is None:
            return s
        if self.config.attention == "luong":  # alpha_tj = softmax_j(s_t . h_j)
            weights = F.softmax(s @ enc.transpose(-1, -2), dim=-1)  # (N, T, S)
        else:  # bahdanau: e_tj = v . tanh(W [s_{t-1}; h_j] + b), s_0 the encoder's final top state
            p = self._p["attention"]
            s_prev = torch.cat([h_n[-1][:, None, :], s[:, :-1, :]], dim=1)  # (N, T, H)
            T, S = s.shape[1], enc.shape[1]
            pairs = torch.cat([s_prev[:, :, None, :].expand(-1, T, S, -1),
                               enc[:, None, :, :].expand(-1, T, S, -1)], dim=-1)  # (N, T, S, 2H)
            weights = F.softmax(torch.tanh(F.linear(pairs, p["W"], p.get("b"))) @ p["v"], dim=-1)
        context = weights @ enc  # (N, T, H)
        return torch.tanh(F.linear(torch.cat([s, context], dim=-1), self._p["W_c"], self._p["b_c"]))

    def forward(self, src_ids: Any, tgt_ids: Any) -> np.ndarray:
        src, tgt = self._ids(src_ids), self._ids(tgt_ids)
        logits = F.linear(self._outputs(src, tgt), self._p["W_U"], self._p["b_U"])
        lead = torch.broadcast_shapes(src.shape[:-1], tgt.shape[:-1])
        return to_numpy(logits.reshape(*lead, tgt.shape[-1], -1))

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        src, out = self._ids(src_ids), [START_ID]
        for _ in range(max_len):
            h = self._outputs(src, self._ids(out))[0, -1]
            out.append(int(torch.argmax(F.linear(h, self._p["W_U"], self._p["b_U"]))))
            if out[-1] == END_ID:
                break
        return out


class _MLP(_OnDevice):
    """The documents' fully connected network as nn.Linear layers: autograd for the gradients,
    torch.optim.SGD for the steps, torch.randperm for the minibatch order."""

    def __init__(self, config: Any, params: dict[str, Any]) -> None:
        self.config = config
        self.sigma = _activation(config.activation)
        self.layers = nn.ModuleList()
        for p in to_torch(params, device=self.device, dtype=self.dtype)["layers"]:
            linear = nn.Linear(p["W"].shape[1], p["W"].shape[0], device=self.device, dtype=self.dtype)
            with torch.no_grad():
                linear.weight.copy_(p["W"])
                linear.bias.copy_(p["b"])
            self.layers.append(linear)

    @property
    def params(self) -> dict[str, Any]:
        """The current weights in nnspec's layout (they change as the network trains)."""
        return {"layers": [{"W": to_numpy(lin.weight), "b": to_numpy(lin.bias)} for lin in self.layers]}

    def _forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        zs, activations = [], [x]
        for linear in self.layers:
            zs.append(linear(activations[-1]))
            activations.append(self.sigma(zs[-1]))
        return zs, activations

    def _cost(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean over examples of the squared error summed over the output neurons."""
        return F.mse_loss(self._forward(x)[1][-1], y, reduction="none").sum(-1).mean()

    def forward(self, x: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        with torch.no_grad():
            zs, activations = self._forward(self._in(x))
        return [to_numpy(z) for z in zs], [to_numpy(a) for a in activations]

    def predict(self, x: Any) -> np.ndarray:
        with torch.no_grad():
            return to_numpy(torch.argmax(self._forward(self._in(x))[1][-1], dim=-1))

    def cost(self, x: Any, y: Any) -> float:
        with torch.no_grad():
            return float(self._cost(self._in(x), self._in(y)))

    @torch.enable_grad()  # it differentiates: a session's set_grad_enabled(False) must not stop it
    def gradients(self, x: Any, y: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        x, y = torch.atleast_2d(self._in(x)), torch.atleast_2d(self._in(y))
        grads = torch.autograd.grad(self._cost(x, y), [p for lin in self.layers for p in (lin.weight, lin.bias)])
        return [to_numpy(g) for g in grads[0::2]], [to_numpy(g) for g in grads[1::2]]

    @torch.enable_grad()  # it differentiates: a session's set_grad_enabled(False) must not stop it
    def sgd_step(self, x: Any, y: Any, eta: float) -> None:
        optimiser = torch.optim.SGD(self.layers.parameters(), lr=eta)
        optimiser.zero_grad()
        self._cost(torch.atleast_2d(self._in(x)), torch.atleast_2d(self._in(y))).backward()
        optimiser.step()

    @torch.enable_grad()  # it differentiates: a session's set_grad_enabled(False) must not stop it
    def train(self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int) -> None:
        X, Y = self._in(X), self._in(Y)
        optimiser = torch.optim.SGD(self.layers.parameters(), lr=eta)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            # drawn on the CPU, where the seeded generator lives, whatever torch's default device
            order = torch.randperm(len(X), generator=generator, device="cpu").to(self.device)
            for batch in order.split(batch_size):
                optimiser.zero_grad()
                self._cost(X[batch], Y[batch]).backward()
                optimiser.step()


class TorchNN(_OnDevice):
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
        # The network classes, bound to this device and dtype (a class per instance, so that
        # `Transformer(config, params)` constructs and `Transformer.greedy_decode` is visible).
        bound = {"device": self.device, "dtype": self.dtype}
        self.Transformer = type("Transformer", (_Transformer,), bound)
        self.GPT = type("GPT", (_GPT,), bound)
        self.MLP = type("MLP", (_MLP,), bound)
        self.Seq2Seq = type("Seq2Seq", (_Seq2Seq,), bound)

    # -- the NumPy boundary ------------------------------------------------------------------------

    @staticmethod
    def _out(t: Tensor) -> np.ndarray:
        return to_numpy(t)

    @torch.enable_grad()  # it differentiates: a session's set_grad_enabled(False) must not stop it
    def _derivative(self, f: Callable[[Tensor], Tensor], z: Any) -> np.ndarray:
        """f'(z) elementwise, by autograd (f acts elementwise, so the gradient of sum f is f')."""
        z = self._in(z).requires_grad_(True)
        (grad,) = torch.autograd.grad(f(z).sum(), z)
        return self._out(grad)

    def init_params(self, config: Any, seed: int = 0) -> dict[str, Any]:
        """An MLP's parameters as ``nn.Linear`` initialises them (uniform in +-1/sqrt(fan_in)), in
        nnspec's layout. Only the fully connected network: for the Transformer layouts PyTorch's
        modules would need nnspec's names mapped back, which this example leaves out."""
        sizes = getattr(config, "layer_sizes", None)
        if sizes is None:
            raise TypeError(f"torch.nn's initialisation is offered for an MLPConfig only, not {type(config).__name__}")
        with torch.random.fork_rng(devices=[]):  # seed nn.Linear's draw without touching the caller's
            torch.default_generator.manual_seed(seed)  # the CPU's alone: manual_seed reseeds CUDA too
            pairs = zip(sizes[:-1], sizes[1:], strict=True)
            # on the CPU whatever torch's default device: the draw is the seeded CPU generator's
            layers = [nn.Linear(n_in, n_out, dtype=torch.float64, device="cpu") for n_in, n_out in pairs]
        return {"layers": [{"W": to_numpy(lin.weight), "b": to_numpy(lin.bias)} for lin in layers]}

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
        ids, n_vocab = np.asarray(token_ids), np.shape(W_E)[-1]
        # F.embedding raises IndexError for an id outside the vocabulary on the CPU; on CUDA it
        # trips a device-side assert, after which every CUDA call of the process fails. So the
        # adapter refuses such ids itself, on the host, as the CPU would.
        if ids.dtype.kind in "iu" and ids.size and (ids.min() < 0 or ids.max() >= n_vocab):
            raise IndexError(f"token ids must lie in [0, {n_vocab}), got {ids.min()}..{ids.max()}")
        ids = to_torch(ids, device=self.device)  # non-integer ids stay so: F.embedding refuses
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

    def causal_mask(self, n_queries: int, n_keys: int) -> np.ndarray:
        # PyTorch's causal mask is square and additive (0 = may attend, -inf = may not). Its last
        # n_queries rows and n_keys columns are the bottom-right aligned mask of queries that are
        # the last positions (cached decoding), nnspec's convention.
        m = max(n_queries, n_keys)
        square = nn.Transformer.generate_square_subsequent_mask(m, device=self.device, dtype=self.dtype)
        return to_numpy(square[m - n_queries :, m - n_keys :] == 0)  # bool stays bool

    def multi_head_attention(
        self, params: dict, x_q: Any, x_kv: Any, n_heads: int, mask: Any | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        p = to_torch(params, device=self.device, dtype=self.dtype)
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
        p = to_torch(params, device=self.device, dtype=self.dtype)
        hidden = _activation(activation)(F.linear(self._in(x), p["W_1"], p.get("b_1")))
        return self._out(F.linear(hidden, p["W_2"], p.get("b_2")))

    # -- the recurrent encoder-decoder's LSTM ------------------------------------------------------

    def lstm_cell(self, params: dict, x: Any, h: Any, c: Any) -> tuple[np.ndarray, np.ndarray]:
        cell = lstm_module([to_torch(params, device=self.device, dtype=self.dtype)], cell=True)
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
        p = to_torch(params, device=self.device, dtype=self.dtype)
        layer = lstm_module([p])
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


# ``float32`` (on the CPU) or ``cuda_bfloat16``: import paths name a device and a dtype.
__getattr__, __dir__ = by_device_and_dtype(
    __name__, globals(), lambda device, dtype: TorchNN(device=device, dtype=dtype), dtypes=_DTYPES, devices=_DEVICES
)
