"""Clauses on softmax and temperature, and the softmax Jacobian.

Sources: "Neural Networks (notes on 3Blue1Brown)" section 5 (output side: logits normalised into a
probability distribution, temperature), "Deep Learning (notes on 3Blue1Brown, chapters 1-6)"
chapter 5 (Softmax with Temperature) and "Neural Networks and Transformers (3Blue1Brown video
wjZofJX0v4M)" (Softmax Function). The documents describe softmax as: raise e to each value, divide
by the sum, giving numbers in [0, 1] that add up to one; a temperature T divides the exponents,
a large T flattening the distribution and a small T letting the largest value dominate.

Inputs are drawn on a dyadic grid (multiples of 1/8) so that shifts by integers and divisions by
powers of two are exact in float32 as well as float64: a metamorphic partner then differs from
the original only by what the implementation computes, never by how the input was rounded.
"""

from __future__ import annotations

import functools
from typing import Any

import hypothesis.strategies as st
import numpy as np
from hypothesis.extra import numpy as hnp

from . import precision
from .clause import DEEP_LEARNING, NEURAL_NETWORKS, VIDEO_NOTES, Check, Source, clause

SOFTMAX_SECTION = Source(
    DEEP_LEARNING, "Chapter 5: Intro to Transformers, Softmax with Temperature", paper=None
)


# ------------------------------------------------------------------------------ strategies
def _grid_logits(
    *, min_dims: int = 1, max_dims: int = 3, max_side: int = 5, bound: int = 400
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of logits k/8 with |k| <= bound: exact under integer shifts in float32 and float64."""
    shapes = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)
    ints = shapes.flatmap(
        lambda shape: hnp.arrays(np.int64, shape, elements=st.integers(-bound, bound))
    )
    return ints.map(lambda k: k.astype(np.float64) / 8.0)


# Rows longer than 256 and 2048 (the last counts bfloat16 and float16 can add 1 to exactly), up to
# a context of 8192: few enough that the quick profile reaches each.
LONG_ROWS = (4096, 300, 8192, 2050, 1000)


def _vector(min_size: int = 1, max_size: int = 8, bound: int = 400) -> st.SearchStrategy:
    return st.integers(min_size, max_size).flatmap(
        lambda n: hnp.arrays(np.int64, (n,), elements=st.integers(-bound, bound))
    ).map(lambda k: k.astype(np.float64) / 8.0)


def _axis_for(ck: Check, x: np.ndarray) -> int:
    return ck.draw(st.integers(-x.ndim, x.ndim - 1), "axis")


def _exp_normalise(x: np.ndarray, axis: int) -> np.ndarray:
    """The documents' formula e^{x_i} / sum_j e^{x_j}, evaluated in float64.

    Multiplying numerator and denominator by e^{-max x} changes nothing mathematically and keeps
    e^x from overflowing when the clause divides large logits by a small temperature.
    """
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _entropy(p: np.ndarray) -> float:
    """H(p) = -sum p log p, with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    logp = np.log(np.where(p > 0, p, 1.0))
    return float(-(p * logp).sum())


# ------------------------------------------------------------------------------ clauses
@clause(
    "SM-SUM",
    "Softmax MUST turn any array of logits into values that add up to one along the normalised "
    "axis, for every shape and every axis, keeping the shape.",
    source=SOFTMAX_SECTION,
    needs=("softmax",),
    topic="softmax",
)
def softmax_sums_to_one(impl: Any, ck: Check) -> None:
    x = ck.input(ck.draw(_grid_logits(), "x"))
    axis = _axis_for(ck, x)
    p = impl.softmax(x, axis=axis)
    ck.equal(np.shape(p), x.shape, what="softmax(x, axis).shape")
    # sum_i softmax(x)_i = sum_i e^{x_i} / sum_j e^{x_j} = 1 along `axis`
    ck.close(p.sum(axis=axis), np.ones(np.delete(x.shape, axis % x.ndim)),
             output="probability", what="softmax(x, axis).sum(axis)")
    # And one row as long as an attention row or a vocabulary, where a denominator accumulated in
    # the format itself stalls: a bfloat16 sum of ones stops growing at 256, a float16 one at 2048
    # (sonos/tract #2586), so equal logits over 4096 keys each get 1/2048.
    n = ck.draw(st.sampled_from(LONG_ROWS), "n (long row)")
    bound = ck.draw(st.sampled_from([0, 8, 80, 400]), "long row's bound, in eighths")
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**32 - 1), "long row's seed"))
    long_row = ck.input(rng.integers(-bound, bound + 1, size=n) / 8.0)  # (n,), too long to draw
    p = np.asarray(impl.softmax(long_row, axis=-1))
    ck.equal(np.shape(p), (n,), what=f"softmax(x).shape, {n} logits")
    ck.close(p.sum(), 1.0, output="probability", what=f"softmax(x).sum(), {n} logits")


