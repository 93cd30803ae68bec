"""The report's pictures, drawn with matplotlib and returned as inline SVG text.

Pictures go where people would rather look than read: how close each clause came to its tolerance
(log scale, because errors span 1e-17 to 1e-1), the pass rate by topic, the sinusoidal positional
encoding the clauses check, and the attention weights of a failing attention clause's shrunk input.

SVG keeps the HTML self-contained (no files beside it, no network) and sharp on any screen. Figures
are made with :class:`matplotlib.figure.Figure` directly, never ``pyplot``: no global state, no GUI
backend, safe inside a pytest session. Text stays text (``svg.fonttype = none``) and ids are salted
with a fixed string, so the same report renders to the same bytes.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np

from .model import measure

PASS, FAIL, ERROR, MUTED = "#2e7d32", "#c62828", "#ef6c00", "#9e9e9e"
_ARRAY = re.compile(r"^(?P<label>.+?) = array\((?P<shape>[^)]*)\) (?P<dtype>\w+) \[(?P<values>.*)\]$")


def _svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, deterministic ids)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "nnspec"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    start = text.find("<svg")
    # width/height in pt make the figure a fixed size; the CSS scales it to its box instead
    svg = text[start:]
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="figure"', svg, count=1)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.set_layout_engine("constrained")
    return fig


def _number(value: Any) -> float | None:
    """A row's error or tolerance as a float (``"inf"``, ``"nan"`` -> inf, nan), or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return measure(value)
    except (TypeError, ValueError):
        return None


def _ratio(r: dict[str, Any]) -> float:
    """How far past its tolerance a row is: inf for a non-finite error, for an error above a
    tolerance of 0 (exact equality) and for a failure held to no tolerance."""
    err, tol = r["max_error"], r["tolerance"]
    if not math.isfinite(err):
        return math.inf
    if tol is None or math.isnan(tol):
        return math.inf if r["status"] == "failed" else 0.0
    if tol > 0:
        return err / tol
    return math.inf if err > 0 else 0.0


