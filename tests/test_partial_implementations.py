"""An implementation that offers part of what a clause checks is held to that part.

Most code people bring is one piece: an attention kernel (``scaled_dot_product_attention`` and
nothing else), a model (a ``GPT`` class and nothing else). A clause whose ``needs`` lists
alternatives (``"scaled_dot_product_attention | multi_head_attention"``) or ``uses`` runs the parts
the implementation offers; before, it needed everything it touched, and such code was *not
applicable* to ATT-ORACLE, ATT-SCALE or NET-ORACLE, the clauses it most needs.

Three things are checked here for every such clause, on every way of offering part of it: the
part that runs still passes on the oracle (no false alarm from a missing piece), the report row
names what was not checked, and every planted fault the clause is expected to catch is still
caught when the implementation offers only what the fault replaced.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from nnspec.spec.blocks import SUB_LAYERS
from nnspec.spec.clause import Clause, Source, alternatives, clause
from nnspec.verify import patched, run_clause
from nnspec.verify.catalogue import installed
from nnspec.verify.implementations import Implementation, load_implementation
from nnspec.verify.mutants import MUTANTS, SigmaAsDerivativeMLP, is_crash
from nnspec.verify.runner import partly_checked

CLAUSES = installed()
PARTIAL = {cid: c for cid, c in CLAUSES.items() if c.optional}


def without(impl: str | Implementation, names: list[str] | tuple[str, ...], *, name: str) -> Implementation:
    """``impl`` lacking the capabilities ``names`` (``"MLP.train"``: that method of the class)."""
    narrowed = patched(impl, name=name, without=names)
    for capability in names:
        assert not narrowed.has(capability), capability
    return narrowed


LACKING = [(cid, lacking) for cid, c in PARTIAL.items() for lacking in c.ways_to_offer_part()]


def test_the_clauses_that_need_less_than_all_they_check() -> None:
    """The clauses whose parts run on their own, so that a change to the list is a decision."""
    assert set(PARTIAL) == {
        "ACT-SIGMOID", "MLP-PARAMS", "COST-SQ", "SGD-PARTITION", "UNEMB-SOFTMAX", "ATT-SCALE",
        "ATT-CAUSAL", "ATT-PADDING", "ATT-PERMUTE", "ATT-CROSS", "MHA-ONE-HEAD", "ATT-ORACLE",
        "RESIDUAL", "ENC-LAYER", "DEC-LAYER", "DEC-AUTOREGRESSIVE", "GREEDY", "NET-ORACLE", "NET-LONG",
        # a function or its derivative alone; a sampler of either network; a tokeniser alone or
        # inside a Vocabulary; an LSTM layer with or without its cell
        "ACT-RELU", "ACT-TANH", "ACT-GELU", "SAMPLE-DIST", "TOK-SPLIT", "LSTM-SEQ",
        # a Transformer without greedy decoding; the probabilities of either network
        "NET-PADDING", "OUT-DISTRIBUTION",
        # masked weights in single-head attention or in every head of a multi-head layer
        "ATT-MASK-ZERO",
        # every sequence network offered; an LSTM encoder-decoder composed from its own parts where
        # offered; the counting function or init_params; to_text where offered
        "NET-BATCH", "S2S-COMPOSE", "PARAM-COUNT", "TOK-START-END",
    }
    # a block on its own (what models are built from) is held to the clauses about blocks
    assert CLAUSES["ENC-LAYER"].needs == ("Transformer | encoder_layer",)
    assert CLAUSES["DEC-LAYER"].needs == ("Transformer | decoder_layer",)
    assert CLAUSES["ATT-ORACLE"].needs == ("scaled_dot_product_attention | multi_head_attention",)
    assert CLAUSES["NET-ORACLE"].needs == ("MLP | Transformer | GPT | Seq2Seq",)
    assert CLAUSES["MHA-ONE-HEAD"].uses == ("scaled_dot_product_attention",)


@pytest.mark.parametrize(("clause_id", "lacking"), LACKING, ids=[f"{c}-without-{'+'.join(x)}" for c, x in LACKING])
def test_the_part_offered_passes_and_the_row_names_the_rest(clause_id: str, lacking: tuple[str, ...]) -> None:
    impl = without("numpy", lacking, name="oracle-part")
    result = run_clause(clause_id, impl, profile="quick", seed=0)
    assert result.status == "passed", result.message
    assert result.examples >= 1
    assert result.notes["not offered"] == list(lacking)
    assert result.message == partly_checked("oracle-part", list(lacking))
    assert all(name in result.message for name in lacking)


def test_a_kernel_with_single_head_attention_alone_is_held_to_the_oracle() -> None:
    """The motivating case: before, an attention kernel was not applicable to ATT-ORACLE and
    ATT-SCALE; now an unscaled kernel fails both, and a causal-mask check runs on the pinned mask."""
    from nnspec.verify.mutants import CATALOGUE

    kernel = without(CATALOGUE["sdpa-no-scaling"].implementation(), [
        n for n in load_implementation("numpy").capabilities if n != "scaled_dot_product_attention"
    ], name="unscaled-kernel")
    assert kernel.capabilities == {"scaled_dot_product_attention"}
    for clause_id, what in (("ATT-ORACLE", "scaled_dot_product_attention"),
                            ("ATT-SCALE", "(scores 0, 4; d_k = 4)")):
        result = run_clause(clause_id, kernel, profile="quick", seed=0)
        assert result.status == "failed", result.message
        assert result.notes["not offered"] == ["multi_head_attention"]
        assert what in result.message
        # the failure says what it did not check, beside what it found
        assert "checked on part: unscaled-kernel does not offer multi_head_attention" in result.message
    runs = {cid for cid, c in CLAUSES.items() if not kernel.missing(c.needs)}
    assert {"ATT-ORACLE", "ATT-SCALE", "ATT-CAUSAL", "ATT-PADDING", "ATT-PERMUTE", "ATT-CROSS"} <= runs


def test_a_model_that_is_a_gpt_alone_is_held_to_the_oracle() -> None:
    from nnspec.reference import numpy_ref

    class ForgetsThePositions(numpy_ref.GPT):
        """A GPT that adds no position vectors to the token embeddings (wpe left out)."""

        def __init__(self, config: Any, params: dict) -> None:
            super().__init__(replace(config, positional="none"), params)

    names = load_implementation("numpy").capabilities - {"GPT"}
    model = without(patched("numpy", name="gpt", GPT=ForgetsThePositions), sorted(names), name="gpt-model")
    assert model.capabilities == {"GPT"}
    result = run_clause("NET-ORACLE", model, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert "GPT" in result.counterexample
    assert result.notes["not offered"] == ["MLP", "Transformer", "Seq2Seq"]
    assert run_clause("DEC-AUTOREGRESSIVE", model, profile="quick", seed=0).status == "passed"


CAUGHT_BY_PARTIAL = [
    (m.id, cid) for m in MUTANTS for cid in m.expected
    if cid in PARTIAL and m.base == "numpy"
]


@pytest.mark.parametrize(("mutant_id", "clause_id"), CAUGHT_BY_PARTIAL, ids=[f"{m}-{c}" for m, c in CAUGHT_BY_PARTIAL])
def test_a_planted_fault_is_caught_when_only_its_capability_is_offered(mutant_id: str, clause_id: str) -> None:
    """The fault, in an implementation that offers of the clause's optional capabilities only the
    ones the fault replaced (as a third party's single kernel or single model would)."""
    from nnspec.verify.mutants import CATALOGUE

    mutant, c = CATALOGUE[mutant_id], CLAUSES[clause_id]

    def replaced(name: str) -> bool:  # "MLP.train" is replaced with the MLP
        return name in mutant.target or name.partition(".")[0] in mutant.target

    lacking = [n for n in c.uses if not replaced(n)]
    for need in c.needs:
        members = alternatives(need)
        # the fault's own capability, or where it replaced none of them (a padding mask given to
        # attention), the first
        kept = next((m for m in members if replaced(m)), members[0])
        lacking += [m for m in members if m != kept]
    impl = without(mutant.implementation(), lacking, name=f"{mutant_id}-alone")
    assert not impl.missing(c.needs)
    result = run_clause(clause_id, impl, profile="quick", seed=0, shrink=False)
    assert result.status == "failed", f"{mutant_id} survived {clause_id} without {lacking}: {result.message}"
    assert mutant.crash or not is_crash(result.message), result.message


def test_a_clause_may_not_test_for_a_capability_it_does_not_declare() -> None:
    """ck.offers of an undeclared name is a bug of the clause: applicability and the report would
    not know of the part that depends on it."""

    def prop(impl: Any, ck: Any) -> None:
        if ck.offers("layer_norm"):
            ck.equal(1, 1, what="one")

    toy = Clause(id="T-UNDECLARED", statement="A toy clause.", source=Source("test", "test"),
                 needs=("softmax",), prop=prop, topic="engine-selftest")
    result = run_clause(toy, "numpy", profile="quick", seed=0)
    assert result.status == "error"
    assert "does not declare 'layer_norm'" in result.message and "uses" in result.message


def test_alternatives_are_read_and_bad_declarations_refused() -> None:
    assert alternatives("softmax") == ("softmax",)
    assert alternatives("a | b|c") == ("a", "b", "c")
    numpy = load_implementation("numpy")
    assert numpy.missing(("softmax | no_such_thing", "no_such_thing | nor_this")) == ["no_such_thing | nor_this"]
    with pytest.raises(ValueError, match="bad capability 'softmax \\| '"):
        clause("T-BAD", "A bad clause.", source=Source("test", "test"), needs=("softmax | ",), topic="t")
    with pytest.raises(ValueError, match="bad capability"):
        clause("T-BAD", "A bad clause.", source=Source("test", "test"), needs=("softmax",),
               uses=("a | b",), topic="t")


def test_patched_without_removes_functions_and_methods() -> None:
    from nnspec.reference.config import MLPConfig

    for base in ("numpy", "torch:cpu:float64"):
        narrowed = patched(base, name="no-training", without=["MLP.train", "softmax"])
        assert not narrowed.has("MLP.train") and not narrowed.has("softmax")
        assert narrowed.has("MLP.gradients") and narrowed.has("layer_norm")
        config = MLPConfig(layer_sizes=(2, 1))
        net = narrowed.MLP(config, narrowed.oracle.init_params(config, seed=0))
        assert net.predict([[0.5, -0.5]]).shape == (1,)
        with pytest.raises(AttributeError, match="does not offer 'MLP.train'"):
            net.train  # noqa: B018 (the attribute access is what raises)
    with pytest.raises(ValueError, match=r"\['no_such_thing'\] are not capabilities"):
        patched("numpy", name="x", without=["no_such_thing.train"])


def test_a_blocks_declared_conventions_reach_the_oracles_block() -> None:
    """A pre-LN block (GPT-2's) declares norm_placement='pre'; the drawn post-LN configurations
    reach both its encoder_layer and the oracle's as pre-LN, so the comparison is like for like."""
    from nnspec.reference import numpy_ref

    seen = []

    def encoder_layer(params: dict, x: Any, config: Any, mask: Any = None) -> Any:
        seen.append(config.norm_placement)
        return numpy_ref.encoder_layer(params, x, config, mask)

    block = Implementation("pre-ln-block", {"encoder_layer": encoder_layer}, conventions={"norm_placement": "pre"})
    result = run_clause("ENC-LAYER", block, profile="default", seed=0)
    assert result.status == "passed", result.message
    assert seen and set(seen) == {"pre"}
    assert result.notes["not offered"] == ["Transformer", *SUB_LAYERS]


# A network offered the way protocols.py spells it, as a function of (config, params): the methods
# are those of what it builds. Asked of the factory itself, every method clause (BP-*, GD-*,
# SGD-PARTITION, LEARN-*, S2S-EOS...) was not applicable, and a backpropagation bug passed.
class _Adapter:
    """A third-party adapter whose networks are factories (of the oracle's classes, or of a planted
    fault's)."""

    def __init__(self, mlp: type) -> None:
        self._mlp = mlp

    def MLP(self, config: Any, params: Any) -> Any:  # noqa: N802 (the capability's name)
        return self._mlp(config, params)

    def Seq2Seq(self, config: Any, params: Any) -> Any:  # noqa: N802
        from nnspec.reference import numpy_ref

        return numpy_ref.Seq2Seq(config, params)


def test_a_network_offered_as_a_factory_offers_the_methods_of_what_it_builds() -> None:
    from nnspec.reference import numpy_ref
    from nnspec.verify.implementations import from_object

    impl = from_object(_Adapter(numpy_ref.MLP), name="adapter")
    assert impl.has("MLP.gradients") and impl.has("MLP.train") and impl.has("Seq2Seq.greedy_decode")
    assert not impl.has("MLP.hidden") and not impl.has("Seq2Seq.sample")
    for clause_id in ("BP-FULL", "GD-STEP", "S2S-EOS"):
        result = run_clause(clause_id, impl, profile="quick", seed=0)
        assert result.status == "passed", (clause_id, result.message)

    # backpropagation multiplying by sigma(z) where sigma'(z) belongs (nnspec mutants' own)
    faulty = from_object(_Adapter(SigmaAsDerivativeMLP), name="adapter-sigma-as-derivative")
    result = run_clause("BP-FULL", faulty, profile="quick", seed=0)
    assert result.status == "failed", result.message


def test_a_factory_that_cannot_build_the_probe_is_taken_at_its_word_and_fails_as_it_fails() -> None:
    """Where the tiny network cannot be built, the methods count as offered: the clause then fails
    on the implementation's own error (not a silent not applicable)."""
    from nnspec.verify.implementations import from_object

    class Refusing:
        def MLP(self, config: Any, params: Any) -> Any:  # noqa: N802
            raise RuntimeError("no MLP of these sizes")

    impl = from_object(Refusing(), name="refusing")
    assert impl.has("MLP.gradients")
    result = run_clause("BP-FULL", impl, profile="quick", seed=0)
    assert result.status == "failed" and "no MLP of these sizes" in result.message, result.message


def test_a_factory_that_hangs_while_building_the_probe_fails_the_clause_in_its_time_limit() -> None:
    import time

    from nnspec.verify.implementations import from_object

    class Hanging:
        def MLP(self, config: Any, params: Any) -> Any:  # noqa: N802
            time.sleep(3600)

    result = run_clause("BP-FULL", from_object(Hanging(), name="hanging"), profile="quick", seed=0, time_limit=1.0)
    assert result.status == "failed", result.message
    assert "timed out after 1 s while hanging's MLP was building a tiny network" in result.message, result.message


def test_torch_code_offered_as_a_factory_crosses_the_boundary_as_a_class_does() -> None:
    """``torch_module`` converted a network class's parameters, arguments and results, but handed a
    factory (``def MLP(self, config, params): return MyMLP(...)``, as the protocols spell it) the
    NumPy parameters and the instance's methods NumPy arguments, and passed its tensors back: every
    MLP and Transformer clause of a user audit's correct float32 model failed on `.to`."""
    from nnspec.reference import torch_ref
    from nnspec.verify import torch_module

    class Factories:
        def MLP(self, config: Any, params: Any) -> Any:  # noqa: N802
            return torch_ref.MLP(config, params)

        def Transformer(self, config: Any, params: Any) -> Any:  # noqa: N802
            return torch_ref.Transformer(config, params)

    impl = torch_module(Factories(), name="factories", dtype="float32")
    assert impl.has("MLP.gradients") and impl.has("Transformer.greedy_decode")
    assert not impl.has("MLP.hidden")
    for clause_id in ("MLP-FORWARD", "BP-FULL", "NET-LOGITS", "GREEDY"):
        result = run_clause(clause_id, impl, profile="quick", seed=0)
        assert result.status == "passed", (clause_id, result.message)


def test_the_train_every_torch_module_has_is_not_the_networks_training() -> None:
    """A Transformer built on ``torch.nn.Module`` has ``train(mode=True)``, the switch to training
    mode: TRAIN-TRANSLATE took it for ``Transformer.train(src, tgt, epochs=..., ...)`` and failed a
    correct model that offers no training (a user audit). Offered as a class, as torch code, or
    answering ``nnspec_has_method`` from its instances, it is not applicable."""
    import torch
    from nnspec.reference import numpy_ref, torch_ref
    from nnspec.verify import torch_module
    from nnspec.verify.implementations import from_object

    def module_transformer(reference: Any) -> type:
        """An nn.Module around ``reference``'s Transformer (NumPy's, or torch_ref's for torch_module)."""

        class ModuleTransformer(torch.nn.Module):
            def __init__(self, config: Any, params: Any) -> None:
                super().__init__()
                self.net = reference.Transformer(config, params)

            def forward(self, src: Any, tgt: Any) -> Any:
                return self.net.forward(src, tgt)

        return ModuleTransformer

    class Answering:  # says per instance what it offers
        def __init__(self, config: Any, params: Any) -> None:
            self.net = numpy_ref.Transformer(config, params)

        def nnspec_has_method(self, name: str) -> bool:
            return name != "train"

        def train(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("not offered, as nnspec_has_method says")

        def forward(self, src: Any, tgt: Any) -> Any:
            return self.net.forward(src, tgt)

    class Holder:
        def __init__(self, transformer: Any) -> None:
            self.Transformer = transformer

    for impl in (from_object(Holder(module_transformer(numpy_ref)), name="module"),
                 torch_module(Holder(module_transformer(torch_ref)), name="torch-module"),
                 from_object(Holder(Answering), name="answering")):
        assert impl.has("Transformer.forward") and not impl.has("Transformer.train"), impl.name
        assert run_clause("TRAIN-TRANSLATE", impl, profile="quick").status == "not_applicable", impl.name
        result = run_clause("NET-ORACLE", impl, profile="quick", seed=0)
        assert result.status == "passed", result.message
