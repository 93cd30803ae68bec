"""What a clause needs to know about the implementation's floating-point format.

A clause must judge a correct float16 or bfloat16 implementation as fairly as a float64 one. Two
things change with the format, and neither may be papered over by a looser tolerance at float64:

- the *range*: float16 overflows past 65504, so an input "whatever its value" must still be one the
  format can hold, and so must every intermediate a correct implementation forms from it (q k^T,
  c z). :func:`largest` gives the bound; clauses size their draws from it.
- the *resolution*: a finite-difference step or a document's number printed to two decimals only
  means something when the format resolves it. :func:`eps` and :func:`spacing` give that.

Clause modules never import the engine (:mod:`nnspec.verify`), so the few constants of the formats
live here, read from ``impl.dtype`` (``"float64"`` for anything that does not declare one, like the
oracle module itself).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Spacing of floats at 1.0: 2^-(significand bits - 1).
_EPS: dict[str, float] = {
    "float64": 2.0**-52,
    "float32": 2.0**-23,
    "float16": 2.0**-10,
    "bfloat16": 2.0**-7,
}
# The largest finite value.
_LARGEST: dict[str, float] = {
    "float64": float(np.finfo(np.float64).max),
    "float32": float(np.finfo(np.float32).max),
    "float16": float(np.finfo(np.float16).max),  # 65504
    "bfloat16": (2.0 - 2.0**-7) * 2.0**127,  # 3.39e38: float32's exponent, 8 significand bits
}
# The smallest normal value (below it the spacing stops shrinking: subnormals).
_TINY: dict[str, float] = {
    "float64": float(np.finfo(np.float64).tiny),
    "float32": float(np.finfo(np.float32).tiny),
    "float16": 2.0**-14,
    "bfloat16": 2.0**-126,
}


def dtype_of(impl: Any) -> str:
    """The implementation's floating-point format; float64 where it declares none."""
    dtype = getattr(impl, "dtype", "float64")
    return dtype if dtype in _EPS else "float64"


def eps(impl: Any) -> float:
    """Machine epsilon of the implementation's format (spacing at 1.0)."""
    return _EPS[dtype_of(impl)]


def largest(impl: Any) -> float:
    """The largest finite value of the implementation's format."""
    return _LARGEST[dtype_of(impl)]


def low_precision(impl: Any) -> bool:
    """float16 and bfloat16: formats with at most 11 significand bits."""
    return dtype_of(impl) in ("float16", "bfloat16")


def smallest_normal(impl: Any) -> float:
    """The smallest normal value of the implementation's format: a positive number the exact result
    has below it (a softmax weight of 3e-10 in float16) may honestly come out as 0."""
    return _TINY[dtype_of(impl)]


def spacing(impl: Any, x: float) -> float:
    """The distance between ``x`` and the next representable value of the implementation's format
    (its ulp), subnormals included: rounding ``x`` to the format moves it by at most half of this."""
    dtype = dtype_of(impl)
    magnitude = max(abs(float(x)), _TINY[dtype])
    return _EPS[dtype] * 2.0 ** math.floor(math.log2(magnitude))
