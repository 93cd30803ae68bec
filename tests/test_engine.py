"""The engine: run_clause's statuses and messages, implementations, conventions, the Check."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from broken_impls import BROKEN, EXPECTED_FAILURES, TEST_CLAUSES, TEST_SOURCE
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnspec.reference import numpy_ref
from nnspec.reference.config import preset
from nnspec.reference.vocabulary import Vocabulary
from nnspec.spec.clause import Clause, ClauseFailure
from nnspec.verify import (
    Conventions,
    Implementation,
    ImplementationError,
    MissingCapability,
    UnknownImplementation,
    load_implementation,
    patched,
    run_clause,
    tolerances,
)
from nnspec.verify.catalogue import installed
from nnspec.verify.check import EngineCheck
from nnspec.verify.mutants import CATALOGUE
from nnspec.verify.profiles import PROFILES
from nnspec.verify.runner import format_failure


def _toy(prop, *, needs=("softmax",), **kw) -> Clause:
    return Clause(id="T-TOY", statement="A toy clause.", source=TEST_SOURCE, needs=needs, prop=prop,
                  topic="engine-selftest", **kw)


# ------------------------------------------------------------------------------------------------
# statuses
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clause_id", sorted(TEST_CLAUSES))
def test_the_oracle_passes_every_test_clause(clause_id: str) -> None:
    result = run_clause(TEST_CLAUSES[clause_id], "numpy")
    assert result.status == "passed", result.message
    assert result.examples >= PROFILES["quick"].max_examples
    assert result.max_error is not None and result.max_error <= result.tolerance
    assert result.reason  # the rule that gave the tolerance


def test_broken_implementation_fails_four_clauses_with_clear_messages() -> None:
    results = {cid: run_clause(c, BROKEN, time_limit=2.0) for cid, c in TEST_CLAUSES.items()}
    failed = {cid for cid, r in results.items() if r.status == "failed"}
    assert failed == set(EXPECTED_FAILURES)
    assert results["T-MASK"].status == "passed"  # the untouched capability still conforms
    for cid, word in EXPECTED_FAILURES.items():
        r = results[cid]
        assert word in r.message, r.message
        assert TEST_CLAUSES[cid].statement in r.message
        # the hang timed out on its first input, which was never shrunk
        label = "  input:" if cid == "T-RELU" else "shrunk input:"
        assert label in r.message and "x = array" in r.message
        # BROKEN is a patched() object, which no command line can load by name: the reproduce
        # line is the Python call that re-runs the clause on it, with the same profile and seed.
        assert r.reproduce.startswith(f"run_clause({cid!r}, patched('numpy', name='broken', ...), "
                                      "profile='quick', seed=0)"), r.reproduce
        assert r.reproduce in r.message
    assert "while broken's relu was running" in results["T-RELU"].message
    assert "RuntimeError: softmax kernel" in results["T-SOFTMAX"].message
    assert results["T-RELU"].duration < 10


def test_a_patched_implementations_reproduce_line_loads_its_base_by_the_name_it_was_loaded_by() -> None:
    """PyTorch's layers call themselves torch.nn:cpu:float32 (nnspec_name), a name that loads
    nothing: a bug planted in them reproduces with the import path they were loaded by."""
    def softmax_no_shift(x: np.ndarray, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
        with np.errstate(all="ignore"):  # the overflow is the planted bug
            return np.exp(x) / np.exp(x).sum(axis, keepdims=True)

    base = load_implementation("nnspec.verify.torch_nn:float32")
    bad = patched(base, name="nn-softmax-no-shift", softmax=softmax_no_shift)
    assert base.name == "torch.nn:cpu:float32"
    result = run_clause("SM-SHIFT", bad, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert result.reproduce.startswith(
        "run_clause('SM-SHIFT', patched('nnspec.verify.torch_nn:float32', name='nn-softmax-no-shift', ...)"
    ), result.reproduce


@pytest.mark.parametrize("leave", [lambda: sys.exit("bad argument"), lambda: exit(2)])
def test_an_implementation_that_exits_fails_the_clause_and_the_run_goes_on(leave) -> None:
    """``sys.exit()`` deep in a model's code (an argument parser reading pytest's argv, a library's
    ``exit()`` on error) raises SystemExit, which is no Exception: it must still fail only that clause,
    not end the run, and the clause can still be shrunk to the smallest input."""

    def exiting_softmax(x, axis=-1, temperature=1.0):
        if np.asarray(x).size > 1:
            leave()
        return numpy_ref.softmax(x, axis=axis, temperature=temperature)

    result = run_clause("SM-SUM", patched("numpy", name="exits", softmax=exiting_softmax))
    assert result.status == "failed", result.message
    assert "exits: softmax(array(" in result.message and "raised" in result.message
    assert "observed SystemExit: " in result.message, result.message
    assert "shrunk input:" in result.message


def _torch_softmax(x, axis=-1, temperature=1.0):  # an adapter that forgot .numpy()
    import torch

    return torch.softmax(torch.as_tensor(x) / temperature, dim=axis)


@pytest.mark.parametrize(
    ("clause_id", "softmax", "observed"),
    [
        ("SM-SHIFT", _torch_softmax, "a torch.Tensor (dtype torch.float64, device cpu)"),
        ("SM-SUM", lambda x, axis=-1, temperature=1.0: numpy_ref.softmax(x, axis, temperature).tolist(), "a list"),
        ("SM-SUM", lambda x, axis=-1, temperature=1.0: None, "None"),
        ("SM-RANGE", lambda x, axis=-1, temperature=1.0: numpy_ref.softmax(x, axis, temperature).astype(object),
         "an array of shape (1,) of dtype object"),
    ],
)
def test_a_result_that_is_not_numpy_fails_the_clause(clause_id, softmax, observed) -> None:
    """The wrong kind of result (a tensor from an adapter that forgot to convert, a list, None) is the
    implementation's mistake: the clause fails saying what came back, never errors as if nnspec broke."""
    result = run_clause(clause_id, patched("numpy", name="not-numpy", softmax=softmax))
    assert result.status == "failed", result.message
    assert f"observed {observed}, but should be a " in result.message, result.message
    assert "NumPy array" in result.message
    assert "not-numpy: softmax(array(" in result.message and "shrunk input:" in result.message


def _gpt_returning(convert: Any) -> type:
    class GPT(numpy_ref.GPT):
        def forward(self, ids):
            return convert(super().forward(ids))

    return GPT


def _greedy_returning(convert: Any) -> type:
    class Transformer(numpy_ref.Transformer):
        def greedy_decode(self, src_ids, *, max_len):
            return convert(super().greedy_decode(src_ids, max_len=max_len))

    return Transformer


def _cost_returning(convert: Any) -> type:
    class MLP(numpy_ref.MLP):
        def cost(self, x, y):
            return convert(super().cost(x, y))

    return MLP


@pytest.mark.parametrize(
    ("clause_id", "override", "call", "observed", "expected"),
    [
        ("GPT-NEXT", {"GPT": _gpt_returning(lambda out: None)}, "GPT.forward", "None", "a NumPy array"),
        ("GPT-NEXT", {"GPT": _gpt_returning(lambda out: out.tolist())}, "GPT.forward", "a list", "a NumPy array"),
        ("GREEDY", {"Transformer": _greedy_returning(lambda out: None)}, "Transformer.greedy_decode", "None",
         "a list, as numpy_ref's"),
        ("COST-SQ", {"MLP": _cost_returning(lambda c: [c])}, "MLP.cost", "a list", "a number, as numpy_ref's"),
    ],
)
def test_a_network_method_returning_the_wrong_kind_fails_the_clause(
    clause_id: str, override: dict, call: str, observed: str, expected: str
) -> None:
    """A network's methods are checked at the boundary as functions are: ``GPT.forward`` returning
    None or a list is the implementation's failure, said as such, not an error of the clause."""
    result = run_clause(clause_id, patched("numpy", name="wrong-kind", **override), profile="quick")
    assert result.status == "failed", result.message
    assert f"wrong-kind: {call}(" in result.message, result.message
    assert f"observed {observed}, but should be {expected}" in result.message, result.message


def test_the_network_methods_results_are_what_numpy_ref_annotates() -> None:
    from nnspec.verify.implementations import RETURNS

    assert RETURNS["GPT.forward"] is np.ndarray and RETURNS["Transformer.sample"] == list[int]
    assert RETURNS["MLP.cost"] is float and RETURNS["Vocabulary.pad"] == tuple[np.ndarray, np.ndarray]


