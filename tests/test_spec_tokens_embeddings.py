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
    init_params_blocks_aliased,
    init_params_embedding_rows,
    init_params_tied_keeps_w_u,
    parameter_count_forgets_final_norm,
    parameter_count_tied_twice,
    plant_in_oracle,
    tokenize_word_regex,
)

# Faults of the planted-fault catalogue (verify/mutants.py) that these tests name again
VocabularyEndIsStart = _vocabulary_end_is_start()
VocabularyDecodeNegativeWraps = _vocabulary_fault("decode-negative-wraps")
VocabularyMaskFromIds = _vocabulary_fault("mask-from-ids")
VocabularyStrictMinCount = _vocabulary_fault("min-count-exclusive")
VocabularyToTextPastEnd = _vocabulary_fault("to-text-past-end")
VocabularySortsWords = _vocabulary_fault("sorts-words")

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
        ("TOK-BUILD", VocabularyStrictMinCount, "punctuation apart) seen at least 1 times"),
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


# ------------------------------------------------------------------ planted bugs: init_params
# Each is a way real code gets its starting parameters wrong while the number of numbers per field
# stays right, so only the layout, the layers' own arrays or the random start can tell. They are
# checked on their own (the oracle right) and with the fault planted in the oracle too, where the
# clause must not lean on the oracle's init_params.
def _walk(params, change):
    """A copy of a parameter dict with change(key, array) applied to every array."""
    if isinstance(params, dict):
        return {k: _walk(v, change) if isinstance(v, dict | list) else change(k, np.asarray(v))
                for k, v in params.items()}
    return [_walk(v, change) for v in params]


def init_params_ffn_in_out(config, seed=0):
    """Keras/Flax (in, out) kernels for the feed-forward weights, where (n_out, n_in) is pinned."""
    return _walk(numpy_ref.init_params(config, seed=seed),
                 lambda k, a: a.T.copy() if k in ("W_1", "W_2") else a)


def init_params_vocab_swapped(config, seed=0):
    """Transformer(n_tgt_vocab, n_src_vocab, ...): the two vocabulary sizes passed the wrong way round."""
    if hasattr(config, "n_src_vocab"):
        config = replace(config, n_src_vocab=config.n_tgt_vocab, n_tgt_vocab=config.n_src_vocab)
    return numpy_ref.init_params(config, seed=seed)


def init_params_zero_norm_gain(config, seed=0):
    """nn.init.zeros_ on every 1-d parameter: the layer norms' gains start at 0 with the biases."""
    return _walk(numpy_ref.init_params(config, seed=seed),
                 lambda k, a: np.zeros_like(a) if k == "gamma" else a)


def init_params_all_zero_weights(config, seed=0):
    """nn.init.zeros_ over every weight matrix: no random start."""
    return _walk(numpy_ref.init_params(config, seed=seed),
                 lambda k, a: np.zeros_like(a) if k.startswith("W") else a)


