"""What ``backprop sweep`` prints: a live table of the trials (or a line per finished trial), and at the
end the table, the best trial with its values as ``--set`` flags, failed trials' errors and the files."""

from __future__ import annotations

import os
import shlex

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from .render import fmt, short_number

STATE_STYLES = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan"}


def sweep_table(sweep, rows, *, title: str | None = None, last: int | None = None) -> Table:
    """The trials of a sweep: number, state, each parameter, the metric, seconds; the best in bold.
    ``last`` keeps only the latest rows (the best one stays)."""
    from ..sweep.study import best_row

    best = best_row(sweep, rows)
    shown = rows if last is None or len(rows) <= last else [r for r in rows[:-last] if r is best] + rows[-last:]
    table = Table(title=title, show_edge=False, header_style="bold")
    table.add_column("trial", justify="right")
    table.add_column("state")
    for key in sweep.spec.space:
        table.add_column(key, justify="right")
    table.add_column(sweep.metric, justify="right")
    table.add_column("seconds", justify="right")
    for r in shown:
        state = f"[{STATE_STYLES.get(r.state, 'white')}]{r.state}[/]"
        if r.state == "pruned" and r.epochs is not None:
            state += f" [dim](epoch {r.epochs})[/dim]"
        table.add_row(str(r.number), state, *(short_number(r.params[k]) if k in r.params else "" for k in sweep.spec.space),
                      fmt(r.value, sweep.metric), "-" if r.seconds is None else f"{r.seconds:.1f}",
                      style="bold" if r is best else None)
    return table


def _tally(sweep, rows) -> str:
    """``name: 5/8 trials done (4 complete, 1 pruned, 1 running, 2 interrupted and retried)``."""
    counts: dict[str, int] = {}
    for r in rows:
        state = "interrupted and retried" if r.interrupted else r.state
        counts[state] = counts.get(state, 0) + 1
    done = sum(counts.get(s, 0) for s in ("complete", "pruned", "failed"))
    order = ("complete", "pruned", "failed", "running", "interrupted and retried")
    parts = ", ".join(f"{counts[state]} {state}" for state in order if state in counts)
    return f"{sweep.name}: {done}/{sweep.trials} trials done ({parts or 'none yet'})"


class SweepReport:
    """Renders a running sweep: a live table of its trials, or one plain line per trial as it ends."""

    def __init__(self, console: Console, plain: bool, quiet: bool = False) -> None:
        self.console, self.plain, self.quiet = console, plain, quiet
        self.live: Live | None = None
        self.printed: set[int] = set()

    def update(self, sweep, rows) -> None:
        if self.quiet:
            return
        if self.plain:
            for r in rows:
                if r.state not in ("running", "waiting") and r.number not in self.printed:
                    self.printed.add(r.number)
                    self.console.print(_trial_line(sweep, r))
            return
        table = sweep_table(sweep, rows, title=_tally(sweep, rows), last=20)
        if self.live is None:
            self.live = Live(table, console=self.console, refresh_per_second=4, transient=True)
            self.live.start()
        else:
            self.live.update(table)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _trial_line(sweep, r) -> str:
    values = " ".join(f"{k}={short_number(v)}" for k, v in r.params.items())
    why = f" ({r.error})" if r.error else f" (epoch {r.epochs})" if r.state == "pruned" else ""
    return (f"trial {r.number} {r.state}{why}  {values}  {sweep.metric} {fmt(r.value, sweep.metric)}"
            f"  {'-' if r.seconds is None else f'{r.seconds:.1f}s'}")


def sweep_results(result, *, ran: bool = True, verbosity: int = 0) -> list:
    """What ``sweep`` prints at the end (and ``sweep --status``): every trial (not at ``verbosity``
    -1), the best one with its values as ``--set`` flags, failed trials' errors (the first three; all
    at ``verbosity`` 1), and the files."""
    from ..sweep.spec import set_flag
    from ..sweep.study import trial_directory

    sweep, rows = result.sweep, result.rows
    out: list = [sweep_table(sweep, rows, title=_tally(sweep, rows))] if verbosity >= 0 else []
    best = result.best
    if best is not None:
        config = os.path.relpath(sweep.spec.config)
        flags = [part for k, v in best.params.items() for part in ("--set", set_flag(k, v))]
        out += [f"best trial {best.number}: {sweep.metric} {fmt(best.value, sweep.metric)} "
                f"({trial_directory(sweep, best.number) / 'best.npz'})",
                "train it alone: " + shlex.join(["backprop", "train", str(config), *flags])]
    failed = [r for r in rows if r.state == "failed" and r.error]
    shown = failed if verbosity > 0 else failed[:3]
    for r in shown:
        out.append(f"[red]trial {r.number} failed:[/red] {escape(r.error)}")
    if len(failed) > len(shown):
        out.append(f"[red]... and {len(failed) - len(shown)} more failed trials (-v lists them; each "
                   "trial.json says why)[/red]")
    if result.csv is not None and ran:
        out.append(f"wrote {result.csv}")
    out.append(f"study {sweep.study!r} in {result.storage}")
    return out