def test_the_kind_of_every_result_is_checked_down_to_its_leaves() -> None:
    """Tuples are checked against the protocol's shape of the result, item by item, and a foreign
    array anywhere inside a result (a network method's, a dict's) is caught."""
    import torch

    def sdpa(q, k, v, mask=None):
        out, weights = numpy_ref.scaled_dot_product_attention(q, k, v, mask)
        return out, torch.from_numpy(weights)

    result = run_clause("ATT-ROWS-SUM", patched("numpy", name="half-torch", scaled_dot_product_attention=sdpa))
    assert result.status == "failed", result.message
    assert "scaled_dot_product_attention(" in result.message
    assert "result[1]: observed a torch.Tensor (dtype torch.float64, device cpu)" in result.message

    def lonely_sdpa(q, k, v, mask=None):
        return numpy_ref.scaled_dot_product_attention(q, k, v, mask)[0]

    result = run_clause("ATT-ROWS-SUM", patched("numpy", name="one-output", scaled_dot_product_attention=lonely_sdpa))
    assert result.status == "failed", result.message
    assert "observed an array of shape" in result.message and "but should be a tuple of 2" in result.message

    class TorchLogitsGPT(numpy_ref.GPT):  # a network whose method forgot to convert
        def forward(self, ids):
            return torch.from_numpy(super().forward(ids))

    result = run_clause("GPT-NEXT", patched("numpy", name="torch-logits", GPT=TorchLogitsGPT))
    assert result.status == "failed", result.message
    assert "torch-logits: GPT.forward(array(" in result.message
    assert "result: observed a torch.Tensor (dtype torch.float64, device cpu)" in result.message


def _softmax_shifting_in_place(x, axis=-1, temperature=1.0):
    x -= np.max(x, axis=axis, keepdims=True)  # the max subtraction, done to the caller's array
    return numpy_ref.softmax(x, axis=axis, temperature=temperature)


def _layer_norm_in_place(x, gamma, beta, eps=1e-5):
    x -= x.mean(axis=-1, keepdims=True)  # the residual stream a caller adds back is now centred
    return numpy_ref.layer_norm(x, gamma, beta, eps)


@pytest.mark.parametrize(
    ("clause_id", "override", "argument"),
    [("SM-SUM", {"softmax": _softmax_shifting_in_place}, "x"),
     ("LN-STATS", {"layer_norm": _layer_norm_in_place}, "x")],
)
def test_an_implementation_that_writes_to_its_inputs_fails(clause_id, override, argument) -> None:
    """Both write into an argument and still return the right values (softmax is shift-invariant;
    normalising a centred x gives the same result), so only the write shows the bug: the caller's
    array is no longer what it passed."""
    result = run_clause(clause_id, patched("numpy", name="in-place", **override))
    assert result.status == "failed", result.message
    assert f"modified its argument {argument} in place" in result.message, result.message
    assert "element(s) changed" in result.message and "shrunk input:" in result.message


@pytest.mark.parametrize(
    ("clause_id", "override"),
    [("SM-SUM", {"softmax": lambda x, axis=-1, temperature=1.0: numpy_ref.softmax(x, axis)[..., :1]}),
     ("SM-SHIFT", {"softmax": lambda x, axis=-1, temperature=1.0: numpy_ref.softmax(x, axis)[..., :1]}),
     ("LN-STATS", {"layer_norm": lambda x, g, b, eps=1e-5: numpy_ref.layer_norm(x, g, b, eps).sum(-1)}),
     ("ACT-RELU", {"relu": lambda z: np.maximum(np.ravel(z), 0.0)})],
)
def test_a_result_of_the_wrong_shape_is_reported_as_one(clause_id: str, override: dict) -> None:
    """Not as the sum or mean a clause computes from it ("observed 0.5, but should be 1.0")."""
    result = run_clause(clause_id, patched("numpy", name="reshaped", **override), profile="quick")
    assert result.status == "failed", result.message
    assert re.search(r"returned the wrong shape: observed shape \([\d, ]*\), but should be shape "
                     r"\([\d, ]+\), the shape of its input", result.message), result.message


@pytest.mark.parametrize("profile", ["quick", "default"])
def test_examples_are_what_was_generated_and_shrinking_is_counted_apart(profile: str) -> None:
    """A report's examples column is bounded by the profile (a failure found at example 3 and then
    shrunk for 150 runs reads "3 (+150 shrinking)", not 153)."""
    from nnspec.verify.mutants import CATALOGUE
    from nnspec.verify.profiles import get_profile

    limit = get_profile(profile).examples_for("cheap")
    passed = run_clause("SM-SUM", "numpy", profile=profile)
    assert passed.status == "passed" and 1 <= passed.examples <= limit and passed.shrinks == 0
    failed = run_clause("SM-SUM", CATALOGUE["softmax-wrong-axis"].implementation(), profile=profile)
    assert failed.status == "failed"
    assert failed.examples == failed.examples_to_failure <= limit
    assert failed.shrinks > 0  # the drawn array was made smaller: those runs are counted apart
    assert failed.to_dict()["shrinks"] == failed.shrinks


def _eight_large(runs: list[tuple[int, ...]]) -> Any:
    """A property failing when eight drawn integers are all 100 or more: Hypothesis shrinks each to
    100, in about 300 runs. Every run's input is kept in ``runs``."""

    def prop(impl, ck):
        xs = tuple(ck.draw(st.integers(0, 10**6), f"x{i}") for i in range(8))
        runs.append(xs)
        ck.that(min(xs) < 100, what="least x", observed=min(xs), expected="< 100")

    return prop


def _shown(result: Any) -> tuple[int, ...]:
    return tuple(int(line.partition(" = ")[2]) for line in result.counterexample.splitlines())


def test_the_shrink_cap_is_for_expensive_clauses_below_thorough() -> None:
    from nnspec.verify.profiles import SHRINK_RUNS

    for profile in PROFILES.values():
        assert profile.shrink_runs_for("cheap") is None
        for cost in ("network", "training"):
            assert profile.shrink_runs_for(cost) == (None if profile.name == "thorough" else SHRINK_RUNS)


@pytest.mark.parametrize("profile", ["default", "ci"])  # quick's 2 examples rarely find this failure
def test_shrinking_a_network_clause_stops_at_its_cap_and_says_so(profile: str) -> None:
    """A network clause's failure is shrunk for at most SHRINK_RUNS runs (each run can cost a whole
    sampling loop); the runs past the cap do not reach the clause, and the input reported is a
    failing one. A component clause keeps Hypothesis's own limits, and so does a thorough run."""
    cap = PROFILES[profile].shrink_runs_for("network")
    runs: list[tuple[int, ...]] = []
    result = run_clause(_toy(_eight_large(runs), cost="network"), "numpy", profile=profile)
    assert result.status == "failed"
    # the runs after the first failure: at most the cap, and the replay of the input reported
    assert len(runs) - result.examples_to_failure <= cap + 1
    assert f"shrinking stopped after {cap} runs, the {profile!r} profile's cap for a network clause" in result.message
    assert min(_shown(result)) >= 100 and _shown(result) == runs[-1]
    uncapped: list[tuple[int, ...]] = []
    cheap = run_clause(_toy(_eight_large(uncapped), cost="cheap"), "numpy", profile=profile)
    assert len(uncapped) - cheap.examples_to_failure > cap + 1 and "shrinking stopped" not in cheap.message
    assert _shown(cheap) == (100,) * 8  # shrunk all the way
    thorough: list[tuple[int, ...]] = []
    assert _shown(run_clause(_toy(_eight_large(thorough), cost="network"), "numpy", profile="thorough")) == (100,) * 8


def test_a_capped_shrink_is_the_same_in_two_ci_runs() -> None:
    """The cap counts runs, not seconds: the ci profile reports the same input twice."""
    first = run_clause(_toy(_eight_large([]), cost="network"), "numpy", profile="ci")
    second = run_clause(_toy(_eight_large([]), cost="network"), "numpy", profile="ci")
    assert "shrinking stopped" in first.message
    assert {k: v for k, v in first.to_dict().items() if k != "duration"} == {
        k: v for k, v in second.to_dict().items() if k != "duration"
    }


def test_the_time_limit_during_shrinking_reports_the_failure_found() -> None:
    """A failure found in time and then shrunk past the time limit is that failure, on the smallest
    input found by then; not "timed out", which would read as a hang."""
    runs: list[int] = []

    def prop(impl, ck):
        x = ck.draw(st.integers(0, 10**6), "x")
        runs.append(x)
        if len(runs) > 1:
            time.sleep(0.4)  # each shrink run is slow
        ck.that(x < 10, what="x", observed=x, expected="< 10")

    result = run_clause(_toy(prop), "numpy", profile="quick", time_limit=1.0)
    assert result.status == "failed"
    assert "timed out" not in result.message
    assert re.search(r"x: observed \d+, but should be < 10", result.message), result.message
    assert "the time limit of 1 s ended shrinking" in result.message
    assert result.counterexample.startswith("x = ") and int(result.counterexample[4:]) >= 10


def test_a_time_limit_that_hypothesis_reports_as_flaky_is_still_the_time_limit() -> None:
    """The ninth hunt: the alarm fell inside Hypothesis' own work on a 2050-token NET-LONG, and
    Hypothesis reported two runs of one input that differed (FlakyStrategyDefinition). Read as
    "not deterministic", it sent the user hunting a race in deterministic code. Here the clause
    plays Hypothesis' part: once the limit has passed, Flaky is the time limit's doing."""
    from hypothesis.errors import FlakyStrategyDefinition
    from nnspec.verify.runner import ClauseTimeout

    failed: list[int] = []

    def prop(impl, ck):
        x = ck.draw(st.integers(0, 10**6), "x")
        if failed:
            try:
                time.sleep(3)
            except ClauseTimeout:
                raise FlakyStrategyDefinition("the replay drew differently") from None
        if x >= 10:
            failed.append(x)
        ck.that(x < 10, what="x", observed=x, expected="< 10")

    result = run_clause(_toy(prop), "numpy", profile="quick", time_limit=1.0)
    assert result.status == "failed"
    assert "not deterministic" not in result.message, result.message
    assert "the time limit of 1 s ended shrinking" in result.message, result.message
    assert re.search(r"x: observed \d+, but should be < 10", result.message), result.message


