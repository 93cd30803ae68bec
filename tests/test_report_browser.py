"""The HTML report in a real browser (Debian's headless Chromium), with the network cut off: it
renders its title, summary numbers and figures, its scripts run, and the console stays silent.

Skips, saying why, where no Chromium is installed (``.ci/run`` installs it on Debian as root)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from broken_impls import BROKEN, TEST_CLAUSES
from nnspec.reference import numpy_ref
from nnspec.report import build_report, run_metadata, write_comparison, write_kill_matrix, write_report
from nnspec.report.browser import find_chromium, render
from nnspec.verify import patched
from nnspec.verify.runner import run_clause

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_chromium() is None,
                       reason="no Chromium installed (apt-get install chromium; .ci/run does it as root)"),
]


def _sdpa_ignoring_the_mask(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: object = None) -> object:
    return numpy_ref.scaled_dot_product_attention(q, k, v, None)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [run_clause(TEST_CLAUSES[c], impl, profile="quick").to_dict()
            for c, impl in [("T-SOFTMAX", "numpy"), ("T-SIGMOID", "numpy"), ("T-SIGMOID", BROKEN)]]
    no_mask = patched("numpy", name="no-mask", scaled_dot_product_attention=_sdpa_ignoring_the_mask)
    rows.append(run_clause("ATT-MASK-ZERO", no_mask, profile="quick").to_dict())
    rows.append(run_clause("PE-BOUNDED", "numpy", profile="quick").to_dict())  # the PE figure needs a PE clause
    implementations = [{"name": n, "version": "test", "device": "cpu", "dtype": "float64", "conventions": {}}
                       for n in ("numpy", "broken", "no-mask")]
    meta = run_metadata(implementations=implementations, profile="quick", seed=0, started=0.0, finished=1.0,
                        complete=True)
    out = tmp_path_factory.mktemp("browser") / "report"
    write_report(build_report(rows, meta), out)
    return out


def _pixels_near(png: Path, rgb: tuple[int, int, int], tol: int = 12) -> int:
    import matplotlib.image

    image = (matplotlib.image.imread(png)[..., :3] * 255).astype(int)  # (H, W, 3)
    return int((np.abs(image - np.array(rgb)).max(axis=-1) <= tol).sum())


def test_the_report_renders_offline_without_console_errors(report_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    page = render(report_dir / "report.html", shot, size=(1280, 2400))
    assert page.console == []  # no errors, no warnings, no failed (network) loads
    assert "<title>nnspec conformance report: numpy, broken, no-mask</title>" in page.dom
    assert re.search(r'<body[^>]*data-ready="1"', page.dom)  # the filter script ran to its end
    # the summary numbers: 3 of 5 passed
    assert '<div class="n" id="conformance">60.0%</div>' in page.dom
    assert '<div class="n" data-count="passed">3</div>' in page.dom
    assert '<div class="n" data-count="failed">2</div>' in page.dom
    assert '<span id="clauses-shown">5</span>' in page.dom
    assert '<div class="banner bad" id="does-not-conform">' in page.dom
    for figure in ("fig-error", "fig-topics", "fig-attention", "fig-pe"):
        assert re.search(rf'<figure id="{figure}">\s*<svg', page.dom), figure
    # a figure is visible on the screenshot: the positional-encoding image's darkest red
    # (RdBu_r at +1) and the failure bars' red appear only in figures
    assert shot.stat().st_size > 20_000
    assert _pixels_near(shot, (103, 0, 31)) > 500
    assert _pixels_near(shot, (198, 40, 40)) > 200


def test_comparison_and_kill_matrix_pages_render(report_dir: Path, tmp_path: Path) -> None:
    from test_report import KILL_MATRIX

    pages = [write_comparison([report_dir], tmp_path / "compare")["html"],
             write_kill_matrix(KILL_MATRIX, tmp_path / "km")["html"]]
    doms = []
    for html in pages:
        page = render(html)
        assert page.console == [], html
        assert re.search(r'<body[^>]*data-ready="1"', page.dom), html
        doms.append(page.dom)
    assert '<span id="matrix-shown">4</span>' in doms[0]
    assert "<title>nnspec kill matrix: 2 mutants</title>" in doms[1]
