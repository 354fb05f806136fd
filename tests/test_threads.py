"""BLAS threads while training (``training.threads``, ``--threads``, ``Trainer(threads=...)``): the
count asked for is in force during every step, as the BLAS itself reports it, and the caller's count
comes back afterwards; ``auto`` follows the load it measures."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from backprop_cli.engine import threads as bt
from backprop_cli.engine.trainer import Callback, Interrupted, Trainer
from backprop_cli.nn import ClassNLLCriterion, Linear, LogSoftMax, Sequential
from backprop_cli.optim import SGD
from common import TINY, invoke

if bt.blas_thread_count() is None:
    pytest.skip("threadpoolctl finds no BLAS it can control under this numpy", allow_module_level=True)


class Spy(Callback):
    """The BLAS's thread count after every step."""

    def __init__(self):
        self.seen = []

    def on_batch_end(self, trainer, batch, loss, samples):
        self.seen.append(bt.blas_thread_count())


def fit(threads, callbacks=(), epochs=1):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    model = Sequential(Linear(4, 3, dtype=np.float32), LogSoftMax())
    trainer = Trainer(model, ClassNLLCriterion(), SGD(*model.parameters(), lr=0.1), batch_size=16,
                      threads=threads, callbacks=list(callbacks))
    trainer.fit(x, y, epochs=epochs)
    return trainer


@pytest.mark.parametrize("caller, asked", [(2, 1), (1, 2)])
def test_the_threads_asked_for_are_in_force_and_the_callers_come_back(caller, asked):
    spy = Spy()
    with threadpool_limits(caller, user_api="blas"):
        fit(asked, [spy], epochs=2)
        assert bt.blas_thread_count() == caller
    assert spy.seen == [asked] * 8


def test_none_leaves_the_blas_alone_and_an_interrupted_fit_restores_too():
    spy = Spy()
    with threadpool_limits(2, user_api="blas"):
        fit(None, [spy])
        assert spy.seen == [2] * 4

        class Stop(Callback):
            def on_batch_end(self, trainer, batch, loss, samples):
                trainer.stop_requested = "SIGINT"
        with pytest.raises(Interrupted):
            fit(1, [Stop()])
        assert bt.blas_thread_count() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "two"])
def test_a_bad_setting_is_refused(bad):
    with pytest.raises(ValueError, match="threads must be 'auto' or a positive integer"):
        fit(bad)


def samples(monkeypatch, others_now, busy_per_interval, own_per_interval=0.0, cpus=2):
    """``auto`` on ``cpus`` CPUs where ``others_now`` tasks of other processes are runnable when training
    starts, then the machine is busy ``busy_per_interval[i]`` CPU-seconds per second (this process
    ``own_per_interval``) in each later interval of one second."""
    monkeypatch.setattr(bt, "usable_cpus", lambda: list(range(cpus)))
    monkeypatch.setattr(bt, "_others_running", lambda: others_now)
    clock = iter(range(100))
    totals = iter(np.cumsum([0.0, *busy_per_interval]))
    own = iter(np.arange(len(busy_per_interval) + 1) * own_per_interval)
    monkeypatch.setattr(bt, "_cpu_sample", lambda _cpus: (float(next(clock)), float(next(totals)), float(next(own))))
    monkeypatch.setattr(bt.time, "perf_counter", lambda: 1e9)      # every tick is past the interval


def test_auto_uses_the_free_cores_and_follows_the_load(monkeypatch):
    """Quiet: every thread; one core kept busy by another process: one thread; quiet again: all."""
    samples(monkeypatch, others_now=0, busy_per_interval=[2.0, 2.0, 1.1, 2.0], own_per_interval=1.0)
    with threadpool_limits(2, user_api="blas"):
        with bt.BlasThreads("auto") as blas:
            chosen = [blas.current]
            for _ in range(4):
                blas.tick()
                chosen.append(blas.current)
        assert bt.blas_thread_count() == 2
    # busy 2.0 with own 1.0: others 1.0, free 1.0 -> 1; busy 1.1: others 0.1, free 1.9 -> 2
    assert chosen == [2, 1, 1, 2, 1]


def test_auto_starts_from_the_runnable_tasks_and_never_exceeds_the_blas_count(monkeypatch):
    samples(monkeypatch, others_now=3, busy_per_interval=[0.0], cpus=8)
    with threadpool_limits(2, user_api="blas"):
        with bt.BlasThreads("auto") as blas:
            assert blas.current == 2            # 8 CPUs, 3 busy: 5 free, but the BLAS was started with 2
            blas.tick()
            assert blas.current == 2
    samples(monkeypatch, others_now=2, busy_per_interval=[1.6])
    with bt.BlasThreads("auto") as blas:
        assert blas.current == 1                # 2 CPUs, both busy: still one thread
        blas.tick()
        assert blas.current == 1                # 0.4 free: one


def test_the_cli_flag_and_the_config_key_set_the_threads(iris_dir, monkeypatch):
    (iris_dir / "tiny.yaml").write_text(TINY)
    seen = []
    original = Trainer._train_step

    def spy(self, *args):
        seen.append(bt.blas_thread_count())
        return original(self, *args)
    monkeypatch.setattr(Trainer, "_train_step", spy)
    with threadpool_limits(2, user_api="blas"):
        assert invoke("train", "tiny.yaml", "-q", "--threads", "1").exit_code == 0
        assert set(seen) == {1}
        seen.clear()
        result = invoke("train", "tiny.yaml", "-q", "--force", "--set", "training.threads=2")
        assert result.exit_code == 0, result.output
        assert set(seen) == {2}
        assert bt.blas_thread_count() == 2


def test_bad_threads_are_one_line(iris_dir):
    (iris_dir / "tiny.yaml").write_text(TINY.replace("batch_size: 16}", "batch_size: 16, threads: 0}"))
    result = invoke("train", "tiny.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: tiny.yaml:15: training.threads: expected auto or a positive number "
                                     "of threads, got 0")
    result = invoke("train", "tiny.yaml", "--threads", "many")
    assert result.exit_code == 2 and "expected 'auto' or a positive number of threads, got 'many'" in result.stderr
