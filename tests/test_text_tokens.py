"""Subword tokens: each word followed by its character n-grams."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_subword_tokens() -> None:
    import tensorflow as tf

    from hscode.models.text import SubwordTokens

    out = SubwordTokens(3)(tf.constant(["cup lid", ""])).numpy().tolist()
    assert out == [b"cup <cu cup up> lid <li lid id>", b""]
    wide = SubwordTokens(3, 4)(tf.constant(["ab"])).numpy().tolist()
    assert wide == [b"ab <ab ab> <ab>"]
    assert SubwordTokens.from_config(SubwordTokens(2, 5).get_config()).max_n == 5
