"""One epoch of a LeNet-style CNN on 28x28 images: backprop's engine vs PyTorch CPU.

    python benchmarks/cnn.py            # 60,000 images, 5 interleaved repeats
    python benchmarks/cnn.py --quick    # 6,000 images, 2 repeats: a smoke test

SpatialConvolution 1->8 5x5, ReLU, SpatialMaxPooling 2, SpatialConvolution 8->16 5x5, ReLU,
SpatialMaxPooling 2, Flatten, Linear 256->10 on raw scores with CrossEntropyCriterion; SGD with
momentum 0.9, batch 128, float32, shuffled. backprop builds and trains it as ``backprop train`` does
(``Trainer.fit``); PyTorch runs the same layers from the same weights in the same sample order, with
as many threads as numpy's BLAS. ``--profile`` adds where backprop's time goes, layer by layer.
"""

from __future__ import annotations

import sys

from _common import (Row, backprop_contender, blas_threads, import_torch, initial_weights, interleaved,
                     layer_profile, load_note, machine_header, median, parser, print_table, ratio_row, spread,
                     synthetic_classes, torch_contender, weight_drift)

BATCH, LR, MOMENTUM, SEED = 128, 0.01, 0.9, 0
SHAPE = (1, 28, 28)

CONFIG = {
    "name": "bench_lenet", "seed": SEED, "data": {"train": "synthetic.npz"},
    "model": [
        {"SpatialConvolution": {"out_channels": 8, "kernel_size": 5}}, "ReLU", {"SpatialMaxPooling": 2},
        {"SpatialConvolution": {"out_channels": 16, "kernel_size": 5}}, "ReLU", {"SpatialMaxPooling": 2},
        "Flatten", {"Linear": 10},
    ],
    "criterion": "CrossEntropyCriterion",
    "optimizer": {"name": "sgd", "lr": LR, "momentum": MOMENTUM},
    "training": {"epochs": 1, "batch_size": BATCH, "shuffle": True, "dtype": "float32"},
}


def torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--profile", action="store_true", help="Also time each backprop layer (forward, backward).")
    args = p.parse_args()
    n = 6_000 if args.quick else 60_000
    repeats = 2 if args.quick else args.repeats
    threads = blas_threads()
    torch, why_not = import_torch(threads, args.no_torch)
    x, y = synthetic_classes(n, SHAPE)
    contenders = {"backprop": backprop_contender(CONFIG, x, y)}
    notes = [machine_header(threads, torch), f"{n:,} images, batch {BATCH}, median of {repeats} interleaved repeats"]
    if torch is not None:
        weights = initial_weights(CONFIG, SHAPE)
        make = lambda x_, y_: torch_contender(torch, lambda: torch_lenet(torch), weights, x_, y_,  # noqa: E731
                                              batch=BATCH, lr=LR, momentum=MOMENTUM, seed=SEED, loss="cross_entropy")
        contenders["PyTorch"] = make(x, y)
        sub = x[:1024], y[:1024]
        notes.append(f"same math: after one epoch on 1,024 images, backprop's weights differ from PyTorch's by at "
                     f"most {weight_drift(CONFIG, make(*sub), *sub):.1e}")
    t = interleaved(contenders, repeats)
    ours = t["backprop"]
    if torch is not None:
        rows = [ratio_row("LeNet epoch vs PyTorch CPU", ours, t["PyTorch"], 1.5)]
    else:
        rows = [Row("LeNet epoch vs PyTorch CPU", "skipped", "<= 1.50x", None)]
        notes.append(f"PyTorch row: {why_not}")
    rows.append(Row("LeNet epoch, backprop", f"{median(ours):.2f} s ({n / median(ours):,.0f} images/s)"))
    notes.insert(2, "seconds per epoch, median (min-max): " + "; ".join(f"{k} {spread(v)}" for k, v in t.items()))
    notes.append(load_note())
    if args.profile:
        notes += layer_profile(CONFIG, x, y)
    print_table("LeNet on 28x28, one epoch", rows, notes)


if __name__ == "__main__":
    sys.exit(main())
