"""torch's precision switches: nnspec's own torch code runs in IEEE float32 whatever a session set.

A session that turns on TF32 (``torch.backends.cuda.matmul.allow_tf32 = True``, as nanoGPT's
training script does) or lets oneDNN run float32 matmuls in bfloat16
(``torch.set_float32_matmul_precision("medium")``) changes every float32 matmul after it. The
low-precision tolerance rule measures an implementation against ``torch_ref``'s error at the same
dtype, so that baseline must not follow the session, or a float32 implementation would be let off by
the error of a 10-bit (TF32) or 8-bit (bfloat16) mantissa. On this CPU (oneDNN with AMX or
AVX512-BF16) ``"medium"`` really does round float32 matmuls to bfloat16, so the effect and its
cure are checked numerically here, and on CUDA (TF32) where a GPU is present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch
from nnspec.reference import numpy_ref
from nnspec.report import validate
from nnspec.verify import implementations, load_implementation, numerics, patched, run_clause
from nnspec.verify.check import EngineCheck

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def session_switches() -> Iterator[None]:
    """Every test here changes torch's process-wide switches; the next test finds them as they were,
    the older API's state included (a test that sets ``allow_tf32`` leaves it behind otherwise, and
    torch's older getters would then refuse to answer for the rest of the process)."""
    legacy = numerics.snapshot(style="legacy")
    saved = numerics.snapshot()
    yield
    for path, value in legacy.items():  # written blind: the older getters may refuse until then;
        numerics._set(path, value)  # and first, since the older setters write the newer switches too
    numerics.restore(saved)
    assert numerics.snapshot() == saved
    assert numerics.snapshot(style="legacy") == legacy


def _fresh(code: str) -> object:
    """What a fresh interpreter prints as JSON after ``import torch`` and ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"import json, torch\nfrom nnspec.verify import numerics\n{code}"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _matmul_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest error of a float32 matmul against the float64 product of the same inputs."""
    return ((a @ b).double() - a.double() @ b.double()).abs().max().item()


def _onednn_bfloat16() -> bool:
    """Whether this CPU's oneDNN really runs float32 matmuls in bfloat16 when asked to (what
    ``"medium"`` asks). Only the operator's own switch is touched, and put back."""
    a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    saved = torch.backends.mkldnn.matmul.fp32_precision
    try:
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        return _matmul_error(a, a) > 1e-3
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = saved


needs_onednn_bfloat16 = pytest.mark.skipif(
    not _onednn_bfloat16(),
    reason="this CPU's oneDNN has no bfloat16 matmul (AMX or AVX512-BF16), so 'medium' changes nothing",
)


def test_the_fresh_switches_are_a_fresh_torchs() -> None:
    """``FRESH`` is what a new interpreter reads, in both API styles (the older getters answer in a
    process that never mixed the two)."""
    new = _fresh("print(json.dumps(numerics.snapshot()))")
    legacy = _fresh("print(json.dumps(numerics.snapshot(style='legacy')))")
    assert new == {k: numerics.FRESH[k] for k in new}
    assert legacy == {k: numerics.FRESH[k] for k in legacy}
    assert "cuda.matmul.fp32_precision" in new and "float32_matmul_precision" in legacy
    assert _fresh("print(json.dumps(numerics.session_modes()))") == {}


