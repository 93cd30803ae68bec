"""A third-party check of the oracle's Transformer layers: PyTorch's own built-in modules.

``torch.nn.TransformerEncoderLayer`` and ``torch.nn.TransformerDecoderLayer`` (batch_first, no
dropout, eval mode) are an implementation of Vaswani et al. 2017 written by neither reference.
With the oracle's weights copied in, they must give the oracle's ``encoder_layer`` and
``decoder_layer`` outputs to 1e-12 in float64, for post- and pre-LN and each activation.

Mask polarity differs: PyTorch's boolean ``src_mask``/``tgt_mask``/``memory_mask`` mark positions
that may NOT be attended (and ``*_key_padding_mask`` marks padding), the opposite of the project's
True = may attend (reference/PARAMETERS.md). The tests translate with ``~`` and also show that
skipping the translation gives a different answer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nnspec.reference import numpy_ref
from nnspec.reference.config import TransformerConfig
from nnspec.verify.torch_nn import decoder_layer_module, encoder_layer_module

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=10)
TOL = dict(rtol=1e-12, atol=1e-12)


def random_layer_params(config: TransformerConfig, *, decoder: bool, seed: int) -> dict:
    """An encoder/decoder layer dict with every array random (gains near 1).

    ``bias=False`` means no linear biases and, as in torch's ``bias=False`` layers, LayerNorm
    without a shift, so the shifts are zero then.
    """
    rng = np.random.default_rng(seed)
    d, d_ff = config.d_model, config.d_ff

    def mha():
        p = {f"W_{n}": rng.normal(0, 1 / np.sqrt(d), (d, d)) for n in "qkvo"}
        if config.bias:
            p.update({f"b_{n}": rng.normal(0, 0.3, d) for n in "qkvo"})
        return p

    def norm():
        beta = rng.normal(0, 0.3, d) if config.bias else np.zeros(d)
        return {"gamma": 1 + rng.normal(0, 0.3, d), "beta": beta}

    ffn = {"W_1": rng.normal(0, 1 / np.sqrt(d), (d_ff, d)),
           "W_2": rng.normal(0, 1 / np.sqrt(d_ff), (d, d_ff))}
    if config.bias:
        ffn.update(b_1=rng.normal(0, 0.3, d_ff), b_2=rng.normal(0, 0.3, d))
    if decoder:
        return {"self_attn": mha(), "norm_1": norm(), "cross_attn": mha(), "norm_2": norm(),
                "ffn": ffn, "norm_3": norm()}
    return {"self_attn": mha(), "norm_1": norm(), "ffn": ffn, "norm_2": norm()}


def _t(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64, device=device)


def torch_encoder_layer(config: TransformerConfig, p: dict, device: str) -> torch.nn.TransformerEncoderLayer:
    # the weight copying is nnspec.verify.torch_nn's, the adapter that runs these modules as an
    # implementation (tests/test_torch_nn.py): what is checked here is PyTorch against the oracle
    return encoder_layer_module(config, p, device=device)


def torch_decoder_layer(config: TransformerConfig, p: dict, device: str) -> torch.nn.TransformerDecoderLayer:
    return decoder_layer_module(config, p, device=device)


@st.composite
def layer_configs(draw: st.DrawFn) -> TransformerConfig:
    n_heads = draw(st.integers(1, 3), label="n_heads")
    return TransformerConfig(
        n_src_vocab=8, n_tgt_vocab=8,
        d_model=n_heads * draw(st.integers(1, 4), label="d_head"),
        n_heads=n_heads,
        d_ff=draw(st.integers(1, 8), label="d_ff"),
        norm_placement=draw(st.sampled_from(["post", "pre"]), label="norm_placement"),
        activation=draw(st.sampled_from(["relu", "gelu", "gelu_tanh"]), label="activation"),
        bias=draw(st.booleans(), label="bias"),
        layer_norm_eps=draw(st.sampled_from([1e-5, 1e-6]), label="layer_norm_eps"),
    )


def _lengths_mask(rng: np.random.Generator, B: int, S: int) -> np.ndarray:
    """(B, S) True for real tokens: each row a random length >= 1 followed by padding."""
    lengths = rng.integers(1, S + 1, size=B)
    return np.arange(S)[None, :] < lengths[:, None]


@fixture_ok
@given(config=layer_configs(), seed=st.integers(0, 2**16), B=st.integers(1, 3),
       S=st.integers(1, 6))
def test_encoder_layer_matches_torch(config, seed, B, S, device: str) -> None:
    rng = np.random.default_rng(seed)
    p = random_layer_params(config, decoder=False, seed=seed)
    x = rng.normal(size=(B, S, config.d_model))
    layer = torch_encoder_layer(config, p, device)
    with torch.no_grad():
        # no mask
        np.testing.assert_allclose(layer(_t(x, device)).cpu().numpy(),
                                   numpy_ref.encoder_layer(p, x, config), **TOL)
        # an attention mask: project True = may attend; torch True = may NOT attend
        allowed = rng.random((S, S)) < 0.6
        allowed[np.arange(S), np.arange(S)] = True  # no fully masked row (torch gives NaN there)
        expected = numpy_ref.encoder_layer(p, x, config, mask=allowed)
        observed = layer(_t(x, device), src_mask=torch.as_tensor(~allowed, device=device))
        np.testing.assert_allclose(observed.cpu().numpy(), expected, **TOL)
        # key padding: torch marks pads with True; the project's padding mask is (B, 1, S)
        real = _lengths_mask(rng, B, S)
        expected = numpy_ref.encoder_layer(p, x, config, mask=real[:, None, :])
        observed = layer(_t(x, device), src_key_padding_mask=torch.as_tensor(~real, device=device))
        np.testing.assert_allclose(observed.cpu().numpy(), expected, **TOL)


@fixture_ok
@given(config=layer_configs(), seed=st.integers(0, 2**16), B=st.integers(1, 3),
       S=st.integers(1, 5), T=st.integers(1, 5))
def test_decoder_layer_matches_torch(config, seed, B, S, T, device: str) -> None:
    rng = np.random.default_rng(seed)
    p = random_layer_params(config, decoder=True, seed=seed)
    y = rng.normal(size=(B, T, config.d_model))
    memory = rng.normal(size=(B, S, config.d_model))
    layer = torch_decoder_layer(config, p, device)
    causal = numpy_ref.causal_mask(T, T)
    real = _lengths_mask(rng, B, S)
    with torch.no_grad():
        # the decoder's own masked self-attention: torch's tgt_mask is the complement
        observed = layer(_t(y, device), _t(memory, device),
                         tgt_mask=torch.as_tensor(~causal, device=device), tgt_is_causal=True)
        np.testing.assert_allclose(observed.cpu().numpy(),
                                   numpy_ref.decoder_layer(p, y, memory, config), **TOL)
        # plus padding in the memory
        observed = layer(_t(y, device), _t(memory, device),
                         tgt_mask=torch.as_tensor(~causal, device=device),
                         memory_key_padding_mask=torch.as_tensor(~real, device=device))
        expected = numpy_ref.decoder_layer(p, y, memory, config, self_mask=causal,
                                           cross_mask=real[:, None, :])
        np.testing.assert_allclose(observed.cpu().numpy(), expected, **TOL)
        # no mask at all (an all-True mask in the project's polarity)
        observed = layer(_t(y, device), _t(memory, device))
        expected = numpy_ref.decoder_layer(p, y, memory, config,
                                           self_mask=np.ones((T, T), dtype=bool))
        np.testing.assert_allclose(observed.cpu().numpy(), expected, **TOL)


def test_mask_polarity_is_opposite_to_torch() -> None:
    """torch's float causal mask is 0 where the project's boolean mask is True and -inf where it
    is False; handing torch the project's boolean mask unconverted changes the result."""
    T = 5
    causal = numpy_ref.causal_mask(T, T)
    square = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    np.testing.assert_array_equal(square.numpy(), np.where(causal, 0.0, -np.inf))

    config = TransformerConfig(n_src_vocab=8, n_tgt_vocab=8, d_model=4, n_heads=2, d_ff=6)
    p = random_layer_params(config, decoder=True, seed=0)
    rng = np.random.default_rng(0)
    y, memory = rng.normal(size=(1, T, 4)), rng.normal(size=(1, 3, 4))
    layer = torch_decoder_layer(config, p, "cpu")
    # a checkerboard: every row has allowed and forbidden keys in either polarity, so torch
    # returns finite numbers both ways (a fully masked row would give NaN)
    allowed = (np.arange(T)[:, None] + np.arange(T)[None, :]) % 2 == 0
    with torch.no_grad():
        unconverted = layer(_t(y, "cpu"), _t(memory, "cpu"), tgt_mask=torch.as_tensor(allowed))
        converted = layer(_t(y, "cpu"), _t(memory, "cpu"), tgt_mask=torch.as_tensor(~allowed))
    expected = numpy_ref.decoder_layer(p, y, memory, config, self_mask=allowed)
    np.testing.assert_allclose(converted.numpy(), expected, **TOL)
    assert np.all(np.isfinite(unconverted.numpy()))
    assert not np.allclose(unconverted.numpy(), expected)


