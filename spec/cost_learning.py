"""Clauses on the cost function and on learning by gradient descent.

The documents describe learning as: measure the squared difference between the output activations
and the desired ones (the *cost* of one example), average it over the training data, and walk the
weights and biases a small step against the gradient of that average; stochastic gradient descent
does the same on minibatches. Every clause here states one of those facts so that it holds for a
correct implementation whatever our oracle says: closed forms (the least-squares line, the parameter
count of the 784-16-16-10 network), metamorphic relations (a gradient is an average of gradients),
and the first-order behaviour of a descent step.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnspec.reference.config import MLPConfig, preset

from . import precision
from .activations import FORMULAS
from .clause import DEEP_LEARNING, NEURAL_NETWORKS, Check, ClauseFailure, Source, clause, informative

TOPIC = "cost_learning"

# Sections of the documents cited below.
NN_NEURONS = "1. Terminology, Structural Aspects and Basic Working"
NN_COST = "2a. Cost Function"
NN_GD = "2b. Gradient Descent and Introduction to Backpropagation"
NN_BP_GD = "3a. Backpropagation with traditional Gradient Descent"
NN_SGD = "3b. Stochastic Gradient Descent"
DL_CH1 = "Chapter 1: what is a neural network?"
DL_CH2 = "Chapter 2: Gradient descent, how neural networks learn"
DL_SGD = "Chapter 3: What is backpropagation really doing? / Stochastic Gradient Descent"

COST_ERRATUM = (
    "Neural Networks notes §2a sum the squared errors over the output neurons while Deep Learning "
    "ch.2 calls the cost a 'mean squared error'; the two differ by the factor n_outputs. nnspec "
    "follows the sum (PARAMETERS.md: squared_error_cost) and checks the factor explicitly."
)


# ---------------------------------------------------------------------------------------------
# Small strategies and helpers shared by the learning and backpropagation clauses.
# ---------------------------------------------------------------------------------------------


def finite(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Finite float64 values in ``[lo, hi]``."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)


def draw_array(
    ck: Check, shape: tuple[int, ...], label: str, lo: float = -1.0, hi: float = 1.0
) -> np.ndarray:
    """Draw a float64 array of ``shape``, entries in ``[lo, hi]``, rounded to the impl's dtype."""
    x = ck.draw(hnp.arrays(np.float64, shape, elements=finite(lo, hi)), label)
    return ck.input(np.asarray(x, dtype=np.float64))


def rounded_params(ck: Check, params: Any) -> Any:
    """Apply ``ck.input`` to every array of a nested parameter dict/list.

    The implementation and every closed form must see the same (possibly rounded) parameters.
    """
    if isinstance(params, dict):
        return {key: rounded_params(ck, value) for key, value in params.items()}
    if isinstance(params, (list, tuple)):
        return [rounded_params(ck, value) for value in params]
    return ck.input(np.asarray(params, dtype=np.float64))


def mlp_params_from_rng(layer_sizes: tuple[int, ...], seed: int, scale: float = 1.0) -> dict:
    """Weights ``(n_out, n_in)`` and biases ``(n_out,)`` drawn from a seeded normal law.

    Used for networks too large to draw entry by entry under Hypothesis (the seed is drawn instead).
    """
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
        layers.append(
            {
                "W": rng.normal(0.0, scale / math.sqrt(n_in), size=(n_out, n_in)),
                "b": rng.normal(0.0, scale, size=(n_out,)),
            }
        )
    return {"layers": layers}


def draw_mlp_params(
    ck: Check, layer_sizes: tuple[int, ...], lo: float = -2.0, hi: float = 2.0
) -> dict:
    """Draw every weight and bias of a small MLP entry by entry (shrinkable)."""
    layers = []
    for l, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:], strict=True), start=1):
        layers.append(
            {
                "W": draw_array(ck, (n_out, n_in), f"W({l})", lo, hi),
                "b": draw_array(ck, (n_out,), f"b({l})", lo, hi),
            }
        )
    return {"layers": layers}


def draw_layer_sizes(ck: Check, *, layers: tuple[int, int], width: int, label: str = "sizes") -> tuple[int, ...]:
    """An MLP's layer sizes, input to output: ``layers`` (min, max) weight layers of 1..``width``."""
    n_layers = ck.draw(st.integers(*layers), "n_layers")
    return tuple(ck.draw(st.lists(st.integers(1, width), min_size=n_layers + 1, max_size=n_layers + 1), label))


def seeded_mlp_params(ck: Check, layer_sizes: tuple[int, ...]) -> dict:
    """Weights and biases from a drawn seed and scale: generic values, and a failure shrinks in a
    few steps (drawing every entry makes shrinking a network's counterexample slow)."""
    seed = ck.draw(st.integers(0, 2**16), "parameter seed")
    scale = ck.draw(st.sampled_from([0.5, 1.0, 2.0]), "parameter scale")
    return rounded_params(ck, mlp_params_from_rng(layer_sizes, seed, scale))


def copy_params(params: Any) -> Any:
    """A deep copy of a parameter dict: training is in place, and clauses reuse starting points."""
    if isinstance(params, dict):
        return {key: copy_params(value) for key, value in params.items()}
    if isinstance(params, (list, tuple)):
        return [copy_params(value) for value in params]
    return np.array(params, dtype=np.float64, copy=True)


def step_params(params: dict, dW: list, db: list, eta: float) -> dict:
    """One gradient-descent step on a parameter dict: ``theta - eta * grad``."""
    return {
        "layers": [
            {"W": layer["W"] - eta * np.asarray(gw), "b": layer["b"] - eta * np.asarray(gb)}
            for layer, gw, gb in zip(params["layers"], dW, db, strict=True)
        ]
    }


def unit_roundoff(ck: Check) -> float:
    """The unit roundoff of the implementation's dtype, read off how ``ck.input`` rounds 1/3."""
    third = float(np.asarray(ck.input(np.array([1.0 / 3.0])))[0])
    return max(abs(third - 1.0 / 3.0) * 3.0, float(np.finfo(np.float64).eps) / 2.0)


def flat(arrays: list) -> np.ndarray:
    """Concatenate a list of arrays into one vector (a point of parameter space)."""
    return np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays])


# ---------------------------------------------------------------------------------------------
# The digit network.
# ---------------------------------------------------------------------------------------------

