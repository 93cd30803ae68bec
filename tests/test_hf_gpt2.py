"""A model nobody here wrote: Hugging Face's GPT-2 through nnspec.verify.hf_gpt2.

It offers one capability, ``GPT``, and is held to the five clauses a decoder-only model can run
(GPT-NEXT, DEC-AUTOREGRESSIVE through its own KV cache, NET-ORACLE, GPT-GENERATE and SAMPLE-DIST
through Hugging Face's own ``generate``), at three precisions. The clauses must also catch the
mistakes an adapter for such a model makes: a ``Conv1D`` weight left untransposed, positions
restarted at 0 for each cached step, the final layer norm dropped, ``generate`` without the
unembedding bias, without the seed, or with a temperature but no ``do_sample``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from nnspec.reference.torch_ref import to_torch  # noqa: E402
from nnspec.verify import load_implementation, patched, run_clause  # noqa: E402
from nnspec.verify.catalogue import installed  # noqa: E402

GPT_CLAUSES = {"GPT-NEXT", "DEC-AUTOREGRESSIVE", "NET-ORACLE", "GPT-GENERATE", "SAMPLE-DIST", "NET-BATCH"}


def _name(device: str, dtype: str) -> str:
    return f"nnspec.verify.hf_gpt2:{dtype}" if device == "cpu" else f"nnspec.verify.hf_gpt2:{device}_{dtype}"


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_gpt2_passes_every_clause_a_gpt_alone_can_run(device: str, dtype: str) -> None:
    impl = load_implementation(_name(device, dtype))
    assert impl.capabilities == {"GPT"} and impl.device == device and impl.dtype == dtype
    assert impl.conventions.norm_placement == "pre" and impl.conventions.positional == "learned"
    assert impl.version == f"transformers {transformers.__version__}"
    results = {cid: run_clause(cid, impl, profile="quick", seed=0) for cid in installed()}
    ran = {cid for cid, r in results.items() if r.status != "not_applicable"}
    assert ran == GPT_CLAUSES
    failed = {cid: results[cid].message for cid in ran if results[cid].status != "passed"}
    assert not failed, failed
    # the two clauses that also check other networks say they checked the GPT alone
    assert results["NET-ORACLE"].notes["not offered"] == ["MLP", "Transformer", "Seq2Seq"]
    assert results["DEC-AUTOREGRESSIVE"].notes["not offered"] == ["Transformer"]
    assert results["SAMPLE-DIST"].notes["not offered"] == ["Transformer.sample"]
    assert results["NET-BATCH"].notes["not offered"] == ["Transformer", "Seq2Seq"]
    assert "GPT-NEXT" not in {cid for cid, r in results.items() if r.notes.get("not offered")}


def test_the_cache_crosses_the_boundary_in_nnspecs_layout() -> None:
    """forward_cached hands GPT-2's own keys and values across as nnspec's cache dict."""
    from nnspec.reference import numpy_ref
    from nnspec.reference.config import preset

    config = preset("gpt_tiny", n_layers=2, tie_embeddings=True, bias=False)
    params = numpy_ref.init_params(config, seed=1)
    gpt = load_implementation("nnspec.verify.hf_gpt2:float64").GPT(config, params)
    ids = np.array([5, 9, 4, 7])
    logits, cache = gpt.forward_cached(ids[:3])
    assert cache["length"] == 3 and len(cache["layers"]) == 2
    assert cache["layers"][0]["k"].shape == (config.n_heads, 3, config.d_head)
    last, cache = gpt.forward_cached(ids[3:], cache)
    assert cache["length"] == 4
    full = numpy_ref.GPT(config, params).forward(ids)
    np.testing.assert_allclose(np.concatenate([logits, last]), full, rtol=1e-10, atol=1e-12)


def _plant(name: str, **changes: Any) -> Any:
    """The float64 adapter with one of its methods replaced by a mistaken one."""
    base = load_implementation("nnspec.verify.hf_gpt2:float64")
    GPT = type("GPT", (base._namespace["GPT"],), changes)
    return patched(base, name=name, GPT=GPT)


def _c_proj_untransposed(self: Any, params: dict) -> dict:
    """Conv1D computes x @ W: nnspec's W_o (out, in) loaded as it is, the transpose forgotten
    (square, so nothing complains about the shape)."""
    state = type(self).__mro__[1]._state_dict(self, params)
    for i in range(self.config.n_layers):
        key = f"transformer.h.{i}.attn.c_proj.weight"
        state[key] = state[key].T.contiguous()
    return state


def _final_norm_dropped(self: Any, params: dict) -> dict:
    """ln_f left at its initial weights (gamma 1, beta 0) instead of nnspec's final_norm."""
    state = type(self).__mro__[1]._state_dict(self, params)
    state["transformer.ln_f.weight"] = torch.ones_like(state["transformer.ln_f.weight"])
    state["transformer.ln_f.bias"] = torch.zeros_like(state["transformer.ln_f.bias"])
    return state


