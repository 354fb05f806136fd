"""The ``backprop`` command: a thin Typer layer. It parses, calls the library, renders with rich.

Every mistake in a config, data file, checkpoint or flag is shown as one red line on stderr with a
non-zero exit (1; 2 for command-line usage); any other exception is reported as a bug in backprop
(:mod:`.edge` says how, and holds the lines written to stderr). Every verb takes ``-v/--verbose`` (more detail) and ``-q/--quiet``
(results, warnings and errors only). Heavy imports (numpy, pydantic, rich) happen inside the
commands so ``backprop --help`` starts fast; shell completion (``--install-completion``) costs none
of that.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .. import __version__
from .edge import edge, fail, show_error, show_note, show_warning, state

app = typer.Typer(name="backprop", add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,    # plain click help: rich's help formatter costs ~0.1 s of start-up
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Train Torch7-style neural networks in numpy from a YAML config, and see what "
                       "backpropagation computes.\n\nExample: backprop train configs/digits_mlp.yaml")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"backprop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors.")) -> None:
    from ..engine.memory import keep_freed_memory

    state["tracebacks"] = debug
    keep_freed_memory()     # the process's policy: reuse the memory each batch frees (see memory.py)


SET_HELP = "Override a config key by its dotted path, e.g. --set training.epochs=3 optimizer.lr=0.05."
CONFIG_OR_CHECKPOINT = "A YAML config, or a checkpoint (.npz written by train; told by its content)."
VERBOSE = typer.Option(False, "--verbose", "-v", help="More detail (and an internal error's traceback).")
QUIET = typer.Option(False, "--quiet", "-q", help="Only results, warnings and errors.")


def _overrides(set_: list[str] | None, extra: list[str] | None, seed: int | None = None,
               threads: str | None = None) -> list[str]:
    items = list(set_ or []) + list(extra or [])
    for item in extra or []:
        if "=" not in item:
            raise typer.BadParameter(f"unexpected argument {item!r}; overrides look like KEY=VALUE")
    return items + ([f"seed={seed}"] if seed is not None else []) + \
        ([f"training.threads={threads}"] if threads is not None else [])


def _threads(value: str | None) -> str | None:
    if value is None or value == "auto" or (value.isdigit() and int(value) > 0):
        return value
    raise typer.BadParameter(f"expected 'auto' or a positive number of threads, got {value!r}")


# ---------------------------------------------------------------------------- train
@app.command()
@edge
def train(config: Path = typer.Argument(..., metavar="CONFIG", help="The YAML config file."),
          extra: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="More --set overrides."),
          set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
          out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: runs/<name>)."),
          resume: Optional[Path] = typer.Option(None, "--resume", metavar="CKPT",
                                                help="Continue the run in this checkpoint up to the config's epochs."),
          seed: Optional[int] = typer.Option(None, "--seed", help="Override the config's seed."),
          threads: Optional[str] = typer.Option(None, "--threads", metavar="auto|N", callback=_threads,
                                                help="BLAS threads while training (training.threads): N, "
                                                     "or auto (default): the cores other processes leave free."),
          force: bool = typer.Option(False, "--force", help="Overwrite the results of an existing run directory."),
          print_config: bool = typer.Option(False, "--print-config",
                                            help="Print the resolved config (defaults filled, overrides applied) "
                                                 "as YAML and exit."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Check the config, load the data, build the model, "
                                                                "print its summary and exit without training."),
          verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Train the model a config describes.

    Writes last.npz, best.npz, config.yaml and metrics.csv to the run directory. A live table and
    progress bar on a terminal, one line per epoch otherwise; -q prints only the final results and
    the files written, -v also the data and the model before training.

    Example: backprop train configs/digits_mlp.yaml --set training.epochs=3 optimizer.lr=0.05
    """
    from ..engine.run import config_text, open_run
    from ..engine.trainer import Interrupted
    from .render import TrainingReport, make_console, plain_output, run_summary, training_results

    overrides = _overrides(set_, extra, seed, threads)
    if print_config:
        typer.echo(config_text(config, overrides), nl=False)
        return
    console = make_console()
    run = open_run(config, overrides, out=out, resume=resume, force=force)
    for warning in run.warnings:
        show_warning(warning)
    if dry_run or state["verbosity"] > 0:
        for renderable in run_summary(run):
            console.print(renderable)
        if dry_run:
            console.print(f"dry run: nothing trained, nothing written to {run.directory.path}")
            return
    if run.finished:
        console.print(f"{resume} has already {run.finished}; nothing to do")
        return
    plain = plain_output(console, quiet)
    report = TrainingReport(console, run.config.training.epochs, plain)
    try:
        with _stop_on_signals(run.trainer):
            rows = run.train([] if quiet else [report])
    except Interrupted as stop:
        report.close()
        trainer = run.trainer
        show_note(f"{stop.signal_name} in epoch {trainer.epoch + 1} after {trainer.step} steps; checkpoint written "
              f"to {stop.checkpoint}", "stopped")
        again = ["backprop", "train", str(config)] + [f"--set={item}" for item in overrides]
        show_note("resume with: " + shlex.join(again + ["--resume", str(stop.checkpoint)]))
        raise typer.Exit(130 if stop.signal_name == "SIGINT" else 143)
    finally:
        report.close()
    for renderable in training_results(run.trainer, rows, run.directory.files(), run.data.classes,
                                       sparkline=not plain):
        console.print(renderable)


