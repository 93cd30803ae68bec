"""The clause strategies draw what they promise (shapes, masks, tokens, configs)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from nnspec.reference import numpy_ref
from nnspec.verify import strategies as S


@given(shapes=S.attention_shapes(distinct=True), heads=S.heads_and_d_model())
def test_attention_shapes(shapes: dict, heads: tuple[int, int]) -> None:
    assert shapes["n_queries"] != shapes["n_keys"]
    assert shapes["d_k"] >= 1 and shapes["d_v"] >= 1
    n_heads, d_model = heads
    assert d_model % n_heads == 0 and d_model >= n_heads


@given(data=st.data())
def test_masks(data: st.DataObject) -> None:
    n_q = data.draw(st.integers(1, 4), label="n_q")
    n_k = data.draw(st.integers(1, 4), label="n_k")
    masked = data.draw(S.masks_with_masked_rows(n_q, n_k), label="masked rows")
    assert masked.dtype == bool and masked.shape == (n_q, n_k)
    assert (~masked.any(axis=-1)).any()
    no_empty_rows = data.draw(S.masks(n_q, n_k, allow_masked_rows=False), label="mask")
    assert no_empty_rows.any(axis=-1).all()
    np.testing.assert_array_equal(S.causal(n_q, n_k), numpy_ref.causal_mask(n_q, n_k))


@given(x=S.extreme_logits((3, 4)), ids=S.token_sequences(7, max_len=5, batch=(2,)), padded=S.padded_sequences(9))
def test_numbers_and_tokens(x: np.ndarray, ids: np.ndarray, padded: np.ndarray) -> None:
    assert np.isfinite(x).all() and np.abs(x).max() <= 1e4
    assert ids.dtype == np.int64 and ids.shape[0] == 2 and 1 <= ids.shape[1] <= 5
    assert ((ids >= 0) & (ids < 7)).all()
    end = int(np.argmax(padded == 3))
    assert (padded[:end] > 3).all() and (padded[end + 1 :] == 0).all()


@given(
    config=st.one_of(S.gpt_configs(), S.transformer_configs(), S.mlp_configs(), S.seq2seq_configs()),
    data=st.data(),
)
def test_configs_build_networks(config, data: st.DataObject) -> None:
    params = data.draw(S.parameter_sets(config), label="params")
    assert isinstance(params, dict) and params
