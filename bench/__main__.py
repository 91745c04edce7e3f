"""Run one benchmark (`python -m bench NAME`) or all of them (`python -m bench`)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

NOT_BENCHMARKS = {"common"}


def available() -> list[str]:
    folder = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)])
                  if not m.name.startswith("_") and m.name not in NOT_BENCHMARKS)


def run(name: str) -> None:
    if name not in available():
        raise SystemExit(f"Unknown benchmark {name!r}; available: {', '.join(available())}")
    print(f"== bench {name}", flush=True)
    importlib.import_module(f"bench.{name}").main()


def main(argv: list[str]) -> int:
    """One benchmark in this process; several each in a fresh process of its own, so that
    none inherits the heap, threads and caches that the ones before it left (run after the
    others in one process, the HDF5 loader gave 4,467 samples/s; alone, 7,569)."""
    if len(argv) == 1:
        run(argv[0])
        return 0
    failed = []
    for name in argv or available():
        if name not in available():
            raise SystemExit(f"Unknown benchmark {name!r}; available: {', '.join(available())}")
        if subprocess.run([sys.executable, "-m", "bench", name], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