@pytest.mark.parametrize(
    "session",
    [
        "pass",
        "torch.set_float32_matmul_precision('medium')",
        "torch.set_float32_matmul_precision('high')",
        "torch.backends.fp32_precision = 'tf32'",
        "torch.backends.mkldnn.fp32_precision = 'bf16'",
        "torch.backends.cudnn.rnn.fp32_precision = 'ieee'; torch.backends.cuda.matmul.fp32_precision = 'tf32'",
        "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False",
    ],
)
def test_ieee_float32_pins_every_switch_and_gives_the_session_back(session: str) -> None:
    a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    ieee = a @ a
    exec(session, {"torch": torch})
    before = numerics.snapshot()
    with numerics.ieee_float32():
        inside = numerics.snapshot()
        pinned = a @ a
    assert numerics.snapshot() == before
    # each matmul IEEE: said so, or inherited from "none" (or from what its backend cannot do);
    # cuDNN's convolutions and RNNs, which torch_ref never calls, keep the session's switches
    for leaf in ("cuda.matmul.fp32_precision", "mkldnn.matmul.fp32_precision"):
        assert inside[leaf] == "ieee" or (
            inside[leaf] == "none" and numerics._effective(inside, leaf) == "ieee"
        ), (leaf, inside)
    for leaf in ("cudnn.conv.fp32_precision", "cudnn.rnn.fp32_precision", "mkldnn.conv.fp32_precision"):
        assert inside[leaf] == before[leaf]
    assert torch.equal(pinned, ieee)  # where oneDNN has bfloat16 (tested below), a real difference
    for flag in numerics.REDUCTIONS:
        assert inside[flag] == numerics.FRESH[flag], flag
    with pytest.raises(RuntimeError, match="inside"), numerics.ieee_float32():  # also when it raises
        raise RuntimeError("inside")
    assert numerics.snapshot() == before


def test_session_modes_name_what_differs_from_a_fresh_torch() -> None:
    torch.backends.cuda.matmul.allow_tf32 = True  # nanoGPT's line
    assert numerics.session_modes() == {"cuda.matmul.fp32_precision": "tf32"}
    torch.set_float32_matmul_precision("medium")
    modes = numerics.session_modes()
    assert modes == {"cuda.matmul.fp32_precision": "tf32", "mkldnn.matmul.fp32_precision": "bf16"}
    assert numerics.describe(modes) == (
        "torch.backends.cuda.matmul.fp32_precision = 'tf32'; "
        "torch.backends.mkldnn.matmul.fp32_precision = 'bf16'"
    )
    with numerics.ieee_float32():
        assert numerics.session_modes() == {}
    torch.set_float32_matmul_precision("highest")  # IEEE said explicitly is a fresh torch's IEEE
    assert numerics.session_modes() == {}
    # A parent's switch acts through the operators that say "none" (torch writes it into them);
    # the matmuls said "ieee" just above and keep it, cuDNN's are TF32 as in a fresh torch.
    torch.backends.fp32_precision = "tf32"
    assert numerics.session_modes() == {
        "mkldnn.conv.fp32_precision": "tf32", "mkldnn.rnn.fp32_precision": "tf32",
    }


def test_the_older_switches_on_a_torch_that_has_only_them() -> None:
    """torch < 2.9 has ``allow_tf32`` and ``set_float32_matmul_precision`` alone. torch still obeys
    them, so that path runs here, in a fresh interpreter that sets only those (mixing the two styles
    makes torch refuse the older getters)."""
    got = _fresh(
        "torch.backends.cuda.matmul.allow_tf32 = True\n"
        "a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))\n"
        "ieee = (a @ a).clone()\n"
        "torch.set_float32_matmul_precision('medium')\n"
        "medium = a @ a\n"
        "before = numerics.snapshot(style='legacy')\n"
        "with numerics.ieee_float32(style='legacy'):\n"
        "    inside = numerics.snapshot(style='legacy'); pinned = a @ a\n"
        "print(json.dumps([before, inside, numerics.snapshot(style='legacy'),\n"
        "    numerics.session_modes(style='legacy'), torch.equal(pinned, ieee), torch.equal(medium, ieee)]))"
    )
    before, inside, after, modes, pinned_is_ieee, medium_is_ieee = got
    assert before["float32_matmul_precision"] == "medium" and before["cuda.matmul.allow_tf32"] is True
    assert inside["float32_matmul_precision"] == "highest"
    assert inside["cuda.matmul.allow_tf32"] is False
    assert inside["cudnn.allow_tf32"] is True  # cuDNN, which torch_ref never calls, is left alone
    assert after == before
    assert modes == {"cuda.matmul.allow_tf32": True, "float32_matmul_precision": "medium"}
    assert pinned_is_ieee
    if _onednn_bfloat16():
        assert not medium_is_ieee


