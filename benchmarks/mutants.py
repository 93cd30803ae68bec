"""The full kill matrix with timings: every mutant against every clause that uses what it replaced.

Writes the ``nnspec-kill-matrix/1`` dict of :func:`nnspec.verify.mutants.kill_matrix` (what the
report renders) plus a ``timings`` block: seconds per mutant, the slowest cells, and which mutants
an expected clause let through::

    python benchmarks/mutants.py --out benchmarks/results/kill_matrix.json [--all-clauses]
    python benchmarks/mutants.py --shared-oracle --out benchmarks/results/kill_matrix_shared_oracle.json

``--shared-oracle`` plants each fault in the oracle too: the matrix of what the documents' own
numbers and invariants catch when the implementation and its reference share a bug.

Timings are wall-clock on whatever machine runs it (one torch thread); the kill counts are
deterministic for a profile and seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-clauses", action="store_true")
    parser.add_argument("--shared-oracle", action="store_true")
    parser.add_argument("--out", default=None,
                        help="default: benchmarks/results/kill_matrix.json, or "
                        "kill_matrix_shared_oracle.json with --shared-oracle")
    args = parser.parse_args(argv)
    if args.out is None:
        suffix = "_shared_oracle" if args.shared_oracle else ""
        args.out = f"benchmarks/results/kill_matrix{suffix}.json"

    import torch
    from nnspec.verify.mutants import (
        MUTANTS,
        expected_kills_hold,
        format_table,
        kill_matrix,
        summarise,
    )

    torch.set_num_threads(1)
    rows, per_mutant = [], {}
    started = time.perf_counter()
    data = None
    for mutant in MUTANTS:
        t = time.perf_counter()
        one = kill_matrix(mutants=[mutant], profile=args.profile, seed=args.seed,
                          all_clauses=args.all_clauses, shared_oracle=args.shared_oracle)
        per_mutant[mutant.id] = round(time.perf_counter() - t, 2)
        rows += one["mutants"]
        data = one
        print(f"{mutant.id}: {per_mutant[mutant.id]} s", file=sys.stderr, flush=True)
    assert data is not None
    # Recompute the summary over every mutant (each call above summarised one).
    whole = kill_matrix(mutants=[], clauses=data["clauses"], profile=args.profile, seed=args.seed,
                        shared_oracle=args.shared_oracle)
    whole["mutants"] = rows
    whole["summary"] = summarise(rows)
    whole["timings"] = {
        "wall_s": round(time.perf_counter() - started, 1),
        "per_mutant_s": per_mutant,
        "cells_run": sum(c["status"] != "not_applicable" for r in rows for c in r["cells"].values()),
        "missed": expected_kills_hold(whole),
        "survivors": [r["id"] for r in rows
                      if not any(c["status"] == "failed" for c in r["cells"].values())],
        "errors": [f"{r['id']} x {cid}" for r in rows for cid, c in r["cells"].items()
                   if c["status"] == "error"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(whole, indent=2))
    print(format_table(whole))
    print(json.dumps({k: v for k, v in whole["timings"].items() if k != "per_mutant_s"}, indent=2))
    return 1 if whole["timings"]["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
