"""The ``optimizer:`` and ``schedule:`` sections: one section a name (``sgd``, ``cosine``), each with
its options and their bounds, chosen by ``name`` (written in any case: ``SGD``, ``Adam``; a name alone,
``optimizer: adam``, is the section with its defaults)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from .fields import Fraction, JsonAlso, NonNegFloat, NonNegInt, PosFloat, PosInt, Section, none_as_empty, number, report
from ..optim.optimizers import optimizer_name


_LR = AliasChoices("lr", "learning_rate")
_LR_TEXT = "The learning rate (learning_rate: is the same key)."
_WEIGHT_DECAY = "L2 penalty: weight_decay * w is added to each gradient."


#: Each optimizer and schedule tag with the spellings the JSON schema lists (any case is accepted).
SPELLINGS: dict[str, list[str]] = {}


def tag(name: str, *spellings: str) -> Any:
    """The ``name`` of an optimizer or schedule section: its tag, written in any case (``SGD``, ``Adam``)."""
    SPELLINGS[name] = list(dict.fromkeys((name, name.capitalize(), *spellings)))
    return Annotated[Literal[name], WithJsonSchema({"type": "string", "enum": SPELLINGS[name]}),
                     Field(description=f"Selects this section; any case ({', '.join(SPELLINGS[name])}).")]


_MAXIMIZE = "Step up the gradient instead of down (PyTorch's maximize)."


SGD_NAME = tag("sgd", "SGD")


class SGDConfig(Section):
    """Stochastic gradient descent with optional (Nesterov) momentum: ``backprop_cli.optim.SGD``."""

    name: SGD_NAME
    lr: PosFloat = Field(1e-3, validation_alias=_LR, description=_LR_TEXT)
    momentum: NonNegFloat = Field(0.0, description="Momentum factor: v = momentum * v + (1 - dampening) * g.")
    dampening: number(ge=0, le=1) = Field(0.0, description="Dampening of the momentum's gradient term.")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0 and dampening 0).")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    lr_decay: NonNegFloat = Field(0.0, description="Torch's learning-rate decay: lr / (1 + step * lr_decay).")
    maximize: bool = Field(False, description=_MAXIMIZE)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SGDConfig:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            report(info, ("optimizer", "nesterov"), "needs momentum > 0 and dampening 0")
        return self


class _AdamFamily(Section):
    """What Adam and AdamW take; ``betas`` are the decay rates of the two moment estimates."""

    lr: PosFloat = Field(1e-3, validation_alias=_LR, description=_LR_TEXT)
    betas: Annotated[tuple[number(ge=0, lt=1), number(ge=0, lt=1)],
                     BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)] = Field(
        (0.9, 0.999), description="Decay rates of the running means of the gradient and of its square.")
    eps: PosFloat = Field(1e-8, description="Added to the denominator for numerical stability.")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    amsgrad: bool = Field(False, description="Divide by the largest second-moment estimate so far (AMSGrad).")
    maximize: bool = Field(False, description=_MAXIMIZE)


ADAM_NAME = tag("adam")


class AdamConfig(_AdamFamily):
    """Adam: ``backprop_cli.optim.Adam``."""

    name: ADAM_NAME
    decoupled_weight_decay: bool = Field(False, description="Decay the weights directly, as AdamW does, "
                                                            "instead of adding weight_decay * w to the gradient.")


ADAMW_NAME = tag("adamw", "AdamW")


class AdamWConfig(_AdamFamily):
    """Adam with decoupled weight decay: ``backprop_cli.optim.AdamW``."""

    name: ADAMW_NAME
    weight_decay: NonNegFloat = Field(1e-2, description="Decoupled weight decay: w -= lr * weight_decay * w.")


RMSPROP_NAME = tag("rmsprop", "RMSprop")


class RMSpropConfig(Section):
    """RMSprop: ``backprop_cli.optim.RMSprop``."""

    name: RMSPROP_NAME
    lr: PosFloat = Field(1e-2, validation_alias=_LR, description=_LR_TEXT)
    alpha: number(ge=0, lt=1) = Field(0.99, description="Decay rate of the running mean of the squared gradient.")
    eps: PosFloat = Field(1e-8, description="Added to the denominator for numerical stability.")
    momentum: NonNegFloat = Field(0.0, description="Momentum factor.")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    centered: bool = Field(False, description="Divide by the variance estimate instead of the mean square.")
    maximize: bool = Field(False, description=_MAXIMIZE)


ADAGRAD_NAME = tag("adagrad")


class AdagradConfig(Section):
    """Adagrad: ``backprop_cli.optim.Adagrad``."""

    name: ADAGRAD_NAME
    lr: PosFloat = Field(1e-2, validation_alias=_LR, description=_LR_TEXT)
    lr_decay: NonNegFloat = Field(0.0, description="Learning-rate decay: lr / (1 + step * lr_decay).")
    weight_decay: NonNegFloat = Field(0.0, description=_WEIGHT_DECAY)
    eps: PosFloat = Field(1e-10, description="Added to the denominator for numerical stability.")
    initial_accumulator_value: NonNegFloat = Field(0.0, description="Starting value of the sum of squares.")
    maximize: bool = Field(False, description=_MAXIMIZE)


#: Optimizer name -> its config section; the names are those of ``backprop_cli.optim.OPTIMIZERS``.
OPTIMIZER_CONFIGS = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig,
                     "rmsprop": RMSpropConfig, "adagrad": AdagradConfig}


def _named(value: Any, names=OPTIMIZER_CONFIGS) -> Any:
    """``optimizer: adam`` is short for ``optimizer: {name: adam}``; a name in any case is its tag (``SGD``)."""
    value = {"name": value} if isinstance(value, str) else value
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"].lower() in names:
        value = {**value, "name": value["name"].lower()}
    return value


def _names_schema(sections: dict[str, type[BaseModel]]) -> dict:
    """The JSON schema of a section given by its name alone, in each spelling its tag allows."""
    return {"type": "string", "enum": [spelling for name in sections for spelling in SPELLINGS[name]]}


def _optimizer_named(value: Any) -> Any:
    """:func:`_named`, with a PyTorch spelling (``SGD``, ``Adam``) read as the config name it stands for
    in ``backprop_cli.optim.OPTIMIZERS``."""
    value = _named(value)
    if isinstance(value, dict) and isinstance(value.get("name"), str) and optimizer_name(value["name"]):
        value = {**value, "name": optimizer_name(value["name"])}
    return value


OptimizerConfig = Annotated[Union[SGDConfig, AdamConfig, AdamWConfig, RMSpropConfig, AdagradConfig],
                            Field(discriminator="name"), BeforeValidator(_optimizer_named),
                            JsonAlso(_names_schema(OPTIMIZER_CONFIGS))]


# ---------------------------------------------------------------- schedules
class _ScheduleBase(Section):
    """What every schedule takes: an optional linear warm-up over the first epochs."""

    warmup_epochs: NonNegInt = Field(0, description="Epochs of linear warm-up before the schedule starts.")
    warmup_start_factor: number(gt=0, le=1) = Field(0.1, description="The warm-up's first lr, as a fraction of lr.")


CONSTANT_NAME = tag("constant")


class ConstantSchedule(_ScheduleBase):
    """The optimizer's lr throughout."""

    name: CONSTANT_NAME = "constant"


