"""Clauses on layer and batch normalisation.

Sources: "Transformer lecture notes (handwritten)", sections "What is Normalization" (transform to
mean 0 and variance 1, then a learnable scale gamma and shift beta), "Why don't we use Batch Norm
in Transformers?" and "Layer Norm in Transformers" (batch norm computes statistics per feature
across the batch, which padded self-attention batches distort; layer norm computes them per token
across its features), after Ba, Kiros and Hinton (2016) and Ioffe and Szegedy (2015).

Convention (PARAMETERS.md): biased variance (divide by d) with eps inside the square root,
``gamma * (x - mean) / sqrt(var + eps) + beta``; layer norm over the last axis, batch norm per
feature (last axis) over every other axis. With eps inside the root, the normalised output's
variance is exactly ``var / (var + eps)``: that is the "up to eps" of the clauses, as a closed form.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp

from . import precision
from .clause import BA_2016, IOFFE_2015, LECTURE_NOTES, Check, Source, clause

NORM_SECTION = Source(LECTURE_NOTES, "What is Normalization", paper=BA_2016)
LN_SECTION = Source(LECTURE_NOTES, "Layer Norm in Transformers", paper=BA_2016)
BN_SECTION = Source(LECTURE_NOTES, "Why don't we use Batch Norm in Transformers?", paper=IOFFE_2015)
EPS = 1e-5
GIVEN_EPS = 2.0**-13  # an eps given explicitly, apart from any default: exact in every format
# LN-INVARIANT's far shift per format; none where a shifted token would not be exact (float16's 11
# bits and bfloat16's 8 hold no more than the near shifts).
FAR_OFFSET = {"float64": 2.0**30, "float32": 2.0**12}


def _grid(shape: tuple[int, ...], bound: int = 160) -> st.SearchStrategy[np.ndarray]:
    """Values k/16 with |k| <= bound (|x| <= 10): exact under dyadic scalings and shifts."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-bound, bound)).map(
        lambda k: k.astype(np.float64) / 16.0
    )


def _tokens(ck: Check, *, min_batch: int = 1, min_d: int = 2) -> np.ndarray:
    """A batch of token sequences (B, T, d)."""
    shape = (ck.draw(st.integers(min_batch, 3), "B"), ck.draw(st.integers(1, 4), "T"),
             ck.draw(st.integers(min_d, 12), "d"))
    return ck.input(ck.draw(_grid(shape), "x"))


# d_model of real models (GPT-2's 768, Vaswani's 512, 4096): few enough that quick reaches each.
WIDE_D = (4096, 512, 768, 1024)


def _wide_tokens(ck: Check, impl: Any) -> np.ndarray:
    """Two tokens (2, d) with d from WIDE_D, each a spread and an offset of up to 2^10: too many
    features for Hypothesis to draw one by one, so they come from a drawn seed. Features stay
    within a quarter of float16's range (a correct kernel forms no sum in the format itself)."""
    d = ck.draw(st.sampled_from(WIDE_D), "d (wide tokens)")
    scale = 2.0 ** ck.draw(st.integers(0, 10), "log2 of the wide tokens' scale")
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**32 - 1), "wide tokens' seed"))
    x = (rng.standard_normal((2, d)) + rng.standard_normal((2, 1))) * scale
    bound = precision.largest(impl) / 4
    return ck.input(np.clip(x, -bound, bound))


def _default_layer_norm_eps(ck: Check) -> float:
    """layer_norm's eps when a call leaves it out: the declared layer_norm_eps, else the pin."""
    declared = getattr(getattr(ck.oracle, "conventions", None), "layer_norm_eps", None)
    return EPS if declared is None else float(declared)


