"""The ``backprop`` command: a thin Typer layer. It parses, calls the library, renders with rich.

Every mistake in a config, data file, checkpoint or flag is shown as one red line on stderr with a
non-zero exit (1; 2 for command-line usage); ``--debug`` shows the Python traceback instead. Heavy
imports (numpy, pydantic, rich) happen inside the commands so ``backprop --help`` starts fast.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__

app = typer.Typer(name="backprop", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,    # plain click help: rich's help formatter costs ~0.1 s of start-up
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Train Torch7-style neural networks in numpy from a YAML config, and see what "
                       "backpropagation computes.\n\nExample: backprop train configs/digits_mlp.yaml")
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"backprop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors.")) -> None:
    from .memory import keep_freed_memory

    _state["debug"] = debug
    keep_freed_memory()     # the process's policy: reuse the memory each batch frees (see memory.py)


# ---------------------------------------------------------------------------- errors at the edge
def _err(message: str) -> None:
    from rich.markup import escape

    from .render import make_console
    console = make_console(stderr=True)
    for line in str(message).splitlines() or [""]:
        console.print(f"[bold red]error:[/bold red] {escape(line)}")


def _fail(message: str, code: int = 1):
    _err(message)
    raise typer.Exit(code)


def _edge(command):
    """Translate the errors a user can cause into one line and an exit code; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .errors import BackpropError
        try:
            return command(*args, **kwargs)
        except (BackpropError, ValueError, TypeError) as err:
            if _state["debug"]:
                raise
            _fail(str(err))
        except OSError as err:
            if _state["debug"]:
                raise
            _fail(f"{err.filename}: {err.strerror}" if err.filename else str(err))
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


SET_HELP = "Override a config key by its dotted path, e.g. --set training.epochs=3 optimizer.lr=0.05."


def _overrides(set_: list[str] | None, extra: list[str] | None, seed: int | None = None) -> list[str]:
    items = list(set_ or []) + list(extra or [])
    for item in extra or []:
        if "=" not in item:
            raise typer.BadParameter(f"unexpected argument {item!r}; overrides look like KEY=VALUE")
    return items + ([f"seed={seed}"] if seed is not None else [])


# ---------------------------------------------------------------------------- train
@app.command()
@_edge
def train(config: Path = typer.Argument(..., metavar="CONFIG", help="The YAML config file."),
          extra: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="More --set overrides."),
          set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
          out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: runs/<name>)."),
          resume: Optional[Path] = typer.Option(None, "--resume", metavar="CKPT",
                                                help="Continue the run in this checkpoint up to the config's epochs."),
          seed: Optional[int] = typer.Option(None, "--seed", help="Override the config's seed."),
          force: bool = typer.Option(False, "--force", help="Overwrite the results of an existing run directory."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="Plain lines, no progress bar.")) -> None:
    """Train the model a config describes.

    Writes last.npz, best.npz, config.yaml and metrics.csv to the run directory.

    Example: backprop train configs/digits_mlp.yaml --set training.epochs=3 optimizer.lr=0.05
    """
    from .config import load_config
    from .run import start_run
    from .render import TrainingReport, make_console, plain_output
    from .train import Interrupted, evaluate

    overrides = _overrides(set_, extra, seed)
    run = start_run(load_config(config, overrides), out=out, resume=resume, force=force)
    trainer, data, epochs = run.trainer, run.data, run.config.training.epochs
    console = make_console()
    if trainer.epoch >= epochs or trainer.stop_reason == "early stopping":
        why = "stopped early" if trainer.stop_reason == "early stopping" else f"trained {epochs} epochs"
        console.print(f"{resume} has already {why} (epoch {trainer.epoch}); nothing to do")
        return
    run.directory.start()
    report = TrainingReport(console, epochs, plain_output(console, quiet))
    trainer.callbacks = [run.directory, report]
    previous = _install_stop_handlers(trainer)
    try:
        trainer.fit(data.train.x, data.train.y, *((data.val.x, data.val.y) if data.val else ()), epochs=epochs)
    except Interrupted as stop:
        # Until the checkpoint is written, a further Ctrl-C only says "already stopping".
        report.close()
        path = run.directory.save(trainer, "last.npz")
        _err(f"{stop.signal_name}: stopped in epoch {trainer.epoch + 1} after {trainer.step} steps; "
             f"checkpoint written to {path}")
        again = ["backprop", "train", str(config)] + [f"--set={item}" for item in overrides]
        _err("resume with: " + shlex.join(again + ["--resume", str(path)]))
        previous = dict.fromkeys(previous, signal.SIG_IGN)   # the work is saved: let nothing cut the exit short
        raise typer.Exit(130 if stop.signal_name == "SIGINT" else 143)
    finally:
        report.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    rows = {name: evaluate(trainer.model, trainer.criterion, ds.x, ds.y)
            for name, ds in (("train", data.train), ("validation", data.val), ("test", data.test)) if ds is not None}
    _print_results(console, trainer, rows, run.directory)


