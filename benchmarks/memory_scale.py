"""Data larger than memory: peak memory and epoch time of `backprop train` on .npy data left on disk.

    python benchmarks/memory_scale.py            # 1x = 20,000 samples of 784 float32 (63 MB); 4x, 16x (1 GB)
    python benchmarks/memory_scale.py --quick    # 1x = 4,000 samples: a smoke test

Each run is a fresh ``backprop train`` process (``python -m backprop_cli``) that trains the MLP of
``mlp.py`` (784-256-256-10, batch 128, SGD with momentum) for one epoch on synthetic data, standardised
(the statistics fitted over the whole training file), then scores the training set and writes its
checkpoints: the whole command, as a user runs it.

* **On disk**: an NPY pair (a directory with ``x.npy`` and ``y.npy``) of 1x, 4x and 16x the base size;
  the features stay on disk and each batch's rows are read from the file.
* **In memory**: the same 1x and 4x data as an ``.npz`` archive, which is read whole (the
  reference for time, and to show the memory a loaded dataset takes).

Peak memory is the child's ``ru_maxrss`` (from ``wait4``). Time is measured in one more process: each
dataset's trainer, built from the same configs as ``backprop train`` builds it, trains one epoch in
turn, round after round, so drift on a shared machine hits all alike; a ratio is the median over the
rounds of the per-sample time on disk over that in memory (1x). Per sample is judged as the median
time of an epoch's full batches over the batch size: a burst of other work on a shared machine lands
in a few batches of a long epoch and moves its total, not its median batch. The whole epoch's ratio
is printed beside it. The files are written first,
so they are in the kernel's page cache: this measures the engine, not the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (ROOT, Row, blas_threads, load_note, machine_header, median, parser, peak_rss, print_table,
                     ratio_row)

import numpy as np

MB = 1_000_000
FEATURES, CLASSES = 784, 10
CONFIG = """\
name: scale
seed: 0
data: {{train: {train}, validation_split: 0, normalize: standardize}}
model: [{{Linear: 256}}, ReLU, {{Linear: 256}}, ReLU, {{Linear: 10}}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {{name: sgd, lr: 0.01, momentum: 0.9}}
training: {{epochs: 1, batch_size: 128}}
"""


def write_pair(folder: Path, n: int, seed: int = 0) -> Path:
    """An NPY pair of ``n`` samples, written in chunks (class means plus noise, float32)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((CLASSES, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, n)
    x = np.lib.format.open_memmap(folder / "x.npy", mode="w+", dtype=np.float32, shape=(n, FEATURES))
    for start in range(0, n, 10_000):
        part = y[start:start + 10_000]
        x[start:start + len(part)] = centers[part] + rng.standard_normal((len(part), FEATURES), dtype=np.float32)
    x.flush()
    del x
    np.save(folder / "y.npy", y)
    return folder


def write_npz(pair: Path, path: Path) -> Path:
    np.savez(path, x=np.load(pair / "x.npy"), y=np.load(pair / "y.npy"))
    return path


def write_data(folder: Path, n: int, npz: bool, env: dict) -> tuple[Path, Path | None]:
    """The pair (and the .npz) written by a child process: a child's peak memory starts from its parent's
    resident memory at the fork, so the parent stays small."""
    subprocess.run([sys.executable, __file__, "--write", str(folder), str(n)] + (["--npz"] if npz else []),
                   check=True, env=env)
    return folder, (folder.with_suffix(".npz") if npz else None)


def write_config(data: Path, folder: Path) -> Path:
    config = folder / f"{data.name.replace('.', '-')}.yaml"
    config.write_text(CONFIG.format(train=data))
    return config


def peak_memory(data: Path, folder: Path, env: dict) -> int:
    """Peak RSS (bytes) of one ``backprop train`` on ``data``: read, fit, one epoch, score, checkpoints."""
    config = write_config(data, folder)
    return peak_rss([sys.executable, "-m", "backprop_cli", "train", str(config), "--quiet", "--force",
                     "--out", str(config.with_suffix(".run"))], env=env)


def time_epochs(configs: list[str], rounds: int) -> dict[str, dict[str, list[float]]]:
    """In this process: each config's trainer (built as ``backprop train`` builds it) trains one epoch in
    turn, ``rounds`` times after one warm-up round. For each config, per sample: every epoch's time,
    and the median time of its full batches (a burst of other work on the machine moves the first,
    not the second)."""
    from backprop_cli.config.schema import load_config
    from backprop_cli.engine.run import start_run
    from backprop_cli.engine.trainer import Callback

    class BatchTimes(Callback):
        def on_epoch_begin(self, trainer, epoch, batches):
            self.times, self.last = [], time.perf_counter()

        def on_batch_end(self, trainer, batch, loss, samples):
            now = time.perf_counter()
            if samples == trainer.batch_size:
                self.times.append((now - self.last) / samples)
            self.last = now

    runs = {c: start_run(load_config(c), out=Path(c).with_suffix(".timing"), force=True) for c in configs}
    times = {c: {"epoch": [], "batch": []} for c in configs}
    batches = BatchTimes()
    for round_ in range(rounds + 1):
        for config, run in runs.items():
            trainer, train = run.trainer, run.data.train
            trainer.callbacks = [batches]
            trainer.fit(train.x, train.y, epochs=trainer.epoch + 1)
            if round_:
                times[config]["epoch"].append(trainer.history[-1]["seconds"] / len(train.x))
                times[config]["batch"].append(median(batches.times))
    return times


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=3)
    p.add_argument("--write", nargs=2, metavar=("FOLDER", "N"), help=argparse.SUPPRESS)
    p.add_argument("--npz", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--time", nargs="+", metavar="CONFIG", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.write:
        pair = write_pair(Path(args.write[0]), int(args.write[1]))
        if args.npz:
            write_npz(pair, pair.with_suffix(".npz"))
        return
    if args.time:
        print(json.dumps(time_epochs(args.time, args.repeats)))
        return
    base = 4_000 if args.quick else 20_000
    repeats = 1 if args.quick else args.repeats
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = {}
        for k in (1, 4, 16):
            pair, npz = write_data(folder / f"data{k}x", k * base, k < 16, env)
            data[f"on disk {k}x"] = pair
            if npz is not None:
                data[f"in memory {k}x"] = npz
        sizes = {name: (d / "x.npy" if d.is_dir() else d).stat().st_size for name, d in data.items()}
        rss = {name: peak_memory(d, folder, env) for name, d in data.items()}
        timed = ["in memory 1x", "on disk 1x", "on disk 4x", "on disk 16x"]
        child = subprocess.run([sys.executable, __file__, "--repeats", str(repeats), "--time",
                                *(str(write_config(data[name], folder)) for name in timed)],
                               check=True, env=env, capture_output=True, text=True)
        seconds = dict(zip(timed, json.loads(child.stdout.splitlines()[-1]).values()))

    growth = rss["on disk 16x"] / rss["on disk 1x"]
    rows = [Row(f"peak RSS, on disk {k}x ({sizes[f'on disk {k}x'] / MB:,.0f} MB of x.npy)",
                f"{rss[f'on disk {k}x'] / MB:.0f} MB") for k in (1, 4, 16)]
    rows.append(Row("peak RSS growth, on disk 1x -> 16x", f"{growth:.3f}x", "<= 1.10x", growth <= 1.10))
    rows += [Row(f"peak RSS, in memory {k}x (.npz, {sizes[f'in memory {k}x'] / MB:,.0f} MB)",
                 f"{rss[f'in memory {k}x'] / MB:.0f} MB") for k in (1, 4)]
    for k in (1, 4, 16):
        rows.append(ratio_row(f"time per sample (median batch), on disk {k}x vs in memory 1x",
                              seconds[f"on disk {k}x"]["batch"], seconds["in memory 1x"]["batch"], 1.30))
    for k in (1, 4, 16):
        ratio = median([a / b for a, b in zip(seconds[f"on disk {k}x"]["epoch"], seconds["in memory 1x"]["epoch"])])
        rows.append(Row(f"whole epoch time per sample, on disk {k}x vs in memory 1x", f"{ratio:.3f}x"))
    notes = [machine_header(blas_threads()),
             f"1x = {base:,} samples of {FEATURES} float32; peak RSS of one `backprop train` each (MB = 10^6 "
             f"bytes); epochs timed in one process, in turn, {repeats} rounds after a warm-up round; a ratio is "
             "the median over the rounds of the rounds' ratios; per sample: the median of an epoch's full "
             "batches (batch 128) over the batch size, and the whole epoch over its samples",
             "microseconds per sample, median batch (min-max over the rounds): " + "; ".join(
                 f"{name} {1e6 * median(t['batch']):.2f} ({1e6 * min(t['batch']):.2f}-{1e6 * max(t['batch']):.2f})"
                 for name, t in seconds.items()),
             "microseconds per sample, whole epoch: " + "; ".join(
                 f"{name} {1e6 * median(t['epoch']):.2f} ({1e6 * min(t['epoch']):.2f}-{1e6 * max(t['epoch']):.2f})"
                 for name, t in seconds.items()),
             load_note()]
    print_table("Data larger than memory: .npy on disk", rows, notes)


if __name__ == "__main__":
    sys.exit(main())
