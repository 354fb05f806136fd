"""Torch7-style modules and criterions in numpy.

Layer 0, the library (with ``optim`` and ``data``): imports numpy and ``errors`` only, never a config,
the engine or the CLI.

Class names follow Torch7 (``SpatialConvolution``, ``ClassNLLCriterion``); the PyTorch names people
also know (``Conv2d``, ``NLLLoss``) are aliases of the same classes. ``MODULES`` and ``CRITERIONS``
map every accepted name to its class; configs are resolved through them.
"""

from .activation import ELU, LeakyReLU, LogSoftMax, ReLU, Sigmoid, SoftMax, SoftPlus, Tanh
from .container import Residual, Sequential
from .conv import SpatialConvolution, TemporalConvolution
from .linear import Flatten, Identity, Linear, Reshape, View
from .loss import (AbsCriterion, BCECriterion, BCEWithLogitsCriterion, ClassNLLCriterion,
                   CrossEntropyCriterion, MSECriterion, MultiMarginCriterion, SmoothL1Criterion)
from .module import Criterion, Module, ShapeError
from .normalization import BatchNormalization, Dropout, SpatialBatchNormalization
from .pooling import SpatialAveragePooling, SpatialMaxPooling, TemporalMaxPooling

#: Every accepted layer name (Torch7 and PyTorch spellings) -> class.
MODULES: dict[str, type[Module]] = {
    "Sequential": Sequential, "Residual": Residual,
    "Linear": Linear, "Identity": Identity, "Reshape": Reshape, "View": View, "Flatten": Flatten,
    "ReLU": ReLU, "LeakyReLU": LeakyReLU, "ELU": ELU, "Tanh": Tanh, "Sigmoid": Sigmoid,
    "SoftPlus": SoftPlus, "Softplus": SoftPlus, "SoftMax": SoftMax, "Softmax": SoftMax,
    "LogSoftMax": LogSoftMax, "LogSoftmax": LogSoftMax,
    "Dropout": Dropout, "BatchNormalization": BatchNormalization, "BatchNorm1d": BatchNormalization,
    "SpatialBatchNormalization": SpatialBatchNormalization, "BatchNorm2d": SpatialBatchNormalization,
    "TemporalConvolution": TemporalConvolution, "Conv1d": TemporalConvolution,
    "SpatialConvolution": SpatialConvolution, "Conv2d": SpatialConvolution,
    "TemporalMaxPooling": TemporalMaxPooling, "MaxPool1d": TemporalMaxPooling,
    "SpatialMaxPooling": SpatialMaxPooling, "MaxPool2d": SpatialMaxPooling,
    "SpatialAveragePooling": SpatialAveragePooling, "AvgPool2d": SpatialAveragePooling,
}

#: Every accepted criterion name -> class.
CRITERIONS: dict[str, type[Criterion]] = {
    "MSECriterion": MSECriterion, "MSELoss": MSECriterion,
    "ClassNLLCriterion": ClassNLLCriterion, "NLLLoss": ClassNLLCriterion,
    "CrossEntropyCriterion": CrossEntropyCriterion, "CrossEntropyLoss": CrossEntropyCriterion,
    "BCECriterion": BCECriterion, "BCELoss": BCECriterion,
    "BCEWithLogitsCriterion": BCEWithLogitsCriterion, "BCEWithLogitsLoss": BCEWithLogitsCriterion,
    "AbsCriterion": AbsCriterion, "L1Loss": AbsCriterion,
    "SmoothL1Criterion": SmoothL1Criterion, "SmoothL1Loss": SmoothL1Criterion,
    "MultiMarginCriterion": MultiMarginCriterion, "MultiMarginLoss": MultiMarginCriterion,
}

# The PyTorch spellings as attributes too: ``nn.Conv2d is nn.SpatialConvolution``.
globals().update({name: cls for name, cls in {**MODULES, **CRITERIONS}.items() if name not in globals()})

__all__ = ["Module", "Criterion", "ShapeError", "MODULES", "CRITERIONS", *MODULES, *CRITERIONS]