def _install_stop_handlers(trainer) -> dict:
    """SIGINT/SIGTERM ask the trainer to stop after the current step; a second signal changes nothing."""
    def handler(signum, frame):
        if trainer.stop_requested:
            _err("already stopping: finishing the step and writing the checkpoint")
            return
        trainer.stop_requested = signal.Signals(signum).name
    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def _print_results(console, trainer, rows, run) -> None:
    from .render import results_table
    reason = trainer.stop_reason or "completed"
    console.print(results_table(rows, title=f"after epoch {trainer.epoch} ({reason})"))
    if trainer.best_epoch is not None:
        console.print(f"best {trainer.monitor} {trainer.best_metric:.4f} at epoch {trainer.best_epoch}")
    from .run import RUN_FILES
    for name in RUN_FILES:
        if (run.path / name).exists():
            console.print(f"wrote {run.path / name}")


# ---------------------------------------------------------------------------- eval, predict
@app.command("eval")
@_edge
def eval_(checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A .npz written by train."),
          data: Optional[Path] = typer.Option(None, "--data", help="Data to score (default: the config's test set)."),
          labels: Optional[Path] = typer.Option(None, "--labels", help="Labels file for IDX --data."),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables.")) -> None:
    """Score saved weights: loss, metrics, confusion matrix.

    Uses the config's test set unless --data is given; classifiers get per-class recall.

    Example: backprop eval runs/digits_mlp/best.npz --json
    """
    from .experiment import read_eval_data, restore, score
    from .render import confusion_table, make_console, results_table

    restored = restore(checkpoint)
    result = score(restored, read_eval_data(restored, data, labels))
    result = {"checkpoint": str(checkpoint), **result}
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = make_console()
    split = "test" if data is None else data.name
    console.print(results_table({split: result["metrics"]}, title=f"{checkpoint} (epoch {result['epoch']}, "
                                                                   f"{result['samples']} samples)"))
    if "confusion_matrix" in result:
        console.print(confusion_table(result["confusion_matrix"], restored.classes, list(result["recall"].values())))


@app.command()
@_edge
def predict(checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A .npz written by train."),
            data: Path = typer.Argument(..., metavar="DATA", help="Samples: CSV (features, label optional), IDX or NPZ."),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the CSV here (default: stdout).")) -> None:
    """Predict: a CSV of classes and probabilities, or values.

    Example: backprop predict runs/iris/best.npz data/iris.csv --out predictions.csv
    """
    from .checkpoint import atomic_write
    from .experiment import prediction_rows, read_features, restore

    restored = restore(checkpoint)
    header, rows = prediction_rows(restored, read_features(restored, data), str(data))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])     # quotes a class named "a, b"
    text = buffer.getvalue()
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write(out, lambda f: f.write(text.encode()))
        typer.echo(f"wrote {len(rows)} predictions to {out}", err=True)


