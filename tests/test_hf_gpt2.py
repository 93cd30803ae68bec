"""A model nobody here wrote: Hugging Face's GPT-2 through nnspec.verify.hf_gpt2.

It offers one capability, ``GPT``, and is held to the seven clauses a decoder-only model can run
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
from adapter_mistakes import assert_caught, plant  # noqa: E402
from nnspec.spec.blocks import SUB_LAYERS  # noqa: E402
from nnspec.verify import load_implementation, run_clause  # noqa: E402
from nnspec.verify.catalogue import installed  # noqa: E402

GPT_CLAUSES = {
    "GPT-NEXT", "DEC-AUTOREGRESSIVE", "NET-ORACLE", "GPT-GENERATE", "SAMPLE-DIST", "NET-BATCH", "NET-LONG",
}


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
    assert results["NET-LONG"].notes["not offered"] == ["Transformer", *SUB_LAYERS]
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


def _no_logits_processors(self: Any) -> Any:
    """generate() from GPT-2's lm_head alone: nnspec's b_U, added in forward, forgotten here."""
    from transformers import LogitsProcessorList

    return LogitsProcessorList([])


def _seed_ignored(self: Any, seed: int) -> None:
    """torch.manual_seed(seed) forgotten: the seed argument never reaches torch, so each call
    draws on from wherever torch's global generator is."""
    torch.manual_seed(int.from_bytes(np.random.default_rng().bytes(4), "little"))


def _config_without_do_sample(self: Any, max_new_tokens: int, temperature: float) -> Any:
    """generate(temperature=T) without do_sample=True: Hugging Face then searches greedily and
    the temperature does nothing (the mistake its warning is about)."""
    config = type(self).__mro__[1]._generation_config(self, max_new_tokens, temperature)
    config.do_sample = False
    return config


@pytest.mark.parametrize(
    ("planted", "clause_id", "what"),
    [
        (dict(_state_dict=_c_proj_untransposed), "NET-ORACLE", "GPT"),
        (dict(_state_dict=_final_norm_dropped), "NET-ORACLE", "GPT"),
        (dict(_run=_positions_restart), "DEC-AUTOREGRESSIVE", "cached decoding"),
        (dict(_logits_processors=_no_logits_processors), "GPT-GENERATE", "when b_U lifts token"),
        (dict(_seed=_seed_ignored), "SAMPLE-DIST", "seed"),
        (dict(_generation_config=_config_without_do_sample), "SAMPLE-DIST", "frequencies"),
    ],
    ids=["c_proj-untransposed", "final-norm-dropped", "cache-positions-restart",
         "generate-without-bias", "generate-unseeded", "generate-without-do-sample"],
)
def test_an_adapters_mistakes_are_caught(planted: dict, clause_id: str, what: str) -> None:
    """The float64 adapter with one of its methods replaced by a mistaken one."""
    impl = plant("nnspec.verify.hf_gpt2:float64", "GPT", "hf-gpt2-planted", **planted)
    assert_caught(impl, clause_id, what)
