"""Hostile inputs: how long `backprop train` takes to refuse them, as the whole process a user starts.

    python benchmarks/hostile_inputs.py            # median of 5 runs each
    python benchmarks/hostile_inputs.py --quick    # 2 runs each

* a 50 MB config (refused by its size before it is read), a "billion laughs" alias bomb (10^9 values
  from ten lines, refused from its node graph) and a merge-key bomb, each against the target of one
  second; a 1 MiB config at the size limit (a flat list of 350,000 numbers: the most the YAML
  parser is ever given, refused by the value cap once its events have been counted that far), and a
  model of 5 x 10^12 parameters (refused before its weights are allocated), informational;
* `backprop --help` beside them: the process start-up that every figure includes.
Each run must exit 1 with one error line; the table gives its wall-clock time and, beside it, the CPU
time of the process (user + system, from ``wait4``), which a busy shared machine inflates less. Nearly
all of either is Python importing numpy, pydantic and the package: the refusals themselves take
milliseconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, Row, load_note, machine_header, blas_threads, median, parser, print_table

TINY = """\
name: tiny
data: {train: iris.csv, validation_split: 0.2}
model: [{Linear: 8}, Tanh, {Linear: 3}, LogSoftMax]
criterion: ClassNLLCriterion
optimizer: {name: sgd, lr: 0.1}
training: {epochs: 1}
"""


def hostile_configs(folder: Path) -> dict[str, Path]:
    files = {}
    big = folder / "big.yaml"
    with open(big, "w") as f:
        f.write(TINY + ("# " + "x" * 1022 + "\n") * (50 * 1024))
    files["a 50 MB config"] = big
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    files["an alias bomb (10^9 values)"] = folder / "bomb.yaml"
    merges = ["m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    merges += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}" for i in range(1, 12)]
    files["a merge-key bomb"] = folder / "merge.yaml"
    files["a 1 MiB config at the size limit"] = folder / "flat.yaml"
    files["a model of 5 x 10^12 parameters"] = folder / "huge.yaml"
    (folder / "bomb.yaml").write_text(TINY + "\n".join(laughs) + "\n")
    (folder / "merge.yaml").write_text(TINY + "\n".join(merges) + "\n")
    flat = TINY + "numbers: [" + ", ".join(["1"] * ((1024**2 - len(TINY) - 20) // 3)) + "]\n"
    (folder / "flat.yaml").write_text(flat)
    (folder / "huge.yaml").write_text(TINY.replace("{Linear: 8}", "{Linear: 1000000000000}"))
    return files


def refuse_seconds(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of the whole process, which must exit 1 with one line."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        err.seek(0)
        lines = err.read().decode().splitlines()
    code = os.waitstatus_to_exitcode(status)
    if code != 1 or len(lines) != 1:
        raise RuntimeError(f"{' '.join(cmd)}: expected exit 1 and one error line, got {code}: {lines}")
    return seconds, usage.ru_utime + usage.ru_stime


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    repeats = 2 if args.quick else args.repeats
    exe = shutil.which("backprop")
    base = [exe] if exe else [sys.executable, "-m", "backprop_cli"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(ROOT / "data/iris.csv", folder / "iris.csv")
        files = hostile_configs(folder)
        subprocess.run(base + ["--help"], check=True, stdout=subprocess.DEVNULL)        # warm the file cache
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in files}
        helps = []
        for _ in range(repeats):                   # interleaved: drift hits every case alike
            start = time.perf_counter()
            subprocess.run(base + ["--help"], check=True, stdout=subprocess.DEVNULL)
            helps.append(time.perf_counter() - start)
            for name, path in files.items():
                times[name].append(refuse_seconds(base + ["train", path.name, "-q"], folder))
    rows = []
    for name, runs in times.items():
        target = "bomb" in name or "50 MB" in name
        wall, cpu = median([w for w, _ in runs]), median([c for _, c in runs])
        rows.append(Row(f"`backprop train` refuses {name}", f"{wall:.3f} s ({cpu:.3f} s CPU)",
                        "<= 1.000 s" if target else "", wall <= 1.0 if target else None))
    rows.append(Row("`backprop --help` (the start-up in every figure)", f"{median(helps):.3f} s"))
    notes = [machine_header(blas_threads()),
             f"whole processes ({' '.join(Path(b).name for b in base)}), median of {repeats}, interleaved",
             load_note()]
    print_table("Hostile inputs: time to refuse", rows, notes)


if __name__ == "__main__":
    sys.exit(main())
