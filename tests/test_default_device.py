"""nnspec's torch code puts every tensor on its implementation's device, never on torch's default.

On a GPU the classic bug is a tensor made without ``device=``: it lands on the default device (the
CPU) beside CUDA tensors, and the call fails. CI has no GPU, so these tests move torch's default
device instead. Under ``torch.set_default_device("meta")`` a tensor made without ``device=`` (or
passed through ``torch.as_tensor`` without one) is a meta tensor, with no data, and a ``torch:cpu``
run fails at the first such tensor exactly where a ``torch:cuda`` run would meet a stray CPU one.
A user's own ``torch.set_default_device("cuda")`` must not change what a ``torch:cpu`` run checks
either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from nnspec.reference.torch_ref import networks as torch_networks
from nnspec.verify import Implementation, load_implementation, run_clause
from nnspec.verify.catalogue import installed
from nnspec.verify.runner import ClauseResult

# What each implementation fails on the CPU with torch's default device left alone (see
# tests/test_torch_nn.py): nn.MultiheadAttention's NaN for a query with no allowed key.
KNOWN_FAILURES = {
    "torch:cpu:float64": set(),
    "torch:cpu:bfloat16": set(),
    "nnspec.verify.torch_nn:float32": {"MHA-FULLY-MASKED"},
}


@contextmanager
def default_device(device: str) -> Iterator[None]:
    previous = torch.get_default_device()
    torch.set_default_device(device)
    try:
        yield
    finally:  # None, not "cpu": an explicit CPU default would leave a device mode on every call
        torch.set_default_device(None if previous.type == "cpu" else previous)


def _results(impl: Implementation, clause_ids: list[str]) -> dict[str, ClauseResult]:
    return {c: run_clause(c, impl, profile="quick", seed=0) for c in clause_ids}


@pytest.mark.parametrize("impl_name", sorted(KNOWN_FAILURES))
def test_every_clause_runs_as_usual_with_the_default_device_elsewhere(impl_name: str) -> None:
    impl = load_implementation(impl_name)
    runnable = [c for c, clause in installed().items() if not impl.missing(clause.needs)]
    with default_device("meta"):
        results = _results(impl, runnable)
    failed = {c: r for c, r in results.items() if r.status != "passed"}
    assert set(failed) == KNOWN_FAILURES[impl_name], "\n\n".join(r.message for r in failed.values())
    # the known failures are PyTorch's own, not a meta tensor (the reproduce line names the device)
    assert not any("meta" in r.message.replace(r.reproduce, "") for r in failed.values())


def _padding_mask_on_the_default_device(token_ids, pad_id):  # the bug: no device= for the ids
    return (torch.as_tensor(token_ids, device=None) != pad_id)[..., None, :]


def test_a_tensor_left_on_the_default_device_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a planted leak (the Transformer's padding mask made on the default device
    instead of beside the token ids) passes on the CPU, as it would until someone ran it on a GPU,
    and fails every Transformer clause once the default device is elsewhere."""
    clause_ids = ["NET-ORACLE", "DEC-CAUSAL"]
    monkeypatch.setattr(torch_networks, "padding_mask", _padding_mask_on_the_default_device)
    impl = load_implementation("torch:cpu:float64")
    plain = _results(impl, clause_ids)
    assert {c: r.status for c, r in plain.items()} == dict.fromkeys(clause_ids, "passed")
    assert all("set_default_device" not in r.reproduce for r in plain.values())
    with default_device("meta"):
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