@pytest.mark.parametrize("norm_first", [False, True])
def test_torch_encoder_stack_matches_oracle_encode(norm_first: bool) -> None:
    """A whole encoder: torch.nn.TransformerEncoder (with its final norm when pre-LN) on the
    oracle's scaled embeddings plus sinusoidal positions equals ``Transformer.encode``."""
    config = TransformerConfig(n_src_vocab=9, n_tgt_vocab=9, d_model=6, n_heads=2,
                               n_encoder_layers=2, n_decoder_layers=1, d_ff=10, context=16,
                               norm_placement="pre" if norm_first else "post")
    params = numpy_ref.init_params(config, seed=4)
    params["encoder"] = [random_layer_params(config, decoder=False, seed=s) for s in (1, 2)]
    src = np.array([[4, 5, 6, 7, 0], [8, 4, 5, 0, 0]])
    x = numpy_ref.embed(src, params["W_E_src"]) * np.sqrt(6) + numpy_ref.positional_encoding(5, 6)
    stack = torch.nn.TransformerEncoder(
        torch_encoder_layer(config, params["encoder"][0], "cpu"), num_layers=2,
        norm=torch.nn.LayerNorm(6, dtype=torch.float64) if norm_first else None,
        enable_nested_tensor=False,
    ).eval()
    with torch.no_grad():
        for layer, p in zip(stack.layers, params["encoder"], strict=True):
            fresh = torch_encoder_layer(config, p, "cpu")
            layer.load_state_dict(fresh.state_dict())
        if norm_first:
            stack.norm.weight.copy_(_t(params["encoder_norm"]["gamma"], "cpu"))
            stack.norm.bias.copy_(_t(params["encoder_norm"]["beta"], "cpu"))
        observed = stack(_t(x, "cpu"), src_key_padding_mask=torch.as_tensor(src == 0))
    expected = numpy_ref.Transformer(config, params).encode(src)
    real = src != 0  # torch may leave padded positions as it likes; compare the real tokens
    np.testing.assert_allclose(observed.numpy()[real], expected[real], **TOL)
