"""Speed and memory of a verification run, against nnspec's targets.

``nnspec verify`` is the main job, and the promise to a user is that verifying an implementation
takes minutes, not hours, and fits beside the model in memory. The promise lives here, as numbers
with a JSON record, never as timed tests (a timed test fails on a busy CI machine and proves
nothing on a fast one). Each clause runs in this process, one after another, as ``nnspec verify``
runs them without ``-n``; for each the benchmark records

* the wall time and the Hypothesis examples it ran (so the time per example),
* the peak resident memory above the process's level before the clause (sampled every 2 ms from
  ``/proc/self/statm``; elsewhere the process's high-water mark, ``ru_maxrss``),
* on CUDA, the peak of ``torch.cuda.max_memory_allocated``,

and compares them with :data:`TARGETS`: seconds per clause by cost class, seconds for the whole
catalogue, peak memory of any clause. The ``default`` profile's targets hold for a 2-core
machine; another profile's time targets scale with its number of examples. The exit status is 1 if
a target is missed, so a performance job can gate on it::

    python benchmarks/speed.py --impl torch:cpu:float32 --impl numpy --out benchmarks/results/speed.json

writes::

    {"schema": "nnspec-speed/1", "profile": ..., "seed": ..., "meta": {versions, host, cpus},
     "targets": {...}, "ok": bool, "missed": [...],
     "implementations": {impl: {"seconds", "peak_rss_mib", "peak_cuda_mib", "slowest": [...]}},
     "clauses": [{"clause", "implementation", "cost", "status", "seconds", "examples",
                  "seconds_per_example", "peak_rss_mib", "peak_cuda_mib", "target_seconds", "within"}]}
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

# The promises, for the ``default`` profile on a 2-core machine. Seconds per clause by the clause's
# cost class (``nnspec.spec.clause.Clause.cost``: full networks run a fifth of the examples, training
# clauses a twentieth, see ``nnspec.verify.profiles.COST_FRACTION``), seconds for one
# implementation's whole catalogue, and the most memory any one clause may take above the
# process's level before it.
TARGETS: dict[str, float] = {
    "cheap_s": 5.0,
    "network_s": 20.0,
    "training_s": 60.0,
    "catalogue_s": 120.0,
    "peak_rss_mib": 1024.0,
    "peak_cuda_mib": 1024.0,
}
TARGET_PROFILE = "default"
IMPLEMENTATIONS = ("torch:cpu:float32", "numpy")


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """Peak resident memory while the block runs, above the level when it started (MiB)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        start = _rss_bytes()
        if start is None:  # no /proc: the process's high-water mark (KiB on Linux, bytes on macOS)
            self._fallback = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return self
        self._start, self._peak = start, start

        def sample() -> None:
            while not self._stop.wait(self.interval):
                now = _rss_bytes()
                if now is not None and now > self._peak:
                    self._peak = now

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            unit = 1 if sys.platform == "darwin" else 1024
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._fallback
            self.peak_mib = max(0, grown) * unit / 2**20
            return
        self._stop.set()
        self._thread.join()
        now = _rss_bytes() or self._peak
        self.peak_mib = (max(self._peak, now) - self._start) / 2**20


def _cuda_peak(device: str) -> tuple[Any, Any]:
    """(reset, read) of CUDA's peak allocation for a clause on a CUDA device, else no-ops."""
    if not device.startswith("cuda"):
        return (lambda: None), (lambda: None)
    import torch

    if not torch.cuda.is_available():
        return (lambda: None), (lambda: None)
    return torch.cuda.reset_peak_memory_stats, (lambda: torch.cuda.max_memory_allocated() / 2**20)


def profile_scale(profile: str) -> float:
    """How a time target scales to ``profile``: with its number of examples, but never below a
    fifth (a clause's fixed costs, building a network, do not shrink with the examples)."""
    from nnspec.verify.profiles import PROFILES

    return max(PROFILES[profile].max_examples / PROFILES[TARGET_PROFILE].max_examples, 0.2)


def target_seconds(cost: str, profile: str, targets: dict[str, float]) -> float:
    """The time a clause of ``cost`` may take under ``profile``."""
    return targets.get(f"{cost}_s", targets["cheap_s"]) * profile_scale(profile)


