"""`geovision ...`: the library's functions from a shell (no Dagster needed)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

# Help texts are plain text: "project/name[/timestamp]" must not be read as rich markup.
PLAIN = {"no_args_is_help": True, "rich_markup_mode": None}
app = typer.Typer(help="Reproducible geospatial deep learning.", add_completion=False,
                  pretty_exceptions_enable=False, **PLAIN)
datasets_app = typer.Typer(help="Registered datasets.", **PLAIN)
app.add_typer(datasets_app, name="datasets")
features_app = typer.Typer(help="Vision-language region features.", **PLAIN)
app.add_typer(features_app, name="features")
runs_app = typer.Typer(help="Training runs under the artifact root.", **PLAIN)
app.add_typer(runs_app, name="runs")
from geovision.cli_remote import remote_app  # noqa: E402  (its own module: SSH commands)

app.add_typer(remote_app, name="remote")
from geovision.cli_satellite import satellite_app  # noqa: E402  (daily satellite scenes)

app.add_typer(satellite_app, name="satellite")

class Precision(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class DetectorSize(StrEnum):
    full = "full"
    tiny = "tiny"


HOME_OPTION = typer.Option(None, "--home", help="artifact root (default: $GEOVISION_HOME or "
                                                "./.geovision_home)")
NO_BUILD_OPTION = typer.Option(False, "--no-build", help="use only what is already under the "
                               "artifact root; stop naming what is missing")


def _build_upstream(dataset: str, home: Path | None, shards_for: str | None = None,
                    statistics: bool = False) -> None:
    """Acquire, index, compute statistics (when asked) and write the shards `dataset` is
    missing, as the assets would."""
    from geovision.layout import SOURCE_FORMATS
    from geovision.pipeline import build_upstream

    build_upstream(dataset, home, shards=SOURCE_FORMATS.get(shards_for or "files"),
                   statistics=statistics, echo=lambda line: typer.echo(line, err=True))


@datasets_app.command("list")
def datasets_list() -> None:
    """Print every registered dataset with its task and classes."""
    from geovision.data.registry import get_dataset, list_datasets

    for name in list_datasets():
        cls = get_dataset(name)
        typer.echo(f"{name:28s} {cls.TASK:15s} {len(cls.BANDS)} bands  "
                   f"{len(cls.CLASS_NAMES)} classes" + ("  time series" if cls.TEMPORAL else ""))


@datasets_app.command("prepare")
def datasets_prepare(name: str, home: Path | None = HOME_OPTION) -> None:
    """Download (or generate) a dataset and write its index, as the first two assets do."""
    from geovision.data.acquire import acquire_dataset, build_index

    raw = acquire_dataset(name, home)
    index = build_index(name, home)
    counts = index.df["split"].value_counts().to_dict()
    typer.echo(f"{raw.num_files} files under {raw.root}; index {index.path} {counts}")


@app.command("workflows")
def workflows_command() -> None:
    """Print every registered workflow: the tasks it serves and the settings its
    `workflow_settings:` section takes, with their defaults."""
    from geovision.experiment.workflows import get_workflow, list_workflows

    for name in list_workflows():
        workflow = get_workflow(name)
        typer.echo(f"{name:12s} {', '.join(workflow.tasks):40s} {workflow.description}")
        for key, field in (workflow.settings.model_fields if workflow.settings else {}).items():
            default = field.get_default(call_default_factory=True)
            typer.echo(f"    workflow_settings.{key} = {default!r}: {field.description}")


@app.command("train")
def train_command(
    config: Path = typer.Argument(..., help="experiment YAML (or a recipe with --dataset)"),
    dataset: str | None = typer.Option(None, "--dataset", help="dataset for a recipe file"),
    resume: bool = typer.Option(False, "--resume", help="continue the newest run of this "
                                "config from its last checkpoint"),
    no_build: bool = NO_BUILD_OPTION,
    home: Path | None = HOME_OPTION,
) -> None:
    """Train an experiment config into a new run directory and test its chosen checkpoint.

    The dataset's raw files, index and (for a config reading shards) shards are built first
    where missing, unless --no-build."""
    from geovision.data.registry import get_dataset
    from geovision.experiment.config import load_config
    from geovision.experiment.runtime.train import train
    from geovision.pipeline import load_statistics_summary

    experiment = load_config(config, dataset_name=dataset)
    # A dataset without published statistics is standardised with the data's own, as the
    # trained_model asset standardises every dataset.
    unpublished = get_dataset(experiment.dataset_name).MEANS is None and not resume
    if not (no_build or resume):
        _build_upstream(experiment.dataset_name, home, experiment.data.source,
                        statistics=unpublished)
    normalisation = None
    if unpublished:
        summary = load_statistics_summary(experiment.dataset_name, home)
        normalisation = {"means": summary["train_means"], "std_devs": summary["train_std_devs"]}
    result = train(experiment, home=home, resume=resume, normalisation=normalisation)
    typer.echo(f"run directory: {result.run_dir}")
    for key, value in result.test_metrics.items():
        typer.echo(f"{key}: {value:.4f}")


@app.command("test")
def test_command(
    run: str = typer.Argument(..., help="run folder, or project/name[/timestamp]"),
    split: str = typer.Option("test", "--split", help="test, val or train"),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="default: the one the "
                                           "run chose (best, or SWA average)"),
    no_build: bool = NO_BUILD_OPTION,
    home: Path | None = HOME_OPTION,
) -> None:
    """Evaluate a run on a split: metrics and a confusion matrix, saved in the run folder.

    A run made from the artifact root's own dataset gets its raw files (and shards) built
    again where missing, unless --no-build."""
    from geovision.experiment.runfolders.folder import resolve_run
    from geovision.experiment.runfolders.inputs import load_run
    from geovision.experiment.runtime.evaluate import evaluate_run
    from geovision.layout import Layout

    run_dir = resolve_run(run, home)
    if not no_build:
        inputs = load_run(run_dir)
        name = inputs.config.dataset_name
        if inputs.root == Layout(home).dataset(name):
            _build_upstream(name, home, inputs.config.data.source)
    evaluation = evaluate_run(run_dir, checkpoint=checkpoint, split=split)
    typer.echo(f"{evaluation.num_samples} samples, checkpoint {evaluation.checkpoint.name}")
    for key, value in evaluation.metrics.items():
        typer.echo(f"{key}: {value:.4f}")
    if evaluation.confusion is not None:
        typer.echo(f"{evaluation.confusion_caption}:")
        typer.echo(evaluation.confusion.to_string())
        typer.echo(f"saved: {evaluation.confusion_csv} and {evaluation.confusion_png}")


@app.command("predict")
def predict_command(
    run: str = typer.Argument(..., help="run folder (or project/name[/timestamp]), or a "
                              "models/<dataset>/<recipe>.json record"),
    scene: Path = typer.Argument(..., help="scene GeoTIFF (band names as descriptions, "
                                 "wavelength_nm tags for hyperspectral scenes)"),
    out: Path = typer.Option(..., "--out", help="folder for the prediction COGs, quicklook "
                             "and prediction.json"),
    chip_size: int = typer.Option(512, "--chip-size"),
    overlap: int = typer.Option(32, "--overlap"),
    batch_size: int = typer.Option(16, "--batch-size"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    home: Path | None = HOME_OPTION,
) -> None:
    """Apply a trained model to a scene of any size: class probabilities and labels as
    georeferenced cloud-optimised GeoTIFFs, a quicklook and class areas."""
    from geovision.inference import predict_scene

    model = Path(run)
    if not (model.is_file() and model.suffix == ".json"):
        from geovision.experiment.runfolders.folder import resolve_run

        model = resolve_run(run, home)
    result = predict_scene(model, scene, out, chip_size=chip_size, overlap=overlap,
                           batch_size=batch_size, device=device)
    typer.echo(f"{result.num_chips} chips; bands " + ", ".join(
        f"{b['model_band']}<-{b['scene_band']}" for b in result.bands))
    for name, area in result.class_areas_km2.items():
        typer.echo(f"{name}: {area:.4f} km2")
    for path in result.files.values():
        typer.echo(str(path))


@app.command("view")
def view_command(
    run: str = typer.Argument(..., help="run folder, or project/name[/timestamp]"),
    out: Path | None = typer.Option(None, "--out", help="folder for the PNGs (default: the "
                                    "run's plots/)"),
    home: Path | None = HOME_OPTION,
) -> None:
    """Draw a run's plots: loss, each metric, learning rate, confusion matrices."""
    from geovision.experiment.plots import plot_run
    from geovision.experiment.runfolders.folder import resolve_run

    run_dir = resolve_run(run, home)
    paths = plot_run(run_dir, out)
    if not any(p.name.endswith("_confusion_matrix.png") for p in paths):
        typer.echo(f"(no confusion matrix yet: run `geovision test {run}` first)")
    for path in paths:
        typer.echo(str(path))