STEP_NAME = tag("step")


class StepSchedule(_ScheduleBase):
    """lr times gamma every ``step_size`` epochs."""

    name: STEP_NAME
    step_size: PosInt = Field(description="Epochs between two reductions.")
    gamma: PosFloat = Field(0.1, description="The factor applied to lr at each step.")


MULTISTEP_NAME = tag("multistep", "MultiStep")


class MultiStepSchedule(_ScheduleBase):
    """lr times gamma at each epoch in ``milestones``."""

    name: MULTISTEP_NAME
    milestones: Annotated[list[PosInt], Field(min_length=1)] = Field(
        description="The epochs (increasing) at which lr is multiplied by gamma.")
    gamma: PosFloat = Field(0.1, description="The factor applied to lr at each milestone.")

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError(f"expected increasing epochs, got {value}")
        return value


EXPONENTIAL_NAME = tag("exponential")


class ExponentialSchedule(_ScheduleBase):
    """lr times gamma every epoch."""

    name: EXPONENTIAL_NAME
    gamma: PosFloat = Field(description="The factor applied to lr every epoch.")


COSINE_NAME = tag("cosine")


class CosineSchedule(_ScheduleBase):
    """Cosine from lr down to ``min_lr`` over ``t_max`` epochs (default: training.epochs)."""

    name: COSINE_NAME
    t_max: PosInt | None = Field(None, description="Epochs of the cosine; null: training.epochs less the warm-up.")
    min_lr: NonNegFloat = Field(0.0, description="The lr at the end of the cosine.")
    cycle: bool = Field(False, description="Past t_max, follow the cosine back up (PyTorch's CosineAnnealingLR) "
                                           "instead of staying at min_lr.")


