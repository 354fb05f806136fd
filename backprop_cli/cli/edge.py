"""The errors at the edge of the ``backprop`` command, and the lines it writes to stderr.

A user's mistake (a :class:`~backprop_cli.errors.BackpropError`, an ``OSError``) is one red line and
exit 1; a plugin's exception one line saying where in the plugin; anything else is a bug in backprop:
one line saying so and naming the file its traceback went to (exit 2). ``--debug`` shows tracebacks
on the terminal, ``-v`` an internal error's. Only the standard library and typer are imported here
at start-up: ``backprop --help`` stays fast.
"""

from __future__ import annotations

import functools
import shlex
import sys

import typer

from .. import __version__

#: ``tracebacks``: show the Python traceback of any error on the terminal (``--debug``); ``verbosity``:
#: -1 with ``-q``, 1 with ``-v`` (which also shows an internal error's traceback on the terminal).
state = {"tracebacks": False, "verbosity": 0}


def show_error(message: str) -> None:
    from rich.markup import escape

    from .render import make_console
    console = make_console(stderr=True)
    for line in str(message).splitlines() or [""]:
        console.print(f"[bold red]error:[/bold red] {escape(line)}")


def show_warning(message: str) -> None:
    show_note(message, "warning", "bold yellow")


def fail(message: str, code: int = 1):
    show_error(message)
    raise typer.Exit(code)


def show_note(message: str, label: str = "", style: str = "yellow") -> None:
    """A line on stderr that is not an error: a warning, or how a run stopped."""
    from rich.markup import escape

    from .render import make_console
    prefix = f"[{style}]{label}:[/{style}] " if label else ""
    make_console(stderr=True).print(prefix + escape(message))


INTERNAL = "internal error (a bug in backprop, not in your input)"


def edge(command):
    """The errors at the edge. A user's mistake (a ``BackpropError``, an ``OSError``) is one line and
    exit 1; any other exception is a bug: one line saying so and naming the file its traceback went
    to, exit 2. With tracebacks on (``--debug``) the traceback goes to the terminal instead; ``-v``
    shows an internal error's traceback on the terminal as well as in the file."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from ..config.plugins import plugin_frame
        from ..errors import BackpropError
        if kwargs.get("verbose") and kwargs.get("quiet"):
            raise typer.BadParameter("give -v/--verbose or -q/--quiet, not both")
        state["verbosity"] = 1 if kwargs.get("verbose") else -1 if kwargs.get("quiet") else 0
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise                                  # exits and usage errors: typer's own business
        except BackpropError as err:
            _show_traceback()
            fail(str(err))
        except OSError as err:
            _show_traceback()
            fail(f"{err.filename}: {err.strerror}" if err.filename else str(err))
        except MemoryError as err:               # past the checks made before allocating (see config/build.py)
            _show_traceback()
            fail(f"out of memory{': ' + str(err) if str(err) else ''} (--debug shows where)")
        except KeyboardInterrupt:
            show_note("interrupted")
            raise typer.Exit(130) from None
        except Exception as err:
            what = " ".join(f"{type(err).__name__}: {err}".split())      # one line, whatever the message
            where = plugin_frame(err)
            if where is not None:          # raised in a plugin: the user's own code, one line saying where
                _show_traceback()
                fail(f"{where}: {what}")
            _show_traceback(internal=True)            # --debug, or -v: on the terminal
            if state["tracebacks"]:
                fail(f"{INTERNAL}: {what}", 2)
            fail(f"{INTERNAL}: {what}; please report it with the traceback in {_traceback_file()}", 2)

    return wrapper


def _show_traceback(internal: bool = False) -> bool:
    """Print the traceback of the error being handled to stderr, when tracebacks are on (``--debug``),
    or for an ``internal`` error with ``-v``; returns whether it did."""
    shown = state["tracebacks"] or (internal and state["verbosity"] > 0)
    if shown:
        import traceback
        traceback.print_exc(file=sys.stderr)
    return shown


def _traceback_file() -> str:
    """Write the traceback of the error being handled, with the version and command line, to a new
    file in the temporary folder; returns its path."""
    import platform
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="backprop-internal-error-", suffix=".txt", delete=False) as f:
        f.write(f"backprop {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
                f"command: {shlex.join(['backprop', *sys.argv[1:]])}\n\n{traceback.format_exc()}")
        return f.name