@runs_app.command("list")
def runs_list(
    project: str | None = typer.Option(None, "--project", help="only this project"),
    home: Path | None = HOME_OPTION,
) -> None:
    """Every run: state, epochs done, dataset, best val loss, test metrics."""
    from geovision.experiment.runfolders.folder import list_runs, runs_root
    from geovision.experiment.runfolders.table import list_table

    runs = list_runs(home, project)
    if not runs:
        typer.echo(f"no runs under {runs_root(home)}" + (f" for project {project}"
                                                          if project else ""))
        return
    typer.echo(list_table(runs).to_string(index=False, na_rep="-", float_format="{:.4f}".format))


@app.command("compare")
def compare_command(
    metric: str = typer.Argument(..., help="a metrics.csv column (val_accuracy, train_loss, "
                                 "...) or a test metric (test_accuracy)"),
    runs: list[str] = typer.Argument(..., help="run folders or project/name[/timestamp]"),
    out: Path | None = typer.Option(None, "--out", help="PNG of the metric per epoch"),
    home: Path | None = HOME_OPTION,
) -> None:
    """One metric across runs: last and best value, and the epoch of the best."""
    from geovision.experiment.plots import plot_comparison
    from geovision.experiment.runfolders.folder import resolve_run
    from geovision.experiment.runfolders.table import compare_runs

    comparison = compare_runs(metric, [resolve_run(run, home) for run in runs])
    typer.echo(comparison.table.to_string(index=False, na_rep="-",
                                          float_format="{:.4f}".format))
    if out is not None and comparison.curves:
        typer.echo(f"plot: {plot_comparison(comparison.curves, metric, out)}")