LINEAR_NAME = tag("linear")


class LinearSchedule(_ScheduleBase):
    """lr times a factor going linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs."""

    name: LINEAR_NAME
    start_factor: number(gt=0, le=1) = Field(1 / 3, description="The lr factor at epoch 0.")
    end_factor: number(ge=0, le=1) = Field(1.0, description="The lr factor from total_iters on.")
    total_iters: PosInt = Field(5, description="Epochs the factor takes to go from start_factor to end_factor.")


ONECYCLE_NAME = tag("onecycle", "OneCycle")


class OneCycleSchedule(_ScheduleBase):
    """The one-cycle policy (PyTorch's OneCycleLR), stepped once an epoch: up to ``max_lr``, then far down."""

    name: ONECYCLE_NAME
    max_lr: PosFloat | None = Field(None, description="The peak lr (default: optimizer.lr).")
    total_steps: PosInt | None = Field(None, description="Epochs in the cycle (default: training.epochs "
                                                          "after any warm-up).")
    pct_start: number(ge=0, le=1) = Field(0.3, description="The fraction of the cycle spent going up.")
    anneal_strategy: Literal["cos", "linear"] = Field("cos", description="How each phase goes from its start "
                                                                           "to its end value.")
    cycle_momentum: bool = Field(True, description="Cycle the momentum (SGD, RMSprop: momentum > 0; "
                                                   "Adam: betas[0]) opposite to the lr.")
    base_momentum: number(ge=0, le=1) = Field(0.85, description="The momentum at the lr's peak.")
    max_momentum: number(ge=0, le=1) = Field(0.95, description="The momentum at the ends.")
    div_factor: PosFloat = Field(25.0, description="The lr starts at max_lr / div_factor.")
    final_div_factor: PosFloat = Field(1e4, description="The lr ends at max_lr / div_factor / final_div_factor.")
    three_phase: bool = Field(False, description="Come back down to the start lr before the final descent.")


PLATEAU_NAME = tag("plateau")


class PlateauSchedule(_ScheduleBase):
    """lr times ``factor`` when the monitored metric stops improving (mode auto: training.mode)."""

    name: PLATEAU_NAME
    mode: Literal["auto", "min", "max"] = Field("auto", description="Whether the metric should fall or rise; "
                                                "auto: training.mode.")
    factor: Fraction = Field(0.1, description="The factor applied to lr on a plateau.")
    patience: NonNegInt = Field(10, description="Epochs without improvement before lr is reduced.")
    threshold: NonNegFloat = Field(1e-4, description="The change that counts as an improvement (see threshold_mode).")
    cooldown: NonNegInt = Field(0, description="Epochs to wait after a reduction before watching again.")
    min_lr: NonNegFloat = Field(0.0, description="The lowest lr.")
    threshold_mode: Literal["rel", "abs"] = Field("rel", description="Improve by a fraction of the best "
                                                                      "(rel) or by threshold itself (abs).")


#: Schedule name -> its config section; the names are those of ``backprop_cli.optim.SCHEDULES``.
SCHEDULE_CONFIGS = {"constant": ConstantSchedule, "step": StepSchedule, "multistep": MultiStepSchedule,
                    "exponential": ExponentialSchedule, "cosine": CosineSchedule, "plateau": PlateauSchedule,
                    "linear": LinearSchedule, "onecycle": OneCycleSchedule}


def _schedule_named(value: Any) -> Any:
    """``schedule: cosine`` is ``{name: cosine}``; no name (or nothing) means ``constant``."""
    value = _named(none_as_empty(value), SCHEDULE_CONFIGS)
    return {"name": "constant", **value} if isinstance(value, dict) and "name" not in value else value


ScheduleConfig = Annotated[Union[ConstantSchedule, StepSchedule, MultiStepSchedule, ExponentialSchedule,
                                 CosineSchedule, PlateauSchedule, LinearSchedule, OneCycleSchedule],
                           Field(discriminator="name"), BeforeValidator(_schedule_named),
                           JsonAlso(_names_schema(SCHEDULE_CONFIGS), {"type": "null"})]
