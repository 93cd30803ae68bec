"""Several runs side by side: a matrix of clauses x implementations (the wpt.fyi scoreboard idea).

Each column is one implementation of one report (``name`` or, when two reports share a name,
``name (file)``); each cell is that clause's status there. A clause *disagrees* when the
implementations that could run it (passed, failed or error) did not all end the same way: those are
the rows worth reading first, so they are highlighted and counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from .model import APPLICABLE, validate
from .writers import publish, render

COMPARISON_SCHEMA = "nnspec-comparison/1"


def load_report(path: Path | str) -> dict[str, Any]:
    """A report from its ``results.json`` (or the directory holding it), validated against the schema."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(
            f"{path} is not JSON ({exc}); name a report's results.json or the directory holding it"
        ) from None
    try:
        validate(report)
    except jsonschema.ValidationError as exc:
        raise ValueError(
            f"{path} is not an nnspec report ({exc.message}); name a report's results.json or the "
            "directory holding it"
        ) from None
    report["_path"] = str(path)
    return report


def _distinct(paths: list[Path | str]) -> list[Path]:
    """The report files ``paths`` name, each once: the same report twice makes two identical
    columns that read as two runs agreeing."""
    files = [Path(p) / "results.json" if Path(p).is_dir() else Path(p) for p in paths]
    seen: dict[Path, str] = {}
    for given, file in zip(paths, files, strict=True):
        key = file.resolve()
        if key in seen:
            raise ValueError(f"{given} and {seen[key]} are the same report; name each report once")
        seen[key] = str(given)
    return files


def compare_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison data: columns, one row per clause (cells by column), and the disagreements."""
    columns: list[dict[str, Any]] = []
    for report in reports:
        label = Path(report.get("_path", "")).parent.name or "report"
        for impl in report["meta"]["implementations"]:
            columns.append({"name": impl["name"], "report": label, "impl": impl, "meta": report["meta"]})
    names = [c["name"] for c in columns]
    for c in columns:
        c["key"] = f"{c['name']} ({c['report']})" if names.count(c["name"]) > 1 else c["name"]

    rows: dict[str, dict[str, Any]] = {}
    column_of = iter(columns)
    for report in reports:
        keys = {impl["name"]: next(column_of)["key"] for impl in report["meta"]["implementations"]}
        for r in report["results"]:
            row = rows.setdefault(r["clause_id"], {
                "clause_id": r["clause_id"], "statement": r["statement"], "topic": r["topic"],
                "source": r["source"], "cells": {},
            })
            row["cells"][keys.get(r["implementation"], r["implementation"])] = {
                "status": r["status"], "max_error": r["max_error"], "tolerance": r["tolerance"],
                "message": r["message"].splitlines()[0] if r["message"] else "",
                # what the implementation did not offer, where the clause ran on part of it
                "not_offered": list((r.get("notes") or {}).get("not offered", [])),
            }
    for row in rows.values():
        ran = {cell["status"] for cell in row["cells"].values() if cell["status"] in APPLICABLE}
        row["disagree"] = len(ran) > 1
    for c in columns:
        cells = [row["cells"][c["key"]] for row in rows.values() if c["key"] in row["cells"]]
        applicable = [cell for cell in cells if cell["status"] in APPLICABLE]
        passed = sum(cell["status"] == "passed" for cell in applicable)
        c["conformance"] = 100.0 * passed / len(applicable) if applicable else None
        c["complete"] = c["meta"]["complete"]
    ordered = list(rows.values())
    return {
        "schema": COMPARISON_SCHEMA,
        "columns": [{k: v for k, v in c.items() if k != "meta"} for c in columns],
        "rows": ordered,
        "disagreements": [r["clause_id"] for r in ordered if r["disagree"]],
        "sources": [report.get("_path", "") for report in reports],
    }


def write_comparison(paths: list[Path | str], out_dir: Path | str) -> dict[str, Path]:
    """Compare the reports at ``paths`` and publish ``compare.md``, ``compare.html`` and
    ``compare.json`` to ``out_dir`` (same rules as a report directory). Returns them by format."""
    files = _distinct(paths)
    out = Path(out_dir).resolve()
    for file in files:
        if file.resolve().parent == out:
            raise ValueError(f"-o {out_dir} is where {file} lives; write the comparison elsewhere")
    data = compare_reports([load_report(p) for p in files])
    context = {"data": data, "columns": data["columns"], "rows": data["rows"]}
    files = {
        "compare.json": json.dumps(data, indent=1, allow_nan=False) + "\n",
        "compare.md": render("compare.md.j2", **context),
        "compare.html": render("compare.html.j2", **context),
    }
    written = publish(out_dir, files, COMPARISON_SCHEMA)
    return {"json": written["compare.json"], "md": written["compare.md"], "html": written["compare.html"]}
