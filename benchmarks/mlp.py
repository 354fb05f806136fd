"""One epoch of a 784-256-256-10 MLP: backprop's engine vs a bare numpy loop, the GEMM roofline, PyTorch.

    python benchmarks/mlp.py            # 60,000 samples, 9 interleaved repeats
    python benchmarks/mlp.py --quick    # 6,000 samples, 2 repeats: a smoke test

The model is built from a config dict the way ``backprop train`` builds it (``experiment.build`` and
``make_trainer``: Linear-ReLU-Linear-ReLU-Linear-LogSoftMax, ClassNLLCriterion, SGD with momentum
0.9, batch 128, float32, shuffled) and trained by ``Trainer.fit`` for one epoch. The contenders
start from the same weights and visit the samples in the same order:

* the bare loop: the same math written out by hand in numpy (gather, forward, loss and its gradient,
  backward, momentum update), plainly and without needless copies;
* the GEMM roofline: only the epoch's matrix multiplies, on random operands of the same shapes and
  layouts, into preallocated outputs: the time numpy's BLAS needs for the math that must be done;
* PyTorch CPU, idiomatic (``zero_grad``, ``backward``, ``step``, ``loss.item()``), with as many
  threads as numpy's BLAS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

from _common import (LOADED_TARGET, Row, backprop_contender, backprop_trainer, blas_threads, busy_processes,
                     import_torch, initial_weights, interleaved, load_header, load_note, machine_header, median,
                     parser, print_table, ratio_row, shuffle_order, spread, synthetic_classes, thread_contenders,
                     thread_row, torch_contender, weight_drift)

import numpy as np

SIZES = (784, 256, 256, 10)
BATCH, LR, MOMENTUM, SEED = 128, 0.01, 0.9, 0

CONFIG = {
    "name": "bench_mlp", "seed": SEED, "data": {"train": "synthetic.npz"},
    "model": [{"Linear": SIZES[1]}, "ReLU", {"Linear": SIZES[2]}, "ReLU", {"Linear": SIZES[3]}, "LogSoftMax"],
    "criterion": "ClassNLLCriterion",
    "optimizer": {"name": "sgd", "lr": LR, "momentum": MOMENTUM},
    "training": {"epochs": 1, "batch_size": BATCH, "shuffle": True, "dtype": "float32"},
}


# --------------------------------------------------------------------------- the bare numpy loop
def bare_numpy_epoch(x, y, params, velocity, *, batch_size=BATCH, lr=LR, momentum=MOMENTUM, seed=SEED) -> float:
    """One epoch of the same math by hand; returns the mean loss. ``params`` are updated in place."""
    W1, b1, W2, b2, W3, b3 = params
    n = len(x)
    perm = shuffle_order(seed, n)
    total = 0.0
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        rows = np.arange(len(idx))
        h1 = xb @ W1.T                                        # forward
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W2.T
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ W3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)                     # log-softmax
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        total -= float(z[rows, yb].sum())                     # NLL
        g3 = np.exp(z)                                        # dLoss/dlogits = (softmax - onehot) / N
        g3[rows, yb] -= 1
        g3 /= len(idx)
        g2 = g3 @ W3                                          # backward
        g2 *= h2 > 0
        g1 = g2 @ W2
        g1 *= h1 > 0
        grads = (g1.T @ xb, g1.sum(axis=0), g2.T @ h1, g2.sum(axis=0), g3.T @ h2, g3.sum(axis=0))
        for p, g, v in zip(params, grads, velocity):          # SGD with momentum
            v *= momentum
            v += g
            p -= lr * v
    return total / n


def bare_contender(x, y, weights):
    def prepare():
        params = [w.copy() for w in weights]
        velocity = [np.zeros_like(w) for w in weights]
        return lambda: bare_numpy_epoch(x, y, params, velocity)
    return prepare


# --------------------------------------------------------------------------- the GEMM roofline
def batch_sizes(n: int) -> list[int]:
    return [min(BATCH, n - start) for start in range(0, n, BATCH)]


def gemm_flops(n: int, input_grad: bool) -> float:
    """Multiply-add FLOPs (2 per MAC) of one epoch: per Linear, forward, grad weight and grad input;
    the first Linear's grad input (dLoss/d data) only when ``input_grad``."""
    per_sample = 0
    for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        per_sample += 2 * fan_in * fan_out * (3 if (i > 0 or input_grad) else 2)
    return float(per_sample) * n


def gemm_contender(n: int):
    """The epoch's matrix multiplies alone (no first-layer grad input), BLAS into preallocated outputs."""
    rng = np.random.default_rng(1)
    rand = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    W = [rand(o, i) for i, o in zip(SIZES[:-1], SIZES[1:])]
    plans = {}
    for m in set(batch_sizes(n)):
        acts = [rand(m, s) for s in SIZES]                   # layer inputs and outputs
        grads = [rand(m, s) for s in SIZES]                  # their gradients
        gw = [np.empty_like(w) for w in W]
        plans[m] = (acts, grads, gw)

    def step(m):
        acts, grads, gw = plans[m]
        for i, w in enumerate(W):                            # forward: a[i+1] = a[i] @ W.T
            np.matmul(acts[i], w.T, out=acts[i + 1])
        for i in range(len(W) - 1, -1, -1):                  # backward
            np.matmul(grads[i + 1].T, acts[i], out=gw[i])    # grad weight = g.T @ a
            if i > 0:
                np.matmul(grads[i + 1], W[i], out=grads[i])  # grad input = g @ W

    def prepare():
        sizes = batch_sizes(n)
        return lambda: [step(m) for m in sizes]
    return prepare


