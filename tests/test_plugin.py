"""The pytest plugin, run in a scratch project with ``pytester``: ids, -k, results, usage errors, xdist."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from broken_impls import EXPECTED_FAILURES, TEST_CLAUSES
from nnspec.report import validate

pytest_plugins = ["pytester"]

TESTS = Path(__file__).parent
CATALOGUE = "--nnspec-catalogue=broken_impls:TEST_CLAUSES"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project outside the repository that can import tests/broken_impls.py (also in xdist workers)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    pytester.makeini("[pytest]\n")
    return pytester


def _statuses(report_dir: Path) -> dict[tuple[str, str], str]:
    data = json.loads((report_dir / "results.json").read_text())
    return {(r["clause_id"], r["implementation"]): r["status"] for r in data["results"]}


def test_inactive_without_an_implementation(project: pytest.Pytester) -> None:
    project.makepyfile(test_mine="def test_mine():\n    assert True\n")
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    assert "nnspec implementation" not in result.stdout.str()


def test_options_without_an_implementation_warn_that_nothing_is_checked(project: pytest.Pytester) -> None:
    """Inert without --nnspec-impl, but not silently so: options meant to steer it say that no clause
    ran (a CI job whose implementation variable went missing would otherwise pass checking nothing),
    and a bad value is refused even then."""
    project.makepyfile(test_mine="def test_mine():\n    assert True\n")
    result = project.runpytest("--nnspec-clause=T-SOFTMAX", "--nnspec-seed=3")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*PytestConfigWarning: nnspec: --nnspec-clause --nnspec-seed given without --nnspec-impl: no clause "
        "runs and nothing is checked; name an implementation, e.g. --nnspec-impl=torch",
    ])
    result = project.runpytest("--nnspec-profile=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --nnspec-profile=fast: unknown profile*"])


def test_a_report_directory_that_cannot_be_created_is_refused_before_the_run(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    result = project.runpytest("--nnspec-impl=numpy", CATALOGUE, f"--nnspec-report={tmp_path}/a-file/report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: --nnspec-report={tmp_path}/a-file/report: it cannot be created: {tmp_path}/a-file is a file, "
        "not a directory",
    ])
    assert "passed" not in result.stdout.str()  # refused before any clause ran


def test_a_report_that_cannot_be_written_at_the_end_is_no_pass(project: pytest.Pytester, tmp_path: Path) -> None:
    """Every clause passes, but the report's directory became a file during the run: the run did not
    do what it was asked, so neither a pass (0) nor non-conformance (1), and it says why."""
    parent = tmp_path / "reports"
    parent.mkdir()
    project.makepyfile(vandal=(
        "import os, shutil\nfrom nnspec.reference import numpy_ref\nfrom nnspec.verify import patched\n"
        f"PARENT = {str(parent)!r}\n"
        "def _softmax(x, axis=-1, temperature=1.0):\n"
        "    if os.path.isdir(PARENT):\n        shutil.rmtree(PARENT)\n        open(PARENT, 'w').close()\n"
        "    return numpy_ref.softmax(x, axis=axis, temperature=temperature)\n"
        "IMPL = patched('numpy', name='vandal', softmax=_softmax)\n"
    ))
    project.syspathinsert()
    result = project.runpytest("--nnspec-impl=vandal:IMPL", CATALOGUE, "--nnspec-profile=quick",
                               "--nnspec-clause=T-SOFTMAX", f"--nnspec-report={parent}/report")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["vandal: 1 passed", "report NOT written: *Error: *reports*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_run_stopped_early_says_which_clauses_never_ran(project: pytest.Pytester) -> None:
    result = project.runpytest("--nnspec-impl=broken_impls:BROKEN", CATALOGUE, "--nnspec-profile=quick",
                               "--nnspec-time-limit=2", "-x", "-k", "not RELU")
    result.stdout.fnmatch_lines([
        "broken: 1 failed, 3 never ran",
        "nnspec: the run is INCOMPLETE: stopped early: stopping after 1 failures; 3 selected clause result(s) "
        "missing",
    ])


def test_ids_header_and_keyword_selection(project: pytest.Pytester) -> None:
    result = project.runpytest(
        "--nnspec-impl=numpy", "--nnspec-impl=torch:cpu:float32", CATALOGUE,
        "--nnspec-profile=quick", "--nnspec-seed=3", "-v", "-k", "SOFTMAX or MASK",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "nnspec *: 5 clauses, profile quick, seed 3",
        "nnspec implementation: numpy, version numpy *, device cpu, dtype float64",
        "nnspec implementation: torch:cpu:float32, version torch *, device cpu, dtype float32",
        "*collected 10 items / 6 deselected / 4 selected*",
        "nnspec::T-SOFTMAX[[]numpy[]] PASSED*",
        "nnspec::T-MASK[[]torch:cpu:float32[]] PASSED*",
        "numpy: 2 passed",
    ])


def test_broken_implementation_gives_four_failures_and_a_finished_run(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    result = project.runpytest(
        "--nnspec-impl=broken_impls:BROKEN", "--nnspec-impl=numpy", CATALOGUE,
        "--nnspec-profile=quick", "--nnspec-time-limit=2", f"--nnspec-report={report}",
    )
    result.assert_outcomes(passed=len(TEST_CLAUSES) + 1, failed=4)
    out = result.stdout.str()
    for cid, word in EXPECTED_FAILURES.items():
        assert f"{cid} [broken] failed: {TEST_CLAUSES[cid].statement}" in out
        assert word in out
        assert f"--nnspec-clause={cid}" in out
    assert ("timed out after 2 s while broken's relu was running (the per-clause time limit given "
            "to this run; a larger one (nnspec verify --time-limit, pytest --nnspec-time-limit) allows "
            "more)") in out
    # a timeout reproduces only under the same limit
    assert "nnspec verify broken_impls:BROKEN --clause T-RELU --profile quick --seed 0 --time-limit 2" in out
    assert "--nnspec-clause=T-RELU --nnspec-profile=quick --nnspec-seed=0 --nnspec-time-limit=2" in out
    assert "Traceback" not in out  # the report is the clause's text, not the engine's stack
    statuses = _statuses(report)
    assert {k for k, s in statuses.items() if s == "failed"} == {(c, "broken") for c in EXPECTED_FAILURES}
    assert len(statuses) == 2 * len(TEST_CLAUSES)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--nnspec-impl=pytorch",
            "--nnspec-impl=pytorch: unknown implementation 'pytorch'; did you mean 'torch'? use 'numpy', "
            "'torch[[]:device[[]:dtype[]][]]'*",
        ),
        (
            "--nnspec-impl=no_such_pkg.impl:obj",
            "*cannot import module 'no_such_pkg.impl'*run from the directory that holds no_such_pkg "
            "(`nnspec verify` and `python -m pytest` import from the current directory*",
        ),
        ("--nnspec-impl=torch:gpu", "*unknown device 'gpu'; choose one of*"),
        ("--nnspec-profile=fast", "--nnspec-profile=fast: unknown profile; use one of quick, default, thorough, ci"),
        ("--nnspec-clause=T-SOFTMX", "--nnspec-clause: no clause matches 'T-SOFTMX'; did you mean T-SOFTMAX*"),
        ("--nnspec-seed=abc", "--nnspec-seed=abc: not an integer*"),
        ("--nnspec-time-limit=-1", "--nnspec-time-limit=-1: not a number of seconds from 0.1 up; pass e.g. 60*"),
        # inf and nan would reach the alarm and break every clause; 0.01 fires inside Hypothesis
        ("--nnspec-time-limit=inf", "--nnspec-time-limit=inf: not a number of seconds from 0.1 up*"),
        ("--nnspec-time-limit=nan", "--nnspec-time-limit=nan: not a number of seconds from 0.1 up*"),
        ("--nnspec-time-limit=0.01", "--nnspec-time-limit=0.01: not a number of seconds from 0.1 up*"),
        # what an unset variable gives (--nnspec-impl=$IMPL): not "the plugin is off"
        ("--nnspec-impl=", "--nnspec-impl=: an empty implementation name (an unset variable?); name one*"),
        ("--nnspec-impl=numpy,", "--nnspec-impl=numpy,: an empty implementation name*"),
        ("--nnspec-impl=torch:cuda:0",
         "*'0' is a device index, where the dtype goes (torch:device:dtype); torch:cuda runs on the first "
         "visible one: choose it with CUDA_VISIBLE_DEVICES=0 nnspec verify torch:cuda:float32"),
        ("--nnspec-impl=broken_impls.py:BROKEN",
         "*'broken_impls.py:BROKEN': a file path; name the module as Python imports it: broken_impls:BROKEN"),
        ("--nnspec-impl=sub/broken_impls.py",
         "*a file path; name the module as Python imports it: broken_impls from sub (cd sub, or add it to "
         "PYTHONPATH)"),
        ("--nnspec-impl=nnspec.reference.numpy_ref:softmax",
         "*softmax is a capability, not an implementation; name the module or object that offers it "
         "(nnspec.reference.numpy_ref)*"),
        # the module is the worked example's; its objects are the implementations
        ("--nnspec-impl=nnspec.verify.torch_nn",
         "*offers none of the capabilities*; objects in it do: name one, e.g. nnspec.verify.torch_nn:bfloat16 "
         "(it has bfloat16, cuda_bfloat16, *"),
        ("--nnspec-impl=nnspec.verify.torch_nn:float8",
         "*has no attribute 'float8'; name DTYPE or DEVICE_DTYPE, e.g. float32 or cuda_bfloat16 (dtypes: "
         "float64, float32, float16, bfloat16; devices: cpu, cuda, mps)"),
    ],
)
def test_usage_errors_name_the_value_and_the_fix(project: pytest.Pytester, option: str, message: str) -> None:
    args = [option, CATALOGUE] if option.startswith("--nnspec-impl") else ["--nnspec-impl=numpy", CATALOGUE, option]
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_script_that_exits_on_import_is_a_usage_error(project: pytest.Pytester) -> None:
    """A training script named as the implementation parses the command line when imported, finds
    pytest's options and calls sys.exit(2): a usage error that says why, not an INTERNALERROR."""
    project.makepyfile(train=(  # what parse_args() does with pytest's argv, whatever this process's is
        "import argparse\nargs = argparse.ArgumentParser().parse_args(['--nnspec-impl=train:softmax'])\n"
        "softmax = None\n"
    ))
    project.syspathinsert()
    result = project.runpytest("--nnspec-impl=train:softmax", CATALOGUE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --nnspec-impl=train:softmax: implementation 'train:softmax': importing or building it "
        "called sys.exit(2): a script that parses the command line*`if __name__ == '__main__':`*",
    ])
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()


