"""Keras model builders (tf.keras, Keras 2 on TF 2.15): DNN, LSTM and Text-CNN.

Every builder takes integer token sequences (``[batch, sequence_length]``) and returns a
compiled-free ``tf.keras.Model`` ending in a softmax over the codes; the text vectorisation
is attached in front of it when the model is saved (``hscode.training.artifacts``).
"""

from hscode.models.builders import MODEL_NAMES, ModelParams, build_model, default_params

__all__ = ["MODEL_NAMES", "ModelParams", "build_model", "default_params"]
