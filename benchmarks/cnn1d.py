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

from _common import cnn_vs_torch

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
    cnn_vs_torch(title="1-D CNN on (N, 1, 40), one epoch", label="1-D CNN", unit="signals", config=CONFIG, shape=SHAPE,
                 torch_model=torch_cnn1d, sizes=(4_000, 800), batch=BATCH, target=0.8, thread_share=1,
                 repeats=15, quick_repeats=3, profile_whole_epoch=True)


if __name__ == "__main__":
    sys.exit(main())
