"""Metadata every materialization carries: provenance, plots and tables."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import MetadataValue

from geovision.provenance import git_commit, package_versions


def provenance(**extra: Any) -> dict[str, MetadataValue]:
    """Package versions, the code's commit, and whatever else makes this result reproducible
    (seeds, configs, upstream data versions)."""
    values: dict[str, MetadataValue] = {
        "packages": MetadataValue.json(package_versions()),
        "git_commit": MetadataValue.text(git_commit() or "unknown"),
    }
    for key, value in extra.items():
        values[key] = (MetadataValue.json(value) if isinstance(value, dict | list)
                       else MetadataValue.text(str(value)))
    return values


def png(path: Path, title: str = "") -> MetadataValue:
    """A PNG shown inline in the Dagster UI."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return MetadataValue.md(f"{title}\n\n![{Path(path).name}](data:image/png;base64,{data})")


def table(df: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(df.to_markdown())


def path(value: Path | str) -> MetadataValue:
    return MetadataValue.path(str(value))