def test_a_module_that_raises_on_import_says_where(project: pytest.Pytester) -> None:
    """Not only what was raised: the file and line of the user's code that raised it."""
    project.makepyfile(needs_config=(
        "def _read_config():\n    raise RuntimeError('config file missing')\n\n_read_config()\n"
    ))
    project.syspathinsert()
    result = project.runpytest("--nnspec-impl=needs_config:IMPL", CATALOGUE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --nnspec-impl=needs_config:IMPL: loading it raised RuntimeError: config file missing "
        "at *needs_config.py:2 in _read_config; fix the implementation or the name",
    ])


def test_a_kernel_alone_is_checked_on_what_it_offers_and_the_summary_says_so(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    """An attention kernel with nothing else runs ATT-ORACLE on its part; the summary line and the
    report (written by the controller from xdist workers' rows) say the multi-head part did not."""
    project.makepyfile(kernel=(
        "from nnspec.reference import numpy_ref\n"
        "scaled_dot_product_attention = numpy_ref.scaled_dot_product_attention\n"
    ))
    project.syspathinsert()
    report = tmp_path / "report"
    result = project.runpytest_subprocess(
        "-n", "2", "--nnspec-impl=kernel", "--nnspec-clause=ATT-ORACLE,ATT-ROWS-SUM,MHA-CONCAT",
        "--nnspec-profile=quick", f"--nnspec-report={report}",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([
        "kernel: 1 not applicable, 2 passed (1 of them partly, on what it offers: ATT-ORACLE)",
    ])
    rows = {r["clause_id"]: r for r in json.loads((report / "results.json").read_text())["results"]}
    assert rows["ATT-ORACLE"]["notes"] == {"not offered": ["multi_head_attention"]}
    assert rows["ATT-ROWS-SUM"]["notes"] == {} and rows["MHA-CONCAT"]["status"] == "not_applicable"


def test_a_module_in_the_project_is_named_by_its_name_and_declares_a_torch_dtype(project: pytest.Pytester) -> None:
    """The shortest adapter there is: a flat module beside the tests, its precision a torch dtype."""
    project.makepyfile(mymodel=(
        "import torch\nfrom nnspec.reference import numpy_ref\n"
        "nnspec_dtype = torch.float32\nnnspec_device = torch.device('cpu')\n"
        "softmax = numpy_ref.softmax\n"
    ))
    project.syspathinsert()
    result = project.runpytest("--nnspec-impl=mymodel", CATALOGUE, "--nnspec-profile=quick", "-v")
    result.stdout.fnmatch_lines([
        "nnspec implementation: mymodel, device cpu, dtype float32",
        "nnspec::T-SOFTMAX[[]mymodel[]] PASSED*",
    ])
    assert result.ret == pytest.ExitCode.OK


def test_an_implementation_named_twice_runs_once(project: pytest.Pytester) -> None:
    """``torch`` and ``torch:cpu:float32`` are one implementation: it runs once (two runs would give
    two tests with one id and two report rows for one (clause, implementation))."""
    result = project.runpytest(
        "--nnspec-impl=torch", "--nnspec-impl=torch:cpu:float32,numpy", "--nnspec-impl=numpy", CATALOGUE,
        "--nnspec-profile=quick", "--nnspec-clause=T-SOFTMAX",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "nnspec *: 1 clause, profile quick, seed 0",
        "nnspec: --nnspec-impl=torch:cpu:float32 is --nnspec-impl=torch again (torch:cpu:float32): it runs once",
        "nnspec: --nnspec-impl=numpy is --nnspec-impl=numpy again (numpy): it runs once",
    ])


def _installed_entry_point(project: pytest.Pytester, name: str, value: str) -> None:
    """An installed distribution's entry point in the group ``nnspec.implementations``: a dist-info
    folder on sys.path, which importlib.metadata reads as pip's install would leave it."""
    dist = project.mkdir("mylib-0.1.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mylib\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[nnspec.implementations]\n{name} = {value}\n")
    project.syspathinsert()


def test_one_module_named_by_its_entry_point_and_its_import_path_runs_once(project: pytest.Pytester) -> None:
    """The workflow audit's `nnspec verify mylib mylib_impl`: one module, so one run, not a usage
    error asking to rename one of the two (there is one object)."""
    project.makepyfile(mylib_impl="from nnspec.reference import numpy_ref\nsoftmax = numpy_ref.softmax\n")
    _installed_entry_point(project, "mylib", "mylib_impl")
    result = project.runpytest("--nnspec-impl=mylib", "--nnspec-impl=mylib_impl", CATALOGUE,
                               "--nnspec-profile=quick", "--nnspec-clause=T-SOFTMAX")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["nnspec: --nnspec-impl=mylib_impl is --nnspec-impl=mylib again (*): it runs once"])