# The notes' digit network: 28x28 = 784 input pixels, two hidden layers of 16, 10 output digits.
DIGIT_LAYERS = (784, 16, 16, 10)
# Each neuron of a layer has one weight per neuron of the previous layer and one bias
# (Deep Learning ch.1: "784 weights per neuron, and 1 bias per neuron" for the first hidden layer):
#   (784*16 + 16) + (16*16 + 16) + (16*10 + 10) = 12560 + 272 + 170 = 13,002.
DIGIT_PARAMETER_COUNT = 13_002


@clause(
    "MLP-PARAMS",
    "The 784-16-16-10 digit network MUST have 13,002 weights and biases, MUST output 10 "
    "activations in [0, 1], and its prediction MUST be the most activated output neuron.",
    source=Source(DEEP_LEARNING, DL_CH1),
    needs=("MLP | init_params",),
    topic=TOPIC,
    cost="network",
    note="An MLP without init_params of its own runs on the oracle's initial parameters.",
)
def mlp_params(impl: Any, ck: Check) -> None:
    config = preset("mnist_3b1b")
    seed = ck.draw(st.integers(0, 2**16), "seed")
    if ck.offers("init_params"):
        params = impl.init_params(config, seed=seed)
        layers = params["layers"]
        shapes = [(np.shape(layer["W"]), np.shape(layer["b"])) for layer in layers]
        pairs = zip(DIGIT_LAYERS[:-1], DIGIT_LAYERS[1:], strict=True)
        expected_shapes = [((n_out, n_in), (n_out,)) for n_in, n_out in pairs]
        ck.equal(shapes, expected_shapes, what="[(W.shape, b.shape) for each layer]")
        count = sum(int(np.size(layer["W"]) + np.size(layer["b"])) for layer in layers)
        ck.equal(count, DIGIT_PARAMETER_COUNT, what="number of weights and biases")
    else:
        params = ck.oracle.init_params(config, seed=seed)

    # Pixel intensities are in [0, 1] (0 black, 1 white); a small batch of images.
    n = ck.draw(st.integers(1, 4), "n_images")
    x = draw_array(ck, (n, 784), "pixels", 0.0, 1.0)
    if not ck.offers("MLP"):
        return
    net = impl.MLP(config, rounded_params(ck, params))
    _, activations = net.forward(x)
    out = np.asarray(activations[-1])
    ck.equal(out.shape, (n, 10), what="forward(x)[1][-1].shape")
    ck.that(
        bool(np.all((out >= 0.0) & (out <= 1.0))),
        what="output activations in [0, 1]",
        observed=f"range [{out.min():.6g}, {out.max():.6g}]",
        expected="every activation in [0, 1]",
    )
    predicted = np.asarray(net.predict(x))
    # The prediction is the most activated output; where two outputs tie any of them will do.
    chosen = out[np.arange(n), predicted.astype(int)]
    ck.equal(
        chosen.tolist(),
        out.max(axis=-1).tolist(),
        what="activation of predict(x) vs max activation",
    )


# The activations an MLP config may name (reference/config.py; None: a linear layer), as closed
# forms written out in spec/activations.py.
_SIGMA = {None: lambda z: z, **FORMULAS}


@clause(
    "MLP-FORWARD",
    "MLP.forward(x) MUST return every layer's weighted input z(l) = W(l) a(l-1) + b(l) and every "
    "activation a(l) = sigma(z(l)), from a(0), the input x itself, to the output layer's a(L).",
    source=Source(DEEP_LEARNING, DL_CH1),
    needs=("MLP",),
    topic=TOPIC,
    note="z(l) is the Neural Networks notes' name (section 4) for a layer's weighted sum with its "
    "bias. Each layer is checked against the implementation's own a(l-1) and z(l), in float64: no "
    "reference is involved. Every activation a config names is drawn, and None (linear).",
)
def mlp_forward(impl: Any, ck: Check) -> None:
    sizes = draw_layer_sizes(ck, layers=(1, 3), width=5)
    activation = ck.draw(st.sampled_from(list(_SIGMA)), "activation")
    sigma = _SIGMA[activation]
    params = seeded_mlp_params(ck, sizes)
    n = ck.draw(st.integers(1, 4), "n_examples")
    x = draw_array(ck, (n, sizes[0]), "x")
    config = MLPConfig(layer_sizes=sizes, activation=activation)
    zs, activations = impl.MLP(config, copy_params(params)).forward(x)
    n_layers = len(sizes) - 1
    # Lengths first: a list without a(0), or with an extra entry, shifts every layer by one.
    ck.equal(len(activations), n_layers + 1,
             what=f"len(forward(x)[1]) of a {n_layers}-layer network (a(0) = x, then a(1)..a(L))")
    ck.equal(len(zs), n_layers, what=f"len(forward(x)[0]) of a {n_layers}-layer network (z(1)..z(L))")
    ck.equal(np.asarray(activations[0], dtype=np.float64), x, what="forward(x)[1][0] = a(0), the input x")
    for l, layer in enumerate(params["layers"], start=1):
        W, b = layer["W"], layer["b"]
        a_prev = np.asarray(activations[l - 1], dtype=np.float64)
        z = np.asarray(zs[l - 1], dtype=np.float64)
        a = np.asarray(activations[l], dtype=np.float64)
        ck.equal(z.shape, (n, sizes[l]), what=f"forward(x)[0][{l - 1}].shape, z({l})")
        ck.equal(a.shape, (n, sizes[l]), what=f"forward(x)[1][{l}].shape, a({l})")
        # z_j(l) = sum_k W_jk(l) a_k(l-1) + b_j(l), a batch of rows; its rounding is that of the
        # terms' magnitudes, the sum's condition where it cancels.
        terms = np.abs(a_prev) @ np.abs(W).T + np.abs(b)
        ck.close(z, a_prev @ W.T + b, output="reduction", condition=max(1.0, float(terms.max())),
                 what=f"z({l}) = W({l}) a({l - 1}) + b({l}): forward(x)[0][{l - 1}] vs W({l}) "
                      f"forward(x)[1][{l - 1}] + b({l})")
        ck.close(a, sigma(z), output="elementwise",
                 what=f"a({l}) = {activation or 'identity'}(z({l})): forward(x)[1][{l}] vs "
                      f"{activation or 'identity'}(forward(x)[0][{l - 1}])")


# ---------------------------------------------------------------------------------------------
# Linear regression, the documents' simplest learner.
# ---------------------------------------------------------------------------------------------

LINEAR_NEURON = MLPConfig(layer_sizes=(1, 1), activation=None)