@contextlib.contextmanager
def _stop_on_signals(trainer):
    """SIGINT/SIGTERM ask the trainer to stop after the current step; a further signal only says so.
    The previous handlers come back afterwards, except when stopping: once the checkpoint is written
    (the work is saved) signals are ignored, so that nothing cuts the exit short."""
    def handler(signum, frame):
        if trainer.stop_requested:
            show_note("already stopping: finishing the step and writing the checkpoint")
            return
        trainer.stop_requested = signal.Signals(signum).name
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_IGN if trainer.stop_requested else old)


# ---------------------------------------------------------------------------- eval, predict
@app.command("eval")
@edge
def eval_(checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A .npz written by train."),
          data: Optional[Path] = typer.Option(None, "--data", help="Data to score (default: the config's test set)."),
          labels: Optional[Path] = typer.Option(None, "--labels", help="Labels file for IDX --data."),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
          plot: Optional[Path] = typer.Option(None, "--plot", metavar="PICTURE",
                                              help="Also draw the confusion matrix to a .png, .svg or .pdf "
                                                   "(needs the plot extra)."),
          verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Score saved weights: loss, metrics, confusion matrix.

    Uses the config's test set unless --data is given (a CSV's columns are found by name);
    classifiers get per-class recall (-q: the metrics alone).

    Example: backprop eval runs/digits_mlp/best.npz --json
    """
    from ..engine.experiment import evaluate_checkpoint
    from .render import evaluation, make_console

    if plot is not None:
        from ..diagnostics.figures import require_picture, write_confusion
        require_picture(plot, "--plot")
    result = evaluate_checkpoint(checkpoint, data, labels)
    if plot is not None:
        typer.echo(f"wrote {write_confusion(result, plot)}", err=True)
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = make_console()
    for renderable in evaluation(result, "test" if data is None else data.name)[:1 if quiet else None]:
        console.print(renderable)


@app.command()
@edge
def predict(checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A .npz written by train."),
            data: Path = typer.Argument(..., metavar="DATA", help="Samples: CSV (features, label optional), IDX or NPZ."),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the CSV here (default: stdout)."),
            verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Predict: a CSV of classes and probabilities, or values.

    A CSV with a header is matched by column name (any order, extra columns ignored); one without a
    header by position.

    Example: backprop predict runs/iris/best.npz data/iris.csv --out predictions.csv
    """
    from ..engine.experiment import predict_checkpoint

    text, count = predict_checkpoint(checkpoint, data, out)
    if out is None:
        sys.stdout.write(text)
    elif not quiet:
        typer.echo(f"wrote {count} predictions to {out}", err=True)


