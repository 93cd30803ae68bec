"""Reports in-process: the schema, the summaries, the three formats, the figures, the output
directory rules, comparisons and the kill matrix. Rows come from real clause runs (the engine's
:func:`run_clause`) so every status a report can hold is produced the way a run produces it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from broken_impls import BROKEN, TEST_CLAUSES, TEST_SOURCE
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnspec.reference import numpy_ref
from nnspec.report import (
    MARKER,
    ReportDirError,
    build_report,
    compare_reports,
    load_report,
    run_metadata,
    skipped_row,
    validate,
    write_kill_matrix,
    write_report,
)
from nnspec.report.figures import attention_heatmap, parse_preview
from nnspec.spec.clause import Clause
from nnspec.verify import patched
from nnspec.verify.check import summarise
from nnspec.verify.cli import main
from nnspec.verify.runner import run_clause


def _clause_raises(impl: Any, ck: Any) -> None:
    raise ValueError("a bug in the clause itself")


BROKEN_CLAUSE = Clause(id="T-BROKEN-CLAUSE", statement="A clause whose property has a bug.",
                       source=TEST_SOURCE, needs=("softmax",), prop=_clause_raises, topic="engine-selftest")


def _sdpa_ignoring_the_mask(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: Any = None) -> Any:
    return numpy_ref.scaled_dot_product_attention(q, k, v, None)


NO_MASK = patched("numpy", name="no-mask", scaled_dot_product_attention=_sdpa_ignoring_the_mask)
NO_SOFTMAX = patched("numpy", name="no-softmax", softmax=None)


def _meta(names: list[str], *, complete: bool = True, reason: str | None = None) -> dict[str, Any]:
    now = time.time()
    return run_metadata(
        implementations=[{"name": n, "version": "test", "device": "cpu", "dtype": "float64",
                          "available": True, "conventions": {}} for n in names],
        profile="quick", seed=0, started=now - 1.0, finished=now, complete=complete,
        incomplete_reason=reason,
    )


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    """passed, failed (three ways, one of them an attention clause), error and not applicable."""
    runs = [
        ("T-SOFTMAX", "numpy"), ("T-SIGMOID", "numpy"),
        ("T-SOFTMAX", BROKEN), ("T-LAYERNORM", BROKEN), ("T-SIGMOID", BROKEN),
        (BROKEN_CLAUSE, "numpy"), ("T-SOFTMAX", NO_SOFTMAX),
        ("ATT-MASK-ZERO", NO_MASK),
    ]
    out = []
    for clause, impl in runs:
        clause = TEST_CLAUSES.get(clause, clause) if isinstance(clause, str) else clause
        out.append(run_clause(clause, impl, profile="quick").to_dict())
    return out


@pytest.fixture(scope="module")
def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    skipped = skipped_row(TEST_CLAUSES["T-RELU"], "numpy", "never ran: interrupted")
    return build_report([*rows, skipped], _meta(["numpy", "broken", "no-softmax", "no-mask"]))


@pytest.fixture(scope="module")
def written(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_report(report, tmp_path_factory.mktemp("report") / "out")


def test_every_status_is_produced_and_validates(report: dict[str, Any], written: dict[str, Path]) -> None:
    statuses = {r["status"] for r in report["results"]}
    assert statuses == {"passed", "failed", "error", "not_applicable", "skipped"}
    on_disk = json.loads(written["json"].read_text())
    validate(on_disk)
    assert on_disk == json.loads(json.dumps(report))


def test_summary_counts_and_conformance(report: dict[str, Any]) -> None:
    s = report["summary"]
    assert s["counts"] == {"passed": 2, "failed": 4, "error": 1, "not_applicable": 1, "skipped": 1}
    # conformance = passed / (passed + failed + error): N/A and skipped count for nothing
    assert s["applicable"] == 7 and s["conformance"] == pytest.approx(100 * 2 / 7)
    assert s["by_implementation"]["broken"]["conformance"] == 0.0
    assert s["by_implementation"]["no-softmax"]["conformance"] is None
    assert s["by_topic"]["attention"]["counts"]["failed"] == 1
    assert sum(t["total"] for t in s["by_topic"].values()) == s["total"] == 9


def test_failure_rows_carry_counterexample_and_reproduce(report: dict[str, Any]) -> None:
    failed = [r for r in report["results"] if r["status"] == "failed"]
    for r in failed:
        # the report's failing implementation is a patched() object: it reproduces in Python
        python_call = f"run_clause({r['clause_id']!r}, patched('numpy', name={r['implementation']!r}"
        assert r["reproduce"].startswith(python_call), r["reproduce"]
    mask = next(r for r in failed if r["clause_id"] == "ATT-MASK-ZERO")
    assert "q = array(" in mask["counterexample"] and mask["examples_to_failure"] >= 1


@pytest.mark.parametrize(
    ("path", "value"),
    [(("results", 0, "status"), "green"), (("meta", "complete"), "yes"), (("schema",), "nnspec-report/0"),
     (("summary", "counts", "passed"), -1)],
)
def test_the_schema_rejects_broken_reports(report: dict[str, Any], path: tuple, value: Any) -> None:
    bad = json.loads(json.dumps(report))
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_the_schema_requires_a_reason_when_incomplete(report: dict[str, Any]) -> None:
    bad = json.loads(json.dumps(report))
    bad["meta"]["complete"] = False
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad["meta"]["incomplete_reason"] = "interrupted (Ctrl-C)"
    validate(bad)


def test_markdown_and_html_contain_every_clause(report: dict[str, Any], written: dict[str, Path]) -> None:
    md, html = written["md"].read_text(), written["html"].read_text()
    for r in report["results"]:
        assert f"| {r['clause_id']} | {r['implementation']} | {r['status'].replace('_', ' ')} |" in md
        assert f'data-status="{r["status"]}" data-topic="{r["topic"]}" data-impl="{r["implementation"]}"' in html
        assert r["statement"].replace("'", "&#39;") in html
    assert "**Conformance 28.6%**" in md
    assert md.count("<details>") == 5  # the four failures and the error
    for r in report["results"]:
        if r["status"] == "failed":  # in the failure text once, not again under it
            assert md.count(r["reproduce"]) == 1, r["reproduce"]
            assert f" | {r['examples']} (+{r['shrinks']} shrinking) | " in md
    assert "T-SOFTMAX [broken] failed" in html and "reproduce" in html


def test_a_partly_checked_row_says_what_was_not_checked(tmp_path: Path) -> None:
    """A kernel with single-head attention alone passes ATT-ORACLE on that part; every format
    says the multi-head part did not run, so a pass never reads as more than was checked."""
    kernel = patched("numpy", name="sdpa-only", multi_head_attention=None)
    row = run_clause("ATT-ORACLE", kernel, profile="quick").to_dict()
    data = build_report([row], _meta(["sdpa-only"]))
    validate(data)
    assert data["results"][0]["notes"]["not offered"] == ["multi_head_attention"]
    files = write_report(data, tmp_path / "out")
    md, html = files["md"].read_text(), files["html"].read_text()
    assert "| ATT-ORACLE | sdpa-only | passed (without multi_head_attention) |" in md
    assert "not checked: the parts that need multi_head_attention, which it does not offer" in html
    # and the summaries count it apart: conformance is over what ran, and says how much was partial
    assert data["summary"]["partly_passed"] == 1
    assert data["summary"]["by_implementation"]["sdpa-only"]["partly_passed"] == 1
    assert "(1 of 1 applicable clause results passed, 1 of them on the part the implementation offers)" in md
    assert "| 1 (1 partly) |" in md
    assert "1 passed on part" in html and "1 (1 partly)" in html
    # beside the whole oracle in a comparison, the kernel's pass is marked as one on part
    whole = run_clause("ATT-ORACLE", "numpy", profile="quick").to_dict()
    write_report(build_report([whole], _meta(["numpy"])), tmp_path / "whole", formats=("json",))
    assert main(["report", "compare", str(tmp_path / "whole"), str(tmp_path / "out"), "-o", str(tmp_path / "cmp")]) == 0
    assert "| ATT-ORACLE | pass | pass (part) |" in (tmp_path / "cmp" / "compare.md").read_text()
    assert "on part: without multi_head_attention" in (tmp_path / "cmp" / "compare.html").read_text()
    assert json.loads(files["json"].read_text())["results"][0]["notes"] == {"not offered": ["multi_head_attention"]}


def test_html_is_self_contained_with_its_figures(written: dict[str, Path]) -> None:
    html = written["html"].read_text()
    # no external resource of any kind: no src/href to a URL, no @import, no url(http...)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "url(http" not in html
    for figure in ("fig-error", "fig-topics", "fig-attention"):
        assert re.search(rf'<figure id="{figure}">\s*<svg', html), figure
    assert 'id="fig-pe"' not in html  # no positional-encoding clause ran
    assert "<title>nnspec conformance report: numpy, broken, no-softmax, no-mask</title>" in html


def test_incomplete_reports_say_so(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    report = build_report(rows[:2], _meta(["numpy"], complete=False, reason="interrupted (Ctrl-C)"))
    paths = write_report(report, tmp_path / "r")
    assert "**Incomplete run**: interrupted (Ctrl-C)" in paths["md"].read_text()
    assert 'id="incomplete"' in paths["html"].read_text()
    assert json.loads(paths["json"].read_text())["meta"]["complete"] is False


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=3).filter(lambda s: np.prod(s) <= 6),
                  elements=st.floats(-100, 100, width=32).map(lambda x: round(x, 2))).filter(lambda a: a.size))
def test_counterexample_previews_parse_back(x: np.ndarray) -> None:
    label, parsed = parse_preview(f"q = {summarise(x)}")
    assert label == "q" and parsed.shape == x.shape
    np.testing.assert_allclose(parsed, x, rtol=1e-3, atol=1e-3)  # previews keep 4 significant digits


def test_truncated_previews_are_not_guessed() -> None:
    assert parse_preview(f"q = {summarise(np.arange(12.0).reshape(3, 4))}") is None
    assert parse_preview("n_q = 3") is None
    mask = parse_preview(f"mask = {summarise(np.array([[True, False]]))}")
    assert mask is not None and mask[1].dtype == bool and mask[1].tolist() == [[True, False]]


def test_attention_heatmap_needs_the_whole_input() -> None:
    row = {"clause_id": "ATT-X", "implementation": "x",
           "counterexample": "q = array(1, 1) float64 [0.]\nk = array(2, 1) float64 [0., 1.]\n"
                             "mask = array(1, 2) bool [ True, False]"}
    svg = attention_heatmap(row)
    assert svg is not None and svg.startswith("<svg") and "masked" in svg and "1.00" in svg
    row["counterexample"] = "q = array(1, 1) float64 [0.]"
    assert attention_heatmap(row) is None


# ------------------------------------------------------------------------------------------------
# the output directory
# ------------------------------------------------------------------------------------------------


def test_a_foreign_directory_is_refused_and_left_alone(report: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ReportDirError, match="not written by nnspec"):
        write_report(report, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_earlier_report_is_replaced_whole(report: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r"
    write_report(report, out)
    (out / "stale.txt").write_text("from the earlier run")
    write_report(report, out, formats=("json",))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "results.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no staging or old directory left


def test_cli_refuses_a_foreign_report_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "thesis.tex").write_text("")
    code = main(["verify", "numpy", "--profile", "quick", "--report", str(tmp_path),
                 "--catalogue", "broken_impls:TEST_CLAUSES"])
    assert code == 2
    assert "not written by nnspec" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# comparison and kill matrix
# ------------------------------------------------------------------------------------------------


def test_compare_highlights_disagreements(rows: list[dict[str, Any]], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    good = [r for r in rows if r["implementation"] == "numpy" and r["clause_id"].startswith("T-S")]
    bad = [r for r in rows if r["implementation"] == "broken"]
    write_report(build_report(good, _meta(["numpy"])), tmp_path / "a", formats=("json",))
    write_report(build_report(bad, _meta(["broken"])), tmp_path / "b", formats=("json",))
    data = compare_reports([load_report(tmp_path / "a"), load_report(tmp_path / "b" / "results.json")])
    assert data["disagreements"] == ["T-SOFTMAX", "T-SIGMOID"]
    assert [c["key"] for c in data["columns"]] == ["numpy", "broken"]
    layer_norm = next(r for r in data["rows"] if r["clause_id"] == "T-LAYERNORM")
    assert not layer_norm["disagree"] and set(layer_norm["cells"]) == {"broken"}

    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "c")]) == 0
    md = (tmp_path / "c" / "compare.md").read_text()
    assert "**2 clause(s) where they disagree**: T-SOFTMAX, T-SIGMOID" in md
    assert "| ⚠ **T-SOFTMAX** | pass | **FAIL** |" in md
    html = (tmp_path / "c" / "compare.html").read_text()
    assert html.count('class="disagree"') == 2 and "T-LAYERNORM" in html
    # the written files are printed as the folder they are in, not as `sub/../e`
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    capsys.readouterr()
    assert main(["report", "compare", "../a", "../b", "-o", "../e"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path.resolve() / "e" / name) for name in ("compare.json", "compare.md", "compare.html")]
    monkeypatch.chdir(tmp_path)
    # a file that is not a report is a usage error, not a traceback
    (tmp_path / "x.json").write_text('{"results": []}')
    assert main(["report", "compare", str(tmp_path / "x.json"), "-o", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "nnspec report compare:" in err and f"{tmp_path / 'x.json'} is not an nnspec report" in err
    (tmp_path / "a" / "report.md").write_text("# not JSON")
    assert main(["report", "compare", str(tmp_path / "a" / "report.md"), "-o", str(tmp_path / "d")]) == 2
    assert "report.md is not JSON" in capsys.readouterr().err


def test_compare_never_replaces_a_report(rows: list[dict[str, Any]], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``-o`` naming one of the inputs (or any conformance report) would delete that report."""
    numpy_rows = [r for r in rows if r["implementation"] == "numpy"]
    broken_rows = [r for r in rows if r["implementation"] == "broken"]
    write_report(build_report(numpy_rows, _meta(["numpy"])), tmp_path / "a")
    write_report(build_report(broken_rows, _meta(["broken"])), tmp_path / "b")
    before = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "b")]) == 2
    assert "is where" in capsys.readouterr().err
    write_report(build_report(numpy_rows, _meta(["numpy"])), tmp_path / "c")
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "holds a conformance report that nnspec wrote; refusing to replace it with a comparison" in err
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == before
    assert (tmp_path / "c" / "results.json").is_file()
    # nor a report over a comparison: each kind replaces only its own kind
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "d")]) == 0
    with pytest.raises(ReportDirError, match="holds a comparison of reports"):
        write_report(build_report(numpy_rows, _meta(["numpy"])), tmp_path / "d")
    # the same report twice is two identical columns that look like agreement
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "a" / "results.json"),
                 "-o", str(tmp_path / "e")]) == 2
    assert "are the same report; name each report once" in capsys.readouterr().err


