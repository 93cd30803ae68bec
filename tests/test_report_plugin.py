"""Reports written by the pytest plugin: complete runs, runs stopped by ``-x``, by Ctrl-C and by a
crashed xdist worker, ``--junitxml`` alongside, and a directory that is not nnspec's."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from broken_impls import TEST_CLAUSES
from nnspec.report import validate

pytest_plugins = ["pytester"]

TESTS = Path(__file__).parent
CATALOGUE = "--nnspec-catalogue=broken_impls:TEST_CLAUSES"

# A catalogue with a clause in the middle that stops the run the way a user or the system does.
STOPPING_CATALOGUE = '''
import os
from broken_impls import TEST_CLAUSES, TEST_SOURCE
from nnspec.spec.clause import Clause


def _ctrl_c(impl, ck):
    raise KeyboardInterrupt  # what Ctrl-C raises in the main thread


def _worker_dies(impl, ck):
    os._exit(3)  # a segfaulting kernel, an OOM kill: the process is gone


def _with(stop):
    middle = Clause(id="T-STOP", statement="The run stops here.", source=TEST_SOURCE,
                    needs=("softmax",), prop=stop, topic="engine-selftest", hypothesis=False)
    return {"T-SIGMOID": TEST_CLAUSES["T-SIGMOID"], "T-STOP": middle, "T-SOFTMAX": TEST_CLAUSES["T-SOFTMAX"]}


CTRL_C = _with(_ctrl_c)
CRASH = _with(_worker_dies)
'''


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project outside the repository that can import tests/broken_impls.py (also in xdist workers)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(pytester.path),
                                                      os.environ.get("PYTHONPATH", "")]))
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(stopping=STOPPING_CATALOGUE)
    pytester.syspathinsert()
    return pytester


def _report(path: Path) -> dict[str, Any]:
    data = json.loads((path / "results.json").read_text())
    validate(data)
    return data


def _statuses(data: dict[str, Any]) -> dict[str, str]:
    return {r["clause_id"]: r["status"] for r in data["results"]}


def test_a_complete_run_writes_every_format(project: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "report"
    junit = out / "junit.xml"  # in the report directory: it stays, beside the report
    result = project.runpytest("--nnspec-impl=numpy", CATALOGUE, "--nnspec-profile=quick", "-k", "not RELU",
                               f"--nnspec-report={out}", f"--junitxml={junit}", "-p", "no:randomly")
    result.assert_outcomes(passed=4, deselected=1)
    result.stdout.fnmatch_lines(["report written to *: results.json, report.md, report.html"])
    data = _report(out)
    assert data["meta"]["complete"] is True and data["meta"]["incomplete_reason"] is None
    assert data["meta"]["command"].startswith("pytest --nnspec-impl=numpy")
    assert set(_statuses(data)) == set(TEST_CLAUSES) - {"T-RELU"}  # deselected is not skipped
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for clause_id in _statuses(data):
        assert f"| {clause_id} | numpy | passed |" in md and f"<strong>{clause_id}</strong>" in html
    # --junitxml keeps working alongside
    assert sorted(p.name for p in out.iterdir()) == [".nnspec-report", "junit.xml", "report.html", "report.md",
                                                    "results.json"]
    cases = ET.parse(junit).getroot().iter("testcase")
    assert sorted(c.get("name") for c in cases) == sorted(f"{c}[numpy]" for c in _statuses(data))


def test_pytest_x_leaves_a_report_marked_incomplete(project: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = project.runpytest("--nnspec-impl=broken_impls:BROKEN", CATALOGUE, "--nnspec-profile=quick",
                               f"--nnspec-report={out}", "-x", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    data = _report(out)
    assert data["meta"]["complete"] is False
    assert "stopped early" in data["meta"]["incomplete_reason"]
    assert _statuses(data) == {"T-SIGMOID": "failed", "T-SOFTMAX": "skipped", "T-LAYERNORM": "skipped",
                               "T-RELU": "skipped", "T-MASK": "skipped"}
    assert data["summary"]["conformance"] == 0.0 and data["summary"]["counts"]["skipped"] == 4
    assert "**Incomplete run**: stopped early" in (out / "report.md").read_text()
    # incomplete does not hide the failure that stopped it: both banners, never a green one
    html = (out / "report.html").read_text()
    assert 'id="incomplete"' in html and 'id="does-not-conform"' in html and "banner ok" not in html


def test_ctrl_c_leaves_a_report_marked_incomplete(project: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = project.runpytest("--nnspec-impl=numpy", "--nnspec-catalogue=stopping:CTRL_C",
                               "--nnspec-profile=quick", f"--nnspec-report={out}", "-p", "no:randomly",
                               no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = _report(out)
    assert data["meta"]["complete"] is False and data["meta"]["exitstatus"] == 2
    assert data["meta"]["incomplete_reason"].startswith("interrupted (Ctrl-C)")
    assert _statuses(data) == {"T-SIGMOID": "passed", "T-STOP": "skipped", "T-SOFTMAX": "skipped"}
    assert 'id="incomplete"' in (out / "report.html").read_text()


@pytest.mark.slow
def test_a_crashed_worker_leaves_a_report_marked_incomplete(project: pytest.Pytester, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = project.runpytest_subprocess(
        "--nnspec-impl=numpy", "--nnspec-catalogue=stopping:CRASH", "--nnspec-profile=quick",
        f"--nnspec-report={out}", "-p", "no:randomly", "-n", "1", "--max-worker-restart=0",
    )
    assert result.ret != 0
    data = _report(out)
    assert data["meta"]["complete"] is False
    assert "crashed" in data["meta"]["incomplete_reason"] and "T-STOP" in data["meta"]["incomplete_reason"]
    assert _statuses(data) == {"T-SIGMOID": "passed", "T-STOP": "skipped", "T-SOFTMAX": "skipped"}
    stop = next(r for r in data["results"] if r["clause_id"] == "T-STOP")
    assert stop["message"].startswith("no result: it crashed") and "crashed" in stop["message"]


def test_a_directory_nnspec_did_not_write_is_refused(project: pytest.Pytester, tmp_path: Path) -> None:
    (tmp_path / "paper.tex").write_text("precious")
    result = project.runpytest("--nnspec-impl=numpy", CATALOGUE, f"--nnspec-report={tmp_path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--nnspec-report=*not written by nnspec*"])
    assert [p.name for p in tmp_path.iterdir()] == ["paper.tex"]


def test_a_run_of_no_clause_keeps_the_last_report(project: pytest.Pytester, tmp_path: Path) -> None:
    """``--co`` runs nothing: with --nnspec-report in addopts it must not replace the last report
    with one whose every row is missing."""
    out = tmp_path / "report"
    args = ["--nnspec-impl=numpy", CATALOGUE, "--nnspec-profile=quick", f"--nnspec-report={out}"]
    project.runpytest(*args).assert_outcomes(passed=len(TEST_CLAUSES))
    before = (out / "results.json").read_text()
    listed = project.runpytest(*args, "--collect-only", "-q")
    assert listed.ret == pytest.ExitCode.OK
    listed.stdout.fnmatch_lines([
        f"numpy: {len(TEST_CLAUSES)} clause runs collected",
        "nnspec: --collect-only ran no clause: no report written, *report is as it was",
    ])
    assert "INCOMPLETE" not in listed.stdout.str() and "never ran" not in listed.stdout.str()
    assert (out / "results.json").read_text() == before
    assert _report(out)["meta"]["complete"] is True
    # nor does a selection of no clause (a -k typo in a CI job): 0 of 0 would read as conformance
    none = project.runpytest(*args, "-k", "NO_SUCH_CLAUSE")
    none.stdout.fnmatch_lines(["nnspec: no clause was selected: no report written, *report is as it was"])
    assert (out / "results.json").read_text() == before


def test_a_collection_error_is_named_and_keeps_the_last_report(project: pytest.Pytester, tmp_path: Path) -> None:
    """A test file of the user's that fails to import stops pytest before any test: the summary names
    that as the cause (not Ctrl-C, though pytest stops with its KeyboardInterrupt-derived
    Interrupted), and the last report is not replaced by one of clauses that never ran."""
    out = tmp_path / "report"
    args = ["--nnspec-impl=numpy", CATALOGUE, "--nnspec-profile=quick", f"--nnspec-report={out}"]
    project.runpytest(*args).assert_outcomes(passed=len(TEST_CLAUSES))
    before = (out / "results.json").read_text()
    project.makepyfile(test_broken_import="import not_a_module_xyz\n")
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "numpy: nothing ran, 5 never ran",
        "nnspec: the run is INCOMPLETE: 1 collection error(s) (test_broken_import.py): pytest ran no test; "
        "5 selected clause result(s) missing",
        f"nnspec: report NOT written to {out}: no clause ran (1 collection error(s) (test_broken_import.py): "
        "pytest ran no test); the previous report there is unchanged",
    ])
    assert "Ctrl-C" not in result.stdout.str()
    assert (out / "results.json").read_text() == before
    # with no report there yet, none is started either
    fresh = tmp_path / "fresh"
    result = project.runpytest(*args[:-1], f"--nnspec-report={fresh}")
    result.stdout.fnmatch_lines([f"nnspec: report NOT written to {fresh}: no clause ran (1 collection error(s) *)"])
    assert not fresh.exists()
