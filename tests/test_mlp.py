"""The MLP of both references: hand-written backpropagation, autograd, finite differences, training.

The oracle's ``MLP.gradients`` is backpropagation written out by hand ("Neural Networks (notes on
3Blue1Brown)", "4. Calculus behind Backpropagation"; "Deep Learning (notes on 3Blue1Brown,
chapters 1-6)", "Chapter 4: Backpropagation Calculus"). It is checked three independent ways:
against torch autograd, against central finite differences of the cost, and, for the notes' chain
of one neuron per layer, against the chain rule multiplied out as scalars.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnspec.reference import numpy_ref, torch_ref
from nnspec.reference.config import MLPConfig, preset
from nnspec.reference.numpy_ref import sigmoid, sigmoid_prime

ACTIVATIONS = ["sigmoid", "tanh", "relu", "gelu", "gelu_tanh"]
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def mlp_problems(draw: st.DrawFn) -> tuple[MLPConfig, dict, np.ndarray, np.ndarray]:
    """A small random MLP with random (non-zero) biases, a batch of inputs and targets."""
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=2, max_size=4), label="layer_sizes"))
    config = MLPConfig(layer_sizes=sizes, activation=draw(st.sampled_from(ACTIVATIONS),
                                                          label="activation"))
    seed = draw(st.integers(0, 2**16), label="seed")
    rng = np.random.default_rng(seed)
    params = numpy_ref.init_params(config, seed)
    for layer in params["layers"]:
        layer["b"] = rng.normal(0.0, 0.5, size=layer["b"].shape)
    n = draw(st.integers(1, 4), label="batch")
    floats = st.floats(-2.0, 2.0, allow_nan=False, width=64)
    x = draw(hnp.arrays(np.float64, (n, sizes[0]), elements=floats), label="x")
    y = draw(hnp.arrays(np.float64, (n, sizes[-1]), elements=st.floats(0.0, 1.0)), label="y")
    return config, params, x, y


def _finite_difference(net: numpy_ref.MLP, x: np.ndarray, y: np.ndarray, h: float = 1e-6):
    """Central differences (C(w + h) - C(w - h)) / 2h of the batch-mean cost, every parameter."""
    dW, db = [], []
    for layer in net.params["layers"]:
        grads = {}
        for key in ("W", "b"):
            arr = layer[key]
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + h
                up = net.cost(x, y)
                arr[idx] = old - h
                down = net.cost(x, y)
                arr[idx] = old
                g[idx] = (up - down) / (2 * h)
            grads[key] = g
        dW.append(grads["W"])
        db.append(grads["b"])
    return dW, db


@given(problem=mlp_problems())
def test_backprop_matches_finite_differences(problem) -> None:
    config, params, x, y = problem
    net = numpy_ref.MLP(config, params)
    # ReLU has a kink at 0: a weighted input within h of it makes the difference quotient wrong.
    zs = net.forward(x)[0]
    assume(config.activation != "relu" or min(np.min(np.abs(z)) for z in zs) > 1e-4)
    dW, db = net.gradients(x, y)
    fW, fb = _finite_difference(net, x, y)
    for got, want in zip(dW + db, fW + fb, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@fixture_ok
@given(problem=mlp_problems())
def test_backprop_matches_autograd(problem, device: str) -> None:
    config, params, x, y = problem
    dW, db = numpy_ref.MLP(config, params).gradients(x, y)
    tW, tb = torch_ref.MLP(config, torch_ref.to_torch(params, device=device)).gradients(x, y)
    for got, want in zip(dW + db, tW + tb, strict=True):
        np.testing.assert_allclose(got, want.cpu().numpy(), rtol=1e-11, atol=1e-13)


@given(
    weights=hnp.arrays(np.float64, (3,), elements=st.floats(-2, 2)),
    biases=hnp.arrays(np.float64, (3,), elements=st.floats(-2, 2)),
    x=st.floats(-2, 2),
    y=st.floats(0, 1),
)
def test_one_neuron_per_layer_chain_rule(weights, biases, x, y) -> None:
    """The notes' first derivation: a chain of single neurons, derivatives multiplied as scalars.

    dC0/dw(L) = dz(L)/dw(L) * da(L)/dz(L) * dC0/da(L) = a(L-1) * sigma'(z(L)) * 2 (a(L) - y),
    and one layer further back dC0/da(L-1) = w(L) * sigma'(z(L)) * 2 (a(L) - y).
    """
    config = MLPConfig(layer_sizes=(1, 1, 1, 1), activation="sigmoid")
    params = {"layers": [{"W": np.array([[w]]), "b": np.array([b])}
                         for w, b in zip(weights, biases, strict=True)]}
    a0 = x
    z1 = weights[0] * a0 + biases[0]
    a1 = sigmoid(z1)
    z2 = weights[1] * a1 + biases[1]
    a2 = sigmoid(z2)
    z3 = weights[2] * a2 + biases[2]
    a3 = sigmoid(z3)
    dC_da3 = 2 * (a3 - y)
    dC_dw3 = a2 * sigmoid_prime(z3) * dC_da3
    dC_db3 = sigmoid_prime(z3) * dC_da3
    dC_da2 = weights[2] * sigmoid_prime(z3) * dC_da3
    dC_dw2 = a1 * sigmoid_prime(z2) * dC_da2
    dC_da1 = weights[1] * sigmoid_prime(z2) * dC_da2
    dC_dw1 = a0 * sigmoid_prime(z1) * dC_da1
    dC_db1 = sigmoid_prime(z1) * dC_da1
    dW, db = numpy_ref.MLP(config, params).gradients(np.array([x]), np.array([y]))
    np.testing.assert_allclose([dW[0][0, 0], dW[1][0, 0], dW[2][0, 0]],
                               [dC_dw1, dC_dw2, dC_dw3], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([db[0][0], db[2][0]], [dC_db1, dC_db3], rtol=1e-12, atol=1e-15)


def test_batch_gradient_is_mean_of_example_gradients() -> None:
    """The cost of a batch is the mean of per-example costs, so the gradients average."""
    config = MLPConfig(layer_sizes=(4, 3, 2), activation="sigmoid")
    net = numpy_ref.MLP(config, numpy_ref.init_params(config, seed=3))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 4)), rng.uniform(size=(5, 2))
    dW, db = net.gradients(x, y)
    singles = [net.gradients(x[i], y[i]) for i in range(5)]
    for layer in range(2):
        np.testing.assert_allclose(dW[layer], np.mean([s[0][layer] for s in singles], axis=0),
                                   rtol=1e-12)
        np.testing.assert_allclose(db[layer], np.mean([s[1][layer] for s in singles], axis=0),
                                   rtol=1e-12)


def test_forward_returns_every_layer() -> None:
    config = preset("mnist_3b1b")
    net = numpy_ref.MLP(config, numpy_ref.init_params(config))
    x = np.random.default_rng(0).uniform(size=(3, 784))
    zs, activations = net.forward(x)
    assert [z.shape for z in zs] == [(3, 16), (3, 16), (3, 10)]
    assert [a.shape for a in activations] == [(3, 784), (3, 16), (3, 16), (3, 10)]
    np.testing.assert_array_equal(activations[0], x)
    np.testing.assert_allclose(activations[2], sigmoid(zs[1]), rtol=0, atol=0)
    assert net.predict(x).shape == (3,)


def test_mnist_3b1b_has_13002_parameters() -> None:
    """784*16 + 16*16 + 16*10 weights and 16 + 16 + 10 biases (the notes' count)."""
    params = numpy_ref.init_params(preset("mnist_3b1b"))
    assert [layer["W"].shape for layer in params["layers"]] == [(16, 784), (16, 16), (10, 16)]
    assert sum(layer["W"].size + layer["b"].size for layer in params["layers"]) == 13_002


def test_sgd_step_moves_against_the_gradient() -> None:
    config = MLPConfig(layer_sizes=(3, 4, 2), activation="tanh")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.uniform(size=(6, 2))
    net = numpy_ref.MLP(config, numpy_ref.init_params(config, seed=1))
    before = net.cost(x, y)
    old = [layer["W"].copy() for layer in net.params["layers"]]
    dW, _ = net.gradients(x, y)
    net.sgd_step(x, y, eta=0.01)
    for W_old, g, layer in zip(old, dW, net.params["layers"], strict=True):
        np.testing.assert_allclose(layer["W"], W_old - 0.01 * g, rtol=1e-14)
    assert net.cost(x, y) < before


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    from nnspec.reference.data import load_digits_784

    return load_digits_784()


def test_oracle_and_torch_train_alike_for_one_epoch(digits, device: str) -> None:
    """Same initial weights and minibatch order: one full epoch on the real digits, float64."""
    config = preset("mnist_3b1b")
    hp = numpy_ref.DIGITS_TRAINING
    oracle = numpy_ref.MLP(config, numpy_ref.init_params(config, seed=0))
    mirror = torch_ref.MLP(config, torch_ref.init_params(config, seed=0, device=device))
    kwargs = dict(epochs=1, batch_size=hp["batch_size"], eta=hp["eta"], seed=hp["seed"])
    oracle.train(digits.X_train, digits.Y_train, **kwargs)
    mirror.train(digits.X_train, digits.Y_train, **kwargs)
    moved = np.abs(oracle.params["layers"][0]["W"]
                   - numpy_ref.init_params(config, seed=0)["layers"][0]["W"]).max()
    assert moved > 1e-3  # training did change the weights
    for a, b in zip(oracle.params["layers"], torch_ref.to_numpy(mirror.params)["layers"],
                    strict=True):
        np.testing.assert_allclose(b["W"], a["W"], rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(b["b"], a["b"], rtol=1e-9, atol=1e-11)


def test_minibatch_order_depends_on_the_seed(digits) -> None:
    config = preset("mnist_3b1b")
    X, Y = digits.X_train[:100], digits.Y_train[:100]
    runs = []
    for seed in (0, 0, 1):
        net = numpy_ref.MLP(config, numpy_ref.init_params(config, seed=0))
        net.train(X, Y, epochs=1, batch_size=10, eta=1.0, seed=seed)
        runs.append(net.params["layers"][-1]["W"])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


@pytest.mark.slow
def test_held_out_accuracy_after_training(digits) -> None:
    """mnist_3b1b trained with DIGITS_TRAINING recognises held-out digits (recorded accuracy)."""
    config = preset("mnist_3b1b")
    net = numpy_ref.MLP(config, numpy_ref.init_params(config, seed=0))
    before = np.mean(net.predict(digits.X_test) == digits.y_test)
    net.train(digits.X_train, digits.Y_train, **numpy_ref.DIGITS_TRAINING)
    accuracy = np.mean(net.predict(digits.X_test) == digits.y_test)
    # Recorded value, less one digit of slack for BLAS summation order on other machines.
    assert accuracy >= numpy_ref.DIGITS_HELD_OUT_ACCURACY - 1.0 / len(digits.y_test)
    assert accuracy >= 0.85 > before
    assert torch_ref.DIGITS_HELD_OUT_ACCURACY == numpy_ref.DIGITS_HELD_OUT_ACCURACY
    assert torch_ref.DIGITS_TRAINING == numpy_ref.DIGITS_TRAINING


def test_torch_mlp_runs_in_float32(device: str) -> None:
    """torch_ref keeps the parameters' dtype and device (inputs are cast to them)."""
    config = MLPConfig(layer_sizes=(4, 3, 2))
    net = torch_ref.MLP(config, torch_ref.init_params(config, device=device, dtype=torch.float32))
    x = np.random.default_rng(0).normal(size=(2, 4))
    zs, activations = net.forward(x)
    assert activations[-1].dtype == torch.float32 and activations[-1].device.type == device
    dW, db = net.gradients(x, np.zeros((2, 2)))
    assert dW[0].dtype == torch.float32 and dW[0].shape == (3, 4)
