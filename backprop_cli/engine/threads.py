"""BLAS threads while training: a fixed count, or ``auto``, which follows the load on the machine.

Why it matters: every GEMM ends at a barrier where OpenBLAS's threads wait for each other, so one
thread that the kernel has descheduled holds up the rest. Measured on a 2-core machine (numpy 2.4,
OpenBLAS 0.3.31), one epoch of the 784-256-256-10 MLP on 20,000 samples:

================================  =========  ==========
beside it                         1 thread   2 threads
================================  =========  ==========
nothing (quiet)                   0.41 s     0.27 s
one busy process                  0.42 s     0.87-1.3 s
two busy processes                0.59-0.73  1.6-15 s
================================  =========  ==========

So a thread more than the free cores costs far more than a thread less gains. ``auto`` therefore
uses the cores this process may run on minus the cores other processes kept busy, rounded down
unless nearly free (``floor(free + 0.25)``), at least 1 and at most the BLAS's own count when
training began (``OPENBLAS_NUM_THREADS``, or the cores). It decides from the kernel's count of
runnable tasks when training starts, then every :data:`INTERVAL` seconds from the CPU time the
machine spent (``/proc/stat``, the CPUs this process may use) less what this process spent
(``os.times``). Where ``/proc`` is missing, ``auto`` keeps the BLAS's own count.

The threads are set with threadpoolctl, on the BLAS numpy loaded; the caller's count is restored
when training ends. Where threadpoolctl finds no BLAS it can control, nothing is changed.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

AUTO = "auto"
INTERVAL = 0.5          # seconds between two decisions of ``auto``
_STAT = Path("/proc/stat")


def check_setting(threads) -> int | str | None:
    """``threads`` when it is None (leave the BLAS alone), ``"auto"`` or a positive int; else ValueError."""
    if threads is None or threads == AUTO:
        return threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be 'auto' or a positive integer, got {threads!r}")
    return threads


def _blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (numpy's among them)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    return list(ThreadpoolController().select(user_api="blas").lib_controllers)


def blas_thread_count() -> int | None:
    """The threads numpy's BLAS uses now, as the library reports it (None when it cannot be asked)."""
    controllers = _blas_controllers()
    return controllers[0].num_threads if controllers else None


def usable_cpus() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:              # not Linux
        return list(range(os.cpu_count() or 1))


class BlasThreads:
    """A context manager: the BLAS runs with ``setting`` threads inside the block (``"auto"``: see the
    module; an int: that many; None: as it was), and with the caller's count again afterwards.
    Call :meth:`tick` between two steps: ``auto`` re-decides there when :data:`INTERVAL` has passed."""

    def __init__(self, setting: int | str | None) -> None:
        self.setting = check_setting(setting)
        self._controllers: list = []
        self._callers: list[int] = []
        self._sample: tuple[float, float, float] | None = None     # (wall, machine busy, own busy) seconds
        self.current: int | None = None

    def __enter__(self) -> BlasThreads:
        if self.setting is None:
            return self
        self._controllers = _blas_controllers()
        self._callers = [c.num_threads for c in self._controllers]
        if not self._controllers:
            return self
        self.limit = max(self._callers)
        self._cpus = usable_cpus()
        if self.setting == AUTO:
            self._sample = _cpu_sample(self._cpus)
            busy = _others_running()
            self._set(self.limit if busy is None else self._choose(len(self._cpus) - busy))
        else:
            self._set(self.setting)
        return self

    def __exit__(self, *exc) -> None:
        for controller, count in zip(self._controllers, self._callers):
            controller.set_num_threads(count)
        self._controllers, self._sample, self.current = [], None, None

    def tick(self) -> None:
        """Between two steps: under ``auto``, once :data:`INTERVAL` has passed since the last decision,
        count the cores other processes kept busy since, and set the threads for the free ones."""
        if self._sample is None or time.perf_counter() - self._sample[0] < INTERVAL:
            return
        sample = _cpu_sample(self._cpus)
        if sample is None:
            self._sample = None
            return
        wall, machine, own = (now - then for now, then in zip(sample, self._sample))
        self._sample = sample
        self._set(self._choose(len(self._cpus) - max(0.0, machine - own) / wall))

    def _choose(self, free: float) -> int:
        return max(1, min(self.limit, math.floor(free + 0.25)))

    def _set(self, count: int) -> None:
        if count != self.current:
            for controller in self._controllers:
                controller.set_num_threads(count)
            self.current = count


def _cpu_sample(cpus: list[int]) -> tuple[float, float, float] | None:
    """``(wall clock, seconds the CPUs in ``cpus`` were busy since boot, seconds this process ran)``,
    or None without ``/proc/stat``. Busy is everything but idle and iowait (steal counts: another
    guest had the core)."""
    try:
        lines = _STAT.read_text().splitlines()
    except OSError:
        return None
    wanted, busy = {f"cpu{i}" for i in cpus}, 0
    for line in lines:
        fields = line.split()
        if fields and fields[0] in wanted:
            ticks = [int(v) for v in fields[1:9]]           # user nice system idle iowait irq softirq steal
            busy += sum(ticks) - ticks[3] - ticks[4]
    own = os.times()
    return time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


def _others_running() -> int | None:
    """Tasks runnable now on the machine, less this process's own (``procs_running``), or None."""
    try:
        running = next(int(line.split()[1]) for line in _STAT.read_text().splitlines()
                       if line.startswith("procs_running"))
    except (OSError, StopIteration, ValueError):
        return None
    own = 0
    for task in Path("/proc/self/task").glob("*/stat"):
        try:
            own += task.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            pass
    return max(0, running - own)