# --------------------------------------------------------------------------- PyTorch
def torch_mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]), nn.ReLU(),
                         nn.Linear(SIZES[2], SIZES[3]), nn.LogSoftmax(dim=1))


def torch_contender_for(torch, x, y, weights):
    return torch_contender(torch, lambda: torch_mlp(torch), weights, x, y, batch=BATCH, lr=LR,
                           momentum=MOMENTUM, seed=SEED, loss="nll_loss")


# --------------------------------------------------------------------------- main
def memory_child(n: int) -> None:
    """Train one epoch with backprop only and print the peak resident set (``--memory-child``)."""
    x, y = synthetic_classes(n, (SIZES[0],))
    backprop_trainer(CONFIG, x.shape[1:]).fit(x, y, epochs=1)
    print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "dataset_bytes": x.nbytes}))


def check_same_math(x, y, weights) -> float:
    """Largest weight difference after one epoch, backprop vs the bare loop (they must agree)."""
    trainer = backprop_trainer(CONFIG, x.shape[1:])
    trainer.fit(x, y, epochs=1)
    params = [w.copy() for w in weights]
    bare_numpy_epoch(x, y, params, [np.zeros_like(w) for w in weights])
    return max(float(np.max(np.abs(p - q))) for p, q in zip(trainer.model.parameters()[0], params))


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=9)
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)  # for startup_io.py
    args = p.parse_args()
    n = 6_000 if args.quick else 60_000
    if args.memory_child:
        return memory_child(n)
    repeats = 2 if args.quick else args.repeats
    threads = blas_threads()
    torch, why_not = import_torch(threads, args.no_torch)
    x, y = synthetic_classes(n, (SIZES[0],))
    weights = initial_weights(CONFIG, x.shape[1:])
    sub = x[:2048], y[:2048]
    drift = check_same_math(*sub, weights)
    part = n // 4
    contenders = {"backprop": backprop_contender(CONFIG, x, y), **thread_contenders(CONFIG, x[:part], y[:part])}
    if not args.load:           # the bare loop and the GEMMs run with the BLAS's own threads: a quiet figure
        contenders.update({"bare numpy": bare_contender(x, y, weights), "GEMMs only": gemm_contender(n)})
    if torch is not None:
        contenders["PyTorch"] = torch_contender_for(torch, x, y, weights)
        torch_drift = weight_drift(CONFIG, torch_contender_for(torch, *sub, weights), *sub)
    with busy_processes(args.load):
        t = interleaved(contenders, repeats)

    ours, rows, notes = t["backprop"], [], []
    if not args.load:
        gemm = t["GEMMs only"]
        flops, flops_all = gemm_flops(n, input_grad=False), gemm_flops(n, input_grad=True)
        throughput = flops / median(gemm)
        fraction = median([g / o for g, o in zip(gemm, ours)])
        rows = [ratio_row("MLP epoch vs bare numpy loop", ours, t["bare numpy"], 1.10),
                Row("MLP epoch vs GEMM roofline", f"{fraction:.2f} of roofline", ">= 0.60", fraction >= 0.60)]
        notes = [f"roofline: {flops / 1e9:.1f} GFLOP of GEMMs at {throughput / 1e9:.1f} GFLOP/s (numpy float32, "
                 f"the epoch's own shapes) = {flops / throughput:.3f} s; counting the first layer's grad input "
                 f"too (which nobody computes: it is dLoss/d data), {flops_all / 1e9:.1f} GFLOP, it would read "
                 f"{fraction * flops_all / flops:.2f}"]
    target = LOADED_TARGET if args.load else 0.90
    if torch is not None:
        rows.append(ratio_row("MLP epoch vs PyTorch CPU", ours, t["PyTorch"], target))
    else:
        rows.append(Row("MLP epoch vs PyTorch CPU", "skipped", f"<= {target:.2f}x", None))
    rows += [thread_row(t), Row("MLP epoch, backprop", f"{median(ours):.3f} s ({n / median(ours):,.0f} samples/s)")]
    notes = [machine_header(threads, torch), load_header(args.load),
             f"{n:,} samples, batch {BATCH}, {len(batch_sizes(n))} steps, median of {repeats} interleaved repeats; "
             f"the threads rows on {part:,} samples",
             "seconds per epoch, median (min-max): " + "; ".join(f"{k} {spread(v)}" for k, v in t.items()),
             *notes,
             f"same math: after one epoch on 2,048 samples, backprop's weights differ from the bare loop's by "
             f"at most {drift:.1e}" + (f" and from PyTorch's by at most {torch_drift:.1e}" if torch else "")]
    if why_not:
        notes.append(f"PyTorch row: {why_not}")
    notes.append(load_note())
    print_table("MLP 784-256-256-10, one epoch", rows, notes)


if __name__ == "__main__":
    sys.exit(main())
