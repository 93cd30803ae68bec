"""The tolerance policy: one module, one table.

Four comparisons, each recording the observed error, the tolerance and why:

1. **float64 implementation vs the oracle** (``ck.close_to_oracle`` on a float64 implementation):
   elementwise ``|observed - expected| <= atol + rtol * |expected|`` with ``atol64``/``rtol64`` of
   the output kind. Both sides compute the same formula in the same precision; what is left is
   summation order and library kernels, a few hundred ulps at most for a whole network.

2. **lower precision vs the oracle** (float32/float16/bfloat16): the rule of FlashAttention's and
   PyTorch's SDPA tests. Compute a *baseline* of the same call with ``torch_ref`` at the same dtype,
   then require ::

       max|observed - oracle| <= k * max|baseline - oracle| + floor,
       floor = floor_ulps * eps(dtype) * max(1, max|oracle|)   (x condition, see rule 3)

   i.e. the implementation may be at most ``k`` times as wrong as a straightforward implementation
   at its precision. ``k`` grows with how much the output kind lets a reordering of the arithmetic
   matter (one rounding for an elementwise function; long sums for a network). The floor keeps an
   exact baseline (error 0) from demanding exactness. When no baseline can be computed (torch_ref
   lacks the capability, or the baseline itself is not finite) the closed-form rule 3 applies.
   The baseline always computes in IEEE float32, whatever TF32 or bfloat16-matmul switches the
   session turned on (``nnspec.verify.numerics``): a yardstick that rounded to 10 bits would let a
   float32 implementation off by as much.

3. **closed forms** (``ck.close``: a formula, a document's number, a metamorphic partner) use a
   dtype-eps table: ``atol = max(atol64, ulps * eps * condition)`` and
   ``rtol = max(rtol64, ulps * eps)``, with ``ulps`` for float64/float32 and the smaller ``ulps16``
   for float16/bfloat16, whose kernels accumulate in float32 so the error is a few roundings of the
   8- or 11-bit result. ``condition`` (default 1) is the checked computation's condition number,
   stated by the clause where it is large: a backward-stable kernel's error grows with it (Higham,
   *Accuracy and Stability of Numerical Algorithms*, ch. 1), so demanding less would reject
   correct kernels. Normalisation is the case in point: PyTorch's batch norm folds the mean into a
   shift applied after scaling, ``x * (gamma / std) + (beta - mean * gamma / std)``, whose rounding
   is that of ``max|x| / std``, not of the unit-scale output.

4. **two routes** (``ck.close_routes``: a forward pass vs its own parts composed, a finite
   difference vs the chain rule) compare an implementation with itself. At float64, rule 3. Below,
   rule 3 plus ``k`` times the gap between the same two routes through torch_ref at that dtype:
   the rounding the input amplifies, measured, as rule 2 measures it against the oracle.

Always: NaN or Inf in the observed output where the expected output is finite fails, whatever the
tolerance; where the expected output is itself NaN/Inf the observed output must match it exactly.

Output kinds (the ``output=`` argument of ``ck.close``/``ck.close_to_oracle``) are the rows of
:data:`TABLE`; an unknown kind is an error of the clause, not a silent default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Machine epsilon (spacing of floats at 1.0) per dtype.
EPS: dict[str, float] = {
    "float64": float(np.finfo(np.float64).eps),  # 2.2e-16
    "float32": float(np.finfo(np.float32).eps),  # 1.2e-7
    "float16": float(np.finfo(np.float16).eps),  # 9.8e-4
    "bfloat16": 2.0**-7,  # 7.8e-3 (8 significand bits)
}


@dataclass(frozen=True)
class Kind:
    """One row of the table. See the module docstring for how each column is used."""

    atol64: float
    rtol64: float
    ulps: float  # closed forms at float64/float32, in units of eps(dtype)
    ulps16: float  # closed forms at float16/bfloat16 (kernels accumulate in float32: fewer ulps)
    k: float
    floor_ulps: float
    why: str


TABLE: dict[str, Kind] = {
    #                 atol64  rtol64  ulps  ulps16  k  floor_ulps
    "exact": Kind(0.0, 0.0, 0, 0, 1, 0, "a value the arithmetic cannot change (copies, selections, masks)"),
    "elementwise": Kind(1e-14, 1e-13, 8, 2, 2, 2, "one elementwise function: a few roundings"),
    "default": Kind(1e-12, 1e-11, 64, 4, 2, 4, "a short computation"),
    "probability": Kind(1e-13, 1e-11, 32, 4, 2, 4, "softmax outputs and attention weights in [0, 1]"),
    "reduction": Kind(1e-11, 1e-10, 256, 8, 3, 16, "sums, means, costs, dot products: order-dependent"),
    "attention": Kind(1e-11, 1e-10, 256, 8, 3, 16, "attention outputs: matmul, softmax, matmul"),
    "normalised": Kind(1e-10, 1e-9, 256, 8, 3, 16, "normalisation divides by a std that can be small"),
    "network": Kind(1e-9, 1e-8, 4096, 32, 4, 64, "a whole forward pass: many layers of reductions"),
    "gradient": Kind(1e-8, 1e-7, 4096, 32, 5, 64, "backpropagation by hand vs autograd, or finite differences"),
}


def kind(output: str) -> Kind:
    try:
        return TABLE[output]
    except KeyError:
        raise ValueError(f"unknown output kind {output!r}; use one of {sorted(TABLE)}") from None


@dataclass(frozen=True)
class Verdict:
    """The outcome of one comparison: ``error`` vs ``tolerance``, and why that tolerance."""

    passed: bool
    error: float
    tolerance: float
    reason: str
    detail: str = ""


def _as_float(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _locate(mask: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()
    return f"{int(mask.sum())} element(s), first at index {index}"


def magnitude(expected: object) -> float:
    """``max(1, max|expected|)`` over the finite elements: the scale of rule 2's floor, and what a
    failure's error is read against."""
    expected = _as_float(expected)
    finite = np.isfinite(expected)
    kept = expected if finite.all() else expected[finite]  # no copy in the usual, all-finite case
    return max(1.0, float(np.max(np.abs(kept), initial=0.0)))


