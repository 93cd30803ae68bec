"""The token and embedding clauses: bundled implementations pass, realistic bugs are rejected."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import replace

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
from nnspec.reference import numpy_ref
from nnspec.reference.accounting import parameter_count
from nnspec.reference.config import END_ID, START_ID
from nnspec.reference.vocabulary import SPECIAL_TOKENS, Vocabulary
from nnspec.spec.clause import INFORMATIVE, REGISTRY
from nnspec.verify import patched, run_clause
from nnspec.verify.mutants import (
    _vocabulary_end_is_start,
    _vocabulary_fault,
    embed_negative_wraps,
    init_params_tied_keeps_w_u,
    parameter_count_forgets_final_norm,
    parameter_count_tied_twice,
    tokenize_word_regex,
)

# Faults of the planted-fault catalogue (verify/mutants.py) that these tests name again
VocabularyEndIsStart = _vocabulary_end_is_start()
VocabularyDecodeNegativeWraps = _vocabulary_fault("decode-negative-wraps")
VocabularyMaskFromIds = _vocabulary_fault("mask-from-ids")
VocabularyStrictMinCount = _vocabulary_fault("min-count-exclusive")
VocabularyToTextPastEnd = _vocabulary_fault("to-text-past-end")

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic in ("tokens", "embeddings"))


def test_the_topics_declare_the_issue_clauses() -> None:
    assert set(CLAUSES) >= {"TOK-UNK", "TOK-PAD", "TOK-ROUNDTRIP", "TOK-START-END", "TOK-SPLIT",
                            "EMB-LOOKUP", "DOT-ALIGN", "UNEMB-SOFTMAX", "GPT3-COUNTS",
                            "PARAM-COUNT"}
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


class VocabularyKeepsEndWhenTruncating(Vocabulary):
    """Truncation that writes <end> into the last kept position (some tokenisers' truncation that
    preserves special tokens), where the documented pad keeps the first tokens as they are."""

    def pad(self, ids_list, length=None):
        ids, mask = super().pad(ids_list, length)
        for b, seq in enumerate(ids_list):
            if length and len(seq) > length and list(seq)[-1] == END_ID:
                ids[b, length - 1] = END_ID
        return ids, mask


class VocabularySplitsOnSpaces(Vocabulary):
    """encode with sentence.split(): punctuation stays glued to its word and case is kept."""

    def encode(self, sentence, *, add_start=False, add_end=False):
        ids = [self.id_of(t) for t in sentence.split()]
        return [START_ID] * add_start + ids + [END_ID] * add_end


class VocabularyIgnoresMinCount(Vocabulary):
    """from_sentences that ignores min_count: every word seen, however rare, is kept."""

    @classmethod
    def from_sentences(cls, sentences, *, min_count=1):
        return super().from_sentences(sentences)


@pytest.mark.parametrize(
    ("clause_id", "bug"),
    [
        ("TOK-START-END", VocabularyEndIsStart),
        ("TOK-START-END", VocabularyKeepsEndWhenTruncating),
        ("TOK-SPLIT", VocabularySplitsOnSpaces),
        ("TOK-UNK", VocabularyUnknownAsPad),
        ("TOK-PAD", VocabularyKeepsLastTokens),
        ("TOK-PAD", VocabularyInvertedMask),
        ("TOK-ROUNDTRIP", VocabularySkipsSpecials),
        ("TOK-ROUNDTRIP", VocabularyDecodeNegativeWraps),
        ("TOK-PAD", VocabularyMaskFromIds),
        ("TOK-BUILD", VocabularyStrictMinCount),
        ("TOK-BUILD", VocabularyIgnoresMinCount),
        ("TOK-START-END", VocabularyToTextPastEnd),
    ],
)
def test_token_clause_rejects_planted_vocabulary(clause_id: str, bug: type) -> None:
    result = run_clause(clause_id, patched("numpy", name=bug.__name__, Vocabulary=bug))
    assert result.status == "failed", result.message


# What each planted fault's failure says: the clause names the fault, not a crash.
@pytest.mark.parametrize(
    ("clause_id", "bug", "message"),
    [
        ("TOK-ROUNDTRIP", VocabularyDecodeNegativeWraps, "should be an error (id -1 is outside"),
        ("TOK-PAD", VocabularyMaskFromIds, "the real tokens of each sequence"),
        ("TOK-BUILD", VocabularyStrictMinCount, "the words seen at least 1 times"),
        ("TOK-START-END", VocabularyToTextPastEnd, "word by word (<end> is id 3)"),
    ],
)
def test_token_clause_says_what_the_planted_fault_did(clause_id: str, bug: type, message: str) -> None:
    result = run_clause(clause_id, patched("numpy", name=bug.__name__, Vocabulary=bug),
                        profile="quick", seed=0)
    assert result.status == "failed" and message in result.message, result.message
    assert "raised" not in result.message.split("shrunk input")[0], result.message


def test_tok_pad_draws_a_literal_pad_token() -> None:
    """The mask-from-ids fault is caught by a <pad> written in the text, which the reference
    encodes to pad_id and keeps as a real token (its mask is by position)."""
    result = run_clause("TOK-PAD", patched("numpy", name="mask-from-ids",
                                           Vocabulary=VocabularyMaskFromIds), profile="quick", seed=0)
    assert result.status == "failed"
    assert "'<pad>'" in result.counterexample, result.counterexample


def test_to_text_is_optional_in_tok_start_end() -> None:
    """A vocabulary without to_text is held to the rest of TOK-START-END."""
    result = run_clause("TOK-START-END", patched("numpy", name="no-to-text",
                                                 without=["Vocabulary.to_text"]))
    assert result.status == "passed", result.message
    assert "Vocabulary.to_text" in str(result.notes.get("not offered", "")), result.notes


def tokenize_keeps_case(sentence):
    """The reference's rule without the lowercasing: "How" and "how" become two tokens."""
    return _split_punctuation(unicodedata.normalize("NFC", sentence))