KILL_MATRIX = {
    "schema": "nnspec-kill-matrix/1", "profile": "quick", "seed": 0,
    "clauses": ["SM-SUM", "SM-SHIFT", "ATT-MASK-ZERO", "LN-MEAN"],
    "mutants": [
        {"id": "softmax-no-shift", "models": "softmax without subtracting the row max (overflows)",
         "target": "softmax", "expected": ["SM-SHIFT"],
         "cells": {"SM-SUM": {"status": "passed", "examples_to_failure": None},
                   "SM-SHIFT": {"status": "failed", "examples_to_failure": 4},
                   "ATT-MASK-ZERO": {"status": "failed", "examples_to_failure": 9},
                   "LN-MEAN": {"status": "not_applicable", "examples_to_failure": None}}},
        {"id": "mask-inverted", "models": "mask polarity flipped (True = masked)",
         "target": "scaled_dot_product_attention", "expected": ["ATT-MASK-ZERO"],
         "cells": {"SM-SUM": {"status": "passed", "examples_to_failure": None},
                   "SM-SHIFT": {"status": "passed", "examples_to_failure": None},
                   "ATT-MASK-ZERO": {"status": "passed", "examples_to_failure": None},
                   "LN-MEAN": {"status": "error", "examples_to_failure": None}}},
    ],
    "summary": {"kill_rate": 0.5, "median_examples_to_kill": 4.0,
                "slowest": {"mutant": "softmax-no-shift", "examples": 4}},
}


