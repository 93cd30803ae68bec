"""Real data: the 784-pixel digits (shapes, range, balance, determinism, faithful upsampling) and
the lecture notes' English -> Hindi corpus."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnspec.reference.config import END_ID, START_ID, UNK_ID
from nnspec.reference.data import (
    TRANSLATION_PAIRS,
    bilinear_matrix,
    load_digits_784,
    stratified_split,
    translation_corpus,
    upsample_bilinear,
)
from nnspec.reference.vocabulary import tokenize

sklearn_datasets = pytest.importorskip("sklearn.datasets")

N_DIGITS = 1797  # scikit-learn's bundled digits

PIXELS = hnp.arrays(
    np.float64, (8, 8), elements=st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)
)


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    digits = sklearn_datasets.load_digits()
    return digits.images / 16.0, digits.target


# ---------------------------------------------------------------------------------- digits


def test_shapes_dtypes_and_range() -> None:
    X_train, Y_train, X_test, y_test = load_digits_784()
    assert X_train.shape[1] == X_test.shape[1] == 784
    assert Y_train.shape == (len(X_train), 10)
    assert len(X_train) + len(X_test) == N_DIGITS
    assert len(X_test) == pytest.approx(0.25 * N_DIGITS, abs=10)
    assert X_train.dtype == X_test.dtype == Y_train.dtype == np.float64
    assert np.issubdtype(y_test.dtype, np.integer)
    for X in (X_train, X_test):
        assert X.min() >= 0.0 and X.max() <= 1.0
        assert X.max() == 1.0  # full-intensity strokes survive the scaling
    # one-hot rows: exactly one 1 per example
    assert set(np.unique(Y_train)) == {0.0, 1.0}
    np.testing.assert_array_equal(Y_train.sum(axis=1), 1.0)


def test_labels_cover_0_to_9_and_are_balanced() -> None:
    _, Y_train, _, y_test = load_digits_784()
    y_train = Y_train.argmax(axis=1)
    for y in (y_train, y_test):
        counts = np.bincount(y, minlength=10)
        assert len(counts) == 10
        assert counts.min() >= 0.85 * len(y) / 10 and counts.max() <= 1.15 * len(y) / 10


@given(data=st.data())
def test_split_is_stratified_and_a_partition(data: st.DataObject) -> None:
    labels = data.draw(hnp.arrays(np.int64, st.integers(1, 60), elements=st.integers(0, 4)),
                       label="labels")
    fraction = data.draw(st.floats(0.05, 0.95), label="test_fraction")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    train, test = stratified_split(labels, test_fraction=fraction, seed=seed)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(labels)))
    for c in np.unique(labels):
        n_c = int((labels == c).sum())
        assert int((labels[test] == c).sum()) == round(fraction * n_c)
    again = stratified_split(labels, test_fraction=fraction, seed=seed)
    np.testing.assert_array_equal(again[1], test)


def test_loading_is_deterministic_and_the_seed_matters() -> None:
    first, second = load_digits_784(seed=3), load_digits_784(seed=3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = load_digits_784(seed=4)
    assert not np.array_equal(first.y_test, other.y_test)


def test_pixels_are_the_upsampled_sklearn_digits() -> None:
    images, target = _sklearn_digits()
    train, test = stratified_split(target, test_fraction=0.25, seed=0)
    X_train, Y_train, X_test, y_test = load_digits_784()
    np.testing.assert_array_equal(y_test, target[test])
    np.testing.assert_array_equal(Y_train.argmax(axis=1), target[train])
    expected = upsample_bilinear(images[test], 28, 28).reshape(-1, 784)
    np.testing.assert_allclose(X_test, expected, atol=1e-12)


def test_upsampling_preserves_the_mean_intensity_pattern() -> None:
    images, _ = _sklearn_digits()
    big = upsample_bilinear(images, 28, 28)  # (1797, 28, 28)
    # each image's mean brightness is unchanged ...
    np.testing.assert_allclose(big.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=1e-12)
    # ... and averaging the 28x28 image back over the 8x8 grid (each source pixel covers 3.5 x 3.5
    # target pixels) gives back the original pattern closely
    area = np.zeros((8, 28))
    for i in range(8):
        lo, hi = 3.5 * i, 3.5 * (i + 1)
        for j in range(28):
            area[i, j] = max(0.0, min(hi, j + 1) - max(lo, j)) / 3.5
    small = np.einsum("ih,nhw,jw->nij", area, big, area).reshape(N_DIGITS, 64)  # (1797, 64)
    original = images.reshape(N_DIGITS, 64)  # (1797, 64)
    per_image = [np.corrcoef(a, b)[0, 1] for a, b in zip(small, original, strict=True)]
    assert min(per_image) > 0.9 and np.mean(per_image) > 0.97
    # the block averages identify their own source image among all 1,797 digits
    # |a - b|^2 = |a|^2 - 2 a.b + |b|^2 for every pair
    distances = (
        (small**2).sum(1)[:, None] - 2 * small @ original.T + (original**2).sum(1)[None, :]
    )  # (1797, 1797)
    assert (distances.argmin(axis=1) == np.arange(N_DIGITS)).mean() > 0.99


@given(image=PIXELS)
def test_bilinear_is_a_mean_preserving_convex_combination(image: np.ndarray) -> None:
    big = upsample_bilinear(image, 28, 28)
    assert big.min() >= image.min() - 1e-12 and big.max() <= image.max() + 1e-12
    assert big.mean() == pytest.approx(image.mean(), abs=1e-12)
    A = bilinear_matrix(8, 28)
    assert (A >= 0).all()
    np.testing.assert_allclose(A.sum(axis=1), 1.0)


@given(image=PIXELS, size=st.integers(1, 40))
def test_bilinear_matches_torch_interpolate(image: np.ndarray, size: int) -> None:
    # torch's bilinear resize with align_corners=False uses the same half-pixel convention
    ours = upsample_bilinear(image, size, 28)
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy(image)[None, None], size=(size, 28), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_constant_image_stays_constant() -> None:
    np.testing.assert_allclose(upsample_bilinear(np.full((8, 8), 0.375), 28, 28), 0.375)


# ----------------------------------------------------------------------------- translation


def test_translation_pairs_are_the_notes_examples() -> None:
    pairs = dict(TRANSLATION_PAIRS)
    assert len(TRANSLATION_PAIRS) == 6
    assert pairs["turn off the lights"] == "लाइट बंद करो"
    assert pairs["How are you?"] == "आप कैसे हैं"
    assert set(pairs) == {
        "Think about it", "come in", "turn off the lights", "How are you?", "Congratulations",
        "Thank you",
    }


def test_translation_corpus_encodes_every_word() -> None:
    src_vocab, tgt_vocab, src_ids, tgt_ids = translation_corpus()
    assert len(src_ids) == len(tgt_ids) == len(TRANSLATION_PAIRS)
    for (src, tgt), s, t in zip(TRANSLATION_PAIRS, src_ids, tgt_ids, strict=True):
        assert s[-1] == END_ID and t[0] == START_ID and t[-1] == END_ID
        assert UNK_ID not in s and UNK_ID not in t  # the corpus builds its own vocabularies
        assert src_vocab.decode(s[:-1]) == tokenize(src)
        assert tgt_vocab.to_text(t) == " ".join(tokenize(tgt))
    ids, mask = tgt_vocab.pad(tgt_ids, 4)
    assert ids.shape == (6, 4) and mask.sum() == sum(min(len(t), 4) for t in tgt_ids)
