"""Torch7-style modules and criterions in numpy.

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

# PyTorch spellings of the same classes.
Conv1d, Conv2d = TemporalConvolution, SpatialConvolution
MaxPool1d, MaxPool2d, AvgPool2d = TemporalMaxPooling, SpatialMaxPooling, SpatialAveragePooling
BatchNorm1d, BatchNorm2d = BatchNormalization, SpatialBatchNormalization
Softmax, LogSoftmax, Softplus = SoftMax, LogSoftMax, SoftPlus
MSELoss, NLLLoss, CrossEntropyLoss = MSECriterion, ClassNLLCriterion, CrossEntropyCriterion
BCELoss, BCEWithLogitsLoss, L1Loss = BCECriterion, BCEWithLogitsCriterion, AbsCriterion
SmoothL1Loss, MultiMarginLoss = SmoothL1Criterion, MultiMarginCriterion

_MODULE_NAMES = """Linear Identity Reshape View Flatten ReLU LeakyReLU ELU Tanh Sigmoid SoftPlus Softplus
SoftMax Softmax LogSoftMax LogSoftmax Dropout BatchNormalization BatchNorm1d SpatialBatchNormalization
BatchNorm2d TemporalConvolution Conv1d SpatialConvolution Conv2d TemporalMaxPooling MaxPool1d
SpatialMaxPooling MaxPool2d SpatialAveragePooling AvgPool2d Sequential Residual""".split()
_CRITERION_NAMES = """MSECriterion MSELoss ClassNLLCriterion NLLLoss CrossEntropyCriterion CrossEntropyLoss
BCECriterion BCELoss BCEWithLogitsCriterion BCEWithLogitsLoss AbsCriterion L1Loss SmoothL1Criterion
SmoothL1Loss MultiMarginCriterion MultiMarginLoss""".split()

#: Every accepted layer name (Torch7 and PyTorch spellings) -> class.
MODULES: dict[str, type[Module]] = {name: globals()[name] for name in _MODULE_NAMES}
#: Every accepted criterion name -> class.
CRITERIONS: dict[str, type[Criterion]] = {name: globals()[name] for name in _CRITERION_NAMES}

__all__ = ["Module", "Criterion", "ShapeError", "MODULES", "CRITERIONS", *_MODULE_NAMES, *_CRITERION_NAMES]
