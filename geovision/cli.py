"""`geovision ...`: the library's functions from a shell (no Dagster needed)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

app = typer.Typer(help="Reproducible geospatial deep learning.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
datasets_app = typer.Typer(help="Registered datasets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
features_app = typer.Typer(help="Vision-language region features.", no_args_is_help=True)
app.add_typer(features_app, name="features")

class Precision(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class DetectorSize(StrEnum):
    full = "full"
    tiny = "tiny"


HOME_OPTION = typer.Option(None, "--home", help="artifact root (default: $GEOVISION_HOME or "
                                                "./.geovision_home)")


@datasets_app.command("list")
def datasets_list() -> None:
    """Print every registered dataset with its task and classes."""
    from geovision.data.registry import get_dataset, list_datasets

    for name in list_datasets():
        cls = get_dataset(name)
        typer.echo(f"{name:28s} {cls.TASK:15s} {len(cls.BANDS)} bands  "
                   f"{len(cls.CLASS_NAMES)} classes")


@datasets_app.command("prepare")
def datasets_prepare(name: str, home: Path | None = HOME_OPTION) -> None:
    """Download (or generate) a dataset and write its index, as the first two assets do."""
    from geovision.data.acquire import acquire_dataset, build_index

    raw = acquire_dataset(name, home)
    index = build_index(name, home)
    counts = index.df["split"].value_counts().to_dict()
    typer.echo(f"{raw.num_files} files under {raw.root}; index {index.path} {counts}")


@app.command("train")
def train_command(
    config: Path = typer.Argument(..., help="experiment YAML (or a recipe with --dataset)"),
    dataset: str | None = typer.Option(None, "--dataset", help="dataset for a recipe file"),
    home: Path | None = HOME_OPTION,
) -> None:
    """Train an experiment config into a new run directory and test its best checkpoint."""
    from geovision.experiment.config import load_config
    from geovision.experiment.train import train

    experiment = load_config(config, dataset_name=dataset)
    result = train(experiment, home=home)
    typer.echo(f"run directory: {result.run_dir}")
    for key, value in result.test_metrics.items():
        typer.echo(f"{key}: {value:.4f}")


@app.command("extract")
def extract_command(
    images: Path = typer.Option(..., "--images", help="folder of images (any band count)"),
    out: Path = typer.Option(..., "--out", help="folder for the Arrow dataset"),
    num_objects: int = typer.Option(36, "--num-objects", min=1, help="regions per image"),
    weights: Path | None = typer.Option(None, "--weights", help="detectron2 pickle or "
                                        "pytorch_model.bin; random weights when left out"),
    precision: Precision = typer.Option(Precision.fp32, "--precision"),
    batch_size: int = typer.Option(1, "--batch-size", min=1),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N"),
    size: DetectorSize = typer.Option(DetectorSize.full, "--detector",
                                      help="full ResNet-101 detector or the tiny test one"),
) -> None:
    """Extract LXMERT / VisualBERT region features for a folder of images."""
    from geovision.features.config import DetectorConfig
    from geovision.features.extract import extract_region_features

    config = DetectorConfig() if size is DetectorSize.full else DetectorConfig.tiny()
    result = extract_region_features(images, out, num_objects=num_objects, weights=weights,
                                     precision=precision.value, batch_size=batch_size,
                                     device=device, config=config)
    if result.random_weights:
        typer.echo("warning: no --weights given: features come from RANDOM weights", err=True)
    typer.echo(f"{result.num_images} images -> {result.path} ({result.num_objects} x "
               f"{result.feature_dim} per image, {result.images_per_second:.2f} images/s)")


@features_app.command("view")
def features_view(
    features: Path = typer.Argument(..., help="Arrow dataset folder written by extract"),
    img_id: str = typer.Argument(..., help="the image's id (its file stem)"),
    image: Path = typer.Argument(..., help="the image file"),
    out: Path = typer.Option(..., "--out", help="PNG to write"),
    top: int = typer.Option(10, "--top", min=1, help="how many regions to draw"),
) -> None:
    """Draw an image's most confident regions with their labels."""
    from geovision.features.view import draw_regions

    typer.echo(draw_regions(features, img_id, image, out, top=top))


def main() -> None:
    """Entry point: user errors print one message naming the problem, not a traceback."""
    from geovision.data.image_io import ImageReadError
    from geovision.data.registry import UnknownDatasetError
    from geovision.experiment.config import ConfigError
    from geovision.features.weights import WeightsError

    try:
        app()
    except (ConfigError, UnknownDatasetError, ImageReadError, FileNotFoundError,
            WeightsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
