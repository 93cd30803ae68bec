"""The PyTorch reference agrees with the NumPy oracle, component by component.

Both references are written from the same equations (``reference/PARAMETERS.md``) by different
means (NumPy float64 vs torch on any device), so agreement to 1e-12 in float64 on Hypothesis-drawn
shapes is evidence that neither has a slip of layout, axis, mask polarity or broadcasting. The
shapes deliberately include batch dims, n_queries != n_keys, d_k = 1, fully masked rows and
logits of +-1e4, the places where such slips show.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nnspec.reference import numpy_ref as N
from nnspec.reference import torch_ref as T

RTOL = ATOL = 1e-12
ACTIVATION_NAMES = [None, "sigmoid", "relu", "tanh", "gelu", "gelu_tanh"]
CREATION_FUNCTIONS = {"positional_encoding", "causal_mask"}

# The `device` fixture is a plain string, so sharing it across Hypothesis examples is harmless.
with_device = settings(
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ]
)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def tt(x: Any, device: str) -> Any:
    """A NumPy value as a torch value on ``device``: float -> float64, bool/int kept; dicts too."""
    if isinstance(x, dict):
        return {key: tt(value, device) for key, value in x.items()}
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype == np.bool_:
        return torch.as_tensor(a, device=device)
    if np.issubdtype(a.dtype, np.integer):
        return torch.as_tensor(a, dtype=torch.long, device=device)
    return torch.as_tensor(a, dtype=torch.float64, device=device)


def assert_agree(observed: Any, expected: Any, *, rtol: float = RTOL, atol: float = ATOL) -> None:
    """torch_ref's result (tensors, possibly nested in tuples) equals the oracle's to rtol/atol."""
    if isinstance(expected, tuple):
        assert isinstance(observed, tuple) and len(observed) == len(expected)
        for o, e in zip(observed, expected, strict=True):
            assert_agree(o, e, rtol=rtol, atol=atol)
        return
    assert isinstance(observed, torch.Tensor), type(observed)
    obs = observed.detach().cpu()
    obs = obs.numpy() if obs.dtype == torch.bool else obs.double().numpy()
    assert obs.shape == np.shape(expected)
    if obs.dtype == np.bool_:
        np.testing.assert_array_equal(obs, expected)
    else:
        np.testing.assert_allclose(obs, expected, rtol=rtol, atol=atol)


def floats(shape: Any, lo: float = -3.0, hi: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False))


def batch_shapes(max_dims: int = 2) -> st.SearchStrategy[tuple[int, ...]]:
    return hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=3)


def no_numpy_warnings(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the oracle with every RuntimeWarning (overflow, 0/0) turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# the two modules have the same surface
# ---------------------------------------------------------------------------------------------


def test_same_public_names() -> None:
    assert sorted(N.components.__all__) == sorted(T.components.__all__)
    for name in N.components.__all__:
        assert callable(getattr(N, name)) and callable(getattr(T, name)), name


@pytest.mark.parametrize("name", sorted(N.components.__all__))
def test_same_signature(name: str) -> None:
    """Same parameter names, kinds and defaults; creation functions add kw-only device/dtype."""
    np_params = list(inspect.signature(getattr(N, name)).parameters.values())
    t_params = list(inspect.signature(getattr(T, name)).parameters.values())
    if name in CREATION_FUNCTIONS:
        extra = t_params[len(np_params) :]
        assert [(p.name, p.kind, p.default) for p in extra] == [
            ("device", inspect.Parameter.KEYWORD_ONLY, None),
            ("dtype", inspect.Parameter.KEYWORD_ONLY, None),
        ]
        t_params = t_params[: len(np_params)]
    assert [(p.name, p.kind, p.default) for p in t_params] == [
        (p.name, p.kind, p.default) for p in np_params
    ]


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------

ELEMENTWISE = [
    "sigmoid",
    "sigmoid_prime",
    "relu",
    "relu_prime",
    "tanh",
    "tanh_prime",
]


@pytest.mark.parametrize("name", ELEMENTWISE)
@with_device
@given(z=floats(hnp.array_shapes(min_dims=0, max_dims=3), -40.0, 40.0))
def test_elementwise_activations(device: str, name: str, z: np.ndarray) -> None:
    expected = no_numpy_warnings(getattr(N, name), z)
    assert_agree(getattr(T, name)(tt(z, device)), expected)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("name", ["gelu", "gelu_prime"])
@with_device
@given(z=floats(hnp.array_shapes(min_dims=0, max_dims=3), -12.0, 12.0))
def test_gelu_variants(device: str, name: str, approximate: str, z: np.ndarray) -> None:
    expected = no_numpy_warnings(getattr(N, name), z, approximate=approximate)
    assert_agree(getattr(T, name)(tt(z, device), approximate=approximate), expected)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@with_device
@given(z=floats(hnp.array_shapes(min_dims=1, max_dims=2), -8.0, 8.0))
def test_activation_by_name(device: str, name: str | None, z: np.ndarray) -> None:
    assert_agree(T.activation(name)(tt(z, device)), N.activation(name)(z))


def test_activation_by_name_is_the_function() -> None:
    z = np.linspace(-3.0, 3.0, 13)
    np.testing.assert_array_equal(N.activation("gelu_tanh")(z), N.gelu(z, approximate="tanh"))
    np.testing.assert_array_equal(N.activation(None)(z), z)
    np.testing.assert_array_equal(N.activation("relu")(z), np.maximum(z, 0.0))


@pytest.mark.parametrize("module", [N, T], ids=["numpy_ref", "torch_ref"])
def test_bad_names_raise(module: Any) -> None:
    with pytest.raises(ValueError, match="swish"):
        module.activation("swish")
    with pytest.raises(ValueError, match="erf"):
        module.gelu(np.zeros(2) if module is N else torch.zeros(2), approximate="erf")
    with pytest.raises(ValueError, match="erf"):
        module.gelu_prime(np.zeros(2) if module is N else torch.zeros(2), approximate="erf")


# ---------------------------------------------------------------------------------------------
# softmax, layers, cost
# ---------------------------------------------------------------------------------------------


@st.composite
def logits_and_axis(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), label="shape")
    extremes = st.sampled_from([1e4, -1e4, 0.0])
    elements = st.one_of(st.floats(-50.0, 50.0), extremes)
    x = draw(hnp.arrays(np.float64, shape, elements=elements), label="logits")
    axis = draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    return x, axis


@with_device
@given(
    case=logits_and_axis(),
    temperature=st.one_of(st.just(1.0), st.floats(0.05, 20.0)).map(float),
)
def test_softmax(device: str, case: tuple[np.ndarray, int], temperature: float) -> None:
    x, axis = case
    expected = no_numpy_warnings(N.softmax, x, axis=axis, temperature=temperature)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(expected.sum(axis=axis), 1.0, rtol=1e-12)
    observed = T.softmax(tt(x, device), axis=axis, temperature=temperature)
    assert_agree(observed, expected)


@pytest.mark.parametrize("module", [N, T], ids=["numpy_ref", "torch_ref"])
@pytest.mark.parametrize("temperature", [0.0, -1.5])
def test_softmax_temperature_must_be_positive(module: Any, temperature: float) -> None:
    x = np.zeros(3) if module is N else torch.zeros(3)
    with pytest.raises(ValueError, match=str(temperature)):
        module.softmax(x, temperature=temperature)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@with_device
@given(data=st.data())
def test_dense(device: str, activation: str | None, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(), label="batch")
    n_in = data.draw(st.integers(1, 6), label="n_in")
    n_out = data.draw(st.integers(1, 6), label="n_out")
    a = data.draw(floats((*lead, n_in)), label="a")
    W = data.draw(floats((n_out, n_in)), label="W")
    b = data.draw(st.none() | floats((n_out,)), label="b")
    expected = N.dense(a, W, b, activation=activation)
    assert expected.shape == (*lead, n_out)
    assert_agree(T.dense(tt(a, device), tt(W, device), tt(b, device), activation), expected)


@with_device
@given(data=st.data())
def test_squared_error_cost(device: str, data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3), label="shape")
    a = data.draw(floats(shape), label="a")
    y = data.draw(floats(shape), label="y")
    expected = N.squared_error_cost(a, y)
    assert expected.shape == shape[:-1]
    assert_agree(T.squared_error_cost(tt(a, device), tt(y, device)), expected)


@with_device
@given(data=st.data())
def test_embed_and_unembed(device: str, data: st.DataObject) -> None:
    n_vocab = data.draw(st.integers(1, 9), label="n_vocab")
    d_model = data.draw(st.integers(1, 6), label="d_model")
    ids_shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=5), label="ids shape")
    ids = data.draw(hnp.arrays(np.int64, ids_shape, elements=st.integers(0, n_vocab - 1)))
    W_E = data.draw(floats((d_model, n_vocab)), label="W_E")
    e = N.embed(ids, W_E)
    assert e.shape == (*ids_shape, d_model)
    assert_agree(T.embed(tt(ids, device), tt(W_E, device)), e)

    W_U = data.draw(floats((n_vocab, d_model)), label="W_U")
    b_U = data.draw(st.none() | floats((n_vocab,)), label="b_U")
    logits = N.unembed(e, W_U, b_U)
    assert logits.shape == (*ids_shape, n_vocab)
    assert_agree(T.unembed(tt(e, device), tt(W_U, device), tt(b_U, device)), logits)


@pytest.mark.parametrize("module", [N, T], ids=["numpy_ref", "torch_ref"])
def test_embed_rejects_ids_outside_the_vocabulary(module: Any) -> None:
    W_E = np.ones((2, 4)) if module is N else torch.ones(2, 4, dtype=torch.float64)
    for bad in ([0, 4], [-1, 2]):
        with pytest.raises(IndexError):
            module.embed(np.array(bad) if module is N else torch.tensor(bad), W_E)


@given(n_positions=st.integers(0, 40), d_model=st.integers(1, 17))
def test_positional_encoding(n_positions: int, d_model: int) -> None:
    expected = N.positional_encoding(n_positions, d_model)
    assert expected.shape == (n_positions, d_model)
    assert_agree(T.positional_encoding(n_positions, d_model), expected)


def test_positional_encoding_is_interleaved(device: str) -> None:
    """The lecture notes' d_model = 6 table, from the formula: columns alternate sin, cos."""
    for pe in (N.positional_encoding(3, 6), T.positional_encoding(3, 6, device=device).cpu()):
        pe = np.asarray(pe)
        for pos in range(3):
            for i in range(3):
                angle = pos / 10000 ** (2 * i / 6)
                assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-15)
                assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-15)
    assert N.positional_encoding(2, 5)[1, 4] == pytest.approx(math.sin(1 / 10000 ** (4 / 5)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_creation_functions_take_device_and_dtype(device: str, dtype: torch.dtype) -> None:
    pe = T.positional_encoding(7, 4, device=device, dtype=dtype)
    assert pe.dtype == dtype and pe.device.type == device
    np.testing.assert_allclose(pe.double().cpu().numpy(), N.positional_encoding(7, 4), atol=1e-2)
    assert T.positional_encoding(2, 2).dtype == torch.float64
    m = T.causal_mask(3, 5, device=device)
    assert m.dtype == torch.bool and m.device.type == device
    with pytest.raises(ValueError):
        T.causal_mask(3, 5, dtype=torch.float32)


@with_device
@given(data=st.data())
def test_layer_norm(device: str, data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), label="shape")
    d = shape[-1]
    x = data.draw(floats(shape, -10.0, 10.0), label="x")
    gamma = data.draw(floats((d,)), label="gamma")
    beta = data.draw(floats((d,)), label="beta")
    eps = data.draw(st.sampled_from([1e-5, 1e-6, 1e-3]), label="eps")
    expected = N.layer_norm(x, gamma, beta, eps=eps)
    assert_agree(T.layer_norm(tt(x, device), tt(gamma, device), tt(beta, device), eps), expected)


@with_device
@given(data=st.data())
def test_batch_norm(device: str, data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=6), label="shape")
    d = shape[-1]
    x = data.draw(floats(shape, -10.0, 10.0), label="x")
    gamma = data.draw(floats((d,)), label="gamma")
    beta = data.draw(floats((d,)), label="beta")
    eps = data.draw(st.sampled_from([1e-5, 1e-3]), label="eps")
    expected = N.batch_norm(x, gamma, beta, eps=eps)
    assert_agree(T.batch_norm(tt(x, device), tt(gamma, device), tt(beta, device), eps), expected)


