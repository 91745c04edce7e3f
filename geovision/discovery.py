"""Registries fill themselves by importing every module of their package once: a new model or
workflow is one new file, registered where it is defined."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def import_package_modules(package: str, folder: str | Path, skip: set[str]) -> None:
    """Import each module of `package` (whose files are in `folder`) but those in `skip` and
    private ones (leading underscore), so that their registration decorators run."""
    for info in pkgutil.iter_modules([str(folder)]):
        if info.name not in skip and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
