"""Every layer polykeras has, under Keras' names (and Keras 1's where the guides use them).

The layer modules are imported on first use of one of their names (PEP 562 module
``__getattr__``): ``from polykeras.layers import Dense`` imports ``layers.core`` only.
``__all__`` and ``dir()`` list every name; the class registry that loading uses
(``saving.registry.builtin_classes``) reaches them all through ``dir()``.
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
import types as _types
from typing import TYPE_CHECKING, Any

#: public name -> the module (relative to this package) that defines it
_WHERE: dict[str, str] = {}


def _lazy(module: str, *names: str, export: bool = True) -> None:
    """Serve ``names`` from ``module`` on first use (and list them in ``__all__``)."""
    for name in names:
        _WHERE[name] = module
    if export:
        __all__.extend(names)


__all__: list[str] = [
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
# the guides' layers, listed in __all__ above
_lazy("..engine.base_layer", "Input", "InputLayer", "Layer", export=False)
_lazy("..engine.op_layer", "OpLayer", export=False)
_lazy(".convolutional", "Conv1D", "Conv2D", "Convolution1D", "Convolution2D", export=False)
_lazy(
    ".core",
    *("Activation", "Dense", "Dropout", "Flatten", "Lambda", "Permute", "RepeatVector"),
    "Reshape",
    export=False,
)
_lazy(".embeddings", "Embedding", export=False)
_lazy(".legacy", "Merge", "merge", export=False)
_lazy(
    ".merge",
    *("Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract"),
    *("add", "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract"),
    export=False,
)
_lazy(
    ".pooling",
    *("AveragePooling1D", "AveragePooling2D", "AvgPool1D", "AvgPool2D"),
    *("GlobalAveragePooling1D", "GlobalAveragePooling2D"),
    *("GlobalMaxPooling1D", "GlobalMaxPooling2D"),
    *("MaxPool1D", "MaxPool2D", "MaxPooling1D", "MaxPooling2D"),
    export=False,
)
_lazy(".normalization", "BatchNormalization", export=False)
_lazy(".recurrent", "GRU", "LSTM", "SimpleRNN", export=False)
_lazy(".wrappers", "TimeDistributed", export=False)

# -- families added after the guides' layers: one block per file, each naming its module
# and its names (in the order they join __all__), so that files can grow independently --
# [masking]
_lazy(".core", "Identity", "Masking")
# [activation]
_lazy(".activation", "ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax", "ThresholdedReLU")
# [noise]
_lazy(
    ".noise",
    "ActivityRegularization",
    "AlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
)
# [normalization]
_lazy(".normalization", "GroupNormalization", "LayerNormalization", "UnitNormalization")
# [convolution]
_lazy(
    ".convolutional",
    "Conv3D",
    "Conv3DTranspose",
    "Convolution3D",
    "Convolution3DTranspose",
    "Deconvolution3D",
)
_lazy(
    ".pooling",
    "AveragePooling3D",
    "AvgPool3D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling3D",
    "MaxPool3D",
    "MaxPooling3D",
)
_lazy(
    ".convolutional",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Convolution2DTranspose",
    "Deconvolution2D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
)
# [reshaping]
_lazy(
    ".reshaping",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
)
# [attention]
_lazy(".attention", "AdditiveAttention", "Attention", "MultiHeadAttention")
# [recurrent]
_lazy(".wrappers", "Bidirectional")
_lazy(
    ".recurrent",
    "RNN",
    "ConvLSTM2D",
    "GRUCell",
    "LSTMCell",
    "SimpleRNNCell",
    "StackedRNNCells",
)
# [preprocessing]
_lazy(".preprocessing", "CenterCrop", "Discretization", "Normalization", "Rescaling", "Resizing")
# [text-preprocessing]
_lazy(
    ".text_preprocessing",
    "CategoryEncoding",
    "Hashing",
    "IntegerLookup",
    "StringLookup",
    "TextVectorization",
)

# [augmentation]
_lazy(
    ".augmentation",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
)
# [extra]
_lazy(".extra", "DepthwiseConv1D", "EinsumDense")


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(_importlib.import_module(_WHERE[name], __name__), name)
    elif name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        # a layer module (polykeras.layers.core...) on first use
        try:
            value = _importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _LayersPackage(_types.ModuleType):
    """This package's module type: a submodule named like a public function (``merge``,
    Keras 1's merge function; ``layers/merge.py``) does not replace the function when it
    is imported (the import system binds each new submodule on its package)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _LayersPackage


# The imports below are for type checkers only; the names are served by __getattr__.
# ruff: noqa: F401
if TYPE_CHECKING:  # the names above, for type checkers and editors
    from ..engine.base_layer import Input, InputLayer, Layer
    from ..engine.op_layer import OpLayer
    from .activation import ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU
    from .attention import AdditiveAttention, Attention, MultiHeadAttention
    from .augmentation import (
        RandomBrightness,
        RandomContrast,
        RandomCrop,
        RandomFlip,
        RandomRotation,
        RandomTranslation,
        RandomZoom,
    )
    from .convolutional import (
        Conv1D,
        Conv1DTranspose,
        Conv2D,
        Conv2DTranspose,
        Conv3D,
        Conv3DTranspose,
        Convolution1D,
        Convolution2D,
        Convolution2DTranspose,
        Convolution3D,
        Convolution3DTranspose,
        Deconvolution2D,
        Deconvolution3D,
        DepthwiseConv2D,
        SeparableConv1D,
        SeparableConv2D,
        SeparableConvolution1D,
        SeparableConvolution2D,
    )
    from .core import (
        Activation,
        Dense,
        Dropout,
        Flatten,
        Identity,
        Lambda,
        Masking,
        Permute,
        RepeatVector,
        Reshape,
    )
    from .embeddings import Embedding
    from .extra import DepthwiseConv1D, EinsumDense
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
    from .noise import (
        ActivityRegularization,
        AlphaDropout,
        GaussianDropout,
        GaussianNoise,
        SpatialDropout1D,
        SpatialDropout2D,
        SpatialDropout3D,
    )
    from .normalization import (
        BatchNormalization,
        GroupNormalization,
        LayerNormalization,
        UnitNormalization,
    )
    from .pooling import (
        AveragePooling1D,
        AveragePooling2D,
        AveragePooling3D,
        AvgPool1D,
        AvgPool2D,
        AvgPool3D,
        GlobalAveragePooling1D,
        GlobalAveragePooling2D,
        GlobalAveragePooling3D,
        GlobalMaxPooling1D,
        GlobalMaxPooling2D,
        GlobalMaxPooling3D,
        MaxPool1D,
        MaxPool2D,
        MaxPool3D,
        MaxPooling1D,
        MaxPooling2D,
        MaxPooling3D,
    )
    from .recurrent import (
        GRU,
        LSTM,
        RNN,
        ConvLSTM2D,
        GRUCell,
        LSTMCell,
        SimpleRNN,
        SimpleRNNCell,
        StackedRNNCells,
    )
    from .preprocessing import (
        CenterCrop,
        Discretization,
        Normalization,
        Rescaling,
        Resizing,
    )
    from .text_preprocessing import (
        CategoryEncoding,
        Hashing,
        IntegerLookup,
        StringLookup,
        TextVectorization,
    )
    from .reshaping import (
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
    from .wrappers import Bidirectional, TimeDistributed
