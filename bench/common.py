"""The one output format every benchmark uses, so results can be collected by a script."""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any


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


def contenders_in_rounds(names: Sequence[str], factory: Callable[..., Callable[[], Any]],
                         args: tuple, rounds: int) -> list[dict[str, Any]]:
    """Run each contender's work `rounds` times, in turns, and return per round
    {name: what its work returned}.

    `factory(name, *args)` (a module-level function) builds contender `name`'s work in a
    freshly spawned process of its own, kept for all its turns: contenders sharing a process
    inherit each other's heap and caches (a float64 loop's 2 MiB frees, a 1 GiB tensor), and
    the benchmarks run before them. The work runs once to warm up; then in each round every
    contender runs once, in an order that rotates, so a machine drifting between rounds moves
    all of them alike.
    """
    context = multiprocessing.get_context("spawn")
    connections, children = {}, []
    try:
        for name in names:
            connections[name], theirs = context.Pipe()
            child = context.Process(target=_serve, args=(factory, name, args, theirs))
            child.start()
            theirs.close()  # the child holds its end: a child that dies ends recv() with EOF
            children.append(child)
        for name in names:
            connections[name].recv()  # warmed up
        results = []
        for turn in range(rounds):
            result = {}
            for k in range(len(names)):
                name = names[(turn + k) % len(names)]
                connections[name].send(True)
                result[name] = connections[name].recv()
            results.append(result)
        for name in names:
            connections[name].send(False)
    finally:
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                child.terminate()
    failed = [child.exitcode for child in children if child.exitcode]
    if failed:
        raise RuntimeError(f"benchmark processes exited with {failed}")
    return results


def _serve(factory: Callable[..., Callable[[], Any]], name: str, args: tuple,
           connection: Connection) -> None:
    # A spawned process would spawn its pools and DataLoader workers too (it inherits the
    # start method); fork, as a user's process on Linux does.
    multiprocessing.set_start_method("fork", force=True)
    work = factory(name, *args)
    work()
    connection.send(None)
    while connection.recv():
        connection.send(work())
