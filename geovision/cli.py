"""`geovision ...`: the library's functions from a shell (no Dagster needed)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Reproducible geospatial deep learning.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
datasets_app = typer.Typer(help="Registered datasets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

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


def main() -> None:
    """Entry point: user errors print one message naming the problem, not a traceback."""
    from geovision.data.image_io import ImageReadError
    from geovision.data.registry import UnknownDatasetError
    from geovision.experiment.config import ConfigError

    try:
        app()
    except (ConfigError, UnknownDatasetError, ImageReadError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