def measure(
    implementations: tuple[str, ...], *, profile: str, seed: int, clauses: list[str] | None,
    targets: dict[str, float], log: Any = None,
) -> dict[str, Any]:
    from nnspec.verify import load_implementation, run_clause
    from nnspec.verify.catalogue import installed

    catalogue = installed()
    selected = [cid for cid in catalogue if not clauses or any(fnmatch.fnmatch(cid, c) for c in clauses)]
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    missed: list[str] = []
    for name in implementations:
        impl = load_implementation(name)
        reset_cuda, read_cuda = _cuda_peak(impl.device)
        impl_rows = []
        for cid in selected:
            clause = catalogue[cid]
            reset_cuda()
            with PeakMemory() as memory:
                started = time.perf_counter()
                result = run_clause(cid, impl, profile=profile, seed=seed)
                seconds = time.perf_counter() - started
            cuda = read_cuda()
            limit = target_seconds(clause.cost, profile, targets)
            applicable = result.status != "not_applicable"
            within = not applicable or (
                seconds <= limit
                and memory.peak_mib <= targets["peak_rss_mib"]
                and (cuda is None or cuda <= targets["peak_cuda_mib"])
            )
            row = {
                "clause": cid,
                "implementation": impl.name,
                "cost": clause.cost,
                "status": result.status,
                "seconds": round(seconds, 4),
                "examples": result.examples,
                "seconds_per_example": round(seconds / result.examples, 5) if result.examples else None,
                "peak_rss_mib": round(memory.peak_mib, 1),
                "peak_cuda_mib": None if cuda is None else round(cuda, 1),
                "target_seconds": round(limit, 2),
                "within": within,
            }
            if not within:
                missed.append(
                    f"{cid} [{impl.name}]: {seconds:.2f} s (target {limit:.2f} s), "
                    f"{memory.peak_mib:.0f} MiB" + ("" if cuda is None else f", CUDA {cuda:.0f} MiB")
                    # a time-out is a failure too, and on a loaded machine the likely cause
                    + ("" if result.status == "passed" else
                       f"; the clause {result.status}: {result.message.splitlines()[2].strip()[:160]}"
                       if len(result.message.splitlines()) > 2 else f"; the clause {result.status}")
                )
            if log is not None:
                print(f"{impl.name:>22} {cid:<20} {result.status:<15} {seconds:7.2f} s "
                      f"{memory.peak_mib:7.1f} MiB", file=log, flush=True)
            impl_rows.append(row)
        applicable_rows = [r for r in impl_rows if r["status"] != "not_applicable"]
        total = sum(r["seconds"] for r in impl_rows)
        cudas = [r["peak_cuda_mib"] for r in impl_rows if r["peak_cuda_mib"] is not None]
        summary[impl.name] = {
            "seconds": round(total, 2),
            "clauses": len(impl_rows),
            "applicable": len(applicable_rows),
            "peak_rss_mib": max((r["peak_rss_mib"] for r in impl_rows), default=0.0),
            "peak_cuda_mib": max(cudas) if cudas else None,
            "slowest": sorted(
                ({"clause": r["clause"], "seconds": r["seconds"]} for r in applicable_rows),
                key=lambda r: -r["seconds"],
            )[:5],
        }
        catalogue_limit = targets["catalogue_s"] * profile_scale(profile)
        if clauses is None and total > catalogue_limit:
            missed.append(f"the catalogue [{impl.name}]: {total:.1f} s (target {catalogue_limit:.1f} s)")
        rows += impl_rows
    return {"implementations": summary, "clauses": rows, "missed": missed, "ok": not missed}


def _meta() -> dict[str, Any]:
    """The report's environment (versions, host), plus what speed depends on."""
    import torch
    from nnspec.report.model import environment

    return {
        **environment(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", action="append", help=f"implementation (repeatable; default {IMPLEMENTATIONS})")
    parser.add_argument("--profile", default=TARGET_PROFILE, help="Hypothesis profile (default: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clause", action="append", help="clause ids or globs (default: the whole catalogue)")
    parser.add_argument("--target-scale", type=float, default=1.0,
                        help="multiply every target by this (a slower machine; 0.5 for a stricter run)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    parser.add_argument("--quiet", action="store_true", help="no line per clause")
    args = parser.parse_args(argv)
    from nnspec.verify.profiles import PROFILES

    if args.profile not in PROFILES:
        parser.error(f"unknown profile {args.profile!r}; use one of {', '.join(PROFILES)}")
    if args.target_scale <= 0:
        parser.error(f"--target-scale={args.target_scale}: must be a positive number")
    targets = {k: v * args.target_scale for k, v in TARGETS.items()}
    from nnspec.verify.plugin import _limit_torch_threads

    # torch's threads as `nnspec verify` and the plugin run clauses: one intra-op thread unless
    # NNSPEC_TORCH_THREADS says otherwise (torch's default, a pool per core, runs these small
    # inputs far slower: SAMPLE-DIST 20 s instead of 13 here)
    _limit_torch_threads(["torch"])
    started = time.perf_counter()
    record = measure(
        tuple(args.impl or IMPLEMENTATIONS), profile=args.profile, seed=args.seed, clauses=args.clause,
        targets=targets, log=None if args.quiet else sys.stderr,
    )
    record = {
        "schema": "nnspec-speed/1",
        "profile": args.profile,
        "seed": args.seed,
        "meta": _meta(),
        "targets": targets,
        "wall_s": round(time.perf_counter() - started, 2),
        **record,
    }
    text = json.dumps(record, indent=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    for name, s in record["implementations"].items():
        cuda = f", CUDA {s['peak_cuda_mib']:.0f} MiB" if s["peak_cuda_mib"] else ""
        print(f"{name}: {s['applicable']} of {s['clauses']} clauses in {s['seconds']:.1f} s, "
              f"peak {s['peak_rss_mib']:.0f} MiB{cuda}")
    for line in record["missed"]:
        print(f"missed: {line}")
    print("all targets met" if record["ok"] else f"{len(record['missed'])} target(s) missed")
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