@clause(
    "LINREG-GD",
    "A single linear neuron (slope and intercept) trained by gradient descent on the squared error "
    "MUST converge to the least-squares line.",
    source=Source(DEEP_LEARNING, DL_CH1),
    needs=("MLP.train",),
    topic=TOPIC,
    cost="network",
)
def linreg_gd(impl: Any, ck: Check) -> None:
    n = ck.draw(st.integers(3, 12), "n_points")
    xs = draw_array(ck, (n, 1), "x", -1.0, 1.0)
    ys = draw_array(ck, (n, 1), "y", -2.0, 2.0)
    m1, m2 = float(xs.mean()), float((xs**2).mean())
    variance = m2 - m1**2
    # A line is only determined by points that are spread out; keep the problem well conditioned.
    if variance < 0.1:
        xs = ck.input(np.linspace(-1.0, 1.0, n).reshape(n, 1))
        m1, m2 = float(xs.mean()), float((xs**2).mean())
    # Least squares: the line minimising sum (w x + b - y)^2, by numpy.linalg.lstsq.
    design = np.hstack([xs, np.ones_like(xs)])
    (slope, intercept), *_ = np.linalg.lstsq(design, ys[:, 0], rcond=None)

    # The cost C(w, b) = mean_i (w x_i + b - y_i)^2 has the constant Hessian
    # H = 2 [[m2, m1], [m1, 1]]. Gradient descent with eta = 1 / lambda_max(H) contracts the error
    # by (1 - lambda_min / lambda_max)
    # per step; run enough full-batch epochs to shrink the initial error by a factor 1e-13.
    hessian = 2.0 * np.array([[m2, m1], [m1, 1.0]])
    lam_min, lam_max = np.linalg.eigvalsh(hessian)
    eta = 1.0 / lam_max
    epochs = math.ceil(math.log(1e-13) / math.log(1.0 - lam_min / lam_max))
    ck.note("epochs", epochs)

    params = {"layers": [{"W": np.zeros((1, 1)), "b": np.zeros((1,))}]}
    net = impl.MLP(LINEAR_NEURON, params)
    net.train(xs, ys, epochs=epochs, batch_size=n, eta=eta, seed=0)
    # Read the learned line through the neuron itself: a(0) = b, a(1) = w + b.
    _, activations = net.forward(np.array([[0.0], [1.0]]))
    a = np.asarray(activations[-1])[:, 0]
    learned = np.array([a[1] - a[0], a[0]])
    ck.close(
        learned,
        np.array([slope, intercept]),
        output="reduction",
        what="(slope, intercept) after GD",
    )


# ---------------------------------------------------------------------------------------------
# The cost.
# ---------------------------------------------------------------------------------------------


@clause(
    "COST-SQ",
    "The cost of one example MUST be the sum over output neurons of the squared differences "
    "(non-negative, zero exactly when output equals target), and the cost of a data set MUST be "
    "the mean over its examples.",
    source=Source(NEURAL_NETWORKS, NN_COST),
    needs=("squared_error_cost | MLP",),
    topic=TOPIC,
    errata=(COST_ERRATUM,),
)
def cost_sq(impl: Any, ck: Check) -> None:
    n_out = ck.draw(st.integers(1, 10), "n_outputs")
    n = ck.draw(st.integers(1, 6), "n_examples")
    a = draw_array(ck, (n, n_out), "a", 0.0, 1.0)
    y = draw_array(ck, (n, n_out), "y", 0.0, 1.0)
    if ck.offers("squared_error_cost"):
        _squared_error_cost(impl, ck, a, y)

    # The cost of a small network on a data set is the mean of the per-example costs of its outputs.
    sizes = (ck.draw(st.integers(1, 4), "n_in"), 3, n_out)
    params = seeded_mlp_params(ck, sizes)
    x = draw_array(ck, (n, sizes[0]), "x")
    if not ck.offers("MLP"):
        return
    net = impl.MLP(MLPConfig(layer_sizes=sizes, activation="sigmoid"), params)
    _, activations = net.forward(x)
    out = np.asarray(activations[-1])
    ck.close(
        float(net.cost(x, y)),
        float(((out - y) ** 2).sum(axis=-1).mean()),
        output="reduction",
        what="MLP.cost(x, y) = mean_i sum_j (a_ij - y_ij)^2",
    )


def _squared_error_cost(impl: Any, ck: Check, a: np.ndarray, y: np.ndarray) -> None:
    """COST-SQ's part on one example's cost: the sum of squares, non-negative, zero iff a = y."""
    n, n_out = a.shape
    cost = np.asarray(impl.squared_error_cost(a, y))
    ck.equal(cost.shape, (n,), what="squared_error_cost(a, y).shape")
    # C0 = sum_j (a_j - y_j)^2 ...
    ck.close(cost, ((a - y) ** 2).sum(axis=-1), output="reduction", what="sum_j (a_j - y_j)^2")
    # ... which is n_outputs times the documents' "mean squared error" (the erratum).
    ck.close(
        cost / n_out,
        ((a - y) ** 2).mean(axis=-1),
        output="reduction",
        what="cost / n_outputs = MSE",
    )
    ck.that(bool(np.all(cost >= 0.0)), what="cost >= 0", observed=cost.tolist(), expected=">= 0")
    zero = np.asarray(impl.squared_error_cost(a, a))
    ck.equal(zero.tolist(), [0.0] * n, what="squared_error_cost(a, a)")
    # Zero only where output equals target: demanded where some squared difference is at least
    # twice the format's smallest positive value (a smaller one may round to 0, as it must in a
    # kernel that squares in the format: (1.2e-7)^2 underflows in float16).
    smallest = precision.spacing(impl, 0.0)
    differs = np.max((a - y) ** 2, axis=-1) >= 2 * smallest
    ck.that(
        bool(np.all(cost[differs] > 0.0)),
        what="cost > 0 where output != target",
        observed=cost[differs].tolist(),
        expected="> 0",
    )


# ---------------------------------------------------------------------------------------------
# Gradient descent and its stochastic variant.
# ---------------------------------------------------------------------------------------------


def _small_mlp(ck: Check) -> tuple[MLPConfig, dict, np.ndarray, np.ndarray]:
    """A drawn small sigmoid network and data set (targets in [0, 1] like one-hot digits)."""
    sizes = draw_layer_sizes(ck, layers=(2, 3), width=4)
    params = seeded_mlp_params(ck, sizes)
    n = ck.draw(st.integers(1, 6), "n_examples")
    x = draw_array(ck, (n, sizes[0]), "x")
    y = draw_array(ck, (n, sizes[-1]), "y", 0.0, 1.0)
    return MLPConfig(layer_sizes=sizes, activation="sigmoid"), params, x, y


