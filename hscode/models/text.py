"""Text to tokens inside the model, so scoring tokenises exactly as training did.

:class:`SubwordTokens` expands every word with its character trigrams, fastText-style
(``bottle`` -> ``bottle <bo bot ott ttl tle le>``): customs descriptions are full of typos,
glued tokens (``1litre``) and part numbers, which whole-word vocabularies miss. The layer is
registered, so a saved model loads it by name (no arbitrary code).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="hscode")
class SubwordTokens(tf.keras.layers.Layer):
    """Strings in, strings out: each word followed by its character n-grams.

    Args:
        n: Smallest n-gram size.
        max_n: Largest n-gram size (default: ``n``).
    """

    def __init__(self, n: int = 3, max_n: int | None = None, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(**kwargs)
        self.n = n
        self.max_n = max_n or n

    def call(self, text: tf.Tensor) -> tf.Tensor:
        words = tf.strings.split(text)  # [batch, (words)]
        chars = tf.strings.unicode_split(
            tf.strings.join(["<", words, ">"]), "UTF-8")  # [batch, (words), (chars)]
        grams = tf.strings.ngrams(chars, tuple(range(self.n, self.max_n + 1)), separator="")  # [batch, (words), (grams)]
        tokens = tf.concat([tf.expand_dims(words, -1), grams], axis=2).merge_dims(1, 2)
        return tf.strings.reduce_join(tokens, axis=1, separator=" ")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n, "max_n": self.max_n}
