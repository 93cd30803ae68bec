"""Cost and learning clauses: bundled implementations pass, each clause rejects a realistic bug."""

from __future__ import annotations

import math

import nnspec.spec  # noqa: F401  (registers every clause)
import numpy as np
import pytest
from nnspec.reference import numpy_ref
from nnspec.reference.config import MLPConfig
from nnspec.spec.clause import REGISTRY
from nnspec.verify import patched, run_clause
from nnspec.verify.mutants import CATALOGUE, SameOrderEachEpoch, TrainsWithoutShuffling
from nnspec.verify.mutants import DropsLastBatchMLP as DropsLastBatch

CLAUSES = sorted(cid for cid, c in REGISTRY.items() if c.topic == "cost_learning")
CHEAP = [cid for cid in CLAUSES if REGISTRY[cid].cost != "training"]


def test_the_topic_declares_the_issue_clauses() -> None:
    assert set(CLAUSES) == {
        "MLP-PARAMS", "MLP-FORWARD", "LINREG-GD", "COST-SQ", "GD-DESCENT", "GD-STEP", "GD-AVERAGE",
        "SGD-PARTITION", "LEARN-DIGITS", "LEARN-LABELS",
    }
    assert REGISTRY["COST-SQ"].errata, "the sum-vs-mean erratum belongs next to COST-SQ"


# ------------------------------------------------------------------ planted bugs
class ArgminPredict(numpy_ref.MLP):
    """Picks the least activated output neuron."""

    def predict(self, x):
        return np.argmin(self.forward(x)[1][-1], axis=-1)


class LinearOutput(numpy_ref.MLP):
    """Forgets the sigmoid on the output layer: outputs are the raw weighted sums."""

    def forward(self, x):
        zs, activations = super().forward(x)
        activations[-1] = zs[-1]
        return zs, activations


def init_without_first_biases(config, seed=0):
    """The first hidden layer built without biases (an off-by-one in the layer loop)."""
    params = numpy_ref.init_params(config, seed)
    params["layers"][0]["b"] = params["layers"][0]["b"][:0]
    return params


class HalfGradient(numpy_ref.MLP):
    """Drops the factor 2 of d/da (a - y)^2."""

    def gradients(self, x, y):
        dW, db = super().gradients(x, y)
        return [g / 2 for g in dW], [g / 2 for g in db]


class SummedGradient(numpy_ref.MLP):
    """Sums the per-example gradients instead of averaging them."""

    def gradients(self, x, y):
        dW, db = super().gradients(x, y)
        n = len(np.atleast_2d(x))
        return [g * n for g in dW], [g * n for g in db]


class AscentGradient(numpy_ref.MLP):
    """A sign slip: returns the negative gradient, so a descent step climbs."""

    def gradients(self, x, y):
        dW, db = super().gradients(x, y)
        return [-g for g in dW], [-g for g in db]


class StepNotStored(numpy_ref.MLP):
    """``W = W - eta * dW`` on a local name: the step is computed and thrown away."""

    def sgd_step(self, x, y, eta):
        dW, db = self.gradients(x, y)
        for layer, gW, gb in zip(self.params["layers"], dW, db, strict=True):
            W, b = layer["W"], layer["b"]
            W = W - eta * gW  # noqa: F841 (the slip: a new array, never stored)
            b = b - eta * gb  # noqa: F841


class ZsAfterActivation(numpy_ref.MLP):
    """Appends each layer's activation where its weighted input z(l) belongs."""

    def forward(self, x):
        zs, activations = super().forward(x)
        return activations[1:], activations


class DropsLastExample(numpy_ref.MLP):
    """``range(0, len(X) - 1, batch_size)``-style slip: the last example is never trained on."""

    def train(self, X, Y, *, epochs, batch_size, eta, seed):
        super().train(X[:-1], Y[:-1], epochs=epochs, batch_size=batch_size, eta=eta, seed=seed)


class RepeatsFirstBatch(numpy_ref.MLP):
    """Slices ``order[:batch_size]`` where ``order[start : start + batch_size]`` belongs: the first
    minibatch is stepped on once per minibatch, and the rest of the data is never seen."""

    def train(self, X, Y, *, epochs, batch_size, eta, seed):
        X, Y = np.asarray(X), np.asarray(Y)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for _start in range(0, len(X), batch_size):
                batch = order[:batch_size]  # _start forgotten
                self.sgd_step(X[batch], Y[batch], eta)