@clause(
    "SM-RANGE",
    "Every softmax output MUST lie in [0, 1], and the largest output along the axis MUST be "
    "strictly positive, even for logits of magnitude 10^4.",
    source=Source(VIDEO_NOTES, "Prediction Mechanism, Softmax Function", paper=None),
    needs=("softmax",),
    topic="softmax",
)
def softmax_in_unit_interval(impl: Any, ck: Check) -> None:
    x = ck.draw(_grid_logits(), "x")
    scale = ck.draw(st.sampled_from([1.0, 25.0]), "scale")  # 25 * 400/8 = 1250 .. 1e4 range
    x = ck.input(x * scale)
    axis = _axis_for(ck, x)
    p = impl.softmax(x, axis=axis)
    ck.that(bool(np.all(np.isfinite(p))), what="isfinite(softmax(x * scale))",
            observed=p, expected="finite values")
    ck.that(bool(np.all((p >= 0) & (p <= 1))), what="0 <= softmax(x * scale) <= 1",
            observed=f"min {np.nanmin(p)}, max {np.nanmax(p)}", expected="values in [0, 1]")
    # the largest logit contributes e^0 = 1 after the max shift, so max_i p_i >= 1/n > 0
    ck.that(bool(np.all(p.max(axis=axis) > 0)), what="softmax(x * scale).max(axis) > 0",
            observed=p.max(axis=axis), expected="strictly positive maxima")


@clause(
    "SM-SHIFT",
    "Softmax MUST be unchanged when the same constant is added to every logit along the axis, "
    "and logits of magnitude 10^4 MUST give finite values (no NaN or infinity).",
    source=SOFTMAX_SECTION,
    needs=("softmax",),
    topic="softmax",
)
def softmax_shift_invariant(impl: Any, ck: Check) -> None:
    x = ck.input(ck.draw(_grid_logits(), "x"))
    axis = _axis_for(ck, x)
    c = float(ck.draw(st.integers(-1000, 1000), "c"))
    # x + c is exact at float64/float32 (x is on a 1/8 grid, c an integer: 14 bits at most). At
    # float16/bfloat16 (11 and 8 significand bits) it is not: 1000 + 1/8 rounds, and the partner
    # would differ by its input. Halve c until every x + c is exact in the implementation's format
    # (at float64/float32 the loop never runs).
    while c != 0 and not np.array_equal(ck.input(x + c), x + c):
        c = float(int(c / 2))
    ck.note("c", c)
    # e^{x_i + c} / sum_j e^{x_j + c} = e^c e^{x_i} / (e^c sum_j e^{x_j})
    shifted = ck.input(x + c)  # exact, as above
    ck.close(impl.softmax(shifted, axis=axis), impl.softmax(x, axis=axis),
             output="probability", what="softmax(x + c, axis)")
    # large logits: a naive e^x overflows to inf and inf/inf = NaN
    big = ck.input(np.sign(x) * 1e4 + x)
    p_big = impl.softmax(big, axis=axis)
    ck.that(bool(np.all(np.isfinite(p_big))), what="isfinite(softmax(+-1e4 + x))",
            observed=p_big, expected="finite values")
    ck.close(p_big.sum(axis=axis), np.ones(np.delete(x.shape, axis % x.ndim)),
             output="probability", what="softmax(+-1e4 + x).sum(axis)")


@clause(
    "SM-ORDER",
    "Softmax MUST preserve the order of the logits: a larger logit never gets a smaller "
    "probability, and the most probable entry is a largest logit.",
    source=Source(NEURAL_NETWORKS, "5. A Basic Idea of transformers, b.4 Output Side", paper=None),
    needs=("softmax",),
    topic="softmax",
)
def softmax_preserves_order(impl: Any, ck: Check) -> None:
    x = ck.input(ck.draw(_vector(min_size=2), "x"))
    p = impl.softmax(x)
    order = np.argsort(x, kind="stable")
    # x_i <= x_j  =>  e^{x_i} <= e^{x_j}  =>  p_i <= p_j   (exp is increasing)
    # non-decreasing up to rounding: the negative parts of the steps must vanish
    steps = np.diff(p[order])
    ck.close(np.minimum(steps, 0.0), np.zeros_like(steps), output="probability",
             what="min(p_(k+1) - p_(k), 0) with the logits sorted")
    ck.equal(x[int(np.argmax(p))], x.max(), what="x[argmax(softmax(x))]")


