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

from _common import cnn_vs_torch

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
    cnn_vs_torch(title="LeNet on 28x28, one epoch", label="LeNet", unit="images", config=CONFIG, shape=SHAPE,
                 torch_model=torch_lenet, sizes=(60_000, 6_000), batch=BATCH, target=1.0,
                 repeats=5, quick_repeats=2, profile_whole_epoch=False)


if __name__ == "__main__":
    sys.exit(main())