class TorchOrder(numpy_ref.MLP):
    """A correct SGD epoch in another shuffled order (torch.randperm's, not default_rng's), the
    smaller minibatch last, as PyTorch's own training loop cuts it (tensor.split)."""

    def train(self, X, Y, *, epochs, batch_size, eta, seed):
        import torch

        X, Y = np.asarray(X), np.asarray(Y)
        generator = torch.Generator().manual_seed(seed + 1)
        for _ in range(epochs):
            for batch in torch.randperm(len(X), generator=generator).split(batch_size):
                self.sgd_step(X[batch.numpy()], Y[batch.numpy()], eta)


class StepOutsideBatchLoop(numpy_ref.MLP):
    """An indentation slip: one SGD step per epoch (the last minibatch), not one per batch."""

    def train(self, X, Y, *, epochs, batch_size, eta, seed):
        X, Y = np.asarray(X), np.asarray(Y)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for start in range(0, len(X), batch_size):
                batch = order[start : start + batch_size]
            self.sgd_step(X[batch], Y[batch], eta)


class ShufflesLabelsSeparately(numpy_ref.MLP):
    """Shuffles inputs and targets with two different permutations: every label is scrambled."""

    def train(self, X, Y, *, epochs, batch_size, eta, seed):
        X, Y = np.asarray(X), np.asarray(Y)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            x_order, y_order = rng.permutation(len(X)), rng.permutation(len(X))
            for start in range(0, len(X), batch_size):
                self.sgd_step(X[x_order[start : start + batch_size]],
                              Y[y_order[start : start + batch_size]], eta)


class MeanSquaredCost(numpy_ref.MLP):
    """The documents' "mean squared error" taken literally: also averaged over output neurons."""

    def cost(self, x, y):
        return float(np.mean((self.forward(x)[1][-1] - np.asarray(y)) ** 2))


def mean_over_outputs_cost(a, y):
    return np.mean((np.asarray(a) - np.asarray(y)) ** 2, axis=-1)


def absolute_cost(a, y):
    return np.sum(np.abs(np.asarray(a) - np.asarray(y)), axis=-1)


BUGS = [
    ("MLP-PARAMS", "argmin-predict", {"MLP": ArgminPredict}),
    ("MLP-PARAMS", "linear-output", {"MLP": LinearOutput}),
    ("MLP-PARAMS", "missing-biases", {"init_params": init_without_first_biases}),
    ("MLP-FORWARD", "linear-output", {"MLP": LinearOutput}),
    ("MLP-FORWARD", "zs-after-activation", {"MLP": ZsAfterActivation}),
    ("GD-STEP", "step-not-stored", {"MLP": StepNotStored}),
    ("LINREG-GD", "half-gradient", {"MLP": HalfGradient}),
    ("LINREG-GD", "summed-gradient", {"MLP": SummedGradient}),
    ("COST-SQ", "mean-over-outputs", {"squared_error_cost": mean_over_outputs_cost}),
    ("COST-SQ", "absolute-error", {"squared_error_cost": absolute_cost}),
    ("COST-SQ", "mlp-cost-mse", {"MLP": MeanSquaredCost}),
    ("GD-DESCENT", "ascent", {"MLP": AscentGradient}),
    ("GD-DESCENT", "half-gradient", {"MLP": HalfGradient}),
    ("GD-AVERAGE", "summed-gradient", {"MLP": SummedGradient}),
    ("SGD-PARTITION", "summed-gradient", {"MLP": SummedGradient}),
    ("SGD-PARTITION", "drops-last-example", {"MLP": DropsLastExample}),
    ("SGD-PARTITION", "drops-last-batch", {"MLP": DropsLastBatch}),
    ("SGD-PARTITION", "repeats-first-batch", {"MLP": RepeatsFirstBatch}),
    ("SGD-PARTITION", "mlp-train-no-shuffle", {"MLP": TrainsWithoutShuffling}),
    ("SGD-PARTITION", "mlp-train-same-order-each-epoch", {"MLP": SameOrderEachEpoch}),
    ("LEARN-DIGITS", "step-outside-batch-loop", {"MLP": StepOutsideBatchLoop}),
    ("LEARN-LABELS", "labels-shuffled-separately", {"MLP": ShufflesLabelsSeparately}),
]


@pytest.mark.parametrize(
    ("clause_id", "bug", "overrides"), BUGS, ids=[f"{c}-{b}" for c, b, _ in BUGS]
)
def test_clause_rejects_planted_bug(clause_id: str, bug: str, overrides: dict) -> None:
    # shrink=False: the verdict is the first failing example's (a repeated first batch took 79
    # shrink runs to show a smaller input, which test_engine's shrinking tests already cover)
    result = run_clause(clause_id, patched("numpy", name=bug, **overrides), shrink=False)
    assert result.status == "failed", result.message


