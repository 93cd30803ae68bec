"""Small real data sets shipped with the project: handwritten digits and a tiny translation corpus.

Digits. 3Blue1Brown's network reads a 28x28 = 784-pixel grey-scale image of a handwritten digit
(0.0 black, 1.0 white) and answers with one of ten outputs ("Neural Networks (notes on
3Blue1Brown)", section "1. Terminology, Structural Aspects and Basic Working"; "Deep Learning
(notes on 3Blue1Brown, chapters 1-6)"). MNIST itself needs a download, so we use scikit-learn's
bundled digits instead: 1,797 real handwritten digits, 8x8 pixels with intensities 0..16, stored
inside the scikit-learn package. Each image is scaled to [0, 1] (divide by 16) and upsampled to
28x28 by **bilinear interpolation with half-pixel centres** (the ``align_corners=False``
convention of ``torch.nn.functional.interpolate``), written below in NumPy. Bilinear weights are
non-negative and sum to one, so every output pixel is a convex combination of input pixels: the
range stays [0, 1] and a flat image stays flat.

Translation. The lecture notes train their encoder-decoder examples on a handful of English ->
Hindi sentence pairs; :data:`TRANSLATION_PAIRS` collects them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .vocabulary import Vocabulary

DIGIT_SIDE = 28
N_DIGIT_CLASSES = 10
_SKLEARN_DIGIT_MAX = 16.0  # sklearn's digits are counts of set pixels in 4x4 blocks: 0..16


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix that resamples a 1-d signal of ``n_in`` samples bilinearly.

    Half-pixel centres: output sample ``i`` sits at input coordinate
    ``x = (i + 1/2) * n_in / n_out - 1/2``, clamped to ``[0, n_in - 1]``; it takes
    ``(1 - w)`` of input ``floor(x)`` and ``w = x - floor(x)`` of the next one.
    Bilinear interpolation of an image is this 1-d resampling along rows and then along columns.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be positive, got n_in={n_in}, n_out={n_out}")
    # x_i = (i + 1/2) n_in / n_out - 1/2, clamped into the image
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0.0, n_in - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), n_in - 1)
    x1 = np.minimum(x0 + 1, n_in - 1)
    w = x - x0
    A = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(A, (rows, x0), 1.0 - w)
    np.add.at(A, (rows, x1), w)
    return A  # (n_out, n_in), every row sums to 1


def upsample_bilinear(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(..., h, w)`` images to ``(..., height, width)`` by bilinear interpolation.

    ``out = A_h @ image @ A_w^T`` with the matrices of :func:`bilinear_matrix`.
    """
    images = np.asarray(images, dtype=np.float64)
    h, w = images.shape[-2:]
    A_h = bilinear_matrix(h, height)  # (height, h)
    A_w = bilinear_matrix(w, width)  # (width, w)
    return np.einsum("Hh,...hw,Ww->...HW", A_h, images, A_w)  # (..., height, width)


def stratified_split(
    labels: np.ndarray, *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices with every class split in the same proportion.

    Class ``c`` with ``n_c`` examples sends ``round(test_fraction * n_c)`` of them, chosen by
    ``numpy.random.default_rng(seed)``, to the test set; the same seed gives the same split.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[: int(round(test_fraction * len(members)))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)  # sorted
    return train_idx, test_idx


@lru_cache(maxsize=1)
def _digits_784() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as read-only ``(1797, 784)`` pixels and ``(1797,)`` labels (cached)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_digits_784 needs scikit-learn: pip install 'nnspec[test]'"
        ) from exc
    digits = load_digits()
    images = digits.images / _SKLEARN_DIGIT_MAX  # (1797, 8, 8) in [0, 1]
    big = upsample_bilinear(images, DIGIT_SIDE, DIGIT_SIDE)  # (1797, 28, 28)
    # convex combinations of values in [0, 1]; the clip only removes rounding below 0 or above 1
    X = np.clip(big.reshape(len(big), DIGIT_SIDE * DIGIT_SIDE), 0.0, 1.0)  # (1797, 784)
    y = digits.target.astype(np.int64)  # (1797,)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


class Digits(NamedTuple):
    """A train/test split of the 784-pixel digits, shaped for ``MLP.train`` and ``MLP.predict``."""

    X_train: np.ndarray  # (N_train, 784) float64 in [0, 1]
    Y_train: np.ndarray  # (N_train, 10) one-hot float64
    X_test: np.ndarray  # (N_test, 784) float64 in [0, 1]
    y_test: np.ndarray  # (N_test,) int64 labels 0..9


def load_digits_784(*, test_fraction: float = 0.25, seed: int = 0) -> Digits:
    """scikit-learn's real handwritten digits as 784-pixel vectors in [0, 1] (see module doc).

    Needs scikit-learn (the ``test`` extra); nothing is downloaded.
    """
    X, y = _digits_784()
    train_idx, test_idx = stratified_split(y, test_fraction=test_fraction, seed=seed)
    # one-hot targets: Y[n, j] = 1 if y_n == j else 0, the "desired output" of the cost
    Y = np.eye(N_DIGIT_CLASSES)[y]  # (1797, 10)
    return Digits(X[train_idx], Y[train_idx], X[test_idx], y[test_idx])


# English -> Hindi sentence pairs shown in "Transformer lecture notes (handwritten)":
# - "Think about it", "come in": section "Training the Architecture using Backpropagation" (the
#   data set of the Sutskever et al. 2014 encoder-decoder; Hindi as written in the notes);
# - "turn off the lights": section "Recap" before "Bahdanau Attention" (Bahdanau et al. 2015);
# - "How are you?", "Congratulations", "Thank you": section "Transformer as an Autoregressive
#   Model", subsection "Training" (the decoder of Vaswani et al. 2017).
TRANSLATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("Think about it", "सोचो लो"),
    ("come in", "अंदर आ जाओ"),
    ("turn off the lights", "लाइट बंद करो"),
    ("How are you?", "आप कैसे हैं"),
    ("Congratulations", "बधाई हो"),
    ("Thank you", "धन्यवाद"),
)


class TranslationCorpus(NamedTuple):
    """Vocabularies and encoded sentences of :data:`TRANSLATION_PAIRS`."""

    src_vocab: Vocabulary
    tgt_vocab: Vocabulary
    src_ids: list[list[int]]  # each English sentence followed by <end>
    tgt_ids: list[list[int]]  # each Hindi sentence as <start> ... <end>


def translation_corpus(
    pairs: tuple[tuple[str, str], ...] = TRANSLATION_PAIRS,
) -> TranslationCorpus:
    """Encode the corpus the way a seq2seq model consumes it.

    The source ends with ``<end>`` (the encoder reads a whole sentence, Sutskever et al. 2014);
    the target is wrapped in ``<start>`` ... ``<end>``: the decoder's first input is ``<start>``
    and it must learn to emit ``<end>``, the notes' ``<end>`` after each translation.
    Ragged lists are returned; :meth:`Vocabulary.pad` makes the fixed-length batch.
    """
    src_vocab = Vocabulary.from_sentences(s for s, _ in pairs)
    tgt_vocab = Vocabulary.from_sentences(t for _, t in pairs)
    src_ids = [src_vocab.encode(s, add_end=True) for s, _ in pairs]
    tgt_ids = [tgt_vocab.encode(t, add_start=True, add_end=True) for _, t in pairs]
    return TranslationCorpus(src_vocab, tgt_vocab, src_ids, tgt_ids)
