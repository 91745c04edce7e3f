"""Keeping freed memory: a freed batch-sized array is reused without page faults; a process's
peak memory is its own, not its parent's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, resource, sys
import torch
from geovision.io.memory import keep_freed_memory

applied = keep_freed_memory()
again = keep_freed_memory()
faults = []
for _ in range(16):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    batch = torch.ones(16 << 20, dtype=torch.float32)  # a 64 MiB batch tensor
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del batch
print(json.dumps({"applied": applied, "again": again, "faults": faults}))
"""

PAGES = (64 << 20) // 4096


def probe(**env: str) -> dict:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("GEOVISION_KEEP_FREED_MEMORY", "MALLOC_MMAP_THRESHOLD_",
                            "MALLOC_TRIM_THRESHOLD_")}
    done = subprocess.run([sys.executable, "-c", PROBE], env=environ | env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator setting")
def test_freed_batches_are_reused_without_page_faults():
    kept = probe()
    assert kept["applied"] and kept["again"]
    # The first batches grow the heap (glibc takes several to find a freed block that fits
    # an aligned request: 6 to 8 here); from then on every batch reuses freed memory.
    assert kept["faults"][0] > PAGES // 2
    assert max(kept["faults"][-4:]) < PAGES // 20
    plain = probe(GEOVISION_KEEP_FREED_MEMORY="0")
    assert not plain["applied"]
    assert min(plain["faults"]) > PAGES // 2  # every batch page-faults anew


def test_the_allocator_settings_of_the_user_win():
    assert not probe(MALLOC_TRIM_THRESHOLD_="1000000")["applied"]


PEAK_PROBE = """
import numpy as np
from geovision.io.memory import peak_rss_bytes
before = peak_rss_bytes()
np.ones(256 << 20, dtype=np.uint8)  # 256 MiB touched and freed
print(before, peak_rss_bytes())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_a_child_reports_its_own_peak_memory_not_its_parents():
    import numpy as np

    large = np.ones(1 << 30, dtype=np.uint8)  # the parent's peak: at least 1 GiB
    done = subprocess.run([sys.executable, "-c", PEAK_PROBE], check=True,
                          capture_output=True, text=True)
    del large
    before, after = map(int, done.stdout.split())
    assert before < 512 << 20  # the interpreter and numpy, not the parent's 1 GiB
    assert after - before >= 250 << 20  # the child's own 256 MiB
