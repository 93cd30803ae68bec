"""The NumPy oracle agrees with PyTorch's own building blocks, a third party that shares no code.

``tests/test_components.py`` shows the two references agree with each other; both were written from
the same reading of the documents, so a shared misreading would pass there. PyTorch's builtins
(``F.softmax``, ``F.layer_norm``, ``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``,
``nn.LSTM``...) were written independently, so agreement with them in float64 to 1e-12 pins the
layout conventions of ``reference/PARAMETERS.md`` (W is (out, in), heads are row slices, gates are
i, f, g, o, variance is biased with eps inside the square root) to a widely used implementation.
"""

from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from nnspec.reference import numpy_ref as N

RTOL = ATOL = 1e-12


def t64(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def agree(observed: torch.Tensor, expected: np.ndarray, *, rtol: float = RTOL) -> None:
    """PyTorch's result equals the oracle's to rtol/atol 1e-12 (shape, dtype and NaN positions too)."""
    torch.testing.assert_close(
        observed.detach().double(), torch.from_numpy(np.asarray(expected, dtype=np.float64)),
        rtol=rtol, atol=ATOL, equal_nan=True,
    )


def floats(shape: Any, lo: float = -3.0, hi: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False))


def batch_shapes(max_dims: int = 2) -> st.SearchStrategy[tuple[int, ...]]:
    return hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=3)


def grad_of(fn: Any, z: np.ndarray) -> torch.Tensor:
    """d fn(z) / dz elementwise, by PyTorch's autograd (fn acts elementwise, so sum() is enough)."""
    zt = t64(z).requires_grad_(True)
    (g,) = torch.autograd.grad(fn(zt).sum(), zt)
    return g


# ---------------------------------------------------------------------------------------------
# activations and their derivatives
# ---------------------------------------------------------------------------------------------

ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "gelu": lambda z: F.gelu(z, approximate="none"),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@given(z=floats(hnp.array_shapes(min_dims=0, max_dims=3), -30.0, 30.0))
def test_activation_vs_torch(name: str, z: np.ndarray) -> None:
    agree(ACTIVATIONS[name](t64(z)), getattr(N, name)(z))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@given(z=floats(hnp.array_shapes(min_dims=1, max_dims=2), -10.0, 10.0))
def test_gelu_vs_torch(approximate: str, z: np.ndarray) -> None:
    agree(F.gelu(t64(z), approximate=approximate), N.gelu(z, approximate=approximate))


@pytest.mark.parametrize(
    ("name", "kwargs", "torch_fn"),
    [
        ("sigmoid_prime", {}, torch.sigmoid),
        ("tanh_prime", {}, torch.tanh),
        ("relu_prime", {}, torch.relu),
        ("gelu_prime", {"approximate": "none"}, lambda z: F.gelu(z, approximate="none")),
        ("gelu_prime", {"approximate": "tanh"}, lambda z: F.gelu(z, approximate="tanh")),
    ],
    ids=["sigmoid", "tanh", "relu", "gelu", "gelu_tanh"],
)
@given(
    z=floats(hnp.array_shapes(min_dims=1, max_dims=2), -10.0, 10.0)
    | hnp.arrays(np.float64, 3, elements=st.sampled_from([0.0, -0.0, 1e-300]))
)
def test_derivatives_vs_autograd(name: str, kwargs: dict, torch_fn: Any, z: np.ndarray) -> None:
    """The hand-written derivatives used by backpropagation equal autograd's (ReLU'(0) = 0 too)."""
    agree(grad_of(torch_fn, z), getattr(N, name)(z, **kwargs))


# ---------------------------------------------------------------------------------------------
# softmax, norms, layers
# ---------------------------------------------------------------------------------------------


@given(data=st.data())
def test_softmax_vs_torch(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), label="shape")
    elements = st.floats(-50.0, 50.0) | st.sampled_from([1e4, -1e4])
    x = data.draw(hnp.arrays(np.float64, shape, elements=elements), label="logits")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    temperature = data.draw(st.just(1.0) | st.floats(0.05, 20.0), label="temperature")
    expected = N.softmax(x, axis=axis, temperature=temperature)
    agree(F.softmax(t64(x) / temperature, dim=axis), expected)


@given(data=st.data())
def test_layer_norm_vs_torch(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), label="shape")
    d = shape[-1]
    x = data.draw(floats(shape, -10.0, 10.0), label="x")
    gamma = data.draw(floats((d,)), label="gamma")
    beta = data.draw(floats((d,)), label="beta")
    eps = data.draw(st.sampled_from([1e-5, 1e-3]), label="eps")
    expected = N.layer_norm(x, gamma, beta, eps=eps)
    agree(F.layer_norm(t64(x), (d,), t64(gamma), t64(beta), eps), expected)