@needs_onednn_bfloat16
def test_medium_precision_rounds_float32_matmuls_to_bfloat16_except_under_the_pin() -> None:
    a, b = (torch.randn(64, 64, generator=torch.Generator().manual_seed(s)) for s in (1, 2))
    ieee = a @ b
    torch.set_float32_matmul_precision("medium")
    assert _matmul_error(a, b) > 1e-3  # a bfloat16 mantissa, not float32's ~1e-5 here
    with numerics.ieee_float32():
        assert torch.equal(a @ b, ieee)
    assert not torch.equal(a @ b, ieee)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_tf32_on_cuda_is_off_under_the_pin() -> None:
    device = "cuda"
    if torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("TF32 needs an Ampere or later GPU")
    g = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(256, 256, device=device, generator=g) for _ in range(2))
    ieee, ieee_error = a @ b, _matmul_error(a, b)
    torch.backends.cuda.matmul.allow_tf32 = True
    assert _matmul_error(a, b) > 10 * ieee_error  # TF32: 10 mantissa bits, not 23
    with numerics.ieee_float32():
        assert torch.equal(a @ b, ieee)
    # torch:cuda:float32 is pinned: its attention agrees with a fresh run's bit for bit
    impl = load_implementation("torch:cuda:float32")
    q = np.random.default_rng(0).standard_normal((4, 64, 64))
    with_tf32 = impl.scaled_dot_product_attention(q, q, q)[0]
    torch.backends.cuda.matmul.allow_tf32 = False
    assert np.array_equal(with_tf32, impl.scaled_dot_product_attention(q, q, q)[0])


def _attention_check(impl_name: str) -> EngineCheck:
    """One attention call of ``impl_name`` against the oracle, with matmuls large enough for oneDNN's
    bfloat16 path: (4, 64, 64) queries, keys and values."""
    q = np.random.default_rng(7).standard_normal((4, 64, 64))
    ck = EngineCheck(load_implementation(impl_name))
    try:
        ck.close_to_oracle("scaled_dot_product_attention", q, q[::-1], q[:, ::-1], output="attention")
    except Exception as exc:  # a ClauseFailure: the records say what was judged
        ck.notes["failure"] = str(exc)
    return ck


