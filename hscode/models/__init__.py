"""Keras model builders (tf.keras, Keras 2 on TF 2.15): DNN, LSTM and Text-CNN.

Every builder takes hashed word pieces (``[batch, words, pieces]``, see
:mod:`hscode.models.text`) and returns an uncompiled ``tf.keras.Model`` ending in a softmax
over the codes; the tokeniser is attached in front of it when the model is saved
(``hscode.training.hvd_train``).
"""

from hscode.models.builders import MODEL_NAMES, ModelParams, build_model, default_params

__all__ = ["MODEL_NAMES", "ModelParams", "build_model", "default_params"]
