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
component's. Clauses with ``hypothesis=False`` run exactly once. The time limit is per clause (all of
its examples); there is no per-example deadline because shared CI machines are noisy.

Every profile uses no example database (results depend only on the profile and the seed, which
makes a failure reproducible by its printed command and identical with and without xdist).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, Verbosity, settings

COST_FRACTION: dict[str, float] = {"cheap": 1.0, "network": 0.2, "training": 0.05}


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int
    time_limit: float
    derandomize: bool = False

    def examples_for(self, cost: str) -> int:
        return max(1, math.ceil(self.max_examples * COST_FRACTION.get(cost, 1.0)))

    def hypothesis_settings(self, cost: str = "cheap", *, shrink: bool = True) -> settings:
        base = settings.get_profile(f"nnspec-{self.name}")
        phases = base.phases if shrink else tuple(p for p in base.phases if p is not Phase.shrink)
        return settings(base, max_examples=self.examples_for(cost), phases=phases)


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", 10, 60.0),
    "default": Profile("default", 50, 120.0),
    "thorough": Profile("thorough", 500, 900.0),
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
