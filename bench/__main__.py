"""Run one benchmark (`python -m bench NAME`) or all of them (`python -m bench`)."""

from __future__ import annotations

import importlib
import pkgutil
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
    for name in argv or available():
        run(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