def test_kill_matrix_renders_kills_survivors_and_misses(tmp_path: Path) -> None:
    paths = write_kill_matrix(KILL_MATRIX, tmp_path / "km")
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert json.loads(paths["json"].read_text()) == KILL_MATRIX
    assert "**Kill rate 50.0%**" in md and "**Survivors** (no clause caught them): `mask-inverted`" in md
    assert ("| `softmax-no-shift` | softmax without subtracting the row max (overflows) "
            "| SM-SHIFT, ATT-MASK-ZERO | - |") in md
    assert "| `mask-inverted` | mask polarity flipped (True = masked) | **nothing** | ATT-MASK-ZERO |" in md
    assert "| `softmax-no-shift` | **K 4** | K 9 | n/a |" in md
    assert "| `mask-inverted` | · | **missed (·)** | err |" in md
    assert "expected to kill none (1): SM-SUM." in md
    assert 'title="ATT-MASK-ZERO should kill mask-inverted">missed</td>' in html
    assert 'title="softmax-no-shift killed by SM-SHIFT">4</td>' in html
    assert 'id="kill-rate">50.0%' in html
    for clause in KILL_MATRIX["clauses"]:
        assert clause in md and clause in html


def test_kill_matrix_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(KILL_MATRIX))
    bad["mutants"][0]["cells"]["SM-SUM"]["status"] = "killed"
    with pytest.raises(jsonschema.ValidationError):
        write_kill_matrix(bad, tmp_path / "km")
    assert not (tmp_path / "km").exists()


