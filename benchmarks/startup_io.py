"""Start-up, IDX loading and peak memory: the costs around training rather than in it.

    python benchmarks/startup_io.py            # full size
    python benchmarks/startup_io.py --quick    # 6,000 images, fewer repeats: a smoke test

* ``backprop --help``: the whole process, started as a user starts it (the ``backprop`` found on
  PATH; ``python -m backprop_cli`` from a clone that is not installed), median of repeats. Bare
  ``python -c pass`` is shown beside it: the interpreter's own share. A shell-completion query (what
  a TAB after ``backprop tr`` runs) is timed the same way.
* (What checkpoints cost an epoch is ``checkpoints.py``'s, measured in the training loop.)
* IDX: 60,000 synthetic 28x28 images and their labels written with ``backprop_cli.data.write_idx``
  (raw, and gzip), read back with ``backprop_cli.data.load_idx``; median of repeats. Raw images stay
  on disk (read batch by batch while training), so their load is the header check and the labels.
* Peak memory: ``ru_maxrss`` of a child process that trains the MLP of ``mlp.py`` for one epoch on
  60,000 float32 samples held in memory, and of ``backprop train`` doing the same from IDX files (read,
  normalised, trained, checkpointed), each against twice the float32 dataset plus 150 MB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, Row, blas_threads, load_note, machine_header, median, parser, peak_rss, print_table

import numpy as np

HERE = Path(__file__).resolve().parent
MB = 1_000_000


def run_seconds(cmd: list[str], repeats: int, **kw) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
        times.append(time.perf_counter() - start)
    return times


def help_command() -> tuple[list[str], str]:
    exe = shutil.which("backprop")
    if exe:
        return [exe, "--help"], f"`{exe} --help`"
    return [sys.executable, "-m", "backprop_cli", "--help"], "`python -m backprop_cli --help` (not installed)"


def write_idx_files(folder: Path, n: int) -> dict[str, tuple[Path, Path]]:
    from backprop_cli.data import write_idx

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    files = {}
    for kind, suffix in (("raw", ""), ("gzip", ".gz")):
        pair = (folder / f"train-images-idx3-ubyte{suffix}", folder / f"train-labels-idx1-ubyte{suffix}")
        write_idx(pair[0], images)
        write_idx(pair[1], labels)
        files[kind] = pair
    return files


def load_seconds(pair: tuple[Path, Path], repeats: int) -> list[float]:
    from backprop_cli.data import load_idx

    times = []
    for _ in range(repeats + 1):                   # the first read warms the page cache
        start = time.perf_counter()
        ds = load_idx(*pair)
        times.append(time.perf_counter() - start)
        del ds
    return times[1:]


CLI_CONFIG = """\
name: bench_mlp_memory
seed: 0
data:
  train: {images}
  train_labels: {labels}
  validation_split: 0
  normalize: scale
  scale: 255
model: [Flatten, {{Linear: 256}}, ReLU, {{Linear: 256}}, ReLU, {{Linear: 10}}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {{name: sgd, lr: 0.01, momentum: 0.9}}
training: {{epochs: 1, batch_size: 128}}
"""


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=10)
    args = p.parse_args()
    quick = args.quick
    n = 6_000 if quick else 60_000
    repeats = 3 if quick else args.repeats
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))

    help_cmd, help_text = help_command()
    subprocess.run(help_cmd, check=True, stdout=subprocess.DEVNULL, env=env)      # warm the file cache
    complete_env = dict(env, _BACKPROP_COMPLETE="complete_bash", COMP_WORDS="backprop tr", COMP_CWORD="1")
    helps, bare, completes = [], [], []
    for _ in range(repeats):                       # interleaved, like every other comparison here
        helps += run_seconds(help_cmd, 1, env=env)
        bare += run_seconds([sys.executable, "-c", "pass"], 1)
        completes += run_seconds(help_cmd[:-1], 1, env=complete_env)
    rows = [Row("`backprop --help` whole process", f"{median(helps):.3f} s", "<= 0.300 s", median(helps) <= 0.3),
            Row("shell completion query (`backprop tr<TAB>`)", f"{median(completes):.3f} s")]

    dataset_bytes = n * 28 * 28 * 4
    budget = 2 * dataset_bytes + 150 * MB
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_idx_files(folder, n)
        raw = load_seconds(files["raw"], max(3, repeats // 2))
        gz = load_seconds(files["gzip"], max(3, repeats // 2))
        rows.append(Row(f"IDX load, {n // 1000}k 28x28 raw", f"{median(raw):.3f} s", "<= 0.300 s", median(raw) <= 0.3))
        rows.append(Row(f"IDX load, {n // 1000}k 28x28 gzip", f"{median(gz):.3f} s"))

        engine = peak_rss([sys.executable, str(HERE / "mlp.py"), "--memory-child"] + (["--quick"] if quick else []),
                          env=env)
        config = folder / "mlp.yaml"
        config.write_text(CLI_CONFIG.format(images=files["raw"][0].name, labels=files["raw"][1].name))
        cli = peak_rss(help_cmd[:-1] + ["train", str(config), "--quiet", "--out", str(folder / "run")], env=env)
    target = f"<= {budget / MB:.0f} MB"
    rows.append(Row("peak memory, MLP epoch (engine)", f"{engine / MB:.0f} MB", target, engine <= budget))
    rows.append(Row("peak memory, `backprop train` MLP from IDX", f"{cli / MB:.0f} MB", target, cli <= budget))

    notes = [machine_header(blas_threads()),
             f"`backprop --help` run as {help_text}; median of {repeats}, {min(helps):.3f}-{max(helps):.3f} s; "
             f"`python -c pass` alone takes {median(bare):.3f} s; a completion query {min(completes):.3f}-"
             f"{max(completes):.3f} s (typer parses the options it completes with pydantic TypeAdapters, which "
             "imports pydantic; --help parses none)",
             f"IDX medians of {max(3, repeats // 2)} reads after one warm-up read (files in the page cache): "
             f"raw {min(raw):.3f}-{max(raw):.3f} s, gzip {min(gz):.3f}-{max(gz):.3f} s",
             f"memory budget: 2 x {dataset_bytes / MB:.0f} MB (the float32 dataset) + 150 MB = {budget / MB:.0f} MB "
             f"(MB = 10^6 bytes)", load_note()]
    print_table("Start-up, IDX loading, peak memory", rows, notes)


if __name__ == "__main__":
    sys.exit(main())
