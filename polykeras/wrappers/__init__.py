"""Keras 2's ``keras.wrappers``: ``scikit_learn`` (KerasClassifier, KerasRegressor)."""
