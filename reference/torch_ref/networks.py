"""Whole networks in PyTorch (any device, any dtype): the mirror image of ``numpy_ref.networks``.

Same classes, same parameter layout (``reference/PARAMETERS.md``), same conventions; the module
docstring of :mod:`nnspec.reference.numpy_ref.networks` defines the networks (including the exact
Seq2Seq decoder step) and cites the documents. Two things differ on purpose:

- ``MLP.gradients`` uses autograd, so it is an independent check of the oracle's hand-written
  backpropagation.
- ``GPT.forward_cached`` runs the causal model with a key/value cache: each block keeps the keys and
  values of every position seen so far, new queries attend to cached and new keys with the
  bottom-right aligned causal mask, and positions continue from the cache length.

Token ids may be lists, NumPy arrays or tensors; parameters are tensors on one device and dtype,
and every computation happens there. Sampling draws its random numbers from NumPy's
``default_rng(seed)`` on float64 probabilities, exactly as the oracle does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..config import (
    END_ID,
    PAD_ID,
    START_ID,
    GPTConfig,
    MLPConfig,
    NetworkConfig,
    Seq2SeqConfig,
    TransformerConfig,
)
from ..numpy_ref import networks as _numpy_networks
from .components import activation as activation_fn
from .components import (
    additive_attention,
    causal_mask,
    dot_attention,
    embed,
    feed_forward,
    layer_norm,
    lstm,
    multi_head_attention,
    padding_mask,
    positional_encoding,
    scaled_dot_product_attention,
    softmax,
    squared_error_cost,
    unembed,
)

__all__ = [
    "DIGITS_HELD_OUT_ACCURACY",
    "DIGITS_TRAINING",
    "GPT",
    "MLP",
    "Seq2Seq",
    "Transformer",
    "decoder_layer",
    "encoder_layer",
    "init_params",
    "to_numpy",
    "to_torch",
]

# The same training recipe and measured accuracy as the oracle (see numpy_ref.networks).
DIGITS_TRAINING: dict[str, Any] = dict(_numpy_networks.DIGITS_TRAINING)
DIGITS_HELD_OUT_ACCURACY: float = _numpy_networks.DIGITS_HELD_OUT_ACCURACY

Params = dict[str, Any]


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------


def to_torch(params: Any, *, device: Any = None, dtype: torch.dtype | None = None) -> Any:
    """Copy a tree (dicts, lists, tuples) of arrays or tensors to tensors on ``device`` (default CPU).

    Floating values become ``dtype`` (default float64); booleans (masks) and integers (token ids)
    keep their kind, as int64. NumPy scalars become Python numbers. The one NumPy -> torch
    conversion of the project: the engine's adapters use it for every argument too.
    """
    if isinstance(params, dict):
        return {k: to_torch(v, device=device, dtype=dtype) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        items = [to_torch(v, device=device, dtype=dtype) for v in params]
        return type(params)(*items) if hasattr(params, "_fields") else type(params)(items)  # namedtuple
    if isinstance(params, np.generic):
        return params.item()
    if isinstance(params, (np.ndarray, torch.Tensor)):
        # from_numpy, not as_tensor: as_tensor would follow torch.set_default_device. A read-only
        # array (np.broadcast_to's view) is copied first: from_numpy warns about it otherwise.
        if isinstance(params, np.ndarray):
            array = np.ascontiguousarray(params)
            t = torch.from_numpy(array if array.flags.writeable else array.copy())
        else:
            t = params
        if t.dtype == torch.bool:
            kind = torch.bool
        elif t.is_floating_point():
            kind = dtype or torch.float64
        else:
            kind = torch.int64
        return t.to(device=device or "cpu", dtype=kind, copy=True)
    return params


def to_numpy(params: Any) -> Any:
    """Copy a tree of tensors to NumPy: floating values to float64 (exact: widening), booleans stay
    boolean, integers become int64. The one torch -> NumPy conversion of the project."""
    if isinstance(params, dict):
        return {k: to_numpy(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        items = [to_numpy(v) for v in params]
        return type(params)(*items) if hasattr(params, "_fields") else type(params)(items)  # namedtuple
    if isinstance(params, torch.Tensor):
        t = params.detach().cpu()
        if t.is_floating_point():
            return t.to(torch.float64).numpy().copy()
        if t.dtype == torch.bool:
            return t.numpy().copy()
        return t.to(torch.int64).numpy().copy()
    return params


def init_params(
    config: NetworkConfig, seed: int = 0, *, device: Any = None, dtype: torch.dtype | None = None
) -> Params:
    """The oracle's ``init_params(config, seed)`` values as tensors on ``device`` in ``dtype``."""
    return to_torch(_numpy_networks.init_params(config, seed), device=device, dtype=dtype)


