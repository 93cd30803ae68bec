"""nnspec's torch code puts every tensor on its implementation's device, never on torch's default.

On a GPU the classic bug is a tensor made without ``device=``: it lands on the default device (the
CPU) beside CUDA tensors, and the call fails. CI has no GPU, so these tests move torch's default
device instead. Under ``torch.set_default_device("meta")`` a tensor made without ``device=`` (or
passed through ``torch.as_tensor`` without one) is a meta tensor, with no data, and a ``torch:cpu``
run fails at the first such tensor exactly where a ``torch:cuda`` run would meet a stray CPU one.
A user's own ``torch.set_default_device("cuda")`` must not change what a ``torch:cpu`` run checks
either.

The sweeps run beside the ones that already check every clause, under the ``meta_default_device``
fixture (tests/conftest.py): torch_ref in float64 and bfloat16 in tests/test_spec_conformance.py,
PyTorch's own layers in float32 in tests/test_torch_nn.py. This module shows the move can fail.
"""

from __future__ import annotations

import pytest
import torch
from nnspec.reference.torch_ref import networks as torch_networks
from nnspec.verify import Implementation, load_implementation, run_clause
from nnspec.verify.runner import ClauseResult


def _results(impl: Implementation, clause_ids: list[str]) -> dict[str, ClauseResult]:
    return {c: run_clause(c, impl, profile="quick", seed=0) for c in clause_ids}


def _padding_mask_on_the_default_device(token_ids, pad_id):  # the bug: no device= for the ids
    return (torch.as_tensor(token_ids, device=None) != pad_id)[..., None, :]


def test_a_tensor_left_on_the_default_device_is_caught(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The check can fail: a planted leak (the Transformer's padding mask made on the default device
    instead of beside the token ids) passes on the CPU, as it would until someone ran it on a GPU,
    and fails every Transformer clause once the default device is elsewhere."""
    clause_ids = ["NET-ORACLE", "DEC-CAUSAL"]
    monkeypatch.setattr(torch_networks, "padding_mask", _padding_mask_on_the_default_device)
    impl = load_implementation("torch:cpu:float64")
    plain = _results(impl, clause_ids)
    assert {c: r.status for c, r in plain.items()} == dict.fromkeys(clause_ids, "passed")
    assert all("set_default_device" not in r.reproduce for r in plain.values())
    request.getfixturevalue("meta_default_device")
    assert torch.get_default_device().type == "meta"
    results = _results(impl, clause_ids)
    for clause_id, r in results.items():
        assert r.status == "failed", (clause_id, r.message)
        # what was observed, what was expected, on which input, and how to reproduce it
        assert "Transformer." in r.message and "observed NotImplementedError" in r.message, r.message
        assert "meta tensor" in r.message and "but should be a result" in r.message, r.message
        assert "shrunk input:" in r.message, r.message
        assert r.reproduce == (
            f"nnspec verify torch:cpu:float64 --clause {clause_id} --profile quick --seed 0"
            "  # after torch.set_default_device('meta') in the same process, as in this run"
        )
        assert f"reproduce: {r.reproduce}" in r.message