@clause(
    "SM-FORMULA",
    "For moderate logits softmax MUST equal e^{x_i} divided by the sum of e^{x_j} along the axis.",
    source=Source(VIDEO_NOTES, "Prediction Mechanism, Softmax Function", paper=None),
    needs=("softmax",),
    topic="softmax",
)
def softmax_formula(impl: Any, ck: Check) -> None:
    # |x| <= 20: e^x stays far from overflow, so the formula can be evaluated as written
    x = ck.input(ck.draw(_grid_logits(bound=160), "x"))
    # p_i = e^{x_i} / sum_j e^{x_j}, along every axis in each spelling (one drawn axis let a softmax
    # over a hard-coded axis 0 through all ten examples of seed 5 at quick: axis 0, or 1-D arrays)
    for axis in range(-x.ndim, x.ndim):
        ck.close(impl.softmax(x, axis=axis), _exp_normalise(x, axis),
                 output="probability", what=f"softmax(x, axis={axis})")
    ck.close_to_oracle("softmax", x, axis=_axis_for(ck, x), output="probability")


@clause(
    "SM-TEMP",
    "Softmax with temperature T MUST equal softmax(x / T): T = 1 is plain softmax, T -> 0 tends "
    "to the one-hot argmax, T -> infinity tends to the uniform distribution, and the entropy "
    "MUST NOT decrease as T grows.",
    source=SOFTMAX_SECTION,
    needs=("softmax",),
    topic="softmax",
)
def softmax_temperature(impl: Any, ck: Check) -> None:
    x = ck.input(ck.draw(_vector(min_size=2), "x"))
    n = x.size
    # T = 1 is plain softmax
    ck.close(impl.softmax(x, temperature=1.0), impl.softmax(x),
             output="probability", what="softmax(x, T=1)")
    # e^{x_i/T} / sum_j e^{x_j/T} = softmax(x / T); T a power of two keeps x / T exact
    k = ck.draw(st.integers(-4, 4), "log2 T (the drawn temperature; the limits use 2^-12 and 2^60)")
    t = 2.0**k
    ck.close(impl.softmax(x, temperature=t), _exp_normalise(x / t, -1),
             output="probability", what=f"softmax(x, T=2^{k})")
    # along every axis of an array, each spelling, as plain softmax is: a temperature path borrowed
    # from a sampler normalises over the last axis whatever the axis asked (one drawn axis left
    # that to the draw: the quick profile found it at its 9th example of 10)
    grid = ck.input(ck.draw(_grid_logits(min_dims=2), "x (array)"))
    for axis in range(-grid.ndim, grid.ndim):
        ck.close(impl.softmax(grid, axis=axis, temperature=t), _exp_normalise(grid / t, axis),
                 output="probability", what=f"softmax(x, axis={axis}, T=2^{k})")
    # T -> 0: logits differ by at least 1/8, so with T = 2^-12 a non-maximal entry gets at most
    # e^{-(1/8) * 4096} = e^{-512}, below the smallest double: the limit is exact in float64.
    ties = x == x.max()
    one_hot = ties / ties.sum()  # uniform over tied maxima, one-hot when the max is unique
    ck.close(impl.softmax(x, temperature=2.0**-12), one_hot,
             output="probability", what="softmax(x, T=2^-12)")
    # T -> infinity: p_i / p_j = e^{(x_i - x_j)/T}, so every p_i lies in
    # [e^{-R/T}/n, e^{R/T}/n] with R = max x - min x; with T = 2^60 and R <= 100 that interval is
    # 1/n (1 +- 1e-16): the limit is uniform up to rounding.
    ck.close(impl.softmax(x, temperature=2.0**60), np.full(n, 1.0 / n),
             output="probability", what="softmax(x, T=2^60)")
    # entropy non-decreasing in T (checked for T and 2T): the tolerance of the entropy kind
    # absorbs rounding when both are log(n)
    h_low = _entropy(impl.softmax(x, temperature=t))
    h_high = _entropy(impl.softmax(x, temperature=2 * t))
    ck.close(min(h_high - h_low, 0.0), 0.0, output="reduction",
             what=f"min(H(softmax(x, T=2^{k + 1})) - H(softmax(x, T=2^{k})), 0)")