def test_a_time_limit_that_falls_in_the_clauses_own_work_does_not_blame_the_implementation() -> None:
    """The workflow audit: at --nnspec-time-limit=2 the oracle's own 2.6 s on BP-CHAIN-MULTI read as
    "the implementation hung or is far too slow", naming no call of it."""

    def prop(impl, ck):
        impl.softmax(np.array([1.0, 2.0]))
        time.sleep(3)  # the clause's own work, after the implementation returned

    result = run_clause(_toy(prop, hypothesis=False), "numpy", time_limit=0.5)
    assert result.status == "failed"
    assert "no call of the implementation was running then" in result.message, result.message
    assert "hung" not in result.message


def test_the_shrunk_input_of_an_in_place_write_is_what_the_call_was_given() -> None:
    """The clause's drawn arrays are the ones passed: shown after the write, the input would not
    reproduce the failure."""

    def softmax_adding_in_place(x, axis=-1, temperature=1.0):
        x += 100.0
        return numpy_ref.softmax(x, axis=axis, temperature=temperature)

    result = run_clause("SM-SUM", patched("numpy", name="in-place", softmax=softmax_adding_in_place))
    assert result.status == "failed", result.message
    changed = re.search(r"changed, the first at index \S+: np.float64\((\S+)\) -> np.float64\((\S+)\)",
                        result.message)
    assert changed, result.message
    before, after = float(changed[1]), float(changed[2])
    assert after == before + 100.0
    shown = next(line for line in result.counterexample.splitlines() if line.startswith("x = "))
    assert shown.endswith(f"[{before:g}.]") or repr(before) in shown or f"{before:g}" in shown, shown
    assert f"{after:g}" not in shown, shown


class _GPTConvertingItsParams(numpy_ref.GPT):
    """A torch user's adapter that converts the caller's parameter dict in place."""

    def __init__(self, config, params):
        for block in params["blocks"]:
            block["attn"]["W_q"] = torch.from_numpy(block["attn"]["W_q"].copy())
        super().__init__(config, numpy_ref.init_params(config, seed=0) | {
            "blocks": [{**b, "attn": {**b["attn"], "W_q": b["attn"]["W_q"].numpy()}} for b in params["blocks"]],
        })


class _GPTDroppingTheUnembedding(numpy_ref.GPT):
    def __init__(self, config, params):
        params.pop("W_U", None)  # "tied": the caller's dict loses a parameter
        super().__init__(config, params)


