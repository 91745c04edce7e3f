"""Train and evaluate one experiment into its own run directory (or resume one).

The one entry point the CLI, the Dagster asset and notebooks share: prepare the run
directory, fit (in this process, or on several via torchrun), evaluate the chosen checkpoint
on the test split, draw the plots.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geovision.data.registry import get_dataset
from geovision.experiment.config import ConfigError, ExperimentConfig
from geovision.experiment.plots import plot_run
from geovision.experiment.pretrained import find_weights
from geovision.experiment.runfolders.folder import (
    METRICS_FILE,
    attach_log_file,
    detach_log_file,
    latest_run,
    log_file,
    read_metrics,
    runs_root,
    timestamp,
    write_status,
)
from geovision.experiment.runfolders.inputs import load_run, prepare_run
from geovision.experiment.runtime.data import split_frame
from geovision.experiment.runtime.distributed import Launcher, launch
from geovision.experiment.runtime.evaluate import Evaluation, evaluate_run
from geovision.experiment.runtime.fit import FitResult, fit_run, torch_flags_restored
from geovision.layout import Layout

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path  # the evaluated one: best by the monitor, or the SWA average
    best_checkpoint: Path
    last_checkpoint: Path
    metrics_csv: Path
    epochs: int
    test_metrics: dict[str, float] = field(default_factory=dict)
    chance_accuracy: float | None = None
    evaluation: Evaluation | None = None
    plots: list[Path] = field(default_factory=list)


def train(
    config: ExperimentConfig,
    *,
    home: Path | None = None,
    root: Path | None = None,
    df: pd.DataFrame | None = None,
    normalisation: dict[str, list[float]] | None = None,
    shards_dir: Path | None = None,
    provenance: dict | None = None,
    progress: bool = True,
    command: str = "train",
    resume: bool = False,
    launcher: Launcher | None = None,
) -> TrainResult:
    """Fit `config`, then evaluate the chosen checkpoint on the test split and plot the run.

    `root`/`df` default to the registered dataset under the artifact root and its default
    splits (the df the dataset_index asset writes), unless the config's `data.split` asks
    for others; `normalisation` ({"means", "std_devs"}) standardises with statistics the
    caller computed; `shards_dir` defaults to where the shard assets write (when the config
    reads shards); `provenance` is merged into hparams.yaml. With `resume`, the newest run
    of this very config continues from its last checkpoint (its recorded data and settings
    are used). With trainer.devices > 1 the fit runs under torchrun through `launcher`.
    """
    layout = Layout(home)
    home = layout.home
    if resume:
        run_dir = latest_run(config.project, config.name, config.config_hash(), home)
        if run_dir is None:
            raise ConfigError(f"No earlier run of {config.project}/{config.name} with this "
                              f"config (hash {config.config_hash()}) under {runs_root(home)}; "
                              "start one without --resume.")
        write_status(run_dir, "running")
        log_path = log_file(run_dir, config.project, command, timestamp())
    else:
        find_weights(config.model, home)  # weights that are missing fail before data is read
        dataset_cls = get_dataset(config.dataset_name)
        root = Path(root) if root else layout.dataset(config.dataset_name)
        df = split_frame(config, dataset_cls, root, df)
        if shards_dir is None:
            shards_dir = layout.shards_for_source(config.dataset_name, config.data.source)
        run_dir = prepare_run(config, home=home, root=root, df=df, normalisation=normalisation,
                              shards_dir=shards_dir, provenance=provenance)
        log_path = log_file(run_dir, config.project, command)
    handler = attach_log_file(log_path)
    try:
        with torch_flags_restored():  # the Trainer's process-wide flags end with the run
            log.info("%s run %s (config %s)", "resuming" if resume else "starting", run_dir,
                     config.config_hash())
            if config.trainer.devices > 1:
                fit = launch(run_dir, config.trainer.devices, resume=resume, progress=progress,
                             log_path=log_path, launcher=launcher)
            else:
                fit = fit_run(run_dir, resume=resume, progress=progress)
            result = _finish(run_dir, fit, progress)
            write_status(run_dir, "finished")
            log.info("finished %s: %s", run_dir, result.test_metrics)
            return result
    except BaseException:
        write_status(run_dir, "failed")
        raise
    finally:
        detach_log_file(handler)


def _finish(run_dir: Path, fit: FitResult, progress: bool) -> TrainResult:
    evaluation = evaluate_run(run_dir, checkpoint=fit.final_checkpoint, progress=progress)
    plots = plot_run(run_dir)
    inputs = load_run(run_dir)
    metrics = read_metrics(run_dir)
    supervised_classification = (inputs.config.task == "classification"
                                 and inputs.config.workflow_spec.uses_labels)
    return TrainResult(
        run_dir=run_dir, checkpoint=fit.final_checkpoint, best_checkpoint=fit.best_checkpoint,
        last_checkpoint=fit.last_checkpoint, metrics_csv=run_dir / METRICS_FILE,
        epochs=int(metrics["epoch"].max()) + 1, test_metrics=evaluation.metrics,
        chance_accuracy=chance_accuracy(inputs.df) if supervised_classification else None,
        evaluation=evaluation, plots=plots)


def chance_accuracy(df: pd.DataFrame) -> float:
    """Test accuracy of always predicting the most frequent test class: the bar to beat."""
    test = df.loc[df["split"] == "test", "label_idx"]
    return float(test.value_counts(normalize=True).max())