def _ids(token_ids: Any, device: torch.device) -> torch.Tensor:
    if isinstance(token_ids, torch.Tensor):
        return token_ids.to(device=device, dtype=torch.long)
    return torch.as_tensor(np.asarray(token_ids, dtype=np.int64), device=device)


def _as(x: Any, like: torch.Tensor) -> torch.Tensor:
    """A float input on the parameters' device and dtype (never on torch's default device)."""
    return torch.as_tensor(x, dtype=like.dtype, device=like.device)  # one conversion, no copy if already so


# ----------------------------------------------------------------------------------------------
# MLP
# ----------------------------------------------------------------------------------------------


class MLP:
    """A fully connected network ``a(l) = sigma(W(l) a(l-1) + b(l))``; gradients by autograd."""

    def __init__(self, config: MLPConfig, params: Params) -> None:
        self.config = config
        self.params = params
        self.sigma = activation_fn(config.activation)

    def _forward(
        self, x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        a = x
        zs: list[torch.Tensor] = []
        activations = [a]
        for W, b in layers:
            # z(l) = W(l) a(l-1) + b(l);  a(l) = sigma(z(l))
            z = a @ W.T + b  # (..., n_out)
            a = self.sigma(z)
            zs.append(z)
            activations.append(a)
        return zs, activations

    def _layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer["W"], layer["b"]) for layer in self.params["layers"]]

    def forward(self, x: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every layer's weighted input ``z(l)`` and activation ``a(l)``; ``activations[0] = x``."""
        return self._forward(_as(x, self.params["layers"][0]["W"]), self._layers())

    def predict(self, x: Any) -> torch.Tensor:
        return torch.argmax(self.forward(x)[1][-1], dim=-1)

    def cost(self, x: Any, y: Any) -> float:
        """C = mean over examples of sum_j (a_j(L) - y_j)^2."""
        a = self.forward(x)[1][-1]
        return float(squared_error_cost(a, _as(y, a)).mean())

    def gradients(self, x: Any, y: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """dC/dW(l) and dC/db(l) of the batch-mean cost, by reverse-mode autograd."""
        W0 = self.params["layers"][0]["W"]
        x, y = _as(x, W0), _as(y, W0)
        leaves = [(W.detach().requires_grad_(True), b.detach().requires_grad_(True))
                  for W, b in self._layers()]
        with torch.enable_grad():
            a = self._forward(x, leaves)[1][-1]
            cost = squared_error_cost(a, y).mean()
            flat = [t for pair in leaves for t in pair]
            grads = torch.autograd.grad(cost, flat)
        return list(grads[0::2]), list(grads[1::2])

    def sgd_step(self, x: Any, y: Any, eta: float) -> None:
        """One gradient-descent step on the batch ``(x, y)`` (parameters updated in place)."""
        dW, db = self.gradients(x, y)
        with torch.no_grad():
            for layer, gW, gb in zip(self.params["layers"], dW, db, strict=True):
                layer["W"] -= eta * gW
                layer["b"] -= eta * gb

    def train(
        self, X: Any, Y: Any, *, epochs: int, batch_size: int, eta: float, seed: int
    ) -> None:
        """SGD with the oracle's minibatch order: ``default_rng(seed).permutation`` per epoch.

        Thousands of steps on (10, 784)-sized matrices: on the CPU the loop runs with one intra-op
        thread (restored afterwards). Extra threads buy nothing at this size, and on a loaded
        machine their spin-waiting made one epoch 10-20x slower (measured on the 2-core CI box).
        """
        W0 = self.params["layers"][0]["W"]
        X, Y = _as(X, W0), _as(Y, W0)
        rng = np.random.default_rng(seed)
        threads = torch.get_num_threads()
        if X.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            for _ in range(epochs):
                order = rng.permutation(len(X))
                for start in range(0, len(X), batch_size):
                    batch = torch.as_tensor(order[start : start + batch_size], device=X.device)
                    self.sgd_step(X[batch], Y[batch], eta)
        finally:
            torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------
# Transformer blocks
# ----------------------------------------------------------------------------------------------


def _with_head_axis(mask: Any, device: torch.device) -> torch.Tensor | None:
    """(..., n_q, n_k) -> (..., 1, n_q, n_k): one mask shared by every head."""
    if mask is None:
        return None
    return torch.as_tensor(mask, device=device).to(torch.bool)[..., None, :, :]


def _block(
    x: torch.Tensor,
    attn: Params,
    norm_1: Params,
    ffn: Params,
    norm_2: Params,
    config: TransformerConfig | GPTConfig,
    mask: Any,
) -> torch.Tensor:
    eps = config.layer_norm_eps
    mask = _with_head_axis(mask, x.device)
    if config.norm_placement == "post":
        # x = LN(x + MultiHead(x, x, x)); x = LN(x + FFN(x))
        x = layer_norm(x + multi_head_attention(attn, x, x, config.n_heads, mask)[0],
                       norm_1["gamma"], norm_1["beta"], eps)
        return layer_norm(x + feed_forward(ffn, x, config.activation),
                          norm_2["gamma"], norm_2["beta"], eps)
    # x = x + MultiHead(LN(x)); x = x + FFN(LN(x))
    h = layer_norm(x, norm_1["gamma"], norm_1["beta"], eps)
    x = x + multi_head_attention(attn, h, h, config.n_heads, mask)[0]
    h = layer_norm(x, norm_2["gamma"], norm_2["beta"], eps)
    return x + feed_forward(ffn, h, config.activation)


def encoder_layer(
    params: Params, x: Any, config: TransformerConfig, mask: Any = None
) -> torch.Tensor:
    """One encoder layer (see ``numpy_ref.encoder_layer``); ``mask`` broadcasts to (..., T, T)."""
    like = params["norm_1"]["gamma"]
    return _block(_as(x, like), params["self_attn"], params["norm_1"], params["ffn"],
                  params["norm_2"], config, mask)


def decoder_layer(
    params: Params,
    y: Any,
    memory: Any,
    config: TransformerConfig,
    self_mask: Any = None,
    cross_mask: Any = None,
) -> torch.Tensor:
    """One decoder layer (see ``numpy_ref.decoder_layer``); ``self_mask`` defaults to causal."""
    like = params["norm_1"]["gamma"]
    y, memory = _as(y, like), _as(memory, like)
    T = y.shape[-2]
    if self_mask is None:
        self_mask = causal_mask(T, T, device=y.device)
    self_mask = _with_head_axis(self_mask, y.device)
    cross_mask = _with_head_axis(cross_mask, y.device)
    eps, n_heads = config.layer_norm_eps, config.n_heads
    n1, n2, n3 = params["norm_1"], params["norm_2"], params["norm_3"]
    if config.norm_placement == "post":
        y = layer_norm(y + multi_head_attention(params["self_attn"], y, y, n_heads, self_mask)[0],
                       n1["gamma"], n1["beta"], eps)
        y = layer_norm(
            y + multi_head_attention(params["cross_attn"], y, memory, n_heads, cross_mask)[0],
            n2["gamma"], n2["beta"], eps)
        return layer_norm(y + feed_forward(params["ffn"], y, config.activation),
                          n3["gamma"], n3["beta"], eps)
    h = layer_norm(y, n1["gamma"], n1["beta"], eps)
    y = y + multi_head_attention(params["self_attn"], h, h, n_heads, self_mask)[0]
    h = layer_norm(y, n2["gamma"], n2["beta"], eps)
    y = y + multi_head_attention(params["cross_attn"], h, memory, n_heads, cross_mask)[0]
    h = layer_norm(y, n3["gamma"], n3["beta"], eps)
    return y + feed_forward(params["ffn"], h, config.activation)


def _embed_with_positions(
    ids: torch.Tensor,
    W_E: torch.Tensor,
    W_P: torch.Tensor | None,
    config: TransformerConfig | GPTConfig,
    start: int = 0,
) -> torch.Tensor:
    """embed(ids) (x sqrt(d_model) if scale_embeddings) + the position of each token."""
    T = ids.shape[-1]
    if start + T > config.context:
        raise ValueError(f"sequence of {start + T} tokens exceeds the context of {config.context}")
    x = embed(ids, W_E)  # (..., T, d_model)
    if config.scale_embeddings:
        x = x * math.sqrt(config.d_model)
    if config.positional == "sinusoidal":
        pe = positional_encoding(start + T, config.d_model, device=W_E.device, dtype=W_E.dtype)
        x = x + pe[start:]
    elif config.positional == "learned":
        x = x + W_P[start : start + T]
    return x


def _unembedding(params: Params, W_E_name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    W_U = params["W_U"] if "W_U" in params else params[W_E_name].T
    return W_U, params.get("b_U")


def _draw_token(probabilities: torch.Tensor, rng: np.random.Generator) -> int:
    p = probabilities.detach().to("cpu", torch.float64).numpy()
    return _numpy_networks._draw_token(p, rng)


# ----------------------------------------------------------------------------------------------
# Transformer (encoder-decoder)
# ----------------------------------------------------------------------------------------------


class Transformer:
    """The encoder-decoder Transformer (Vaswani et al. 2017), evaluation mode."""

    def __init__(self, config: TransformerConfig, params: Params) -> None:
        self.config = config
        self.params = params
        self.device = params["W_E_src"].device

    def encode(self, src_ids: Any, src_mask: Any = None) -> torch.Tensor:
        """Memory (..., S, d_model); ``src_mask`` (..., 1, S) defaults to the source's padding."""
        src = _ids(src_ids, self.device)
        if src_mask is None:
            src_mask = padding_mask(src, PAD_ID)  # (..., 1, S)
        p, c = self.params, self.config
        x = _embed_with_positions(src, p["W_E_src"], p.get("W_P_src"), c)
        for layer in p["encoder"]:
            x = encoder_layer(layer, x, c, src_mask)
        if c.norm_placement == "pre":
            x = layer_norm(x, p["encoder_norm"]["gamma"], p["encoder_norm"]["beta"],
                           c.layer_norm_eps)
        return x

    def decode(self, tgt_ids: Any, memory: torch.Tensor, src_mask: Any = None) -> torch.Tensor:
        """Decoder output (..., T, d_model): causal self-attention, cross-attention on memory."""
        tgt = _ids(tgt_ids, self.device)
        p, c = self.params, self.config
        y = _embed_with_positions(tgt, p["W_E_tgt"], p.get("W_P_tgt"), c)
        self_mask = causal_mask(tgt.shape[-1], tgt.shape[-1], device=self.device)
        for layer in p["decoder"]:
            y = decoder_layer(layer, y, memory, c, self_mask, src_mask)
        if c.norm_placement == "pre":
            y = layer_norm(y, p["decoder_norm"]["gamma"], p["decoder_norm"]["beta"],
                           c.layer_norm_eps)
        return y

    def forward(self, src_ids: Any, tgt_ids: Any) -> torch.Tensor:
        """Logits (..., T, n_tgt_vocab) for every target position (teacher forcing)."""
        src = _ids(src_ids, self.device)
        src_mask = padding_mask(src, PAD_ID)
        memory = self.encode(src, src_mask)
        W_U, b_U = _unembedding(self.params, "W_E_tgt")
        return unembed(self.decode(tgt_ids, memory, src_mask), W_U, b_U)

    def probabilities(self, src_ids: Any, tgt_ids: Any, temperature: float = 1.0) -> torch.Tensor:
        return softmax(self.forward(src_ids, tgt_ids), axis=-1, temperature=temperature)

    def _generate(
        self, src_ids: Any, max_len: int, pick: Callable[[torch.Tensor], int]
    ) -> list[int]:
        src = _ids(src_ids, self.device)
        src_mask = padding_mask(src, PAD_ID)
        memory = self.encode(src, src_mask)
        W_U, b_U = _unembedding(self.params, "W_E_tgt")
        out = [START_ID]
        for _ in range(max_len):
            h = self.decode(out, memory, src_mask)[-1]  # (d_model,)
            token = pick(unembed(h, W_U, b_U))
            out.append(token)
            if token == END_ID:
                break
        return out

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        """``[START_ID, y_1, ...]``: argmax each step, ``max_len`` at most, stops after END_ID."""
        return self._generate(src_ids, max_len, lambda logits: int(torch.argmax(logits)))

    def sample(self, src_ids: Any, *, max_len: int, temperature: float, seed: int) -> list[int]:
        """Draws from softmax(logits / T) with NumPy's ``default_rng(seed)``; T == 0 is greedy."""
        rng = np.random.default_rng(seed)

        def pick(logits: torch.Tensor) -> int:
            if temperature == 0:
                return int(torch.argmax(logits))
            return _draw_token(softmax(logits, axis=-1, temperature=temperature), rng)

        return self._generate(src_ids, max_len, pick)

    def train(
        self, src_ids: Any, tgt_ids: Any, *, epochs: int, eta: float, seed: int = 0
    ) -> list[float]:
        """Teacher-forced training in place; returns the loss of every epoch.

        Lecture notes, "Transformer as an Autoregressive Model" / "Training": at training time the
        decoder reads the whole shifted target at once (the causal mask keeps it honest) and every
        position learns the next token. With ``tgt`` = ``<start> y_1 ... y_n <end> <pad>...``:

            loss = mean over real next tokens t of  -log softmax(forward(src, tgt[:, :-1]))[t, tgt[t+1]]

        minimised by full-batch Adam (Kingma and Ba 2015) with learning rate ``eta``, gradients by
        autograd (on for the training even where the caller turned it off). ``seed`` seeds the
        device's generator for the training alone (full-batch Adam itself draws nothing): the
        caller's random state is as it was afterwards.
        src_ids (N, S), tgt_ids (N, T): padded with PAD_ID.

        float16 and bfloat16 train in mixed precision (Micikevicius et al. 2018), as such models are
        trained: Adam updates float32 master copies of the weights, and every forward and backward
        pass runs in the working dtype from them. Updating half-precision weights in place fails:
        Adam's eps = 1e-8 is 0 in float16, and a step below a weight's spacing is lost.
        """
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        # Training differentiates: autograd on for it alone, whatever the caller's grad mode
        # (an inference script's torch.set_grad_enabled(False)), as torch.func's transforms do.
        with torch.random.fork_rng(devices=cuda), torch.enable_grad():
            generator = torch.cuda.default_generators[cuda[0]] if cuda else torch.default_generator
            generator.manual_seed(seed)
            return self._train(src_ids, tgt_ids, epochs=epochs, eta=eta)

    def _train(self, src_ids: Any, tgt_ids: Any, *, epochs: int, eta: float) -> list[float]:
        src = _ids(src_ids, self.device)  # (N, S)
        tgt = _ids(tgt_ids, self.device)  # (N, T)
        inputs, targets = tgt[..., :-1], tgt[..., 1:]  # (N, T-1) each
        real = targets != PAD_ID  # (N, T-1)
        working, leaves = self.params, _parameter_leaves(self.params)
        mixed = leaves[0].dtype in (torch.float16, torch.bfloat16)
        masters = [leaf.detach().float().requires_grad_(True) for leaf in leaves] if mixed else leaves
        for leaf in masters:
            leaf.requires_grad_(True)
        optimiser = torch.optim.Adam(masters, lr=eta)
        losses = []
        try:
            for _ in range(epochs):
                optimiser.zero_grad()
                if mixed:  # the working-dtype weights, as a differentiable function of the masters
                    self.params = _with_leaves(working, iter([m.to(leaves[0].dtype) for m in masters]))
                logits = self.forward(src, inputs)  # (N, T-1, V)
                if mixed:  # the loss in float32, as autocast computes it
                    logits = logits.float()
                log_p = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
                nll = -log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N, T-1)
                loss = nll[real].mean()
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
        finally:
            self.params = working
            with torch.no_grad():
                for leaf, master in zip(leaves, masters, strict=True):
                    if mixed:
                        leaf.copy_(master)
                    leaf.requires_grad_(False)
                    leaf.grad = None
        return losses


def _parameter_leaves(params: Any) -> list[torch.Tensor]:
    """Every tensor of a nested parameter dict/list, in a fixed order."""
    if isinstance(params, torch.Tensor):
        return [params]
    if isinstance(params, dict):
        return [leaf for key in sorted(params) for leaf in _parameter_leaves(params[key])]
    if isinstance(params, list | tuple):
        return [leaf for item in params for leaf in _parameter_leaves(item)]
    return []


def _with_leaves(params: Any, leaves: Any) -> Any:
    """``params`` with its tensors replaced, in :func:`_parameter_leaves` order, by ``leaves``."""
    if isinstance(params, torch.Tensor):
        return next(leaves)
    if isinstance(params, dict):
        replaced = {key: _with_leaves(params[key], leaves) for key in sorted(params)}
        return {key: replaced[key] for key in params}
    if isinstance(params, list | tuple):
        return type(params)(_with_leaves(item, leaves) for item in params)
    return params


# ----------------------------------------------------------------------------------------------
# GPT (decoder-only), with a key/value cache
# ----------------------------------------------------------------------------------------------


def _project(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return x @ W.T if b is None else x @ W.T + b


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(..., T, d_model) -> (..., n_heads, T, d_head); head h owns features h*d_head:(h+1)*d_head"""
    *lead, T, d = x.shape
    return x.reshape(*lead, T, n_heads, d // n_heads).transpose(-3, -2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(..., n_heads, T, d_head) -> (..., T, d_model)."""
    *lead, nh, T, hs = x.shape
    return x.transpose(-3, -2).reshape(*lead, T, nh * hs)


def _cached_attention(
    attn: Params, x: torch.Tensor, n_heads: int, layer_cache: dict[str, torch.Tensor] | None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Causal self-attention of the new positions ``x`` over cached and new keys and values.

    Q, K, V = x W_q^T + b_q, ...; K and V are appended to the cache; the new queries are the last
    positions, so ``causal_mask(T_new, T_total)`` (bottom-right aligned) lets query i see every
    cached key and the new keys up to its own position.
    """
    q = _split_heads(_project(x, attn["W_q"], attn.get("b_q")), n_heads)  # (..., nh, T, hs)
    k = _split_heads(_project(x, attn["W_k"], attn.get("b_k")), n_heads)  # (..., nh, T, hs)
    v = _split_heads(_project(x, attn["W_v"], attn.get("b_v")), n_heads)  # (..., nh, T, hs)
    if layer_cache is not None:
        k = torch.cat([layer_cache["k"], k], dim=-2)  # (..., nh, L + T, hs)
        v = torch.cat([layer_cache["v"], v], dim=-2)
    mask = causal_mask(q.shape[-2], k.shape[-2], device=x.device)  # (T, L + T)
    heads, _ = scaled_dot_product_attention(q, k, v, mask)  # (..., nh, T, hs)
    # MultiHead = Concat(head_1, ..., head_h) W_o^T + b_o
    return _project(_merge_heads(heads), attn["W_o"], attn.get("b_o")), {"k": k, "v": v}


class GPT:
    """A decoder-only causal language model (GPT-2/GPT-3 style), evaluation mode."""

    def __init__(self, config: GPTConfig, params: Params) -> None:
        self.config = config
        self.params = params
        self.device = params["W_E"].device

    def hidden(self, ids: Any) -> torch.Tensor:
        """The last residual stream (after the final norm when pre-LN): (..., T, d_model)."""
        ids = _ids(ids, self.device)
        p, c = self.params, self.config
        x = _embed_with_positions(ids, p["W_E"], p.get("W_P"), c)
        mask = causal_mask(ids.shape[-1], ids.shape[-1], device=self.device)
        for block in p["blocks"]:
            x = _block(x, block["attn"], block["norm_1"], block["ffn"], block["norm_2"], c, mask)
        if c.norm_placement == "pre":
            x = layer_norm(x, p["final_norm"]["gamma"], p["final_norm"]["beta"], c.layer_norm_eps)
        return x

    def forward(self, ids: Any) -> torch.Tensor:
        """Logits (..., T, n_vocab): position t predicts token t+1 from tokens <= t."""
        W_U, b_U = _unembedding(self.params, "W_E")
        return unembed(self.hidden(ids), W_U, b_U)

    def probabilities(self, ids: Any, temperature: float = 1.0) -> torch.Tensor:
        return softmax(self.forward(ids), axis=-1, temperature=temperature)

    def forward_cached(
        self, ids: Any, cache: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Logits of the new tokens ``ids`` (..., T, n_vocab) given a cache of earlier positions.

        ``cache`` is ``None`` or what the previous call returned: ``{"length": L, "layers": [{"k":
        (..., n_heads, L, d_head), "v": ...}, ...]}``. The new tokens take positions L..L+T-1.
        Feeding a sequence in pieces gives the logits of ``forward`` on the whole sequence.
        """
        ids = _ids(ids, self.device)
        p, c = self.params, self.config
        start = 0 if cache is None else int(cache["length"])
        x = _embed_with_positions(ids, p["W_E"], p.get("W_P"), c, start=start)  # (..., T, d)
        eps = c.layer_norm_eps
        new_layers = []
        for i, block in enumerate(p["blocks"]):
            layer_cache = None if cache is None else cache["layers"][i]
            n1, n2 = block["norm_1"], block["norm_2"]
            if c.norm_placement == "post":
                a, kv = _cached_attention(block["attn"], x, c.n_heads, layer_cache)
                x = layer_norm(x + a, n1["gamma"], n1["beta"], eps)
                x = layer_norm(x + feed_forward(block["ffn"], x, c.activation),
                               n2["gamma"], n2["beta"], eps)
            else:
                h = layer_norm(x, n1["gamma"], n1["beta"], eps)
                a, kv = _cached_attention(block["attn"], h, c.n_heads, layer_cache)
                x = x + a
                h = layer_norm(x, n2["gamma"], n2["beta"], eps)
                x = x + feed_forward(block["ffn"], h, c.activation)
            new_layers.append(kv)
        if c.norm_placement == "pre":
            x = layer_norm(x, p["final_norm"]["gamma"], p["final_norm"]["beta"], eps)
        W_U, b_U = _unembedding(p, "W_E")
        return unembed(x, W_U, b_U), {"length": start + ids.shape[-1], "layers": new_layers}

    def generate(
        self, ids: Any, *, max_new_tokens: int, temperature: float = 0.0, seed: int = 0
    ) -> list[int]:
        """The prompt followed by ``max_new_tokens`` tokens (argmax when ``temperature == 0``)."""
        rng = np.random.default_rng(seed)
        out = [int(t) for t in np.asarray(_ids(ids, torch.device("cpu")))]
        for _ in range(max_new_tokens):
            logits = self.forward(out)[-1]
            if temperature == 0:
                out.append(int(torch.argmax(logits)))
            else:
                out.append(_draw_token(softmax(logits, axis=-1, temperature=temperature), rng))
        return out


# ----------------------------------------------------------------------------------------------
# Seq2Seq (LSTM encoder-decoder)
# ----------------------------------------------------------------------------------------------


class Seq2Seq:
    """Sutskever et al. (2014) LSTM encoder-decoder; see ``numpy_ref.networks`` for the step."""

    def __init__(self, config: Seq2SeqConfig, params: Params) -> None:
        self.config = config
        self.params = params
        self.device = params["W_U"].device

    def encode(self, src_ids: Any) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Top-layer outputs in source order (..., S, d_hidden) and every layer's final (h, c)."""
        src = _ids(src_ids, self.device)
        if self.config.reverse_source:
            src = torch.flip(src, dims=[-1])
        x = embed(src, self.params["W_E_src"])  # (..., S, d_embed)
        states = []
        for layer in self.params["encoder"]:
            x, (h_n, c_n) = lstm(layer, x)  # (..., S, d_hidden)
            states.append((h_n, c_n))
        if self.config.reverse_source:
            x = torch.flip(x, dims=[-2])
        return x, states

    def decoder_outputs(self, src_ids: Any, tgt_ids: Any) -> torch.Tensor:
        """``out_t`` of the decoder step for every target position: (..., T, d_hidden)."""
        enc, states = self.encode(src_ids)  # (..., S, H)
        y = embed(_ids(tgt_ids, self.device), self.params["W_E_tgt"])  # (..., T, d_embed)
        for layer, (h0, c0) in zip(self.params["decoder"], states, strict=True):
            y, _ = lstm(layer, y, h0, c0)  # (..., T, H)
        s = y
        attention = self.config.attention
        if attention is None:
            return s
        T, S = s.shape[-2], enc.shape[-2]
        h = enc[..., None, :, :].expand(*s.shape[:-1], S, enc.shape[-1])  # (..., T, S, H)
        if attention == "luong":
            # alpha_tj = softmax_j(s_t . h_j)
            context, _ = dot_attention(s, h)
        elif attention == "bahdanau":
            # e_tj = v . tanh(W [s_{t-1}; h_j] + b), s_0 the top encoder layer's final hidden state
            s_0 = states[-1][0][..., None, :]  # (..., 1, H)
            s_prev = torch.cat([s_0, s[..., : T - 1, :]], dim=-2)  # (..., T, H)
            context, _ = additive_attention(self.params["attention"], s_prev, h)
        else:
            raise ValueError(f"unknown attention {attention!r}")
        # out_t = tanh(W_c [s_t; ctx_t] + b_c)
        return torch.tanh(torch.cat([s, context], dim=-1) @ self.params["W_c"].T
                          + self.params["b_c"])

    def forward(self, src_ids: Any, tgt_ids: Any) -> torch.Tensor:
        """Logits (..., T, n_tgt_vocab) under teacher forcing (``tgt_ids`` begins with START_ID)."""
        return unembed(self.decoder_outputs(src_ids, tgt_ids), self.params["W_U"],
                       self.params["b_U"])

    def greedy_decode(self, src_ids: Any, *, max_len: int) -> list[int]:
        """``[START_ID, y_1, ...]``: argmax each step, ``max_len`` at most, stops after END_ID."""
        out = [START_ID]
        for _ in range(max_len):
            token = int(torch.argmax(self.forward(src_ids, out)[-1]))
            out.append(token)
            if token == END_ID:
                break
        return out
