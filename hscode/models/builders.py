"""The three networks of the paper, with learned embeddings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorflow as tf

MODEL_NAMES = ("dnn", "lstm", "textcnn")


@dataclass(frozen=True)
class ModelParams:
    """Hyper-parameters (the paper's Table II for DNN/LSTM; Text-CNN as in the paper).

    ``initial_neurons`` is the width of the first hidden layer; each further layer keeps
    ``neuron_shrink`` of the previous width (never below ``min_neurons``). ``layers`` is the
    number of hidden dense (DNN; 0 = a softmax over the mean embedding, fastText's shape) or
    recurrent (LSTM) layers. ``mean_embedding`` adds the text's mean piece embedding beside
    the Text-CNN's or LSTM's pooled features before the softmax (the DNN is that mean).
    """

    embedding_dim: int = 100
    dropout: float = 0.5
    layers: int = 2
    initial_neurons: int = 256
    neuron_shrink: float = 0.5
    min_neurons: int = 16
    filters: int = 128
    kernel_sizes: tuple[int, ...] = (3, 4, 5)
    learning_rate: float = 2e-3
    mean_embedding: bool = True  # Text-CNN / LSTM: the mean piece embedding joins the softmax
    piece_dropout: float = 0.0  # share of a word's pieces left out of its mean while training
    length_window: int = 0  # > 1: training batches of similar length, cut from shuffled
    #                         windows of this many batches (the LSTM's steps follow length)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (tuples as lists)."""
        d = asdict(self)
        d["kernel_sizes"] = list(self.kernel_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelParams:
        d = dict(d)
        if "kernel_sizes" in d:
            d["kernel_sizes"] = tuple(d["kernel_sizes"])
        return cls(**d)

    def widths(self) -> list[int]:
        """Hidden-layer widths: initial, shrinking by ``neuron_shrink``."""
        out, width = [], float(self.initial_neurons)
        for _ in range(self.layers):
            out.append(max(self.min_neurons, int(round(width))))
            width *= self.neuron_shrink
        return out


def default_params(model: str) -> ModelParams:
    """Starting parameters per model (the search refines DNN and LSTM)."""
    if model == "textcnn":
        return ModelParams(embedding_dim=100, filters=128, kernel_sizes=(3, 4, 5), dropout=0.5)
    if model == "lstm":  # bidirectional, max-pooled over words (bench/results.jsonl)
        return ModelParams(embedding_dim=96, layers=1, initial_neurons=128, dropout=0.3,
                           learning_rate=1e-2, length_window=32)
    if model == "dnn":  # no hidden layer: a softmax over the mean piece embedding (fastText)
        return ModelParams(embedding_dim=96, layers=0, dropout=0.3, learning_rate=1e-2)
    raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODEL_NAMES)}")


def _textcnn(x: tf.Tensor, ids: tf.Tensor, p: ModelParams) -> tf.Tensor:
    import tensorflow as tf

    from hscode.models.text import WordMaxPooling

    pooled = []
    for k in p.kernel_sizes:  # parallel convolutions over k adjacent words, max over words
        c = tf.keras.layers.Conv1D(p.filters, k, activation="relu", padding="same",
                                   name=f"conv_{k}")(x)
        pooled.append(WordMaxPooling(name=f"maxpool_{k}")([c, ids]))
    x = tf.keras.layers.Concatenate(name="concat")(pooled) if len(pooled) > 1 else pooled[0]
    return tf.keras.layers.Dropout(p.dropout)(x)


def _dnn(x: tf.Tensor, ids: tf.Tensor, p: ModelParams) -> tf.Tensor:
    import tensorflow as tf

    x = tf.keras.layers.GlobalAveragePooling1D(name="mean_embedding")(x)  # masked mean
    for i, width in enumerate(p.widths()):
        x = tf.keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
        x = tf.keras.layers.Dropout(p.dropout)(x)
    return x


def _lstm(x: tf.Tensor, ids: tf.Tensor, p: ModelParams) -> tf.Tensor:
    import tensorflow as tf

    from hscode.models.text import WordMaxPooling

    for i, width in enumerate(p.widths()):  # the mask skips padded words
        x = tf.keras.layers.Bidirectional(
            tf.keras.layers.LSTM(width, return_sequences=True), name=f"lstm_{i}")(x)
        x = tf.keras.layers.Dropout(p.dropout)(x)
    return WordMaxPooling(name="maxpool")([x, ids])


def build_model(model: str, buckets: int, max_pieces: int, n_classes: int,
                params: ModelParams | None = None) -> tf.keras.Model:
    """Build ``dnn``, ``lstm`` (bidirectional) or ``textcnn`` over hashed word pieces
    (:class:`~hscode.models.text.HashedSubwords` ids ``[batch, words, max_pieces]``);
    softmax over ``n_classes``."""
    import tensorflow as tf

    from hscode.models.text import SubwordEmbedding, TrimPadding

    p = params or default_params(model)
    body = {"textcnn": _textcnn, "dnn": _dnn, "lstm": _lstm}.get(model)
    if body is None:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODEL_NAMES)}")
    # any number of words (the tokeniser pads to max_words; padding is masked)
    pieces = tf.keras.Input(shape=(None, max_pieces), dtype="int64", name="pieces")
    ids = TrimPadding(name="trim_padding")(pieces)  # the batch's longest text sets the length
    x = SubwordEmbedding(buckets, p.embedding_dim, p.piece_dropout, name="embedding")(ids)
    h = body(x, ids, p)
    if p.mean_embedding and model != "dnn":  # the fastText path beside the sequence model
        mean = tf.keras.layers.GlobalAveragePooling1D(name="mean_embedding")(x)
        h = tf.keras.layers.Concatenate(name="with_mean")([h, mean])
    out = tf.keras.layers.Dense(n_classes, activation="softmax", name="code")(h)
    return tf.keras.Model(pieces, out, name=model)
