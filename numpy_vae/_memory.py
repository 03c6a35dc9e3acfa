"""The process's memory allocator: stop glibc handing freed arrays back to the OS after every step.

A training step creates and frees dozens of temporary arrays of 0.1-1.3 MB.
By default glibc returns such blocks to the operating system when they are
freed (they sit above its mmap and trim thresholds), so the next step pays
again for fresh zeroed pages: on our 2-core machines that page-fault cost
made the Adam update five times slower than its arithmetic (7 ms instead of
1.3 ms per step for the 784-400-20 model).  Raising the two thresholds keeps
freed memory in the process for reuse.  The cost: the process's resident
size does not shrink back after a peak.

This is glibc-specific and does nothing elsewhere (macOS, Windows, musl).
Set NUMPY_VAE_MALLOC_TUNING=0 to leave the allocator alone.

It changes the whole process, so the code that owns the process asks for
it: the ``numpy-vae`` command and ``Trainer`` (and the benchmarks), never
merely building a backend or a model.
"""

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("NUMPY_VAE_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1   # 32 MiB, glibc's maximum
    ok = mallopt(_M_TRIM_THRESHOLD, 512 * 1024 * 1024) == 1 and ok
    _done = ok
    return ok