def measured_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the error figure can draw, worst ratio first (failures ahead of passes at equal
    ratio), their numbers as floats: every row with an error and a tolerance, and every failure with
    an error (``"nan"`` and ``"inf"`` included; its tolerance may be missing or 0)."""
    out = []
    for r in rows:
        err, tol = _number(r.get("max_error")), _number(r.get("tolerance"))
        if err is None or (tol is None and r["status"] != "failed"):
            continue
        out.append({**r, "max_error": err, "tolerance": tol})
    return sorted(out, key=lambda r: (_ratio(r), r["status"] == "failed"), reverse=True)


def error_vs_tolerance(rows: list[dict[str, Any]], limit: int = 30) -> str | None:
    """Horizontal bars of the worst observed error per clause, with its tolerance as a tick.

    The ``limit`` rows furthest past (or closest to) their tolerance come first, since those are the
    ones worth a look (:func:`measured_rows`). Log scale, which has no 0 and no infinity: an error or
    tolerance of exactly 0 is drawn at the floor of the axis (a tolerance of 0, exact equality, is
    labelled ``tolerance 0``), a non-finite error (an implementation that returned NaN) as a bar to
    the top of the axis, labelled ``error nan`` or ``error inf``.
    """
    measured = measured_rows(rows)[:limit]
    if not measured:
        return None
    finite = [v for r in measured for v in (r["max_error"], r["tolerance"])
              if v is not None and math.isfinite(v) and v > 0]
    floor = min(finite) / 10 if finite else 1e-18
    top = max(finite) * 10 if finite else 1.0

    def place(v: float) -> float:  # on the axis: non-finite errors at its top, 0 at its floor
        return top if not math.isfinite(v) or v >= top else max(v, floor)

    labels, errors, tols, tol_y, colours = [], [], [], [], []
    for i, r in enumerate(measured):
        tol = r["tolerance"]
        exact = tol is not None and tol == 0
        labels.append(f"{r['clause_id']} [{r['implementation']}]" + (" · tolerance 0" if exact else ""))
        errors.append(place(r["max_error"]))
        if tol is not None and not math.isnan(tol):
            tols.append(floor if tol == -math.inf else place(tol))
            tol_y.append(i)
        colours.append({"failed": FAIL, "error": ERROR}.get(r["status"], PASS))

    fig = _figure(7.5, 1.6 + 0.24 * len(measured))
    ax = fig.add_subplot()
    y = np.arange(len(measured))
    ax.barh(y, [e - floor for e in errors], left=floor, color=colours, height=0.6)
    ax.scatter(tols, tol_y, marker="|", s=220, color="black", linewidths=2, label="tolerance", zorder=3)
    from matplotlib.patches import Patch

    # one legend entry per colour drawn (a labelled barh would show its first bar's colour for all)
    handles = [ax.get_legend_handles_labels()[0][0]] + [
        Patch(color=colour, label=f"max observed error, {status}")
        for status, colour in (("passed", PASS), ("failed", FAIL), ("error", ERROR)) if colour in colours
    ]
    for i, r in enumerate(measured):
        if not math.isfinite(r["max_error"]):  # the bar ends at the axis, not at the value: say it
            ax.text(top, i, f"error {_number_text(r['max_error'])} ", ha="right", va="center", fontsize=7,
                    color="white", fontweight="bold", zorder=4)
    ax.set_xscale("log")
    ax.set_xlim(floor, top)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("absolute error (log scale)")
    ax.set_title("Observed error against tolerance, worst ratio first", fontsize=10)
    # below the axes, outside them: inside, it covered whichever bars ended at its corner
    fig.legend(handles=handles, fontsize=7, ncols=4, loc="outside lower center")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def _number_text(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def pass_rate_by_topic(summary: dict[str, Any]) -> str | None:
    """Stacked bars per topic: passed, failed, error (applicable clauses), with the percentage."""
    topics = [(t, s) for t, s in summary["by_topic"].items() if s["total"]]
    if not topics:
        return None
    fig = _figure(7.5, 1.8 + 0.3 * len(topics))
    ax = fig.add_subplot()
    y = np.arange(len(topics))
    left = np.zeros(len(topics))
    for status, colour in (("passed", PASS), ("failed", FAIL), ("error", ERROR),
                           ("not_applicable", MUTED), ("skipped", "#cfd8dc")):
        n = np.array([s["counts"][status] for _, s in topics], dtype=float)
        ax.barh(y, n, left=left, color=colour, height=0.6, label=status.replace("_", " "))
        left += n
    for i, (_, s) in enumerate(topics):
        text = "n/a" if s["conformance"] is None else f"{s['conformance']:.0f}%"
        ax.text(left[i] + 0.2, i, text, va="center", fontsize=7)
    ax.set_yticks(y, [t for t, _ in topics], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.15 + 1)
    ax.set_xlabel("clauses (x implementations)")
    ax.set_title("Results by topic (conformance = passed / applicable)", fontsize=10)
    fig.legend(fontsize=7, ncols=5, loc="outside lower center")
    return _svg(fig)


def positional_encoding_matrix(n_positions: int = 64, d_model: int = 64) -> str:
    """The oracle's sinusoidal positional encoding (interleaved sin/cos, PARAMETERS.md) as an image:
    the stripes that get slower from left to right are what the PE clauses check."""
    from nnspec.reference import numpy_ref

    pe = numpy_ref.positional_encoding(n_positions, d_model)  # (n_positions, d_model)
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    image = ax.imshow(pe, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xlabel("dimension i (even: sin, odd: cos)")
    ax.set_ylabel("position")
    ax.set_title(f"Positional encoding, {n_positions} positions x d_model {d_model}", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _svg(fig)


def parse_preview(line: str) -> tuple[str, np.ndarray] | None:
    """``label = array(2, 3) float64 [...]`` back to an array, if the preview shows every value.

    The engine's previews show at most six values; a shrunk counterexample is usually small enough
    to be complete. Returns None for anything truncated or not an array.
    """
    m = _ARRAY.match(line.strip())
    if not m or "..." in m["values"]:
        return None
    shape = tuple(int(s) for s in m["shape"].replace(" ", "").split(",") if s)
    tokens = [t.strip() for t in m["values"].split(",") if t.strip()]
    try:
        if m["dtype"] == "bool":
            values = np.array([t == "True" for t in tokens], dtype=bool)
        else:
            values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        return None
    if values.size != math.prod(shape):
        return None
    return m["label"], values.reshape(shape)


def attention_heatmap(row: dict[str, Any]) -> str | None:
    """The attention weights, softmax(q k^T / sqrt(d_k)) with the mask, of a failing attention
    clause's shrunk input, computed by the float64 oracle: what the implementation should have
    produced. Masked cells are hatched. None when the counterexample has no complete q and k."""
    drawn = dict(p for p in map(parse_preview, row.get("counterexample", "").splitlines()) if p)
    q, k = drawn.get("q"), drawn.get("k")
    if q is None or k is None or q.ndim < 2 or k.ndim < 2 or q.shape[-1] != k.shape[-1]:
        return None
    from nnspec.reference import numpy_ref

    q2, k2 = q.reshape(-1, *q.shape[-2:])[0], k.reshape(-1, *k.shape[-2:])[0]  # (n_q, d_k), (n_k, d_k)
    mask = drawn.get("mask")
    if mask is not None and mask.dtype == bool:
        mask = mask.reshape(-1, *mask.shape[-2:])[0] if mask.ndim >= 2 else mask[None, :]
        mask = np.broadcast_to(mask, (q2.shape[0], k2.shape[0]))
    else:
        mask = None
    v = np.zeros((k2.shape[0], 1))
    _, weights = numpy_ref.scaled_dot_product_attention(q2, k2, v, mask)  # (n_q, n_k)
    fig = _figure(6.0, 1.6 + 0.5 * max(2, weights.shape[0]))
    ax = fig.add_subplot()
    image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            masked = mask is not None and not mask[i, j]
            ax.text(j, i, "masked" if masked else f"{weights[i, j]:.2f}", ha="center", va="center",
                    fontsize=7, color="white" if weights[i, j] < 0.5 else "black")
    ax.set_xticks(range(weights.shape[1]))
    ax.set_yticks(range(weights.shape[0]))
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(f"{row['clause_id']} [{row['implementation']}]: expected weights\non the shrunk input",
                 fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _svg(fig)


def report_figures(report: dict[str, Any]) -> list[dict[str, str]]:
    """Every figure a run report shows: ``[{"id", "title", "caption", "svg"}]``."""
    figures = []
    limit = 30
    bars = error_vs_tolerance(report["results"], limit)
    if bars:
        caption = ("Worst observed error per clause (bar; red when failed) and the tolerance it was held "
                   "to (tick). Log scale: a non-finite error is a bar to the top of the axis, labelled.")
        shown = len(measured_rows(report["results"]))
        if shown > limit:
            caption += f" The {limit} worst of {shown}; the table has them all."
        unmeasured = [f"{r['clause_id']} [{r['implementation']}]" for r in report["results"]
                      if r["status"] == "failed" and _number(r.get("max_error")) is None]
        if unmeasured:
            caption += (f" Not drawn, failed with no error to measure ({len(unmeasured)}): "
                        f"{', '.join(unmeasured[:10])}{', ...' if len(unmeasured) > 10 else ''}.")
        figures.append({"id": "fig-error", "title": "Error against tolerance", "svg": bars, "caption": caption})
    topics = pass_rate_by_topic(report["summary"])
    if topics:
        figures.append({"id": "fig-topics", "title": "Pass rate by topic", "svg": topics,
                        "caption": "Clause results per document topic, for every implementation."})
    for row in report["results"]:
        if row["status"] == "failed" and row["topic"] == "attention":
            heat = attention_heatmap(row)
            if heat:
                figures.append({"id": "fig-attention", "title": "Attention weights of a failure", "svg": heat,
                                "caption": "What the oracle computes on the shrunk counterexample of the "
                                "first failing attention clause; compare with the observed values in "
                                "its failure text."})
                break
    ran = ("passed", "failed", "error")  # not applicable or skipped: nothing was checked
    if any(r["clause_id"].startswith("PE-") and r["status"] in ran for r in report["results"]):
        figures.append({"id": "fig-pe", "title": "Positional encoding", "svg": positional_encoding_matrix(),
                        "caption": "The reference sinusoidal encoding (interleaved sin/cos) the PE clauses "
                        "hold implementations to."})
    return figures
