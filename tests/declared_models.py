"""The conventions tests' three declared models as importable names, for a sweep of them:

    PYTHONPATH=tests python benchmarks/false_positives.py --seeds 10 --profile ci \\
        --impl declared_models:gpt2_like --impl declared_models:concatenated_top_left \\
        --impl declared_models:no_positions_no_biases --clause NET-ORACLE --clause ...
"""

from test_conventions import DECLARED, declaring

gpt2_like = declaring(DECLARED["gpt2-like"], name="gpt2-like")
concatenated_top_left = declaring(DECLARED["concatenated-top-left"], name="concatenated-top-left")
no_positions_no_biases = declaring(DECLARED["no-positions-no-biases"], name="no-positions-no-biases")