@pytest.mark.parametrize(
    ("network", "change"),
    [(_GPTConvertingItsParams, "params['blocks'][0]['attn']['W_q'] was replaced: an array of shape"),
     (_GPTDroppingTheUnembedding, "params['W_U'] was removed")],
)
def test_an_implementation_that_rewrites_a_parameter_dict_fails(network: type, change: str) -> None:
    """Replacing or removing entries of the caller's dict changes no array, so the element check
    cannot see it; the oracle, called next with the same dict, would get tensors or lose a weight."""
    result = run_clause("GPT-NEXT", patched("numpy", name="rewrites", GPT=network), profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert "GPT(" in result.message and "modified its argument params in place" in result.message
    assert change in result.message, result.message


def test_a_replaced_number_says_from_what_to_what() -> None:
    """A KV cache updated in place (Hugging Face's style) bumps its length: "2 became 3", not "a int
    became a int"."""
    from nnspec.verify.implementations import _restructured

    assert _restructured([("cache['length']", 2)], [("cache['length']", 3)]) == (
        "cache['length']", "cache['length'] was replaced: 2 became 3"
    )
    assert _restructured([("n", 10**6)], [("n", int("1000000"))]) is None  # equal, another object


def test_a_wrapper_that_passes_its_arguments_on_modifies_nothing() -> None:
    """``*args``/``**kwargs`` are bound to a fresh tuple and dict on every call: a decorator's
    wrapper (``functools.wraps``, ``torch.no_grad()``) must not look as if it replaced its arguments."""
    forwarding = patched(
        "numpy", name="forwarding",
        softmax=lambda *a, **k: numpy_ref.softmax(*a, **k),
        feed_forward=torch.no_grad()(numpy_ref.feed_forward),
        GPT=lambda *a, **k: numpy_ref.GPT(*a, **k),
    )
    for clause_id in ("SM-SUM", "FFN-FORMULA", "GPT-NEXT"):
        result = run_clause(clause_id, forwarding, profile="quick", seed=0)
        assert result.status == "passed", result.message


def test_a_result_the_implementation_overwrites_later_is_judged_as_it_was_returned() -> None:
    """A model that writes every forward pass into one preallocated buffer (CUDA graphs' static
    outputs, ``out=`` kernels) returns the same array each time. A clause comparing two passes would
    compare the buffer with itself, and GPT-NEXT passed a GPT with no causal mask at all; each result
    is a copy taken when the call returns."""
    base = CATALOGUE["gpt-without-causal-mask"].implementation()
    unmasked = base._namespace["GPT"]

    class BufferedGPT:
        def __init__(self, config, params):
            self._net, self._out = unmasked(config, params), None

        def forward(self, ids):
            out = self._net.forward(ids)
            if self._out is None or self._out.shape != out.shape:
                self._out = np.empty_like(out)
            np.copyto(self._out, out)
            return self._out

    result = run_clause("GPT-NEXT", patched(base, name="buffered", GPT=BufferedGPT), profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert result.message.startswith("GPT-NEXT [buffered] failed")


def test_a_namedtuple_result_is_a_tuple_of_its_fields() -> None:
    """``Attention(output, weights)``, a namedtuple, is what many codebases return; copying or
    translating the result must build it from its fields, not from one iterable."""
    import collections

    Attention = collections.namedtuple("Attention", ["output", "weights"])

    def attention(q, k, v, mask=None):
        return Attention(*numpy_ref.scaled_dot_product_attention(q, k, v, mask))

    named = patched("numpy", name="namedtuple", scaled_dot_product_attention=attention)
    for clause_id in ("ATT-ROWS-SUM", "ATT-MASK-ZERO"):
        result = run_clause(clause_id, named, profile="quick", seed=0)
        assert result.status == "passed", result.message


@pytest.mark.parametrize("clause_id", ["SM-SUM", "SM-TEMP"])
def test_a_non_deterministic_implementation_fails_saying_so(clause_id: str) -> None:
    """Wrong on a random 30% of calls (a race in a kernel, uninitialised memory): Hypothesis finds a
    failure that does not happen again on the same input (FlakyFailure), or, where the clause draws
    after calling it, a run that asks for different draws (FlakyStrategyDefinition). That is the
    implementation's failure, not an error of the clause."""
    rng = np.random.default_rng(0)

    def racy_softmax(x, axis=-1, temperature=1.0):
        out = numpy_ref.softmax(x, axis=axis, temperature=temperature)
        return out * 1.5 if rng.random() < 0.3 else out

    result = run_clause(clause_id, patched("numpy", name="racy", softmax=racy_softmax))
    assert result.status == "failed", result.message
    assert "not deterministic: the same input" in result.message, result.message
    assert "Hypothesis could not run" not in result.message


def test_the_first_failure_is_found_in_a_group_and_a_cycle_ends() -> None:
    from hypothesis.errors import FlakyFailure
    from nnspec.verify.runner import _first_failure

    failure = ClauseFailure("softmax", observed="1.5", expected="1.0")
    group = FlakyFailure("flaky", [ValueError("other"), FlakyFailure("inner", [failure])])
    assert _first_failure(group) is failure
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__context__, b.__context__ = b, a  # a cycle, as re-raising inside handlers can leave
    assert _first_failure(a) is None


def test_missing_capability_is_not_applicable() -> None:
    no_softmax = patched("numpy", name="no-softmax", softmax=None)
    result = run_clause(TEST_CLAUSES["T-SOFTMAX"], no_softmax)
    assert result.status == "not_applicable"
    assert "softmax" in result.message
    assert result.examples == 0


def test_capability_used_but_not_declared_is_not_applicable() -> None:
    def prop(impl, ck):
        impl.softmax(np.zeros(3))
        impl.layer_norm(np.zeros(3), np.ones(3), np.zeros(3))

    result = run_clause(_toy(prop), patched("numpy", name="no-ln", layer_norm=None))
    assert result.status == "not_applicable"
    assert "layer_norm" in result.message and "not in its needs" in result.message


def test_a_broken_clause_is_an_error_not_a_failure() -> None:
    def prop(impl, ck):
        p = impl.softmax(ck.input(ck.draw(hnp.arrays(np.float64, 3, elements=st.floats(-1, 1)), "x")))
        p.no_such_attribute  # noqa: B018  (the clause's own bug)

    result = run_clause(_toy(prop), "numpy")
    assert result.status == "error"
    assert "AttributeError" in result.message and "not of numpy" in result.message


def test_an_unknown_output_kind_is_the_clauses_error() -> None:
    def prop(impl, ck):
        ck.close(impl.softmax(np.zeros(2)), np.full(2, 0.5), output="probabilty", what="typo")

    result = run_clause(_toy(prop, hypothesis=False), "numpy")
    assert result.status == "error" and "probabilty" in result.message


def test_clause_without_hypothesis_runs_once_and_cannot_draw() -> None:
    calls = []

    def prop(impl, ck):
        calls.append(1)
        ck.close(impl.softmax(np.zeros(4)), np.full(4, 0.25), output="probability", what="uniform")

    assert run_clause(_toy(prop, hypothesis=False), "numpy").status == "passed"
    assert calls == [1]

    def draws(impl, ck):
        ck.draw(st.integers(), "n")

    assert run_clause(_toy(draws, hypothesis=False), "numpy").status == "error"


@pytest.mark.parametrize(("cost", "fraction"), [("cheap", 1.0), ("network", 0.2), ("training", 0.05)])
def test_expensive_clauses_get_a_fraction_of_the_examples(cost: str, fraction: float) -> None:
    def prop(impl, ck):
        ck.draw(st.integers(0, 10**6), "n")

    result = run_clause(_toy(prop, cost=cost), "numpy", profile="default")
    # documented: max(1, ceil(max_examples * fraction)); default profile: 50, 10, 3
    assert result.examples == max(1, math.ceil(PROFILES["default"].max_examples * fraction))


def test_ci_profile_gives_identical_results_twice() -> None:
    def strip(r):
        return {k: v for k, v in r.to_dict().items() if k != "duration"}

    for impl, cid in (("numpy", "T-MASK"), ("numpy", "T-LAYERNORM"), (BROKEN, "T-LAYERNORM")):
        first = run_clause(TEST_CLAUSES[cid], impl, profile="ci")
        second = run_clause(TEST_CLAUSES[cid], impl, profile="ci")
        assert strip(first) == strip(second)
        assert first.examples >= (1 if first.status == "failed" else PROFILES["ci"].max_examples)


def test_the_users_own_modules_do_not_change_the_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis mixes constants from the source of imported "local" modules into its draws; a
    user's project imported beside the clauses (pytest --nnspec-impl) must not change a clause's
    examples. The check can fail: without nnspec's guard the examples differ. (ATT-MASK-RENORM: its
    result records the worst of its drawn examples; ATT-ORACLE's is its hot row's, drawn from a
    seed, the same either way.)"""
    import contextlib

    from nnspec.verify import runner

    def strip(r):
        return {k: v for k, v in r.to_dict().items() if k != "duration"}

    before = run_clause("ATT-MASK-RENORM", "torch:cpu:float32", profile="ci")
    (tmp_path / "users_constants.py").write_text(
        "CONSTANTS = [" + ", ".join(repr(0.37 * k - 3.1) for k in range(200)) + "]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import users_constants  # noqa: F401  (imported: its constants are now "local")

    assert strip(run_clause("ATT-MASK-RENORM", "torch:cpu:float32", profile="ci")) == strip(before)
    monkeypatch.setattr(runner, "_without_local_constants", contextlib.nullcontext)
    unguarded = run_clause("ATT-MASK-RENORM", "torch:cpu:float32", profile="ci")
    assert strip(unguarded) != strip(before)  # the guard is what keeps them equal


def test_cuda_implementation_without_gpu_is_not_applicable() -> None:
    import torch

    impl = load_implementation("torch:cuda:bfloat16")
    result = run_clause(TEST_CLAUSES["T-SOFTMAX"], impl)
    if torch.cuda.is_available():
        assert result.status == "passed", result.message
    else:
        assert result.status == "not_applicable" and "no CUDA device" in result.message


def test_result_round_trips_through_json() -> None:
    import json

    from nnspec.verify import ClauseResult

    result = run_clause(TEST_CLAUSES["T-LAYERNORM"], BROKEN)
    again = ClauseResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()


# ------------------------------------------------------------------------------------------------
# implementations
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "device", "dtype"),
    [
        ("torch", "cpu", "float32"),
        ("torch:cpu", "cpu", "float32"),
        ("torch:cpu:float64", "cpu", "float64"),
        ("torch:cpu:bf16", "cpu", "bfloat16"),
        ("torch:cuda:half", "cuda", "float16"),
        ("torch:float64", "cpu", "float64"),
    ],
)
def test_torch_names(name: str, device: str, dtype: str) -> None:
    impl = load_implementation(name)
    assert (impl.device, impl.dtype) == (device, dtype)
    assert impl.name == f"torch:{device}:{dtype}"


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("pytorch", "torch[:device[:dtype]]"),
        ("torch:tpu", "choose one of"),
        ("torch:cpu:int8", "float32"),
        ("no_such_package.mod:impl", "cannot import module 'no_such_package.mod'"),
        ("broken_impls:NOPE", "has no attribute 'NOPE'"),
        # a slip of the keyboard gets the likely name
        ("numpyy", "did you mean 'numpy'?"),
        ("torch:cude", "choose one of"),
        ("broken_impls:BROKN", "did you mean broken_impls:BROKEN?"),
    ],
)
def test_bad_names_say_how_to_fix_them(name: str, fix: str) -> None:
    with pytest.raises(UnknownImplementation, match=".*") as info:
        load_implementation(name)
    assert fix in str(info.value) and repr(name) in str(info.value)


def test_import_failures_say_which_import_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that is not found, and one that is found but needs a package that is not installed,
    are two different fixes."""
    (tmp_path / "needs_dep.py").write_text("import math\nimport no_such_dependency  # noqa\n")
    (tmp_path / "few_names.py").write_text("import math\nimport numpy as np\nVALUE = 1\nKERNELS = object()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownImplementation) as info:
        load_implementation("needs_dep:IMPL")
    assert "needs_dep imports no_such_dependency, which is not installed here" in str(info.value)
    with pytest.raises(UnknownImplementation) as info:
        load_implementation("absent_pkg.impl:IMPL")
    assert "run from the directory that holds absent_pkg" in str(info.value)
    with pytest.raises(UnknownImplementation) as info:
        load_implementation("few_names:IMPL")
    assert str(info.value).endswith("has no attribute 'IMPL'; available: KERNELS")  # not math, np, VALUE


def test_import_path_objects_and_factories() -> None:
    assert load_implementation("broken_impls:BROKEN") is BROKEN

    class Mine:
        nnspec_name = "mine"
        nnspec_dtype = "fp32"
        nnspec_conventions = {"mask_true_means": "masked"}
        __version__ = "1.2"

        @staticmethod
        def softmax(x, axis=-1, temperature=1.0):
            return numpy_ref.softmax(x, axis=axis, temperature=temperature)

    from nnspec.verify.implementations import from_object

    impl = from_object(Mine, name="x")
    assert (impl.name, impl.dtype, impl.version) == ("mine", "float32", "1.2")
    assert impl.capabilities == {"softmax"}
    assert impl.conventions.mask_true_means == "masked"
    assert from_object(lambda: BROKEN, name="factory") is BROKEN
    with pytest.raises(UnknownImplementation, match="offers none of the capabilities"):
        from_object(object(), name="empty")


@pytest.mark.parametrize(
    ("declared", "dtype"),
    [
        ("fp32", "float32"),
        ("BF16", "bfloat16"),
        ("torch.float16", "float16"),
        (torch.bfloat16, "bfloat16"),
        (torch.float64, "float64"),
        (np.float32, "float32"),
        (np.dtype("float16"), "float16"),
    ],
)
def test_a_declared_dtype_is_read_in_every_spelling_a_framework_has(declared: Any, dtype: str) -> None:
    """``nnspec_dtype = torch.float16`` is what a torch user writes; it must not fall back to float64
    (tolerances of 1e-11 for a half-precision model: every clause fails, none for the right reason)."""
    from nnspec.verify.implementations import from_object

    class Mine:
        nnspec_dtype = declared
        softmax = staticmethod(numpy_ref.softmax)

    assert from_object(Mine, name="mine").dtype == dtype


@pytest.mark.parametrize(
    ("attribute", "value", "fix"),
    [
        ("nnspec_dtype", "fp8", "choose one of ['float64', 'float32', 'float16', 'bfloat16']"),
        ("nnspec_dtype", torch.int8, "choose one of"),
        ("nnspec_dtype", 32, "choose one of"),
        ("nnspec_device", 3, "a device name such as 'cpu' or 'cuda:0'"),
        ("nnspec_device", "", "a device name such as 'cpu' or 'cuda:0'"),
    ],
)
def test_a_declaration_nnspec_cannot_read_is_refused_by_name(attribute: str, value: Any, fix: str) -> None:
    from nnspec.verify.implementations import from_object

    mine = type("Mine", (), {attribute: value, "softmax": staticmethod(numpy_ref.softmax)})
    with pytest.raises(UnknownImplementation) as info:
        from_object(mine, name="mine")
    assert f"{attribute} = {value!r}" in str(info.value) and fix in str(info.value)


def test_a_declared_torch_device_is_its_name() -> None:
    from nnspec.verify.implementations import from_object

    mine = type("Mine", (), {"nnspec_device": torch.device("cuda", 1), "softmax": staticmethod(numpy_ref.softmax)})
    assert from_object(mine, name="mine").device == "cuda:1"


@pytest.mark.parametrize(
    ("device", "available", "baseline"),
    [("cpu", True, "cpu"), ("cuda", True, "cuda"), ("cuda:1", True, "cuda"), ("cuda:0", False, "cpu"),
     ("xpu:0", True, "cpu"), ("mps", True, "cpu")],
)
def test_the_baseline_runs_on_the_kind_of_device_the_implementation_does(
    device: str, available: bool, baseline: str
) -> None:
    """A third-party model on ``cuda:1`` is judged against torch_ref on CUDA (cuBLAS's error, not
    the CPU's); a device torch_ref has no baseline for falls back to the CPU."""
    from nnspec.verify.check import baseline_device

    assert baseline_device(device, available=available) == baseline


def test_a_module_is_named_by_its_bare_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``nnspec verify myimpl`` for a myimpl.py in the current directory: a module needs no ':'."""
    (tmp_path / "flat_impl.py").write_text(
        "from nnspec.reference import numpy_ref\nnnspec_dtype = 'float32'\nsoftmax = numpy_ref.softmax\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    impl = load_implementation("flat_impl")
    assert (impl.capabilities, impl.dtype, impl.framework) == ({"softmax"}, "float32", "third-party")
    with pytest.raises(UnknownImplementation, match="'json': <module 'json'.*offers none of the capabilities"):
        load_implementation("json")


def test_a_class_with_instance_methods_is_built_or_refused() -> None:
    """``mypkg.impl:Impl`` names the class where its methods need an instance: nnspec builds it when
    that takes no arguments (its methods then get their self), else says what to name instead."""
    from nnspec.verify.implementations import from_object

    class Impl:
        nnspec_name = "cls"

        def softmax(self, x, axis=-1, temperature=1.0):
            return numpy_ref.softmax(x, axis=axis, temperature=temperature)

        @staticmethod
        def relu(z):
            return numpy_ref.relu(z)

    impl = from_object(Impl, name="mypkg.impl:Impl")
    assert impl.capabilities == {"softmax", "relu"}
    assert run_clause("SM-SUM", impl, profile="quick", seed=0).status == "passed"

    class Configured(Impl):
        def __init__(self, device):
            self.device = device

    with pytest.raises(UnknownImplementation) as info:
        from_object(Configured, name="mypkg.impl:Configured")
    message = str(info.value)
    assert "Configured is a class whose capabilities (softmax) are instance methods" in message
    assert "name an instance (IMPL = Configured(...)) or a factory" in message

    class Namespace:  # a class used as a namespace of plain functions: used as it is
        def relu(z):
            return numpy_ref.relu(z)

    assert from_object(Namespace, name="mypkg.impl:Namespace").relu(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]


def test_entry_point_implementations_are_found_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from nnspec.verify import implementations

    ep = EntryPoint("broken-ep", "broken_impls:BROKEN", implementations.ENTRY_POINT_GROUP)
    monkeypatch.setattr(implementations, "entry_points", lambda group: [ep] if group == ep.group else [])
    monkeypatch.setattr(implementations, "_CACHE", {})
    assert load_implementation("broken-ep") is BROKEN
    # a shared Implementation is not renamed by the name it was found under (its failures keep
    # reproducing as the patched() call they are)
    assert BROKEN.loaded_as is None
    with pytest.raises(UnknownImplementation, match="installed entry points: broken-ep\\)"):
        load_implementation("nothing")


def test_a_capability_with_another_signature_fails_naming_both_signatures() -> None:
    """An adapter that kept PyTorch's names (``dim``) raises TypeError on nnspec's call: the
    failure shows its signature beside numpy_ref's, the fix, not only Python's one line."""

    def softmax(x, dim=-1):
        return numpy_ref.softmax(x, axis=dim)

    class Network:
        def __init__(self, config, params):
            pass

        def forward(self, tokens):  # numpy_ref's GPT.forward(ids)
            return np.zeros(3)

    impl = patched("numpy", name="dim", softmax=softmax, GPT=Network)
    result = run_clause("SM-SUM", impl, profile="quick", seed=0)
    assert result.status == "failed"
    assert "softmax() got an unexpected keyword argument 'axis'" in result.message
    assert "its signature is softmax(x, dim=-1)" in result.message
    assert "numpy_ref's softmax(x, axis=-1, temperature=1.0)" in result.message
    with pytest.raises(TypeError) as info:
        impl.GPT(None, None).forward(ids=np.zeros(2, dtype=int))
    assert "its signature is GPT.forward(tokens)" in str(info.value)
    assert "numpy_ref's GPT.forward(ids)" in str(info.value)

    def raising(x, axis=-1, temperature=1.0):  # a TypeError from inside a call that fits: no hint
        raise TypeError("unsupported operand")

    result = run_clause("SM-SUM", patched("numpy", name="t", softmax=raising), profile="quick", seed=0)
    assert "unsupported operand" in result.message and "signature" not in result.message


def test_a_result_narrower_than_the_declared_dtype_says_so_when_it_fails() -> None:
    """A float32 model that forgot ``nnspec_dtype`` is judged as float64 (the default) and fails by
    float32's rounding: the failure names the likely cause, not only a 1e-8 error."""

    def softmax32(x, axis=-1, temperature=1.0):
        return numpy_ref.softmax(x, axis=axis, temperature=temperature).astype(np.float32)

    result = run_clause("SM-FORMULA", patched("numpy", name="f32", softmax=softmax32), profile="quick", seed=0)
    assert result.status == "failed"
    assert ("the result is float32, narrower than the float64 this implementation declares "
            "(nnspec_dtype; float64 unless declared)") in result.message
    # the same arithmetic declared as float32 passes, by float32's rule
    declared = patched("numpy", name="f32", softmax=softmax32)
    declared.dtype = "float32"
    assert run_clause("SM-FORMULA", declared, profile="quick", seed=0).status == "passed"
    # a float64 result that is wrong gets no such note
    wrong = run_clause("SM-TEMP", CATALOGUE["softmax-temperature-multiplied"].implementation(),
                       profile="quick", seed=0)
    assert wrong.status == "failed" and "narrower" not in wrong.message


def test_implementation_exceptions_keep_their_type() -> None:
    def bad(x, axis=-1, temperature=1.0):
        raise ValueError("axis out of range")

    impl = patched("numpy", name="v", softmax=bad)
    with pytest.raises(ValueError, match="axis out of range") as info:
        impl.softmax(np.zeros(2))
    assert isinstance(info.value, ImplementationError) and isinstance(info.value, ClauseFailure)
    with pytest.raises(MissingCapability):
        _ = patched("numpy", name="n", softmax=None).softmax
    with pytest.raises(ValueError, match="not capabilities"):
        patched("numpy", name="n", sofmax=bad)


def test_capabilities_include_network_methods() -> None:
    assert load_implementation("torch:cpu:float64").has("GPT.forward_cached")
    assert not load_implementation("numpy").has("GPT.forward_cached")
    assert load_implementation("numpy").has("GPT")


def test_torch_adapter_crosses_as_numpy(device: str) -> None:
    impl = load_implementation(f"torch:{device}:float64")
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    out = impl.softmax(x, axis=-1)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, numpy_ref.softmax(x), atol=1e-14)
    mask = impl.causal_mask(2, 3)
    assert mask.dtype == bool and mask.tolist() == [[True, True, False], [True, True, True]]
    pe = impl.positional_encoding(4, 6)
    assert pe.dtype == np.float64 and pe.shape == (4, 6)


def test_torch_adapter_wraps_networks(device: str) -> None:
    config = preset("gpt_tiny", n_layers=1)
    params = numpy_ref.init_params(config, seed=1)
    ids = np.array([[4, 5, 6, 7]])
    expected = numpy_ref.GPT(config, params).forward(ids)
    for dtype, atol in (("float64", 1e-10), ("float32", 1e-4)):
        net = load_implementation(f"torch:{device}:{dtype}").GPT(config, params)
        logits = net.forward(ids)
        assert isinstance(logits, np.ndarray) and logits.dtype == np.float64
        np.testing.assert_allclose(logits, expected, atol=atol)
    assert isinstance(net.params["W_E"], np.ndarray)
    torch_params = load_implementation(f"torch:{device}:float64").init_params(config, seed=1)
    np.testing.assert_array_equal(torch_params["W_E"], params["W_E"])


# ------------------------------------------------------------------------------------------------
# conventions
# ------------------------------------------------------------------------------------------------


def _inverted_polarity_sdpa(q, k, v, mask=None):
    """An implementation whose masks say True = *masked* (nn.MultiheadAttention's attn_mask)."""
    return numpy_ref.scaled_dot_product_attention(q, k, v, None if mask is None else ~mask)


def _inverted_causal_mask(n_queries, n_keys):
    return ~numpy_ref.causal_mask(n_queries, n_keys)


def test_declared_mask_polarity_is_translated() -> None:
    namespace = {"scaled_dot_product_attention": _inverted_polarity_sdpa, "causal_mask": _inverted_causal_mask}
    declared = Implementation("masked-true", namespace, conventions={"mask_true_means": "masked"})
    undeclared = Implementation("undeclared", namespace)
    assert run_clause(TEST_CLAUSES["T-MASK"], declared).status == "passed"
    assert declared.causal_mask(2, 2).tolist() == [[True, False], [True, True]]
    assert run_clause(TEST_CLAUSES["T-MASK"], undeclared).status == "failed"


def _reads_true_as_masked(fn: Any) -> Any:
    """``fn`` as code whose masks say True = masked: every argument named ``*mask`` is inverted on
    the way in, however it was passed (by keyword or by position)."""
    import functools
    import inspect

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            if name.endswith("mask") and isinstance(value, np.ndarray) and value.dtype == bool:
                bound.arguments[name] = ~value
        return fn(*bound.args, **bound.kwargs)

    return call


class _VocabularyPaddingTrueAsMasked(Vocabulary):
    """A vocabulary whose padding mask says True = pad (the polarity it declares)."""

    def pad(self, ids_list: Any, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        ids, mask = super().pad(ids_list, length)
        return ids, ~mask


class _TransformerReadingTrueAsMasked:
    """An adapter around a model that reads True = masked: its encode and decode, and the rest of
    the model's methods handed on (``__getattr__``, as adapters do)."""

    def __init__(self, config: Any, params: Any) -> None:
        self._net = numpy_ref.Transformer(config, params)
        self.encode = _reads_true_as_masked(self._net.encode)
        self.decode = _reads_true_as_masked(self._net.decode)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)


_MASK_CAPABILITIES = ("scaled_dot_product_attention", "multi_head_attention", "additive_attention",
                      "dot_attention", "encoder_layer", "decoder_layer")


def test_every_clause_that_passes_a_mask_passes_it_in_the_declared_polarity() -> None:
    """The oracle as code that reads True = masked everywhere, declared so, passes every clause that
    hands it a mask, by keyword or by position. A keyword mask was inverted twice (once as a known
    mask argument, once as "a keyword ending in mask"), so ``multi_head_attention(..., mask=m)``
    reached such code in nnspec's polarity: ATT-MASK-ZERO and ATT-ORACLE failed a correct model."""
    overrides: dict[str, Any] = {name: _reads_true_as_masked(getattr(numpy_ref, name)) for name in _MASK_CAPABILITIES}
    overrides["causal_mask"] = lambda n_queries, n_keys: ~numpy_ref.causal_mask(n_queries, n_keys)
    overrides["padding_mask"] = lambda token_ids, pad_id: ~numpy_ref.padding_mask(token_ids, pad_id)
    overrides["Transformer"] = _TransformerReadingTrueAsMasked
    overrides["Vocabulary"] = _VocabularyPaddingTrueAsMasked
    declared = patched("numpy", name="true-means-masked", **overrides)
    declared.conventions = Conventions(mask_true_means="masked")
    undeclared = patched("numpy", name="undeclared", **overrides)
    touching = [cid for cid, c in installed().items()
                if {name.partition(".")[0] for name in c.capabilities} & {*overrides}]
    assert len(touching) > 30
    failures = {cid: r.message for cid in touching
                if (r := run_clause(cid, declared, profile="quick", seed=0)).status in ("failed", "error")}
    assert failures == {}
    # A failure of such code shows the masks as the clauses drew them, and says it was handed the
    # inverse (a user whose True means masked reads `mask = [True]` beside zero weights otherwise)
    ignoring = patched("numpy", name="ignores-masks", scaled_dot_product_attention=(
        lambda q, k, v, mask=None: numpy_ref.scaled_dot_product_attention(q, k, v)))
    ignoring.conventions = Conventions(mask_true_means="masked")
    failed = run_clause("ATT-MASK-ZERO", ignoring, profile="quick", seed=0)
    assert failed.status == "failed"
    assert "(masks as the clauses read them, True = may attend: ignores-masks declares " \
        "mask_true_means='masked', and each mask it took or returned was inverted on the way (here: " \
        in format_failure(failed)
    # also where the clause drew no mask: a padding_mask left in nnspec's polarity under the
    # declaration is read inverted back, True for the pads (tenth hunt: the line was missing)
    unflipped = patched("numpy", name="padding-mask-unflipped", padding_mask=numpy_ref.padding_mask,
                        **{name: overrides[name] for name in _MASK_CAPABILITIES[:2]})
    unflipped.conventions = Conventions(mask_true_means="masked")
    failed = run_clause("ATT-PADDING", unflipped, profile="quick", seed=0)
    assert failed.status == "failed"
    assert "was inverted on the way (here: padding_mask, scaled_dot_product_attention)" in format_failure(failed)
    # the same code undeclared: the masks it reads are the wrong way round, and that shows
    for cid in ("ATT-MASK-ZERO", "ATT-ORACLE", "NET-PADDING", "ADD-ATT", "DOT-ATT", "TOK-PAD"):
        assert run_clause(cid, undeclared, profile="quick", seed=0).status == "failed", cid


def test_a_failure_by_exact_equality_or_nan_carries_its_error_to_the_row() -> None:
    """A report row's error and tolerance are the failing assertion's, also when it is exact (the
    masked weights of T-MASK: error 0.5 against tolerance 0) or a NaN (error inf): the report's
    columns and its error-against-tolerance figure read them."""
    namespace = {"scaled_dot_product_attention": _inverted_polarity_sdpa, "causal_mask": _inverted_causal_mask}
    exact = run_clause(TEST_CLAUSES["T-MASK"], Implementation("undeclared", namespace))
    assert exact.status == "failed"
    assert exact.tolerance == 0.0 and exact.max_error is not None and exact.max_error > 0
    nan = run_clause(TEST_CLAUSES["T-LAYERNORM"], BROKEN)
    assert nan.status == "failed" and nan.max_error == float("inf") and nan.tolerance == 0.0
    assert nan.to_dict()["max_error"] == float("inf")  # the report writes it as "inf"


def test_a_failing_comparison_shows_the_worst_element_in_full() -> None:
    """Previews round to four digits, so both sides of a failure can print the same; the detail gives
    the worst element in full (and, at low precision, the baseline's value there)."""
    verdict = tolerances.closed_form(np.array([0.46875, 0.5]), np.array([0.4687906, 0.5]), "probability", "float64")
    assert not verdict.passed
    assert "worst at index (0,): observed 0.46875, expected 0.4687906;" in verdict.detail
    low = tolerances.against_baseline(
        np.array([0.5, 0.25]), np.array([0.5, 0.2501]), np.array([0.5, 0.25009]), "probability", "float32"
    )
    assert not low.passed
    assert "worst at index (1,): observed 0.25, expected 0.2501, baseline 0.25009" \
        in low.detail


def test_the_same_precision_floor_grows_with_each_elements_condition() -> None:
    """An exact baseline leaves the floor as the whole tolerance; where the clause states a condition
    number, that element's floor is that many times wider, and only that element's."""
    expected, baseline = np.array([0.0, 0.0]), np.array([0.0, 0.0])
    off = np.array([0.0, 1e-4])  # 1e-4 = 52 float32 ulps: past the 16-ulp floor, within 100 x it
    plain = tolerances.against_baseline(off, expected, baseline, "normalised", "float32")
    assert not plain.passed and plain.error == 1e-4
    conditioned = tolerances.against_baseline(off, expected, baseline, "normalised", "float32",
                                              condition=np.array([1.0, 100.0]))
    assert conditioned.passed and "x condition up to 100" in conditioned.reason
    elsewhere = tolerances.against_baseline(off, expected, baseline, "normalised", "float32",
                                            condition=np.array([100.0, 1.0]))
    assert not elsewhere.passed and "worst at index (1,)" in elsewhere.detail
    with pytest.raises(ValueError, match="at least 1"):
        tolerances.against_baseline(off, expected, baseline, "normalised", "float32", condition=0.5)


def test_two_routes_are_held_to_what_the_same_routes_part_by_in_torch_ref() -> None:
    """Rule 4: rule 3's closed form, widened by k times the gap torch_ref's same two routes show on
    the input; without a baseline, rule 3 alone. A gap in torch_ref does not hide a fault: the
    implementation may be k times as far apart, not arbitrarily."""
    forward, composed = np.array([0.97, 3.0]), np.array([0.25, 3.0])  # 0.72 apart, as GPT-COMPOSE found
    alone = tolerances.between_routes(forward, composed, None, None, "network", "bfloat16")
    closed = tolerances.closed_form(forward, composed, "network", "bfloat16")
    assert not alone.passed
    assert (alone.error, alone.tolerance, alone.reason) == (closed.error, closed.tolerance, closed.reason)
    base_forward, base_composed = np.array([0.4, 3.0]), np.array([0.25, 3.0])  # torch_ref: 0.15 apart
    judged = tolerances.between_routes(forward, composed, base_forward, base_composed, "network", "bfloat16")
    assert judged.passed, judged
    assert "two routes at bfloat16, network: k=4 x torch_ref's gap between the same routes 0.15" in judged.reason
    assert judged.tolerance == pytest.approx(0.25 + 4 * 0.15 + 0.25 * 0.25)
    fault = tolerances.between_routes(forward + 1.0, composed, base_forward, base_composed, "network", "bfloat16")
    assert not fault.passed and "worst at index (0,)" in fault.detail
    nan_base = tolerances.between_routes(forward, composed, np.array([np.nan, 3.0]), base_composed, "network",
                                         "bfloat16")
    assert nan_base.reason == closed.reason  # a baseline that is not finite measures nothing


def test_close_routes_runs_the_routes_through_torch_ref_below_float64_only() -> None:
    """At float64 two routes are rule 3's; below, the same lambdas run on torch_ref at the dtype."""
    routes = (lambda m: np.asarray(m.softmax(np.array([1.0, 2.0, 3.0]))),
              lambda m: np.asarray(m.softmax(np.array([1.0, 2.0, 3.0]) + 5.0)))
    seen = []
    for name in ("numpy", "torch:cpu:float32"):
        impl = patched(name, name=f"a copy of {name}")
        ck = EngineCheck(impl)
        observed, expected = ck.close_routes(*routes, output="probability", what="softmax(x) vs softmax(x + 5)")
        assert observed.shape == expected.shape == (3,)
        seen.append(ck.records[-1].reason)
    assert seen[0].startswith("closed form, float64, probability")
    assert seen[1].startswith("two routes at float32, probability: k=2 x torch_ref's gap")


def test_oracle_follows_declared_conventions() -> None:
    top_left = Conventions(causal_alignment="top_left", sinusoid_layout="concatenated", layer_norm_eps=0.5)
    oracle = Implementation("x", {}, conventions=top_left).oracle
    assert oracle.causal_mask(2, 3).tolist() == [[True, False, False], [True, True, False]]
    # the layout is translated for positional_encoding (clauses read the pinned table) and matched
    # in the networks: a GPT's sinusoids come concatenated, sines first
    np.testing.assert_array_equal(oracle.positional_encoding(3, 5), numpy_ref.positional_encoding(3, 5))
    config = dataclasses.replace(preset("gpt_tiny"), positional="sinusoidal", n_layers=0, scale_embeddings=False,
                                 norm_placement="post")
    params = numpy_ref.init_params(config, seed=0)
    ids = np.array([4, 5, 6])
    added = np.asarray(oracle.GPT(config, params).hidden(ids)) - np.asarray(numpy_ref.GPT(
        dataclasses.replace(config, positional="none"), params).hidden(ids))
    table = numpy_ref.positional_encoding(3, config.d_model)
    np.testing.assert_allclose(added, np.concatenate([table[:, 0::2], table[:, 1::2]], axis=1), atol=1e-12)
    x = np.array([[1.0, -1.0]])
    np.testing.assert_allclose(oracle.layer_norm(x, np.ones(2), np.zeros(2)), x / np.sqrt(1.5))
    assert Implementation("y", {}).oracle.causal_mask(2, 3).tolist() == numpy_ref.causal_mask(2, 3).tolist()


def test_declared_network_conventions_adjust_both_sides() -> None:
    pre_ln = Conventions(norm_placement="pre", bias=False, activation="gelu_tanh")
    config = preset("transformer_tiny")
    adjusted = pre_ln.apply(config)
    assert (adjusted.norm_placement, adjusted.bias, adjusted.activation) == ("pre", False, "gelu_tanh")
    assert pre_ln.apply(preset("mnist_3b1b")) == preset("mnist_3b1b")  # an MLP keeps its activation
    seen = []
    impl = Implementation("pre-only", {"init_params": lambda c, seed=0: seen.append(c) or {}}, conventions=pre_ln)
    impl.init_params(config)
    assert seen == [adjusted]
    with pytest.raises(ValueError, match="norm_placement"):
        Conventions(norm_placement="sandwich")
    with pytest.raises(ValueError, match="unknown convention"):
        Conventions.coerce({"mask_polarity": "masked"})


# ------------------------------------------------------------------------------------------------
# the Check
# ------------------------------------------------------------------------------------------------


def test_input_rounds_to_the_implementation_dtype() -> None:
    x = np.array([1 + 2.0**-10, 1 + 2.0**-30, 3.0])
    assert EngineCheck(load_implementation("numpy")).input(x) is x
    assert EngineCheck(load_implementation("torch:cpu:bfloat16")).input(x).tolist() == [1.0, 1.0, 3.0]
    assert EngineCheck(load_implementation("torch:cpu:float16")).input(x).tolist() == [1 + 2.0**-10, 1.0, 3.0]
    huge = np.array([7e4, -1e6, np.inf])
    assert EngineCheck(load_implementation("torch:cpu:float16")).input(huge).tolist() == [65504.0, -65504.0, np.inf]
    ids = np.array([1, 2])
    assert EngineCheck(load_implementation("torch:cpu:bfloat16")).input(ids) is ids


@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2), elements=st.floats(-50, 50)))
def test_input_is_idempotent(x: np.ndarray) -> None:
    ck = EngineCheck(load_implementation("torch:cpu:float16"))
    once = ck.input(x)
    np.testing.assert_array_equal(ck.input(once), once)


