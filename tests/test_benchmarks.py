"""The speed and memory benchmark records what it measures and can miss a target (it asserts no
timing itself: the targets are the benchmark's, never a test's)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"nnspec_{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its worker processes find their function by module name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def speed():
    return _benchmark("speed")


def test_the_false_positive_sweep_runs_partial_implementations_too(tmp_path: Path) -> None:
    """--partial adds a row per way of lacking part of a clause, counted apart from full runs."""
    sweep = _benchmark("false_positives")
    out = tmp_path / "fp.json"
    assert sweep.main(["--impl", "numpy", "--seeds", "1", "--profile", "quick", "--processes", "1",
                       "--clause", "ATT-ORACLE", "--clause", "SM-SUM", "--partial", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["runs"] == 4 and data["complete"] and data["seeds_complete"] == [0]
    assert data["counts"] == {"numpy": {"passed": 2}}
    # ATT-ORACLE without multi-head attention, and without single-head attention
    assert data["partial_counts"] == {"numpy": {"passed": 2}}
    assert data["false_positives"] == []


def test_the_record_has_a_row_per_clause_and_the_targets_it_was_held_to(speed, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    code = speed.main(["--impl", "numpy", "--profile", "quick", "--clause", "SM-SUM", "--clause", "GPT-NE*",
                       "--out", str(out), "--quiet"])
    record = json.loads(out.read_text())
    assert code == (0 if record["ok"] else 1)
    assert record["schema"] == "nnspec-speed/1" and record["profile"] == "quick"
    assert [(r["clause"], r["implementation"], r["cost"]) for r in record["clauses"]] == [
        ("SM-SUM", "numpy", "cheap"), ("GPT-NEXT", "numpy", "network"),
    ]
    row = record["clauses"][0]
    assert row["status"] == "passed" and row["examples"] >= 1 and row["seconds"] > 0
    assert row["target_seconds"] == speed.TARGETS["cheap_s"] * speed.profile_scale("quick")
    assert record["implementations"]["numpy"]["applicable"] == 2


def test_a_missed_target_fails_the_benchmark_and_says_which(speed, tmp_path: Path, capsys) -> None:
    code = speed.main(["--impl", "numpy", "--profile", "quick", "--clause", "SM-SUM", "--target-scale", "1e-9",
                       "--out", str(tmp_path / "speed.json"), "--quiet"])
    assert code == 1
    out = capsys.readouterr().out
    assert "missed: SM-SUM [numpy]:" in out and "1 target(s) missed" in out
    assert json.loads((tmp_path / "speed.json").read_text())["missed"][0].startswith("SM-SUM [numpy]")


def test_peak_memory_sees_an_allocation(speed) -> None:
    with speed.PeakMemory() as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block.sum()
    del block
    assert memory.peak_mib >= 48