def _positions_restart(self: Any, ids: Any, cache: Any = None) -> Any:
    """Each cached step run with position_ids = 0..T-1, as if the prompt started again."""
    forward = self.model.forward

    @functools.wraps(forward)  # the same signature: the adapter reads which cache argument it takes
    def at_zero(*args: Any, **kwargs: Any) -> Any:
        T = kwargs["input_ids"].shape[-1]
        return forward(*args, position_ids=torch.arange(T, device=self.device)[None], **kwargs)

    self.model.forward = at_zero
    try:
        return type(self).__mro__[1]._run(self, ids, cache)
    finally:
        del self.model.forward


def _generate(self: Any, ids: Any, max_new_tokens: int, temperature: float, seed: int, *,
              bias: bool = True, seeded: bool = True, sample_flag: bool | None = None) -> list[int]:
    """The adapter's ``generate`` written again with one of its three precautions left out."""
    from nnspec.verify.hf_gpt2 import _AddUnembeddingBias
    from transformers import GenerationConfig, LogitsProcessorList

    if max_new_tokens == 0:  # as the adapter: Hugging Face refuses to generate nothing
        return [int(t) for t in np.asarray(ids, dtype=np.int64).reshape(-1)]
    prompt = to_torch(np.asarray(ids, dtype=np.int64).reshape(1, -1), device=self.device)
    sampling = temperature != 0 if sample_flag is None else sample_flag
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=sampling,
        temperature=float(temperature) if temperature else None, top_k=0, top_p=1.0,
        eos_token_id=None, bos_token_id=None, pad_token_id=0,
    )
    with_bias = bias and self.b_U is not None
    processors = LogitsProcessorList([_AddUnembeddingBias(self.b_U)] if with_bias else [])
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        if seeded:
            torch.manual_seed(seed)
        else:  # the seed argument never reaches torch: each call draws on from wherever it is
            torch.manual_seed(int.from_bytes(np.random.default_rng().bytes(4), "little"))
        out = self.model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                  generation_config=config, logits_processor=processors)
    return [int(t) for t in out[0].tolist()]


def _generate_without_bias(self: Any, ids: Any, *, max_new_tokens: int, temperature: float = 0.0,
                           seed: int = 0) -> list[int]:
    """generate() from GPT-2's lm_head alone: nnspec's b_U, added in forward, forgotten here."""
    return _generate(self, ids, max_new_tokens, temperature, seed, bias=False)


def _generate_unseeded(self: Any, ids: Any, *, max_new_tokens: int, temperature: float = 0.0,
                       seed: int = 0) -> list[int]:
    """torch.manual_seed(seed) forgotten: sampling draws from torch's global generator as it is."""
    return _generate(self, ids, max_new_tokens, temperature, seed, seeded=False)


def _generate_without_do_sample(self: Any, ids: Any, *, max_new_tokens: int, temperature: float = 0.0,
                                seed: int = 0) -> list[int]:
    """generate(temperature=T) without do_sample=True: Hugging Face then searches greedily and
    the temperature does nothing (the mistake its warning is about)."""
    return _generate(self, ids, max_new_tokens, temperature, seed, sample_flag=False)


@pytest.mark.parametrize(
    ("planted", "clause_id", "what"),
    [
        (dict(_state_dict=_c_proj_untransposed), "NET-ORACLE", "GPT"),
        (dict(_state_dict=_final_norm_dropped), "NET-ORACLE", "GPT"),
        (dict(_run=_positions_restart), "DEC-AUTOREGRESSIVE", "cached decoding"),
        (dict(generate=_generate_without_bias), "GPT-GENERATE", "exceeds every other logit by 1000"),
        (dict(generate=_generate_unseeded), "SAMPLE-DIST", "seed"),
        (dict(generate=_generate_without_do_sample), "SAMPLE-DIST", "frequencies"),
    ],
    ids=["c_proj-untransposed", "final-norm-dropped", "cache-positions-restart",
         "generate-without-bias", "generate-unseeded", "generate-without-do-sample"],
)
def test_an_adapters_mistakes_are_caught(planted: dict, clause_id: str, what: str) -> None:
    impl = _plant("hf-gpt2-planted", **planted)
    result = run_clause(clause_id, impl, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert what in result.message and "shrunk input:" in result.message
    assert "raised" not in result.message  # caught by the property, not by a crash