# ---------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------


@with_device
@given(n_queries=st.integers(0, 9), n_keys=st.integers(0, 9))
def test_causal_mask(device: str, n_queries: int, n_keys: int) -> None:
    expected = N.causal_mask(n_queries, n_keys)
    assert expected.dtype == np.bool_ and expected.shape == (n_queries, n_keys)
    # bottom-right aligned: the lower triangle shifted right by n_keys - n_queries
    np.testing.assert_array_equal(
        expected, np.tril(np.ones((n_queries, n_keys), bool), k=n_keys - n_queries)
    )
    assert_agree(T.causal_mask(n_queries, n_keys, device=device), expected)


@with_device
@given(data=st.data())
def test_padding_mask(device: str, data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=6), label="shape")
    ids = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 3)), label="ids")
    expected = N.padding_mask(ids, 0)
    assert expected.shape == (*shape[:-1], 1, shape[-1])
    np.testing.assert_array_equal(expected[..., 0, :], ids != 0)
    assert_agree(T.padding_mask(tt(ids, device), 0), expected)


# ---------------------------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------------------------


@st.composite
def masks(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray | None:
    """None, or a random boolean mask of ``shape`` whose first row is sometimes fully masked."""
    if draw(st.booleans(), label="use mask"):
        return None
    mask = draw(hnp.arrays(np.bool_, shape), label="mask")
    if len(shape) >= 2 and shape[-2] > 0 and draw(st.booleans(), label="mask a whole row"):
        mask[..., 0, :] = False
    return mask


def assert_fully_masked_rows_are_zero(
    weights: np.ndarray, mask: Any, out: np.ndarray | None = None
) -> None:
    """Rows with no allowed key: zero weights (and zero output where given); others sum to 1."""
    assert np.all(np.isfinite(weights))
    if mask is None:
        return
    dead = ~np.broadcast_to(mask, weights.shape).any(axis=-1)  # (..., n_q)
    assert np.all(weights[dead] == 0.0)
    assert np.all(weights[~np.broadcast_to(mask, weights.shape)] == 0.0)
    np.testing.assert_allclose(weights[~dead].sum(axis=-1), 1.0, rtol=1e-12)
    if out is not None:
        assert np.all(np.isfinite(out)) and np.all(out[dead] == 0.0)


@with_device
@given(data=st.data())
def test_scaled_dot_product_attention(device: str, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(), label="batch")
    n_q = data.draw(st.integers(1, 6), label="n_q")
    n_k = data.draw(st.integers(1, 6), label="n_k")
    d_k = data.draw(st.integers(1, 8), label="d_k")
    d_v = data.draw(st.integers(1, 5), label="d_v")
    q = data.draw(floats((*lead, n_q, d_k)), label="q")
    k = data.draw(floats((*lead, n_k, d_k)), label="k")
    v = data.draw(floats((*lead, n_k, d_v)), label="v")
    mask_shape = data.draw(st.sampled_from([(n_q, n_k), (*lead, n_q, n_k), (1, n_k)]))
    mask = data.draw(masks(mask_shape))
    out, weights = no_numpy_warnings(N.scaled_dot_product_attention, q, k, v, mask)
    assert out.shape == (*lead, n_q, d_v) and weights.shape == (*lead, n_q, n_k)
    assert_fully_masked_rows_are_zero(weights, mask, out)
    observed = T.scaled_dot_product_attention(
        tt(q, device), tt(k, device), tt(v, device), tt(mask, device)
    )
    assert_agree(observed, (out, weights))


@pytest.mark.parametrize("module", [N, T], ids=["numpy_ref", "torch_ref"])
def test_float_masks_are_refused(module: Any) -> None:
    """An additive 0/-inf mask would flip the True = may attend polarity silently; refuse it."""
    q = np.ones((2, 3)) if module is N else torch.ones(2, 3, dtype=torch.float64)
    mask = np.ones((2, 2)) if module is N else torch.ones(2, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="boolean"):
        module.scaled_dot_product_attention(q, q, q, mask)


def mha_params(data: st.DataObject, d_model: int) -> dict[str, np.ndarray]:
    params: dict[str, np.ndarray] = {}
    for name in ("q", "k", "v", "o"):
        params[f"W_{name}"] = data.draw(floats((d_model, d_model), -1.0, 1.0), label=f"W_{name}")
        if data.draw(st.booleans(), label=f"has b_{name}"):
            params[f"b_{name}"] = data.draw(floats((d_model,), -1.0, 1.0), label=f"b_{name}")
    return params


@with_device
@given(data=st.data())
def test_multi_head_attention(device: str, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(), label="batch")
    n_heads = data.draw(st.integers(1, 4), label="n_heads")
    d_head = data.draw(st.integers(1, 3), label="d_head")
    d_model = n_heads * d_head
    n_q = data.draw(st.integers(1, 5), label="n_q")
    n_k = data.draw(st.integers(1, 5), label="n_k")
    params = mha_params(data, d_model)
    x_q = data.draw(floats((*lead, n_q, d_model)), label="x_q")
    x_kv = data.draw(floats((*lead, n_k, d_model)), label="x_kv")
    mask_shape = data.draw(
        st.sampled_from([(n_q, n_k), (n_heads, n_q, n_k), (*lead, 1, n_q, n_k)]), label="mask shape"
    )
    mask = data.draw(masks(mask_shape))
    out, weights = no_numpy_warnings(N.multi_head_attention, params, x_q, x_kv, n_heads, mask)
    assert out.shape == (*lead, n_q, d_model) and weights.shape == (*lead, n_heads, n_q, n_k)
    assert_fully_masked_rows_are_zero(weights, mask)
    assert np.all(np.isfinite(out))
    observed = T.multi_head_attention(
        tt(params, device), tt(x_q, device), tt(x_kv, device), n_heads, tt(mask, device)
    )
    assert_agree(observed, (out, weights))


def test_multi_head_attention_heads_are_row_slices() -> None:
    """Head h of the oracle is plain SDPA on rows h*d_head:(h+1)*d_head of W_q, W_k, W_v."""
    rng = np.random.default_rng(0)
    d_model, n_heads, d_head = 6, 3, 2
    params = {f"W_{n}": rng.standard_normal((d_model, d_model)) for n in "qkvo"}
    x = rng.standard_normal((4, d_model))
    out, weights = N.multi_head_attention(params, x, x, n_heads)
    concat = []
    for h in range(n_heads):
        rows = slice(h * d_head, (h + 1) * d_head)
        q, k, v = (x @ params[f"W_{n}"][rows].T for n in "qkv")
        head, w = N.scaled_dot_product_attention(q, k, v)
        np.testing.assert_allclose(weights[h], w, rtol=1e-13)
        concat.append(head)
    np.testing.assert_allclose(out, np.concatenate(concat, -1) @ params["W_o"].T, rtol=1e-12)


@pytest.mark.parametrize("module", [N, T], ids=["numpy_ref", "torch_ref"])
def test_multi_head_attention_rejects_heads_not_dividing_d_model(module: Any) -> None:
    x = np.ones((2, 6)) if module is N else torch.ones(2, 6, dtype=torch.float64)
    W = np.eye(6) if module is N else torch.eye(6, dtype=torch.float64)
    params = {"W_q": W, "W_k": W, "W_v": W, "W_o": W}
    with pytest.raises(ValueError, match="n_heads=4"):
        module.multi_head_attention(params, x, x, 4)


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
@with_device
@given(data=st.data())
def test_feed_forward(device: str, activation: str, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(), label="batch")
    d_model = data.draw(st.integers(1, 5), label="d_model")
    d_ff = data.draw(st.integers(1, 8), label="d_ff")
    params = {
        "W_1": data.draw(floats((d_ff, d_model)), label="W_1"),
        "b_1": data.draw(floats((d_ff,)), label="b_1"),
        "W_2": data.draw(floats((d_model, d_ff)), label="W_2"),
        "b_2": data.draw(floats((d_model,)), label="b_2"),
    }
    x = data.draw(floats((*lead, 2, d_model)), label="x")
    expected = N.feed_forward(params, x, activation=activation)
    assert expected.shape == x.shape
    assert_agree(T.feed_forward(tt(params, device), tt(x, device), activation), expected)


@with_device
@given(data=st.data())
def test_additive_attention(device: str, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(), label="batch")
    n = data.draw(st.integers(1, 6), label="n")
    d_s = data.draw(st.integers(1, 4), label="d_s")
    d_h = data.draw(st.integers(1, 4), label="d_h")
    d_attn = data.draw(st.integers(1, 5), label="d_attn")
    params = {
        "W": data.draw(floats((d_attn, d_s + d_h)), label="W"),
        "v": data.draw(floats((d_attn,)), label="v"),
    }
    if data.draw(st.booleans(), label="has b"):
        params["b"] = data.draw(floats((d_attn,)), label="b")
    s_prev = data.draw(floats((*lead, d_s)), label="s_prev")
    h = data.draw(floats((*lead, n, d_h)), label="h")
    mask = data.draw(st.none() | hnp.arrays(np.bool_, (*lead, n)), label="mask")
    context, weights = no_numpy_warnings(N.additive_attention, params, s_prev, h, mask)
    assert context.shape == (*lead, d_h) and weights.shape == (*lead, n)
    assert np.all(np.isfinite(context))
    observed = T.additive_attention(
        tt(params, device), tt(s_prev, device), tt(h, device), tt(mask, device)
    )
    assert_agree(observed, (context, weights))


@with_device
@given(data=st.data())
def test_dot_attention(device: str, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(), label="batch")
    n = data.draw(st.integers(1, 6), label="n")
    d = data.draw(st.integers(1, 5), label="d")
    s = data.draw(floats((*lead, d)), label="s")
    h = data.draw(floats((*lead, n, d)), label="h")
    mask = data.draw(st.none() | hnp.arrays(np.bool_, (*lead, n)), label="mask")
    context, weights = no_numpy_warnings(N.dot_attention, s, h, mask)
    assert context.shape == (*lead, d) and weights.shape == (*lead, n)
    if mask is not None:
        assert np.all(weights[~mask] == 0.0)
        assert np.all(context[~mask.any(-1)] == 0.0)
    observed = T.dot_attention(tt(s, device), tt(h, device), tt(mask, device))
    assert_agree(observed, (context, weights))


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------


def lstm_params(data: st.DataObject, D: int, H: int, biases: bool) -> dict[str, np.ndarray]:
    params = {
        "W_ih": data.draw(floats((4 * H, D), -1.0, 1.0), label="W_ih"),
        "W_hh": data.draw(floats((4 * H, H), -1.0, 1.0), label="W_hh"),
    }
    if biases:
        params["b_ih"] = data.draw(floats((4 * H,), -1.0, 1.0), label="b_ih")
        params["b_hh"] = data.draw(floats((4 * H,), -1.0, 1.0), label="b_hh")
    return params


@with_device
@given(data=st.data())
def test_lstm_cell(device: str, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(), label="batch")
    D = data.draw(st.integers(1, 4), label="D")
    H = data.draw(st.integers(1, 4), label="H")
    params = lstm_params(data, D, H, data.draw(st.booleans(), label="biases"))
    x = data.draw(floats((*lead, D)), label="x")
    h = data.draw(floats((*lead, H), -1.0, 1.0), label="h")
    c = data.draw(floats((*lead, H)), label="c")
    expected = N.lstm_cell(params, x, h, c)
    assert expected[0].shape == expected[1].shape == (*lead, H)
    observed = T.lstm_cell(tt(params, device), tt(x, device), tt(h, device), tt(c, device))
    assert_agree(observed, expected)


@with_device
@given(data=st.data())
def test_lstm(device: str, data: st.DataObject) -> None:
    lead = data.draw(batch_shapes(1), label="batch")
    T_len = data.draw(st.integers(0, 6), label="T")
    D = data.draw(st.integers(1, 4), label="D")
    H = data.draw(st.integers(1, 4), label="H")
    params = lstm_params(data, D, H, biases=True)
    xs = data.draw(floats((*lead, T_len, D)), label="xs")
    h0 = data.draw(st.none() | floats((*lead, H), -1.0, 1.0), label="h0")
    c0 = None if h0 is None else data.draw(floats((*lead, H)), label="c0")
    outputs, (h_n, c_n) = N.lstm(params, xs, h0, c0)
    assert outputs.shape == (*lead, T_len, H)
    if T_len:
        np.testing.assert_array_equal(outputs[..., -1, :], h_n)
    observed = T.lstm(tt(params, device), tt(xs, device), tt(h0, device), tt(c0, device))
    assert_agree(observed[0], outputs)
    assert_agree(observed[1], (h_n, c_n))


# ---------------------------------------------------------------------------------------------
# low precision: torch_ref runs in float32/16 and bfloat16 without NaN, close to the oracle
# ---------------------------------------------------------------------------------------------

LOW_PRECISION_ATOL = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 1e-1}


