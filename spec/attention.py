"""Clauses on attention (to be written)."""
