"""Clauses on cost_learning (to be written)."""
