"""The ``data:`` section: where the examples are and how to read them (formats, labels files, CSV
columns, missing cells, normalisation). Data paths are made absolute against the config's folder,
and kept as written for :meth:`~backprop_cli.config.schema.Config.dump`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, PlainValidator, PrivateAttr, ValidationInfo, WithJsonSchema, model_validator

from .fields import PosFloat, Section, number, report
from .source import show
from ..data.load import infer_format
from ..data.npy import is_npy_dir
from ..errors import DataError


def _file_path(value: Any, info: ValidationInfo) -> Path:
    """A data path, made absolute against the config file's directory (and checked to exist)."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a file path, got {show(value)}")
    ctx = info.context or {}
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = Path(ctx.get("base_dir") or Path.cwd()) / path
    path = Path(os.path.normpath(path))
    if ctx.get("check_files"):
        if path.is_dir() and not is_npy_dir(path):
            raise ValueError(f"{value} is a directory, expected a file (or a directory holding x.npy and y.npy)")
        if not path.exists():
            shown = value if value == str(path) else f"{value} (looked for {path})"
            raise ValueError(f"no such file: {shown}")
    return path


def _label_column(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise ValueError(f"expected a column index or a column name, got {show(value)}")
    return value


def _delimiter(value: Any) -> Any:
    """One character (``tab`` is a tab), not a quote, a line break, a digit or a letter."""
    value = "\t" if value == "tab" else value
    if not isinstance(value, str) or len(value) != 1 or value in '"\r\n.-+' or value.isalnum():
        raise ValueError(f"expected one character such as ',', ';', '|' or tab, got {show(value)}")
    return value


DataPath = Annotated[Path, BeforeValidator(_file_path), WithJsonSchema({"type": "string"})]
LabelColumn = Annotated[Union[int, str], PlainValidator(_label_column),
                        WithJsonSchema({"type": ["integer", "string"]})]
Delimiter = Annotated[str, PlainValidator(_delimiter),
                      WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 3})]




def guess_format(path: Path) -> str | None:
    """``csv``, ``npz`` or ``idx`` from a file name, as the data readers tell it; None if it says nothing."""
    try:
        return infer_format(path)
    except DataError:
        return None


