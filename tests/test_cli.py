"""The ``nnspec`` command: verify (exit codes 0/1/2), list, show, --version."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from broken_impls import TEST_CLAUSES
from nnspec.verify.cli import main

TESTS = Path(__file__).parent
CATALOGUE = ["--catalogue", "broken_impls:TEST_CLAUSES"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nnspec ")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["verify", "--profile"]) == 2  # argparse: missing value


def test_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", *CATALOGUE]) == 0
    out = capsys.readouterr().out
    for clause in TEST_CLAUSES.values():
        assert clause.id in out and clause.statement in out
    assert main(["list", "--json", *CATALOGUE]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(TEST_CLAUSES)
    assert rows[0]["needs"] == ["sigmoid"]

    assert main(["show", "T-MASK", *CATALOGUE]) == 0
    out = capsys.readouterr().out
    assert "Masked attention weights are exactly zero." in out
    assert "needs: scaled_dot_product_attention" in out
    assert "def _masked_weights_are_zero" in out  # the property's source

    assert main(["show", "T-MAKS", *CATALOGUE]) == 2
    assert "did you mean T-MASK" in capsys.readouterr().err


def test_the_installed_catalogue_lists(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["id"] and r["statement"].endswith(".") and r["source"] for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert by_id["MHA-ONE-HEAD"]["needs"] == ["multi_head_attention"]
    assert by_id["MHA-ONE-HEAD"]["uses"] == ["scaled_dot_product_attention"]


def test_the_informative_claims_are_listed_and_shown(capsys: pytest.CaptureFixture[str]) -> None:
    """The documents' claims that are no clause are part of the catalogue's account, with why."""
    from nnspec.spec import INFORMATIVE

    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert "Informative: claims of the documents that cannot be checked as stated" in captured.out
    assert "SGD-SPEED  [INFORMATIVE, cost_learning]" in captured.out
    assert captured.err.strip().endswith(f", {len(INFORMATIVE)} informative claims")
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    claims = [r for r in rows if r["level"] == "INFORMATIVE"]
    assert {r["id"] for r in claims} == set(INFORMATIVE) and all(r["reason"] for r in claims)
    assert main(["show", "SGD-SPEED"]) == 0
    out = capsys.readouterr().out
    assert "SGD-SPEED (INFORMATIVE, topic cost_learning): not checked as stated" in out
    assert "why not a clause:" in out and "SGD-PARTITION" in out


def test_list_and_verify_refuse_selections_that_select_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--topic", "atention"]) == 2
    assert "unknown topic 'atention'; the topics are activations, attention," in capsys.readouterr().err
    # an empty --clause (a shell variable left unset) is not "every clause"
    assert main(["verify", "numpy", "--clause", "", *CATALOGUE]) == 2
    assert "empty clause selection" in capsys.readouterr().err
    assert main(["verify", "numpy", "-n", "abc", *CATALOGUE]) == 2
    assert "-n 'abc': give a number of worker processes, or auto" in capsys.readouterr().err


def test_show_says_which_parts_a_partial_implementation_leaves_unchecked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["show", "ATT-ORACLE"]) == 0
    out = capsys.readouterr().out
    assert "needs: scaled_dot_product_attention | multi_head_attention" in out
    assert "lacks some of scaled_dot_product_attention, multi_head_attention has the parts" in out
    assert main(["show", "MHA-ONE-HEAD"]) == 0
    assert "uses, if offered: scaled_dot_product_attention" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "needs multi_head_attention, uses scaled_dot_product_attention if offered" in capsys.readouterr().out


def test_verify_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    quick = ["--profile", "quick", *CATALOGUE]
    assert main(["verify", "numpy", *quick]) == 0
    assert "numpy: 5 passed" in capsys.readouterr().out
    assert main(["verify", "broken_impls:BROKEN", *quick, "-k", "not RELU"]) == 1
    out = capsys.readouterr().out
    assert "T-SOFTMAX [broken] failed" in out and "3 failed, 1 passed" in out
    assert main(["verify", "pytorch", *quick]) == 2
    err = capsys.readouterr().err
    # in nnspec verify's words: the user typed no --nnspec-impl
    assert "ERROR: unknown implementation 'pytorch'; did you mean 'torch'?" in err and "--nnspec-" not in err
    assert main(["verify", "numpy", "--clause", "T-SOFTMX", *quick]) == 2
    assert "ERROR: --clause: no clause matches 'T-SOFTMX'" in capsys.readouterr().err
    assert main(["verify", "numpy", "--profile", "fast", *CATALOGUE]) == 2
    assert main(["verify", "numpy", *quick, "-k", "NOTHING"]) == 2
    assert "no clause was selected" in capsys.readouterr().err


def test_verify_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "numpy", "torch:cuda", "--profile", "quick", "--report", str(tmp_path), *CATALOGUE]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert {i["name"] for i in data["meta"]["implementations"]} == {"numpy", "torch:cuda:float32"}
    assert len(data["results"]) == 2 * len(TEST_CLAUSES)
    assert data["meta"]["profile"] == "quick"


def test_a_run_that_checked_nothing_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0 (nothing failed), but a run where every clause was not applicable (the GPU or the
    accelerator went missing) must not read as conformance; the reasons are listed once each."""
    (tmp_path / "accel.py").write_text(
        "nnspec_unavailable = 'the XPU-9 accelerator is not attached'\n"
        "def softmax(x, axis=-1, temperature=1.0):\n    raise AssertionError('never called')\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "accel", "numpy", "--profile", "quick", *CATALOGUE]) == 0
    out = capsys.readouterr().out
    assert "NOTHING was checked on accel: every selected clause was not applicable (the XPU-9 " \
           "accelerator is not attached)" in out
    assert f"    not applicable ({len(TEST_CLAUSES)}): the XPU-9 accelerator is not attached" in out
    assert "NOTHING was checked on numpy" not in out
    assert "SKIPPED" not in out  # the reasons are in nnspec's summary, not once per clause


@pytest.mark.slow
def test_default_verify_runs_from_outside_the_repository(tmp_path: Path) -> None:
    """`nnspec verify` alone: the bundled torch implementation on the CPU, real clauses."""
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "nnspec.verify.cli", "verify", "--clause", "SM-SUM,ATT-CAUSAL", "--profile", "quick"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nnspec implementation: torch:cpu:float32" in proc.stdout
    assert "torch:cpu:float32: 2 passed" in proc.stdout
    assert not list(tmp_path.iterdir())  # nothing left behind in the user's directory


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_verify_runs_with_plugin_autoloading_off(tmp_path: Path, workers: list[str]) -> None:
    """CI set-ups often set PYTEST_DISABLE_PLUGIN_AUTOLOAD=1; nnspec verify loads its plugin (and
    xdist's, for -n) by name, so the main job does not stop at 'unrecognized arguments'."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    report = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "nnspec.verify.cli", "verify", "numpy", "--profile", "quick", *CATALOGUE,
         "--report", str(report), *workers],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"numpy: {len(TEST_CLAUSES)} passed" in proc.stdout
    assert "Warning" not in proc.stdout  # loading the plugin by name: no assert-rewrite warning
    assert len(json.loads((report / "results.json").read_text())["results"]) == len(TEST_CLAUSES)


def test_the_report_records_every_choice_that_shaped_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--catalogue, -k, -n and --time-limit decide which rows a report has and how they ran: its
    command names them, and the report directory as typed, quoted for a shell (an unquoted glob
    fails in zsh); the caller's PYTEST_ADDOPTS is its own test runs' and adds nothing here."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "--nnspec-impl=torch:cpu:float64")
    report = tmp_path / "report"
    assert main(["verify", "numpy", "--profile", "quick", *CATALOGUE, "--clause", "T-S*", "-k", "not SIGMOID",
                 "--time-limit", "30", "--report", str(report)]) == 0
    data = json.loads((report / "results.json").read_text())
    assert data["meta"]["command"] == (
        "nnspec verify numpy --profile quick --seed 0 '--clause=T-S*' --catalogue=broken_impls:TEST_CLAUSES"
        f" --time-limit=30 -k 'not SIGMOID' --report {shlex.quote(str(report))}"
    )
    assert [(r["clause_id"], r["implementation"]) for r in data["results"]] == [("T-SOFTMAX", "numpy")]
    assert os.environ["PYTEST_ADDOPTS"] == "--nnspec-impl=torch:cpu:float64"  # given back


def test_bad_values_are_refused_in_the_command_line_s_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "numpy", "--time-limit", "inf", *CATALOGUE]) == 2
    assert "ERROR: --time-limit=inf: not a number of seconds from 0.1 up" in capsys.readouterr().err
    assert main(["verify", "numpy", "", *CATALOGUE]) == 2  # nnspec verify "$IMPL", IMPL unset
    assert "ERROR: implementation '': an empty implementation name" in capsys.readouterr().err
    assert main(["verify", "numpy", "numpy", "--profile", "quick", "--clause", "T-SOFTMAX", *CATALOGUE]) == 0
    out = capsys.readouterr().out
    assert "nnspec: numpy is numpy again (numpy): it runs once" in out and "--nnspec-impl" not in out


def test_an_interrupted_run_is_neither_a_pass_nor_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C (a KeyboardInterrupt in the middle of a call): exit 3, the run did not finish; 2 would
    tell a CI wrapper that the command line was wrong. The clause that ran first is in the report,
    marked incomplete; a run interrupted before any clause finished leaves no report."""
    report = tmp_path / "report"
    assert main(["verify", "broken_impls:INTERRUPTED", "--profile", "quick", *CATALOGUE,
                 "--clause", "T-SIGMOID", "--clause", "T-SOFTMAX", "--report", str(report)]) == 3
    data = json.loads((report / "results.json").read_text())
    assert not data["meta"]["complete"] and "interrupted" in data["meta"]["incomplete_reason"]
    assert [r["status"] for r in data["results"] if r["clause_id"] == "T-SIGMOID"] == ["passed"]
    alone = tmp_path / "alone"
    assert main(["verify", "broken_impls:INTERRUPTED", "--profile", "quick", *CATALOGUE,
                 "--clause", "T-SOFTMAX", "--report", str(alone)]) == 3
    assert not (alone / "results.json").exists()
