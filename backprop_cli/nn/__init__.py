"""Torch7-style modules and criterions in numpy.

Layer 0, the library (with ``optim`` and ``data``): imports numpy and ``errors`` only, never a config,
the engine or the CLI.

Class names follow Torch7 (``SpatialConvolution``, ``ClassNLLCriterion``), and the PyTorch names people
also know (``Conv2d``, ``NLLLoss``) take PyTorch's arguments in PyTorch's order with PyTorch's defaults:
where the two signatures differ the PyTorch name is a thin subclass of the Torch7 class (``NLLLoss``
of ``ClassNLLCriterion``), where they agree it is the same class (``Softmax is SoftMax``). Modules
PyTorch has and Torch7 lacks (``LayerNorm``, ``GELU``, ``HuberLoss``, ...) have their PyTorch name
only. ``MODULES`` and ``CRITERIONS`` map every accepted name to its class; configs are resolved
through them.
"""

from .activation import (ELU, GELU, Hardtanh, LeakyReLU, LogSoftMax, ReLU, Sigmoid, SiLU, SoftMax, SoftPlus,
                         Tanh)
from .container import Residual, Sequential
from .conv import Conv1d, Conv2d, SpatialConvolution, TemporalConvolution
from .embedding import Embedding
from .linear import Flatten, Identity, Linear, Reshape, View
from .loss import (AbsCriterion, BCECriterion, BCELoss, BCEWithLogitsCriterion, BCEWithLogitsLoss, ClassNLLCriterion,
                   CrossEntropyCriterion, CrossEntropyLoss, HuberLoss, L1Loss, MSECriterion, MSELoss,
                   MultiMarginCriterion, MultiMarginLoss, NLLLoss, SmoothL1Criterion, SmoothL1Loss)
from .module import Criterion, Module, ShapeError
from .normalization import BatchNormalization, Dropout, LayerNorm, SpatialBatchNormalization
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d,
                      SpatialAveragePooling, SpatialMaxPooling, TemporalMaxPooling)

#: Every accepted layer name (Torch7 and PyTorch spellings) -> class.
MODULES: dict[str, type[Module]] = {
    "Sequential": Sequential, "Residual": Residual,
    "Linear": Linear, "Identity": Identity, "Reshape": Reshape, "View": View, "Flatten": Flatten,
    "Embedding": Embedding,
    "ReLU": ReLU, "LeakyReLU": LeakyReLU, "ELU": ELU, "Tanh": Tanh, "Sigmoid": Sigmoid,
    "GELU": GELU, "SiLU": SiLU, "Hardtanh": Hardtanh,
    "SoftPlus": SoftPlus, "Softplus": SoftPlus, "SoftMax": SoftMax, "Softmax": SoftMax,
    "LogSoftMax": LogSoftMax, "LogSoftmax": LogSoftMax,
    "Dropout": Dropout, "BatchNormalization": BatchNormalization, "BatchNorm1d": BatchNormalization,
    "SpatialBatchNormalization": SpatialBatchNormalization, "BatchNorm2d": SpatialBatchNormalization,
    "LayerNorm": LayerNorm,
    "TemporalConvolution": TemporalConvolution, "Conv1d": Conv1d,
    "SpatialConvolution": SpatialConvolution, "Conv2d": Conv2d,
    "TemporalMaxPooling": TemporalMaxPooling, "MaxPool1d": MaxPool1d,
    "SpatialMaxPooling": SpatialMaxPooling, "MaxPool2d": MaxPool2d,
    "SpatialAveragePooling": SpatialAveragePooling, "AvgPool2d": AvgPool2d, "AvgPool1d": AvgPool1d,
    "AdaptiveAvgPool1d": AdaptiveAvgPool1d, "AdaptiveAvgPool2d": AdaptiveAvgPool2d,
}

#: Every accepted criterion name -> class.
CRITERIONS: dict[str, type[Criterion]] = {
    "MSECriterion": MSECriterion, "MSELoss": MSELoss,
    "ClassNLLCriterion": ClassNLLCriterion, "NLLLoss": NLLLoss,
    "CrossEntropyCriterion": CrossEntropyCriterion, "CrossEntropyLoss": CrossEntropyLoss,
    "BCECriterion": BCECriterion, "BCELoss": BCELoss,
    "BCEWithLogitsCriterion": BCEWithLogitsCriterion, "BCEWithLogitsLoss": BCEWithLogitsLoss,
    "AbsCriterion": AbsCriterion, "L1Loss": L1Loss,
    "SmoothL1Criterion": SmoothL1Criterion, "SmoothL1Loss": SmoothL1Loss, "HuberLoss": HuberLoss,
    "MultiMarginCriterion": MultiMarginCriterion, "MultiMarginLoss": MultiMarginLoss,
}

# The PyTorch spellings that are the Torch7 classes themselves, as attributes too: ``nn.Softmax is nn.SoftMax``.
globals().update({name: cls for name, cls in {**MODULES, **CRITERIONS}.items() if name not in globals()})

__all__ = ["Module", "Criterion", "ShapeError", "MODULES", "CRITERIONS", *MODULES, *CRITERIONS]