def _quiet_tokens(ck: Check, x: np.ndarray) -> np.ndarray:
    """``x`` scaled by 2^-8 (values k/4096, exact), its first token and first feature replaced by
    +-2^-8 (variance 2^-16 = 1.5e-5 and mean 0 where the signs balance): variances near eps, where
    the normalised output depends on which eps was used."""
    quiet = x * 2.0**-8
    quiet[0, 0, :] = 2.0**-8 * (1 - 2 * (np.arange(x.shape[-1]) % 2))  # +1, -1, +1, ...
    quiet[:, 0, 0] = 2.0**-8 * (1 - 2 * (np.arange(x.shape[0]) % 2))  # across the batch as well
    return ck.input(quiet)


def _normalised(x: np.ndarray, axes: int | tuple[int, ...], eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps), biased variance over ``axes``: the notes' (x - mu) / sigma."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _condition(x: np.ndarray, axes: int | tuple[int, ...], eps: float = EPS) -> np.ndarray:
    """Normalisation's condition number, max |x| / sqrt(var + eps) over ``axes``, one per token
    (``axes=-1``) or per feature (batch norm), the reduced axes dropped.

    A relative rounding of x (or of x / std, in a kernel that scales before it subtracts the
    mean, as PyTorch's batch norm does) moves the output by this many times as much: the closed
    forms below allow for it (``condition=``, see nnspec.verify.tolerances), token by token. It is
    1 to 2 for a token centred near 0, and large for a nearly constant token far from 0.
    """
    var = x.var(axis=axes, keepdims=True)
    ratio = np.max(np.abs(x) / np.sqrt(var + eps), axis=axes, keepdims=True)
    return np.maximum(1.0, np.squeeze(ratio, axis=axes))


@clause(
    "LN-STATS",
    "With gamma = 1 and beta = 0, layer norm MUST give every token mean 0 and biased variance "
    "var / (var + eps), i.e. 1 up to eps, over its features, with eps = 1e-5 (or the declared "
    "layer_norm_eps) when the call leaves it out.",
    source=NORM_SECTION,
    needs=("layer_norm",),
    topic="normalisation",
)
def layer_norm_statistics(impl: Any, ck: Check) -> None:
    x = _tokens(ck)
    d = x.shape[-1]
    y = impl.layer_norm(x, np.ones(d), np.zeros(d), eps=EPS)
    var_in = x.var(axis=-1)  # biased, (B, T)
    condition = _condition(x, -1)
    ck.close(y.mean(axis=-1), np.zeros(x.shape[:-1]), output="normalised",
             what="layer_norm(x).mean(-1)", condition=condition)
    # Var((x - m) / sqrt(v + eps)) = v / (v + eps)
    ck.close(y.var(axis=-1), var_in / (var_in + EPS), output="normalised",
             what="layer_norm(x).var(-1)", condition=condition)
    # And two tokens as wide as a real model's, with features up to 2^12: a float16 sum of squares
    # overflows past 256 (T5's layer norm before transformers #10956), and a float16 or bfloat16
    # running sum stops growing long before 4096 features (onnxruntime #29034).
    wide = _wide_tokens(ck, impl)
    d = wide.shape[-1]
    y = np.asarray(impl.layer_norm(wide, np.ones(d), np.zeros(d), eps=EPS))
    ck.equal(y.shape, wide.shape, what=f"layer_norm(x).shape, d = {d}")
    var_in, condition = wide.var(axis=-1), _condition(wide, -1)
    ck.close(y.mean(axis=-1), np.zeros(2), output="normalised",
             what=f"layer_norm(x).mean(-1), d = {d}", condition=condition)
    ck.close(y.var(axis=-1), var_in / (var_in + EPS), output="normalised",
             what=f"layer_norm(x).var(-1), d = {d}", condition=condition)
    # And eps left out: the pinned default, or the declared one. Quiet tokens, whose variance is
    # near eps, show it (a +-2^-8 token: var / (var + eps) = 0.60 at 1e-5, 0.94 at 1e-6).
    eps = _default_layer_norm_eps(ck)
    quiet = _quiet_tokens(ck, x)
    d = quiet.shape[-1]
    ck.close(impl.layer_norm(quiet, np.ones(d), np.zeros(d)), _normalised(quiet, -1, eps), output="normalised",
             what=f"layer_norm(x / 256, ones, zeros), x[0, 0] and x[:, 0, 0] = +-1/256, eps left out "
             f"(the default {eps:g})",
             condition=_condition(quiet, -1, eps)[..., None])
    # And an eps given, on the same quiet tokens: 2^-13, neither the default nor a declared one, so
    # code that drops the argument for its own eps is seen in every format (on ordinary tokens 1e-5
    # against a declared 1e-6 is below float16's resolution; the eleventh hunt's float16 miss).
    ck.close(impl.layer_norm(quiet, np.ones(d), np.zeros(d), eps=GIVEN_EPS), _normalised(quiet, -1, GIVEN_EPS),
             output="normalised", what=f"layer_norm(x / 256, ones, zeros, eps={GIVEN_EPS:g}) (eps given)",
             condition=_condition(quiet, -1, GIVEN_EPS)[..., None])


