"""Clauses on rnn_attention (to be written)."""