def check_nonfinite(observed: np.ndarray, expected: np.ndarray) -> Verdict | None:
    """The always-fail rule: NaN/Inf where the expected output has none, or a mismatch where it has."""
    obs_bad = ~np.isfinite(observed)
    exp_bad = ~np.isfinite(expected)
    new = obs_bad & ~exp_bad
    if new.any():
        what = "NaN" if np.isnan(observed[new]).any() else "Inf"
        return Verdict(
            False, float("inf"), 0.0, f"{what} where the expected output is finite (always a failure)",
            _locate(new),
        )
    if exp_bad.any():
        same = (np.isnan(observed) & np.isnan(expected)) | (observed == expected)
        differ = exp_bad & ~same
        if differ.any():
            return Verdict(
                False, float("inf"), 0.0, "the expected output's NaN/Inf are not matched exactly",
                _locate(differ),
            )
    return None


def _elementwise(
    observed: np.ndarray, expected: np.ndarray, atol: float | np.ndarray, rtol: float, reason: str,
    baseline: np.ndarray | None = None,
) -> Verdict:
    """|observed - expected| <= atol + rtol |expected| element by element, where ``expected`` is
    finite (callers have matched its NaN/Inf already). The worst element, the one furthest past
    (or closest to) its own tolerance, is what a failure shows.

    Written for a network's logits (NET-LONG: 2050 x 2304): with every element finite and every
    tolerance above 0, which is the usual case, it makes five passes over the arrays, not fourteen.
    """
    finite = np.isfinite(expected)
    if finite.all():
        diff = np.abs(observed - expected)
        allowed = np.abs(expected) * rtol + atol if rtol else np.asarray(atol, dtype=np.float64)
    else:
        diff = np.where(finite, np.abs(observed - expected), 0.0)
        allowed = atol + rtol * np.abs(np.where(finite, expected, 0.0))
    allowed = np.broadcast_to(allowed, diff.shape)
    if diff.size == 0:
        return Verdict(True, 0.0, float(np.max(atol, initial=0.0)), reason)
    positive = bool(allowed.min() > 0)
    if positive:
        ratio = diff / allowed
    else:  # a zero tolerance: any difference there is infinitely far past it
        ratio = np.where(allowed > 0, diff / np.where(allowed > 0, allowed, 1.0), np.where(diff > 0, np.inf, 0.0))
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    error, tolerance = float(diff[worst]), float(allowed[worst])
    # With every tolerance above 0 the worst ratio decides: division rounds monotonically, and the
    # float after `allowed`, divided by it, still rounds above 1 (so diff <= allowed exactly when
    # diff / allowed <= 1); a NaN ratio compares false. Else the comparison itself.
    passed = bool(ratio[worst] <= 1.0) if positive else bool((diff <= allowed).all())
    where = tuple(int(i) for i in worst)
    at_baseline = "" if baseline is None else f", baseline {float(baseline[worst])!r}"
    detail = "" if passed else (
        f"worst at index {where}: {_at(observed, expected, worst)}{at_baseline}; "
        f"{_locate(~(diff <= allowed))} out of tolerance"  # a NaN difference is out too
    )
    return Verdict(passed, error, tolerance, reason, detail)


