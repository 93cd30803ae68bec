"""A deliberately broken implementation, and a few tiny test clauses to run it against.

``BROKEN`` is the oracle with four capabilities sabotaged, one per way an implementation can go wrong
at run time: ``softmax`` raises, ``layer_norm`` returns NaN, ``sigmoid`` returns the wrong shape, and
``relu`` never returns. Run against :data:`TEST_CLAUSES` it must produce exactly four clear failures
(and a finished run); the other clauses keep passing. ``STUCK``'s softmax never returns either, but
from native code, where the time limit's signal cannot reach it.

The test clauses are plain :class:`Clause` objects, *not* registered in the real catalogue, so the
engine is testable on its own; the plugin and the CLI reach them with
``--nnspec-catalogue=broken_impls:TEST_CLAUSES`` (``tests/`` is on ``sys.path`` under pytest).
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

import numpy as np
from hypothesis.extra import numpy as hnp
from nnspec.spec.clause import NEURAL_NETWORKS, Clause, Source
from nnspec.verify import patched
from nnspec.verify.strategies import arrays, masks

TEST_SOURCE = Source(NEURAL_NETWORKS, "nnspec's own engine tests")


def _vectors(ck: Any, label: str = "x", bound: float = 10.0) -> np.ndarray:
    shape = ck.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), label=f"{label} shape")
    return ck.input(ck.draw(arrays(shape, bound=bound), label=label))


def _sigmoid_matches_oracle(impl: Any, ck: Any) -> None:
    ck.close_to_oracle("sigmoid", _vectors(ck), output="elementwise")


def _softmax_matches_oracle(impl: Any, ck: Any) -> None:
    ck.close_to_oracle("softmax", _vectors(ck), axis=-1, output="probability")


def _layer_norm_matches_oracle(impl: Any, ck: Any) -> None:
    x = _vectors(ck)
    d = x.shape[-1]
    gamma = ck.input(ck.draw(arrays((d,), bound=2.0), label="gamma"))
    beta = ck.input(ck.draw(arrays((d,), bound=2.0), label="beta"))
    ck.close_to_oracle("layer_norm", x, gamma, beta, output="normalised")


def _relu_is_max_zero(impl: Any, ck: Any) -> None:
    x = _vectors(ck)
    # relu(z) = max(z, 0)
    ck.close(impl.relu(x), np.maximum(x, 0.0), output="elementwise", what="relu(x) = max(x, 0)")


def _masked_weights_are_zero(impl: Any, ck: Any) -> None:
    n_q = ck.draw(hnp.array_shapes(min_dims=1, max_dims=1, max_side=4), label="n_q")[0]
    n_k = ck.draw(hnp.array_shapes(min_dims=1, max_dims=1, max_side=4), label="n_k")[0]
    d_k = 2
    q = ck.input(ck.draw(arrays((n_q, d_k)), label="q"))
    k = ck.input(ck.draw(arrays((n_k, d_k)), label="k"))
    v = ck.input(ck.draw(arrays((n_k, d_k)), label="v"))
    mask = ck.draw(masks(n_q, n_k), label="mask")
    _, weights = impl.scaled_dot_product_attention(q, k, v, mask)
    ck.equal(weights[~mask], np.zeros(int((~mask).sum())), what="weights where the mask is False")


def _clause(id: str, statement: str, needs: tuple[str, ...], prop: Any, **kw: Any) -> Clause:
    return Clause(id=id, statement=statement, source=TEST_SOURCE, needs=needs, prop=prop,
                  topic="engine-selftest", **kw)


TEST_CLAUSES: dict[str, Clause] = {
    c.id: c
    for c in [
        _clause("T-SIGMOID", "Sigmoid matches the oracle.", ("sigmoid",), _sigmoid_matches_oracle),
        _clause("T-SOFTMAX", "Softmax matches the oracle.", ("softmax",), _softmax_matches_oracle),
        _clause("T-LAYERNORM", "Layer norm matches the oracle.", ("layer_norm",), _layer_norm_matches_oracle),
        _clause("T-RELU", "ReLU is max(x, 0).", ("relu",), _relu_is_max_zero),
        _clause("T-MASK", "Masked attention weights are exactly zero.",
                ("scaled_dot_product_attention",), _masked_weights_are_zero),
    ]
}


# ----------------------------------------------------------------------------------------------
# the sabotage
# ----------------------------------------------------------------------------------------------


def _raising_softmax(x: np.ndarray, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    raise RuntimeError("softmax kernel not implemented for this shape")


def _nan_layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    out = (x - x.mean(-1, keepdims=True)) * gamma + beta
    out[..., 0] = np.nan  # e.g. a 0/0 in a fused kernel
    return out


def _wrong_shape_sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-z))).reshape(-1)[:, None]  # flattened: (n, 1) instead of z.shape


def _hanging_relu(z: np.ndarray) -> np.ndarray:
    time.sleep(3600)  # a deadlocked kernel
    return np.maximum(z, 0.0)


BROKEN = patched(
    "numpy",
    name="broken",
    softmax=_raising_softmax,
    layer_norm=_nan_layer_norm,
    sigmoid=_wrong_shape_sigmoid,
    relu=_hanging_relu,
)

def _stuck_softmax(x: np.ndarray, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """Stuck in native code for good, as a kernel that never finishes leaves its caller: a normal
    pthread mutex locked twice by the thread that holds it deadlocks, and through ``ctypes.PyDLL``
    the call keeps the GIL, so no Python signal handler (the time limit's alarm) ever runs."""
    libc = ctypes.PyDLL(None)
    mutex = ctypes.create_string_buffer(64)  # all zeros: PTHREAD_MUTEX_INITIALIZER in glibc
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)
    raise AssertionError("unreachable: the second lock never returns")


def _segfaulting_layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Reads address 0, as a kernel with a bad index does: SIGSEGV, and the process is gone."""
    ctypes.string_at(0)
    raise AssertionError("unreachable: reading address 0 kills the process")


def _segfault(*args: Any, **kwargs: Any) -> np.ndarray:
    ctypes.string_at(0)
    raise AssertionError("unreachable: reading address 0 kills the process")


def _interrupted_softmax(x: np.ndarray, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a call


STUCK = patched("numpy", name="stuck", softmax=_stuck_softmax)
CRASHING = patched("numpy", name="crashing", layer_norm=_segfaulting_layer_norm)
# every capability of every test clause: more crashed workers than xdist replaces by default
CRASHING_EVERYWHERE = patched(
    "numpy", name="crashing-everywhere", sigmoid=_segfault, softmax=_segfault, layer_norm=_segfault,
    relu=_segfault, scaled_dot_product_attention=_segfault,
)
INTERRUPTED = patched("numpy", name="interrupted", softmax=_interrupted_softmax)

# What each sabotaged clause's failure message must mention.
EXPECTED_FAILURES = {
    "T-SOFTMAX": "raised",
    "T-LAYERNORM": "NaN",
    "T-SIGMOID": "wrong shape",
    "T-RELU": "timed out",
}