@clause(
    "LN-AFFINE",
    "Layer norm MUST scale the normalised token by gamma and then shift it by beta, feature by "
    "feature: gamma * (x - mean) / sqrt(var + eps) + beta.",
    source=NORM_SECTION,
    needs=("layer_norm",),
    topic="normalisation",
)
def layer_norm_affine(impl: Any, ck: Check) -> None:
    x = _tokens(ck)
    d = x.shape[-1]
    gamma = ck.input(ck.draw(_grid((d,), bound=48), "gamma"))
    beta = ck.input(ck.draw(_grid((d,), bound=48), "beta"))
    condition = _condition(x, -1)[..., None] * max(1.0, float(np.max(np.abs(gamma))))  # (B, T, 1)
    # y = gamma * x_hat + beta
    ck.close(impl.layer_norm(x, gamma, beta, eps=EPS), gamma * _normalised(x, -1, EPS) + beta,
             output="normalised", what="layer_norm(x, gamma, beta)", condition=condition)
    ck.close(impl.layer_norm(x, gamma, beta, eps=EPS),
             gamma * impl.layer_norm(x, np.ones(d), np.zeros(d), eps=EPS) + beta,
             output="normalised", what="layer_norm(x, gamma, beta) vs gamma * layer_norm(x) + beta",
             condition=condition)
    # (a constant token's mean, one ulp off in another summation order, becomes |x| / sqrt(eps)
    # times that in the output, even where torch's baseline happens to get the mean exact)
    ck.close_to_oracle("layer_norm", x, gamma, beta, eps=EPS, output="normalised", condition=condition)


@clause(
    "LN-INVARIANT",
    "Layer norm MUST be unchanged when each token is shifted by its own constant and all are "
    "scaled by a > 0, with eps scaled by a^2: LN(a x + c; eps a^2) = LN(x; eps).",
    source=LN_SECTION,
    needs=("layer_norm",),
    topic="normalisation",
)
def layer_norm_invariant(impl: Any, ck: Check) -> None:
    x = _tokens(ck)
    d = x.shape[-1]
    # a a power of two and c on a 1/4 grid keep a x + c and eps a^2 exact in float32 and float64
    # (|c| stays small so float32's cancellation in mean(a x + c) does not swamp a small spread)
    a = 2.0 ** ck.draw(st.integers(-1, 2), "log2 a")
    c = ck.draw(_grid(x.shape[:-1] + (1,), bound=16), "c") * 4  # one shift per token, |c| <= 4
    # And far away, where the format still holds a x + c and the sums of up to 12 of them exactly
    # (x on a 1/32 grid after a = 1/2, so 2^12 needs 21 bits of float32's 24, 2^30 39 of float64's
    # 53): there a one-pass variance E[x^2] - E[x]^2 cancels catastrophically, its error growing as
    # c^2 eps, while a two-pass or Welford kernel's grows as c eps, which the condition allows.
    far = FAR_OFFSET.get(precision.dtype_of(impl), 0.0)
    if far:
        c = c + far * ck.draw(st.sampled_from([0.0, 1.0, -1.0]), "far offset, in units of 2^k")
    moved = ck.input(a * x + c)
    ones, zeros = np.ones(d), np.zeros(d)
    # (a x + c - (a m + c)) / sqrt(a^2 v + a^2 eps) = (x - m) / sqrt(v + eps)
    ck.close(impl.layer_norm(moved, ones, zeros, eps=EPS * a * a),
             impl.layer_norm(x, ones, zeros, eps=EPS), output="normalised",
             what=f"layer_norm({a:g} x + c, eps * {a * a:g})",
             condition=np.maximum(_condition(moved, -1, EPS * a * a), _condition(x, -1))[..., None])


