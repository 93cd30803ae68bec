"""Clauses on normalisation (to be written)."""
