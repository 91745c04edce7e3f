"""What every artifact records so it can be reproduced: package versions and the code's commit."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("geovision", "torch", "torchvision", "lightning", "torchmetrics", "numpy", "pandas",
            "pyarrow", "h5py", "mosaicml-streaming", "rasterio", "captum", "transformers",
            "dagster")


@cache
def _package_versions() -> tuple[tuple[str, str], ...]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape results (read once per process)."""
    return dict(_package_versions())


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the checkout holding the code, with `+dirty` when it has local changes."""
    cwd = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
