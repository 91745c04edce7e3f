"""`geovision test / view / runs list / compare / live` on real runs, and the messages for
unknown options, commands and config keys."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import yaml
from typer.testing import CliRunner

from geovision.cli import app, main
from geovision.experiment.config import parse_config
from geovision.experiment.runfolders.folder import (
    STATUS_FILE,
    append_epoch_row,
    drop_epochs_from,
    run_state,
    write_status,
    write_yaml,
)
from geovision.experiment.runfolders.live import watch
from geovision.experiment.runtime.train import train

runner = CliRunner()


def config(seed: int, name: str = "cnn"):
    return parse_config({
        "project": "cli", "name": name, "task": "classification", "random_seed": seed,
        "dataset_name": "synthetic",
        "model": {"name": "small_cnn", "kwargs": {"width": 8, "depth": 2}},
        "data": {"batch_size": 64}, "optimizer": {"lr": 0.005},
        "trainer": {"max_epochs": 2, "accelerator": "cpu"}, "metrics": ["accuracy", "f1"]})


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_root):
    home = tmp_path_factory.mktemp("cli") / "home"
    first = train(config(0), home=home, root=synthetic_root, progress=False)
    second = train(config(1, "other"), home=home, root=synthetic_root, progress=False)
    return home, first, second


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_runs_list(runs):
    home, first, second = runs
    output = invoke("runs", "list", "--home", home)
    lines = output.strip().splitlines()
    assert lines[0].split()[:4] == ["run", "state", "epochs", "dataset"]
    assert "test_accuracy" in lines[0]
    assert len(lines) == 3
    assert f"cli/cnn/{first.run_dir.name}" in output and "finished" in output
    assert "2/2" in output
    assert "no runs" in invoke("runs", "list", "--project", "nope", "--home", home)


def test_test_command_writes_metrics_and_confusion_matrix(runs):
    home, first, _ = runs
    output = invoke("test", "cli/cnn", "--split", "val", "--home", home)
    assert "39 samples" in output and "val_accuracy:" in output
    assert "rows: true class" in output
    csv = first.run_dir / "evaluation" / "val_confusion_matrix.csv"
    assert csv.is_file() and (first.run_dir / "plots" / "val_confusion_matrix.png").is_file()
    values = yaml.safe_load((first.run_dir / "evaluation" / "val_metrics.yaml").read_text())
    assert values["num_samples"] == 39 and 0 <= values["metrics"]["val_accuracy"] <= 1


def test_view_draws_every_plot_to_a_folder(runs, tmp_path):
    home, first, _ = runs
    output = invoke("view", first.run_dir, "--out", tmp_path / "view", "--home", home)
    names = sorted(p.name for p in (tmp_path / "view").glob("*.png"))
    assert {"loss.png", "accuracy.png", "f1.png", "learning_rate.png",
            "test_confusion_matrix.png"} <= set(names)
    assert all((tmp_path / "view" / n).stat().st_size > 1000 for n in names)
    assert str(tmp_path / "view" / "loss.png") in output


def test_compare_one_metric_across_runs(runs, tmp_path):
    home, first, second = runs
    output = invoke("compare", "val_accuracy", "cli/cnn", "cli/other", "--out",
                    tmp_path / "cmp.png", "--home", home)
    assert f"cli/cnn/{first.run_dir.name}" in output
    assert f"cli/other/{second.run_dir.name}" in output
    assert "best_epoch" in output and (tmp_path / "cmp.png").stat().st_size > 1000
    output = invoke("compare", "test_accuracy", "cli/cnn", "cli/other", "--home", home)
    assert f"{first.test_metrics['test_accuracy']:.4f}" in output
    result = runner.invoke(app, ["compare", "val_acc", "cli/cnn", "--home", str(home)])
    assert result.exit_code != 0
    assert "val_accuracy" in str(result.exception)  # lists what is available


def test_live_on_a_finished_run_draws_once_and_stops(runs, tmp_path):
    home, first, _ = runs
    output = invoke("live", "cli/cnn", "--interval", "0.1", "--out", tmp_path / "live",
                    "--home", home)
    assert "1 redraws; run finished" in output
    assert (tmp_path / "live" / "loss.png").is_file()


def test_live_follows_a_run_that_is_killed_and_resumed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()

    def writer():
        for epoch in range(3):
            append_epoch_row(run / "metrics.csv", {"epoch": epoch, "train_loss": 1 / (epoch + 1),
                                                   "val_loss": 1.1 / (epoch + 1)})
            time.sleep(0.3)
        # killed: status still says running, but its process is gone
        write_yaml(run / STATUS_FILE, {"state": "running", "pid": dead.pid,
                                       "host": yaml.safe_load((run / STATUS_FILE).read_text())
                                       ["host"]})
        time.sleep(0.3)
        write_status(run, "running")  # resumed from epoch 1's checkpoint
        drop_epochs_from(run / "metrics.csv", 2)
        time.sleep(0.3)
        for epoch in (2, 3):
            append_epoch_row(run / "metrics.csv", {"epoch": epoch, "train_loss": 0.2,
                                                   "val_loss": 0.3})
            time.sleep(0.3)
        write_status(run, "finished")

    write_status(run, "running")
    messages: list[str] = []
    thread = threading.Thread(target=writer)
    thread.start()
    report = watch(run, interval=0.05, timeout=30, echo=messages.append)
    thread.join()
    assert report.final_state == "finished"
    assert report.epochs_seen[-1] == 4
    assert 2 in report.epochs_seen[report.epochs_seen.index(3):]  # the table shrank
    assert any(m.startswith("run resumed") for m in messages)
    assert any("process is gone" in m for m in messages)
    assert messages[-1].startswith("run finished")
    assert (run / "plots" / "loss.png").is_file()


def test_run_state_of_a_killed_writer(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_status(tmp_path, "running")
    assert run_state(tmp_path) == "running"
    status = yaml.safe_load((tmp_path / STATUS_FILE).read_text()) | {"pid": dead.pid}
    write_yaml(tmp_path / STATUS_FILE, status)
    assert run_state(tmp_path) == "stopped"


def test_unknown_option_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "recipes/demo.yaml", "--resum"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "No such option: --resum" in err
    assert ("Valid options for `geovision train`: --dataset, --home, --no-build, --resume, "
            "--help") in err
    with pytest.raises(SystemExit):
        main(["runs", "list", "--projekt", "x"])
    assert "--project" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tset", "x"])
    err = capsys.readouterr().err
    assert "No such command 'tset'" in err and "compare, datasets" in err


def test_unknown_config_key_lists_the_valid_ones(tmp_path, capsys):
    recipe = yaml.safe_load(open("recipes/demo.yaml"))
    recipe["trainer"]["epochs"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(SystemExit):
        main(["train", str(path), "--dataset", "synthetic"])
    err = capsys.readouterr().err
    assert "trainer.epochs: unknown key; valid keys here: max_epochs, accelerator" in err


def test_resume_without_an_earlier_run_says_what_to_do(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config(5).model_dump(mode="json")))
    with pytest.raises(SystemExit):
        main(["train", str(path), "--resume", "--home", str(tmp_path / "home")])
    assert "start one without --resume" in capsys.readouterr().err
