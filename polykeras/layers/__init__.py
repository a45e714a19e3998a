"""Every layer polykeras has, under Keras' names (and Keras 1's where the guides use them)."""

from ..engine.base_layer import Input, InputLayer, Layer
from .convolutional import Conv1D, Conv2D, Convolution1D, Convolution2D
from .core import Activation, Dense, Dropout, Flatten, Lambda, Permute, RepeatVector, Reshape
from .embeddings import Embedding
from .legacy import Merge, merge
from .merge import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from .pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AvgPool1D,
    AvgPool2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPool1D,
    MaxPool2D,
    MaxPooling1D,
    MaxPooling2D,
)
from .normalization import BatchNormalization
from .recurrent import GRU, LSTM, SimpleRNN
from .wrappers import TimeDistributed

__all__ = [
    "Activation", "Add", "Average", "AveragePooling1D", "AveragePooling2D", "AvgPool1D",
    "AvgPool2D", "BatchNormalization", "Concatenate", "Conv1D", "Conv2D", "Convolution1D",
    "Convolution2D", "Dense", "Dot", "Dropout", "Embedding", "Flatten", "GRU",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "Input", "InputLayer", "LSTM", "Lambda", "Layer", "Maximum",
    "MaxPool1D", "MaxPool2D", "MaxPooling1D", "MaxPooling2D", "Merge", "Minimum", "Multiply",
    "Permute", "RepeatVector", "Reshape", "SimpleRNN", "Subtract", "TimeDistributed", "add",
    "average", "concatenate", "dot", "maximum", "merge", "minimum", "multiply", "subtract",
]
