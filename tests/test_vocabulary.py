"""Vocabulary: tokenisation, unknown words, padding/truncation masks, id <-> token round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnspec.reference import numpy_ref
from nnspec.reference.config import END_ID, PAD_ID, START_ID, UNK_ID
from nnspec.reference.vocabulary import SPECIAL_TOKENS, Vocabulary, tokenize

CORPUS = ["the cat sat on the mat.", "The dog sat!", "a cat, a dog and the mat"]
# lowercase ASCII words; a word may be in the corpus vocabulary or not
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)


def test_specials_have_the_pinned_ids() -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<start>", "<end>"] == list(SPECIAL_TOKENS)
    assert [vocab.id_of(t) for t in SPECIAL_TOKENS] == [PAD_ID, UNK_ID, START_ID, END_ID]
    assert (vocab.pad_id, vocab.unk_id, vocab.start_id, vocab.end_id) == (0, 1, 2, 3)


def test_tokenisation_rule() -> None:
    assert tokenize("How are you?") == ["how", "are", "you", "?"]
    assert tokenize("  Hello,  World!! ") == ["hello", ",", "world", "!", "!"]
    assert tokenize("don't") == ["don", "'", "t"]
    # Devanagari vowel signs are marks, not punctuation: the words stay whole
    assert tokenize("आप कैसे हैं") == ["आप", "कैसे", "हैं"]
    assert tokenize("") == []


def test_order_is_frequency_then_alphabet() -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    # "the" x3; "a", "cat", "dog", "mat", "sat" x2; then the words seen once, alphabetically
    assert vocab.tokens[4:] == [
        "the", "a", "cat", "dog", "mat", "sat", "!", ",", ".", "and", "on",
    ]
    assert len(vocab) == 4 + 11


def test_min_count_sends_rare_words_to_unk() -> None:
    vocab = Vocabulary.from_sentences(CORPUS, min_count=2)
    assert "on" not in vocab and "the" in vocab
    assert vocab.encode("the cat on") == [vocab.id_of("the"), vocab.id_of("cat"), UNK_ID]
    with pytest.raises(ValueError):
        Vocabulary.from_sentences(CORPUS, min_count=0)


@given(data=st.data())
def test_out_of_vocabulary_words_become_unk(data: st.DataObject) -> None:
    known = data.draw(st.lists(WORDS, min_size=1, max_size=8, unique=True), label="known")
    vocab = Vocabulary.from_sentences([" ".join(known)])
    words = data.draw(st.lists(WORDS, max_size=10), label="sentence")
    ids = vocab.encode(" ".join(words))
    assert len(ids) == len(words)
    for word, i in zip(words, ids, strict=True):
        if word in known:
            assert vocab.tokens[i] == word
        else:
            assert i == UNK_ID


def test_start_and_end_markers() -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    body = vocab.encode("the dog")
    assert vocab.encode("the dog", add_end=True) == body + [END_ID]
    assert vocab.encode("the dog", add_start=True, add_end=True) == [START_ID, *body, END_ID]
    # to_text drops <start> and <pad> and stops at the first <end>
    assert vocab.to_text([START_ID, *body, END_ID, *body, PAD_ID]) == "the dog"


@given(data=st.data())
def test_ids_to_tokens_to_ids_round_trip(data: st.DataObject) -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    ids = data.draw(
        hnp.arrays(np.int64, st.integers(0, 12), elements=st.integers(0, len(vocab) - 1)),
        label="ids",
    )
    tokens = vocab.decode(ids)
    assert vocab.encode(" ".join(tokens)) == ids.tolist()


@given(data=st.data())
def test_tokens_to_ids_to_tokens_round_trip(data: st.DataObject) -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    words = data.draw(st.lists(st.sampled_from(vocab.tokens[4:]), max_size=12), label="words")
    sentence = " ".join(words)
    assert vocab.decode(vocab.encode(sentence)) == tokenize(sentence) == words


def test_decode_rejects_ids_outside_the_vocabulary() -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    with pytest.raises(ValueError):
        vocab.decode([len(vocab)])
    with pytest.raises(ValueError):
        vocab.decode([-1])


@given(data=st.data())
def test_pad_truncates_and_masks_exactly_the_pads(data: st.DataObject) -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    # real tokens only (ids >= 4), so a PAD_ID in the output can only be padding
    seqs = data.draw(
        st.lists(
            hnp.arrays(np.int64, st.integers(0, 10), elements=st.integers(4, len(vocab) - 1)),
            min_size=1,
            max_size=5,
        ),
        label="sequences",
    )
    length = data.draw(st.integers(0, 12), label="length")
    ids, mask = vocab.pad([s.tolist() for s in seqs], length)
    assert ids.shape == mask.shape == (len(seqs), length)
    assert ids.dtype == np.int64 and mask.dtype == bool
    for b, seq in enumerate(seqs):
        kept = min(len(seq), length)
        np.testing.assert_array_equal(ids[b, :kept], seq[:kept])  # truncation keeps the start
        assert mask[b, :kept].all() and not mask[b, kept:].any()
    assert (mask == (ids != PAD_ID)).all()
    padding_mask = getattr(numpy_ref, "padding_mask", None)
    if padding_mask is not None:  # the oracle's mask for the same batch, (B, 1, T)
        np.testing.assert_array_equal(padding_mask(ids, PAD_ID)[:, 0, :], mask)


def test_pad_without_length_uses_the_longest() -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    ids, mask = vocab.pad([[5, 6, 7], [8]])
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, PAD_ID, PAD_ID]])
    np.testing.assert_array_equal(mask, [[True, True, True], [True, False, False]])


def test_a_special_written_in_the_text_is_a_real_token() -> None:
    """What TOK-PAD relies on: "<pad>" in a text encodes to PAD_ID, and pad's mask is by position,
    so that token stays unmasked (a mask computed as ids != PAD_ID would hide it)."""
    vocab = Vocabulary.from_sentences(CORPUS)
    ids = vocab.encode("the <pad> cat <end>")
    assert ids == [vocab.id_of("the"), PAD_ID, vocab.id_of("cat"), END_ID]
    padded, mask = vocab.pad([ids, [PAD_ID]], 5)
    np.testing.assert_array_equal(padded, [[*ids, PAD_ID], [PAD_ID] * 5])
    np.testing.assert_array_equal(mask, [[True] * 4 + [False], [True] + [False] * 4])


def test_min_count_is_inclusive() -> None:
    """A word seen exactly min_count times is kept (TOK-BUILD): "a" and "dog" are seen twice."""
    counts = {"a": 2, "dog": 2, "the": 3, "on": 1}
    for min_count in (1, 2, 3):
        vocab = Vocabulary.from_sentences(CORPUS, min_count=min_count)
        assert {w for w, c in counts.items() if w in vocab} == {
            w for w, c in counts.items() if c >= min_count}


def test_to_text_stops_at_the_first_end() -> None:
    vocab = Vocabulary.from_sentences(CORPUS)
    ids = vocab.encode("the dog zebra", add_end=True) + vocab.encode("cat <end> mat")
    assert vocab.to_text(ids) == "the dog <unk>"
    assert vocab.to_text(vocab.encode("the dog zebra")) == "the dog <unk>"


@pytest.mark.parametrize("bad", [-1, -100])
def test_decode_refuses_negative_ids_however_small(bad: int) -> None:
    """-1 and -100 (ignore_index) name no token: no wrap-around to the end of the vocabulary."""
    vocab = Vocabulary.from_sentences(CORPUS)
    with pytest.raises(ValueError):
        vocab.decode([4, bad])
    with pytest.raises(IndexError):
        numpy_ref.embed(np.array([0, bad]), np.ones((2, len(vocab))))


def test_a_list_of_words_keeps_its_order() -> None:
    """What TOK-UNK pins: the specials at 0..3, then each word at its place in the list given (a
    special in the list is not repeated), so a matrix made for that list embeds the right words."""
    words = ["the", "cat", "<unk>", "a", "sat"]
    vocab = Vocabulary(words)
    assert vocab.tokens == [*SPECIAL_TOKENS, "the", "cat", "a", "sat"]
    assert [vocab.id_of(w) for w in ("the", "cat", "a", "sat")] == [4, 5, 6, 7]
    assert vocab.encode("sat the dog") == [7, 4, UNK_ID]


@given(data=st.data())
def test_from_sentences_counts_the_tokens_encode_looks_up(data: st.DataObject) -> None:
    """What TOK-BUILD pins: the words kept are the tokeniser's (lowercase, NFC, each punctuation
    mark apart), not str.split()'s chunks, so every word of the corpus encodes to its own id."""
    sentences = data.draw(st.lists(st.text(alphabet="abAB.,?! \té", max_size=12), min_size=1,
                                   max_size=4), label="corpus")
    vocab = Vocabulary.from_sentences(sentences)
    tokens = {t for s in sentences for t in tokenize(s)}
    assert set(vocab.tokens[4:]) == tokens
    for s in sentences:
        assert UNK_ID not in vocab.encode(s)


def test_from_sentences_merges_case_and_splits_punctuation() -> None:
    vocab = Vocabulary.from_sentences(["How are you?", "HOW  are\tyou ?", "how,you"], min_count=3)
    # how x3, you x3, are x2, ? x2, , x1
    assert vocab.tokens[4:] == ["how", "you"]
    assert vocab.encode("How are you?") == [4, UNK_ID, 5, UNK_ID]


def test_pad_leaves_the_callers_lists_as_they_were() -> None:
    """What TOK-PAD and TOK-START-END pin (PARAMETERS.md: ids_list left as it was): truncating
    and padding work on copies, so the caller can pad the same sequences again."""
    vocab = Vocabulary.from_sentences(CORPUS)
    seqs = [[5, 6, 7], [8]]
    inner = list(seqs)
    for length in (0, 2, 5, None):
        ids, mask = vocab.pad(seqs, length)
        assert seqs == [[5, 6, 7], [8]] and all(a is b for a, b in zip(seqs, inner, strict=True))
        assert ids.dtype == np.int64 and mask.dtype == bool
