"""What writing checkpoints costs an epoch: ``training.checkpoint_every: 1`` against writing at the end only.

    python benchmarks/checkpoints.py            # the shipped digits MLP, and the MNIST-sized MLP of mlp.py
    python benchmarks/checkpoints.py --quick    # fewer epochs and repeats: a smoke test

Each contender is a whole ``backprop train`` run through the engine (``start_run`` and ``Run.train``:
the run directory with ``best.npz``, ``last.npz``, ``metrics.csv``, ``config.yaml``, ``run.json``),
timed from the first step to the last write, and the figure is the extra time per epoch over the
epoch's own time:

* **checkpoint_every 1 vs at the end**: ``last.npz`` written after every epoch, against only after
  the last (both runs write ``best.npz`` when the monitored metric improves, and ``metrics.csv``);
* **run directory vs none**: every file the run directory writes, against ``Trainer.fit`` alone.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import (ROOT, Row, blas_threads, interleaved, load_note, machine_header, median, parser, print_table,
                     spread, synthetic_classes)

import numpy as np

from mlp import CONFIG as MLP_CONFIG

LIMIT = 0.03


def contender(config_path: Path, overrides: list[str], out: Path | None):
    """``backprop train``'s loop on the config: ``Trainer.fit`` with the run directory in ``out`` writing
    its files (until they are all on disk), or with none (``out`` None). The final scoring on each
    split, which is no checkpoint's cost, is left out of both."""
    from backprop_cli.engine.run import open_run

    def prepare():
        run = open_run(config_path, overrides, out=out or Path(tempfile.mkdtemp()) / "unused", force=True)
        data, trainer, directory = run.data, run.trainer, run.directory
        trainer.callbacks = [directory] if out else []
        val = (data.val.x, data.val.y) if data.val else ()

        def train():
            try:
                trainer.fit(data.train.x, data.train.y, *val, epochs=run.config.training.epochs)
            finally:
                directory.unlock()                      # waits for the writes under way
        return train
    return prepare


def measure(name: str, config_path: Path, epochs: int, repeats: int, folder: Path) -> tuple[list[Row], list[str]]:
    base = [f"training.epochs={epochs}"]
    every = contender(config_path, [*base, "training.checkpoint_every=1"], folder / "every")
    at_end = contender(config_path, [*base, f"training.checkpoint_every={epochs + 1}"], folder / "end")
    bare = contender(config_path, base, None)
    t = interleaved({"every epoch": every, "at the end": at_end, "no run directory": bare}, repeats)
    epoch = median(t["no run directory"]) / epochs
    last = median([(a - b) / epochs for a, b in zip(t["every epoch"], t["at the end"])]) / epoch
    everything = median([(a - b) / epochs for a, b in zip(t["every epoch"], t["no run directory"])]) / epoch
    rows = [Row(f"{name}: checkpoint_every 1 vs at the end", f"{100 * last:+.1f}% of an epoch",
                f"<= {100 * LIMIT:.0f}%", last <= LIMIT),
            Row(f"{name}: every file of the run directory", f"{100 * everything:+.1f}% of an epoch")]
    size = (folder / "every" / "last.npz").stat().st_size
    notes = [f"{name}: {epochs} epochs, an epoch {1e3 * epoch:.1f} ms, last.npz {size / 1e6:.2f} MB; seconds per run, "
             "median (min-max): " + "; ".join(f"{k} {spread(v)}" for k, v in t.items())]
    return rows, notes


def mnist_config(folder: Path, n: int) -> Path:
    """The MLP of ``mlp.py`` as a config file, on ``n`` synthetic 784-feature samples saved as .npy."""
    import yaml

    x, y = synthetic_classes(n, (784,))
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    config = {**MLP_CONFIG, "name": "bench_checkpoints",
              "data": {"train": "x.npy", "train_labels": "y.npy", "validation_split": 0.1}}
    path = folder / "mnist_mlp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    args = parser(__doc__.splitlines()[0], repeats=5).parse_args()
    repeats = 2 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows, notes = [], [machine_header(blas_threads())]
        for name, path, epochs in (("digits MLP", ROOT / "configs" / "digits_mlp.yaml", 5 if args.quick else 20),
                                   ("MNIST-sized MLP", mnist_config(folder, 6_000 if args.quick else 60_000),
                                    2 if args.quick else 3)):
            r, n = measure(name, path, epochs, repeats, folder)
            rows += r
            notes += n
    notes.append(load_note())
    print_table("Checkpoints, per epoch", rows, notes)


if __name__ == "__main__":
    sys.exit(main())