# The catalogue's own faults of the fifth hunt (verify/mutants.py), each with what its message says.
CATALOGUE_BUGS = [
    ("SGD-PARTITION", "mlp-train-ignores-seed", "outputs after a second train("),
    ("GD-STEP", "mlp-sgd-step-ascends", "after sgd_step(x, y, eta="),
    ("MLP-FORWARD", "mlp-forward-omits-input", "len(forward(x)[1]) of a 1-layer network"),
    ("MLP-FORWARD", "mlp-forward-zs-without-bias", "z(1) = W(1) a(0) + b(1)"),
    ("GD-AVERAGE", "mlp-gradients-summed-in-float16", "MLP.gradients of 4096 examples"),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("clause_id", "mutant_id", "message"), CATALOGUE_BUGS,
                         ids=[f"{c}-{m}" for c, m, _ in CATALOGUE_BUGS])
def test_clause_rejects_catalogue_fault(clause_id: str, mutant_id: str, message: str, seed: int) -> None:
    for shared_oracle in (False, True):  # no clause here leans on the oracle for these
        impl = CATALOGUE[mutant_id].implementation(shared_oracle=shared_oracle)
        result = run_clause(clause_id, impl, seed=seed, shrink=False)
        assert result.status == "failed", result.message
        assert message in result.message, result.message


def test_every_clause_has_a_planted_bug() -> None:
    assert {c for c, _, _ in BUGS} | {c for c, _, _ in CATALOGUE_BUGS} == set(CLAUSES)


def test_gd_step_judges_the_step_by_the_networks_own_gradient() -> None:
    """GD-STEP compares sgd_step with a step along the implementation's own gradients: a wrong
    gradient stepped on correctly is BP-FULL's and GD-DESCENT's to find, not GD-STEP's."""
    result = run_clause("GD-STEP", patched("numpy", name="ascent", MLP=AscentGradient))
    assert result.status == "passed", result.message


@pytest.mark.parametrize("base", ["torch:cpu:float32", "torch:cpu:float16"])
def test_mlp_forward_catches_zs_without_bias_in_a_narrow_format(base: str) -> None:
    """The z(l) check's tolerance is a sum's at the implementation's precision, with the terms'
    magnitudes as its condition: a missing bias is still far outside it."""
    result = run_clause("MLP-FORWARD", CATALOGUE["mlp-forward-zs-without-bias"].implementation(base))
    assert result.status == "failed", result.message
    assert "W(1) a(0) + b(1)" in result.message or "W(2) a(1) + b(2)" in result.message


@pytest.mark.parametrize("seed", range(3))
def test_sgd_partition_accepts_a_seeded_loop_of_another_generator(seed: int) -> None:
    """The same-seed check asks for determinism, not numpy's generator: torch.randperm seeded by
    the seed repeats itself, and passes."""
    result = run_clause("SGD-PARTITION", patched("numpy", name="torch-order", MLP=TorchOrder), seed=seed)
    assert result.status == "passed", result.message


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_gd_descent_catches_a_halved_gradient_at_every_precision(dtype: str) -> None:
    """The Richardson slope's tolerance grows with its condition C / (step |g|); a gradient that
    is half what it should be (the factor 2 of (a - y)^2 dropped) must still be rejected."""
    bad = patched(f"torch:cpu:{dtype}", name="half-gradient", MLP=HalfGradient)
    result = run_clause("GD-DESCENT", bad, shrink=False)
    assert result.status == "failed", result.message
    assert "first-order decrease along -g (Richardson)" in result.message


def test_sgd_partition_accepts_any_shuffled_order() -> None:
    """The epoch is matched against every ordered partition: a loop that shuffles with another
    generator is as correct as numpy_ref's, and passes."""
    result = run_clause("SGD-PARTITION", patched("numpy", name="torch-order", MLP=TorchOrder),
                        profile="default")
    assert result.status == "passed", result.message


def test_sgd_partition_draws_batch_sizes_that_do_not_divide_the_data() -> None:
    from nnspec.spec.cost_learning import EPOCH_CASES, trajectory_nodes

    assert {(3, 2), (5, 2), (5, 3), (7, 4)} <= set(EPOCH_CASES)
    # C(5, 2) + C(5, 2) C(3, 2) + the same again for the last, smaller minibatch
    assert trajectory_nodes(5, 2) == 10 + 30 + 30


@pytest.mark.parametrize("seed", range(3))
def test_sgd_partition_rejects_a_loop_that_never_shuffles(seed: int) -> None:
    """Walking the data in its given order is a partition of the data, but not a shuffled one:
    the first epoch's minibatches are the same whatever the seed."""
    bad = patched("numpy", name="mlp-train-no-shuffle", MLP=TrainsWithoutShuffling)
    result = run_clause("SGD-PARTITION", bad, seed=seed)
    assert result.status == "failed", result.message
    assert "first epoch's minibatches of train(epochs=2" in result.message
    assert "observed the same ordered partition [[0, 1], [2, 3]] for all 13 seeds" in result.message
    assert "should be a shuffled partition that varies with the seed" in result.message