@clause(
    "GD-DESCENT",
    "For a non-zero gradient, a small enough step against the gradient MUST lower the cost, by "
    "eta |grad|^2 to first order.",
    source=Source(NEURAL_NETWORKS, NN_GD),
    needs=("MLP.gradients",),
    topic=TOPIC,
)
def gd_descent(impl: Any, ck: Check) -> None:
    config, params, x, y = _small_mlp(ck)
    net = impl.MLP(config, params)
    dW, db = net.gradients(x, y)
    g = flat(list(dW) + list(db))
    norm = float(np.sqrt(g @ g))
    if norm < 1e-2:
        # Near a flat spot the first-order statement is drowned by rounding; nothing to check here.
        ck.note("skipped", f"|grad| = {norm:.3g}")
        return
    cost = float(net.cost(x, y))
    # Steps of length s and s/2 in parameter space along -g. With D(s) the symmetric difference
    # quotient (C(theta - s g/|g|) - C(theta + s g/|g|)) / 2s = |g| + s^2 c3 + O(s^4) (Taylor), the
    # Richardson combination (4 D(s/2) - D(s)) / 3 = |g| + O(s^4). s = u^(1/5) for the unit roundoff u
    # of the implementation's dtype balances that O(s^4) against the O(u C / s) rounding of the
    # costs: ~1e-13 relative in float64, ~3e-6 x C/|g| in float32.
    u = unit_roundoff(ck)
    length = u ** (1.0 / 5.0)

    def cost_at(step: float) -> float:
        return float(impl.MLP(config, step_params(params, dW, db, step / norm)).cost(x, y))

    # A small enough step lowers the cost: at length sqrt(u) the decrease sqrt(u) |g| dominates
    # both the second-order term u g'Hg / 2|g|^2 and the rounding of the costs (~u C), as long as
    # it spans several spacings of the format at C. In float16/bfloat16 a gentle slope does not
    # (sqrt(u) = 1/16 in bfloat16: a decrease of |g| / 16 next to spacings of C / 128), and then
    # the two costs may round to the same value: only the Richardson slope below is checked.
    stepped = cost_at(math.sqrt(u))
    resolvable = math.sqrt(u) * norm > 8 * precision.spacing(impl, cost)
    ck.note("descent resolvable in the format", resolvable)
    if resolvable:
        ck.that(
            stepped < cost,
            what="C(theta - eta g) < C(theta)",
            observed=f"{stepped!r} vs C(theta) = {cost!r}",
            expected="a lower cost",
        )
    lower, upper = cost_at(length), cost_at(-length)
    half_lower, half_upper = cost_at(length / 2), cost_at(-length / 2)
    d_full = (upper - lower) / (2.0 * length)
    d_half = (half_upper - half_lower) / length
    # The first-order decrease per unit step along -g/|g| is the slope |g| = |g|^2 / |g|. The costs'
    # rounding (~u C each) enters the quotients divided by the step: relative to the slope it is
    # amplified by C / (length |g|), the condition of this estimate (large in float16 on a gentle
    # slope: length = u^(1/5) is only 0.22 there). What it amplifies is the rounding of a cost, a
    # sum: the "reduction" row, not the wider "gradient" one, which times the condition let a
    # gradient halved by mistake pass in bfloat16.
    ck.close(
        (4.0 * d_half - d_full) / 3.0 / norm,
        1.0,
        output="reduction",
        what="first-order decrease along -g (Richardson) / |g|^2 per unit eta",
        condition=max(1.0, abs(cost) / (length * norm)),
    )


@clause(
    "GD-STEP",
    "One gradient-descent step on a batch, MLP.sgd_step(x, y, eta), MUST move every weight and "
    "bias against the gradient of the batch's cost, to theta - eta dC/dtheta.",
    source=Source(NEURAL_NETWORKS, NN_GD),
    needs=("MLP.gradients", "MLP.sgd_step"),
    topic=TOPIC,
    note="The step is read through the network's outputs on the batch, against a network built "
    "from theta - eta dC/dtheta with the implementation's own gradients (checked by BP-FULL), so "
    "no reference is involved.",
)
def gd_step(impl: Any, ck: Check) -> None:
    config, params, x, y = _small_mlp(ck)
    eta = ck.draw(finite(0.05, 2.0), "eta")
    dW, db = impl.MLP(config, copy_params(params)).gradients(x, y)
    net = impl.MLP(config, copy_params(params))
    net.sgd_step(x, y, eta)
    stepped = impl.MLP(config, rounded_params(ck, step_params(params, dW, db, eta)))
    # The outputs on the batch itself: to first order a step moves the cost by -eta |grad|^2, so
    # a non-zero gradient moves them (one that climbs, or does not move, lands 2 eta grad or
    # eta grad away from theta - eta grad).
    ck.close(
        np.asarray(net.forward(x)[1][-1]),
        np.asarray(stepped.forward(x)[1][-1]),
        output="gradient",
        what=f"outputs on x after sgd_step(x, y, eta={eta:.4g}) vs those of theta - eta dC/dtheta",
    )


# A data set of this many examples: a sum of per-example gradients accumulated in a narrow format
# stops growing once the addends fall below half its spacing (float16: 2048 equal addends;
# bfloat16: 256), so the average over 4096 comes out half of what it is, or less.
LARGE_DATA_SET = 4096


def _named_gradients(dW: Any, db: Any) -> dict[str, np.ndarray]:
    """dC/dW(l) and dC/db(l) by name (layers from 1), so that a failure says which."""
    named = {f"dC/dW({l + 1})": np.asarray(g) for l, g in enumerate(dW)}
    return named | {f"dC/db({l + 1})": np.asarray(g) for l, g in enumerate(db)}