@needs_onednn_bfloat16
def test_the_low_precision_baseline_ignores_the_sessions_bfloat16_matmuls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyTorch's own attention (``torch_nn``, a third-party implementation) runs in the session's
    precision: with oneDNN's bfloat16 matmuls its float32 error is that of an 8-bit mantissa, and the
    same-precision baseline, in IEEE float32, exposes it. Without the pin (planted below) the
    baseline rounds the same way and the differential rule lets it pass."""
    torch.set_float32_matmul_precision("medium")
    ck = _attention_check("nnspec.verify.torch_nn:float32")
    assert not all(r.passed for r in ck.records), ck.records
    worst = max(ck.records, key=lambda r: r.error)
    assert worst.error > 1e3 * worst.tolerance / 4, worst  # far outside, not at the margin
    assert "baseline error" in worst.reason

    monkeypatch.setattr(implementations, "ieee_float32", nullcontext)  # the planted bug
    unpinned = _attention_check("nnspec.verify.torch_nn:float32")
    assert all(r.passed for r in unpinned.records), unpinned.records


@needs_onednn_bfloat16
def test_a_clause_of_the_bundled_float32_torch_holds_in_any_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """ATT-VARIANCE reads the scores back exactly, so it sees bfloat16 matmuls. ``torch:cpu:float32``
    passes it under the session's ``"medium"`` (it is pinned); PyTorch's own attention fails it, and
    says on its reproduce line what the session had set; the unpinned bundled torch fails too."""
    torch.set_float32_matmul_precision("medium")
    assert run_clause("ATT-VARIANCE", "torch:cpu:float32").status == "passed"
    nn = run_clause("ATT-VARIANCE", "nnspec.verify.torch_nn:float32")
    assert nn.status == "failed", nn.message
    assert nn.reproduce.endswith(
        "  # after torch.backends.cuda.matmul.fp32_precision = 'tf32'; "
        "torch.backends.mkldnn.matmul.fp32_precision = 'bf16' in the same process, as in this run"
    ), nn.reproduce
    assert nn.reproduce in nn.message
    monkeypatch.setattr(implementations, "ieee_float32", nullcontext)
    assert run_clause("ATT-VARIANCE", "torch:cpu:float32").status == "failed"


def test_a_float64_or_fresh_run_has_no_precision_note() -> None:
    torch.set_float32_matmul_precision("medium")
    assert "#" not in run_clause("SM-SUM", "torch:cpu:float64").reproduce
    torch.set_float32_matmul_precision("highest")
    assert "#" not in run_clause("SM-SUM", "torch:cpu:float32").reproduce


def test_a_sessions_switches_are_in_the_header_and_the_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A project whose conftest lowers float32 matmul precision (as a training script imported by
    its tests would), verified with pytest: the header and every report format say so, the bundled
    torch still passes, and PyTorch's own attention fails ATT-VARIANCE where oneDNN has bfloat16."""
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(
        "import numpy as np\nimport torch\ntorch.set_float32_matmul_precision('medium')\nnp.seterr(under='raise')\n"
    )
    out = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        "--nnspec-impl=torch:cpu:float32", "--nnspec-impl=nnspec.verify.torch_nn:float32",
        "--nnspec-clause=ATT-VARIANCE", "--nnspec-profile=quick", f"--nnspec-report={out}",
    )
    modes = "torch.backends.cuda.matmul.fp32_precision = 'tf32'; torch.backends.mkldnn.matmul.fp32_precision = 'bf16'"
    result.stdout.fnmatch_lines([
        f"nnspec torch precision: {modes} (not a fresh torch's:*",
        "nnspec numpy errors: np.seterr(under='raise') (not a fresh NumPy's: third-party implementations run "
        "in it; the oracle and the checks in NumPy's defaults)",
    ])
    data = json.loads((out / "results.json").read_text())
    validate(data)
    assert data["meta"]["torch_precision"] == {
        "cuda.matmul.fp32_precision": "tf32", "mkldnn.matmul.fp32_precision": "bf16",
    }
    assert data["meta"]["numpy_errors"] == {"under": "raise"}
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "torch precision: `cuda.matmul.fp32_precision=tf32`, `mkldnn.matmul.fp32_precision=bf16`" in md
    assert "<dt>torch precision</dt><dd><code>cuda.matmul.fp32_precision=tf32</code>" in html
    assert "numpy errors: `under=raise`" in md and "<dt>numpy errors</dt><dd><code>under=raise</code>" in html
    status = {row["implementation"]: row["status"] for row in data["results"]}
    assert status["torch:cpu:float32"] == "passed"
    if _onednn_bfloat16():
        assert status["torch.nn:cpu:float32"] == "failed"
        result.assert_outcomes(passed=1, failed=1)
        row = next(r for r in data["results"] if r["status"] == "failed")
        assert row["reproduce"].endswith(
            f"  # after {modes}; np.seterr(under='raise') in the same process, as in this run"
        )


# ----------------------------------------------------------------------------------------------
# NumPy's error handling: np.seterr(all="raise") in a session must not break the oracle
# ----------------------------------------------------------------------------------------------

# Clauses whose oracle or checks underflow harmlessly (exp of a very negative score, the logits a
# mask removes, a sigmoid's tail): with np.seterr(under="raise") each raised inside nnspec.
UNDERFLOWING = ("ATT-CONVEX", "FFN-FORMULA", "GREEDY", "ACT-SIGMOID", "DOT-ALIGN")


@pytest.fixture
def numpy_raises() -> Iterator[None]:
    with np.errstate(all="raise"):  # what a conftest's np.seterr(all="raise") leaves everywhere
        yield


@pytest.mark.usefixtures("numpy_raises")
@pytest.mark.parametrize("impl_name", ["numpy", "torch:cpu:float32"])
def test_the_oracle_and_the_checks_ignore_a_sessions_seterr(impl_name: str) -> None:
    for clause_id in UNDERFLOWING:
        result = run_clause(clause_id, impl_name)
        assert result.status == "passed", result.message
    assert np.geterr() == dict.fromkeys(numerics.NUMPY_FRESH, "raise")  # the session's, as it was


@pytest.mark.usefixtures("numpy_raises")
def test_without_the_pin_the_sessions_seterr_breaks_the_oracle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted bug: the clause run left in the session's error state."""
    monkeypatch.setattr(numerics, "NUMPY_FRESH", dict.fromkeys(numerics.NUMPY_FRESH, "raise"))
    statuses = {c: run_clause(c, "numpy").status for c in UNDERFLOWING}
    assert set(statuses.values()) - {"passed"}, statuses


