"""Hypothesis settings profiles, registered once, and how many examples each clause gets.

==========  ============  ==========  ===============================================
profile     max_examples  time limit  for
==========  ============  ==========  ===============================================
quick       10            60 s        the editing loop: a smoke test of every clause
default     50            120 s       ``nnspec verify`` and ``pytest --nnspec-impl``
thorough    500           900 s       before a release; nightly jobs
ci          50            300 s       CI: derandomized, so two runs give identical results
==========  ============  ==========  ===============================================

Clauses declare a cost. Full networks (``network``) get 1/5 of the examples and training runs
(``training``) 1/20 (at least one), because one of their examples costs as much as hundreds of a
component's. Clauses with ``hypothesis=False`` run exactly once.

Shrinking a failure of those clauses stops after SHRINK_RUNS runs (``thorough``: Hypothesis's own
limits), after which the smallest failing input found so far is reported and the failure says so.
Most of a network clause's shrink runs are attempts Hypothesis abandons when a shortened input runs
out of draws, and each costs the forward passes or sampling loops before that draw: uncapped, a
broken ``Transformer.sample`` spent 90 s shrinking an input it had found in 1 s and could not make
smaller. The planted faults of the clause tests shrink in at most 28 runs, except those (about 190).
The cap counts runs, not seconds, so the ``ci`` profile's two runs still report the same input.
Component clauses (``cheap``) keep Hypothesis's own limits.

Every profile uses no example database (results depend only on the profile and the seed, which
makes a failure reproducible by its printed command and identical with and without xdist).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, Verbosity, settings

COST_FRACTION: dict[str, float] = {"cheap": 1.0, "network": 0.2, "training": 0.05}
SHRINK_RUNS = 100


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int
    time_limit: float
    derandomize: bool = False
    cap_shrinking: bool = True

    def examples_for(self, cost: str) -> int:
        return max(1, math.ceil(self.max_examples * COST_FRACTION.get(cost, 1.0)))

    def shrink_runs_for(self, cost: str) -> int | None:
        """How many runs shrinking a failure may take (None: Hypothesis's own limits)."""
        return None if cost == "cheap" or not self.cap_shrinking else SHRINK_RUNS

    def hypothesis_settings(self, cost: str = "cheap", *, shrink: bool = True) -> settings:
        base = settings.get_profile(f"nnspec-{self.name}")
        phases = base.phases if shrink else tuple(p for p in base.phases if p is not Phase.shrink)
        return settings(base, max_examples=self.examples_for(cost), phases=phases)


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", 10, 60.0),
    "default": Profile("default", 50, 120.0),
    "thorough": Profile("thorough", 500, 900.0, cap_shrinking=False),
    "ci": Profile("ci", 50, 300.0, derandomize=True),
}

_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.differing_executors,
    HealthCheck.nested_given,
]

for _p in PROFILES.values():
    settings.register_profile(
        f"nnspec-{_p.name}",
        max_examples=_p.max_examples,
        derandomize=_p.derandomize,
        deadline=None,
        database=None,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        # No explain phase: the failure report is nnspec's own (clause, observed, expected, shrunk
        # input), and Hypothesis >= 6.16x's explain phase re-runs a failing clause hundreds of times.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=_SUPPRESSED,
    )


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {list(PROFILES)}") from None