@app.command()
@edge
def export(checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A .npz written by train."),
           out: Path = typer.Argument(..., metavar="OUT", help="The ONNX file to write, e.g. model.onnx."),
           verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Export a checkpoint's model to ONNX, taking raw inputs as predict does.

    The normalisation is the graph's first nodes; outputs are the model's output and, for classifiers,
    the probabilities (-q: the file written alone). Needs the onnx extra.

    Example: backprop export runs/digits_cnn/best.npz digits_cnn.onnx
    """
    from ..engine.export import export_checkpoint
    from .render import export_lines, make_console

    console = make_console()
    for line in export_lines(export_checkpoint(checkpoint, out))[:1 if quiet else None]:
        console.print(line)


# ---------------------------------------------------------------------------- plot
@app.command()
@edge
def plot(runs: List[Path] = typer.Argument(..., metavar="RUN_DIR",
                                          help="Run directories written by train; a sweep directory plots every trial."),
         metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", metavar="NAMES",
                                                    help="metrics.csv columns, comma-separated (default: train_loss, "
                                                         "val_loss and val_accuracy or val_mae)."),
         out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="PICTURE",
                                            help="Write a .png, .svg or .pdf (needs the plot extra)."),
         terminal: bool = typer.Option(False, "--terminal", "-t", help="Draw in the terminal (the default without --out)."),
         gradients: bool = typer.Option(False, "--gradients",
                                        help="Per-parameter gradient norms and update ratios from the run's "
                                             "gradients.csv (train with training.log_gradients: true)."),
         verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Draw learning curves over epochs: in the terminal, or to a picture.

    Losses share a panel (log scale when they span decades); the best epoch is starred. -q: the chart
    alone, without the notes on stderr or the file written.

    Example: backprop plot runs/digits_mlp --out curves.png
    """
    from rich.markup import escape

    from ..diagnostics.figures import plot_curves
    from .render import curves_chart, make_console

    if gradients and metric:
        raise typer.BadParameter("--metric chooses metrics.csv columns; --gradients plots gradients.csv")
    curves, written = plot_curves(runs, metric, gradients=gradients, out=out)
    if out is None or terminal:
        console = make_console()
        for renderable in curves_chart(curves, console):
            console.print(renderable)
        console.file.flush()
    if quiet:
        return
    err = make_console(stderr=True)
    for note in curves.notes:
        err.print(f"[dim]note:[/dim] {escape(note)}")
    if written is not None:
        err.print(f"wrote {written}")


# ---------------------------------------------------------------------------- gradcheck, summary, schema, time
@app.command()
@edge
def gradcheck(config: Optional[Path] = typer.Argument(None, metavar="[CONFIG|CHECKPOINT]",
                                                       help="Check this config's (or checkpoint's) model; omit to "
                                                            "check the library."),
              eps: float = typer.Option(1e-6, "--eps", help="Finite-difference step (float64)."),
              tol: float = typer.Option(1e-6, "--tol", help="Pass when |analytic - numeric| <= tol * max(1, |numeric|)."),
              batch: int = typer.Option(4, "--batch", help="Samples of the config's data to check on."),
              max_checks: int = typer.Option(64, "--max-checks", help="Coordinates compared per tensor (random)."),
              set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
              verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Check every gradient against finite differences.

    Central differences in float64, per layer and tensor; exit 1 on any failure (-q: the failures alone).

    Example: backprop gradcheck configs/digits_cnn.yaml   (or just: backprop gradcheck)
    """
    from ..diagnostics.gradcheck import check_config, check_library
    from .render import gradcheck_failures, gradcheck_table, make_console

    if eps <= 0 or tol <= 0 or batch < 1 or max_checks < 1:
        raise typer.BadParameter("--eps and --tol must be > 0; --batch and --max-checks >= 1")
    if config is None:
        results = check_library(eps=eps, tol=tol)
        title = "gradcheck: every module and criterion in the library"
    else:
        name, samples, results = check_config(config, _overrides(set_, None), batch=batch, eps=eps, tol=tol,
                                              max_checks=max_checks)
        title = f"gradcheck: {name} on {samples} samples (float64)"
    console = make_console()
    failed = [r for r in results if not r.passed]
    if failed or not quiet:
        console.print(gradcheck_table(failed if quiet else results, title))
    if failed:
        for line in gradcheck_failures(results):
            console.print(line)
        fail(f"{len(failed)} of {len(results)} gradient checks failed")
    console.print(f"[green]all {len(results)} gradient checks passed[/green]")


@app.command()
@edge
def explain(source: Path = typer.Argument(..., metavar="CONFIG|CHECKPOINT",
                                          help="A YAML config (fresh weights) or a checkpoint written by train."),
            sample: int = typer.Option(0, "--sample", "-i", help="The first training sample (file order)."),
            batch: int = typer.Option(1, "--batch", "-n", help="How many samples, from --sample on."),
            layer: Optional[int] = typer.Option(None, "--layer", "-l", help="Show the backward of this layer only."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON object (arrays as lists)."),
            no_check: bool = typer.Option(False, "--no-check", help="Skip the finite-difference check."),
            set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
            verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Show one training step: forward, loss, backward, optimizer step.

    On real samples of the config's training data, every number computed by the library: each
    layer's output, the criterion's dLoss/dOutput, each layer's grad_input and parameter gradients
    with the formula from its docstring, the optimizer's change of every weight beside -lr * grad,
    and a finite-difference check of this very batch. -q: the loss, the optimizer's step and the
    check alone.

    Example: backprop explain configs/digits_mlp.yaml --sample 0
    """
    from ..diagnostics.explain import explain as run_explain
    from .render import make_console
    from .render_explain import explanation

    if batch < 1 or sample < 0:
        raise typer.BadParameter("--sample must be >= 0 and --batch >= 1")
    result = run_explain(source, _overrides(set_, None), sample=sample, batch=batch, layer=layer, check=not no_check)
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = make_console()
    for renderable in explanation(result, brief=quiet):
        console.print(renderable)
    failed = [row["layer"] for row in result["gradcheck"] or [] if not row["passed"]]
    if failed:
        fail(f"the finite-difference check fails for {', '.join(failed)} (part 5)")


@app.command()
@edge
def summary(config: Path = typer.Argument(..., metavar="CONFIG|CHECKPOINT", help=CONFIG_OR_CHECKPOINT),
            set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
            verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """The model as a table: layers, output shapes, parameters (-q: the total alone).

    A checkpoint's environment and data files (with their SHA-256) follow, as eval shows them.

    Example: backprop summary configs/digits_cnn.yaml   (or a checkpoint: runs/digits_cnn/best.npz)
    """
    from ..engine.experiment import summarize
    from .render import environment_table, make_console, summary_table

    rows, total, recorded = summarize(config, _overrides(set_, None))
    table, console = summary_table(rows, total), make_console()
    console.print(table.caption if quiet else table)
    if not quiet and recorded and recorded["environment"]:
        console.print(environment_table(recorded["environment"], recorded["data_files"]))


@app.command()
@edge
def schema(verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Print the config file's JSON Schema (for editors).

    Example: backprop schema > backprop.schema.json
    """
    from ..config.schema import config_schema
    typer.echo(json.dumps(config_schema(), indent=2))


@app.command("time")
@edge
def time_(config: Path = typer.Argument(..., metavar="CONFIG|CHECKPOINT", help=CONFIG_OR_CHECKPOINT),
          batches: int = typer.Option(20, "--batches", "-n", help="Timed forward/backward passes."),
          set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
          verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Time forward and backward per layer (like caffe time).

    Average milliseconds per batch of the config's data, and each layer's share (-q: the total
    alone). Backward is the training step's: layers before the first one with weights take no time,
    and that one computes only its weight gradients.

    Example: backprop time configs/digits_cnn.yaml --batches 50
    """
    from ..diagnostics.profile import time_config
    from .render import make_console, timing_table, timing_total

    if batches < 1:
        raise typer.BadParameter("--batches must be >= 1")
    cfg, rows = time_config(config, _overrides(set_, None), batches=batches)
    table = timing_table(rows, f"{cfg.name}: batch {cfg.training.batch_size}, mean of {batches} passes "
                               "(backward as in training: no gradient for the data)")
    make_console().print(timing_total(rows) if quiet else table)


# ---------------------------------------------------------------------------- sweep
@app.command()
@edge
def sweep(sweep_file: Path = typer.Argument(..., metavar="SWEEP", help="The sweep file (YAML): a config and a search space."),
          workers: Optional[int] = typer.Option(None, "--workers", "-w",
                                                help="Worker processes on this machine (default: cores / BLAS threads)."),
          trials: Optional[int] = typer.Option(None, "--trials", "-n", help="Trials to finish (default: the sweep file's)."),
          storage: Optional[str] = typer.Option(None, "--storage", metavar="URL",
                                                help="An Optuna storage that machines share: sqlite:///x.db, "
                                                     "postgresql://..., or a journal file (default: "
                                                     "runs/<sweep>/study.journal)."),
          study: Optional[str] = typer.Option(None, "--study", help="The study's name (default: the sweep's name)."),
          status: bool = typer.Option(False, "--status", help="Print the sweep's trials so far; run nothing."),
          verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
    """Search hyperparameters: train one config many times (Optuna).

    Each trial is a run directory in runs/<sweep>/; sweep.csv lists them all. The same command again
    continues the sweep; on several machines with one --storage, they share it. A live table of the
    trials on a terminal, one line per finished trial otherwise; -q prints only the best trial and
    the files, -v every failed trial's error.

    Example: backprop sweep configs/sweeps/digits_sweep.yaml --workers 2
    """
    from ..sweep.runner import run_sweep, sweep_status
    from .render import make_console, plain_output
    from .render_sweep import SweepReport, sweep_results

    console = make_console()
    if status:
        result = sweep_status(sweep_file, storage=storage, study=study)
    else:
        report = SweepReport(console, plain_output(console, quiet), quiet=quiet)
        try:
            result = run_sweep(sweep_file, workers=workers, trials=trials, storage=storage, study=study,
                               on_update=report.update)
        finally:
            report.close()
    for renderable in sweep_results(result, ran=not status, verbosity=state["verbosity"]):
        console.print(renderable)
    for line in result.worker_errors:
        show_error(line)
    if result.interrupted:
        show_note(f"{result.interrupted}: the running trials ended after their current step; the same command "
              "retries them", "stopped")
        raise typer.Exit(130 if result.interrupted == "SIGINT" else 143)
    if not status and result.best is None:
        fail("no trial completed")


def main(args: list[str] | None = None) -> None:
    """The console-script entry point: usage errors become one line and exit code 2."""
    args = sys.argv[1:] if args is None else list(args)
    command = typer.main.get_command(app)
    if not args:
        args = ["--help"]
    try:
        code = command.main(args=args, prog_name="backprop", standalone_mode=False)
    except typer.Abort:
        show_error("aborted")
        code = 130
    except typer.TyperException as err:      # click's usage errors, vendored by typer
        ctx = getattr(err, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        show_error(err.format_message() + hint)
        code = getattr(err, "exit_code", 2)
    sys.exit(code or 0)