@given(data=st.data())
def test_batch_norm_vs_torch(data: st.DataObject) -> None:
    """F.batch_norm wants features on axis 1; the oracle keeps them last, so move the axis."""
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=6))
    d = shape[-1]
    x = data.draw(floats(shape, -10.0, 10.0), label="x")
    gamma = data.draw(floats((d,)), label="gamma")
    beta = data.draw(floats((d,)), label="beta")
    channels_second = t64(x).movedim(-1, 1)  # (N, C, ...)
    out = F.batch_norm(
        channels_second, None, None, t64(gamma), t64(beta), training=True, eps=1e-5
    ).movedim(1, -1)
    agree(out, N.batch_norm(x, gamma, beta, eps=1e-5))


@given(data=st.data())
def test_dense_embed_cost_vs_torch(data: st.DataObject) -> None:
    """dense = act(F.linear) (W is (out, in)); embed = F.embedding on W_E^T; cost = summed MSE."""
    lead = data.draw(batch_shapes(), label="batch")
    n_in = data.draw(st.integers(1, 6), label="n_in")
    n_out = data.draw(st.integers(1, 6), label="n_out")
    a = data.draw(floats((*lead, n_in)), label="a")
    W = data.draw(floats((n_out, n_in)), label="W")
    b = data.draw(floats((n_out,)), label="b")
    agree(torch.sigmoid(F.linear(t64(a), t64(W), t64(b))), N.dense(a, W, b, "sigmoid"))

    y = data.draw(floats((*lead, n_out)), label="y")
    a_out = N.dense(a, W, b, None)
    mse = F.mse_loss(t64(a_out), t64(y), reduction="none").sum(-1)
    agree(mse, N.squared_error_cost(a_out, y))

    ids = data.draw(hnp.arrays(np.int64, lead or (1,), elements=st.integers(0, n_in - 1)))
    agree(F.embedding(torch.as_tensor(ids), t64(W).T), N.embed(ids, W))


# ---------------------------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------------------------


@given(data=st.data())
def test_sdpa_vs_torch(data: st.DataObject) -> None:
    """Boolean masks have the same polarity (True = may attend). Torch's answer on a fully masked
    row is not the contract's (NaN or zeros depending on version and kernel), so those rows are
    left out of the comparison."""
    lead = data.draw(batch_shapes(), label="batch")
    n_q = data.draw(st.integers(1, 6), label="n_q")
    n_k = data.draw(st.integers(1, 6), label="n_k")
    d_k = data.draw(st.integers(1, 8), label="d_k")
    d_v = data.draw(st.integers(1, 5), label="d_v")
    q = data.draw(floats((*lead, n_q, d_k)), label="q")
    k = data.draw(floats((*lead, n_k, d_k)), label="k")
    v = data.draw(floats((*lead, n_k, d_v)), label="v")
    mask = data.draw(st.none() | hnp.arrays(np.bool_, (n_q, n_k)), label="mask")
    out, _ = N.scaled_dot_product_attention(q, k, v, mask)
    attn_mask = None if mask is None else torch.as_tensor(mask)
    expected = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=attn_mask)
    alive = np.ones(n_q, bool) if mask is None else mask.any(-1)  # (n_q,)
    agree(expected[..., torch.as_tensor(alive), :], out[..., alive, :])


def mha_module(params: dict[str, np.ndarray], n_heads: int, bias: bool) -> torch.nn.Module:
    """nn.MultiheadAttention holding the oracle's weights: in_proj = [W_q; W_k; W_v], out = W_o."""
    d_model = params["W_q"].shape[0]
    mha = torch.nn.MultiheadAttention(
        d_model, n_heads, bias=bias, batch_first=True, dtype=torch.float64
    )
    with torch.no_grad():
        mha.in_proj_weight.copy_(t64(np.concatenate([params[f"W_{n}"] for n in "qkv"])))
        mha.out_proj.weight.copy_(t64(params["W_o"]))
        if bias:
            mha.in_proj_bias.copy_(t64(np.concatenate([params[f"b_{n}"] for n in "qkv"])))
            mha.out_proj.bias.copy_(t64(params["b_o"]))
    return mha.eval()