@app.command("live")
def live_command(
    run: str = typer.Argument(..., help="run folder, or project/name[/timestamp]"),
    interval: float = typer.Option(5.0, "--interval", min=0.1, help="seconds between checks"),
    out: Path | None = typer.Option(None, "--out", help="folder for the PNGs (default: the "
                                    "run's plots/)"),
    timeout: float | None = typer.Option(None, "--timeout", help="stop after this many "
                                         "seconds (default: when the run ends)"),
    home: Path | None = HOME_OPTION,
) -> None:
    """Redraw a run's curves whenever its metrics file changes, until the run ends."""
    from geovision.experiment.runfolders.folder import resolve_run
    from geovision.experiment.runfolders.live import watch

    report = watch(resolve_run(run, home), out, interval=interval, timeout=timeout,
                   echo=typer.echo)
    typer.echo(f"{report.redraws} redraws; run {report.final_state}")


@app.command("extract")
def extract_command(
    images: Path | None = typer.Option(None, "--images", help="folder of images (any band "
                                       "count)"),
    out: Path | None = typer.Option(None, "--out", help="folder for the Arrow dataset "
                                    "(with --dataset: the artifact root's features folder)"),
    dataset: str | None = typer.Option(None, "--dataset", help="a registered dataset instead "
                                       "of --images: its raw files and index are built first "
                                       "where missing"),
    num_objects: int = typer.Option(36, "--num-objects", min=1, help="regions per image"),
    weights: Path | None = typer.Option(None, "--weights", help="detectron2 pickle or "
                                        "pytorch_model.bin; random weights when left out"),
    precision: Precision = typer.Option(Precision.fp32, "--precision"),
    batch_size: int = typer.Option(1, "--batch-size", min=1),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N"),
    size: DetectorSize = typer.Option(DetectorSize.full, "--detector",
                                      help="full ResNet-101 detector or the tiny test one"),
    no_build: bool = NO_BUILD_OPTION,
    home: Path | None = HOME_OPTION,
) -> None:
    """Extract LXMERT / VisualBERT region features for a folder of images or a dataset."""
    from geovision.errors import ConfigError
    from geovision.features.config import DetectorConfig
    from geovision.features.extract import extract_region_features

    if (images is None) == (dataset is None):
        raise ConfigError("give either --images FOLDER (with --out) or --dataset NAME")
    config = DetectorConfig() if size is DetectorSize.full else DetectorConfig.tiny()
    if dataset is not None:
        from geovision.layout import Layout
        from geovision.pipeline import dataset_image_paths

        if not no_build:
            _build_upstream(dataset, home)
        images_list, bands = dataset_image_paths(dataset, home)
        out = out or Layout(home).features(dataset)
        result = extract_region_features(images_list, out, num_objects=num_objects,
                                         weights=weights, precision=precision.value,
                                         batch_size=batch_size, device=device, config=config,
                                         bands=bands)
    else:
        if out is None:
            raise ConfigError("--images needs --out, the folder for the Arrow dataset")
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


def _valid_options(command: object) -> list[str]:
    params = getattr(command, "params", [])
    return sorted(opt for param in params for opt in param.opts if opt.startswith("-"))


def _usage_message(exc: typer.TyperException) -> str | None:
    """For an unknown option or command: click's message plus what would have been valid
    (None for other errors, which click reports itself)."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return None
    message = exc.format_message()
    if getattr(exc, "option_name", None):
        valid = _valid_options(ctx.command) + ["--help"]
        return f"{message}\nValid options for `{ctx.command_path}`: {', '.join(valid)}"
    if message.startswith("No such command") and hasattr(ctx.command, "list_commands"):
        commands = ", ".join(sorted(ctx.command.list_commands(ctx)))
        return f"{message}\nCommands of `{ctx.command_path}`: {commands}"
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point: an error the user can fix (a GeovisionError) prints as one message naming
    the problem and exits 2; any other exception is a bug and keeps its traceback."""
    from geovision.errors import GeovisionError

    try:
        code = app(args=argv, prog_name="geovision", standalone_mode=False)
        if isinstance(code, int) and code:  # click returns typer.Exit's code here
            raise SystemExit(code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(1) from None
    except GeovisionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except typer.TyperException as exc:  # usage errors from the command-line parser
        message = _usage_message(exc)
        if message is None:
            exc.show()
        else:
            typer.echo(f"error: {message}", err=True)
        raise SystemExit(getattr(exc, "exit_code", 2)) from None


if __name__ == "__main__":
    main()
