"""One epoch of a small 1-D CNN on length-40 signals: backprop's engine vs PyTorch CPU.

    python benchmarks/cnn1d.py            # 4,000 signals, 15 interleaved repeats
    python benchmarks/cnn1d.py --quick    # 800 signals, 3 repeats: a smoke test

Input (N, 1, 40); TemporalConvolution 1->25 k5 s2 p1, ReLU, 25->25 k3 s2 p1, ReLU, 25->25 k3 s2 p1,
ReLU, Flatten, Linear 125->10 on raw scores with CrossEntropyCriterion; SGD with momentum 0.9,
batch 100, float32, shuffled. backprop builds and trains it as ``backprop train`` does
(``Trainer.fit``); PyTorch runs the same layers from the same weights in the same sample order, with
as many threads as numpy's BLAS. ``--profile`` adds where backprop's time goes, layer by layer.
"""

from __future__ import annotations

import sys

from _common import (Row, backprop_contender, blas_threads, import_torch, initial_weights, interleaved,
                     layer_profile, load_note, machine_header, median, parser, print_table, ratio_row, spread,
                     synthetic_classes, torch_contender, weight_drift)

BATCH, LR, MOMENTUM, SEED = 100, 0.01, 0.9, 0
SHAPE = (1, 40)

CONFIG = {
    "name": "bench_cnn1d", "seed": SEED, "data": {"train": "synthetic.npz"},
    "model": [
        {"TemporalConvolution": {"out_channels": 25, "kernel_size": 5, "stride": 2, "padding": 1}}, "ReLU",
        {"TemporalConvolution": {"out_channels": 25, "kernel_size": 3, "stride": 2, "padding": 1}}, "ReLU",
        {"TemporalConvolution": {"out_channels": 25, "kernel_size": 3, "stride": 2, "padding": 1}}, "ReLU",
        "Flatten", {"Linear": 10},
    ],
    "criterion": "CrossEntropyCriterion",
    "optimizer": {"name": "sgd", "lr": LR, "momentum": MOMENTUM},
    "training": {"epochs": 1, "batch_size": BATCH, "shuffle": True, "dtype": "float32"},
}


def torch_cnn1d(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(125, 10))


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=15)
    p.add_argument("--profile", action="store_true", help="Also time each backprop layer (forward, backward).")
    args = p.parse_args()
    n = 800 if args.quick else 4_000
    repeats = 3 if args.quick else args.repeats
    threads = blas_threads()
    torch, why_not = import_torch(threads, args.no_torch)
    x, y = synthetic_classes(n, SHAPE)
    contenders = {"backprop": backprop_contender(CONFIG, x, y)}
    notes = [machine_header(threads, torch), f"{n:,} signals, batch {BATCH}, median of {repeats} interleaved repeats"]
    if torch is not None:
        weights = initial_weights(CONFIG, SHAPE)
        make = lambda x_, y_: torch_contender(torch, lambda: torch_cnn1d(torch), weights, x_, y_,  # noqa: E731
                                              batch=BATCH, lr=LR, momentum=MOMENTUM, seed=SEED, loss="cross_entropy")
        contenders["PyTorch"] = make(x, y)
        sub = x[:1000], y[:1000]
        notes.append(f"same math: after one epoch on 1,000 signals, backprop's weights differ from PyTorch's by at "
                     f"most {weight_drift(CONFIG, make(*sub), *sub):.1e}")
    t = interleaved(contenders, repeats)
    ours = t["backprop"]
    if torch is not None:
        rows = [ratio_row("1-D CNN epoch vs PyTorch CPU", ours, t["PyTorch"], 2.0)]
    else:
        rows = [Row("1-D CNN epoch vs PyTorch CPU", "skipped", "<= 2.00x", None)]
        notes.append(f"PyTorch row: {why_not}")
    rows.append(Row("1-D CNN epoch, backprop", f"{median(ours):.3f} s ({n / median(ours):,.0f} signals/s)"))
    notes.insert(2, "seconds per epoch, median (min-max): " + "; ".join(f"{k} {spread(v)}" for k, v in t.items()))
    notes.append(load_note())
    if args.profile:
        notes += layer_profile(CONFIG, x, y, batches=len(x) // BATCH)
    print_table("1-D CNN on (N, 1, 40), one epoch", rows, notes)


if __name__ == "__main__":
    sys.exit(main())