# ---------------------------------------------------------------------------- gradcheck, summary, schema
@app.command()
@_edge
def gradcheck(config: Optional[Path] = typer.Argument(None, metavar="[CONFIG]",
                                                       help="Check this config's model; omit to check the library."),
              eps: float = typer.Option(1e-6, "--eps", help="Finite-difference step (float64)."),
              tol: float = typer.Option(1e-6, "--tol", help="Pass when |analytic - numeric| <= tol * max(1, |numeric|)."),
              batch: int = typer.Option(4, "--batch", help="Samples of the config's data to check on."),
              max_checks: int = typer.Option(64, "--max-checks", help="Coordinates compared per tensor (random)."),
              set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP)) -> None:
    """Check every gradient against finite differences.

    Central differences in float64, per layer and tensor; exit 1 on any failure.

    Example: backprop gradcheck configs/digits_cnn.yaml   (or just: backprop gradcheck)
    """
    from .gradcheck import check_model, library_cases
    from .render import gradcheck_table, make_console

    if eps <= 0 or tol <= 0 or batch < 1 or max_checks < 1:
        raise typer.BadParameter("--eps and --tol must be > 0; --batch and --max-checks >= 1")
    console = make_console()
    if config is None:
        results = [r for _, run in library_cases() for r in run(eps=eps, tol=tol)]
        title = "gradcheck: every module and criterion in the library"
    else:
        from .experiment import prepare
        cfg, data, model, criterion = prepare(config, _overrides(set_, None))
        results = check_model(model, criterion, data.train.x[:batch], data.train.y[:batch], eps=eps, tol=tol,
                              max_checks=max_checks)
        title = f"gradcheck: {cfg.name} on {min(batch, len(data.train.x))} samples (float64)"
    console.print(gradcheck_table(results, title))
    failed = [r for r in results if not r.passed]
    if failed:
        _fail(f"{len(failed)} of {len(results)} gradient checks failed")
    console.print(f"[green]all {len(results)} gradient checks passed[/green]")


@app.command()
@_edge
def summary(config: Path = typer.Argument(..., metavar="CONFIG", help="The YAML config file."),
            set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP)) -> None:
    """The model as a table: layers, output shapes, parameters.

    Example: backprop summary configs/digits_cnn.yaml
    """
    from .experiment import prepare
    from .render import make_console, shape_text, summary_table

    cfg, data, model, _ = prepare(config, _overrides(set_, None))
    rows = [("", "input", shape_text(data.input_shape), 0)]
    rows += [(str(i), layer.one_line(), shape_text(shape), layer.num_parameters())
             for i, (layer, shape) in enumerate(zip(model.layers, model.layer_shapes(data.input_shape)))]
    make_console().print(summary_table(rows, model.num_parameters()))


@app.command()
@_edge
def schema() -> None:
    """Print the config file's JSON Schema (for editors).

    Example: backprop schema > backprop.schema.json
    """
    from .config import config_schema
    typer.echo(json.dumps(config_schema(), indent=2))


@app.command("time")
@_edge
def time_(config: Path = typer.Argument(..., metavar="CONFIG", help="The YAML config file."),
          batches: int = typer.Option(20, "--batches", "-n", help="Timed forward/backward passes."),
          set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP)) -> None:
    """Time forward and backward per layer (like caffe time).

    Average milliseconds per batch of the config's data, and each layer's share. Backward is the
    training step's: layers before the first one with weights take no time, and that one computes
    only its weight gradients.

    Example: backprop time configs/digits_cnn.yaml --batches 50
    """
    from .experiment import prepare
    from .profile import time_layers
    from .render import make_console, timing_table

    if batches < 1:
        raise typer.BadParameter("--batches must be >= 1")
    cfg, data, model, criterion = prepare(config, _overrides(set_, None))
    rows = time_layers(model, criterion, data.train.x, data.train.y, batches=batches,
                       batch_size=cfg.training.batch_size)
    make_console().print(timing_table(rows, f"{cfg.name}: batch {cfg.training.batch_size}, mean of {batches} passes "
                                            "(backward as in training: no gradient for the data)"))


def main(args: list[str] | None = None) -> None:
    """The console-script entry point: usage errors become one line and exit code 2."""
    args = sys.argv[1:] if args is None else list(args)
    command = typer.main.get_command(app)
    if not args:
        args = ["--help"]
    try:
        code = command.main(args=args, prog_name="backprop", standalone_mode=False)
    except typer.Abort:
        _err("aborted")
        code = 130
    except typer.TyperException as err:      # click's usage errors, vendored by typer
        ctx = getattr(err, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        _err(err.format_message() + hint)
        code = getattr(err, "exit_code", 2)
    sys.exit(code or 0)
