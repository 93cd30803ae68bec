"""Clauses on the calculus of backpropagation.

The documents derive the gradient of the cost with the chain rule: first for a chain of layers with
one neuron each (the cost C0 = (a(L) - y)^2 of one example, a(L) = sigma(z(L)), z(L) = w(L) a(L-1) +
b(L)), then for layers with many neurons, where the sensitivity to an earlier activation sums over
every path through the next layer. The truth these clauses compare against is computed without any
reference implementation: sympy differentiates the cost expression built from the documents'
definitions, and central finite differences in float64 differentiate a forward pass written here.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from nnspec.reference.config import MLPConfig

from . import precision
from .activations import FORMULAS
from .clause import DEEP_LEARNING, NEURAL_NETWORKS, RUMELHART_1986, Check, Source, clause
from .cost_learning import copy_params, draw_array, draw_layer_sizes, draw_mlp_params, seeded_mlp_params

TOPIC = "backprop"

NN_CALCULUS = "4. Calculus behind Backpropagation"
DL_CALCULUS = "Chapter 4: Backpropagation Calculus"


# ---------------------------------------------------------------------------------------------
# The cost as a sympy expression of every weight, bias, input and target.
# ---------------------------------------------------------------------------------------------


@cache
def _symbolic_gradient(layer_sizes: tuple[int, ...]) -> Any:
    """A numeric function ``(weights, biases, a0, y) -> gradient`` derived by sympy.

    The cost of one example is built exactly as the documents define it,
        z_j(l) = sum_k w_jk(l) a_k(l-1) + b_j(l),  a_j(l) = sigma(z_j(l)),
        C0 = sum_j (a_j(L) - y_j)^2,
    with sigma(z) = 1 / (1 + e^-z); sympy differentiates C0 with respect to every w_jk(l), b_j(l).
    The function returns the derivatives layer by layer, weights (row-major) then biases.
    """
    import sympy  # here, not at the top: a pytest run that never differentiates skips its 0.3 s import
    a0 = sympy.symbols(f"a0_0:{layer_sizes[0]}", real=True)
    y = sympy.symbols(f"y_0:{layer_sizes[-1]}", real=True)
    weights, biases = [], []
    a: list[Any] = list(a0)
    for l, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:], strict=True), start=1):
        W = sympy.Matrix(n_out, n_in, lambda j, k, l=l: sympy.Symbol(f"w{l}_{j}_{k}", real=True))
        b = sympy.Matrix(n_out, 1, lambda j, _, l=l: sympy.Symbol(f"b{l}_{j}", real=True))
        weights.append(W)
        biases.append(b)
        z = [sum(W[j, k] * a[k] for k in range(n_in)) + b[j] for j in range(n_out)]
        a = [1 / (1 + sympy.exp(-zj)) for zj in z]
    cost = sum((a[j] - y[j]) ** 2 for j in range(layer_sizes[-1]))
    unknowns = []
    for W, b in zip(weights, biases, strict=True):
        unknowns += list(W) + list(b)  # sympy.Matrix iterates row-major
    derivatives = [sympy.diff(cost, u) for u in unknowns]
    inputs = unknowns + list(a0) + list(y)
    return sympy.lambdify(inputs, derivatives, modules="numpy", cse=True)


def _expected_gradient(
    layer_sizes: tuple[int, ...], params: dict, a0: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """sympy's gradient of C0 at one example, flattened as in :func:`_symbolic_gradient`."""
    values: list[float] = []
    for layer in params["layers"]:
        values += list(np.ravel(layer["W"])) + list(np.ravel(layer["b"]))
    values += list(a0) + list(y)
    return np.asarray(_symbolic_gradient(layer_sizes)(*values), dtype=np.float64)


def _observed_gradient(dW: list, db: list) -> np.ndarray:
    parts: list[np.ndarray] = []
    for gw, gb in zip(dW, db, strict=True):
        parts += [
            np.ravel(np.asarray(gw, dtype=np.float64)),
            np.ravel(np.asarray(gb, dtype=np.float64)),
        ]
    return np.concatenate(parts)