# ------------------------------------------------------------------------------------------------
# banners: nothing checked, incomplete and failing at once
# ------------------------------------------------------------------------------------------------


def _row(clause_id: str, implementation: str, status: str, **fields: Any) -> dict[str, Any]:
    """A hand-made result row (what a runner writes), for the cases a real run is slow to produce."""
    return {"clause_id": clause_id, "implementation": implementation, "status": status,
            "statement": f"{clause_id} holds.", "source": "a test", "topic": "softmax", **fields}


def _banners(html: str) -> list[str]:
    return re.findall(r'<div class="banner (\w+)"', html)


def test_a_run_that_checked_nothing_says_so_not_that_it_passed(tmp_path: Path) -> None:
    """``torch:cuda`` without a GPU: every clause not applicable. 0 of 0 is no pass."""
    name = "torch:cuda:float32"
    rows = [_row(c, name, "not_applicable", message=f"{name}: no CUDA device is available")
            for c in ("SM-SUM", "SM-RANGE", "SM-SHIFT")]
    paths = write_report(build_report(rows, _meta([name])), tmp_path / "r")
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert _banners(html) == ["nothing"]
    assert "Every applicable clause passed" not in html
    banner = re.search(r'<div class="banner nothing" id="nothing-checked">([^<]*)</div>', html)[1]
    assert banner.startswith("Nothing was checked:") and "3 not applicable" in banner
    assert "no CUDA device is available" in banner
    assert "> **Nothing was checked**:" in md and "no CUDA device is available" in md
    assert "**Conformance n/a**" in md


