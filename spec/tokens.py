"""Clauses on tokens: the vocabulary, out-of-vocabulary words, padding and truncation.

Sources: "Transformer lecture notes (handwritten)", section "The Sutskever Architecture" (a fixed
vocabulary per language; any word outside it is replaced by a special unknown token; summarising
Sutskever et al. 2014), and "Deep learning recap to the Transformer (video summaries)", section
"Input embeddings" (every token gets a unique id from a predefined vocabulary; sequences are padded
or truncated to one length).

The capability is ``Vocabulary`` (``nnspec.reference.vocabulary.Vocabulary``): built from a list of
words (``Vocabulary(words)``), with ``id_of``, ``encode``, ``decode``, ``pad`` and the special ids
``pad_id``, ``unk_id``. Words are drawn from lowercase letters only, so the tokeniser's rule
(split on whitespace, punctuation apart) leaves each drawn word whole.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import numpy as np

from .clause import LECTURE_NOTES, RECAP, SUTSKEVER_2014, Check, Source, clause

_WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=4)


def _vocabulary(ck: Check, impl: Any, *, min_size: int = 1) -> tuple[Any, list[str]]:
    words = ck.draw(st.lists(_WORD, min_size=min_size, max_size=12, unique=True),
                    "vocabulary words")
    return impl.Vocabulary(words), words


@clause(
    "TOK-UNK",
    "A word outside the vocabulary MUST be encoded as the unknown token <unk>, and every word "
    "inside it as its own id.",
    source=Source(LECTURE_NOTES, "The Sutskever Architecture (vocabulary limitation)",
                  paper=SUTSKEVER_2014),
    needs=("Vocabulary",),
    topic="tokens",
)
def unknown_words(impl: Any, ck: Check) -> None:
    vocab, words = _vocabulary(ck, impl)
    unseen = ck.draw(st.lists(_WORD.filter(lambda w: w not in words), min_size=1, max_size=4),
                     "unseen words")
    sentence_words = ck.draw(st.permutations(words[:4] + unseen), "sentence")
    ids = vocab.encode(" ".join(sentence_words))
    ck.equal(len(ids), len(sentence_words), what="len(encode(sentence))")
    expected = [vocab.unk_id if w in unseen else vocab.tokens.index(w) for w in sentence_words]
    ck.equal(list(map(int, ids)), expected, what=f"encode({' '.join(sentence_words)!r})")
    ck.that(all(vocab.decode([i])[0] == "<unk>" for i, w in zip(ids, sentence_words, strict=True)
                if w in unseen), what="decode(encode(unseen word))",
            observed=vocab.decode(ids), expected="<unk> for every unseen word")
    ck.that(vocab.unk_id not in [vocab.id_of(w) for w in words],
            what="id_of(word in vocabulary) != unk_id", observed=[vocab.id_of(w) for w in words],
            expected=f"no {vocab.unk_id}")


@clause(
    "TOK-PAD",
    "Padding and truncation MUST bring every sequence of a batch to one length, keeping each "
    "sequence's first tokens, and the padding mask MUST mark exactly the real tokens.",
    source=Source(RECAP, "Input embeddings", paper=None),
    needs=("Vocabulary",),
    topic="tokens",
)
def padding_and_truncation(impl: Any, ck: Check) -> None:
    vocab, words = _vocabulary(ck, impl)
    real_ids = st.integers(4, len(vocab) - 1) if len(vocab) > 4 else st.just(vocab.unk_id)
    seqs = ck.draw(st.lists(st.lists(real_ids, max_size=6), min_size=1, max_size=4), "sequences")
    length = ck.draw(st.integers(0, 7), "length")
    ids, mask = vocab.pad(seqs, length)
    ids, mask = np.asarray(ids), np.asarray(mask)
    ck.equal(ids.shape, (len(seqs), length), what=f"pad(sequences, {length})[0].shape")
    ck.equal(mask.shape, ids.shape, what="mask.shape")
    for b, seq in enumerate(seqs):
        kept = seq[:length]
        row_mask = [True] * len(kept) + [False] * (length - len(kept))
        ck.equal(mask[b].tolist(), row_mask, what=f"mask[{b}] for a sequence of {len(seq)}")
        ck.equal(ids[b, : len(kept)].tolist(), kept, what=f"ids[{b}] real tokens")
        ck.equal(ids[b, len(kept):].tolist(), [vocab.pad_id] * (length - len(kept)),
                 what=f"ids[{b}] padding")
    # the mask marks exactly the positions that are not padding (no real token uses pad_id)
    ck.equal(mask, ids != vocab.pad_id, what="mask == (ids != pad_id)")
    # without a length, the batch is padded to its longest sequence and nothing is truncated
    longest = max(len(s) for s in seqs)
    ids_all, mask_all = (np.asarray(a) for a in vocab.pad(seqs))
    ck.equal(ids_all.shape, (len(seqs), longest), what="pad(sequences)[0].shape")
    ck.equal(mask_all.sum(axis=1).tolist(), [len(s) for s in seqs], what="pad(sequences)[1].sum(1)")


@clause(
    "TOK-ROUNDTRIP",
    "Mapping ids to tokens and back MUST give the same ids for every id of the vocabulary, "
    "special tokens included.",
    source=Source(RECAP, "Input embeddings", paper=None),
    needs=("Vocabulary",),
    topic="tokens",
)
def ids_roundtrip(impl: Any, ck: Check) -> None:
    vocab, _ = _vocabulary(ck, impl)
    ids = ck.draw(st.lists(st.integers(0, len(vocab) - 1), min_size=1, max_size=12), "ids")
    tokens = vocab.decode(ids)
    ck.equal([vocab.id_of(t) for t in tokens], ids, what="id_of(decode(ids))")
    ck.equal(list(map(int, vocab.encode(" ".join(tokens)))), ids,
             what="encode(' '.join(decode(ids)))")
    # every id names a different token (otherwise two ids could not both round-trip)
    ck.equal(len(set(vocab.tokens)), len(vocab), what="number of distinct tokens")


@clause(
    "TOK-START-END",
    "Encoding a sentence with add_start MUST put <start> before the ids of its words and with "
    "add_end MUST put <end> after them, and truncating such a sequence MUST keep its first "
    "tokens: <start> stays, an <end> beyond the length is cut.",
    source=Source(LECTURE_NOTES, "The Sutskever Architecture (<start>, <end>)",
                  paper=SUTSKEVER_2014),
    needs=("Vocabulary",),
    topic="tokens",
    note="Truncation keeps the first tokens and adds none (reference/vocabulary.py, pad): a "
         "truncated sentence has no <end>.",
)
def start_and_end_tokens(impl: Any, ck: Check) -> None:
    vocab, words = _vocabulary(ck, impl)
    unseen = ck.draw(st.lists(_WORD.filter(lambda w: w not in words), max_size=2), "unseen words")
    sentence = " ".join(ck.draw(st.lists(st.sampled_from(words + unseen), max_size=6), "sentence"))
    start, end = vocab.id_of("<start>"), vocab.id_of("<end>")
    # the specials are tokens of every vocabulary: two ids of their own, neither <unk> nor <pad>
    ck.that(len({start, end, vocab.unk_id, vocab.pad_id}) == 4,
            what="id_of('<start>'), id_of('<end>'), unk_id, pad_id",
            observed=[start, end, vocab.unk_id, vocab.pad_id], expected="four different ids")
    plain = list(map(int, vocab.encode(sentence)))
    for add_start in (False, True):
        for add_end in (False, True):
            ids = list(map(int, vocab.encode(sentence, add_start=add_start, add_end=add_end)))
            # [<start>] + ids of the words + [<end>], each marker only where asked for
            expected = [start] * add_start + plain + [end] * add_end
            ck.equal(ids, expected,
                     what=f"encode({sentence!r}, add_start={add_start}, add_end={add_end})")
            tokens = vocab.decode(ids)
            if add_start:
                ck.equal(tokens[0], "<start>", what="decode(encode(..., add_start=True))[0]")
            if add_end:
                ck.equal(tokens[-1], "<end>", what="decode(encode(..., add_end=True))[-1]")

    # Truncation keeps the first `length` tokens of <start> w_1 ... w_n <end>: <start> stays
    # (length >= 1), and the <end> survives only when nothing is cut.
    wrapped = [start, *plain, end]
    length = ck.draw(st.integers(0, len(wrapped) + 1), "length")
    ids, mask = (np.asarray(a) for a in vocab.pad([wrapped], length))
    kept = ids[0][mask[0]].tolist()
    ck.equal(kept, wrapped[:length], what=f"pad([<start> ... <end>], {length}) real tokens")
    ck.equal(end in kept, length >= len(wrapped),
             what=f"<end> kept after truncation to {length} of {len(wrapped)} tokens")


# The lecture notes' sentence pairs (nnspec.reference.data.TRANSLATION_PAIRS) and their tokens,
# written out by hand under the tokeniser's rule (reference/vocabulary.py): lowercase, split on
# whitespace, each punctuation mark a token of its own, Devanagari vowel signs part of the word.
# The notes list the tokens of the first themselves, as the encoder's inputs ("Bahdanau
# Attention"); the second is their Transformer training example ("Training").
HAND_TOKENISED: dict[int, tuple[list[str], list[str]]] = {
    2: (["turn", "off", "the", "lights"], ["लाइट", "बंद", "करो"]),
    3: (["how", "are", "you", "?"], ["आप", "कैसे", "हैं"]),
    5: (["thank", "you"], ["धन्यवाद"]),
}

# Drawn sentences: words in mixed case (one with an accent written decomposed, e + U+0301, which
# NFC composes into one character), punctuation glued to them or standing apart, and runs of
# whitespace. Words are separated by whitespace; a punctuation mark may touch anything.
_MIXED_WORD = st.text(alphabet="abcXYZé", min_size=1, max_size=4)
_PUNCTUATION = st.sampled_from(list(".,?!'\"()-।"))
_SPACE = st.sampled_from([" ", "  ", "\t", "\n", " \n "])


@clause(
    "TOK-SPLIT",
    "Tokenising MUST lowercase the text, split it on whitespace, and make every punctuation mark "
    "a token of its own, keeping words with their vowel signs whole, as in the lecture notes' "
    "translation pairs.",
    source=Source(LECTURE_NOTES, "Bahdanau Attention; Transformer as an Autoregressive Model, "
                  "Training", paper=SUTSKEVER_2014),
    needs=("tokenize | Vocabulary",),
    topic="tokens",
    note="The rule is the one reference/vocabulary.py documents (after Unicode NFC); with "
         "Vocabulary alone it is checked through encode.",
)
def tokenisation(impl: Any, ck: Check) -> None:
    from nnspec.reference.data import TRANSLATION_PAIRS

    cases = [(TRANSLATION_PAIRS[i][side], HAND_TOKENISED[i][side])
             for i in sorted(HAND_TOKENISED) for side in (0, 1)]
    # a drawn sentence: words apart by whitespace, a punctuation mark glued or apart
    pieces = ck.draw(st.lists(st.one_of(_MIXED_WORD, _PUNCTUATION), max_size=8), "tokens")
    text = ck.draw(_SPACE, "leading space")
    for i, piece in enumerate(pieces):
        if i:
            two_words = piece.isalpha() and pieces[i - 1].isalpha()
            text += ck.draw(_SPACE if two_words else st.sampled_from(["", " "]), f"gap {i}")
        text += piece.replace("é", "e\u0301")
    text += ck.draw(_SPACE, "trailing space")
    cases.append((text, [p.lower() for p in pieces]))

    for sentence, expected in cases:
        if ck.offers("tokenize"):
            ck.equal(list(impl.tokenize(sentence)), expected, what=f"tokenize({sentence!r})")
        if ck.offers("Vocabulary"):
            vocab = impl.Vocabulary(list(dict.fromkeys(expected)))
            ck.equal(list(map(int, vocab.encode(sentence))),
                     [vocab.tokens.index(token) for token in expected],
                     what=f"encode({sentence!r}) vs the ids of {expected}")