def _gradient_labels(layer_sizes: tuple[int, ...]) -> list[str]:
    labels = []
    for l, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:], strict=True), start=1):
        labels += [f"dC0/dw_{j}{k}({l})" for j in range(n_out) for k in range(n_in)]
        labels += [f"dC0/db_{j}({l})" for j in range(n_out)]
    return labels


def _check_against_sympy(impl: Any, ck: Check, layer_sizes: tuple[int, ...]) -> None:
    params = draw_mlp_params(ck, layer_sizes)
    a0 = draw_array(ck, (layer_sizes[0],), "a(0)")
    y = draw_array(ck, (layer_sizes[-1],), "y", 0.0, 1.0)
    net = impl.MLP(MLPConfig(layer_sizes=layer_sizes, activation="sigmoid"), params)
    dW, db = net.gradients(a0[None, :], y[None, :])
    observed = _observed_gradient(dW, db)
    expected = _expected_gradient(layer_sizes, params, a0, y)
    worst = int(np.argmax(np.abs(observed - expected)))
    ck.note("worst_component", _gradient_labels(layer_sizes)[worst])
    ck.close(observed, expected, output="gradient", what="MLP.gradients vs sympy d C0 / d (w, b)")


# The notes' example: four layers of one neuron each (input a(0), then a(1), a(2), a(3) = a(L)).
CHAIN_OF_FOUR = (1, 1, 1, 1)


@clause(
    "BP-CHAIN-1",
    "For a chain of one-neuron layers, the gradient MUST follow the chain rule: dC0/dw(L) = a(L-1) "
    "sigma'(z(L)) 2(a(L) - y), dC0/db(L) = sigma'(z(L)) 2(a(L) - y), and earlier layers through "
    "dC0/da(L-1) = w(L) sigma'(z(L)) 2(a(L) - y).",
    source=Source(NEURAL_NETWORKS, NN_CALCULUS, paper=RUMELHART_1986),
    needs=("MLP.gradients",),
    topic=TOPIC,
    note="Expected values: sympy differentiates C0 = (a(3) - y)^2 of the notes' 4-layer chain.",
)
def bp_chain_1(impl: Any, ck: Check) -> None:
    _check_against_sympy(impl, ck, CHAIN_OF_FOUR)


@clause(
    "BP-CHAIN-MULTI",
    "With many neurons per layer, dC0/dw_jk(L) MUST equal a_k(L-1) sigma'(z_j(L)) 2(a_j(L) - y_j), "
    "and the sensitivity to a_k(L-1) MUST sum w_jk(L) sigma'(z_j(L)) 2(a_j(L) - y_j) over j.",
    source=Source(NEURAL_NETWORKS, NN_CALCULUS, paper=RUMELHART_1986),
    needs=("MLP.gradients",),
    topic=TOPIC,
    note="Expected values: sympy differentiates C0 = sum_j (a_j(L) - y_j)^2 for small layers.",
)
def bp_chain_multi(impl: Any, ck: Check) -> None:
    # Unequal sizes, so that a transposed weight gradient cannot pass by having the right shape.
    sizes = ck.draw(
        st.sampled_from([(2, 3, 2), (3, 2, 3), (2, 3), (3, 2), (2, 2, 3, 2), (1, 3, 2)]),
        "layer sizes",
    )
    _check_against_sympy(impl, ck, sizes)


# ---------------------------------------------------------------------------------------------
# Any MLP against central finite differences.
# ---------------------------------------------------------------------------------------------

# The activations an MLP config may name (reference/config.py), as closed forms written out in
# spec/activations.py, so that the truth does not come from a reference.
_ACTIVATIONS = FORMULAS