def test_check_records_and_failures() -> None:
    ck = EngineCheck(load_implementation("numpy"))
    ck.close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-13]), output="default", what="ok")
    assert ck.records[-1].passed and ck.records[-1].error == pytest.approx(1e-13, rel=0.01)
    with pytest.raises(ClauseFailure, match="wrong shape"):
        ck.close(np.zeros((2, 1)), np.zeros(2), what="shape")
    with pytest.raises(ClauseFailure, match="wrong dtype"):
        ck.close(np.zeros(2, dtype=np.int64), np.zeros(2), what="dtype")
    with pytest.raises(ClauseFailure, match="wrong structure"):
        ck.close((np.zeros(2),), (np.zeros(2), np.zeros(2)), what="pair")
    with pytest.raises(ClauseFailure, match="1 element\\(s\\) differ, first at index \\(1,\\)"):
        ck.equal(np.array([0.0, 1e-300]), np.zeros(2), what="exact zeros")
    with pytest.raises(ClauseFailure, match="rows sum to one"):
        ck.that(False, what="rows sum to one", observed="1.5", expected="1")
    assert [r.passed for r in ck.records] == [True, False, False, False, False, False]
    ck.note("examples", 3)
    assert ck.notes == {"examples": 3}


def test_closed_form_tolerance_grows_with_the_stated_condition_number() -> None:
    from nnspec.verify import tolerances

    eps32, ulps = tolerances.EPS["float32"], tolerances.TABLE["normalised"].ulps
    off = np.array([3.8e-5])  # PyTorch's float32 batch norm of a constant feature at 3.25 (BN-STATS)
    assert not tolerances.closed_form(off, np.zeros(1), "normalised", "float32").passed
    verdict = tolerances.closed_form(off, np.zeros(1), "normalised", "float32", condition=1028.0)
    assert verdict.passed and verdict.tolerance == pytest.approx(ulps * eps32 * 1028.0)
    assert "x condition 1.03e+03" in verdict.reason
    # the condition scales the budget, it does not open it: 10x past the scaled budget fails
    assert not tolerances.closed_form(10 * verdict.tolerance * np.ones(1), np.zeros(1), "normalised",
                                      "float32", condition=1028.0).passed
    for bad in (0.5, float("nan"), np.array([2.0, 0.5])):
        with pytest.raises(ValueError, match="condition number is at least 1"):
            tolerances.closed_form(off, np.zeros(1), "normalised", "float32", condition=bad)
    # one condition per element: a well-conditioned token keeps its tight tolerance
    both = np.array([3.8e-5, 3.8e-5])
    per_token = tolerances.closed_form(both, np.zeros(2), "normalised", "float32", condition=np.array([1028.0, 1.0]))
    assert not per_token.passed and "worst at index (1,)" in per_token.detail
    assert "x condition up to 1.03e+03" in per_token.reason