def test_an_entry_point_to_a_module_of_implementations_is_told_the_import_path(project: pytest.Pytester) -> None:
    """An entry point naming a module whose objects are the implementations (README's ``mypkg =
    "mypkg.impl"`` with ``IMPL = torch_module(...)`` inside): the hint names the object by the
    module's import path, which loads, not by the entry point's name, which does not."""
    project.makepyfile(mylib_timpl=(
        "from nnspec.reference import numpy_ref\n"
        "class Kernels:\n    softmax = staticmethod(numpy_ref.softmax)\n"
        "IMPL = Kernels()\n"
    ))
    _installed_entry_point(project, "mylib-torch", "mylib_timpl")
    result = project.runpytest("--nnspec-impl=mylib-torch", CATALOGUE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*objects in it do: name one, e.g. mylib_timpl:IMPL (it has IMPL, Kernels), or point the entry point at the "
        'object: mylib-torch = "mylib_timpl:IMPL"',
    ])
    fixed = project.runpytest("--nnspec-impl=mylib_timpl:IMPL", CATALOGUE, "--nnspec-clause=T-SOFTMAX")
    fixed.assert_outcomes(passed=1)


def test_two_implementations_under_one_name_are_a_usage_error(project: pytest.Pytester) -> None:
    """Two versions of a package that both declare ``nnspec_name = "mypkg"`` would share test ids and
    report rows, so no one could tell their results apart."""
    for version in ("v1", "v2"):
        project.makepyfile(**{f"mypkg_{version}": (
            "from nnspec.reference import numpy_ref\nnnspec_name = 'mypkg'\nsoftmax = numpy_ref.softmax\n"
        )})
    project.syspathinsert()
    result = project.runpytest("--nnspec-impl=mypkg_v1", "--nnspec-impl=mypkg_v2", CATALOGUE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --nnspec-impl=mypkg_v2: it is named 'mypkg', as --nnspec-impl=mypkg_v1 is: their results "
        "would share test ids and report rows; give one of them another nnspec_name",
    ])


