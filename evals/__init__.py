"""Evals: labelled datasets (``evals/datasets``), deterministic scorers, a runner, and the gate
that keeps an unevaluated prompt away from a provider (``evals/prompts.lock``).

See ``evals/datasets/README.md`` for the datasets and ``evals/gate.py`` for the gate.
Importing this package does no work.
"""
