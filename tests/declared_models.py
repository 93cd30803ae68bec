"""The conventions tests' three declared models as importable names, for a sweep of them:

    PYTHONPATH=tests python benchmarks/false_positives.py --seeds 10 --profile ci \\
        --impl declared_models:gpt2_like --impl declared_models:concatenated_top_left \\
        --impl declared_models:no_positions_no_biases \\
        $(for c in $(python -c "import declared_models; print(*declared_models.SWEPT)"); do echo --clause $c; done) \\
        --out benchmarks/results/conventions_sweep.json
"""

from test_conventions import DECLARED, declaring

gpt2_like = declaring(DECLARED["gpt2-like"], name="gpt2-like")
concatenated_top_left = declaring(DECLARED["concatenated-top-left"], name="concatenated-top-left")
no_positions_no_biases = declaring(DECLARED["no-positions-no-biases"], name="no-positions-no-biases")

# The clauses a declared convention touches: positions, the networks' own formulas, masks, norms.
SWEPT = (
    "PE-FORMULA", "PE-TABLE", "PE-BOUNDED", "PE-PAIR", "PE-RELATIVE", "PE-ADDED", "RESIDUAL", "ENC-LAYER",
    "DEC-LAYER", "ENC-PERMUTE", "DEC-CAUSAL", "DEC-AUTOREGRESSIVE", "DEC-CROSS-ALL", "NET-PADDING", "NET-BATCH",
    "OUT-DISTRIBUTION", "NET-LOGITS", "GREEDY", "GPT-NEXT", "GPT-COMPOSE", "GPT-GENERATE", "NET-ORACLE",
    "NET-LONG", "ATT-CAUSAL", "LN-STATS", "ACT-GELU", "PARAM-COUNT", "EMB-LOOKUP", "SAMPLE-DIST",
)