_VALUES = st.floats(-1e3, 1e3) | st.sampled_from([0.0, np.inf, -np.inf, np.nan])


@given(
    data=st.data(),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    rtol=st.sampled_from([0.0, 1e-7, 1e-3]),
)
def test_the_elementwise_rule_is_the_plain_comparison_at_the_worst_element(
    data: Any, shape: tuple, rtol: float
) -> None:
    """The comparison behind every tolerance rule, against its plain statement. It takes shortcuts
    for large all-finite arrays with tolerances above zero (NET-LONG's 2050 x 2304 logits), so both
    paths are drawn: NaN/Inf where the expected output has them (skipped), zero tolerances (any
    difference is infinitely far past), an element a hair past its tolerance, scalar and
    per-element atol."""
    from nnspec.verify import tolerances

    expected = data.draw(hnp.arrays(np.float64, shape, elements=_VALUES), label="expected")
    finite_values = st.floats(-1e3, 1e3)
    observed = np.array(np.where(np.isfinite(expected), expected, 0.0) + data.draw(
        hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1e-9, -1e-6, 1e-3]) | finite_values),
        label="offset"))
    atol = data.draw(st.sampled_from([0.0, 1e-8, 1e-3]) | hnp.arrays(
        np.float64, shape, elements=st.sampled_from([0.0, 1e-8, 1e-6])), label="atol")
    if np.size(expected) and data.draw(st.booleans(), label="a hair past"):
        index = np.unravel_index(0, np.shape(expected))
        if np.isfinite(expected[index]):
            allowed = float(np.broadcast_to(atol, np.shape(expected))[index]) + rtol * abs(expected[index])
            observed[index] = np.nextafter(expected[index] + allowed, np.inf)
    verdict = tolerances._elementwise(observed, expected, atol, rtol, "r")
    finite = np.isfinite(expected)
    diff = np.abs(np.where(finite, observed - expected, 0.0))
    allowed = np.broadcast_to(atol + rtol * np.abs(np.where(finite, expected, 0.0)), np.shape(diff))
    assert verdict.passed == bool(np.all(diff <= allowed))
    if np.size(diff):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
        worst = np.unravel_index(int(np.argmax(ratio)), np.shape(ratio))
        assert (verdict.error, verdict.tolerance) == (float(diff[worst]), float(allowed[worst]))
        if not verdict.passed:
            assert f"worst at index {tuple(int(i) for i in worst)}" in verdict.detail