# ReLU has a kink at z = 0, where a small change of a weighted input changes relu' from 0 to 1.
# Central differences step each parameter by h = 1e-6, which moves a weighted input by far less than
# FD_MARGIN (dz/dtheta is a product of a few weights and activations of order one), so no step
# crosses the kink. KINK_ROUNDINGS is the safety factor over the bound on how far rounding in the
# implementation's format moves a weighted input (see _clear_of_the_kink).
FD_MARGIN = 1e-3
KINK_ROUNDINGS = 2.0


def _smallest_shift(z: np.ndarray, margin: float) -> float:
    """The shift s of least |s| with |z_i + s| >= margin for every i (0 when none is needed).

    It is 0 or puts some z_i + s on an edge, -z_i +- margin; the sum is checked a little inside the
    edge, which the rounding of z_i + s can miss (the caller asks for twice the margin it needs).
    """
    candidates = [0.0, *(-z + margin), *(-z - margin)]
    fits = [float(s) for s in candidates if np.all(np.abs(z + s) >= 0.999 * margin)]
    return min(fits, key=abs)


def _clear_of_the_kink(impl: Any, ck: Check, params: dict, x: np.ndarray) -> dict:
    """``params`` with the biases moved, as little as possible, so that no weighted input of a ReLU
    network on the examples ``x`` lies near relu's kink.

    Near z = 0 the derivative jumps: a float64 finite difference that crosses the kink, or a
    bfloat16 forward pass whose rounding flips the sign of z, gives relu' = 0 where the float64
    truth has 1, and the comparison would blame a correct implementation. Layer by layer, in float64,
    ``err_z`` bounds how far the implementation's rounding can move each weighted input: the sum's
    own roundings, (n_in + 1) eps times the size of its terms, plus the rounding the previous layer's
    activations carry in, |W| err_a. The margin is KINK_ROUNDINGS times that bound (FD_MARGIN at
    least), and each neuron's bias moves by the least shift that puts every example's z twice the
    margin away from 0: rounding the moved bias to the implementation's format takes less than
    the slack, so every z stays a margin clear of the kink.
    """
    eps = precision.eps(impl)
    a, err_a = x, np.zeros_like(x)  # (n, n_0): the drawn inputs are exact in the format
    layers = []
    for layer in params["layers"]:
        W, b = layer["W"], layer["b"].copy()  # (n_l, n_{l-1}), (n_l,)
        n_in = W.shape[1]
        z = a @ W.T + b  # (n, n_l)
        err_z = (n_in + 1) * eps * (np.abs(a) @ np.abs(W).T + np.abs(b)) + err_a @ np.abs(W).T
        margin = np.maximum(FD_MARGIN, KINK_ROUNDINGS * err_z.max(axis=0))  # (n_l,)
        for j in range(b.shape[0]):
            b[j] += _smallest_shift(z[:, j], 2.0 * margin[j])
        b = ck.input(b)
        z = a @ W.T + b
        a = np.maximum(z, 0.0)
        err_a = err_z + eps * np.abs(a)  # relu is 1-Lipschitz, then its output is rounded
        layers.append({"W": W, "b": b})
    return {"layers": layers}


def _cost64(params: dict, activation: str, x: np.ndarray, y: np.ndarray) -> float:
    """C = mean_i sum_j (a_ij(L) - y_ij)^2 in float64, written from the definitions."""
    act = _ACTIVATIONS[activation]
    a = x  # (n, n_0)
    for layer in params["layers"]:
        # a(l) = act(W(l) a(l-1) + b(l)), one example per row
        a = act(a @ layer["W"].T + layer["b"])  # (n, n_l)
    return float(((a - y) ** 2).sum(axis=-1).mean())