@pytest.mark.parametrize("seed", range(3))
def test_sgd_partition_rejects_one_order_for_every_epoch(seed: int) -> None:
    """A permutation drawn once for all epochs shuffles the first epoch (it varies with the seed)
    but not the second: the clause asks for the data shuffled anew each epoch."""
    bad = patched("numpy", name="mlp-train-same-order-each-epoch", MLP=SameOrderEachEpoch)
    result = run_clause("SGD-PARTITION", bad, seed=seed)
    assert result.status == "failed", result.message
    assert "second epoch's minibatches vs the first's in train(epochs=2" in result.message
    assert "observed the first epoch's ordered partition again for all 13 seeds" in result.message
    assert "should be the data shuffled anew each epoch" in result.message


def test_sgd_partition_shuffle_check_fails_a_correct_loop_with_probability_below_1e_9() -> None:
    """The comment above SHUFFLE_SEEDS: P ordered partitions, each 1/P under a uniform shuffle;
    one first-epoch partition for all K seeds, or K second epochs repeating the first."""
    from nnspec.spec.cost_learning import SHUFFLE_CASE, SHUFFLE_SEEDS, epoch_trajectories

    n, batch_size = SHUFFLE_CASE
    orders = math.factorial(n) // (
        math.factorial(batch_size) ** (n // batch_size) * math.factorial(n % batch_size)
    )
    ck = type("Ck", (), {"input": staticmethod(lambda a: a)})()
    config = MLPConfig(layer_sizes=(1, 1, 1), activation="sigmoid")
    params = numpy_ref.init_params(config, seed=0)
    data = (np.zeros((n, 1)), np.zeros((n, 1)))
    assert len(epoch_trajectories(numpy_ref, ck, config, params, data, batch_size, 1.0)) == orders
    assert orders == 6
    false_positive = orders ** -(SHUFFLE_SEEDS - 1) + orders ** -SHUFFLE_SEEDS
    assert false_positive < 1e-9 < orders ** -(SHUFFLE_SEEDS - 2) + orders ** -(SHUFFLE_SEEDS - 1)


def test_a_gradient_summed_over_the_examples_is_named_by_sgd_partition() -> None:
    """An audit's summed gradient failed SGD-PARTITION with the full batch's gradient as "expected";
    the failure now says the full batch is n_batches times the minibatches' mean, i.e. summed."""
    from nnspec.reference import numpy_ref

    class Summed(numpy_ref.MLP):
        def gradients(self, x, y):  # noqa: ANN001, ANN202 (the capability's signature)
            dW, db = super().gradients(x, y)
            n = len(np.atleast_2d(x))
            return [w * n for w in dW], [b * n for b in db]

    result = run_clause("SGD-PARTITION", patched("numpy", name="summed", MLP=Summed), profile="quick", seed=0)
    assert result.status == "failed"
    assert "(the number of minibatches) times their mean: gradients summed over the examples" in result.message, \
        result.message


@pytest.mark.parametrize("impl", ["numpy", "torch:cpu:float64", "torch:cpu:float16", "torch:cpu:bfloat16"])
def test_gd_average_over_thousands_of_examples_is_judged_in_units_of_the_addends(impl: str) -> None:
    """GD-AVERAGE's data set of 4096 examples compares each gradient in units of its largest
    per-example entry, but no unit below smallest normal / eps: at seed 2 a float64 x of 2e-313 made
    dC/dW(1) 5e-315, where subnormal arithmetic's 1e-6 relative error failed torch's own float64 MLP.
    Honest float16, whose deltas scaled by 1/4096 go subnormal, passes by torch_ref's own gap."""
    for seed in range(4):
        result = run_clause("GD-AVERAGE", impl, profile="default", seed=seed)
        assert result.status == "passed", result.message


def test_gd_average_finds_a_per_example_sum_kept_in_bfloat16() -> None:
    """The same loop, ``grad += delta_i a_i^T``, in bfloat16: its sum stalls past 256 equal addends."""
    from nnspec.verify.mutants import _half_summed_mlp

    bad = patched("torch:cpu:bfloat16", name="bfloat16 sum", MLP=_half_summed_mlp("cpu", "bfloat16"))
    result = run_clause("GD-AVERAGE", bad, shrink=False)
    assert result.status == "failed", result.message
    assert "MLP.gradients of 4096 examples" in result.message
