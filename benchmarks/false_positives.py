"""The zero-false-positive sweep: conforming implementations must pass every applicable clause.

A clause that rejects a correct implementation under some seed is a false positive: a tolerance too
tight for the dtype, a draw the clause did not mean to allow, an oracle bug. This runs the ``ci``
profile over every installed clause for each conforming implementation and each of ``--seeds``
seeds, two worker processes (one torch thread each, the machine has two cores), and writes::

    {"schema": "nnspec-false-positives/1", "profile": "ci", "seeds": [...],
     "implementations": [...], "runs": N, "wall_s": float,
     "counts": {impl: {status: n}},
     "false_positives": [{"clause", "implementation", "seed", "status", "message"}],
     "slowest": [{"clause", "implementation", "seed", "duration"}]}

``status`` "error" (the clause itself broke) is listed with the false positives: either way a
conforming implementation did not get a clean pass.

``--partial`` adds, for every clause that can run on part of an implementation (alternatives in its
``needs``, or ``uses``), each implementation lacking each way it can (``Clause.ways_to_offer_part``:
an attention kernel without multi-head attention, a model that is a GPT alone...). Those rows carry
``"lacking"``; a false positive there is a part of a clause that fails without its partner.

    python benchmarks/false_positives.py --out benchmarks/results/false_positives.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

IMPLEMENTATIONS = ("numpy", "torch:cpu:float64", "torch:cpu:float32", "torch:cpu:float16", "torch:cpu:bfloat16")


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


Job = tuple[str, str, int, str, tuple[str, ...]]


def _run(job: Job) -> dict[str, Any]:
    """One clause x implementation (lacking some capabilities) x seed; only what the summary needs
    crosses back."""
    from nnspec.verify import patched, run_clause

    clause_id, impl, seed, profile, lacking = job
    started = time.perf_counter()
    narrowed = patched(impl, name=f"{impl} without {'+'.join(lacking)}", without=lacking) if lacking else impl
    result = run_clause(clause_id, narrowed, profile=profile, seed=seed)
    return {
        "clause": clause_id,
        "implementation": impl,
        "lacking": list(lacking),
        "seed": seed,
        "status": result.status,
        "message": result.message if result.status in ("failed", "error") else "",
        "duration": time.perf_counter() - started,
    }


def sweep(
    implementations: tuple[str, ...], seeds: list[int], profile: str, processes: int,
    clauses: list[str] | None = None, log: Any = None, checkpoint: Any = None, partial: bool = False,
) -> dict[str, Any]:
    """Run every job; ``checkpoint(partial)`` is called after each whole seed's worth of runs."""
    from nnspec.verify.catalogue import installed

    clause_ids = clauses or list(installed())
    # Seed by seed (a run cut short still has whole seeds), expensive clauses first within a seed
    # so the two workers finish a seed together.
    cost_rank = {"training": 0, "network": 1, "cheap": 2}
    catalogue = installed()
    ways = {cid: [(), *(catalogue[cid].ways_to_offer_part() if partial else [])] for cid in clause_ids}
    jobs: list[Job] = sorted(
        ((cid, impl, seed, profile, lacking)
         for cid in clause_ids for lacking in ways[cid] for impl in implementations for seed in seeds),
        key=lambda j: (j[2], cost_rank.get(catalogue[j[0]].cost, 2)),
    )
    per_seed = len(jobs) // len(seeds)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    with context.Pool(processes, initializer=_init_worker) as pool:
        for i, row in enumerate(pool.imap_unordered(_run, jobs, chunksize=2), 1):
            results.append(row)
            if log is not None and (row["status"] in ("failed", "error") or i % 100 == 0):
                lacking = f" without {'+'.join(row['lacking'])}" if row["lacking"] else ""
                print(f"[{i}/{len(jobs)} {time.perf_counter() - started:.0f}s] "
                      f"{row['clause']} {row['implementation']}{lacking} seed {row['seed']}: {row['status']}",
                      file=log, flush=True)
            if checkpoint is not None and (i % per_seed == 0 or i == len(jobs)):
                checkpoint(_summary(results, implementations, seeds, profile, clause_ids, started,
                                    per_seed, complete=i == len(jobs)))
    return _summary(results, implementations, seeds, profile, clause_ids, started, per_seed, complete=True)


def _summary(
    results: list[dict[str, Any]], implementations: tuple[str, ...], seeds: list[int], profile: str,
    clause_ids: list[str], started: float, per_seed: int, *, complete: bool,
) -> dict[str, Any]:
    done = Counter(r["seed"] for r in results)
    counts: dict[str, Counter] = {impl: Counter() for impl in implementations}
    partial: dict[str, Counter] = {impl: Counter() for impl in implementations}
    for row in results:
        (partial if row["lacking"] else counts)[row["implementation"]][row["status"]] += 1
    bad = sorted((r for r in results if r["status"] in ("failed", "error")),
                 key=lambda r: (r["clause"], r["implementation"], r["lacking"], r["seed"]))
    slowest = sorted(results, key=lambda r: -r["duration"])[:10]
    return {
        "schema": "nnspec-false-positives/1",
        "profile": profile,
        "seeds": seeds,
        "implementations": list(implementations),
        "clauses": len(clause_ids),
        "runs": len(results),
        "complete": complete,
        "seeds_complete": sorted(seed for seed, n in done.items() if n == per_seed),
        "wall_s": round(time.perf_counter() - started, 1),
        "counts": {impl: dict(c) for impl, c in counts.items()},
        # the runs of implementations lacking part of a clause (--partial), by status
        "partial_counts": {impl: dict(c) for impl, c in partial.items() if c},
        "false_positives": [
            {k: r[k] for k in ("clause", "implementation", "lacking", "seed", "status", "message")} for r in bad
        ],
        "slowest": [
            {k: (round(r[k], 2) if k == "duration" else r[k])
             for k in ("clause", "implementation", "seed", "duration")} for r in slowest
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (default 20)")
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--impl", action="append", default=[], help="default: numpy, torch on the CPU at every dtype")
    parser.add_argument("--clause", action="append", default=[], help="default: every clause")
    parser.add_argument("--partial", action="store_true",
                        help="also each implementation lacking part of each clause that can run on part")
    parser.add_argument("--out", default="benchmarks/results/false_positives.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(data: dict[str, Any]) -> None:
        out.write_text(json.dumps(data, indent=2))

    data = sweep(tuple(args.impl) or IMPLEMENTATIONS, list(range(args.seeds)), args.profile,
                 args.processes, args.clause or None, log=sys.stderr, checkpoint=write,
                 partial=args.partial)
    write(data)
    print(f"{data['runs']} runs in {data['wall_s']} s: {len(data['false_positives'])} false positives")
    for fp in data["false_positives"]:
        lacking = f" without {'+'.join(fp['lacking'])}" if fp["lacking"] else ""
        print(f"  {fp['clause']} {fp['implementation']}{lacking} seed {fp['seed']} {fp['status']}: "
              f"{fp['message'].splitlines()[0] if fp['message'] else ''}")
    return 1 if data["false_positives"] else 0


if __name__ == "__main__":
    sys.exit(main())
