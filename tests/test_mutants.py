"""The planted-fault catalogue: every mutant is rejected by the clauses it names, for the right reason.

A catch by an unrelated crash does not count: a failure whose message says the implementation
raised or hung (``is_crash``) says nothing about the planted fault, unless the mutant models a crash.
"""

from __future__ import annotations

import json

import pytest
from nnspec.verify import patched, run_clause
from nnspec.verify.catalogue import installed
from nnspec.verify.mutants import (
    CATALOGUE,
    MUTANTS,
    ORACLE_COMPARISONS,
    SCHEMA,
    Mutant,
    is_crash,
    kill_matrix,
    main,
    relevant_clauses,
)

CAUGHT = [(m.id, cid) for m in MUTANTS for cid in m.expected]
# What each mutant's expected clauses catch when the oracle carries the same fault.
CAUGHT_WITHOUT_ORACLE = [(m, c) for m, c in CAUGHT if c not in ORACLE_COMPARISONS]
SURVIVORS = [m.id for m in MUTANTS if not m.expected]
TORCH_MUTANTS = {m.id for m in MUTANTS if m.base.startswith("torch")}


def test_catalogue_covers_the_issue() -> None:
    assert len(MUTANTS) >= 30
    assert len(CATALOGUE) == len(MUTANTS), "mutant ids must be unique"
    clauses = installed()
    capabilities = {"GPT", "MLP", "Transformer", "Seq2Seq"}
    for m in MUTANTS:
        assert m.models and "\n" not in m.models, m.id
        assert m.target, m.id
        assert set(m.expected) <= set(clauses), f"{m.id}: unknown clause in {m.expected}"
        # every expected clause actually calls something the mutant replaced
        for cid in m.expected:
            needs = {n.partition(".")[0] for n in clauses[cid].capabilities}
            assert needs & (set(m.target) | capabilities), (m.id, cid)
        assert bool(m.expected) != bool(m.survives), f"{m.id}: expected clauses xor a survives note"


@pytest.mark.parametrize(("mutant_id", "clause_id"), [c for c in CAUGHT if c[0] not in TORCH_MUTANTS],
                         ids=[f"{m}-{c}" for m, c in CAUGHT if m not in TORCH_MUTANTS])
def test_expected_clause_rejects_mutant(mutant_id: str, clause_id: str) -> None:
    mutant = CATALOGUE[mutant_id]
    result = run_clause(clause_id, mutant.implementation(), profile=mutant.profile, seed=0, shrink=False)
    assert result.status == "failed", f"{mutant_id} survived {clause_id}: {result.message}"
    assert mutant.crash or not is_crash(result.message), f"caught only by a crash: {result.message}"
    assert result.examples_to_failure is not None and result.examples_to_failure >= 1


@pytest.mark.parametrize(("mutant_id", "clause_id"), [c for c in CAUGHT if c[0] in TORCH_MUTANTS],
                         ids=[f"{m}-{c}" for m, c in CAUGHT if m in TORCH_MUTANTS])
def test_expected_clause_rejects_torch_mutant(mutant_id: str, clause_id: str, device: str) -> None:
    mutant = CATALOGUE[mutant_id]
    impl = mutant.implementation(f"torch:{device}:float64")
    assert impl.device == device
    result = run_clause(clause_id, impl, profile=mutant.profile, seed=0, shrink=False)
    assert result.status == "failed", f"{mutant_id} survived {clause_id}: {result.message}"
    assert mutant.crash or not is_crash(result.message), f"caught only by a crash: {result.message}"


def test_every_fault_has_a_clause_that_does_not_lean_on_the_oracle() -> None:
    # A bug shared by an implementation and its reference (our torch_ref and numpy_ref, a
    # framework and its NumPy reference) must still be caught: by the documents' own numbers and
    # invariants, not by agreement with the oracle.
    assert ORACLE_COMPARISONS <= set(installed())
    lean = [m.id for m in MUTANTS if m.expected and not set(m.expected) - ORACLE_COMPARISONS]
    assert not lean, f"caught only by comparing with the oracle: {lean}"


