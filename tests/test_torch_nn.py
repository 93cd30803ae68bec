"""A real third-party implementation through the engine: PyTorch's own layers (nnspec.verify.torch_nn).

None of its math is nnspec's, so these runs check the catalogue against code that neither
reference shares: every clause it can run must pass, except the one where PyTorch departs from
the documents (nn.MultiheadAttention returns NaN for a query with no allowed key), which must
fail, at every precision, for that reason and with a shrunk input.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from nnspec.reference import numpy_ref
from nnspec.verify import Implementation, load_implementation, patched, run_clause
from nnspec.verify.catalogue import installed
from nnspec.verify.torch_nn import TorchNN

# The clauses PyTorch's built-ins fail, and what the failure must say.
DEPARTURES = {
    "MHA-FULLY-MASKED": "isfinite(output) and isfinite(weights) (mask as passed, 1 = may attend: [[[0], [1]]]): "
    "observed 1 non-finite in output",
}
# On CUDA PyTorch's kernels depart further. The first GPU run (H200, torch 2.11 + CUDA 13.0, quick,
# seed 0) saw these besides MHA-FULLY-MASKED; float32's are the size of TF32's rounding (cuDNN's
# LSTM may use TF32 by default: torch.backends.cudnn.allow_tf32), float64's and bfloat16's were
# not yet diagnosed (no GPU time was left). Pinned as seen, so that any other failure on CUDA is one.
CUDA_DEPARTURES = {
    "float64": {"NET-PADDING", "NET-LONG", "GPT-COMPOSE"},
    "float32": {"NET-PADDING", "NET-LONG", "GPT-COMPOSE", "NET-ORACLE", "LSTM-SEQ"},
    "bfloat16": {"LEARN-LABELS"},
}
# Capabilities offered: what torch.nn / torch.nn.functional have a built-in for.
OFFERED = {
    "sigmoid", "sigmoid_prime", "relu", "relu_prime", "tanh", "tanh_prime", "gelu", "gelu_prime",
    "activation", "dense", "softmax", "squared_error_cost", "embed", "unembed", "layer_norm",
    "batch_norm", "causal_mask", "scaled_dot_product_attention", "multi_head_attention", "feed_forward",
    "lstm_cell", "lstm", "encoder_layer", "decoder_layer", "init_params", "MLP", "Transformer", "GPT",
    "Seq2Seq",
}


def _name(device: str, dtype: str) -> str:
    return f"nnspec.verify.torch_nn:{dtype}" if device == "cpu" else f"nnspec.verify.torch_nn:{device}_{dtype}"


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_pytorch_layers_pass_every_clause_they_can_run_but_one(
    device: str, dtype: str, request: pytest.FixtureRequest
) -> None:
    if device == "cpu" and dtype == "float32":  # the adapter never leans on torch's default device
        request.getfixturevalue("meta_default_device")
    impl = load_implementation(_name(device, dtype))
    assert impl.capabilities == frozenset(OFFERED)
    catalogue = installed()
    statuses, unchecked = {}, {}
    for clause_id, clause in catalogue.items():
        result = run_clause(clause, impl, profile="quick", seed=0)
        statuses[clause_id] = result.status
        if "not offered" in result.notes:
            unchecked[clause_id] = result.notes["not offered"]
        if clause_id in DEPARTURES:
            assert DEPARTURES[clause_id] in result.message
            assert "shrunk input:" in result.message
            assert "meta" not in result.message.replace(result.reproduce, "")  # PyTorch's NaN, not a meta tensor
            # reproducible by the import path it was loaded by, not its display name torch.nn:...
            assert result.reproduce.startswith(f"nnspec verify {_name(device, dtype)} --clause {clause_id} ")
    runnable = {c for c, clause in catalogue.items() if not impl.missing(clause.needs)}
    departures = set(DEPARTURES) | (CUDA_DEPARTURES[dtype] if device == "cuda" else set())
    failed = {c for c, s in statuses.items() if s == "failed"}
    assert set(DEPARTURES) <= failed <= departures, failed
    assert {c for c, s in statuses.items() if s == "passed"} == runnable - failed
    assert {c for c, s in statuses.items() if s == "not_applicable"} == set(statuses) - runnable
    # components, and the four networks built from nn.Linear, nn.Transformer*Layer and nn.LSTM
    # (NET-ORACLE among them: each network agrees with the oracle by the tolerance policy), and
    # ATT-PADDING, which gives F.scaled_dot_product_attention and nn.MultiheadAttention the
    # oracle's padding mask (PyTorch has no padding_mask function)
    assert len(runnable) == 82
    assert {"NET-ORACLE", "MLP-FORWARD", "GD-STEP", "ATT-PADDING", "NET-PADDING", "LSTM-SEQ", "NET-BATCH"} <= runnable
    # PyTorch has no parameter-counting function and no Bahdanau or Luong attention: PARAM-COUNT
    # checks the MLP init_params, S2S-COMPOSE composes nn.LSTM with the oracle's attention
    assert unchecked == {"ATT-PADDING": ["padding_mask"], "PARAM-COUNT": ["parameter_count"],
                         "S2S-COMPOSE": ["dot_attention", "additive_attention"]}


def test_the_departure_is_pytorchs_not_the_adapters() -> None:
    # The same NaN straight from nn.MultiheadAttention, without nnspec in between, and zeros from
    # F.scaled_dot_product_attention for the same fully masked query.
    mha = torch.nn.MultiheadAttention(2, 1, batch_first=True, dtype=torch.float64)
    x = torch.ones(1, 2, 2, dtype=torch.float64)
    may_not_attend = torch.tensor([[True, True], [False, False]])  # query 0 sees no key
    out, weights = mha(x, x, x, attn_mask=may_not_attend)
    assert torch.isnan(out[0, 0]).all() and torch.isfinite(out[0, 1]).all()
    sdpa = torch.nn.functional.scaled_dot_product_attention(x, x, x, attn_mask=~may_not_attend)
    assert (sdpa[0, 0] == 0).all()


def test_layers_match_the_oracle_in_float64() -> None:
    # The adapter's translations (mask polarity, layouts, per-head masks, batch shapes) are right:
    # where PyTorch agrees with the documents, it agrees with the oracle to float64 rounding.
    nn_impl = TorchNN(dtype="float64")
    rng = np.random.default_rng(0)
    params = {f"W_{n}": rng.normal(size=(6, 6)) / 3 for n in "qkvo"} | {f"b_{n}": rng.normal(size=6) for n in "qkvo"}
    x_q, x_kv = rng.normal(size=(2, 3, 6)), rng.normal(size=(2, 4, 6))
    mask = rng.random((2, 1, 3, 4)) < 0.6
    mask[..., 0] = True  # no fully masked query
    for got, want in zip(nn_impl.multi_head_attention(params, x_q, x_kv, 3, mask),
                         numpy_ref.multi_head_attention(params, x_q, x_kv, 3, mask), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    lstm = {"W_ih": rng.normal(size=(8, 3)), "W_hh": rng.normal(size=(8, 2)), "b_ih": rng.normal(size=8)}
    xs = rng.normal(size=(2, 5, 3))
    got_out, (got_h, _) = nn_impl.lstm(lstm, xs)
    want_out, (want_h, _) = numpy_ref.lstm(lstm, xs)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_h, want_h, rtol=1e-12, atol=1e-12)
    for n_q, n_k in [(1, 1), (2, 5), (5, 2), (4, 4)]:  # rows and columns of torch's square mask
        np.testing.assert_array_equal(nn_impl.causal_mask(n_q, n_k), numpy_ref.causal_mask(n_q, n_k))
    ids = np.array([[0, 3, 1]])
    W_E = rng.normal(size=(4, 5))
    np.testing.assert_array_equal(nn_impl.embed(ids, W_E), numpy_ref.embed(ids, W_E))


def test_an_absent_device_makes_every_clause_not_applicable() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    impl = load_implementation("nnspec.verify.torch_nn:cuda_float32")
    result = run_clause("SM-SUM", impl, profile="quick")
    assert result.status == "not_applicable" and "no CUDA device is available" in result.message


def test_bad_import_paths_say_what_exists() -> None:
    with pytest.raises(AttributeError, match="name DTYPE or DEVICE_DTYPE"):
        import nnspec.verify.torch_nn as module

        module.cuda_float8  # noqa: B018
    with pytest.raises(ValueError, match="choose one of"):
        TorchNN(device="tpu")


@pytest.mark.slow
def test_nnspec_verify_runs_it_by_import_path(tmp_path) -> None:
    name = "nnspec.verify.torch_nn:float32"
    run = subprocess.run(
        [sys.executable, "-m", "nnspec.verify.cli", "verify", name, "--profile", "quick",
         "--clause", "MHA-*", "--clause", "ATT-FULLY-MASKED", "--report", str(tmp_path / "report")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"reproduce: nnspec verify {name} --clause MHA-FULLY-MASKED" in run.stdout
    assert "torch.nn:cpu:float32: 1 failed, 4 passed" in run.stdout
    assert (tmp_path / "report" / "report.html").exists()


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_the_catalogue_catches_nn_transformers_extra_final_norm() -> None:
    # nn.Transformer ends its encoder and its decoder with a LayerNorm of their own, also with
    # norm_first=False, where each post-LN layer already ends in one: two LayerNorms in a row,
    # which Vaswani et al.'s network does not have (PyTorch issues #24930 and #74092, kept for
    # backward compatibility). torch_nn builds its stacks from the layers for that reason. An
    # adapter that takes nn.Transformer's stacks as they are is caught on the first example.
    base = TorchNN(dtype="float64")

    class WithNNTransformerNorms(base.Transformer):
        def __init__(self, config, params) -> None:
            super().__init__(config, params)
            if config.norm_placement == "post":
                model = torch.nn.Transformer(config.d_model, config.n_heads, 1, 1, config.d_ff, dropout=0.0,
                                             layer_norm_eps=config.layer_norm_eps, batch_first=True,
                                             norm_first=False, dtype=torch.float64)
                assert isinstance(model.encoder.norm, torch.nn.LayerNorm)  # despite norm_first=False
                self.encoder_norm, self.decoder_norm = model.encoder.norm, model.decoder.norm

    naive = patched("nnspec.verify.torch_nn:float64", name="nn.Transformer stacks", Transformer=WithNNTransformerNorms)
    for clause_id in ("ENC-LAYER", "DEC-LAYER", "RESIDUAL", "NET-ORACLE"):
        result = run_clause(clause_id, naive, profile="quick", seed=0)
        assert result.status == "failed", clause_id
        assert "norm_placement = 'post'" in result.message
    assert run_clause("ENC-LAYER", "nnspec.verify.torch_nn:float64", profile="quick", seed=0).status == "passed"


AUTOGRAD_CLAUSES = ["ACT-SIGMOID", "BP-FULL", "SGD-PARTITION", "LINREG-GD", "GRAD-SOFTMAX", "GRAD-ATTN"]


@pytest.mark.parametrize("name", ["nnspec.verify.torch_nn:float64", "torch:cpu:float64"])
def test_derivatives_and_training_work_in_a_session_with_grad_off(name: str) -> None:
    """An inference script's ``torch.set_grad_enabled(False)`` turns autograd off for the whole
    process; code that differentiates turns it back on for itself, as torch.func does (the
    derivatives, MLP.gradients and training raised 'element 0 of tensors does not require grad')."""
    impl = load_implementation(name)
    before = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        results = {cid: run_clause(cid, impl, profile="quick", seed=0) for cid in AUTOGRAD_CLAUSES}
        still_off = not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(before)
    assert still_off  # and the session's mode is its own again afterwards
    failed = {cid: r.message for cid, r in results.items() if r.status != "passed"}
    assert not failed, failed


def test_an_id_outside_the_vocabulary_is_refused_before_any_kernel(device: str) -> None:
    """On CUDA F.embedding trips a device-side assert for such an id, and every later CUDA call of
    the process fails (the first GPU run: EMB-LOOKUP's refusal check took 46 clauses of torch.nn
    with it). The adapter refuses it on the host, as the CPU does."""
    impl = load_implementation(_name(device, "float32"))
    W_E = np.arange(6.0).reshape(2, 3)
    for ids in ([0, 3], [-1, 1]):
        with pytest.raises(Exception, match=r"token ids must lie in \[0, 3\)"):
            impl.embed(np.array(ids), W_E)
    np.testing.assert_array_equal(impl.embed(np.array([2, 0]), W_E), W_E[:, [2, 0]].T)  # still works


def test_a_device_side_assert_says_the_cuda_context_is_lost() -> None:
    """What torch raises after a device-side assert (CUDA error text, any device) is told for what it
    is: the clauses after it in the process fail too, and where to fix it."""
    def embed(token_ids, W_E):
        raise RuntimeError("CUDA error: device-side assert triggered\nCUDA kernel errors might be "
                           "asynchronously reported at some other API call")

    result = run_clause("EMB-LOOKUP", Implementation("asserts", {"embed": embed}), profile="quick", seed=0)
    assert result.status == "failed"
    assert "this process's CUDA context is now unusable" in result.message, result.message
