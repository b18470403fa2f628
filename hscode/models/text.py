"""Text to token ids inside the model, so scoring tokenises exactly as training did.

The networks read a *sequence of words*, each word represented fastText-style by the hashed
ids of its pieces (:class:`HashedSubwords`):

* the word itself (``w:bottle``),
* the word bigram it starts (``b:plastic bottle``), so a kernel over one position already
  sees a word pair the SVM's word 1-2-grams live on,
* its character n-grams (``<bo``, ``bot``, ... ``tle>``, 3-5 by default): customs descriptions
  are full of typos, glued tokens (``1litre``) and part numbers that whole-word vocabularies
  miss.

Word order is kept (position ``i`` is word ``i``), so Text-CNN kernels of width 3-5 span 3-5
adjacent words, and no vocabulary has to be fitted: every piece is hashed into a fixed number
of buckets (id 0 is padding), so the rarest, most specific words keep their own vector
(collisions aside) instead of becoming out-of-vocabulary. :class:`SubwordEmbedding` averages
the embeddings of a word's pieces into one word vector and masks padded words;
:class:`WordMaxPooling` keeps padding out of the Text-CNN's max-over-time pooling.
:class:`TrimPadding` cuts a batch to its longest text before the network reads it: the
tokeniser pads every text to ``max_words`` (32) while the median text has about 4 words, and
the LSTM's steps and the convolutions' positions cost per padded word too.

The layers are registered, so a saved model loads them by name (no arbitrary code).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

PAD = 0


@tf.keras.utils.register_keras_serializable(package="hscode")
class HashedSubwords(tf.keras.layers.Layer):
    """Strings ``[batch]`` in, int64 ids ``[batch, max_words, max_pieces]`` out.

    Args:
        buckets: Hash buckets, padding included (ids are ``1 .. buckets - 1``).
        max_words: Words kept per text (later words are dropped, shorter texts padded).
        max_pieces: Pieces kept per word: word, bigram, then n-grams from the shortest
            size up (the longest n-grams of very long words are dropped).
        min_n: Smallest character n-gram (0 = no character n-grams).
        max_n: Largest character n-gram.
        bigrams: Add the word bigram starting at each word.
    """

    def __init__(self, buckets: int = 2**18, max_words: int = 32, max_pieces: int = 28,
                 min_n: int = 3, max_n: int = 5, bigrams: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("trainable", False)  # a tokeniser: nothing to learn
        super().__init__(**kwargs)
        if buckets < 2 or max_words < 1 or max_pieces < 1:
            raise ValueError("buckets >= 2, max_words >= 1 and max_pieces >= 1 are required")
        self.buckets, self.max_words, self.max_pieces = buckets, max_words, max_pieces
        self.min_n, self.max_n, self.bigrams = min_n, max(max_n, min_n), bigrams

    def call(self, text: tf.Tensor) -> tf.Tensor:
        words = tf.strings.split(text)[:, : self.max_words]  # [batch, (words)]
        pieces = [tf.expand_dims(tf.strings.join(["w:", words]), -1)]
        if self.bigrams:
            pieces.append(tf.expand_dims(tf.strings.join(["b:", words, " ", _next_words(words)]), -1))
        if self.min_n:
            chars = tf.strings.unicode_split(tf.strings.join(["<", words, ">"]), "UTF-8")
            sizes = tuple(range(self.min_n, self.max_n + 1))
            pieces.append(tf.strings.ngrams(chars, sizes, separator=""))  # [b, (w), (grams)]
        tokens = tf.concat(pieces, axis=2)  # [batch, (words), (pieces)]
        ids = tf.strings.to_hash_bucket_fast(tokens, self.buckets - 1) + 1
        ids = ids.to_tensor(PAD, shape=[None, self.max_words, None])[:, :, : self.max_pieces]
        return tf.pad(ids, [[0, 0], [0, 0], [0, self.max_pieces - tf.shape(ids)[2]]])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "buckets": self.buckets, "max_words": self.max_words,
                "max_pieces": self.max_pieces, "min_n": self.min_n, "max_n": self.max_n,
                "bigrams": self.bigrams}


def present_words(ids: tf.Tensor) -> tf.Tensor:
    """``[batch, words]``: True where ids ``[batch, words, pieces]`` hold a word, not padding."""
    return tf.reduce_any(tf.not_equal(ids, PAD), axis=-1)


def _next_words(words: tf.RaggedTensor) -> tf.RaggedTensor:
    """The word after each word of a ragged ``[batch, (words)]``; ``</s>`` after the last."""
    flat = words.flat_values
    following = tf.concat([flat[1:], tf.constant(["</s>"])], axis=0)[: tf.size(flat)]
    lengths = words.row_lengths()
    last = tf.boolean_mask(words.row_limits() - 1, lengths > 0)
    following = tf.tensor_scatter_nd_update(
        following, tf.expand_dims(last, -1), tf.fill(tf.shape(last), "</s>"))
    return words.with_flat_values(following)


@tf.keras.utils.register_keras_serializable(package="hscode")
class TrimPadding(tf.keras.layers.Layer):
    """Ids ``[batch, words, pieces]`` in, the same ids without the word positions that are
    padding in every text of the batch out (at least one position is kept).

    A text's outputs do not change: padded words embed to zeros and are masked, so the
    LSTM skips them, the convolutions' ``same`` padding adds the same zeros, and
    :class:`WordMaxPooling` ignores them; only the work on all-padding positions goes.
    """

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        used = tf.where(tf.reduce_any(present_words(ids), axis=0))[:, 0]  # word positions
        n = tf.reduce_max(tf.concat([used + 1, tf.ones([1], tf.int64)], axis=0))
        return ids[:, :n]


@tf.keras.utils.register_keras_serializable(package="hscode")
class SubwordEmbedding(tf.keras.layers.Layer):
    """Ids ``[batch, words, pieces]`` in, word vectors ``[batch, words, dim]`` out: the mean
    embedding of each word's pieces (padding pieces left out). The Keras mask marks the
    words that exist, so masking layers downstream (LSTM, average pooling) skip padding.

    Args:
        buckets: Hash buckets (rows of the embedding table).
        dim: Embedding size.
        piece_dropout: While training, each piece is left out of its word's mean with this
            probability (a deep averaging network's word dropout, per piece), so no single
            memorised piece decides a code; scoring uses every piece.
    """

    def __init__(self, buckets: int, dim: int, piece_dropout: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= piece_dropout < 1.0:
            raise ValueError(f"piece_dropout must be in [0, 1), got {piece_dropout}")
        self.buckets, self.dim, self.piece_dropout = buckets, dim, piece_dropout
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        self.table = self.add_weight(
            name="table", shape=(self.buckets, self.dim),
            initializer=tf.keras.initializers.RandomUniform(-0.05, 0.05))
        super().build(input_shape)

    def call(self, ids: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        # look up only the pieces present: gathering the padding id too would send ~90% of
        # the gradient rows to row 0, and their serialised scatter costs more than the rest
        present = tf.not_equal(ids, PAD)
        if training and self.piece_dropout > 0.0:
            present &= tf.random.uniform(tf.shape(ids)) >= self.piece_dropout
        where = tf.where(present)  # [pieces, 3]: (text, word, piece)
        vectors = tf.gather(self.table, tf.boolean_mask(ids, present))
        shape = tf.shape(ids, out_type=tf.int64)
        word = where[:, 0] * shape[1] + where[:, 1]  # one segment per (text, word)
        n_words = shape[0] * shape[1]
        total = tf.math.unsorted_segment_sum(vectors, word, n_words)
        count = tf.math.unsorted_segment_sum(tf.ones_like(word, self.compute_dtype), word, n_words)
        mean = total / tf.maximum(count, 1.0)[:, None]
        return tf.reshape(mean, tf.stack([shape[0], shape[1], self.dim]))

    def compute_mask(self, ids: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        return present_words(ids)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "buckets": self.buckets, "dim": self.dim,
                "piece_dropout": self.piece_dropout}


@tf.keras.utils.register_keras_serializable(package="hscode")
class WordMaxPooling(tf.keras.layers.Layer):
    """Max over time of ``[batch, words, channels]`` counting only the words present in
    ``ids`` (Keras convolutions drop the mask, so the ids are passed alongside); a text with
    no word at all pools to zeros."""

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        x, ids = inputs
        present = present_words(ids)
        keep = tf.cast(present, x.dtype)[..., None]
        pooled = tf.reduce_max(x * keep + (1.0 - keep) * x.dtype.min, axis=1)
        return pooled * tf.cast(tf.reduce_any(present, axis=1), x.dtype)[:, None]