def test_the_plugin_loads_by_name_with_autoloading_off(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = project.runpytest_subprocess("-p", "nnspec", "-p", "xdist", "-n", "2", "--nnspec-impl=numpy",
                                          CATALOGUE, "--nnspec-profile=quick")
    result.assert_outcomes(passed=len(TEST_CLAUSES))
    without = project.runpytest_subprocess("--nnspec-impl=numpy", CATALOGUE)
    assert without.ret == pytest.ExitCode.USAGE_ERROR  # what nnspec verify hit before it loaded by name


def test_last_failed_reruns_the_failed_clauses(project: pytest.Pytester) -> None:
    """``--lf`` and ``--ff`` find the clauses that failed: pytest >= 9 parses a stored node id
    ``nnspec::T-RELU[broken]`` into the clause and its parameter, so the items must be built the same
    way (built from the name alone, none matched: '4 known failures not in selected tests')."""
    args = ["--nnspec-impl=broken_impls:BROKEN", CATALOGUE, "--nnspec-profile=quick", "--nnspec-time-limit=2"]
    project.runpytest(*args).assert_outcomes(passed=len(TEST_CLAUSES) - 4, failed=4)
    rerun = project.runpytest(*args, "--lf")
    rerun.assert_outcomes(failed=4, deselected=len(TEST_CLAUSES) - 4)
    rerun.stdout.fnmatch_lines(["run-last-failure: rerun previous 4 failures"])
    first = project.runpytest(*args, "--ff", "-v")
    first.stdout.fnmatch_lines(["*run-last-failure: rerun previous 4 failures first*"])


def test_cuda_is_not_applicable_without_a_gpu(project: pytest.Pytester) -> None:
    result = project.runpytest("--nnspec-impl=torch:cuda:float32", CATALOGUE, "--nnspec-profile=quick", "-rs")
    if torch.cuda.is_available():
        result.assert_outcomes(passed=len(TEST_CLAUSES))
    else:
        result.assert_outcomes(skipped=len(TEST_CLAUSES))
        result.stdout.fnmatch_lines(["*not applicable: torch:cuda:float32: no CUDA device is available*"])


@pytest.mark.slow
def test_xdist_gives_the_same_results(project: pytest.Pytester, tmp_path: Path) -> None:
    # the hanging capability is left out: its time-out is tested above, and waiting costs seconds
    args = ["--nnspec-impl=broken_impls:BROKEN", "--nnspec-impl=numpy", CATALOGUE,
            "--nnspec-profile=ci", "-k", "not RELU", "-p", "no:randomly"]
    # both in fresh processes: Hypothesis draws constants from the local modules already imported
    # (nnspec is installed editable), so a run inside this test process could see other examples
    serial = project.runpytest_subprocess(*args, "-n", "0", f"--nnspec-report={tmp_path / 'serial'}")
    # in README's form for xdist, --dist loadgroup (the others: test_documented_xdist_forms_...)
    parallel = project.runpytest_subprocess(*args, "-n", "2", "--dist", "loadgroup",
                                            f"--nnspec-report={tmp_path / 'parallel'}")
    serial.assert_outcomes(passed=5, failed=3, deselected=2)
    parallel.assert_outcomes(passed=5, failed=3)  # xdist does not count deselections
    assert _statuses(tmp_path / "serial") == _statuses(tmp_path / "parallel")
    rows = {
        r["clause_id"] + r["implementation"]: {k: v for k, v in r.items() if k != "duration"}
        for r in json.loads((tmp_path / "parallel" / "results.json").read_text())["results"]
    }
    again = {
        r["clause_id"] + r["implementation"]: {k: v for k, v in r.items() if k != "duration"}
        for r in json.loads((tmp_path / "serial" / "results.json").read_text())["results"]
    }
    # deterministic (ci profile, no example database): the same examples, errors and inputs
    assert rows == again
    # and the reports built from them agree, modulo timings and the worker count
    reports = [json.loads((tmp_path / d / "results.json").read_text()) for d in ("serial", "parallel")]
    for report in reports:
        validate(report)
        assert report["meta"]["complete"] is True
    assert reports[0]["summary"] == reports[1]["summary"]
    assert (reports[0]["meta"]["workers"], reports[1]["meta"]["workers"]) == (0, 2)
    timeless = [_without_timings((tmp_path / d / "report.md").read_text()) for d in ("serial", "parallel")]
    assert timeless[0] == timeless[1] and "T-SOFTMAX" in timeless[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("distribution", "n_workers"),
    [
        (["-n", "auto"], None),  # as many as xdist finds cores
        # README's form for several hosts, with local interpreters in place of ssh: `--tx` without
        # `-n` (xdist replaces every --tx by popen workers when -n is given)
        (["--dist", "load", "--tx", f"2*popen//python={sys.executable}"], 2),
    ],
    ids=["-n auto", "--tx popen"],
)
def test_documented_xdist_forms_give_the_serial_results(
    project: pytest.Pytester, tmp_path: Path, distribution: list[str], n_workers: int | None
) -> None:
    # The serial run's statuses are the broken implementation's by construction (and
    # test_xdist_gives_the_same_results compares a serial report with a parallel one in full), so
    # each form is held to them without running the serial baseline again.
    args = ["--nnspec-impl=broken_impls:BROKEN", CATALOGUE, "--nnspec-profile=ci", "-k", "not RELU"]
    spread = project.runpytest_subprocess(*args, *distribution, f"--nnspec-report={tmp_path / 'spread'}")
    spread.assert_outcomes(passed=1, failed=3)
    serial = {(c, "broken"): "failed" if c in EXPECTED_FAILURES else "passed" for c in TEST_CLAUSES if c != "T-RELU"}
    assert _statuses(tmp_path / "spread") == serial
    meta = json.loads((tmp_path / "spread" / "results.json").read_text())["meta"]
    assert meta["complete"] is True and meta["workers"] >= 1
    if n_workers is not None:
        assert meta["workers"] == n_workers


def _without_timings(markdown: str) -> str:
    """The Markdown report with start time, run duration and per-clause seconds blanked."""
    markdown = re.sub(r"\d{4}-\d\d-\d\dT[\d:+]+ \([\d.]+ s\)", "TIME", markdown)
    return re.sub(r"\| [\d.]+ \|$", "| S |", markdown, flags=re.MULTILINE)


def test_each_xdist_worker_gets_one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnspec.verify.plugin import _assign_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    monkeypatch.delenv("NNSPEC_GPU_ASSIGNED", raising=False)
    _assign_gpu("gw3")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    _assign_gpu("gw3")  # once per worker: a second call must not narrow it again
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"


def test_each_xdist_worker_sees_its_own_gpu_end_to_end(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real xdist workers (--dist each: every worker runs the recording test) under a torch:cuda
    # implementation: worker gwN must find only the N-th visible GPU in its environment before
    # torch could initialise CUDA. Without a GPU the clauses are deselected; the assignment is not.
    # Under `pytest -n 2` this test itself runs in a worker whose PYTEST_XDIST_WORKER leaks into
    # the run below: its controller must still hand each worker a different GPU.
    project.makepyfile(test_record="""
        import os
        from pathlib import Path

        def test_record_visible_gpu():
            worker = os.environ["PYTEST_XDIST_WORKER"]
            Path(os.environ["NNSPEC_RECORD_DIR"], worker).write_text(os.environ["CUDA_VISIBLE_DEVICES"])
    """)
    monkeypatch.setenv("NNSPEC_RECORD_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,7")
    monkeypatch.delenv("NNSPEC_GPU_ASSIGNED", raising=False)
    result = project.runpytest_subprocess(
        "--nnspec-impl=torch:cuda:float32", CATALOGUE, "-n", "2", "--dist", "each", "-k", "record"
    )
    result.assert_outcomes(passed=2)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"gw0": "4", "gw1": "7"}


DOUBLE_IMPORT_PROBE = '''
import collections, json, os, sys

def pytest_sessionfinish(session):
    names = collections.defaultdict(list)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path:
            names[os.path.realpath(path)].append(name)
    with open(os.environ["NNSPEC_PROBE_OUT"], "w") as out:
        json.dump({path: sorted(n) for path, n in names.items()}, out)
'''


@pytest.mark.slow
@pytest.mark.parametrize("where", ["a project of the user's", "the nnspec repository"])
def test_the_plugin_imports_each_module_once(tmp_path: Path, where: str) -> None:
    # The clauses come from the installed package, never from files pytest finds: no nnspec module
    # is imported under a second name (spec.attention beside nnspec.spec.attention), not even from
    # the repository root, where spec/, verify/, reference/ and report/ are plain folders.
    (tmp_path / "nnspec_probe.py").write_text(DOUBLE_IMPORT_PROBE)
    cwd = tmp_path if where.startswith("a project") else TESTS.parent
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NNSPEC_PROBE_OUT": str(tmp_path / "modules.json")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nnspec_probe", "--nnspec-impl=numpy", "--nnspec-impl=torch:cpu:float32",
         "--nnspec-clause=SM-SUM", "--nnspec-profile=quick", "-n", "0", "-q", "--rootdir", str(cwd), "-c", os.devnull,
         "--ignore", str(TESTS)],  # in the repository: the clauses alone, not nnspec's own suite
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    modules = json.loads((tmp_path / "modules.json").read_text())
    ours = {path: names for path, names in modules.items() if "nnspec" in " ".join(names)}
    assert any("nnspec.spec.attention" in names for names in ours.values())  # the catalogue was loaded
    twice = {path: names for path, names in ours.items() if len(names) > 1}
    assert not twice, f"imported under two names: {twice}"