def test_an_implementation_that_checked_nothing_is_named(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    """Beside an implementation that passed, one whose every clause was not applicable is called out."""
    mixed = [r for r in rows if r["implementation"] in ("numpy", "no-softmax") and r["status"] != "error"]
    paths = write_report(build_report(mixed, _meta(["numpy", "no-softmax"])), tmp_path / "r")
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert _banners(html) == ["ok", "nothing"]
    assert "Nothing was checked on no-softmax" in html and "does not offer softmax" in html
    assert "> **Nothing was checked on no-softmax**:" in md
    assert "Nothing was checked on numpy" not in html + md
    # a run where every implementation checked something has no such line
    only = write_report(build_report([r for r in mixed if r["implementation"] == "numpy"], _meta(["numpy"])),
                        tmp_path / "only")
    assert _banners(only["html"].read_text()) == ["ok"] and "Nothing was checked" not in only["md"].read_text()


def test_an_incomplete_run_with_failures_shows_both_banners(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    """``pytest -x``: the run stopped at a failure. Incomplete does not hide the failure."""
    failed = [r for r in rows if r["implementation"] == "broken"][:1]
    skipped = skipped_row(TEST_CLAUSES["T-RELU"], "broken", "never ran: the run stopped early")
    report = build_report([*failed, skipped], _meta(["broken"], complete=False, reason="stopped early (-x)"))
    html = write_report(report, tmp_path / "r")["html"].read_text()
    assert _banners(html) == ["incomplete", "bad"]
    assert "Does not conform: 1 failed, 0 errored." in html
    # incomplete and nothing applicable ran: both said, and never "passed"
    report = build_report([skipped], _meta(["broken"], complete=False, reason="interrupted (Ctrl-C)"))
    paths = write_report(report, tmp_path / "s")
    assert _banners(paths["html"].read_text()) == ["incomplete", "nothing"]
    md = paths["md"].read_text()
    assert "**Incomplete run**" in md and "**Nothing was checked**" in md


# ------------------------------------------------------------------------------------------------
# failures by exact equality (tolerance 0) and by non-finite errors
# ------------------------------------------------------------------------------------------------


def _exact_and_non_finite_rows() -> list[dict[str, Any]]:
    return [
        _row("SM-SUM", "x", "passed", max_error=2e-16, tolerance=1e-12),
        _row("ATT-MASK-ZERO", "x", "failed", topic="attention", max_error=0.5, tolerance=0.0,
             reason="exact equality", message="masked weight is 0.5"),
        _row("SM-TEMP", "x", "failed", max_error=float("inf"), tolerance=0.0, message="observed [nan]"),
        _row("SM-RANGE", "x", "failed", max_error="nan", tolerance=1e-12, message="observed [nan]"),
        _row("SM-FORMULA", "x", "failed", max_error=float("-inf"), tolerance=None, message="no tolerance"),
        _row("SM-ORDER", "x", "failed", message="raised ValueError"),  # no number at all
    ]


def test_exact_and_non_finite_failures_render_in_tables(tmp_path: Path) -> None:
    report = build_report(_exact_and_non_finite_rows(), _meta(["x"]))
    validate(report)
    temp = next(r for r in report["results"] if r["clause_id"] == "SM-TEMP")
    assert temp["max_error"] == "inf" and temp["tolerance"] == 0.0
    paths = write_report(report, tmp_path / "r")
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "| ATT-MASK-ZERO | x | failed | attention | 0 | 0.5 | 0 |" in md
    assert "| SM-TEMP | x | failed | softmax | 0 | inf | 0 |" in md
    assert "| SM-RANGE | x | failed | softmax | 0 | nan | 1e-12 |" in md
    assert "| SM-FORMULA | x | failed | softmax | 0 | -inf | - |" in md
    assert '<td class="num">inf</td>' in html and '<td class="num" title="exact equality">0</td>' in html


def test_exact_and_non_finite_failures_are_in_the_error_figure() -> None:
    from nnspec.report.figures import error_vs_tolerance, report_figures

    rows = build_report(_exact_and_non_finite_rows(), _meta(["x"]))["results"]
    svg = error_vs_tolerance(rows)
    assert svg is not None
    for clause in ("SM-SUM", "ATT-MASK-ZERO", "SM-TEMP", "SM-RANGE", "SM-FORMULA"):
        assert f"{clause} [x]" in svg, clause
    # a non-finite error is drawn at the top of the scale and says what it was
    for label in ("error inf", "error nan", "error -inf"):
        assert label in svg, label
    assert "tolerance 0" in svg  # exact equality: a tolerance of 0 has no place on a log scale
    assert svg.count("fill: #c62828") >= 5  # the five failures with a number, in red
    # the failure with no number is not drawn, and the caption says so instead of dropping it
    assert "SM-ORDER" not in svg
    report = build_report(_exact_and_non_finite_rows(), _meta(["x"]))
    figure = next(f for f in report_figures(report) if f["id"] == "fig-error")
    assert "SM-ORDER [x]" in figure["caption"]
    # failures only, every one non-finite or exact: still a figure
    only = [r for r in rows if r["clause_id"] in ("SM-TEMP", "SM-RANGE")]
    assert "error inf" in error_vs_tolerance(only)


def test_the_error_figure_shows_failures_first_and_says_what_it_left_out() -> None:
    from nnspec.report.figures import report_figures

    passing = [_row(f"P-{i:02d}", "x", "passed", max_error=1e-15, tolerance=1e-12) for i in range(40)]
    failing = [_row("F-NAN", "x", "failed", max_error="nan", tolerance=0.0)]
    report = build_report([*passing, *failing], _meta(["x"]))
    figure = next(f for f in report_figures(report) if f["id"] == "fig-error")
    assert "F-NAN [x]" in figure["svg"]
    assert "30 worst of 41" in figure["caption"]


# ------------------------------------------------------------------------------------------------
# Markdown that renders as written (CommonMark with raw HTML, as GitHub does)
# ------------------------------------------------------------------------------------------------


def _commonmark(md: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


def test_markdown_escapes_html_and_fences(tmp_path: Path) -> None:
    """Angle brackets in sentences and names stay text; a failure message holding a code fence
    cannot end its own block; pipes in <summary> are not shown as ``\\|``."""
    statement = "A vocabulary MUST give <pad>, <unk>, <start> and <end> the ids 0 to 3 & |w| |h| cos."
    message = ("shape mismatch, expected:\n```\n# Heading injected\n| a | b |\n  ````\nsee ``code`` </details>")
    rows = [
        _row("TOK-UNK", "md<test>", "failed", statement=statement, message=message,
             reproduce="nnspec verify bad_md:IMPL --clause `TOK-UNK`"),
        _row("SM-SUM", "md<test>", "passed", statement="Sums to <one>."),
    ]
    md = write_report(build_report(rows, _meta(["md<test>"])), tmp_path / "r", formats=("md",))["md"].read_text()
    assert "[md&lt;test&gt;]" in md and "&lt;pad&gt;" in md and "\\|" not in md.split("### Every clause")[0]
    assert "`````\n" in md  # a fence longer than the message's longest backtick run (4)
    html = _commonmark(md)
    assert "<h1>Heading injected</h1>" not in html and "# Heading injected" in html
    summary = re.search(r"<summary>(.*?)</summary>", html, re.S)[1]
    assert "&lt;pad&gt;, &lt;unk&gt;, &lt;start&gt; and &lt;end&gt;" in summary
    assert "|w| |h| cos" in summary and "[md&lt;test&gt;]" in summary and "&amp;" in summary
    assert html.count("<details>") == html.count("</details>") == 1
    # the failure text is one code block, whole, and the reproduce command one code span
    block = re.search(r"<pre><code>(.*?)</code></pre>", html, re.S)[1]
    assert block.startswith("shape mismatch") and block.rstrip().endswith("see ``code`` &lt;/details&gt;")
    assert "<code>nnspec verify bad_md:IMPL --clause `TOK-UNK`</code>" in html
    # the tables after the failures are still tables, with the names as text
    assert html.count("<table>") == 3  # implementations, topics, every clause
    every = html.split("Every clause</h3>")[1]
    assert "<td>TOK-UNK</td>\n<td>md&lt;test&gt;</td>" in every and "<td>SM-SUM</td>" in every
    assert "<h2>nnspec conformance report: md&lt;test&gt;</h2>" in html


def test_markdown_table_cells_escape_pipes_and_angle_brackets(tmp_path: Path) -> None:
    rows = [_row("SM-SUM", "att|no-mask<x>", "passed")]
    md = write_report(build_report(rows, _meta(["att|no-mask<x>"])), tmp_path / "r", formats=("md",))["md"]
    text = md.read_text()
    assert "| SM-SUM | att\\|no-mask&lt;x&gt; | passed |" in text
    html = _commonmark(text)
    assert "<td>att|no-mask&lt;x&gt;</td>" in html


# ------------------------------------------------------------------------------------------------
# the positional-encoding figure: only where a PE clause ran
# ------------------------------------------------------------------------------------------------


def test_the_positional_encoding_figure_needs_a_pe_clause(written: dict[str, Path], tmp_path: Path) -> None:
    assert 'id="fig-pe"' not in written["html"].read_text()  # softmax, layer norm, attention: no PE
    row = run_clause("PE-BOUNDED", "numpy", profile="quick").to_dict()
    html = write_report(build_report([row], _meta(["numpy"])), tmp_path / "pe")["html"].read_text()
    assert re.search(r'<figure id="fig-pe">\s*<svg', html)
    # one that was not applicable checked nothing: no figure (the workflow audit's softmax-only run)
    no_pe = patched("numpy", name="no-pe", without=["positional_encoding"])
    idle = run_clause("PE-BOUNDED", no_pe, profile="quick").to_dict()
    assert idle["status"] == "not_applicable"
    html = write_report(build_report([idle], _meta(["no-pe"])), tmp_path / "idle")["html"].read_text()
    assert 'id="fig-pe"' not in html


# ------------------------------------------------------------------------------------------------
# comparisons of unlike runs, and inputs that are not reports
# ------------------------------------------------------------------------------------------------


def _meta_run(name: str, profile: str, seed: int) -> dict[str, Any]:
    meta = _meta([name])
    return {**meta, "profile": profile, "seed": seed}


def test_compare_shows_profile_and_seed_and_warns_about_unlike_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = [_row("SM-SUM", "numpy", "passed"), _row("ATT-MASK-ZERO", "numpy", "passed", topic="attention")]
    b = [_row("SM-SUM", "fast", "failed", max_error=0.5, tolerance=1e-12),
         _row("SM-RANGE", "fast", "passed")]
    write_report(build_report(a, _meta_run("numpy", "quick", 0)), tmp_path / "a", formats=("json",))
    write_report(build_report(b, _meta_run("fast", "thorough", 7)), tmp_path / "b", formats=("json",))
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "c")]) == 0
    data = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert [(c["profile"], c["seed"]) for c in data["columns"]] == [("quick", 0), ("thorough", 7)]
    err = capsys.readouterr().err  # the terminal says so too, not only the files
    assert err.count("nnspec report compare: not like for like: ") == len(data["warnings"]) == 3
    warnings = " ".join(data["warnings"])
    assert "different profiles" in warnings and "quick" in warnings and "thorough" in warnings
    assert "different seeds" in warnings
    assert "different clauses" in warnings and "1 clause(s) in common" in warnings
    # on the clauses both ran, numpy passed 1 of 1 and fast 0 of 1
    assert [c["common_conformance"] for c in data["columns"]] == [100.0, 0.0]
    md = (tmp_path / "c" / "compare.md").read_text()
    assert "| implementation | report | profile | seed | dtype | device | conformance |" in md
    assert "| numpy | a | quick | 0 |" in md and "| fast | b | thorough | 7 |" in md
    assert "> **Not like for like**" in md and "different profiles" in md
    html = (tmp_path / "c" / "compare.html").read_text()
    assert 'id="unlike"' in html and "different seeds" in html and "profile thorough, seed 7" in html
    # like runs: no warning
    write_report(build_report(a, _meta_run("numpy", "quick", 0)), tmp_path / "a2", formats=("json",))
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "a2"), "-o", str(tmp_path / "d")]) == 0
    assert json.loads((tmp_path / "d" / "compare.json").read_text())["warnings"] == []
    assert "Not like for like" not in (tmp_path / "d" / "compare.md").read_text()
    assert 'id="unlike"' not in (tmp_path / "d" / "compare.html").read_text()


