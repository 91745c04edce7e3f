"""Keeping freed memory in the process, so that each new batch tensor reuses it.

glibc maps every allocation above its mmap threshold (at most 32 MiB) afresh and returns it
to the system when freed. A training batch of 64 float32 images of 4 x 256 x 256 is 64 MiB:
every batch then page-faults through memory the kernel must zero first, which on some
machines costs several times the reading and conversion (bench/loaders.py gives the figures).
Raising the mmap and trim
thresholds lets glibc serve such allocations from memory the process already holds; the
price is that the process keeps up to `limit_bytes` of freed memory instead of returning it.

Training and evaluation opt in (`fit_run`, `evaluate_run`); set GEOVISION_KEEP_FREED_MEMORY=0
to leave the allocator alone, or glibc's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
variables, which this then respects. Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

OPT_OUT_ENV = "GEOVISION_KEEP_FREED_MEMORY"
GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
DEFAULT_LIMIT = 1 << 30

_applied: int | None = None


def keep_freed_memory(limit_bytes: int = DEFAULT_LIMIT) -> bool:
    """Serve allocations below `limit_bytes` from the heap and keep up to `limit_bytes` of
    freed memory for reuse. True if the setting is in force in this process (set now or
    earlier); False where it does not apply or the user configured the allocator."""
    global _applied
    if _applied is not None:
        return True
    if os.environ.get(OPT_OUT_ENV, "1") == "0" or any(name in os.environ for name in GLIBC_ENV):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None or not hasattr(libc, "gnu_get_libc_version"):
        return False  # not glibc: its parameters mean something else, if anything
    if not (mallopt(M_MMAP_THRESHOLD, limit_bytes) and mallopt(M_TRIM_THRESHOLD, limit_bytes)):
        return False
    _applied = limit_bytes
    return True


def peak_rss_bytes() -> int:
    """This process's peak resident memory. Linux: VmHWM of /proc/self/status, which starts
    anew at exec; `ru_maxrss` does not (the kernel keeps the high-water mark of the process
    image exec replaced, so a child of a large parent reports the parent's peak). Elsewhere
    ru_maxrss (bytes on macOS, KiB on the other Unixes)."""
    import resource
    import sys

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
