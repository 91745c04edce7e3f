"""The one artifact root every library function and asset writes under."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "GEOVISION_HOME"
DEFAULT_HOME_NAME = ".geovision_home"


def geovision_home(override: str | os.PathLike | None = None) -> Path:
    """Return the artifact root: `override`, else `$GEOVISION_HOME`, else `./.geovision_home`.

    The folder is created if needed and returned as an absolute path, so artifacts recorded in
    metadata stay valid whichever directory a later process runs from.
    """
    raw = override if override is not None else os.environ.get(HOME_ENV)
    root = Path(raw) if raw else Path.cwd() / DEFAULT_HOME_NAME
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def datasets_root(home: Path | None = None) -> Path:
    """Where raw datasets live: `<home>/datasets/<name>`."""
    return (home or geovision_home()) / "datasets"


def dataset_root(name: str, home: Path | None = None) -> Path:
    return datasets_root(home) / name


def artifacts_root(kind: str, home: Path | None = None) -> Path:
    """Where derived artifacts of one kind live, e.g. `<home>/shards`, `<home>/statistics`."""
    return (home or geovision_home()) / kind
