"""Hashed word pieces: words in order, each the mean of its hashed pieces, padding masked."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.unit


def _ids(texts: list[str], **kw: object) -> np.ndarray:
    import tensorflow as tf

    from hscode.models.text import HashedSubwords

    layer = HashedSubwords(**{"buckets": 1 << 20, "max_words": 4, "max_pieces": 12, **kw})
    return layer(tf.constant(texts)).numpy()


def test_each_position_is_one_word_with_its_pieces() -> None:
    # "cup" -> w:cup, b:cup lid, <cu cup up>, <cup cup>, <cup>: 8 pieces; "lid" likewise
    ids = _ids(["cup lid", ""])
    assert ids.shape == (2, 4, 12)
    assert [(row > 0).sum() for row in ids[0]] == [8, 8, 0, 0]  # words in order, then padding
    assert not ids[1].any()  # an empty text is all padding
    # the same word shares its n-gram pieces wherever it stands; its bigram differs
    lid_first = _ids(["lid cup"])[0]
    assert set(lid_first[0][2:8]) == set(ids[0][1][2:8])
    assert lid_first[0][1] != ids[0][1][1]


def test_word_order_reaches_the_bigram_piece() -> None:
    a, b = _ids(["plastic plates"])[0], _ids(["plates plastic"])[0]
    assert a[0][0] == b[1][0]  # the word piece of "plastic" is the same
    assert a[0][1] != b[1][1]  # "plastic plates" and "plastic </s>" are different bigrams


def test_limits_truncate_and_options_drop_pieces() -> None:
    ids = _ids(["one two three four five six"], max_words=3, max_pieces=2)
    assert ids.shape == (1, 3, 2) and (ids > 0).all()  # word + bigram of the first 3 words
    words_only = _ids(["cup lid"], min_n=0, bigrams=False)
    assert [(row > 0).sum() for row in words_only[0]] == [1, 1, 0, 0]


def test_ids_stay_inside_the_buckets() -> None:
    ids = _ids(["a very long description of plastic tableware"], buckets=5, max_words=8)
    present = ids[ids > 0]
    assert present.size and present.min() >= 1 and present.max() <= 4


def test_embedding_averages_present_pieces_and_masks_padding() -> None:
    import tensorflow as tf

    from hscode.models.text import SubwordEmbedding, WordMaxPooling

    emb = SubwordEmbedding(6, 2)
    ids = tf.constant([[[1, 2, 0], [3, 0, 0], [0, 0, 0]]], dtype=tf.int64)
    out = emb(ids).numpy()
    table = emb.table.numpy()
    np.testing.assert_allclose(out[0, 0], (table[1] + table[2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], table[3], rtol=1e-6)
    np.testing.assert_allclose(out[0, 2], 0.0)
    assert emb.compute_mask(ids).numpy().tolist() == [[True, True, False]]
    # max over words skips the padded word even when every real value is negative
    x = tf.constant([[[-1.0, -3.0], [-2.0, -0.5], [0.0, 0.0]]])
    np.testing.assert_allclose(WordMaxPooling()([x, ids]).numpy(), [[-1.0, -0.5]])
    empty = tf.zeros((1, 3, 3), tf.int64)
    np.testing.assert_allclose(WordMaxPooling()([x, empty]).numpy(), [[0.0, 0.0]])


def test_layers_round_trip_their_config() -> None:
    from hscode.models.text import HashedSubwords

    layer = HashedSubwords(1000, 8, 10, 2, 6, bigrams=False)
    again = HashedSubwords.from_config(layer.get_config())
    assert (again.buckets, again.max_words, again.max_pieces, again.min_n, again.max_n,
            again.bigrams) == (1000, 8, 10, 2, 6, False)


def test_piece_dropout_leaves_pieces_out_only_while_training() -> None:
    import tensorflow as tf

    from hscode.models.text import SubwordEmbedding

    tf.random.set_seed(3)
    emb = SubwordEmbedding(21, 20, piece_dropout=0.5)
    ids = tf.constant([[list(range(1, 21))]], dtype=tf.int64)  # one word of 20 pieces
    emb.build(ids.shape)
    emb.table.assign(np.vstack([np.zeros((1, 20)), np.eye(20)]))  # piece i -> unit vector i
    np.testing.assert_allclose(emb(ids).numpy()[0, 0], np.full(20, 1 / 20), rtol=1e-6)
    for _ in range(5):  # training: the mean of the pieces kept, each kept one weighing 1/k
        word = emb(ids, training=True).numpy()[0, 0]
        kept = word > 0
        assert 0 < kept.sum() < 20
        np.testing.assert_allclose(word[kept], 1 / kept.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="piece_dropout"):
        SubwordEmbedding(4, 2, piece_dropout=1.0)
    assert SubwordEmbedding.from_config(emb.get_config()).piece_dropout == 0.5


def test_a_batch_is_cut_to_its_longest_text() -> None:
    import tensorflow as tf

    from hscode.models.text import TrimPadding

    ids = _ids(["cup lid", "cup", ""], max_words=8)
    assert ids.shape == (3, 8, 12)
    np.testing.assert_array_equal(TrimPadding()(tf.constant(ids)).numpy(), ids[:, :2])
    assert TrimPadding()(tf.constant(ids[2:])).shape == (1, 1, 12)  # all padding: one word


@pytest.mark.parametrize("model", ["dnn", "lstm", "textcnn"])
def test_a_texts_probabilities_do_not_depend_on_its_batch(model: str) -> None:
    import tensorflow as tf

    from hscode.models import ModelParams, build_model

    tf.keras.utils.set_random_seed(0)
    net = build_model(model, 1 << 12, 12, 7, ModelParams(
        embedding_dim=8, layers=1, initial_neurons=8, filters=4, kernel_sizes=(3, 4, 5)))
    short = "plastic cup lid"
    long_text = " ".join(f"w{i}" for i in range(30))
    alone = net(tf.constant(_ids([short], max_words=32, buckets=1 << 12)), training=False).numpy()
    beside = net(tf.constant(_ids([short, long_text], max_words=32, buckets=1 << 12)), training=False).numpy()
    np.testing.assert_allclose(alone[0], beside[0], rtol=1e-5, atol=1e-7)
