"""Planting a mistake in an adapter of a whole model (tests/test_hf_gpt2.py, tests/test_hf_marian.py)
and checking that a clause's property, not a crash, caught it."""

from __future__ import annotations

from typing import Any

from nnspec.verify import load_implementation, patched, run_clause


def plant(import_path: str, network: str, name: str, **changes: Any) -> Any:
    """The adapter named by ``import_path`` with some methods of its ``network`` class replaced by
    mistaken ones (each reaches the adapter's own as ``type(self).__mro__[1]``)."""
    base = load_implementation(import_path)
    mistaken = type(network, (base._namespace[network],), changes)
    return patched(base, name=name, **{network: mistaken})


def assert_caught(impl: Any, clause_id: str, what: str) -> None:
    """``clause_id`` fails ``impl`` at quick, seed 0, saying ``what`` and the shrunk input, by its
    property: the adapter ran."""
    result = run_clause(clause_id, impl, profile="quick", seed=0)
    assert result.status == "failed", result.message
    assert what in result.message and "shrunk input:" in result.message
    assert "raised" not in result.message  # caught by the property, not by a crash