@pytest.mark.parametrize(("mutant_id", "clause_id"), CAUGHT_WITHOUT_ORACLE,
                         ids=[f"{m}-{c}" for m, c in CAUGHT_WITHOUT_ORACLE])
def test_expected_clause_rejects_mutant_whose_fault_the_oracle_shares(mutant_id: str, clause_id: str) -> None:
    mutant = CATALOGUE[mutant_id]
    impl = mutant.implementation(shared_oracle=True)
    result = run_clause(clause_id, impl, profile=mutant.profile, seed=0, shrink=False)
    assert result.status == "failed", f"{mutant_id} survived {clause_id} with the fault in the oracle: {result.message}"
    assert mutant.crash or not is_crash(result.message), f"caught only by a crash: {result.message}"


@pytest.mark.parametrize(("mutant_id", "clause_id"),
                         [("sdpa-no-scaling", "ATT-ORACLE"), ("heads-split-without-transpose", "ATT-ORACLE"),
                          ("missing-residual", "NET-ORACLE")])
def test_a_shared_oracle_carries_the_fault(mutant_id: str, clause_id: str) -> None:
    # The oracle comparison that rejects the mutant against the true oracle passes once the oracle
    # shares the fault: the test above really runs without the oracle's help.
    mutant = CATALOGUE[mutant_id]
    alone = run_clause(clause_id, mutant.implementation(), profile="quick", seed=0, shrink=False)
    shared = run_clause(clause_id, mutant.implementation(shared_oracle=True), profile="quick", seed=0,
                        shrink=False)
    assert (alone.status, shared.status) == ("failed", "passed"), (alone.message, shared.message)


def test_shared_oracle_matrix_expects_no_oracle_comparison(tmp_path) -> None:
    from nnspec.report import write_kill_matrix

    data = kill_matrix(mutants=["mha-first-head-mask"], profile="quick", seed=0, shared_oracle=True)
    assert data["shared_oracle"] is True
    (row,) = data["mutants"]
    assert row["expected"] == ["ATT-MASK-ZERO"]
    assert row["cells"]["ATT-MASK-ZERO"]["status"] == "failed"
    assert row["cells"]["ATT-ORACLE"]["status"] == "passed"
    paths = write_kill_matrix(data, tmp_path / "km")
    assert "planted in the oracle too" in paths["md"].read_text()
    assert "planted in the oracle too" in paths["html"].read_text()


@pytest.mark.parametrize("mutant_id", SURVIVORS)
def test_documented_survivor_still_survives(mutant_id: str) -> None:
    # A survivor is a known gap of the catalogue. When a clause starts catching it, this fails:
    # move the clause into the mutant's ``expected`` and drop its ``survives`` note.
    mutant = CATALOGUE[mutant_id]
    impl = mutant.implementation()
    for cid in relevant_clauses(mutant, list(installed())):
        result = run_clause(cid, impl, profile="quick", seed=0, shrink=False)
        assert result.status != "failed", f"{cid} now catches {mutant_id}: update the catalogue"


def test_is_crash_tells_a_crash_from_a_property() -> None:
    def raising_softmax(x, axis=-1, temperature=1.0):
        raise RuntimeError("kernel missing")

    crashing = Mutant("raises", "softmax raises", ("softmax",), ("SM-SUM",),
                      lambda base: patched(base, name="raises", softmax=raising_softmax))
    crash = run_clause("SM-SUM", crashing.implementation(), profile="quick", shrink=False)
    assert crash.status == "failed" and is_crash(crash.message)
    wrong = run_clause("SM-TEMP", CATALOGUE["softmax-temperature-multiplied"].implementation(),
                       profile="quick", shrink=False)
    assert wrong.status == "failed" and not is_crash(wrong.message)


