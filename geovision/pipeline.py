"""The pipeline's steps as plain functions, one per asset of the Dagster graph, each named for
what it does: compute_statistics, write_eda_report, write_hdf_shards / write_streaming_shards,
extract_features, train_model, evaluate_model, explain_model, predict_scene_with_recipe
(acquire_dataset and build_index, the first two, are in geovision.data.acquire).
`build_upstream` runs the ones a later step needs and finds missing, as the CLI does before
training.

Each step reads what earlier steps wrote under the artifact root, writes its own artifact
there, and returns what a caller needs to report it. The Dagster assets, the CLI, notebooks and
the benchmarks all call these same functions.

Where each artifact lives is `geovision.layout.Layout`; nothing here joins folder names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geovision.data.acquire import load_index
from geovision.data.registry import get_dataset
from geovision.errors import ConfigError, DataError, MissingDataError
from geovision.experiment.model_record import ModelRecord
from geovision.hashing import hash_dataframe, sha256_bytes, sha256_file
from geovision.io.atomic import atomic_file
from geovision.layout import Layout

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from geovision.analysis.attribution.report import AttributionReport
    from geovision.analysis.eda import EdaReport
    from geovision.data.base import GeoDataset
    from geovision.data.shards.common import ShardWriteResult
    from geovision.experiment.config import ExperimentConfig
    from geovision.experiment.runtime.distributed import Launcher
    from geovision.experiment.runtime.evaluate import Evaluation
    from geovision.features.extract import ExtractionResult
    from geovision.inference.scene import ScenePrediction

SHARD_SPLITS = ("train", "val", "test")
VERIFY_SAMPLES = 16


# ----- statistics -------------------------------------------------------------------------


@dataclass
class StatisticsArtifact:
    table_path: Path
    summary_path: Path
    num_images: int
    index_rows: int
    skipped: list[tuple[str, str]]
    means: tuple[float, ...]
    std_devs: tuple[float, ...]
    problems: list[str]
    data_version: str
    index_df_hash: str


def compute_statistics(name: str, home: Path | None = None, *, progress: bool = True,
                       on_error: str = "raise") -> StatisticsArtifact:
    """Exact per-image statistics joined to the df, plus per-split aggregates and the train
    split's MEANS / STD_DEVS in summary.json."""
    from geovision.data.statistics import (
        check_statistics,
        compute_image_statistics,
        means_and_std_devs,
        split_statistics,
    )

    layout = Layout(home)
    home = layout.home
    dataset_cls = get_dataset(name)
    df = load_index(name, home)
    stats = compute_image_statistics(dataset_cls, layout.dataset(name), df,
                                     progress=progress, on_error=on_error)
    table, bands = stats.table, dataset_cls.BANDS
    table_path, summary_path = layout.statistics_table(name), layout.statistics_summary(name)
    with atomic_file(table_path) as tmp:
        table.to_parquet(tmp, index=True)
    splits = {}
    for split in ("train", "val", "test", "all"):
        agg = split_statistics(table, split, bands)
        splits[split] = {"count": agg.count.tolist(), "mean": agg.mean.tolist(),
                         "std": agg.std.tolist(), "min": agg.min.tolist(),
                         "max": agg.max.tolist()}
    means, stds = means_and_std_devs(table, bands, split="train", scale=dataset_cls.SCALE)
    summary = {"bands": list(bands), "train_means": list(means), "train_std_devs": list(stds),
               "splits": splits, "index_df_hash": hash_dataframe(df),
               "skipped": [list(s) for s in stats.skipped]}
    with atomic_file(summary_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    return StatisticsArtifact(
        table_path=table_path, summary_path=summary_path,
        num_images=len(table), index_rows=len(df), skipped=stats.skipped, means=means,
        std_devs=stds, problems=check_statistics(table, bands, df),
        data_version=hash_dataframe(table), index_df_hash=summary["index_df_hash"])


def load_statistics_summary(name: str, home: Path | None = None) -> dict[str, Any]:
    path = Layout(home).statistics_summary(name)
    if not path.is_file():
        raise MissingDataError(f"No statistics for dataset {name!r} at {path}: materialize "
                                "image_statistics for it first (or call compute_statistics).")
    return json.loads(path.read_text())


def write_eda_report(name: str, home: Path | None = None) -> EdaReport:
    """Plots and a markdown summary of the dataset from its statistics table."""
    from geovision.analysis.eda import eda_report

    layout = Layout(home)
    table = pd.read_parquet(layout.statistics_table(name))
    return eda_report(get_dataset(name), table, layout.eda(name))


# ----- shards -----------------------------------------------------------------------------


@dataclass
class ShardsArtifact:
    path: Path
    results: dict[str, ShardWriteResult]
    records_compared: int
    mismatches: int
    count_problems: list[str]
    data_version: str
    index_df_hash: str


def write_hdf_shards(name: str, home: Path | None = None, *, compression: str | None = None,
                     progress: bool = True) -> ShardsArtifact:
    """One HDF5 file per split, then a sample of records read back and compared."""
    from geovision.data.shards.hdf import HdfDataset, split_file, write_hdf_splits

    layout = Layout(home)
    home, out = layout.home, layout.shards(name, "hdf")
    return _write_and_verify(
        name, home, out,
        lambda cls, root, df: write_hdf_splits(cls, root, out, df=df, splits=SHARD_SPLITS,
                                               compression=compression, progress=progress),
        lambda split, source: HdfDataset(split_file(out, split), source.sample_transform))


def write_streaming_shards(name: str, home: Path | None = None, *, remote: str | None = None,
                           progress: bool = True,
                           cache_dir: Path | None = None) -> ShardsArtifact:
    """One MosaicML streaming folder per split (optionally uploaded to `remote`), then a sample
    of records read back through StreamingDataset and compared."""
    from geovision.data.shards.streaming import StreamingGeoDataset, write_streaming_splits

    layout = Layout(home)
    home, out = layout.home, layout.shards(name, "mds")
    cache = cache_dir or layout.mds_cache(name)
    return _write_and_verify(
        name, home, out,
        lambda cls, root, df: write_streaming_splits(cls, root, out, df=df,
                                                     splits=SHARD_SPLITS, remote=remote,
                                                     progress=progress),
        lambda split, source: StreamingGeoDataset(str(out / split), source.sample_transform,
                                                  cache_dir=cache / split))


def write_shards(name: str, format: str, home: Path | None = None, *,
                 progress: bool = True) -> ShardsArtifact:
    """The shards of one format ("hdf" or "mds"), as `Layout.shards` names them."""
    if format == "hdf":
        return write_hdf_shards(name, home, progress=progress)
    if format == "mds":
        return write_streaming_shards(name, home, progress=progress)
    raise DataError(f"shard format {format!r} is not one of hdf, mds")


def _write_and_verify(name: str, home: Path, out: Path,
                      write: Callable[[type[GeoDataset], Path, pd.DataFrame],
                                      dict[str, ShardWriteResult]],
                      open_reader: Callable[[str, GeoDataset], Dataset]) -> ShardsArtifact:
    from geovision.data.shards.verify import compare_with_source

    dataset_cls, df = get_dataset(name), load_index(name, home)
    root = Layout(home).dataset(name)
    results = write(dataset_cls, root, df)
    compared = mismatched = 0
    expected = df["split"].value_counts()
    count_problems = [f"{split}: {r.count} records, index has {int(expected.get(split, 0))}"
                      for split, r in sorted(results.items())
                      if r.count != int(expected.get(split, 0))]
    for split in SHARD_SPLITS:
        source = dataset_cls(root, df=df, split=split, check_files=False)  # the write read all
        indices = np.unique(np.linspace(0, len(source) - 1, VERIFY_SAMPLES).astype(int))
        mismatched += len(compare_with_source(open_reader(split, source), source,
                                              indices.tolist()))
        compared += len(indices)
    version = sha256_bytes("".join(f"{s}:{r.sha256};" for s, r in sorted(results.items()))
                           .encode())
    return ShardsArtifact(path=out, results=results, records_compared=compared,
                          mismatches=mismatched, count_problems=count_problems,
                          data_version=version, index_df_hash=hash_dataframe(df))


# ----- region features -------------------------------------------------------------------


def dataset_image_paths(name: str, home: Path | None = None
                        ) -> tuple[list[Path], tuple[int, int, int] | None]:
    """Every image of the dataset's index, and the positions of its red, green and blue bands
    (None when it has no bands of those names)."""
    layout = Layout(home)
    dataset_cls, df = get_dataset(name), load_index(name, layout.home)
    names = [band.lower() for band in dataset_cls.BANDS]
    rgb = tuple(names.index(c) for c in ("red", "green", "blue")) if {
        "red", "green", "blue"} <= set(names) else None
    root = layout.dataset(name)
    return [root / p for p in df["image_path"]], rgb


@dataclass
class FeaturesArtifact:
    extraction: ExtractionResult
    problems: list[str]
    index_df_hash: str


def extract_features(name: str, home: Path | None = None, *, weights: Path | None = None,
                     full_size: bool = False, num_objects: int = 36,
                     progress: bool = True) -> FeaturesArtifact:
    """LXMERT-style region features of every image in the dataset's index, as an Arrow dataset
    in `<home>/features/<name>/`, checked for shapes and ranges. Without `weights` the detector
    has seeded random weights, and the dataset says so."""
    from geovision.features.arrow_io import check_region_dataset
    from geovision.features.config import DetectorConfig
    from geovision.features.extract import extract_region_features

    layout = Layout(home)
    df = load_index(name, layout.home)
    config = DetectorConfig() if full_size else DetectorConfig.tiny()
    images, rgb = dataset_image_paths(name, layout.home)
    result = extract_region_features(images, layout.features(name), weights=weights,
                                     num_objects=num_objects, config=config, progress=progress,
                                     bands=rgb)
    problems = check_region_dataset(result.path)
    if (result.num_objects, result.feature_dim) != (num_objects, config.feature_dim):
        problems.append(f"features are ({result.num_objects}, {result.feature_dim}) per image, "
                        f"not the promised ({num_objects}, {config.feature_dim}).")
    return FeaturesArtifact(extraction=result, problems=problems,
                            index_df_hash=hash_dataframe(df))


# ----- training and analysis --------------------------------------------------------------


@dataclass
class ModelArtifact:
    record_path: Path
    record: ModelRecord
    plots: list[Path]
    config: ExperimentConfig
    upstream: dict[str, str] = field(default_factory=dict)


def load_model_record(dataset: str, recipe: str, home: Path | None = None) -> ModelRecord:
    path = Layout(home).model_record(dataset, recipe)
    if not path.is_file():
        raise MissingDataError(f"No trained model for dataset={dataset} recipe={recipe} "
                                f"({path}): materialize trained_model for it first.")
    return ModelRecord.from_json(path.read_text(), path)


def train_model(dataset: str, recipe_path: Path, home: Path | None = None, *,
                progress: bool = True, launcher: Launcher | None = None,
                shards: Path | str | None = None) -> ModelArtifact:
    """Train the recipe on the dataset's index, normalised with the train split's exact
    statistics and read from the shards the recipe names; evaluate the chosen checkpoint;
    record it as the (dataset, recipe) model. `launcher` runs the torchrun command of a
    multi-device recipe (default: a subprocess). `shards` overrides where the shards are read
    (default: the local folder of the recipe's source); an s3:// MDS prefix is streamed."""
    from geovision.experiment.config import load_config
    from geovision.experiment.runtime.train import train

    layout = Layout(home)
    home = layout.home
    recipe_path = Path(recipe_path)
    config = load_config(recipe_path, dataset_name=dataset)
    df = load_index(dataset, home)
    summary = load_statistics_summary(dataset, home)
    means, stds = summary["train_means"], summary["train_std_devs"]
    if shards is None:
        shards = layout.shards_for_source(dataset, config.data.source)
    upstream = {"index_df_hash": hash_dataframe(df),
                "statistics_sha256": sha256_file(layout.statistics_summary(dataset)),
                "recipe_sha256": sha256_file(recipe_path)}
    result = train(config, home=home, root=layout.dataset(dataset), df=df,
                   normalisation={"means": means, "std_devs": stds}, shards_dir=shards,
                   progress=progress, provenance={"upstream": upstream}, launcher=launcher)
    record = ModelRecord(
        dataset=dataset, recipe=recipe_path.stem, run_dir=result.run_dir,
        checkpoint=result.checkpoint, epochs=result.epochs, config_hash=config.config_hash(),
        workflow=config.workflow, devices=config.trainer.devices, means=means, std_devs=stds,
        test_metrics=result.test_metrics, chance_accuracy=result.chance_accuracy,
        checkpoint_sha256=sha256_file(result.checkpoint))
    path = layout.model_record(dataset, recipe_path.stem)
    with atomic_file(path) as tmp:
        tmp.write_text(record.to_json())
    return ModelArtifact(record_path=path, record=record, plots=result.plots, config=config,
                         upstream=upstream)


@dataclass
class EvaluationArtifact:
    evaluation: Evaluation
    record: ModelRecord
    data_version: str


def evaluate_model(dataset: str, recipe: str, home: Path | None = None, *,
                   split: str = "test", progress: bool = True) -> EvaluationArtifact:
    """Metrics and a confusion matrix of the recorded (dataset, recipe) model on `split`,
    written into its run directory (evaluation/ and plots/)."""
    from geovision.experiment.runtime.evaluate import evaluate_run

    record = load_model_record(dataset, recipe, home)
    evaluation = evaluate_run(record.run_dir, checkpoint=record.checkpoint,
                              split=split, progress=progress)
    content = json.dumps(evaluation.metrics, sort_keys=True)
    if evaluation.confusion is not None:
        content += evaluation.confusion.to_csv()
    return EvaluationArtifact(evaluation=evaluation, record=record,
                              data_version=sha256_bytes(content.encode()))


def explain_model(dataset: str, recipe: str, home: Path | None = None, *,
                  num_images: int = 4, progress: bool = True) -> AttributionReport:
    """The six-method attribution report of the recorded (dataset, recipe) model on the
    first test images: maps, faithfulness and randomisation scores, a markdown summary."""
    from geovision.analysis.attribution.report import attribution_report
    from geovision.experiment.workflows import load_module

    layout = Layout(home)
    record = load_model_record(dataset, recipe, layout.home)
    dataset_cls = get_dataset(dataset)
    if dataset_cls.TEMPORAL:
        raise ConfigError(f"{dataset} is a time series dataset: the attribution methods "
                          "explain models of single images. Skip attribution_report for it.")
    test_set = dataset_cls(layout.dataset(dataset), df=load_index(dataset, layout.home),
                           split="test", image_transform=dataset_cls.standardiser(
                               record.means, record.std_devs))
    module = load_module(record.checkpoint)
    return attribution_report(module.model, test_set,
                              layout.attribution(dataset, recipe),
                              num_images=num_images, progress=progress)


# ----- building what a step needs ---------------------------------------------------------


def raw_dataset_is_complete(name: str, home: Path | None = None) -> bool:
    """Whether the raw files were acquired and every file the manifest lists is still there
    (hashing every file again is the raw_dataset asset's job, not a quick check's)."""
    layout = Layout(home)
    manifest = layout.manifest(name)
    if not manifest.is_file():
        return False
    root = layout.dataset(name)
    return all((root / relative).is_file() for relative in json.loads(manifest.read_text()))


def statistics_fit_index(name: str, home: Path | None = None) -> bool:
    """Whether the statistics summary exists and was computed from the current index."""
    layout = Layout(home)
    path = layout.statistics_summary(name)
    return path.is_file() and json.loads(path.read_text()).get("index_df_hash") == \
        hash_dataframe(load_index(name, layout.home))


def shards_fit_index(name: str, format: str, home: Path | None = None) -> bool:
    """Whether every split's shard of `format` exists and was written from the current index."""
    from geovision.data.shards.hdf import HdfDataset, split_file
    from geovision.data.shards.streaming import ATTRIBUTES_FILE, INDEX_FILE

    layout = Layout(home)
    folder = layout.shards(name, format)
    expected = hash_dataframe(load_index(name, layout.home))
    for split in SHARD_SPLITS:
        if format == "hdf":
            path = split_file(folder, split)
            if not path.is_file() or HdfDataset(path, None).attrs.get("df_hash") != expected:
                return False
        else:
            attributes = folder / split / ATTRIBUTES_FILE
            if not (folder / split / INDEX_FILE).is_file() or not attributes.is_file() or \
                    json.loads(attributes.read_text()).get("df_hash") != expected:
                return False
    return True


def build_upstream(name: str, home: Path | None = None, *, shards: str | None = None,
                   statistics: bool = False, progress: bool = True,
                   echo: Callable[[str], Any] = print) -> list[str]:
    """Run the steps dataset `name` is missing before a later step can use it: acquire the raw
    files, build the index, then (when asked) compute statistics and write the shards of
    format `shards` ("hdf" or "mds"). A step whose artifact is there and fits is skipped; the
    labels of the steps run are returned. A manual-download dataset stops with its message
    naming the files to fetch."""
    from geovision.data.acquire import acquire_dataset, build_index

    layout = Layout(home)
    home = layout.home
    ran: list[str] = []

    def step(label: str, run: Callable[[], Any]) -> None:
        echo(f"{name}: {label} ...")
        run()
        ran.append(label)

    if not raw_dataset_is_complete(name, home):
        step("acquire the raw dataset", lambda: acquire_dataset(name, home))
    if not layout.index(name).is_file():
        step("build the index", lambda: build_index(name, home))
    if statistics and not statistics_fit_index(name, home):
        step("compute statistics", lambda: compute_statistics(name, home, progress=progress))
    if shards is not None and not shards_fit_index(name, shards, home):
        step(f"write {shards} shards", lambda: write_shards(name, shards, home,
                                                            progress=progress))
    return ran


# ----- scene inference --------------------------------------------------------------------


def scene_path(scene: str, home: Path | None = None) -> Path:
    """The analysis-ready GeoTIFF of a `<provider>:<scene key>` partition. A `generated:`
    scene (the demo's, when no provider is configured) is generated on first use."""
    from geovision.inference.generated import write_generated_scene

    provider, sep, key = scene.partition(":")
    if not sep or not provider or not key:
        raise ConfigError(f"scene {scene!r}: name it <provider>:<scene key>, e.g. "
                          "generated:demo.")
    path = Layout(home).scene(provider, key) / "scene.tif"
    if not path.is_file():
        if provider != "generated":
            raise MissingDataError(f"scene {scene} has no {path}: materialize satellite_scene "
                                   "for it first.")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_generated_scene(path, GENERATED_SCENE_SIZE, key=key)
    return path


GENERATED_SCENE_SIZE = 1024


def predict_scene_with_recipe(scene: str, recipe_path: Path, home: Path | None = None, *,
                              device: str = "cpu", progress: bool = True) -> ScenePrediction:
    """Apply the recipe's model (trained on the dataset its `inference` section names) to
    the scene; outputs under Layout.predictions(recipe, provider, key)."""
    from geovision.experiment.config import load_recipe
    from geovision.inference import predict_scene

    recipe_path = Path(recipe_path)
    config = load_recipe(recipe_path)
    if config.inference is None:
        raise ConfigError(f"recipe {recipe_path.stem} is not marked for inference: add an "
                          "`inference:` section with the dataset whose model to apply.")
    layout = Layout(home)
    record_path = layout.model_record(config.inference.dataset, recipe_path.stem)
    if not record_path.is_file():
        raise MissingDataError(f"no trained model for dataset={config.inference.dataset} "
                               f"recipe={recipe_path.stem}: materialize trained_model first.")
    provider, _, key = scene.partition(":")
    source = scene_path(scene, home)
    out = layout.predictions(recipe_path.stem, provider, key)
    inference = config.inference
    return predict_scene(record_path, source, out, chip_size=inference.chip_size,
                         overlap=inference.overlap, batch_size=inference.batch_size,
                         device=device, progress=progress)
