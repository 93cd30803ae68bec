"""The speed and memory benchmark records what it measures and can miss a target (it asserts no
timing itself: the targets are the benchmark's, never a test's)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("nnspec_speed_benchmark", BENCHMARKS / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_record_has_a_row_per_clause_and_the_targets_it_was_held_to(speed, tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    code = speed.main(["--impl", "numpy", "--profile", "quick", "--clause", "SM-SUM", "--clause", "GPT-*",
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
