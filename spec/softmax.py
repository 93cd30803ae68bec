"""Clauses on softmax (to be written)."""