def _underflowing_softmax(x, axis=-1, temperature=1.0):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True) - 800.0)  # underflows for spread-out logits
    return e / e.sum(axis=axis, keepdims=True) if e.all() else np.full_like(x, np.nan)


@pytest.mark.usefixtures("numpy_raises")
def test_a_third_party_implementation_runs_in_the_sessions_seterr() -> None:
    """Third-party code is called in the session's error state: what it raises there is its own
    failure, and the reproduce line says which np.seterr the run had."""
    from types import SimpleNamespace

    from nnspec.verify.implementations import from_object

    mine = from_object(SimpleNamespace(softmax=_underflowing_softmax), name="mine")
    result = run_clause("SM-SUM", mine)
    assert result.status == "failed", result.message
    assert "observed FloatingPointError: underflow encountered in exp" in result.message, result.message
    assert result.reproduce.endswith(
        "  # after np.seterr(divide='raise', over='raise', under='raise', invalid='raise') in the same "
        "process, as in this run"
    ), result.reproduce


@pytest.fixture
def flushing_session():
    """A session that flushes subnormals to zero, as after torch.set_flush_denormal(True)."""
    if not torch.set_flush_denormal(True):
        pytest.skip("this processor has no flush-to-zero mode torch can set")
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def test_flushing_subnormals_is_detected_and_undone_for_a_block(flushing_session) -> None:
    assert numerics.flushes_subnormals()
    assert sys.float_info.min / 2.0 == 0.0
    with numerics.subnormals(flush=False):
        assert not numerics.flushes_subnormals() and sys.float_info.min / 2.0 > 0.0
        with numerics.subnormals(flush=True):
            assert numerics.flushes_subnormals()
        assert not numerics.flushes_subnormals()
    assert numerics.flushes_subnormals()  # the session's mode, as it was


def test_clauses_run_with_subnormals_and_third_party_code_in_the_session_mode(flushing_session) -> None:
    """Under torch.set_flush_denormal(True) Hypothesis refused every float draw ("we can't represent
    subnormal floats right now") and the clauses errored, blaming nnspec. The clause and the oracle
    now run in IEEE arithmetic; the implementation under test runs as the session does."""
    seen = []

    def softmax(x, axis=-1, temperature=1.0):
        seen.append(numerics.flushes_subnormals())
        return numpy_ref.softmax(x, axis=axis, temperature=temperature)

    for name in ("torch:cpu:float64", "torch:cpu:float32", "numpy"):
        for clause_id in ("ACT-SIGMOID", "NEURON-WSUM"):
            result = run_clause(clause_id, load_implementation(name), profile="quick", seed=0)
            assert result.status == "passed", result.message
    result = run_clause("SM-SUM", patched("numpy", name="mine", softmax=softmax), profile="quick", seed=0)
    assert result.status == "passed", result.message
    assert seen and all(seen)
    assert "# after torch.set_flush_denormal(True) in the same process" in result.reproduce
    assert numerics.flushes_subnormals()


def test_a_flushing_session_is_in_the_header_and_the_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    if not torch.set_flush_denormal(True):
        pytest.skip("this processor has no flush-to-zero mode torch can set")
    torch.set_flush_denormal(False)
    pytester.makeini("[pytest]\n")
    pytester.makeconftest("import torch\ntorch.set_flush_denormal(True)\n")
    out = tmp_path / "report"
    result = pytester.runpytest_subprocess(
        "--nnspec-impl=torch:cpu:float64", "--nnspec-impl=numpy", "--nnspec-clause=ACT-SIGMOID,NEURON-WSUM",
        "--nnspec-profile=quick", f"--nnspec-report={out}",
    )
    result.stdout.fnmatch_lines(["nnspec subnormals: flushed to zero in this process (torch.set_flush_denormal(True)*"])
    result.assert_outcomes(passed=4)
    data = json.loads((out / "results.json").read_text())
    validate(data)
    assert data["meta"]["flush_subnormals"] is True
    assert "subnormals: flushed to zero" in (out / "report.md").read_text()
    assert "<dt>subnormals</dt>" in (out / "report.html").read_text()