@given(data=st.data())
def test_multi_head_attention_vs_nn_multihead_attention(data: st.DataObject) -> None:
    B = data.draw(st.integers(1, 3), label="B")
    n_heads = data.draw(st.integers(1, 4), label="n_heads")
    d_head = data.draw(st.integers(1, 3), label="d_head")
    d_model = n_heads * d_head
    n_q = data.draw(st.integers(1, 5), label="n_q")
    n_k = data.draw(st.integers(1, 5), label="n_k")
    bias = data.draw(st.booleans(), label="bias")
    params = {f"W_{n}": data.draw(floats((d_model, d_model), -1, 1), label=n) for n in "qkvo"}
    if bias:
        params |= {f"b_{n}": data.draw(floats((d_model,), -1, 1), label=f"b_{n}") for n in "qkvo"}
    x_q = data.draw(floats((B, n_q, d_model)), label="x_q")
    x_kv = data.draw(floats((B, n_k, d_model)), label="x_kv")
    mask = data.draw(st.none() | hnp.arrays(np.bool_, (n_q, n_k)), label="mask")
    if mask is not None:  # nn.MHA answers NaN on a fully masked row: give each row one key
        mask[:, 0] |= ~mask.any(-1)
    out, weights = N.multi_head_attention(params, x_q, x_kv, n_heads, mask)

    mha = mha_module(params, n_heads, bias)
    # nn.MultiheadAttention's boolean attn_mask marks the positions NOT allowed: invert
    attn_mask = None if mask is None else ~torch.as_tensor(mask)
    xq, xkv = t64(x_q), t64(x_kv)
    t_out, t_mean = mha(xq, xkv, xkv, attn_mask=attn_mask, average_attn_weights=True)
    _, t_heads = mha(xq, xkv, xkv, attn_mask=attn_mask, average_attn_weights=False)
    agree(t_out, out)
    agree(t_heads, weights)  # (B, n_heads, n_q, n_k)
    agree(t_mean, weights.mean(axis=-3))  # (B, n_q, n_k)


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------


def lstm_draw(data: st.DataObject, D: int, H: int) -> dict[str, np.ndarray]:
    return {
        "W_ih": data.draw(floats((4 * H, D), -1, 1), label="W_ih"),
        "W_hh": data.draw(floats((4 * H, H), -1, 1), label="W_hh"),
        "b_ih": data.draw(floats((4 * H,), -1, 1), label="b_ih"),
        "b_hh": data.draw(floats((4 * H,), -1, 1), label="b_hh"),
    }


@given(data=st.data())
def test_lstm_vs_nn_lstm(data: st.DataObject) -> None:
    """Same weights in nn.LSTM (gates i, f, g, o stacked the same way) give the same sequence."""
    B = data.draw(st.integers(1, 3), label="B")
    T_len = data.draw(st.integers(1, 6), label="T")
    D = data.draw(st.integers(1, 4), label="D")
    H = data.draw(st.integers(1, 4), label="H")
    params = lstm_draw(data, D, H)
    xs = data.draw(floats((B, T_len, D)), label="xs")
    h0 = data.draw(floats((B, H), -1, 1), label="h0")
    c0 = data.draw(floats((B, H)), label="c0")
    outputs, (h_n, c_n) = N.lstm(params, xs, h0, c0)

    net = torch.nn.LSTM(D, H, num_layers=1, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(t64(params["W_ih"]))
        net.weight_hh_l0.copy_(t64(params["W_hh"]))
        net.bias_ih_l0.copy_(t64(params["b_ih"]))
        net.bias_hh_l0.copy_(t64(params["b_hh"]))
    t_out, (t_h, t_c) = net(t64(xs), (t64(h0)[None], t64(c0)[None]))
    agree(t_out, outputs)
    agree(t_h[0], h_n)
    agree(t_c[0], c_n)


@given(data=st.data())
def test_lstm_cell_vs_nn_lstm_cell(data: st.DataObject) -> None:
    B = data.draw(st.integers(1, 3), label="B")
    D = data.draw(st.integers(1, 4), label="D")
    H = data.draw(st.integers(1, 4), label="H")
    params = lstm_draw(data, D, H)
    x = data.draw(floats((B, D)), label="x")
    h = data.draw(floats((B, H), -1, 1), label="h")
    c = data.draw(floats((B, H)), label="c")
    h_new, c_new = N.lstm_cell(params, x, h, c)
    cell = torch.nn.LSTMCell(D, H, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(t64(params["W_ih"]))
        cell.weight_hh.copy_(t64(params["W_hh"]))
        cell.bias_ih.copy_(t64(params["b_ih"]))
        cell.bias_hh.copy_(t64(params["b_hh"]))
    t_h, t_c = cell(t64(x), (t64(h), t64(c)))
    agree(t_h, h_new)
    agree(t_c, c_new)
