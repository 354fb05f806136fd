"""The memory policy of the ``backprop`` process: keep freed memory for reuse.

A training step allocates and frees the same large temporaries every batch (a LeNet step at batch
128: arrays of 0.5-2.5 MB, a few MB in all). glibc's malloc serves blocks that large with ``mmap``,
or trims the top of its heap once that much is free, so every step hands the memory back to the
kernel and takes it again: about 500 page faults and zero-fills per LeNet step, 5-10% of its time
on this project's machines. Raising the two thresholds makes malloc keep the blocks for reuse. The
process's peak memory does not change (it already held that much at once); the memory is simply
not returned until exit. This is the process's policy, so the CLI sets it, never the library.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1          # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20    # glibc's largest; blocks above it (a whole dataset) still get their own mapping
TRIM_THRESHOLD = 256 * 2**20   # free memory kept at the heap's top before any is returned


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to reuse freed blocks instead of returning them to the kernel.

    Returns True when both settings took, False (having changed nothing) elsewhere: another C
    library, or no ``mallopt``.
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):      # glibc answers; musl, macOS and Windows do not
            return False
    except (AttributeError, ValueError, OSError):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