def _at(observed: np.ndarray, expected: np.ndarray, index: tuple) -> str:
    """Both values at ``index`` in full (the shortest repr that reads back as the same float): a
    preview rounded to 4 digits can show the same number on both sides of a failure."""
    return f"observed {float(observed[index])!r}, expected {float(expected[index])!r}"


def against_oracle_float64(observed: object, expected: object, output: str, *, against: str = "oracle") -> Verdict:
    """Rule 1: a float64 implementation against the float64 oracle (or another float64 truth)."""
    row = kind(output)
    observed, expected = _as_float(observed), _as_float(expected)
    bad = check_nonfinite(observed, expected)
    if bad:
        return bad
    reason = f"float64 vs {against}, {output}: atol {row.atol64:g} + rtol {row.rtol64:g} ({row.why})"
    return _elementwise(observed, expected, row.atol64, row.rtol64, reason)


def _conditions(condition: object) -> tuple[np.ndarray, str]:
    """A clause's condition number(s) as an array, and how a reason states them ("" for 1)."""
    conditions = np.asarray(condition, dtype=np.float64)
    if not np.all(conditions >= 1.0):  # also refuses NaN
        raise ValueError(f"condition={condition!r}: a condition number is at least 1")
    worst = float(np.max(conditions))
    return conditions, (f" x condition {'up to ' if conditions.size > 1 else ''}{worst:.3g}" if worst > 1.0 else "")


def closed_form(
    observed: object, expected: object, output: str, dtype: str, *, condition: object = 1.0
) -> Verdict:
    """Rule 3: against a closed form or a document's number, at the implementation's dtype.

    ``condition`` is the condition number of the computation the clause checks (how much it
    amplifies a relative rounding of its inputs or intermediates; 1 for most): a backward-stable
    kernel may be off by that many times the output's rounding, so the absolute tolerance scales
    with it. Clauses state it where it is large (normalising a token whose mean is far from 0
    relative to its spread): one number, or an array that broadcasts against ``expected`` so that
    each element is held to its own (one condition per token, say).
    """
    row = kind(output)
    observed, expected = _as_float(observed), _as_float(expected)
    bad = check_nonfinite(observed, expected)
    if bad:
        return bad
    conditions, conditioned = _conditions(condition)
    ulps, atol, rtol = _closed_form_tolerance(row, dtype, conditions)
    atol = np.broadcast_to(atol, expected.shape)
    reason = (
        f"closed form, {dtype}, {output}: atol {float(np.max(atol, initial=row.atol64)):.3g} "
        f"+ rtol {rtol:.3g} ({ulps:g} ulps{conditioned}; {row.why})"
    )
    return _elementwise(observed, expected, atol, rtol, reason)


def _closed_form_tolerance(row: Kind, dtype: str, conditions: object = 1.0) -> tuple[float, np.ndarray, float]:
    """Rule 3's numbers for one row at ``dtype``: its ulps, ``atol = max(atol64, ulps * eps *
    condition)`` and ``rtol = max(rtol64, ulps * eps)``."""
    eps = EPS[dtype]
    ulps = row.ulps16 if dtype in ("float16", "bfloat16") else row.ulps
    return ulps, np.maximum(row.atol64, ulps * eps * np.asarray(conditions)), max(row.rtol64, ulps * eps)