@clause(
    "LN-INDEPENDENT",
    "A token's layer-norm output MUST depend on that token alone, not on the other tokens of the "
    "sequence or the other items of the batch.",
    source=LN_SECTION,
    needs=("layer_norm",),
    topic="normalisation",
)
def layer_norm_independent(impl: Any, ck: Check) -> None:
    x = _tokens(ck, min_batch=2)
    d = x.shape[-1]
    gamma, beta = np.ones(d), np.zeros(d)
    b = ck.draw(st.integers(0, x.shape[0] - 1), "b")
    t = ck.draw(st.integers(0, x.shape[1] - 1), "t")
    others = ck.input(ck.draw(_grid(x.shape), "other tokens"))
    changed = others.copy()
    changed[b, t] = x[b, t]  # same token (b, t), every other token replaced
    y = impl.layer_norm(x, gamma, beta, eps=EPS)
    condition = _condition(x[b, t], -1)
    ck.close(impl.layer_norm(changed, gamma, beta, eps=EPS)[b, t], y[b, t], output="normalised",
             what=f"layer_norm(x)[{b}, {t}] after changing the other tokens", condition=condition)
    ck.close(impl.layer_norm(x[b, t][None, :], gamma, beta, eps=EPS)[0], y[b, t],
             output="normalised", what=f"layer_norm(x[{b}, {t}] alone)", condition=condition)
    # and it is the token's own statistics: (x - mean) / sqrt(var + eps)
    ck.close(y[b, t], _normalised(x[b, t], -1, EPS), output="normalised",
             what=f"layer_norm(x)[{b}, {t}]", condition=condition)