def central_differences(
    params: dict, activation: str, x: np.ndarray, y: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """dC/dtheta by (C(theta + h e) - C(theta - h e)) / 2h for every weight and bias (float64).

    Truncation error h^2 C''' / 6 ~ 1e-12 and rounding error ~ 1e-16 / h = 1e-10 for O(1) costs.
    """
    grads: list[float] = []
    for layer in params["layers"]:
        for name in ("W", "b"):
            array = layer[name]
            for index in np.ndindex(array.shape):
                saved = array[index]
                array[index] = saved + h
                plus = _cost64(params, activation, x, y)
                array[index] = saved - h
                minus = _cost64(params, activation, x, y)
                array[index] = saved
                grads.append((plus - minus) / (2.0 * h))
    return np.asarray(grads)


def _gradients_in_units(
    impl: Any, observed: np.ndarray, config: MLPConfig, params: Any, x: np.ndarray, y: np.ndarray,
    unit: float, namespace: Any,
) -> np.ndarray:
    """BP-FULL's gradients, flattened and in units of the cost: the implementation's, already
    computed, or those of ``namespace`` (torch_ref, the same-precision baseline)."""
    if namespace is impl:
        return observed / unit
    return _observed_gradient(*namespace.MLP(config, copy_params(params)).gradients(x, y)) / unit


@clause(
    "BP-FULL",
    "The gradients an implementation computes for any fully connected network MUST equal central "
    "finite differences of the cost in float64.",
    source=Source(DEEP_LEARNING, DL_CALCULUS, paper=RUMELHART_1986),
    needs=("MLP.gradients",),
    topic=TOPIC,
    note="Every activation an MLP config names (sigmoid, tanh, relu, gelu, gelu_tanh) on each drawn "
    "network; for relu the biases are moved so that no weighted input lies near the kink at 0. "
    "Gradients are compared in units of the cost C where C > 1 (finite differences lose eps C / h), "
    "by the closed-form rule and, below float64, also by the same-precision rule: k times torch_ref's "
    "own error against the same differences, plus a floor.",
)
def bp_full(impl: Any, ck: Check) -> None:
    sizes = draw_layer_sizes(ck, layers=(1, 3), width=5, label="layer sizes")
    drawn = seeded_mlp_params(ck, sizes)
    n = ck.draw(st.integers(1, 4), "n_examples")
    x = draw_array(ck, (n, sizes[0]), "x")
    y = draw_array(ck, (n, sizes[-1]), "y", -1.0, 1.0)
    # every activation on the same network: a fault in one derivative is found at any profile
    for activation in _ACTIVATIONS:
        params = _clear_of_the_kink(impl, ck, drawn, x) if activation == "relu" else drawn
        net = impl.MLP(MLPConfig(layer_sizes=sizes, activation=activation), copy_params(params))
        dW, db = net.gradients(x, y)
        observed = _observed_gradient(dW, db)
        expected = central_differences(copy_params(params), activation, x, y)
        # Compared in units of the cost where it exceeds 1: the differences' rounding error is
        # eps |C| / h, and a ReLU or GELU network's outputs (so C) are not bounded as sigmoid's are.
        unit = max(1.0, _cost64(params, activation, x, y))
        ck.close(
            observed / unit, expected / unit, output="gradient",
            what=f"MLP.gradients vs central finite differences, activation {activation!r}, "
            f"in units of max(1, C) = {unit:.4g} (closed form)",
        )
        # And by the same-precision rule (below float64: k times torch_ref's own error against the
        # differences at the implementation's dtype, plus a floor). Rule 3 alone allows 4096 ulps,
        # at float32 float16's whole unit roundoff: gradients passed through a float16 buffer
        # passed it (ninth hunt). At 16 bits rule 3's 32 ulps are the tighter of the two, so both
        # hold. The differences need no oracle, so a shared bug cannot hide from either.
        config = MLPConfig(layer_sizes=sizes, activation=activation)
        ck.close_to(
            partial(_gradients_in_units, impl, observed, config, params, x, y, unit),
            expected / unit, output="gradient", against="finite differences",
            what=f"MLP.gradients vs central finite differences, activation {activation!r}, "
            f"in units of max(1, C) = {unit:.4g}",
        )