@pytest.mark.parametrize("dtype", list(LOW_PRECISION_ATOL), ids=str)
def test_low_precision_smoke(device: str, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(7)
    atol = LOW_PRECISION_ATOL[dtype]

    def lp(x: Any) -> Any:
        """The float64 value rounded to ``dtype`` on ``device``; the oracle gets the same values."""
        if isinstance(x, dict):
            return {key: lp(value) for key, value in x.items()}
        return torch.as_tensor(x, device=device).to(dtype)

    def back(x: Any) -> Any:
        if isinstance(x, dict):
            return {key: back(value) for key, value in x.items()}
        if x.dtype == torch.bool:
            return x.cpu().numpy()
        return x.double().cpu().numpy()

    def check(name: str, t_args: tuple, kwargs: dict | None = None) -> None:
        kwargs = kwargs or {}
        t_out = getattr(T, name)(*t_args, **kwargs)
        np_args = tuple(back(a) if isinstance(a, (torch.Tensor, dict)) else a for a in t_args)
        np_out = getattr(N, name)(*np_args, **kwargs)
        t_flat = t_out if isinstance(t_out, tuple) else (t_out,)
        np_flat = np_out if isinstance(np_out, tuple) else (np_out,)
        for o, e in zip(t_flat, np_flat, strict=True):
            assert o.dtype == dtype, (name, o.dtype)
            assert torch.isfinite(o).all(), name
            np.testing.assert_allclose(back(o), e, atol=atol, rtol=atol, err_msg=name)

    z = lp(rng.uniform(-4, 4, size=(3, 8)))
    for name in ELEMENTWISE + ["gelu", "gelu_prime"]:
        check(name, (z,))
    check("gelu", (z,), {"approximate": "tanh"})
    check("softmax", (lp([[1e4, -1e4, 0.0], [3.0, 1.0, 2.0]]),), {"temperature": 0.5})
    d = 8
    x = lp(rng.standard_normal((2, 5, d)))
    gamma, beta = lp(rng.uniform(0.5, 1.5, d)), lp(rng.standard_normal(d))
    check("layer_norm", (lp(rng.standard_normal((2, 5, d)) * 300 + 50), gamma, beta))
    check("batch_norm", (x, gamma, beta))
    params = {f"W_{n}": rng.standard_normal((d, d)) / math.sqrt(d) for n in "qkvo"}
    mask = torch.as_tensor(rng.random((5, 5)) < 0.6, device=device)
    mask[0] = False  # a fully masked row
    out, weights = T.multi_head_attention(lp(params), x, x, 2, mask)
    assert torch.all(weights[..., 0, :] == 0) and torch.all(torch.isfinite(out))
    check("multi_head_attention", (lp(params), x, x, 2, mask))
    check("scaled_dot_product_attention", (x, x, x, mask))
    ffn = {"W_1": rng.standard_normal((16, d)) / 3, "W_2": rng.standard_normal((d, 16)) / 4}
    check("feed_forward", (lp(ffn), x), {"activation": "gelu"})
    lstm_p = {
        "W_ih": rng.standard_normal((4 * 3, d)) / 3,
        "W_hh": rng.standard_normal((4 * 3, 3)) / 3,
    }
    outputs, (h_n, c_n) = T.lstm(lp(lstm_p), x)
    assert outputs.dtype == dtype and torch.isfinite(outputs).all()
    np.testing.assert_allclose(back(outputs), N.lstm(back(lp(lstm_p)), back(x))[0], atol=atol)
    check("dot_attention", (x[:, 0], x, mask[1:3]))
