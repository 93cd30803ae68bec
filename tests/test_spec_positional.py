"""The positional-encoding clauses: bundled implementations pass, realistic bugs are rejected."""

from __future__ import annotations

from dataclasses import replace

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
from nnspec.reference import numpy_ref
from nnspec.spec.clause import REGISTRY
from nnspec.verify import patched, run_clause

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic == "positional")


def test_the_topic_declares_the_issue_clauses() -> None:
    assert set(CLAUSES) >= {"PE-FORMULA", "PE-TABLE", "PE-BOUNDED", "PE-PAIR", "PE-RELATIVE",
                            "PE-UNIQUE", "PE-WAVELENGTH", "PE-ADDED"}


def test_table_clause_records_the_errata() -> None:
    errata = " ".join(REGISTRY["PE-TABLE"].errata)
    assert "100000^(1/3)" in errata and "truncat" in errata


# ------------------------------------------------------------------ planted bugs
def _encoding(n_positions: int, d_model: int, angle, layout: str = "interleaved") -> np.ndarray:
    pos = np.arange(n_positions)[:, None]  # (n, 1)
    col = np.arange(d_model)[None, :]  # (1, d)
    theta = angle(pos, col, d_model)  # (n, d)
    if layout == "interleaved":
        return np.where(col % 2 == 0, np.sin(theta), np.cos(theta))
    # concatenated: all sines first, then all cosines (a common layout, not the pinned one)
    half = (d_model + 1) // 2
    i = np.arange(half)[None, :]
    rates = 10000.0 ** (-(2 * i) / d_model)
    return np.concatenate([np.sin(pos * rates), np.cos(pos * rates)], axis=1)[:, :d_model]


def pe_concatenated(n_positions, d_model):
    """sin block then cos block instead of interleaved columns."""
    return _encoding(n_positions, d_model, None, layout="concatenated")


def pe_column_index_exponent(n_positions, d_model):
    """Exponent j / d_model with the column index j: the cosine of a pair gets its own frequency."""
    return _encoding(n_positions, d_model, lambda pos, col, d: pos / 10000.0 ** (col / d))


def pe_half_exponent(n_positions, d_model):
    """Exponent i / d_model instead of 2i / d_model: wavelengths grow too slowly."""
    return _encoding(n_positions, d_model, lambda pos, col, d: pos / 10000.0 ** ((col // 2) / d))


def pe_ignores_position(n_positions, d_model):
    """The angle is built from the column index alone (the position variable shadowed)."""
    return _encoding(
        n_positions, d_model, lambda pos, col, d: 0 * pos + 1 / 10000.0 ** (2 * (col // 2) / d)
    )


class TransformerWithoutScaling:
    """Forgets the sqrt(d_model) scaling of the embeddings before adding the positions."""

    def __new__(cls, config, params):
        return numpy_ref.Transformer(replace(config, scale_embeddings=False), params)


class TransformerWithoutPositions:
    """Forgets to add the positional encoding."""

    def __new__(cls, config, params):
        return numpy_ref.Transformer(replace(config, positional="none"), params)


@pytest.mark.parametrize(
    ("clause_id", "bug"),
    [
        ("PE-FORMULA", pe_concatenated),
        ("PE-FORMULA", pe_half_exponent),
        ("PE-TABLE", pe_concatenated),
        ("PE-TABLE", pe_half_exponent),
        ("PE-TABLE", pe_column_index_exponent),
        ("PE-BOUNDED", pe_concatenated),
        ("PE-PAIR", pe_column_index_exponent),
        ("PE-RELATIVE", pe_column_index_exponent),
        ("PE-RELATIVE", pe_half_exponent),
        ("PE-UNIQUE", pe_ignores_position),
        ("PE-WAVELENGTH", pe_half_exponent),
        ("PE-WAVELENGTH", pe_column_index_exponent),
    ],
)
def test_clause_rejects_planted_encoding(clause_id: str, bug) -> None:
    result = run_clause(clause_id, patched("numpy", name=bug.__name__, positional_encoding=bug))
    assert result.status == "failed", result.message


@pytest.mark.parametrize("bug", [TransformerWithoutScaling, TransformerWithoutPositions])
def test_pe_added_rejects_wrong_first_block_input(bug) -> None:
    result = run_clause("PE-ADDED", patched("numpy", name=bug.__name__, Transformer=bug))
    assert result.status == "failed", result.message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("bug", [pe_half_exponent, pe_column_index_exponent])
def test_table_clause_still_rejects_wrong_encodings_at_low_precision(dtype: str, bug) -> None:
    """At float16/bfloat16 PE-TABLE checks the printed hundredths widened by one spacing of the
    format instead of exact truncation; wrong exponents still land in the wrong hundredths."""
    bad = patched(f"torch:cpu:{dtype}", name=bug.__name__, positional_encoding=bug)
    result = run_clause("PE-TABLE", bad)
    assert result.status == "failed", result.message


# ------------------------------------------------------------------ honest float32 tables
def _tutorial_table(n_positions: int, d_model: int) -> np.ndarray:
    """The PyTorch tutorial's table, every step in float32: exp(2i * -log(10000) / d), pos * it."""
    pos = np.arange(n_positions, dtype=np.float32)[:, None]  # (n, 1)
    col = np.arange(d_model)
    inverse = np.exp((col - col % 2).astype(np.float32) * np.float32(-np.log(10000.0) / d_model))
    angle = pos * inverse  # (n, d), float32: about 1e-4 rad off at position 1500
    return np.where(col % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)


def _tutorial_networks() -> object:
    """torch_ref's float32 networks adding the tutorial's table (as a learned one, exactly)."""
    from nnspec.reference import torch_ref
    from nnspec.verify.implementations import _torch_network_class

    def with_table(network: type, tables: tuple[str, ...]) -> object:
        built = _torch_network_class(network, "cpu", "float32")

        def make(config, params):  # noqa: ANN001, ANN202
            if config.positional != "sinusoidal":
                return built(config, params)
            table = _tutorial_table(config.context, config.d_model).astype(np.float64)
            return built(replace(config, positional="learned"), {**params, **dict.fromkeys(tables, table)})

        return make

    return patched("torch:cpu:float32", name="tutorial-table",
                   GPT=with_table(torch_ref.GPT, ("W_P",)),
                   Transformer=with_table(torch_ref.Transformer, ("W_P_src", "W_P_tgt")))


def test_a_float32_network_with_the_tutorial_s_table_passes_net_long() -> None:
    """The policy allows an angle float32's rounding; at position 1500 that is about 1e-4 rad, and
    the same-precision baseline, torch_ref, once built its table in float64: honest float32 code
    then failed NET-LONG at default (ninth hunt). torch_ref now forms its float32 angles in float32.
    With the table built in float64 again, seed 0 fails here, on the GPT (seeds 1 and 2 on the
    encoder-decoder too; this test once ran seed 1 as well); ``quick`` passed seeds 0-11."""
    result = run_clause("NET-LONG", _tutorial_networks(), profile="default", seed=0, shrink=False)
    assert result.status == "passed", result.message