def test_kill_matrix_shape_json_and_exit_code(tmp_path, capsys) -> None:
    chosen = ["sdpa-no-scaling", "layer-norm-no-affine", "causal-mask-hides-diagonal"]
    # Without LN-AFFINE in the run, nothing catches the layer norm that drops gamma and beta.
    clauses = ["ATT-SCALE", "ATT-CAUSAL", "LN-STATS", "SM-SUM"]
    data = kill_matrix(mutants=chosen, clauses=clauses)
    assert set(data) == {"schema", "profile", "seed", "shared_oracle", "clauses", "mutants", "summary"}
    assert data["shared_oracle"] is False
    assert data["schema"] == SCHEMA and data["profile"] == "quick" and data["seed"] == 0
    assert data["clauses"] == clauses
    rows = {r["id"]: r for r in data["mutants"]}
    assert list(rows) == chosen
    for row in data["mutants"]:
        assert set(row) == {"id", "models", "target", "expected", "cells"}
        assert set(row["cells"]) == set(clauses)
        for cell in row["cells"].values():
            assert set(cell) == {"status", "examples_to_failure"}
            assert (cell["examples_to_failure"] is not None) == (cell["status"] == "failed")
    assert rows["sdpa-no-scaling"]["cells"]["ATT-SCALE"]["status"] == "failed"
    # SM-SUM does not use scaled_dot_product_attention: not run on that mutant
    assert rows["sdpa-no-scaling"]["cells"]["SM-SUM"]["status"] == "not_applicable"
    assert rows["layer-norm-no-affine"]["cells"]["LN-STATS"]["status"] == "passed"
    assert rows["causal-mask-hides-diagonal"]["cells"]["ATT-CAUSAL"]["status"] == "failed"
    summary = data["summary"]
    assert summary["kill_rate"] == pytest.approx(2 / 3)
    assert summary["slowest"]["mutant"] in (chosen[0], chosen[2])
    assert summary["median_examples_to_kill"] >= 1
    json.dumps(data)  # JSON-ready

    out = tmp_path / "km.json"
    assert main(["--mutant", "sdpa-no-scaling", "--mutant", "layer-norm-no-affine",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sdpa-no-scaling" in printed and "ATT-SCALE" in printed
    assert json.loads(out.read_text())["schema"] == SCHEMA
    assert main(["--mutant", "no-such-mutant"]) == 2
    assert main(["--mutant", "sdpa-no-scalng"]) == 2
    assert "unknown mutant 'sdpa-no-scalng'; did you mean sdpa-no-scaling?" in capsys.readouterr().err


def test_main_usage_errors_exit_2_before_running(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 means a planted fault got through; a typo must not read as that (nor as a traceback)."""
    assert main(["--profile", "quik", "--mutant", "sdpa-no-scaling"]) == 2
    assert "unknown profile 'quik'; use one of quick, default, thorough, ci" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["--mutant", "sdpa-no-scaling", "--report", str(tmp_path)]) == 2
    assert "was not written by nnspec" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_main_renders_the_report_and_fails_on_a_missed_kill(tmp_path, monkeypatch) -> None:
    assert main(["--mutant", "padding-mask-inverted", "--report", str(tmp_path / "km")]) == 0
    assert (tmp_path / "km" / "kill_matrix.html").is_file()
    # A catalogue claim that does not hold makes the command fail.
    wrong = Mutant("claims-too-much", "padding mask inverted, claimed caught by SM-SUM",
                   ("padding_mask",), ("SM-SUM",), CATALOGUE["padding-mask-inverted"].build)
    monkeypatch.setitem(CATALOGUE, wrong.id, wrong)
    assert main(["--mutant", wrong.id]) == 1


def test_nnspec_mutants_subcommand_runs_the_catalogue(
    capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch
) -> None:
    """`nnspec mutants` is the documented command: it hands its arguments to the mutants runner,
    and leaves nothing in the directory it ran in (Hypothesis' .hypothesis/ cache included)."""
    from nnspec.verify.cli import main as nnspec_main

    monkeypatch.chdir(tmp_path)
    assert nnspec_main(["mutants", "--mutant", "sdpa-no-scaling"]) == 0
    out = capsys.readouterr().out
    assert "sdpa-no-scaling" in out and "kill rate 100%" in out
    assert list(tmp_path.iterdir()) == []
    # with the fault in the oracle too, ATT-ORACLE lets the mutant through and is not expected to
    assert nnspec_main(["mutants", "--mutant", "heads-split-without-transpose", "--shared-oracle",
                        "--json", str(tmp_path / "km.json")]) == 0
    data = json.loads((tmp_path / "km.json").read_text())
    (row,) = data["mutants"]
    assert data["shared_oracle"] and row["expected"] == ["MHA-CONCAT"]
    assert row["cells"]["ATT-ORACLE"]["status"] == "passed"
    assert row["cells"]["MHA-CONCAT"]["status"] == "failed"
    (tmp_path / "km.json").unlink()
    assert nnspec_main(["mutants", "--mutant", "no-such-mutant"]) == 2


@pytest.mark.parametrize(("record", "shared"), [("kill_matrix.json", False),
                                                 ("kill_matrix_shared_oracle.json", True)])
def test_the_recorded_kill_matrices_are_of_the_current_catalogue(record: str, shared: bool) -> None:
    # benchmarks/results holds what README quotes: re-run benchmarks/mutants.py when this fails
    from pathlib import Path

    from nnspec.report.writers import validate

    data = json.loads((Path(__file__).parent.parent / "benchmarks" / "results" / record).read_text())
    validate(data, "kill_matrix.schema.json")
    assert data["shared_oracle"] is shared
    rows = {row["id"]: row for row in data["mutants"]}
    assert list(rows) == [m.id for m in MUTANTS]
    for m in MUTANTS:
        expected = [c for c in m.expected if not (shared and c in ORACLE_COMPARISONS)]
        assert rows[m.id]["expected"] == expected, m.id
    assert data["summary"]["kill_rate"] == 1.0 and data["timings"]["missed"] == []


def test_a_mutant_that_needs_more_examples_runs_at_its_profile_and_says_so(tmp_path) -> None:
    """Only the two mutants' own clauses run: at ``ci`` every clause that decodes (NET-LONG and
    SAMPLE-DIST among them) took 16 s and showed nothing more about the profile."""
    from nnspec.report import write_kill_matrix

    data = kill_matrix(mutants=["greedy-without-history", "sdpa-no-scaling"], clauses=["GREEDY", "ATT-SCALE"],
                       profile="quick", seed=0)
    needs_more, plain = data["mutants"]
    assert CATALOGUE["greedy-without-history"].profile == "ci"
    assert needs_more["profile"] == "ci" and needs_more["cells"]["GREEDY"]["status"] == "failed"
    assert "profile" not in plain
    paths = write_kill_matrix(data, tmp_path / "km")
    assert "`greedy-without-history` (at `ci`)" in paths["md"].read_text()
    assert "greedy-without-history</strong> (at ci)" in paths["html"].read_text()


def test_a_fault_of_one_format_runs_at_that_format_and_says_where(tmp_path) -> None:
    """A float16 accumulator is no fault in float64: such a mutant pins its dtype whatever the
    matrix's base, and the row names the implementation it was planted in."""
    from nnspec.report import write_kill_matrix

    mutant = CATALOGUE["softmax-half-running-sum"]
    assert mutant.base == "torch:cpu:float16"
    assert mutant.implementation("numpy").name == "softmax-half-running-sum"
    assert mutant.implementation("numpy").dtype == "float16"
    data = kill_matrix(mutants=["softmax-half-running-sum", "sdpa-no-scaling"], profile="quick", seed=0)
    pinned, plain = data["mutants"]
    assert pinned["implementation"] == "torch:cpu:float16" and "implementation" not in plain
    assert pinned["cells"]["SM-SUM"]["status"] == "failed"
    paths = write_kill_matrix(data, tmp_path / "km")
    assert "`softmax-half-running-sum` (in `torch:cpu:float16`)" in paths["md"].read_text()
    assert "softmax-half-running-sum</strong> (in torch:cpu:float16)" in paths["html"].read_text()