def _large_data_set(
    impl: Any, ck: Check, config: MLPConfig, params: dict, x: np.ndarray, y: np.ndarray, per_example: list
) -> None:
    """GD-AVERAGE over thousands of examples: the drawn ones, each repeated, whose average gradient
    is the average of their own. Two routes through the implementation (rule 4: below float64,
    torch_ref's gap between the same routes measures what rounding alone costs, such as deltas
    scaled by 1/n going subnormal in float16), so no oracle is asked.

    Each gradient is compared in units of its largest per-example entry: a sum's rounding is
    relative to its addends, and the closed-form tolerance's absolute part assumes values of order
    one, where the average gradient of a sigmoid network is of order 0.1 (half of it lost would
    be within 32 float16 ulps of 1)."""
    repeats = -(-LARGE_DATA_SET // len(x))
    X, Y = np.tile(x, (repeats, 1)), np.tile(y, (repeats, 1))

    def each_example(m: Any) -> list[dict[str, np.ndarray]]:
        net = m.MLP(config, copy_params(params))
        return [_named_gradients(*net.gradients(x[i : i + 1], y[i : i + 1])) for i in range(len(x))]

    mine = [_named_gradients(*g) for g in per_example]  # the implementation's, computed by the caller
    # no unit below smallest normal / eps, whose spacing is a subnormal's: the tolerance's absolute
    # part never asks for less than 32 smallest normals (a float64 x of 2e-313 makes dC/dW 5e-315)
    least = precision.smallest_normal(impl) / precision.eps(impl)
    units = {name: max(float(np.max(np.abs([g[name] for g in mine]))), least) for name in mine[0]}

    def whole(m: Any) -> dict[str, np.ndarray]:
        named = _named_gradients(*m.MLP(config, copy_params(params)).gradients(X, Y))
        return {name: g / units.get(name, 1.0) for name, g in named.items()}

    def averaged(m: Any) -> dict[str, np.ndarray]:
        each = mine if m is impl else each_example(m)  # torch_ref's, for the baseline's gap
        return {name: np.mean([g[name] for g in each], axis=0) / units[name] for name in each[0]}

    ck.close_routes(
        whole, averaged, output="gradient",
        what=f"MLP.gradients of {len(X)} examples (the {len(x)} drawn, {repeats} times each) "
        f"vs mean_i dC_i/dtheta, in units of the largest |dC_i/dtheta| "
        f"({', '.join(f'{name} {unit:.3g}' for name, unit in units.items())})",
    )


@clause(
    "GD-AVERAGE",
    "The gradient of the cost over a data set MUST be the average of the per-example gradients.",
    source=Source(NEURAL_NETWORKS, NN_BP_GD),
    needs=("MLP.gradients",),
    topic=TOPIC,
    note="Also over 4096 examples (the drawn ones, repeated), in units of the largest per-example "
    "gradient: a per-example sum kept in float16 stops growing past 2048 equal addends.",
)
def gd_average(impl: Any, ck: Check) -> None:
    config, params, x, y = _small_mlp(ck)
    net = impl.MLP(config, params)
    dW, db = net.gradients(x, y)
    per_example = [net.gradients(x[i : i + 1], y[i : i + 1]) for i in range(len(x))]
    for l in range(len(dW)):
        ck.close(
            np.asarray(dW[l]),
            np.mean([np.asarray(g[0][l]) for g in per_example], axis=0),
            output="gradient",
            what=f"dC/dW({l + 1}) vs mean_i dC_i/dW({l + 1})",
        )
        ck.close(
            np.asarray(db[l]),
            np.mean([np.asarray(g[1][l]) for g in per_example], axis=0),
            output="gradient",
            what=f"dC/db({l + 1}) vs mean_i dC_i/db({l + 1})",
        )
    # And over thousands of examples, where a sum kept in a narrow format stalls
    _large_data_set(impl, ck, config, params, x, y, per_example)


# One epoch of SGD on N examples in minibatches of B is checked against the SGD trajectory of every
# ordered partition of the examples into minibatches of B, the last one smaller when B does not
# divide N (N mod B examples). The trajectories share prefixes: they form a tree with one gradient
# evaluation per node, and the (N, B) drawn are those with at most this many nodes.
MAX_TRAJECTORY_NODES = 72


def trajectory_nodes(n: int, batch_size: int) -> int:
    """Gradient evaluations to replay every ordered partition of ``n`` examples into minibatches.

    Level k of the tree holds one node per choice of the first k minibatches (sets: the order
    inside a minibatch is moot, its gradient is a mean): C(n, B) C(n - B, B) ... prefixes.
    """
    total, prefixes, remaining = 0, 1, n
    while remaining > 0:
        size = min(batch_size, remaining)
        prefixes *= math.comb(remaining, size)
        total += prefixes
        remaining -= size
    return total


# (N, B) pairs, simplest first (Hypothesis shrinks towards the first): every B from 1 to N,
# dividing N or not.
EPOCH_CASES = sorted(
    ((n, b) for n in range(1, 8) for b in range(1, n + 1)
     if trajectory_nodes(n, b) <= MAX_TRAJECTORY_NODES),
    key=lambda case: (case[0], -case[1]),
)

Batches = tuple[tuple[int, ...], ...]


def epoch_trajectories(
    impl: Any, ck: Check, config: MLPConfig, params: dict, data: tuple[np.ndarray, np.ndarray],
    batch_size: int, eta: float,
) -> dict[Batches, dict]:
    """The parameters after one epoch of SGD for every ordered partition into minibatches.

    Keys are the minibatches in the order they are stepped on (each a sorted tuple of example
    indices; full minibatches of ``batch_size``, then the smaller remainder); values are the
    parameters after ``theta <- theta - eta * grad_batch(theta)`` on each in turn, with
    ``impl``'s ``MLP.gradients`` (the implementation's own, or the oracle's) and the parameters
    rounded to the implementation's dtype after each step, as its training stores them.
    """
    x, y = data
    leaves: dict[Batches, dict] = {}

    def walk(theta: dict, remaining: tuple[int, ...], batches: Batches) -> None:
        if not remaining:
            leaves[batches] = theta
            return
        for batch in itertools.combinations(remaining, min(batch_size, len(remaining))):
            rows = list(batch)
            dW, db = impl.MLP(config, theta).gradients(x[rows], y[rows])
            stepped = rounded_params(ck, step_params(theta, dW, db, eta))
            walk(stepped, tuple(i for i in remaining if i not in batch), (*batches, batch))

    walk(params, tuple(range(len(x))), ())
    return leaves


def documented_batches(n: int, batch_size: int, seed: int) -> Batches:
    """The minibatches of numpy_ref's first epoch: ``default_rng(seed).permutation(n)`` cut into
    consecutive slices of ``batch_size`` (PARAMETERS.md, ``MLP.train``)."""
    order = np.random.default_rng(seed).permutation(n)
    return tuple(tuple(sorted(int(i) for i in order[s : s + batch_size]))
                 for s in range(0, n, batch_size))


@clause(
    "SGD-PARTITION",
    "Averaging the minibatch gradients over an equal partition of the data MUST give the "
    "full-batch gradient, and one epoch of stochastic gradient descent MUST take one "
    "gradient-descent step per minibatch of a partition of the data shuffled anew each epoch and "
    "determined by the seed (the same seed, the same training), every example in exactly one "
    "minibatch and the last minibatch smaller when the batch size does not divide the number of "
    "examples.",
    source=Source(NEURAL_NETWORKS, NN_SGD),
    needs=("MLP.gradients",),
    uses=("MLP.train",),
    topic=TOPIC,
    note="The epoch is matched against every ordered partition, not only numpy_ref's "
         "default_rng(seed) order (PARAMETERS.md), which PyTorch's own training loop "
         "(torch.randperm) does not follow; the report notes which order matched. 'Shuffled "
         "anew' is checked as randomness, whatever the generator: over 13 seeds the first "
         "epoch's ordered partition is not always the same one, and the second epoch's is not "
         "always the first's (not at float16 or bfloat16, which do not resolve the orders). "
         "'Determined by the seed': training again from the same parameters with the same seed "
         "ends at the same outputs (a loop that shuffles with the unseeded global "
         "np.random.permutation does not). The epoch trains first on targets in [3, 4], beyond the "
         "sigmoid's reach, where gradients have norms above 1: a loop that clips them (nanoGPT's "
         "grad_clip, Keras' clipnorm) takes shorter steps than SGD.",
)
def sgd_partition(impl: Any, ck: Check) -> None:
    sizes = draw_layer_sizes(ck, layers=(2, 3), width=4)
    config = MLPConfig(layer_sizes=sizes, activation="sigmoid")
    params = seeded_mlp_params(ck, sizes)
    batch_size = ck.draw(st.integers(1, 3), "batch_size")
    n_batches = ck.draw(st.integers(1, 3), "n_batches")
    n = batch_size * n_batches
    x = draw_array(ck, (n, sizes[0]), "x")
    y = draw_array(ck, (n, sizes[-1]), "y", 0.0, 1.0)
    order = np.asarray(ck.draw(st.permutations(list(range(n))), "partition order"))

    net = impl.MLP(config, params)
    dW, db = net.gradients(x, y)
    batch_grads = [net.gradients(x[idx], y[idx]) for idx in np.split(order, n_batches)]
    for l in range(len(dW)):
        for name, index, full in (("dW", 0, dW), ("db", 1, db)):
            mean = np.mean([np.asarray(g[index][l]) for g in batch_grads], axis=0)
            try:
                ck.close(mean, np.asarray(full[l]), output="gradient",
                         what=f"mean over minibatches of dC/{name}({l + 1}) vs full batch")
            except ClauseFailure as failure:
                # both sides are the implementation's own gradients: full = n_batches x mean is a
                # gradient summed over the examples where the documents average it
                scale = float(np.sum(np.abs(full[l])) / max(float(np.sum(np.abs(mean))), 1e-300))
                if n_batches == 1 or abs(scale - n_batches) > 0.01 * n_batches:
                    raise
                raise failure.with_detail(
                    f"the full batch's gradient is {n_batches} (the number of minibatches) times their "
                    "mean: gradients summed over the examples, where the cost is their mean (GD-AVERAGE)"
                ) from None
    if ck.offers("MLP.train"):
        _sgd_epoch(impl, ck, config, params)


def _sgd_epoch(impl: Any, ck: Check, config: MLPConfig, params: dict) -> None:
    """SGD-PARTITION's part on ``MLP.train``: one epoch is the SGD trajectory of some ordered
    partition into minibatches of B, the remainder last (with B = N: one gradient-descent step)."""
    sizes = config.layer_sizes
    n, batch_size = ck.draw(st.sampled_from(EPOCH_CASES), "(N, batch_size) of the epoch")
    x = draw_array(ck, (n, sizes[0]), "training x")
    # Targets beyond the sigmoid's reach first, in [3, 4]: gradients of global norm 2.5 (median;
    # 5th percentile 0.7), where SGD's steps are long. A loop that clips the norm to 1
    # (nanoGPT's grad_clip, clip_grad_norm_, Keras' clipnorm) shortens them; with targets in
    # (0, 1) the norms stay below 0.6 and clipping never acts.
    lowest = ck.draw(st.sampled_from([3.0, 0.0]), "lowest training target")
    y = draw_array(ck, (n, sizes[-1]), "training y", lowest, lowest + 1.0)
    eta = ck.draw(finite(0.05, 2.0), "eta")
    seed = ck.draw(st.integers(0, 100), "seed")
    trained = impl.MLP(config, copy_params(params))
    trained.train(x, y, epochs=1, batch_size=batch_size, eta=eta, seed=seed)
    probe = draw_array(ck, (3, sizes[0]), "probe inputs")
    observed = np.asarray(trained.forward(probe)[1][-1])

    # Every trajectory the sentence allows, and the one nearest to what train() did: a training
    # loop that drops the smaller last minibatch (DataLoader's drop_last), or an example, or takes
    # one minibatch twice ends near none of them (one step of eta * grad away at least).
    leaves = epoch_trajectories(impl, ck, config, params, (x, y), batch_size, eta)
    distance = {
        batches: float(np.max(np.abs(observed - ck.oracle.MLP(config, theta).forward(probe)[1][-1])))
        for batches, theta in leaves.items()
    }
    documented = documented_batches(n, batch_size, seed)
    nearest = min(distance, key=lambda batches: (distance[batches], batches != documented))
    ck.note("epoch minibatches (nearest)", [list(b) for b in nearest])
    ck.note("numpy_ref's default_rng(seed) order", nearest == documented)
    ck.close(
        observed,
        np.asarray(impl.MLP(config, leaves[nearest]).forward(probe)[1][-1]),
        output="gradient",
        what=f"outputs after train(epochs=1, batch_size={batch_size}) on {n} examples vs one "
             f"step per minibatch of the nearest partition {[list(b) for b in nearest]} "
             f"(of {len(leaves)})",
    )
    # The same seed, the same training: every partition of this epoch is a different trajectory,
    # and a loop whose shuffle ignores the seed takes another on a second run (unless the epoch
    # has one ordered partition only: B = N).
    _same_seed_again(impl, ck, config, params, (x, y), probe, observed,
                     epochs=1, batch_size=batch_size, eta=eta, seed=seed)
    # The shuffle check costs more than the rest of the clause: it runs in some of the examples
    # (about half, Hypothesis favouring 0), always in the first (every run starts from the
    # simplest draw, 0). At float16 and bfloat16 the orders' trajectories lie closer together than
    # the format resolves (identified runs: 5% at float16, none at bfloat16): it does not run.
    if precision.low_precision(impl):
        ck.note("shuffle check", f"not run at {precision.dtype_of(impl)} (orders not resolved)")
    elif ck.draw(st.integers(0, 3), "shuffle check (0: run it)") == 0:
        _shuffled_each_epoch(impl, ck, config, params)


def _same_seed_again(
    impl: Any, ck: Check, config: MLPConfig, params: dict, data: tuple[np.ndarray, np.ndarray],
    probe: np.ndarray, observed: np.ndarray, *, epochs: int, batch_size: int, eta: float, seed: int,
) -> None:
    """SGD-PARTITION's part on the seed: ``train`` run again from ``params`` with the same
    arguments and seed ends where the first run did (``observed``: its outputs on ``probe``).

    A deterministic loop repeats itself bit for bit; the tolerance, that of a sum, only leaves
    room for a kernel whose reductions are ordered differently from run to run (atomics on a GPU).
    A loop that draws its order from an unseeded generator lands on another partition's
    trajectory, a step of eta * grad away."""
    x, y = data
    again = impl.MLP(config, copy_params(params))
    again.train(x, y, epochs=epochs, batch_size=batch_size, eta=eta, seed=seed)
    ck.close(
        np.asarray(again.forward(probe)[1][-1]),
        observed,
        output="reduction",
        what=f"outputs after a second train(epochs={epochs}, batch_size={batch_size}, seed={seed}) "
             f"on {len(x)} examples from the same parameters vs the first run's (the same seed: "
             f"the same minibatches)",
    )


# "Shuffled anew each epoch" is a statement about randomness, and any generator may do the
# shuffling (numpy_ref's default_rng, torch.randperm, Python's random), so the check asks only what
# every uniform shuffle gives: the epoch's ordered partition varies. N = 4 examples in minibatches
# of B = 2 have P = C(4, 2) = 6 ordered partitions (the first minibatch fixes the second), each the
# image of 2! 2! = 4 of the 4! permutations, so a uniform shuffle picks each with probability 1/6,
# independently for every seed and every epoch. With K seeds of train(epochs=2), a correct
# training loop fails
#   - "the same first-epoch partition for all K seeds" with probability 6 * 6^-K = 6^-(K - 1),
#   - "the second epoch repeats the first for all K seeds" with probability 6^-K,
# together 7 * 6^-K: K = 12 gives 3.2e-9, K = 13 gives 7 / 1.31e10 = 5.4e-10 < 1e-9. A loop that
# never shuffles (DataLoader(shuffle=False)) fails both; one that draws a single permutation for
# all epochs (or re-seeds default_rng(seed) inside the epoch loop) fails the second, on every
# example. Each run's (first, second) partitions are identified among the 6 x 6 two-epoch
# trajectories, replayed once per example (12 + 6 x 12 gradient evaluations).
SHUFFLE_CASE = (4, 2)
SHUFFLE_SEEDS = 13
# A run counts as identified only when the second nearest replayed trajectory is DECISIVE_RATIO
# times farther from its trained outputs than the nearest, and than NOISE_FLOOR machine epsilons
# (the outputs are sigmoids, below 1): a misidentified run would then miss its own trajectory by
# 16 eps at least, where torch_ref's float32 runs miss it by 1 eps at most (1800 runs measured).
# Otherwise (trajectories closer together than the rounding, or
# coinciding) the seed decides nothing, and neither part can fail unless every seed is identified:
# undecided seeds never make a correct loop look repetitive.
DECISIVE_RATIO = 4.0
NOISE_FLOOR = 4.0


def _identified(
    observed: np.ndarray, keys: list[Batches], outputs: np.ndarray, floor: float
) -> Batches | None:
    """The replayed trajectory (``keys[i]``, with outputs ``outputs[i]``) that ``observed``
    matches decisively, else None: the second nearest is DECISIVE_RATIO times farther than the
    nearest, and than ``floor`` (the rounding noise of the implementation's outputs)."""
    distance = np.max(np.abs(outputs - observed).reshape(len(keys), -1), axis=1)
    nearest, second = np.argsort(distance)[:2]
    decisive = distance[second] > DECISIVE_RATIO * max(float(distance[nearest]), floor)
    return keys[nearest] if decisive else None


def _shuffled_each_epoch(impl: Any, ck: Check, config: MLPConfig, params: dict) -> None:
    """SGD-PARTITION's part on the shuffle: over seeds of ``train(epochs=2)`` the first epoch's
    ordered partition is not always one and the same, and the second's not always the first's."""
    sizes = config.layer_sizes
    n, batch_size = SHUFFLE_CASE
    # Generic data (distinct examples: distinct orders give distinct trajectories), a large step.
    rng = np.random.default_rng(ck.draw(st.integers(0, 2**16), "shuffle check: data seed"))
    x = ck.input(rng.uniform(-1.0, 1.0, (n, sizes[0])))
    y = ck.input(rng.uniform(0.0, 1.0, (n, sizes[-1])))
    probe = ck.input(rng.uniform(-1.0, 1.0, (4, sizes[0])))
    eta = 2.0
    first_seed = ck.draw(st.integers(0, 1000), "shuffle check: first seed")
    seeds = f"seeds {first_seed}..{first_seed + SHUFFLE_SEEDS - 1}"

    # The order only has to be told apart here (how close the epoch is to its trajectory is judged
    # above, with the implementation's own gradients): the oracle's replay, which costs far less.
    two_epochs: dict[Batches, np.ndarray] = {}
    for first, theta in epoch_trajectories(ck.oracle, ck, config, params, (x, y), batch_size,
                                           eta).items():
        for second, end in epoch_trajectories(ck.oracle, ck, config, theta, (x, y), batch_size,
                                              eta).items():
            two_epochs[(*first, *second)] = np.asarray(
                ck.oracle.MLP(config, end).forward(probe)[1][-1])
    keys, outputs = list(two_epochs), np.stack(list(two_epochs.values()))
    floor = NOISE_FLOOR * precision.eps(impl)
    n_batches = -(-n // batch_size)
    n_orders = round(math.sqrt(len(two_epochs)))

    runs, observed = [], []
    for seed in range(first_seed, first_seed + SHUFFLE_SEEDS):
        net = impl.MLP(config, copy_params(params))
        net.train(x, y, epochs=2, batch_size=batch_size, eta=eta, seed=seed)
        observed.append(np.asarray(net.forward(probe)[1][-1]))
        both = _identified(observed[-1], keys, outputs, floor)
        runs.append(None if both is None else (both[:n_batches], both[n_batches:]))
    # The first seed once more: a loop that shuffles with a generator of its own, not seeded by
    # `seed`, varies as the checks below ask, but takes one of the other 35 two-epoch trajectories.
    _same_seed_again(impl, ck, config, params, (x, y), probe, observed[0],
                     epochs=2, batch_size=batch_size, eta=eta, seed=first_seed)
    decided = [run for run in runs if run is not None]
    firsts = {first for first, _ in decided}
    repeats = sum(first == second for first, second in decided)
    ck.note("shuffle check: runs identified", f"{len(decided)} of {len(runs)}")
    ck.note("shuffle check: distinct first-epoch partitions", len(firsts))
    ck.note("shuffle check: second epoch repeats the first", f"{repeats} of {len(decided)}")
    if len(decided) < len(runs):
        return
    ck.that(
        len(firsts) > 1,
        what=f"first epoch's minibatches of train(epochs=2, batch_size={batch_size}) on {n} "
             f"examples, {seeds}",
        observed=f"the same ordered partition {[list(b) for b in decided[0][0]]} for all "
                 f"{len(decided)} seeds (the data are not shuffled, or not by the seed)",
        expected=f"a shuffled partition that varies with the seed (a uniform shuffle gives one "
                 f"and the same of the {n_orders} ordered partitions for {SHUFFLE_SEEDS} seeds "
                 f"with probability {n_orders}^-{SHUFFLE_SEEDS - 1} = "
                 f"{float(n_orders) ** -(SHUFFLE_SEEDS - 1):.1e})",
    )
    ck.that(
        repeats < len(decided),
        what=f"second epoch's minibatches vs the first's in train(epochs=2, "
             f"batch_size={batch_size}) on {n} examples, {seeds}",
        observed=f"the first epoch's ordered partition again for all {len(decided)} seeds "
                 f"(one order for every epoch: no reshuffle per epoch)",
        expected=f"the data shuffled anew each epoch (a uniform reshuffle repeats the first "
                 f"epoch's partition for all {SHUFFLE_SEEDS} seeds with probability "
                 f"{n_orders}^-{SHUFFLE_SEEDS} = {float(n_orders) ** -SHUFFLE_SEEDS:.1e})",
    )


# ---------------------------------------------------------------------------------------------
# Learning the digits (real data, full network).
# ---------------------------------------------------------------------------------------------

# The notes only ask that the network "performs better"; the foundation recorded what the reference
# reaches with its recorded training recipe, and the clause asks for at least this much.
MIN_DIGITS_ACCURACY = 0.85


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, Y_train one-hot, X_test, y_test labels) of the 784-pixel digits data."""
    from nnspec.reference.data import load_digits_784

    return tuple(load_digits_784())  # type: ignore[return-value]


@clause(
    "LEARN-DIGITS",
    "The 784-16-16-10 sigmoid network trained with minibatch stochastic gradient descent on the "
    "digits data MUST classify at least 85% of held-out digits correctly.",
    source=Source(NEURAL_NETWORKS, NN_SGD),
    needs=("MLP.train",),
    topic=TOPIC,
    cost="training",
    hypothesis=False,
    note="Trains with the recipe recorded by the reference (numpy_ref.DIGITS_TRAINING).",
)
def learn_digits(impl: Any, ck: Check) -> None:
    recipe = dict(ck.oracle.DIGITS_TRAINING)
    x_train, y_train, x_test, labels = _digits()
    config = preset("mnist_3b1b")
    # The recipe starts from init_params(config, seed=0) (numpy_ref.DIGITS_TRAINING's comment).
    params = rounded_params(ck, ck.oracle.init_params(config, seed=0))
    net = impl.MLP(config, params)
    net.train(
        ck.input(x_train),
        y_train,
        epochs=recipe["epochs"],
        batch_size=recipe["batch_size"],
        eta=recipe["eta"],
        seed=recipe.get("seed", 0),
    )
    accuracy = float(np.mean(np.asarray(net.predict(ck.input(x_test))) == labels))
    ck.note("held_out_accuracy", accuracy)
    ck.note("recorded_reference_accuracy", getattr(ck.oracle, "DIGITS_HELD_OUT_ACCURACY", None))
    ck.that(
        accuracy >= MIN_DIGITS_ACCURACY,
        what="held-out accuracy after SGD training",
        observed=f"{accuracy:.4f}",
        expected=f">= {MIN_DIGITS_ACCURACY}",
    )


@clause(
    "LEARN-LABELS",
    "After the same number of epochs, a network trained on properly labelled digits SHOULD reach a "
    "lower training cost than the same network trained on randomly permuted labels.",
    source=Source(NEURAL_NETWORKS, NN_GD),
    needs=("MLP.train",),
    topic=TOPIC,
    level="SHOULD",
    cost="training",
    hypothesis=False,
)
def learn_labels(impl: Any, ck: Check) -> None:
    x_train, y_train, _, _ = _digits()
    # A few hundred examples and a few epochs suffice: with true labels the cost falls well below
    # the ~0.9 of predicting the label frequencies, which is all that random labels allow.
    n = min(len(x_train), 400)
    x, y_true = ck.input(x_train[:n]), y_train[:n]
    y_random = y_true[np.random.default_rng(1).permutation(n)]
    config = preset("mnist_3b1b")
    params = rounded_params(ck, mlp_params_from_rng(config.layer_sizes, seed=0))
    costs = {}
    for name, y in (("true", y_true), ("random", y_random)):
        net = impl.MLP(config, copy_params(params))
        net.train(x, y, epochs=4, batch_size=10, eta=3.0, seed=0)
        costs[name] = float(net.cost(x, y))
    ck.note("cost_true_labels", costs["true"])
    ck.note("cost_random_labels", costs["random"])
    ck.that(
        costs["true"] < costs["random"],
        what="training cost with true labels vs permuted labels",
        observed=f"{costs['true']:.4f} vs {costs['random']:.4f}",
        expected="true-label cost lower",
    )


# ---------------------------------------------------------------------------------------------
# Claims that cannot be checked as stated.
# ---------------------------------------------------------------------------------------------

informative(
    "SGD-SPEED",
    "Stochastic gradient descent on minibatches is faster than full-batch gradient descent, though "
    "a little less accurate.",
    source=Source(NEURAL_NETWORKS, NN_SGD),
    topic=TOPIC,
    reason="Speed depends on hardware and data size and 'less accurate' names no measure; what is "
    "checkable (minibatch gradients average to the full gradient) is SGD-PARTITION.",
)

informative(
    "MLP-HIDDEN-PATTERNS",
    "The hidden neurons of the trained digit network do not pick out recognisable strokes or edges "
    "but look like random arrangements of pixels, which is why a random image still gets a "
    "confident guess.",
    source=Source(NEURAL_NETWORKS, NN_GD),
    topic=TOPIC,
    reason="An observation about one trained network's weight images, with no criterion to test.",
)
