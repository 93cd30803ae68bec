"""Writing reports: JSON, Markdown and one self-contained HTML file, atomically.

Two guarantees, because a report is evidence someone else will read:

* **No half-written file.** Every file is written to a temporary file in the same directory, flushed
  to disk and moved into place with :func:`os.replace` (atomic on POSIX and Windows).
* **No mixing of runs.** A report directory is published whole: the new files are written to a
  fresh sibling directory, which then takes the old one's place (two renames; the old one is deleted
  after). A directory nnspec did not write -- non-empty and without the ``.nnspec-report`` marker --
  is never touched: :class:`ReportDirError` is raised before the run starts, so nothing is lost.

Templates are jinja2 (``templates/*.j2``); figures are matplotlib SVG (:mod:`.figures`), inlined.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .model import SCHEMA_VERSION, STATUSES, validate

MARKER = ".nnspec-report"
REPORT_FILES = {"json": "results.json", "md": "report.md", "html": "report.html"}
# What each kind of directory holds, for the message that refuses to replace one by another.
KINDS = {"nnspec-report": "conformance report", "nnspec-comparison": "comparison of reports",
         "nnspec-kill-matrix": "kill matrix"}


class ReportDirError(Exception):
    """The output directory holds files nnspec did not write; refusing to mix or delete them."""


# ------------------------------------------------------------------------------------------------
# files and directories
# ------------------------------------------------------------------------------------------------


def write_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def kind_name(schema: str) -> str:
    """What a schema name is in words (``nnspec-kill-matrix/1``: kill matrix)."""
    return KINDS.get(schema.partition("/")[0], schema)


def written_kind(out_dir: Path | str) -> str | None:
    """The schema of what nnspec wrote to ``out_dir`` (its marker's ``schema``), or None when the
    marker is absent or predates the field."""
    try:
        marker = json.loads((Path(out_dir) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = marker.get("schema") if isinstance(marker, dict) else None
    return kind if isinstance(kind, str) else None


def check_output_dir(out_dir: Path | str, keep: Iterable[str] = (), kind: str | None = None) -> Path:
    """``out_dir`` as a Path if a report may be written there: absent, empty, or written by nnspec
    (files named in ``keep`` aside: see :func:`publish`), and, given the ``kind`` about to be
    written (a schema name), holding that kind or none.

    Raises :class:`ReportDirError` otherwise. Call it before a run starts, so a mistaken directory is
    reported at once rather than after an hour of clauses. The kind matters because replacing is
    deleting: ``nnspec report compare a b -o b`` would otherwise throw away report ``b`` itself.
    """
    out = Path(out_dir)
    keep = set(keep)
    if out.exists() and not out.is_dir():
        raise ReportDirError(f"{out} exists and is not a directory; name a directory")
    others = [p for p in out.iterdir() if p.name not in keep] if out.is_dir() else []
    if others and not (out / MARKER).is_file():
        raise ReportDirError(
            f"{out} is not empty and was not written by nnspec (no {MARKER} file); refusing to mix a "
            "report with its files or to delete them: name a new or empty directory"
        )
    old = written_kind(out) if others else None
    if kind is not None and old is not None and old.partition("/")[0] != kind.partition("/")[0]:
        raise ReportDirError(
            f"{out} holds a {kind_name(old)} that nnspec wrote; refusing to replace it with a "
            f"{kind_name(kind)}: name a new or empty directory"
        )
    return out


def publish(out_dir: Path | str, files: dict[str, str], kind: str, keep: Iterable[str] = ()) -> dict[str, Path]:
    """Replace ``out_dir`` by a directory holding exactly ``files`` (name -> text) and the marker.

    The files are written into a temporary sibling directory first; ``out_dir`` (if it exists, it must
    pass :func:`check_output_dir`) is then swapped out and deleted. Readers see the old report or the
    new one, never a mixture. ``keep`` names files of ``out_dir`` that belong to the same run and move
    into the new directory (``pytest --junitxml=DIR/junit.xml --nnspec-report=DIR``). Returns the
    written paths by name.
    """
    keep = [name for name in keep if name not in files and name != MARKER]
    out = check_output_dir(out_dir, keep, kind).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    # The paths returned (and printed) name the folder without `sub/../`: the parent's links are
    # resolved as the system resolves them; the last component, a link or not, stays what it is.
    out = out.parent.resolve() / out.name
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)
        for name, text in files.items():
            write_atomic(stage / name, text)
        for name in keep:
            if (out / name).is_file():
                shutil.copy2(out / name, stage / name)
        marker = {"schema": kind, "files": sorted(files),
                  "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        write_atomic(stage / MARKER, json.dumps(marker, indent=1) + "\n")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / "report")
        os.replace(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {name: out / name for name in files}


# ------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------


def _fmt_num(value: float | str | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):  # "inf", "-inf", "nan" (see model.json_safe)
        return value
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _md_text(text: Any) -> str:
    """Text that Markdown must show as written where raw HTML is live (a heading, a paragraph, the
    ``<summary>`` of a ``<details>`` block): ``<``, ``>`` and ``&`` as entities, so ``<pad>`` is
    text and not a tag that GitHub's sanitiser drops; one line, so an HTML block is not ended early.
    No backslash escapes: inside an HTML block Markdown shows them as they are (``\\|``)."""
    return html.escape(str(text), quote=False).replace("\n", " ").strip()


def _md_cell(text: Any) -> str:
    """Text safe inside one Markdown table cell: no pipes breaking columns, no newlines, no raw HTML."""
    return _md_text(str(text).replace("\\", "\\\\").replace("|", "\\|"))


def _backtick_runs(text: str) -> set[int]:
    return {len(run) for run in re.findall(r"`+", text)}


def _md_fence(text: Any) -> str:
    """The backtick fence for a code block holding ``text``: longer than any backtick run in it, so
    no line of the text can close the block early (CommonMark: a closing fence is at least as long)."""
    return "`" * max(3, max(_backtick_runs(str(text)), default=0) + 1)


def _md_code(text: Any) -> str:
    """``text`` as one inline code span, whatever backticks it holds (CommonMark code spans)."""
    text = str(text).replace("\n", " ")
    runs = _backtick_runs(text)
    n = next(i for i in range(1, len(runs) + 2) if i not in runs)
    # a space each side when the text starts or ends with a backtick (or with spaces both sides,
    # which a renderer would otherwise strip): the renderer removes exactly one on each side
    pad = " " if text[:1] == "`" or text[-1:] == "`" or (text[:1] == " " and text[-1:] == " ") else ""
    return f"{'`' * n}{pad}{text}{pad}{'`' * n}"


def _status_label(status: str) -> str:
    return status.replace("_", " ")


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nnspec.report", "templates"),
        autoescape=lambda name: name is not None and ".html" in name,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(num=_fmt_num, pct=_fmt_pct, md=_md_cell, md_text=_md_text, fence=_md_fence,
                       code=_md_code, status=_status_label)
    env.globals.update(STATUSES=STATUSES)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with the report filters (num, pct, md, status)."""
    return _environment().get_template(template).render(**context)


def _why_not_applicable(rows: list[dict[str, Any]]) -> str:
    """The reason the engine gave for not applicable rows, when they share one (``no CUDA device is
    available``); else how many different reasons there are, the first named."""
    reasons = list(dict.fromkeys(r["message"].splitlines()[0] for r in rows
                                 if r["status"] == "not_applicable" and r["message"]))
    if len(reasons) > 1:
        return f"{len(reasons)} different reasons, the first: {reasons[0]}"
    return reasons[0] if reasons else ""


def _tally_words(tally: dict[str, Any] | None) -> str:
    counts = (tally or {}).get("counts", {})
    parts = [f"{counts[s]} {_status_label(s)}" for s in ("not_applicable", "skipped") if counts.get(s)]
    return ", ".join(parts) or "no result"


def nothing_checked(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The implementations of ``report`` on which no applicable clause ran (every row not applicable
    or skipped: ``torch:cuda`` on a machine without a GPU): ``[{"name", "total", "counts", "why"}]``.

    Their conformance is n/a, which is no pass; every format says so rather than letting an empty
    run read as a clean one."""
    out = []
    for impl in report["meta"]["implementations"]:
        tally = report["summary"]["by_implementation"].get(impl["name"])
        if tally and tally["applicable"]:
            continue
        rows = [r for r in report["results"] if r["implementation"] == impl["name"]]
        out.append({"name": impl["name"], "total": tally["total"] if tally else 0,
                    "counts": _tally_words(tally), "why": _why_not_applicable(rows)})
    return out


def render_report(report: dict[str, Any], formats: tuple[str, ...] = tuple(REPORT_FILES)) -> dict[str, str]:
    """The run report in ``formats`` (json, md, html), by format name, as text."""
    failures = [r for r in report["results"] if r["status"] in ("failed", "error")]
    topics = sorted({r["topic"] for r in report["results"]})
    context = {"report": report, "meta": report["meta"], "summary": report["summary"],
               "rows": report["results"], "failures": failures, "topics": topics,
               # the run as a whole checked nothing, or these implementations did
               "nothing": {"overall": not report["summary"]["applicable"],
                           "counts": _tally_words(report["summary"]),
                           "why": _why_not_applicable(report["results"]),
                           "implementations": nothing_checked(report)}}
    out = {}
    if "json" in formats:
        out["json"] = json.dumps(report, indent=1, allow_nan=False) + "\n"
    if "md" in formats:
        out["md"] = render("report.md.j2", **context)
    if "html" in formats:
        from .figures import report_figures  # matplotlib: imported only when a picture is drawn

        out["html"] = render("report.html.j2", figures=report_figures(report), **context)
    return out


def write_report(
    report: dict[str, Any], out_dir: Path | str, formats: tuple[str, ...] = ("json", "md", "html"),
    keep: Iterable[str] = (),
) -> dict[str, Path]:
    """Validate ``report`` against the schema and publish it to ``out_dir`` in ``formats``
    (``keep``: files of the same run already in ``out_dir``, see :func:`publish`).

    Returns ``{format: path}``. The JSON is ``results.json`` (the name the plugin always used),
    the others ``report.md`` and ``report.html``.
    """
    unknown = set(formats) - set(REPORT_FILES)
    if unknown:
        raise ValueError(f"unknown report formats {sorted(unknown)}; use {sorted(REPORT_FILES)}")
    check_output_dir(out_dir, keep, SCHEMA_VERSION)  # before the rendering: a refusal costs nothing
    validate(report)
    texts = render_report(report, formats)
    paths = publish(out_dir, {REPORT_FILES[f]: texts[f] for f in formats}, SCHEMA_VERSION, keep)
    return {f: paths[REPORT_FILES[f]] for f in formats}


# ------------------------------------------------------------------------------------------------
# the kill matrix (mutant x clause), from verify/mutants.py
# ------------------------------------------------------------------------------------------------

KILL_MATRIX_SCHEMA = "nnspec-kill-matrix/1"


def _kill_rate_percent(rate: float) -> float:
    # the mutation runner gives a fraction; accept a percentage too
    return 100.0 * rate if rate <= 1.0 else rate


def write_kill_matrix(data: dict[str, Any], out_dir: Path | str) -> dict[str, Path]:
    """Publish a kill matrix (``nnspec-kill-matrix/1``) as ``kill_matrix.md``, ``kill_matrix.html``
    and the data itself as ``kill_matrix.json``. Returns ``{"md", "html", "json": path}``.

    A cell is *killed* when the clause failed on the mutant. A mutant with an ``expected`` clause
    that did not kill it is flagged: the catalogue claims to catch that mistake and does not.
    """
    check_output_dir(out_dir, kind=KILL_MATRIX_SCHEMA)
    validate(data, "kill_matrix.schema.json")
    mutants = []
    for m in data["mutants"]:
        killed_by = [c for c, cell in m["cells"].items() if cell["status"] == "failed"]
        missed = [c for c in m["expected"] if m["cells"].get(c, {}).get("status") != "failed"]
        mutants.append({**m, "killed": bool(killed_by), "killed_by": killed_by, "missed": missed})
    # the clauses that say something about some mutant get a column; the others are listed
    columns = [c for c in data["clauses"]
               if any(c in m["expected"] or m["cells"].get(c, {}).get("status") in ("failed", "error")
                      for m in data["mutants"])]
    silent = [c for c in data["clauses"] if c not in columns]
    context = {"data": data, "mutants": mutants, "columns": columns, "silent": silent,
               "kill_rate": _kill_rate_percent(data["summary"]["kill_rate"]),
               "survivors": [m for m in mutants if not m["killed"]]}
    files = {
        "kill_matrix.json": json.dumps(data, indent=1, allow_nan=False) + "\n",
        "kill_matrix.md": render("kill_matrix.md.j2", **context),
        "kill_matrix.html": render("kill_matrix.html.j2", **context),
    }
    paths = publish(out_dir, files, KILL_MATRIX_SCHEMA)
    return {"json": paths["kill_matrix.json"], "md": paths["kill_matrix.md"], "html": paths["kill_matrix.html"]}

