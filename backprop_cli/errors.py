"""The errors a user can cause, each rendered by the CLI as one line: ``file:line: place: what was expected``.

The library raises ``ValueError``/``TypeError`` for programming mistakes (wrong shapes, bad arguments);
these classes are for bad input read from files and flags, and carry where the problem is.
:func:`shape_str` writes shapes the one way every message uses.
"""

from __future__ import annotations


class BackpropError(Exception):
    """A mistake in the user's input; ``str(err)`` is the whole one-line message."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 where: str | None = None) -> None:
        self.file, self.line, self.where, self.detail = file, line, where, message
        prefix = ""
        if file is not None:
            prefix = f"{file}:{line}: " if line is not None else f"{file}: "
        if where:
            prefix += f"{where}: "
        super().__init__(prefix + message)


class ConfigError(BackpropError):
    """A config file or ``--set`` override that does not fit the schema."""


class DataError(BackpropError):
    """A data file that cannot be read as the format it claims (``where`` names the column)."""


class CheckpointError(BackpropError):
    """A checkpoint that is missing, corrupt, of another format version, or does not fit the model."""


class TrainingError(BackpropError):
    """Training that cannot go on (a non-finite loss or gradient)."""


class ExportError(BackpropError):
    """A model that cannot be written in another format (a layer with no ONNX equivalent, a missing extra)."""


def shape_str(shape) -> str:
    """``(32, 28, 28)`` (and ``(32,)``) for a shape, so that every message about shapes reads alike."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
