"""The `geovision` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovision.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "datasets"):
        assert command in result.output


def _command_paths(group, prefix=()):
    import typer.main

    click_group = typer.main.get_command(group) if prefix == () else group
    for name, command in click_group.commands.items():
        path = (*prefix, name)
        yield path
        if hasattr(command, "commands"):
            yield from _command_paths(command, path)


@pytest.mark.parametrize("path", sorted(_command_paths(app)), ids=" ".join)
def test_every_command_prints_its_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_datasets_list():
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 0
    assert "synthetic " in result.output and "classification" in result.output


def test_prepare_writes_raw_files_and_index(geovision_home):
    result = runner.invoke(app, ["datasets", "prepare", "synthetic"])
    assert result.exit_code == 0, result.output
    assert "802 files" in result.output
    assert (geovision_home / "index" / "synthetic.parquet").is_file()


def test_console_script_reports_user_errors_without_traceback(tmp_path):
    script = Path(sys.executable).parent / "geovision"
    done = subprocess.run([str(script), "train", "recipes/demo.yaml", "--dataset", "nope"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: Invalid ExperimentConfig")
    assert "unknown dataset_name 'nope'" in done.stderr and "Traceback" not in done.stderr
    assert subprocess.run([str(script), "--help"], capture_output=True).returncode == 0


def test_extract_and_view(tmp_path):
    import numpy as np
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("000000000139", "tile_a"):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            images / f"{name}.jpg")
    result = runner.invoke(app, ["extract", "--images", str(images), "--out",
                                 str(tmp_path / "features"), "--num-objects", "5",
                                 "--detector", "tiny", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "2 images" in result.output and "5 x 128" in result.output
    assert "RANDOM weights" in result.output
    png = tmp_path / "view.png"
    result = runner.invoke(app, ["features", "view", str(tmp_path / "features"), "139",
                                 str(images / "000000000139.jpg"), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.is_file() and png.stat().st_size > 500
    result = runner.invoke(app, ["extract", "--images", str(images), "--out", str(tmp_path / "x"),
                                 "--precision", "fp64"])
    assert result.exit_code != 0 and "fp64" in result.output
