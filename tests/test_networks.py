"""Whole networks: the NumPy oracle against the torch mirror, plus properties of the oracle itself.

Differential checks draw small configurations covering the switches that change the computation
(post/pre norm, relu/gelu, sinusoidal/learned/no positions, biases, tied and scaled embeddings,
Seq2Seq attention kinds) and random parameters (every array redrawn, so layer-norm gains, shifts
and biases are not their 1/0 initial values). Metamorphic checks pin what the documents say about
the networks: the decoder is causal ("Transformer lecture notes (handwritten)", masked decoder
self-attention), padding is invisible, a KV cache reproduces the parallel forward pass, reversing
the source (Sutskever et al. 2014) is a relabelling of the encoder's input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nnspec.reference import numpy_ref, torch_ref
from nnspec.reference.config import (
    END_ID,
    PAD_ID,
    START_ID,
    GPTConfig,
    Seq2SeqConfig,
    TransformerConfig,
    preset,
)

TOL = dict(rtol=1e-10, atol=1e-10)
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=20)


def redraw(params, seed: int, scale: float = 0.5):
    """Every array of ``params`` redrawn (same layout): matrices N(0, scale^2 / fan_in), vectors
    N(0, scale^2), layer-norm gains around 1."""
    rng = np.random.default_rng(seed)

    def walk(p, key=""):
        if isinstance(p, dict):
            return {k: walk(v, k) for k, v in p.items()}
        if isinstance(p, list):
            return [walk(v) for v in p]
        fan = p.shape[-1] if p.ndim > 1 else 1
        return rng.normal(0.0, scale / np.sqrt(fan), size=p.shape) + (key == "gamma")

    return walk(params)


def close(observed, expected, **tol) -> None:
    if isinstance(observed, torch.Tensor):
        observed = observed.detach().cpu().numpy()
    np.testing.assert_allclose(observed, expected, **(tol or TOL))


switches = dict(
    norm_placement=st.sampled_from(["post", "pre"]),
    activation=st.sampled_from(["relu", "gelu", "gelu_tanh"]),
    positional=st.sampled_from(["sinusoidal", "learned", "none"]),
    bias=st.booleans(),
    tie_embeddings=st.booleans(),
    scale_embeddings=st.booleans(),
    # torch's default, and two a network that hard-codes nn.LayerNorm(d_model) would not honour
    layer_norm_eps=st.sampled_from([1e-5, 1e-2, 1e-6]),
)


@st.composite
def transformer_configs(draw: st.DrawFn) -> TransformerConfig:
    n_heads = draw(st.integers(1, 2), label="n_heads")
    n_vocab = draw(st.integers(5, 9), label="n_vocab")
    return TransformerConfig(
        n_src_vocab=draw(st.integers(5, 9), label="n_src_vocab"),
        n_tgt_vocab=n_vocab,
        d_model=n_heads * draw(st.integers(1, 3), label="d_head"),
        n_heads=n_heads,
        n_encoder_layers=draw(st.integers(1, 2), label="n_encoder_layers"),
        n_decoder_layers=draw(st.integers(1, 2), label="n_decoder_layers"),
        d_ff=draw(st.integers(1, 6), label="d_ff"),
        context=12,
        **{k: draw(v, label=k) for k, v in switches.items()},
    )


@st.composite
def gpt_configs(draw: st.DrawFn) -> GPTConfig:
    n_heads = draw(st.integers(1, 2), label="n_heads")
    return GPTConfig(
        n_vocab=draw(st.integers(5, 9), label="n_vocab"),
        context=12,
        d_model=n_heads * draw(st.integers(1, 3), label="d_head"),
        n_heads=n_heads,
        n_layers=draw(st.integers(1, 2), label="n_layers"),
        d_ff=draw(st.integers(1, 6), label="d_ff"),
        **{k: draw(v, label=k) for k, v in switches.items()},
    )


@st.composite
def seq2seq_configs(draw: st.DrawFn) -> Seq2SeqConfig:
    return Seq2SeqConfig(
        n_src_vocab=draw(st.integers(5, 9), label="n_src_vocab"),
        n_tgt_vocab=draw(st.integers(5, 9), label="n_tgt_vocab"),
        d_embed=draw(st.integers(1, 4), label="d_embed"),
        d_hidden=draw(st.integers(1, 4), label="d_hidden"),
        n_layers=draw(st.integers(1, 2), label="n_layers"),
        reverse_source=draw(st.booleans(), label="reverse_source"),
        attention=draw(st.sampled_from([None, "bahdanau", "luong"]), label="attention"),
        d_attn=draw(st.integers(1, 4), label="d_attn"),
    )


def token_ids(draw: st.DrawFn, n_vocab: int, shape: tuple[int, ...], label: str, low: int = 0):
    flat = draw(st.lists(st.integers(low, n_vocab - 1), min_size=int(np.prod(shape)),
                         max_size=int(np.prod(shape))), label=label)
    return np.array(flat, dtype=np.int64).reshape(shape)


# ----------------------------------------------------------------------------------------------
# Layout and conversions
# ----------------------------------------------------------------------------------------------


def test_public_names_match() -> None:
    assert sorted(numpy_ref.networks.__all__) == sorted(
        set(torch_ref.networks.__all__) - {"to_torch", "to_numpy"})
    assert {"to_torch", "to_numpy"} <= set(torch_ref.networks.__all__)


@pytest.mark.parametrize("name", ["mnist_3b1b", "transformer_tiny", "gpt_tiny", "seq2seq_tiny"])
def test_init_params_is_deterministic_and_shared(name: str, device: str) -> None:
    config = preset(name)
    a, b = numpy_ref.init_params(config, seed=5), numpy_ref.init_params(config, seed=5)
    c = numpy_ref.init_params(config, seed=6)
    t = torch_ref.init_params(config, seed=5, device=device)
    flat = lambda p: list(_leaves(p))  # noqa: E731
    assert all(np.array_equal(x, y) for x, y in zip(flat(a), flat(b), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(flat(a), flat(c), strict=True))
    tl = flat(t)
    assert all(x.device.type == device and x.dtype == torch.float64 for x in tl)
    assert all(np.array_equal(x, y.cpu().numpy()) for x, y in zip(flat(a), tl, strict=True))
    back = torch_ref.to_numpy(torch_ref.to_torch(a, dtype=torch.float32))
    assert all(np.allclose(x, y, rtol=1e-6, atol=1e-6) for x, y in zip(flat(a), flat(back),
                                                                        strict=True))


def _leaves(p):
    if isinstance(p, dict):
        for k in sorted(p):
            yield from _leaves(p[k])
    elif isinstance(p, list):
        for v in p:
            yield from _leaves(v)
    else:
        yield p


def test_parameter_layout_follows_the_switches() -> None:
    base = preset("transformer_tiny")
    p = numpy_ref.init_params(base)
    assert p["W_E_src"].shape == (16, 24) and p["W_U"].shape == (24, 16)
    assert "W_P_src" not in p and "encoder_norm" not in p
    assert p["encoder"][0]["self_attn"]["W_q"].shape == (16, 16)
    assert p["decoder"][1]["ffn"]["W_1"].shape == (32, 16)
    q = numpy_ref.init_params(preset("transformer_tiny", tie_embeddings=True, bias=False,
                                     positional="learned", norm_placement="pre"))
    assert "W_U" not in q and "b_U" not in q and "b_q" not in q["encoder"][0]["self_attn"]
    assert q["W_P_tgt"].shape == (32, 16) and "decoder_norm" in q
    g = numpy_ref.init_params(preset("gpt_tiny"))
    assert g["W_P"].shape == (32, 16) and "final_norm" in g and len(g["blocks"]) == 2
    s = numpy_ref.init_params(preset("seq2seq_tiny", attention="bahdanau", n_layers=2))
    assert s["attention"]["W"].shape == (32, 32) and s["W_c"].shape == (16, 32)
    assert s["decoder"][0]["W_ih"].shape == (64, 8) and s["decoder"][1]["W_ih"].shape == (64, 16)


# ----------------------------------------------------------------------------------------------
# Transformer
# ----------------------------------------------------------------------------------------------


@fixture_ok
@given(data=st.data())
def test_transformer_oracle_vs_torch(data, device: str) -> None:
    config = data.draw(transformer_configs(), label="config")
    params = redraw(numpy_ref.init_params(config), data.draw(st.integers(0, 999), label="seed"))
    B = data.draw(st.integers(1, 2), label="batch")
    S, T = data.draw(st.integers(1, 5), label="S"), data.draw(st.integers(1, 5), label="T")
    src = token_ids(data.draw, config.n_src_vocab, (B, S), "src")
    src[:, 0] = np.maximum(src[:, 0], 1)  # every source has a real token (PAD_ID elsewhere ok)
    tgt = token_ids(data.draw, config.n_tgt_vocab, (B, T), "tgt")
    oracle = numpy_ref.Transformer(config, params)
    mirror = torch_ref.Transformer(config, torch_ref.to_torch(params, device=device))
    close(mirror.encode(src), oracle.encode(src))
    close(mirror.forward(src, tgt), oracle.forward(src, tgt))
    close(mirror.probabilities(src, tgt, 0.7), oracle.probabilities(src, tgt, 0.7))
    assert oracle.forward(src, tgt).shape == (B, T, config.n_tgt_vocab)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_transformer_decoder_is_causal(placement: str) -> None:
    """Logits at position t do not depend on target tokens after t."""
    config = preset("transformer_tiny", norm_placement=placement)
    net = numpy_ref.Transformer(config, redraw(numpy_ref.init_params(config), 1))
    src = np.array([5, 6, 7, 8])
    tgt = np.array([START_ID, 9, 10, 11, 12])
    changed = tgt.copy()
    changed[3:] = [20, 21]
    a, b = net.forward(src, tgt), net.forward(src, changed)
    np.testing.assert_allclose(a[:3], b[:3], rtol=1e-13, atol=1e-13)
    assert not np.allclose(a[3:], b[3:])


def test_transformer_source_padding_is_invisible() -> None:
    """Appending PAD tokens to the source leaves every target logit unchanged."""
    config = preset("transformer_tiny")
    net = numpy_ref.Transformer(config, redraw(numpy_ref.init_params(config), 2))
    src, tgt = np.array([5, 6, 7]), np.array([START_ID, 9, 10])
    padded = np.array([5, 6, 7, PAD_ID, PAD_ID])
    np.testing.assert_allclose(net.forward(padded, tgt), net.forward(src, tgt), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(net.encode(padded)[:3], net.encode(src), rtol=1e-12, atol=1e-12)
    # ...but a real token there is seen
    assert not np.allclose(net.forward(np.array([5, 6, 7, 4, 4]), tgt), net.forward(src, tgt))


def test_transformer_batch_is_independent_examples() -> None:
    config = preset("transformer_tiny", norm_placement="pre", positional="learned")
    net = numpy_ref.Transformer(config, redraw(numpy_ref.init_params(config), 3))
    src = np.array([[4, 5, 6, PAD_ID], [7, 8, 9, 10]])
    tgt = np.array([[START_ID, 4, 5], [START_ID, 6, 7]])
    batched = net.forward(src, tgt)
    np.testing.assert_allclose(batched[0], net.forward(src[0, :3], tgt[0]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(batched[1], net.forward(src[1], tgt[1]), rtol=1e-12, atol=1e-12)


@settings(fixture_ok, max_examples=4)
@given(seed=st.integers(0, 10_000), placement=st.sampled_from(["post", "pre"]))
def test_transformer_decoding_oracle_vs_torch(seed: int, placement: str, device: str) -> None:
    config = preset("transformer_tiny", norm_placement=placement, n_tgt_vocab=6,
                    n_encoder_layers=1, n_decoder_layers=1)
    params = redraw(numpy_ref.init_params(config), seed, scale=2.0)
    oracle = numpy_ref.Transformer(config, params)
    mirror = torch_ref.Transformer(config, torch_ref.to_torch(params, device=device))
    src = np.random.default_rng(seed).integers(4, 24, size=5)
    greedy = oracle.greedy_decode(src, max_len=6)
    assert greedy == mirror.greedy_decode(src, max_len=6)
    assert greedy[0] == START_ID and 1 <= len(greedy) - 1 <= 6
    assert END_ID not in greedy[1:-1] and (greedy[-1] == END_ID or len(greedy) == 7)
    sampled = oracle.sample(src, max_len=6, temperature=1.5, seed=seed)
    assert sampled == mirror.sample(src, max_len=6, temperature=1.5, seed=seed)
    assert oracle.sample(src, max_len=6, temperature=0.0, seed=seed) == greedy


def test_greedy_decode_is_argmax_of_teacher_forced_logits() -> None:
    config = preset("transformer_tiny", n_tgt_vocab=6)
    net = numpy_ref.Transformer(config, redraw(numpy_ref.init_params(config), 11, scale=2.0))
    src = np.array([5, 9, 12])
    out = net.greedy_decode(src, max_len=6)
    logits = net.forward(src, np.array(out[:-1]))
    np.testing.assert_array_equal(np.argmax(logits, axis=-1), out[1:])


@pytest.mark.parametrize("module", [numpy_ref, torch_ref], ids=["numpy", "torch"])
def test_decoding_with_max_len_zero_writes_start_alone(module) -> None:
    """At most max_len tokens after START: none at all when max_len is 0, even where the model's
    first choice is certain (its most probable token lifted 1000 above the others)."""
    for name in ("transformer_tiny", "seq2seq_tiny"):
        config = preset(name)
        params = numpy_ref.init_params(config, seed=5)
        params["b_U"] = params["b_U"] + 1e3 * (np.arange(len(params["b_U"])) == 7)
        net = getattr(module, "Transformer" if name.startswith("transformer") else "Seq2Seq")(
            config, params if module is numpy_ref else torch_ref.to_torch(params))
        src = np.array([5, 6, END_ID])
        assert list(net.greedy_decode(src, max_len=0)) == [START_ID]
        assert list(net.greedy_decode(src, max_len=1)) == [START_ID, 7]
        if hasattr(net, "sample"):
            assert list(net.sample(src, max_len=0, temperature=1.0, seed=0)) == [START_ID]


def test_context_is_a_hard_limit() -> None:
    config = preset("gpt_tiny", context=4)
    net = numpy_ref.GPT(config, numpy_ref.init_params(config))
    net.forward(np.arange(4))
    with pytest.raises(ValueError, match="context"):
        net.forward(np.arange(5))


# ----------------------------------------------------------------------------------------------
# GPT
# ----------------------------------------------------------------------------------------------


@fixture_ok
@given(data=st.data())
def test_gpt_oracle_vs_torch_and_kv_cache(data, device: str) -> None:
    config = data.draw(gpt_configs(), label="config")
    params = redraw(numpy_ref.init_params(config), data.draw(st.integers(0, 999), label="seed"))
    B, T = data.draw(st.integers(1, 2), label="batch"), data.draw(st.integers(1, 6), label="T")
    ids = token_ids(data.draw, config.n_vocab, (B, T), "ids")
    expected = numpy_ref.GPT(config, params).forward(ids)
    mirror = torch_ref.GPT(config, torch_ref.to_torch(params, device=device))
    close(mirror.forward(ids), expected)
    # token by token through the cache
    cache, pieces = None, []
    for t in range(T):
        logits, cache = mirror.forward_cached(ids[:, t : t + 1], cache)
        pieces.append(logits)
    assert cache["length"] == T
    close(torch.cat(pieces, dim=-2), expected)
    # a prompt in one piece, then the rest
    cut = data.draw(st.integers(1, T), label="cut")
    first, cache = mirror.forward_cached(ids[:, :cut])
    rest, cache = mirror.forward_cached(ids[:, cut:], cache)
    close(torch.cat([first, rest], dim=-2), expected)


def test_kv_cache_positions_continue_from_the_cache() -> None:
    """A token fed after a cache of L tokens sits at position L, not 0."""
    config = preset("gpt_tiny", positional="learned")
    net = torch_ref.GPT(config, torch_ref.to_torch(redraw(numpy_ref.init_params(config), 4)))
    _, cache = net.forward_cached([5, 6, 7])
    cached, _ = net.forward_cached([8], cache)
    np.testing.assert_allclose(cached[-1].numpy(), net.forward([5, 6, 7, 8])[-1].numpy(),
                               rtol=1e-12, atol=1e-12)
    assert cache["layers"][0]["k"].shape == (config.n_heads, 3, config.d_head)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_gpt_is_causal(placement: str) -> None:
    config = preset("gpt_tiny", norm_placement=placement)
    net = numpy_ref.GPT(config, redraw(numpy_ref.init_params(config), 5))
    a, b = net.forward([4, 5, 6, 7]), net.forward([4, 5, 9, 10])
    np.testing.assert_allclose(a[:2], b[:2], rtol=1e-13, atol=1e-13)
    assert not np.allclose(a[2:], b[2:])


@settings(fixture_ok, max_examples=6)
@given(seed=st.integers(0, 10_000), temperature=st.sampled_from([0.0, 0.5, 2.0]))
def test_gpt_generate_oracle_vs_torch(seed: int, temperature: float, device: str) -> None:
    config = preset("gpt_tiny", n_vocab=7)
    params = redraw(numpy_ref.init_params(config), seed, scale=2.0)
    prompt = [4, 5]
    out = numpy_ref.GPT(config, params).generate(prompt, max_new_tokens=6,
                                                 temperature=temperature, seed=seed)
    mirror = torch_ref.GPT(config, torch_ref.to_torch(params, device=device))
    assert out == mirror.generate(prompt, max_new_tokens=6, temperature=temperature, seed=seed)
    assert out[:2] == prompt and len(out) == 8 and all(0 <= t < 7 for t in out)
    if temperature == 0.0:
        logits = numpy_ref.GPT(config, params).forward(out[:-1])
        np.testing.assert_array_equal(np.argmax(logits[1:], axis=-1), out[2:])


def test_sampling_follows_the_softmax() -> None:
    """At temperature T the next-token frequencies approach softmax(logits / T)."""
    config = preset("gpt_tiny", n_vocab=5)
    net = numpy_ref.GPT(config, redraw(numpy_ref.init_params(config), 8, scale=3.0))
    p = net.probabilities([4], temperature=2.0)[-1]
    draws = [net.generate([4], max_new_tokens=1, temperature=2.0, seed=s)[-1] for s in range(800)]
    freq = np.bincount(draws, minlength=5) / 800
    np.testing.assert_allclose(freq, p, atol=0.06)


# ----------------------------------------------------------------------------------------------
# Seq2Seq
# ----------------------------------------------------------------------------------------------


@fixture_ok
@given(data=st.data())
def test_seq2seq_oracle_vs_torch(data, device: str) -> None:
    config = data.draw(seq2seq_configs(), label="config")
    params = redraw(numpy_ref.init_params(config), data.draw(st.integers(0, 999), label="seed"),
                    scale=1.5)
    B = data.draw(st.integers(1, 2), label="batch")
    S, T = data.draw(st.integers(1, 5), label="S"), data.draw(st.integers(1, 5), label="T")
    src = token_ids(data.draw, config.n_src_vocab, (B, S), "src")
    tgt = token_ids(data.draw, config.n_tgt_vocab, (B, T), "tgt")
    oracle = numpy_ref.Seq2Seq(config, params)
    mirror = torch_ref.Seq2Seq(config, torch_ref.to_torch(params, device=device))
    close(mirror.forward(src, tgt), oracle.forward(src, tgt))
    assert oracle.forward(src, tgt).shape == (B, T, config.n_tgt_vocab)
    assert oracle.greedy_decode(src[0], max_len=5) == mirror.greedy_decode(src[0], max_len=5)


@pytest.mark.parametrize("attention", [None, "bahdanau", "luong"])
def test_seq2seq_reversal_only_relabels_the_source(attention) -> None:
    """reverse_source=True on x equals reverse_source=False on x reversed (Sutskever et al.)."""
    config = preset("seq2seq_tiny", attention=attention, n_layers=2)
    params = redraw(numpy_ref.init_params(config), 9, scale=1.5)
    forwards = numpy_ref.Seq2Seq(config, params)
    backwards = numpy_ref.Seq2Seq(preset("seq2seq_tiny", attention=attention, n_layers=2,
                                         reverse_source=False), params)
    src, tgt = np.array([4, 5, 6, 7, 8]), np.array([START_ID, 9, 10])
    np.testing.assert_allclose(forwards.forward(src, tgt), backwards.forward(src[::-1], tgt),
                               rtol=1e-13, atol=1e-13)
    assert not np.allclose(forwards.forward(src, tgt), backwards.forward(src, tgt))


@pytest.mark.parametrize("attention", [None, "bahdanau", "luong"])
def test_seq2seq_matches_the_documented_decoder_step(attention) -> None:
    """Teacher forcing equals the step-by-step recurrence of the numpy_ref.networks docstring."""
    N = numpy_ref
    config = preset("seq2seq_tiny", attention=attention, n_layers=2)
    p = redraw(N.init_params(config), 10, scale=1.5)
    src, tgt = np.array([4, 5, 6, 7]), np.array([START_ID, 9, 10, 11])
    # encoder over the reversed source, outputs put back in source order
    x = N.embed(src[::-1], p["W_E_src"])
    states = []
    for layer in p["encoder"]:
        x, state = N.lstm(layer, x)
        states.append(state)
    h = x[::-1]
    s_prev = states[-1][0]
    expected = []
    for t in range(len(tgt)):
        inp = N.embed(tgt[t], p["W_E_tgt"])
        new_states = []
        for layer, (hh, cc) in zip(p["decoder"], states, strict=True):
            hh, cc = N.lstm_cell(layer, inp, hh, cc)
            new_states.append((hh, cc))
            inp = hh
        s_t = inp
        if attention is None:
            out = s_t
        else:
            if attention == "luong":
                ctx, _ = N.dot_attention(s_t, h)
            else:
                ctx, _ = N.additive_attention(p["attention"], s_prev, h)
            out = np.tanh(p["W_c"] @ np.concatenate([s_t, ctx]) + p["b_c"])
        expected.append(p["W_U"] @ out + p["b_U"])
        states, s_prev = new_states, s_t
    got = N.Seq2Seq(config, p).forward(src, tgt)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_transformer_trains_in_mixed_precision(dtype: torch.dtype, device: str) -> None:
    """Half-precision weights train through float32 masters: the loss falls, stays finite, and
    the updated weights land in the same tensors, still in the working dtype. (Adam straight on
    float16 weights diverges: its eps = 1e-8 rounds to 0.)"""
    config = preset("transformer_tiny")
    params = torch_ref.init_params(config, seed=0, device=device, dtype=dtype)
    net = torch_ref.Transformer(config, params)
    W_before = params["W_E_src"].clone()
    src = torch.tensor([[4, 5, 6, PAD_ID], [7, 8, 9, 10]])
    tgt = torch.tensor([[START_ID, 5, 6, END_ID], [START_ID, 9, END_ID, PAD_ID]])
    losses = net.train(src, tgt, epochs=40, eta=1e-2, seed=0)
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]
    assert net.params is params and params["W_E_src"].dtype == dtype
    assert not torch.equal(params["W_E_src"], W_before) and not params["W_E_src"].requires_grad
    assert net.greedy_decode(src[1], max_len=4) == tgt[1, :3].tolist()


def test_transformer_training_leaves_the_callers_random_state(device: str) -> None:
    """Training seeds its own generator and gives torch's back as it was: a verifier run inside
    someone's session must not reseed their random numbers (it used torch.manual_seed)."""
    config = preset("transformer_tiny")
    src = torch.tensor([[4, 5, 6, PAD_ID]])
    tgt = torch.tensor([[START_ID, 5, 6, END_ID]])
    torch.manual_seed(1234)
    expected = torch.rand(3, device=device)
    torch.manual_seed(1234)
    losses = [
        torch_ref.Transformer(config, torch_ref.init_params(config, seed=0, device=device)).train(
            src, tgt, epochs=3, eta=1e-2, seed=seed
        )
        for seed in (0, 0)
    ]
    assert torch.equal(torch.rand(3, device=device), expected)
    assert losses[0] == losses[1]


def test_transformer_training_works_with_grad_off_in_the_session(device: str) -> None:
    """``torch.set_grad_enabled(False)`` (an inference script's first line) must not stop training:
    train() differentiates, so it turns autograd on for itself and leaves the session's mode as it was."""
    config = preset("transformer_tiny")
    src = torch.tensor([[4, 5, 6, PAD_ID]], device=device)
    tgt = torch.tensor([[START_ID, 5, 6, END_ID]], device=device)
    net = torch_ref.Transformer(config, torch_ref.init_params(config, seed=0, device=device))
    with torch.no_grad():
        losses = net.train(src, tgt, epochs=5, eta=1e-2)
        assert not torch.is_grad_enabled()
    assert losses[-1] < losses[0]
