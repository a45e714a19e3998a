"""Every layer polykeras has, under Keras' names (and Keras 1's where the guides use them)."""

from ..engine.base_layer import Input, InputLayer, Layer
from ..engine.op_layer import OpLayer
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
    "Activation",
    "Add",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Convolution1D",
    "Convolution2D",
    "Dense",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "LSTM",
    "Lambda",
    "Layer",
    "Maximum",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "Merge",
    "Minimum",
    "Multiply",
    "OpLayer",
    "Permute",
    "RepeatVector",
    "Reshape",
    "SimpleRNN",
    "Subtract",
    "TimeDistributed",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "merge",
    "minimum",
    "multiply",
    "subtract",
]

# -- families added after the guides' layers: each block imports its names and extends
# __all__ (one block per file, so that files can grow independently) --------------------
# [masking]
from .core import Identity, Masking  # noqa: E402

__all__ += ["Identity", "Masking"]
# [activation]
from .activation import ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU  # noqa: E402

__all__ += ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax", "ThresholdedReLU"]
# [noise]
from .noise import (  # noqa: E402
    ActivityRegularization,
    AlphaDropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)

__all__ += [
    "ActivityRegularization",
    "AlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
]
# [normalization]
from .normalization import GroupNormalization, LayerNormalization, UnitNormalization  # noqa: E402

__all__ += ["GroupNormalization", "LayerNormalization", "UnitNormalization"]
# [convolution]
from .convolutional import (  # noqa: E402
    Conv1DTranspose,
    Conv2DTranspose,
    Convolution2DTranspose,
    Deconvolution2D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
    SeparableConvolution1D,
    SeparableConvolution2D,
    Conv3D,
    Conv3DTranspose,
    Convolution3D,
    Convolution3DTranspose,
    Deconvolution3D,
)
from .pooling import (  # noqa: E402
    AveragePooling3D,
    AvgPool3D,
    GlobalAveragePooling3D,
    GlobalMaxPooling3D,
    MaxPool3D,
    MaxPooling3D,
)

__all__ += [
    "Conv3D",
    "Conv3DTranspose",
    "Convolution3D",
    "Convolution3DTranspose",
    "Deconvolution3D",
    "AveragePooling3D",
    "AvgPool3D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling3D",
    "MaxPool3D",
    "MaxPooling3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Convolution2DTranspose",
    "Deconvolution2D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
]
# [reshaping]
from .reshaping import (  # noqa: E402
    Cropping1D,
    Cropping2D,
    Cropping3D,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)

__all__ += [
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
]
# [attention]
from .attention import AdditiveAttention, Attention, MultiHeadAttention  # noqa: E402

__all__ += ["AdditiveAttention", "Attention", "MultiHeadAttention"]
# [recurrent]
from .wrappers import Bidirectional  # noqa: E402

__all__ += ["Bidirectional"]
from .recurrent import (  # noqa: E402
    RNN,
    ConvLSTM2D,
    GRUCell,
    LSTMCell,
    SimpleRNNCell,
    StackedRNNCells,
)

__all__ += ["RNN", "ConvLSTM2D", "GRUCell", "LSTMCell", "SimpleRNNCell", "StackedRNNCells"]