@functools.cache
def _symbolic_softmax_jacobian(n: int) -> tuple[Any, Any]:
    """sympy's Jacobian of softmax in n variables, and a proof that it is diag(p) - p p^T.

    Returns (jacobian, closed_form) as lambdified functions of the logits. The symbolic identity
    is checked once here: if sympy did not reduce J - (diag(p) - p p^T) to zero the document's
    formula would be wrong, and building the clause raises.
    """
    import sympy  # here, not at the top: a pytest run that never differentiates skips its 0.3 s import
    xs = sympy.symbols(f"x0:{n}", real=True)
    denom = sum(sympy.exp(v) for v in xs)
    p = sympy.Matrix([sympy.exp(v) / denom for v in xs])
    jac = p.jacobian(sympy.Matrix(xs))
    # dp_i/dx_j = p_i (delta_ij - p_j)  <=>  J = diag(p) - p p^T
    closed = sympy.diag(*p) - p * p.T
    residual = (jac - closed).applyfunc(sympy.simplify)
    if residual != sympy.zeros(n, n):
        raise AssertionError(f"sympy: softmax Jacobian is not diag(p) - p p^T for n={n}")
    return sympy.lambdify([xs], jac, "numpy"), sympy.lambdify([xs], closed, "numpy")


@clause(
    "GRAD-SOFTMAX",
    "The Jacobian of softmax MUST be diag(p) - p p^T with p = softmax(x), and the "
    "implementation's softmax MUST have that derivative.",
    source=Source(DEEP_LEARNING, "Chapter 4: Backpropagation Calculus; Chapter 5: Softmax with "
                  "Temperature", paper=None),
    needs=("softmax",),
    topic="softmax",
    note="sympy derives the Jacobian; the implementation is checked by central differences.",
)
def softmax_jacobian(impl: Any, ck: Check) -> None:
    n = ck.draw(st.integers(2, 4), "n")
    x = ck.input(ck.draw(hnp.arrays(np.int64, (n,), elements=st.integers(-24, 24)), "x * 8 (x in steps of 1/8)") / 8.0)
    jac_fn, _ = _symbolic_softmax_jacobian(n)
    jac = np.asarray(jac_fn(tuple(x)), dtype=np.float64)  # (n, n), J_ij = dp_i/dx_j
    # closed form from the implementation's own probabilities
    p = impl.softmax(x)
    ck.close(np.diag(p) - np.outer(p, p), jac, output="probability",
             what="diag(p) - p p^T with p = softmax(x)")
    # central differences of the implementation, Richardson-extrapolated:
    # D(h) = (f(x+h) - f(x-h)) / 2h = f' + h^2 f'''/6 + O(h^4),
    # so (4 D(h/2) - D(h)) / 3 = f' + O(h^4).
    # The error is truncation |h^4 f^(5) / 480| plus rounding: each softmax value carries ~eps,
    # and (4 D(h/2) - D(h)) / 3 divides it by h/2, ~3 eps / h in all. With h = 2^-8 (x +- h exact
    # on the 1/8 grid, in float32 too) truncation is ~2^-32 / 480 and rounding ~3 * 2^8 eps: inside
    # the "gradient" kind for float64 and float32. At float16/bfloat16 (eps 2^-10, 2^-7) that
    # rounding would be 0.75 and 6, so the step grows with eps: h = 2^9 eps, capped at 1/2, which
    # keeps rounding at ~6 eps (the kind allows 32) while truncation is still < 2^-4 / 480.
    # x +- h/2 stay exact on the 1/8 grid at every format (|x| <= 3.5 needs 6 significand bits).
    h = min(2.0**-1, max(2.0**-8, 2.0**9 * precision.eps(impl)))

    def central(step_size: float) -> np.ndarray:
        d = np.empty((n, n))  # (n, n), column j = d softmax / d x_j
        for j in range(n):
            step = np.zeros(n)
            step[j] = step_size
            plus, minus = impl.softmax(ck.input(x + step)), impl.softmax(ck.input(x - step))
            d[:, j] = (plus - minus) / (2 * step_size)
        return d

    fd = (4 * central(h / 2) - central(h)) / 3
    ck.close(fd, jac, output="gradient", what="central differences of softmax(x)")
    ck.note("max |fd - J|", float(np.max(np.abs(fd - jac))))
    ck.note("h", h)
