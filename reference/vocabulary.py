"""A word-level vocabulary: the step that turns text into the integer ids a network embeds.

The documents tokenise text into words (3Blue1Brown's chapters on transformers use sub-word
tokens; the lecture notes' translation examples use whole words), give every token an id, map a
word the model never saw to a reserved unknown token, mark the end of a sentence with an end
token (Sutskever et al. 2014, summarised in "Transformer lecture notes (handwritten)", section
"Improvement 1 - Embeddings" and "The Sutskever Architecture"), and bring every sentence of a batch
to one fixed length by padding short ones and truncating long ones ("Deep learning recap to the
Transformer (video summaries)", input embeddings). This module is that pipeline, in plain Python.

Tokenisation rule (documented because every id depends on it):

1. Unicode NFC normalisation, then ``str.lower()`` (a no-op for scripts without case, such as
   Devanagari).
2. Split on whitespace.
3. Inside each chunk, every punctuation character (Unicode category ``P*``: ``. , ? ! ' " ( ) -``,
   the Devanagari danda ``।`` ...) becomes a token of its own; each maximal run of other characters
   is one word. Combining vowel signs are not punctuation, so Devanagari words stay whole.

So ``"How are you?"`` becomes ``["how", "are", "you", "?"]``. The special tokens are written
``<pad>``, ``<unk>``, ``<start>``, ``<end>``; ``<`` and ``>`` are symbols, not punctuation, so a
special written in a text encodes to its own id and ``encode(" ".join(decode(ids))) == ids``.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from .config import END_ID, PAD_ID, START_ID, UNK_ID

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
# The specials sit at the ids pinned in nnspec.reference.config, in this order.
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, START, END)
assert [PAD_ID, UNK_ID, START_ID, END_ID] == list(range(len(SPECIAL_TOKENS)))


def tokenize(sentence: str) -> list[str]:
    """Split ``sentence`` into lowercase words and single punctuation marks (rule in module doc)."""
    tokens: list[str] = []
    for chunk in unicodedata.normalize("NFC", sentence).lower().split():
        word: list[str] = []
        for ch in chunk:
            if unicodedata.category(ch).startswith("P"):
                if word:
                    tokens.append("".join(word))
                    word = []
                tokens.append(ch)
            else:
                word.append(ch)
        if word:
            tokens.append("".join(word))
    return tokens


class Vocabulary:
    """A fixed list of tokens; a token's id is its index in :attr:`tokens`.

    Ids 0..3 are always ``<pad>``, ``<unk>``, ``<start>``, ``<end>`` (``PAD_ID`` ... ``END_ID``).
    The remaining tokens follow in order of decreasing corpus frequency, ties broken
    alphabetically, so the same corpus always gives the same ids.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        words = [t for t in tokens if t not in SPECIAL_TOKENS]
        self._tokens: tuple[str, ...] = SPECIAL_TOKENS + tuple(words)
        self._ids: dict[str, int] = {}
        for i, token in enumerate(self._tokens):
            if token in self._ids:
                raise ValueError(f"token {token!r} appears twice in the vocabulary")
            self._ids[token] = i

    @classmethod
    def from_sentences(cls, sentences: Iterable[str], *, min_count: int = 1) -> Vocabulary:
        """Build the vocabulary of a corpus, keeping words seen at least ``min_count`` times.

        Rare words are left out on purpose: at encoding time they become ``<unk>``, which is how
        Sutskever et al. (2014) handle words outside their fixed vocabulary.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counts = Counter(t for s in sentences for t in tokenize(s))
        kept = [w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS]
        kept.sort(key=lambda w: (-counts[w], w))
        return cls(kept)

    # ----------------------------------------------------------------------------- lookup
    @property
    def tokens(self) -> list[str]:
        """Every token, indexed by id."""
        return list(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def id_of(self, token: str) -> int:
        """The id of ``token``, or ``UNK_ID`` when it is not in the vocabulary."""
        return self._ids.get(token, UNK_ID)

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    @property
    def start_id(self) -> int:
        return START_ID

    @property
    def end_id(self) -> int:
        return END_ID

    # -------------------------------------------------------------------- text <-> ids
    def encode(
        self, sentence: str, *, add_start: bool = False, add_end: bool = False
    ) -> list[int]:
        """Token ids of ``sentence``; out-of-vocabulary words map to ``<unk>``.

        ``add_end`` appends ``<end>`` (the end-of-sentence marker a seq2seq encoder reads last and
        a decoder learns to emit); ``add_start`` prepends ``<start>`` (the decoder's first input).
        """
        ids = [self.id_of(t) for t in tokenize(sentence)]
        if add_start:
            ids.insert(0, START_ID)
        if add_end:
            ids.append(END_ID)
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The token of every id, specials included (``<unk>`` cannot recover the original word)."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._tokens):
                raise ValueError(f"id {i} is outside the vocabulary of {len(self)} tokens")
            out.append(self._tokens[i])
        return out

    def to_text(self, ids: Iterable[int]) -> str:
        """Readable text: stops at the first ``<end>``, drops ``<pad>`` and ``<start>``."""
        words: list[str] = []
        for token in self.decode(ids):
            if token == END:
                break
            if token not in (PAD, START):
                words.append(token)
        return " ".join(words)

    # ---------------------------------------------------------------------------- batching
    def pad(
        self, ids_list: Sequence[Sequence[int]], length: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bring every sequence to ``length`` tokens: truncate long ones, fill short ones with pads.

        Returns ``(ids, mask)``: ``ids`` is ``int64`` of shape ``(B, length)`` and ``mask`` is
        ``bool`` of the same shape, ``True`` exactly at real (non-padding) positions, the polarity
        of PARAMETERS.md ("True means may attend"). Truncation keeps the first ``length`` tokens.
        ``length=None`` pads to the longest sequence.
        """
        if length is None:
            length = max((len(s) for s in ids_list), default=0)
        if length < 0:
            raise ValueError(f"length must be non-negative, got {length}")
        ids = np.full((len(ids_list), length), PAD_ID, dtype=np.int64)  # (B, length)
        mask = np.zeros((len(ids_list), length), dtype=bool)  # (B, length)
        for b, seq in enumerate(ids_list):
            kept = list(seq)[:length]
            ids[b, : len(kept)] = kept
            mask[b, : len(kept)] = True
        return ids, mask