def _split_punctuation(sentence):
    """Whitespace split, then every punctuation character (category P*) a token of its own."""
    out = []
    for chunk in sentence.split():
        word = ""
        for ch in chunk:
            if unicodedata.category(ch).startswith("P"):
                out += [word, ch] if word else [ch]
                word = ""
            else:
                word += ch
        out += [word] if word else []
    return out


def tokenize_without_nfc(sentence):
    """The rule without Unicode NFC: an accent typed as e + U+0301 gives another token than é."""
    return [t.lower() for t in _split_punctuation(sentence)]


@pytest.mark.parametrize("bug", [tokenize_word_regex, tokenize_keeps_case, tokenize_without_nfc])
def test_tok_split_rejects_planted_tokenizer(bug) -> None:
    result = run_clause("TOK-SPLIT", patched("numpy", name=bug.__name__, tokenize=bug))
    assert result.status == "failed", result.message


def test_tok_split_runs_on_a_vocabulary_alone() -> None:
    alone = patched("numpy", name="vocabulary-alone", tokenize=None)
    assert run_clause("TOK-SPLIT", alone).status == "passed"
    bad = patched("numpy", name="split-alone", tokenize=None, Vocabulary=VocabularySplitsOnSpaces)
    assert run_clause("TOK-SPLIT", bad).status == "failed"


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


def embed_clamps(token_ids, W_E):
    """Clamps ids into [0, n_vocab): an out-of-range id is looked up as the nearest valid one."""
    W_E = np.asarray(W_E, dtype=np.float64)
    return W_E.T[np.clip(np.asarray(token_ids), 0, W_E.shape[1] - 1)]


def init_params_without_final_norm(config, seed=0):
    """init_params that leaves out a pre-LN stack's final norm (GPT-2's ln_f)."""
    params = numpy_ref.init_params(config, seed=seed)
    for key in ("final_norm", "encoder_norm", "decoder_norm"):
        params.pop(key, None)
    return params


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
        ("GPT3-COUNTS", {"parameter_count": parameter_count_forgets_final_norm}),
        ("PARAM-COUNT", {"parameter_count": parameter_count_tied_twice}),
        ("PARAM-COUNT", {"parameter_count": parameter_count_forgets_final_norm}),
        ("PARAM-COUNT", {"parameter_count": parameter_count_with_biases}),
        ("EMB-LOOKUP", {"embed": embed_negative_wraps}),
        ("EMB-LOOKUP", {"embed": embed_clamps}),
        ("PARAM-COUNT", {"init_params": init_params_tied_keeps_w_u}),
        ("PARAM-COUNT", {"init_params": init_params_without_final_norm}),
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


@pytest.mark.parametrize(
    ("clause_id", "overrides", "message"),
    [
        ("EMB-LOOKUP", {"embed": embed_negative_wraps}, "should be an error (id -1 is outside"),
        ("PARAM-COUNT", {"init_params": init_params_tied_keeps_w_u},
         "observed a separate unembedding [\"params['W_U']\"] (the network would run untied)"),
    ],
    ids=["embed-negative-wraps", "init-params-tied-keeps-W_U"],
)
def test_embedding_clause_says_what_the_planted_fault_did(clause_id, overrides, message) -> None:
    result = run_clause(clause_id, patched("numpy", name="fault", **overrides), profile="quick", seed=0)
    assert result.status == "failed" and message in result.message, result.message


def test_param_count_checks_init_params_alone() -> None:
    """An implementation that offers init_params but no parameter_count is held to the layout's
    tally through it."""
    alone = patched("numpy", name="init-params-alone", without=["parameter_count"])
    assert run_clause("PARAM-COUNT", alone).status == "passed"
    bad = patched("numpy", name="tied-keeps-W_U-alone", without=["parameter_count"],
                  init_params=init_params_tied_keeps_w_u)
    assert run_clause("PARAM-COUNT", bad, profile="quick", seed=0).status == "failed"


def test_param_count_notes_an_init_params_that_refuses_a_network() -> None:
    """torch.nn's example builds parameters for MLPs only: the others are not checked, and said so."""
    result = run_clause("PARAM-COUNT", "nnspec.verify.torch_nn:float64", profile="quick", seed=0)
    assert result.status == "passed", result.message
    assert any(key.startswith("init_params refused") for key in result.notes), result.notes
