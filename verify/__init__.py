"""The verification engine: run the specification's clauses against an implementation.

Clause writers (``spec/*.py``) only need :mod:`nnspec.spec.clause`; this is how the engine runs
what they write, and how tests plant bugs::

    import numpy as np
    from nnspec.verify import load_implementation, patched, run_clause

    torch32 = load_implementation("torch:cpu:float32")  # torch[:device[:dtype]]; bare "torch" = cpu, float32
    result = run_clause("SM-SUM", torch32, profile="quick", seed=0)
    result.status        # "passed" | "failed" | "error" | "not_applicable"
    result.message       # on failure: clause, sentence, observed vs expected, error/tolerance, input
    result.max_error, result.tolerance, result.reason   # the worst assertion and the rule used
    result.reproduce     # "nnspec verify torch:cpu:float32 --clause SM-SUM --profile quick --seed 0"

    # a planted bug: overrides take and return NumPy arrays, whatever the base implementation
    no_shift = patched("numpy", name="softmax-no-shift",
                       softmax=lambda x, axis=-1, temperature=1.0:
                           np.exp(x / temperature) / np.exp(x / temperature).sum(axis, keepdims=True))
    assert run_clause("SM-SUM", no_shift).status == "failed"
    # removing a capability (value None) makes the clauses that need it not applicable
    assert run_clause("SM-SUM", patched("numpy", name="no-softmax", softmax=None)).status == "not_applicable"

Inside a property, ``ck`` is an :class:`~nnspec.verify.check.EngineCheck`::

    x = ck.input(ck.draw(strategies.floats_array(shape), label="x"))   # rounded to impl's dtype
    y = ck.close_to_oracle("softmax", x, axis=-1, output="probability")  # differential check
    ck.close(y.sum(-1), np.ones(y.shape[:-1]), output="reduction", what="rows sum to 1")
    ck.close_to_oracle(lambda m: m.GPT(cfg, params).forward(ids), output="network")  # networks

Output kinds for ``output=`` are the rows of :data:`nnspec.verify.tolerances.TABLE` (exact,
elementwise, default, probability, reduction, attention, normalised, network, gradient).
Strategies for draws are in :mod:`nnspec.verify.strategies`.

Modules: :mod:`.implementations` (names, adapters, :func:`patched`), :mod:`.conventions`,
:mod:`.protocols` (capability groups), :mod:`.tolerances` (the one table), :mod:`.check`,
:mod:`.profiles`, :mod:`.runner`, :mod:`.strategies`, :mod:`.plugin` (pytest), :mod:`.cli`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports (PEP 562): ``nnspec --version`` and ``nnspec list`` stay fast, and the CLI imports
# Hypothesis only inside pytest (so pytest can rewrite its assertions as usual).
_EXPORTS = {
    "EngineCheck": ".check",
    "Record": ".check",
    "ConfiguredOracle": ".conventions",
    "Conventions": ".conventions",
    "ENTRY_POINT_GROUP": ".implementations",
    "Implementation": ".implementations",
    "ImplementationError": ".implementations",
    "MissingCapability": ".implementations",
    "UnknownImplementation": ".implementations",
    "load_implementation": ".implementations",
    "by_device_and_dtype": ".implementations",
    "from_object": ".implementations",
    "patched": ".implementations",
    "torch_module": ".implementations",
    "PROFILES": ".profiles",
    "get_profile": ".profiles",
    "ClauseResult": ".runner",
    "ClauseTimeout": ".runner",
    "get_clause": ".runner",
    "run_clause": ".runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
