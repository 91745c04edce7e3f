"""Where every artifact lives under the artifact root: the one place that builds those paths.

Every library function, asset, CLI command and benchmark asks a `Layout` rather than joining
folder names itself, so the tree below is true by construction:

    <home>/datasets/<name>/                      raw files
    <home>/manifests/<name>.sha256.json          sha256 of every raw file
    <home>/index/<name>.parquet                  the df
    <home>/statistics/<name>/                    per_image.parquet, summary.json
    <home>/eda/<name>/                           plots and summary.md
    <home>/shards/<name>/{hdf,mds}/              one file / MDS folder per split
    <home>/features/<name>/                      region features (Arrow)
    <home>/runs/<project>/<name>/<stamp>/        a training run and its evaluations
    <home>/models/<dataset>/<recipe>.json        the partition's latest trained model
    <home>/attribution/<dataset>/<recipe>/       attribution maps and report
    <home>/weights/<model>/                      ported weights and their manifest
    <home>/satellite/scenes/<provider>/<key>/    a scene's files, COG, quicklook, manifest
    <home>/satellite/inbox/<provider>/           delivered zips and links.txt
    <home>/satellite/quota.sqlite                the daily quota ledger
    <home>/predictions/<recipe>/<provider>/<key>/ a scene's prediction COG and quicklook
    <home>/remote/<host>/logs/                   logs pulled from a remote host's commands
    <home>/cache/                                scratch that can be rebuilt (MDS caches)

With a remote artifact root (`GEOVISION_ARTIFACT_ROOT=s3://bucket/prefix`) this tree is the
local cache: each artifact above is published below the prefix at the same relative path
(geovision.io.store); cache/ never is.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from geovision.errors import ConfigError

HOME_ENV = "GEOVISION_HOME"
DEFAULT_HOME_NAME = ".geovision_home"
SHARD_FORMATS = ("hdf", "mds")
# Where an experiment reads its samples (the config's `data.source`), and the shard format
# each source reads ("files" reads the image files, no shards).
DataSource = Literal["files", "hdf", "streaming"]
SOURCES: tuple[str, ...] = get_args(DataSource)
SOURCE_FORMATS = {"hdf": "hdf", "streaming": "mds"}


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


def _safe_part(value: str, what: str) -> str:
    """A path component taken from a name a user gave: no separators, no '..'."""
    text = str(value)
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise ConfigError(f"{what} {value!r} cannot be used as a folder name: use a plain name "
                          "without '/', '\\' or '..'")
    return text


@dataclass(frozen=True)
class Layout:
    """The artifact tree under one root; `Layout()` resolves the root like `geovision_home`."""

    home: Path

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        object.__setattr__(self, "home", geovision_home(home))

    @classmethod
    def of_run(cls, run_dir: str | os.PathLike) -> Layout:
        """The layout a run folder (`runs/<project>/<name>/<stamp>`) belongs to."""
        run_dir = Path(run_dir).resolve()
        if run_dir.parents[2].name != "runs":
            raise ConfigError(f"{run_dir} is not a run folder (<home>/runs/<project>/<name>/"
                              "<stamp>)")
        return cls(run_dir.parents[3])

    # ----- datasets ----------------------------------------------------------------------
    def datasets(self) -> Path:
        return self.home / "datasets"

    def dataset(self, name: str) -> Path:
        return self.datasets() / _safe_part(name, "dataset name")

    def manifest(self, name: str) -> Path:
        return self.home / "manifests" / f"{_safe_part(name, 'dataset name')}.sha256.json"

    def index(self, name: str) -> Path:
        return self.home / "index" / f"{_safe_part(name, 'dataset name')}.parquet"

    def statistics(self, name: str) -> Path:
        return self.home / "statistics" / _safe_part(name, "dataset name")

    def statistics_table(self, name: str) -> Path:
        """Per-image per-band statistics joined to the df."""
        return self.statistics(name) / "per_image.parquet"

    def statistics_summary(self, name: str) -> Path:
        """Per-split aggregates and the train split's means and standard deviations."""
        return self.statistics(name) / "summary.json"

    def eda(self, name: str) -> Path:
        return self.home / "eda" / _safe_part(name, "dataset name")

    def shards(self, name: str, format: str) -> Path:
        if format not in SHARD_FORMATS:
            raise ConfigError(f"shard format {format!r} is not one of {', '.join(SHARD_FORMATS)}")
        return self.home / "shards" / _safe_part(name, "dataset name") / format

    def shards_for_source(self, name: str, source: str) -> Path | None:
        """The shard folder an experiment with `data.source == source` reads; None for files."""
        if source == "files":
            return None
        if source not in SOURCE_FORMATS:
            raise ConfigError(f"data source {source!r} is not one of {', '.join(SOURCES)}")
        return self.shards(name, SOURCE_FORMATS[source])

    def features(self, name: str) -> Path:
        return self.home / "features" / _safe_part(name, "dataset name")

    # ----- training and analysis ---------------------------------------------------------
    def runs(self, project: str | None = None, name: str | None = None) -> Path:
        root = self.home / "runs"
        if project is None:
            return root
        root = root / _safe_part(project, "project")
        return root if name is None else root / _safe_part(name, "run name")

    def model_record(self, dataset: str, recipe: str) -> Path:
        return (self.home / "models" / _safe_part(dataset, "dataset name")
                / f"{_safe_part(recipe, 'recipe')}.json")

    def attribution(self, dataset: str, recipe: str) -> Path:
        return (self.home / "attribution" / _safe_part(dataset, "dataset name")
                / _safe_part(recipe, "recipe"))

    def weights(self, model: str) -> Path:
        return self.home / "weights" / _safe_part(model, "model name")

    # ----- satellite and inference -------------------------------------------------------
    def satellite(self) -> Path:
        return self.home / "satellite"

    def scenes(self, provider: str) -> Path:
        return self.satellite() / "scenes" / _safe_part(provider, "provider")

    def scene(self, provider: str, key: str) -> Path:
        return self.scenes(provider) / _safe_part(key, "scene key")

    def inbox(self, provider: str) -> Path:
        return self.satellite() / "inbox" / _safe_part(provider, "provider")

    def quota_ledger(self) -> Path:
        return self.satellite() / "quota.sqlite"

    def predictions(self, recipe: str, provider: str, key: str) -> Path:
        return (self.home / "predictions" / _safe_part(recipe, "recipe")
                / _safe_part(provider, "provider") / _safe_part(key, "scene key"))

    def remote_logs(self, host: str) -> Path:
        """Logs of the commands run on `host` (geovision remote), pulled here."""
        return self.home / "remote" / _safe_part(host, "host") / "logs"

    # ----- scratch -----------------------------------------------------------------------
    def cache(self, *parts: str) -> Path:
        path = self.home / "cache"
        for part in parts:
            path = path / _safe_part(part, "cache folder")
        return path

    def mds_cache(self, name: str, split: str | None = None, *, run: str | None = None) -> Path:
        """Local cache of MosaicML streaming for one dataset's MDS shards, one folder a split;
        `run` gives one orchestrator run a cache of its own (two runs never share one)."""
        path = self.cache("mds", name) if run is None else self.cache("mds", name, run)
        return path if split is None else path / _safe_part(split, "split")

    def run_streaming_cache(self, run_dir: str | os.PathLike, split: str) -> Path:
        """A run's own local cache of remote MDS shards, one folder a split (MosaicML streaming
        refuses a cache folder that another live dataset uses)."""
        run = Path(run_dir).resolve().relative_to(self.runs())
        return self.cache("streaming-runs", "-".join(run.parts), split)

    def streaming_cache(self, location: str) -> Path:
        """A cache folder of its own for each remote MDS location (so for each split)."""
        digest = hashlib.sha256(location.encode()).hexdigest()[:16]
        name = location.rstrip("/").rsplit("/", 1)[-1]
        return self.cache("streaming", f"{name}-{digest}")