def test_a_clause_stuck_in_native_code_fails_and_the_run_goes_on(project: pytest.Pytester, tmp_path: Path) -> None:
    """A softmax stuck in native code for good (a deadlock that keeps the GIL: the time limit's alarm
    never gets to run) is out of reach of the per-clause time limit. Under xdist the worker is ended
    after the grace period, the clause fails saying so, with the stack where it was stuck, a new
    worker runs the clauses after it, and the report is complete. (The limit is 3 s, not 1: the
    clauses after it start a fresh worker, and on a loaded CI machine 1 s is within its start-up.)"""
    report = tmp_path / "report"
    result = project.runpytest_subprocess(
        "--nnspec-impl=broken_impls:STUCK", CATALOGUE, "--nnspec-profile=quick",
        "--nnspec-time-limit=3", f"--nnspec-report={report}", "-n", "1", "-p", "xdist",
        timeout=240,
    )
    result.assert_outcomes(passed=len(TEST_CLAUSES) - 1, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*T-SOFTMAX [[]stuck[]] failed: Softmax matches the oracle.",
        "*did not return within the time limit (3 s, the per-clause time limit) and could not be "
        "interrupted: the call is stuck in native code*; nnspec ended the worker process 5 s after "
        "the limit and the run went on in a new one",
        "*where it was stuck (faulthandler's stack, most recent call first):",
        '*File "*broken_impls.py", line * in _stuck_softmax',
        # the time limit travels with the command: without it the clause would pass again
        "*reproduce: nnspec verify broken_impls:STUCK --clause T-SOFTMAX --profile quick --seed 0 "
        "--time-limit 3",
        "*or: python -m pytest --nnspec-impl=broken_impls:STUCK --nnspec-clause=T-SOFTMAX "
        "--nnspec-profile=quick --nnspec-seed=0 --nnspec-time-limit=3",
    ])
    assert "hypothesis" not in out.split("where it was stuck")[1].split("reproduce:")[0]
    assert "crashed" not in out.split("short test summary")[0].split("T-SOFTMAX [stuck] failed")[1][:2000]
    data = json.loads((report / "results.json").read_text())
    validate(data)
    assert data["meta"]["complete"], data["meta"]["incomplete_reason"]
    statuses = {r["clause_id"]: r["status"] for r in data["results"]}
    assert statuses == {cid: "failed" if cid == "T-SOFTMAX" else "passed" for cid in TEST_CLAUSES}
    row = next(r for r in data["results"] if r["clause_id"] == "T-SOFTMAX")
    assert "_stuck_softmax" in row["message"] and row["duration"] == 8.0


def test_a_clause_that_segfaults_fails_and_the_run_goes_on(project: pytest.Pytester, tmp_path: Path) -> None:
    """A layer norm that reads address 0 kills its worker with SIGSEGV; faulthandler writes where,
    the controller reports the clause failed with that stack, and the clauses after it still run."""
    report = tmp_path / "report"
    result = project.runpytest_subprocess(
        "--nnspec-impl=broken_impls:CRASHING", CATALOGUE, "--nnspec-profile=quick",
        f"--nnspec-report={report}", "-n", "1", "-p", "xdist", timeout=240,
    )
    result.assert_outcomes(passed=len(TEST_CLAUSES) - 1, failed=1)
    result.stdout.fnmatch_lines([
        "*T-LAYERNORM [[]crashing[]] failed: Layer norm matches the oracle.",
        "*crashed its process: Segmentation fault while the clause ran (native code*the worker died "
        "and the run went on in a new one",
        "*where it crashed (faulthandler's stack, most recent call first):",
        '*File "*broken_impls.py", line * in _segfaulting_layer_norm',
        "*reproduce: nnspec verify broken_impls:CRASHING --clause T-LAYERNORM --profile quick --seed 0",
    ])
    data = json.loads((report / "results.json").read_text())
    validate(data)
    assert data["meta"]["complete"], data["meta"]["incomplete_reason"]
    assert {r["clause_id"]: r["status"] for r in data["results"]} == {
        cid: "failed" if cid == "T-LAYERNORM" else "passed" for cid in TEST_CLAUSES
    }


