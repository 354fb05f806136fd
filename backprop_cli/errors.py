"""The errors a user can cause, each rendered by the CLI as one line: ``file:line: place: what was expected``.

Every mistake a user can make, in a file, a flag or an array handed to the library, is a
:class:`BackpropError`; the CLI shows it as one line (exit 1). Anything else that escapes is a bug in
backprop, and the CLI reports it as an internal error (exit 2) with its traceback in a file. The
library's arguments (``Linear(0, 3)``) raise ``ValueError``/``TypeError``; a config's constructor
arguments are wrapped into :class:`ConfigError` where the file and line are known.
:func:`shape_str` writes shapes the one way every message uses, :func:`install_hint` the command
that installs a missing extra.
"""

from __future__ import annotations

from abc import ABCMeta


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


class ArrayError(BackpropError, ValueError):
    """An array a module or criterion cannot take (its values: a class index out of range, a
    probability outside [0, 1]); also a ``ValueError``, so ``except ValueError`` keeps working."""


class ShapeError(ArrayError):
    """An array reached a module or criterion with a shape (or rank) it cannot take."""


class DTypeError(ArrayError, TypeError):
    """An array of a dtype a module or criterion cannot take (integer features, float class indices)."""


def install_hint(extra: str) -> str:
    """How to install an optional extra, as every message about a missing one says it:
    ``pip install 'backprop-cli[plot]'`` (the extras are listed in ``pyproject.toml``)."""
    return f"pip install 'backprop-cli[{extra}]'"


def shape_str(shape) -> str:
    """``(32, 28, 28)`` (and ``(32,)``) for a shape, so that every message about shapes reads alike."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


class ArgumentError(TypeError):
    """A class called with an argument it does not take (or too many, or too few): the message names the
    class the user wrote and the argument, and lists what the class takes."""


class _Shown:
    """A default shown by name in a parameter list (``dtype=float32``, not ``<class 'numpy.float32'>``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _parameter_list(cls) -> str:
    """``(in_features, out_features, bias=True, *, init='default', ...)`` or ``no arguments``."""
    import inspect                                  # here, not at the top: ``backprop --help`` stays fast
    empty = inspect.Parameter.empty
    params = [p.replace(annotation=empty, default=_Shown(p.default.__name__) if isinstance(p.default, type)
                        else p.default) if p.default is not empty else p.replace(annotation=empty)
              for p in inspect.signature(cls).parameters.values()]
    return str(inspect.Signature(params)) if params else "no arguments"


class CheckedArguments(ABCMeta):
    """The metaclass of modules, criterions, optimizers and schedules: a call that does not fit the
    constructor raises :class:`ArgumentError` naming the class called (``Tanh got an unexpected keyword
    argument 'inplace'; Tanh takes no arguments``), never Python's message about a base class's ``__init__``."""

    @property
    def __signature__(cls):
        """The constructor's signature (``inspect.signature(cls)`` would otherwise read ``__call__``'s)."""
        import inspect
        sig = inspect.signature(cls.__init__)
        return sig.replace(parameters=list(sig.parameters.values())[1:])

    def __call__(cls, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except TypeError:
            import inspect
            try:
                inspect.signature(cls).bind(*args, **kwargs)
            except TypeError as why:
                raise ArgumentError(f"{cls.__name__} {why}; {cls.__name__} takes {_parameter_list(cls)}") from None
            raise