def test_close_to_oracle_uses_the_same_rounded_inputs_and_the_baseline() -> None:
    ck = EngineCheck(load_implementation("torch:cpu:bfloat16"))
    x = np.array([[0.1, 0.2, 0.3]])  # not bf16 values: both sides must see the rounded ones
    out, weights = ck.close_to_oracle(
        "scaled_dot_product_attention", x, x, x, output="attention"
    )
    assert out.shape == (1, 3) and weights.shape == (1, 1)
    assert all("baseline error" in r.reason for r in ck.records)
    assert len(ck.records) == 2  # output and weights


def test_lambda_close_to_oracle_for_network_methods() -> None:
    config = preset("gpt_tiny", n_layers=1)
    params = numpy_ref.init_params(config, seed=0)
    ck = EngineCheck(load_implementation("torch:cpu:float32"))
    logits = ck.close_to_oracle(lambda m: m.GPT(config, params).forward(np.array([1, 2, 3])), output="network")
    assert logits.shape == (3, config.n_vocab)
    assert ck.records[-1].passed and "network" in ck.records[-1].reason


def test_profiles_are_documented() -> None:
    from nnspec.verify import cli, profiles

    assert tuple(profiles.PROFILES) == cli.PROFILES
    assert PROFILES["ci"].derandomize and not PROFILES["quick"].derandomize
    assert dataclasses.asdict(PROFILES["quick"])["max_examples"] < PROFILES["thorough"].max_examples


