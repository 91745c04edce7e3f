"""Write pixi.toml: the same environment as `make setup` (Python 3.11 from conda-forge, the
project with its dev extra from PyPI, every package at its constraints.txt version), for users
who manage environments with pixi. Run `make pixi.toml` after changing constraints.txt; a test
fails while the two disagree.

    python docker/pixi_manifest.py > pixi.toml
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# The project's environment for pixi (https://pixi.sh): `pixi run test`, `pixi run demo`.
# Generated from constraints.txt by docker/pixi_manifest.py (make pixi.toml): do not edit.
[workspace]
name = "geovision"
channels = ["conda-forge"]
platforms = ["linux-64", "linux-aarch64", "osx-arm64"]

[dependencies]
python = "3.11.*"
openssh = "*"  # sshd for the SSH tests, ssh for geovision remote

[pypi-dependencies]
geovision = { path = ".", editable = true, extras = ["dev"] }

[tasks]
demo = { cmd = "python -m geovision_assets.demo", env = { DAGSTER_HOME = ".dagster_home" } }
test = "pytest"
lint = "ruff check ."
bench = "python -m bench"
ui = "dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000"

[pypi-options.dependency-overrides]
"""


def pins(constraints: Path) -> list[tuple[str, str]]:
    result = []
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            result.append((name.strip(), version.strip()))
    return result


def manifest(constraints: Path = ROOT / "constraints.txt") -> str:
    skip = {"geovision"}
    lines = [f'"{name}" = "=={version}"' for name, version in pins(constraints)
             if name not in skip]
    return HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(manifest())