def between_routes(
    observed: object, expected: object, base_observed: object | None, base_expected: object | None,
    output: str, dtype: str,
) -> Verdict:
    """Rule 4: two routes through one implementation's own arithmetic, below float64.

    A network's forward pass against the same network composed from its parts, a finite difference
    of the forward pass against the chain rule: both sides round, at different points, so where the
    input is ill-conditioned (a layer norm over a nearly constant token, a loss that sums large
    outputs before a difference divides by a small step) they part by more than any fixed number
    of ulps, for a correct implementation. The same two routes through torch_ref at the same dtype
    measure how far rounding alone takes them apart on this input, and the implementation may be
    ``k`` times as far apart, on top of rule 3's closed-form tolerance (the same-precision rule,
    with a gap in place of an error against the oracle: the oracle is not needed, so a bug shared
    with it cannot hide here). Without a baseline (torch_ref cannot run it, or its gap is not
    finite) rule 3 alone applies.
    """
    closed = closed_form(observed, expected, output, dtype)
    if base_observed is None or base_expected is None:
        return closed
    observed, expected = _as_float(observed), _as_float(expected)
    base_observed, base_expected = _as_float(base_observed), _as_float(base_expected)
    if base_observed.shape != base_expected.shape or not np.isfinite(base_observed - base_expected).all():
        return closed
    if check_nonfinite(observed, expected):
        return closed
    row = kind(output)
    gap = float(np.max(np.abs(base_observed - base_expected), initial=0.0))
    ulps, closed_atol, rtol = _closed_form_tolerance(row, dtype)
    reason = (
        f"two routes at {dtype}, {output}: k={row.k:g} x torch_ref's gap between the same routes {gap:.3g} "
        f"+ closed form atol {float(closed_atol):.3g} + rtol {rtol:.3g} ({ulps:g} ulps; {row.why})"
    )
    return _elementwise(observed, expected, float(closed_atol) + row.k * gap, rtol, reason)


def against_baseline(
    observed: object, expected: object, baseline: object | None, output: str, dtype: str,
    *, condition: object = 1.0, against: str = "oracle",
) -> Verdict:
    """Rule 2: a low-precision implementation; falls back to rule 3 without a usable baseline.

    ``condition`` (as in :func:`closed_form`) widens the floor element by element: a baseline that
    happens to be exact where the computation is ill-conditioned (torch's mean of a constant token,
    which another summation order misses by an ulp that normalising then magnifies by
    ``|x| / sqrt(eps)``) must not make an equally backward-stable kernel fail there.
    """
    row = kind(output)
    observed, expected = _as_float(observed), _as_float(expected)
    bad = check_nonfinite(observed, expected)
    if bad:
        return bad
    if baseline is None:
        return closed_form(observed, expected, output, dtype, condition=condition)
    baseline = _as_float(baseline)
    finite = np.isfinite(expected)
    everywhere = bool(finite.all())  # the usual case: no boolean-indexed copies of large arrays
    if baseline.shape != expected.shape or not np.isfinite(baseline if everywhere else baseline[finite]).all():
        return closed_form(observed, expected, output, dtype, condition=condition)
    conditions, conditioned = _conditions(condition)
    baseline_errors = np.abs(baseline - expected)
    baseline_error = float(np.max(baseline_errors if everywhere else baseline_errors[finite], initial=0.0))
    scale = magnitude(expected)
    floor = row.floor_ulps * EPS[dtype] * scale * conditions  # one number, or one per element
    reason = (
        f"{dtype} vs {against}, {output}: k={row.k:g} x baseline error {baseline_error:.3g} "
        f"(torch_ref at {dtype}) + floor {float(np.max(np.broadcast_to(floor, expected.shape), initial=0.0)):.3g} "
        f"({row.floor_ulps:g} ulps x max|{against}|{conditioned})"
    )
    # an absolute tolerance per element, k x the baseline's error plus that element's floor
    return _elementwise(observed, expected, row.k * baseline_error + floor, 0.0, reason, baseline)