def test_a_module_of_torch_functions_is_verified_as_third_party_code() -> None:
    """``torch_module`` adapts a user's torch code written with torch_ref's names (tensors in and
    out): it is third-party code, judged against the bundled baseline (never against itself, which
    would make the differential rule vacuous) and run in the session's precision switches."""
    import types

    from nnspec.reference import torch_ref
    from nnspec.verify import torch_module

    def bf16_attention(q, k, v, mask=None):  # declared float32, computed in bfloat16
        out, weights = torch_ref.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask)
        return out.float(), weights.float()

    good = torch_module(torch_ref, name="mine", dtype="float32")
    assert (good.name, good.framework, good.dtype, good.device) == ("mine", "third-party", "float32", "cpu")
    assert "Vocabulary" not in good.capabilities  # only what the module offers
    for clause_id in ("SM-FORMULA", "ATT-ORACLE", "NET-ORACLE"):
        result = run_clause(clause_id, good, profile="quick", seed=0)
        assert result.status == "passed", result.message
    # against itself the bfloat16 error would be k times its own: judged against torch_ref's float32
    lossy = torch_module(
        types.SimpleNamespace(scaled_dot_product_attention=bf16_attention,
                              multi_head_attention=torch_ref.multi_head_attention),
        name="lossy", dtype="float32",
    )
    result = run_clause("ATT-ORACLE", lossy, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert "scaled_dot_product_attention(q, k, v), one query over" in result.message
    assert re.search(r"x baseline error [-0-9.e]+ \(torch_ref at float32\)", result.message), result.message
    # the module's own declaration is read where torch_module is given none; an argument wins
    declaring = types.SimpleNamespace(softmax=torch_ref.softmax, nnspec_conventions={"norm_placement": "pre"})
    assert torch_module(declaring, name="declaring").conventions.norm_placement == "pre"
    assert torch_module(declaring, name="declaring", conventions={"norm_placement": "post"}
                        ).conventions.norm_placement == "post"
    with pytest.raises(UnknownImplementation, match="offers none of the capabilities"):
        torch_module(types.SimpleNamespace(), name="empty")
    with pytest.raises(UnknownImplementation, match="unknown dtype 'fp8'"):
        torch_module(torch_ref, name="x", dtype="fp8")


def test_torch_code_may_return_a_namedtuple() -> None:
    """``Attention(output, weights)`` of tensors (or torch's own ``torch.return_types``) converts to
    the same namedtuple of arrays, as a plain tuple does."""
    import collections
    import types

    from nnspec.reference import torch_ref
    from nnspec.verify import torch_module

    Attention = collections.namedtuple("Attention", ["output", "weights"])

    def attention(q, k, v, mask=None):
        return Attention(*torch_ref.scaled_dot_product_attention(q, k, v, mask))

    converted = torch_ref.to_numpy(Attention(torch.ones(2), torch.zeros(1, dtype=torch.bool)))
    assert type(converted) is Attention and converted.output.dtype == np.float64 and converted.weights.dtype == bool
    assert type(torch_ref.to_torch(Attention(np.ones(2), np.ones(1)))) is Attention
    values, indices = torch_ref.to_numpy(torch.max(torch.ones(2, 2), dim=0))  # torch.return_types.max
    assert values.dtype == np.float64 and indices.dtype == np.int64
    named = torch_module(types.SimpleNamespace(scaled_dot_product_attention=attention), name="nt", dtype="float32")
    result = run_clause("ATT-ROWS-SUM", named, profile="quick", seed=0)
    assert result.status == "passed", result.message


def test_a_read_only_array_crosses_the_torch_boundary_without_a_warning() -> None:
    # np.broadcast_to gives a read-only view; torch.from_numpy warns about one (and a run under
    # -W error would fail the clause that passed it)
    import warnings

    from nnspec.reference import numpy_ref
    from nnspec.verify.implementations import round_to_dtype

    impl = load_implementation("torch:cpu:float64")
    x = np.broadcast_to(np.arange(3.0), (1, 3))  # contiguous, so ascontiguousarray keeps the view
    assert not x.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = impl.softmax(x)
        rounded = round_to_dtype(x, "bfloat16")  # every clause input goes through it
    np.testing.assert_allclose(out, numpy_ref.softmax(x), rtol=1e-12)
    np.testing.assert_array_equal(rounded, x)  # 0, 1 and 2 are bfloat16 numbers


def test_torch_code_returning_a_narrower_format_than_declared_is_told_so() -> None:
    """The failure of a model whose result is narrower than it declares says the declaration may be
    the fix. torch_module converts tensors to float64 NumPy, so the format was lost and a float32
    declaration over autocast's bfloat16 results got no such line (a user audit)."""
    import types

    import torch
    from nnspec.verify import torch_module

    def softmax(x, axis=-1, temperature=1.0):  # autocast's output format handed back as it is
        return torch.softmax(x.to(torch.bfloat16).float() / temperature, axis).to(torch.bfloat16)

    impl = torch_module(types.SimpleNamespace(softmax=softmax), name="autocast-softmax", dtype="float32")
    result = run_clause("SM-FORMULA", impl, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert "its torch results have come back in bfloat16, narrower than the float32 it declares" in result.message
    honest = torch_module(types.SimpleNamespace(softmax=softmax), name="declared-bf16", dtype="bfloat16")
    assert run_clause("SM-FORMULA", honest, profile="quick", seed=0).status == "passed"


def test_a_module_whose_own_code_raises_import_error_is_told_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow audit: ``from ._C import ...`` failing inside a found module got the advice for a
    module that cannot be found (run from its directory, install it). It now says where it raised."""
    (tmp_path / "needs_libfoo.py").write_text('raise ImportError("libfoo.so: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownImplementation, match=r"the module was found, and its own code raised this at "
                       r".*needs_libfoo\.py:1"):
        load_implementation("needs_libfoo:IMPL")


def _softmax_in_float32(x: Any, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """A float64 implementation's softmax computed in float32 and cast back (eager JAX's
    ``dot_product_attention`` softmaxes in float32 whatever its inputs)."""
    z = (np.asarray(x) / temperature).astype(np.float32)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float64)


def test_a_float64_result_off_by_float32_rounding_says_so() -> None:
    # tenth hunt (JAX): "observed [0.3333, ...], but should be [0.3333, ...] (error 9.9e-09)"
    # showed the same digits on both sides, with nothing to say where such an error comes from
    failed = run_clause("SM-FORMULA", patched("numpy", name="softmax-in-float32", softmax=_softmax_in_float32))
    assert failed.status == "failed"
    assert "is the size of float32's rounding (eps 1.2e-07), not float64's: a step inside may compute " \
        "in float32 and cast back" in format_failure(failed)
    # an error of another size gets no such line
    scaled = patched("numpy", name="softmax-off", softmax=lambda x, axis=-1, temperature=1.0: (
        numpy_ref.softmax(x, axis, temperature) * 1.001))
    other = run_clause("SM-FORMULA", scaled)
    assert other.status == "failed" and "float32's rounding" not in format_failure(other)


def test_run_clause_given_an_object_that_is_no_implementation_names_the_fix() -> None:
    # tenth hunt: an object handed to run_clause raised AttributeError: no attribute 'strip'
    with pytest.raises(TypeError, match=r"not a SimpleNamespace: wrap the object with nnspec.verify.from_object"):
        run_clause("SM-SUM", types.SimpleNamespace(softmax=numpy_ref.softmax))
