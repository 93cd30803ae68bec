"""The token and embedding clauses: bundled implementations pass, realistic bugs are rejected."""

from __future__ import annotations

import math
from dataclasses import replace

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
from nnspec.reference.accounting import parameter_count
from nnspec.reference.vocabulary import SPECIAL_TOKENS, Vocabulary
from nnspec.spec.clause import INFORMATIVE, REGISTRY
from nnspec.verify import patched, run_clause

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic in ("tokens", "embeddings"))


def test_the_topics_declare_the_issue_clauses() -> None:
    assert set(CLAUSES) >= {"TOK-UNK", "TOK-PAD", "TOK-ROUNDTRIP", "EMB-LOOKUP", "DOT-ALIGN",
                            "UNEMB-SOFTMAX", "GPT3-COUNTS"}
    assert INFORMATIVE["EMB-ANALOGY"].reason


# ------------------------------------------------------------------ planted bugs: tokens
class VocabularyUnknownAsPad(Vocabulary):
    """Out-of-vocabulary words silently become <pad> instead of <unk>."""

    def id_of(self, token: str) -> int:
        return self._ids.get(token, self.pad_id)


class VocabularyKeepsLastTokens(Vocabulary):
    """Truncation keeps the *last* tokens of a long sequence (left truncation)."""

    def pad(self, ids_list, length=None):
        return super().pad([list(s)[-length:] if length else [] for s in ids_list], length)


class VocabularyInvertedMask(Vocabulary):
    """The mask marks the pads (True = padding: nn.MultiheadAttention key_padding_mask polarity)."""

    def pad(self, ids_list, length=None):
        ids, mask = super().pad(ids_list, length)
        return ids, ~mask


class VocabularySkipsSpecials(Vocabulary):
    """decode drops special tokens (a common default for display), so ids do not round-trip."""

    def decode(self, ids):
        return [t for t in super().decode(ids) if t not in SPECIAL_TOKENS]


@pytest.mark.parametrize(
    ("clause_id", "bug"),
    [
        ("TOK-UNK", VocabularyUnknownAsPad),
        ("TOK-PAD", VocabularyKeepsLastTokens),
        ("TOK-PAD", VocabularyInvertedMask),
        ("TOK-ROUNDTRIP", VocabularySkipsSpecials),
    ],
)
def test_token_clause_rejects_planted_vocabulary(clause_id: str, bug: type) -> None:
    result = run_clause(clause_id, patched("numpy", name=bug.__name__, Vocabulary=bug))
    assert result.status == "failed", result.message


# ------------------------------------------------------------------ planted bugs: embeddings
def embed_prescaled(token_ids, W_E):
    """Folds the sqrt(d_model) scaling of the Transformer into the lookup."""
    W_E = np.asarray(W_E)
    return np.moveaxis(W_E[:, np.asarray(token_ids)], 0, -1) * math.sqrt(W_E.shape[0])


def embed_rows(token_ids, W_E):
    """Indexes rows of W_E, as if it were (n_vocab, d_model), instead of taking columns."""
    return np.asarray(W_E)[np.asarray(token_ids)]


def unembed_cosine(h, W_U, b_U=None):
    """Cosine similarity instead of the dot product: the signs survive, the magnitudes do not."""
    h = np.asarray(h, dtype=np.float64)
    W_U = np.asarray(W_U, dtype=np.float64)
    logits = h @ W_U.T / np.linalg.norm(h, axis=-1, keepdims=True)
    return logits if b_U is None else logits + b_U


def unembed_negated(h, W_U, b_U=None):
    """An energy-style sign: -W_U h."""
    logits = -(np.asarray(h) @ np.asarray(W_U).T)
    return logits if b_U is None else logits + b_U


def unembed_without_bias(h, W_U, b_U=None):
    """Forgets b_U."""
    return np.asarray(h) @ np.asarray(W_U).T


def parameter_count_with_biases(config, *, biases_and_norms=False):
    """Counts biases and layer norms too: no longer the documents' tally."""
    return parameter_count(config, biases_and_norms=True)


def parameter_count_output_per_head(config, *, biases_and_norms=False):
    """Counts one output matrix per head (n_heads per layer) instead of one per layer."""
    count = parameter_count(config, biases_and_norms=biases_and_norms)
    extra = getattr(config, "n_layers", 0) * (getattr(config, "n_heads", 1) - 1)
    return replace(count, n_matrices=count.n_matrices + extra)


@pytest.mark.parametrize(
    ("clause_id", "overrides"),
    [
        ("EMB-LOOKUP", {"embed": embed_prescaled}),
        ("EMB-LOOKUP", {"embed": embed_rows}),
        ("DOT-ALIGN", {"unembed": unembed_cosine}),
        ("DOT-ALIGN", {"unembed": unembed_negated}),
        ("UNEMB-SOFTMAX", {"unembed": unembed_without_bias}),
        ("GPT3-COUNTS", {"parameter_count": parameter_count_with_biases}),
        ("GPT3-COUNTS", {"parameter_count": parameter_count_output_per_head}),
    ],
    ids=lambda v: v if isinstance(v, str) else next(iter(v.values())).__name__,
)
def test_embedding_clause_rejects_planted_bug(clause_id: str, overrides: dict) -> None:
    name = next(iter(overrides.values())).__name__
    result = run_clause(clause_id, patched("numpy", name=name, **overrides))
    assert result.status == "failed", result.message


def test_unembed_softmax_temperature_bug_is_rejected() -> None:
    """The next-token distribution must divide the logits by T."""

    def softmax_ignoring_temperature(x, axis=-1, temperature=1.0):
        z = np.asarray(x)
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    bad = patched("numpy", name="softmax-ignores-T", softmax=softmax_ignoring_temperature)
    assert run_clause("UNEMB-SOFTMAX", bad).status == "failed"
