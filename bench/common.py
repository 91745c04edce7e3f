"""The one output format every benchmark uses, so results can be collected by a script."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def bench_line(name: str, value: float, unit: str, baseline_name: str, baseline_value: float,
               goal: float) -> str:
    """Print and return `BENCH <name> <value> <unit> baseline=<b> ratio=<value/b> goal=<g>`.

    `value` and `baseline_value` must be oriented so that higher is better (rates, or the
    baseline's time over ours with `baseline_value` = 1)."""
    ratio = value / baseline_value if baseline_value else float("inf")
    line = (f"BENCH {name} {value:.6g} {unit} baseline={baseline_name} ratio={ratio:.4g} "
            f"goal={goal:g}")
    print(line, flush=True)
    return line


def median_line(name: str, values: Sequence[float], unit: str, baseline_name: str,
                baselines: Sequence[float], goal: float) -> str:
    """`bench_line` for contenders timed in rounds (one value and one baseline per round,
    higher is better): the median value, and as ratio the median of the ratios within a
    round, which a machine drifting between rounds moves on both sides alike."""
    ratio = statistics.median(v / b for v, b in zip(values, baselines, strict=True))
    value = statistics.median(values)
    return bench_line(name, value, unit, baseline_name, value / ratio, goal)


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` wall-clock timings of `fn()`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)