def test_compare_names_what_it_was_given_when_it_is_not_a_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def refused(path: Path | str) -> str:
        capsys.readouterr()
        assert main(["report", "compare", str(path), "-o", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nnspec report compare: ") and len(err) < 400, err
        return err

    # a large JSON file that is not a report: its name and the first problem, not the whole file
    big = tmp_path / "list.json"
    big.write_text(json.dumps([{"clause": f"C-{i}", "text": "x" * 50} for i in range(1000)]))
    err = refused(big)
    assert f"{big} is not an nnspec report" in err and "C-999" not in err
    (tmp_path / "obj.json").write_text(json.dumps({"schema": "nnspec-report/1", "results": "x" * 5000}))
    err = refused(tmp_path / "obj.json")
    assert "obj.json is not an nnspec report" in err and "xxxxxxxxxx" not in err
    # a kill matrix and a comparison: said what they are, and what compare wants
    write_kill_matrix(KILL_MATRIX, tmp_path / "km")
    err = refused(tmp_path / "km")
    assert f"{tmp_path / 'km'} holds a kill matrix" in err and "nnspec verify --report" in err
    err = refused(tmp_path / "km" / "kill_matrix.json")
    assert "kill matrix" in err and "nnspec verify --report" in err
    good = [_row("SM-SUM", "numpy", "passed")]
    write_report(build_report(good, _meta(["numpy"])), tmp_path / "a", formats=("json",))
    write_report(build_report(good, _meta(["other"])), tmp_path / "b", formats=("json",))
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "cmp")]) == 0
    err = refused(tmp_path / "cmp")
    assert f"{tmp_path / 'cmp'} holds a comparison of reports" in err and "nnspec verify --report" in err
    # a folder of something else, and a path that does not exist
    (tmp_path / "empty").mkdir()
    err = refused(tmp_path / "empty")
    assert f"{tmp_path / 'empty'} holds no results.json" in err and "nnspec verify --report" in err
    err = refused(tmp_path / "no-such-run")
    assert f"{tmp_path / 'no-such-run'} does not exist" in err
