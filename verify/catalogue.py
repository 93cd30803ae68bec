"""Which clauses a run uses: the installed catalogue, or another one, and selection by id.

The installed catalogue is :data:`nnspec.spec.clause.REGISTRY`, filled by importing
:mod:`nnspec.spec` (once, from the installed package; nothing is copied or imported by path).
``--nnspec-catalogue package.module:NAME`` (or ``package.module``, which must have ``CLAUSES``)
runs another collection of :class:`Clause` objects instead: a project's own clauses, or nnspec's
test clauses, without touching the registry.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Iterable

from nnspec.spec.clause import REGISTRY, Clause


class CatalogueError(ValueError):
    """A catalogue or a clause selection that cannot be used; the message names the fix."""


def installed() -> dict[str, Clause]:
    import nnspec.spec  # noqa: F401  (importing registers every clause)

    return dict(REGISTRY)


def load(spec: str) -> dict[str, Clause]:
    """Clauses from ``module:attr`` (a dict id -> Clause, or an iterable of Clause)."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CatalogueError(
            f"catalogue {spec!r}: cannot import {module_name!r} ({exc}); fix the module path"
        ) from exc
    attr = attr or "CLAUSES"
    try:
        found = getattr(module, attr)
    except AttributeError:
        raise CatalogueError(
            f"catalogue {spec!r}: module {module_name!r} has no {attr!r}; name a dict of clauses "
            "as module:NAME"
        ) from None
    clauses = found.values() if isinstance(found, dict) else found
    out: dict[str, Clause] = {}
    for c in clauses:
        if not isinstance(c, Clause):
            raise CatalogueError(f"catalogue {spec!r}: {c!r} is not an nnspec.spec.clause.Clause")
        out[c.id] = c
    return out


def catalogue(specs: Iterable[str] = ()) -> dict[str, Clause]:
    """The installed catalogue, or the union of the named ones."""
    specs = list(specs)
    if not specs:
        return installed()
    merged: dict[str, Clause] = {}
    for spec in specs:
        merged.update(load(spec))
    return merged


def select(clauses: dict[str, Clause], patterns: Iterable[str]) -> list[Clause]:
    """Clauses whose id matches any pattern (an id or a glob such as ``ATT-*``; comma-separated
    lists allowed); all of them when there is no pattern. A pattern that matches nothing is an error."""
    patterns = list(patterns)
    wanted = [p.strip() for pattern in patterns for p in pattern.split(",") if p.strip()]
    if patterns and not wanted:  # `--clause ''`: a variable left empty, not "everything"
        raise CatalogueError(
            f"empty clause selection {patterns!r}; give clause ids or globs (`nnspec list` shows "
            "them), or leave the option out to run every clause"
        )
    if not wanted:
        return list(clauses.values())
    chosen: dict[str, Clause] = {}
    for pattern in wanted:
        hits = [cid for cid in clauses if fnmatch.fnmatchcase(cid.upper(), pattern.upper())]
        if not hits:
            close = difflib.get_close_matches(pattern, list(clauses), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "`nnspec list` shows every clause id"
            raise CatalogueError(f"no clause matches {pattern!r}; {hint}")
        for cid in hits:
            chosen[cid] = clauses[cid]
    # keep catalogue order, so runs with and without xdist see the same sequence
    return [c for cid, c in clauses.items() if cid in chosen]
