"""The one artifact root every library function and asset writes under."""

from __future__ import annotations

from pathlib import Path

from geovision.layout import DEFAULT_HOME_NAME, HOME_ENV, geovision_home

__all__ = ["DEFAULT_HOME_NAME", "HOME_ENV", "geovision_home", "datasets_root", "dataset_root",
           "artifacts_root"]

def datasets_root(home: Path | None = None) -> Path:
    """Where raw datasets live: `<home>/datasets/<name>`."""
    return (home or geovision_home()) / "datasets"


def dataset_root(name: str, home: Path | None = None) -> Path:
    return datasets_root(home) / name


def artifacts_root(kind: str, home: Path | None = None) -> Path:
    """Where derived artifacts of one kind live, e.g. `<home>/shards`, `<home>/statistics`."""
    return (home or geovision_home()) / kind