class DataConfig(Section):
    """Where the examples are and how to read them."""

    format: Literal["auto", "csv", "tsv", "idx", "npz", "npy"] = Field(
        "auto", description="How the data files are read; auto: from the training file's name "
        "(.csv/.tsv/.txt, .npz, .npy or a directory holding x.npy, a name with idx or ubyte).")
    train: DataPath = Field(description="The training data file (or a directory holding x.npy and y.npy), "
                            "relative to this config's folder or absolute.")
    train_labels: DataPath | None = Field(None, description="The labels file of data.train (IDX data, and "
                                          "npy data named by its x.npy).")
    validation: DataPath | None = Field(None, description="A validation data file (instead of validation_split).")
    validation_labels: DataPath | None = Field(None, description="The labels file of data.validation (IDX "
                                               "or an x.npy only).")
    validation_split: number(ge=0, lt=1) = Field(
        0.1, description="The fraction of the training data held out for validation (stratified for classes) "
        "when there is no data.validation file; 0: none, and best.npz follows the training loss.")
    test: DataPath | None = Field(None, description="A test data file, scored after training and by eval.")
    test_labels: DataPath | None = Field(None, description="The labels file of data.test (IDX or an x.npy "
                                         "only).")
    label_column: LabelColumn = Field(-1, description="The label column of a CSV: a header name or an index "
                                      "(negative from the end; default: the last).")
    header: bool | None = Field(None, description="Whether a CSV's first row names its columns; null: detected.")
    delimiter: Delimiter | None = Field(None, description="The CSV cell separator, e.g. ',' ';' '|' or tab; "
                                        "null: a tab for .tsv files, else the one the header line shows.")
    features: Annotated[list[LabelColumn], Field(min_length=1)] | None = Field(
        None, description="The CSV feature columns in model-input order, by name (or index); "
        "null: every column but the label. Other files are matched by these names.")
    categorical: list[LabelColumn] = Field(
        default_factory=list, description="Feature columns of names to one-hot encode (categories learned "
        "from the training file, at most 1,000 per column).")
    missing: Literal["error", "drop", "mean"] = Field(
        "error", description="A missing CSV cell: error (name its line and column), drop (leave out its row), "
        "mean (fill with the training mean, stored with the checkpoint).")
    unknown: Literal["error", "ignore"] = Field(
        "error", description="A category not seen in training: error, or ignore (all-zero one-hot inputs).")
    task: Literal["auto", "classification", "regression", "binary"] = Field(
        "auto", description="What the labels are; auto: what the criterion needs.")
    normalize: Literal["none", "standardize", "minmax", "scale"] = Field(
        "none", description="Feature normalisation, fitted on the training data only.")
    scale: PosFloat | None = Field(None, description="The divisor for normalize: scale (e.g. 255 for bytes).")

    _written: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_as_written(cls, data: Any, handler) -> DataConfig:
        """Remember each data path as written (``../data/x.csv``), for :meth:`Config.dump`."""
        config = handler(data)
        if isinstance(data, dict):
            config._written = {key: data[key] for key in DATA_FILES if isinstance(data.get(key), str)}
        return config

    def as_written(self, key: str) -> str:
        """The path of ``data.<key>`` as the config wrote it (the absolute path when it was given as one)."""
        return self._written.get(key, str(getattr(self, key)))

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> DataConfig:
        if self.format == "auto":
            self.format = guess_format(self.train) or "auto"
            if self.format == "auto":
                report(info, ("data", "train"), f"cannot tell the format from the name {self.train.name!r}; "
                        "set data.format to csv, tsv, idx, npz or npy")
        self._check_labels(info)
        self._check_columns(info)
        if self.validation is not None:
            if "validation_split" in self.model_fields_set and self.validation_split > 0:
                report(info, ("data", "validation_split"),
                        "applies only when there is no validation file; remove one of the two")
            self.validation_split = 0.0
        if (self.normalize == "scale") != (self.scale is not None):
            report(info, ("data", "scale"), "required for normalize: scale (e.g. 255)" if self.scale is None
                    else f"only for normalize: scale (normalize is {self.normalize})")
        if self.format in ("idx", "npz", "npy"):
            for key, default in CSV_ONLY.items():
                if getattr(self, key) != default:
                    report(info, ("data", key), f"only for csv data (format is {self.format})")
        return self

    def _check_columns(self, info: ValidationInfo) -> None:
        """What can be told without the file: repeats, the label among the features, categorical
        columns that are not features; the file itself is checked when it is read."""
        if self.format == "tsv" and self.delimiter not in (None, "\t"):
            report(info, ("data", "delimiter"), f"format tsv is tab-separated, got {show(self.delimiter)}; "
                    "set format: csv for another delimiter")
        for key in ("features", "categorical"):
            values = getattr(self, key) or []
            for i, value in enumerate(values):
                if value in values[:i]:
                    report(info, ("data", key, i), f"lists column {show(value)} twice")
                elif value == self.label_column:
                    report(info, ("data", key, i), f"{show(value)} is the label column (data.label_column); "
                            "a column is a label or a feature")
                elif key == "categorical" and self.features is not None and value not in self.features:
                    report(info, ("data", key, i), f"{show(value)} is not one of data.features")
        if self.unknown != "error" and not self.categorical:
            report(info, ("data", "unknown"), "applies to data.categorical columns, and there are none")

    def _check_labels(self, info: ValidationInfo) -> None:
        """IDX keeps labels in a second file, and so does an NPY pair named by its x.npy (its directory
        holds y.npy); CSV and NPZ files hold their own."""
        for part in ("train", "validation", "test"):
            given, labels, where = getattr(self, part), getattr(self, f"{part}_labels"), ("data", f"{part}_labels")
            in_dir = self.format == "npy" and given is not None and is_npy_dir(given)
            if labels is not None and given is None:
                report(info, where, f"given without data.{part}")
            elif self.format in ("idx", "npy") and not in_dir and given is not None and labels is None:
                report(info, where, f"required for {self.format} data (the labels file of data.{part})")
            elif labels is not None and (self.format in ("csv", "npz") or in_dir):
                held = f"data.{part} is a directory holding y.npy" if in_dir else f"{self.format} files hold their labels"
                report(info, where, f"only for idx and npy files ({held})")


#: The data file keys (their paths are kept as written, for :meth:`Config.dump`).
DATA_FILES = ("train", "train_labels", "validation", "validation_labels", "test", "test_labels")
#: The CSV keys and their defaults: other formats must leave them so.
CSV_ONLY = {"header": None, "label_column": -1, "delimiter": None, "features": None, "categorical": [],
            "missing": "error", "unknown": "error"}