@clause(
    "BN-STATS",
    "With gamma = 1 and beta = 0, batch norm MUST give every feature mean 0 and biased variance "
    "var / (var + eps) across the batch (every axis but the features), with eps = 1e-5 when the "
    "call leaves it out.",
    source=BN_SECTION,
    needs=("batch_norm",),
    topic="normalisation",
    note="Also with every feature shifted far from 0 (2^12 at float32, 2^30 at float64; no 16-bit "
    "format holds such a shift and its spread), where a one-pass variance E[x^2] - E[x]^2 cancels.",
)
def batch_norm_statistics(impl: Any, ck: Check) -> None:
    x = _tokens(ck, min_batch=2, min_d=1)
    d = x.shape[-1]
    y = impl.batch_norm(x, np.ones(d), np.zeros(d), eps=EPS)
    axes = (0, 1)
    var_in = x.var(axis=axes)  # (d,)
    condition = _condition(x, axes)
    ck.close(y.mean(axis=axes), np.zeros(d), output="normalised", what="batch_norm(x).mean(B, T)",
             condition=condition)
    ck.close(y.var(axis=axes), var_in / (var_in + EPS), output="normalised",
             what="batch_norm(x).var(B, T)", condition=condition)
    ck.close(y, _normalised(x, axes, EPS), output="normalised", what="batch_norm(x)", condition=condition)
    # And eps left out: the pinned default. Quiet features, whose variance is near eps, show it.
    quiet = _quiet_tokens(ck, x)
    ck.close(impl.batch_norm(quiet, np.ones(d), np.zeros(d)), _normalised(quiet, axes, EPS), output="normalised",
             what=f"batch_norm(x / 256, ones, zeros), x[0, 0] and x[:, 0, 0] = +-1/256, eps left out "
             f"(the default {EPS:g})",
             condition=_condition(quiet, axes)[None, None, :])
    # And far from 0, as in LN-INVARIANT: every feature shifted by FAR_OFFSET (exact, and its sums
    # too), where a one-pass variance E[x^2] - E[x]^2 cancels catastrophically (its error grows as
    # c^2 eps, a two-pass or Welford kernel's as c eps, which the condition allows). The drawn
    # values are on a 1/16 grid of |x| <= 10, whose squares sum exactly: found in the ninth hunt,
    # a float32 one-pass batch norm passed every draw.
    far = FAR_OFFSET.get(precision.dtype_of(impl), 0.0)
    if far:
        shifted = ck.input(x + far * ck.draw(st.sampled_from([1.0, -1.0]), "far offset, in units of 2^k"))
        ck.close(impl.batch_norm(shifted, np.ones(d), np.zeros(d), eps=EPS), _normalised(x, axes, EPS),
                 output="normalised", what=f"batch_norm(x + c), c = +-{far:g} in every feature",
                 condition=_condition(shifted, axes))


@clause(
    "BN-DEPENDENT",
    "A batch-norm output MUST depend on the other items of the batch (a token's normalised "
    "value changes when another item changes), which is why transformers use layer norm.",
    source=BN_SECTION,
    needs=("batch_norm",),
    topic="normalisation",
)
def batch_norm_depends_on_batch(impl: Any, ck: Check) -> None:
    x = _tokens(ck, min_batch=2)
    d = x.shape[-1]
    ones, zeros = np.ones(d), np.zeros(d)
    # shift the *other* items by +1 in every feature: the per-feature mean moves by
    # (B - 1) / B != 0, so item 0's normalised value must move as well
    other = x.copy()
    other[1:] += 1.0
    other = ck.input(other)
    y = impl.batch_norm(x, ones, zeros, eps=EPS)
    y_other = impl.batch_norm(other, ones, zeros, eps=EPS)
    changed = y_other[0] != y[0]
    if precision.low_precision(impl):
        # How far item 0 moves, from the closed forms, can be below what float16/bfloat16 resolve:
        # with B = 2 the normalised values are +-sqrt(var / (var + eps)) whatever x is, and the
        # shift only moves the eps term (0.9998 -> 0.99999, both 1.0 in float16). Demand a change
        # where the move spans many spacings (16: both outputs may carry the "normalised" kind's
        # 8 ulps), and leave the rest to the value check below.
        moved = np.abs(_normalised(other, (0, 1), EPS)[0] - _normalised(x, (0, 1), EPS)[0])
        spacings = np.vectorize(lambda v: precision.spacing(impl, v))(np.maximum(np.abs(y[0]), 1.0))
        visible = moved > 16 * spacings
        ck.note("visibly moved features of item 0", int(visible.sum()))
        changed = changed | ~visible if visible.any() else np.ones_like(changed)
        ck.that(bool(np.all(changed)), what="batch_norm(x)[0] after shifting items 1..B-1, "
                "where the format resolves the move", observed="unchanged",
                expected="a different normalised value for item 0")
    else:
        ck.that(bool(np.any(changed)), what="batch_norm(x)[0] after shifting items 1..B-1",
                observed="unchanged", expected="a different normalised value for item 0")
    # and by exactly as much as the batch statistics say
    ck.close(y_other, _normalised(other, (0, 1), EPS), output="normalised",
             what="batch_norm(x with other items shifted)", condition=_condition(other, (0, 1)))