@pytest.mark.slow
def test_more_crashes_than_xdist_replaces_by_default_still_run_every_clause(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    """xdist gives up after four crashed workers per worker; a kernel that segfaults in all five test
    clauses still gets all five failures, and a complete report."""
    report = tmp_path / "report"
    result = project.runpytest_subprocess(
        "--nnspec-impl=broken_impls:CRASHING_EVERYWHERE", CATALOGUE, "--nnspec-profile=quick",
        f"--nnspec-report={report}", "-n", "1", "-p", "xdist", timeout=400,
    )
    result.assert_outcomes(failed=len(TEST_CLAUSES))
    result.stdout.fnmatch_lines([f"crashing-everywhere: {len(TEST_CLAUSES)} failed"])
    assert "maximum crashed workers reached" not in result.stdout.str()
    data = json.loads((report / "results.json").read_text())
    assert data["meta"]["complete"], data["meta"]["incomplete_reason"]
    assert all("crashed its process: Segmentation fault" in r["message"] for r in data["results"])


def test_without_xdist_a_clause_stuck_in_native_code_shows_where(project: pytest.Pytester) -> None:
    """In one process nothing can end the stuck call without ending the run, so nnspec prints the
    stack (on the terminal, not into pytest's capture) and leaves the process waiting, in case the
    call does return; the test ends it."""
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nnspec-impl=broken_impls:STUCK",
            CATALOGUE, "--nnspec-profile=quick", "--nnspec-time-limit=1", "-k", "SOFTMAX"]
    with subprocess.Popen(args, cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        deadline = threading.Timer(120, process.kill)  # no stack at all: the read below ends too
        deadline.start()
        try:
            out = ""
            for line in process.stdout:  # type: ignore[union-attr]
                out += line
                if "_stuck_softmax" in line:
                    break
            assert process.poll() is None, out  # still waiting: the run was not ended
        finally:
            deadline.cancel()
            process.kill()
    assert "Timeout (0:00:06)!" in out, out
    assert re.search(r'File ".*broken_impls\.py", line \d+ in _stuck_softmax', out), out


START_UP_PROBE = '''
import json, os, sys

def pytest_runtest_setup(item):
    if item.nodeid.startswith("nnspec::"):
        from nnspec.verify import runner
        seen = {"imported": getattr(runner, "_WHOLE_PACKAGE_IMPORTED", None), "torch": "torch" in sys.modules}
        name = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(os.path.join(os.environ["NNSPEC_PROBE_DIR"], f"{name}.jsonl"), "a") as out:
            out.write(json.dumps(seen) + "\\n")
'''


@pytest.mark.parametrize(
    ("workers", "impl", "torch_imported"),
    [("1", "broken_impls:BROKEN", False), ("0", "torch:cpu:float32", True)],
)
def test_the_start_up_runs_before_the_first_clause_outside_its_test(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str, impl: str,
    torch_imported: bool,
) -> None:
    """nnspec's one-time start-up (every nnspec module, torch with them where the implementation
    needs it, Hypothesis warmed up) is done before the first clause's test begins, also in xdist
    workers: inside it, it counted towards that test and another plugin's per-test timeout cut
    torch's import short, breaking the run. A float64 run of code that does not use torch (the
    oracle, a NumPy kernel) never imports it: 1.5 s of every worker's start-up."""
    project.makeconftest(START_UP_PROBE)
    monkeypatch.setenv("NNSPEC_PROBE_DIR", str(tmp_path))
    # a fresh process: nothing imported yet (in this one the test suite imported it all)
    result = project.runpytest_subprocess(f"--nnspec-impl={impl}", CATALOGUE, "--nnspec-profile=quick",
                                          "-k", "SOFTMAX or SIGMOID", "-n", workers, "-p", "xdist")
    seen = [json.loads(line) for probe in tmp_path.glob("*.jsonl") for line in probe.read_text().splitlines()]
    assert len(seen) == 2, result.stdout.str()
    assert all(s == {"imported": True, "torch": torch_imported} for s in seen), seen


def test_only_what_needs_torch_imports_it() -> None:
    """float64 NumPy code needs no torch; code below float64 is judged against torch_ref's baseline
    at its precision, and code that imported torch itself has it already (a fresh process: this
    one imported torch long ago)."""
    code = ("import sys; from nnspec.verify import load_implementation as load; "
            "from nnspec.verify.runner import needs_torch; kernel = type('Kernel', (), {'dtype': 'float32'})(); "
            "print(needs_torch([load('numpy')]), needs_torch([load('numpy'), kernel]), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "False"], out
    from nnspec.verify.runner import needs_torch

    assert needs_torch([type("Kernel", (), {"dtype": "float64"})()])  # torch is imported in this process


def test_collect_only_does_not_start_up(project: pytest.Pytester, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--co runs no clause: nor the seconds of start-up; its summary counts what was collected."""
    project.makeconftest(
        "import sys\ndef pytest_sessionfinish(session):\n    print('TORCH', 'torch' in sys.modules)\n"
    )
    result = project.runpytest_subprocess("--nnspec-impl=numpy", "--nnspec-impl=broken_impls:BROKEN", CATALOGUE,
                                          "--co", "-q", "-k", "not RELU", "-s")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["TORCH False", "numpy: 4 clause runs collected", "broken: 4 clause runs collected"])
    out = result.stdout.str()
    assert "INCOMPLETE" not in out and "never ran" not in out and "nothing ran" not in out


MARKER_PROBE = '''
import json, os

def pytest_configure(config):
    # stand-ins for pytest-timeout and pytest-rerunfailures where they are not installed
    if os.environ.get("NNSPEC_FAKE_PLUGINS"):
        for name in ("timeout", "rerunfailures"):
            if not config.pluginmanager.hasplugin(name):
                config.pluginmanager.register(type(name, (), {})(), name)
                config.addinivalue_line("markers", f"{'flaky' if name == 'rerunfailures' else name}: stand-in")

def pytest_collection_finish(session):
    marks = {item.nodeid: sorted(f"{m.name}{m.args}{sorted(m.kwargs.items())}" for m in item.iter_markers())
             for item in session.items}
    with open(os.environ["NNSPEC_PROBE_OUT"], "w") as out:
        json.dump(marks, out)
'''


def test_clauses_opt_out_of_per_test_timeouts_and_reruns_only_where_those_plugins_are(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pytest-timeout active a clause carries ``timeout(0)`` (nnspec's own time limit governs
    it, a time-out is the clause's failure), with pytest-rerunfailures ``flaky(reruns=0)`` (a pass on
    a second try is a second answer to the same input); the user's own tests keep theirs. Without
    those plugins no marker is added: --strict-markers would refuse an unregistered one."""
    project.makeconftest(MARKER_PROBE)
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    out = tmp_path / "marks.json"
    monkeypatch.setenv("NNSPEC_PROBE_OUT", str(out))
    args = ["--nnspec-impl=numpy", CATALOGUE, "--co", "--strict-markers"]
    monkeypatch.setenv("NNSPEC_FAKE_PLUGINS", "1")
    assert project.runpytest(*args).ret == pytest.ExitCode.OK
    marks = json.loads(out.read_text())
    assert marks.pop("test_mine.py::test_mine") == []
    assert marks == {f"nnspec::{c}[numpy]": ["flaky()[('reruns', 0)]", "timeout(0,)[]"] for c in TEST_CLAUSES}
    monkeypatch.delenv("NNSPEC_FAKE_PLUGINS")
    assert project.runpytest(*args, "-p", "no:timeout", "-p", "no:rerunfailures").ret == pytest.ExitCode.OK
    assert all(m == [] for m in json.loads(out.read_text()).values())


RERUN_PROBE = '''
import json, pytest
from _pytest.runner import runtestprotocol

PROPERTIES, CALLS = [], []

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """What pytest-rerunfailures' --force-reruns 2 does (markers cannot stop it): a failed test runs
    again, up to three times, its failures before the last reported as reruns; here the
    implementation is mended after the first run, as a flaky kernel would pass on a second try."""
    import rerun_flaky
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(3):
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if "T-SOFTMAX" in item.nodeid:
            rerun_flaky.WRONG = False
        CALLS.append(rerun_flaky.CALLS)
        again = attempt < 2 and any(report.failed for report in reports)
        for report in reports:
            if report.when == "call":
                PROPERTIES.append(sum(1 for name, _ in report.user_properties if name == "nnspec_result"))
            if again and report.failed:
                report.outcome = "rerun"
            item.ihook.pytest_runtest_logreport(report=report)
        if not again:
            break
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True

def pytest_sessionfinish(session):
    print(f"PROPERTIES {PROPERTIES} CALLS {CALLS}")
'''


def test_a_clause_rerun_keeps_its_one_result_and_counts_once(project: pytest.Pytester, tmp_path: Path) -> None:
    """A rerun of a clause item (pytest-rerunfailures) does not run the clause again: its result was
    decided by its one run (a pass on a second try would be two answers to one input), and each
    report carries that one result, so the summary and the report count it once."""
    project.makepyfile(rerun_flaky=(
        "from nnspec.reference import numpy_ref\nfrom nnspec.verify import patched\n"
        "WRONG, CALLS = True, 0\n"
        "def _softmax(x, axis=-1, temperature=1.0):\n    global CALLS\n    CALLS += 1\n"
        "    return numpy_ref.softmax(x, axis=axis, temperature=temperature) * (1.5 if WRONG else 1.0)\n"
        "IMPL = patched('numpy', name='rerun-flaky', softmax=_softmax)\n"
    ))
    project.makeconftest(RERUN_PROBE)
    project.syspathinsert()
    report = tmp_path / "report"
    result = project.runpytest_subprocess("--nnspec-impl=rerun_flaky:IMPL", CATALOGUE, "--nnspec-profile=quick",
                                          "-k", "SOFTMAX or SIGMOID", f"--nnspec-report={report}", "-s")
    result.stdout.fnmatch_lines(["rerun-flaky: 1 failed, 1 passed"])
    outcomes = result.parseoutcomes()
    assert (outcomes["failed"], outcomes["passed"]) == (1, 1), outcomes
    properties, calls = re.search(r"PROPERTIES (\[.*\]) CALLS (\[.*\])", result.stdout.str()).groups()
    assert json.loads(properties) == [1] * 4  # T-SIGMOID passed once, T-SOFTMAX failed thrice: one result each
    # the implementation's calls after each run: T-SIGMOID's none, T-SOFTMAX's all in its first
    sigmoid, *softmax = json.loads(calls)
    assert sigmoid == 0 and softmax[0] > 0 and softmax == [softmax[0]] * 3, calls
    assert _statuses(report) == {("T-SOFTMAX", "rerun-flaky"): "failed", ("T-SIGMOID", "rerun-flaky"): "passed"}


def test_the_real_rerunfailures_neither_reruns_nor_double_counts_a_clause(project: pytest.Pytester) -> None:
    pytest.importorskip("pytest_rerunfailures")
    result = project.runpytest_subprocess("--nnspec-impl=broken_impls:BROKEN", CATALOGUE, "--nnspec-profile=quick",
                                          "-k", "not RELU", "--reruns", "2", "-p", "rerunfailures")
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines(["broken: 3 failed, 1 passed"])
    assert "rerun" not in result.stdout.str().splitlines()[-1]


def test_the_real_pytest_timeout_leaves_clauses_to_nnspecs_time_limit(project: pytest.Pytester, tmp_path: Path) -> None:
    """pytest-timeout's --timeout (here its thread method, which ends the whole process) governs the
    user's tests, not the clauses: the hanging ReLU fails on nnspec's own limit, the run ends with
    its report, and the start-up (torch's import) is not cut short."""
    pytest.importorskip("pytest_timeout")
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    report = tmp_path / "report"
    result = project.runpytest_subprocess(
        "--nnspec-impl=broken_impls:BROKEN", "--nnspec-impl=torch:cpu:float32", CATALOGUE,
        "--nnspec-profile=quick", "--nnspec-time-limit=2", "-p", "timeout", "--timeout=1",
        "--timeout-method=thread", f"--nnspec-report={report}",
    )
    result.assert_outcomes(failed=4, passed=len(TEST_CLAUSES) + 2)
    result.stdout.fnmatch_lines(["*timed out after 2 s while broken's relu was running*", "report written to *"])
    assert "Timeout (>1.0s) from pytest-timeout" not in result.stdout.str()


def test_a_stop_at_the_users_own_test_is_named_and_keeps_the_report(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    """-x stopped by a failing test of the user's before any clause ran: the summary says the stop
    came from outside nnspec, and the last report is not replaced by one of rows that never ran."""
    report = tmp_path / "report"
    args = ["--nnspec-impl=numpy", CATALOGUE, "--nnspec-profile=quick", f"--nnspec-report={report}",
            "-p", "no:randomly"]
    project.runpytest(*args).assert_outcomes(passed=len(TEST_CLAUSES))
    before = (report / "results.json").read_text()
    project.makepyfile(test_mine="def test_fails():\n    assert False\n")
    result = project.runpytest(*args, "-x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "numpy: nothing ran, 5 never ran",
        "nnspec: the run is INCOMPLETE: stopped early: stopping after 1 failures (the stop came from a test "
        "outside nnspec: test_mine.py::test_fails); 5 selected clause result(s) missing",
        f"nnspec: report NOT written to {report}: no clause ran (stopped early: stopping after 1 failures (the "
        "stop came from a test outside nnspec: test_mine.py::test_fails)); the previous report there is unchanged",
    ])
    assert (report / "results.json").read_text() == before
    # --sw stops the same way: a stop, not a Ctrl-C
    stepwise = project.runpytest(*args, "--sw")
    stepwise.stdout.fnmatch_lines([
        "nnspec: the run is INCOMPLETE: stopped early: Test failed, continuing from this test next run. (the stop "
        "came from a test outside nnspec: test_mine.py::test_fails)*",
    ])
    assert "Ctrl-C" not in stepwise.stdout.str()
    assert (report / "results.json").read_text() == before


@pytest.mark.slow
def test_under_xdist_a_stop_at_the_users_own_test_is_named(project: pytest.Pytester) -> None:
    project.makepyfile(test_mine="def test_fails():\n    assert False\n")
    result = project.runpytest_subprocess("--nnspec-impl=numpy", CATALOGUE, "--nnspec-profile=quick", "-x",
                                          "-n", "1", "-p", "xdist", "-p", "no:randomly")
    result.stdout.fnmatch_lines([
        "nnspec: the run is INCOMPLETE: stopped early: stopping after 1 failures (the stop came from a test "
        "outside nnspec: test_mine.py::test_fails)*",
    ])
    assert "Ctrl-C" not in result.stdout.str()


def test_a_failing_clause_id_as_printed_selects_that_clause_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node ids pytest prints (``nnspec::T-SOFTMAX[broken]``; from a subdirectory
    ``../nnspec::...``) can be passed back: they select those clause runs, and nothing else is
    collected unless other arguments are given."""
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    args = ["--nnspec-impl=broken_impls:BROKEN", "--nnspec-impl=numpy", CATALOGUE, "--nnspec-profile=quick", "-v"]
    result = project.runpytest(*args, "nnspec::T-SOFTMAX[broken]", "nnspec::T-MASK")
    result.assert_outcomes(failed=1, passed=2)
    result.stdout.fnmatch_lines(["*collected 3 items*"])
    # as printed from a subdirectory, with a test file of the user's beside it
    sub = project.mkdir("sub")
    (sub / "test_here.py").write_text("def test_here():\n    pass\n")
    monkeypatch.chdir(sub)
    result = project.runpytest(*args, "../nnspec::T-SOFTMAX[broken]", "test_here.py")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["FAILED ../nnspec::T-SOFTMAX[[]broken[]] - *"])
    # a run the session does not have, and an id without an implementation to run it on
    unknown = project.runpytest(*args, "../nnspec::T-SOFTMAX[torch]")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["ERROR: not found: ../nnspec::T-SOFTMAX[[]torch[]] (no clause run of this "
                                  "session has that id; *e.g. nnspec::T-SIGMOID[[]broken[]])"])
    alone = project.runpytest(CATALOGUE, "../nnspec::T-SOFTMAX[broken]")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(["ERROR: ../nnspec::T-SOFTMAX[[]broken[]]: a clause run of nnspec's plugin, *"])


@pytest.mark.slow
def test_a_clause_id_selects_under_xdist_too(project: pytest.Pytester) -> None:
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = project.runpytest_subprocess("--nnspec-impl=broken_impls:BROKEN", CATALOGUE, "--nnspec-profile=quick",
                                          "-n", "2", "-p", "xdist", "nnspec::T-SOFTMAX[broken]", "nnspec::T-MASK")
    result.assert_outcomes(failed=1, passed=1)


def test_a_module_beside_plain_pytest_gets_the_reason_it_is_not_found(project: pytest.Pytester) -> None:
    """Plain ``pytest`` (its console script) does not put the current directory on sys.path, unlike
    ``python -m pytest``: a module there named as the implementation is 'unknown', and the error
    says why and what to do."""
    project.makepyfile(myimpl="from nnspec.reference.numpy_ref import softmax\n")
    plain = [sys.executable, "-c", "import sys; sys.path.pop(0); import pytest; sys.exit(pytest.console_main())"]
    env = {**os.environ, "PYTHONPATH": str(TESTS)}  # no empty entry: that would be the current directory
    run = subprocess.run([*plain, "--nnspec-impl=myimpl", CATALOGUE], cwd=project.path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert ("ERROR: --nnspec-impl=myimpl: unknown implementation 'myimpl'; " in run.stderr
            and "; myimpl.py is in the current directory, but plain `pytest` does not put the current directory "
            "on sys.path: run `python -m pytest`, or set `pythonpath = .` in the pytest configuration"
            in run.stderr), run.stderr
    project.makeini("[pytest]\npythonpath = .\n")
    run = subprocess.run([*plain, "--nnspec-impl=myimpl", CATALOGUE, "--nnspec-profile=quick", "-k", "SOFTMAX"],
                         cwd=project.path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