def _fault(shared: bool, **overrides):
    name = next(iter(overrides.values())).__name__
    impl = patched("numpy", name=name, **overrides)
    return plant_in_oracle(impl) if shared else impl


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared-oracle"])
@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (init_params_embedding_rows, "observed params['W_E'] ("),
        (init_params_ffn_in_out, "['ffn']['W_1'] ("),
        (init_params_vocab_swapped, "observed params['W_E_src'] ("),
        (init_params_blocks_aliased, "one layer's parameters used twice"),
        (init_params_zero_norm_gain, "the same output for all three"),
        (init_params_all_zero_weights, "params['W_E'] with every entry 0"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_param_count_rejects_planted_init_params(bug, message: str, shared: bool) -> None:
    result = run_clause("PARAM-COUNT", _fault(shared, init_params=bug), profile="quick", seed=0)
    assert result.status == "failed" and message in result.message, result.message
    assert "raised" not in result.message.split("shrunk input")[0], result.message


def init_params_zero_residual_projections(config, seed=0):
    """A conforming scheme: the last projection of each residual branch (W_o, W_2) and a learned
    position table start at zero (Fixup-style; minGPT's zero position table). The rest is random,
    so the layers still differ and the network still answers its input."""
    return _walk(numpy_ref.init_params(config, seed=seed),
                 lambda k, a: np.zeros_like(a) if k in ("W_o", "W_2", "W_P", "W_P_src", "W_P_tgt") else a)


def test_param_count_accepts_zero_initialised_projections() -> None:
    """Constant arrays are not taken for shared layers, nor is a zero projection a missing random start."""
    impl = patched("numpy", name="zero-residual-projections", init_params=init_params_zero_residual_projections)
    for seed in range(3):
        result = run_clause("PARAM-COUNT", impl, profile="quick", seed=seed)
        assert result.status == "passed", result.message


# ------------------------------------------------------------------ planted bugs: the vocabulary's ids
class VocabularyBuiltWithSplit(Vocabulary):
    """from_sentences counts str.split() chunks ('How', 'you?') while encode looks up the
    tokeniser's tokens ('how', 'you', '?'): the words of a real corpus come out <unk>."""

    @classmethod
    def from_sentences(cls, sentences, *, min_count=1):
        from collections import Counter

        counts = Counter(w for s in sentences for w in s.split())
        kept = [w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS]
        return cls(sorted(kept, key=lambda w: (-counts[w], w)))


class VocabularyTorchtextOrder(Vocabulary):
    """Legacy torchtext's specials, <unk> = 0 and <pad> = 1, consistent with itself."""

    def __init__(self, tokens):
        super().__init__(tokens)
        self._tokens = ("<unk>", "<pad>", *self._tokens[2:])
        self._ids = {t: i for i, t in enumerate(self._tokens)}

    @property
    def pad_id(self):
        return 1

    @property
    def unk_id(self):
        return 0

    def id_of(self, token):
        return self._ids.get(token, 0)

    def pad(self, ids_list, length=None):
        ids, mask = super().pad(ids_list, length)
        return np.where(mask, ids, 1), mask


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared-oracle"])
@pytest.mark.parametrize(
    ("clause_id", "bug", "message"),
    [
        ("TOK-BUILD", VocabularyBuiltWithSplit, "kept but not a token seen at least 1 times"),
        ("TOK-UNK", VocabularySortsWords, "the specials, then the words in the order given"),
        ("TOK-UNK", VocabularyTorchtextOrder,
         "observed [1, 0, 2, 3], but should be [0, 1, 2, 3], the ids PARAMETERS.md gives"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else v if isinstance(v, str) and v.isupper() else None,
)
def test_token_clause_rejects_a_self_consistent_vocabulary(clause_id, bug, message, shared) -> None:
    result = run_clause(clause_id, _fault(shared, Vocabulary=bug), profile="quick", seed=0)
    assert result.status == "failed" and message in result.message, result.message
    assert "raised" not in result.message.split("shrunk input")[0], result.message


class VocabularyBuiltWithNfcSplit(VocabularyBuiltWithSplit):
    """The split-built vocabulary with the text NFC-normalised first: a decomposed accent no longer
    shows it, capitals and glued punctuation still do."""

    @classmethod
    def from_sentences(cls, sentences, *, min_count=1):
        return super().from_sentences([unicodedata.normalize("NFC", s) for s in sentences],
                                      min_count=min_count)


class VocabularyBuiltWithLowerSplit(VocabularyBuiltWithSplit):
    """Normalised and lowercased before the split: only a punctuation mark glued to a word shows it."""

    @classmethod
    def from_sentences(cls, sentences, *, min_count=1):
        return super().from_sentences([unicodedata.normalize("NFC", s).lower() for s in sentences],
                                      min_count=min_count)


@pytest.mark.parametrize("bug", [VocabularyBuiltWithNfcSplit, VocabularyBuiltWithLowerSplit],
                         ids=lambda b: b.__name__)
def test_tok_build_draws_case_and_glued_punctuation(bug) -> None:
    """TOK-BUILD's corpus is drawn where str.split() and the rule disagree in each way, not only
    on a decomposed accent."""
    result = run_clause("TOK-BUILD", patched("numpy", name=bug.__name__, Vocabulary=bug),
                        profile="quick", seed=0)
    assert result.status == "failed" and "kept but not a token seen" in result.message, result.message


# ------------------------------------------------------------------ the fifth hunt: tokens and embeddings
# Faults a user's own library let through (verify/mutants.py, FIFTH_HUNT_TOKENS), planted from the
# catalogue: each clause now fails them as a property of the implementation, never as an error of
# the clause (an int mask used to make TOK-START-END raise IndexError while indexing with it).
@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared-oracle"])
@pytest.mark.parametrize(
    ("mutant_id", "clause_id", "message"),
    [
        ("vocab-pad-mask-int", "TOK-PAD", "[1].dtype (the mask): observed int64, but should be bool"),
        ("vocab-pad-mask-int", "TOK-START-END", "[1].dtype (the mask): observed int64, but should be bool"),
        # the engine sees it first, and names the call as it was made: Vocabulary.pad([[0]], 0)
        ("vocab-pad-mutates-caller-lists", "TOK-PAD", "Vocabulary.pad([[0]], 0) modified its argument ids_list "
         "in place: observed ids_list[0][0] was removed"),
        ("vocab-pad-mutates-caller-lists", "TOK-START-END", "modified its argument ids_list in place"),
        ("embed-guesses-layout-from-shape", "EMB-LOOKUP", "for the square W_E = [[1.0, 2.0, 3.0], "
         "[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]] (d_model = n_vocab = 3): column 0, not row 0: observed"),
    ],
)
def test_fifth_hunt_fault_fails_its_clause_with_its_message(mutant_id, clause_id, message, shared) -> None:
    from nnspec.verify.mutants import CATALOGUE

    impl = CATALOGUE[mutant_id].implementation(shared_oracle=shared)
    result = run_clause(clause_id, impl, profile="quick", seed=0)
    assert result.status == "failed" and message in result.message, (result.status, result.message)
    assert "raised" not in result.message.split("shrunk input")[0], result.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_emb_lookup_catches_a_square_layout_guess_on_the_first_example(seed: int) -> None:
    """The square W_E is looked up on every example, so the guess fails on the first one at any
    seed, not only where a drawn W_E happens to be square with rows unlike its columns."""
    from nnspec.verify.mutants import CATALOGUE

    impl = CATALOGUE["embed-guesses-layout-from-shape"].implementation()
    result = run_clause("EMB-LOOKUP", impl, profile="quick", seed=seed, shrink=False)
    assert result.status == "failed" and result.examples_to_failure == 1, result.message


class VocabularyPadsThroughLists(Vocabulary):
    """A correct pad built with np.array from Python lists: for length 0 its ids and mask are
    empty float64 arrays (np.array([[]])), which are no wrong dtype, having no element."""

    def pad(self, ids_list, length=None):
        if length is None:
            length = max((len(s) for s in ids_list), default=0)
        kept = [list(s)[:length] for s in ids_list]
        ids = np.array([k + [self.pad_id] * (length - len(k)) for k in kept])
        mask = np.array([[i < len(k) for i in range(length)] for k in kept])
        return ids, mask


class VocabularyPadsInPlaceOnACopy(Vocabulary):
    """A correct pad that copies the caller's lists first and then truncates and pads the copies
    in place: what the caller holds is left alone."""

    def pad(self, ids_list, length=None):
        return super().pad([list(s) for s in ids_list], length)


@pytest.mark.parametrize("bug", [VocabularyPadsThroughLists, VocabularyPadsInPlaceOnACopy],
                         ids=lambda b: b.__name__)
@pytest.mark.parametrize("clause_id", ["TOK-PAD", "TOK-START-END"])
def test_pad_checks_accept_correct_variants(clause_id: str, bug: type) -> None:
    for seed in range(3):
        result = run_clause(clause_id, patched("numpy", name=bug.__name__, Vocabulary=bug),
                            profile="quick", seed=seed)
        assert result.status == "passed", result.message


class VocabularyPadReturnsFloatIds(Vocabulary):
    """ids as float64 (np.zeros((B, L)) filled in): they cannot index an embedding matrix."""

    def pad(self, ids_list, length=None):
        ids, mask = super().pad(ids_list, length)
        return ids.astype(np.float64), mask


class VocabularyPadReturnsBatchFirstFlat(Vocabulary):
    """A single sequence padded without its batch axis: shape (L,) instead of (1, L)."""

    def pad(self, ids_list, length=None):
        ids, mask = super().pad(ids_list, length)
        return (ids[0], mask[0]) if len(ids_list) == 1 else (ids, mask)


@pytest.mark.parametrize(
    ("clause_id", "bug", "message"),
    [
        ("TOK-PAD", VocabularyPadReturnsFloatIds, "[0].dtype (the ids): observed float64"),
        ("TOK-START-END", VocabularyPadReturnsBatchFirstFlat, "[0].shape: observed ("),
    ],
)
def test_pad_results_are_checked_before_they_are_read(clause_id: str, bug: type, message: str) -> None:
    """A wrong result of pad is a failure of the implementation, not a crash of the clause."""
    result = run_clause(clause_id, patched("numpy", name=bug.__name__, Vocabulary=bug), profile="quick",
                        seed=0)
    assert result.status == "failed" and message in result.message, (result.status, result.message)


def test_tok_split_says_whose_rule_it_is() -> None:
    """The rule is nnspec's convention (PARAMETERS.md), not the documents': the clause says so in
    its sentence, its note and its messages, and records the recap's case-keeping example."""
    c = REGISTRY["TOK-SPLIT"]
    assert "nnspec pins" in c.statement and "NFC" in c.statement
    assert c.source.section == "5. A Basic Idea of transformers, b.1 Tokens"
    assert "PARAMETERS.md" in c.note and any("keeping the capital" in e for e in c.errata)
    keeps_case = run_clause("TOK-SPLIT", patched("numpy", name="keeps-case", tokenize=tokenize_keeps_case),
                            profile="quick", seed=0)
    assert keeps_case.status == "failed"
    assert "the tokens of nnspec's rule (PARAMETERS.md" in keeps_case.message, keeps_case.message
    # a decomposed accent is shown escaped, not as its composed twin
    no_nfc = run_clause("TOK-SPLIT", patched("numpy", name="no-nfc", tokenize=tokenize_without_nfc),
                        profile="quick", seed=0)
    assert no_nfc.status == "failed" and "e\\u0301" in no_nfc.message, no_nfc.message
